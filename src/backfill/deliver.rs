//! The two calls backfill shares with the HTTP path, each in one small function so the shared
//! routines can replace them: the mapping ([`map_events`]) and Segment delivery
//! ([`deliver_messages`]). Plus [`RateLimited`], the request cap around any [`Deliver`].

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::config::{RouteId, Routing, SegmentTarget};
use crate::currents::BodyError;
use crate::ports::{AttemptError, Clock, Deliver};
use crate::segment::{Delivery, RetryPolicy, deliver_messages as shared_delivery};
use crate::transform::{Transformed, transform_body};

/// The retry policy of a backfill: more patient than ingest's, which must answer Braze within
/// seconds; a backfill can wait out a Segment hiccup.
pub fn backfill_policy(request_timeout: Duration) -> RetryPolicy {
    RetryPolicy {
        max_attempts: 8,
        base_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(30),
        request_timeout,
    }
}

/// Routing, naming, PII and validation: exactly the HTTP path's transform, over a Currents
/// request body (`{"events":[…]}`) built from the records.
pub(crate) fn map_events<'a>(body: &'a [u8], routing: &Routing, route: RouteId) -> Result<Transformed<'a>, BodyError> {
    transform_body(body, routing, route)
}

/// How sending one route's messages ended.
#[derive(Debug, Default)]
pub struct Sent<'m> {
    /// Messages Segment accepted.
    pub delivered: usize,
    /// Refused for good by Segment: (messages, attempts, last error) to dead-letter.
    pub refused: Vec<(&'m [&'m str], u32, String)>,
    /// Still failing when retries or patience ran out: the count and last error; the file
    /// stops here.
    pub unsent: Option<(usize, String)>,
}

/// Sends one route's messages through the shared delivery routine
/// ([`crate::segment::deliver_messages`]: batching, retries, bisection of permanent refusals),
/// giving each run of batches up to [`crate::deadline::BACKFILL_BATCH_PATIENCE`].
pub async fn deliver_messages<'m>(
    segment: &dyn Deliver,
    clock: &dyn Clock,
    target: &SegmentTarget,
    messages: &'m [&'m str],
    policy: &RetryPolicy,
) -> Sent<'m> {
    let delivery = Delivery {
        segment,
        clock,
        target,
        policy,
        deadline: crate::deadline::for_backfill_batch(),
    };
    let report = shared_delivery(&delivery, messages).await;
    let refused = report
        .permanent
        .iter()
        .map(|run| (&messages[run.range.clone()], run.attempts, run.last_error.clone()))
        .collect();
    let unsent = report
        .retryable
        .first()
        .map(|run| (report.retryable_count(), run.last_error.clone()));
    Sent {
        delivered: report.delivered,
        refused,
        unsent,
    }
}

/// Caps the requests made through `inner` at `per_second`, spaced evenly, across every task
/// that shares it. Retries count too, so the cap holds while Segment struggles.
pub struct RateLimited<D> {
    inner: D,
    interval: Duration,
    next: Mutex<Instant>,
}

impl<D> RateLimited<D> {
    /// Wraps `inner` so at most `per_second` requests start per second (0 counts as 1).
    pub fn new(inner: D, per_second: u32) -> Self {
        Self {
            inner,
            interval: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Reserves the next free slot and returns when it starts.
    fn reserve(&self) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let slot = (*next).max(Instant::now());
        *next = slot + self.interval;
        slot
    }
}

#[async_trait]
impl<D: Deliver> Deliver for RateLimited<D> {
    async fn deliver(&self, target: &SegmentTarget, body: Vec<u8>, timeout: Duration) -> Result<(), AttemptError> {
        tokio::time::sleep_until(self.reserve()).await;
        self.inner.deliver(target, body, timeout).await
    }
}

#[async_trait]
impl Deliver for std::sync::Arc<dyn Deliver> {
    async fn deliver(&self, target: &SegmentTarget, body: Vec<u8>, timeout: Duration) -> Result<(), AttemptError> {
        (**self).deliver(target, body, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Count(AtomicUsize);

    #[async_trait]
    impl Deliver for Count {
        async fn deliver(&self, _: &SegmentTarget, _: Vec<u8>, _: Duration) -> Result<(), AttemptError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_cap_spaces_requests_evenly() {
        let limited = RateLimited::new(Count(AtomicUsize::new(0)), 10);
        let target = SegmentTarget {
            endpoint: "http://127.0.0.1:9".into(),
            write_key: crate::secret::Secret::new("wk"),
        };
        let started = Instant::now();
        for _ in 0..21 {
            limited
                .deliver(&target, Vec::new(), Duration::from_secs(1))
                .await
                .unwrap();
        }
        assert_eq!(limited.inner.0.load(Ordering::SeqCst), 21);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }
}
