//! The queue operations the `dlq` tool needs, behind one port, and its SQS adapter.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;

use crate::ports::QueueError;

/// One message as a queue handed it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The queue's message id.
    pub message_id: String,
    /// Handle to delete or release this receipt.
    pub receipt_handle: String,
    /// The message body.
    pub body: String,
}

/// Reads a queue without losing anything: what is received stays in the queue, hidden from
/// other readers, until it is deleted or released.
#[async_trait]
pub trait DrainQueue: Send + Sync {
    /// Up to 10 visible messages, hidden from other readers for `hide_for` (at most 12 h).
    /// An empty answer means nothing more is visible now.
    async fn receive(&self, hide_for: Duration) -> Result<Vec<Received>, QueueError>;
    /// Deletes one received message for good.
    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError>;
    /// Makes one received message visible again at once.
    async fn release(&self, receipt_handle: &str) -> Result<(), QueueError>;
}

/// The production `DrainQueue` over one SQS queue.
pub struct SqsDrain {
    client: Client,
    url: String,
}

impl SqsDrain {
    /// Drains the SQS queue at `url`.
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

fn failed(action: &str, error: impl std::fmt::Display) -> QueueError {
    QueueError {
        failed: 1,
        total: 1,
        reason: format!("{action} failed: {error}"),
    }
}

#[async_trait]
impl DrainQueue for SqsDrain {
    async fn receive(&self, hide_for: Duration) -> Result<Vec<Received>, QueueError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .visibility_timeout(hide_for.as_secs().min(crate::limits::SQS_MAX_VISIBILITY_SECS) as i32)
            .send()
            .await
            .map_err(|e| failed("ReceiveMessage", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
        Ok(output
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                Some(Received {
                    message_id: m.message_id.unwrap_or_default(),
                    receipt_handle: m.receipt_handle?,
                    body: m.body.unwrap_or_default(),
                })
            })
            .collect())
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed("DeleteMessage", aws_sdk_sqs::error::DisplayErrorContext(&e)))
    }

    async fn release(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(0)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed("ChangeMessageVisibility", aws_sdk_sqs::error::DisplayErrorContext(&e)))
    }
}
