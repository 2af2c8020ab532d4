//! The S3 [`ObjectSource`]: `ListObjectsV2` pages under a prefix and streaming `GetObject`.

use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;

use super::source::{LIST_PAGE, ObjectMeta, ObjectReader, ObjectSource, SourceError};

/// Body chunks buffered between the network and the decoder, per open object.
const CHUNKS_IN_FLIGHT: usize = 8;

/// `s3://bucket/prefix` split into bucket and prefix (which may be empty).
pub(crate) fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_owned(), prefix.to_owned()))
}

/// The production [`ObjectSource`](super::ObjectSource): objects under one prefix of one S3 bucket.
pub struct S3Source {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3Source {
    /// Reads objects of `bucket` whose keys start with `prefix` (may be empty).
    pub fn new(client: Client, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }
}

#[async_trait]
impl ObjectSource for S3Source {
    async fn list_page(&self, start_after: Option<&str>) -> Result<Vec<ObjectMeta>, SourceError> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .set_start_after(start_after.map(str::to_owned))
            .max_keys(LIST_PAGE as i32)
            .send()
            .await
            .map_err(|e| SourceError::List {
                location: format!("s3://{}/{}", self.bucket, self.prefix),
                reason: DisplayErrorContext(&e).to_string(),
            })?;
        Ok(page
            .contents()
            .iter()
            .filter_map(|o| {
                Some(ObjectMeta {
                    key: o.key()?.to_owned(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                })
            })
            .collect())
    }

    async fn open(&self, key: &str) -> Result<ObjectReader, SourceError> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| SourceError::Read {
                key: self.display(key),
                reason: DisplayErrorContext(&e).to_string(),
            })?;
        let (sender, receiver) = sync_channel(CHUNKS_IN_FLIGHT);
        tokio::spawn(pump(object.body, sender));
        Ok(Box::new(ChannelReader {
            receiver,
            current: Vec::new(),
            position: 0,
        }))
    }

    fn display(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

/// Forwards body chunks to the blocking decoder until the body ends, fails, or the reader
/// goes away.
async fn pump(mut body: aws_sdk_s3::primitives::ByteStream, sender: SyncSender<std::io::Result<Vec<u8>>>) {
    loop {
        let next = match body.try_next().await {
            Ok(Some(chunk)) => Ok(chunk.to_vec()),
            Ok(None) => return,
            Err(error) => Err(std::io::Error::other(error.to_string())),
        };
        let failed = next.is_err();
        // `send` blocks while the decoder is behind; hand it to a blocking thread.
        let sender = sender.clone();
        let sent = tokio::task::spawn_blocking(move || sender.send(next).is_ok()).await;
        if failed || !matches!(sent, Ok(true)) {
            return;
        }
    }
}

struct ChannelReader {
    receiver: Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    position: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.position >= self.current.len() {
            match self.receiver.recv() {
                Ok(chunk) => (self.current, self.position) = (chunk?, 0),
                Err(_) => return Ok(0),
            }
        }
        let rest = &self.current[self.position..];
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.position += n;
        Ok(n)
    }
}

/// An S3 client from the standard AWS settings. With `AWS_ENDPOINT_URL` (a stand-in such as
/// moto) it uses path-style addressing, which such stand-ins expect.
pub async fn s3_client_from_env() -> Client {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(60))
        .build();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await;
    let path_style =
        std::env::var_os("AWS_ENDPOINT_URL").is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(path_style)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_split_into_bucket_and_prefix() {
        assert_eq!(parse_s3_url("s3://b/p/q"), Some(("b".into(), "p/q".into())));
        assert_eq!(parse_s3_url("s3://b"), Some(("b".into(), String::new())));
        assert_eq!(parse_s3_url("s3:///p"), None);
        assert_eq!(parse_s3_url("/local"), None);
    }
}
