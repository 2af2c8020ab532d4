//! The `currents-segment` command line: preview the mapping and check configuration, using the
//! same code path as the Lambdas and needing no write key, token or AWS settings.

use std::io::{Read, Write};

use serde::Serialize;
use serde_json::json;

use crate::config::{Config, DEFAULT_ROUTE_NAME};
use crate::transform::transform_body;

pub const USAGE: &str = "\
Usage:
  currents-segment transform [--route NAME] [FILE]   map a Currents body (FILE or stdin) to Segment messages
  currents-segment check-config                      validate the environment configuration, secrets redacted
  currents-segment --version

Configuration comes from the same environment variables as the Lambdas (see README).";

/// A failure that ends the command with exit code 2 and one line on stderr.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("unreadable body: {0}")]
    Body(#[from] crate::currents::BodyError),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("unknown route `{0}`")]
    UnknownRoute(String),
    #[error("cannot write output: {0}")]
    Write(std::io::Error),
}

/// Runs the command named by `args` (without the program name).
pub fn run(
    args: &[String],
    config: impl FnOnce() -> Result<Config, crate::config::ConfigError>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match args.first().map(String::as_str) {
        Some("transform") => {
            let (route, file) = transform_args(&args[1..])?;
            let body = read_input(file)?;
            transform_command(&body, &config()?, route, out)
        }
        Some("check-config") => check_config(&config()?, out),
        Some("--version" | "-V") => {
            writeln!(out, "currents-segment {}", env!("CARGO_PKG_VERSION")).map_err(CliError::Write)
        }
        Some("--help" | "-h" | "help") => writeln!(out, "{USAGE}").map_err(CliError::Write),
        Some(other) => Err(CliError::Usage(format!("unknown command `{other}`\n{USAGE}"))),
        None => Err(CliError::Usage(USAGE.to_owned())),
    }
}

fn transform_args(args: &[String]) -> Result<(Option<&str>, Option<&str>), CliError> {
    let (mut route, mut file) = (None, None);
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--route" => {
                route = Some(
                    iter.next()
                        .ok_or_else(|| CliError::Usage("--route needs a name".into()))?
                        .as_str(),
                )
            }
            "-" if file.is_none() => file = None,
            flag if flag.starts_with("--") => return Err(CliError::Usage(format!("unknown option `{flag}`"))),
            path if file.is_none() => file = Some(path),
            _ => return Err(CliError::Usage("transform takes one FILE".into())),
        }
    }
    Ok((route, file))
}

fn read_input(file: Option<&str>) -> Result<Vec<u8>, CliError> {
    let mut body = Vec::new();
    match file {
        Some(path) => body = std::fs::read(path).map_err(|e| CliError::Read(path.to_owned(), e))?,
        None => {
            std::io::stdin()
                .lock()
                .read_to_end(&mut body)
                .map_err(|e| CliError::Read("stdin".into(), e))?;
        }
    }
    Ok(body)
}

/// Prints `{"batch":[...],"skipped":[...],"dead_lettered":[...]}`. Output is deterministic:
/// input order, no clock, no `sentAt`.
pub fn transform_command(
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

    #[derive(Serialize)]
    struct SkippedOut<'a> {
        index: usize,
        id: &'a str,
        event_type: &'a str,
        reason: &'static str,
    }
    #[derive(Serialize)]
    struct DeadOut<'a> {
        index: usize,
        id: Option<&'a str>,
        reason: &'static str,
        detail: &'a str,
    }
    let skipped: Vec<SkippedOut> = transformed
        .skipped
        .iter()
        .map(|s| SkippedOut {
            index: s.index,
            id: &s.id,
            event_type: &s.event_type,
            reason: s.reason.as_str(),
        })
        .collect();
    let dead: Vec<DeadOut> = transformed
        .invalid
        .iter()
        .map(|i| DeadOut {
            index: i.index,
            id: i.id.as_deref(),
            reason: i.error.code,
            detail: &i.error.detail,
        })
        .collect();

    let mut writer = std::io::BufWriter::with_capacity(1 << 16, out);
    let write = |w: &mut std::io::BufWriter<&mut dyn Write>| -> std::io::Result<()> {
        w.write_all(b"{\"batch\":[")?;
        for (i, message) in transformed.messages.iter().enumerate() {
            if i > 0 {
                w.write_all(b",")?;
            }
            w.write_all(message.json.as_bytes())?;
        }
        w.write_all(b"],\"skipped\":")?;
        serde_json::to_writer(&mut *w, &skipped)?;
        w.write_all(b",\"dead_lettered\":")?;
        serde_json::to_writer(&mut *w, &dead)?;
        w.write_all(b"}\n")?;
        w.flush()
    };
    let result = write(&mut writer).map_err(CliError::Write);
    drop(writer);
    // The process ends right after this; freeing a hundred thousand messages one by one only
    // delays that (measured: about 5% of a 100,000-event run), so leave it to the OS.
    std::mem::forget(skipped);
    std::mem::forget(dead);
    std::mem::forget(transformed);
    result
}

/// Prints the effective configuration with every secret redacted, and what a Lambda would
/// still need.
pub fn check_config(config: &Config, out: &mut dyn Write) -> Result<(), CliError> {
    let redact = |present: bool| if present { json!("[redacted]") } else { json!(null) };
    let routes: Vec<_> = config
        .routing
        .routes()
        .iter()
        .map(|route| {
            let mapping = &route.mapping;
            let mut types: Vec<&String> = mapping.event_types.iter().flatten().collect();
            types.sort();
            let names: std::collections::BTreeMap<_, _> = mapping.event_names.iter().collect();
            json!({
                "name": route.name,
                "endpoint": route.endpoint,
                "write_key": redact(route.write_key.is_some()),
                "include_anonymous": mapping.include_anonymous,
                "pii_mode": mapping.pii.as_str(),
                "event_types": if mapping.event_types.is_some() { json!(types) } else { json!("all") },
                "event_names": names,
                "integrations": mapping.integrations.as_ref().map(|i| serde_json::from_str::<serde_json::Value>(i.get()).unwrap_or_default()),
            })
        })
        .collect();
    let app_routes: std::collections::BTreeMap<&str, &str> = config.routing.app_routes().collect();
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
    let problems: Vec<String> = crate::config::DeliveryConfig::from_lookup(config, env)
        .err()
        .map(|e| e.to_string())
        .into_iter()
        .collect();
    let report = json!({
        "routes": routes,
        "app_routes": app_routes,
        "auth": {"token": redact(config.auth_token.is_some()), "allow_unauthenticated": config.allow_unauthenticated},
        "max_body_bytes": config.max_body_bytes,
        "queues": {
            "retry_queue_url": env("RETRY_QUEUE_URL"),
            "dead_letter_queue_url": env("DEAD_LETTER_QUEUE_URL"),
            "park_message_max_bytes": config.queues.park_message_max_bytes,
        },
        "replay_max_age_hours": config.replay_max_age.as_secs() / 3600,
        "ready_for_lambda": problems.is_empty(),
        "problems": problems,
    });
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    writeln!(out, "{text}").map_err(CliError::Write)
}
