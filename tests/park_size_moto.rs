//! Issue 21, case 5: `PARK_MESSAGE_MAX_BYTES` above the queue's own `MaximumMessageSize`.
//! moto refuses such a message with a whole-call `InvalidParameterValue` ("Message must be
//! shorter than 1024 bytes."). The bridge must split or offload what SQS refuses for size, read
//! the queue's limit at cold start, and answer Braze with its own short text, never an SDK
//! error. `scripts/test` starts moto and sets `SQS_ENDPOINT`; S3 is served on the same endpoint.

mod common;
#[path = "common/moto.rs"]
mod moto;

use std::sync::Arc;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;
use common::{FixedClock, bearer, config, counts, post};
use currents_segment::config::Config;
use currents_segment::ingest::Ingest;
use currents_segment::park::{PayloadPointer, PayloadStore, SqsQueue, decode, decode_resolving};
use currents_segment::segment::SegmentHttp;
use moto::endpoint;
use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// What PARK_MESSAGE_MAX_BYTES says: SQS's old default.
const CONFIGURED: usize = 262_144;
/// What the retry queue really takes: SQS's smallest limit.
const QUEUE_LIMIT: usize = 1_024;

struct Queues {
    sqs: Client,
    retry: String,
    dead: String,
}

impl Queues {
    /// A retry queue whose MaximumMessageSize is 1 KiB, and a dead-letter queue at the default.
    async fn new(test: &str) -> Self {
        let sqs = common::sqs::client(&endpoint());
        let name = |kind: &str| format!("{kind}-{test}-{}", fastrand::u32(..));
        let retry = sqs
            .create_queue()
            .queue_name(name("retry"))
            .attributes(QueueAttributeName::MaximumMessageSize, QUEUE_LIMIT.to_string())
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let dead = moto::queues(&sqs, test, &["dead"]).await.pop().unwrap();
        Self { sqs, retry, dead }
    }

    /// The production adapter over `url` as the wiring builds it, before its cold-start check.
    fn queue(&self, url: &str, store: Option<&Arc<dyn PayloadStore>>) -> SqsQueue {
        let queue = SqsQueue::new(self.sqs.clone(), url).with_max_message_bytes(CONFIGURED);
        match store {
            Some(store) => queue.with_payload_store(store.clone()),
            None => queue,
        }
    }

    fn ingest(&self, segment: &MockServer, retry_queue: SqsQueue, store: Option<&Arc<dyn PayloadStore>>) -> Ingest {
        let uri = segment.uri();
        let config: Arc<Config> = Arc::new(config(&[
            ("SEGMENT_ENDPOINT", uri.as_str()),
            ("PARK_MESSAGE_MAX_BYTES", "262144"),
        ]));
        Ingest {
            targets: Arc::new(config.routing.delivery_targets().unwrap()),
            segment: Arc::new(SegmentHttp::new(&config.segment).unwrap()),
            retry_queue: Arc::new(retry_queue),
            dead_letters: Arc::new(self.queue(&self.dead, store)),
            config,
            clock: FixedClock::at(1_764_000_000),
            policy: common::quick_policy(),
            key_health: common::settings::trusting_key_health(),
        }
    }

    /// Every body in `url`, read straight from moto until it is empty.
    async fn drain(&self, url: &str) -> Vec<String> {
        let mut bodies = Vec::new();
        loop {
            let output = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(300)
                .send()
                .await
                .unwrap();
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() {
                return bodies;
            }
            bodies.extend(messages.into_iter().filter_map(|m| m.body));
        }
    }
}

/// Segment is down: every batch answers 500.
async fn segment_down() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    server
}

fn event(id: &str, properties: &str) -> String {
    format!(
        r#"{{"event_type":"users.messages.email.Open","id":"{id}","time":1764000000,"user":{{"user_id":"b1","external_user_id":"u1"}},"properties":{properties}}}"#
    )
}

async fn post_events(ingest: &Ingest, events: &[String]) -> (u16, String) {
    let (auth, value) = bearer();
    let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
    let response = ingest.handle(post("/currents", &[(auth, &value)], body)).await;
    let text = String::from_utf8(response.body().as_ref().to_vec()).unwrap();
    (response.status().as_u16(), text)
}

/// The Currents ids of every Segment message in `bodies` (envelopes or S3 pointers).
async fn parked_ids(bodies: &[String], store: Option<&Arc<dyn PayloadStore>>) -> Vec<String> {
    let mut ids = Vec::new();
    for body in bodies {
        let envelope = decode_resolving(body, store.map(|s| &**s)).await.unwrap();
        for message in &envelope.messages {
            let message: Value = serde_json::from_str(message.get()).unwrap();
            ids.push(message["messageId"].as_str().unwrap().to_owned());
        }
    }
    ids.sort();
    ids
}

fn ids(events: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = events
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(e).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    ids
}

/// Twelve ordinary events: one envelope of about 6 KB at PARK_MESSAGE_MAX_BYTES, six times
/// what the queue takes.
fn ordinary_events() -> Vec<String> {
    (0..12)
        .map(|i| event(&format!("e-{i:02}"), r#"{"campaign_name":"spring"}"#))
        .collect()
}

/// The case as filed, without the cold-start check (as when it cannot read the attribute):
/// SQS refuses the envelope for its size; the adapter splits it, and every event is parked.
#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn an_envelope_the_queue_refuses_for_size_is_split_and_every_event_parked() {
    let queues = Queues::new("split").await;
    let segment = segment_down().await;
    let retry = queues.queue(&queues.retry, None);
    let ingest = queues.ingest(&segment, retry, None);
    let events = ordinary_events();
    // One event Segment would refuse (over 32 KB): dead-lettered as `message_too_large`.
    let big = event("big", &format!(r#"{{"blob":"{}"}}"#, "x".repeat(40_000)));
    let (status, answer) = post_events(&ingest, &[events.clone(), vec![big]].concat()).await;

    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(counts(&answer), (0, 12, 0, 1), "{answer}");
    let parked = queues.drain(&queues.retry).await;
    assert!(parked.len() > 1, "split into several messages");
    assert!(parked.iter().all(|b| b.len() <= QUEUE_LIMIT));
    assert_eq!(parked_ids(&parked, None).await, ids(&events), "each event parked once");
    let dead = queues.drain(&queues.dead).await;
    assert_eq!(dead.len(), 1);
    assert!(decode(&dead[0]).unwrap().last_error.starts_with("message_too_large"));
}

/// At cold start the adapter reads MaximumMessageSize and works to it, so nothing is refused.
#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn the_cold_start_check_lowers_the_limit_to_the_queues() {
    let queues = Queues::new("cold").await;
    let retry = queues.queue(&queues.retry, None).fit_to_queue().await;
    assert_eq!(retry.max_message_bytes(), QUEUE_LIMIT);
    let dead = queues.queue(&queues.dead, None).fit_to_queue().await;
    assert_eq!(
        dead.max_message_bytes(),
        CONFIGURED,
        "a queue at or above the setting changes nothing"
    );

    let segment = segment_down().await;
    let ingest = queues.ingest(&segment, retry, None);
    let events = ordinary_events();
    let (status, answer) = post_events(&ingest, &events).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(parked_ids(&queues.drain(&queues.retry).await, None).await, ids(&events));
}

/// A queue whose attributes cannot be read (here: an endpoint that answers AccessDenied)
/// keeps the configured limit rather than failing the cold start.
#[tokio::test]
async fn an_unreadable_queue_limit_keeps_the_configured_one() {
    let denied = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("x-amzn-query-error", "AccessDenied;Sender")
                .set_body_raw(
                    r#"{"__type":"com.amazon.coral.service#AccessDeniedException","message":"not authorized to perform: sqs:GetQueueAttributes"}"#,
                    "application/x-amz-json-1.0",
                ),
        )
        .mount(&denied)
        .await;
    let sqs = common::sqs::client(&denied.uri());
    let url = format!("{}/000000000000/retry", denied.uri());
    let queue = SqsQueue::new(sqs, url)
        .with_max_message_bytes(CONFIGURED)
        .fit_to_queue()
        .await;
    assert_eq!(queue.max_message_bytes(), CONFIGURED);
}

/// Posts one event whose Segment message (about 3 KB) is too large for the 1 KiB queue by
/// itself, with Segment down: the queues, the event, the answer's status and body.
async fn post_one_wide_event(test: &str, store: Option<&Arc<dyn PayloadStore>>) -> (Queues, Vec<String>, u16, String) {
    let queues = Queues::new(test).await;
    let segment = segment_down().await;
    let ingest = queues.ingest(&segment, queues.queue(&queues.retry, store), store);
    let events = vec![event("wide", &format!(r#"{{"note":"{}"}}"#, "w".repeat(3_000)))];
    let (status, answer) = post_events(&ingest, &events).await;
    (queues, events, status, answer)
}

/// One message too large for the queue by itself: with a bucket it goes to S3 and is parked.
#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn with_a_bucket_a_message_over_the_queues_limit_is_offloaded_and_parked() {
    let (_, store) = moto::store(&endpoint(), "size").await;
    let (queues, events, status, answer) = post_one_wide_event("offload", Some(&store)).await;

    assert_eq!(status, 200, "{answer}");
    let parked = queues.drain(&queues.retry).await;
    assert_eq!(parked.len(), 1);
    assert!(
        PayloadPointer::from_body(&parked[0]).is_some(),
        "a pointer: {}",
        parked[0]
    );
    assert_eq!(parked_ids(&parked, Some(&store)).await, ids(&events));
}

/// Without a bucket that message cannot be parked: 503, so Braze keeps the batch, with a body
/// of our own words. Before the fix the body quoted the AWS SDK's error, request id included.
#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_503_body_is_our_own_short_text_never_an_sdk_error() {
    let (_, _, status, answer) = post_one_wide_event("answer", None).await;

    assert_eq!(status, 503, "{answer}");
    let body: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(body["error"], "unavailable");
    assert_eq!(
        body["message"],
        "events could be neither delivered nor stored; resend the batch later"
    );
    for leak in [
        "request id",
        "RequestId",
        "request_id",
        "x-amz",
        "headers",
        "SendMessageBatch",
        "moto",
        "bytes",
    ] {
        assert!(!answer.contains(leak), "the answer leaks {leak:?}: {answer}");
    }
}
