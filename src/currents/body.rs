//! The request body: one JSON object with an `events` array.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::object_only::ObjectOnly;

/// Why a whole body is refused. Braze answers a 400 by splitting the batch, so these are kept
/// for bodies that no split can repair.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    #[error("body must be a JSON object with an `events` array: {0}")]
    NoEventsArray(String),
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    events: Option<Vec<&'a RawValue>>,
}

/// Splits a body into its raw events without looking inside them, so one bad event cannot
/// fail its neighbours. An empty body is an empty batch: Braze sends one to check credentials.
pub fn parse_body(body: &[u8]) -> Result<Vec<&RawValue>, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let ObjectOnly(parsed) = serde_json::from_slice::<ObjectOnly<Body<'_>>>(body).map_err(|error| {
        let at = crate::text::json_error_position(&error);
        match error.classify() {
            serde_json::error::Category::Data => {
                BodyError::NoEventsArray(format!("{} at {at}", data_error_kind(&error)))
            }
            _ => BodyError::NotJson(format!("syntax error at {at}")),
        }
    })?;
    parsed
        .events
        .ok_or_else(|| BodyError::NoEventsArray("`events` is missing or null".to_owned()))
}

/// serde's own message can quote input text; keep only the shape of the problem.
fn data_error_kind(error: &serde_json::Error) -> &'static str {
    if crate::text::duplicate_field(error).is_some() {
        "`events` appears twice"
    } else if error.to_string().contains("expected a sequence") {
        "`events` is not an array"
    } else {
        "the body is not an object"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_blank_body_is_an_empty_batch() {
        assert!(parse_body(b"").unwrap().is_empty());
        assert!(parse_body(b" \n").unwrap().is_empty());
        assert!(parse_body(br#"{"events":[]}"#).unwrap().is_empty());
    }

    #[test]
    fn events_are_returned_raw_and_unknown_top_level_fields_ignored() {
        let events = parse_body(br#"{"v":2,"events":[{"id":"a"}, 5, null]}"#).unwrap();
        let raw: Vec<&str> = events.iter().map(|e| e.get()).collect();
        assert_eq!(raw, [r#"{"id":"a"}"#, "5", "null"]);
    }

    #[test]
    fn bodies_without_an_events_array_are_refused_with_a_reason() {
        assert!(matches!(parse_body(b"{nope"), Err(BodyError::NotJson(_))));
        assert!(matches!(parse_body(b"\xff\xfe"), Err(BodyError::NotJson(_))));
        assert!(
            matches!(parse_body(br#"{"events":"x"}"#), Err(BodyError::NoEventsArray(m)) if m.contains("not an array"))
        );
        assert!(matches!(
            parse_body(br#"{"other":[]}"#),
            Err(BodyError::NoEventsArray(_))
        ));
        assert!(matches!(
            parse_body(br#"[{"events":[]}]"#),
            Err(BodyError::NoEventsArray(_))
        ));
        assert!(
            matches!(parse_body(br#"{"events":[],"events":[]}"#), Err(BodyError::NoEventsArray(m)) if m.contains("twice"))
        );
    }

    /// Issue 21, case 11: serde reads a struct from an array too, so `[[…]]` was a batch.
    #[test]
    fn an_array_body_is_refused_however_it_is_nested() {
        let event = r#"{"id":"a","event_type":"users.behaviors.CustomEvent","time":1}"#;
        for body in [
            format!("[[{event}]]"),
            "[[]]".to_owned(),
            format!(" \n[[{event}], 1]"),
            "[null]".to_owned(),
        ] {
            assert!(
                matches!(parse_body(body.as_bytes()), Err(BodyError::NoEventsArray(ref m)) if m.contains("not an object")),
                "{body}: {:?}",
                parse_body(body.as_bytes()).map(|e| e.len())
            );
        }
    }

    #[test]
    fn invalid_utf8_inside_a_string_is_not_json() {
        assert!(matches!(
            parse_body(b"{\"events\":[\"\xff\"]}"),
            Err(BodyError::NotJson(_))
        ));
    }
}
