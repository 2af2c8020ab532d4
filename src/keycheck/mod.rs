//! The write-key check: never deliver into a write key Segment will drop.
//!
//! Segment's tracking API answers 200 to a write key it does not know, and to an EU source's
//! key sent to the US host, and drops the events. Its settings CDN
//! (`GET https://cdn.segment.com/v1/projects/<write_key>/settings`, what Segment's SDKs read at
//! start-up) answers 404 with `Invalid path or write key provided.` for a key it does not know,
//! and the source's settings, ingestion host included, for one it knows. It is not a
//! documented API, so only that 404 holds deliveries; anything else fails open.
//!
//! - [`judge`] and [`plan`] are pure: what an answer means, and what a route does with it.
//! - [`KeyHealth`] keeps one instance's verdicts for at most each route's interval.
//! - [`SettingsHttp`] is the production [`crate::ports::FetchSettings`].

mod health;
mod http;
mod verdict;

pub use health::{KeyHealth, RoutePlans, SETTINGS_TIMEOUT};
pub use http::SettingsHttp;
pub use verdict::{Hold, KeyVerdict, Plan, SETTINGS_MAX_BYTES, judge, plan};

use crate::config::Routing;
use crate::metrics::{Metric, Metrics};

/// Counts the checks of `plans` that failed (fail open) as `WriteKeyCheckFailed`, in total and
/// per route. The WARN line is already logged, once per check, by [`KeyHealth::plans`].
pub(crate) fn record_failed_checks(plans: &RoutePlans<'_>, routing: &Routing, metrics: &mut Metrics) {
    metrics.add(Metric::WriteKeyCheckFailed, plans.failed_checks.len());
    for route in &plans.failed_checks {
        metrics.add_route(Metric::WriteKeyCheckFailed, &routing.route(*route).name, 1);
    }
}

/// Logs an ERROR for `events` held on `route` and counts them as `WriteKeyInvalid`, in total and
/// per route. Names the route and the cause, never the key.
pub(crate) fn record_hold(hold: &Hold, route: &str, events: usize, metrics: &mut Metrics) {
    tracing::error!(
        route,
        cause = hold.code(),
        events,
        "Held events for a write key Segment would drop; parked, not sent. Fix the route's write key or region (README, Troubleshooting)."
    );
    metrics.add(Metric::WriteKeyInvalid, events);
    metrics.add_route(Metric::WriteKeyInvalid, route, events);
}
