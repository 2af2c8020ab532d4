//! Delivering one batch with retries, inside a time budget.

use std::time::Duration;

use tokio::time::Instant;

use super::batch::batch_body;
use super::retry::{Disposition, backoff, classify};
use crate::config::SegmentTarget;
use crate::ports::{Clock, Deliver};

/// A request is not worth starting with less time than this left.
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
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
    Delivered {
        attempts: u32,
    },
    /// Still failing when retries or time ran out: park it.
    Retryable {
        attempts: u32,
        last_error: String,
    },
    /// Segment refused it in a way that will not change: dead-letter it.
    Permanent {
        attempts: u32,
        last_error: String,
    },
}

impl BatchOutcome {
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
            return BatchOutcome::Retryable { attempts, last_error };
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
                };
            }
            Disposition::Retry { after } => after,
        };
        let wait =
            after.unwrap_or_else(|| backoff(attempts, policy.base_delay, policy.max_delay, 1.0 + fastrand::f64()));
        if attempts >= policy.max_attempts || Instant::now() + wait + MIN_ATTEMPT_TIME > deadline {
            return BatchOutcome::Retryable {
                attempts,
                last_error: error.to_string(),
            };
        }
        tracing::debug!(attempt = attempts, wait_ms = wait.as_millis() as u64, error = %error, "Retrying Segment batch.");
        tokio::time::sleep(wait).await;
    }
}
