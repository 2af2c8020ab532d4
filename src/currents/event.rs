//! One Currents event, parsed from its raw JSON into typed fields.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::properties::{BorrowedText, Properties};
use crate::limits::MAX_EVENT_TIME_SECS;

/// The Braze user an event belongs to.
#[derive(Debug, Default)]
pub struct User<'a> {
    /// Braze's own id (`braze_id`); absent on some inbound SMS.
    pub user_id: Option<Cow<'a, str>>,
    pub external_user_id: Option<Cow<'a, str>>,
    pub device_id: Option<Cow<'a, str>>,
}

/// A Currents event whose required fields are present and well typed.
#[derive(Debug)]
pub struct Event<'a> {
    /// Currents event type, e.g. `users.messages.email.Open`.
    pub event_type: Cow<'a, str>,
    /// Braze's event id.
    pub id: Cow<'a, str>,
    /// UNIX seconds, within years 1970..=9999.
    pub time: i64,
    /// The user the event belongs to.
    pub user: User<'a>,
    /// `user.timezone`, or the event's own top-level `timezone` that some exports carry.
    pub timezone: Option<Cow<'a, str>>,
    /// The event's `properties`, as input.
    pub properties: Properties<'a>,
}

crate::string_enum::string_enum! {
    /// The stable, log-safe code of an invalid event (the `InvalidEvent` metric's `Reason`, the
    /// envelope's `last_error` prefix and the CLI's `reason`).
    pub enum InvalidReason {
        /// Not a JSON object, a field of the wrong type, or a field given twice.
        MalformedEvent = "malformed_event",
        /// No `id`.
        MissingId = "missing_id",
        /// No `event_type`.
        MissingEventType = "missing_event_type",
        /// No `time`.
        MissingTime = "missing_time",
        /// `time` not an integer, negative, or past year 9999 (almost surely milliseconds).
        InvalidTime = "invalid_time",
        /// Neither `external_user_id` nor `user_id` (Segment would drop it silently).
        NoIdentity = "no_identity",
        /// `id` of 100 characters or more (Segment's `messageId` limit).
        MessageIdTooLong = "message_id_too_long",
        /// The Segment message is over 32,000 bytes.
        MessageTooLarge = "message_too_large",
        /// A configured name is empty, or a custom event has no `properties.name`.
        EmptyEventName = "empty_event_name",
    }
}

/// Why an event cannot be turned into a message. `code` is stable and safe to log; `detail`
/// never quotes event data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct InvalidEvent {
    /// Stable, log-safe error code: `reason`'s spelling.
    pub code: &'static str,
    /// The reason, typed.
    pub reason: InvalidReason,
    /// What is wrong, without quoting event data.
    pub detail: String,
}

impl InvalidEvent {
    /// An error for `reason`, with a `detail` that must not quote event data.
    pub fn new(reason: InvalidReason, detail: impl Into<String>) -> Self {
        Self {
            code: reason.as_str(),
            reason,
            detail: detail.into(),
        }
    }
}

#[derive(Deserialize)]
struct WireEvent<'a> {
    #[serde(borrow)]
    event_type: Option<BorrowedText<'a>>,
    #[serde(borrow)]
    id: Option<BorrowedText<'a>>,
    #[serde(borrow)]
    time: Option<&'a RawValue>,
    #[serde(borrow)]
    user: Option<WireUser<'a>>,
    #[serde(borrow)]
    timezone: Option<BorrowedText<'a>>,
    #[serde(borrow)]
    properties: Option<Properties<'a>>,
    /// Set on the marker that stands for an event whose bytes were not UTF-8 JSON; ingest's
    /// body decoder writes it with the raw bytes in base64.
    #[serde(rename = "undecodable_event_base64")]
    undecodable: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct WireUser<'a> {
    #[serde(borrow)]
    user_id: Option<BorrowedText<'a>>,
    #[serde(borrow)]
    external_user_id: Option<BorrowedText<'a>>,
    #[serde(borrow)]
    device_id: Option<BorrowedText<'a>>,
    #[serde(borrow)]
    timezone: Option<BorrowedText<'a>>,
}

/// Parses one raw event. Unknown fields are ignored, since Braze adds fields without notice.
pub fn parse_event<'a>(raw: &'a RawValue) -> Result<Event<'a>, InvalidEvent> {
    let wire: WireEvent<'a> = serde_json::from_str(raw.get()).map_err(|error| diagnose(raw, &error))?;
    wire.into_event()
}

/// Parses a whole body in one pass, handing each event to `each` as soon as it is parsed, so
/// no intermediate list of events is built. Returns `true` when the body was read to the end;
/// `false` as soon as anything is off (an invalid event, or `each` returning `false`), which
/// sends the caller to the per-event path (`parse_body` then [`parse_event`]). That path
/// isolates bad events and keeps their raw text for the dead-letter queue.
pub(crate) fn for_each_event_fast<'a>(body: &'a str, each: impl FnMut(Event<'a>) -> bool) -> bool {
    let mut deserializer = serde_json::Deserializer::from_str(body);
    BodySeed(each).deserialize(&mut deserializer).is_ok() && deserializer.end().is_ok()
}

struct BodySeed<F>(F);

impl<'de, F: FnMut(Event<'de>) -> bool> DeserializeSeed<'de> for BodySeed<F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F: FnMut(Event<'de>) -> bool> Visitor<'de> for BodySeed<F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Currents body")
    }

    fn visit_map<M: MapAccess<'de>>(mut self, mut map: M) -> Result<(), M::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<BorrowedText<'de>>()? {
            if key.0 != "events" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if std::mem::replace(&mut seen, true) {
                return Err(de::Error::custom("`events` twice"));
            }
            map.next_value_seed(EventsSeed(&mut self.0))?;
        }
        if seen {
            Ok(())
        } else {
            Err(de::Error::custom("no `events`"))
        }
    }
}

struct EventsSeed<'f, F>(&'f mut F);

impl<'de, F: FnMut(Event<'de>) -> bool> DeserializeSeed<'de> for EventsSeed<'_, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Event<'de>) -> bool> Visitor<'de> for EventsSeed<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        while let Some(wire) = seq.next_element::<WireEvent<'de>>()? {
            let event = wire.into_event().map_err(|_| de::Error::custom("invalid event"))?;
            if !(self.0)(event) {
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

impl<'a> WireEvent<'a> {
    fn into_event(self) -> Result<Event<'a>, InvalidEvent> {
        if self.undecodable.is_some() {
            return Err(InvalidEvent::new(
                crate::currents::InvalidReason::MalformedEvent,
                "the event is not valid UTF-8 JSON; its bytes are kept in base64 in `undecodable_event_base64`",
            ));
        }
        let id = self.id.map(|t| t.0).filter(|id| !id.is_empty());
        let id =
            id.ok_or_else(|| InvalidEvent::new(crate::currents::InvalidReason::MissingId, "`id` is missing or empty"))?;
        let event_type = self.event_type.map(|t| t.0).filter(|t| !t.is_empty());
        let event_type = event_type.ok_or_else(|| {
            InvalidEvent::new(
                crate::currents::InvalidReason::MissingEventType,
                "`event_type` is missing",
            )
        })?;
        let time = parse_time(self.time)?;
        let user = self.user.unwrap_or(WireUser {
            user_id: None,
            external_user_id: None,
            device_id: None,
            timezone: None,
        });
        let non_empty = |t: Option<BorrowedText<'a>>| t.map(|t| t.0).filter(|s| !s.is_empty());
        Ok(Event {
            event_type,
            id,
            time,
            timezone: non_empty(user.timezone).or_else(|| non_empty(self.timezone)),
            user: User {
                user_id: non_empty(user.user_id),
                external_user_id: non_empty(user.external_user_id),
                device_id: non_empty(user.device_id),
            },
            properties: self.properties.unwrap_or_default(),
        })
    }
}

fn parse_time(raw: Option<&RawValue>) -> Result<i64, InvalidEvent> {
    let raw = raw.map(RawValue::get).filter(|t| *t != "null");
    let text =
        raw.ok_or_else(|| InvalidEvent::new(crate::currents::InvalidReason::MissingTime, "`time` is missing"))?;
    let time: i64 = text.parse().map_err(|_| {
        InvalidEvent::new(
            crate::currents::InvalidReason::InvalidTime,
            "`time` must be an integer of UNIX seconds",
        )
    })?;
    if !(0..=MAX_EVENT_TIME_SECS).contains(&time) {
        // Braze sends seconds; a value this large is almost surely milliseconds.
        return Err(InvalidEvent::new(
            crate::currents::InvalidReason::InvalidTime,
            "`time` is negative or past year 9999 (milliseconds?)",
        ));
    }
    Ok(time)
}

/// Names the first field of the wrong type. Runs only on the error path.
fn diagnose(raw: &RawValue, error: &serde_json::Error) -> InvalidEvent {
    let Ok(fields) = serde_json::from_str::<Properties<'_>>(raw.get()) else {
        return InvalidEvent::new(
            crate::currents::InvalidReason::MalformedEvent,
            "the event is not a JSON object",
        );
    };
    if let Some(field) = crate::text::duplicate_field(error) {
        return InvalidEvent::new(
            crate::currents::InvalidReason::MalformedEvent,
            format!("field `{field}` appears twice"),
        );
    }
    for (name, value) in fields.iter() {
        let first = value.get().as_bytes().first().copied();
        let expected = match name {
            "event_type" | "id" | "timezone" => (first != Some(b'"')).then_some("a string"),
            "user" | "properties" => (first != Some(b'{')).then_some("an object"),
            _ => None,
        };
        if value.get() == "null" {
            continue;
        }
        if let Some(expected) = expected {
            return InvalidEvent::new(
                crate::currents::InvalidReason::MalformedEvent,
                format!("field `{name}` must be {expected}"),
            );
        }
        if name == "user"
            && let Err(error) = serde_json::from_str::<WireUser<'_>>(value.get())
        {
            let which = if error.to_string().starts_with("duplicate field") {
                "repeats a field"
            } else {
                "has a field that is not a string"
            };
            return InvalidEvent::new(
                crate::currents::InvalidReason::MalformedEvent,
                format!("field `user` {which}"),
            );
        }
    }
    InvalidEvent::new(
        crate::currents::InvalidReason::MalformedEvent,
        "the event does not match the Currents format",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    fn code(text: &str) -> (&'static str, String) {
        let raw = raw(text);
        let error = parse_event(&raw).unwrap_err();
        (error.code, error.detail)
    }

    #[test]
    fn a_full_event_parses_and_borrows_its_strings() {
        let raw = raw(
            r#"{"event_type":"users.messages.email.Open","id":"e1","time":1477502783,"extra":{"x":1},
               "user":{"user_id":"b1","external_user_id":"u1","device_id":"d1","timezone":"America/Chicago"},
               "properties":{"email_address":"a@example.com"}}"#,
        );
        let event = parse_event(&raw).unwrap();
        assert_eq!(event.event_type, "users.messages.email.Open");
        assert!(matches!(event.id, Cow::Borrowed("e1")));
        assert_eq!(event.time, 1_477_502_783);
        assert_eq!(event.user.external_user_id.as_deref(), Some("u1"));
        assert_eq!(event.user.device_id.as_deref(), Some("d1"));
        assert_eq!(event.timezone.as_deref(), Some("America/Chicago"));
        assert_eq!(event.properties.str("email_address").unwrap(), "a@example.com");
    }

    #[test]
    fn top_level_timezone_and_missing_user_id_are_accepted() {
        let raw =
            raw(r#"{"event_type":"t","id":"e","time":1,"timezone":"Europe/Paris","user":{"external_user_id":"u"}}"#);
        let event = parse_event(&raw).unwrap();
        assert_eq!(event.timezone.as_deref(), Some("Europe/Paris"));
        assert_eq!(event.user.user_id, None);
    }

    #[test]
    fn missing_or_mistyped_required_fields_get_their_own_reason() {
        assert_eq!(code(r#"{"event_type":"t","time":1}"#).0, "missing_id");
        assert_eq!(code(r#"{"event_type":"t","id":"","time":1}"#).0, "missing_id");
        assert_eq!(code(r#"{"id":"e","time":1}"#).0, "missing_event_type");
        assert_eq!(code(r#"{"event_type":"t","id":"e"}"#).0, "missing_time");
        assert_eq!(
            code(r#"{"event_type":"t","id":"e","time":"1477502783"}"#).0,
            "invalid_time"
        );
        assert_eq!(code(r#"{"event_type":"t","id":"e","time":1.5}"#).0, "invalid_time");
        assert_eq!(code(r#"{"event_type":"t","id":"e","time":-1}"#).0, "invalid_time");
        assert_eq!(
            code(r#"{"event_type":"t","id":"e","time":1477502783000}"#).0,
            "invalid_time"
        );
    }

    #[test]
    fn the_undecodable_marker_is_a_malformed_event() {
        let (code, detail) = code(r#"{"undecodable_event_base64":"Y2Fm6Q==","id":"e","event_type":"t","time":1}"#);
        assert_eq!(code, "malformed_event");
        assert!(detail.contains("base64"));
    }

    #[test]
    fn wrong_shapes_are_named_without_quoting_data() {
        assert_eq!(code("null").1, "the event is not a JSON object");
        assert_eq!(code("42").1, "the event is not a JSON object");
        assert_eq!(code(r#""secret@example.com""#).1, "the event is not a JSON object");
        let (c, detail) = code(r#"{"event_type":"t","id":"e","time":1,"user":"secret@example.com"}"#);
        assert_eq!(
            (c, detail.as_str()),
            ("malformed_event", "field `user` must be an object")
        );
        assert_eq!(
            code(r#"{"event_type":"t","id":"e","time":1,"properties":[1]}"#).1,
            "field `properties` must be an object"
        );
        assert_eq!(
            code(r#"{"event_type":7,"id":"e","time":1}"#).1,
            "field `event_type` must be a string"
        );
        assert_eq!(
            code(r#"{"event_type":"t","id":"e","id":"f","time":1}"#).1,
            "field `id` appears twice"
        );
        let (_, detail) = code(r#"{"event_type":"t","id":"e","time":1,"user":{"external_user_id":42}}"#);
        assert_eq!(detail, "field `user` has a field that is not a string");
    }
}
