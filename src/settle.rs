//! Turning what could not be delivered into SQS message bodies: the envelopes ingest and replay
//! both write. Pure functions; the queues themselves sit behind `ports::Park`.

use std::time::Duration;

use serde_json::value::RawValue;
use time::OffsetDateTime;

use crate::config::RouteId;
use crate::park::{DeadLetterReason, Envelope, dead_letter_events, pack_messages};
use crate::segment::{DeliveryReport, Undelivered};
use crate::transform::{Invalid, Mapped};

/// Where an envelope's 48-hour window and attempt count stand.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Provenance<'a> {
    /// The route name the envelope carries.
    pub route: &'a str,
    /// When delivery first failed; replay keeps it across rounds.
    pub first_failed_at: OffsetDateTime,
    /// Segment attempts made before this round.
    pub prior_attempts: u32,
}

/// Envelopes for `invalid` events: one group per distinct error, so each `last_error` is exact.
pub(crate) fn invalid_envelopes(invalid: &[Invalid<'_>], from: Provenance<'_>, max_bytes: usize) -> Vec<String> {
    let mut groups: Vec<(String, Vec<&RawValue>)> = Vec::new();
    for event in invalid {
        let error = event.error.to_string();
        match groups.iter_mut().find(|(e, _)| *e == error) {
            Some((_, raws)) => raws.push(event.raw),
            None => groups.push((error, vec![event.raw])),
        }
    }
    groups
        .iter()
        .flat_map(|(error, raws)| {
            let template = Envelope::new(from.route, from.first_failed_at, from.prior_attempts, error)
                .dead(DeadLetterReason::InvalidEvent);
            dead_letter_events(&template, raws, max_bytes)
        })
        .collect()
}

/// Envelopes for the runs of `messages` that a delivery report lists in `runs`; `reason` is
/// `None` for parking, or the dead-letter reason. Runs that ended with the same error after the
/// same number of attempts share envelopes, so a bisected batch does not become one envelope
/// per message.
pub(crate) fn run_envelopes<S: AsRef<str>>(
    runs: &[Undelivered],
    messages: &[S],
    from: Provenance<'_>,
    reason: Option<DeadLetterReason>,
    max_bytes: usize,
) -> Vec<String> {
    // Runs that share a last error, an attempt count and a `Retry-After` share envelopes.
    type Key<'r> = (&'r str, u32, Option<Duration>);
    let mut groups: Vec<(Key<'_>, Vec<&str>)> = Vec::new();
    for run in runs {
        let key = (run.last_error.as_str(), run.attempts, run.retry_after);
        let run_messages = messages[run.range.clone()].iter().map(AsRef::as_ref);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.extend(run_messages),
            None => groups.push((key, run_messages.collect())),
        }
    }
    let mut bodies = Vec::new();
    for ((last_error, attempts, retry_after), group) in groups {
        let mut template = Envelope::new(
            from.route,
            from.first_failed_at,
            from.prior_attempts + attempts,
            last_error,
        );
        template.reason = reason;
        // Parked only: replay then waits out Segment's `Retry-After` before sending again.
        template.retry_after_s = retry_after
            .filter(|_| reason.is_none())
            .map(|d| d.as_secs_f64().ceil() as u64);
        bodies.extend(pack_messages(&template, &group, max_bytes));
    }
    bodies
}

/// Dead-letter envelopes for everything a report says Segment refused for good.
pub(crate) fn refused_envelopes<S: AsRef<str>>(
    report: &DeliveryReport,
    messages: &[S],
    from: Provenance<'_>,
    max_bytes: usize,
) -> Vec<String> {
    run_envelopes(
        &report.permanent,
        messages,
        from,
        Some(DeadLetterReason::PermanentFailure),
        max_bytes,
    )
}

/// Mapped messages grouped by route, in first-seen order so output stays deterministic.
pub(crate) fn group_by_route(messages: &[Mapped]) -> Vec<(RouteId, Vec<&str>)> {
    let mut groups: Vec<(RouteId, Vec<&str>)> = Vec::new();
    for message in messages {
        match groups.iter_mut().find(|(route, _)| *route == message.route) {
            Some((_, list)) => list.push(&message.json),
            None => groups.push((message.route, vec![&message.json])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::park::decode;

    /// Invalid events are grouped by their error, whatever their order, so each envelope's
    /// `last_error` is the exact error of every event in it.
    #[test]
    fn invalid_events_are_dead_lettered_one_envelope_per_distinct_error() {
        let config = Config::from_lookup(|_| None).unwrap();
        let route = config.routing.find("default").unwrap();
        let (a, b) = (r#""time":"soon""#, r#""time":1764000060,"user":7"#);
        let event = |id: &str, fault: &str| {
            format!(r#"{{"id":"{id}","event_type":"users.behaviors.app.SessionStart",{fault}}}"#)
        };
        let body = format!(
            r#"{{"events":[{},{},{},{}]}}"#,
            event("a1", a),
            event("b1", b),
            event("a2", a),
            event("b2", b)
        );
        let body = body.as_bytes();
        let out = crate::transform::transform_body(body, &config.routing, route).unwrap();
        assert_eq!(out.invalid.len(), 4);
        let from = Provenance {
            route: "default",
            first_failed_at: OffsetDateTime::UNIX_EPOCH,
            prior_attempts: 0,
        };
        let envelopes: Vec<Envelope> = invalid_envelopes(&out.invalid, from, 262_144)
            .iter()
            .map(|body| decode(body).unwrap())
            .collect();
        let ids = |e: &Envelope| -> Vec<String> {
            e.events
                .iter()
                .map(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).unwrap()["id"].to_string())
                .collect()
        };
        assert_eq!(envelopes.len(), 2);
        assert_eq!(ids(&envelopes[0]), [r#""a1""#, r#""a2""#]);
        assert_eq!(ids(&envelopes[1]), [r#""b1""#, r#""b2""#]);
        assert_eq!(envelopes[0].last_error, out.invalid[0].error.to_string());
        assert_eq!(envelopes[1].last_error, out.invalid[1].error.to_string());
        assert_ne!(envelopes[0].last_error, envelopes[1].last_error);
    }
}
