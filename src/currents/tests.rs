//! Tests of reading events through the entries (`parse_event`, `for_each_event_fast`), in both
//! shapes, and of the errors they name.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::event::Event;
use super::parse::{for_each_event_fast, parse_event};

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).unwrap()
}

fn code(text: &str) -> (&'static str, String) {
    let raw = raw(text);
    let error = parse_event(&raw).unwrap_err();
    (error.code, error.detail)
}

#[test]
fn a_full_event_parses_and_borrows_its_strings() {
    let raw = raw(
        r#"{"event_type":"users.messages.email.Open","id":"e1","time":1477502783,"extra":{"x":1},
           "user":{"user_id":"b1","external_user_id":"u1","device_id":"d1","timezone":"America/Chicago"},
           "properties":{"email_address":"a@example.com"}}"#,
    );
    let event = parse_event(&raw).unwrap();
    assert_eq!(event.event_type, "users.messages.email.Open");
    assert!(matches!(event.id, Cow::Borrowed("e1")));
    assert_eq!(event.time, 1_477_502_783);
    assert_eq!(event.user.external_user_id.as_deref(), Some("u1"));
    assert_eq!(event.user.device_id.as_deref(), Some("d1"));
    assert_eq!(event.timezone.as_deref(), Some("America/Chicago"));
    assert_eq!(event.properties.str("email_address").unwrap(), "a@example.com");
}

fn pairs(event: &Event<'_>) -> Vec<(String, String)> {
    let properties = event.properties.iter();
    properties.map(|(k, v)| (k.to_owned(), v.get().to_owned())).collect()
}

#[test]
fn a_flat_event_reads_its_top_level_fields_as_user_and_properties() {
    let raw = raw(
        r#"{"id":"e1","user_id":"b1","external_user_id":"u1","event_type":"users.messages.email.Open",
           "time":1477502783,"device_id":"d1","timezone":"Europe/Paris","email_address":"a@example.com",
           "campaign_name":null,"is_amp":false,"extra":{"x":1}}"#,
    );
    let event = parse_event(&raw).unwrap();
    assert_eq!(event.event_type, "users.messages.email.Open");
    assert_eq!(event.time, 1_477_502_783);
    assert_eq!(event.user.user_id.as_deref(), Some("b1"));
    assert_eq!(event.user.external_user_id.as_deref(), Some("u1"));
    assert_eq!(event.user.device_id.as_deref(), Some("d1"));
    assert_eq!(event.timezone.as_deref(), Some("Europe/Paris"));
    let expected = [
        ("email_address", r#""a@example.com""#),
        ("is_amp", "false"),
        ("extra", r#"{"x":1}"#),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    assert_eq!(pairs(&event), expected);
}

#[test]
fn flat_custom_and_purchase_properties_and_banner_variations_are_renamed() {
    let custom = raw(
        r#"{"event_type":"users.behaviors.CustomEvent","id":"e","time":1,"external_user_id":"u",
           "name":"n","properties":"{\"a\":1}","app_id":"x"}"#,
    );
    let event = parse_event(&custom).unwrap();
    let keys: Vec<String> = pairs(&event).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["name", "custom_properties", "app_id"]);
    assert_eq!(event.properties.str("custom_properties").unwrap(), r#"{"a":1}"#);
    let purchase =
        raw(r#"{"event_type":"users.behaviors.Purchase","id":"e","time":1,"user_id":"b","properties":"{}"}"#);
    assert_eq!(
        parse_event(&purchase)
            .unwrap()
            .properties
            .str("purchase_properties")
            .unwrap(),
        "{}"
    );
    let banner = raw(
        r#"{"event_type":"users.messages.banner.Click","id":"e","time":1,"user_id":"b",
           "canvas_step_message_variation_id":"v"}"#,
    );
    let event = parse_event(&banner).unwrap();
    assert_eq!(
        event.properties.str("canvas_step_message_variation_api_id").unwrap(),
        "v"
    );
}

#[test]
fn a_user_or_properties_object_makes_the_event_http_shaped() {
    let with_user = raw(r#"{"event_type":"t","id":"e","time":1,"external_user_id":"top","user":{"user_id":"b"}}"#);
    let event = parse_event(&with_user).unwrap();
    assert_eq!(event.user.external_user_id, None);
    assert!(event.properties.is_empty());
    let with_properties = raw(r#"{"event_type":"t","id":"e","time":1,"external_user_id":"top","properties":{}}"#);
    assert_eq!(parse_event(&with_properties).unwrap().user.external_user_id, None);
    let text_properties = r#"{"event_type":"t","id":"e","time":1,"user":{"user_id":"b"},"properties":"x"}"#;
    assert_eq!(code(text_properties).1, "field `properties` must be an object");
}

#[test]
fn flat_identity_fields_must_be_strings_and_named_fields_still_appear_once() {
    let (c, detail) = code(r#"{"event_type":"t","id":"e","time":1,"external_user_id":7}"#);
    assert_eq!(
        (c, detail.as_str()),
        ("malformed_event", "field `external_user_id` must be a string")
    );
    assert_eq!(
        code(r#"{"event_type":"t","id":"e","time":1,"user_id":"b","properties":null,"properties":"{}"}"#).1,
        "field `properties` appears twice"
    );
    // In the flat shape a string `properties` is not the field at fault.
    assert_eq!(
        code(r#"{"properties":"{}","event_type":7,"id":"e","time":1,"user_id":"b"}"#).1,
        "field `event_type` must be a string"
    );
}

#[test]
fn the_one_pass_path_reads_flat_events_as_parse_event_does() {
    let events = [
        r#"{"event_type":"users.behaviors.Purchase","id":"p","time":1,"user_id":"b","properties" : "{\"k\":2}","price":1.5}"#,
        r#"{"event_type":"users.messages.email.Open","id":"o","time":2,"external_user_id":"u","device_id":null}"#,
        r#"{"event_type":"t","id":"h","time":3,"user":{"external_user_id":"u"},"properties":{"a":[1]}}"#,
    ];
    let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
    let mut fast = Vec::new();
    assert!(for_each_event_fast(&body, |event| {
        fast.push(format!("{event:?}"));
        true
    }));
    let each: Vec<String> = events
        .iter()
        .map(|e| format!("{:?}", parse_event(&raw(e)).unwrap()))
        .collect();
    assert_eq!(fast, each);
    // A `properties` key written with escapes is read the HTTP way on both paths.
    let escaped = r#"{"event_type":"t","id":"x","time":1,"user_id":"b","propertie\u0073":"{}"}"#;
    assert!(!for_each_event_fast(&format!(r#"{{"events":[{escaped}]}}"#), |_| true));
    assert_eq!(code(escaped).0, "malformed_event");
}

/// The flat twin of an HTTP-shaped fixture event, as a storage export lays it out.
fn flat_twin(http: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    let event_type = http["event_type"].as_str().unwrap();
    let mut flat = http.as_object().unwrap().clone();
    let user = flat.remove("user").unwrap();
    let properties = flat.remove("properties").unwrap();
    for (name, value) in user.as_object().unwrap().iter().chain(properties.as_object().unwrap()) {
        let name = match name.as_str() {
            "custom_properties" | "purchase_properties" if event_type.starts_with("users.behaviors.") => {
                flat.insert("properties".into(), value.to_string().into());
                continue;
            }
            "canvas_step_message_variation_api_id" => "canvas_step_message_variation_id",
            other => other,
        };
        flat.insert(name.into(), value.clone());
    }
    flat
}

#[test]
fn the_one_pass_path_takes_the_flat_twin_of_every_fixture_event() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/all-events.json");
    let body: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let http = body["events"].as_array().unwrap();
    let flat: Vec<_> = http.iter().map(flat_twin).collect();
    let flat_body = serde_json::json!({ "events": flat }).to_string();
    let mut types = Vec::new();
    let complete = for_each_event_fast(&flat_body, |event| {
        types.push(event.event_type.into_owned());
        event.user.external_user_id.is_some()
    });
    assert!(complete, "every flat event is read on the one-pass path, with its user");
    assert_eq!(
        types,
        http.iter()
            .map(|e| e["event_type"].as_str().unwrap())
            .collect::<Vec<_>>()
    );
    // The test-only converter of storage records takes each twin back to its event.
    for (mut flat, http) in flat.into_iter().zip(http) {
        // In storage the type is in the object key, not a field.
        let event_type = flat.remove("event_type").unwrap();
        let event_type = event_type.as_str().unwrap();
        let mut expected = http.clone();
        expected["properties"]
            .as_object_mut()
            .unwrap()
            .retain(|_, v| !v.is_null());
        // A top-level `timezone`, which some HTTP exports carry, is the user's in storage.
        if let Some(timezone) = expected.as_object_mut().unwrap().remove("timezone") {
            expected["user"]["timezone"] = timezone;
        }
        assert_eq!(super::flat::flat_to_http(event_type, flat), expected);
    }
}

#[test]
fn top_level_timezone_and_missing_user_id_are_accepted() {
    let raw = raw(r#"{"event_type":"t","id":"e","time":1,"timezone":"Europe/Paris","user":{"external_user_id":"u"}}"#);
    let event = parse_event(&raw).unwrap();
    assert_eq!(event.timezone.as_deref(), Some("Europe/Paris"));
    assert_eq!(event.user.user_id, None);
}

#[test]
fn missing_or_mistyped_required_fields_get_their_own_reason() {
    assert_eq!(code(r#"{"event_type":"t","time":1}"#).0, "missing_id");
    assert_eq!(code(r#"{"event_type":"t","id":"","time":1}"#).0, "missing_id");
    assert_eq!(code(r#"{"id":"e","time":1}"#).0, "missing_event_type");
    assert_eq!(code(r#"{"event_type":"t","id":"e"}"#).0, "missing_time");
    assert_eq!(
        code(r#"{"event_type":"t","id":"e","time":"1477502783"}"#).0,
        "invalid_time"
    );
    assert_eq!(code(r#"{"event_type":"t","id":"e","time":1.5}"#).0, "invalid_time");
    assert_eq!(code(r#"{"event_type":"t","id":"e","time":-1}"#).0, "invalid_time");
    assert_eq!(
        code(r#"{"event_type":"t","id":"e","time":1477502783000}"#).0,
        "invalid_time"
    );
}

#[test]
fn the_undecodable_marker_is_a_malformed_event() {
    let (code, detail) = code(r#"{"undecodable_event_base64":"Y2Fm6Q==","id":"e","event_type":"t","time":1}"#);
    assert_eq!(code, "malformed_event");
    assert!(detail.contains("base64"));
}

#[test]
fn wrong_shapes_are_named_without_quoting_data() {
    assert_eq!(code("null").1, "the event is not a JSON object");
    assert_eq!(code("42").1, "the event is not a JSON object");
    assert_eq!(code(r#""secret@example.com""#).1, "the event is not a JSON object");
    let (c, detail) = code(r#"{"event_type":"t","id":"e","time":1,"user":"secret@example.com"}"#);
    assert_eq!(
        (c, detail.as_str()),
        ("malformed_event", "field `user` must be an object")
    );
    assert_eq!(
        code(r#"{"event_type":"t","id":"e","time":1,"properties":[1]}"#).1,
        "field `properties` must be an object"
    );
    assert_eq!(
        code(r#"{"event_type":7,"id":"e","time":1}"#).1,
        "field `event_type` must be a string"
    );
    assert_eq!(
        code(r#"{"event_type":"t","id":"e","id":"f","time":1}"#).1,
        "field `id` appears twice"
    );
    let (_, detail) = code(r#"{"event_type":"t","id":"e","time":1,"user":{"external_user_id":42}}"#);
    assert_eq!(detail, "field `user` has a field that is not a string");
}

/// Issue 21, case 11's siblings: serde reads a struct from an array, positionally.
#[test]
fn an_event_or_user_written_as_an_array_is_malformed_on_both_paths() {
    let user_array = r#"{"event_type":"t","id":"e","time":1,"user":["b1","u1"]}"#;
    assert_eq!(
        code(user_array),
        ("malformed_event", "field `user` must be an object".to_owned())
    );
    assert_eq!(code(r#"["t","e",1]"#).1, "the event is not a JSON object");
    for event in [user_array, r#"["t","e",1]"#] {
        let body = format!(r#"{{"events":[{event}]}}"#);
        assert!(!for_each_event_fast(&body, |_| true), "{event}");
    }
}
