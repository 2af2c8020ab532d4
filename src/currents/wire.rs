//! How one event is read. Its fields are read once, into a [`WireEvent`], before its shape is
//! known; [`WireEvent::into_event`] then decides the shape and reads the event the one way
//! that fits it: the HTTP shape by [`read_http`], the storage shape by [`flat::read_flat`].
//! `id`, `event_type`, `time` and a top-level `timezone` are read alike in both.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::event::{Event, InvalidEvent, InvalidReason, User, non_empty};
use super::flat;
use super::properties::{BorrowedText, Properties};
use crate::limits::MAX_EVENT_TIME_SECS;
use crate::object_only::ObjectOnly;

/// One event as read, before its shape is decided. Top-level fields the HTTP shape does not
/// name are kept raw in `extras`, in input order: the flat shape reads them as properties.
#[derive(Default)]
pub(super) struct WireEvent<'a> {
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

/// The HTTP shape's `user` object.
#[derive(Default, Deserialize)]
pub(super) struct WireUser<'a> {
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
pub(super) struct WireSeed<'a> {
    pub(super) source: &'a str,
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

impl<'a> WireEvent<'a> {
    /// The event, read in its shape (the rule: [`WireEvent::is_flat`]).
    pub(super) fn into_event(self) -> Result<Event<'a>, InvalidEvent> {
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
            let (user, properties) = flat::read_flat(&event_type, self.extras)?;
            (user, None, properties)
        } else {
            read_http(self.user, self.properties)
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

/// The user, the user's timezone and the properties of an HTTP-shaped event, from its `user`
/// and `properties` objects (either may be absent).
fn read_http<'a>(
    user: Option<WireUser<'a>>,
    properties: Option<Properties<'a>>,
) -> (User<'a>, Option<BorrowedText<'a>>, Properties<'a>) {
    let user = user.unwrap_or_default();
    let identity = User {
        user_id: non_empty(user.user_id.map(|t| t.0)),
        external_user_id: non_empty(user.external_user_id.map(|t| t.0)),
        device_id: non_empty(user.device_id.map(|t| t.0)),
    };
    (identity, user.timezone, properties.unwrap_or_default())
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
