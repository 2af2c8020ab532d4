//! Ingest in process, and calls per batch. Prints its figures; run with `cargo bench --bench ingest`.
//!
//! 1. A 100-event batch goes through the real handler (a lambda_http request) and the real
//!    reqwest client to a Segment stand-in on loopback that answers 200 at once. Reported: p50
//!    and p99 per batch, and the share of time spent outside the Segment call.
//! 2. Segment and SQS requests per 100-event batch: healthy, with Segment down, and for a
//!    1,000-message replay.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/workload.rs"]
mod workload;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::fault_segment::{Fault, FaultSegment};
use common::{Harness, RecordingQueue, bearer, config, post, sqs_event};
use currents_segment::config::{SegmentClientConfig, SegmentTarget};
use currents_segment::ingest::Ingest;
use currents_segment::keycheck::{KeyHealth, SETTINGS_TIMEOUT, SettingsHttp};
use currents_segment::limits::{SQS_MAX_BATCH_BYTES, SQS_MAX_BATCH_ENTRIES};
use currents_segment::pack::pack;
use currents_segment::ports::{AttemptError, Deliver, SystemClock};
use currents_segment::segment::{RetryPolicy, SegmentHttp};

/// Measures the time spent inside the Segment call.
struct TimedDeliver {
    inner: SegmentHttp,
    spent: Mutex<Duration>,
}

#[async_trait]
impl Deliver for TimedDeliver {
    async fn deliver(&self, target: &SegmentTarget, body: Vec<u8>, timeout: Duration) -> Result<(), AttemptError> {
        let started = Instant::now();
        let result = self.inner.deliver(target, body, timeout).await;
        *self.spent.lock().unwrap() += started.elapsed();
        result
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn in_process_latency() {
    let segment_stand_in = FaultSegment::start(&[], Fault::Ok).await;
    let endpoint = segment_stand_in.url.clone();
    // The write-key check is on, through the real settings client against the same stand-in:
    // warm batches find a fresh verdict, so the figures include the cache lookup, not a request.
    let config = Arc::new(config(&[
        ("SEGMENT_ENDPOINT", &endpoint),
        ("SEGMENT_SETTINGS_ENDPOINT", &endpoint),
    ]));
    let timed = Arc::new(TimedDeliver {
        inner: SegmentHttp::new(&SegmentClientConfig {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            ingest_retry_budget: Duration::from_secs(8),
        })
        .unwrap(),
        spent: Mutex::new(Duration::ZERO),
    });
    let ingest = Ingest {
        config: config.clone(),
        targets: Arc::new(config.routing.delivery_targets().unwrap()),
        segment: timed.clone(),
        retry_queue: RecordingQueue::new(),
        dead_letters: RecordingQueue::new(),
        clock: Arc::new(SystemClock),
        policy: RetryPolicy::new(Duration::from_secs(10)),
        key_health: Arc::new(KeyHealth::new(
            Arc::new(SettingsHttp::new(Duration::from_secs(2)).unwrap()),
            SETTINGS_TIMEOUT,
        )),
    };
    let body = workload::body(100);
    let (auth, value) = bearer();
    let (warmup, runs) = (200, 2_000);
    let mut totals = Vec::with_capacity(runs);
    let mut segment = Vec::with_capacity(runs);
    for i in 0..warmup + runs {
        let request = post("/currents", &[(auth, &value)], body.clone());
        *timed.spent.lock().unwrap() = Duration::ZERO;
        let started = Instant::now();
        let response = ingest.handle(request).await;
        let total = started.elapsed();
        assert_eq!(response.status(), 200);
        if i >= warmup {
            totals.push(total);
            segment.push(*timed.spent.lock().unwrap());
        }
    }
    let own: Vec<Duration> = totals.iter().zip(&segment).map(|(t, s)| t.saturating_sub(*s)).collect();
    let mut shares: Vec<f64> = own
        .iter()
        .zip(&totals)
        .map(|(o, t)| o.as_secs_f64() / t.as_secs_f64())
        .collect();
    shares.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (mut totals, mut own) = (totals, own);
    totals.sort();
    own.sort();
    println!(
        "## Ingest in process: 100-event batch ({} bytes), {runs} runs after {warmup} warm-up",
        body.len()
    );
    println!("| figure | p50 | p99 |");
    println!("|---|---|---|");
    println!(
        "| total per batch | {:?} | {:?} |",
        percentile(&totals, 0.5),
        percentile(&totals, 0.99)
    );
    println!(
        "| our own work (total minus the Segment call) | {:?} | {:?} |",
        percentile(&own, 0.5),
        percentile(&own, 0.99)
    );
    println!(
        "| share outside the Segment call | {:.1}% | {:.1}% |",
        shares[shares.len() / 2] * 100.0,
        percentile_f(&shares, 0.99) * 100.0
    );
    println!();
}

fn percentile_f(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// SendMessageBatch calls the SQS adapter makes for these bodies (at most 10 entries, 1 MiB).
fn send_message_batch_calls(queue: &RecordingQueue) -> usize {
    let bodies = queue.bodies.lock().unwrap();
    pack(
        bodies.iter().map(String::len),
        0,
        SQS_MAX_BATCH_BYTES,
        SQS_MAX_BATCH_ENTRIES,
    )
    .len()
}

async fn calls_per_batch() {
    let body = workload::body(100);
    let (auth, value) = bearer();
    println!("## Calls per 100-event Braze batch");
    println!("| case | Segment requests | SQS SendMessageBatch | SQS other | settings requests |");
    println!("|---|---|---|---|---|");

    // The first batch of an instance finds no verdict and asks once; a warm one asks nothing.
    let healthy = Harness::new(config(&[]));
    for case in ["healthy, first batch of a cold instance", "healthy, warm"] {
        let (segment, settings) = (healthy.segment.requests(), healthy.settings.requests());
        healthy
            .ingest()
            .handle(post("/currents", &[(auth, &value)], body.clone()))
            .await;
        println!(
            "| {case} | {} | {} | 0 | {} |",
            healthy.segment.requests() - segment,
            send_message_batch_calls(&healthy.retry),
            healthy.settings.requests() - settings
        );
    }
    let held = Harness::new(config(&[]));
    held.settings.revoke(common::WRITE_KEY);
    held.ingest()
        .handle(post("/currents", &[(auth, &value)], body.clone()))
        .await;
    println!(
        "| write key Segment does not know (held, parked) | {} | {} | 0 | {} |",
        held.segment.requests(),
        send_message_batch_calls(&held.retry),
        held.settings.requests()
    );

    let down = Harness::new(config(&[]));
    down.segment.always(Err(AttemptError::Status {
        status: 503,
        retry_after: None,
    }));
    let mut ingest = down.ingest();
    ingest.policy = RetryPolicy::new(Duration::from_secs(1));
    ingest.policy.base_delay = Duration::from_millis(1);
    ingest.handle(post("/currents", &[(auth, &value)], body.clone())).await;
    println!(
        "| Segment down (retries, then park) | {} | {} | 0 | {} |",
        down.segment.requests(),
        send_message_batch_calls(&down.retry),
        down.settings.requests()
    );

    // 1,000 messages: ten parked batches, replayed by one invocation of ten records.
    let replay = Harness::new(config(&[]));
    replay.segment.always(Err(AttemptError::Status {
        status: 503,
        retry_after: None,
    }));
    let mut ingest = replay.ingest();
    ingest.policy.base_delay = Duration::from_millis(1);
    for _ in 0..10 {
        ingest.handle(post("/currents", &[(auth, &value)], body.clone())).await;
    }
    let parked = std::mem::take(&mut *replay.retry.bodies.lock().unwrap());
    let before = replay.segment.requests();
    let settings_before = replay.settings.requests();
    replay.segment.always(Ok(()));
    let response = replay
        .replay()
        .handle(
            sqs_event(&parked, 1),
            tokio::time::Instant::now() + Duration::from_secs(10),
        )
        .await;
    assert!(response.batch_item_failures.is_empty());
    println!(
        "| 1,000-message replay ({} envelopes, one invocation, warm) | {} | 0 | 0 (Lambda deletes) | {} |",
        parked.len(),
        replay.segment.requests() - before,
        replay.settings.requests() - settings_before
    );
    println!();
}

/// What a warm request pays for the write-key check: one lookup of a fresh verdict per route
/// (a lock, a SHA-256 of the endpoint and key, a map lookup), and no request.
async fn verdict_lookup() {
    let harness = Harness::new(config(&[]));
    let targets = harness.config.routing.delivery_targets().unwrap();
    let route = harness.config.routing.find("default").unwrap();
    let routing = &harness.config.routing;
    harness.key_health.plans(&[route], routing, &targets).await;
    let runs: u32 = 100_000;
    let started = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(harness.key_health.plans(&[route], routing, &targets).await);
    }
    let per = started.elapsed() / runs;
    println!("## Write-key check on a warm request (one route, fresh verdict)");
    println!("| figure | value |");
    println!("|---|---|");
    println!("| verdict lookup per request | {per:?} |");
    println!(
        "| settings requests in {runs} lookups after the first | {} |",
        harness.settings.requests() - 1
    );
    println!();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` probes harness=false targets
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        in_process_latency().await;
        calls_per_batch().await;
        verdict_lookup().await;
    });
}
