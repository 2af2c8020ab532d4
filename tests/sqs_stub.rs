//! The SQS adapter's batch promises, against a stub SQS that can do what moto cannot: refuse a
//! `SendMessageBatch` over SQS's byte cap, and fail single entries inside a 200 answer. No moto
//! is needed; the stub speaks the AWS JSON 1.0 protocol aws-sdk-sqs uses (`X-Amz-Target:
//! AmazonSQS.SendMessageBatch`, `application/x-amz-json-1.0`), as described in the SQS API
//! reference: <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html>.
//!
//! Promises pinned here:
//! - every `SendMessageBatch` stays within 10 entries and 1 MiB, message attributes included;
//! - a retry re-sends only the entries SQS failed, so every body is stored exactly once;
//! - an entry SQS keeps failing is reported as an error, never dropped;
//! - a visibility change is capped at SQS's 12 hours, and a refused one is an error;
//! - an envelope cut to fit keeps a 16 KiB excerpt of each oversized event.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use currents_segment::limits::{SQS_DEFAULT_MESSAGE_BYTES, SQS_MAX_BATCH_BYTES, SQS_MAX_BATCH_ENTRIES};
use currents_segment::park::{
    Envelope, PAYLOAD_SIZE_ATTRIBUTE, PayloadPointer, PayloadStore, SqsQueue, StoreError, dead_letter_events, decode,
};
use currents_segment::ports::{Park, Postpone, QueueError};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use time::OffsetDateTime;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const QUEUE_URL: &str = "https://sqs.us-east-1.amazonaws.com/000000000000/stub";

/// What the stub does with one entry, given its body and how often that body was sent before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Stored.
    None,
    /// `Failed` with `SenderFault: false` (`InternalError`): re-sending may succeed.
    Retryable,
    /// `Failed` with `SenderFault: true` and this code: re-sending the same body cannot succeed.
    Sender(&'static str),
}

type Plan = dyn Fn(&str, usize) -> Fault + Send + Sync;

/// One `SendMessageBatch` the stub received.
#[derive(Debug, Clone)]
struct Call {
    bodies: Vec<String>,
    /// Bodies plus every attribute's name, type and value, as SQS counts a message's size.
    bytes: usize,
    /// Refused whole, as SQS refuses a batch over its limits.
    refused: bool,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    stored: Vec<String>,
    sent: HashMap<String, usize>,
    /// `VisibilityTimeout` of each `ChangeMessageVisibility` SQS accepted.
    hidden_for: Vec<i64>,
}

struct Stub {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl Stub {
    async fn start(plan: impl Fn(&str, usize) -> Fault + Send + Sync + 'static) -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        Mock::given(any())
            .respond_with(Answer {
                state: state.clone(),
                plan: Box::new(plan),
            })
            .mount(&server)
            .await;
        Self { server, state }
    }

    /// The production adapter, with an SQS client pointed at the stub. Attempts get 30 s, not
    /// 2 s: on a loaded machine a 1 MiB call could time out after the stub stored it, and the
    /// SDK's retry would then store it twice, which these tests would read as a re-send.
    fn queue(&self) -> SqsQueue {
        let client = common::sqs::client(&self.server.uri());
        let patient = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(30))
            .build();
        let config = client.config().to_builder().timeout_config(patient).build();
        SqsQueue::new(aws_sdk_sqs::Client::from_conf(config), QUEUE_URL)
    }

    fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Bodies stored, sorted.
    fn stored(&self) -> Vec<String> {
        let mut stored = self.state.lock().unwrap().stored.clone();
        stored.sort();
        stored
    }

    fn hidden_for(&self) -> Vec<i64> {
        self.state.lock().unwrap().hidden_for.clone()
    }

    /// How many times each body was sent in calls the stub did not refuse whole.
    fn sent(&self, body: &str) -> usize {
        self.state.lock().unwrap().sent.get(body).copied().unwrap_or(0)
    }
}

struct Answer {
    state: Arc<Mutex<State>>,
    plan: Box<Plan>,
}

impl Respond for Answer {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let target = request.headers.get("x-amz-target").and_then(|v| v.to_str().ok());
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return sqs_error("InvalidParameterValue", "the body is not JSON");
        };
        match target {
            Some("AmazonSQS.SendMessageBatch") => self.send_message_batch(&body),
            Some("AmazonSQS.ChangeMessageVisibility") => self.change_message_visibility(&body),
            _ => sqs_error("UnsupportedOperation", &format!("the stub serves no {target:?}")),
        }
    }
}

impl Answer {
    fn send_message_batch(&self, request: &Value) -> ResponseTemplate {
        let entries = request["Entries"].as_array().cloned().unwrap_or_default();
        let bodies: Vec<String> = entries
            .iter()
            .map(|e| e["MessageBody"].as_str().unwrap_or_default().to_owned())
            .collect();
        let bytes = entries.iter().map(message_bytes).sum();
        let refusal = refusal(&entries, bytes);
        let mut state = self.state.lock().unwrap();
        state.calls.push(Call {
            bodies,
            bytes,
            refused: refusal.is_some(),
        });
        if let Some((code, message)) = refusal {
            return sqs_error(code, &message);
        }
        let (mut successful, mut failed) = (Vec::new(), Vec::new());
        for entry in &entries {
            let (id, body) = (&entry["Id"], entry["MessageBody"].as_str().unwrap_or_default());
            let before = *state.sent.entry(body.to_owned()).and_modify(|n| *n += 1).or_insert(1) - 1;
            match (self.plan)(body, before) {
                Fault::None => {
                    state.stored.push(body.to_owned());
                    // aws-sdk-sqs does not check MD5OfMessageBody, so a placeholder will do.
                    successful.push(json!({"Id": id, "MessageId": format!("m-{}", state.stored.len()),
                        "MD5OfMessageBody": "00000000000000000000000000000000"}));
                }
                Fault::Retryable => failed.push(json!({"Id": id, "SenderFault": false, "Code": "InternalError",
                    "Message": "We encountered an internal error. Please try again."})),
                Fault::Sender(code) => {
                    failed.push(json!({"Id": id, "SenderFault": true, "Code": code, "Message": "Refused."}))
                }
            }
        }
        ResponseTemplate::new(200).set_body_raw(
            json!({"Successful": successful, "Failed": failed}).to_string(),
            "application/x-amz-json-1.0",
        )
    }

    /// SQS takes 0 to 43,200 seconds (12 hours); a receipt handle "stale" stands for one whose
    /// message was received again since, which SQS refuses.
    fn change_message_visibility(&self, request: &Value) -> ResponseTemplate {
        let seconds = request["VisibilityTimeout"].as_i64().unwrap_or(-1);
        if !(0..=43_200).contains(&seconds) {
            return sqs_error("InvalidParameterValue", &format!("VisibilityTimeout {seconds}"));
        }
        if request["ReceiptHandle"] == "stale" {
            return sqs_error("ReceiptHandleIsInvalid", "the receipt handle has expired");
        }
        self.state.lock().unwrap().hidden_for.push(seconds);
        ResponseTemplate::new(200).set_body_raw("{}", "application/x-amz-json-1.0")
    }
}

/// A message's size as SQS counts it: the body plus each attribute's name, type and value
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html>).
fn message_bytes(entry: &Value) -> usize {
    let body = entry["MessageBody"].as_str().map_or(0, str::len);
    let attributes = entry["MessageAttributes"].as_object().into_iter().flatten();
    let text = |value: &Value| value.as_str().map_or(0, str::len);
    body + attributes
        .map(|(name, value)| name.len() + text(&value["DataType"]) + text(&value["StringValue"]))
        .sum::<usize>()
}

/// Why SQS would refuse the whole call, as its error code and message; `None` if it would not.
fn refusal(entries: &[Value], bytes: usize) -> Option<(&'static str, String)> {
    let mut ids: Vec<&Value> = entries.iter().map(|e| &e["Id"]).collect();
    ids.sort_by_key(|id| id.to_string());
    ids.dedup();
    if entries.is_empty() {
        Some(("EmptyBatchRequest", "no entries".to_owned()))
    } else if entries.len() > SQS_MAX_BATCH_ENTRIES {
        Some(("TooManyEntriesInBatchRequest", format!("{} entries", entries.len())))
    } else if ids.len() != entries.len() {
        Some(("BatchEntryIdsNotDistinct", "two entries share an Id".to_owned()))
    } else if bytes > SQS_MAX_BATCH_BYTES {
        Some(("BatchRequestTooLong", format!("{bytes} bytes in one batch")))
    } else {
        None
    }
}

/// A whole-call error in the JSON protocol's shape, with the query-compatible code header SQS sends.
fn sqs_error(code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400)
        .insert_header("x-amzn-query-error", format!("AWS.SimpleQueueService.{code};Sender"))
        .set_body_raw(
            json!({"__type": format!("com.amazonaws.sqs#{code}"), "message": message}).to_string(),
            "application/x-amz-json-1.0",
        )
}

/// `count` distinct bodies of `bytes` bytes each.
fn bodies(tag: &str, count: usize, bytes: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let head = format!("{tag}-{i:03}-");
            format!("{head}{}", "x".repeat(bytes - head.len()))
        })
        .collect()
}

fn sorted(mut bodies: Vec<String>) -> Vec<String> {
    bodies.sort();
    bodies
}

#[tokio::test]
async fn every_batch_stays_within_the_byte_and_entry_caps_and_each_body_arrives_once() {
    let stub = Stub::start(|_, _| Fault::None).await;
    // Ten bodies at the default queue's 256 KiB limit: ten to a call would be 2.5 MiB, and even
    // four are just over 1 MiB. Then small ones, to fill calls up to the entry cap.
    let large = bodies("large", 10, 262_144);
    let small = bodies("small", 25, 100);
    let all = [large, small].concat();

    stub.queue().park(&all).await.expect("every body is accepted");

    let calls = stub.calls();
    for call in &calls {
        assert!(!call.refused, "SQS refused a call of {} bytes", call.bytes);
        assert!(call.bytes <= SQS_MAX_BATCH_BYTES, "{} bytes in one call", call.bytes);
        assert!(call.bodies.len() <= SQS_MAX_BATCH_ENTRIES);
    }
    assert_eq!(stub.stored(), sorted(all.clone()), "each body stored once");
    let sent: usize = calls.iter().map(|c| c.bodies.len()).sum();
    assert_eq!(sent, all.len(), "nothing was re-sent");
}

#[tokio::test]
async fn a_retry_resends_only_the_entries_sqs_failed() {
    let failing = ["b-003", "b-007", "b-015"];
    let stub = Stub::start(move |body, before| {
        if before == 0 && failing.iter().any(|tag| body.starts_with(tag)) {
            Fault::Retryable
        } else {
            Fault::None
        }
    })
    .await;
    let all = bodies("b", 20, 1_000);

    stub.queue()
        .park(&all)
        .await
        .expect("the failed entries are accepted on retry");

    assert_eq!(stub.stored(), sorted(all.clone()), "each body stored exactly once");
    let calls = stub.calls();
    let first_round: usize = calls.iter().take(2).map(|c| c.bodies.len()).sum();
    assert_eq!(first_round, 20, "two calls of ten first");
    let resent: Vec<String> = calls[2..].iter().flat_map(|c| c.bodies.clone()).collect();
    let expected: Vec<String> = all
        .iter()
        .filter(|b| failing.iter().any(|tag| b.starts_with(tag)))
        .cloned()
        .collect();
    assert_eq!(sorted(resent), expected, "only the failed entries are re-sent");
}

#[tokio::test]
async fn an_entry_sqs_keeps_failing_is_reported_not_dropped() {
    let stub = Stub::start(|body, _| {
        if body.starts_with("c-004") {
            Fault::Retryable
        } else {
            Fault::None
        }
    })
    .await;
    let all = bodies("c", 13, 1_000);

    let error = stub.queue().park(&all).await.expect_err("one body is never accepted");

    assert_eq!((error.failed, error.total), (1, 13), "{error}");
    assert!(error.reason.contains("InternalError"), "{error}");
    assert!(stub.sent(&all[4]) > 1, "the failed entry was retried");
    let others: Vec<String> = all.iter().filter(|b| !b.starts_with("c-004")).cloned().collect();
    assert_eq!(stub.stored(), others, "every other body stored exactly once");
}

#[tokio::test]
async fn an_entry_sqs_refuses_in_every_form_is_reported_not_dropped() {
    let stub = Stub::start(|body, _| {
        if body.starts_with("d-002") {
            Fault::Sender("InvalidMessageContents")
        } else {
            Fault::None
        }
    })
    .await;
    // 25 bodies are three SendMessageBatch calls: the refusal in the first must not stop the
    // other two, and the error counts only the one body given up on.
    let all = bodies("d", 25, 1_000);

    let error: QueueError = stub.queue().park(&all).await.expect_err("one body is refused for good");

    assert_eq!((error.failed, error.total), (1, 25), "{error}");
    assert!(error.reason.contains("InvalidMessageContents"), "{error}");
    let others: Vec<String> = all.iter().filter(|b| !b.starts_with("d-002")).cloned().collect();
    assert_eq!(stub.stored(), others, "every other body stored exactly once");
}

/// SQS refuses some non-ASCII text that its own character rules allow; the adapter's next form
/// escapes every non-ASCII character, which decodes to the same JSON.
#[tokio::test]
async fn a_refused_non_ascii_body_is_resent_with_ascii_escapes() {
    let stub = Stub::start(|body, _| {
        if body.is_ascii() {
            Fault::None
        } else {
            Fault::Sender("InvalidMessageContents")
        }
    })
    .await;
    let body = r#"{"name":"Zoë","city":"Kraków"}"#.to_owned();

    stub.queue()
        .park(std::slice::from_ref(&body))
        .await
        .expect("stored in its ASCII form");

    let stored = stub.stored();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].is_ascii(), "{}", stored[0]);
    assert_eq!(
        serde_json::from_str::<Value>(&stored[0]).unwrap(),
        serde_json::from_str::<Value>(&body).unwrap()
    );
    assert_eq!((stub.sent(&body), stub.sent(&stored[0])), (1, 1));
}

/// An ASCII body SQS refused as the sender's fault has no other form without a bucket, and is
/// not big enough to need cutting: it is reported at once, not sent again unchanged.
#[tokio::test]
async fn a_refused_ascii_body_is_reported_not_resent_unchanged() {
    // f-001 is plain text; f-003 an envelope under SQS's default 256 KiB holding a 20 KB
    // event, which cutting would shrink: cutting is for bodies over that size, not for any
    // refusal.
    let mut all = bodies("f", 3, 1_000);
    let mut envelope = Envelope::new("default", at(), 0, "x");
    let big = format!(r#"{{"id":"e","p":"{}"}}"#, "y".repeat(20_000));
    envelope.events = vec![RawValue::from_string(big).unwrap()];
    all.push(
        serde_json::to_string(&envelope)
            .unwrap()
            .replacen('{', "{\"f-003\":0,", 1),
    );
    assert!(all[3].starts_with(r#"{"f-003""#));
    let stub = Stub::start(|body, sent_before| {
        let refused = body.starts_with("f-001") || body.starts_with(r#"{"f-003""#);
        if refused && sent_before == 0 {
            Fault::Sender("InvalidMessageContents")
        } else {
            Fault::None
        }
    })
    .await;

    let error = stub
        .queue()
        .park(&all)
        .await
        .expect_err("refused, with no other form to try");

    assert_eq!((error.failed, error.total), (2, 4), "{error}");
    assert_eq!(
        (stub.sent(&all[1]), stub.sent(&all[3])),
        (1, 1),
        "the same bytes are not sent again"
    );
    assert_eq!(
        stub.stored(),
        vec![all[0].clone(), all[2].clone()],
        "and nothing else is sent"
    );
}

/// An envelope of exactly `len` bytes whose first key is `tag`, holding one event that makes up
/// nearly all of it.
fn envelope_of(tag: &str, len: usize) -> String {
    let with_pad = |pad: usize| {
        let mut envelope = Envelope::new("default", at(), 0, "x");
        let event = format!(r#"{{"id":"e","p":"{}"}}"#, "y".repeat(pad));
        envelope.events = vec![RawValue::from_string(event).unwrap()];
        serde_json::to_string(&envelope)
            .unwrap()
            .replacen('{', &format!(r#"{{"{tag}":0,"#), 1)
    };
    let body = with_pad(len - with_pad(0).len());
    assert_eq!(body.len(), len);
    body
}

/// A queue may be configured above SQS's default 256 KiB (`PARK_MESSAGE_MAX_BYTES`) while the
/// real queue is not: a body SQS refuses that is over 256 KiB is cut to fit it and sent; one of
/// exactly 256 KiB is not over, and is reported.
#[tokio::test]
async fn a_refused_body_over_the_default_queue_size_is_cut_and_sent() {
    let stub = Stub::start(|body, _| {
        if body.len() >= SQS_DEFAULT_MESSAGE_BYTES {
            Fault::Sender("InvalidParameterValue")
        } else {
            Fault::None
        }
    })
    .await;
    let over = envelope_of("h-over", SQS_DEFAULT_MESSAGE_BYTES + 40_000);
    let at_limit = envelope_of("h-at", SQS_DEFAULT_MESSAGE_BYTES);

    let error = stub
        .queue()
        .with_max_message_bytes(SQS_MAX_BATCH_BYTES)
        .park(&[over.clone(), at_limit.clone()])
        .await
        .expect_err("the body of exactly 256 KiB has no other form");

    assert_eq!((error.failed, error.total), (1, 2), "{error}");
    assert_eq!((stub.sent(&over), stub.sent(&at_limit)), (1, 1));
    let stored = stub.stored();
    assert_eq!(stored.len(), 1);
    let cut = decode(&stored[0]).unwrap();
    assert!(stored[0].len() < SQS_DEFAULT_MESSAGE_BYTES);
    let over_event = decode(&over).unwrap().events[0].get().len();
    let expected = format!(r#""[truncated: event was {over_event} bytes]"#);
    assert!(cut.events[0].get().starts_with(&expected), "{}", &stored[0][..200]);
}

/// With a bucket, a body SQS refuses as the sender's fault goes to the store, and its pointer
/// to the queue.
#[tokio::test]
async fn a_refused_body_goes_to_the_store_when_there_is_one() {
    let stub = Stub::start(|body, _| {
        if body.starts_with("g-001") {
            Fault::Sender("InvalidMessageContents")
        } else {
            Fault::None
        }
    })
    .await;
    let store = Arc::new(MemoryStore::default());
    let all = bodies("g", 3, 1_000);

    stub.queue()
        .with_payload_store(store.clone())
        .park(&all)
        .await
        .expect("stored, by pointer");

    let stored = stub.stored();
    assert_eq!(stored.len(), 3);
    let pointer = stored
        .iter()
        .find_map(|b| PayloadPointer::from_body(b))
        .expect("one pointer");
    assert_eq!(store.get(&pointer).await.unwrap(), all[1]);
    assert_eq!(stub.sent(&all[1]), 1);
}

#[tokio::test]
async fn postpone_hides_for_at_most_12_hours_and_reports_a_refusal() {
    let stub = Stub::start(|_, _| Fault::None).await;
    let queue = stub.queue();

    queue.postpone("r-1", Duration::from_secs(90)).await.expect("accepted");
    queue
        .postpone("r-2", Duration::from_secs(3 * 24 * 3600))
        .await
        .expect("a delay past SQS's 12 hours is capped, not refused");
    let error = queue
        .postpone("stale", Duration::from_secs(90))
        .await
        .expect_err("a refused visibility change is an error");

    assert_eq!(stub.hidden_for(), [90, 43_200]);
    assert_eq!((error.failed, error.total), (1, 1));
    assert!(error.reason.contains("ReceiptHandleIsInvalid"), "{error}");
}

/// Keeps payloads in memory; its pointers are what an S3 store's would look like.
#[derive(Default)]
struct MemoryStore(Mutex<HashMap<String, String>>);

#[async_trait]
impl PayloadStore for MemoryStore {
    async fn put(&self, body: &str) -> Result<PayloadPointer, StoreError> {
        let key = currents_segment::park::payload_key(body);
        self.0.lock().unwrap().insert(key.clone(), body.to_owned());
        Ok(PayloadPointer {
            bucket: "payloads".to_owned(),
            key,
        })
    }

    async fn get(&self, pointer: &PayloadPointer) -> Result<String, StoreError> {
        let stored = self.0.lock().unwrap().get(&pointer.key).cloned();
        stored.ok_or_else(|| StoreError(format!("no object {}", pointer.key)))
    }
}

#[tokio::test]
async fn message_attributes_count_toward_the_batch_byte_cap() {
    let stub = Stub::start(|_, _| Fault::None).await;
    let store = Arc::new(MemoryStore::default());
    let queue = stub
        .queue()
        .with_max_message_bytes(SQS_MAX_BATCH_BYTES)
        .with_payload_store(store.clone());
    // Five bodies over the message limit go to S3; their pointers carry the
    // ExtendedPayloadSize attribute. One body fills the rest of the batch to the byte, counting
    // bodies only: the attributes' names, types and values then push it over.
    let oversized = bodies("big", 5, SQS_MAX_BATCH_BYTES + 1);
    let pointer = store.put(&oversized[0]).await.unwrap().to_body();
    let filler = bodies("fill", 1, SQS_MAX_BATCH_BYTES - 5 * (pointer.len() + 1) - 1);
    let all = [filler, oversized].concat();

    queue.park(&all).await.expect("every body is accepted");

    for call in stub.calls() {
        assert!(!call.refused, "SQS refused a call of {} bytes", call.bytes);
    }
    let stored = stub.stored();
    assert_eq!(stored.len(), 6, "each body stored once");
    let pointers = stored.iter().filter(|b| PayloadPointer::from_body(b).is_some()).count();
    assert_eq!(pointers, 5, "the oversized bodies went to the store");
    let bodies: usize = stored.iter().map(String::len).sum();
    let counted: usize = stub.calls().iter().map(|c| c.bytes).sum();
    assert!(
        counted > bodies,
        "the pointers carried their {PAYLOAD_SIZE_ATTRIBUTE} attribute"
    );
}

fn at() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

/// The text an excerpt keeps: what follows `[truncated: event was N bytes] `.
fn kept(excerpt: &RawValue, original: &str) -> String {
    let text: String = serde_json::from_str(excerpt.get()).expect("an excerpt is a JSON string");
    let head = format!("[truncated: event was {} bytes] ", original.len());
    text.strip_prefix(&head)
        .unwrap_or_else(|| {
            panic!(
                "the excerpt names the event's size: {}",
                text.chars().take(80).collect::<String>()
            )
        })
        .to_owned()
}

#[tokio::test]
async fn a_cut_envelope_keeps_16_kib_of_each_oversized_event() {
    const EXCERPT: usize = 16 * 1024;
    let stub = Stub::start(|_, _| Fault::None).await;
    // One ASCII event, and one with a two-byte 'é' on bytes 16,383 and 16,384 of its JSON text,
    // so a cut at 16 KiB would split it.
    let ascii = format!(r#"{{"id":"e1","p":"{}"}}"#, "a".repeat(100_000));
    let head = r#"{"id":"e2","p":""#;
    let straddling = format!(
        "{head}{}é{}\"}}",
        "b".repeat(EXCERPT - 1 - head.len()),
        "c".repeat(100_000)
    );
    assert_eq!(straddling.find('é'), Some(EXCERPT - 1));
    let events: Vec<Box<RawValue>> = [&ascii, &straddling]
        .iter()
        .map(|e| RawValue::from_string(e.to_string()).unwrap())
        .collect();
    let events: Vec<&RawValue> = events.iter().map(AsRef::as_ref).collect();
    let envelope = dead_letter_events(&Envelope::new("default", at(), 0, "invalid"), &events, 1 << 20);
    assert_eq!(envelope.len(), 1, "both events in one envelope");

    // No bucket, and a queue limit each event alone is over: the adapter splits the envelope
    // in halves (lossless), then cuts each half.
    let queue = stub.queue().with_max_message_bytes(65_536);
    queue.park(&envelope).await.expect("the cut envelopes are accepted");

    let stored = stub.stored();
    assert_eq!(stored.len(), 2, "one envelope per event");
    assert!(stored.iter().all(|b| b.len() <= 65_536), "cut to fit the queue");
    let halves: Vec<Envelope> = stored.iter().map(|b| decode(b).expect("still an envelope")).collect();
    let back: Vec<&RawValue> = halves.iter().flat_map(|h| h.events.iter().map(AsRef::as_ref)).collect();
    assert_eq!(back.len(), 2, "no event dropped");
    let first = kept(back[0], &ascii);
    assert_eq!(first.len(), EXCERPT, "the excerpt is 16 KiB");
    assert!(ascii.starts_with(&first), "the excerpt is the event's first bytes");
    let second = kept(back[1], &straddling);
    assert_eq!(
        second.len(),
        EXCERPT - 1,
        "cut before the character that crosses 16 KiB"
    );
    assert!(straddling.starts_with(&second));
}

/// A store that is down.
struct DownStore;

#[async_trait]
impl PayloadStore for DownStore {
    async fn put(&self, _: &str) -> Result<PayloadPointer, StoreError> {
        Err(StoreError("S3 is down".to_owned()))
    }

    async fn get(&self, _: &PayloadPointer) -> Result<String, StoreError> {
        Err(StoreError("S3 is down".to_owned()))
    }
}

/// When the store cannot take an oversized body, nothing is sent, and the error counts the whole
/// park as not done: the caller answers 503 (or keeps the SQS record) for all of it.
#[tokio::test]
async fn a_store_that_is_down_fails_the_whole_park_before_anything_is_sent() {
    let stub = Stub::start(|_, _| Fault::None).await;
    let all = [bodies("s", 2, 1_000), bodies("big", 1, SQS_DEFAULT_MESSAGE_BYTES + 1)].concat();

    let error = stub
        .queue()
        .with_payload_store(Arc::new(DownStore))
        .park(&all)
        .await
        .expect_err("the store is down");

    assert_eq!((error.failed, error.total), (1, 3), "{error}");
    assert!(error.reason.contains("S3 is down"), "{error}");
    assert!(stub.calls().is_empty(), "nothing sent");
}

/// Entries SQS failed are re-sent after a pause that doubles each round (200 ms, then 400 ms),
/// not at once.
#[tokio::test]
async fn failed_entries_are_resent_after_a_growing_pause() {
    let stub = Stub::start(|body, sent_before| {
        if body.starts_with("p-000") && sent_before < 2 {
            Fault::Retryable
        } else {
            Fault::None
        }
    })
    .await;
    let all = bodies("p", 2, 1_000);
    let started = std::time::Instant::now();

    stub.queue().park(&all).await.expect("stored on the third try");

    assert_eq!(stub.sent(&all[0]), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
}
