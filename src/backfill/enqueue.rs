//! `backfill --enqueue QUEUE_URL`: one `BackfillQueue` message per selected S3 object, sent
//! with `SendMessageBatch` (through [`crate::park::SqsQueue`]), for the `BackfillFunction`
//! Lambda to process in parallel. SQS retries what an invocation could not finish and its own
//! dead-letter queue takes poison files.

use serde::{Deserialize, Serialize};

use super::key::Verdict;
use super::options::{BackfillOptions, RunOptions, Window};
use super::s3::{S3Source, parse_s3_url, s3_client_from_env};
use super::source::ObjectSource;
use super::{BackfillError, Summary};
use crate::ports::Park;

/// Version of an [`ObjectTask`] selecting by event time, the only kind before `--window`.
pub(crate) const TASK_VERSION: u32 = 1;

/// Version of an [`ObjectTask`] with `"window":"queued"`. A `BackfillFunction` built before
/// the window existed refuses it (the message goes to the queue's DLQ, to redrive once the
/// function is updated) instead of reading it as an event-time task and skipping late events.
pub(crate) const QUEUED_TASK_VERSION: u32 = 2;

/// One `BackfillQueue` message: an S3 object and the run's options.
/// `{"version":1,"bucket":"b","key":"currents/…avro","options":{"since":…,"route":"default"}}`;
/// version 2 when `options` has `"window":"queued"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ObjectTask {
    pub version: u32,
    pub bucket: String,
    pub key: String,
    #[serde(default)]
    pub options: RunOptions,
}

impl ObjectTask {
    /// The message version a task with these options is written with.
    pub(crate) fn version_for(options: &RunOptions) -> u32 {
        match options.window {
            Window::Event => TASK_VERSION,
            Window::Queued => QUEUED_TASK_VERSION,
        }
    }

    /// Whether this build reads a message of `version`.
    pub(crate) fn readable(version: u32) -> bool {
        version == TASK_VERSION || version == QUEUED_TASK_VERSION
    }
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
    let mut summary = Summary {
        window: filter.describe(),
        ..Summary::default()
    };
    let mut after: Option<String> = None;
    loop {
        let page = source.list_page(after.as_deref()).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        let mut bodies = Vec::new();
        for meta in page {
            match filter.verdict(&meta.key) {
                Verdict::Read => bodies.push(task_body(bucket, meta.key, run)),
                Verdict::Pass => {}
                Verdict::NoQueueHour => {
                    let shown = source.display(&meta.key);
                    tracing::error!(key = %shown, "Object has no date= hour folder; --window queued cannot place it, not enqueued.");
                    summary.add_without_queue_hour(shown);
                }
            }
        }
        if !bodies.is_empty() {
            queue.park(&bodies).await.map_err(BackfillError::Enqueue)?;
            summary.files_selected += bodies.len() as u64;
        }
    }
    tracing::info!(objects = summary.files_selected, "Backfill objects enqueued.");
    Ok(summary)
}

fn task_body(bucket: &str, key: String, run: &RunOptions) -> String {
    let task = ObjectTask {
        version: ObjectTask::version_for(run),
        bucket: bucket.to_owned(),
        key,
        options: run.clone(),
    };
    serde_json::to_string(&task).unwrap_or_default()
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
