//! The `dlq` operator tool against moto (SQS and S3): stats, peek, export and redrive read
//! without losing anything, and redrive deletes a dead letter only after RetryQueue took it.
//! Issue 11, failure 4: export includes S3-offloaded payloads whole. Issue 21, cases 3 and 4:
//! redrive keeps message attributes (a pointer stays a pointer for AWS's extended clients),
//! both pointer formats are followed, and a pointer whose object is gone is counted, not fatal.

mod common;
#[path = "common/moto.rs"]
mod moto;

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageAttributeValue;
use common::RecordingQueue;
use currents_segment::dlq::{DlqCommand, DlqError, Ports, Requeue, SqsDrain, SqsRequeue, run_with};
use currents_segment::park::{
    LEGACY_PAYLOAD_SIZE_ATTRIBUTE, PAYLOAD_SIZE_ATTRIBUTE, PayloadPointer, PayloadStore, SqsQueue, decode,
};
use currents_segment::ports::Park;
use moto::endpoint;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn now() -> OffsetDateTime {
    OffsetDateTime::parse("2026-01-08T00:00:00Z", &Rfc3339).unwrap()
}

struct Queues {
    client: Client,
    dead: String,
    retry: String,
    store: Arc<dyn PayloadStore>,
    big: String,
}

impl Queues {
    /// A DeadLetterQueue holding: two `invalid_event` events on route a, one
    /// `permanent_failure` message on route b, one offloaded 400 KB envelope on route a, and
    /// one body that is not an envelope.
    async fn filled(test: &str) -> Self {
        let client = common::sqs::client(&endpoint());
        let mut urls = moto::queues(&client, test, &["dead", "retry"]).await;
        let (_, store) = moto::store(&endpoint(), test).await;
        let big = format!(
            r#"{{"version":1,"route":"a","first_failed_at":"2026-01-07T23:30:00Z","reason":"invalid_event","last_error":"message_too_large","events":[{{"id":"big","p":"{}"}}]}}"#,
            "z".repeat(400_000)
        );
        let bodies = vec![
            r#"{"version":1,"route":"a","first_failed_at":"2026-01-07T23:30:00Z","reason":"invalid_event","events":[{"id":"e1","properties":{"email_address":"ann@example.com"}},{"id":"e2"}]}"#.to_owned(),
            r#"{"version":1,"route":"b","first_failed_at":"2026-01-01T00:00:00Z","reason":"permanent_failure","messages":[{"userId":"u-secret","messageId":"m1"}]}"#.to_owned(),
            big.clone(),
            "not an envelope".to_owned(),
        ];
        let queue = SqsQueue::new(client.clone(), &urls[0]).with_payload_store(store.clone());
        queue.park(&bodies).await.unwrap();
        Self {
            client,
            retry: urls.pop().unwrap(),
            dead: urls.pop().unwrap(),
            store,
            big,
        }
    }

    /// `dlq redrive` of everything, without a new window; its JSON report.
    async fn redrive_all(&self, retry: &dyn Requeue) -> Value {
        let redrive = DlqCommand::Redrive {
            reason: None,
            route: None,
            limit: None,
            dry_run: false,
            reset_window: false,
        };
        serde_json::from_str(&self.run(redrive, Some(retry)).await.unwrap()).unwrap()
    }

    async fn count(&self, url: &str) -> usize {
        moto::visible(&self.client, url).await
    }

    async fn run(&self, command: DlqCommand, retry: Option<&dyn Requeue>) -> Result<String, DlqError> {
        let drain = SqsDrain::new(self.client.clone(), &self.dead);
        let ports = Ports {
            dead_letters: &drain,
            retry,
            store: Some(&*self.store),
            max_messages: 1_000,
        };
        let mut out = Vec::new();
        run_with(&command, &ports, now(), &mut out).await?;
        Ok(String::from_utf8(out).unwrap())
    }
}

fn number(value: usize) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(value.to_string())
        .build()
        .unwrap()
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn stats_peek_and_export_read_everything_and_remove_nothing() {
    let queues = Queues::filled("read").await;
    let stats: Value =
        serde_json::from_str(&queues.run(DlqCommand::Stats { json: true }, None).await.unwrap()).unwrap();
    assert_eq!(stats["total"], 4);
    assert_eq!(stats["events"], 5);
    assert_eq!(
        stats["by_reason"],
        serde_json::json!({"invalid_event": 3, "permanent_failure": 1, "not_an_envelope": 1})
    );
    assert_eq!(stats["by_route"], serde_json::json!({"a": 3, "b": 1, "unknown": 1}));
    assert_eq!(stats["oldest_first_failed_at"], "2026-01-01T00:00:00Z");
    assert_eq!(queues.count(&queues.dead).await, 4, "stats removes nothing");

    let peeked = queues
        .run(DlqCommand::Peek { n: 4, show_pii: false }, None)
        .await
        .unwrap();
    assert_eq!(peeked.lines().count(), 4);
    assert!(
        !peeked.contains("ann@example.com") && !peeked.contains("u-secret"),
        "{}",
        &peeked[..300]
    );
    let shown = queues
        .run(DlqCommand::Peek { n: 4, show_pii: true }, None)
        .await
        .unwrap();
    assert!(shown.contains("ann@example.com"));
    let two = queues
        .run(DlqCommand::Peek { n: 2, show_pii: false }, None)
        .await
        .unwrap();
    assert_eq!(two.lines().count(), 2);

    let file = std::env::temp_dir().join(format!("dlq-export-{}.jsonl", fastrand::u32(..)));
    queues
        .run(DlqCommand::Export { file: file.clone() }, None)
        .await
        .unwrap();
    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    std::fs::remove_file(&file).unwrap();
    assert_eq!(lines.len(), 4);
    let offloaded: Vec<&Value> = lines.iter().filter(|l| !l["s3_pointer"].is_null()).collect();
    assert_eq!(offloaded.len(), 1);
    assert_eq!(offloaded[0]["body"], queues.big.as_str(), "the S3 payload, whole");
    assert!(lines.iter().any(|l| l["body"] == "not an envelope"));
    assert_eq!(queues.count(&queues.dead).await, 4, "export removes nothing");
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn redrive_moves_what_matches_and_deletes_only_after_retryqueue_took_it() {
    let queues = Queues::filled("redrive").await;
    let retry = SqsRequeue::new(queues.client.clone(), &queues.retry, Some(queues.store.clone()));
    let redrive = |reason: &str, limit, dry_run, reset_window| DlqCommand::Redrive {
        reason: Some(reason.to_owned()),
        route: Some("a".to_owned()),
        limit,
        dry_run,
        reset_window,
    };

    let dry: Value = serde_json::from_str(
        &queues
            .run(redrive("invalid_event", None, true, false), Some(&retry))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!((dry["moved"].as_u64(), dry["events"].as_u64()), (Some(2), Some(3)));
    assert_eq!(
        (queues.count(&queues.dead).await, queues.count(&queues.retry).await),
        (4, 0)
    );

    let refusing = RecordingQueue::new();
    refusing.refuse_next(1);
    let error = queues
        .run(redrive("invalid_event", None, false, false), Some(&*refusing))
        .await
        .unwrap_err();
    assert!(matches!(error, DlqError::Queue(_)), "{error}");
    assert_eq!(
        queues.count(&queues.dead).await,
        4,
        "nothing deleted that RetryQueue refused"
    );

    let one: Value = serde_json::from_str(
        &queues
            .run(redrive("invalid_event", Some(1), false, true), Some(&retry))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(one["moved"], 1);
    assert_eq!(
        (queues.count(&queues.dead).await, queues.count(&queues.retry).await),
        (3, 1)
    );
    let moved = common::sqs::receive_all(&queues.client, &queues.retry, false).await;
    let body = moved[0].body.clone().unwrap();
    let envelope = currents_segment::park::decode_resolving(&body, Some(&*queues.store))
        .await
        .unwrap();
    assert_eq!(envelope.first_failed_at, now(), "--reset-window restarts the clock");
    assert_eq!(envelope.reason.map(|r| r.as_str()), Some("invalid_event"));

    let rest: Value = serde_json::from_str(
        &queues
            .run(redrive("invalid_event", None, false, false), Some(&retry))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(rest["moved"], 1);
    assert_eq!(
        queues.count(&queues.dead).await,
        2,
        "permanent_failure on b and the non-envelope stay"
    );
    assert!(decode("not an envelope").is_err());
}

/// Issue 21, case 4: a redriven offloaded dead letter keeps its `ExtendedPayloadSize`, so
/// AWS's extended clients still read it as a pointer; a legacy pointer (as AWS's Python client
/// writes it) is followed by `stats` and keeps `SQSLargePayloadSize` and any other attribute.
#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn redrive_keeps_message_attributes_so_pointers_stay_pointers() {
    let client = common::sqs::client(&endpoint());
    let urls = moto::queues(&client, "attributes", &["dead", "retry"]).await;
    let (bucket, store) = moto::store(&endpoint(), "attributes").await;
    let big = format!(
        r#"{{"version":1,"route":"a","first_failed_at":"2026-01-07T23:30:00Z","reason":"invalid_event","events":[{{"id":"big","p":"{}"}}]}}"#,
        "z".repeat(300_000)
    );
    let dead = SqsQueue::new(client.clone(), &urls[0]).with_payload_store(store.clone());
    dead.park(std::slice::from_ref(&big)).await.unwrap();
    let legacy_envelope = r#"{"version":1,"route":"b","first_failed_at":"2026-01-07T23:00:00Z","reason":"permanent_failure","messages":[{"messageId":"m1"}]}"#;
    let key = store.put(legacy_envelope).await.unwrap().key;
    let legacy = format!(
        r#"["com.amazon.sqs.javamessaging.MessageS3Pointer", {{"s3BucketName": "{bucket}", "s3Key": "{key}"}}]"#
    );
    client
        .send_message()
        .queue_url(&urls[0])
        .message_body(&legacy)
        .message_attributes(LEGACY_PAYLOAD_SIZE_ATTRIBUTE, number(legacy_envelope.len()))
        .message_attributes(
            "tenant",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("t-1")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let queues = Queues {
        client: client.clone(),
        dead: urls[0].clone(),
        retry: urls[1].clone(),
        store: store.clone(),
        big: big.clone(),
    };

    let stats: Value =
        serde_json::from_str(&queues.run(DlqCommand::Stats { json: true }, None).await.unwrap()).unwrap();
    assert_eq!(
        stats["by_route"],
        serde_json::json!({"a": 1, "b": 1}),
        "the legacy pointer is followed: {stats}"
    );

    let retry = SqsRequeue::new(client.clone(), &urls[1], Some(store.clone()));
    let report = queues.redrive_all(&retry).await;
    assert_eq!(report["moved"], 2, "{report}");
    let mut moved = moto::read_with_attributes(&client, &urls[1]).await;
    moved.sort_by_key(|(body, _)| body.contains("MessageS3Pointer"));
    let (current, legacy_moved) = (&moved[0], &moved[1]);
    assert!(PayloadPointer::from_body(&current.0).is_some());
    assert_eq!(
        current.1,
        HashMap::from([(PAYLOAD_SIZE_ATTRIBUTE.to_owned(), big.len().to_string())])
    );
    assert_eq!(legacy_moved.0, legacy, "moved byte for byte");
    assert_eq!(
        legacy_moved.1,
        HashMap::from([
            (
                LEGACY_PAYLOAD_SIZE_ATTRIBUTE.to_owned(),
                legacy_envelope.len().to_string()
            ),
            ("tenant".to_owned(), "t-1".to_owned()),
        ])
    );
}

/// Issue 21, case 3, in the operator tool: a dead letter whose S3 object is gone is counted as
/// `payload_missing` and exported as its pointer; it does not stop `stats`, `export` or
/// `redrive`, and it is never moved or deleted.
#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_dangling_pointer_in_the_dlq_is_counted_and_kept_not_fatal() {
    let queues = Queues::filled("dangling").await;
    let pointer = queues.store.put("{}").await.unwrap();
    let s3 = moto::client(&endpoint());
    s3.delete_object()
        .bucket(&pointer.bucket)
        .key(&pointer.key)
        .send()
        .await
        .unwrap();
    let dangling = pointer.to_body();
    queues
        .client
        .send_message()
        .queue_url(&queues.dead)
        .message_body(&dangling)
        .message_attributes(PAYLOAD_SIZE_ATTRIBUTE, number(2))
        .send()
        .await
        .unwrap();

    let stats: Value =
        serde_json::from_str(&queues.run(DlqCommand::Stats { json: true }, None).await.unwrap()).unwrap();
    assert_eq!(stats["total"], 5);
    assert_eq!(stats["by_reason"]["payload_missing"], 1, "{stats}");

    let file = std::env::temp_dir().join(format!("dlq-dangling-{}.jsonl", fastrand::u32(..)));
    queues
        .run(DlqCommand::Export { file: file.clone() }, None)
        .await
        .unwrap();
    let exported = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let line = exported
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["body"] == dangling.as_str())
        .expect("exported as its pointer");
    assert_eq!(line["s3_pointer"]["s3Key"], pointer.key.as_str());

    let retry = SqsRequeue::new(queues.client.clone(), &queues.retry, Some(queues.store.clone()));
    let report = queues.redrive_all(&retry).await;
    assert_eq!(report["moved"], 3, "{report}");
    assert_eq!(
        queues.count(&queues.dead).await,
        2,
        "the dangling pointer and the non-envelope stay"
    );
}
