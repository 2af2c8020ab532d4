//! `currents-segment transform`: the mapping a Lambda would apply, printed instead of sent.

use std::collections::BTreeMap;
use std::io::{BufWriter, IsTerminal, Read, Write};
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
    /// Indented JSON, two spaces a level (the default when stdout is a terminal)
    #[arg(long, conflicts_with_all = ["compact", "summary"])]
    pretty: bool,
    /// The whole report as one JSON line (the default when stdout is not a terminal)
    #[arg(long, conflicts_with = "summary")]
    compact: bool,
    /// A table instead of JSON: events by Segment event name, skip reason and dead-letter code
    #[arg(long)]
    summary: bool,
}

/// How `transform` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `{"batch":[...],"skipped":[...],"dead_lettered":[...]}` on one line, no whitespace
    /// outside strings (whatever the input's own whitespace was).
    Compact,
    /// The same document indented by two spaces a level, keys in the same order.
    Pretty,
    /// Counts by Segment event name, skip reason and dead-letter code, as a text table.
    Summary,
}

impl TransformArgs {
    /// The layout the flags ask for; with none, pretty on a terminal and compact otherwise.
    fn layout(&self, stdout_is_terminal: bool) -> Layout {
        match (self.summary, self.pretty, self.compact) {
            (true, _, _) => Layout::Summary,
            (_, true, _) => Layout::Pretty,
            (_, _, true) => Layout::Compact,
            _ if stdout_is_terminal => Layout::Pretty,
            _ => Layout::Compact,
        }
    }
}

/// Reads the input first, then the configuration, then prints the report.
pub(super) fn run(
    args: &TransformArgs,
    config: impl FnOnce() -> Result<Config, ConfigError>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let file = args.file.as_deref().filter(|path| path.as_os_str() != "-");
    let raw = read_input(file)?;
    // Read as ingest reads a request body with no Content-Encoding: a gzip file is inflated, a
    // leading byte order mark dropped, and an event that is not UTF-8 JSON isolated.
    let name = file.map_or("stdin".to_owned(), |path| path.display().to_string());
    let body = crate::ingest::decode_body(&raw, None, TRANSFORM_MAX_BYTES).map_err(|error| {
        CliError::Read(
            name,
            std::io::Error::new(std::io::ErrorKind::InvalidData, error.to_string()),
        )
    })?;
    let layout = args.layout(std::io::stdout().is_terminal());
    transform_command(&body, &config()?, Some(&args.route), layout, out)
}

/// The largest body `transform` reads, inflated: a local file, so far above ingest's limit.
const TRANSFORM_MAX_BYTES: usize = 4 << 30;

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
/// (default route when `None`), laid out as `layout` says. Output is deterministic: input
/// order, no clock, no `sentAt`.
///
/// Errors: [`CliError::UnknownRoute`], [`CliError::Body`] for a body that is not a batch,
/// [`CliError::Write`].
pub(crate) fn transform_command(
    body: &[u8],
    config: &Config,
    route: Option<&str>,
    layout: Layout,
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
    let result = match layout {
        Layout::Summary => write_summary(&transformed, out),
        _ => write_report(&transformed, &skipped, &dead, layout, out),
    }
    .map_err(CliError::Write);
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

/// Writes the messages' ready JSON (no re-serialisation), then the two lists, through a
/// [`JsonLayout`], so whitespace a message kept from its input never reaches the output as is.
fn write_report(
    transformed: &Transformed<'_>,
    skipped: &[SkippedRow<'_>],
    dead: &[DeadRow<'_>],
    layout: Layout,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut w = JsonLayout::new(BufWriter::with_capacity(1 << 16, out), layout == Layout::Pretty);
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
    w.write_all(b"}")?;
    let mut out = w.into_inner();
    out.write_all(b"\n")?;
    out.flush()
}

/// `--summary`: how many events went where, as a table a person reads (not a format to parse).
fn write_summary(transformed: &Transformed<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    let names = tally(transformed.messages.iter().map(|m| event_name(&m.json)));
    let reasons = tally(transformed.skipped.iter().map(|s| s.reason.as_str().into()));
    let codes = tally(transformed.invalid.iter().map(|i| i.error.code.into()));
    writeln!(
        out,
        "{} event(s): {} to Segment, {} skipped, {} dead-lettered",
        transformed.total(),
        transformed.messages.len(),
        transformed.skipped.len(),
        transformed.invalid.len()
    )?;
    let width = [&names, &reasons, &codes]
        .iter()
        .flat_map(|rows| rows.iter().map(|(name, _)| name.chars().count()))
        .max()
        .unwrap_or(0)
        .max(24);
    for (title, rows) in [
        ("to Segment, by event name", &names),
        ("skipped, by reason", &reasons),
        ("dead-lettered, by code", &codes),
    ] {
        if rows.is_empty() {
            continue;
        }
        writeln!(out, "\n{title:<w$}  events", w = width + 2)?;
        for (name, count) in rows {
            writeln!(out, "  {name:<width$}  {count:>6}")?;
        }
    }
    out.flush()
}

/// Counts of each distinct name, the commonest first, then by name.
fn tally<'a>(names: impl Iterator<Item = std::borrow::Cow<'a, str>>) -> Vec<(std::borrow::Cow<'a, str>, usize)> {
    let mut counts = BTreeMap::new();
    for name in names {
        *counts.entry(name).or_insert(0) += 1;
    }
    let mut rows: Vec<_> = counts.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows
}

/// The `event` of a rendered `track` message (`?` if it has none, which render never does).
fn event_name(json: &str) -> std::borrow::Cow<'static, str> {
    #[derive(serde::Deserialize)]
    struct Named {
        event: String,
    }
    serde_json::from_str::<Named>(json).map_or("?".into(), |named| named.event.into())
}

/// A writer that lays out the JSON written through it: whitespace outside strings is dropped,
/// then, when `pretty`, put back as newlines and two spaces a level (`[]` and `{}` stay empty
/// on one line). Strings pass through untouched. The document must be written whole.
struct JsonLayout<W: Write> {
    inner: W,
    pretty: bool,
    in_string: bool,
    escaped: bool,
    depth: usize,
    /// A `{` or `[` was just written: the next byte decides between `[]` and a new line.
    opened: bool,
}

impl<W: Write> JsonLayout<W> {
    fn new(inner: W, pretty: bool) -> Self {
        Self {
            inner,
            pretty,
            in_string: false,
            escaped: false,
            depth: 0,
            opened: false,
        }
    }

    fn into_inner(self) -> W {
        self.inner
    }

    fn newline(&mut self) -> std::io::Result<()> {
        const SPACES: &[u8] = &[b' '; 64];
        self.inner.write_all(b"\n")?;
        let mut left = self.depth * 2;
        while left > 0 {
            let n = left.min(SPACES.len());
            self.inner.write_all(&SPACES[..n])?;
            left -= n;
        }
        Ok(())
    }

    /// Writes one structural byte (outside strings, not whitespace) in the pretty layout.
    fn pretty_byte(&mut self, byte: u8) -> std::io::Result<()> {
        let closing = matches!(byte, b'}' | b']');
        if std::mem::take(&mut self.opened) {
            if closing {
                self.depth -= 1;
                return self.inner.write_all(&[byte]);
            }
            self.newline()?;
        }
        match byte {
            b'{' | b'[' => {
                self.depth += 1;
                self.opened = true;
                self.inner.write_all(&[byte])
            }
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                self.newline()?;
                self.inner.write_all(&[byte])
            }
            b',' => {
                self.inner.write_all(b",")?;
                self.newline()
            }
            b':' => self.inner.write_all(b": "),
            _ => self.inner.write_all(&[byte]),
        }
    }
}

impl<W: Write> Write for JsonLayout<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut run = 0; // start of the bytes not yet written that pass through as they are
        for (i, &byte) in buf.iter().enumerate() {
            if self.in_string {
                match (self.escaped, byte) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            let whitespace = matches!(byte, b' ' | b'\n' | b'\r' | b'\t');
            if !whitespace && !self.pretty {
                self.in_string = byte == b'"';
                continue;
            }
            self.inner.write_all(&buf[run..i])?;
            run = i + 1;
            if !whitespace {
                self.in_string = byte == b'"';
                self.pretty_byte(byte)?;
            }
        }
        self.inner.write_all(&buf[run..])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        args: TransformArgs,
    }

    fn layout(flags: &[&str], terminal: bool) -> Layout {
        let argv = std::iter::once("transform").chain(flags.iter().copied());
        Wrap::try_parse_from(argv).unwrap().args.layout(terminal)
    }

    #[test]
    fn pretty_on_a_terminal_compact_in_a_pipe_unless_a_flag_says() {
        assert_eq!(layout(&[], true), Layout::Pretty);
        assert_eq!(layout(&[], false), Layout::Compact);
        assert_eq!(layout(&["--compact"], true), Layout::Compact);
        assert_eq!(layout(&["--pretty"], false), Layout::Pretty);
        assert_eq!(layout(&["--summary"], true), Layout::Summary);
    }

    fn laid_out(pretty: bool, chunks: &[&str]) -> String {
        let mut w = JsonLayout::new(Vec::new(), pretty);
        for chunk in chunks {
            w.write_all(chunk.as_bytes()).unwrap();
        }
        String::from_utf8(w.into_inner()).unwrap()
    }

    #[test]
    fn layout_keeps_strings_and_survives_any_chunking() {
        let json = r#"{"a" : [ 1,
            2 ], "s\"{ ,": "x \\" , "e": {}, "f":[ ]}"#;
        let compact = r#"{"a":[1,2],"s\"{ ,":"x \\","e":{},"f":[]}"#;
        let pretty = "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"s\\\"{ ,\": \"x \\\\\",\n  \"e\": {},\n  \"f\": []\n}";
        let bytes: Vec<String> = json.chars().map(String::from).collect();
        let one_by_one: Vec<&str> = bytes.iter().map(String::as_str).collect();
        for chunks in [vec![json], one_by_one] {
            assert_eq!(laid_out(false, &chunks), compact);
            assert_eq!(laid_out(true, &chunks), pretty);
        }
    }
}
