//! Logging: JSON lines with key/value fields, level from `AWS_LAMBDA_LOG_LEVEL` (set by the
//! template's `LoggingConfig`), then `RUST_LOG`, else INFO.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The level filter production uses: `level` for our code, WARN at most for the HTTP and AWS
/// libraries, whose debug output can include request details, and INFO at most for the Lambda
/// runtime, which logs the raw invocation (body and `Authorization` header) at TRACE.
/// These caps hold whatever level is requested: a directive for a target wins over the default.
pub fn filter(level: &str) -> EnvFilter {
    let filter = EnvFilter::try_new(level.to_ascii_lowercase()).unwrap_or_else(|_| EnvFilter::new("info"));
    [
        "aws_smithy_runtime=warn",
        "aws_smithy_http_client=warn",
        "aws_config=warn",
        "hyper=warn",
        "hyper_util=warn",
        "reqwest=warn",
        "h2=warn",
        "rustls=warn",
        "lambda_runtime=info",
        "lambda_runtime_api_client=info",
        "lambda_http=info",
        "aws_lambda_events=info",
        "tower=warn",
    ]
    .iter()
    .fold(filter, |filter, directive| {
        filter.add_directive(directive.parse().expect("static directive"))
    })
}

/// Installs the JSON subscriber writing to `writer`. Returns false if one was already set.
pub fn init_with<W>(level: &str, writer: W) -> bool
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter(level))
        .with_target(false)
        // Every span's fields on every line (`spans`: invocation, then record), so one batch's
        // or one SQS record's story can be filtered out of CloudWatch Logs.
        .with_current_span(false)
        .with_span_list(true)
        .with_writer(writer)
        .try_init()
        .is_ok()
}

/// The span of one Lambda invocation: every log line inside it carries `function`, the Lambda
/// `request_id` and, once known, the `route` (recorded with `Span::record`; ingest records its
/// request's route, replay records each envelope's on the record's own span).
pub fn invocation_span(function: &'static str, request_id: &str) -> tracing::Span {
    tracing::info_span!("invocation", function, request_id, route = tracing::field::Empty)
}

/// Installs the JSON subscriber on stderr, so stdout stays free for EMF documents and for the
/// CLI's output.
pub(crate) fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    init_with(&level, std::io::stderr);
}
