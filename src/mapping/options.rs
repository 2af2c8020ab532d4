//! How Currents events become Segment messages for one route: the options the mapping reads.

use std::collections::{HashMap, HashSet};

use serde_json::value::RawValue;

crate::string_enum::string_enum! {
    /// What happens to email addresses, phone numbers and user free text before they leave
    /// (`PII_MODE`, route key `pii_mode`).
    #[derive(Default)]
    pub enum PiiMode {
        /// Forward as received; what Braze's own connector does.
        #[default]
        Keep = "keep",
        /// Replace with lower-case SHA-256 hex of the normalised value.
        Hash = "hash",
        /// Remove the values.
        Drop = "drop",
    }
}

crate::string_enum::string_enum! {
    /// Which published name set the built-in table uses (`EVENT_NAMING`, route key `event_naming`).
    #[derive(Default)]
    pub enum EventNaming {
        /// The headers of the Segment tabs in Braze's current Currents glossary.
        #[default]
        Braze = "braze",
        /// The older Segment-for-Currents page's names where they differ (`iOS Foreground Push
        /// Opened`, `Email Marked As Spam`, `Email Unsubscribed`), plus the five types this bridge
        /// named before that have no Segment tab (News Feed, campaign and Canvas aborts).
        Legacy = "legacy",
    }
}

crate::string_enum::string_enum! {
    /// What happens to event types with no name (`UNKNOWN_EVENT_TYPES`, route key
    /// `unknown_event_types`): not built in, not in `EVENT_NAMES`.
    #[derive(Default)]
    pub enum UnknownEventTypes {
        /// Skipped with reason `unknown_event_type`.
        #[default]
        Skip = "skip",
        /// Sent with the raw `event_type` as the Segment `event`, properties untouched.
        Send = "send",
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
