//! [`KeyHealth`]: one function instance's verdicts, per (settings endpoint, write key), each used
//! for at most its route's interval and then checked again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::verdict::{KeyVerdict, Plan, judge, plan};
use crate::config::{DeliveryTargets, KeyCheckOn, RouteId, Routing, SegmentTarget};
use crate::ports::FetchSettings;

/// How long one settings request may take: short, because a cold start or a request waits for
/// it, and an answer that does not come in time only means "unknown" (deliver as usual).
pub const SETTINGS_TIMEOUT: Duration = Duration::from_secs(2);

/// A verdict and when it was reached (tokio's clock, so tests can move it).
struct Entry {
    verdict: KeyVerdict,
    checked_at: Instant,
}

/// Cache key: the settings endpoint and a digest of the write key. A rotated key is a new
/// entry, so it is checked at once; the key itself is never stored here.
type CacheKey = [u8; 32];

/// Per-instance write-key verdicts. At most one settings request per (endpoint, key) is made
/// per interval: refreshes hold the lock, so concurrent invocations or records wait for the
/// one in flight instead of asking again.
pub struct KeyHealth {
    settings: Arc<dyn FetchSettings>,
    timeout: Duration,
    entries: Mutex<HashMap<CacheKey, Entry>>,
}

/// Each asked route's plan, and the routes whose check just failed (fail open).
#[derive(Debug)]
pub struct RoutePlans<'t> {
    /// One plan per route asked for, in the order asked.
    pub plans: Vec<(RouteId, Plan<'t>)>,
    /// Routes whose fresh check ended "unknown": delivered as usual, `WriteKeyCheckFailed`.
    pub failed_checks: Vec<RouteId>,
    /// Settings requests made for this call.
    pub requests: usize,
}

/// One route asked about: its target and, when it is checked, its check and cache key.
struct Asked<'t> {
    id: RouteId,
    target: &'t SegmentTarget,
    check: Option<(&'t KeyCheckOn, CacheKey)>,
}

fn cache_key(on: &KeyCheckOn, target: &SegmentTarget) -> CacheKey {
    let mut digest = Sha256::new();
    digest.update(on.settings_endpoint.as_bytes());
    digest.update([0]);
    digest.update(target.write_key.expose().as_bytes());
    digest.finalize().into()
}

impl KeyHealth {
    /// Verdicts fetched through `settings`, each request bounded by `timeout`.
    pub fn new(settings: Arc<dyn FetchSettings>, timeout: Duration) -> Self {
        Self {
            settings,
            timeout,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The plan of each of `routes` (deduplicated by the caller or not), checking concurrently
    /// every checked route whose verdict is missing or older than its interval.
    pub async fn plans<'t>(
        &self,
        routes: &[RouteId],
        routing: &'t Routing,
        targets: &'t DeliveryTargets,
    ) -> RoutePlans<'t> {
        let asked: Vec<Asked<'t>> = routes
            .iter()
            .map(|&id| {
                let target = targets.get(id);
                let check = routing.route(id).key_check.on().map(|on| (on, cache_key(on, target)));
                Asked { id, target, check }
            })
            .collect();
        let mut entries = self.entries.lock().await;
        let refreshed = self.refresh(&mut entries, &asked).await;
        let mut result = RoutePlans {
            plans: Vec::with_capacity(asked.len()),
            failed_checks: Vec::new(),
            requests: refreshed.len(),
        };
        for Asked { id, target, check } in asked {
            let route = routing.route(id);
            let verdict = check.as_ref().and_then(|(_, key)| entries.get(key)).map(|e| &e.verdict);
            let just_checked = check.as_ref().is_some_and(|(_, key)| refreshed.contains(key));
            if let (true, Some(KeyVerdict::Unknown(reason))) = (just_checked, verdict) {
                tracing::warn!(route = %route.name, reason = %reason,
                    "Could not check the route's write key; delivering as usual.");
                result.failed_checks.push(id);
            }
            result.plans.push((id, plan(target, &route.key_check, verdict)));
        }
        result
    }

    /// Asks the settings CDN, concurrently, about every key of `asked` whose verdict is missing
    /// or too old, once per key, and stores the verdicts. Returns the keys it asked about.
    async fn refresh(&self, entries: &mut HashMap<CacheKey, Entry>, asked: &[Asked<'_>]) -> Vec<CacheKey> {
        let now = Instant::now();
        let mut stale: Vec<(CacheKey, &KeyCheckOn, &SegmentTarget)> = Vec::new();
        for Asked { target, check, .. } in asked {
            let Some((on, key)) = check else { continue };
            let fresh = entries
                .get(key)
                .is_some_and(|e| now.duration_since(e.checked_at) < on.interval);
            if !fresh && !stale.iter().any(|(k, ..)| k == key) {
                stale.push((*key, on, target));
            }
        }
        let answers = join_all(stale.iter().map(|(_, on, target)| {
            self.settings
                .fetch_settings(&on.settings_endpoint, &target.write_key, self.timeout)
        }))
        .await;
        for ((key, ..), answer) in stale.iter().zip(&answers) {
            let verdict = judge(answer);
            entries.insert(
                *key,
                Entry {
                    verdict,
                    checked_at: now,
                },
            );
        }
        stale.into_iter().map(|(key, ..)| key).collect()
    }

    /// The plan of one route (see [`KeyHealth::plans`]); a failed check is logged there, not counted.
    pub(crate) async fn plan_one<'t>(
        &self,
        route: RouteId,
        routing: &'t Routing,
        targets: &'t DeliveryTargets,
    ) -> Plan<'t> {
        let mut plans = self.plans(&[route], routing, targets).await.plans;
        plans.pop().map_or(
            Plan::Send(std::borrow::Cow::Borrowed(targets.get(route))),
            |(_, plan)| plan,
        )
    }

    /// The verdict this instance holds for `route`, without asking: `None` when the route is not
    /// checked or was never checked. For reports such as `check-config --online`.
    pub async fn verdict(&self, route: RouteId, routing: &Routing, targets: &DeliveryTargets) -> Option<KeyVerdict> {
        let on = routing.route(route).key_check.on()?;
        let key = cache_key(on, targets.get(route));
        self.entries.lock().await.get(&key).map(|entry| entry.verdict.clone())
    }

    /// Checks every route of `routing` (a cold start), concurrently.
    pub async fn warm<'t>(&self, routing: &'t Routing, targets: &'t DeliveryTargets) -> RoutePlans<'t> {
        let all: Vec<RouteId> = routing.ids().collect();
        self.plans(&all, routing, targets).await
    }
}
