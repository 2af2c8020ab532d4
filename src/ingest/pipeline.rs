//! One Currents request end to end: authenticate, decode, map, deliver, park, count.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::{IngestError, IngestRequest, authorize, decode_body};
use crate::config::{Config, RouteId};
use crate::metrics::{Metric, Metrics};
use crate::park::{DeadLetterReason, Envelope, dead_letter_events, pack_messages};
use crate::ports::{Clock, Deliver, Park};
use crate::segment::{BatchOutcome, RetryPolicy, deliver_batch, plan_batches};
use crate::transform::{Invalid, Mapped, transform_body};

/// Time kept back from Segment retries so parking can still finish before the deadline.
pub const PARK_RESERVE: Duration = Duration::from_secs(3);

/// The 200 answer. `received` always equals the sum of the other four.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub received: usize,
    pub delivered: usize,
    pub parked: usize,
    pub skipped: usize,
    pub dead_lettered: usize,
}

impl Counts {
    pub fn adds_up(&self) -> bool {
        self.received == self.delivered + self.parked + self.skipped + self.dead_lettered
    }
}

/// Everything ingest needs, built once at cold start.
pub struct Ingest {
    pub config: Arc<Config>,
    pub segment: Arc<dyn Deliver>,
    pub retry_queue: Arc<dyn Park>,
    pub dead_letters: Arc<dyn Park>,
    pub clock: Arc<dyn Clock>,
    pub policy: RetryPolicy,
}

/// Messages of one route whose delivery ended the same way.
struct Undelivered<'m> {
    route: RouteId,
    messages: &'m [&'m str],
    attempts: u32,
    last_error: String,
}

impl Ingest {
    pub async fn process(&self, request: IngestRequest<'_>, metrics: &mut Metrics) -> Result<Counts, IngestError> {
        let config = &self.config;
        authorize(
            request.authorization.iter().copied(),
            config.auth_token.as_ref(),
            config.allow_unauthenticated,
        )?;
        if !request.method_is_post {
            return Err(IngestError::MethodNotAllowed);
        }
        let route_name = request.route.unwrap_or(crate::config::DEFAULT_ROUTE_NAME);
        let request_route = config
            .routing
            .find(route_name)
            .ok_or_else(|| IngestError::UnknownRoute(route_name.to_owned()))?;
        let body = decode_body(request.body, request.content_encoding, config.max_body_bytes)?;
        let transformed = transform_body(&body, &config.routing, request_route)?;

        let mut counts = Counts {
            received: transformed.total(),
            skipped: transformed.skipped.len(),
            ..Counts::default()
        };
        metrics.add(Metric::Received, counts.received);
        metrics.add(Metric::Skipped, counts.skipped);
        for skipped in &transformed.skipped {
            metrics.add_reason(Metric::Skipped, skipped.reason.as_str(), 1);
        }

        let by_route = group_by_route(&transformed.messages);
        let deadline = request
            .deadline
            .min(Instant::now() + config.segment.ingest_retry_budget);
        let mut retryable = Vec::new();
        let mut permanent = Vec::new();
        for (route, messages) in &by_route {
            let target = &config.routing.route(*route).target;
            for range in plan_batches(messages) {
                let batch = &messages[range];
                let started = Instant::now();
                let outcome = deliver_batch(&*self.segment, &*self.clock, target, batch, &self.policy, deadline).await;
                metrics.latency(started.elapsed().as_secs_f64() * 1_000.0);
                metrics.add(Metric::SegmentRequests, outcome.attempts() as usize);
                metrics.add(Metric::SegmentRetries, outcome.attempts().saturating_sub(1) as usize);
                match outcome {
                    BatchOutcome::Delivered { .. } => counts.delivered += batch.len(),
                    BatchOutcome::Retryable { attempts, last_error } => retryable.push(Undelivered {
                        route: *route,
                        messages: batch,
                        attempts,
                        last_error,
                    }),
                    BatchOutcome::Permanent { attempts, last_error } => permanent.push(Undelivered {
                        route: *route,
                        messages: batch,
                        attempts,
                        last_error,
                    }),
                }
            }
        }

        let now = self.clock.now();
        let max_bytes = config.queues.park_message_max_bytes;
        let mut dead = dead_letter_invalid(&transformed.invalid, route_name, now, max_bytes);
        for failed in &permanent {
            let route = &config.routing.route(failed.route).name;
            let template =
                Envelope::new(route, now, failed.attempts, &failed.last_error).dead(DeadLetterReason::PermanentFailure);
            dead.extend(pack_messages(&template, failed.messages, max_bytes));
        }
        let mut parked = Vec::new();
        for failed in &retryable {
            let route = &config.routing.route(failed.route).name;
            let template = Envelope::new(route, now, failed.attempts, &failed.last_error);
            parked.extend(pack_messages(&template, failed.messages, max_bytes));
        }

        let (dead_result, park_result) = tokio::join!(
            park_all(&*self.dead_letters, &dead),
            park_all(&*self.retry_queue, &parked)
        );
        for result in [&dead_result, &park_result] {
            if let Err(error) = result {
                tracing::error!(error = %error, "Could not store undelivered events; answering 503 so Braze resends.");
            }
        }
        dead_result.map_err(IngestError::Unavailable)?;
        park_result.map_err(IngestError::Unavailable)?;

        counts.parked = retryable.iter().map(|r| r.messages.len()).sum();
        let permanent_count: usize = permanent.iter().map(|p| p.messages.len()).sum();
        counts.dead_lettered = transformed.invalid.len() + permanent_count;
        metrics.add(Metric::Delivered, counts.delivered);
        metrics.add(Metric::Parked, counts.parked);
        metrics.add(Metric::DeadLettered, counts.dead_lettered);
        for invalid in &transformed.invalid {
            metrics.add_reason(Metric::DeadLettered, DeadLetterReason::InvalidEvent.as_str(), 1);
            metrics.add_reason(Metric::InvalidEvent, invalid.error.code, 1);
        }
        metrics.add_reason(
            Metric::DeadLettered,
            DeadLetterReason::PermanentFailure.as_str(),
            permanent_count,
        );
        log_counts(&counts, &retryable, &permanent, &transformed.invalid);
        Ok(counts)
    }
}

async fn park_all(queue: &dyn Park, bodies: &[String]) -> Result<(), crate::ports::QueueError> {
    if bodies.is_empty() {
        Ok(())
    } else {
        queue.park(bodies).await
    }
}

/// Messages grouped by route, in first-seen order so output stays deterministic.
fn group_by_route(messages: &[Mapped]) -> Vec<(RouteId, Vec<&str>)> {
    let mut groups: Vec<(RouteId, Vec<&str>)> = Vec::new();
    for message in messages {
        match groups.iter_mut().find(|(route, _)| *route == message.route) {
            Some((_, list)) => list.push(&message.json),
            None => groups.push((message.route, vec![&message.json])),
        }
    }
    groups
}

/// One group of envelopes per distinct error, so each envelope's `last_error` is exact.
fn dead_letter_invalid(
    invalid: &[Invalid<'_>],
    route: &str,
    now: time::OffsetDateTime,
    max_bytes: usize,
) -> Vec<String> {
    let mut groups: Vec<(String, Vec<&serde_json::value::RawValue>)> = Vec::new();
    for event in invalid {
        let error = event.error.to_string();
        match groups.iter_mut().find(|(e, _)| *e == error) {
            Some((_, raws)) => raws.push(event.raw),
            None => groups.push((error, vec![event.raw])),
        }
    }
    groups
        .iter()
        .flat_map(|(error, raws)| dead_letter_events(&Envelope::new(route, now, 0, error), raws, max_bytes))
        .collect()
}

fn log_counts(counts: &Counts, retryable: &[Undelivered<'_>], permanent: &[Undelivered<'_>], invalid: &[Invalid<'_>]) {
    for failed in permanent {
        tracing::error!(messages = failed.messages.len(), attempts = failed.attempts, error = %failed.last_error,
            "Segment refused a batch permanently; dead-lettered.");
    }
    for event in invalid {
        tracing::error!(
            index = event.index,
            reason = event.error.code,
            "Invalid event dead-lettered."
        );
    }
    for failed in retryable {
        tracing::warn!(messages = failed.messages.len(), attempts = failed.attempts, error = %failed.last_error,
            "Segment delivery failed; parked for replay.");
    }
    tracing::info!(
        received = counts.received,
        delivered = counts.delivered,
        parked = counts.parked,
        skipped = counts.skipped,
        dead_lettered = counts.dead_lettered,
        "Batch handled."
    );
}
