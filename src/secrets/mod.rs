//! Secrets runtime mode: with `SECRETS_ARN` set, the functions read their credentials and
//! routes from one AWS Secrets Manager secret at cold start and re-read it at most every
//! `SECRETS_TTL_SECONDS` (default 300), so a rotated Segment write key takes effect within
//! minutes and never sits in the function's environment, where `lambda:GetFunctionConfiguration`
//! would show it.
//!
//! The secret's `SecretString` is a JSON object whose keys are configuration variable names
//! (any of the names [`Config::from_lookup`](crate::config::Config::from_lookup) reads):
//!
//! ```json
//! {
//!   "SEGMENT_WRITE_KEY": "wk_live_…",
//!   "CURRENTS_AUTH_TOKEN": "a-long-random-token",
//!   "ROUTES": {"brand-a": {"write_key": "wk_a…", "region": "eu"}},
//!   "APP_ROUTES": {"app-id-1": "brand-a"}
//! }
//! ```
//!
//! String values are used as they are; objects, arrays, numbers and booleans are used as their
//! JSON text (so `ROUTES` may be an object or a string holding one); `null` counts as absent.
//! A key the secret sets wins over the environment variable of the same name.
//!
//! The parts: [`CredentialSource`] is the port (one production adapter,
//! [`SecretsManagerSource`]); [`SecretValues`] is the parsed secret; [`SecretsCache`] applies
//! the TTL and keeps the last good value; [`overlay`] feeds the values to `Config::from_lookup`.
//! No value is ever logged or shown by `Debug`: values are [`Secret`]s.

mod cache;
mod manager;
mod values;

use async_trait::async_trait;

pub use cache::SecretsCache;
pub use manager::SecretsManagerSource;
pub use values::{SecretValues, overlay};

use crate::config::ConfigError;
use crate::secret::Secret;

/// Default refresh interval, in seconds, when `SECRETS_TTL_SECONDS` is unset.
pub(crate) const DEFAULT_TTL_SECONDS: u64 = 300;

/// Reading the secret failed. The text names the secret and the cause, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// Secrets Manager did not answer with the secret (network, permissions, missing secret);
    /// retrying later may help.
    #[error("cannot read secret {secret_id}: {reason}")]
    Fetch {
        /// The ARN or name asked for.
        secret_id: String,
        /// The SDK's error, which never includes the value.
        reason: String,
    },
    /// The secret was read but is not the documented JSON object; an operator must fix it.
    #[error("secret is not usable: {0}")]
    Shape(String),
}

/// Reads the current text of the credentials secret, once per call (no caching here).
#[async_trait]
pub trait CredentialSource: Send + Sync {
    /// The secret's `SecretString`. Errors: [`SecretsError::Fetch`].
    async fn fetch(&self) -> Result<Secret, SecretsError>;
}

/// Where the secret is and how often to re-read it, from `SECRETS_ARN` and
/// `SECRETS_TTL_SECONDS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecretsSettings {
    /// The secret's ARN (or name), passed to `GetSecretValue` as `SecretId`.
    pub secret_id: String,
    /// Minimum time between two reads of the secret.
    pub ttl: std::time::Duration,
}

impl SecretsSettings {
    /// `Ok(None)` when `SECRETS_ARN` is unset or empty (secrets mode off). Errors: a
    /// `SECRETS_TTL_SECONDS` that is not a whole number of seconds of at least 1.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let get = |key: &str| lookup(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let Some(secret_id) = get("SECRETS_ARN") else {
            return Ok(None);
        };
        let ttl =
            match get("SECRETS_TTL_SECONDS") {
                None => DEFAULT_TTL_SECONDS,
                Some(text) => text.parse::<u64>().ok().filter(|&secs| secs >= 1).ok_or_else(|| {
                    ConfigError::invalid("SECRETS_TTL_SECONDS", "must be a whole number of at least 1")
                })?,
            };
        Ok(Some(Self {
            secret_id,
            ttl: std::time::Duration::from_secs(ttl),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Option<SecretsSettings>, ConfigError> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        SecretsSettings::from_lookup(|key| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    }

    #[test]
    fn settings_are_off_without_an_arn_and_default_to_five_minutes() {
        assert_eq!(settings(&[]).unwrap(), None);
        assert_eq!(settings(&[("SECRETS_ARN", " ")]).unwrap(), None);
        let on = settings(&[("SECRETS_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:x")]).unwrap();
        assert_eq!(on.unwrap().ttl, std::time::Duration::from_secs(300));
        let short = settings(&[("SECRETS_ARN", "x"), ("SECRETS_TTL_SECONDS", "30")]).unwrap();
        assert_eq!(short.unwrap().ttl, std::time::Duration::from_secs(30));
        for bad in ["0", "-5", "5m"] {
            let error = settings(&[("SECRETS_ARN", "x"), ("SECRETS_TTL_SECONDS", bad)]).unwrap_err();
            assert_eq!(error.var, "SECRETS_TTL_SECONDS");
        }
    }
}
