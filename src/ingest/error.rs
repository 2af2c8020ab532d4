//! Every way a request can fail, split by who must act, and the one place that turns each
//! into an HTTP status for Braze.

use lambda_http::http::StatusCode;

use super::AuthError;
use crate::currents::BodyError;
use crate::ports::QueueError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    // The caller's fault: Braze or whoever calls us must change the request.
    #[error("unauthorized: {0}")]
    Unauthorized(AuthError),
    #[error("{0}")]
    Body(#[from] BodyError),
    #[error("{0}")]
    BadRequest(String),
    #[error("body is over the {limit}-byte limit")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported Content-Encoding: use gzip or none")]
    UnsupportedEncoding,
    #[error("only POST is accepted")]
    MethodNotAllowed,
    #[error("unknown route `{0}`")]
    UnknownRoute(String),
    // The operator's: the deployment is misconfigured.
    #[error("the function has no CURRENTS_AUTH_TOKEN and refuses all requests")]
    AuthNotConfigured,
    // Retryable: nothing was lost, and Braze's resend will succeed once the queue is back.
    // Braze sees only this fixed text: the queue's error (an AWS SDK error chain with its
    // request id) is logged where it happens and never echoed in the answer.
    #[error("events could be neither delivered nor stored; resend the batch later")]
    Unavailable(#[source] QueueError),
}

impl From<AuthError> for IngestError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::NotConfigured => Self::AuthNotConfigured,
            other => Self::Unauthorized(other),
        }
    }
}

impl IngestError {
    /// Braze reacts per status: 400 splits the batch, 413 splits it smaller, 401/404 need a
    /// human, 5xx are retried with backoff (https://www.braze.com/docs/user_guide/data/distribution/braze_currents/setting_up_currents/custom_http_connector/).
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Body(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnknownRoute(_) => StatusCode::NOT_FOUND,
            // 500, not 401: Braze keeps retrying 5xx, so no events are lost while the operator
            // sets the token; a 401 would make Braze stop the integration.
            Self::AuthNotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A stable machine-readable code for the answer body and the logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::Body(_) | Self::BadRequest(_) => "bad_request",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedEncoding => "unsupported_encoding",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UnknownRoute(_) => "unknown_route",
            Self::AuthNotConfigured => "auth_not_configured",
            Self::Unavailable(_) => "unavailable",
        }
    }
}
