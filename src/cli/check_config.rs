//! `currents-segment check-config`: the effective configuration, every secret redacted.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Value, json};

use super::CliError;
use crate::config::{Config, ConfigError, DeliveryConfig, Route, RouteId, VARIABLES};
use crate::keycheck::{KeyHealth, KeyVerdict, Plan, SETTINGS_TIMEOUT, SettingsHttp};
use crate::ports::FetchSettings;

/// `check-config`'s arguments.
#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    /// Also ask Segment's settings CDN about every checked route's write key and print each
    /// verdict and ingestion host; exit 1 when a key is invalid or a route sends to the wrong
    /// region. Run it before a deploy.
    #[arg(long)]
    pub online: bool,
}

/// Runs `check-config`: prints the report, with the routes' verdicts under `online` when asked.
/// Fails with [`CliError::NotReady`] (exit 1) after printing when `problems` is not empty.
pub(crate) fn run(args: &CheckConfigArgs, config: &Config, out: &mut dyn Write) -> Result<(), CliError> {
    if !args.online {
        let report = report(config);
        print(&report, out)?;
        return ready(&report);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Write)?;
    let settings = SettingsHttp::new(config.segment.connect_timeout)
        .map_err(|e| CliError::Usage(format!("cannot build the settings client: {e}")))?;
    runtime.block_on(online(config, std::sync::Arc::new(settings), out))
}

/// Every value the configuration refuses, not only `first`: each refused variable is set aside
/// in turn and the configuration read again through `lookup`, until it reads or a variable
/// is refused twice (at most once per variable).
pub(crate) fn every_invalid_value(first: ConfigError, lookup: impl Fn(&str) -> Option<String>) -> CliError {
    let mut refused = vec![first];
    while refused.len() <= VARIABLES.len() {
        let aside: Vec<&str> = refused.iter().map(|e| e.var).collect();
        match Config::from_lookup(|key| if aside.contains(&key) { None } else { lookup(key) }) {
            Err(next) if !aside.contains(&next.var) => refused.push(next),
            _ => break,
        }
    }
    let lines: Vec<String> = refused.iter().map(|e| format!("{} {}", e.var, e.reason)).collect();
    CliError::InvalidValues(lines.join("\n"))
}

/// Where each variable's value comes from: `environment`, the runtime secret (write keys,
/// token and routes, when `SECRETS_ARN` is set and the environment does not set them; not read
/// offline), or `default`.
fn sources(env: &impl Fn(&str) -> Option<String>) -> BTreeMap<&'static str, &'static str> {
    let from_secret = env("SECRETS_ARN").is_some();
    let in_secret = ["SEGMENT_WRITE_KEY", "CURRENTS_AUTH_TOKEN", "ROUTES"];
    VARIABLES
        .iter()
        .map(|&var| {
            let source = match (env(var).is_some(), from_secret && in_secret.contains(&var)) {
                (true, _) => "environment",
                (false, true) => "runtime secret",
                (false, false) => "default",
            };
            (var, source)
        })
        .collect()
}

/// `Ok` when the report lists no problem; otherwise every problem, one per line.
fn ready(report: &Value) -> Result<(), CliError> {
    let problems: Vec<&str> = report["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match problems.is_empty() {
        true => Ok(()),
        false => Err(CliError::NotReady(problems.join("\n"))),
    }
}

/// Checks every route (concurrently), prints the report with `"online": [...]`, one row per
/// route, and fails with [`CliError::KeyCheck`] naming each held route.
pub(crate) async fn online(
    config: &Config,
    settings: std::sync::Arc<dyn FetchSettings>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let targets = config.routing.delivery_targets()?;
    let health = KeyHealth::new(settings, SETTINGS_TIMEOUT);
    let plans = health.warm(&config.routing, &targets).await;
    let mut rows = Vec::new();
    let mut held = Vec::new();
    for (id, plan) in &plans.plans {
        let route = config.routing.route(*id);
        let verdict = verdict_of(&health, config, &targets, *id).await;
        let (state, sends_to, cause) = match plan {
            Plan::Send(target) => (verdict.0, target.endpoint.clone(), None),
            Plan::Hold(hold) => {
                held.push(hold.last_error(&route.name));
                (verdict.0, route.endpoint.clone(), Some(hold.code()))
            }
        };
        rows.push(
            json!({"route": route.name, "verdict": state, "held": cause, "sends_to": sends_to,
            "ingestion_host": verdict.1, "reason": verdict.2}),
        );
    }
    let mut report = report(config);
    report["online"] = json!(rows);
    print(&report, out)?;
    match held.is_empty() {
        true => ready(&report),
        false => Err(CliError::KeyCheck(held.join("\n"))),
    }
}

/// (verdict name, ingestion host, reason) of a route, from the verdict just reached.
async fn verdict_of(
    health: &KeyHealth,
    config: &Config,
    targets: &crate::config::DeliveryTargets,
    id: RouteId,
) -> (&'static str, Option<String>, Option<String>) {
    let check = &config.routing.route(id).key_check;
    match health.verdict(id, &config.routing, targets).await {
        None => ("not_checked", None, Some(check.describe().to_owned())),
        Some(KeyVerdict::Valid { ingestion_host }) => ("valid", ingestion_host, None),
        Some(KeyVerdict::Invalid) => (
            "invalid",
            None,
            Some("Segment's settings CDN answered 404 for this write key".into()),
        ),
        Some(KeyVerdict::Unknown(reason)) => ("unknown", None, Some(reason)),
    }
}

fn print(report: &Value, out: &mut dyn Write) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(report).unwrap_or_default();
    writeln!(out, "{text}").map_err(CliError::Write)
}

/// The effective configuration with every secret redacted, and what a Lambda would still need
/// (`ready_for_lambda`, `problems`: every one, not only the first). An invalid value fails
/// before, when the configuration is read.
fn report(config: &Config) -> Value {
    let routes: Vec<Value> = config.routing.routes().iter().map(route_report).collect();
    let app_routes: BTreeMap<&str, &str> = config.routing.app_routes().collect();
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
    let problems = problems(config, env("SECRETS_ARN").is_some(), env);
    let timeouts = &config.segment;
    json!({
        "routes": routes,
        "app_routes": app_routes,
        "auth": {"token": redact(config.auth_token.is_some()), "allow_unauthenticated": config.allow_unauthenticated},
        "runtime_secret": env("SECRETS_ARN").map(|_| "[set: write keys and token may come from it; not read offline]"),
        "max_body_bytes": config.max_body_bytes,
        "queues": {
            "retry_queue_url": env("RETRY_QUEUE_URL"),
            "dead_letter_queue_url": env("DEAD_LETTER_QUEUE_URL"),
            "large_payload_bucket": env("LARGE_PAYLOAD_BUCKET"),
            "park_message_max_bytes": config.queues.park_message_max_bytes,
        },
        "segment": {
            "connect_timeout_ms": timeouts.connect_timeout.as_millis() as u64,
            "request_timeout_ms": timeouts.request_timeout.as_millis() as u64,
            "ingest_retry_budget_ms": timeouts.ingest_retry_budget.as_millis() as u64,
        },
        "replay_max_age_hours": config.replay_max_age.as_secs() / 3600,
        "sources": sources(&env),
        "ready_for_lambda": problems.is_empty(),
        "problems": problems,
    })
}

/// Everything ingest and replay would still need. Write keys and the token may come from the
/// runtime secret (`SECRETS_ARN`), which is not read offline, so they are not asked for then.
fn problems(config: &Config, from_secret: bool, env: impl Fn(&str) -> Option<String>) -> Vec<String> {
    let mut problems = DeliveryConfig::problems(config, env);
    if from_secret {
        problems.retain(|problem| problem.var != "SEGMENT_WRITE_KEY");
    } else if config.auth_token.is_none() && !config.allow_unauthenticated {
        problems.push(crate::config::ConfigError::invalid(
            "CURRENTS_AUTH_TOKEN",
            "is missing: ingest would answer every request 500, which Braze retries until it is set (set it, or ALLOW_UNAUTHENTICATED=true)",
        ));
    }
    problems.iter().map(ToString::to_string).collect()
}

/// `"[redacted]"` when a secret is set, `null` when not: presence is shown, never the value.
fn redact(present: bool) -> Value {
    if present { json!("[redacted]") } else { json!(null) }
}

fn route_report(route: &Route) -> Value {
    let mapping = &route.mapping;
    let mut types: Vec<&String> = mapping.event_types.iter().flatten().collect();
    types.sort();
    let names: BTreeMap<_, _> = mapping.event_names.iter().collect();
    let integrations = mapping
        .integrations
        .as_ref()
        .map(|i| serde_json::from_str::<Value>(i.get()).unwrap_or_default());
    let check = route.key_check.on();
    json!({
        "name": route.name,
        "endpoint": route.endpoint,
        "batch_url": format!("{}/v1/batch", route.endpoint),
        "region_auto": check.is_some_and(|c| c.follow_region),
        "write_key": redact(route.write_key.is_some()),
        "write_key_check": route.key_check.describe(),
        "settings_endpoint": check.map(|c| c.settings_endpoint.as_str()),
        "write_key_check_interval_seconds": check.map(|c| c.interval.as_secs()),
        "include_anonymous": mapping.include_anonymous,
        "pii_mode": mapping.pii.as_str(),
        "event_naming": mapping.naming.as_str(),
        "channel_prefixed_names": mapping.channel_prefixed_names,
        "unknown_event_types": mapping.unknown_event_types.as_str(),
        "event_types": if mapping.event_types.is_some() { json!(types) } else { json!("all") },
        "event_names": names,
        "integrations": integrations,
    })
}
