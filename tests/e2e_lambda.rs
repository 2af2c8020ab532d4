//! End to end through the real binaries under `cargo lambda watch`: Braze's POST goes to the
//! ingest function URL emulation over HTTP, replay is invoked with the SQS event read from moto.
//! `scripts/test` starts watch and moto and sets the E2E_* variables.
//!
//! The functions read their write key from a runtime secret in moto (`E2E_SECRET_ARN`, re-read
//! every second) and check it against Segment's settings CDN, which each test's wiremock on
//! `E2E_SEGMENT_PORT` stands in for too (one-second verdicts). The tests share that watch, that
//! port and that secret, so they run one at a time ([`SERIAL`]) and a test that rotates the key
//! puts it back before the next one starts, pass or fail ([`RuntimeSecret`]).

mod common;

use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;
use base64::Engine;
use serde_json::Value;
use wiremock::matchers::{basic_auth, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// One test at a time: they share the watch, the Segment port and the runtime secret.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Longer than `SECRETS_TTL_SECONDS` and `WRITE_KEY_CHECK_INTERVAL_SECONDS` (1 s each in
/// `scripts/test`): after this wait, the next invocation re-reads the secret and re-checks a key.
const SETTLE: Duration = Duration::from_millis(1_600);

/// The write key `scripts/test` puts in the runtime secret.
const E2E_WRITE_KEY: &str = "e2e-write-key";

/// Segment's settings CDN's 404 body for a write key it does not know.
const INVALID_KEY_BODY: &str = "Cannot GET - Invalid path or write key provided.";

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
        self.invoke("replay", serde_json::to_vec(event).unwrap()).await
    }

    /// Invokes `function` with a raw event, as Lambda's Invoke API does, and returns its answer.
    async fn invoke(&self, function: &str, event: Vec<u8>) -> Value {
        let response = self
            .http
            .post(format!("{}/2015-03-31/functions/{function}/invocations", self.watch))
            .body(event)
            .send()
            .await
            .expect("the function answers");
        assert!(
            response.status().is_success(),
            "{function} invocation failed: {}",
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

/// The stand-in, knowing the runtime secret's key: the check passes (rather than failing open
/// on the stand-in's default 404), so every batch goes out as it would in AWS.
async fn known_key_stand_in() -> MockServer {
    let segment = segment_stand_in().await;
    Mock::given(method("GET"))
        .and(path(settings_path(E2E_WRITE_KEY)))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&segment)
        .await;
    segment
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

/// The `Authorization` header Segment's HTTP API expects for `write_key` (Basic, empty password).
fn basic(write_key: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{write_key}:"));
    format!("Basic {token}")
}

/// A Secrets Manager client for moto (`SECRETS_ENDPOINT`, set by `scripts/test`).
fn secrets_client() -> aws_sdk_secretsmanager::Client {
    use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(env("SECRETS_ENDPOINT"))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

async fn put_secret(client: &aws_sdk_secretsmanager::Client, arn: &str, text: &str) {
    client
        .put_secret_value()
        .secret_id(arn)
        .secret_string(text)
        .send()
        .await
        .expect("moto stores the secret");
}

/// The watch's runtime secret. A rotation is put back when the test ends, by
/// [`RuntimeSecret::restore`] or, if the test fails first, on drop; either way the next test
/// starts after the functions could have re-read it.
struct RuntimeSecret {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
    original: String,
    rotated: bool,
}

impl RuntimeSecret {
    async fn open() -> Self {
        let client = secrets_client();
        let arn = env("E2E_SECRET_ARN");
        let current = client
            .get_secret_value()
            .secret_id(&arn)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .expect("the runtime secret scripts/test created");
        Self {
            original: current.secret_string.expect("a SecretString"),
            client,
            arn,
            rotated: false,
        }
    }

    /// The write key the secret held when the test started.
    fn original_key(&self) -> String {
        let values: Value = serde_json::from_str(&self.original).expect("the secret is a JSON object");
        values["SEGMENT_WRITE_KEY"]
            .as_str()
            .expect("SEGMENT_WRITE_KEY")
            .to_owned()
    }

    /// A rotation: the same secret with another `SEGMENT_WRITE_KEY`.
    async fn rotate(&mut self, write_key: &str) {
        let mut values: Value = serde_json::from_str(&self.original).unwrap();
        values["SEGMENT_WRITE_KEY"] = Value::from(write_key);
        self.rotated = true;
        put_secret(&self.client, &self.arn, &values.to_string()).await;
    }

    async fn restore(mut self) {
        put_secret(&self.client, &self.arn, &self.original).await;
        self.rotated = false;
        tokio::time::sleep(SETTLE).await;
    }
}

impl Drop for RuntimeSecret {
    fn drop(&mut self) {
        if !self.rotated {
            return;
        }
        // The test failed after a rotation. Put the secret back from a thread of its own (this
        // one may be a runtime's); a failure here must not panic again while unwinding.
        let (arn, original) = (self.arn.clone(), self.original.clone());
        let restore = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                put_secret(&secrets_client(), &arn, &original).await;
                tokio::time::sleep(SETTLE).await;
            });
        });
        if restore.join().is_err() {
            eprintln!("could not put the runtime secret back; other e2e tests may fail");
        }
    }
}

/// Messages in a queue, visible, in flight or delayed (moto's counts are exact).
async fn depth(sqs: &Client, url: &str) -> u64 {
    let names = [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        QueueAttributeName::ApproximateNumberOfMessagesDelayed,
    ];
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .set_attribute_names(Some(names.to_vec()))
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    names
        .iter()
        .map(|name| attributes.get(name).map_or(0, |n| n.parse::<u64>().unwrap()))
        .sum()
}

/// The `messageId`s replay reported as batch-item failures.
fn failed_ids(response: &Value) -> Vec<String> {
    let failures = response["batchItemFailures"].as_array().expect("batchItemFailures");
    let mut ids: Vec<String> = failures
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn record_ids(records: &[SqsMessage]) -> Vec<String> {
    let mut ids: Vec<String> = records.iter().map(|r| r.message_id.clone().unwrap()).collect();
    ids.sort();
    ids
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
    let segment = known_key_stand_in().await;

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

/// Issue 21, case 9: the real ingest binary, invoked with a REST API (payload 1.0) event and an
/// ALB event as those fronts send them, delivers and answers in the shape each front expects
/// (API Gateway REST: `multiValueHeaders`; ALB: `statusDescription`).
#[tokio::test]
#[ignore = "needs cargo lambda watch and moto: run scripts/test"]
async fn rest_api_and_alb_fronts_reach_segment_through_the_real_binary() {
    let _serial = SERIAL.lock().await;
    let env = Env::new().await;
    let segment = known_key_stand_in().await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&segment)
        .await;
    let n = sample_len();
    for (name, shape_field) in [
        ("events/ingest-rest.json", "/multiValueHeaders/content-type"),
        ("events/ingest-alb-gzip.json", "/statusDescription"),
    ] {
        let event = String::from_utf8(file(name))
            .unwrap()
            .replace("sample-currents-token", TOKEN);
        let answer = env.invoke("ingest", event.into_bytes()).await;
        assert_eq!(answer["statusCode"], 200, "{name}: {answer}");
        assert!(
            answer.pointer(shape_field).is_some(),
            "{name} answered in its front's shape: {answer}"
        );
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(counts(&body), [n, n, 0, 0, 0], "{name}: {body}");
    }
    assert_eq!(batch_ids(&batches(&segment).await).len() as u64, 2 * n);
}

/// Issue 20: revoke -> held -> rotate -> delivered, through the real binaries, with the runtime
/// secret and the settings stand-in doing what Secrets Manager and Segment's CDN do in AWS.
#[tokio::test]
#[ignore = "needs cargo lambda watch and moto: run scripts/test"]
async fn a_revoked_key_is_held_by_the_real_binaries_until_the_secret_is_rotated() {
    const ROTATED: &str = "e2e-rotated-key";
    let _serial = SERIAL.lock().await;
    let env = Env::new().await;
    let mut secret = RuntimeSecret::open().await;
    let revoked = secret.original_key();
    assert_ne!(revoked, ROTATED);
    let segment = segment_stand_in().await;
    // Segment's CDN no longer knows the secret's key; it knows the one the operator rotates to.
    Mock::given(method("GET"))
        .and(path(settings_path(&revoked)))
        .respond_with(ResponseTemplate::new(404).set_body_string(INVALID_KEY_BODY))
        .mount(&segment)
        .await;
    let known = serde_json::json!({"integrations": {"Segment.io": {"apiKey": ROTATED}}});
    Mock::given(method("GET"))
        .and(path(settings_path(ROTATED)))
        .respond_with(ResponseTemplate::new(200).set_body_json(known))
        .mount(&segment)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&segment)
        .await;
    // An earlier test's verdict on the key may still be fresh: let it age past the interval.
    tokio::time::sleep(SETTLE).await;
    assert_eq!(depth(&env.sqs, &env.retry_url).await, 0, "RetryQueue starts empty");
    let dead_before = depth(&env.sqs, &env.dead_url).await;

    // Revoked: ingest answers 200, parks every sendable event, and sends Segment nothing.
    let n = sample_len();
    let (status, body) = env.post_currents(TOKEN, file("tests/fixtures/all-events.json")).await;
    let [received, delivered, parked, skipped, dead_lettered] = counts(&body);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        received,
        delivered + parked + skipped + dead_lettered,
        "counts add up: {body}"
    );
    let sendable = received - skipped - dead_lettered;
    assert_eq!((received, sendable, delivered, parked), (n, n, 0, sendable), "{body}");
    assert!(batches(&segment).await.is_empty(), "nothing sent to a revoked key");
    assert!(
        settings_requests(&segment, &revoked).await >= 1,
        "ingest checked the key"
    );

    // What ingest parked: every sendable message, held for the key, never naming it.
    let held = common::sqs::receive_all(&env.sqs, &env.retry_url, false).await;
    let mut parked_ids = Vec::new();
    for record in &held {
        let text = record.body.as_deref().unwrap();
        assert!(!text.contains(&revoked), "the key never reaches an envelope");
        let envelope: Value = serde_json::from_str(text).unwrap();
        let last_error = envelope["last_error"].as_str().unwrap();
        assert!(last_error.starts_with("write_key_invalid"), "{last_error}");
        for message in envelope["messages"].as_array().unwrap() {
            parked_ids.push(message["messageId"].as_str().unwrap().to_owned());
        }
    }
    parked_ids.sort();
    assert_eq!(parked_ids.len() as u64, parked, "each parked event in one envelope");

    // Still revoked: replay sends nothing and keeps every record (it postpones them).
    let mut event = SqsEvent::default();
    event.records = held.clone();
    let response = env.invoke_replay(&event).await;
    assert_eq!(
        failed_ids(&response),
        record_ids(&held),
        "every record kept: {response}"
    );
    assert!(
        batches(&segment).await.is_empty(),
        "replay sends nothing to a revoked key"
    );

    // The operator rotates the key in the secret. Once the functions re-read it (TTL) the new
    // key is checked at once; make the held records visible again, as their backoff ending would.
    secret.rotate(ROTATED).await;
    tokio::time::sleep(SETTLE).await;
    for record in &held {
        env.sqs
            .change_message_visibility()
            .queue_url(&env.retry_url)
            .receipt_handle(record.receipt_handle.clone().unwrap())
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }
    let again = common::sqs::receive_all(&env.sqs, &env.retry_url, false).await;
    assert_eq!(record_ids(&again), record_ids(&held));
    event.records = again.clone();
    let response = env.invoke_replay(&event).await;
    assert_eq!(response["batchItemFailures"], serde_json::json!([]), "{response}");
    // No failures: Lambda's event source deletes the whole batch.
    common::sqs::delete_all(&env.sqs, &env.retry_url, &again).await;

    // Segment got every parked message exactly once, with the new key only.
    let sent = batches(&segment).await;
    assert!(!sent.is_empty());
    for request in &sent {
        let authorization = request.headers.get("authorization").map(|v| v.to_str().unwrap());
        assert_eq!(
            authorization,
            Some(basic(ROTATED).as_str()),
            "sent with the rotated key"
        );
    }
    let mut delivered_ids = batch_ids(&sent);
    delivered_ids.sort();
    assert_eq!(
        delivered_ids, parked_ids,
        "every parked messageId delivered exactly once"
    );
    assert_eq!(depth(&env.sqs, &env.retry_url).await, 0, "RetryQueue empty");
    assert_eq!(
        depth(&env.sqs, &env.dead_url).await,
        dead_before,
        "nothing dead-lettered"
    );

    // Neither key ever appears in the functions' log lines.
    if let Ok(log) = std::env::var("E2E_WATCH_LOG") {
        let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{log}: {e}"));
        for key in [revoked.as_str(), ROTATED] {
            assert!(!text.contains(key), "a write key in {log}");
        }
    }
    secret.restore().await;
}
