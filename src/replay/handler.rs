//! Handling one SQS invocation of RetryQueue. Each record is judged on its own and records run
//! concurrently; a record that could not be settled is reported as a batch-item failure so
//! SQS keeps it.

use std::sync::Arc;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures_util::future::join_all;
use tokio::time::Instant;
use tracing::Instrument;

use super::{is_expired, visibility_backoff};
use crate::config::Config;
use crate::metrics::{Metric, Metrics};
use crate::park::{DeadLetterReason, Envelope, decode};
use crate::ports::{Clock, Deliver, Park, Postpone};
use crate::segment::{BatchOutcome, RetryPolicy, deliver_batch, plan_batches};

/// The parts of an SQS record replay needs.
#[derive(Debug, Clone)]
pub struct ReplayRecord {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub receive_count: u32,
}

/// How a record ended. Only `StillFailing` and `Unsettled` leave it on the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    Replayed,
    StillFailing,
    DeadLettered(DeadLetterReason),
    /// A dead-letter send failed; SQS must keep the record.
    Unsettled,
}

pub struct Replay {
    pub config: Arc<Config>,
    pub segment: Arc<dyn Deliver>,
    pub dead_letters: Arc<dyn Park>,
    pub retry_queue: Arc<dyn Postpone>,
    pub clock: Arc<dyn Clock>,
    pub policy: RetryPolicy,
}

impl Replay {
    /// Handles an SQS event; `deadline` is when Segment attempts must stop.
    pub async fn handle(&self, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
        let records: Vec<ReplayRecord> = event.records.into_iter().map(ReplayRecord::from).collect();
        let mut metrics = Metrics::default();
        let outcomes = self.replay_all(&records, deadline, &mut metrics).await;
        metrics.emit("replay");
        let mut response = SqsBatchResponse::default();
        for (record, outcome) in records.iter().zip(outcomes) {
            if matches!(outcome, RecordOutcome::StillFailing | RecordOutcome::Unsettled) {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// Replays records concurrently and logs the invocation's counts.
    pub async fn replay_all(
        &self,
        records: &[ReplayRecord],
        deadline: Instant,
        metrics: &mut Metrics,
    ) -> Vec<RecordOutcome> {
        let results = join_all(records.iter().map(|record| {
            let span =
                tracing::info_span!("record", message_id = %record.message_id, receive_count = record.receive_count);
            self.replay_one(record, deadline).instrument(span)
        }))
        .await;
        let mut outcomes = Vec::with_capacity(results.len());
        let (mut replayed, mut still_failing, mut expired, mut dead_lettered, mut unsettled) = (0, 0, 0, 0, 0);
        for (outcome, record_metrics) in results {
            metrics.add(Metric::SegmentRequests, record_metrics.0 as usize);
            metrics.add(Metric::SegmentRetries, record_metrics.0.saturating_sub(1) as usize);
            match outcome {
                RecordOutcome::Replayed => replayed += 1,
                RecordOutcome::StillFailing => still_failing += 1,
                RecordOutcome::DeadLettered(reason) => {
                    dead_lettered += 1;
                    expired += usize::from(reason == DeadLetterReason::Expired);
                    metrics.add_reason(Metric::DeadLettered, reason.as_str(), record_metrics.1);
                    metrics.add(Metric::DeadLettered, record_metrics.1);
                }
                RecordOutcome::Unsettled => unsettled += 1,
            }
            if outcome == RecordOutcome::Replayed {
                metrics.add(Metric::Replayed, record_metrics.1);
            }
            if outcome == RecordOutcome::DeadLettered(DeadLetterReason::Expired) {
                metrics.add(Metric::Expired, record_metrics.1);
            }
            outcomes.push(outcome);
        }
        let summary = "Replay invocation handled.";
        if dead_lettered + unsettled > 0 {
            tracing::error!(
                records = records.len(),
                replayed,
                still_failing,
                expired,
                dead_lettered,
                unsettled,
                "{summary}"
            );
        } else if still_failing > 0 {
            tracing::warn!(
                records = records.len(),
                replayed,
                still_failing,
                expired,
                dead_lettered,
                unsettled,
                "{summary}"
            );
        } else {
            tracing::info!(
                records = records.len(),
                replayed,
                still_failing,
                expired,
                dead_lettered,
                unsettled,
                "{summary}"
            );
        }
        outcomes
    }

    /// Returns the outcome and (Segment requests made, messages settled by this outcome).
    async fn replay_one(&self, record: &ReplayRecord, deadline: Instant) -> (RecordOutcome, (u32, usize)) {
        let now = self.clock.now();
        let envelope = match decode(&record.body) {
            Ok(envelope) => envelope,
            Err(error) => {
                let mut dead = Envelope::new("unknown", now, 0, &error.to_string()).dead(DeadLetterReason::Undecodable);
                dead.body = Some(record.body.clone());
                return (self.dead_letter(dead, 1).await, (0, 1));
            }
        };
        let count = envelope.messages.len();
        let max_age = self.config.replay_max_age;
        let prior_attempts = envelope.attempts + record.receive_count.saturating_sub(1);
        if is_expired(now, envelope.first_failed_at, max_age) {
            let dead = Envelope {
                attempts: prior_attempts,
                ..envelope
            }
            .dead(DeadLetterReason::Expired);
            return (self.dead_letter(dead, count).await, (0, count));
        }
        let Some(route) = self.config.routing.find(&envelope.route) else {
            let dead = Envelope {
                last_error: "route is no longer configured".to_owned(),
                ..envelope
            };
            return (
                self.dead_letter(dead.dead(DeadLetterReason::UnknownRoute), count).await,
                (0, count),
            );
        };
        let target = &self.config.routing.route(route).target;

        let messages: Vec<&str> = envelope.messages.iter().map(|m| m.get()).collect();
        let mut requests = 0;
        let mut retry_error = None;
        let mut permanent = Vec::new();
        for range in plan_batches(&messages) {
            let outcome = deliver_batch(
                &*self.segment,
                &*self.clock,
                target,
                &messages[range.clone()],
                &self.policy,
                deadline,
            )
            .await;
            requests += outcome.attempts();
            match outcome {
                BatchOutcome::Delivered { .. } => {}
                BatchOutcome::Retryable { last_error, .. } => retry_error = Some(last_error),
                BatchOutcome::Permanent { last_error, .. } => permanent.push((range, last_error)),
            }
        }
        if let Some(error) = retry_error {
            // Permanent failures wait for the next round too, so they are dead-lettered once.
            let delay = visibility_backoff(record.receive_count, now, envelope.first_failed_at, max_age);
            if let Err(postpone_error) = self.retry_queue.postpone(&record.receipt_handle, delay).await {
                tracing::warn!(error = %postpone_error, "Could not extend visibility; SQS default applies.");
            }
            tracing::warn!(error = %error, delay_s = delay.as_secs(), "Replay still failing; will retry.");
            return (RecordOutcome::StillFailing, (requests, count));
        }
        if permanent.is_empty() {
            return (RecordOutcome::Replayed, (requests, count));
        }
        let failed: usize = permanent.iter().map(|(range, _)| range.len()).sum();
        let mut outcome = RecordOutcome::DeadLettered(DeadLetterReason::PermanentFailure);
        for (range, last_error) in permanent {
            let mut dead = Envelope::new(
                &envelope.route,
                envelope.first_failed_at,
                prior_attempts + requests,
                &last_error,
            )
            .dead(DeadLetterReason::PermanentFailure);
            dead.messages = envelope.messages[range].to_vec();
            if self.dead_letter(dead, failed).await == RecordOutcome::Unsettled {
                outcome = RecordOutcome::Unsettled;
            }
        }
        (outcome, (requests, failed))
    }

    async fn dead_letter(&self, envelope: Envelope, messages: usize) -> RecordOutcome {
        let reason = envelope.reason.unwrap_or(DeadLetterReason::Undecodable);
        match self.dead_letters.park(&[envelope.to_json()]).await {
            Ok(()) => {
                tracing::error!(reason = reason.as_str(), messages, "Envelope dead-lettered.");
                RecordOutcome::DeadLettered(reason)
            }
            Err(error) => {
                tracing::error!(reason = reason.as_str(), error = %error, "Dead-letter send failed; record stays queued.");
                RecordOutcome::Unsettled
            }
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
        Self {
            message_id: message.message_id.unwrap_or_default(),
            receipt_handle: message.receipt_handle.unwrap_or_default(),
            body: message.body.unwrap_or_default(),
            receive_count,
        }
    }
}
