//! Building the functions from the environment: the one wiring routine every binary uses.
//!
//! With `SECRETS_ARN` set, the credentials and routes come from Secrets Manager at cold start
//! and are re-read at most every `SECRETS_TTL_SECONDS`; each invocation uses the latest good
//! configuration. Queue URLs are fixed at cold start.

use std::sync::{Arc, Mutex};

use crate::config::{Config, ConfigError, DeliveryConfig, DeliveryTargets};
use crate::ingest::Ingest;
use crate::keycheck::{KeyHealth, SETTINGS_TIMEOUT, SettingsHttp};
use crate::park::{PayloadStore, S3PayloadStore, SqsQueue, aws_sdk_config};
use crate::ports::SystemClock;
use crate::replay::Replay;
use crate::secrets::{SecretValues, SecretsCache, SecretsError, SecretsManagerSource, SecretsSettings, overlay};
use crate::segment::{RetryPolicy, SegmentHttp};

/// Why a function could not start. Logged once at cold start; never quotes a secret.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting an operator must fix.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The credentials secret could not be read or has the wrong shape.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// An AWS SDK variable is malformed.
    #[error(transparent)]
    AwsEnv(#[from] crate::aws_env::AwsEnvError),
    /// The Tokio runtime could not be built.
    #[error("cannot build the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The HTTP client could not be built (TLS roots missing, for instance).
    #[error("cannot build the Segment HTTP client: {0}")]
    SegmentClient(#[from] reqwest::Error),
}

/// The start of every binary's `main`, before any thread exists: JSON logging, then the AWS SDK
/// environment cleaned ([`crate::aws_env::clean_process_env`]: empty variables unset, malformed
/// ones refused), then the Tokio runtime. Errors are logged as "Cannot start {function}.".
pub fn start(function: &'static str) -> Result<tokio::runtime::Runtime, StartupError> {
    crate::telemetry::init();
    // SAFETY: called first in `main`; the runtime, the only source of threads, is built after.
    let cleaned = unsafe { crate::aws_env::clean_process_env() }.map_err(StartupError::from);
    let runtime = cleaned.and_then(|()| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(StartupError::Runtime)
    });
    runtime.inspect_err(|error| tracing::error!(error = %error, "Cannot start {function}."))
}

/// The configuration an invocation runs on, and the secret it was built from.
#[derive(Clone)]
struct Current {
    values: Option<Arc<SecretValues>>,
    config: Arc<Config>,
    targets: Arc<DeliveryTargets>,
}

/// The production adapters, built once per cold start and shared by every invocation.
pub struct Wired {
    secrets: Option<SecretsCache>,
    current: Mutex<Current>,
    segment: Arc<SegmentHttp>,
    retry_queue: Arc<SqsQueue>,
    dead_letters: Arc<SqsQueue>,
    payloads: Option<Arc<dyn PayloadStore>>,
    key_health: Arc<KeyHealth>,
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// Parses the configuration from the environment, overlaid by the secret's values if any.
fn parse(values: Option<&SecretValues>) -> Result<(Config, DeliveryConfig), ConfigError> {
    let parse_with = |lookup: &dyn Fn(&str) -> Option<String>| {
        let config = Config::from_lookup(lookup)?;
        let delivery = DeliveryConfig::from_lookup(&config, lookup)?;
        Ok((config, delivery))
    };
    match values {
        Some(values) => parse_with(&overlay(values, env)),
        None => parse_with(&env),
    }
}

impl Wired {
    /// Reads the environment (and the credentials secret, with `SECRETS_ARN`): [`Config`],
    /// then what delivering needs ([`DeliveryConfig`]), then builds the Segment client and the
    /// SQS client from the standard AWS chain. Each queue's `MaximumMessageSize` is read once
    /// ([`SqsQueue::fit_to_queue`]): parked bodies stay within it even when
    /// `PARK_MESSAGE_MAX_BYTES` is larger.
    /// `function` names the function in metrics ("ingest", "replay").
    pub async fn from_env(function: &'static str) -> Result<Self, StartupError> {
        let sdk = aws_sdk_config().await;
        let secrets = match SecretsSettings::from_lookup(env)? {
            Some(settings) => {
                let source = Arc::new(SecretsManagerSource::from_sdk_config(&sdk, settings.secret_id));
                let (ttl, grace) = (settings.ttl, settings.previous_token_grace);
                Some(SecretsCache::load_with_grace(source, Arc::new(SystemClock), ttl, grace).await?)
            }
            None => None,
        };
        let values = match &secrets {
            Some(cache) => Some(cache.current().await),
            None => None,
        };
        let (config, delivery) = parse(values.as_deref())?;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let payloads = S3PayloadStore::from_env(delivery.large_payload_bucket.clone())
            .await
            .map(|s| Arc::new(s) as Arc<dyn PayloadStore>);
        let queue = |url: &str| {
            let queue = SqsQueue::new(sqs.clone(), url)
                .with_max_message_bytes(config.queues.park_message_max_bytes)
                .with_metrics_function(function);
            let queue = match &payloads {
                Some(store) => queue.with_payload_store(store.clone()),
                None => queue,
            };
            // PARK_MESSAGE_MAX_BYTES above the queue's own MaximumMessageSize: work to the smaller.
            async { Arc::new(queue.fit_to_queue().await) }
        };
        let (retry_queue, dead_letters) = tokio::join!(
            queue(delivery.queues.retry.as_str()),
            queue(delivery.queues.dead_letter.as_str())
        );
        let segment = Arc::new(SegmentHttp::new(&config.segment)?);
        let settings = SettingsHttp::with_client(segment.http_client());
        let key_health = Arc::new(KeyHealth::new(Arc::new(settings), SETTINGS_TIMEOUT));
        // A cold start checks every route concurrently, so the first request finds fresh verdicts.
        key_health.warm(&config.routing, &delivery.targets).await;
        Ok(Self {
            key_health,
            retry_queue,
            dead_letters,
            payloads,
            segment,
            current: Mutex::new(Current {
                values,
                targets: Arc::new(delivery.targets),
                config: Arc::new(config),
            }),
            secrets,
        })
    }

    /// The configuration to use now. When the secret was re-read and changed, the new values
    /// are parsed; a value that does not parse keeps the last good configuration (WARN).
    async fn current(&self) -> Current {
        let last = self.current.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(cache) = &self.secrets else { return last };
        let values = cache.current().await;
        if last.values.as_ref().is_some_and(|v| Arc::ptr_eq(v, &values)) {
            return last;
        }
        match parse(Some(&values)) {
            Ok((config, delivery)) => {
                let next = Current {
                    values: Some(values),
                    config: Arc::new(config),
                    targets: Arc::new(delivery.targets),
                };
                tracing::info!("Configuration rebuilt from the re-read secret.");
                *self.current.lock().unwrap_or_else(|p| p.into_inner()) = next.clone();
                next
            }
            Err(error) => {
                tracing::warn!(error = %error, "The re-read secret does not parse; keeping the last good configuration.");
                last
            }
        }
    }

    /// The ingest function on these adapters and the current configuration.
    pub async fn ingest(&self) -> Ingest {
        self.ingest_on(self.current().await)
    }

    /// The ingest function for a request with these `Authorization` header values. When the
    /// configuration in effect refuses a well-formed bearer token and the runtime secret is on,
    /// the secret is re-read first ([`SecretsCache::reread`], at most once per
    /// [`crate::secrets::REREAD_INTERVAL`]), so a token just rotated in passes at once instead of
    /// being answered 401, after which Braze would not send the batch again.
    pub async fn ingest_for(&self, authorization: &[&[u8]]) -> Ingest {
        let current = self.current().await;
        let Some(cache) = &self.secrets else {
            return self.ingest_on(current);
        };
        let config = &current.config;
        let checked = crate::ingest::authorize(
            authorization.iter().copied(),
            config.auth_token.as_ref(),
            config.allow_unauthenticated,
        );
        if checked == Err(crate::ingest::AuthError::WrongToken) && cache.reread().await {
            return self.ingest_on(self.current().await);
        }
        self.ingest_on(current)
    }

    fn ingest_on(&self, current: Current) -> Ingest {
        Ingest {
            policy: RetryPolicy::new(current.config.segment.request_timeout),
            config: current.config,
            targets: current.targets,
            segment: self.segment.clone(),
            retry_queue: self.retry_queue.clone(),
            dead_letters: self.dead_letters.clone(),
            clock: Arc::new(SystemClock),
            key_health: self.key_health.clone(),
        }
    }

    /// The backfill worker on these adapters and the current configuration (runtime secret
    /// included): `segment` is the instance's rate-limited Segment client, `source_for` builds
    /// the S3 source of a task's bucket.
    pub async fn backfill(
        &self,
        segment: Arc<dyn crate::ports::Deliver>,
        source_for: Box<crate::backfill::SourceFor>,
    ) -> crate::backfill::BackfillWorker {
        let current = self.current().await;
        crate::backfill::BackfillWorker {
            source_for,
            segment,
            dead_letters: self.dead_letters.clone(),
            clock: Arc::new(SystemClock),
            policy: crate::backfill::backfill_policy(current.config.segment.request_timeout),
            config: current.config,
            key_health: self.key_health.clone(),
        }
    }

    /// The instance's Segment client, for wrappers such as backfill's rate limit.
    pub fn segment(&self) -> Arc<SegmentHttp> {
        self.segment.clone()
    }

    /// The replay function on these adapters and the current configuration.
    pub async fn replay(&self) -> Replay {
        let current = self.current().await;
        Replay {
            policy: RetryPolicy::new(current.config.segment.request_timeout),
            config: current.config,
            targets: current.targets,
            segment: self.segment.clone(),
            dead_letters: self.dead_letters.clone(),
            retry_queue: self.retry_queue.clone(),
            requeue: self.retry_queue.clone(),
            payloads: self.payloads.clone(),
            clock: Arc::new(SystemClock),
            key_health: self.key_health.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lambda_http::Body;

    use super::*;
    use crate::ports::Clock;
    use crate::secrets::fake::{Rotating, TestClock};

    /// A warm ingest instance on a rotating secret: adapters that are never called (an empty
    /// batch reaches neither Segment nor SQS), the cache on the test's clock.
    async fn instance(source: Arc<Rotating>, clock: Arc<TestClock>) -> Wired {
        let (ttl, grace) = (Duration::from_secs(300), Duration::from_secs(3_600));
        let cache = SecretsCache::load_with_grace(source, clock, ttl, grace).await.unwrap();
        let values = cache.current().await;
        let (config, delivery) = parse(Some(&values)).unwrap();
        let sqs_config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .build();
        let sqs = aws_sdk_sqs::Client::from_conf(sqs_config);
        let segment = Arc::new(SegmentHttp::new(&config.segment).unwrap());
        let settings = Arc::new(SettingsHttp::with_client(segment.http_client()));
        Wired {
            secrets: Some(cache),
            retry_queue: Arc::new(SqsQueue::new(sqs.clone(), delivery.queues.retry.as_str())),
            dead_letters: Arc::new(SqsQueue::new(sqs, delivery.queues.dead_letter.as_str())),
            current: Mutex::new(Current {
                values: Some(values),
                config: Arc::new(config),
                targets: Arc::new(delivery.targets),
            }),
            payloads: None,
            key_health: Arc::new(KeyHealth::new(settings, SETTINGS_TIMEOUT)),
            segment,
        }
    }

    /// The status ingest answers an empty batch POSTed with `token`, as the binary calls it.
    async fn status(wired: &Wired, token: &str) -> u16 {
        let header = format!("Bearer {token}");
        let request = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/currents")
            .header("authorization", &header)
            .body(Body::from(r#"{"events":[]}"#))
            .unwrap();
        let ingest = wired.ingest_for(&[header.as_bytes()]).await;
        ingest.handle(request).await.status().as_u16()
    }

    #[tokio::test]
    async fn a_rotated_token_passes_on_a_warm_instance_at_once_and_the_old_one_until_the_next() {
        let (source, clock) = (Rotating::new(), TestClock::new());
        source.put("tok-A-0123456789abcdef", clock.now());
        let wired = instance(source.clone(), clock.clone()).await;
        assert_eq!(status(&wired, "tok-A-0123456789abcdef").await, 200);

        clock.advance(60);
        source.put("tok-B-0123456789abcdef", clock.now());
        assert_eq!(status(&wired, "tok-B-0123456789abcdef").await, 200, "new token, no 401");
        assert_eq!(
            status(&wired, "tok-A-0123456789abcdef").await,
            200,
            "AWSPREVIOUS still passes"
        );
        assert_eq!(source.reads(), 2, "one re-read, ahead of the 300 s TTL");
        for _ in 0..50 {
            assert_eq!(status(&wired, "tok-wrong-0123456789ab").await, 401);
        }
        assert_eq!(source.reads(), 2, "wrong tokens within REREAD_INTERVAL read nothing");

        clock.advance(60);
        source.put("tok-C-0123456789abcdef", clock.now());
        assert_eq!(status(&wired, "tok-C-0123456789abcdef").await, 200);
        assert_eq!(status(&wired, "tok-B-0123456789abcdef").await, 200);
        assert_eq!(status(&wired, "tok-A-0123456789abcdef").await, 401, "two rotations ago");
    }
}
