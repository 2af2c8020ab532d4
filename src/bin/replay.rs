//! The `replay` Lambda: RetryQueue SQS events → Segment, or the dead-letter queue.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use currents_segment::deadline::{self, FINISH_RESERVE};
use currents_segment::wiring::Wired;
use lambda_runtime::{LambdaEvent, service_fn};
use tracing::Instrument;

fn main() -> anyhow::Result<()> {
    currents_segment::wiring::start("replay")?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let wired = Wired::from_env("replay")
        .await
        .inspect_err(|e| tracing::error!(error = %e, "Cannot start replay."))?;
    let wired = &wired;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = deadline::for_invocation(event.context.deadline, FINISH_RESERVE);
        let span = currents_segment::telemetry::invocation_span("replay", &event.context.request_id);
        let replay = wired.replay().instrument(span.clone()).await;
        let response = replay.handle(event.payload, deadline).instrument(span).await;
        Ok::<SqsBatchResponse, std::convert::Infallible>(response)
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
