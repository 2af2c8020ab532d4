//! Property tests: generated batches and fault schedules run through ingest, Braze's resends
//! and replay rounds with a moving clock. Nothing is lost, counts always add up, and nothing
//! older than the replay window reaches Segment.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{Harness, bearer, config, counts, fixture, post, sqs_event};
use currents_segment::ports::AttemptError;
use proptest::prelude::*;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone, Copy)]
enum Shape {
    Good,
    Anonymous,
    UnknownType,
    NoTime,
    Milliseconds,
    UserNotObject,
    TooLarge,
    NotAnObject,
}

#[derive(Debug, Clone, Copy)]
enum Answer {
    Ok,
    Unavailable,
    RateLimited,
    BadRequest,
    Timeout,
}

impl Answer {
    fn result(self) -> Result<(), AttemptError> {
        match self {
            Answer::Ok => Ok(()),
            Answer::Unavailable => Err(AttemptError::Status {
                status: 503,
                retry_after: None,
            }),
            Answer::RateLimited => Err(AttemptError::Status {
                status: 429,
                retry_after: Some(Duration::ZERO),
            }),
            Answer::BadRequest => Err(AttemptError::Status {
                status: 400,
                retry_after: None,
            }),
            Answer::Timeout => Err(AttemptError::Timeout),
        }
    }
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        6 => Just(Shape::Good),
        1 => Just(Shape::Anonymous),
        1 => Just(Shape::UnknownType),
        1 => Just(Shape::NoTime),
        1 => Just(Shape::Milliseconds),
        1 => Just(Shape::UserNotObject),
        1 => Just(Shape::TooLarge),
        1 => Just(Shape::NotAnObject),
    ]
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        4 => Just(Answer::Ok),
        2 => Just(Answer::Unavailable),
        1 => Just(Answer::RateLimited),
        1 => Just(Answer::BadRequest),
        1 => Just(Answer::Timeout),
    ]
}

fn build_event(template: &Value, index: usize, shape: Shape) -> Value {
    let mut event = template.clone();
    event["id"] = json!(format!("evt-{index}"));
    match shape {
        Shape::Good => {}
        Shape::Anonymous => {
            event["user"].as_object_mut().unwrap().remove("external_user_id");
        }
        Shape::UnknownType => event["event_type"] = json!("users.messages.hologram.Send"),
        Shape::NoTime => {
            event.as_object_mut().unwrap().remove("time");
        }
        Shape::Milliseconds => event["time"] = json!(1_764_000_000_000_i64),
        Shape::UserNotObject => event["user"] = json!("nobody"),
        Shape::TooLarge => event["properties"]["blob"] = json!("z".repeat(33_000)),
        Shape::NotAnObject => return json!(index),
    }
    event
}

fn parse_time(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn nothing_is_lost_and_nothing_expired_reaches_segment(
        shapes in prop::collection::vec(shape(), 1..40),
        script in prop::collection::vec(answer(), 0..12),
        segment_recovers in any::<bool>(),
        refuse_first_park in any::<bool>(),
        rounds in prop::collection::vec(1u64..30, 1..6),
    ) {
        let fixture: Value = serde_json::from_slice(&fixture("all-events.json")).unwrap();
        let templates = fixture["events"].as_array().unwrap();
        let events: Vec<Value> = shapes.iter().enumerate().map(|(i, s)| build_event(&templates[i % 34], i, *s)).collect();
        let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
        let max_age = Duration::from_secs(48 * 3600);

        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let harness = Harness::new(config(&[("PARK_MESSAGE_MAX_BYTES", "65536")]));
            for answer in &script {
                harness.segment.then(answer.result());
            }
            harness.segment.always(if segment_recovers { Ok(()) } else { Answer::Unavailable.result() });
            if refuse_first_park {
                harness.retry.refuse_next(1);
                harness.dead.refuse_next(1);
            }

            // Braze: resend the whole batch until it gets a 2xx.
            let (auth, value) = bearer();
            let mut answers = Vec::new();
            for _ in 0..4 {
                let response = harness.ingest().handle(post("/currents", &[(auth, &value)], body.clone())).await;
                let status = response.status().as_u16();
                let answer: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
                if status == 200 {
                    counts(&answer); // asserts received = delivered + parked + skipped + dead
                    assert_eq!(answer["received"].as_u64().unwrap() as usize, events.len());
                    answers.push(answer);
                    break;
                }
                assert_eq!(status, 503, "{answer}");
            }
            assert_eq!(answers.len(), 1, "the batch is eventually accepted");
            let resent = refuse_first_park && answers.len() == 1;

            // Replay rounds, as SQS and Lambda would run them; then past the window, where SQS keeps
            // redelivering what is still unsettled (say, after a failed dead-letter send).
            let mut first_failed: HashMap<String, OffsetDateTime> = HashMap::new();
            let mut pending: Vec<String> = std::mem::take(&mut *harness.retry.bodies.lock().unwrap());
            for hours in rounds.iter().copied().chain([49, 1, 1]) {
                harness.clock.advance(Duration::from_secs(hours * 3600));
                for envelope in &pending {
                    let envelope: Value = serde_json::from_str(envelope).unwrap();
                    let at = parse_time(envelope["first_failed_at"].as_str().unwrap());
                    for message in envelope["messages"].as_array().unwrap() {
                        let id = message["messageId"].as_str().unwrap().to_owned();
                        first_failed.entry(id).and_modify(|t| *t = (*t).min(at)).or_insert(at);
                    }
                }
                if pending.is_empty() {
                    continue;
                }
                let response = harness.replay().handle(sqs_event(&pending, 2), tokio::time::Instant::now() + Duration::from_secs(5)).await;
                let failed: HashSet<usize> = response
                    .batch_item_failures
                    .iter()
                    .map(|f| f.item_identifier.trim_start_matches("msg-").parse().unwrap())
                    .collect();
                pending = pending.into_iter().enumerate().filter(|(i, _)| failed.contains(i)).map(|(_, b)| b).collect();
                // What replay parked anew (the undelivered rest of a record) is delivered next round.
                pending.append(&mut std::mem::take(&mut *harness.retry.bodies.lock().unwrap()));
            }
            assert!(pending.is_empty(), "after the window every parked delivery is settled");

            // The 48-hour rule: no send of a parked message at or after its expiry.
            for request in harness.segment.bodies.lock().unwrap().iter() {
                let sent_at = parse_time(request["sentAt"].as_str().unwrap());
                for message in request["batch"].as_array().unwrap() {
                    if let Some(failed_at) = first_failed.get(message["messageId"].as_str().unwrap()) {
                        assert!(sent_at - *failed_at < max_age, "sent {} after first failure", sent_at - *failed_at);
                    }
                }
            }

            // Conservation: every event is delivered, dead-lettered or skipped by rule.
            let delivered: HashSet<String> = harness.segment.delivered_ids().into_iter().collect();
            let mut dead: HashSet<String> = HashSet::new();
            let mut dead_without_id = 0;
            for envelope in harness.dead.envelopes() {
                for message in envelope["messages"].as_array().into_iter().flatten() {
                    dead.insert(message["messageId"].as_str().unwrap().to_owned());
                }
                for event in envelope["events"].as_array().into_iter().flatten() {
                    match event["id"].as_str() {
                        Some(id) => { dead.insert(id.to_owned()); }
                        None => dead_without_id += 1,
                    }
                }
            }
            let mut skipped = 0;
            for (index, shape) in shapes.iter().enumerate() {
                let id = format!("evt-{index}");
                match shape {
                    Shape::Anonymous | Shape::UnknownType => {
                        skipped += 1;
                        assert!(!delivered.contains(&id) && !dead.contains(&id), "{id} skipped by rule");
                    }
                    Shape::NotAnObject => {}
                    Shape::Good => assert!(delivered.contains(&id) || dead.contains(&id), "{id} was lost"),
                    _ => assert!(dead.contains(&id) && !delivered.contains(&id), "{id} invalid, so dead-lettered"),
                }
                if !resent && matches!(shape, Shape::Good) {
                    assert!(!(delivered.contains(&id) && dead.contains(&id)), "{id} in two places");
                }
            }
            let not_objects = shapes.iter().filter(|s| matches!(s, Shape::NotAnObject)).count();
            assert!(dead_without_id >= not_objects, "non-object events are dead-lettered too");
            assert_eq!(answers[0]["skipped"].as_u64().unwrap() as usize, skipped);
        });
    }
}
