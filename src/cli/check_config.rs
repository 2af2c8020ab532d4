//! `currents-segment check-config`: the effective configuration, every secret redacted.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Value, json};

use super::CliError;
use crate::config::{Config, DeliveryConfig, Route};

/// Prints the effective configuration as pretty JSON with every secret redacted, and what a
/// Lambda would still need (`ready_for_lambda`, `problems`).
///
/// Errors: [`CliError::Write`] only; an invalid configuration fails before, when it is read.
pub(crate) fn check_config(config: &Config, out: &mut dyn Write) -> Result<(), CliError> {
    let routes: Vec<Value> = config.routing.routes().iter().map(route_report).collect();
    let app_routes: BTreeMap<&str, &str> = config.routing.app_routes().collect();
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
    let problems: Vec<String> = DeliveryConfig::from_lookup(config, env)
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
    json!({
        "name": route.name,
        "endpoint": route.endpoint,
        "write_key": redact(route.write_key.is_some()),
        "include_anonymous": mapping.include_anonymous,
        "pii_mode": mapping.pii.as_str(),
        "event_types": if mapping.event_types.is_some() { json!(types) } else { json!("all") },
        "event_names": names,
        "integrations": integrations,
    })
}
