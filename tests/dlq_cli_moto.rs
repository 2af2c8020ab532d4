//! `dlq::run` with the production adapters, built from the environment as the CLI builds them:
//! SQS and S3 clients from the standard AWS settings (`scripts/test` exports `AWS_ENDPOINT_URL`
//! pointing at moto, and test credentials), queues and bucket from the arguments.

mod common;
#[path = "common/moto.rs"]
mod moto;

use currents_segment::dlq;
use currents_segment::park::{PayloadPointer, SqsQueue};
use currents_segment::ports::Park;
use serde_json::Value;

fn words(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| (*p).to_owned()).collect()
}

fn envelope(route: &str, padding: usize) -> String {
    format!(
        r#"{{"version":1,"route":"{route}","first_failed_at":"2026-01-01T00:00:00Z","reason":"permanent_failure","messages":[{{"messageId":"m","p":"{}"}}]}}"#,
        "p".repeat(padding)
    )
}

#[test]
#[ignore = "needs moto_server: run scripts/test"]
fn the_cli_entry_point_reads_offloaded_letters_and_redrives_them() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL must point at moto; run scripts/test"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sqs = common::sqs::client(&moto::endpoint());
    let (dead, retry, bucket, big) = runtime.block_on(async {
        let urls = moto::queues(&sqs, "cli", &["dead", "retry"]).await;
        let (bucket, store) = moto::store(&moto::endpoint(), "cli").await;
        let big = envelope("a", 300_000);
        let queue = SqsQueue::new(sqs.clone(), &urls[0]).with_payload_store(store);
        queue.park(&[big.clone(), envelope("b", 10)]).await.unwrap();
        (urls[0].clone(), urls[1].clone(), bucket, big)
    });
    let common_args = [
        "--queue-url",
        &dead,
        "--retry-queue-url",
        &retry,
        "--large-payload-bucket",
        &bucket,
    ];

    let mut out = Vec::new();
    let stats = dlq::parse(&words(&[&common_args[..], &["stats", "--json"]].concat())).unwrap();
    dlq::run_blocking(&stats, &mut out).unwrap();
    let stats: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        (stats["total"].as_u64(), stats["by_route"]["a"].as_u64()),
        (Some(2), Some(1))
    );

    let mut out = Vec::new();
    let redrive = dlq::parse(&words(&[&common_args[..], &["redrive", "--route", "a"]].concat())).unwrap();
    dlq::run_blocking(&redrive, &mut out).unwrap();
    let report: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["moved"], 1);

    runtime.block_on(async {
        assert_eq!(
            (moto::visible(&sqs, &dead).await, moto::visible(&sqs, &retry).await),
            (1, 1)
        );
        let moved = common::sqs::receive_all(&sqs, &retry, false).await;
        let body = moved[0].body.clone().unwrap();
        let pointer = PayloadPointer::from_body(&body).expect("the pointer moves as it is");
        assert_eq!(pointer.bucket, bucket);
        let object = moto::client(&moto::endpoint())
            .get_object()
            .bucket(&pointer.bucket)
            .key(&pointer.key)
            .send()
            .await
            .unwrap();
        let bytes = object.body.collect().await.unwrap().into_bytes();
        assert_eq!(
            bytes.as_ref(),
            big.as_bytes(),
            "the payload in S3 is the envelope, whole"
        );
    });
}
