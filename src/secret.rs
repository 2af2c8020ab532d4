//! A string that never shows itself in `Debug` or `Display`, so a write key or token cannot
//! reach a log line by accident; and the bearer tokens ingest accepts.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// Secret text such as a Segment write key or the Currents bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself; call it only where the secret leaves the process on purpose.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The bearer tokens ingest accepts (`CURRENTS_AUTH_TOKEN`): one or more, never empty. Several
/// are accepted at once during a token rotation. `Debug` shows how many, never a value.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerTokens(Vec<Secret>);

impl BearerTokens {
    /// Parses `CURRENTS_AUTH_TOKEN`: one token, or a JSON array of tokens (`["new","old"]`).
    /// A bearer token (RFC 6750 `b64token`) never starts with `[`, so text that does is a list.
    ///
    /// Errors (the reason, quoting no value): an empty token, or a list that is not a JSON array
    /// of one or more non-empty strings.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        const LIST: &str = "a list of tokens must be a JSON array of one or more non-empty strings";
        let text = text.trim();
        if !text.starts_with('[') {
            return Self::from_tokens([text]).ok_or("must not be empty");
        }
        // Parse to a `Value` first: serde's type errors quote the text they met.
        let value: serde_json::Value = serde_json::from_str(text).map_err(|_| LIST)?;
        let items = value.as_array().ok_or(LIST)?;
        let texts: Option<Vec<&str>> = items.iter().map(serde_json::Value::as_str).collect();
        texts.and_then(Self::from_tokens).ok_or(LIST)
    }

    /// The trimmed `tokens`, or `None` when there is none or one is empty.
    fn from_tokens<'t>(tokens: impl IntoIterator<Item = &'t str>) -> Option<Self> {
        let tokens: Vec<Secret> = tokens.into_iter().map(|t| Secret::new(t.trim())).collect();
        let usable = !tokens.is_empty() && tokens.iter().all(|t| !t.expose().is_empty());
        usable.then_some(Self(tokens))
    }

    /// These tokens followed by those of `other` that are not already here.
    pub(crate) fn merged(&self, other: &Self) -> Self {
        let mut tokens = self.0.clone();
        tokens.extend(other.0.iter().filter(|t| !self.0.contains(t)).cloned());
        Self(tokens)
    }

    /// The list as `CURRENTS_AUTH_TOKEN` text that [`BearerTokens::parse`] reads back.
    pub(crate) fn to_text(&self) -> Secret {
        let texts: Vec<&str> = self.0.iter().map(Secret::expose).collect();
        Secret::new(serde_json::Value::from(texts).to_string())
    }

    /// How many tokens are accepted (at least one).
    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// Whether `presented` is one of the tokens. It is compared with every token, on SHA-256
    /// digests and in constant time, with no early return: timing shows neither a token's bytes
    /// nor its length, nor which token matched.
    pub fn accepts(&self, presented: &str) -> bool {
        let presented = Sha256::digest(presented.as_bytes());
        let matched = self.0.iter().fold(Choice::from(0), |matched, token| {
            matched
                | Sha256::digest(token.expose().as_bytes())
                    .as_slice()
                    .ct_eq(presented.as_slice())
        });
        bool::from(matched)
    }
}

impl fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BearerTokens({} redacted)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new("wk_live_123");
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
        assert_eq!(secret.expose(), "wk_live_123");
    }

    #[test]
    fn one_token_or_a_json_list_of_tokens_is_accepted_and_nothing_else() {
        let one = BearerTokens::parse(" tok_A_SECRET ").unwrap();
        assert!(one.accepts("tok_A_SECRET") && !one.accepts("tok_B_SECRET") && !one.accepts(""));
        let two = BearerTokens::parse(r#"["tok_B_SECRET", " tok_A_SECRET"]"#).unwrap();
        assert_eq!(two.count(), 2);
        assert!(two.accepts("tok_A_SECRET") && two.accepts("tok_B_SECRET"));
        assert!(!two.accepts("tok_C_SECRET") && !two.accepts(r#"["tok_B_SECRET", " tok_A_SECRET"]"#));
        for bad in [
            "",
            "[]",
            r#"["tok_SECRET", ""]"#,
            r#"["tok_SECRET", 1]"#,
            r#"["tok_SECRET""#,
            "[tok_SECRET]",
        ] {
            let reason = BearerTokens::parse(bad).unwrap_err();
            assert!(!reason.contains("SECRET"), "{bad}: {reason}");
        }
    }

    #[test]
    fn merging_keeps_the_order_drops_repeats_and_reads_back() {
        let current = BearerTokens::parse(r#"["tok_B", "tok_X"]"#).unwrap();
        let previous = BearerTokens::parse("tok_A").unwrap();
        let merged = current.merged(&previous).merged(&current);
        assert_eq!(BearerTokens::parse(merged.to_text().expose()).unwrap(), merged);
        assert_eq!(merged.to_text().expose(), r#"["tok_B","tok_X","tok_A"]"#);
        assert_eq!(format!("{merged:?}"), "BearerTokens(3 redacted)");
    }
}
