//! Test doubles for the secrets port and the clock, shared by the unit tests of the cache and of
//! the wiring.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{CredentialSource, SecretVersion, SecretsError};
use crate::ports::Clock;
use crate::secret::Secret;

/// A clock that moves only when told; starts at 2023-11-14.
pub(crate) struct TestClock(Mutex<OffsetDateTime>);

impl TestClock {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(
            OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        )))
    }

    pub(crate) fn advance(&self, secs: u64) {
        *self.0.lock().unwrap() += Duration::from_secs(secs);
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// A secret the test rotates as `put-secret-value` does: `AWSCURRENT` (with its creation time)
/// and `AWSPREVIOUS`, plus a version it may stage `AWSPENDING`. Counts the reads of each stage.
#[derive(Default)]
pub(crate) struct Rotating {
    stages: Mutex<(Option<SecretVersion>, Option<Secret>)>,
    pending: Mutex<Option<SecretVersion>>,
    pub(crate) reads: AtomicUsize,
    pub(crate) previous_reads: AtomicUsize,
}

impl Rotating {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A version setting `token`, created at `now`, is staged `AWSPENDING` (`None`: the label
    /// is removed).
    pub(crate) fn stage_pending(&self, token: Option<&str>, now: OffsetDateTime) {
        *self.pending.lock().unwrap() = token.map(|token| SecretVersion {
            text: Secret::new(Self::text(token)),
            created: Some(now),
        });
    }

    fn text(token: &str) -> String {
        serde_json::json!({
            "CURRENTS_AUTH_TOKEN": token,
            "SEGMENT_WRITE_KEY": "wk_rotating",
            "WRITE_KEY_CHECK": "off",
            "RETRY_QUEUE_URL": "https://sqs.example/retry",
            "DEAD_LETTER_QUEUE_URL": "https://sqs.example/dead",
        })
        .to_string()
    }

    /// A version setting `token` (and what a function needs to start) becomes `AWSCURRENT`,
    /// created at `now`; the version it replaces becomes `AWSPREVIOUS`.
    pub(crate) fn put(&self, token: &str, now: OffsetDateTime) {
        let text = Self::text(token);
        let mut stages = self.stages.lock().unwrap();
        let previous = stages.0.take().map(|version| version.text);
        let current = SecretVersion {
            text: Secret::new(text),
            created: Some(now),
        };
        *stages = (Some(current), previous);
    }

    pub(crate) fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl CredentialSource for Rotating {
    async fn fetch(&self) -> Result<SecretVersion, SecretsError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.stages.lock().unwrap().0.clone().expect("put before reading"))
    }

    async fn fetch_previous(&self) -> Result<Option<Secret>, SecretsError> {
        self.previous_reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.stages.lock().unwrap().1.clone())
    }

    async fn fetch_pending(&self) -> Result<Option<SecretVersion>, SecretsError> {
        Ok(self.pending.lock().unwrap().clone())
    }
}
