//! `currents-segment transform`: the mapping a Lambda would apply, printed instead of sent.

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use serde::Serialize;

use super::CliError;
use crate::config::{Config, ConfigError, DEFAULT_ROUTE_NAME};
use crate::transform::{Transformed, transform_body};

/// Arguments of `transform`.
#[derive(Debug, clap::Args)]
pub struct TransformArgs {
    /// Route whose write key, mapping and filters apply (a name from ROUTES)
    #[arg(long, value_name = "NAME", default_value = DEFAULT_ROUTE_NAME)]
    route: String,
    /// Currents body `{"events":[...]}` to read; stdin when absent or `-`
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
}

/// Reads the input first, then the configuration, then prints the report.
pub(super) fn run(
    args: &TransformArgs,
    config: impl FnOnce() -> Result<Config, ConfigError>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let file = args.file.as_deref().filter(|path| path.as_os_str() != "-");
    let body = read_input(file)?;
    transform_command(&body, &config()?, Some(&args.route), out)
}

fn read_input(file: Option<&std::path::Path>) -> Result<Vec<u8>, CliError> {
    let mut body = Vec::new();
    match file {
        Some(path) => body = std::fs::read(path).map_err(|e| CliError::Read(path.display().to_string(), e))?,
        None => {
            std::io::stdin()
                .lock()
                .read_to_end(&mut body)
                .map_err(|e| CliError::Read("stdin".into(), e))?;
        }
    }
    Ok(body)
}

/// Prints `{"batch":[...],"skipped":[...],"dead_lettered":[...]}` for `body` on `route`
/// (default route when `None`). Output is deterministic: input order, no clock, no `sentAt`.
///
/// Errors: [`CliError::UnknownRoute`], [`CliError::Body`] for a body that is not a batch,
/// [`CliError::Write`].
pub(crate) fn transform_command(
    body: &[u8],
    config: &Config,
    route: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let name = route.unwrap_or(DEFAULT_ROUTE_NAME);
    let route = config
        .routing
        .find(name)
        .ok_or_else(|| CliError::UnknownRoute(name.to_owned()))?;
    let transformed = transform_body(body, &config.routing, route)?;
    let skipped = skipped_rows(&transformed);
    let dead = dead_rows(&transformed);
    let result = write_report(&transformed, &skipped, &dead, out).map_err(CliError::Write);
    // The process ends right after this; freeing a hundred thousand messages one by one only
    // delays that (measured: about 5% of a 100,000-event run), so leave it to the OS.
    std::mem::forget(skipped);
    std::mem::forget(dead);
    std::mem::forget(transformed);
    result
}

/// One `skipped` entry of the report.
#[derive(Serialize)]
struct SkippedRow<'a> {
    index: usize,
    id: &'a str,
    event_type: &'a str,
    reason: &'static str,
}

/// One `dead_lettered` entry of the report.
#[derive(Serialize)]
struct DeadRow<'a> {
    index: usize,
    id: Option<&'a str>,
    reason: &'static str,
    detail: &'a str,
}

fn skipped_rows<'t>(transformed: &'t Transformed<'_>) -> Vec<SkippedRow<'t>> {
    transformed
        .skipped
        .iter()
        .map(|s| SkippedRow {
            index: s.index,
            id: &s.id,
            event_type: &s.event_type,
            reason: s.reason.as_str(),
        })
        .collect()
}

fn dead_rows<'t>(transformed: &'t Transformed<'_>) -> Vec<DeadRow<'t>> {
    transformed
        .invalid
        .iter()
        .map(|i| DeadRow {
            index: i.index,
            id: i.id.as_deref(),
            reason: i.error.code,
            detail: &i.error.detail,
        })
        .collect()
}

/// Writes the messages' ready JSON as is (no re-serialisation), then the two lists.
fn write_report(
    transformed: &Transformed<'_>,
    skipped: &[SkippedRow<'_>],
    dead: &[DeadRow<'_>],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 16, out);
    w.write_all(b"{\"batch\":[")?;
    for (i, message) in transformed.messages.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        w.write_all(message.json.as_bytes())?;
    }
    w.write_all(b"],\"skipped\":")?;
    serde_json::to_writer(&mut w, skipped)?;
    w.write_all(b",\"dead_lettered\":")?;
    serde_json::to_writer(&mut w, dead)?;
    w.write_all(b"}\n")?;
    w.flush()
}
