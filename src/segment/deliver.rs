//! Delivering messages to Segment: the one routine ingest, replay and backfill share.
//!
//! [`deliver_messages`] plans `/v1/batch` requests under Segment's size limits, sends each with
//! retries inside a deadline, and bisects a batch Segment refuses for good so that only the
//! messages Segment refuses on their own end up dead-lettered.

use std::ops::Range;
use std::time::Duration;

use tokio::time::Instant;

use super::batch::{batch_body, plan_batches};
use super::retry::{Disposition, MAX_RETRY_AFTER, backoff, classify};
use crate::config::SegmentTarget;
use crate::ports::{Clock, Deliver};

/// A request is not worth starting with less time than this left.
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(250);

/// How hard one batch is tried within an invocation.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// HTTP requests per batch at most, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt, doubled after each (with jitter).
    pub base_delay: Duration,
    /// Longest backoff between attempts (a `Retry-After` is honoured up to 300 s instead).
    pub max_delay: Duration,
    /// Timeout of one request, also capped by the time left before the deadline.
    pub request_timeout: Duration,
}

impl RetryPolicy {
    /// Segment-friendly defaults for one invocation: a few quick tries, then park.
    pub fn new(request_timeout: Duration) -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(3),
            request_timeout,
        }
    }
}

/// How a batch ended. `attempts` counts HTTP requests made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Segment took the batch.
    Delivered {
        /// HTTP requests made.
        attempts: u32,
    },
    /// Still failing when retries or time ran out: park it.
    Retryable {
        /// HTTP requests made.
        attempts: u32,
        /// The last failure, for the envelope.
        last_error: String,
        /// The `Retry-After` of the last answer, when it sent one: the earliest Segment wants
        /// this batch again, so replay hides the record at least this long.
        retry_after: Option<Duration>,
    },
    /// Segment refused it in a way that will not change: dead-letter it.
    Permanent {
        /// HTTP requests made.
        attempts: u32,
        /// The last failure, for the envelope.
        last_error: String,
        /// The HTTP status Segment answered.
        status: u16,
    },
}

impl BatchOutcome {
    /// HTTP requests made for this batch.
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Delivered { attempts } | Self::Retryable { attempts, .. } | Self::Permanent { attempts, .. } => {
                *attempts
            }
        }
    }
}

/// Sends `messages` as one batch until it succeeds, fails permanently, or retries or time run
/// out. Each attempt is stamped with a fresh `sentAt`; no attempt may run past `deadline`.
pub async fn deliver_batch<S: AsRef<str>>(
    segment: &dyn Deliver,
    clock: &dyn Clock,
    target: &SegmentTarget,
    messages: &[S],
    policy: &RetryPolicy,
    deadline: Instant,
) -> BatchOutcome {
    let mut attempts = 0;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining < MIN_ATTEMPT_TIME {
            let last_error = if attempts == 0 {
                "no time left to try".to_owned()
            } else {
                "out of time".to_owned()
            };
            return BatchOutcome::Retryable {
                attempts,
                last_error,
                retry_after: None,
            };
        }
        attempts += 1;
        let body = batch_body(messages, clock.now());
        let error = match segment
            .deliver(target, body, policy.request_timeout.min(remaining))
            .await
        {
            Ok(()) => return BatchOutcome::Delivered { attempts },
            Err(error) => error,
        };
        let after = match classify(&error) {
            Disposition::Permanent => {
                return BatchOutcome::Permanent {
                    attempts,
                    last_error: error.to_string(),
                    status: error.status().unwrap_or_default(),
                };
            }
            Disposition::Retry { after } => after,
        };
        let wait = after.map_or_else(
            || backoff(attempts, policy.base_delay, policy.max_delay, 1.0 + fastrand::f64()),
            |after| after.min(MAX_RETRY_AFTER),
        );
        if attempts >= policy.max_attempts || Instant::now() + wait + MIN_ATTEMPT_TIME > deadline {
            return BatchOutcome::Retryable {
                attempts,
                last_error: error.to_string(),
                retry_after: after,
            };
        }
        tracing::debug!(attempt = attempts, wait_ms = wait.as_millis() as u64, error = %error, "Retrying Segment batch.");
        tokio::time::sleep(wait).await;
    }
}

/// A run of messages, by index into the slice given to [`deliver_messages`], that ended alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    /// Indices of the messages, contiguous.
    pub range: Range<usize>,
    /// HTTP requests made for this run's last batch.
    pub attempts: u32,
    /// What Segment (or the transport) last said, never message content.
    pub last_error: String,
    /// Segment's last `Retry-After` for this run, when it sent one.
    pub retry_after: Option<Duration>,
}

/// How a set of messages fared: every index is in exactly one of `delivered`, `retryable`
/// (park it) or `permanent` (dead-letter it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryReport {
    /// Messages Segment answered 2xx for.
    pub delivered: usize,
    /// Runs still failing when retries or time ran out.
    pub retryable: Vec<Undelivered>,
    /// Runs Segment refused for good; after bisection each is a single message, unless the
    /// status says the whole request is at fault (401, 403, 404).
    pub permanent: Vec<Undelivered>,
    /// HTTP requests made, all batches and halves included.
    pub requests: u32,
    /// Requests beyond the first of each batch sent.
    pub retries: u32,
    /// Milliseconds each batch took, retries included, for the latency metric.
    pub latencies_ms: Vec<f64>,
}

impl DeliveryReport {
    /// Messages not delivered and worth another try later.
    pub fn retryable_count(&self) -> usize {
        self.retryable.iter().map(|u| u.range.len()).sum()
    }

    /// The longest `Retry-After` Segment gave for a run still failing: how long it asked us to
    /// wait before sending any of them again.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retryable.iter().filter_map(|run| run.retry_after).max()
    }

    /// Messages Segment refused for good.
    pub(crate) fn permanent_count(&self) -> usize {
        self.permanent.iter().map(|u| u.range.len()).sum()
    }

    /// The report of `messages` messages held without a request: all retryable, 0 attempts.
    pub(crate) fn held(messages: usize, last_error: String) -> Self {
        let run = Undelivered {
            range: 0..messages,
            attempts: 0,
            last_error,
            retry_after: None,
        };
        Self {
            retryable: if messages > 0 { vec![run] } else { Vec::new() },
            ..Self::default()
        }
    }
}

/// Where and how [`deliver_messages`] sends.
pub struct Delivery<'a> {
    /// The Segment port.
    pub segment: &'a dyn Deliver,
    /// Stamps `sentAt` on every attempt.
    pub clock: &'a dyn Clock,
    /// The route's Segment source.
    pub target: &'a SegmentTarget,
    /// Retries per batch.
    pub policy: &'a RetryPolicy,
    /// No request may run past this instant.
    pub deadline: Instant,
}

/// A function that sends to Segment: ingest and replay hold the Segment port, the clock and the
/// retry policy, and send every route's messages the same way through [`deliver_messages`].
pub(crate) trait SendsToSegment {
    /// The Segment port, the clock that stamps `sentAt`, and the retry policy.
    fn sending_parts(&self) -> (&dyn Deliver, &dyn Clock, &RetryPolicy);

    /// Sends `messages` to `target`, no request running past `deadline`.
    async fn send_messages(&self, target: &SegmentTarget, messages: &[&str], deadline: Instant) -> DeliveryReport {
        let (segment, clock, policy) = self.sending_parts();
        let delivery = Delivery {
            segment,
            clock,
            target,
            policy,
            deadline,
        };
        deliver_messages(&delivery, messages).await
    }
}

/// Sends `messages` (each one Segment message as JSON) in as few `/v1/batch` requests as
/// Segment's limits allow. A batch refused with a permanent 4xx other than 401/403/404 is split
/// in halves and retried, down to single messages, while time lasts; halves left untried when
/// time runs out are reported retryable. Costs at most about 2·log2(batch size) extra requests
/// per refused message.
pub async fn deliver_messages<S: AsRef<str>>(delivery: &Delivery<'_>, messages: &[S]) -> DeliveryReport {
    let mut report = DeliveryReport::default();
    for batch in plan_batches(messages) {
        let started = Instant::now();
        let mut pending = vec![batch];
        while let Some(range) = pending.pop() {
            let outcome = deliver_one(delivery, &messages[range.clone()]).await;
            report.requests += outcome.attempts();
            report.retries += outcome.attempts().saturating_sub(1);
            settle_range(&mut report, &mut pending, range, outcome);
        }
        report.latencies_ms.push(started.elapsed().as_secs_f64() * 1_000.0);
    }
    report
}

async fn deliver_one<S: AsRef<str>>(delivery: &Delivery<'_>, messages: &[S]) -> BatchOutcome {
    deliver_batch(
        delivery.segment,
        delivery.clock,
        delivery.target,
        messages,
        delivery.policy,
        delivery.deadline,
    )
    .await
}

/// Files one batch's outcome in the report, or queues its halves when it should be bisected.
/// 401, 403 and 404 are about the request (key, source, endpoint), so halves would be refused
/// alike and are not tried.
/// Halves are pushed last-first so they are sent in message order.
fn settle_range(
    report: &mut DeliveryReport,
    pending: &mut Vec<Range<usize>>,
    range: Range<usize>,
    outcome: BatchOutcome,
) {
    match outcome {
        BatchOutcome::Delivered { .. } => report.delivered += range.len(),
        BatchOutcome::Retryable {
            attempts,
            last_error,
            retry_after,
        } => report.retryable.push(Undelivered {
            range,
            attempts,
            last_error,
            retry_after,
        }),
        BatchOutcome::Permanent { attempts, status, .. } if range.len() > 1 && !matches!(status, 401 | 403 | 404) => {
            tracing::debug!(messages = range.len(), attempts, "Segment refused a batch; bisecting.");
            let middle = range.start + range.len() / 2;
            pending.push(middle..range.end);
            pending.push(range.start..middle);
        }
        BatchOutcome::Permanent {
            attempts, last_error, ..
        } => report.permanent.push(Undelivered {
            range,
            attempts,
            last_error,
            retry_after: None,
        }),
    }
}
