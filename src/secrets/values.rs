//! The parsed secret, and laying it over the environment.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::SecretsError;
use crate::secret::{BearerTokens, Secret};

/// The key whose tokens a rotation keeps accepting from the previous version.
pub(super) const TOKEN_KEY: &str = "CURRENTS_AUTH_TOKEN";

/// Keys the secret may not set: they say where the secret is, so they must come from the
/// function's own configuration.
const RESERVED: [&str; 3] = ["SECRETS_ARN", "SECRETS_TTL_SECONDS", "PREVIOUS_TOKEN_GRACE_SECONDS"];

/// The configuration values one version of the secret holds, by variable name. `Debug` shows
/// the names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretValues(BTreeMap<String, Secret>);

impl SecretValues {
    /// Parses a `SecretString` (see the [module docs](super) for its shape).
    ///
    /// Errors: [`SecretsError::Shape`] when the text is not a JSON object, a key is not an
    /// upper-case variable name, or a key is `SECRETS_ARN` / `SECRETS_TTL_SECONDS`. The error
    /// names the key at fault and never quotes a value.
    pub fn parse(text: &Secret) -> Result<Self, SecretsError> {
        // Parse to a `Value` first: serde's "invalid type" errors quote the text, syntax
        // errors only give a position.
        let value: Value = serde_json::from_str(text.expose())
            .map_err(|e| SecretsError::Shape(format!("not JSON (line {}, column {})", e.line(), e.column())))?;
        let Value::Object(object) = value else {
            return Err(SecretsError::Shape("must be a JSON object of variable names".into()));
        };
        let mut values = BTreeMap::new();
        for (key, value) in object {
            check_key(&key)?;
            let text = match value {
                Value::Null => continue,
                Value::String(text) => text,
                other => other.to_string(),
            };
            values.insert(key, Secret::new(text));
        }
        Ok(Self(values))
    }

    /// The value the secret sets for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Secret> {
        self.0.get(key)
    }

    /// These values with `previous`'s `CURRENTS_AUTH_TOKEN` tokens (another version's:
    /// `AWSPREVIOUS` or `AWSPENDING`) added after this version's, so both are accepted during a
    /// rotation. Unchanged when either version sets no token or
    /// a token text that does not parse (a bad current one then fails the configuration's
    /// parse, which names it).
    pub(crate) fn with_tokens_of_version(&self, previous: &SecretValues) -> SecretValues {
        let tokens = |values: &SecretValues| {
            let text = values.get(TOKEN_KEY)?;
            BearerTokens::parse(text.expose()).ok()
        };
        let mut values = self.clone();
        if let (Some(current), Some(previous)) = (tokens(self), tokens(previous)) {
            values
                .0
                .insert(TOKEN_KEY.to_owned(), current.merged(&previous).to_text());
        }
        values
    }

    /// The variable names the secret sets, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.keys()).finish()
    }
}

fn check_key(key: &str) -> Result<(), SecretsError> {
    let well_formed = key.starts_with(|c: char| c.is_ascii_uppercase())
        && key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !well_formed {
        // A key that is not a variable name may be a value pasted in the wrong place: do not
        // quote it.
        return Err(SecretsError::Shape("keys must be upper-case variable names".into()));
    }
    if RESERVED.contains(&key) {
        return Err(SecretsError::Shape(format!("{key} cannot be set from the secret")));
    }
    Ok(())
}

/// A lookup that answers from `values` first, then from `env`; feed it to
/// [`Config::from_lookup`](crate::config::Config::from_lookup):
///
/// ```
/// # use currents_segment::secrets::{SecretValues, overlay};
/// # use currents_segment::secret::Secret;
/// let values = SecretValues::parse(&Secret::new(r#"{"SEGMENT_WRITE_KEY":"wk"}"#)).unwrap();
/// let lookup = overlay(&values, |key| std::env::var(key).ok());
/// let config = currents_segment::config::Config::from_lookup(lookup).unwrap();
/// assert!(config.routing.find("default").is_some());
/// ```
pub fn overlay<'a>(
    values: &'a SecretValues,
    env: impl Fn(&str) -> Option<String> + 'a,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |key| match values.get(key) {
        Some(secret) => Some(secret.expose().to_owned()),
        None => env(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn parse(text: &str) -> Result<SecretValues, SecretsError> {
        SecretValues::parse(&Secret::new(text))
    }

    #[test]
    fn strings_objects_and_scalars_become_variable_text() {
        let values = parse(
            r#"{"SEGMENT_WRITE_KEY":"wk_1","ROUTES":{"a":{"write_key":"wk_a"}},"INCLUDE_ANONYMOUS":true,"MAX_BODY_BYTES":1000,"PII_MODE":null}"#,
        )
        .unwrap();
        assert_eq!(values.get("SEGMENT_WRITE_KEY").unwrap().expose(), "wk_1");
        assert_eq!(values.get("ROUTES").unwrap().expose(), r#"{"a":{"write_key":"wk_a"}}"#);
        assert_eq!(values.get("INCLUDE_ANONYMOUS").unwrap().expose(), "true");
        assert_eq!(values.get("MAX_BODY_BYTES").unwrap().expose(), "1000");
        assert!(values.get("PII_MODE").is_none(), "null counts as absent");
    }

    #[test]
    fn bad_shapes_are_errors_that_quote_no_value() {
        for text in [
            "wk_SECRET",
            r#""wk_SECRET""#,
            r#"["wk_SECRET"]"#,
            r#"{"wk_SECRET":"x"}"#,
            r#"{"SECRETS_ARN":"wk_SECRET"}"#,
            r#"{"SEGMENT_WRITE_KEY":"wk_SECRET""#,
        ] {
            let error = parse(text).unwrap_err();
            assert!(matches!(error, SecretsError::Shape(_)), "{text}");
            assert!(!error.to_string().contains("SECRET\""), "{error}");
            assert!(!error.to_string().contains("wk_"), "{error}");
        }
    }

    #[test]
    fn the_previous_versions_tokens_follow_the_current_ones_only_when_both_set_some() {
        let current = parse(r#"{"CURRENTS_AUTH_TOKEN":["tok_B","tok_X"],"SEGMENT_WRITE_KEY":"wk"}"#).unwrap();
        let previous = parse(r#"{"CURRENTS_AUTH_TOKEN":"tok_A","SEGMENT_WRITE_KEY":"wk_old"}"#).unwrap();
        let merged = current.with_tokens_of_version(&previous);
        let tokens = BearerTokens::parse(merged.get("CURRENTS_AUTH_TOKEN").unwrap().expose()).unwrap();
        assert!(["tok_B", "tok_X", "tok_A"].iter().all(|t| tokens.accepts(t)));
        assert_eq!(
            merged.get("SEGMENT_WRITE_KEY").unwrap().expose(),
            "wk",
            "only the token is merged"
        );
        let no_token = parse(r#"{"SEGMENT_WRITE_KEY":"wk"}"#).unwrap();
        assert_eq!(
            no_token.with_tokens_of_version(&previous),
            no_token,
            "a token from the environment is not overridden"
        );
        assert_eq!(current.with_tokens_of_version(&no_token), current);
    }

    #[test]
    fn debug_shows_names_only() {
        let values = parse(r#"{"SEGMENT_WRITE_KEY":"wk_SECRET","CURRENTS_AUTH_TOKEN":"tok_SECRET"}"#).unwrap();
        let shown = format!("{values:?}");
        assert_eq!(shown, r#"{"CURRENTS_AUTH_TOKEN", "SEGMENT_WRITE_KEY"}"#);
    }

    #[test]
    fn the_secret_wins_over_the_environment_and_builds_a_config() {
        let values = parse(r#"{"SEGMENT_WRITE_KEY":"from-secret","ROUTES":{"brand-a":{"write_key":"wk_a"}}}"#).unwrap();
        let env = |key: &str| match key {
            "SEGMENT_WRITE_KEY" => Some("from-env".to_owned()),
            "RETRY_QUEUE_URL" => Some("https://sqs.example/retry".to_owned()),
            _ => None,
        };
        let lookup = overlay(&values, env);
        assert_eq!(lookup("SEGMENT_WRITE_KEY").as_deref(), Some("from-secret"));
        assert_eq!(lookup("RETRY_QUEUE_URL").as_deref(), Some("https://sqs.example/retry"));
        let config = Config::from_lookup(lookup).unwrap();
        let default = config.routing.route(config.routing.find("default").unwrap());
        assert_eq!(default.write_key.as_ref().unwrap().expose(), "from-secret");
        assert!(config.routing.find("brand-a").is_some());
    }
}
