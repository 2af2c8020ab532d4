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

/// Used when no usable deadline is given (tests, local emulators).
const DEFAULT_TIME_BUDGET: Duration = Duration::from_secs(20);

/// Epoch milliseconds of 2001-09-09: any real Lambda deadline is later.
const PLAUSIBLE_EPOCH_MS: u64 = 1_000_000_000_000;

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
        let deadline = deadline_from_epoch_ms(request.lambda_context_ref().map_or(0, |c| c.deadline));
        let headers = request.headers();
        let input = IngestRequest {
            authorization: headers.get_all(AUTHORIZATION).iter().map(|v| v.as_bytes()).collect(),
            content_encoding: headers.get(CONTENT_ENCODING).and_then(|v| v.to_str().ok()),
            method_is_post: request.method() == Method::POST,
            route,
            body: request.body().as_ref(),
            deadline: deadline - reserve_for(deadline, PARK_RESERVE),
        };
        let mut metrics = Metrics::default();
        let result = self.process(input, &mut metrics).await;
        metrics.emit("ingest");
        respond(result)
    }
}

/// The time to keep back before `deadline`: `wanted`, or a third of what is left when the
/// invocation is short, so a small timeout still leaves room to try Segment.
pub fn reserve_for(deadline: Instant, wanted: Duration) -> Duration {
    wanted.min(deadline.saturating_duration_since(Instant::now()) / 3)
}

/// Turns Lambda's deadline (epoch milliseconds) into an `Instant`. A value that cannot be an
/// epoch time counts as no deadline: `cargo lambda watch` sends its timeout (600000) there.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    if deadline_ms < PLAUSIBLE_EPOCH_MS {
        return Instant::now() + DEFAULT_TIME_BUDGET;
    }
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
    fn implausible_deadlines_fall_back_to_the_default_budget() {
        let budget = |ms| deadline_from_epoch_ms(ms).saturating_duration_since(Instant::now());
        assert!(budget(0) > Duration::from_secs(19));
        assert!(budget(600_000) > Duration::from_secs(19));
        let soon = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 + 5_000;
        assert!(budget(soon) <= Duration::from_secs(5));
        assert!(budget(soon) > Duration::from_secs(3));
    }

    #[test]
    fn the_route_comes_from_the_path_after_currents() {
        assert_eq!(route_from_path("/currents"), None);
        assert_eq!(route_from_path("/currents/brand-a"), Some("brand-a"));
        assert_eq!(route_from_path("/prod/currents/brand-b/"), Some("brand-b"));
        assert_eq!(route_from_path("/"), None);
    }
}
