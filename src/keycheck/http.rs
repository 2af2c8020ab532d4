//! The production [`FetchSettings`] adapter: reqwest (rustls) against Segment's settings CDN.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use reqwest::header::USER_AGENT;

use super::verdict::SETTINGS_MAX_BYTES;
use crate::ports::{FetchSettings, SettingsAnswer};
use crate::secret::Secret;

/// Bytes of a 404 body kept: enough for Segment's one-line text.
const NOT_FOUND_BODY_BYTES: usize = 4_096;

/// The production [`FetchSettings`]: `GET {endpoint}/v1/projects/{write_key}/settings`.
pub struct SettingsHttp {
    client: reqwest::Client,
}

impl SettingsHttp {
    /// A client of its own with `connect_timeout`; errors if reqwest cannot build it (TLS roots
    /// missing). For the CLI and tests; a function reuses its Segment client ([`Self::with_client`]).
    pub fn new(connect_timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder().connect_timeout(connect_timeout).build()?;
        Ok(Self { client })
    }

    /// On an existing client, such as [`crate::segment::SegmentHttp::http_client`]: building a
    /// second rustls client costs a few milliseconds of cold start. Each request still carries
    /// its own timeout.
    pub(crate) fn with_client(client: reqwest::Client) -> Self {
        Self { client }
    }
}

/// The settings URL, with the key as one percent-encoded path segment so that no key, however
/// odd, can change the path. `None` when the endpoint is not a base URL.
fn settings_url(endpoint: &str, write_key: &Secret) -> Option<reqwest::Url> {
    let mut url = reqwest::Url::parse(endpoint).ok()?;
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(["v1", "projects", write_key.expose(), "settings"]);
    Some(url)
}

#[async_trait]
impl FetchSettings for SettingsHttp {
    async fn fetch_settings(&self, endpoint: &str, write_key: &Secret, timeout: Duration) -> SettingsAnswer {
        let Some(url) = settings_url(endpoint, write_key) else {
            return SettingsAnswer::Failed("the settings endpoint is not a base URL".into());
        };
        let request = self
            .client
            .get(url)
            .header(USER_AGENT, concat!("currents-segment/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout);
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => return SettingsAnswer::Failed(transport_reason(&error).into()),
        };
        match response.status() {
            StatusCode::OK => match read_bounded(&mut response, SETTINGS_MAX_BYTES).await {
                Ok(Some(body)) => SettingsAnswer::Found(body),
                Ok(None) => SettingsAnswer::Failed(format!("settings body over {SETTINGS_MAX_BYTES} bytes")),
                Err(reason) => SettingsAnswer::Failed(reason.into()),
            },
            StatusCode::NOT_FOUND => {
                let body = read_bounded(&mut response, NOT_FOUND_BODY_BYTES).await;
                SettingsAnswer::NotFound(String::from_utf8_lossy(&body.ok().flatten().unwrap_or_default()).into_owned())
            }
            status => SettingsAnswer::Failed(format!("settings answered HTTP {}", status.as_u16())),
        }
    }
}

/// The body, or `None` once it passes `limit` bytes (read no further).
async fn read_bounded(response: &mut reqwest::Response, limit: usize) -> Result<Option<Vec<u8>>, &'static str> {
    if response.content_length().is_some_and(|length| length > limit as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_reason(&e))? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// The kind of a transport failure: reqwest's text can carry the URL, and so the key.
fn transport_reason(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "settings request timed out"
    } else if error.is_connect() {
        "could not connect to the settings endpoint"
    } else {
        "settings request failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_one_encoded_path_segment() {
        let url = settings_url("https://cdn.segment.com", &Secret::new("ab/c?d")).unwrap();
        assert_eq!(url.as_str(), "https://cdn.segment.com/v1/projects/ab%2Fc%3Fd/settings");
        let based = settings_url("http://127.0.0.1:9/cdn/", &Secret::new("k")).unwrap();
        assert_eq!(based.as_str(), "http://127.0.0.1:9/cdn/v1/projects/k/settings");
        assert!(settings_url("not a url", &Secret::new("k")).is_none());
    }
}
