//! Dead letters that round-trip through replay (issue 11 A): nothing replay cannot send is
//! acknowledged, invalid events are re-mapped under the current configuration, and no Segment
//! attempt runs past an envelope's 48-hour window.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{Harness, bearer, config, counts, post, send, sqs_event};
use currents_segment::config::SegmentTarget;
use currents_segment::ports::{AttemptError, Deliver};
use serde_json::{Value, json};
use tokio::time::Instant;

const NOW: i64 = 1_764_000_000;

fn event(id: &str, time: i64) -> Value {
    json!({"id": id, "event_type": "users.messages.email.Open", "time": time,
        "user": {"user_id": "b-1", "external_user_id": "u-1"}, "properties": {"campaign_name": "c"}})
}

fn failures(response: &aws_lambda_events::sqs::SqsBatchResponse) -> usize {
    response.batch_item_failures.len()
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// The issue's steps: a good event and its twin with a millisecond `time`; the twin is
/// dead-lettered as invalid_event with `messages: []`.
async fn dead_letter_a_millisecond_event(harness: &Harness) -> Value {
    let body = json!({"events": [event("good-1", NOW), event("ms-1", 1_764_000_000_123)]});
    let (auth, value) = bearer();
    let (status, answer) = send(harness, post("/currents", &[(auth, &value)], body.to_string())).await;
    assert_eq!((status, counts(&answer)), (200, (1, 0, 0, 1)));
    let dead = harness.dead.envelopes();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["reason"], "invalid_event");
    assert_eq!(dead[0]["messages"], json!([]));
    harness.dead.bodies.lock().unwrap().clear();
    dead[0].clone()
}

#[tokio::test]
async fn a_redriven_invalid_event_that_still_fails_goes_back_with_attempts_plus_one() {
    let harness = Harness::new(config(&[]));
    let envelope = dead_letter_a_millisecond_event(&harness).await;
    let requests = harness.segment.requests();
    let response = harness
        .replay()
        .handle(sqs_event(&[envelope.to_string()], 1), deadline())
        .await;
    assert_eq!(
        failures(&response),
        0,
        "acknowledged only because the DLQ holds it again"
    );
    assert_eq!(harness.segment.requests(), requests, "nothing was sendable");
    let back = harness.dead.envelopes();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0]["reason"], "invalid_event");
    assert_eq!(back[0]["events"], envelope["events"], "the raw event round-trips");
    assert_eq!(back[0]["first_failed_at"], envelope["first_failed_at"]);
    assert_eq!(back[0]["attempts"], envelope["attempts"].as_u64().unwrap() + 1);
}

#[tokio::test]
async fn a_redriven_invalid_event_is_never_lost_when_the_dlq_refuses() {
    let harness = Harness::new(config(&[]));
    let envelope = dead_letter_a_millisecond_event(&harness).await;
    harness.dead.refuse_next(1);
    let response = harness
        .replay()
        .handle(sqs_event(&[envelope.to_string()], 1), deadline())
        .await;
    assert_eq!(failures(&response), 1, "SQS keeps the record");
}

#[tokio::test]
async fn an_invalid_event_that_maps_now_is_delivered() {
    let harness = Harness::new(config(&[]));
    let mut envelope = dead_letter_a_millisecond_event(&harness).await;
    // The operator fixed the event (seconds, not milliseconds) before redriving it.
    envelope["events"][0]["time"] = json!(NOW);
    let response = harness
        .replay()
        .handle(sqs_event(&[envelope.to_string()], 1), deadline())
        .await;
    assert_eq!(failures(&response), 0);
    assert!(harness.segment.delivered_ids().contains(&"ms-1".to_owned()));
    assert!(harness.dead.envelopes().is_empty());
}

#[tokio::test]
async fn what_replay_cannot_act_on_goes_back_unchanged() {
    let harness = Harness::new(config(&[]));
    let first = "2025-11-24T16:00:00Z";
    let bodies = [
        json!({"version": 1, "route": "default", "first_failed_at": first, "messages": []}).to_string(),
        json!({"version": 1, "route": "unknown", "first_failed_at": first, "reason": "undecodable",
            "body": "not json"})
        .to_string(),
        json!({"version": 1, "route": "gone", "first_failed_at": first, "reason": "unknown_route",
            "messages": [{"type": "track", "messageId": "m-1"}]})
        .to_string(),
    ];
    for body in &bodies {
        let response = harness
            .replay()
            .handle(sqs_event(std::slice::from_ref(body), 1), deadline())
            .await;
        assert_eq!(failures(&response), 0);
    }
    let back = harness.dead.bodies.lock().unwrap().clone();
    assert_eq!(back, bodies.to_vec(), "each body back on the DLQ exactly as it came");
    assert_eq!(harness.segment.requests(), 0);
}

/// Issue 21, case 4's class: whatever sends a message on unchanged keeps its message
/// attributes. Replay sends a record it cannot act on back to the DLQ with them, so an S3
/// pointer (here one replay cannot follow, having no bucket) stays a pointer for AWS's
/// extended clients, and a foreign sender's attributes survive.
#[tokio::test]
async fn what_replay_sends_back_unchanged_keeps_its_message_attributes() {
    use currents_segment::dlq::{Attribute, AttributeValue};
    let harness = Harness::new(config(&[]));
    let pointer = r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k.json"}]"#;
    let undecodable = json!({"version": 1, "route": "unknown", "first_failed_at": "2025-11-24T16:00:00Z",
        "reason": "undecodable", "body": "not json"})
    .to_string();
    let cases = [
        (pointer.to_owned(), vec![("ExtendedPayloadSize", "Number", "300000")]),
        (
            undecodable,
            vec![
                ("origin", "String", "operator"),
                ("blob", "Binary", "\u{0}\u{1}"),
                ("n", "Number.int", "7"),
            ],
        ),
    ];
    for (body, attributes) in &cases {
        let response = harness
            .replay()
            .handle(common::sqs_event_with_attributes(body, attributes), deadline())
            .await;
        assert_eq!(failures(&response), 0);
    }
    let forwarded = harness.dead.forwarded.lock().unwrap().clone();
    assert_eq!(forwarded.len(), 2, "both sent back as they came");
    for ((body, attributes), sent) in cases.iter().zip(&forwarded) {
        assert_eq!(&sent.body, body);
        assert_eq!(sent.attributes.len(), attributes.len(), "{:?}", sent.attributes);
        for (name, data_type, value) in attributes {
            let expected = if data_type.starts_with("Binary") {
                AttributeValue::Binary(value.as_bytes().to_vec())
            } else {
                AttributeValue::Text((*value).to_owned())
            };
            let kept = Attribute {
                data_type: (*data_type).to_owned(),
                value: expected,
            };
            assert_eq!(sent.attributes.get(*name), Some(&kept), "{name}");
        }
    }
    assert_eq!(harness.segment.requests(), 0);
}

/// Answers after `delay` or times out at the timeout it was given, recording both.
struct SlowSegment {
    delay: Duration,
    timeouts: Mutex<Vec<Duration>>,
}

#[async_trait]
impl Deliver for SlowSegment {
    async fn deliver(&self, _target: &SegmentTarget, _body: Vec<u8>, timeout: Duration) -> Result<(), AttemptError> {
        self.timeouts.lock().unwrap().push(timeout);
        if timeout < self.delay {
            tokio::time::sleep(timeout).await;
            return Err(AttemptError::Timeout);
        }
        tokio::time::sleep(self.delay).await;
        Ok(())
    }
}

fn parked_at(first_failed_at: &str) -> String {
    json!({"version": 1, "route": "default", "first_failed_at": first_failed_at, "attempts": 1,
        "messages": [{"type": "track", "event": "Email Opened", "userId": "u-1", "messageId": "m-1"}]})
    .to_string()
}

/// 2025-11-24T16:00:00Z is NOW; an envelope first failed 47:59:58 before it.
const ALMOST_EXPIRED: &str = "2025-11-22T16:00:02Z";

#[tokio::test]
async fn a_slow_segment_cannot_carry_an_attempt_past_48_hours() {
    let segment = Arc::new(SlowSegment {
        delay: Duration::from_secs(30),
        timeouts: Mutex::new(Vec::new()),
    });
    let mut harness = Harness::new(config(&[]));
    harness.segment_port = Some(segment.clone());
    let mut replay = harness.replay();
    replay.policy.request_timeout = Duration::from_secs(10);
    let response = replay
        .handle(
            sqs_event(&[parked_at(ALMOST_EXPIRED)], 3),
            Instant::now() + Duration::from_secs(60),
        )
        .await;
    assert_eq!(failures(&response), 1, "still failing, kept for expiry");
    let timeouts = segment.timeouts.lock().unwrap().clone();
    assert!(!timeouts.is_empty());
    let total: Duration = timeouts.iter().sum();
    assert!(
        total <= Duration::from_secs(2),
        "attempts stop at the window: {timeouts:?}"
    );
    let postponed = harness.retry.postponed.lock().unwrap().clone();
    assert!(
        postponed[0].1 <= Duration::from_secs(3),
        "next receive lands just after expiry"
    );
}

#[tokio::test]
async fn a_retry_after_that_crosses_48_hours_is_not_waited_for() {
    let harness = Harness::new(config(&[]));
    harness.segment.then(Err(AttemptError::Status {
        status: 429,
        retry_after: Some(Duration::from_secs(40)),
    }));
    let started = Instant::now();
    let response = harness
        .replay()
        .handle(
            sqs_event(&[parked_at(ALMOST_EXPIRED)], 3),
            Instant::now() + Duration::from_secs(60),
        )
        .await;
    assert_eq!(failures(&response), 1);
    assert_eq!(harness.segment.requests(), 1, "no second attempt after the window");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(harness.segment.delivered_ids().is_empty());
}
