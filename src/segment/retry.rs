//! Which failures are worth another try, and how long to wait. Follows the policy Segment's
//! own analytics-next adopted in 2026 (<https://github.com/segmentio/analytics-next>).

use std::time::{Duration, SystemTime};

use crate::ports::AttemptError;

/// Longest `Retry-After` we wait for inside one invocation; analytics-next caps it the same
/// way. A longer one ends the invocation's tries at once, and the message is parked.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Longest `Retry-After` kept for later: SQS's maximum visibility timeout, 12 hours
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html>).
/// Replay hides a record at least this long when Segment asks (see `replay::expiry`).
pub(crate) const MAX_RETRY_AFTER_KEPT: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Try again, after `after` if Segment said so.
    Retry { after: Option<Duration> },
    /// The same request will fail again: dead-letter it.
    Permanent,
}

/// 408, 410, 429, 460 and 5xx other than 501 and 505 are transient, as are timeouts and
/// connection failures. Every other status is permanent.
pub(crate) fn classify(error: &AttemptError) -> Disposition {
    match *error {
        AttemptError::Timeout | AttemptError::Connection(_) => Disposition::Retry { after: None },
        AttemptError::Status { status, retry_after } => match status {
            408 | 410 | 429 | 460 => Disposition::Retry { after: retry_after },
            501 | 505 => Disposition::Permanent,
            500..=599 => Disposition::Retry { after: retry_after },
            _ => Disposition::Permanent,
        },
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3), capped at
/// [`MAX_RETRY_AFTER_KEPT`]. Seconds with a fraction (`1.5`, which some proxies send) are
/// rounded up rather than ignored: waiting a little longer is safe, not waiting is not.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = match (value.parse::<u64>(), value.parse::<f64>()) {
        (Ok(seconds), _) => Duration::from_secs(seconds),
        (_, Ok(seconds)) if seconds.is_finite() && seconds >= 0.0 => {
            Duration::from_secs_f64(seconds.ceil().min(MAX_RETRY_AFTER_KEPT.as_secs_f64()))
        }
        _ => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(delay.min(MAX_RETRY_AFTER_KEPT))
}

/// Exponential backoff with full jitter in [1, 2): `base × 2^(attempt-1) × jitter`, capped.
pub(super) fn backoff(attempt: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let factor = 2f64.powi(attempt.saturating_sub(1).min(30) as i32) * jitter.clamp(1.0, 2.0);
    base.mul_f64(factor).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Disposition {
        classify(&AttemptError::Status {
            status: code,
            retry_after: None,
        })
    }

    #[test]
    fn transient_statuses_retry_and_the_rest_are_permanent() {
        for code in [408, 410, 429, 460, 500, 502, 503, 504, 511, 599] {
            assert!(matches!(status(code), Disposition::Retry { .. }), "{code}");
        }
        for code in [400, 401, 403, 404, 413, 422, 501, 505, 301] {
            assert_eq!(status(code), Disposition::Permanent, "{code}");
        }
        assert!(matches!(classify(&AttemptError::Timeout), Disposition::Retry { .. }));
        assert!(matches!(
            classify(&AttemptError::Connection("reset")),
            Disposition::Retry { .. }
        ));
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("86400", now), Some(MAX_RETRY_AFTER_KEPT));
        assert_eq!(
            parse_retry_after("600", now),
            Some(Duration::from_secs(600)),
            "kept for replay"
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("1.5", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 120.0 ", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("1e9", now), Some(MAX_RETRY_AFTER_KEPT));
        for refused in ["-1", "-0.5", "NaN", "inf"] {
            assert_eq!(parse_retry_after(refused, now), None, "{refused}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let (base, cap) = (Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(backoff(1, base, cap, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(3, base, cap, 1.5), Duration::from_millis(600));
        assert_eq!(backoff(30, base, cap, 1.9), cap);
    }
}
