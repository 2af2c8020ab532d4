//! The 48-hour rule and the backoff between replays: pure functions of the clock passed in.

use std::time::Duration;

use time::OffsetDateTime;

/// First visibility delay after a failed replay; it doubles on every receive.
const BACKOFF_BASE: Duration = Duration::from_secs(60);
/// Longest delay between two replays of one envelope. With the doubling this means about 100
/// receives in 48 hours, well under the RetryQueue's `maxReceiveCount` of 500.
const BACKOFF_CAP: Duration = Duration::from_secs(30 * 60);

/// Receives after which a record that cannot be read is given up whatever its age. It is under
/// RetryQueue's `maxReceiveCount` of 1000, so SQS never moves such a record to the DLQ itself
/// (without a reason) nor, within the 5-day retention, deletes it: at RetryQueue's 360 s
/// visibility timeout, 500 receives take about 50 hours.
pub const UNREADABLE_MAX_RECEIVES: u32 = 500;

/// Whether replay stops retrying a record it cannot read (its S3 payload failing to load for a
/// reason that may pass: a timeout, a 5xx, `AccessDenied`) and dead-letters it as `unreadable`:
/// once SQS has held it for `max_age` (the replay window, from its `SentTimestamp`, which is no
/// earlier than its envelope's `first_failed_at`), or once it has been received
/// [`UNREADABLE_MAX_RECEIVES`] times, whichever comes first. `sent_at` is `None` when SQS did
/// not say; the receive count alone then bounds it.
pub fn unreadable_given_up(
    now: OffsetDateTime,
    sent_at: Option<OffsetDateTime>,
    receive_count: u32,
    max_age: Duration,
) -> bool {
    receive_count >= UNREADABLE_MAX_RECEIVES || sent_at.is_some_and(|sent| is_expired(now, sent, max_age))
}

/// An envelope is expired once `max_age` has passed since its first failure. It is then never
/// sent to Segment again.
pub fn is_expired(now: OffsetDateTime, first_failed_at: OffsetDateTime, max_age: Duration) -> bool {
    now - first_failed_at >= max_age
}

/// How long to hide an envelope after its `receive_count`-th failed replay: exponential, capped,
/// and never past the moment it expires, so expiry is judged on time.
pub fn visibility_backoff(
    receive_count: u32,
    now: OffsetDateTime,
    first_failed_at: OffsetDateTime,
    max_age: Duration,
) -> Duration {
    replay_delay(receive_count, now, first_failed_at, max_age, None)
}

/// [`visibility_backoff`], but at least Segment's `Retry-After` when its last answer sent one:
/// Segment asked not to hear about these messages sooner. Still never past expiry, so a long
/// `Retry-After` cannot carry an envelope beyond its window (it is then dead-lettered as
/// expired, never sent late).
pub fn replay_delay(
    receive_count: u32,
    now: OffsetDateTime,
    first_failed_at: OffsetDateTime,
    max_age: Duration,
    retry_after: Option<Duration>,
) -> Duration {
    let exponent = receive_count.saturating_sub(1).min(16);
    let delay = BACKOFF_BASE.saturating_mul(1 << exponent).min(BACKOFF_CAP);
    let delay = delay.max(retry_after.unwrap_or_default());
    let until_expiry = (first_failed_at + max_age - now).max(time::Duration::ZERO);
    let until_expiry = Duration::from_secs(until_expiry.whole_seconds() as u64 + 1);
    delay.min(until_expiry)
}

/// How long replay must still wait before sending a parked envelope again: Segment's
/// `Retry-After` (`retry_after`, from the envelope) counted from when RetryQueue accepted it
/// (`sent_at`, its `SentTimestamp`). `None` when it has passed, when there was none, or when SQS
/// did not say when it took the envelope. Never past the envelope's expiry (plus a second, so
/// expiry is judged on time): a longer wait ends in `expired`, never a late send.
pub(super) fn retry_after_left(
    retry_after: Option<Duration>,
    sent_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
    first_failed_at: OffsetDateTime,
    max_age: Duration,
) -> Option<Duration> {
    let not_before = sent_at? + retry_after?;
    let left = (not_before - now).min(first_failed_at + max_age - now + time::Duration::SECOND);
    (left > time::Duration::ZERO).then(|| Duration::from_secs_f64(left.as_seconds_f64().ceil()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY2: Duration = Duration::from_secs(48 * 3600);

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000 + seconds).unwrap()
    }

    /// Issue 21, case 8's class at ingest: Segment's `Retry-After` on the first attempt is kept
    /// in the parked envelope and replay waits it out from the `SentTimestamp`.
    #[test]
    fn a_parked_retry_after_is_waited_out_from_when_the_queue_took_it() {
        let wait = |retry_after: u64, sent: i64, now: i64| {
            retry_after_left(
                Some(Duration::from_secs(retry_after)),
                Some(at(sent)),
                at(now),
                at(0),
                DAY2,
            )
        };
        assert_eq!(wait(120, 0, 5), Some(Duration::from_secs(115)));
        assert_eq!(wait(120, 0, 119), Some(Duration::from_secs(1)));
        assert_eq!(wait(120, 0, 120), None);
        assert_eq!(wait(120, 0, 500), None);
        // Never past expiry: 12 hours asked an hour before the window closes.
        assert_eq!(wait(12 * 3600, 47 * 3600, 47 * 3600), Some(Duration::from_secs(3601)));
        assert_eq!(retry_after_left(None, Some(at(0)), at(1), at(0), DAY2), None);
        assert_eq!(
            retry_after_left(Some(Duration::from_secs(60)), None, at(1), at(0), DAY2),
            None
        );
    }

    #[test]
    fn expiry_starts_exactly_at_the_max_age() {
        assert!(!is_expired(at(48 * 3600 - 1), at(0), DAY2));
        assert!(is_expired(at(48 * 3600), at(0), DAY2));
        assert!(!is_expired(at(0), at(0), DAY2));
    }

    /// An unreadable record is retried inside the replay window and under the receive cap,
    /// and given up at either edge; without a `SentTimestamp` the cap alone decides.
    #[test]
    fn an_unreadable_record_is_given_up_at_the_window_or_the_receive_cap() {
        let day2 = 48 * 3600;
        assert!(!unreadable_given_up(at(day2 - 1), Some(at(0)), 1, DAY2));
        assert!(unreadable_given_up(at(day2), Some(at(0)), 1, DAY2));
        assert!(!unreadable_given_up(
            at(0),
            Some(at(0)),
            UNREADABLE_MAX_RECEIVES - 1,
            DAY2
        ));
        assert!(unreadable_given_up(at(0), Some(at(0)), UNREADABLE_MAX_RECEIVES, DAY2));
        assert!(!unreadable_given_up(
            at(10 * day2),
            None,
            UNREADABLE_MAX_RECEIVES - 1,
            DAY2
        ));
        assert!(unreadable_given_up(at(0), None, UNREADABLE_MAX_RECEIVES, DAY2));
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_stops_at_expiry() {
        assert_eq!(visibility_backoff(1, at(0), at(0), DAY2), Duration::from_secs(60));
        assert_eq!(visibility_backoff(3, at(0), at(0), DAY2), Duration::from_secs(240));
        assert_eq!(visibility_backoff(40, at(0), at(0), DAY2), BACKOFF_CAP);
        assert_eq!(
            visibility_backoff(40, at(48 * 3600 - 10), at(0), DAY2),
            Duration::from_secs(11)
        );
    }

    /// Issue 21, case 8: Segment asked for 120 s; the first backoff is 60.
    #[test]
    fn a_retry_after_longer_than_the_backoff_wins_but_never_passes_expiry() {
        let after = |s| Some(Duration::from_secs(s));
        assert_eq!(
            replay_delay(1, at(0), at(0), DAY2, after(120)),
            Duration::from_secs(120)
        );
        assert_eq!(
            replay_delay(3, at(0), at(0), DAY2, after(120)),
            Duration::from_secs(240)
        );
        assert_eq!(replay_delay(1, at(0), at(0), DAY2, None), Duration::from_secs(60));
        assert_eq!(
            replay_delay(1, at(0), at(0), DAY2, after(4 * 3600)),
            Duration::from_secs(4 * 3600)
        );
        assert_eq!(
            replay_delay(1, at(48 * 3600 - 10), at(0), DAY2, after(3600)),
            Duration::from_secs(11)
        );
    }
}
