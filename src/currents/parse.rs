//! The entries for reading events: [`parse_event`] for one event, the specification, and
//! [`for_each_event_fast`], one pass over a whole well-formed body that gives the same events.
//! Both read each event through `wire`; only `parse_event` names what is wrong (`diagnose`).

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::diagnose::diagnose;
use super::event::{Event, InvalidEvent};
use super::properties::BorrowedText;
use super::wire::WireSeed;

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
