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
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "keep" => Some(Self::Keep),
            "hash" => Some(Self::Hash),
            "drop" => Some(Self::Drop),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Hash => "hash",
            Self::Drop => "drop",
        }
    }
}

/// How Currents events become Segment messages for one route.
#[derive(Clone, Debug, Default)]
pub struct MappingOptions {
    pub include_anonymous: bool,
    /// Overrides of the built-in Segment names, by `event_type`.
    pub event_names: HashMap<String, String>,
    /// When set, only these event types are sent; the rest are skipped.
    pub event_types: Option<HashSet<String>>,
    pub pii: PiiMode,
    /// Segment's `integrations` object, copied into every message; absent means all destinations.
    pub integrations: Option<Box<RawValue>>,
}
