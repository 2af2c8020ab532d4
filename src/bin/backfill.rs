//! The `BackfillFunction` Lambda: `BackfillQueue` SQS events, one S3 object per record, each
//! replayed into Segment; batch-item failures for the objects it could not finish.
//! Environment: the ingest variables (`SEGMENT_WRITE_KEY`, `ROUTES`, `APP_ROUTES`, mapping
//! options, `RETRY_QUEUE_URL`, `DEAD_LETTER_QUEUE_URL`) plus `BACKFILL_MAX_RPS` (Segment requests per second per
//! concurrent instance, default 20).

use std::sync::Arc;

use anyhow::Context as _;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use currents_segment::backfill::{
    BackfillWorker, DEFAULT_MAX_RPS, ObjectSource, RateLimited, S3Source, backfill_policy, handle_tasks,
    s3_client_from_env,
};
use currents_segment::config::{Config, DeliveryConfig};
use currents_segment::park::{SqsQueue, client_from_env};
use currents_segment::ports::SystemClock;
use currents_segment::segment::SegmentHttp;
use lambda_runtime::{LambdaEvent, service_fn};

fn main() -> anyhow::Result<()> {
    currents_segment::wiring::start("backfill")?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "Cannot start backfill."))?;
    let lookup = |key: &str| std::env::var(key).ok();
    let delivery = DeliveryConfig::from_lookup(&config, lookup)
        .inspect_err(|e| tracing::error!(error = %e, "Cannot start backfill."))?;
    let max_rps = match std::env::var("BACKFILL_MAX_RPS") {
        Ok(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .context("BACKFILL_MAX_RPS must be a whole number above 0")?,
        Err(_) => DEFAULT_MAX_RPS,
    };
    let s3 = s3_client_from_env().await;
    let segment = SegmentHttp::new(&config.segment).context("building the Segment client")?;
    let worker = BackfillWorker {
        source_for: Box::new(move |bucket: &str| {
            Arc::new(S3Source::new(s3.clone(), bucket, "")) as Arc<dyn ObjectSource>
        }),
        segment: Arc::new(RateLimited::new(segment, max_rps)),
        dead_letters: Arc::new(
            SqsQueue::new(client_from_env().await, delivery.queues.dead_letter.as_str())
                .with_max_message_bytes(config.queues.park_message_max_bytes)
                .with_metrics_function("backfill"),
        ),
        clock: Arc::new(SystemClock),
        policy: backfill_policy(config.segment.request_timeout),
        config: Arc::new(config),
    };
    let worker = &worker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, std::convert::Infallible>(handle_tasks(worker, event.payload).await)
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
