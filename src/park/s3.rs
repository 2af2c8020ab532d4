//! The production [`PayloadStore`] on S3.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use super::offload::{PayloadPointer, PayloadStore, ReadError, StoreError, payload_key};

/// S3's error codes for an object that does not exist or a bucket that does not exist: the
/// payload is gone for good. S3 answers `AccessDenied` instead of `NoSuchKey` to a caller
/// without `s3:ListBucket`; that stays a failure that may pass.
const GONE_CODES: [&str; 2] = ["NoSuchKey", "NoSuchBucket"];

/// Stores large envelopes in one bucket (`LARGE_PAYLOAD_BUCKET`), encrypted at rest by the
/// bucket's default encryption.
pub struct S3PayloadStore {
    client: Client,
    bucket: String,
}

impl S3PayloadStore {
    /// Stores payloads in `bucket`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// A store on the bucket `bucket` with an S3 client from the standard AWS settings
    /// (`AWS_ENDPOINT_URL` points it at moto); `None` when no bucket is configured.
    pub async fn from_env(bucket: Option<String>) -> Option<Self> {
        let bucket = bucket.filter(|b| !b.trim().is_empty())?;
        // Short, like the SQS client's: an S3 call that hangs must become a 503 while the
        // invocation can still answer.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(1))
            .operation_attempt_timeout(Duration::from_secs(2))
            .operation_timeout(Duration::from_secs(5))
            .build();
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(timeouts)
            .load()
            .await;
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build();
        Some(Self::new(Client::from_conf(s3), bucket))
    }
}

#[async_trait]
impl PayloadStore for S3PayloadStore {
    async fn put(&self, body: &str) -> Result<PayloadPointer, StoreError> {
        let key = payload_key(body);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body.as_bytes().to_vec()))
            .send()
            .await
            .map_err(|e| {
                StoreError(format!(
                    "PutObject failed: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ))
            })?;
        Ok(PayloadPointer {
            bucket: self.bucket.clone(),
            key,
        })
    }

    async fn get(&self, pointer: &PayloadPointer) -> Result<String, StoreError> {
        self.read(pointer).await.map_err(|e| match e {
            ReadError::Failed(error) => error,
            permanent => StoreError(permanent.to_string()),
        })
    }

    async fn read(&self, pointer: &PayloadPointer) -> Result<String, ReadError> {
        use aws_sdk_s3::error::ProvideErrorMetadata;
        let object = self
            .client
            .get_object()
            .bucket(&pointer.bucket)
            .key(&pointer.key)
            .send()
            .await
            .map_err(|e| match e.code().filter(|code| GONE_CODES.contains(code)) {
                Some(code) => ReadError::Gone(code.to_owned()),
                None => ReadError::Failed(StoreError(format!(
                    "GetObject failed: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ))),
            })?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| StoreError(format!("reading the S3 object failed: {e}")))?;
        String::from_utf8(bytes.into_bytes().to_vec()).map_err(|_| ReadError::NotText)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `LARGE_PAYLOAD_BUCKET` unset or blank means no bucket; any name gives a store.
    #[tokio::test]
    async fn a_store_exists_only_for_a_named_bucket() {
        assert!(S3PayloadStore::from_env(None).await.is_none());
        assert!(S3PayloadStore::from_env(Some("  ".into())).await.is_none());
        let store = S3PayloadStore::from_env(Some("payloads".into()))
            .await
            .expect("a store");
        assert_eq!(store.bucket, "payloads");
    }
}
