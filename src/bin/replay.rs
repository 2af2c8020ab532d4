//! The `replay` Lambda: RetryQueue SQS events → Segment, or the dead-letter queue.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use currents_segment::config::Config;
use currents_segment::ingest::{deadline_from_epoch_ms, reserve_for};
use currents_segment::park::{SqsQueue, client_from_env};
use currents_segment::ports::SystemClock;
use currents_segment::replay::Replay;
use currents_segment::segment::{RetryPolicy, SegmentHttp};
use lambda_runtime::{LambdaEvent, service_fn};

/// Time kept back at the end of an invocation for dead-letter sends and the response.
const FINISH_RESERVE: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    currents_segment::telemetry::init();
    let config = Config::from_env().and_then(|c| c.require_delivery().map(|()| c));
    let config = Arc::new(config.inspect_err(|e| tracing::error!(error = %e, "Cannot start replay."))?);
    let sqs = client_from_env().await;
    let queues = &config.queues;
    let replay = Replay {
        segment: Arc::new(SegmentHttp::new(&config.segment).context("building the Segment client")?),
        dead_letters: Arc::new(SqsQueue::new(
            sqs.clone(),
            queues.dead_letter_queue_url.clone().unwrap_or_default(),
        )),
        retry_queue: Arc::new(SqsQueue::new(sqs, queues.retry_queue_url.clone().unwrap_or_default())),
        clock: Arc::new(SystemClock),
        policy: RetryPolicy::new(config.segment.request_timeout),
        config,
    };
    let replay = &replay;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = deadline_from_epoch_ms(event.context.deadline);
        let deadline = deadline - reserve_for(deadline, FINISH_RESERVE);
        Ok::<SqsBatchResponse, std::convert::Infallible>(replay.handle(event.payload, deadline).await)
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
