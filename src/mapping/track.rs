//! Writes one Segment `track` message for a Currents event.

use std::borrow::Cow;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::value::RawValue;

use super::names::Moves;
use super::options::{MappingOptions, PiiMode};
use super::pii;
use crate::currents::{Event, InvalidEvent, Properties, text};
use crate::limits::SEGMENT_MAX_MESSAGE_BYTES;

const LIBRARY_NAME: &str = "currents-segment";

/// Which `context` slot a moved property fills.
#[derive(Clone, Copy)]
enum Slot {
    Email,
    Phone,
    Model,
    Platform,
    OsVersion,
}

/// The one definition of the properties that can move into Segment's `context`: each key, the
/// [`Moves`] flag that moves it for an event type (see the built-in table), and its slot.
fn context_field(key: &str) -> Option<(Moves, Slot)> {
    match key {
        "email_address" => Some((Moves::EMAIL, Slot::Email)),
        "to_phone_number" => Some((Moves::TO_PHONE, Slot::Phone)),
        "user_phone_number" => Some((Moves::USER_PHONE, Slot::Phone)),
        "device_model" => Some((Moves::MODEL, Slot::Model)),
        "platform" => Some((Moves::PLATFORM, Slot::Platform)),
        "os_version" => Some((Moves::OS_VERSION, Slot::OsVersion)),
        _ => None,
    }
}

/// Properties that move into Segment's `context` for one event type, found in one pass, plus
/// the two that pick a route. Each is taken only when it is a non-empty string; anything else
/// stays in `properties` as it came.
#[derive(Debug, Default)]
pub(crate) struct Lifted<'a> {
    /// `email_address` → `context.traits.email`.
    pub email: Option<Cow<'a, str>>,
    /// `to_phone_number` or `user_phone_number`, per event type → `context.traits.phone`.
    pub phone: Option<Cow<'a, str>>,
    /// `device_model` → `context.device.model`.
    pub device_model: Option<Cow<'a, str>>,
    /// `platform` → `context.device.type`, only where Braze moves it.
    pub platform: Option<Cow<'a, str>>,
    /// `os_version` → `context.os.version`.
    pub os_version: Option<Cow<'a, str>>,
    /// `app_id`, for `APP_ROUTES`; stays in `properties`.
    pub app_id: Option<Cow<'a, str>>,
    /// `app_group_id`, for `APP_ROUTES`; stays in `properties`.
    pub app_group_id: Option<Cow<'a, str>>,
    moves: Moves,
    /// Bit `i` set: property `i` moved to `context` (the first 64 properties), so writing
    /// `properties` needs no second look at the keys.
    moved_at: u64,
}

impl<'a> Lifted<'a> {
    /// Scans `properties` once. `moves` is the event type's row of the built-in table
    /// ([`Moves::NONE`] for types not in it, whose properties all pass through).
    pub(crate) fn scan(properties: &Properties<'a>, moves: Moves) -> Self {
        let mut lifted = Lifted {
            moves,
            ..Lifted::default()
        };
        for (index, (key, value)) in properties.iter().enumerate() {
            let (slot, moved) = match key {
                "app_id" => (&mut lifted.app_id, false),
                "app_group_id" => (&mut lifted.app_group_id, false),
                _ => match context_field(key) {
                    Some((flag, slot)) if moves.contains(flag) => (lifted.slot_mut(slot), true),
                    _ => continue,
                },
            };
            if let Some(text) = string_value(value) {
                *slot = Some(text);
                if moved && index < 64 {
                    lifted.moved_at |= 1 << index;
                }
            }
        }
        lifted
    }

    fn slot_mut(&mut self, slot: Slot) -> &mut Option<Cow<'a, str>> {
        match slot {
            Slot::Email => &mut self.email,
            Slot::Phone => &mut self.phone,
            Slot::Model => &mut self.device_model,
            Slot::Platform => &mut self.platform,
            Slot::OsVersion => &mut self.os_version,
        }
    }

    fn slot(&self, slot: Slot) -> Option<&Cow<'a, str>> {
        match slot {
            Slot::Email => self.email.as_ref(),
            Slot::Phone => self.phone.as_ref(),
            Slot::Model => self.device_model.as_ref(),
            Slot::Platform => self.platform.as_ref(),
            Slot::OsVersion => self.os_version.as_ref(),
        }
    }

    /// Whether property `index`, named `key`, was moved to `context` and so leaves `properties`.
    fn moved(&self, index: usize, key: &str) -> bool {
        if index < 64 {
            return self.moved_at & (1 << index) != 0;
        }
        context_field(key).is_some_and(|(flag, slot)| self.moves.contains(flag) && self.slot(slot).is_some())
    }
}

fn string_value(raw: &RawValue) -> Option<Cow<'_, str>> {
    text(raw).filter(|t| !t.is_empty())
}

/// Everything [`write_track`] needs for one message.
pub(crate) struct TrackInput<'e, 'a> {
    /// The parsed Currents event.
    pub event: &'e Event<'a>,
    /// What [`Lifted::scan`] found, with the event type's moves.
    pub lifted: &'e Lifted<'a>,
    /// The Segment `event`, already resolved and non-empty.
    pub name: &'e str,
    /// `None` for anonymous events sent under `INCLUDE_ANONYMOUS`.
    pub user_id: Option<&'e str>,
    /// The route's options (PII mode, `integrations`).
    pub options: &'e MappingOptions,
}

/// The message for `input` as JSON text, checked against Segment's 32 KB message limit
/// (<https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/>, "Max request size").
/// `raw_len` is the byte length of the raw event, when known, to size the buffer.
/// Errors with `message_too_large` above the limit.
pub(crate) fn render_track(input: &TrackInput<'_, '_>, raw_len: Option<usize>) -> Result<String, InvalidEvent> {
    // A message is about as long as its event, so one allocation of that size usually suffices.
    // Slack in these buffers shares pages with their neighbours and so becomes resident memory:
    // estimate closely. Properties are copied byte for byte; the fixed fields add a few hundred.
    let estimate = raw_len.unwrap_or_else(|| {
        let properties = input.event.properties.iter();
        properties.map(|(k, v)| k.len() + v.get().len() + 4).sum::<usize>() + 256
    });
    let mut buffer = Vec::with_capacity(estimate + 256);
    write_track(input, &mut buffer);
    if buffer.len() > SEGMENT_MAX_MESSAGE_BYTES {
        return Err(InvalidEvent::new(
            crate::currents::InvalidReason::MessageTooLarge,
            format!(
                "the Segment message is {} bytes, over the 32,000-byte limit",
                buffer.len()
            ),
        ));
    }
    // serde_json writes only valid UTF-8, so this never fails; it checks without copying.
    String::from_utf8(buffer)
        .map_err(|_| InvalidEvent::new(crate::currents::InvalidReason::MalformedEvent, "not UTF-8"))
}

/// Serialises the message into `out` (cleared first). Messages carry no `sentAt`: it is stamped
/// on each delivery attempt.
pub(crate) fn write_track(input: &TrackInput<'_, '_>, out: &mut Vec<u8>) {
    out.clear();
    let event = input.event;
    let lifted = input.lifted;
    let pii = input.options.pii;
    let message = Track {
        kind: "track",
        event: input.name,
        message_id: &event.id,
        timestamp: Formatted(crate::timestamp::iso8601_seconds(event.time)),
        user_id: input.user_id,
        anonymous_id: event.user.user_id.as_deref(),
        context: Context {
            library: Library {
                name: LIBRARY_NAME,
                version: env!("CARGO_PKG_VERSION"),
            },
            traits: Traits {
                email: lifted.email.as_deref().and_then(|v| protect(pii, PiiKind::Email, v)),
                phone: lifted.phone.as_deref().and_then(|v| protect(pii, PiiKind::Phone, v)),
            },
            device: Device {
                id: event.user.device_id.as_deref(),
                model: lifted.device_model.as_deref(),
                kind: lifted.platform.as_deref(),
            },
            os: Os {
                version: lifted.os_version.as_deref(),
            },
            timezone: event.timezone.as_deref(),
        },
        properties: PropertiesOut { event, lifted, pii },
        integrations: input.options.integrations.as_deref(),
    };
    // Writing to a Vec cannot fail and every part serialises infallibly.
    let _ = message.serialize(&mut serde_json::Serializer::new(&mut *out));
}

#[derive(Serialize)]
#[serde(bound(serialize = "D: std::fmt::Display"))]
struct Track<'e, D: std::fmt::Display> {
    #[serde(rename = "type")]
    kind: &'static str,
    event: &'e str,
    #[serde(rename = "messageId")]
    message_id: &'e str,
    timestamp: Formatted<D>,
    #[serde(rename = "userId", skip_serializing_if = "Option::is_none")]
    user_id: Option<&'e str>,
    #[serde(rename = "anonymousId", skip_serializing_if = "Option::is_none")]
    anonymous_id: Option<&'e str>,
    context: Context<'e>,
    properties: PropertiesOut<'e, 'e>,
    #[serde(skip_serializing_if = "Option::is_none")]
    integrations: Option<&'e RawValue>,
}

struct Formatted<D>(D);

impl<D: std::fmt::Display> Serialize for Formatted<D> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

#[derive(Serialize)]
struct Context<'e> {
    library: Library,
    #[serde(skip_serializing_if = "Traits::is_empty")]
    traits: Traits<'e>,
    #[serde(skip_serializing_if = "Device::is_empty")]
    device: Device<'e>,
    #[serde(skip_serializing_if = "Os::is_empty")]
    os: Os<'e>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<&'e str>,
}

#[derive(Serialize)]
struct Library {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct Traits<'e> {
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<Protected<'e>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<Protected<'e>>,
}

impl Traits<'_> {
    fn is_empty(&self) -> bool {
        self.email.is_none() && self.phone.is_none()
    }
}

#[derive(Serialize)]
struct Device<'e> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'e str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'e str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'e str>,
}

impl Device<'_> {
    fn is_empty(&self) -> bool {
        self.id.is_none() && self.model.is_none() && self.kind.is_none()
    }
}

#[derive(Serialize)]
struct Os<'e> {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'e str>,
}

impl Os<'_> {
    fn is_empty(&self) -> bool {
        self.version.is_none()
    }
}

#[derive(Clone, Copy)]
enum PiiKind {
    Email,
    Phone,
    Text,
}

impl PiiKind {
    /// Properties that hold personal data: emails, any phone number, free text a user wrote or
    /// their browser sent, and a subscription change's `channel_identifier`, which is the
    /// user's email address or phone number.
    fn of(key: &str, value: &RawValue) -> Option<Self> {
        match key {
            "email_address" => Some(Self::Email),
            "user_agent" | "message_body" => Some(Self::Text),
            "channel_identifier" if value.get().contains('@') => Some(Self::Email),
            "channel_identifier" => Some(Self::Phone),
            _ if key.ends_with("phone_number") => Some(Self::Phone),
            _ => None,
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum Protected<'e> {
    Kept(&'e str),
    Hashed(String),
}

fn protect(mode: PiiMode, kind: PiiKind, value: &str) -> Option<Protected<'_>> {
    match mode {
        PiiMode::Keep => Some(Protected::Kept(value)),
        PiiMode::Drop => None,
        // A value with nothing left after normalising is dropped (see `pii`).
        PiiMode::Hash => match kind {
            PiiKind::Email => pii::hash_email(value),
            PiiKind::Phone => pii::hash_phone(value),
            PiiKind::Text => pii::hash_text(value),
        }
        .map(Protected::Hashed),
    }
}

/// The event's own properties minus what moved to `context`, with Braze's renames for the
/// event type, PII handled per mode, `device_id` added, and a custom event's or purchase's own
/// properties brought to the top level.
struct PropertiesOut<'e, 'a> {
    event: &'e Event<'a>,
    lifted: &'e Lifted<'a>,
    pii: PiiMode,
}

impl Serialize for PropertiesOut<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let nested = self.nested_source();
        let inner = nested
            .as_ref()
            .and_then(|(_, text)| serde_json::from_str::<Properties<'_>>(text).ok());
        // Only an object (or a string holding one) is flattened; anything else passes through.
        let flattened = inner.as_ref().and(nested.as_ref().map(|(key, _)| *key));
        let mut map = serializer.serialize_map(None)?;
        for (index, (key, value)) in self.event.properties.iter().enumerate() {
            if let Some(out) = self.out_key(index, key).filter(|_| Some(key) != flattened) {
                write_entry(&mut map, out, value, self.pii)?;
            }
        }
        if let Some(device_id) = self.added_device_id() {
            map.serialize_entry("device_id", device_id)?;
        }
        if let (Some(inner), Some(container)) = (&inner, flattened) {
            self.flatten(&mut map, container, inner)?;
        }
        map.end()
    }
}

impl<'a> PropertiesOut<'_, 'a> {
    /// The name property `index` (`key`) is written under, or `None` when it moved to `context`.
    fn out_key<'k>(&self, index: usize, key: &'k str) -> Option<&'k str> {
        if self.lifted.moved(index, key) {
            return None;
        }
        let properties = &self.event.properties;
        let moves = self.lifted.moves;
        if !moves.contains(Moves::LINK_URL) && !moves.contains(Moves::CARD_ID) {
            return Some(key);
        }
        // Braze's Segment connector renames these; keep the original if the target name is
        // already taken so no key is emitted twice.
        Some(match key {
            "url" if moves.contains(Moves::LINK_URL) && properties.get("link_url").is_none() => "link_url",
            "content_card_id" if moves.contains(Moves::CARD_ID) && properties.get("card_id").is_none() => "card_id",
            other => other,
        })
    }

    /// `user.device_id`, which Braze's connector sends as `properties.device_id`.
    fn added_device_id(&self) -> Option<&str> {
        let device_id = self.event.user.device_id.as_deref()?;
        self.event.properties.get("device_id").is_none().then_some(device_id)
    }

    /// The property whose entries go to the top level, and its JSON text: an object in the
    /// HTTP shape, a string holding JSON in the storage shape.
    fn nested_source(&self) -> Option<(&'static str, Cow<'a, str>)> {
        let moves = self.lifted.moves;
        let key = if moves.contains(Moves::CUSTOM_PROPERTIES) {
            "custom_properties"
        } else if moves.contains(Moves::PURCHASE_PROPERTIES) {
            "purchase_properties"
        } else {
            return None;
        };
        let raw = self.event.properties.get(key)?;
        let json = if raw.get().starts_with('{') {
            Cow::Borrowed(raw.get())
        } else {
            text(raw)?
        };
        Some((key, json))
    }

    /// Whether the event's own properties (or `device_id`) already wrote `key`.
    fn emits(&self, key: &str, container: &str) -> bool {
        (key == "device_id" && self.added_device_id().is_some())
            || self
                .event
                .properties
                .iter()
                .enumerate()
                .any(|(index, (own, _))| own != container && self.out_key(index, own) == Some(key))
    }

    /// Writes `inner`'s entries at the top level. The event's own fields win a clash; clashing
    /// entries stay under `container`, so nothing is lost and no key appears twice.
    fn flatten<M: SerializeMap>(&self, map: &mut M, container: &str, inner: &Properties<'_>) -> Result<(), M::Error> {
        let mut clashes = Vec::new();
        for (key, value) in inner.iter() {
            if self.emits(key, container) {
                clashes.push((key, value));
            } else {
                write_entry(map, key, value, self.pii)?;
            }
        }
        if !clashes.is_empty() {
            map.serialize_entry(container, &Clashes(&clashes, self.pii))?;
        }
        Ok(())
    }
}

/// Custom or purchase properties whose names clash with the event's own.
struct Clashes<'c, 'v>(&'c [(&'c str, &'v RawValue)], PiiMode);

impl Serialize for Clashes<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            write_entry(&mut map, key, value, self.1)?;
        }
        map.end()
    }
}

/// One property, with PII kept, hashed or dropped per mode.
fn write_entry<M: SerializeMap>(map: &mut M, key: &str, value: &RawValue, pii: PiiMode) -> Result<(), M::Error> {
    match (PiiKind::of(key, value), pii) {
        (None, _) | (Some(_), PiiMode::Keep) => map.serialize_entry(key, value),
        (Some(_), PiiMode::Drop) => Ok(()),
        (Some(kind), PiiMode::Hash) => match string_value(value) {
            Some(text) => match protect(PiiMode::Hash, kind, &text) {
                Some(hashed) => map.serialize_entry(key, &hashed),
                None => Ok(()),
            },
            None if value.get() == "null" => map.serialize_entry(key, value),
            None => Ok(()),
        },
    }
}
