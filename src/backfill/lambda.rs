//! The `BackfillFunction` Lambda's work: each SQS record names one S3 object (an
//! [`ObjectTask`]); the object is processed like one file of a local run, and any record whose
//! object could not be finished is reported as a batch-item failure so SQS tries it again
//! (<https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html>).

use std::sync::Arc;
use tracing::Instrument;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use super::enqueue::ObjectTask;
use super::key::Verdict;
use super::object::process_object;
use super::source::ObjectSource;
use super::{Backfill, Context};
use crate::config::Config;
use crate::keycheck::KeyHealth;
use crate::ports::{Clock, Deliver, Park};
use crate::segment::RetryPolicy;

/// Builds the source for a bucket (the S3 adapter in production).
pub type SourceFor = dyn Fn(&str) -> Arc<dyn ObjectSource> + Send + Sync;

/// What every invocation shares, built once at cold start.
pub struct BackfillWorker {
    /// Builds the object source for a bucket named in a task.
    pub source_for: Box<SourceFor>,
    /// Segment, already wrapped in [`super::RateLimited`] so the cap holds per instance.
    pub segment: Arc<dyn Deliver>,
    /// Where refused and invalid events go (the dead-letter queue).
    pub dead_letters: Arc<dyn Park>,
    /// Wall-clock time, passed in so tests can move it.
    pub clock: Arc<dyn Clock>,
    /// Configuration read at cold start.
    pub config: Arc<Config>,
    /// How Segment requests are retried.
    pub policy: RetryPolicy,
    /// Write-key verdicts, shared by every invocation of the instance.
    pub key_health: Arc<KeyHealth>,
}

/// Processes the objects of one SQS batch, one after another, and names those not finished.
pub async fn handle_tasks(worker: &BackfillWorker, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("record", message_id = %id);
        let body = record.body.as_deref().unwrap_or_default();
        if !process_record(worker, body).instrument(span).await {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// `true` when the object was finished: every record accounted for.
async fn process_record(worker: &BackfillWorker, body: &str) -> bool {
    let task = match serde_json::from_str::<crate::object_only::ObjectOnly<ObjectTask>>(body) {
        Ok(crate::object_only::ObjectOnly(task)) if ObjectTask::readable(task.version) => task,
        _ => {
            tracing::error!(
                "BackfillQueue message is not a version-1 or -2 object task; leaving it to the queue's DLQ."
            );
            return false;
        }
    };
    let deps = Backfill {
        source: (worker.source_for)(&task.bucket),
        segment: worker.segment.clone(),
        dead_letters: worker.dead_letters.clone(),
        clock: worker.clock.clone(),
        config: worker.config.clone(),
        policy: worker.policy.clone(),
        progress_bar: false,
        key_health: worker.key_health.clone(),
    };
    let ctx = match Context::new(deps, task.options, 0) {
        Ok(ctx) => Arc::new(ctx),
        Err(error) => {
            tracing::error!(error = %error, "Cannot process a backfill task.");
            return false;
        }
    };
    let shown = ctx.source.display(&task.key);
    if let Err(error) = super::preflight(&ctx).await {
        tracing::error!(key = %shown, error = %error, "Backfill task held: the route's write key or region is bad.");
        return false;
    }
    match ctx.filter.verdict(&task.key) {
        Verdict::Read => {}
        Verdict::Pass => {
            tracing::info!(key = %shown, "Object not selected by the task's options; nothing to do.");
            return true;
        }
        Verdict::NoQueueHour => {
            tracing::error!(key = %shown, "Queued-window task for an object with no date= hour folder; leaving it to the queue's DLQ.");
            return false;
        }
    }
    let report = process_object(ctx, task.key).await;
    let finished = report.finished();
    tracing::info!(key = %shown, records = report.records, delivered = report.delivered,
        skipped = report.skipped.values().sum::<u64>(), dead_lettered = report.dead_lettered.values().sum::<u64>(),
        finished, error = report.error.as_deref().unwrap_or(""), "Backfill object processed.");
    finished
}
