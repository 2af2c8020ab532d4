//! The outside world, one small trait per thing we do with it. Each has one production
//! adapter (`segment::SegmentHttp`, `park::SqsQueue`, [`SystemClock`]) and fakes in tests.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::config::SegmentTarget;

/// One HTTP attempt at Segment that did not end in 2xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    #[error("Segment answered HTTP {status}")]
    /// Segment answered with a non-2xx status.
    Status {
        /// The HTTP status.
        status: u16,
        /// Segment's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// No answer within the timeout.
    #[error("Segment did not answer within the timeout")]
    Timeout,
    /// The connection failed; the text says how.
    #[error("could not reach Segment ({0})")]
    Connection(&'static str),
}

impl AttemptError {
    /// The HTTP status, when Segment answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::Timeout | Self::Connection(_) => None,
        }
    }
}

/// Sends one ready `/v1/batch` body to a route's Segment source, once.
#[async_trait]
pub trait Deliver: Send + Sync {
    /// Sends `body` to `target`, waiting at most `timeout`.
    async fn deliver(&self, target: &SegmentTarget, body: Vec<u8>, timeout: Duration) -> Result<(), AttemptError>;
}

/// SQS did not durably accept some of what we handed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("queue did not accept {failed} of {total} messages: {reason}")]
pub struct QueueError {
    /// Messages not accepted.
    pub failed: usize,
    /// Messages handed over.
    pub total: usize,
    /// What the queue said.
    pub reason: String,
}

/// Hands envelopes to a queue. `Ok` means every one was accepted durably.
#[async_trait]
pub trait Park: Send + Sync {
    /// Hands over `bodies`, one message each; `Err` says how many were not accepted.
    async fn park(&self, bodies: &[String]) -> Result<(), QueueError>;
}

/// Hides a received message from consumers for `delay`, so a failing delivery backs off.
#[async_trait]
pub trait Postpone: Send + Sync {
    /// Hides the message with `receipt_handle` for `delay`.
    async fn postpone(&self, receipt_handle: &str, delay: Duration) -> Result<(), QueueError>;
}

/// Wall-clock time, passed in so tests can move it.
pub trait Clock: Send + Sync {
    /// The current time, UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The real [`Clock`].
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// What Segment's settings CDN answered for one write key. Never holds the key or the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsAnswer {
    /// HTTP 200, with the whole body (at most `keycheck::SETTINGS_MAX_BYTES`).
    Found(Vec<u8>),
    /// HTTP 404, with the start of the body (Segment's says `Invalid path or write key provided.`).
    NotFound(String),
    /// Anything else (another status, a timeout, no connection, a body too large): why.
    Failed(String),
}

/// Reads a source's settings from Segment's settings CDN
/// (`GET {settings_endpoint}/v1/projects/{write_key}/settings`), once.
#[async_trait]
pub trait FetchSettings: Send + Sync {
    /// Asks `settings_endpoint` about `write_key`, waiting at most `timeout`.
    async fn fetch_settings(
        &self,
        settings_endpoint: &str,
        write_key: &crate::secret::Secret,
        timeout: Duration,
    ) -> SettingsAnswer;
}
