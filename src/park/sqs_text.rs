//! SQS's character rule for message bodies. SQS stores only XML 1.0 characters
//! (`#x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF`) and refuses anything else with
//! `InvalidMessageContents`, a sender fault no re-send can fix:
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>.
//!
//! Envelopes are JSON, and in valid JSON a character outside that set can only sit inside a
//! string, where a `\uXXXX` escape means the same character. So escaping is lossless: the JSON
//! decodes to the same values, and Segment receives the same message.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for a character SQS stores in a message body (see the module docs for the rule).
pub fn sqs_allows(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// `json` with every character SQS refuses (U+FFFE, U+FFFF, C0 controls) written as a JSON
/// `\uXXXX` escape. Borrows when nothing needs escaping, which is the common case.
pub(crate) fn sqs_safe(json: &str) -> Cow<'_, str> {
    escape_where(json, |c| !sqs_allows(c))
}

/// `json` written in ASCII only: every non-ASCII or refused character becomes a `\uXXXX`
/// escape (a surrogate pair above U+FFFF). The form of last resort when SQS refuses a body.
pub(crate) fn ascii_only(json: &str) -> Cow<'_, str> {
    escape_where(json, |c| !c.is_ascii() || !sqs_allows(c))
}

fn escape_where(json: &str, escape: impl Fn(char) -> bool) -> Cow<'_, str> {
    let Some(first) = json.find(&escape) else {
        return Cow::Borrowed(json);
    };
    let mut out = String::with_capacity(json.len() + 16);
    out.push_str(&json[..first]);
    for c in json[first..].chars() {
        if escape(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_matches_the_sendmessage_reference_at_every_boundary() {
        for allowed in [
            '\t',
            '\n',
            '\r',
            ' ',
            '\u{D7FF}',
            '\u{E000}',
            '\u{FFFD}',
            '\u{10000}',
            '\u{10FFFF}',
        ] {
            assert!(sqs_allows(allowed), "{allowed:?}");
        }
        for refused in ['\0', '\u{8}', '\u{B}', '\u{C}', '\u{1F}', '\u{FFFE}', '\u{FFFF}'] {
            assert!(!sqs_allows(refused), "{refused:?}");
        }
    }

    #[test]
    fn refused_characters_become_escapes_that_decode_to_the_same_value() {
        let original = serde_json::json!({"external_user_id": "user-\u{FFFF}-7", "p": "\u{FFFE}é😀"});
        let json = original.to_string();
        let safe = sqs_safe(&json);
        assert!(safe.chars().all(sqs_allows));
        assert!(safe.contains(r"user-\uffff-7"));
        assert!(safe.contains("é😀"), "allowed characters stay as they are");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&safe).unwrap(), original);
        let ascii = ascii_only(&json);
        assert!(ascii.is_ascii());
        assert!(ascii.contains(r"\ud83d\ude00"));
        assert_eq!(serde_json::from_str::<serde_json::Value>(&ascii).unwrap(), original);
    }

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(sqs_safe(r#"{"a":"é"}"#), Cow::Borrowed(_)));
    }
}
