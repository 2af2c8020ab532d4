//! The [`Event`] type: one Currents event with its required fields present and well typed, and
//! [`InvalidEvent`], what is wrong with one that is not. How an event is read is in `wire`
//! (one event's fields and its shape) and `flat` (the storage shape).

use std::borrow::Cow;

use super::properties::Properties;

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

/// A string that is not empty.
pub(super) fn non_empty(text: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    text.filter(|s| !s.is_empty())
}
