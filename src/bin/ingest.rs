//! The `ingest` Lambda: API Gateway (HTTP or REST API), Function URL or ALB → Segment, parking
//! failures in SQS.

use std::convert::Infallible;

use currents_segment::wiring::Wired;
use lambda_http::http::header::AUTHORIZATION;
use lambda_http::{Request, service_fn};

fn main() -> anyhow::Result<()> {
    currents_segment::wiring::start("ingest")?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let wired = Wired::from_env("ingest")
        .await
        .inspect_err(|e| tracing::error!(error = %e, "Cannot start ingest."))?;
    let wired = &wired;
    lambda_http::run(service_fn(move |request: Request| async move {
        // The token decides whether the secret is re-read before the check (token rotation).
        let headers = request.headers().get_all(AUTHORIZATION);
        let authorization: Vec<&[u8]> = headers.iter().map(|v| v.as_bytes()).collect();
        let ingest = wired.ingest_for(&authorization).await;
        Ok::<_, Infallible>(ingest.handle(request).await)
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
