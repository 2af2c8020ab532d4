//! The lambda_http edge: a `Request` in, a `Response` out. lambda_http reads API Gateway HTTP
//! API (payload v2) and Function URL events, API Gateway REST API (payload 1.0) events and ALB
//! events into one request type (features `apigw_http`, `apigw_rest`, `alb`), decodes base64
//! bodies, and answers each front in its own response shape.

use lambda_http::http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::Instrument;

use super::request::{IngestRequest, route_from_path};
use super::{Counts, Ingest, IngestError};
use crate::deadline::{self, PARK_RESERVE};
use crate::metrics::Metrics;

impl Ingest {
    /// Handles one invocation. Never fails: every error becomes an HTTP answer.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let query_route = request
            .query_string_parameters_ref()
            .and_then(|q| q.first("route"))
            .filter(|r| !r.is_empty());
        let route = query_route.or_else(|| route_from_path(request.uri().path()));
        let deadline = deadline::for_invocation(request.lambda_context_ref().map_or(0, |c| c.deadline), PARK_RESERVE);
        let headers = request.headers();
        let input = IngestRequest {
            authorization: headers.get_all(AUTHORIZATION).iter().map(|v| v.as_bytes()).collect(),
            content_encoding: headers.get(CONTENT_ENCODING).and_then(|v| v.to_str().ok()),
            method_is_post: request.method() == Method::POST,
            route,
            body: request.body().as_ref(),
            deadline,
        };
        let span = self.invocation_span(&request, route);
        let mut metrics = Metrics::default();
        let result = self.process(input, &mut metrics).instrument(span.clone()).await;
        metrics.emit("ingest");
        span.in_scope(|| respond(result))
    }

    /// One span per invocation: every log line inside carries the Lambda request id and the
    /// route (a configured route's name, `default`, or `unknown`: never text from the URL).
    fn invocation_span(&self, request: &Request, route: Option<&str>) -> tracing::Span {
        let request_id = request
            .lambda_context_ref()
            .map(|c| c.request_id.as_str())
            .unwrap_or("local");
        let route = match route {
            None => crate::config::DEFAULT_ROUTE_NAME,
            Some(name) if self.config.routing.find(name).is_some() => name,
            Some(_) => "unknown",
        };
        let span = crate::telemetry::invocation_span("ingest", request_id);
        span.record("route", route);
        span
    }
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
                // The name is text from the URL, which may be anything (a token pasted into the
                // path): the caller gets it back in the body, the logs never do.
                IngestError::UnknownRoute(_) => tracing::warn!(
                    code = error.code(),
                    status = error.status().as_u16(),
                    "Request refused: the route in the URL is not configured."
                ),
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
