//! End to end through the real binaries under `cargo lambda watch`: Braze's POST goes to the
//! ingest function URL emulation over HTTP, replay is invoked with the SQS event read from moto.
//! `scripts/test` starts watch and moto and sets the E2E_* variables.
//!
//! The functions read their write key from a runtime secret in moto (`E2E_SECRET_ARN`, re-read
//! every second) and check it against Segment's settings CDN, which each test's wiremock on
//! `E2E_SEGMENT_PORT` stands in for too (one-second verdicts). The tests share that watch, that
//! port and that secret, so they run one at a time ([`SERIAL`]).

mod common;

use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::Client;
use serde_json::Value;
use wiremock::matchers::{basic_auth, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// One test at a time: they share the watch, the Segment port and the runtime secret.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The write key `scripts/test` puts in the runtime secret.
const E2E_WRITE_KEY: &str = "e2e-write-key";

/// How many events the sample batch (`all-events.json`) holds.
fn sample_len() -> u64 {
    let body: Value = serde_json::from_slice(&file("tests/fixtures/all-events.json")).unwrap();
    body["events"].as_array().unwrap().len() as u64
}

const TOKEN: &str = "e2e-token-0123456789";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set; run scripts/test"))
}

struct Env {
    http: reqwest::Client,
    watch: String,
    sqs: Client,
    retry_url: String,
    dead_url: String,
}

impl Env {
    async fn new() -> Self {
        Self {
            // The first request makes cargo lambda watch build the function: allow minutes.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(900))
                .build()
                .unwrap(),
            watch: env("E2E_WATCH_URL"),
            sqs: common::sqs::client(&env("SQS_ENDPOINT")),
            retry_url: env("E2E_RETRY_QUEUE_URL"),
            dead_url: env("E2E_DEAD_LETTER_QUEUE_URL"),
        }
    }

    async fn post_currents(&self, token: &str, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/lambda-url/ingest/currents", self.watch))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("braze-currents-version", "1")
            .body(body)
            .send()
            .await
            .expect("ingest answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON answer, got {status} {text}")),
        )
    }

    async fn invoke_replay(&self, event: &SqsEvent) -> Value {
        let response = self
            .http
            .post(format!("{}/2015-03-31/functions/replay/invocations", self.watch))
            .body(serde_json::to_vec(event).unwrap())
            .send()
            .await
            .expect("replay answers");
        assert!(
            response.status().is_success(),
            "replay invocation failed: {}",
            response.status()
        );
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }

    /// Drains a queue, deleting what it read (as Lambda's event source does after success).
    async fn drain(&self, url: &str) -> Vec<SqsMessage> {
        common::sqs::receive_all(&self.sqs, url, true).await
    }
}

/// The Segment stand-in on `E2E_SEGMENT_PORT`, where the functions send batches and ask for
/// settings. The previous test's stand-in may still be letting go of the port: retry a while.
async fn segment_stand_in() -> MockServer {
    let port: u16 = env("E2E_SEGMENT_PORT").parse().expect("E2E_SEGMENT_PORT is a port");
    let mut tries = 0;
    let listener = loop {
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => break listener,
            Err(_) if tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("cannot listen on the Segment port {port}: {error}"),
        }
    };
    MockServer::builder().listener(listener).start().await
}

/// The settings CDN path Segment's SDKs read for `write_key`.
fn settings_path(write_key: &str) -> String {
    format!("/v1/projects/{write_key}/settings")
}

/// Every `POST /v1/batch` the stand-in received, in order (settings requests left out).
async fn batches(segment: &MockServer) -> Vec<Request> {
    let requests = segment.received_requests().await.expect("recording is on");
    requests
        .into_iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/v1/batch")
        .collect()
}

/// How many settings requests the stand-in received for `write_key`.
async fn settings_requests(segment: &MockServer, write_key: &str) -> usize {
    let requests = segment.received_requests().await.expect("recording is on");
    let wanted = settings_path(write_key);
    requests
        .iter()
        .filter(|r| r.method.as_str() == "GET" && r.url.path() == wanted)
        .count()
}

/// The `messageId`s of `batches`, in order.
fn batch_ids(batches: &[Request]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|r| common::message_ids(&serde_json::from_slice(&r.body).expect("JSON batch")))
        .collect()
}

fn file(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn counts(body: &Value) -> [u64; 5] {
    ["received", "delivered", "parked", "skipped", "dead_lettered"].map(|k| body[k].as_u64().unwrap())
}

#[tokio::test]
#[ignore = "needs cargo lambda watch and moto: run scripts/test"]
async fn braze_to_segment_through_the_real_binaries() {
    let _serial = SERIAL.lock().await;
    let env = Env::new().await;
    let segment = segment_stand_in().await;
    // The runtime secret's key is one Segment knows: the check passes (rather than failing
    // open on the stand-in's default 404), so every batch below goes out as it would in AWS.
    Mock::given(method("GET"))
        .and(path(settings_path(E2E_WRITE_KEY)))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&segment)
        .await;

    // A wrong token is refused before anything else happens.
    let (status, _) = env.post_currents("wrong", file("tests/fixtures/all-events.json")).await;
    assert_eq!(status, 401);

    // Segment down: ingest parks every event in the stand-in RetryQueue and answers 200.
    let n = sample_len();
    let outage = Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(&segment)
        .await;
    let (status, body) = env.post_currents(TOKEN, file("tests/fixtures/all-events.json")).await;
    assert_eq!((status, counts(&body)), (200, [n, 0, n, 0, 0]), "{body}");
    drop(outage);
    let failed_attempts = batches(&segment).await.len();
    assert!(failed_attempts >= 1, "ingest tried Segment before parking");

    // Segment back: replay, invoked with the SQS event read from the queue, delivers each once.
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .and(basic_auth("e2e-write-key", ""))
        .respond_with(ResponseTemplate::new(200))
        .mount(&segment)
        .await;
    let mut event = SqsEvent::default();
    event.records = env.drain(&env.retry_url).await;
    assert!(!event.records.is_empty());
    let response = env.invoke_replay(&event).await;
    assert_eq!(response["batchItemFailures"], serde_json::json!([]), "{response}");
    let mut ids = batch_ids(&batches(&segment).await[failed_attempts..]);
    assert_eq!(ids.len() as u64, n);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len() as u64, n, "each messageId exactly once");

    // A mixed batch: good events delivered, invalid ones dead-lettered with their raw form.
    let (status, body) = env.post_currents(TOKEN, file("tests/fixtures/mixed-batch.json")).await;
    assert_eq!((status, counts(&body)), (200, [10, 2, 0, 2, 6]), "{body}");
    let dead = env.drain(&env.dead_url).await;
    let envelopes: Vec<Value> = dead
        .iter()
        .map(|r| serde_json::from_str(r.body.as_deref().unwrap()).unwrap())
        .collect();
    assert!(envelopes.iter().all(|e| e["reason"] == "invalid_event"));
    assert_eq!(
        envelopes
            .iter()
            .map(|e| e["events"].as_array().unwrap().len())
            .sum::<usize>(),
        6
    );

    // The committed expired sample goes to the dead-letter queue and never to Segment.
    let before = batches(&segment).await.len();
    let expired: SqsEvent = serde_json::from_slice(&file("events/replay-expired.json")).unwrap();
    let response = env.invoke_replay(&expired).await;
    assert_eq!(response["batchItemFailures"], serde_json::json!([]));
    assert_eq!(batches(&segment).await.len(), before);
    let dead = env.drain(&env.dead_url).await;
    let envelope: Value = serde_json::from_str(dead[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(envelope["reason"], "expired");
    assert!(
        settings_requests(&segment, E2E_WRITE_KEY).await >= 1,
        "the functions checked the key against the settings stand-in"
    );
}
