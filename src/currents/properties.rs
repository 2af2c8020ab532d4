//! An event's `properties`, kept as raw JSON values so they pass through untouched and cheaply.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, de};
use serde_json::value::RawValue;

/// Key/value pairs in input order. Values are the exact input bytes; nothing is re-encoded.
#[derive(Debug, Default)]
pub struct Properties<'a> {
    pairs: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Properties<'a> {
    /// Every pair, in input order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &'a RawValue)> + '_ {
        self.pairs.iter().map(|(k, v)| (k.as_ref(), *v))
    }

    /// The raw value of the first property named `key`.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// A property that is a JSON string, unescaped. `None` for absent, null or non-string values.
    pub fn str(&self, key: &str) -> Option<Cow<'a, str>> {
        text(self.get(key)?)
    }

    /// Adds a pair. A repeated key keeps its first place and its last value, as when parsing.
    pub(crate) fn insert(&mut self, key: Cow<'a, str>, value: &'a RawValue) {
        match self.pairs.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.pairs.push((key, value)),
        }
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are no properties.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// A raw value that is a JSON string, unescaped; `None` for any other JSON type.
pub fn text(raw: &RawValue) -> Option<Cow<'_, str>> {
    if !raw.get().starts_with('"') {
        return None;
    }
    serde_json::from_str::<BorrowedText<'_>>(raw.get()).ok().map(|t| t.0)
}

/// A string that borrows from the input unless it holds escapes.
#[derive(Deserialize)]
pub(crate) struct BorrowedText<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Properties<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;

        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Properties<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut properties = Properties {
                    pairs: Vec::with_capacity(map.size_hint().unwrap_or(24)),
                };
                while let Some(key) = map.next_key::<BorrowedText<'de>>()? {
                    // A repeated key keeps its last value, as JSON parsers commonly do, so the
                    // message we build never carries the same key twice.
                    properties.insert(key.0, map.next_value()?);
                }
                Ok(properties)
            }
        }

        deserializer
            .deserialize_map(PairsVisitor)
            .map_err(|_: D::Error| de::Error::custom("not an object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_stay_byte_exact_and_strings_unescape_on_demand() {
        let props: Properties =
            serde_json::from_str(r#"{"a":"x\"y","n":1.50,"arr":["b"],"flag":true,"json":"{\"k\":1}","nil":null}"#)
                .unwrap();
        assert_eq!(props.get("n").unwrap().get(), "1.50");
        assert_eq!(props.get("arr").unwrap().get(), r#"["b"]"#);
        assert_eq!(props.str("a").unwrap(), "x\"y");
        assert_eq!(props.str("json").unwrap(), r#"{"k":1}"#);
        assert_eq!(props.str("flag"), None);
        assert_eq!(props.str("nil"), None);
        assert_eq!(props.len(), 6);
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_once() {
        let props: Properties = serde_json::from_str(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        let pairs: Vec<(&str, &str)> = props.iter().map(|(k, v)| (k, v.get())).collect();
        assert_eq!(pairs, [("a", "3"), ("b", "2")]);
    }

    #[test]
    fn non_objects_are_refused() {
        assert!(serde_json::from_str::<Properties>("[1]").is_err());
        assert!(serde_json::from_str::<Properties>("\"s\"").is_err());
    }
}
