//! One Currents event, parsed from its raw JSON into typed fields.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::properties::{BorrowedText, Properties};
use crate::limits::MAX_EVENT_TIME_SECS;
use crate::object_only::ObjectOnly;

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

/// One event as read, before its shape is decided. Top-level fields the HTTP shape does not
/// name are kept raw in `extras`, in input order: the flat shape reads them as properties.
#[derive(Default)]
struct WireEvent<'a> {
    event_type: Option<BorrowedText<'a>>,
    id: Option<BorrowedText<'a>>,
    time: Option<&'a RawValue>,
    user: Option<WireUser<'a>>,
    timezone: Option<BorrowedText<'a>>,
    /// `properties` when it is an object (or null); any other value goes to `extras`.
    properties: Option<Properties<'a>>,
    /// Set on the marker that stands for an event whose bytes were not UTF-8 JSON; ingest's
    /// body decoder writes it with the raw bytes in base64.
    undecodable: bool,
    extras: Vec<(Cow<'a, str>, &'a RawValue)>,
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

/// Reads one [`WireEvent`] from a deserializer over `source`, the text the deserializer reads
/// (the event itself, or the whole body on the one-pass path).
struct WireSeed<'a> {
    source: &'a str,
}

impl<'de> DeserializeSeed<'de> for WireSeed<'de> {
    type Value = WireEvent<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<WireEvent<'de>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

/// The HTTP shape's named top-level fields, in the order of `WireSeed`'s duplicate check.
const NAMED: [&str; 7] = [
    "event_type",
    "id",
    "time",
    "user",
    "timezone",
    "properties",
    "undecodable_event_base64",
];

impl<'de> Visitor<'de> for WireSeed<'de> {
    type Value = WireEvent<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Currents event")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<WireEvent<'de>, M::Error> {
        let mut wire = WireEvent::default();
        let mut seen = 0u8;
        while let Some(key) = map.next_key::<BorrowedText<'de>>()? {
            let Some(slot) = NAMED.iter().position(|name| *name == key.0) else {
                wire.extras.push((key.0, map.next_value()?));
                continue;
            };
            if seen & 1 << slot != 0 {
                return Err(de::Error::duplicate_field(NAMED[slot]));
            }
            seen |= 1 << slot;
            match slot {
                0 => wire.event_type = map.next_value()?,
                1 => wire.id = map.next_value()?,
                2 => wire.time = map.next_value()?,
                3 => {
                    wire.user = map
                        .next_value::<Option<ObjectOnly<WireUser<'de>>>>()?
                        .map(|user| user.0)
                }
                4 => wire.timezone = map.next_value()?,
                5 if value_is_object_or_null(self.source, &key) => wire.properties = map.next_value()?,
                5 => wire.extras.push((key.0, map.next_value()?)),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    wire.undecodable = true;
                }
            }
        }
        Ok(wire)
    }
}

/// Whether the value after `key` in `source` starts an object or `null`. serde_json lends a key
/// without escapes straight from its input, so a borrowed `key` is a slice of `source` and the
/// value follows it. A key with escapes is owned, and counts as an object here: it is read the
/// way the HTTP shape reads it.
fn value_is_object_or_null(source: &str, key: &BorrowedText<'_>) -> bool {
    let Cow::Borrowed(key) = key.0 else { return true };
    let offset = (key.as_ptr() as usize).wrapping_sub(source.as_ptr() as usize);
    if source.as_bytes().get(offset..offset.saturating_add(key.len())) != Some(key.as_bytes()) {
        return true;
    }
    // After the key: its closing quote, then whitespace and `:` before the value.
    let after = source.as_bytes().get(offset + key.len() + 1..).unwrap_or_default();
    let first = after.iter().find(|b| !b.is_ascii_whitespace() && **b != b':');
    matches!(first, Some(b'{' | b'n') | None)
}

/// Parses one raw event. Unknown fields are ignored, since Braze adds fields without notice.
/// An event in the storage (flat) shape is read as its HTTP twin (rule: the `flat` module).
pub fn parse_event<'a>(raw: &'a RawValue) -> Result<Event<'a>, InvalidEvent> {
    let seed = WireSeed { source: raw.get() };
    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    let wire = seed
        .deserialize(&mut deserializer)
        .and_then(|wire| deserializer.end().map(|()| wire))
        .map_err(|error| diagnose(raw, &error))?;
    wire.into_event()
}

/// Parses a whole body in one pass, handing each event to `each` as soon as it is parsed, so
/// no intermediate list of events is built. Returns `true` when the body was read to the end;
/// `false` as soon as anything is off (an invalid event, or `each` returning `false`), which
/// sends the caller to the per-event path (`parse_body` then [`parse_event`]). That path
/// isolates bad events and keeps their raw text for the dead-letter queue.
pub(crate) fn for_each_event_fast<'a>(body: &'a str, each: impl FnMut(Event<'a>) -> bool) -> bool {
    let mut deserializer = serde_json::Deserializer::from_str(body);
    let seed = BodySeed { each, source: body };
    seed.deserialize(&mut deserializer).is_ok() && deserializer.end().is_ok()
}

struct BodySeed<'s, F> {
    each: F,
    source: &'s str,
}

impl<'de, F: FnMut(Event<'de>) -> bool> DeserializeSeed<'de> for BodySeed<'de, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F: FnMut(Event<'de>) -> bool> Visitor<'de> for BodySeed<'de, F> {
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
            map.next_value_seed(EventsSeed {
                each: &mut self.each,
                source: self.source,
            })?;
        }
        if seen {
            Ok(())
        } else {
            Err(de::Error::custom("no `events`"))
        }
    }
}

struct EventsSeed<'f, 's, F> {
    each: &'f mut F,
    source: &'s str,
}

impl<'de, F: FnMut(Event<'de>) -> bool> DeserializeSeed<'de> for EventsSeed<'_, 'de, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Event<'de>) -> bool> Visitor<'de> for EventsSeed<'_, 'de, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        while let Some(wire) = seq.next_element_seed(WireSeed { source: self.source })? {
            let event = wire.into_event().map_err(|_| de::Error::custom("invalid event"))?;
            if !(self.each)(event) {
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

impl<'a> WireEvent<'a> {
    fn into_event(self) -> Result<Event<'a>, InvalidEvent> {
        if self.undecodable {
            return Err(InvalidEvent::new(
                InvalidReason::MalformedEvent,
                "the event is not valid UTF-8 JSON; its bytes are kept in base64 in `undecodable_event_base64`",
            ));
        }
        let flat = self.is_flat();
        if !flat && self.extras.iter().any(|(key, _)| key == "properties") {
            return Err(InvalidEvent::new(
                InvalidReason::MalformedEvent,
                "field `properties` must be an object",
            ));
        }
        let id = self.id.map(|t| t.0).filter(|id| !id.is_empty());
        let id = id.ok_or_else(|| InvalidEvent::new(InvalidReason::MissingId, "`id` is missing or empty"))?;
        let event_type = self.event_type.map(|t| t.0).filter(|t| !t.is_empty());
        let event_type =
            event_type.ok_or_else(|| InvalidEvent::new(InvalidReason::MissingEventType, "`event_type` is missing"))?;
        let time = parse_time(self.time)?;
        let (user, user_timezone, properties) = if flat {
            let (user, properties) = super::flat::read_flat(&event_type, self.extras)?;
            (user, None, properties)
        } else {
            let user = self.user.unwrap_or(WireUser {
                user_id: None,
                external_user_id: None,
                device_id: None,
                timezone: None,
            });
            let identity = User {
                user_id: non_empty(user.user_id.map(|t| t.0)),
                external_user_id: non_empty(user.external_user_id.map(|t| t.0)),
                device_id: non_empty(user.device_id.map(|t| t.0)),
            };
            (identity, user.timezone, self.properties.unwrap_or_default())
        };
        Ok(Event {
            event_type,
            id,
            time,
            timezone: non_empty(user_timezone.map(|t| t.0)).or_else(|| non_empty(self.timezone.map(|t| t.0))),
            user,
            properties,
        })
    }

    /// The storage shape (see [`super::flat`]): no `user` object, no `properties` object, and
    /// a top-level `external_user_id` or `user_id` that is not null.
    fn is_flat(&self) -> bool {
        self.user.is_none()
            && self.properties.is_none()
            && self
                .extras
                .iter()
                .any(|(key, value)| matches!(key.as_ref(), "external_user_id" | "user_id") && value.get() != "null")
    }
}

/// A string that is not empty.
pub(super) fn non_empty(text: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    text.filter(|s| !s.is_empty())
}

fn parse_time(raw: Option<&RawValue>) -> Result<i64, InvalidEvent> {
    let raw = raw.map(RawValue::get).filter(|t| *t != "null");
    let text = raw.ok_or_else(|| InvalidEvent::new(InvalidReason::MissingTime, "`time` is missing"))?;
    let time: i64 = text
        .parse()
        .map_err(|_| InvalidEvent::new(InvalidReason::InvalidTime, "`time` must be an integer of UNIX seconds"))?;
    if !(0..=MAX_EVENT_TIME_SECS).contains(&time) {
        // Braze sends seconds; a value this large is almost surely milliseconds.
        return Err(InvalidEvent::new(
            InvalidReason::InvalidTime,
            "`time` is negative or past year 9999 (milliseconds?)",
        ));
    }
    Ok(time)
}

/// Names the first field of the wrong type. Runs only on the error path.
fn diagnose(raw: &RawValue, error: &serde_json::Error) -> InvalidEvent {
    let Ok(fields) = serde_json::from_str::<Properties<'_>>(raw.get()) else {
        return InvalidEvent::new(InvalidReason::MalformedEvent, "the event is not a JSON object");
    };
    if let Some(field) = crate::text::duplicate_field(error) {
        return InvalidEvent::new(InvalidReason::MalformedEvent, format!("field `{field}` appears twice"));
    }
    // In the flat shape `properties` may be a string (see `super::flat`).
    let flat = fields.get("user").is_none_or(|user| user.get() == "null")
        && ["external_user_id", "user_id"]
            .iter()
            .any(|key| fields.get(key).is_some_and(|value| value.get() != "null"));
    for (name, value) in fields.iter() {
        let first = value.get().as_bytes().first().copied();
        let expected = match name {
            "event_type" | "id" | "timezone" => (first != Some(b'"')).then_some("a string"),
            "user" => (first != Some(b'{')).then_some("an object"),
            "properties" if !flat => (first != Some(b'{')).then_some("an object"),
            _ => None,
        };
        if value.get() == "null" {
            continue;
        }
        if let Some(expected) = expected {
            return InvalidEvent::new(
                InvalidReason::MalformedEvent,
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
            return InvalidEvent::new(InvalidReason::MalformedEvent, format!("field `user` {which}"));
        }
    }
    InvalidEvent::new(
        InvalidReason::MalformedEvent,
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

    fn pairs(event: &Event<'_>) -> Vec<(String, String)> {
        let properties = event.properties.iter();
        properties.map(|(k, v)| (k.to_owned(), v.get().to_owned())).collect()
    }

    #[test]
    fn a_flat_event_reads_its_top_level_fields_as_user_and_properties() {
        let raw = raw(
            r#"{"id":"e1","user_id":"b1","external_user_id":"u1","event_type":"users.messages.email.Open",
               "time":1477502783,"device_id":"d1","timezone":"Europe/Paris","email_address":"a@example.com",
               "campaign_name":null,"is_amp":false,"extra":{"x":1}}"#,
        );
        let event = parse_event(&raw).unwrap();
        assert_eq!(event.event_type, "users.messages.email.Open");
        assert_eq!(event.time, 1_477_502_783);
        assert_eq!(event.user.user_id.as_deref(), Some("b1"));
        assert_eq!(event.user.external_user_id.as_deref(), Some("u1"));
        assert_eq!(event.user.device_id.as_deref(), Some("d1"));
        assert_eq!(event.timezone.as_deref(), Some("Europe/Paris"));
        let expected = [
            ("email_address", r#""a@example.com""#),
            ("is_amp", "false"),
            ("extra", r#"{"x":1}"#),
        ];
        let expected: Vec<(String, String)> = expected.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        assert_eq!(pairs(&event), expected);
    }

    #[test]
    fn flat_custom_and_purchase_properties_and_banner_variations_are_renamed() {
        let custom = raw(
            r#"{"event_type":"users.behaviors.CustomEvent","id":"e","time":1,"external_user_id":"u",
               "name":"n","properties":"{\"a\":1}","app_id":"x"}"#,
        );
        let event = parse_event(&custom).unwrap();
        let keys: Vec<String> = pairs(&event).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["name", "custom_properties", "app_id"]);
        assert_eq!(event.properties.str("custom_properties").unwrap(), r#"{"a":1}"#);
        let purchase =
            raw(r#"{"event_type":"users.behaviors.Purchase","id":"e","time":1,"user_id":"b","properties":"{}"}"#);
        assert_eq!(
            parse_event(&purchase)
                .unwrap()
                .properties
                .str("purchase_properties")
                .unwrap(),
            "{}"
        );
        let banner = raw(
            r#"{"event_type":"users.messages.banner.Click","id":"e","time":1,"user_id":"b",
               "canvas_step_message_variation_id":"v"}"#,
        );
        let event = parse_event(&banner).unwrap();
        assert_eq!(
            event.properties.str("canvas_step_message_variation_api_id").unwrap(),
            "v"
        );
    }

    #[test]
    fn a_user_or_properties_object_makes_the_event_http_shaped() {
        let with_user = raw(r#"{"event_type":"t","id":"e","time":1,"external_user_id":"top","user":{"user_id":"b"}}"#);
        let event = parse_event(&with_user).unwrap();
        assert_eq!(event.user.external_user_id, None);
        assert!(event.properties.is_empty());
        let with_properties = raw(r#"{"event_type":"t","id":"e","time":1,"external_user_id":"top","properties":{}}"#);
        assert_eq!(parse_event(&with_properties).unwrap().user.external_user_id, None);
        let text_properties = r#"{"event_type":"t","id":"e","time":1,"user":{"user_id":"b"},"properties":"x"}"#;
        assert_eq!(code(text_properties).1, "field `properties` must be an object");
    }

    #[test]
    fn flat_identity_fields_must_be_strings_and_named_fields_still_appear_once() {
        let (c, detail) = code(r#"{"event_type":"t","id":"e","time":1,"external_user_id":7}"#);
        assert_eq!(
            (c, detail.as_str()),
            ("malformed_event", "field `external_user_id` must be a string")
        );
        assert_eq!(
            code(r#"{"event_type":"t","id":"e","time":1,"user_id":"b","properties":null,"properties":"{}"}"#).1,
            "field `properties` appears twice"
        );
        // In the flat shape a string `properties` is not the field at fault.
        assert_eq!(
            code(r#"{"properties":"{}","event_type":7,"id":"e","time":1,"user_id":"b"}"#).1,
            "field `event_type` must be a string"
        );
    }

    #[test]
    fn the_one_pass_path_reads_flat_events_as_parse_event_does() {
        let events = [
            r#"{"event_type":"users.behaviors.Purchase","id":"p","time":1,"user_id":"b","properties" : "{\"k\":2}","price":1.5}"#,
            r#"{"event_type":"users.messages.email.Open","id":"o","time":2,"external_user_id":"u","device_id":null}"#,
            r#"{"event_type":"t","id":"h","time":3,"user":{"external_user_id":"u"},"properties":{"a":[1]}}"#,
        ];
        let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
        let mut fast = Vec::new();
        assert!(for_each_event_fast(&body, |event| {
            fast.push(format!("{event:?}"));
            true
        }));
        let each: Vec<String> = events
            .iter()
            .map(|e| format!("{:?}", parse_event(&raw(e)).unwrap()))
            .collect();
        assert_eq!(fast, each);
        // A `properties` key written with escapes is read the HTTP way on both paths.
        let escaped = r#"{"event_type":"t","id":"x","time":1,"user_id":"b","propertie\u0073":"{}"}"#;
        assert!(!for_each_event_fast(&format!(r#"{{"events":[{escaped}]}}"#), |_| true));
        assert_eq!(code(escaped).0, "malformed_event");
    }

    /// The flat twin of an HTTP-shaped fixture event, as a storage export lays it out.
    fn flat_twin(http: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        let event_type = http["event_type"].as_str().unwrap();
        let mut flat = http.as_object().unwrap().clone();
        let user = flat.remove("user").unwrap();
        let properties = flat.remove("properties").unwrap();
        for (name, value) in user.as_object().unwrap().iter().chain(properties.as_object().unwrap()) {
            let name = match name.as_str() {
                "custom_properties" | "purchase_properties" if event_type.starts_with("users.behaviors.") => {
                    flat.insert("properties".into(), value.to_string().into());
                    continue;
                }
                "canvas_step_message_variation_api_id" => "canvas_step_message_variation_id",
                other => other,
            };
            flat.insert(name.into(), value.clone());
        }
        flat
    }

    #[test]
    fn the_one_pass_path_takes_the_flat_twin_of_every_fixture_event() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/all-events.json");
        let body: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let http = body["events"].as_array().unwrap();
        let flat: Vec<_> = http.iter().map(flat_twin).collect();
        let flat_body = serde_json::json!({ "events": flat }).to_string();
        let mut types = Vec::new();
        let complete = for_each_event_fast(&flat_body, |event| {
            types.push(event.event_type.into_owned());
            event.user.external_user_id.is_some()
        });
        assert!(complete, "every flat event is read on the one-pass path, with its user");
        assert_eq!(
            types,
            http.iter()
                .map(|e| e["event_type"].as_str().unwrap())
                .collect::<Vec<_>>()
        );
        // The test-only converter of storage records takes each twin back to its event.
        for (mut flat, http) in flat.into_iter().zip(http) {
            // In storage the type is in the object key, not a field.
            let event_type = flat.remove("event_type").unwrap();
            let event_type = event_type.as_str().unwrap();
            let mut expected = http.clone();
            expected["properties"]
                .as_object_mut()
                .unwrap()
                .retain(|_, v| !v.is_null());
            // A top-level `timezone`, which some HTTP exports carry, is the user's in storage.
            if let Some(timezone) = expected.as_object_mut().unwrap().remove("timezone") {
                expected["user"]["timezone"] = timezone;
            }
            assert_eq!(super::super::flat::flat_to_http(event_type, flat), expected);
        }
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

    /// Issue 21, case 11's siblings: serde reads a struct from an array, positionally.
    #[test]
    fn an_event_or_user_written_as_an_array_is_malformed_on_both_paths() {
        let user_array = r#"{"event_type":"t","id":"e","time":1,"user":["b1","u1"]}"#;
        assert_eq!(
            code(user_array),
            ("malformed_event", "field `user` must be an object".to_owned())
        );
        assert_eq!(code(r#"["t","e",1]"#).1, "the event is not a JSON object");
        for event in [user_array, r#"["t","e",1]"#] {
            let body = format!(r#"{{"events":[{event}]}}"#);
            assert!(!for_each_event_fast(&body, |_| true), "{event}");
        }
    }
}
