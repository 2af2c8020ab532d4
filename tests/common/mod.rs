//! Shared test helpers: fakes for every port, configuration from literals, fixtures.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use currents_segment::config::{Config, SegmentTarget};
use currents_segment::ingest::Ingest;
use currents_segment::ports::{AttemptError, Clock, Deliver, Park, Postpone, QueueError};
use currents_segment::replay::Replay;
use currents_segment::segment::RetryPolicy;
use serde_json::Value;
use time::OffsetDateTime;

pub mod settings;

pub const TOKEN: &str = "test-token_123";
pub const WRITE_KEY: &str = "wk_test_secret";

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture exists")
}

pub fn config(vars: &[(&str, &str)]) -> Config {
    let mut map: HashMap<String, String> = [
        ("SEGMENT_WRITE_KEY", WRITE_KEY),
        ("CURRENTS_AUTH_TOKEN", TOKEN),
        ("RETRY_QUEUE_URL", "retry"),
        ("DEAD_LETTER_QUEUE_URL", "dead"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in vars {
        map.insert(k.to_string(), v.to_string());
    }
    Config::from_lookup(|k| map.get(k).cloned()).expect("valid test config")
}

/// A clock that only moves when told.
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    pub fn at(unix: i64) -> Arc<Self> {
        Arc::new(Self(Mutex::new(OffsetDateTime::from_unix_timestamp(unix).unwrap())))
    }
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        *now += by;
    }
    pub fn now_utc(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// A wall clock that never stands still: it follows tokio's clock (so under paused time every
/// backoff sleep and `Retry-After` wait moves it) and moves a further `step` on every reading,
/// as real work between two readings would. Tests jump it between invocations with `set`.
pub struct AdvancingClock {
    step: Duration,
    /// The next reading, as of the tokio instant beside it.
    state: Mutex<(OffsetDateTime, tokio::time::Instant)>,
    readings: AtomicUsize,
}

impl AdvancingClock {
    pub fn at(unix: i64, step: Duration) -> Arc<Self> {
        let start = OffsetDateTime::from_unix_timestamp(unix).unwrap();
        Arc::new(Self {
            step,
            state: Mutex::new((start, tokio::time::Instant::now())),
            readings: AtomicUsize::new(0),
        })
    }
    /// The next reading returns exactly `at`, plus whatever tokio time passes before it.
    pub fn set(&self, at: OffsetDateTime) {
        *self.state.lock().unwrap() = (at, tokio::time::Instant::now());
    }
    /// Moves the clock forward without a reading.
    pub fn advance(&self, by: Duration) {
        self.state.lock().unwrap().0 += by;
    }
    /// What the next reading would return, without moving the clock.
    pub fn peek(&self) -> OffsetDateTime {
        let (at, since) = *self.state.lock().unwrap();
        at + (tokio::time::Instant::now() - since)
    }
    /// How many times the code under test read the clock.
    pub fn readings(&self) -> usize {
        self.readings.load(Ordering::SeqCst)
    }
}

impl Clock for AdvancingClock {
    fn now(&self) -> OffsetDateTime {
        let mut state = self.state.lock().unwrap();
        let instant = tokio::time::Instant::now();
        let now = state.0 + (instant - state.1);
        *state = (now + self.step, instant);
        self.readings.fetch_add(1, Ordering::SeqCst);
        now
    }
}

/// A Segment stand-in that answers from a script (then 200) and records every body.
#[derive(Default)]
pub struct ScriptedSegment {
    script: Mutex<VecDeque<Result<(), AttemptError>>>,
    always: Mutex<Option<Result<(), AttemptError>>>,
    pub bodies: Mutex<Vec<Value>>,
    delivered: Mutex<Vec<String>>,
    endpoints: Mutex<Vec<String>>,
}

impl ScriptedSegment {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub fn then(self: &Arc<Self>, answer: Result<(), AttemptError>) -> Arc<Self> {
        self.script.lock().unwrap().push_back(answer);
        self.clone()
    }
    pub fn always(self: &Arc<Self>, answer: Result<(), AttemptError>) -> Arc<Self> {
        *self.always.lock().unwrap() = Some(answer);
        self.clone()
    }
    pub fn requests(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }
    /// `messageId`s of every message Segment answered 2xx for.
    pub fn delivered_ids(&self) -> Vec<String> {
        self.delivered.lock().unwrap().clone()
    }
    /// Each distinct endpoint a request went to, in first-seen order.
    pub fn endpoints(&self) -> Vec<String> {
        self.endpoints.lock().unwrap().clone()
    }
}

#[async_trait]
impl Deliver for ScriptedSegment {
    async fn deliver(&self, target: &SegmentTarget, body: Vec<u8>, _timeout: Duration) -> Result<(), AttemptError> {
        let value: Value = serde_json::from_slice(&body).expect("batch body is JSON");
        let mut endpoints = self.endpoints.lock().unwrap();
        if !endpoints.contains(&target.endpoint) {
            endpoints.push(target.endpoint.clone());
        }
        drop(endpoints);
        let answer = match self.script.lock().unwrap().pop_front() {
            Some(answer) => answer,
            None => self.always.lock().unwrap().clone().unwrap_or(Ok(())),
        };
        if answer.is_ok() {
            self.delivered.lock().unwrap().extend(message_ids(&value));
        }
        self.bodies.lock().unwrap().push(value);
        answer
    }
}

/// A queue that records what it accepted. It can be told to refuse the next N calls, to
/// accept only part of the next call (a partial SendMessageBatch failure), or to fail slowly
/// (a timeout).
#[derive(Default)]
pub struct RecordingQueue {
    pub bodies: Mutex<Vec<String>>,
    refuse: AtomicUsize,
    partial: AtomicUsize,
    slow_failure: Mutex<Option<Duration>>,
    pub calls: AtomicUsize,
    pub postponed: Mutex<Vec<(String, Duration)>>,
    /// What was sent on unchanged (`Forward`), attributes and all; its body is in `bodies` too.
    pub forwarded: Mutex<Vec<currents_segment::dlq::Received>>,
}

impl RecordingQueue {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub fn refuse_next(&self, calls: usize) {
        self.refuse.store(calls, Ordering::SeqCst);
    }
    /// The next call stores only its first half and reports the rest as failed.
    pub fn accept_half_next(&self) {
        self.partial.store(1, Ordering::SeqCst);
    }
    /// Every call waits `delay`, then fails, as an SQS call that times out.
    pub fn time_out_after(&self, delay: Duration) {
        *self.slow_failure.lock().unwrap() = Some(delay);
    }
    pub fn envelopes(&self) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }
    pub fn message_count(&self) -> usize {
        self.envelopes()
            .iter()
            .map(|e| e["messages"].as_array().map_or(0, Vec::len))
            .sum()
    }
}

/// A message sent on unchanged is recorded like a parked body (same failures), and kept whole
/// in `forwarded` so a test can check its message attributes.
#[async_trait]
impl currents_segment::dlq::Forward for RecordingQueue {
    async fn forward(&self, message: &currents_segment::dlq::Received) -> Result<(), QueueError> {
        self.park(std::slice::from_ref(&message.body)).await?;
        self.forwarded.lock().unwrap().push(message.clone());
        Ok(())
    }
}

#[async_trait]
impl Park for RecordingQueue {
    async fn park(&self, bodies: &[String]) -> Result<(), QueueError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let slow = *self.slow_failure.lock().unwrap();
        if let Some(delay) = slow {
            tokio::time::sleep(delay).await;
            return Err(QueueError {
                failed: bodies.len(),
                total: bodies.len(),
                reason: "timed out".into(),
            });
        }
        if self.partial.swap(0, Ordering::SeqCst) > 0 {
            let kept = bodies.len() / 2;
            self.bodies.lock().unwrap().extend(bodies[..kept].iter().cloned());
            return Err(QueueError {
                failed: bodies.len() - kept,
                total: bodies.len(),
                reason: "partial".into(),
            });
        }
        if self.refuse.load(Ordering::SeqCst) > 0 {
            self.refuse.fetch_sub(1, Ordering::SeqCst);
            return Err(QueueError {
                failed: bodies.len(),
                total: bodies.len(),
                reason: "refused by test".into(),
            });
        }
        self.bodies.lock().unwrap().extend(bodies.iter().cloned());
        Ok(())
    }
}

#[async_trait]
impl Postpone for RecordingQueue {
    async fn postpone(&self, receipt_handle: &str, delay: Duration) -> Result<(), QueueError> {
        self.postponed.lock().unwrap().push((receipt_handle.to_owned(), delay));
        Ok(())
    }
}

/// The `messageId`s of a `/v1/batch` body, in order.
pub fn message_ids(batch_body: &Value) -> Vec<String> {
    let batch = batch_body["batch"].as_array().expect("a batch body");
    batch
        .iter()
        .map(|m| m["messageId"].as_str().expect("a messageId").to_owned())
        .collect()
}

/// `messageId`s of every request a wiremock Segment received after the first `skip`.
pub async fn delivered_ids(segment: &wiremock::MockServer, skip: usize) -> Vec<String> {
    let requests = segment.received_requests().await.expect("recording is on");
    requests
        .iter()
        .skip(skip)
        .flat_map(|request| message_ids(&serde_json::from_slice(&request.body).expect("JSON body")))
        .collect()
}

/// Fast retries so tests never wait long.
pub fn quick_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        request_timeout: Duration::from_millis(500),
    }
}

/// Cloning shares every stand-in: a clone with another `config` is the same instance after a
/// configuration change (a rotated secret).
#[derive(Clone)]
pub struct Harness {
    pub segment: Arc<ScriptedSegment>,
    /// When set, used instead of `segment`.
    pub segment_port: Option<Arc<dyn Deliver>>,
    pub retry: Arc<RecordingQueue>,
    pub dead: Arc<RecordingQueue>,
    pub clock: Arc<FixedClock>,
    pub config: Arc<Config>,
    /// The settings CDN stand-in; every key is known until a test revokes it.
    pub settings: Arc<settings::ScriptedSettings>,
    /// One instance's verdicts, shared by every `ingest()` and `replay()` of this harness.
    pub key_health: Arc<currents_segment::keycheck::KeyHealth>,
}

impl Harness {
    pub fn new(config: Config) -> Self {
        let settings = settings::ScriptedSettings::new();
        Self {
            key_health: settings::key_health(&settings),
            settings,
            segment: ScriptedSegment::new(),
            segment_port: None,
            retry: RecordingQueue::new(),
            dead: RecordingQueue::new(),
            clock: FixedClock::at(1_764_000_000),
            config: Arc::new(config),
        }
    }

    fn segment_port(&self) -> Arc<dyn Deliver> {
        self.segment_port.clone().unwrap_or_else(|| self.segment.clone())
    }

    pub fn ingest(&self) -> Ingest {
        Ingest {
            config: self.config.clone(),
            targets: Arc::new(self.config.routing.delivery_targets().unwrap()),
            segment: self.segment_port(),
            retry_queue: self.retry.clone(),
            dead_letters: self.dead.clone(),
            clock: self.clock.clone(),
            policy: quick_policy(),
            key_health: self.key_health.clone(),
        }
    }

    /// [`Harness::ingest`] reading time from `clock` instead of the harness's fixed clock.
    /// POSTs `body` with the test token straight to [`Ingest::process`] (10 s deadline) and
    /// returns the metrics it recorded, which [`Harness::ingest`]'s `handle` would emit.
    pub async fn process(&self, body: &[u8]) -> currents_segment::metrics::Metrics {
        let authorization = format!("Bearer {TOKEN}");
        let request = currents_segment::ingest::IngestRequest {
            authorization: vec![authorization.as_bytes()],
            content_encoding: None,
            method_is_post: true,
            route: None,
            body,
            deadline: tokio::time::Instant::now() + Duration::from_secs(10),
        };
        let mut metrics = currents_segment::metrics::Metrics::default();
        self.ingest().process(request, &mut metrics).await.expect("accepted");
        metrics
    }

    pub fn ingest_with_clock(&self, clock: Arc<dyn Clock>) -> Ingest {
        Ingest { clock, ..self.ingest() }
    }

    /// [`Harness::replay`] reading time from `clock` instead of the harness's fixed clock.
    pub fn replay_with_clock(&self, clock: Arc<dyn Clock>) -> Replay {
        Replay { clock, ..self.replay() }
    }

    pub fn replay(&self) -> Replay {
        Replay {
            config: self.config.clone(),
            payloads: None,
            targets: Arc::new(self.config.routing.delivery_targets().unwrap()),
            segment: self.segment_port(),
            dead_letters: self.dead.clone(),
            retry_queue: self.retry.clone(),
            requeue: self.retry.clone(),
            clock: self.clock.clone(),
            policy: quick_policy(),
            key_health: self.key_health.clone(),
        }
    }
}

/// A lambda_http request as API Gateway would hand it over.
pub fn post(path: &str, headers: &[(&str, &str)], body: impl Into<lambda_http::Body>) -> lambda_http::Request {
    let mut builder = lambda_http::http::Request::builder().method("POST").uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(body.into()).unwrap();
    // API Gateway hands lambda_http the query string already parsed; do the same here.
    let query: std::collections::HashMap<String, String> = request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    lambda_http::RequestExt::with_query_string_parameters(request, query)
}

pub fn bearer() -> (&'static str, String) {
    ("authorization", format!("Bearer {TOKEN}"))
}

pub async fn send(harness: &Harness, request: lambda_http::Request) -> (u16, Value) {
    let response = harness.ingest().handle(request).await;
    let status = response.status().as_u16();
    let body: Value = serde_json::from_slice(response.body().as_ref()).expect("answer is JSON");
    (status, body)
}

/// An SQS event as Lambda's SQS trigger delivers it: record `i` has message id `msg-i` and
/// receipt handle `receipt-i`.
pub fn sqs_event(bodies: &[String], receive_count: u32) -> aws_lambda_events::sqs::SqsEvent {
    let mut event = aws_lambda_events::sqs::SqsEvent::default();
    for (i, body) in bodies.iter().enumerate() {
        let mut message = aws_lambda_events::sqs::SqsMessage::default();
        message.message_id = Some(format!("msg-{i}"));
        message.receipt_handle = Some(format!("receipt-{i}"));
        message.body = Some(body.clone());
        message
            .attributes
            .insert("ApproximateReceiveCount".into(), receive_count.to_string());
        event.records.push(message);
    }
    event
}

/// [`sqs_event`] for one body carrying `attributes`: (name, data type, string value), or a
/// binary value when the data type starts with `Binary`.
pub fn sqs_event_with_attributes(body: &str, attributes: &[(&str, &str, &str)]) -> aws_lambda_events::sqs::SqsEvent {
    let mut event = sqs_event(&[body.to_owned()], 1);
    for (name, data_type, value) in attributes {
        let mut attribute = aws_lambda_events::sqs::SqsMessageAttribute::default();
        attribute.data_type = Some((*data_type).to_owned());
        if data_type.starts_with("Binary") {
            let mut bytes = aws_lambda_events::encodings::Base64Data::default();
            bytes.0 = value.as_bytes().to_vec();
            attribute.binary_value = Some(bytes);
        } else {
            attribute.string_value = Some((*value).to_owned());
        }
        event.records[0]
            .message_attributes
            .insert((*name).to_owned(), attribute);
    }
    event
}

/// Asserts the 200 answer's counts add up and returns them as (delivered, parked, skipped, dead).
pub fn counts(body: &Value) -> (u64, u64, u64, u64) {
    let get = |k: &str| body[k].as_u64().unwrap_or_else(|| panic!("count {k} in {body}"));
    let (received, d, p, s, r) = (
        get("received"),
        get("delivered"),
        get("parked"),
        get("skipped"),
        get("dead_lettered"),
    );
    assert_eq!(received, d + p + s + r, "counts must add up: {body}");
    (d, p, s, r)
}
pub mod fault_segment;
pub mod sqs;

/// The EMF documents an invocation's metrics render to, parsed: the totals, then one document per
/// (metric, reason).
pub struct Emf(pub Vec<Value>);

impl Emf {
    pub fn of(metrics: &currents_segment::metrics::Metrics, function: &str) -> Self {
        Emf(metrics
            .render(function, 0)
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect())
    }

    /// A total from the first document, or -1 when it is absent.
    pub fn total(&self, name: &str) -> f64 {
        self.0[0][name].as_f64().unwrap_or(-1.0)
    }

    /// The `DeadLettered` count recorded under `reason`, if any.
    pub fn dead_lettered(&self, reason: &str) -> Option<f64> {
        self.0[1..]
            .iter()
            .find(|d| d["Reason"] == reason)
            .and_then(|d| d["DeadLettered"].as_f64())
    }

    /// `metric` recorded under the `Route` dimension `route`, if any.
    pub fn by_route(&self, metric: &str, route: &str) -> Option<f64> {
        self.0[1..]
            .iter()
            .find(|d| d["Route"] == route && d.get(metric).is_some())
            .and_then(|d| d[metric].as_f64())
    }

    /// Every reason a per-reason document carries, in order.
    pub fn reasons(&self) -> Vec<&str> {
        self.0[1..].iter().filter_map(|d| d["Reason"].as_str()).collect()
    }
}

impl std::fmt::Debug for Emf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(ToString::to_string)).finish()
    }
}
