//! Flat, storage-shaped Currents events (the records of Braze's Avro exports to S3, GCS or
//! Azure) and how they map to the HTTP shape the rest of the mapping reads.
//!
//! In storage, `user_id`, `external_user_id`, `device_id` and `timezone` sit at the top level
//! beside the event's own fields, with no `user` or `properties` wrapper, and the event type is
//! not a field: it comes from the object key (`…/event_type=<T>/…`). See Braze's "Event
//! delivery semantics" page,
//! <https://www.braze.com/docs/user_guide/data/distribution/braze_currents/event_delivery_semantics>.
//! The HTTP shape is `{"id","event_type","time","user":{…},"properties":{…}}`.
//!
//! **Recognising the flat shape.** An event is flat when it has no `user` object (absent or
//! null), no `properties` object, and a top-level `external_user_id` or `user_id` that is not
//! null. Posted to ingest or given to `transform`, it must also carry `event_type`. Anything
//! else is read as the HTTP shape, whose unknown top-level fields are ignored.
//!
//! **Reading it** (Braze's storage and HTTP samples compared field by field; [`place`]):
//! - `id`, `event_type`, `time` are read as in the HTTP shape;
//! - `user_id`, `external_user_id`, `device_id` are the user (strings; null is absent) and
//!   `timezone` the event's timezone;
//! - CustomEvent / Purchase `properties` (a JSON string in storage) becomes the property
//!   `custom_properties` / `purchase_properties`, whose entries the mapping brings to the top
//!   level as it does for the HTTP shape's object;
//! - banner `canvas_step_message_variation_id` becomes `canvas_step_message_variation_api_id`;
//! - every other field is a property under its own name, in input order; null fields are
//!   left out, as the HTTP shape never carries a null.
//!
//! A flat event and its HTTP twin give the same Segment message, so the same `messageId`.
//! One difference is kept: a CustomEvent or Purchase `properties` string that holds JSON but not
//! an object stays a string, where the twin carries the parsed value.

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::event::{InvalidEvent, InvalidReason, User, non_empty};
use super::properties::{Properties, text};

/// Where one flat field goes in the HTTP shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Top level, under the same name (`id`, `time`).
    Top,
    /// Inside `user`, under the same name.
    User,
    /// Inside `properties`, under this name.
    Property(&'static str),
    /// Inside `properties` under this name, with the JSON text of the string parsed into a
    /// value (custom and purchase properties). A string that is not JSON stays a string.
    ParsedProperty(&'static str),
    /// Inside `properties`, under the same name.
    SameProperty,
}

/// Where `field` of an `event_type` record goes. Pure, so every reader of storage records
/// (JSON or Avro) shares one rule table.
pub(crate) fn place(event_type: &str, field: &str) -> Place {
    match field {
        "id" | "time" => Place::Top,
        "user_id" | "external_user_id" | "device_id" | "timezone" => Place::User,
        "properties" => match event_type {
            "users.behaviors.CustomEvent" => Place::ParsedProperty("custom_properties"),
            "users.behaviors.Purchase" => Place::ParsedProperty("purchase_properties"),
            _ => Place::SameProperty,
        },
        "canvas_step_message_variation_id" if event_type.starts_with("users.messages.banner.") => {
            Place::Property("canvas_step_message_variation_api_id")
        }
        _ => Place::SameProperty,
    }
}

/// The user and the properties of a flat event, from its top-level fields other than `id`,
/// `event_type`, `time` and `timezone` (`fields`, in input order), placed by [`place`].
/// Errors with `malformed_event` when an identity field is not a string.
pub(super) fn read_flat<'a>(
    event_type: &str,
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
) -> Result<(User<'a>, Properties<'a>), InvalidEvent> {
    let mut user = User::default();
    let mut properties = Properties::default();
    for (key, value) in fields {
        if value.get() == "null" {
            continue;
        }
        let name = match place(event_type, &key) {
            Place::User => {
                let slot = match key.as_ref() {
                    "user_id" => &mut user.user_id,
                    "external_user_id" => &mut user.external_user_id,
                    "device_id" => &mut user.device_id,
                    _ => continue,
                };
                let text = text(value).ok_or_else(|| {
                    InvalidEvent::new(InvalidReason::MalformedEvent, format!("field `{key}` must be a string"))
                })?;
                *slot = non_empty(Some(text));
                continue;
            }
            // `id` and `time` are named fields, never among `fields`.
            Place::Top => continue,
            Place::Property(renamed) | Place::ParsedProperty(renamed) => Cow::Borrowed(renamed),
            Place::SameProperty => key,
        };
        properties.insert(name, value);
    }
    Ok((user, properties))
}

/// Builds HTTP-shaped events field by field; null values are left out, as the HTTP
/// shape never carries a null.
#[derive(Debug)]
pub(crate) struct HttpEventBuilder<'t> {
    event_type: &'t str,
    top: Map<String, Value>,
    user: Map<String, Value>,
    properties: Map<String, Value>,
}

impl<'t> HttpEventBuilder<'t> {
    pub(crate) fn new(event_type: &'t str) -> Self {
        Self {
            event_type,
            top: Map::new(),
            user: Map::new(),
            properties: Map::new(),
        }
    }

    /// Adds one flat field.
    pub(crate) fn field(&mut self, name: &str, value: Value) {
        if value.is_null() {
            return;
        }
        match place(self.event_type, name) {
            Place::Top => {
                self.top.insert(name.to_owned(), value);
            }
            Place::User => {
                self.user.insert(name.to_owned(), value);
            }
            Place::Property(renamed) => {
                self.properties.insert(renamed.to_owned(), value);
            }
            Place::ParsedProperty(renamed) => {
                let parsed = match &value {
                    Value::String(text) => serde_json::from_str(text).unwrap_or(value),
                    _ => value,
                };
                self.properties.insert(renamed.to_owned(), parsed);
            }
            Place::SameProperty => {
                self.properties.insert(name.to_owned(), value);
            }
        }
    }

    /// The event: `id`, `event_type`, `time`, then `user` (possibly `{}`) and `properties`.
    pub(crate) fn finish(self) -> Value {
        let mut event = Map::new();
        if let Some(id) = self.top.get("id") {
            event.insert("id".to_owned(), id.clone());
        }
        event.insert("event_type".to_owned(), Value::String(self.event_type.to_owned()));
        for (name, value) in self.top {
            if name != "id" {
                event.insert(name, value);
            }
        }
        event.insert("user".to_owned(), Value::Object(self.user));
        event.insert("properties".to_owned(), Value::Object(self.properties));
        Value::Object(event)
    }
}

/// Turns one flat storage record (a JSON object, e.g. an Avro record decoded to JSON with its
/// unions unwrapped) into the HTTP shape, for `event_type` taken from the object key.
///
/// Rules (Braze's storage and HTTP samples compared field by field):
/// - `id`, `time` stay at the top level; `event_type` is added;
/// - `user_id`, `external_user_id`, `device_id`, `timezone` move into `user` (`{}` when none);
/// - CustomEvent / Purchase `properties` (a JSON string) become `properties.custom_properties` /
///   `properties.purchase_properties`, parsed;
/// - banner `canvas_step_message_variation_id` becomes `canvas_step_message_variation_api_id`;
/// - every other field goes into `properties` under its own name; null fields are dropped.
#[cfg(test)]
pub(crate) fn flat_to_http(event_type: &str, flat: Map<String, Value>) -> Value {
    let mut builder = HttpEventBuilder::new(event_type);
    for (name, value) in flat {
        builder.field(&name, value);
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("tests pass objects"),
        }
    }

    #[test]
    fn user_fields_move_and_the_rest_become_properties() {
        let flat = object(json!({
            "id": "e1", "time": 1_700_000_000, "user_id": "b1", "external_user_id": "u1",
            "device_id": null, "timezone": "Europe/Paris", "email_address": "a@example.com",
            "campaign_name": null, "is_amp": false
        }));
        let http = flat_to_http("users.messages.email.Open", flat);
        assert_eq!(
            http,
            json!({
                "id": "e1", "event_type": "users.messages.email.Open", "time": 1_700_000_000,
                "user": {"user_id": "b1", "external_user_id": "u1", "timezone": "Europe/Paris"},
                "properties": {"email_address": "a@example.com", "is_amp": false}
            })
        );
    }

    #[test]
    fn custom_and_purchase_properties_are_renamed_and_parsed() {
        let custom = flat_to_http(
            "users.behaviors.CustomEvent",
            object(json!({"id": "e", "time": 1, "name": "n", "properties": "{\"a\":1}"})),
        );
        assert_eq!(
            custom["properties"],
            json!({"name": "n", "custom_properties": {"a": 1}})
        );
        let purchase = flat_to_http(
            "users.behaviors.Purchase",
            object(json!({"id": "e", "time": 1, "properties": "not json"})),
        );
        assert_eq!(purchase["properties"], json!({"purchase_properties": "not json"}));
    }

    #[test]
    fn banner_variation_ids_are_renamed_only_for_banners() {
        let field = "canvas_step_message_variation_id";
        assert_eq!(
            place("users.messages.banner.Click", field),
            Place::Property("canvas_step_message_variation_api_id")
        );
        assert_eq!(place("users.messages.email.Abort", field), Place::SameProperty);
        assert_eq!(place("users.messages.email.Abort", "properties"), Place::SameProperty);
    }

    #[test]
    fn a_record_without_user_fields_gets_an_empty_user() {
        let http = flat_to_http(
            "agentconsole.ToolInvocation",
            object(json!({"id": "t", "time": 1, "tool_name": "x"})),
        );
        assert_eq!(http["user"], json!({}));
        assert_eq!(http["event_type"], "agentconsole.ToolInvocation");
    }
}
