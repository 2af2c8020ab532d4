//! Fault injection: a scripted Segment on loopback down to the socket, SQS faults through the
//! port's fake, and the Lambda deadline.

mod common;

use std::time::{Duration, Instant};

use common::fault_segment::{Fault, FaultSegment};
use common::{Harness, RecordingQueue, bearer, config, counts, fixture, post};
use currents_segment::config::{SegmentClientConfig, SegmentTarget};
use currents_segment::ingest::Ingest;
use currents_segment::ports::SystemClock;
use currents_segment::secret::Secret;
use currents_segment::segment::{BatchOutcome, RetryPolicy, SegmentHttp, deliver_batch};
use lambda_http::RequestExt;
use std::sync::Arc;

/// How many events the sample batch (`all-events.json`) holds.
fn fixture_len() -> usize {
    let fixture: serde_json::Value = serde_json::from_slice(&fixture("all-events.json")).unwrap();
    fixture["events"].as_array().unwrap().len()
}

const MESSAGES: [&str; 1] = [r#"{"type":"track","messageId":"m1"}"#];

fn client() -> SegmentHttp {
    SegmentHttp::new(&SegmentClientConfig {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(2),
        ingest_retry_budget: Duration::from_secs(2),
    })
    .unwrap()
}

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        request_timeout: Duration::from_millis(400),
    }
}

async fn one_batch(server: &FaultSegment, max_attempts: u32) -> BatchOutcome {
    let target = SegmentTarget {
        endpoint: server.url.clone(),
        write_key: Secret::new("wk"),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    deliver_batch(
        &client(),
        &SystemClock,
        &target,
        &MESSAGES,
        &policy(max_attempts),
        deadline,
    )
    .await
}

#[tokio::test]
async fn every_scripted_fault_gets_the_right_classification() {
    let retryable = [
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(503),
        Fault::Status(504),
        Fault::Status(429),
        Fault::RetryAfter(429, 1),
        Fault::Hang,
        Fault::Reset,
    ];
    for fault in retryable {
        let server = FaultSegment::start(&[fault], Fault::Ok).await;
        let outcome = one_batch(&server, 1).await;
        assert!(
            matches!(outcome, BatchOutcome::Retryable { attempts: 1, .. }),
            "{fault:?}: {outcome:?}"
        );
    }
    for code in [400, 401, 413] {
        let server = FaultSegment::start(&[Fault::Status(code)], Fault::Ok).await;
        let outcome = one_batch(&server, 3).await;
        assert!(
            matches!(outcome, BatchOutcome::Permanent { attempts: 1, .. }),
            "{code}: {outcome:?}"
        );
        assert_eq!(server.hits(), 1, "{code} is not retried");
    }
    let slow = FaultSegment::start(&[Fault::Slow(Duration::from_millis(150))], Fault::Ok).await;
    assert_eq!(one_batch(&slow, 1).await, BatchOutcome::Delivered { attempts: 1 });
}

/// The reason a parked envelope and the logs carry names what happened.
#[tokio::test]
async fn each_failure_is_named_for_what_happened() {
    let last_error = |outcome: BatchOutcome| match outcome {
        BatchOutcome::Retryable { last_error, .. } => last_error,
        other => panic!("{other:?}"),
    };
    let reset = FaultSegment::start(&[Fault::Reset], Fault::Ok).await;
    let error = last_error(one_batch(&reset, 1).await);
    assert!(error.contains("connection dropped"), "{error}");
    // Out of time before the first attempt, and after some.
    let target = SegmentTarget {
        endpoint: reset.url.clone(),
        write_key: Secret::new("wk"),
    };
    let now = tokio::time::Instant::now();
    let outcome = deliver_batch(&client(), &SystemClock, &target, &MESSAGES, &policy(3), now).await;
    assert_eq!(
        outcome,
        BatchOutcome::Retryable {
            attempts: 0,
            last_error: "no time left to try".to_owned(),
            retry_after: None,
        }
    );
}

#[tokio::test]
async fn fail_three_times_then_ok_is_delivered_on_the_fourth_attempt() {
    let script = [Fault::Status(503), Fault::Reset, Fault::RetryAfter(429, 0)];
    let server = FaultSegment::start(&script, Fault::Ok).await;
    assert_eq!(one_batch(&server, 4).await, BatchOutcome::Delivered { attempts: 4 });
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn a_segment_that_hangs_forever_cannot_make_ingest_overrun_its_deadline() {
    let server = FaultSegment::start(&[], Fault::Hang).await;
    let harness = Harness::new(config(&[
        ("SEGMENT_ENDPOINT", server.url.as_str()),
        ("INGEST_RETRY_BUDGET_MS", "60000"),
    ]));
    let ingest = Ingest {
        segment: Arc::new(SegmentHttp::new(&harness.config.segment).unwrap()),
        ..harness.ingest()
    };
    // A Lambda invocation with 4 seconds left.
    let mut context = lambda_runtime::Context::default();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    context.deadline = now_ms + 4_000;
    let (auth, value) = bearer();
    let request = post("/currents", &[(auth, &value)], fixture("all-events.json")).with_lambda_context(context);
    let started = Instant::now();
    let response = ingest.handle(request).await;
    let elapsed = started.elapsed();
    let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(response.status(), 200, "{body}");
    assert_eq!(counts(&body), (0, fixture_len() as u64, 0, 0), "parked in time");
    assert!(
        elapsed < Duration::from_secs(4),
        "answered before the Lambda deadline, took {elapsed:?}"
    );
    assert!(server.hits() >= 1);
}

#[tokio::test]
async fn partial_whole_call_and_timed_out_sqs_failures_all_answer_503() {
    let (auth, value) = bearer();
    let down = || common::ScriptedSegment::new().always(Err(currents_segment::ports::AttemptError::Timeout));
    type QueueFault = fn(&RecordingQueue);
    let cases: [(&str, QueueFault); 3] = [
        ("partial SendMessageBatch", |q| q.accept_half_next()),
        ("whole call refused", |q| q.refuse_next(1)),
        ("timeout", |q| q.time_out_after(Duration::from_millis(50))),
    ];
    for (name, fault) in cases {
        let mut harness = Harness::new(config(&[("PARK_MESSAGE_MAX_BYTES", "65536")]));
        harness.segment = down();
        fault(&harness.retry);
        // Large events so the batch needs several envelopes and a partial failure is possible.
        let template: serde_json::Value = serde_json::from_slice(&fixture("all-events.json")).unwrap();
        let events: Vec<serde_json::Value> = (0..8)
            .map(|i| {
                let mut e = template["events"][4].clone();
                e["id"] = serde_json::json!(format!("big-{i}"));
                e["properties"]["padding"] = serde_json::json!("p".repeat(25_000));
                e
            })
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({ "events": events })).unwrap();
        let response = harness
            .ingest()
            .handle(post("/currents", &[(auth, &value)], body))
            .await;
        assert_eq!(response.status(), 503, "{name}");
    }
}

/// One batch to a Segment that always answers 503, with up to 4 attempts and a 100 ms base
/// backoff, until `deadline`. For tests on tokio's paused clock: the fake answers at once.
async fn down_for_good(deadline: tokio::time::Instant) -> BatchOutcome {
    let segment = common::ScriptedSegment::new();
    segment.always(Err(currents_segment::ports::AttemptError::Status {
        status: 503,
        retry_after: None,
    }));
    let policy = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(10),
        request_timeout: Duration::from_secs(1),
    };
    let target = SegmentTarget {
        endpoint: "http://127.0.0.1:9".to_owned(),
        write_key: Secret::new("wk"),
    };
    deliver_batch(&*segment, &SystemClock, &target, &MESSAGES, &policy, deadline).await
}

/// Backoff doubles from its base with jitter that only lengthens a wait: three retries after
/// 100, 200 and 400 ms, each times 1 to 2. On tokio's paused clock, so the waits are exact and
/// take no real time.
#[tokio::test(start_paused = true)]
async fn backoff_waits_at_least_its_doubling_base() {
    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_secs(60);
    let outcome = down_for_good(deadline).await;
    assert!(
        matches!(outcome, BatchOutcome::Retryable { attempts: 4, .. }),
        "{outcome:?}"
    );
    // Jitter multiplies each wait by 1 to 2, so the waits sum past 700 ms and below 1,400 ms
    // (plus the timer's millisecond rounding).
    let waited = started.elapsed();
    assert!(waited > Duration::from_millis(700), "no jitter: {waited:?}");
    assert!(waited <= Duration::from_millis(1_403), "{waited:?}");
}

/// A retry that could not start with 250 ms still left (the least an attempt gets) is not
/// waited for: the batch is parked at once, with Segment's own error.
#[tokio::test(start_paused = true)]
async fn no_retry_is_waited_for_that_could_not_run_before_the_deadline() {
    let started = tokio::time::Instant::now();
    // The first retry would wait 100-200 ms, leaving less than 250 ms of these 300.
    let deadline = started + Duration::from_millis(300);
    let outcome = down_for_good(deadline).await;
    match outcome {
        BatchOutcome::Retryable {
            attempts, last_error, ..
        } => {
            assert_eq!(attempts, 1);
            assert!(last_error.contains("503"), "{last_error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(started.elapsed(), Duration::ZERO, "no wait");
}
