//! [`Replay`] and everything it does, in the order it happens. An SQS invocation of RetryQueue
//! ([`Replay::handle`]) replays its records concurrently; a record that could not be settled
//! is reported as a batch-item failure so SQS keeps it. One record
//! (`Replay::replay_one`) goes decode → judge → deliver or re-map → settle (acknowledge, back
//! off, or dead-letter). Replay never acknowledges a record whose events are in neither
//! Segment nor a queue.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures_util::future::join_all;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use tokio::time::Instant;
use tracing::Instrument;

use super::expiry::{replay_delay, unreadable_given_up};
use super::record::{ReplayRecord, Verdict, judge};
use super::report::{RecordOutcome, RecordReport, Sent, Settlement, Tally};
use crate::config::{Config, DeliveryTargets, RouteId};
use crate::deadline;
use crate::dlq::Requeue;
use crate::keycheck::Plan;
use crate::metrics::Metrics;
use crate::park::{
    DeadLetterReason, Envelope, PayloadPointer, PayloadStore, ReadError, ResolveError, decode, decode_resolving,
};
use crate::ports::{Clock, Deliver, Park, Postpone, QueueError};
use crate::segment::{DeliveryReport, RetryPolicy, SendsToSegment};
use crate::settle::{Provenance, group_by_route, invalid_envelopes, refused_envelopes, run_envelopes};
use crate::transform::transform;

/// Everything replay needs, built once at cold start.
pub struct Replay {
    /// Routing, mapping and the replay window.
    pub config: Arc<Config>,
    /// Every route's Segment source, with its write key.
    pub targets: Arc<DeliveryTargets>,
    /// The Segment port.
    pub segment: Arc<dyn Deliver>,
    /// DeadLetterQueue: [`Park`] for envelopes replay writes, [`crate::dlq::Forward`] for a
    /// record it sends back unchanged, message attributes and all.
    pub dead_letters: Arc<dyn Requeue>,
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

/// One invocation.
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
            let span = tracing::info_span!("record", message_id = %record.message_id,
                receive_count = record.receive_count, route = tracing::field::Empty);
            self.replay_one(record, deadline).instrument(span)
        }))
        .await;
        let mut tally = Tally::default();
        for report in &reports {
            report.add_to(metrics, &self.config.routing);
            tally.add(report.settled.outcome);
        }
        tally.log(records.len());
        reports.into_iter().map(|r| r.settled.outcome).collect()
    }
}

/// One record: decode → judge → deliver or re-map → settle.
impl Replay {
    /// Replays one record; `deadline` is the invocation's, further capped by the record's window.
    async fn replay_one(&self, record: &ReplayRecord, deadline: Instant) -> RecordReport {
        let now = self.clock.now();
        let envelope = match self.open(record, now).await {
            Ok(envelope) => envelope,
            Err(settled) => return RecordReport::unsent(settled),
        };
        // The record's span names the envelope's route, when it is a configured one.
        let route = self
            .config
            .routing
            .find(&envelope.route)
            .map_or("unknown", |_| envelope.route.as_str());
        tracing::Span::current().record("route", route);
        let prior_attempts = record.prior_attempts(&envelope);
        let max_age = self.config.replay_max_age;
        let settled = match judge(&envelope, &self.config.routing, now, max_age, record.sent_at) {
            Verdict::Expired => self.expire(envelope, prior_attempts).await,
            Verdict::Wait(delay) => self.wait(record, delay).await,
            Verdict::BackUnchanged(reason) => self.back_unchanged(record, reason).await,
            Verdict::UnknownRoute => self.unknown_route(envelope).await,
            Verdict::Resend(route) => {
                let deadline = deadline::no_later_than(deadline, now, envelope.first_failed_at + max_age);
                return self.resend(record, &envelope, route, prior_attempts, deadline).await;
            }
        };
        RecordReport::unsent(settled)
    }

    /// Decodes the record's envelope ([`ReplayRecord::body_to_open`]), following an S3 pointer
    /// in either format. A body that is not an envelope is dead-lettered as `undecodable`; a
    /// pointer that cannot be read is settled by [`Replay::unreadable`].
    async fn open(&self, record: &ReplayRecord, now: OffsetDateTime) -> Result<Envelope, Settlement> {
        let body = record.body_to_open();
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
    ) -> Settlement {
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
                return Settlement::plain(RecordOutcome::StillFailing);
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
    ) -> Settlement {
        let mut dead = Envelope::new("unknown", now, 0, last_error).dead(reason);
        dead.body = Some(body.to_owned());
        self.dead_letter(vec![dead.to_json()], reason, 1).await
    }

    /// Hides a parked record until Segment's `Retry-After` has passed; nothing is sent.
    async fn wait(&self, record: &ReplayRecord, delay: Duration) -> Settlement {
        if let Err(error) = self.retry_queue.postpone(&record.receipt_handle, delay).await {
            tracing::warn!(error = %error, "Could not extend visibility; SQS default applies.");
        }
        tracing::info!(
            delay_s = delay.as_secs(),
            "Waiting out Segment's Retry-After before replaying."
        );
        Settlement::plain(RecordOutcome::Waiting)
    }

    /// Dead-letters an expired envelope. If its route is held now (bad write key or region),
    /// its `last_error` says so: that is why it was never sent.
    async fn expire(&self, envelope: Envelope, prior_attempts: u32) -> Settlement {
        let held = self.held_cause(&envelope.route).await;
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

    /// The `last_error` of a route that is held now, or `None`.
    async fn held_cause(&self, route: &str) -> Option<String> {
        let id = self.config.routing.find(route)?;
        match self.key_health.plan_one(id, &self.config.routing, &self.targets).await {
            Plan::Hold(hold) => Some(hold.last_error(route)),
            Plan::Send(_) => None,
        }
    }

    async fn unknown_route(&self, envelope: Envelope) -> Settlement {
        let count = envelope.messages.len() + envelope.events.len();
        let dead = Envelope {
            last_error: "route is no longer configured".to_owned(),
            ..envelope
        }
        .dead(DeadLetterReason::UnknownRoute);
        self.dead_letter(vec![dead.to_json()], DeadLetterReason::UnknownRoute, count)
            .await
    }

    /// Sends the record back to DeadLetterQueue as it came, body and message attributes (an S3
    /// pointer stays one for AWS's extended clients): what replay cannot act on.
    async fn back_unchanged(&self, record: &ReplayRecord, reason: DeadLetterReason) -> Settlement {
        let count = decode(&record.body).map_or(1, |e| e.messages.len() + e.events.len());
        let sent = self.dead_letters.forward(&record.as_received()).await;
        settle_dead_letter(sent, reason, count)
    }

    /// Delivers a parked envelope's messages, and re-maps an `invalid_event` envelope's raw
    /// events through the current configuration first; then settles the record.
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
        let mut sent = Sent {
            skipped: remapped.skipped.len(),
            undeliverable: remapped.invalid.len(),
            ..Sent::default()
        };
        let retried = Provenance {
            prior_attempts: prior_attempts + 1,
            ..from
        };
        let mut left = Leftovers {
            dead: invalid_envelopes(&remapped.invalid, retried, self.max_bytes()),
            invalid: !remapped.invalid.is_empty(),
            ..Leftovers::default()
        };
        self.deliver_groups(&groups, from, deadline, &mut sent, &mut left).await;
        let settled = self.settle(record, envelope.first_failed_at, left, &sent).await;
        RecordReport { settled, sent }
    }

    /// Delivers each route's messages, or holds them when the route's write key or region is
    /// bad, adding what happened to `sent` and what is left to settle to `left`.
    async fn deliver_groups(
        &self,
        groups: &[(RouteId, Vec<&str>)],
        from: Provenance<'_>,
        deadline: Instant,
        sent: &mut Sent,
        left: &mut Leftovers,
    ) {
        let routes: Vec<RouteId> = groups.iter().map(|(route, _)| *route).collect();
        let plans = self
            .key_health
            .plans(&routes, &self.config.routing, &self.targets)
            .await;
        sent.checks_failed.clone_from(&plans.failed_checks);
        // `plans` holds one plan per route asked, in the order asked.
        for ((route, messages), (_, plan)) in groups.iter().zip(&plans.plans) {
            let name = &self.config.routing.route(*route).name;
            let delivery = match plan {
                Plan::Hold(hold) => {
                    tracing::error!(route = %name, cause = hold.code(), events = messages.len(),
                        "Held parked events for a write key Segment would drop; not sent. Fix the route's write key or region (README, Troubleshooting).");
                    sent.held.push((*route, messages.len()));
                    DeliveryReport::held(messages.len(), hold.last_error(name))
                }
                Plan::Send(target) => self.send_messages(target, messages, deadline).await,
            };
            let route_from = Provenance { route: name, ..from };
            left.add(&delivery, messages, route_from, self.max_bytes());
            sent.add(&delivery);
        }
    }

    /// Settles a record after its deliveries. If Segment still fails for all of it, the record
    /// backs off on RetryQueue; if it took some, the undelivered rest is parked anew (same
    /// `first_failed_at`) so what Segment has is not sent again.
    async fn settle(
        &self,
        record: &ReplayRecord,
        first_failed_at: OffsetDateTime,
        left: Leftovers,
        sent: &Sent,
    ) -> Settlement {
        let progressed = sent.delivered + sent.undeliverable + sent.skipped > 0;
        match left.retry_error {
            Some(error) if !progressed => self.back_off(record, first_failed_at, &error, sent.retry_after).await,
            Some(_) => self.split_off(record, first_failed_at, left, sent).await,
            None => self.dead_letter_rest(left.dead, sent.undeliverable, left.invalid).await,
        }
    }

    /// Dead-letters what Segment refused, parks the retryable rest as new envelopes, then
    /// acknowledges the record. If either queue refuses, the whole record stays.
    async fn split_off(
        &self,
        record: &ReplayRecord,
        first_failed_at: OffsetDateTime,
        left: Leftovers,
        sent: &Sent,
    ) -> Settlement {
        let dead = self.dead_letter_rest(left.dead, sent.undeliverable, left.invalid).await;
        if dead.outcome == RecordOutcome::Unsettled {
            return dead;
        }
        match self.requeue.park(&left.requeue).await {
            Ok(()) => {
                tracing::warn!(
                    messages = left.requeued,
                    "Segment took part of an envelope; the rest is parked anew."
                );
                dead.then_requeued(left.requeued)
            }
            Err(error) => {
                let reason = error.to_string();
                self.back_off(record, first_failed_at, &reason, sent.retry_after).await
            }
        }
    }

    /// Keeps the record on RetryQueue, hidden for the backoff (at least Segment's
    /// `retry_after`). Nothing is dead-lettered yet, so refused messages are dead-lettered once,
    /// when the record finally settles.
    async fn back_off(
        &self,
        record: &ReplayRecord,
        first_failed_at: OffsetDateTime,
        error: &str,
        retry_after: Option<Duration>,
    ) -> Settlement {
        let delay = replay_delay(
            record.receive_count,
            self.clock.now(),
            first_failed_at,
            self.config.replay_max_age,
            retry_after,
        );
        if let Err(postpone_error) = self.retry_queue.postpone(&record.receipt_handle, delay).await {
            tracing::warn!(error = %postpone_error, "Could not extend visibility; SQS default applies.");
        }
        tracing::warn!(error = %error, delay_s = delay.as_secs(), "Replay still failing; will retry.");
        Settlement::plain(RecordOutcome::StillFailing)
    }

    /// Acknowledges the record once DeadLetterQueue holds what Segment refused or what is
    /// still invalid (`dead`, `events` events in all).
    async fn dead_letter_rest(&self, dead: Vec<String>, events: usize, invalid: bool) -> Settlement {
        if dead.is_empty() {
            return Settlement::plain(RecordOutcome::Replayed);
        }
        let reason = if invalid {
            DeadLetterReason::InvalidEvent
        } else {
            DeadLetterReason::PermanentFailure
        };
        self.dead_letter(dead, reason, events).await
    }

    async fn dead_letter(&self, bodies: Vec<String>, reason: DeadLetterReason, messages: usize) -> Settlement {
        let parked = self.dead_letters.park(&bodies).await;
        settle_dead_letter(parked, reason, messages)
    }

    fn max_bytes(&self) -> usize {
        self.config.queues.park_message_max_bytes
    }
}

/// Settles a record once DeadLetterQueue took (or refused) what was sent for it.
fn settle_dead_letter(sent: Result<(), QueueError>, reason: DeadLetterReason, messages: usize) -> Settlement {
    match sent {
        Ok(()) => {
            tracing::error!(reason = reason.as_str(), messages, "Envelope dead-lettered.");
            Settlement::dead_lettered(reason, messages)
        }
        Err(error) => {
            tracing::error!(reason = reason.as_str(), error = %error, "Dead-letter send failed; record stays queued.");
            Settlement::plain(RecordOutcome::Unsettled)
        }
    }
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

impl SendsToSegment for Replay {
    fn sending_parts(&self) -> (&dyn Deliver, &dyn Clock, &RetryPolicy) {
        (&*self.segment, &*self.clock, &self.policy)
    }
}
