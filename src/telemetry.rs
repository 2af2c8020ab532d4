//! Logging: JSON lines with key/value fields, level from `AWS_LAMBDA_LOG_LEVEL` (set by the
//! template's `LoggingConfig`), then `RUST_LOG`, else INFO.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber. Logs go to stderr so stdout stays free for EMF documents and
/// for the CLI's output.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    let filter = EnvFilter::try_new(level.to_ascii_lowercase()).unwrap_or_else(|_| EnvFilter::new("info"));
    // Dependencies stay at WARN so request details never reach the logs through them.
    let filter = filter
        .add_directive("aws_smithy_runtime=warn".parse().expect("static directive"))
        .add_directive("aws_config=warn".parse().expect("static directive"))
        .add_directive("hyper=warn".parse().expect("static directive"))
        .add_directive("reqwest=warn".parse().expect("static directive"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(std::io::stderr)
        .try_init();
}
