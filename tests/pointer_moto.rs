//! Issue 21, case 3: parked S3 pointers against moto's S3. A pointer whose object or bucket is
//! gone is dead-lettered as `payload_missing` with the pointer kept (not retried until SQS
//! drops it); the legacy pointer format AWS's Python extended client writes is followed; and a
//! `payload_missing` dead letter redriven once the object is back is delivered. `scripts/test`
//! starts moto and sets `SQS_ENDPOINT`; S3 is served on the same endpoint.

mod common;
#[path = "common/moto.rs"]
mod moto;

use std::sync::Arc;
use std::time::Duration;

use common::{Emf, Harness, config, sqs_event};
use currents_segment::park::{PayloadPointer, PayloadStore, ReadError, S3PayloadStore, decode};
use moto::endpoint;
use serde_json::Value;

/// A parked envelope holding one message, `first_failed_at` an hour before the harness's clock.
fn parked(message_id: &str) -> String {
    format!(
        r#"{{"version":1,"route":"default","first_failed_at":"2025-11-24T15:00:00Z","attempts":1,"last_error":"Segment answered HTTP 503","messages":[{{"type":"track","event":"Email Opened","userId":"u1","messageId":"{message_id}","timestamp":"2025-11-24T14:59:00Z"}}]}}"#
    )
}

/// Replays `body` once (first receive) with `store` behind pointers; the answer's batch-item
/// failures and the metrics.
async fn replay(harness: &Harness, store: &Arc<dyn PayloadStore>, body: &str) -> (Vec<String>, Emf) {
    let replay = currents_segment::replay::Replay {
        payloads: Some(store.clone()),
        ..harness.replay()
    };
    let mut metrics = currents_segment::metrics::Metrics::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let response = replay
        .handle_recording(sqs_event(&[body.to_owned()], 1), deadline, &mut metrics)
        .await;
    let failures = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    (failures, Emf::of(&metrics, "replay"))
}

/// The one dead letter the harness's DLQ holds, decoded.
fn only_dead_letter(harness: &Harness) -> currents_segment::park::Envelope {
    let bodies = harness.dead.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    decode(&bodies[0]).unwrap()
}

/// Stores `parked(id)` in a fresh bucket; the bucket, the store and the pointer body.
async fn offloaded(test: &str, id: &str) -> (String, Arc<dyn PayloadStore>, String) {
    let (bucket, store) = moto::store(&endpoint(), test).await;
    let pointer = store.put(&parked(id)).await.unwrap();
    (bucket, store, pointer.to_body())
}

/// Deletes the object `pointer` names, and with `bucket_too` its bucket.
async fn delete(pointer: &str, bucket_too: bool) {
    let PayloadPointer { bucket, key } = PayloadPointer::from_body(pointer).unwrap();
    let s3 = moto::client(&endpoint());
    s3.delete_object().bucket(&bucket).key(&key).send().await.unwrap();
    if bucket_too {
        s3.delete_bucket().bucket(&bucket).send().await.unwrap();
    }
}

/// Asserts replay dead-lettered `pointer` as `payload_missing`, kept as received, and
/// acknowledged the record.
async fn assert_dead_lettered_as_missing(store: &Arc<dyn PayloadStore>, pointer: &str, code: &str) {
    let harness = Harness::new(config(&[]));
    let (failures, emf) = replay(&harness, store, pointer).await;
    assert!(failures.is_empty(), "acknowledged, not retried: {failures:?}");
    let dead = only_dead_letter(&harness);
    assert_eq!(dead.reason.map(|r| r.as_str()), Some("payload_missing"));
    assert_eq!(dead.body.as_deref(), Some(pointer), "the pointer, as received");
    assert!(dead.last_error.contains(code), "{}", dead.last_error);
    assert_eq!(emf.dead_lettered("payload_missing"), Some(1.0), "{emf:?}");
    assert_eq!(harness.segment.requests(), 0);
}

/// Deleting the object, or the object and its bucket, makes the pointer dangle for good.
#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_pointer_whose_object_or_bucket_was_deleted_is_dead_lettered_with_the_pointer() {
    for (bucket_too, code) in [(false, "NoSuchKey"), (true, "NoSuchBucket")] {
        let (_, store, pointer) = offloaded(&code.to_lowercase(), &format!("m-{code}")).await;
        delete(&pointer, bucket_too).await;
        assert_dead_lettered_as_missing(&store, &pointer, code).await;
    }
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_legacy_pointer_written_by_the_python_client_is_followed_and_delivered() {
    let (bucket, store, pointer) = offloaded("legacy", "m-legacy").await;
    let key = PayloadPointer::from_body(&pointer).unwrap().key;
    // As AWS's Python extended client writes it: the v1 class name, json.dumps spacing.
    let legacy = format!(
        r#"["com.amazon.sqs.javamessaging.MessageS3Pointer", {{"s3BucketName": "{bucket}", "s3Key": "{key}"}}]"#
    );
    let harness = Harness::new(config(&[]));
    let (failures, emf) = replay(&harness, &store, &legacy).await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(harness.segment.delivered_ids(), ["m-legacy"]);
    assert!(harness.dead.bodies.lock().unwrap().is_empty());
    assert_eq!(emf.total("Replayed"), 1.0, "{emf:?}");
}

/// The dead letter keeps the pointer so nothing is lost: once the object is back (restored
/// from a backup, say), `dlq redrive` and replay deliver it.
#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_payload_missing_dead_letter_is_delivered_once_the_object_is_restored() {
    let (_, store, pointer) = offloaded("restore", "m-restore").await;
    delete(&pointer, false).await;
    let harness = Harness::new(config(&[]));
    replay(&harness, &store, &pointer).await;
    let dead_letter = harness.dead.bodies.lock().unwrap().pop().expect("dead-lettered");

    let again = Harness::new(config(&[]));
    let (failures, _) = replay(&again, &store, &dead_letter).await;
    assert!(failures.is_empty());
    let back: Value = serde_json::from_str(&again.dead.bodies.lock().unwrap()[0]).unwrap();
    assert_eq!(back["reason"], "payload_missing", "still gone: back, pointer kept");
    assert_eq!(back["body"], pointer.as_str());

    store.put(&parked("m-restore")).await.unwrap();
    let restored = Harness::new(config(&[]));
    let (failures, _) = replay(&restored, &store, &dead_letter).await;
    assert!(failures.is_empty());
    assert_eq!(restored.segment.delivered_ids(), ["m-restore"]);
    assert!(restored.dead.bodies.lock().unwrap().is_empty());
}

/// Only a missing object or bucket is final: S3 that cannot be reached is a failure that may
/// pass, so its records are retried (within the bound) rather than dead-lettered at once.
#[tokio::test]
async fn an_s3_that_cannot_be_reached_is_a_failure_that_may_pass() {
    let unreachable = moto::client("http://127.0.0.1:9");
    let store = S3PayloadStore::new(unreachable, "payloads");
    let pointer = PayloadPointer {
        bucket: "payloads".into(),
        key: "k.json".into(),
    };
    let error = store.read(&pointer).await.unwrap_err();
    assert!(matches!(error, ReadError::Failed(_)), "{error:?}");
    assert!(!error.is_permanent());
}

/// Issue 21, case 4's class on real SQS: a pointer replay cannot follow (no bucket configured)
/// goes back to DeadLetterQueue with its `ExtendedPayloadSize` attribute, so AWS's extended
/// clients, and `dlq redrive` after them, still see a pointer.
#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_pointer_sent_back_unchanged_keeps_its_payload_size_attribute() {
    let (_, store, pointer) = offloaded("sendback", "m-sendback").await;
    drop(store);
    let sqs = common::sqs::client(&endpoint());
    let dead_url = moto::queues(&sqs, "sendback", &["dead"]).await.pop().unwrap();
    let harness = Harness::new(config(&[]));
    let replay = currents_segment::replay::Replay {
        payloads: None,
        dead_letters: Arc::new(currents_segment::park::SqsQueue::new(sqs.clone(), &dead_url)),
        ..harness.replay()
    };
    let event = common::sqs_event_with_attributes(&pointer, &[("ExtendedPayloadSize", "Number", "412")]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let response = replay.handle(event, deadline).await;
    assert!(response.batch_item_failures.is_empty());
    let held = moto::read_with_attributes(&sqs, &dead_url).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].0, pointer, "the pointer, unchanged");
    assert_eq!(held[0].1.get("ExtendedPayloadSize").map(String::as_str), Some("412"));
    assert_eq!(harness.segment.requests(), 0);
}
