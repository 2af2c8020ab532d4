//! The queue operations the `dlq` tool needs, behind one port, and its SQS adapter.

use std::time::Duration;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::MessageAttributeValue;

use crate::park::{PayloadStore, SqsQueue};
use crate::ports::{Park, QueueError};

/// One message as a queue handed it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The queue's message id.
    pub message_id: String,
    /// Handle to delete or release this receipt.
    pub receipt_handle: String,
    /// The message body.
    pub body: String,
    /// The message attributes (`ExtendedPayloadSize` or `SQSLargePayloadSize` on an S3
    /// pointer, and any a foreign sender set), by name.
    pub attributes: HashMap<String, Attribute>,
}

/// One SQS message attribute, kept to be sent on unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// `String`, `Number` or `Binary`, with any custom suffix (`Number.int`).
    pub data_type: String,
    /// The value: text for `String` and `Number`, bytes for `Binary`.
    pub value: AttributeValue,
}

impl Attribute {
    /// An attribute from the parts SQS hands over: a string value (`String`, `Number`) or else
    /// a binary one. `None` with neither (list values, reserved by SQS and never set).
    pub(crate) fn of(data_type: String, text: Option<String>, bytes: Option<Vec<u8>>) -> Option<Self> {
        let value = match (text, bytes) {
            (Some(text), _) => AttributeValue::Text(text),
            (None, Some(bytes)) => AttributeValue::Binary(bytes),
            (None, None) => return None,
        };
        Some(Self { data_type, value })
    }
}

/// An attribute's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// A `String` or `Number` value.
    Text(String),
    /// A `Binary` value.
    Binary(Vec<u8>),
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

/// Sends a received message on to a queue as it was received: the same body and the same
/// message attributes, so AWS's extended clients still see an S3 pointer as one.
#[async_trait]
pub trait Forward: Send + Sync {
    /// Sends `message`'s body with its attributes; `Ok` once the queue accepted it.
    async fn forward(&self, message: &Received) -> Result<(), QueueError>;
}

/// RetryQueue as `redrive` uses it: [`Park`] for a body it rewrote (`--reset-window`), which is
/// escaped and offloaded like any envelope, and [`Forward`] for a message it moves unchanged.
pub trait Requeue: Park + Forward {}

impl<T: Park + Forward + ?Sized> Requeue for T {}

/// The production [`Requeue`] over one SQS queue.
pub struct SqsRequeue {
    queue: SqsQueue,
}

impl SqsRequeue {
    /// The queue at `url`; rewritten bodies too large for SQS go to `store`.
    pub fn new(client: Client, url: impl Into<String>, store: Option<Arc<dyn PayloadStore>>) -> Self {
        let queue = SqsQueue::new(client, url).with_metrics_function("dlq");
        let queue = match store {
            Some(store) => queue.with_payload_store(store),
            None => queue,
        };
        Self { queue }
    }
}

#[async_trait]
impl Park for SqsRequeue {
    async fn park(&self, bodies: &[String]) -> Result<(), QueueError> {
        self.queue.park(bodies).await
    }
}

#[async_trait]
impl Forward for SqsRequeue {
    async fn forward(&self, message: &Received) -> Result<(), QueueError> {
        self.queue.forward(message).await
    }
}

/// Any queue we park into can also take a message on unchanged: `dlq redrive` into RetryQueue,
/// and replay sending a record it cannot act on back to DeadLetterQueue.
#[async_trait]
impl Forward for SqsQueue {
    async fn forward(&self, message: &Received) -> Result<(), QueueError> {
        let (client, url) = self.client_and_url();
        let mut send = client.send_message().queue_url(url).message_body(&message.body);
        for (name, attribute) in &message.attributes {
            send = send.message_attributes(name, to_sqs(attribute).map_err(|e| failed("SendMessage", e))?);
        }
        send.send()
            .await
            .map(|_| ())
            .map_err(|e| failed("SendMessage", aws_sdk_sqs::error::DisplayErrorContext(&e)))
    }
}

fn to_sqs(attribute: &Attribute) -> Result<MessageAttributeValue, aws_sdk_sqs::error::BuildError> {
    let value = MessageAttributeValue::builder().data_type(&attribute.data_type);
    match &attribute.value {
        AttributeValue::Text(text) => value.string_value(text),
        AttributeValue::Binary(bytes) => value.binary_value(Blob::new(bytes.clone())),
    }
    .build()
}

/// The attributes SQS handed over, by name. SQS gives every attribute a string or a binary
/// value; one with neither (list values, reserved by SQS and never set) is left out.
fn from_sqs(attributes: Option<HashMap<String, MessageAttributeValue>>) -> HashMap<String, Attribute> {
    let kept =
        |a: MessageAttributeValue| Attribute::of(a.data_type, a.string_value, a.binary_value.map(Blob::into_inner));
    let attributes = attributes.unwrap_or_default().into_iter();
    attributes.filter_map(|(name, a)| Some((name, kept(a)?))).collect()
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
            .message_attribute_names("All")
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
                    attributes: from_sqs(m.message_attributes),
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
