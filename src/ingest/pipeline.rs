//! One Currents request end to end, as named steps: authenticate → decode → map → deliver →
//! settle → answer. Each step is a small function; `process` only sequences them.

use std::sync::Arc;

use serde::Serialize;
use tokio::time::Instant;

use super::body::{DecodedBody, isolate_undecodable};
use super::request::IngestRequest;
use super::{IngestError, authorize, decode_body};
use crate::config::{Config, DEFAULT_ROUTE_NAME, DeliveryTargets, RouteId, Routing};
use crate::currents::BodyError;
use crate::deadline;
use crate::keycheck::{self, Hold, KeyHealth, Plan};
use crate::metrics::{Metric, Metrics};
use crate::park::DeadLetterReason;
use crate::ports::{Clock, Deliver, Park, QueueError};
use crate::segment::{DeliveryReport, RetryPolicy, SendsToSegment};
use crate::settle::{Provenance, group_by_route, invalid_envelopes, refused_envelopes, run_envelopes};
use crate::transform::{Invalid, Mapped, Transformed, transform_body, transform_text};

/// The 200 answer. `received` always equals the sum of the other four.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Events in the body.
    pub received: usize,
    /// Events Segment answered 2xx for.
    pub delivered: usize,
    /// Events SQS accepted onto RetryQueue.
    pub parked: usize,
    /// Events left out by a documented rule.
    pub skipped: usize,
    /// Events SQS accepted onto DeadLetterQueue.
    pub dead_lettered: usize,
}

/// Everything ingest needs, built once at cold start.
pub struct Ingest {
    /// Routing, mapping and limits.
    pub config: Arc<Config>,
    /// Every route's Segment source, with its write key.
    pub targets: Arc<DeliveryTargets>,
    /// The Segment port.
    pub segment: Arc<dyn Deliver>,
    /// RetryQueue: messages Segment did not take in time.
    pub retry_queue: Arc<dyn Park>,
    /// DeadLetterQueue: invalid events and messages Segment refused for good.
    pub dead_letters: Arc<dyn Park>,
    /// Stamps `sentAt` and envelopes' `first_failed_at`.
    pub clock: Arc<dyn Clock>,
    /// Retries per Segment batch.
    pub policy: RetryPolicy,
    /// This instance's write-key verdicts: a route whose key Segment would drop is held.
    pub key_health: Arc<KeyHealth>,
}

/// One route's messages and how their delivery went.
struct RouteDelivery<'m> {
    route: RouteId,
    messages: Vec<&'m str>,
    report: DeliveryReport,
    /// Why the messages were parked without a request, when they were held.
    held: Option<Hold>,
}

impl Ingest {
    /// Handles one request's bytes: the counts for a 200, or the error that picks the status.
    pub async fn process(&self, request: IngestRequest<'_>, metrics: &mut Metrics) -> Result<Counts, IngestError> {
        let (route_name, route) = self.authenticate(&request)?;
        let body = decode_body(request.body, request.content_encoding, self.config.max_body_bytes)?;
        let repaired;
        let first = match &body {
            DecodedBody::Text(text) => transform_text(text, &self.config.routing, route),
            DecodedBody::Bytes(bytes) => transform_body(bytes, &self.config.routing, route),
        };
        let transformed = match first {
            // One event that is not JSON must not fail its neighbours: isolate it and map again.
            Err(BodyError::NotJson(error)) => {
                repaired = isolate_undecodable(&body).ok_or(BodyError::NotJson(error))?;
                transform_body(&repaired, &self.config.routing, route)?
            }
            other => other?,
        };
        let deadline = deadline::within_budget(request.deadline, self.config.segment.ingest_retry_budget);
        let deliveries = self.deliver(&transformed.messages, deadline, metrics).await;
        self.settle(&transformed, &deliveries, route_name).await?;
        Ok(answer(&transformed, &deliveries, &self.config.routing, metrics))
    }

    /// Checks the bearer token and the method, then finds the request's route.
    fn authenticate<'r>(&self, request: &IngestRequest<'r>) -> Result<(&'r str, RouteId), IngestError> {
        let config = &self.config;
        authorize(
            request.authorization.iter().copied(),
            config.auth_token.as_ref(),
            config.allow_unauthenticated,
        )?;
        if !request.method_is_post {
            return Err(IngestError::MethodNotAllowed);
        }
        let name = request.route.unwrap_or(DEFAULT_ROUTE_NAME);
        let route = config
            .routing
            .find(name)
            .ok_or_else(|| IngestError::UnknownRoute(name.to_owned()))?;
        Ok((name, route))
    }

    /// Sends each route's messages with the shared delivery routine, one route after another,
    /// after the routes' write-key check: a held route's messages are parked without a request.
    async fn deliver<'m>(
        &self,
        messages: &'m [Mapped],
        deadline: Instant,
        metrics: &mut Metrics,
    ) -> Vec<RouteDelivery<'m>> {
        let groups = group_by_route(messages);
        let routes: Vec<RouteId> = groups.iter().map(|(route, _)| *route).collect();
        let plans = self
            .key_health
            .plans(&routes, &self.config.routing, &self.targets)
            .await;
        keycheck::record_failed_checks(&plans, &self.config.routing, metrics);
        let mut deliveries = Vec::new();
        // `plans` holds one plan per route asked, in the order asked.
        for ((route, messages), (_, plan)) in groups.into_iter().zip(plans.plans) {
            let name = &self.config.routing.route(route).name;
            let (report, held) = match plan {
                Plan::Hold(hold) => (DeliveryReport::held(messages.len(), hold.last_error(name)), Some(hold)),
                Plan::Send(target) => (self.send_messages(&target, &messages, deadline).await, None),
            };
            deliveries.push(RouteDelivery {
                route,
                messages,
                report,
                held,
            });
        }
        deliveries
    }

    /// Dead-letters invalid and refused messages and parks the rest. Both queues are written
    /// concurrently; if either refuses, the answer is 503 so Braze re-sends the batch.
    async fn settle(
        &self,
        transformed: &Transformed<'_>,
        deliveries: &[RouteDelivery<'_>],
        route_name: &str,
    ) -> Result<(), IngestError> {
        let now = self.clock.now();
        let max_bytes = self.config.queues.park_message_max_bytes;
        let from = |route| Provenance {
            route,
            first_failed_at: now,
            prior_attempts: 0,
        };
        let mut dead = invalid_envelopes(&transformed.invalid, from(route_name), max_bytes);
        let mut parked = Vec::new();
        for delivery in deliveries {
            let route = from(&self.config.routing.route(delivery.route).name);
            let (report, messages) = (&delivery.report, &delivery.messages);
            dead.extend(refused_envelopes(report, messages, route, max_bytes));
            parked.extend(run_envelopes(&report.retryable, messages, route, None, max_bytes));
        }
        let (dead_result, park_result) = tokio::join!(
            park_all(&*self.dead_letters, &dead),
            park_all(&*self.retry_queue, &parked)
        );
        for error in [&dead_result, &park_result]
            .into_iter()
            .filter_map(|r| r.as_ref().err())
        {
            tracing::error!(error = %error, "Could not store undelivered events; answering 503 so Braze resends.");
        }
        dead_result.map_err(IngestError::Unavailable)?;
        park_result.map_err(IngestError::Unavailable)
    }
}

async fn park_all(queue: &dyn Park, bodies: &[String]) -> Result<(), QueueError> {
    if bodies.is_empty() {
        Ok(())
    } else {
        queue.park(bodies).await
    }
}

/// The counts of a settled request, recorded as metrics and logged.
fn answer(
    transformed: &Transformed<'_>,
    deliveries: &[RouteDelivery<'_>],
    routing: &Routing,
    metrics: &mut Metrics,
) -> Counts {
    let reports = || deliveries.iter().map(|d| &d.report);
    let permanent: usize = reports().map(DeliveryReport::permanent_count).sum();
    let counts = Counts {
        received: transformed.total(),
        delivered: reports().map(|r| r.delivered).sum(),
        parked: reports().map(DeliveryReport::retryable_count).sum(),
        skipped: transformed.skipped.len(),
        dead_lettered: transformed.invalid.len() + permanent,
    };
    record(metrics, &counts, transformed, deliveries, permanent);
    for delivery in deliveries {
        if let Some(hold) = &delivery.held {
            keycheck::record_hold(
                hold,
                &routing.route(delivery.route).name,
                delivery.messages.len(),
                metrics,
            );
        }
    }
    log_outcomes(&counts, deliveries, &transformed.invalid);
    counts
}

fn record(
    metrics: &mut Metrics,
    counts: &Counts,
    transformed: &Transformed<'_>,
    deliveries: &[RouteDelivery<'_>],
    permanent: usize,
) {
    for (metric, value) in [
        (Metric::Received, counts.received),
        (Metric::Skipped, counts.skipped),
        (Metric::Delivered, counts.delivered),
        (Metric::Parked, counts.parked),
        (Metric::DeadLettered, counts.dead_lettered),
    ] {
        metrics.add(metric, value);
    }
    for skipped in &transformed.skipped {
        metrics.add_reason(Metric::Skipped, skipped.reason.as_str(), 1);
    }
    for delivery in deliveries {
        metrics.add(Metric::SegmentRequests, delivery.report.requests as usize);
        metrics.add(Metric::SegmentRetries, delivery.report.retries as usize);
        delivery.report.latencies_ms.iter().for_each(|ms| metrics.latency(*ms));
    }
    for invalid in &transformed.invalid {
        metrics.add_reason(Metric::DeadLettered, DeadLetterReason::InvalidEvent.as_str(), 1);
        metrics.add_reason(Metric::InvalidEvent, invalid.error.code, 1);
    }
    metrics.add_reason(
        Metric::DeadLettered,
        DeadLetterReason::PermanentFailure.as_str(),
        permanent,
    );
}

fn log_outcomes(counts: &Counts, deliveries: &[RouteDelivery<'_>], invalid: &[Invalid<'_>]) {
    for report in deliveries.iter().filter(|d| d.held.is_none()).map(|d| &d.report) {
        for failed in &report.permanent {
            tracing::error!(messages = failed.range.len(), attempts = failed.attempts, error = %failed.last_error,
                "Segment refused messages permanently; dead-lettered.");
        }
        for failed in &report.retryable {
            tracing::warn!(messages = failed.range.len(), attempts = failed.attempts, error = %failed.last_error,
                "Segment delivery failed; parked for replay.");
        }
    }
    for event in invalid {
        tracing::error!(
            index = event.index,
            reason = event.error.code,
            "Invalid event dead-lettered."
        );
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

impl SendsToSegment for Ingest {
    fn sending_parts(&self) -> (&dyn Deliver, &dyn Clock, &RetryPolicy) {
        (&*self.segment, &*self.clock, &self.policy)
    }
}
