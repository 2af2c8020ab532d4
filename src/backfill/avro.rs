//! Avro records of a Currents export to HTTP-shaped events. Each file is decoded with the
//! schema embedded in it (`apache_avro::Reader`), so added, removed or re-typed fields across
//! Braze's schema versions need no reader schema. Pure apart from the `Read` it is handed.

use apache_avro::Schema;
use apache_avro::types::Value as Avro;
use serde_json::{Number, Value};

use crate::currents::flat::HttpEventBuilder;

/// One record as an HTTP-shaped Currents event (JSON text) with its `time` (UNIX seconds)
/// when the record has an integer one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HttpRecord {
    pub json: String,
    pub time: Option<i64>,
}

/// The event type a schema describes: Braze names a record after the last part of the type
/// and puts the rest in a namespace such as `dataexport.S3.inner.users.messages.email`.
/// Used for files outside Braze's key layout; the key's `event_type=` wins when present.
pub(crate) fn event_type_from_schema(schema: &Schema) -> Option<String> {
    let Schema::Record(record) = schema else { return None };
    let name = &record.name;
    let namespace = name.namespace.as_deref().unwrap_or_default();
    let inner = match namespace.split_once(".inner.") {
        Some((_, rest)) => rest,
        None if namespace.ends_with(".inner") => "",
        None => namespace,
    };
    Some(match inner {
        "" => name.name.clone(),
        _ => format!("{inner}.{}", name.name),
    })
}

/// Turns one decoded record into an HTTP-shaped event for `event_type`, following
/// [`crate::currents::flat::flat_to_http`]'s rules. A value that is not a record is `None`.
pub(crate) fn record_to_http(event_type: &str, record: Avro) -> Option<HttpRecord> {
    let Avro::Record(fields) = record else { return None };
    let mut builder = HttpEventBuilder::new(event_type);
    let mut time = None;
    for (name, value) in fields {
        let value = to_json(value);
        if name == "time" {
            time = value.as_i64();
        }
        builder.field(&name, value);
    }
    let json = builder.finish().to_string();
    Some(HttpRecord { json, time })
}

/// An Avro value as plain JSON: unions unwrapped, floats at their shortest 32-bit form
/// (an Avro `float` 3.14 becomes 3.14, not 3.140000104904175), logical types as their numbers.
pub(crate) fn to_json(value: Avro) -> Value {
    match value {
        Avro::Null => Value::Null,
        Avro::Boolean(b) => Value::Bool(b),
        Avro::Int(n) | Avro::Date(n) | Avro::TimeMillis(n) => Value::from(n),
        Avro::Long(n)
        | Avro::TimeMicros(n)
        | Avro::TimestampMillis(n)
        | Avro::TimestampMicros(n)
        | Avro::TimestampNanos(n)
        | Avro::LocalTimestampMillis(n)
        | Avro::LocalTimestampMicros(n)
        | Avro::LocalTimestampNanos(n) => Value::from(n),
        Avro::Float(f) => float(f),
        Avro::Double(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Avro::String(s) | Avro::Enum(_, s) => Value::String(s),
        Avro::Bytes(b) | Avro::Fixed(_, b) => Value::String(String::from_utf8_lossy(&b).into_owned()),
        Avro::Union(_, inner) => to_json(*inner),
        Avro::Array(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Avro::Map(map) => Value::Object(map.into_iter().map(|(k, v)| (k, to_json(v))).collect()),
        Avro::Record(fields) => Value::Object(fields.into_iter().map(|(k, v)| (k, to_json(v))).collect()),
        Avro::Uuid(u) => Value::String(u.to_string()),
        other => Value::String(format!("{other:?}")),
    }
}

fn float(f: f32) -> Value {
    // `f32`'s Display is the shortest text that reads back as the same f32.
    f.to_string()
        .parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_name_their_event_type() {
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"Open","namespace":"dataexport.S3.inner.users.messages.email","fields":[]}"#,
        )
        .unwrap();
        assert_eq!(
            event_type_from_schema(&schema).as_deref(),
            Some("users.messages.email.Open")
        );
        let agent = Schema::parse_str(
            r#"{"type":"record","name":"ToolInvocation","namespace":"dataexport.GCS.inner.agentconsole","fields":[]}"#,
        )
        .unwrap();
        assert_eq!(
            event_type_from_schema(&agent).as_deref(),
            Some("agentconsole.ToolInvocation")
        );
        assert_eq!(event_type_from_schema(&Schema::String), None);
    }

    #[test]
    fn unions_unwrap_and_floats_keep_their_short_form() {
        let record = Avro::Record(vec![
            ("id".into(), Avro::String("e".into())),
            ("time".into(), Avro::Long(5)),
            ("user_id".into(), Avro::Union(1, Box::new(Avro::String("b".into())))),
            ("price".into(), Avro::Float(1.1)),
            ("gone".into(), Avro::Union(0, Box::new(Avro::Null))),
            (
                "tags".into(),
                Avro::Array(vec![Avro::Union(1, Box::new(Avro::String("t".into())))]),
            ),
        ]);
        let http = record_to_http("users.behaviors.Purchase", record).unwrap();
        assert_eq!(http.time, Some(5));
        let value: Value = serde_json::from_str(&http.json).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"id":"e","event_type":"users.behaviors.Purchase","time":5,
                "user":{"user_id":"b"},"properties":{"price":1.1,"tags":["t"]}})
        );
        assert_eq!(record_to_http("t", Avro::Null), None);
    }
}
