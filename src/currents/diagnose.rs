//! Naming what is wrong with an event that could not be read: the first field of the wrong
//! type, a field given twice, or not an object at all. Runs only on the error path, and re-reads
//! the event to find the field; the names it gives never quote event data.

use serde_json::value::RawValue;

use super::event::{InvalidEvent, InvalidReason};
use super::properties::Properties;
use super::wire::WireUser;

/// Names the first field of the wrong type. Runs only on the error path.
pub(super) fn diagnose(raw: &RawValue, error: &serde_json::Error) -> InvalidEvent {
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
