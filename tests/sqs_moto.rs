//! Parking and replay against a real SQS-compatible server (moto). `scripts/test` starts
//! `moto_server` on a free loopback port and sets `SQS_ENDPOINT`; Segment is wiremock.

mod common;
#[path = "common/moto.rs"]
mod moto;

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::Client;
use common::{FixedClock, TOKEN, bearer, config, counts, fixture, post};
use currents_segment::config::Config;
use currents_segment::ingest::Ingest;
use currents_segment::park::SqsQueue;
use currents_segment::replay::Replay;
use currents_segment::segment::{RetryPolicy, SegmentHttp};
use serde_json::{Value, json};
use tokio::time::Instant;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// How many events the sample batch (`all-events.json`) holds.
fn fixture_len() -> usize {
    let fixture: serde_json::Value = serde_json::from_slice(&fixture("all-events.json")).unwrap();
    fixture["events"].as_array().unwrap().len()
}

fn endpoint() -> String {
    std::env::var("SQS_ENDPOINT").expect("SQS_ENDPOINT must point at moto_server; run scripts/test")
}

struct Queues {
    client: Client,
    retry_url: String,
    dead_url: String,
}

impl Queues {
    async fn create(test: &str) -> Self {
        let client = common::sqs::client(&endpoint());
        let suffix = format!("{test}-{}", fastrand::u32(..));
        let create = |name: String| {
            let client = client.clone();
            async move {
                client
                    .create_queue()
                    .queue_name(name)
                    .send()
                    .await
                    .unwrap()
                    .queue_url
                    .unwrap()
            }
        };
        let retry_url = create(format!("retry-{suffix}")).await;
        let dead_url = create(format!("dead-{suffix}")).await;
        Self {
            client,
            retry_url,
            dead_url,
        }
    }

    async fn receive(&self, url: &str) -> Vec<SqsMessage> {
        common::sqs::receive_all(&self.client, url, false).await
    }

    async fn receive_once(&self, url: &str, visibility: Option<i32>) -> Vec<SqsMessage> {
        common::sqs::receive_once(&self.client, url, visibility).await
    }

    async fn visible(&self, url: &str) -> usize {
        moto::visible(&self.client, url).await
    }

    fn config(&self, segment: &MockServer, extra: &[(&str, &str)]) -> Config {
        let mut vars = vec![
            ("SEGMENT_ENDPOINT", segment.uri()),
            ("RETRY_QUEUE_URL", self.retry_url.clone()),
            ("DEAD_LETTER_QUEUE_URL", self.dead_url.clone()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        config(&borrowed)
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        request_timeout: Duration::from_secs(2),
    }
}

fn ingest(config: &Arc<Config>, client: &Client, [retry, dead]: [&str; 2], clock: &Arc<FixedClock>) -> Ingest {
    Ingest {
        config: config.clone(),
        targets: Arc::new(config.routing.delivery_targets().unwrap()),
        segment: Arc::new(SegmentHttp::new(&config.segment).unwrap()),
        retry_queue: Arc::new(SqsQueue::new(client.clone(), retry)),
        dead_letters: Arc::new(SqsQueue::new(client.clone(), dead)),
        clock: clock.clone(),
        policy: policy(),
        key_health: common::settings::trusting_key_health(),
    }
}

fn replay(config: &Arc<Config>, client: &Client, [retry, dead]: [&str; 2], clock: &Arc<FixedClock>) -> Replay {
    Replay {
        config: config.clone(),
        payloads: None,
        targets: Arc::new(config.routing.delivery_targets().unwrap()),
        segment: Arc::new(SegmentHttp::new(&config.segment).unwrap()),
        dead_letters: Arc::new(SqsQueue::new(client.clone(), dead)),
        retry_queue: Arc::new(SqsQueue::new(client.clone(), retry)),
        requeue: Arc::new(SqsQueue::new(client.clone(), retry)),
        clock: clock.clone(),
        policy: policy(),
        key_health: common::settings::trusting_key_health(),
    }
}

async fn segment_answering(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

async fn post_batch(ingest: &Ingest, body: Vec<u8>) -> (u16, Value) {
    let (auth, value) = bearer();
    let response = ingest.handle(post("/currents", &[(auth, &value)], body)).await;
    (
        response.status().as_u16(),
        serde_json::from_slice(response.body().as_ref()).unwrap(),
    )
}

fn event(records: Vec<SqsMessage>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = records;
    event
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn segment_down_parks_in_sqs_and_replay_delivers_each_message_once() {
    let queues = Queues::create("roundtrip").await;
    let clock = FixedClock::at(1_764_000_000);
    let down = segment_answering(503).await;
    let config = Arc::new(queues.config(&down, &[]));
    let (status, body) = post_batch(
        &ingest(&config, &queues.client, [&queues.retry_url, &queues.dead_url], &clock),
        fixture("all-events.json"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&body), (0, fixture_len() as u64, 0, 0));

    let up = segment_answering(200).await;
    let config = Arc::new(queues.config(&up, &[]));
    let records = queues.receive(&queues.retry_url).await;
    assert!(!records.is_empty());
    clock.advance(Duration::from_secs(600));
    let response = replay(&config, &queues.client, [&queues.retry_url, &queues.dead_url], &clock)
        .handle(event(records.clone()), Instant::now() + Duration::from_secs(10))
        .await;
    assert!(response.batch_item_failures.is_empty());
    common::sqs::delete_all(&queues.client, &queues.retry_url, &records).await;
    let mut ids = common::delivered_ids(&up, 0).await;
    assert_eq!(ids.len(), fixture_len());
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), fixture_len(), "each messageId exactly once");
    assert_eq!(queues.visible(&queues.dead_url).await, 0);
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn still_down_the_record_fails_and_its_visibility_is_extended() {
    let queues = Queues::create("stilldown").await;
    let clock = FixedClock::at(1_764_000_000);
    let down = segment_answering(500).await;
    let config = Arc::new(queues.config(&down, &[]));
    post_batch(
        &ingest(&config, &queues.client, [&queues.retry_url, &queues.dead_url], &clock),
        fixture("all-events.json"),
    )
    .await;
    // Received with no visibility timeout of its own: only replay's postpone can hide it now.
    let records = queues.receive_once(&queues.retry_url, Some(0)).await;
    assert_eq!(records.len(), 1);
    let ids: Vec<String> = records.iter().map(|r| r.message_id.clone().unwrap()).collect();
    let response = replay(&config, &queues.client, [&queues.retry_url, &queues.dead_url], &clock)
        .handle(event(records), Instant::now() + Duration::from_secs(10))
        .await;
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, ids);
    // The visibility was changed to 60 s: nothing comes back right away.
    assert!(queues.receive_once(&queues.retry_url, Some(0)).await.is_empty());
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn an_expired_record_goes_to_the_dead_letter_queue_and_never_to_segment() {
    let queues = Queues::create("expired").await;
    let clock = FixedClock::at(1_764_000_000);
    let down = segment_answering(503).await;
    post_batch(
        &ingest(
            &Arc::new(queues.config(&down, &[])),
            &queues.client,
            [&queues.retry_url, &queues.dead_url],
            &clock,
        ),
        fixture("all-events.json"),
    )
    .await;
    let up = segment_answering(200).await;
    let config = Arc::new(queues.config(&up, &[]));
    clock.advance(Duration::from_secs(48 * 3600));
    let records = queues.receive(&queues.retry_url).await;
    let response = replay(&config, &queues.client, [&queues.retry_url, &queues.dead_url], &clock)
        .handle(event(records), Instant::now() + Duration::from_secs(10))
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert!(
        up.received_requests().await.unwrap().is_empty(),
        "Segment never sees it"
    );
    let dead = queues.receive(&queues.dead_url).await;
    let envelope: Value = serde_json::from_str(dead[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(envelope["reason"], "expired");
    assert_eq!(envelope["messages"].as_array().unwrap().len(), fixture_len());
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn sqs_unreachable_during_ingest_answers_503() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    drop(listener);
    let client = common::sqs::client(&closed);
    let down = segment_answering(503).await;
    let url = format!("{closed}/123456789012/retry");
    let config = Arc::new(config(&[
        ("SEGMENT_ENDPOINT", down.uri().as_str()),
        ("RETRY_QUEUE_URL", url.as_str()),
        ("DEAD_LETTER_QUEUE_URL", url.as_str()),
    ]));
    let clock = FixedClock::at(1_764_000_000);
    let (status, body) = post_batch(
        &ingest(&config, &client, [&url, &url], &clock),
        fixture("all-events.json"),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (503, Some("unavailable")));
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn invalid_events_arrive_in_the_dead_letter_queue_with_their_raw_event() {
    let queues = Queues::create("invalid").await;
    let up = segment_answering(200).await;
    let config = Arc::new(queues.config(&up, &[]));
    let (status, body) = post_batch(
        &ingest(
            &config,
            &queues.client,
            [&queues.retry_url, &queues.dead_url],
            &FixedClock::at(1_764_000_000),
        ),
        fixture("mixed-batch.json"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(counts(&body), (2, 0, 2, 6));
    let dead = queues.receive(&queues.dead_url).await;
    let envelopes: Vec<Value> = dead
        .iter()
        .map(|r| serde_json::from_str(r.body.as_deref().unwrap()).unwrap())
        .collect();
    assert!(envelopes.iter().all(|e| e["reason"] == "invalid_event"));
    let events: Vec<&Value> = envelopes.iter().flat_map(|e| e["events"].as_array().unwrap()).collect();
    assert_eq!(events.len(), 6);
    assert!(
        events
            .iter()
            .any(|e| e["id"] == "mixed-ms-time" && e["time"] == json!(1_764_000_000_000_i64))
    );
    let raw = dead.iter().map(|r| r.body.clone().unwrap()).collect::<String>();
    assert!(!raw.contains(TOKEN) && !raw.contains(common::WRITE_KEY));
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn oversized_parking_splits_across_sqs_messages_and_batches() {
    let queues = Queues::create("oversized").await;
    let down = segment_answering(503).await;
    let config = Arc::new(queues.config(&down, &[("PARK_MESSAGE_MAX_BYTES", "65536")]));
    // 60 events of about 25 KB: two per 64 KiB envelope, 30 envelopes, 3 SendMessageBatch calls.
    let template: Value = serde_json::from_slice(&fixture("all-events.json")).unwrap();
    let events: Vec<Value> = (0..60)
        .map(|i| {
            let mut event = template["events"][4].clone();
            event["id"] = json!(format!("big-{i}"));
            event["properties"]["padding"] = json!("p".repeat(25_000));
            event
        })
        .collect();
    let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
    let (status, answer) = post_batch(
        &ingest(
            &config,
            &queues.client,
            [&queues.retry_url, &queues.dead_url],
            &FixedClock::at(1_764_000_000),
        ),
        body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(counts(&answer), (0, 60, 0, 0));
    let records = queues.receive(&queues.retry_url).await;
    assert_eq!(records.len(), 30);
    let mut ids: Vec<String> = records
        .iter()
        .flat_map(|r| {
            let envelope: Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
            assert!(r.body.as_ref().unwrap().len() <= 65_536);
            envelope["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["messageId"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 60, "every parked message is in exactly one envelope");
}
