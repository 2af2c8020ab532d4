//! Writes one Segment `track` message for a Currents event.

use std::borrow::Cow;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::value::RawValue;

use super::options::{MappingOptions, PiiMode};
use super::{pii, timestamp};
use crate::currents::{Event, Properties, text};

const LIBRARY_NAME: &str = "currents-segment";

/// Properties that move into Segment's `context`, found in one pass over the event.
/// Each is lifted only when it is a string; anything else stays in `properties` as it came.
#[derive(Debug, Default)]
pub struct Lifted<'a> {
    pub email: Option<Cow<'a, str>>,
    /// `to_phone_number` (outbound SMS) or else `user_phone_number` (inbound SMS).
    pub phone: Option<Cow<'a, str>>,
    phone_key: Option<&'static str>,
    pub device_model: Option<Cow<'a, str>>,
    pub platform: Option<Cow<'a, str>>,
    pub os_version: Option<Cow<'a, str>>,
    pub app_id: Option<Cow<'a, str>>,
    pub app_group_id: Option<Cow<'a, str>>,
}

impl<'a> Lifted<'a> {
    pub fn scan(properties: &Properties<'a>) -> Self {
        let mut lifted = Lifted::default();
        for (key, value) in properties.iter() {
            let slot = match key {
                "email_address" => &mut lifted.email,
                "device_model" => &mut lifted.device_model,
                "platform" => &mut lifted.platform,
                "os_version" => &mut lifted.os_version,
                "app_id" => &mut lifted.app_id,
                "app_group_id" => &mut lifted.app_group_id,
                "to_phone_number" | "user_phone_number" => &mut lifted.phone,
                _ => continue,
            };
            let Some(text) = string_value(value) else { continue };
            if key == "user_phone_number" && lifted.phone_key == Some("to_phone_number") {
                continue;
            }
            if key.ends_with("phone_number") {
                lifted.phone_key = Some(if key == "to_phone_number" {
                    "to_phone_number"
                } else {
                    "user_phone_number"
                });
            }
            *slot = Some(text);
        }
        lifted
    }

    /// Whether `key` was moved to `context` and so leaves `properties`.
    fn moved(&self, key: &str) -> bool {
        match key {
            "email_address" => self.email.is_some(),
            "device_model" => self.device_model.is_some(),
            "platform" => self.platform.is_some(),
            "os_version" => self.os_version.is_some(),
            "to_phone_number" | "user_phone_number" => self.phone_key == Some(key),
            _ => false,
        }
    }
}

fn string_value(raw: &RawValue) -> Option<Cow<'_, str>> {
    text(raw).filter(|t| !t.is_empty())
}

/// Everything [`write_track`] needs for one message.
pub struct TrackInput<'e, 'a> {
    pub event: &'e Event<'a>,
    pub lifted: &'e Lifted<'a>,
    pub name: &'e str,
    /// `false` for anonymous events sent under `INCLUDE_ANONYMOUS`.
    pub user_id: Option<&'e str>,
    pub options: &'e MappingOptions,
}

/// Serialises the message into `out` (cleared first). Messages carry no `sentAt`: it is stamped
/// on each delivery attempt.
pub fn write_track(input: &TrackInput<'_, '_>, out: &mut Vec<u8>) {
    out.clear();
    let event = input.event;
    let lifted = input.lifted;
    let pii = input.options.pii;
    let message = Track {
        kind: "track",
        event: input.name,
        message_id: &event.id,
        timestamp: Display(timestamp::iso8601_seconds(event.time)),
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
    timestamp: Display<D>,
    #[serde(rename = "userId", skip_serializing_if = "Option::is_none")]
    user_id: Option<&'e str>,
    #[serde(rename = "anonymousId", skip_serializing_if = "Option::is_none")]
    anonymous_id: Option<&'e str>,
    context: Context<'e>,
    properties: PropertiesOut<'e, 'e>,
    #[serde(skip_serializing_if = "Option::is_none")]
    integrations: Option<&'e RawValue>,
}

struct Display<D>(D);

impl<D: std::fmt::Display> Serialize for Display<D> {
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
        PiiMode::Hash => Some(Protected::Hashed(match kind {
            PiiKind::Email => pii::hash_email(value),
            PiiKind::Phone => pii::hash_phone(value),
            PiiKind::Text => pii::hash_text(value),
        })),
    }
}

/// The event's own properties minus what moved to `context`, with Braze's two Segment renames,
/// PII handled per mode, and `device_id` added.
struct PropertiesOut<'e, 'a> {
    event: &'e Event<'a>,
    lifted: &'e Lifted<'a>,
    pii: PiiMode,
}

impl Serialize for PropertiesOut<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let properties = &self.event.properties;
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in properties.iter() {
            if self.lifted.moved(key) {
                continue;
            }
            let key = match key {
                // Braze's Segment connector renames these two; keep the original if the
                // target name is already taken so no key is emitted twice.
                "url" if properties.get("link_url").is_none() => "link_url",
                "content_card_id" if properties.get("card_id").is_none() => "card_id",
                other => other,
            };
            match (PiiKind::of(key, value), self.pii) {
                (None, _) | (Some(_), PiiMode::Keep) => map.serialize_entry(key, value)?,
                (Some(_), PiiMode::Drop) => {}
                (Some(kind), PiiMode::Hash) => match string_value(value) {
                    Some(text) => map.serialize_entry(key, &protect(PiiMode::Hash, kind, &text))?,
                    None if value.get() == "null" => map.serialize_entry(key, value)?,
                    None => {}
                },
            }
        }
        if let Some(device_id) = self.event.user.device_id.as_deref()
            && properties.get("device_id").is_none()
        {
            map.serialize_entry("device_id", device_id)?;
        }
        map.end()
    }
}
