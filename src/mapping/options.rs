//! How Currents events become Segment messages for one route: the options the mapping reads.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::value::RawValue;

/// What happens to email addresses, phone numbers and user free text before they leave.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PiiMode {
    /// Forward as received; what Braze's own connector does.
    #[default]
    Keep,
    /// Replace with lower-case SHA-256 hex of the normalised value.
    Hash,
    /// Remove the values.
    Drop,
}

impl PiiMode {
    /// `keep`, `hash` or `drop`, any case; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "keep" => Some(Self::Keep),
            "hash" => Some(Self::Hash),
            "drop" => Some(Self::Drop),
            _ => None,
        }
    }

    /// The mode as an operator writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Hash => "hash",
            Self::Drop => "drop",
        }
    }
}

/// Which published name set the built-in table uses (`EVENT_NAMING`, route key `event_naming`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventNaming {
    /// The headers of the Segment tabs in Braze's current Currents glossary.
    #[default]
    Braze,
    /// The older Segment-for-Currents page's names where they differ (`iOS Foreground Push
    /// Opened`, `Email Marked As Spam`, `Email Unsubscribed`), plus the five types this bridge
    /// named before that have no Segment tab (News Feed, campaign and Canvas aborts).
    Legacy,
}

impl EventNaming {
    /// `braze` or `legacy`, any case; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "braze" => Some(Self::Braze),
            "legacy" => Some(Self::Legacy),
            _ => None,
        }
    }

    /// The setting's value as an operator writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Braze => "braze",
            Self::Legacy => "legacy",
        }
    }
}

/// What happens to event types with no name (`UNKNOWN_EVENT_TYPES`, route key
/// `unknown_event_types`): not built in, not in `EVENT_NAMES`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownEventTypes {
    /// Skipped with reason `unknown_event_type`.
    #[default]
    Skip,
    /// Sent with the raw `event_type` as the Segment `event`, properties untouched.
    Send,
}

impl UnknownEventTypes {
    /// `skip` or `send`, any case; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "skip" => Some(Self::Skip),
            "send" => Some(Self::Send),
            _ => None,
        }
    }

    /// The setting's value as an operator writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Send => "send",
        }
    }
}

/// How Currents events become Segment messages for one route.
#[derive(Clone, Debug, Default)]
pub struct MappingOptions {
    /// Send events of users without `external_user_id`, under `anonymousId` only.
    pub include_anonymous: bool,
    /// Overrides of the built-in Segment names, by `event_type`.
    pub event_names: HashMap<String, String>,
    /// When set, only these event types are sent; the rest are skipped.
    pub event_types: Option<HashSet<String>>,
    /// What happens to email addresses, phone numbers and free text.
    pub pii: PiiMode,
    /// Segment's `integrations` object, copied into every message; absent means all destinations.
    pub integrations: Option<Box<RawValue>>,
    /// Braze's current names or the older ones.
    pub naming: EventNaming,
    /// `LINE Sent`, `RCS Sent`, ... instead of Braze's bare `Sent` for both channels.
    pub channel_prefixed_names: bool,
    /// Skip or send event types that have no name.
    pub unknown_event_types: UnknownEventTypes,
}
