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
//! Token rotation: `CURRENTS_AUTH_TOKEN` may be one token or a JSON array of tokens, all
//! accepted. While the `AWSCURRENT` version is younger than `PREVIOUS_TOKEN_GRACE_SECONDS`
//! (default a day), the `AWSPREVIOUS` version's tokens are accepted too. A version staged
//! `AWSPENDING` (a rotation in progress) has its tokens accepted while it is younger than the
//! same bound: ingest is the service the token opens, and in Secrets Manager's rotation model
//! the service accepts the pending credentials before clients move to them
//! (<https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_lambda-functions.html>).
//! A well-formed bearer token that matches none makes ingest re-read the secret first
//! ([`SecretsCache::reread`], at most once per [`REREAD_INTERVAL`]), so a token just put in the
//! secret passes on a warm instance at once.
//!
//! The parts: [`CredentialSource`] is the port (one production adapter,
//! [`SecretsManagerSource`]); [`SecretValues`] is the parsed secret; [`SecretsCache`] applies
//! the TTL and keeps the last good value; [`overlay`] feeds the values to `Config::from_lookup`.
//! No value is ever logged or shown by `Debug`: values are [`Secret`]s.

mod cache;
#[cfg(test)]
pub(crate) mod fake;
mod manager;
mod values;

use async_trait::async_trait;
use time::OffsetDateTime;

pub use cache::{REREAD_INTERVAL, SecretsCache};
pub use manager::SecretsManagerSource;
pub use values::{SecretValues, overlay};

use crate::config::ConfigError;
use crate::secret::Secret;

/// Default refresh interval, in seconds, when `SECRETS_TTL_SECONDS` is unset.
pub(crate) const DEFAULT_TTL_SECONDS: u64 = 300;

/// Default `PREVIOUS_TOKEN_GRACE_SECONDS`: a day to move Braze's connector to the new token.
pub(crate) const DEFAULT_PREVIOUS_TOKEN_GRACE_SECONDS: u64 = 86_400;

/// Largest `PREVIOUS_TOKEN_GRACE_SECONDS` (7 days): the overlap must end.
const MAX_PREVIOUS_TOKEN_GRACE_SECONDS: u64 = 604_800;

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

/// One version of the secret: its `SecretString` and when that version was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretVersion {
    /// The version's `SecretString`.
    pub text: Secret,
    /// The version's `CreatedDate`; `None` when the source does not say.
    pub created: Option<OffsetDateTime>,
}

impl SecretVersion {
    /// A version with no known creation time.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: Secret::new(text),
            created: None,
        }
    }
}

/// Reads versions of the credentials secret, once per call (no caching here): the stages
/// `AWSCURRENT`, `AWSPREVIOUS` and `AWSPENDING`.
#[async_trait]
pub trait CredentialSource: Send + Sync {
    /// The version staged `AWSCURRENT`. Errors: [`SecretsError::Fetch`].
    async fn fetch(&self) -> Result<SecretVersion, SecretsError>;

    /// The version staged `AWSPREVIOUS` (the one `AWSCURRENT` moved away from at the last
    /// rotation), or `None` when there is none. Errors: [`SecretsError::Fetch`].
    async fn fetch_previous(&self) -> Result<Option<Secret>, SecretsError> {
        Ok(None)
    }

    /// The version staged `AWSPENDING` (a rotation in progress), with its creation time, or
    /// `None` when there is none. Errors: [`SecretsError::Fetch`].
    async fn fetch_pending(&self) -> Result<Option<SecretVersion>, SecretsError> {
        Ok(None)
    }
}

/// Where the secret is and how often to re-read it, from `SECRETS_ARN`, `SECRETS_TTL_SECONDS`
/// and `PREVIOUS_TOKEN_GRACE_SECONDS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecretsSettings {
    /// The secret's ARN (or name), passed to `GetSecretValue` as `SecretId`.
    pub secret_id: String,
    /// Minimum time between two reads of the secret.
    pub ttl: std::time::Duration,
    /// How long after the `AWSCURRENT` version was created the `AWSPREVIOUS` version's
    /// `CURRENTS_AUTH_TOKEN` is still accepted; zero: never.
    pub previous_token_grace: std::time::Duration,
}

impl SecretsSettings {
    /// `Ok(None)` when `SECRETS_ARN` is unset or empty (secrets mode off). Errors: a
    /// `SECRETS_TTL_SECONDS` that is not a whole number of seconds of at least 1, a
    /// `PREVIOUS_TOKEN_GRACE_SECONDS` that is not a whole number from 0 to 604,800.
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
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
        let grace = match get("PREVIOUS_TOKEN_GRACE_SECONDS") {
            None => DEFAULT_PREVIOUS_TOKEN_GRACE_SECONDS,
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|&secs| secs <= MAX_PREVIOUS_TOKEN_GRACE_SECONDS)
                .ok_or_else(|| {
                    ConfigError::invalid(
                        "PREVIOUS_TOKEN_GRACE_SECONDS",
                        "must be a whole number of seconds from 0 to 604800 (7 days)",
                    )
                })?,
        };
        Ok(Some(Self {
            secret_id,
            ttl: std::time::Duration::from_secs(ttl),
            previous_token_grace: std::time::Duration::from_secs(grace),
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

    #[test]
    fn the_previous_token_is_accepted_for_a_day_by_default_and_at_most_a_week() {
        let grace = |value: &str| {
            let vars = [("SECRETS_ARN", "x"), ("PREVIOUS_TOKEN_GRACE_SECONDS", value)];
            settings(&vars).map(|s| s.unwrap().previous_token_grace.as_secs())
        };
        assert_eq!(grace("").unwrap(), 86_400);
        assert_eq!(grace("0").unwrap(), 0, "zero: the previous token is never accepted");
        assert_eq!(grace("604800").unwrap(), 604_800);
        for bad in ["604801", "-1", "1d"] {
            assert_eq!(grace(bad).unwrap_err().var, "PREVIOUS_TOKEN_GRACE_SECONDS");
        }
    }
}
