//! One RetryQueue record, as named steps: decode → judge (expired, route, reason) → deliver or
//! re-map → settle (acknowledge, back off, or dead-letter). Replay never acknowledges a record
//! whose events are in neither Segment nor a queue.

use std::time::Duration;

use serde_json::value::RawValue;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::handler::{Replay, ReplayRecord};
use super::{is_expired, replay_delay, unreadable_given_up};
use crate::config::{RouteId, SegmentTarget};
use crate::deadline;
use crate::keycheck::Plan;
use crate::park::{DeadLetterReason, Envelope, PayloadPointer, ReadError, ResolveError, decode, decode_resolving};
use crate::segment::{Delivery, DeliveryReport, deliver_messages};
use crate::settle::{Provenance, group_by_route, invalid_envelopes, refused_envelopes, run_envelopes};
use crate::transform::transform;

/// How a record ended. Only `StillFailing` and `Unsettled` leave it on the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordOutcome {
    /// Everything in it was delivered (or skipped by a documented rule).
    Replayed,
    /// Segment is still failing; SQS keeps it, hidden for a backoff.
    StillFailing,
    /// DeadLetterQueue accepted what could not be delivered; the rest was delivered.
    DeadLettered(DeadLetterReason),
    /// A dead-letter send failed; SQS must keep the record.
    Unsettled,
    /// Segment took part of it; the rest was parked anew as new envelopes.
    Requeued,
}

impl RecordOutcome {
    /// Whether SQS must keep the record (a batch-item failure).
    pub(crate) fn keeps_record(self) -> bool {
        matches!(self, Self::StillFailing | Self::Unsettled)
    }
}

/// What one record cost and settled, for metrics.
#[derive(Debug, Clone)]
pub(crate) struct RecordReport {
    pub outcome: RecordOutcome,
    pub requests: u32,
    pub retries: u32,
    pub delivered: usize,
    pub skipped: usize,
    pub dead_lettered: usize,
    /// Why `dead_lettered` went to DeadLetterQueue, whenever anything did: also for a record
    /// whose rest was requeued, whose outcome is then `Requeued`.
    pub dead_reason: Option<DeadLetterReason>,
    pub requeued: usize,
    /// Messages held, not sent, because their route's write key or region is bad, by route.
    pub held: Vec<(RouteId, usize)>,
    /// Routes whose write-key check this record made ended "unknown" (delivered as usual).
    pub checks_failed: Vec<RouteId>,
    /// The longest `Retry-After` Segment sent for what is still failing.
    pub retry_after: Option<Duration>,
}

/// What a record's deliveries left to settle.
#[derive(Debug, Default)]
struct Leftovers {
    /// Dead-letter bodies: still-invalid events and messages Segment refused.
    dead: Vec<String>,
    /// RetryQueue bodies: messages still failing, for when some of the record went through.
    requeue: Vec<String>,
    requeued: usize,
    retry_error: Option<String>,
    invalid: bool,
}

impl Leftovers {
    fn add(&mut self, delivery: &DeliveryReport, messages: &[&str], from: Provenance<'_>, max_bytes: usize) {
        self.dead.extend(refused_envelopes(delivery, messages, from, max_bytes));
        self.requeue
            .extend(run_envelopes(&delivery.retryable, messages, from, None, max_bytes));
        self.requeued += delivery.retryable_count();
        if self.retry_error.is_none() {
            self.retry_error = delivery.retryable.first().map(|r| r.last_error.clone());
        }
    }
}

impl RecordReport {
    /// A report of `outcome` alone, with `dead_lettered` events and nothing else counted.
    pub(super) fn only(outcome: RecordOutcome, dead_lettered: usize) -> Self {
        Self {
            outcome,
            requests: 0,
            retries: 0,
            delivered: 0,
            skipped: 0,
            dead_lettered,
            dead_reason: match outcome {
                RecordOutcome::DeadLettered(reason) => Some(reason),
                _ => None,
            },
            requeued: 0,
            held: Vec::new(),
            checks_failed: Vec::new(),
            retry_after: None,
        }
    }

    fn add(&mut self, delivery: &DeliveryReport) {
        self.requests += delivery.requests;
        self.retries += delivery.retries;
        self.delivered += delivery.delivered;
        self.dead_lettered += delivery.permanent_count();
        self.retry_after = self.retry_after.max(delivery.retry_after());
    }
}

impl Replay {
    /// Replays one record; `deadline` is the invocation's, further capped by the record's window.
    pub(super) async fn replay_one(&self, record: &ReplayRecord, deadline: Instant) -> RecordReport {
        let now = self.clock.now();
        let envelope = match self.open(record, now).await {
            Ok(envelope) => envelope,
            Err(report) => return report,
        };
        let prior_attempts = envelope.attempts + record.receive_count.saturating_sub(1);
        if is_expired(now, envelope.first_failed_at, self.config.replay_max_age) {
            let held = self.held_cause(&envelope.route).await;
            return self.expire(envelope, prior_attempts, held).await;
        }
        let route = self.config.routing.find(&envelope.route);
        match (route, envelope.reason) {
            (_, Some(DeadLetterReason::Undecodable)) => {
                self.back_unchanged(record, DeadLetterReason::Undecodable).await
            }
            (None, Some(reason)) => self.back_unchanged(record, reason).await,
            (None, None) => self.unknown_route(envelope).await,
            (Some(_), _) if envelope.messages.is_empty() && envelope.events.is_empty() => {
                self.back_unchanged(record, envelope.reason.unwrap_or(DeadLetterReason::Undecodable))
                    .await
            }
            (Some(route), _) => {
                let deadline =
                    deadline::no_later_than(deadline, now, envelope.first_failed_at + self.config.replay_max_age);
                self.resend(record, &envelope, route, prior_attempts, deadline).await
            }
        }
    }

    /// Decodes the record's envelope, following an S3 pointer in either format, and the pointer
    /// a redriven `payload_missing` or `unreadable` dead letter kept (so restoring the object,
    /// or S3 access, is enough to replay it). A body that is not an envelope is dead-lettered
    /// as `undecodable`; a pointer that cannot be read is settled by [`Replay::unreadable`].
    async fn open(&self, record: &ReplayRecord, now: OffsetDateTime) -> Result<Envelope, RecordReport> {
        let body = kept_pointer(&record.body).unwrap_or_else(|| record.body.clone());
        let error = match decode_resolving(&body, self.payloads.as_deref()).await {
            Ok(envelope) => return Ok(envelope),
            Err(ResolveError::Read(error)) => return Err(self.unreadable(record, &body, &error, now).await),
            Err(ResolveError::NoStore) => {
                return Err(self.back_unchanged(record, DeadLetterReason::Undecodable).await);
            }
            Err(ResolveError::Envelope(error)) => error,
        };
        Err(self
            .dead_with_body(&body, DeadLetterReason::Undecodable, &error.to_string(), now)
            .await)
    }

    /// Settles a record whose S3 payload could not be read. A payload that is gone for good
    /// (its object or bucket deleted) is dead-lettered as `payload_missing`, one that is not
    /// text as `undecodable`, both with the pointer kept. Any other failure keeps the record
    /// queued for another try, until [`unreadable_given_up`] says the record has been tried
    /// long enough; it is then dead-lettered as `unreadable`, the pointer kept.
    async fn unreadable(
        &self,
        record: &ReplayRecord,
        body: &str,
        error: &ReadError,
        now: OffsetDateTime,
    ) -> RecordReport {
        let max_age = self.config.replay_max_age;
        let reason = match error {
            ReadError::Gone(_) => DeadLetterReason::PayloadMissing,
            ReadError::NotText => DeadLetterReason::Undecodable,
            ReadError::Failed(_) if unreadable_given_up(now, record.sent_at, record.receive_count, max_age) => {
                DeadLetterReason::Unreadable
            }
            ReadError::Failed(_) => {
                tracing::warn!(error = %error, receive_count = record.receive_count,
                    "Could not read an offloaded envelope; will retry.");
                return RecordReport::only(RecordOutcome::StillFailing, 0);
            }
        };
        let at = PayloadPointer::from_body(body).map(|p| format!(" at s3://{}/{}", p.bucket, p.key));
        let last_error = format!("{error}{}", at.unwrap_or_default());
        self.dead_with_body(body, reason, &last_error, now).await
    }

    /// Dead-letters `body` exactly as received, inside an envelope that says why.
    async fn dead_with_body(
        &self,
        body: &str,
        reason: DeadLetterReason,
        last_error: &str,
        now: OffsetDateTime,
    ) -> RecordReport {
        let mut dead = Envelope::new("unknown", now, 0, last_error).dead(reason);
        dead.body = Some(body.to_owned());
        self.dead_letter(vec![dead.to_json()], reason, 1).await
    }

    /// The `last_error` of a route that is held now (bad write key or region), so an envelope
    /// that expires while held says why it was never sent.
    async fn held_cause(&self, route: &str) -> Option<String> {
        let id = self.config.routing.find(route)?;
        match self.key_health.plan_one(id, &self.config.routing, &self.targets).await {
            Plan::Hold(hold) => Some(hold.last_error(route)),
            Plan::Send(_) => None,
        }
    }

    async fn expire(&self, envelope: Envelope, prior_attempts: u32, held: Option<String>) -> RecordReport {
        let count = envelope.messages.len() + envelope.events.len();
        let dead = Envelope {
            attempts: prior_attempts,
            last_error: held.unwrap_or(envelope.last_error.clone()),
            ..envelope
        }
        .dead(DeadLetterReason::Expired);
        self.dead_letter(vec![dead.to_json()], DeadLetterReason::Expired, count)
            .await
    }

    async fn unknown_route(&self, envelope: Envelope) -> RecordReport {
        let count = envelope.messages.len() + envelope.events.len();
        let dead = Envelope {
            last_error: "route is no longer configured".to_owned(),
            ..envelope
        }
        .dead(DeadLetterReason::UnknownRoute);
        self.dead_letter(vec![dead.to_json()], DeadLetterReason::UnknownRoute, count)
            .await
    }

    /// Sends the record's body back to DeadLetterQueue as it came: what replay cannot act on.
    async fn back_unchanged(&self, record: &ReplayRecord, reason: DeadLetterReason) -> RecordReport {
        let count = decode(&record.body).map_or(1, |e| e.messages.len() + e.events.len());
        self.dead_letter(vec![record.body.clone()], reason, count).await
    }

    /// Delivers a parked envelope's messages, and re-maps an `invalid_event` envelope's raw
    /// events through the current configuration first.
    async fn resend(
        &self,
        record: &ReplayRecord,
        envelope: &Envelope,
        route: RouteId,
        prior_attempts: u32,
        deadline: Instant,
    ) -> RecordReport {
        let from = Provenance {
            route: &envelope.route,
            first_failed_at: envelope.first_failed_at,
            prior_attempts,
        };
        let raws: Vec<&RawValue> = envelope.events.iter().map(|e| &**e).collect();
        let remapped = transform(&raws, &self.config.routing, route);
        let mut groups: Vec<(RouteId, Vec<&str>)> = group_by_route(&remapped.messages);
        let parked: Vec<&str> = envelope.messages.iter().map(|m| m.get()).collect();
        if !parked.is_empty() {
            groups.push((route, parked));
        }
        let mut report = RecordReport::only(RecordOutcome::Replayed, remapped.invalid.len());
        report.skipped = remapped.skipped.len();
        let retried = Provenance {
            prior_attempts: prior_attempts + 1,
            ..from
        };
        let mut left = Leftovers {
            dead: invalid_envelopes(&remapped.invalid, retried, self.max_bytes()),
            invalid: !remapped.invalid.is_empty(),
            ..Leftovers::default()
        };
        let routes: Vec<RouteId> = groups.iter().map(|(route, _)| *route).collect();
        let plans = self
            .key_health
            .plans(&routes, &self.config.routing, &self.targets)
            .await;
        report.checks_failed.clone_from(&plans.failed_checks);
        // `plans` holds one plan per route asked, in the order asked.
        for ((route, messages), (_, plan)) in groups.iter().zip(&plans.plans) {
            let name = &self.config.routing.route(*route).name;
            let delivery = match plan {
                Plan::Hold(hold) => {
                    tracing::error!(route = %name, cause = hold.code(), events = messages.len(),
                        "Held parked events for a write key Segment would drop; not sent. Fix the route's write key or region (README, Troubleshooting).");
                    report.held.push((*route, messages.len()));
                    DeliveryReport::held(messages.len(), hold.last_error(name))
                }
                Plan::Send(target) => self.deliver(target, messages, deadline).await,
            };
            let route_from = Provenance { route: name, ..from };
            left.add(&delivery, messages, route_from, self.max_bytes());
            report.add(&delivery);
        }
        self.finish(record, envelope.first_failed_at, left, report).await
    }

    /// Settles a record after its deliveries. If Segment still fails for all of it, the record
    /// backs off on RetryQueue; if it took some, the undelivered rest is parked anew (same
    /// `first_failed_at`) so what Segment has is not sent again.
    async fn finish(
        &self,
        record: &ReplayRecord,
        first_failed_at: OffsetDateTime,
        left: Leftovers,
        report: RecordReport,
    ) -> RecordReport {
        let progressed = report.delivered + report.dead_lettered + report.skipped > 0;
        match left.retry_error {
            Some(error) if !progressed => self.back_off(record, first_failed_at, &error, report).await,
            Some(_) => self.split_off(record, first_failed_at, left, report).await,
            None => self.settle(left.dead, report, left.invalid).await,
        }
    }

    /// Dead-letters what Segment refused, parks the retryable rest as new envelopes, then
    /// acknowledges the record. If either queue refuses, the whole record stays.
    async fn split_off(
        &self,
        record: &ReplayRecord,
        first_failed_at: OffsetDateTime,
        left: Leftovers,
        report: RecordReport,
    ) -> RecordReport {
        let settled = self.settle(left.dead, report.clone(), left.invalid).await;
        if settled.outcome == RecordOutcome::Unsettled {
            return settled;
        }
        match self.requeue.park(&left.requeue).await {
            Ok(()) => {
                tracing::warn!(
                    messages = left.requeued,
                    "Segment took part of an envelope; the rest is parked anew."
                );
                RecordReport {
                    outcome: RecordOutcome::Requeued,
                    requeued: left.requeued,
                    ..settled
                }
            }
            Err(error) => {
                let reason = error.to_string();
                self.back_off(record, first_failed_at, &reason, report).await
            }
        }
    }

    async fn deliver(&self, target: &SegmentTarget, messages: &[&str], deadline: Instant) -> DeliveryReport {
        let delivery = Delivery {
            segment: &*self.segment,
            clock: &*self.clock,
            target,
            policy: &self.policy,
            deadline,
        };
        deliver_messages(&delivery, messages).await
    }

    /// Keeps the record on RetryQueue, hidden for the backoff. Nothing is dead-lettered yet, so
    /// refused messages are dead-lettered once, when the record finally settles.
    async fn back_off(
        &self,
        record: &ReplayRecord,
        first_failed_at: OffsetDateTime,
        error: &str,
        report: RecordReport,
    ) -> RecordReport {
        let delay = replay_delay(
            record.receive_count,
            self.clock.now(),
            first_failed_at,
            self.config.replay_max_age,
            report.retry_after,
        );
        if let Err(postpone_error) = self.retry_queue.postpone(&record.receipt_handle, delay).await {
            tracing::warn!(error = %postpone_error, "Could not extend visibility; SQS default applies.");
        }
        tracing::warn!(error = %error, delay_s = delay.as_secs(), "Replay still failing; will retry.");
        RecordReport {
            outcome: RecordOutcome::StillFailing,
            dead_lettered: 0,
            dead_reason: None,
            ..report
        }
    }

    /// Acknowledges the record once DeadLetterQueue holds what Segment refused or what is
    /// still invalid.
    async fn settle(&self, dead: Vec<String>, report: RecordReport, invalid: bool) -> RecordReport {
        if dead.is_empty() {
            return report;
        }
        let reason = if invalid {
            DeadLetterReason::InvalidEvent
        } else {
            DeadLetterReason::PermanentFailure
        };
        let settled = self.dead_letter(dead, reason, report.dead_lettered).await;
        RecordReport {
            outcome: settled.outcome,
            dead_reason: settled.dead_reason,
            ..report
        }
    }

    async fn dead_letter(&self, bodies: Vec<String>, reason: DeadLetterReason, messages: usize) -> RecordReport {
        match self.dead_letters.park(&bodies).await {
            Ok(()) => {
                tracing::error!(reason = reason.as_str(), messages, "Envelope dead-lettered.");
                RecordReport::only(RecordOutcome::DeadLettered(reason), messages)
            }
            Err(error) => {
                tracing::error!(reason = reason.as_str(), error = %error, "Dead-letter send failed; record stays queued.");
                RecordReport::only(RecordOutcome::Unsettled, 0)
            }
        }
    }

    fn max_bytes(&self) -> usize {
        self.config.queues.park_message_max_bytes
    }
}

/// The S3 pointer a `payload_missing` or `unreadable` dead letter kept under `body`, when
/// `body` (a record redriven from the DLQ) is such a dead letter.
fn kept_pointer(body: &str) -> Option<String> {
    let kept = [DeadLetterReason::PayloadMissing, DeadLetterReason::Unreadable];
    if !kept.iter().any(|reason| body.contains(reason.as_str())) {
        return None;
    }
    let envelope = decode(body).ok()?;
    let reason = envelope.reason?;
    let pointer = envelope.body.filter(|b| PayloadPointer::from_body(b).is_some())?;
    kept.contains(&reason).then_some(pointer)
}
