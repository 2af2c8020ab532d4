//! Flat (storage-shaped) twins of HTTP-shaped Currents events, for tests. The inverse of the
//! rules in `currents::flat`: `user`'s fields and `properties`' entries move to the top level,
//! CustomEvent / Purchase properties become a JSON string under `properties`, and banner
//! variation ids take their storage name. Built from the raw text, so every value keeps its
//! bytes and every field its place. A null entry has no flat twin (the flat shape leaves nulls
//! out, as Braze's HTTP shape does), so the twin of an event is that of [`without_nulls`].
#![allow(dead_code)] // each test crate uses only some of these helpers

use currents_segment::currents::{Properties, parse_body};

/// The flat twin of one HTTP-shaped event (JSON text). Panics if two fields would share a name.
pub fn flat_event(http: &str) -> String {
    let top: Properties = serde_json::from_str(http).expect("an event object");
    let event_type = top.str("event_type").expect("an event type").into_owned();
    let mut fields: Vec<(String, String)> = Vec::new();
    for (key, value) in top.iter() {
        match key {
            "user" | "properties" => {
                let inner: Properties = serde_json::from_str(value.get()).expect("an object");
                for (name, raw) in inner.iter().filter(|(_, raw)| raw.get() != "null") {
                    fields.push(storage_field(&event_type, name, raw.get()));
                }
            }
            _ => fields.push((key.to_owned(), value.get().to_owned())),
        }
    }
    let mut names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(
        names.len(),
        fields.len(),
        "a field name repeats in the flat twin of {http}"
    );
    object(&fields)
}

/// A JSON object of `(name, raw value)` pairs, in order.
fn object(fields: &[(String, String)]) -> String {
    let pairs: Vec<String> = fields
        .iter()
        .map(|(name, raw)| format!("{}:{raw}", serde_json::to_string(name).unwrap()))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

/// One HTTP-shaped event without the null entries of its `user` and `properties`.
pub fn without_nulls(http: &str) -> String {
    let top: Properties = serde_json::from_str(http).expect("an event object");
    let mut fields: Vec<(String, String)> = Vec::new();
    for (key, value) in top.iter() {
        let raw = match key {
            "user" | "properties" => {
                let inner: Properties = serde_json::from_str(value.get()).expect("an object");
                let kept = inner.iter().filter(|(_, raw)| raw.get() != "null");
                object(
                    &kept
                        .map(|(name, raw)| (name.to_owned(), raw.get().to_owned()))
                        .collect::<Vec<_>>(),
                )
            }
            _ => value.get().to_owned(),
        };
        fields.push((key.to_owned(), raw));
    }
    object(&fields)
}

fn storage_field(event_type: &str, name: &str, raw: &str) -> (String, String) {
    let as_string = || serde_json::to_string(raw).unwrap();
    match name {
        "custom_properties" if event_type == "users.behaviors.CustomEvent" => ("properties".to_owned(), as_string()),
        "purchase_properties" if event_type == "users.behaviors.Purchase" => ("properties".to_owned(), as_string()),
        "canvas_step_message_variation_api_id" if event_type.starts_with("users.messages.banner.") => {
            ("canvas_step_message_variation_id".to_owned(), raw.to_owned())
        }
        _ => (name.to_owned(), raw.to_owned()),
    }
}

/// A body whose events are the flat twins of `http_body`'s, in the same order.
pub fn flat_body(http_body: &[u8]) -> Vec<u8> {
    each_event(http_body, flat_event)
}

/// `http_body` without null entries in its events' `user` and `properties`: the exact HTTP twin
/// of [`flat_body`]'s events.
pub fn http_body_without_nulls(http_body: &[u8]) -> Vec<u8> {
    each_event(http_body, without_nulls)
}

fn each_event(body: &[u8], change: fn(&str) -> String) -> Vec<u8> {
    let events = parse_body(body).expect("a Currents body");
    let events: Vec<String> = events.iter().map(|raw| change(raw.get())).collect();
    format!(r#"{{"events":[{}]}}"#, events.join(",")).into_bytes()
}
