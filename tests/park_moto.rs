//! Issue 11, failures 4 and 5, against moto behind a proxy that enforces SQS's character rule
//! (moto does not), with S3 on moto too. `scripts/test` starts moto and sets `SQS_ENDPOINT`;
//! S3 is served on the same endpoint.

mod common;
#[path = "common/moto.rs"]
mod moto;
#[path = "common/sqs_rules.rs"]
mod sqs_rules;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::Client;
use common::{FixedClock, bearer, config, counts, post};
use currents_segment::config::Config;
use currents_segment::ingest::Ingest;
use currents_segment::park::{
    PAYLOAD_SIZE_ATTRIBUTE, PayloadPointer, PayloadStore, SqsQueue, decode, decode_resolving,
};
use currents_segment::ports::Park;
use currents_segment::segment::{RetryPolicy, SegmentHttp};
use moto::endpoint;
use serde_json::Value;
use sqs_rules::{Rule, RuleProxy};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Setup {
    moto: Client,
    proxied: Client,
    proxy: RuleProxy,
    retry_url: String,
    dead_url: String,
}

impl Setup {
    async fn new(test: &str, rule: Rule) -> Self {
        let moto = common::sqs::client(&endpoint());
        let proxy = RuleProxy::start(&endpoint(), rule).await;
        let proxied = common::sqs::client(&proxy.uri());
        let mut urls = moto::queues(&moto, test, &["retry", "dead"]).await;
        Self {
            moto,
            proxied,
            proxy,
            dead_url: urls.pop().unwrap(),
            retry_url: urls.pop().unwrap(),
        }
    }

    fn queue(&self, url: &str, store: Option<&Arc<dyn PayloadStore>>) -> SqsQueue {
        let queue = SqsQueue::new(self.proxied.clone(), url);
        match store {
            Some(store) => queue.with_payload_store(store.clone()),
            None => queue,
        }
    }

    fn ingest(&self, segment: &MockServer, store: Option<&Arc<dyn PayloadStore>>) -> Ingest {
        let uri = segment.uri();
        let config: Arc<Config> = Arc::new(config(&[
            ("SEGMENT_ENDPOINT", uri.as_str()),
            ("RETRY_QUEUE_URL", self.retry_url.as_str()),
            ("DEAD_LETTER_QUEUE_URL", self.dead_url.as_str()),
        ]));
        Ingest {
            targets: Arc::new(config.routing.delivery_targets().unwrap()),
            segment: Arc::new(SegmentHttp::new(&config.segment).unwrap()),
            retry_queue: Arc::new(self.queue(&self.retry_url, store)),
            dead_letters: Arc::new(self.queue(&self.dead_url, store)),
            config,
            clock: FixedClock::at(1_764_000_000),
            policy: RetryPolicy {
                max_attempts: 1,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(5),
                request_timeout: Duration::from_secs(2),
            },
            key_health: common::settings::trusting_key_health(),
        }
    }

    /// Every message in `url`, body and message attribute names, read straight from moto.
    async fn read(&self, url: &str) -> Vec<(String, Vec<String>)> {
        moto::read_with_attributes(&self.moto, url)
            .await
            .into_iter()
            .map(|(body, attributes)| (body, attributes.into_keys().collect()))
            .collect()
    }
}

async fn segment(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

fn event(id: &str, user: &str, properties: &str) -> String {
    format!(
        r#"{{"event_type":"users.messages.email.Open","id":"{id}","time":1764000000,"user":{{"user_id":"b1","external_user_id":"{user}"}},"properties":{properties}}}"#
    )
}

async fn post_events(ingest: &Ingest, events: &[String]) -> (u16, Value) {
    let (auth, value) = bearer();
    let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
    let response = ingest.handle(post("/currents", &[(auth, &value)], body)).await;
    (
        response.status().as_u16(),
        serde_json::from_slice(response.body().as_ref()).unwrap(),
    )
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn the_proxy_refuses_what_sqs_refuses() {
    let setup = Setup::new("rule", Rule::SqsCharacters).await;
    let entry = |id: &str, body: &str| {
        aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
            .id(id)
            .message_body(body)
            .build()
            .unwrap()
    };
    let output = setup
        .proxied
        .send_message_batch()
        .queue_url(&setup.dead_url)
        .entries(entry("0", "ok \u{FFFD}"))
        .entries(entry("1", "bad \u{FFFF}"))
        .send()
        .await
        .unwrap();
    assert_eq!(output.successful().len(), 1);
    assert_eq!(output.failed()[0].code(), "InvalidMessageContents");
    assert!(output.failed()[0].sender_fault());
    assert_eq!(setup.proxy.refusals(), 1);
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_raw_uffff_in_an_invalid_event_is_dead_lettered_and_the_answer_is_200() {
    let setup = Setup::new("uffff-dead", Rule::SqsCharacters).await;
    let segment = segment(200).await;
    let ingest = setup.ingest(&segment, None);
    let good = event("good", "u1", r#"{"campaign_name":"c"}"#);
    let invalid = event("bad", "u1", "{\"note\":\"a\u{FFFF}b\"}").replace("1764000000", "1764000000123");
    let (status, answer) = post_events(&ingest, &[good, invalid]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(counts(&answer), (1, 0, 0, 1));
    assert_eq!(setup.proxy.refusals(), 0);
    let stored = setup.read(&setup.dead_url).await;
    assert_eq!(stored.len(), 1);
    let envelope = decode(&stored[0].0).unwrap();
    let kept: Value = serde_json::from_str(envelope.events[0].get()).unwrap();
    assert_eq!(kept["properties"]["note"], "a\u{FFFF}b", "lossless");
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_uffff_external_user_id_is_parked_for_replay() {
    let setup = Setup::new("uffff-park", Rule::SqsCharacters).await;
    let segment = segment(503).await;
    let ingest = setup.ingest(&segment, None);
    let (status, answer) = post_events(&ingest, &[event("e1", "user-\\uffff-7", "{}")]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(counts(&answer), (0, 1, 0, 0));
    let stored = setup.read(&setup.retry_url).await;
    assert_eq!(stored.len(), 1);
    assert!(stored[0].0.contains(r"user-\uffff-7"));
    let message: Value = serde_json::from_str(decode(&stored[0].0).unwrap().messages[0].get()).unwrap();
    assert_eq!(message["userId"], "user-\u{FFFF}-7", "Segment gets the same user id");
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_sender_fault_falls_back_to_ascii_then_to_s3_and_never_loops() {
    let body = r#"{"version":1,"route":"default","first_failed_at":"2026-01-01T00:00:00Z","messages":[{"p":"é😀"}]}"#;
    let ascii = Setup::new("ascii", Rule::AsciiOnly).await;
    ascii
        .queue(&ascii.dead_url, None)
        .park(&[body.to_owned()])
        .await
        .unwrap();
    assert_eq!(ascii.proxy.refusals(), 1);
    let stored = ascii.read(&ascii.dead_url).await;
    assert!(stored[0].0.is_ascii());
    assert_eq!(
        serde_json::from_str::<Value>(&stored[0].0).unwrap(),
        serde_json::from_str::<Value>(body).unwrap()
    );

    let s3 = Setup::new("pointers", Rule::PointersOnly).await;
    let (bucket, store) = moto::store(&endpoint(), "fallback").await;
    s3.queue(&s3.dead_url, Some(&store))
        .park(&[body.to_owned()])
        .await
        .unwrap();
    let stored = s3.read(&s3.dead_url).await;
    let pointer = PayloadPointer::from_body(&stored[0].0).expect("a pointer");
    assert_eq!(pointer.bucket, bucket);
    assert!(stored[0].1.contains(&PAYLOAD_SIZE_ATTRIBUTE.to_owned()));
    let back = decode_resolving(&stored[0].0, Some(&*store)).await.unwrap();
    let message: Value = serde_json::from_str(back.messages[0].get()).unwrap();
    assert_eq!(message["p"], "é😀", "the same value, whatever escapes carry it");

    let refusals = s3.proxy.refusals();
    let error = s3
        .queue(&s3.retry_url, None)
        .park(&[body.to_owned()])
        .await
        .unwrap_err();
    assert!(error.reason.contains("InvalidMessageContents"), "{error}");
    assert!(s3.proxy.refusals() - refusals <= 2, "one try per form, no loop");
}

fn huge_event(id: &str) -> String {
    event(id, "u1", &format!(r#"{{"blob":"{}"}}"#, "x".repeat(900 * 1024)))
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_900_kb_event_is_dead_lettered_whole_through_s3() {
    let setup = Setup::new("big", Rule::SqsCharacters).await;
    let (bucket, store) = moto::store(&endpoint(), "big").await;
    let segment = segment(200).await;
    let ingest = setup.ingest(&segment, Some(&store));
    let big = huge_event("big");
    let (status, answer) = post_events(&ingest, &[event("small", "u1", "{}"), big.clone()]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(counts(&answer), (1, 0, 0, 1));
    let stored = setup.read(&setup.dead_url).await;
    assert_eq!(stored.len(), 1);
    let (body, attributes) = &stored[0];
    assert!(body.starts_with(r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":""#));
    assert_eq!(PayloadPointer::from_body(body).unwrap().bucket, bucket);
    assert_eq!(attributes, &[PAYLOAD_SIZE_ATTRIBUTE.to_owned()]);
    let envelope = decode_resolving(body, Some(&*store)).await.unwrap();
    assert_eq!(envelope.events[0].get(), big, "stored whole, byte for byte");
    assert!(envelope.last_error.starts_with("message_too_large"));
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn without_a_bucket_a_900_kb_event_is_cut_to_an_excerpt_and_the_request_succeeds() {
    let setup = Setup::new("big-nobucket", Rule::SqsCharacters).await;
    let segment = segment(200).await;
    let ingest = setup.ingest(&segment, None);
    let (status, answer) = post_events(&ingest, &[huge_event("big")]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(counts(&answer), (0, 0, 0, 1));
    let stored = setup.read(&setup.dead_url).await;
    let envelope = decode(&stored[0].0).unwrap();
    let excerpt: String = serde_json::from_str(envelope.events[0].get()).unwrap();
    assert!(excerpt.starts_with("[truncated: event was 921"), "{}", &excerpt[..60]);
    assert!(stored[0].0.len() <= 262_144);
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_queue_smaller_than_configured_gets_a_cut_copy_not_a_503_loop() {
    let setup = Setup::new("too-long", Rule::LongerThan(262_144)).await;
    let event = serde_json::value::RawValue::from_string(huge_event("big")).unwrap();
    let template = currents_segment::park::Envelope::new("default", time::OffsetDateTime::UNIX_EPOCH, 0, "x");
    let bodies = currents_segment::park::dead_letter_events(&template, &[&event], 1_048_576);
    let queue = setup.queue(&setup.dead_url, None).with_max_message_bytes(1_048_576);
    queue.park(&bodies).await.unwrap();
    assert_eq!(setup.proxy.refusals(), 1, "refused once as too long, then cut");
    let stored = setup.read(&setup.dead_url).await;
    let envelope = decode(&stored[0].0).unwrap();
    assert!(envelope.events[0].get().starts_with("\"[truncated: event was"));
}
