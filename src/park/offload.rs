//! Large envelopes in S3, in the format of AWS's SQS extended client libraries
//! (<https://github.com/awslabs/amazon-sqs-java-extended-client-lib>), so their Java and
//! Python clients can read our queues too: the SQS body becomes
//! `["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"…","s3Key":"…"}]`
//! and the message carries the `ExtendedPayloadSize` attribute (bytes of the stored payload).
//! Reading also follows the older format that the v1 Java client wrote and AWS's Python
//! extended client still writes: class `com.amazon.sqs.javamessaging.MessageS3Pointer`, attribute
//! `SQSLargePayloadSize`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::envelope::{Envelope, EnvelopeError, decode};

/// The class name AWS's extended clients write as the pointer's first element.
pub(crate) const POINTER_CLASS: &str = "software.amazon.payloadoffloading.PayloadS3Pointer";

/// The class name of the older format (v1 Java client, AWS's Python extended client), read only.
pub(crate) const LEGACY_POINTER_CLASS: &str = "com.amazon.sqs.javamessaging.MessageS3Pointer";

/// The message attribute AWS's extended clients set on an offloaded message (a Number).
pub const PAYLOAD_SIZE_ATTRIBUTE: &str = "ExtendedPayloadSize";

/// The older format's payload-size attribute (a Number), which AWS's Python extended client
/// still sets.
pub const LEGACY_PAYLOAD_SIZE_ATTRIBUTE: &str = "SQSLargePayloadSize";

/// Where an offloaded body lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadPointer {
    /// The S3 bucket.
    #[serde(rename = "s3BucketName")]
    pub bucket: String,
    /// The object key.
    #[serde(rename = "s3Key")]
    pub key: String,
}

impl PayloadPointer {
    /// The SQS body for this pointer, exactly as AWS's extended clients write it.
    pub fn to_body(&self) -> String {
        serde_json::json!([POINTER_CLASS, self]).to_string()
    }

    /// The pointer a body holds, in either format (`[class, {"s3BucketName", "s3Key"}]` with
    /// class `PayloadS3Pointer` or the legacy `MessageS3Pointer`), or `None` when the body is an
    /// ordinary message.
    pub fn from_body(body: &str) -> Option<Self> {
        let classes = [POINTER_CLASS, LEGACY_POINTER_CLASS];
        if !body.trim_start().starts_with('[') || !classes.iter().any(|c| body.contains(c)) {
            return None;
        }
        let (class, pointer): (String, PayloadPointer) = serde_json::from_str(body).ok()?;
        classes.contains(&class.as_str()).then_some(pointer)
    }
}

/// The store could not put or get a payload. Retrying may help; the caller decides.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("large-payload store: {0}")]
pub struct StoreError(pub String);

/// Why a stored payload could not be read: gone for good, or perhaps readable later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The object or its bucket does not exist (S3 `NoSuchKey`, `NoSuchBucket`); the text is
    /// S3's error code. No retry brings it back.
    #[error("large-payload store: the payload is gone ({0})")]
    Gone(String),
    /// The object exists but is not UTF-8 text. No retry changes it.
    #[error("large-payload store: the payload is not UTF-8 text")]
    NotText,
    /// Anything else (a timeout, a 5xx, throttling, `AccessDenied`): retrying may help.
    #[error(transparent)]
    Failed(#[from] StoreError),
}

impl ReadError {
    /// Whether no retry can ever read the payload.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Failed(_))
    }
}

/// Keeps message bodies too large for SQS. Production adapter: `S3PayloadStore`.
#[async_trait]
pub trait PayloadStore: Send + Sync {
    /// Stores `body` whole and returns where it is. Storing the same body twice is harmless.
    async fn put(&self, body: &str) -> Result<PayloadPointer, StoreError>;
    /// The body stored at `pointer`.
    async fn get(&self, pointer: &PayloadPointer) -> Result<String, StoreError>;
    /// The body stored at `pointer`, telling a payload that is gone for good
    /// ([`ReadError::Gone`], [`ReadError::NotText`]) from one that could not be read now. Replay
    /// and the `dlq` tool read through this. The default knows no permanent case: every failure
    /// of [`PayloadStore::get`] is [`ReadError::Failed`].
    async fn read(&self, pointer: &PayloadPointer) -> Result<String, ReadError> {
        Ok(self.get(pointer).await?)
    }
}

/// The key a body is stored under: its SHA-256, so a re-sent body overwrites its own copy
/// instead of adding one.
pub fn payload_key(body: &str) -> String {
    format!("currents-segment/{}.json", crate::digest::sha256_hex(body.as_bytes()))
}

/// Why a queue body could not be read back as an envelope.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The body is a pointer whose payload could not be read; [`ReadError::is_permanent`] says
    /// whether a retry may help.
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("the body points at S3 but no large-payload store is configured")]
    NoStore,
}

/// The full body of a queue message: the body itself, or what its S3 pointer points at.
pub(crate) async fn resolve_body(body: &str, store: Option<&dyn PayloadStore>) -> Result<String, ResolveError> {
    match PayloadPointer::from_body(body) {
        None => Ok(body.to_owned()),
        Some(pointer) => Ok(store.ok_or(ResolveError::NoStore)?.read(&pointer).await?),
    }
}

/// [`decode`] that first resolves an S3 pointer, so replay and the CLI read offloaded
/// envelopes as if SQS had held them.
pub async fn decode_resolving(body: &str, store: Option<&dyn PayloadStore>) -> Result<Envelope, ResolveError> {
    Ok(decode(&resolve_body(body, store).await?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_have_the_extended_client_shape_and_round_trip() {
        let pointer = PayloadPointer {
            bucket: "b".into(),
            key: "k/1.json".into(),
        };
        assert_eq!(
            pointer.to_body(),
            r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k/1.json"}]"#
        );
        assert_eq!(PayloadPointer::from_body(&pointer.to_body()), Some(pointer));
        assert_eq!(PayloadPointer::from_body(r#"{"version":1}"#), None);
        assert_eq!(
            PayloadPointer::from_body(r#"["other",{"s3BucketName":"b","s3Key":"k"}]"#),
            None
        );
    }

    /// The older format, as AWS's Python extended client writes it (spaces included), is
    /// followed too (issue 21, case 3); any other class is not a pointer.
    #[test]
    fn legacy_pointers_are_followed() {
        let legacy = r#"["com.amazon.sqs.javamessaging.MessageS3Pointer", {"s3BucketName": "b", "s3Key": "k-1"}]"#;
        let pointer = PayloadPointer {
            bucket: "b".into(),
            key: "k-1".into(),
        };
        assert_eq!(PayloadPointer::from_body(legacy), Some(pointer));
        let other = legacy.replace("MessageS3Pointer", "OtherPointer");
        assert_eq!(PayloadPointer::from_body(&other), None);
    }

    #[test]
    fn keys_depend_only_on_the_body() {
        assert_eq!(payload_key("a"), payload_key("a"));
        assert_ne!(payload_key("a"), payload_key("b"));
        assert_eq!(payload_key("a").len(), "currents-segment/".len() + 64 + ".json".len());
    }
}
