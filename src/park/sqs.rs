//! The production [`Park`] and [`Postpone`] adapter over one SQS queue.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use crate::limits::{SQS_MAX_BATCH_BYTES, SQS_MAX_BATCH_ENTRIES, SQS_MAX_VISIBILITY_SECS};
use crate::pack::pack;
use crate::ports::{Park, Postpone, QueueError};

/// Tries per entry before an SQS failure is reported. SQS reports per-entry failures inside a
/// 200 answer, and the SDK's own retries cover only whole-call errors.
const MAX_SEND_ROUNDS: u32 = 3;

pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    /// Sends one `SendMessageBatch` and returns the indexes (into `bodies`) that failed, with
    /// whether retrying them could help.
    async fn send_batch(&self, bodies: &[String], indexes: &[usize]) -> Result<Vec<(usize, bool)>, String> {
        let entries = indexes
            .iter()
            .map(|&i| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&bodies[i])
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "SendMessageBatch failed: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
            })?;
        Ok(output
            .failed()
            .iter()
            .filter_map(|f| f.id().parse::<usize>().ok().map(|i| (i, !f.sender_fault())))
            .collect())
    }
}

#[async_trait]
impl Park for SqsQueue {
    async fn park(&self, bodies: &[String]) -> Result<(), QueueError> {
        let mut pending: Vec<usize> = (0..bodies.len()).collect();
        let mut reason = String::new();
        for round in 0..MAX_SEND_ROUNDS {
            if pending.is_empty() {
                return Ok(());
            }
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(100 << round)).await;
            }
            let mut failed = Vec::new();
            let chunks = pack(
                pending.iter().map(|&i| bodies[i].len()),
                0,
                SQS_MAX_BATCH_BYTES,
                SQS_MAX_BATCH_ENTRIES,
            );
            for chunk in chunks {
                let indexes = &pending[chunk];
                match self.send_batch(bodies, indexes).await {
                    Ok(entry_failures) => {
                        for (index, retryable) in entry_failures {
                            if !retryable {
                                return Err(QueueError {
                                    failed: 1,
                                    total: bodies.len(),
                                    reason: "SQS refused a message (sender fault)".to_owned(),
                                });
                            }
                            failed.push(index);
                        }
                        reason = "SQS failed some batch entries".to_owned();
                    }
                    Err(error) => {
                        failed.extend_from_slice(indexes);
                        reason = error;
                    }
                }
            }
            failed.sort_unstable();
            pending = failed;
        }
        if pending.is_empty() {
            return Ok(());
        }
        Err(QueueError {
            failed: pending.len(),
            total: bodies.len(),
            reason,
        })
    }
}

#[async_trait]
impl Postpone for SqsQueue {
    async fn postpone(&self, receipt_handle: &str, delay: Duration) -> Result<(), QueueError> {
        let seconds = delay.as_secs().min(SQS_MAX_VISIBILITY_SECS) as i32;
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QueueError {
                failed: 1,
                total: 1,
                reason: format!(
                    "ChangeMessageVisibility failed: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                ),
            })
    }
}

/// An SQS client from the standard AWS settings. `AWS_ENDPOINT_URL` points it at a stand-in
/// such as moto. Timeouts are short: a queue that does not answer in time must turn into a 503
/// while the invocation can still answer.
pub async fn client_from_env() -> Client {
    Client::new(&aws_sdk_config().await)
}

/// The AWS SDK configuration every client of ours shares: the standard chain for region,
/// credentials and `AWS_ENDPOINT_URL`, with short timeouts so a call that cannot reach AWS
/// fails within the invocation (1 s connect, 2 s per attempt, 5 s per operation).
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await
}
