//! When work must stop: the one place that turns Lambda's deadline, reserves, budgets and the
//! replay window into a `tokio::time::Instant` that Segment attempts must not pass.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use tokio::time::Instant;

/// Used when no usable deadline is given (tests, local emulators).
const DEFAULT_TIME_BUDGET: Duration = Duration::from_secs(20);

/// Epoch milliseconds of 2001-09-09: any real Lambda deadline is later.
const PLAUSIBLE_EPOCH_MS: u64 = 1_000_000_000_000;

/// Time ingest keeps back from Segment retries so parking can still finish.
pub(crate) const PARK_RESERVE: Duration = Duration::from_secs(3);

/// Time replay keeps back for dead-letter sends and the response.
pub const FINISH_RESERVE: Duration = Duration::from_secs(5);

/// Turns Lambda's deadline (epoch milliseconds, from the invocation context) into an
/// `Instant`, minus `reserve`: the reserve, or a third of what is left when the invocation is
/// short, so a small timeout still leaves room to try Segment. A value that cannot be an epoch
/// time counts as no deadline (20 s): `cargo lambda watch` sends its timeout (600000) there.
pub fn for_invocation(deadline_epoch_ms: u64, reserve: Duration) -> Instant {
    let deadline = from_epoch_ms(deadline_epoch_ms);
    deadline - reserve.min(deadline.saturating_duration_since(Instant::now()) / 3)
}

fn from_epoch_ms(deadline_ms: u64) -> Instant {
    if deadline_ms < PLAUSIBLE_EPOCH_MS {
        return Instant::now() + DEFAULT_TIME_BUDGET;
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// How long one backfill run of batches may keep retrying before its file is given up for
/// this run: a backfill has no caller waiting, so it can wait out a Segment hiccup.
pub(crate) const BACKFILL_BATCH_PATIENCE: Duration = Duration::from_secs(300);

/// The deadline of one backfill run of batches: [`BACKFILL_BATCH_PATIENCE`] from now.
pub(crate) fn for_backfill_batch() -> Instant {
    Instant::now() + BACKFILL_BATCH_PATIENCE
}

/// The earlier of `deadline` and `budget` from now.
pub(crate) fn within_budget(deadline: Instant, budget: Duration) -> Instant {
    deadline.min(Instant::now() + budget)
}

/// The earlier of `deadline` and the wall-clock instant `until`, read against `now` from the
/// injected clock. Replay uses it so no Segment attempt runs past an envelope's replay window.
pub(crate) fn no_later_than(deadline: Instant, now: OffsetDateTime, until: OffsetDateTime) -> Instant {
    let left = (until - now).max(time::Duration::ZERO);
    let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
    deadline.min(Instant::now() + left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn left(deadline: Instant) -> Duration {
        deadline.saturating_duration_since(Instant::now())
    }

    #[test]
    fn implausible_deadlines_fall_back_to_the_default_budget() {
        let budget = |ms| left(for_invocation(ms, Duration::ZERO));
        assert!(budget(0) > Duration::from_secs(19));
        assert!(budget(600_000) > Duration::from_secs(19));
        let soon = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 + 5_000;
        assert!(budget(soon) <= Duration::from_secs(5));
        assert!(budget(soon) > Duration::from_secs(3));
    }

    #[test]
    fn the_plausibility_bound_is_itself_an_epoch_time() {
        // 1_000_000_000_000 ms is 2001-09-09: a real (long past) deadline, not "no deadline".
        assert_eq!(left(for_invocation(PLAUSIBLE_EPOCH_MS, Duration::ZERO)), Duration::ZERO);
        assert!(left(for_invocation(PLAUSIBLE_EPOCH_MS - 1, Duration::ZERO)) > Duration::from_secs(19));
    }

    #[test]
    fn the_reserve_is_at_most_a_third_of_what_is_left() {
        let in_9s = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 + 9_000;
        let kept = left(for_invocation(in_9s, Duration::from_secs(5)));
        assert!(
            kept <= Duration::from_secs(6) && kept > Duration::from_millis(5_500),
            "{kept:?}"
        );
        let in_60s = in_9s + 51_000;
        let kept = left(for_invocation(in_60s, Duration::from_secs(5)));
        assert!(
            kept <= Duration::from_secs(55) && kept > Duration::from_secs(54),
            "{kept:?}"
        );
    }

    #[test]
    fn the_replay_window_caps_the_deadline() {
        let now = OffsetDateTime::from_unix_timestamp(1_764_000_000).unwrap();
        let far = Instant::now() + Duration::from_secs(60);
        let capped = no_later_than(far, now, now + time::Duration::seconds(2));
        assert!(left(capped) <= Duration::from_secs(2));
        assert!(left(capped) > Duration::from_millis(1_500));
        assert!(left(no_later_than(far, now, now - time::Duration::seconds(5))) == Duration::ZERO);
        assert!(left(no_later_than(far, now, now + time::Duration::hours(1))) > Duration::from_secs(59));
        assert!(left(within_budget(far, Duration::from_secs(1))) <= Duration::from_secs(1));
    }

    #[test]
    fn a_backfill_batch_may_wait_out_its_whole_patience() {
        let left = left(for_backfill_batch());
        assert!(left <= BACKFILL_BATCH_PATIENCE && left > BACKFILL_BATCH_PATIENCE - Duration::from_secs(5));
    }
}
