//! Building the functions from the environment: the one wiring routine every binary uses.

use std::sync::Arc;

use crate::config::{Config, ConfigError, DeliveryConfig, DeliveryTargets};
use crate::ingest::Ingest;
use crate::park::{SqsQueue, client_from_env};
use crate::ports::SystemClock;
use crate::replay::Replay;
use crate::segment::{RetryPolicy, SegmentHttp};

/// Why a function could not start. Logged once at cold start; never quotes a secret.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting an operator must fix.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP client could not be built (TLS roots missing, for instance).
    #[error("cannot build the Segment HTTP client: {0}")]
    SegmentClient(#[from] reqwest::Error),
}

/// The production adapters, built once per cold start and shared by every invocation.
pub struct Wired {
    config: Arc<Config>,
    targets: Arc<DeliveryTargets>,
    segment: Arc<SegmentHttp>,
    retry_queue: Arc<SqsQueue>,
    dead_letters: Arc<SqsQueue>,
}

impl Wired {
    /// Reads the environment: [`Config`], then what delivering needs ([`DeliveryConfig`]),
    /// then builds the Segment client and the SQS client from the standard AWS chain.
    pub async fn from_env() -> Result<Self, StartupError> {
        let lookup = |key: &str| std::env::var(key).ok();
        let config = Config::from_lookup(lookup)?;
        let delivery = DeliveryConfig::from_lookup(&config, lookup)?;
        let segment = SegmentHttp::new(&config.segment)?;
        let sqs = client_from_env().await;
        Ok(Self {
            retry_queue: Arc::new(SqsQueue::new(sqs.clone(), delivery.queues.retry.as_str())),
            dead_letters: Arc::new(SqsQueue::new(sqs, delivery.queues.dead_letter.as_str())),
            targets: Arc::new(delivery.targets),
            segment: Arc::new(segment),
            config: Arc::new(config),
        })
    }

    fn policy(&self) -> RetryPolicy {
        RetryPolicy::new(self.config.segment.request_timeout)
    }

    /// The ingest function on these adapters.
    pub fn ingest(&self) -> Ingest {
        Ingest {
            config: self.config.clone(),
            targets: self.targets.clone(),
            segment: self.segment.clone(),
            retry_queue: self.retry_queue.clone(),
            dead_letters: self.dead_letters.clone(),
            clock: Arc::new(SystemClock),
            policy: self.policy(),
        }
    }

    /// The replay function on these adapters.
    pub fn replay(&self) -> Replay {
        Replay {
            config: self.config.clone(),
            targets: self.targets.clone(),
            segment: self.segment.clone(),
            dead_letters: self.dead_letters.clone(),
            retry_queue: self.retry_queue.clone(),
            clock: Arc::new(SystemClock),
            policy: self.policy(),
        }
    }
}
