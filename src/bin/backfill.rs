//! The `BackfillFunction` Lambda: `BackfillQueue` SQS events, one S3 object per record, each
//! replayed into Segment; batch-item failures for the objects it could not finish.
//! Configuration comes through the same wiring as ingest and replay (`currents_segment::wiring`),
//! runtime secret (`SECRETS_ARN`) included, plus `BACKFILL_MAX_RPS` (Segment requests per second
//! per concurrent instance, default 20).

use std::sync::Arc;

use anyhow::Context as _;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use currents_segment::backfill::{
    DEFAULT_MAX_RPS, ObjectSource, RateLimited, S3Source, handle_tasks, s3_client_from_env,
};
use currents_segment::ports::Deliver;
use currents_segment::wiring::Wired;
use lambda_runtime::{LambdaEvent, service_fn};
use tracing::Instrument;

fn main() -> anyhow::Result<()> {
    currents_segment::wiring::start("backfill")?.block_on(run())
}

fn max_rps() -> anyhow::Result<u32> {
    match std::env::var("BACKFILL_MAX_RPS") {
        Ok(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .context("BACKFILL_MAX_RPS must be a whole number above 0"),
        Err(_) => Ok(DEFAULT_MAX_RPS),
    }
}

async fn run() -> anyhow::Result<()> {
    let max_rps = max_rps().inspect_err(|e| tracing::error!(error = %e, "Cannot start backfill."))?;
    let wired = Wired::from_env("backfill")
        .await
        .inspect_err(|e| tracing::error!(error = %e, "Cannot start backfill."))?;
    let s3 = s3_client_from_env().await;
    // One rate limit per instance, across invocations.
    let client: Arc<dyn Deliver> = wired.segment();
    let segment: Arc<dyn Deliver> = Arc::new(RateLimited::new(client, max_rps));
    let (wired, s3, segment) = (&wired, &s3, &segment);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let s3 = s3.clone();
        let source_for =
            Box::new(move |bucket: &str| Arc::new(S3Source::new(s3.clone(), bucket, "")) as Arc<dyn ObjectSource>);
        let span = currents_segment::telemetry::invocation_span("backfill", &event.context.request_id);
        let worker = wired
            .backfill(segment.clone(), source_for)
            .instrument(span.clone())
            .await;
        let response = handle_tasks(&worker, event.payload).instrument(span).await;
        Ok::<SqsBatchResponse, std::convert::Infallible>(response)
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
