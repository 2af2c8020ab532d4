//! Issue 21, case 3: a RetryQueue record whose S3 payload fails to load for a reason that may
//! pass (S3 down, throttled, access denied) is retried, but only for as long as replay tries
//! anything: past the replay window since SQS accepted it, or past `UNREADABLE_MAX_RECEIVES`
//! receives, it is dead-lettered as `unreadable` with the pointer kept, not left to SQS's
//! retention.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{Emf, Harness, config, sqs_event};
use currents_segment::park::{PayloadPointer, PayloadStore, StoreError, decode};
use currents_segment::replay::{Replay, UNREADABLE_MAX_RECEIVES};
use time::OffsetDateTime;

/// An S3 that never answers.
struct DownStore;

#[async_trait]
impl PayloadStore for DownStore {
    async fn put(&self, _: &str) -> Result<PayloadPointer, StoreError> {
        Err(StoreError("S3 did not answer".to_owned()))
    }
    async fn get(&self, _: &PayloadPointer) -> Result<String, StoreError> {
        Err(StoreError("S3 did not answer".to_owned()))
    }
}

fn pointer() -> String {
    PayloadPointer {
        bucket: "payloads".into(),
        key: "currents-segment/abc.json".into(),
    }
    .to_body()
}

/// Replays the pointer once as received `receive_count` times, sent `sent_ago` before the
/// harness's clock (no `SentTimestamp` when `None`): the batch-item failures and the metrics.
async fn replay(harness: &Harness, receive_count: u32, sent_ago: Option<Duration>) -> (usize, Emf) {
    let mut event = sqs_event(&[pointer()], receive_count);
    if let Some(ago) = sent_ago {
        let sent: OffsetDateTime = harness.clock.now_utc() - ago;
        let ms = sent.unix_timestamp_nanos() / 1_000_000;
        event.records[0]
            .attributes
            .insert("SentTimestamp".into(), ms.to_string());
    }
    let replay = Replay {
        payloads: Some(Arc::new(DownStore)),
        ..harness.replay()
    };
    let mut metrics = currents_segment::metrics::Metrics::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let response = replay.handle_recording(event, deadline, &mut metrics).await;
    (response.batch_item_failures.len(), Emf::of(&metrics, "replay"))
}

fn assert_dead_lettered_as_unreadable(harness: &Harness, failures: usize, emf: &Emf) {
    assert_eq!(failures, 0, "acknowledged once dead-lettered");
    let bodies = harness.dead.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let dead = decode(&bodies[0]).unwrap();
    assert_eq!(dead.reason.map(|r| r.as_str()), Some("unreadable"));
    assert_eq!(dead.body, Some(pointer()), "the pointer, as received");
    assert!(dead.last_error.contains("S3 did not answer"), "{}", dead.last_error);
    assert_eq!(emf.dead_lettered("unreadable"), Some(1.0), "{emf:?}");
}

#[tokio::test]
async fn an_unreadable_record_is_retried_inside_the_window() {
    let harness = Harness::new(config(&[]));
    let (failures, _) = replay(&harness, 3, Some(Duration::from_secs(47 * 3600))).await;
    assert_eq!(failures, 1, "kept on RetryQueue for another try");
    assert!(harness.dead.bodies.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_unreadable_record_past_the_window_is_dead_lettered_not_retried() {
    let harness = Harness::new(config(&[]));
    let (failures, emf) = replay(&harness, 3, Some(Duration::from_secs(48 * 3600))).await;
    assert_dead_lettered_as_unreadable(&harness, failures, &emf);
}

#[tokio::test]
async fn an_unreadable_record_past_the_receive_cap_is_dead_lettered_without_a_sent_time() {
    let harness = Harness::new(config(&[]));
    let (failures, _) = replay(&harness, UNREADABLE_MAX_RECEIVES - 1, None).await;
    assert_eq!(failures, 1);
    let (failures, emf) = replay(&harness, UNREADABLE_MAX_RECEIVES, None).await;
    assert_dead_lettered_as_unreadable(&harness, failures, &emf);
}

/// The bound follows `REPLAY_MAX_AGE_HOURS`.
#[tokio::test]
async fn the_window_is_the_configured_replay_window() {
    let harness = Harness::new(config(&[("REPLAY_MAX_AGE_HOURS", "2")]));
    let (failures, emf) = replay(&harness, 2, Some(Duration::from_secs(2 * 3600))).await;
    assert_dead_lettered_as_unreadable(&harness, failures, &emf);
}
