//! Handling one SQS invocation of RetryQueue. Each record is judged on its own and records run
//! concurrently; a record that could not be settled is reported as a batch-item failure so
//! SQS keeps it.

use std::sync::Arc;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures_util::future::join_all;
use tokio::time::Instant;
use tracing::Instrument;

use super::record::{RecordOutcome, RecordReport};
use crate::config::{Config, DeliveryTargets, Routing};
use crate::metrics::{Metric, Metrics};
use crate::park::{DeadLetterReason, PayloadStore};
use crate::ports::{Clock, Deliver, Park, Postpone};
use crate::segment::RetryPolicy;

/// The parts of an SQS record replay needs.
#[derive(Debug, Clone)]
pub(crate) struct ReplayRecord {
    /// SQS's message id, echoed in a batch-item failure.
    pub message_id: String,
    /// Handle for changing the message's visibility.
    pub receipt_handle: String,
    /// The envelope, as SQS holds it.
    pub body: String,
    /// `ApproximateReceiveCount`, 1 on the first receive.
    pub receive_count: u32,
    /// `SentTimestamp`: when RetryQueue accepted the message; `None` when SQS did not say.
    pub sent_at: Option<time::OffsetDateTime>,
}

/// Everything replay needs, built once at cold start.
pub struct Replay {
    /// Routing, mapping and the replay window.
    pub config: Arc<Config>,
    /// Every route's Segment source, with its write key.
    pub targets: Arc<DeliveryTargets>,
    /// The Segment port.
    pub segment: Arc<dyn Deliver>,
    /// DeadLetterQueue.
    pub dead_letters: Arc<dyn Park>,
    /// RetryQueue, for backing off a record that still fails.
    pub retry_queue: Arc<dyn Postpone>,
    /// RetryQueue again, for parking the undelivered rest of a record Segment took part of.
    pub requeue: Arc<dyn Park>,
    /// `LARGE_PAYLOAD_BUCKET`, for envelopes SQS holds as S3 pointers.
    pub payloads: Option<Arc<dyn PayloadStore>>,
    /// The wall clock: expiry and `sentAt`.
    pub clock: Arc<dyn Clock>,
    /// Retries per Segment batch.
    pub policy: RetryPolicy,
    /// This instance's write-key verdicts: a held route gets no Segment request.
    pub key_health: Arc<crate::keycheck::KeyHealth>,
}

/// Records of one invocation by outcome, for the summary log line.
#[derive(Debug, Default)]
struct Tally {
    replayed: usize,
    still_failing: usize,
    expired: usize,
    dead_lettered: usize,
    unsettled: usize,
}

impl Replay {
    /// Handles an SQS event; `deadline` is when Segment attempts must stop. Emits the
    /// invocation's metrics to stdout (EMF).
    pub async fn handle(&self, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
        let mut metrics = Metrics::default();
        let response = self.handle_recording(event, deadline, &mut metrics).await;
        metrics.emit("replay");
        response
    }

    /// [`Replay::handle`], adding the invocation's metrics to `metrics` instead of emitting them.
    pub async fn handle_recording(
        &self,
        event: SqsEvent,
        deadline: Instant,
        metrics: &mut Metrics,
    ) -> SqsBatchResponse {
        let records: Vec<ReplayRecord> = event.records.into_iter().map(ReplayRecord::from).collect();
        let outcomes = self.replay_all(&records, deadline, metrics).await;
        let mut response = SqsBatchResponse::default();
        for (record, outcome) in records.iter().zip(outcomes) {
            if outcome.keeps_record() {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// Replays records concurrently and logs the invocation's counts.
    async fn replay_all(
        &self,
        records: &[ReplayRecord],
        deadline: Instant,
        metrics: &mut Metrics,
    ) -> Vec<RecordOutcome> {
        let reports = join_all(records.iter().map(|record| {
            let span =
                tracing::info_span!("record", message_id = %record.message_id, receive_count = record.receive_count);
            self.replay_one(record, deadline).instrument(span)
        }))
        .await;
        let mut tally = Tally::default();
        for report in &reports {
            record_metrics(metrics, report, &self.config.routing);
            tally.add(report.outcome);
        }
        tally.log(records.len());
        reports.into_iter().map(|r| r.outcome).collect()
    }
}

fn record_metrics(metrics: &mut Metrics, report: &RecordReport, routing: &Routing) {
    metrics.add(Metric::SegmentRequests, report.requests as usize);
    metrics.add(Metric::SegmentRetries, report.retries as usize);
    metrics.add(Metric::Replayed, report.delivered);
    metrics.add(Metric::Skipped, report.skipped);
    metrics.add(Metric::Parked, report.requeued);
    for (route, held) in &report.held {
        metrics.add(Metric::WriteKeyInvalid, *held);
        metrics.add_route(Metric::WriteKeyInvalid, &routing.route(*route).name, *held);
    }
    metrics.add(Metric::WriteKeyCheckFailed, report.checks_failed.len());
    for route in &report.checks_failed {
        metrics.add_route(Metric::WriteKeyCheckFailed, &routing.route(*route).name, 1);
    }
    // By `dead_reason`, not the outcome: a record that dead-lettered part and requeued the rest
    // ends `Requeued`, and its dead letters count too.
    if let Some(reason) = report.dead_reason {
        metrics.add_reason(Metric::DeadLettered, reason.as_str(), report.dead_lettered);
        metrics.add(Metric::DeadLettered, report.dead_lettered);
        if reason == DeadLetterReason::Expired {
            metrics.add(Metric::Expired, report.dead_lettered);
        }
    }
}

impl Tally {
    fn add(&mut self, outcome: RecordOutcome) {
        match outcome {
            RecordOutcome::Replayed => self.replayed += 1,
            RecordOutcome::StillFailing | RecordOutcome::Requeued => self.still_failing += 1,
            RecordOutcome::DeadLettered(reason) => {
                self.dead_lettered += 1;
                self.expired += usize::from(reason == DeadLetterReason::Expired);
            }
            RecordOutcome::Unsettled => self.unsettled += 1,
        }
    }

    /// ERROR when anything was dead-lettered or left unsettled, WARN when records still fail.
    fn log(&self, records: usize) {
        let Self {
            replayed,
            still_failing,
            expired,
            dead_lettered,
            unsettled,
        } = *self;
        let summary = "Replay invocation handled.";
        if dead_lettered + unsettled > 0 {
            tracing::error!(
                records,
                replayed,
                still_failing,
                expired,
                dead_lettered,
                unsettled,
                "{summary}"
            );
        } else if still_failing > 0 {
            tracing::warn!(
                records,
                replayed,
                still_failing,
                expired,
                dead_lettered,
                unsettled,
                "{summary}"
            );
        } else {
            tracing::info!(
                records,
                replayed,
                still_failing,
                expired,
                dead_lettered,
                unsettled,
                "{summary}"
            );
        }
    }
}

impl From<aws_lambda_events::sqs::SqsMessage> for ReplayRecord {
    fn from(message: aws_lambda_events::sqs::SqsMessage) -> Self {
        let receive_count = message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        // Milliseconds since the epoch, as a string.
        let sent_at = message
            .attributes
            .get("SentTimestamp")
            .and_then(|ms| ms.parse::<i128>().ok())
            .and_then(|ms| time::OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).ok());
        Self {
            message_id: message.message_id.unwrap_or_default(),
            receipt_handle: message.receipt_handle.unwrap_or_default(),
            body: message.body.unwrap_or_default(),
            receive_count,
            sent_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcome: RecordOutcome) -> RecordReport {
        RecordReport::only(outcome, 0)
    }

    /// One record of each outcome, expiries twice, with distinct figures.
    fn sample_reports() -> [RecordReport; 8] {
        let expired = DeadLetterReason::Expired;
        [
            RecordReport {
                requests: 2,
                retries: 1,
                delivered: 3,
                skipped: 1,
                ..report(RecordOutcome::Replayed)
            },
            RecordReport {
                dead_lettered: 2,
                ..report(RecordOutcome::DeadLettered(expired))
            },
            RecordReport {
                dead_lettered: 1,
                ..report(RecordOutcome::DeadLettered(expired))
            },
            RecordReport {
                dead_lettered: 5,
                ..report(RecordOutcome::DeadLettered(DeadLetterReason::InvalidEvent))
            },
            RecordReport {
                requeued: 4,
                ..report(RecordOutcome::Requeued)
            },
            report(RecordOutcome::StillFailing),
            report(RecordOutcome::StillFailing),
            report(RecordOutcome::Unsettled),
        ]
    }

    /// Every outcome is counted once in the summary, and every report's figures reach the
    /// metrics, dead letters under their reason and expiries twice (as dead letters and expired).
    #[test]
    fn each_outcome_is_tallied_and_each_report_reaches_the_metrics() {
        let reports = sample_reports();
        let (mut tally, mut metrics) = (Tally::default(), Metrics::default());
        for report in &reports {
            record_metrics(
                &mut metrics,
                report,
                &crate::config::Config::from_lookup(|_| None).unwrap().routing,
            );
            tally.add(report.outcome);
        }
        let Tally {
            replayed,
            still_failing,
            expired: expired_records,
            dead_lettered,
            unsettled,
        } = tally;
        assert_eq!(
            (replayed, still_failing, expired_records, dead_lettered, unsettled),
            (1, 3, 2, 3, 1)
        );

        let documents: Vec<serde_json::Value> = metrics
            .render("replay", 0)
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let count = |name: &str| documents[0][name].as_f64().unwrap_or(-1.0);
        let totals = [
            "SegmentRequests",
            "SegmentRetries",
            "Replayed",
            "Skipped",
            "Parked",
            "DeadLettered",
            "Expired",
        ];
        assert_eq!(
            totals.map(count),
            [2.0, 1.0, 3.0, 1.0, 4.0, 8.0, 3.0],
            "{}",
            documents[0]
        );
        let by_reason = |reason: &str| {
            documents[1..]
                .iter()
                .find(|d| d["Reason"] == reason)
                .and_then(|d| d["DeadLettered"].as_f64())
        };
        assert_eq!(
            (by_reason("expired"), by_reason("invalid_event")),
            (Some(3.0), Some(5.0))
        );
    }
}
