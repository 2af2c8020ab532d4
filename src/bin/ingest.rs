//! The `ingest` Lambda: API Gateway HTTP API / Function URL → Segment, parking failures in SQS.

use std::convert::Infallible;
use std::sync::Arc;

use anyhow::Context;
use currents_segment::config::Config;
use currents_segment::ingest::Ingest;
use currents_segment::park::{SqsQueue, client_from_env};
use currents_segment::ports::SystemClock;
use currents_segment::segment::{RetryPolicy, SegmentHttp};
use lambda_http::{Request, service_fn};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    currents_segment::telemetry::init();
    let config = Config::from_env().and_then(|c| c.require_delivery().map(|()| c));
    let config = Arc::new(config.inspect_err(|e| tracing::error!(error = %e, "Cannot start ingest."))?);
    let sqs = client_from_env().await;
    let queues = &config.queues;
    let ingest = Ingest {
        segment: Arc::new(SegmentHttp::new(&config.segment).context("building the Segment client")?),
        retry_queue: Arc::new(SqsQueue::new(
            sqs.clone(),
            queues.retry_queue_url.clone().unwrap_or_default(),
        )),
        dead_letters: Arc::new(SqsQueue::new(
            sqs,
            queues.dead_letter_queue_url.clone().unwrap_or_default(),
        )),
        clock: Arc::new(SystemClock),
        policy: RetryPolicy::new(config.segment.request_timeout),
        config,
    };
    let ingest = &ingest;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, Infallible>(ingest.handle(request).await)
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
