//! The lambda_http edge: a `Request` in, a `Response` out. API Gateway HTTP API (payload v2)
//! and Function URLs share one request shape; lambda_http has already decoded base64 bodies.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_http::http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use tokio::time::Instant;

use super::pipeline::PARK_RESERVE;
use super::{Counts, Ingest, IngestError};
use crate::metrics::Metrics;

/// Used when no Lambda context is present (tests, local tools).
const DEFAULT_TIME_BUDGET: Duration = Duration::from_secs(20);

/// The parts of an HTTP request ingest looks at.
pub struct IngestRequest<'r> {
    /// Every `Authorization` header value; more than one is refused.
    pub authorization: Vec<&'r [u8]>,
    pub content_encoding: Option<&'r str>,
    pub method_is_post: bool,
    /// From `?route=` or `/currents/{route}`; `None` means the default route.
    pub route: Option<&'r str>,
    pub body: &'r [u8],
    /// When Segment retries must stop so parking still fits in the invocation.
    pub deadline: Instant,
}

/// `/currents/{route}` → `Some(route)`; any stage or emulator prefix before `currents` is ignored.
pub fn route_from_path(path: &str) -> Option<&str> {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    segments.by_ref().find(|s| *s == "currents")?;
    segments.next()
}

impl Ingest {
    /// Handles one invocation. Never fails: every error becomes an HTTP answer.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let query_route = request
            .query_string_parameters_ref()
            .and_then(|q| q.first("route"))
            .filter(|r| !r.is_empty());
        let route = query_route.or_else(|| route_from_path(request.uri().path()));
        let deadline = match request.lambda_context_ref() {
            Some(context) => deadline_from_epoch_ms(context.deadline),
            None => Instant::now() + DEFAULT_TIME_BUDGET,
        };
        let headers = request.headers();
        let input = IngestRequest {
            authorization: headers.get_all(AUTHORIZATION).iter().map(|v| v.as_bytes()).collect(),
            content_encoding: headers.get(CONTENT_ENCODING).and_then(|v| v.to_str().ok()),
            method_is_post: request.method() == Method::POST,
            route,
            body: request.body().as_ref(),
            deadline: deadline.checked_sub(PARK_RESERVE).unwrap_or_else(Instant::now),
        };
        let mut metrics = Metrics::default();
        let result = self.process(input, &mut metrics).await;
        metrics.emit("ingest");
        respond(result)
    }
}

fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

fn respond(result: Result<Counts, IngestError>) -> Response<Body> {
    let (status, body) = match result {
        Ok(counts) => (StatusCode::OK, serde_json::to_string(&counts).unwrap_or_default()),
        Err(error) => {
            match &error {
                IngestError::AuthNotConfigured => tracing::error!(
                    code = error.code(),
                    "Refusing request: set CURRENTS_AUTH_TOKEN, or ALLOW_UNAUTHENTICATED=true to accept unauthenticated requests."
                ),
                IngestError::Unavailable(_) => {}
                _ => {
                    tracing::warn!(code = error.code(), status = error.status().as_u16(), error = %error, "Request refused.")
                }
            }
            let body = serde_json::json!({"error": error.code(), "message": error.to_string()});
            (error.status(), body.to_string())
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_comes_from_the_path_after_currents() {
        assert_eq!(route_from_path("/currents"), None);
        assert_eq!(route_from_path("/currents/brand-a"), Some("brand-a"));
        assert_eq!(route_from_path("/prod/currents/brand-b/"), Some("brand-b"));
        assert_eq!(route_from_path("/"), None);
    }
}
