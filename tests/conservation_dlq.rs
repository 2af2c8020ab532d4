//! Conservation through the dead-letter round trip (issue 11): events dead-lettered by ingest
//! (invalid, or refused by Segment and bisected) are redriven through replay, some of them as
//! S3 pointers whose store fails at first, under Segment and DLQ faults. Replay must never
//! acknowledge a record whose events are in neither Segment nor a queue.

mod common;

use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{Harness, bearer, config, fixture, post, send, sqs_event};
use currents_segment::config::SegmentTarget;
use currents_segment::park::{PayloadPointer, PayloadStore, StoreError, payload_key};
use currents_segment::ports::{AttemptError, Deliver};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Value, json};

/// Segment: 400 for any batch holding a poisoned id; otherwise a script of answers, then 200
/// (or 503 while `down`).
#[derive(Default)]
struct Segment {
    poison: HashSet<String>,
    script: Mutex<VecDeque<u16>>,
    down: Mutex<bool>,
    delivered: Mutex<HashSet<String>>,
}

#[async_trait]
impl Deliver for Segment {
    async fn deliver(&self, _target: &SegmentTarget, body: Vec<u8>, _timeout: Duration) -> Result<(), AttemptError> {
        let batch: Value = serde_json::from_slice(&body).unwrap();
        let ids = common::message_ids(&batch);
        let status = if ids.iter().any(|id| self.poison.contains(id)) {
            400
        } else if let Some(status) = self.script.lock().unwrap().pop_front() {
            status
        } else if *self.down.lock().unwrap() {
            503
        } else {
            200
        };
        if status == 200 {
            self.delivered.lock().unwrap().extend(ids);
            return Ok(());
        }
        Err(AttemptError::Status {
            status,
            retry_after: None,
        })
    }
}

/// An S3 stand-in whose first `fail` reads fail.
#[derive(Default)]
struct Store {
    objects: Mutex<HashMap<String, String>>,
    fail: Mutex<usize>,
}

#[async_trait]
impl PayloadStore for Store {
    async fn put(&self, body: &str) -> Result<PayloadPointer, StoreError> {
        let key = payload_key(body);
        self.objects.lock().unwrap().insert(key.clone(), body.to_owned());
        Ok(PayloadPointer {
            bucket: "payloads".to_owned(),
            key,
        })
    }
    async fn get(&self, pointer: &PayloadPointer) -> Result<String, StoreError> {
        let mut fail = self.fail.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return Err(StoreError("S3 did not answer".to_owned()));
        }
        Ok(self.objects.lock().unwrap()[&pointer.key].clone())
    }
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Good,
    Poison,
    Milliseconds,
    NoTime,
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![5 => Just(Shape::Good), 2 => Just(Shape::Poison), 1 => Just(Shape::Milliseconds), 1 => Just(Shape::NoTime)]
}

fn event(template: &Value, index: usize, shape: Shape) -> Value {
    let mut event = template.clone();
    event["id"] = json!(format!("evt-{index}"));
    match shape {
        Shape::Milliseconds => event["time"] = json!(1_764_000_000_000_i64),
        Shape::NoTime => {
            event.as_object_mut().unwrap().remove("time");
        }
        Shape::Good | Shape::Poison => {}
    }
    event
}

/// Stores `body` as the large-payload path would and returns the SQS pointer body.
fn to_s3(store: &Store, body: &str) -> String {
    let key = payload_key(body);
    store.objects.lock().unwrap().insert(key.clone(), body.to_owned());
    PayloadPointer {
        bucket: "payloads".to_owned(),
        key,
    }
    .to_body()
}

/// Every id in the DLQ envelopes held by `harness`, messages and raw events alike.
fn dead_ids(bodies: &[String], store: &Store) -> HashSet<String> {
    let mut ids = HashSet::new();
    for body in bodies {
        let text = match serde_json::from_str::<Value>(body) {
            Ok(Value::Array(pointer)) => store.objects.lock().unwrap()[pointer[1]["s3Key"].as_str().unwrap()].clone(),
            _ => body.clone(),
        };
        let envelope: Value = serde_json::from_str(&text).unwrap();
        for m in envelope["messages"].as_array().into_iter().flatten() {
            ids.insert(m["messageId"].as_str().unwrap().to_owned());
        }
        for e in envelope["events"].as_array().into_iter().flatten() {
            if let Some(id) = e["id"].as_str() {
                ids.insert(id.to_owned());
            }
        }
    }
    ids
}

/// What the cases reached, so the test fails if its generator stops exercising the round trip.
#[derive(Default)]
struct Reached {
    redriven: Cell<usize>,
    through_failing_s3: Cell<usize>,
    dlq_refused: Cell<usize>,
}

#[test]
fn dead_letters_redriven_through_replay_are_never_lost() {
    let reached = Reached::default();
    let strategy = (
        prop::collection::vec(shape(), 2..30),
        prop::collection::vec(prop_oneof![Just(200u16), Just(503), Just(400)], 0..8),
        any::<bool>(),
        0usize..3,
        0usize..3,
        any::<bool>(),
    );
    let mut runner = TestRunner::new(RunnerConfig::with_cases(128));
    runner
        .run(
            &strategy,
            |(shapes, script, offload, s3_failures, dlq_refusals, segment_down)| {
                round_trip(
                    &reached,
                    &shapes,
                    &script,
                    offload,
                    s3_failures,
                    dlq_refusals,
                    segment_down,
                )
            },
        )
        .unwrap();
    // Coverage: most cases redrive something, and the S3 and DLQ faults are met, not just drawn.
    assert!(
        reached.redriven.get() >= 100,
        "{} of 128 cases redrove a dead letter",
        reached.redriven.get()
    );
    assert!(
        reached.through_failing_s3.get() >= 10,
        "{} cases read a pointer while S3 failed",
        reached.through_failing_s3.get()
    );
    assert!(
        reached.dlq_refused.get() >= 20,
        "{} cases met a refusing DLQ",
        reached.dlq_refused.get()
    );
}

fn round_trip(
    reached: &Reached,
    shapes: &[Shape],
    script: &[u16],
    offload: bool,
    s3_failures: usize,
    dlq_refusals: usize,
    segment_down: bool,
) -> Result<(), TestCaseError> {
    let fixture: Value = serde_json::from_slice(&fixture("all-events.json")).unwrap();
    let templates = fixture["events"].as_array().unwrap();
    let email_open = templates
        .iter()
        .find(|e| e["event_type"] == "users.messages.email.Open")
        .unwrap();
    let events: Vec<Value> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| event(email_open, i, *s))
        .collect();
    let poison: HashSet<String> = shapes
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Shape::Poison))
        .map(|(i, _)| format!("evt-{i}"))
        .collect();
    let segment = Arc::new(Segment {
        poison: poison.clone(),
        ..Segment::default()
    });
    let store = Arc::new(Store::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut harness = Harness::new(config(&[]));
        harness.segment_port = Some(segment.clone());
        let (auth, value) = bearer();
        let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
        let (status, answer) = send(&harness, post("/currents", &[(auth, &value)], body)).await;
        prop_assert_eq!(status, 200, "{}", answer);
        // Bisection: only the poisoned messages are dead-lettered by Segment's refusal.
        let delivered = segment.delivered.lock().unwrap().clone();
        for (i, s) in shapes.iter().enumerate() {
            let id = format!("evt-{i}");
            prop_assert_eq!(delivered.contains(&id), matches!(s, Shape::Good), "{} {:?}", id, s);
        }

        // The operator redrives the DLQ (within the window, as the fixed clock keeps it); some
        // bodies are S3 pointers, as large envelopes would be.
        let mut pending: Vec<String> = std::mem::take(&mut *harness.dead.bodies.lock().unwrap())
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                if offload && i % 2 == 0 {
                    to_s3(&store, &body)
                } else {
                    body
                }
            })
            .collect();
        let bump = |c: &Cell<usize>| c.set(c.get() + 1);
        if !pending.is_empty() {
            bump(&reached.redriven);
        }
        if s3_failures > 0 && pending.iter().any(|b| b.starts_with('[')) {
            bump(&reached.through_failing_s3);
        }
        if dlq_refusals > 0 && !pending.is_empty() {
            bump(&reached.dlq_refused);
        }
        *store.fail.lock().unwrap() = s3_failures;
        harness.dead.refuse_next(dlq_refusals);
        segment.script.lock().unwrap().extend(script.iter().copied());
        *segment.down.lock().unwrap() = segment_down;
        let mut replay = harness.replay();
        replay.payloads = Some(store.clone());
        for _ in 0..8 {
            if pending.is_empty() {
                break;
            }
            let response = replay
                .handle(
                    sqs_event(&pending, 1),
                    tokio::time::Instant::now() + Duration::from_secs(5),
                )
                .await;
            let kept: HashSet<usize> = response
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.trim_start_matches("msg-").parse().unwrap())
                .collect();
            pending = pending
                .into_iter()
                .enumerate()
                .filter(|(i, _)| kept.contains(i))
                .map(|(_, b)| b)
                .collect();
            pending.append(&mut std::mem::take(&mut *harness.retry.bodies.lock().unwrap()));
            if segment_down && !pending.is_empty() {
                *segment.down.lock().unwrap() = false;
            }
        }
        prop_assert!(pending.is_empty(), "every redriven record settles once faults clear");

        // Conservation: every event is in Segment or back in the DLQ; invalid ones never
        // reach Segment; poisoned ones are refused again.
        let delivered = segment.delivered.lock().unwrap().clone();
        let dead = dead_ids(&harness.dead.bodies.lock().unwrap(), &store);
        for (i, s) in shapes.iter().enumerate() {
            let id = format!("evt-{i}");
            prop_assert!(
                delivered.contains(&id) || dead.contains(&id),
                "{} ({:?}) was lost",
                id,
                s
            );
            match s {
                Shape::Milliseconds | Shape::NoTime | Shape::Poison => {
                    prop_assert!(!delivered.contains(&id) && dead.contains(&id), "{} ({:?})", id, s)
                }
                Shape::Good => {}
            }
        }
        Ok(())
    })
}
