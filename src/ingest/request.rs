//! The parts of an HTTP request ingest looks at, independent of the Lambda event shape.

use tokio::time::Instant;

/// The parts of an HTTP request ingest looks at.
pub struct IngestRequest<'r> {
    /// Every `Authorization` header value; more than one is refused.
    pub authorization: Vec<&'r [u8]>,
    /// `Content-Encoding`, e.g. `gzip`.
    pub content_encoding: Option<&'r str>,
    /// Only POST carries Currents batches.
    pub method_is_post: bool,
    /// From `?route=` or `/currents/{route}`; `None` means the default route.
    pub route: Option<&'r str>,
    /// The body as received (lambda_http has already undone API Gateway's base64).
    pub body: &'r [u8],
    /// When Segment retries must stop so parking still fits in the invocation.
    pub deadline: Instant,
}

/// `/currents/{route}` → `Some(route)`; any stage or emulator prefix before `currents` is ignored.
pub(crate) fn route_from_path(path: &str) -> Option<&str> {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    segments.by_ref().find(|s| *s == "currents")?;
    segments.next()
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
