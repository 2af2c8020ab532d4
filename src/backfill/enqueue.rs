//! `backfill --enqueue QUEUE_URL`: one `BackfillQueue` message per selected S3 object, sent
//! with `SendMessageBatch` (through [`crate::park::SqsQueue`]), for the `BackfillFunction`
//! Lambda to process in parallel. SQS retries what an invocation could not finish and its own
//! dead-letter queue takes poison files.

use serde::{Deserialize, Serialize};

use super::options::{BackfillOptions, RunOptions};
use super::s3::{S3Source, parse_s3_url, s3_client_from_env};
use super::source::ObjectSource;
use super::{BackfillError, Summary};
use crate::ports::Park;

/// Version of the [`ObjectTask`] message format.
pub(crate) const TASK_VERSION: u32 = 1;

/// One `BackfillQueue` message: an S3 object and the run's options.
/// `{"version":1,"bucket":"b","key":"currents/…avro","options":{"since":…,"route":"default"}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ObjectTask {
    pub version: u32,
    pub bucket: String,
    pub key: String,
    #[serde(default)]
    pub options: RunOptions,
}

/// Lists every object under `source` that `run` selects and enqueues one task for each, a
/// listing page at a time. Returns a summary whose `files_selected` counts the tasks sent.
pub async fn enqueue(
    source: &dyn ObjectSource,
    bucket: &str,
    run: &RunOptions,
    queue: &dyn Park,
) -> Result<Summary, BackfillError> {
    let filter = run.key_filter();
    let mut summary = Summary::default();
    let mut after: Option<String> = None;
    loop {
        let page = source.list_page(after.as_deref()).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        let bodies: Vec<String> = page
            .into_iter()
            .filter(|meta| filter.wants(&meta.key))
            .map(|meta| {
                let task = ObjectTask {
                    version: TASK_VERSION,
                    bucket: bucket.to_owned(),
                    key: meta.key,
                    options: run.clone(),
                };
                serde_json::to_string(&task).unwrap_or_default()
            })
            .collect();
        if !bodies.is_empty() {
            queue.park(&bodies).await.map_err(BackfillError::Enqueue)?;
            summary.files_selected += bodies.len() as u64;
        }
    }
    tracing::info!(objects = summary.files_selected, "Backfill objects enqueued.");
    Ok(summary)
}

/// [`enqueue`] with S3 and SQS clients from the environment.
pub(crate) async fn enqueue_from_env(options: &BackfillOptions, queue_url: &str) -> Result<Summary, BackfillError> {
    let run = options.run_options().map_err(BackfillError::Usage)?;
    let (bucket, prefix) = parse_s3_url(&options.source)
        .ok_or_else(|| BackfillError::Usage("--enqueue needs an s3://bucket/prefix SOURCE".to_owned()))?;
    let source = S3Source::new(s3_client_from_env().await, bucket.clone(), prefix);
    let queue = crate::park::SqsQueue::new(crate::park::client_from_env().await, queue_url);
    enqueue(&source, &bucket, &run, &queue).await
}
