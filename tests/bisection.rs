//! Segment refusing a batch for one bad message: only that message is dead-lettered, by ingest
//! and by replay alike, because both use `segment::deliver_messages`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{Harness, bearer, config, counts, post, send, sqs_event};
use currents_segment::config::SegmentTarget;
use currents_segment::ports::{AttemptError, Deliver, SystemClock};
use currents_segment::secret::Secret;
use currents_segment::segment::{Delivery, RetryPolicy, deliver_messages};
use serde_json::Value;
use tokio::time::Instant;

/// Refuses with 400 any batch holding a poisoned `messageId`, like Segment refusing a batch
/// for one malformed message; accepts everything else.
#[derive(Default)]
struct Poisoned {
    poison: Vec<String>,
    status: u16,
    requests: Mutex<Vec<usize>>,
    delivered: Mutex<Vec<String>>,
}

#[async_trait]
impl Deliver for Poisoned {
    async fn deliver(&self, _target: &SegmentTarget, body: Vec<u8>, _timeout: Duration) -> Result<(), AttemptError> {
        let batch: Value = serde_json::from_slice(&body).unwrap();
        let ids = common::message_ids(&batch);
        self.requests.lock().unwrap().push(ids.len());
        if ids.iter().any(|id| self.poison.contains(id)) {
            return Err(AttemptError::Status {
                status: self.status,
                retry_after: None,
            });
        }
        self.delivered.lock().unwrap().extend(ids);
        Ok(())
    }
}

fn messages(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!(r#"{{"type":"track","event":"E","userId":"u","messageId":"m{i}"}}"#))
        .collect()
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
        request_timeout: Duration::from_secs(1),
    }
}

async fn deliver(segment: &Poisoned, n: usize, deadline: Instant) -> currents_segment::segment::DeliveryReport {
    let target = SegmentTarget {
        endpoint: "http://127.0.0.1:9".to_owned(),
        write_key: Secret::new("wk"),
    };
    let policy = policy();
    let delivery = Delivery {
        segment,
        clock: &SystemClock,
        target: &target,
        policy: &policy,
        deadline,
    };
    deliver_messages(&delivery, &messages(n)).await
}

#[tokio::test]
async fn one_poison_message_in_ten_is_the_only_one_refused() {
    let segment = Poisoned {
        poison: vec!["m6".to_owned()],
        status: 400,
        ..Poisoned::default()
    };
    let report = deliver(&segment, 10, Instant::now() + Duration::from_secs(10)).await;
    assert_eq!(report.delivered, 9);
    assert_eq!(report.permanent.len(), 1);
    assert_eq!(report.permanent[0].range, 6..7);
    assert!(report.permanent[0].last_error.contains("400"));
    assert!(report.retryable.is_empty());
    let mut delivered = segment.delivered.lock().unwrap().clone();
    delivered.sort();
    assert_eq!(delivered.len(), 9);
    assert!(!delivered.contains(&"m6".to_owned()));
    // 10 → 5+5 → the poisoned half 5 → 2+3 → 3 → 1+2 → 2 → 1+1: at most 2·log2(10) extra requests.
    let requests = segment.requests.lock().unwrap().len();
    assert!(requests <= 1 + 2 * 4, "{requests} requests");
}

#[tokio::test]
async fn a_413_is_bisected_too_but_401_is_not() {
    let too_large = Poisoned {
        poison: vec!["m0".to_owned(), "m3".to_owned()],
        status: 413,
        ..Poisoned::default()
    };
    let report = deliver(&too_large, 4, Instant::now() + Duration::from_secs(10)).await;
    assert_eq!(report.delivered, 2);
    let refused: Vec<_> = report.permanent.iter().map(|p| p.range.clone()).collect();
    assert_eq!(refused, vec![0..1, 3..4]);

    let bad_key = Poisoned {
        poison: vec!["m0".to_owned()],
        status: 401,
        ..Poisoned::default()
    };
    let report = deliver(&bad_key, 4, Instant::now() + Duration::from_secs(10)).await;
    assert_eq!((report.delivered, report.requests), (0, 1));
    assert_eq!(report.permanent[0].range, 0..4);
}

#[tokio::test]
async fn halves_left_when_time_runs_out_are_parked_not_dead_lettered() {
    let segment = Poisoned {
        poison: vec!["m1".to_owned()],
        status: 400,
        ..Poisoned::default()
    };
    // Less than the minimum attempt time: nothing is tried, everything stays retryable.
    let report = deliver(&segment, 4, Instant::now() + Duration::from_millis(100)).await;
    assert_eq!(report.retryable_count(), 4);
    assert!(report.permanent.is_empty());
}

fn poisoned_harness() -> (Harness, Arc<Poisoned>) {
    let segment = Arc::new(Poisoned {
        poison: vec!["poison-1".to_owned()],
        status: 400,
        ..Poisoned::default()
    });
    let mut harness = Harness::new(config(&[]));
    harness.segment_port = Some(segment.clone());
    (harness, segment)
}

fn event(id: &str) -> Value {
    serde_json::json!({"id": id, "event_type": "users.messages.email.Open", "time": 1_764_000_000,
        "user": {"user_id": "b-1", "external_user_id": "u-1"}, "properties": {"campaign_name": "c"}})
}

#[tokio::test]
async fn ingest_dead_letters_only_the_message_segment_refuses() {
    let (harness, segment) = poisoned_harness();
    let events: Vec<Value> = ["ok-1", "poison-1", "ok-2", "ok-3"]
        .iter()
        .map(|id| event(id))
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({ "events": events })).unwrap();
    let (auth, value) = bearer();
    let (status, answer) = send(&harness, post("/currents", &[(auth, &value)], body)).await;
    assert_eq!(status, 200);
    assert_eq!(counts(&answer), (3, 0, 0, 1));
    let dead = harness.dead.envelopes();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["reason"], "permanent_failure");
    assert_eq!(dead[0]["messages"].as_array().unwrap().len(), 1);
    assert_eq!(dead[0]["messages"][0]["messageId"], "poison-1");
    assert!(dead[0]["last_error"].as_str().unwrap().contains("400"));
    assert_eq!(segment.delivered.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn replay_dead_letters_only_the_message_segment_refuses() {
    let (harness, segment) = poisoned_harness();
    // Park the batch first with Segment down, then replay it against the poisoned Segment.
    let down = Harness::new(config(&[]));
    down.segment.always(Err(AttemptError::Status {
        status: 503,
        retry_after: None,
    }));
    let (auth, value) = bearer();
    let events: Vec<Value> = ["ok-1", "poison-1", "ok-2"].iter().map(|id| event(id)).collect();
    let body = serde_json::to_vec(&serde_json::json!({ "events": events })).unwrap();
    let (_, answer) = send(&down, post("/currents", &[(auth, &value)], body)).await;
    assert_eq!(counts(&answer), (0, 3, 0, 0));
    let parked: Vec<String> = down.retry.envelopes().iter().map(Value::to_string).collect();
    let response = harness
        .replay()
        .handle(sqs_event(&parked, 1), Instant::now() + Duration::from_secs(10))
        .await;
    assert!(response.batch_item_failures.is_empty());
    let dead = harness.dead.envelopes();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["messages"][0]["messageId"], "poison-1");
    assert_eq!(segment.delivered.lock().unwrap().len(), 2);
}
