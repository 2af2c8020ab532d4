//! Large envelopes in S3, in the format of AWS's SQS extended client libraries
//! (<https://github.com/awslabs/amazon-sqs-java-extended-client-lib>), so their Java and
//! Python clients can read our queues too: the SQS body becomes
//! `["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"…","s3Key":"…"}]`
//! and the message carries the `ExtendedPayloadSize` attribute (bytes of the stored payload).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::envelope::{Envelope, EnvelopeError, decode};

/// The class name AWS's extended clients write as the pointer's first element.
pub(crate) const POINTER_CLASS: &str = "software.amazon.payloadoffloading.PayloadS3Pointer";

/// The message attribute AWS's extended clients set on an offloaded message (a Number).
pub const PAYLOAD_SIZE_ATTRIBUTE: &str = "ExtendedPayloadSize";

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

    /// The pointer a body holds, or `None` when the body is an ordinary message.
    pub fn from_body(body: &str) -> Option<Self> {
        if !body.trim_start().starts_with('[') || !body.contains(POINTER_CLASS) {
            return None;
        }
        let (class, pointer): (String, PayloadPointer) = serde_json::from_str(body).ok()?;
        (class == POINTER_CLASS).then_some(pointer)
    }
}

/// The store could not put or get a payload. Retrying may help; the caller decides.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("large-payload store: {0}")]
pub struct StoreError(pub String);

/// Keeps message bodies too large for SQS. Production adapter: `S3PayloadStore`.
#[async_trait]
pub trait PayloadStore: Send + Sync {
    /// Stores `body` whole and returns where it is. Storing the same body twice is harmless.
    async fn put(&self, body: &str) -> Result<PayloadPointer, StoreError>;
    /// The body stored at `pointer`.
    async fn get(&self, pointer: &PayloadPointer) -> Result<String, StoreError>;
}

/// The key a body is stored under: its SHA-256, so a re-sent body overwrites its own copy
/// instead of adding one.
pub fn payload_key(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("currents-segment/{hex}.json")
}

/// Why a queue body could not be read back as an envelope.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("the body points at S3 but no large-payload store is configured")]
    NoStore,
}

/// The full body of a queue message: the body itself, or what its S3 pointer points at.
pub(crate) async fn resolve_body(body: &str, store: Option<&dyn PayloadStore>) -> Result<String, ResolveError> {
    match PayloadPointer::from_body(body) {
        None => Ok(body.to_owned()),
        Some(pointer) => Ok(store.ok_or(ResolveError::NoStore)?.get(&pointer).await?),
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

    #[test]
    fn keys_depend_only_on_the_body() {
        assert_eq!(payload_key("a"), payload_key("a"));
        assert_ne!(payload_key("a"), payload_key("b"));
        assert_eq!(payload_key("a").len(), "currents-segment/".len() + 64 + ".json".len());
    }
}
