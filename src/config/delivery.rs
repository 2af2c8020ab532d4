//! What a function that delivers and parks needs, parsed so that every value is present by type.

use super::{Config, ConfigError, DeliveryTargets};

/// The URL of an SQS queue, as SQS's API takes it (`https://sqs.<region>.amazonaws.com/<account>/<name>`,
/// or a local stand-in's URL). Never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueUrl(String);

impl QueueUrl {
    /// Parses a queue URL; `var` names the setting in the error.
    pub fn parse(var: &'static str, text: &str) -> Result<Self, ConfigError> {
        let text = text.trim();
        if text.starts_with("https://") || text.starts_with("http://") {
            Ok(Self(text.to_owned()))
        } else {
            Err(ConfigError::invalid(var, "must be an http(s) queue URL"))
        }
    }

    /// The URL as SQS's API takes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// RetryQueue and DeadLetterQueue.
#[derive(Clone, Debug)]
pub struct QueueUrls {
    /// Where undelivered messages are parked for replay (`RETRY_QUEUE_URL`).
    pub retry: QueueUrl,
    /// Where everything that is not retried goes (`DEAD_LETTER_QUEUE_URL`).
    pub dead_letter: QueueUrl,
}

/// The values only delivering functions need: a write key on every route and both queues.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// One target per route of the configuration's routing table.
    pub targets: DeliveryTargets,
    /// The two queues.
    pub queues: QueueUrls,
    /// `LARGE_PAYLOAD_BUCKET`: where envelopes over the SQS message limit are stored whole.
    /// Without one they are cut to an excerpt (WARN, `Truncated` metric).
    pub large_payload_bucket: Option<String>,
}

impl DeliveryConfig {
    /// Reads the queue URLs through `lookup` (empty counts as unset) and takes every route's
    /// write key. Errors name the first missing or malformed setting, never a secret.
    pub fn from_lookup(config: &Config, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let targets = config.routing.delivery_targets()?;
        Ok(Self {
            targets,
            queues: QueueUrls {
                retry: queue_url("RETRY_QUEUE_URL", &lookup)?,
                dead_letter: queue_url("DEAD_LETTER_QUEUE_URL", &lookup)?,
            },
            large_payload_bucket: lookup("LARGE_PAYLOAD_BUCKET")
                .map(|b| b.trim().to_owned())
                .filter(|b| !b.is_empty()),
        })
    }

    /// Every reason [`DeliveryConfig::from_lookup`] would fail, not only the first: each route
    /// without a write key, then each missing or malformed queue URL. Empty when it would succeed.
    pub fn problems(config: &Config, lookup: impl Fn(&str) -> Option<String>) -> Vec<ConfigError> {
        let mut problems = config.routing.missing_write_keys();
        let queues = ["RETRY_QUEUE_URL", "DEAD_LETTER_QUEUE_URL"];
        problems.extend(queues.into_iter().filter_map(|var| queue_url(var, &lookup).err()));
        problems
    }
}

/// The queue URL in `var`; empty counts as unset.
fn queue_url(var: &'static str, lookup: &impl Fn(&str) -> Option<String>) -> Result<QueueUrl, ConfigError> {
    match lookup(var).filter(|v| !v.trim().is_empty()) {
        Some(text) => QueueUrl::parse(var, &text),
        None => Err(ConfigError::invalid(var, "is required")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn delivery(vars: &[(&str, &str)]) -> Result<DeliveryConfig, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let config = Config::from_lookup(|k| map.get(k).cloned())?;
        DeliveryConfig::from_lookup(&config, |k| map.get(k).cloned())
    }

    #[test]
    fn delivery_needs_a_key_on_every_route_and_both_queues() {
        let no_key = delivery(&[("RETRY_QUEUE_URL", "http://q"), ("DEAD_LETTER_QUEUE_URL", "http://d")]);
        assert_eq!(no_key.unwrap_err().var, "SEGMENT_WRITE_KEY");
        let no_queue = delivery(&[("SEGMENT_WRITE_KEY", "wk")]);
        assert_eq!(no_queue.unwrap_err().var, "RETRY_QUEUE_URL");
        let empty = delivery(&[
            ("SEGMENT_WRITE_KEY", "wk"),
            ("RETRY_QUEUE_URL", "http://q"),
            ("DEAD_LETTER_QUEUE_URL", " "),
        ]);
        assert_eq!(empty.unwrap_err().var, "DEAD_LETTER_QUEUE_URL");
        let malformed = delivery(&[
            ("SEGMENT_WRITE_KEY", "wk"),
            ("RETRY_QUEUE_URL", "q"),
            ("DEAD_LETTER_QUEUE_URL", "http://d"),
        ]);
        assert_eq!(malformed.unwrap_err().var, "RETRY_QUEUE_URL");
        let ok = delivery(&[
            ("SEGMENT_WRITE_KEY", "wk"),
            ("RETRY_QUEUE_URL", "http://q"),
            ("DEAD_LETTER_QUEUE_URL", "http://d"),
        ])
        .unwrap();
        assert_eq!(ok.queues.retry.as_str(), "http://q");
    }

    #[test]
    fn problems_lists_every_reason_from_lookup_would_fail() {
        let problems = |vars: &[(&str, &str)]| {
            let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let config = Config::from_lookup(|k| map.get(k).cloned()).unwrap();
            let found = DeliveryConfig::problems(&config, |k| map.get(k).cloned());
            found.iter().map(|e| e.var).collect::<Vec<_>>()
        };
        assert_eq!(
            problems(&[]),
            ["SEGMENT_WRITE_KEY", "RETRY_QUEUE_URL", "DEAD_LETTER_QUEUE_URL"]
        );
        let two_keyless = problems(&[
            ("ROUTES", r#"{"a":{},"b":{"write_key":"kb"},"c":{}}"#),
            ("RETRY_QUEUE_URL", "q"),
            ("DEAD_LETTER_QUEUE_URL", "http://d"),
        ]);
        assert_eq!(
            two_keyless,
            ["SEGMENT_WRITE_KEY", "SEGMENT_WRITE_KEY", "RETRY_QUEUE_URL"]
        );
        let ready = [
            ("SEGMENT_WRITE_KEY", "wk"),
            ("RETRY_QUEUE_URL", "http://q"),
            ("DEAD_LETTER_QUEUE_URL", "http://d"),
        ];
        assert!(problems(&ready).is_empty());
    }
}
