//! The `replay` Lambda: RetryQueue SQS events → Segment, or the dead-letter queue.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use currents_segment::deadline::{self, FINISH_RESERVE};
use currents_segment::wiring::Wired;
use lambda_runtime::{LambdaEvent, service_fn};

fn main() -> anyhow::Result<()> {
    currents_segment::telemetry::init();
    // SAFETY: no other thread exists yet; the runtime is built below.
    if let Err(error) = unsafe { currents_segment::aws_env::clean_process_env() } {
        tracing::error!(error = %error, "Cannot start replay.");
        return Err(error.into());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let wired = Wired::from_env("replay")
        .await
        .inspect_err(|e| tracing::error!(error = %e, "Cannot start replay."))?;
    let wired = &wired;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = deadline::for_invocation(event.context.deadline, FINISH_RESERVE);
        let replay = wired.replay().await;
        Ok::<SqsBatchResponse, std::convert::Infallible>(replay.handle(event.payload, deadline).await)
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
