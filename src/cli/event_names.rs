//! `currents-segment event-names [--route R] [--json]`: the effective name table, built-in names
//! after `EVENT_NAMES`, the route's `EVENT_TYPES` and the naming settings, from the same code the
//! mapping uses, so a configuration can be checked before it is deployed.

use std::io::Write;

use serde_json::json;

use super::CliError;
use crate::config::{Config, ConfigError, Route};
use crate::mapping::{EffectiveName, SegmentName, effective_names};

/// Arguments of `event-names`.
#[derive(Debug, clap::Args)]
pub struct EventNamesArgs {
    /// Only this route (default: every route).
    #[arg(long)]
    route: Option<String>,
    /// One JSON object per route: `{"route", "unknown_event_types", "names": [{"event_type",
    /// "event", "source", "selected"}]}`, as an array.
    #[arg(long)]
    json: bool,
}

/// Prints the table for the chosen routes. Errors: an unknown `--route`, a bad configuration, or
/// stdout that cannot be written.
pub(super) fn run(
    args: &EventNamesArgs,
    config: impl FnOnce() -> Result<Config, ConfigError>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let config = config()?;
    let routes: Vec<&Route> = match &args.route {
        Some(name) => {
            let id = config
                .routing
                .find(name)
                .ok_or_else(|| CliError::UnknownRoute(name.clone()))?;
            vec![config.routing.route(id)]
        }
        None => config.routing.routes().iter().collect(),
    };
    if args.json {
        let tables: Vec<_> = routes.iter().map(|route| route_json(route)).collect();
        let text = serde_json::to_string_pretty(&tables).unwrap_or_default();
        return writeln!(out, "{text}").map_err(CliError::Write);
    }
    for route in routes {
        write_text(route, out).map_err(CliError::Write)?;
    }
    Ok(())
}

fn route_json(route: &Route) -> serde_json::Value {
    json!({
        "route": route.name,
        "unknown_event_types": route.mapping.unknown_event_types.as_str(),
        "names": effective_names(&route.mapping),
    })
}

fn write_text(route: &Route, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "# route `{}`", route.name)?;
    for row in effective_names(&route.mapping) {
        writeln!(out, "{} -> {}", row.event_type, describe(&row))?;
    }
    let unknown = route.mapping.unknown_event_types.as_str();
    writeln!(out, "# any other event_type: UNKNOWN_EVENT_TYPES={unknown}")
}

fn describe(row: &EffectiveName<'_>) -> String {
    match (row.selected, row.name) {
        (false, _) => "skipped: event_type_not_selected".to_owned(),
        (true, None) => "skipped: unknown_event_type".to_owned(),
        (true, Some(SegmentName::CustomEventName)) => "(properties.name)".to_owned(),
        (true, Some(SegmentName::EventType)) => row.event_type.to_owned(),
        (true, Some(name)) => name.fixed().unwrap_or_default().to_owned(),
    }
}
