//! The Segment `event` of a Currents event under a route's options, and the effective name
//! table that the mapping, the CLI and the Lambdas all derive from the one built-in table.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::Serialize;

use super::names::{BuiltinName, EVENT_TABLE, EventSpec, builtin};
use super::options::{EventNaming, MappingOptions, UnknownEventTypes};
use crate::currents::{Event, InvalidEvent};

/// Where an event type's Segment `event` comes from under a route's options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentName<'o> {
    /// `EVENT_NAMES` (or the route's `event_names`) names the type.
    Configured(&'o str),
    /// Braze's current name: the header of the type's Segment tab.
    Braze(&'static str),
    /// The older name, under `EVENT_NAMING=legacy`.
    Legacy(&'static str),
    /// A LINE or RCS name with its channel, under `CHANNEL_PREFIXED_NAMES=true`.
    ChannelPrefixed(&'static str),
    /// A custom event: its own `properties.name`.
    CustomEventName,
    /// An unknown type under `UNKNOWN_EVENT_TYPES=send`: the raw `event_type`.
    EventType,
}

impl<'o> SegmentName<'o> {
    /// The fixed name, if the rule has one (not for custom events or raw event types).
    pub fn fixed(self) -> Option<&'o str> {
        match self {
            Self::Configured(name) => Some(name),
            Self::Braze(name) | Self::Legacy(name) | Self::ChannelPrefixed(name) => Some(name),
            Self::CustomEventName | Self::EventType => None,
        }
    }

    /// Where the name comes from, as the `event-names` command prints it.
    pub fn source(self) -> &'static str {
        match self {
            Self::Configured(_) => "event_names",
            Self::Braze(_) => "braze",
            Self::Legacy(_) => "legacy",
            Self::ChannelPrefixed(_) => "channel_prefixed",
            Self::CustomEventName => "custom_event_name",
            Self::EventType => "event_type",
        }
    }

    /// The Segment `event` for `event`. Errors with `empty_event_name` when it would be empty
    /// (a blank configured name, or a custom event without `properties.name`): Segment answers
    /// 200 to such a message and drops it.
    pub(crate) fn resolve<'x>(self, event: &'x Event<'x>) -> Result<Cow<'x, str>, InvalidEvent>
    where
        'o: 'x,
    {
        let name = match self {
            Self::CustomEventName => event.properties.str("name").unwrap_or_default(),
            Self::EventType => Cow::Borrowed(event.event_type.as_ref()),
            fixed => Cow::Borrowed(fixed.fixed().unwrap_or_default()),
        };
        if name.trim().is_empty() {
            let detail = match self {
                Self::CustomEventName => "the custom event's `properties.name` is missing or empty",
                _ => "the configured Segment event name is empty",
            };
            return Err(InvalidEvent::new(
                crate::currents::InvalidReason::EmptyEventName,
                detail,
            ));
        }
        Ok(name)
    }
}

/// The name rule for `event_type` under `options`, or `None` when the type is unknown and is
/// skipped (`unknown_event_type`). `spec` is `builtin(event_type)`, which the caller has
/// already looked up for the event's context moves. No allocation.
pub(crate) fn segment_name<'o>(
    options: &'o MappingOptions,
    event_type: &str,
    spec: Option<&'static EventSpec>,
) -> Option<SegmentName<'o>> {
    if let Some(name) = options.event_names.get(event_type) {
        return Some(SegmentName::Configured(name));
    }
    match (
        spec.and_then(|spec| builtin_rule(options, spec)),
        options.unknown_event_types,
    ) {
        (Some(rule), _) => Some(rule),
        (None, UnknownEventTypes::Send) => Some(SegmentName::EventType),
        (None, UnknownEventTypes::Skip) => None,
    }
}

fn builtin_rule(options: &MappingOptions, spec: &'static EventSpec) -> Option<SegmentName<'static>> {
    if options.naming == EventNaming::Legacy
        && let Some(name) = spec.legacy_name
    {
        return Some(SegmentName::Legacy(name));
    }
    if options.channel_prefixed_names
        && let Some(name) = spec.prefixed_name
    {
        return Some(SegmentName::ChannelPrefixed(name));
    }
    match spec.name {
        BuiltinName::Braze(name) => Some(SegmentName::Braze(name)),
        BuiltinName::CustomEventName => Some(SegmentName::CustomEventName),
        BuiltinName::LegacyOnly => None,
    }
}

/// One row of a route's effective name table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectiveName<'o> {
    /// The Currents `event_type`.
    pub event_type: &'o str,
    /// How the Segment `event` is found; `None` when the type is skipped as unknown.
    pub name: Option<SegmentName<'o>>,
    /// `false` when the route's `EVENT_TYPES` leaves the type out (`event_type_not_selected`).
    pub selected: bool,
}

impl Serialize for EffectiveName<'_> {
    /// `{"event_type", "event" (null for custom events and skipped types), "source" (null when
    /// skipped), "selected"}`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut row = serializer.serialize_struct("EffectiveName", 4)?;
        row.serialize_field("event_type", self.event_type)?;
        let event = match self.name {
            Some(SegmentName::EventType) => Some(self.event_type),
            other => other.and_then(SegmentName::fixed),
        };
        row.serialize_field("event", &event)?;
        row.serialize_field("source", &self.name.map(SegmentName::source))?;
        row.serialize_field("selected", &self.selected)?;
        row.end()
    }
}

/// The effective name table of a route: every built-in type, every `EVENT_NAMES` key and every
/// `EVENT_TYPES` entry, sorted by `event_type`, each with the rule the mapping applies to it
/// (the same `segment_name` call). Types in none of those follow
/// `options.unknown_event_types`. Pure; for `currents-segment event-names [--json]`.
pub fn effective_names(options: &MappingOptions) -> Vec<EffectiveName<'_>> {
    let mut types: BTreeSet<&str> = EVENT_TABLE.iter().map(|row| row.event_type).collect();
    types.extend(options.event_names.keys().map(String::as_str));
    types.extend(options.event_types.iter().flatten().map(String::as_str));
    types
        .into_iter()
        .map(|event_type| EffectiveName {
            event_type,
            name: segment_name(options, event_type, builtin(event_type)),
            selected: options
                .event_types
                .as_ref()
                .is_none_or(|selected| selected.contains(event_type)),
        })
        .collect()
}
