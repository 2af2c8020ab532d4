//! The last good secret, re-read at most once per TTL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use super::{CredentialSource, SecretValues, SecretsError};
use crate::ports::Clock;
use crate::secret::Secret;

/// The last good [`SecretValues`] and when the secret was last asked for.
struct State {
    values: Arc<SecretValues>,
    checked_at: OffsetDateTime,
}

/// At most one re-read ahead of the TTL ([`SecretsCache::reread`]) per this long per function
/// instance (or per TTL, when that is shorter), so requests with wrong tokens cannot flood
/// Secrets Manager.
pub const REREAD_INTERVAL: Duration = Duration::from_secs(10);

/// Holds the last good secret. [`SecretsCache::current`] re-reads it when `ttl` has passed
/// since the last read *attempt*, so Secrets Manager is asked at most once per `ttl` per
/// function instance, outage or not. A failed or unusable re-read keeps the last good value
/// and logs a WARN that names the secret and the cause, never a value.
///
/// Within `previous_token_grace` of the `AWSCURRENT` version's creation, a read also asks for
/// the `AWSPREVIOUS` version and adds its `CURRENTS_AUTH_TOKEN` tokens
/// (`SecretValues::with_tokens_of_version`), so the token a rotation replaced keeps passing
/// while Braze moves to the new one. Every read also asks for an `AWSPENDING` version and adds
/// its tokens while it is younger than the same grace, so a token staged for a rotation passes
/// before it is promoted, and an abandoned one stops passing on its own.
pub struct SecretsCache {
    source: Arc<dyn CredentialSource>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    previous_token_grace: Duration,
    state: Mutex<State>,
}

impl SecretsCache {
    /// Reads the secret once, at cold start, accepting the previous version's tokens for the
    /// default grace (a day). Errors: as [`SecretsCache::load_with_grace`].
    pub async fn load(
        source: Arc<dyn CredentialSource>,
        clock: Arc<dyn Clock>,
        ttl: Duration,
    ) -> Result<Self, SecretsError> {
        let grace = Duration::from_secs(super::DEFAULT_PREVIOUS_TOKEN_GRACE_SECONDS);
        Self::load_with_grace(source, clock, ttl, grace).await
    }

    /// Reads the secret once, at cold start; `previous_token_grace` (zero: never) is how long
    /// after the current version's creation the previous version's tokens are accepted.
    /// Errors: the source's [`SecretsError::Fetch`] or a [`SecretsError::Shape`]; with no good
    /// value yet there is nothing to fall back on, so the function must not start.
    pub async fn load_with_grace(
        source: Arc<dyn CredentialSource>,
        clock: Arc<dyn Clock>,
        ttl: Duration,
        previous_token_grace: Duration,
    ) -> Result<Self, SecretsError> {
        let checked_at = clock.now();
        let mut cache = Self {
            source,
            clock,
            ttl,
            previous_token_grace,
            state: Mutex::new(State {
                values: Arc::default(),
                checked_at,
            }),
        };
        let values = Arc::new(cache.read().await?);
        cache.state.get_mut().unwrap_or_else(|p| p.into_inner()).values = values;
        Ok(cache)
    }

    /// The values to use now: the cached ones, or a fresh read once `ttl` has passed. A new
    /// `Arc` (not [`Arc::ptr_eq`] to the previous answer) means the secret was re-read, so a
    /// caller can rebuild what it derived from it only then.
    pub async fn current(&self) -> Arc<SecretValues> {
        match self.claim(self.ttl) {
            Ok(last_good) => self.refresh(last_good).await,
            Err(values) => values,
        }
    }

    /// Re-reads the secret now, ahead of the TTL, unless it was read (or a read was tried) less
    /// than [`REREAD_INTERVAL`] (or the TTL, when shorter) ago. Ingest calls it before it
    /// refuses a well-formed bearer token. `true` when a read happened and the values changed;
    /// [`SecretsCache::current`] then answers the new ones.
    pub async fn reread(&self) -> bool {
        match self.claim(REREAD_INTERVAL.min(self.ttl)) {
            Ok(last_good) => !Arc::ptr_eq(&self.refresh(last_good.clone()).await, &last_good),
            Err(_) => false,
        }
    }

    /// `Ok(last good)` when `interval` has passed since the last read attempt, claiming the
    /// read (concurrent callers keep the last good value meanwhile); `Err(last good)` if not.
    fn claim(&self, interval: Duration) -> Result<Arc<SecretValues>, Arc<SecretValues>> {
        let now = self.clock.now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if now - state.checked_at < interval {
            return Err(state.values.clone());
        }
        state.checked_at = now;
        Ok(state.values.clone())
    }

    /// Reads the secret; a changed value replaces `last_good`, a failure keeps it (WARN).
    async fn refresh(&self, last_good: Arc<SecretValues>) -> Arc<SecretValues> {
        match self.read().await {
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

    /// The current version's values, with the previous version's tokens while in the grace
    /// and a pending version's while it is younger than the grace.
    async fn read(&self) -> Result<SecretValues, SecretsError> {
        let current = self.source.fetch().await?;
        let values = SecretValues::parse(&current.text)?;
        if values.get(super::values::TOKEN_KEY).is_none() {
            return Ok(values);
        }
        // Both asked at once: a cold start waits for one round trip, not two.
        let (previous, pending) = tokio::join!(
            async {
                match self.in_grace(current.created) {
                    true => self.source.fetch_previous().await,
                    false => Ok(None),
                }
            },
            async {
                match self.previous_token_grace.is_zero() {
                    true => Ok(None),
                    false => self.source.fetch_pending().await,
                }
            },
        );
        let pending = pending?.filter(|p| p.text != current.text && self.in_grace(p.created));
        let values = with_tokens_of(values, previous?, "AWSPREVIOUS");
        Ok(with_tokens_of(values, pending.map(|p| p.text), "AWSPENDING"))
    }

    /// Whether a version created at `created` is younger than the grace; `false` when the
    /// creation time is unknown (the overlap could not be bounded).
    fn in_grace(&self, created: Option<OffsetDateTime>) -> bool {
        created.is_some_and(|created| self.clock.now() - created < self.previous_token_grace)
    }
}

/// `values` with the `CURRENTS_AUTH_TOKEN` tokens of another version (`stage`) added. One that
/// is not the documented object adds nothing (WARN naming the stage, never a value).
fn with_tokens_of(values: SecretValues, other: Option<Secret>, stage: &str) -> SecretValues {
    let Some(other) = other else {
        return values;
    };
    match SecretValues::parse(&other) {
        Ok(other) => values.with_tokens_of_version(&other),
        Err(error) => {
            tracing::warn!(%error, stage, "a version of the secret is not usable; its tokens are not accepted");
            values
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::secrets::SecretVersion;
    use crate::secrets::fake::{Rotating, TestClock};

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
        async fn fetch(&self) -> Result<SecretVersion, SecretsError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let mut answers = self.answers.lock().unwrap();
            let answer = if answers.len() > 1 {
                answers.pop_front()
            } else {
                answers.front().cloned()
            };
            answer.expect("script is not empty").map(SecretVersion::new)
        }
    }

    fn accepts(values: &SecretValues, token: &str) -> bool {
        let text = values.get("CURRENTS_AUTH_TOKEN").unwrap().expose();
        crate::secret::BearerTokens::parse(text).unwrap().accepts(token)
    }

    /// A secret holding `token`, a test clock, and a cache over them with a 300 s TTL and an
    /// hour's grace.
    async fn rotating_from(token: &str) -> (Arc<Rotating>, Arc<TestClock>, SecretsCache) {
        let (source, clock) = (Rotating::new(), TestClock::new());
        source.put(token, clock.now());
        let grace = Duration::from_secs(3_600);
        let cache = SecretsCache::load_with_grace(source.clone(), clock.clone(), Duration::from_secs(300), grace);
        (source, clock, cache.await.unwrap())
    }

    #[tokio::test]
    async fn a_rotated_token_passes_at_once_with_the_previous_one_until_the_grace_ends() {
        let (source, clock, cache) = rotating_from("tok_A").await;
        clock.advance(60);
        source.put("tok_B", clock.now());
        assert!(
            !accepts(&*cache.current().await, "tok_B"),
            "the TTL alone is not up yet"
        );
        assert!(cache.reread().await, "a re-read ahead of the TTL finds the new token");
        let values = cache.current().await;
        assert!(accepts(&values, "tok_B") && accepts(&values, "tok_A"));
        clock.advance(3_600);
        let values = cache.current().await;
        assert!(
            accepts(&values, "tok_B") && !accepts(&values, "tok_A"),
            "the grace has ended"
        );
        let previous_reads = source.previous_reads.load(Ordering::SeqCst);
        clock.advance(300);
        cache.current().await;
        assert_eq!(
            source.previous_reads.load(Ordering::SeqCst),
            previous_reads,
            "after the grace, AWSPREVIOUS is no longer asked for"
        );
        source.put("tok_C", clock.now());
        clock.advance(10);
        assert!(cache.reread().await);
        let values = cache.current().await;
        assert!(accepts(&values, "tok_C") && accepts(&values, "tok_B") && !accepts(&values, "tok_A"));
    }

    /// Secrets Manager's rotation model: the service a secret opens accepts the `AWSPENDING`
    /// credentials (a rotation Lambda's `testSecret` uses them) before clients move to them.
    /// So a token staged `AWSPENDING` passes after a re-read, beside the current one; one left
    /// staged longer than the grace (an abandoned rotation) stops passing on its own.
    #[tokio::test]
    async fn a_token_staged_pending_passes_until_it_is_older_than_the_grace() {
        let (source, clock, cache) = rotating_from("tok_A").await;
        clock.advance(60);
        source.stage_pending(Some("tok_B"), clock.now());
        assert!(cache.reread().await, "the staged token is found by the re-read");
        let values = cache.current().await;
        assert!(accepts(&values, "tok_A") && accepts(&values, "tok_B"));
        clock.advance(3_600);
        let values = cache.current().await;
        assert!(
            accepts(&values, "tok_A") && !accepts(&values, "tok_B"),
            "abandoned: the grace has ended"
        );
        let none =
            SecretsCache::load_with_grace(source.clone(), clock.clone(), Duration::from_secs(300), Duration::ZERO);
        source.stage_pending(Some("tok_C"), clock.now());
        let values = none.await.unwrap().current().await;
        assert!(!accepts(&values, "tok_C"), "with no grace, no overlap at all");
    }

    #[tokio::test]
    async fn with_no_grace_the_previous_token_is_never_accepted() {
        let (source, clock) = (Rotating::new(), TestClock::new());
        source.put("tok_A", clock.now());
        source.put("tok_B", clock.now());
        let cache =
            SecretsCache::load_with_grace(source.clone(), clock.clone(), Duration::from_secs(300), Duration::ZERO);
        let values = cache.await.unwrap().current().await;
        assert!(accepts(&values, "tok_B") && !accepts(&values, "tok_A"));
        assert_eq!(source.previous_reads.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn re_reads_ahead_of_the_ttl_are_rate_limited() {
        let (source, clock) = (Rotating::new(), TestClock::new());
        source.put("tok_A", clock.now());
        let cache = load_rotating(&source, &clock).await;
        assert_eq!(source.reads(), 1);
        for _ in 0..100 {
            assert!(!cache.reread().await, "read less than REREAD_INTERVAL ago");
        }
        assert_eq!(source.reads(), 1, "a flood of wrong tokens reads nothing");
        clock.advance(REREAD_INTERVAL.as_secs());
        assert!(!cache.reread().await, "read again, but nothing changed");
        assert!(!cache.reread().await);
        assert_eq!(source.reads(), 2);
        source.put("tok_B", clock.now());
        clock.advance(REREAD_INTERVAL.as_secs() - 1);
        assert!(!cache.reread().await);
        clock.advance(1);
        assert!(cache.reread().await);
        assert_eq!(source.reads(), 3);
    }

    async fn load_rotating(source: &Arc<Rotating>, clock: &Arc<TestClock>) -> SecretsCache {
        let ttl = Duration::from_secs(300);
        SecretsCache::load(source.clone(), clock.clone(), ttl).await.unwrap()
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
