//! Small text helpers that keep input out of messages: serde errors reduced to their kind and
//! position, and byte-bounded cuts on character boundaries.

use serde_json::error::Category;

/// A serde_json error as "<kind> at line L column C". serde's own message can quote the
/// offending input, which may be a write key or PII, so only its category and position are kept.
pub(crate) fn json_error(error: &serde_json::Error) -> String {
    let kind = match error.classify() {
        Category::Syntax | Category::Eof => "invalid JSON",
        Category::Data => "unexpected field or type",
        Category::Io => "unreadable",
    };
    format!("{kind} at {}", json_error_position(error))
}

/// "line L column C" of a serde_json error.
pub(crate) fn json_error_position(error: &serde_json::Error) -> String {
    format!("line {} column {}", error.line(), error.column())
}

/// The field a "duplicate field" error names. Field names are ours (the schema's), never input.
pub(crate) fn duplicate_field(error: &serde_json::Error) -> Option<String> {
    let text = error.to_string();
    let rest = text.strip_prefix("duplicate field `")?;
    Some(rest.split('`').next().unwrap_or_default().to_owned())
}

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a character boundary.
pub(crate) fn prefix_within(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_kind_and_position_but_never_the_input() {
        let error = serde_json::from_str::<serde_json::Value>(r#"{"k": wk_SECRET}"#).unwrap_err();
        let text = json_error(&error);
        assert!(text.starts_with("invalid JSON at line 1 column"), "{text}");
        assert!(!text.contains("SECRET"));
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct S {
            a: u8,
        }
        let twice = serde_json::from_str::<S>(r#"{"a":1,"a":2}"#).unwrap_err();
        assert_eq!(duplicate_field(&twice).as_deref(), Some("a"));
        let wrong = serde_json::from_str::<S>(r#"{"a":"secret-value"}"#).unwrap_err();
        assert!(json_error(&wrong).starts_with("unexpected field or type"));
        assert!(!json_error(&wrong).contains("secret-value"));
    }

    #[test]
    fn prefixes_end_on_character_boundaries() {
        assert_eq!(prefix_within("café", 4), "caf");
        assert_eq!(prefix_within("café", 5), "café");
        assert_eq!(prefix_within("ab", 10), "ab");
        assert_eq!(prefix_within("€", 2), "");
    }
}
