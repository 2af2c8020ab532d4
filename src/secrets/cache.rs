//! The last good secret, re-read at most once per TTL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use super::{CredentialSource, SecretValues, SecretsError};
use crate::ports::Clock;

/// The last good [`SecretValues`] and when the secret was last asked for.
struct State {
    values: Arc<SecretValues>,
    checked_at: OffsetDateTime,
}

/// Holds the last good secret. [`SecretsCache::current`] re-reads it when `ttl` has passed
/// since the last read *attempt*, so Secrets Manager is asked at most once per `ttl` per
/// function instance, outage or not. A failed or unusable re-read keeps the last good value
/// and logs a WARN that names the secret and the cause, never a value.
pub struct SecretsCache {
    source: Arc<dyn CredentialSource>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    state: Mutex<State>,
}

impl SecretsCache {
    /// Reads the secret once, at cold start. Errors: the source's [`SecretsError::Fetch`] or a
    /// [`SecretsError::Shape`]; with no good value yet there is nothing to fall back on, so the
    /// function must not start.
    pub async fn load(
        source: Arc<dyn CredentialSource>,
        clock: Arc<dyn Clock>,
        ttl: Duration,
    ) -> Result<Self, SecretsError> {
        let checked_at = clock.now();
        let values = Arc::new(read(source.as_ref()).await?);
        Ok(Self {
            source,
            clock,
            ttl,
            state: Mutex::new(State { values, checked_at }),
        })
    }

    /// The values to use now: the cached ones, or a fresh read once `ttl` has passed. A new
    /// `Arc` (not [`Arc::ptr_eq`] to the previous answer) means the secret was re-read, so a
    /// caller can rebuild what it derived from it only then.
    pub async fn current(&self) -> Arc<SecretValues> {
        let now = self.clock.now();
        let last_good = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if now - state.checked_at < self.ttl {
                return state.values.clone();
            }
            // Claim this refresh: concurrent callers keep the last good value meanwhile.
            state.checked_at = now;
            state.values.clone()
        };
        match read(self.source.as_ref()).await {
            Ok(values) if values == *last_good => last_good,
            Ok(values) => {
                let values = Arc::new(values);
                self.state.lock().unwrap_or_else(|p| p.into_inner()).values = values.clone();
                tracing::info!(keys = ?values, "secret re-read; new values in effect");
                values
            }
            Err(error) => {
                tracing::warn!(%error, "secret refresh failed; keeping the last good value");
                last_good
            }
        }
    }
}

async fn read(source: &dyn CredentialSource) -> Result<SecretValues, SecretsError> {
    SecretValues::parse(&source.fetch().await?)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::secret::Secret;

    /// Answers from a script; the last answer repeats. Counts the reads.
    struct Scripted {
        answers: Mutex<VecDeque<Result<&'static str, SecretsError>>>,
        reads: AtomicUsize,
    }

    impl Scripted {
        fn new(answers: Vec<Result<&'static str, SecretsError>>) -> Arc<Self> {
            Arc::new(Self {
                answers: Mutex::new(answers.into()),
                reads: AtomicUsize::new(0),
            })
        }
        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl CredentialSource for Scripted {
        async fn fetch(&self) -> Result<Secret, SecretsError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let mut answers = self.answers.lock().unwrap();
            let answer = if answers.len() > 1 {
                answers.pop_front()
            } else {
                answers.front().cloned()
            };
            answer.expect("script is not empty").map(Secret::new)
        }
    }

    struct TestClock(Mutex<OffsetDateTime>);

    impl TestClock {
        fn new() -> Arc<Self> {
            Arc::new(Self(Mutex::new(
                OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            )))
        }
        fn advance(&self, secs: u64) {
            *self.0.lock().unwrap() += Duration::from_secs(secs);
        }
    }

    impl Clock for TestClock {
        fn now(&self) -> OffsetDateTime {
            *self.0.lock().unwrap()
        }
    }

    fn outage() -> SecretsError {
        SecretsError::Fetch {
            secret_id: "arn:test".into(),
            reason: "connection refused".into(),
        }
    }

    const V1: &str = r#"{"SEGMENT_WRITE_KEY":"wk_one_SECRET"}"#;
    const V2: &str = r#"{"SEGMENT_WRITE_KEY":"wk_two_SECRET"}"#;

    fn key(values: &Arc<SecretValues>) -> String {
        values.get("SEGMENT_WRITE_KEY").unwrap().expose().to_owned()
    }

    async fn load(source: &Arc<Scripted>, clock: &Arc<TestClock>) -> Result<SecretsCache, SecretsError> {
        SecretsCache::load(source.clone(), clock.clone(), Duration::from_secs(300)).await
    }

    #[tokio::test]
    async fn reads_at_most_once_per_ttl_and_picks_up_a_rotation() {
        let (source, clock) = (Scripted::new(vec![Ok(V1), Ok(V2)]), TestClock::new());
        let cache = load(&source, &clock).await.unwrap();
        assert_eq!(key(&cache.current().await), "wk_one_SECRET");
        clock.advance(299);
        assert_eq!(key(&cache.current().await), "wk_one_SECRET");
        assert_eq!(source.reads(), 1, "no read before the TTL has passed");
        clock.advance(1);
        let rotated = cache.current().await;
        assert_eq!(key(&rotated), "wk_two_SECRET");
        assert_eq!(source.reads(), 2);
        clock.advance(300);
        let same = cache.current().await;
        assert!(
            Arc::ptr_eq(&rotated, &same),
            "unchanged secret: same Arc, nothing to rebuild"
        );
        assert_eq!(source.reads(), 3);
    }

    #[tokio::test]
    async fn a_failed_or_unusable_refresh_keeps_the_last_good_value_and_waits_a_ttl() {
        let script = vec![Ok(V1), Err(outage()), Ok("not json"), Ok(V2)];
        let (source, clock) = (Scripted::new(script), TestClock::new());
        let cache = load(&source, &clock).await.unwrap();
        for _ in 0..2 {
            clock.advance(300);
            assert_eq!(key(&cache.current().await), "wk_one_SECRET");
            assert_eq!(key(&cache.current().await), "wk_one_SECRET", "no retry within the TTL");
        }
        assert_eq!(source.reads(), 3);
        clock.advance(300);
        assert_eq!(
            key(&cache.current().await),
            "wk_two_SECRET",
            "recovers once the secret is good"
        );
    }

    #[tokio::test]
    async fn a_failure_at_cold_start_is_an_error() {
        let clock = TestClock::new();
        let error = load(&Scripted::new(vec![Err(outage())]), &clock).await.err().unwrap();
        assert_eq!(error, outage());
        let error = load(&Scripted::new(vec![Ok("[1]")]), &clock).await.err().unwrap();
        assert!(matches!(error, SecretsError::Shape(_)), "{error}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_warn_and_info_lines_never_carry_a_value() {
        // `&File` is `io::Write`, so `Arc<File>` is a `MakeWriter` with no helper type.
        let path = std::env::temp_dir().join(format!("secrets-cache-log-{}.json", fastrand::u64(..)));
        let file = std::fs::File::create(&path).unwrap();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(Arc::new(file))
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let script = vec![Ok(V1), Err(outage()), Ok(r#"{"SEGMENT_WRITE_KEY":"wk_SECRET""#), Ok(V2)];
        let (source, clock) = (Scripted::new(script), TestClock::new());
        let cache = load(&source, &clock).await.unwrap();
        for _ in 0..3 {
            clock.advance(300);
            cache.current().await;
        }
        let logs = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(logs.matches("\"WARN\"").count(), 2, "{logs}");
        assert!(
            logs.contains("connection refused") && logs.contains("SEGMENT_WRITE_KEY"),
            "{logs}"
        );
        assert!(!logs.contains("SECRET"), "{logs}");
    }
}
