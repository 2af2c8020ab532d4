//! The `dlq` operator tool against moto (SQS and S3): stats, peek, export and redrive read
//! without losing anything, and redrive deletes a dead letter only after RetryQueue took it.
//! Issue 11, failure 4: export includes S3-offloaded payloads whole.

mod common;
#[path = "common/moto.rs"]
mod moto;

use std::sync::Arc;

use aws_sdk_sqs::Client;
use common::RecordingQueue;
use currents_segment::dlq::{DlqCommand, DlqError, Ports, SqsDrain, run_with};
use currents_segment::park::{PayloadStore, SqsQueue, decode};
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

    async fn count(&self, url: &str) -> usize {
        moto::visible(&self.client, url).await
    }

    async fn run(&self, command: DlqCommand, retry: Option<&dyn Park>) -> Result<String, DlqError> {
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
    let retry = SqsQueue::new(queues.client.clone(), &queues.retry).with_payload_store(queues.store.clone());
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
