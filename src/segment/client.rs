//! The production [`Deliver`] adapter: one reqwest client (rustls), built at cold start and
//! reused so connections stay warm across invocations.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};

use super::retry::parse_retry_after;
use crate::config::{SegmentClientConfig, SegmentTarget};
use crate::ports::{AttemptError, Deliver};

/// The production [`Deliver`]: HTTPS to Segment's `/v1/batch` with reqwest.
pub struct SegmentHttp {
    client: reqwest::Client,
}

impl SegmentHttp {
    /// A client with the configured timeouts; errors if reqwest cannot build the client.
    pub fn new(config: &SegmentClientConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // Segment's API IPs rotate; don't hold idle connections for long (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/#headers).
            .pool_idle_timeout(Duration::from_secs(50))
            .build()?;
        Ok(Self { client })
    }

    /// The underlying client (cheap to clone: one connection pool and TLS setup), so other
    /// adapters such as the settings check reuse it instead of building their own at cold start.
    pub(crate) fn http_client(&self) -> reqwest::Client {
        self.client.clone()
    }
}

#[async_trait]
impl Deliver for SegmentHttp {
    async fn deliver(&self, target: &SegmentTarget, body: Vec<u8>, timeout: Duration) -> Result<(), AttemptError> {
        let write_key = target.write_key.expose();
        let response = self
            .client
            .post(format!("{}/v1/batch", target.endpoint))
            // Basic auth with the write key as user and an empty password ("key:"), as Segment asks.
            .basic_auth(write_key, Some(""))
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("currents-segment/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        Err(AttemptError::Status {
            status: status.as_u16(),
            retry_after,
        })
    }
}

/// Reduces a reqwest error to its kind: its text can carry the URL and says little more.
fn transport_error(error: reqwest::Error) -> AttemptError {
    if error.is_timeout() {
        AttemptError::Timeout
    } else if error.is_connect() {
        AttemptError::Connection("connect failed")
    } else if error.is_body() || error.is_request() {
        AttemptError::Connection("connection dropped")
    } else {
        AttemptError::Connection("transport error")
    }
}
