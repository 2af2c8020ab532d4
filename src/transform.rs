//! The pure path from raw Currents events to Segment messages: parse, route, name, filter,
//! map and validate. No I/O and no clock, so the CLI, the Lambdas and the benchmarks share it.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::config::{RouteId, Routing};
use crate::currents::{BodyError, Event, InvalidEvent, for_each_event_fast, parse_body, parse_event};
use crate::limits::SEGMENT_MAX_MESSAGE_ID_CHARS;
use crate::mapping::{Lifted, Moves, TrackInput, builtin, render_track, segment_name};

/// A serialised Segment `track` message (no `sentAt`) and the route it goes to.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// The route it goes to.
    pub route: RouteId,
    /// The message, as JSON.
    pub json: String,
}

crate::string_enum::string_enum! {
    /// Why an event was left out on purpose. Each reason is a documented rule.
    pub enum SkipReason {
        /// Braze's rule: users without `external_user_id` are not sent unless `INCLUDE_ANONYMOUS`.
        NoExternalUserId = "no_external_user_id",
        /// Not in the built-in table nor in `EVENT_NAMES`, and `UNKNOWN_EVENT_TYPES` is not `send`.
        UnknownEventType = "unknown_event_type",
        /// Left out by the route's `EVENT_TYPES`.
        EventTypeNotSelected = "event_type_not_selected",
    }
}

/// An event left out on purpose.
#[derive(Debug)]
pub struct Skipped<'a> {
    /// Position in the input batch.
    pub index: usize,
    /// The event's id.
    pub id: Cow<'a, str>,
    /// The event's type.
    pub event_type: Cow<'a, str>,
    /// Which rule left it out.
    pub reason: SkipReason,
}

/// An event that cannot become a message Segment would keep; it goes to the dead-letter queue.
#[derive(Debug)]
pub struct Invalid<'a> {
    /// Position in the input batch.
    pub index: usize,
    /// The event's id, when it could be read.
    pub id: Option<String>,
    /// What is wrong.
    pub error: InvalidEvent,
    /// The event as received.
    pub raw: &'a RawValue,
}

/// Every input event lands in exactly one of the three lists.
#[derive(Debug, Default)]
pub struct Transformed<'a> {
    /// Messages for Segment.
    pub messages: Vec<Mapped>,
    /// Events left out on purpose.
    pub skipped: Vec<Skipped<'a>>,
    /// Events to dead-letter.
    pub invalid: Vec<Invalid<'a>>,
}

impl Transformed<'_> {
    /// Number of events accounted for.
    pub fn total(&self) -> usize {
        self.messages.len() + self.skipped.len() + self.invalid.len()
    }
}

enum Outcome<'a> {
    Mapped(Mapped),
    Skipped(SkipReason, Event<'a>),
}

/// The whole pure path for a request body: one pass when every event is well formed, else
/// the per-event path. Both give the same result; the first is just cheaper.
pub fn transform_body<'a>(
    body: &'a [u8],
    routing: &Routing,
    request_route: RouteId,
) -> Result<Transformed<'a>, BodyError> {
    match std::str::from_utf8(body) {
        Ok(text) => transform_text(text, routing, request_route),
        Err(_) => Ok(transform(&parse_body(body)?, routing, request_route)),
    }
}

/// [`transform_body`] for a body already known to be UTF-8, which spares a second check.
pub(crate) fn transform_text<'a>(
    text: &'a str,
    routing: &Routing,
    request_route: RouteId,
) -> Result<Transformed<'a>, BodyError> {
    // Events run about 1 KB; a close guess spares the vector most of its regrowth.
    let mut out = Transformed {
        messages: Vec::with_capacity(text.len() / 1024 + 1),
        ..Transformed::default()
    };
    let mut index = 0;
    let complete = for_each_event_fast(text, |event| match map_event(event, routing, request_route, None) {
        Ok(outcome) => {
            out.push(index, outcome);
            index += 1;
            true
        }
        Err(_) => false,
    });
    if complete {
        return Ok(out);
    }
    let events = parse_body(text.as_bytes())?;
    Ok(transform(&events, routing, request_route))
}

/// Maps every event of a batch, one by one, so a bad event cannot fail its neighbours.
/// `request_route` is the route the request named; `APP_ROUTES` may send single events elsewhere.
pub fn transform<'a>(events: &[&'a RawValue], routing: &Routing, request_route: RouteId) -> Transformed<'a> {
    let mut out = Transformed {
        messages: Vec::with_capacity(events.len()),
        ..Transformed::default()
    };
    for (index, raw) in events.iter().copied().enumerate() {
        match parse_event(raw).and_then(|event| map_event(event, routing, request_route, Some(raw))) {
            Ok(outcome) => out.push(index, outcome),
            Err(error) => out.invalid.push(Invalid {
                index,
                id: best_effort_id(raw),
                error,
                raw,
            }),
        }
    }
    out
}

impl<'a> Transformed<'a> {
    fn push(&mut self, index: usize, outcome: Outcome<'a>) {
        match outcome {
            Outcome::Mapped(mapped) => self.messages.push(mapped),
            Outcome::Skipped(reason, event) => self.skipped.push(Skipped {
                index,
                id: event.id,
                event_type: event.event_type,
                reason,
            }),
        }
    }
}

/// Maps one parsed event. `raw`, when known, sizes the output buffer.
fn map_event<'a>(
    event: Event<'a>,
    routing: &Routing,
    request_route: RouteId,
    raw: Option<&RawValue>,
) -> Result<Outcome<'a>, InvalidEvent> {
    let spec = builtin(&event.event_type);
    let lifted = Lifted::scan(&event.properties, spec.map_or(Moves::NONE, |s| s.moves));
    let route = pick_route(routing, request_route, &lifted);
    let options = &routing.route(route).mapping;

    let Some(rule) = segment_name(options, &event.event_type, spec) else {
        return Ok(Outcome::Skipped(SkipReason::UnknownEventType, event));
    };
    if options
        .event_types
        .as_ref()
        .is_some_and(|types| !types.contains(event.event_type.as_ref()))
    {
        return Ok(Outcome::Skipped(SkipReason::EventTypeNotSelected, event));
    }
    let user_id = event.user.external_user_id.as_deref();
    if user_id.is_none() && !options.include_anonymous {
        return Ok(Outcome::Skipped(SkipReason::NoExternalUserId, event));
    }

    // The checks below stand in for Segment, which answers 200 and then silently drops
    // such messages (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/#errors).
    if user_id.is_none() && event.user.user_id.is_none() {
        return Err(InvalidEvent::new(
            crate::currents::InvalidReason::NoIdentity,
            "neither `external_user_id` nor `user_id` is set",
        ));
    }
    let name = rule.resolve(&event)?;
    if event.id.chars().count() >= SEGMENT_MAX_MESSAGE_ID_CHARS {
        return Err(InvalidEvent::new(
            crate::currents::InvalidReason::MessageIdTooLong,
            "`id` has 100 or more characters",
        ));
    }
    let input = TrackInput {
        event: &event,
        lifted: &lifted,
        name: &name,
        user_id,
        options,
    };
    let json = render_track(&input, raw.map(|r| r.get().len()))?;
    Ok(Outcome::Mapped(Mapped { route, json }))
}

fn pick_route(routing: &Routing, request_route: RouteId, lifted: &Lifted<'_>) -> RouteId {
    if !routing.has_app_routes() {
        return request_route;
    }
    lifted
        .app_id
        .as_deref()
        .and_then(|app| routing.for_app(app))
        .or_else(|| lifted.app_group_id.as_deref().and_then(|group| routing.for_app(group)))
        .unwrap_or(request_route)
}

/// The `id` of an event that failed to parse, for reports; only when it is a plain string.
fn best_effort_id(raw: &RawValue) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly<'a> {
        #[serde(borrow)]
        id: Option<crate::currents::BorrowedText<'a>>,
    }
    serde_json::from_str::<crate::object_only::ObjectOnly<IdOnly<'_>>>(raw.get())
        .ok()?
        .0
        .id
        .map(|t| t.0.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn an_invalid_event_is_reported_under_its_own_id_when_that_is_a_string() {
        let config = Config::from_lookup(|_| None).unwrap();
        let route = config.routing.find("default").unwrap();
        let body = br#"{"events":[{"id":"bad-7","time":"soon"},{"id":7,"time":"soon"},{"time":"soon"}]}"#;
        let out = transform_body(body, &config.routing, route).unwrap();
        let ids: Vec<Option<&str>> = out.invalid.iter().map(|i| i.id.as_deref()).collect();
        assert_eq!(ids, [Some("bad-7"), None, None]);
    }

    /// A skipped event is reported at its own position in the batch, on the one-pass path
    /// (every event well formed) and on the per-event path alike.
    #[test]
    fn a_skipped_event_is_reported_at_its_position_in_the_batch() {
        let config = Config::from_lookup(|_| None).unwrap();
        let route = config.routing.find("default").unwrap();
        let event = |id: &str, user: &str| {
            format!(
                r#"{{"id":"{id}","event_type":"users.behaviors.app.SessionStart","time":1764000060,"user":{user},"properties":{{"app_id":"a"}}}}"#
            )
        };
        let known = event("e0", r#"{"external_user_id":"u-1"}"#);
        let anonymous = event("e1", r#"{"user_id":"braze-1"}"#);
        let well_formed = format!(r#"{{"events":[{known},{anonymous},{anonymous}]}}"#);
        let one_bad = format!(r#"{{"events":[{known},{anonymous},{anonymous},{{"id":"x"}}]}}"#);
        for body in [well_formed, one_bad] {
            let out = transform_body(body.as_bytes(), &config.routing, route).unwrap();
            assert_eq!(out.messages.len(), 1, "{body}");
            let skipped: Vec<(usize, SkipReason)> = out.skipped.iter().map(|s| (s.index, s.reason)).collect();
            assert_eq!(
                skipped,
                [(1, SkipReason::NoExternalUserId), (2, SkipReason::NoExternalUserId)]
            );
        }
    }
}
