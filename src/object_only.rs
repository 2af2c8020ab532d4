//! JSON objects only. serde's derived `Deserialize` for a struct also reads a JSON *array*,
//! field by field in declaration order, so `[[{…}]]` would pass for `{"events":[{…}]}` and
//! `"user": ["u1"]` for `{"user_id": "u1"}`. Wrapping a derived struct in [`ObjectOnly`] asks
//! the deserializer for a map, which refuses an array with "invalid type: sequence".

use serde::de::{Deserialize, Deserializer, Visitor};

/// A `T` that was written as a JSON object, never as an array.
pub(crate) struct ObjectOnly<T>(pub(crate) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(MapOnly(deserializer)).map(ObjectOnly)
    }
}

/// Forwards every request to the inner deserializer's `deserialize_map`: the value is read only
/// when it is an object. Nested values are read by the inner deserializer, as usual.
struct MapOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for MapOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Pair {
        a: Option<String>,
        b: Option<u32>,
    }

    fn read(text: &str) -> Result<Pair, serde_json::Error> {
        serde_json::from_str::<ObjectOnly<Pair>>(text).map(|o| o.0)
    }

    #[test]
    fn an_object_is_read_as_before_and_an_array_is_refused() {
        assert_eq!(
            read(r#"{"b":2,"a":"x"}"#).unwrap(),
            Pair {
                a: Some("x".into()),
                b: Some(2)
            }
        );
        assert_eq!(read("{}").unwrap(), Pair { a: None, b: None });
        // The derive alone reads these positionally; ObjectOnly does not.
        assert!(serde_json::from_str::<Pair>(r#"["x",2]"#).is_ok());
        for text in [r#"["x",2]"#, "[]", "[[]]", "null", "\"s\"", "5"] {
            let error = read(text).unwrap_err();
            assert_eq!(error.classify(), serde_json::error::Category::Data, "{text}");
        }
    }

    #[test]
    fn duplicate_fields_are_still_reported_as_such() {
        let error = read(r#"{"a":"x","a":"y"}"#).unwrap_err();
        assert_eq!(crate::text::duplicate_field(&error).as_deref(), Some("a"));
    }
}
