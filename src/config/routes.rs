//! Routes: named Segment destinations, each with its own write key and mapping options.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::ConfigError;
use super::key_check::{KeyCheck, KeyCheckSpec};
use crate::mapping::{EventNaming, MappingOptions, PiiMode, UnknownEventTypes};
use crate::object_only::ObjectOnly;
use crate::secret::Secret;

/// The route used when a request names none, and the only route of a single-key setup.
pub(crate) const DEFAULT_ROUTE: &str = "default";

const SEGMENT_US_ENDPOINT: &str = "https://api.segment.io";
const SEGMENT_EU_ENDPOINT: &str = "https://events.eu1.segmentapis.com";

/// Where one route's messages go, with the write key present: what delivering needs.
#[derive(Clone, Debug)]
pub struct SegmentTarget {
    /// Base URL without `/v1`, e.g. `https://api.segment.io`.
    pub endpoint: String,
    /// The Segment source's write key, sent as the HTTP Basic user name.
    pub write_key: Secret,
}

/// A named Segment destination and the mapping options of its events.
#[derive(Clone, Debug)]
pub struct Route {
    /// `default`, or a key of `ROUTES`.
    pub name: String,
    /// Base URL without `/v1`, from `SEGMENT_ENDPOINT`, the region, or the route's own.
    pub endpoint: String,
    /// Absent in configurations that never deliver (the `transform` CLI);
    /// [`Routing::delivery_targets`] turns it into a required value.
    pub write_key: Option<Secret>,
    /// How this route's events become messages.
    pub mapping: MappingOptions,
    /// Whether and how the write key is checked before delivering (`WRITE_KEY_CHECK`).
    pub key_check: KeyCheck,
}

/// Index of a route inside [`Routing`]; cheap to copy onto every mapped message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteId(u32);

/// One [`SegmentTarget`] per route, every write key present: built once at cold start by a
/// function that delivers, so a missing key cannot be discovered mid-request.
#[derive(Clone, Debug)]
pub struct DeliveryTargets(Vec<SegmentTarget>);

impl DeliveryTargets {
    /// The target of a route of the [`Routing`] these were built from.
    pub fn get(&self, id: RouteId) -> &SegmentTarget {
        &self.0[id.0 as usize]
    }
}

/// All routes plus the rules that pick one for an event.
#[derive(Clone, Debug)]
pub struct Routing {
    routes: Vec<Route>,
    by_name: HashMap<String, RouteId>,
    /// `properties.app_id` or `properties.app_group_id` → route.
    app_routes: HashMap<String, RouteId>,
}

impl Routing {
    /// The route with this id; ids come from this routing table.
    pub fn route(&self, id: RouteId) -> &Route {
        &self.routes[id.0 as usize]
    }

    /// All routes, sorted by name.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Every route's id, in the order of [`Routing::routes`].
    pub fn ids(&self) -> impl Iterator<Item = RouteId> + '_ {
        (0..self.routes.len() as u32).map(RouteId)
    }

    /// The route named `name`, if configured.
    pub fn find(&self, name: &str) -> Option<RouteId> {
        self.by_name.get(name).copied()
    }

    /// The route for an app, if `APP_ROUTES` names it.
    pub(crate) fn for_app(&self, app_id: &str) -> Option<RouteId> {
        self.app_routes.get(app_id).copied()
    }

    /// Whether `APP_ROUTES` names any app.
    pub(crate) fn has_app_routes(&self) -> bool {
        !self.app_routes.is_empty()
    }

    /// `(app id, route name)` pairs of `APP_ROUTES`.
    pub fn app_routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.app_routes
            .iter()
            .map(|(app, id)| (app.as_str(), self.route(*id).name.as_str()))
    }

    /// Every route's target, or the error naming the first route without a write key.
    pub fn delivery_targets(&self) -> Result<DeliveryTargets, ConfigError> {
        let targets = self.routes.iter().map(|route| match &route.write_key {
            Some(key) => Ok(SegmentTarget {
                endpoint: route.endpoint.clone(),
                write_key: key.clone(),
            }),
            None => Err(missing_write_key(route)),
        });
        Ok(DeliveryTargets(targets.collect::<Result<_, _>>()?))
    }

    /// One error per route without a write key, in route order (for `check-config`).
    pub(crate) fn missing_write_keys(&self) -> Vec<ConfigError> {
        let missing = self.routes.iter().filter(|route| route.write_key.is_none());
        missing.map(missing_write_key).collect()
    }
}

fn missing_write_key(route: &Route) -> ConfigError {
    ConfigError::invalid(
        "SEGMENT_WRITE_KEY",
        format!("is missing for route `{}` (set it, or write_key in ROUTES)", route.name),
    )
}

/// Global values every route inherits unless it sets its own.
pub(super) struct RouteDefaults {
    pub endpoint: String,
    /// `SEGMENT_REGION=auto`: follow the ingestion host the source's settings name.
    pub follow_region: bool,
    pub write_key: Option<Secret>,
    pub mapping: MappingOptions,
    pub key_check: KeyCheckSpec,
}

/// One entry of `ROUTES`, as an operator writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSpec {
    write_key: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    include_anonymous: Option<bool>,
    event_names: Option<HashMap<String, String>>,
    event_types: Option<EventTypes>,
    pii_mode: Option<PiiMode>,
    integrations: Option<Box<RawValue>>,
    event_naming: Option<EventNaming>,
    channel_prefixed_names: Option<bool>,
    unknown_event_types: Option<UnknownEventTypes>,
    write_key_check: Option<String>,
    write_key_check_interval_seconds: Option<u64>,
    settings_endpoint: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EventTypes {
    List(Vec<String>),
    Comma(String),
}

/// The calls of Segment's HTTP API; an endpoint copied from its docs may end in one
/// (<https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/>).
const SEGMENT_CALLS: [&str; 8] = [
    "batch", "import", "track", "identify", "page", "screen", "group", "alias",
];

/// A configured endpoint as the base URL we append `/v1/batch` to: white space and trailing `/`
/// removed, a bare host (`events.eu1.segmentapis.com`, as Segment's regional guide lists them)
/// given `https://`, and a trailing `/v1` or `/v1/<call>` (as copied from Segment's docs, e.g.
/// `https://events.eu1.segmentapis.com/v1` or `…/v1/batch`) dropped, so nothing posts to
/// `/v1/v1/batch`.
///
/// Errors (naming `var`) for anything that is then not an http(s) URL with a host and without
/// a query or fragment: every request to it would fail, and every event would wait out the
/// replay window for nothing.
pub(crate) fn normalize_endpoint(var: &'static str, text: &str) -> Result<String, ConfigError> {
    base_url(var, text, strip_segment_path, "https://events.eu1.segmentapis.com")
}

/// `text` as a base URL: trimmed, a bare host given `https://`, and trailing `/` and what
/// `strip_path` removes (a path copied from Segment's docs) dropped. Errors (naming `var`, with
/// `example`) unless it is then an http(s) URL with a host and no query or fragment, the only
/// kind a path can be appended to.
pub(super) fn base_url(
    var: &'static str,
    text: &str,
    strip_path: fn(&str) -> &str,
    example: &str,
) -> Result<String, ConfigError> {
    let text = text.trim();
    let text = match text.contains("://") {
        true => text.to_owned(),
        false => format!("https://{text}"),
    };
    let base = strip_path(text.trim_end_matches('/')).trim_end_matches('/');
    match reqwest::Url::parse(base) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some_and(|h| !h.is_empty())
                && url.query().is_none()
                && url.fragment().is_none() =>
        {
            Ok(base.to_owned())
        }
        _ => Err(ConfigError::invalid(
            var,
            format!("must be an http(s) URL such as {example}"),
        )),
    }
}

/// `base` without a trailing `/v1` or `/v1/<call>`.
fn strip_segment_path(mut base: &str) -> &str {
    if let Some((head, last)) = base.rsplit_once('/')
        && SEGMENT_CALLS.iter().any(|call| last.eq_ignore_ascii_case(call))
        && head.to_ascii_lowercase().ends_with("/v1")
    {
        base = head;
    }
    if base.to_ascii_lowercase().ends_with("/v1") {
        base = &base[..base.len() - 3];
    }
    base
}

/// The endpoint of a region, and whether it is `auto` (start on the US host, then follow the
/// ingestion host the source's settings name).
pub(super) fn endpoint_for_region(var: &'static str, region: &str) -> Result<(String, bool), ConfigError> {
    match region.trim().to_ascii_lowercase().as_str() {
        "" | "us" => Ok((SEGMENT_US_ENDPOINT.to_owned(), false)),
        "eu" => Ok((SEGMENT_EU_ENDPOINT.to_owned(), false)),
        "auto" => Ok((SEGMENT_US_ENDPOINT.to_owned(), true)),
        _ => Err(ConfigError::invalid(var, "region must be `us`, `eu` or `auto`")),
    }
}

pub(super) fn parse_event_types(text: &str) -> Option<HashSet<String>> {
    let types: HashSet<String> = text
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    (!types.is_empty()).then_some(types)
}

pub(super) fn parse_integrations(var: &'static str, text: &str) -> Result<Box<RawValue>, ConfigError> {
    let value: Box<RawValue> =
        serde_json::from_str(text).map_err(|_| ConfigError::invalid(var, "must be a JSON object"))?;
    check_integrations(var, &value)?;
    Ok(value)
}

fn check_integrations(var: &'static str, value: &RawValue) -> Result<(), ConfigError> {
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(value.get()) {
        Ok(_) => Ok(()),
        Err(_) => Err(ConfigError::invalid(var, "integrations must be a JSON object")),
    }
}

/// Builds the routing table from `ROUTES`, `SEGMENT_WRITE_KEY` and `APP_ROUTES`.
pub(super) fn build_routing(
    routes_json: Option<&str>,
    app_routes_json: Option<&str>,
    defaults: RouteDefaults,
) -> Result<Routing, ConfigError> {
    let mut routes: Vec<Route> = Vec::new();
    if let Some(text) = routes_json {
        // BTreeMap keeps route order stable, so `check-config` output is deterministic.
        let specs: BTreeMap<String, ObjectOnly<RouteSpec>> = serde_json::from_str(text).map_err(|error| {
            ConfigError::invalid(
                "ROUTES",
                format!("must be a JSON object of routes ({})", crate::text::json_error(&error)),
            )
        })?;
        for (name, ObjectOnly(spec)) in specs {
            routes.push(route_from_spec(name, spec, &defaults)?);
        }
    }
    // A lone SEGMENT_WRITE_KEY keeps working next to ROUTES as the `default` route.
    if !routes.iter().any(|r| r.name == DEFAULT_ROUTE) && (routes.is_empty() || defaults.write_key.is_some()) {
        routes.push(Route {
            name: DEFAULT_ROUTE.to_owned(),
            key_check: defaults
                .key_check
                .resolve("WRITE_KEY_CHECK", &defaults.endpoint, defaults.follow_region)?,
            endpoint: defaults.endpoint.clone(),
            write_key: defaults.write_key.clone(),
            mapping: defaults.mapping.clone(),
        });
    }
    routes.sort_by(|a, b| a.name.cmp(&b.name));
    let by_name: HashMap<String, RouteId> = (0..).zip(&routes).map(|(i, r)| (r.name.clone(), RouteId(i))).collect();

    let mut app_routes = HashMap::new();
    if let Some(text) = app_routes_json {
        let map: HashMap<String, String> = serde_json::from_str(text)
            .map_err(|_| ConfigError::invalid("APP_ROUTES", "must be a JSON object of app id to route name"))?;
        for (app, route) in map {
            let id = *by_name
                .get(&route)
                .ok_or_else(|| ConfigError::invalid("APP_ROUTES", format!("names unknown route `{route}`")))?;
            app_routes.insert(app, id);
        }
    }
    Ok(Routing {
        routes,
        by_name,
        app_routes,
    })
}

/// Where a route sends (its endpoint, its region, or the global one) and how its key is checked.
fn route_endpoint(
    name: &str,
    spec: &mut RouteSpec,
    defaults: &RouteDefaults,
) -> Result<(String, KeyCheck), ConfigError> {
    let (endpoint, follow_region) = match (spec.endpoint.take(), spec.region.take()) {
        (Some(_), Some(region)) if region.trim().eq_ignore_ascii_case("auto") => {
            return Err(ConfigError::invalid(
                "ROUTES",
                format!("route `{name}` sets both endpoint and region `auto`"),
            ));
        }
        (Some(endpoint), _) => {
            let endpoint = normalize_endpoint("ROUTES", &endpoint)
                .map_err(|e| ConfigError::invalid("ROUTES", format!("route `{name}`: endpoint {}", e.reason)))?;
            (endpoint, false)
        }
        (None, Some(region)) => endpoint_for_region("ROUTES", &region)?,
        (None, None) => (defaults.endpoint.clone(), defaults.follow_region),
    };
    let key_check = route_key_check(
        &spec.write_key_check,
        spec.write_key_check_interval_seconds,
        spec.settings_endpoint.take(),
        defaults,
    )?
    .resolve("ROUTES", &endpoint, follow_region)?;
    Ok((endpoint, key_check))
}

/// A route's own write-key check settings over the global ones.
fn route_key_check(
    enabled: &Option<String>,
    interval_seconds: Option<u64>,
    settings_endpoint: Option<String>,
    defaults: &RouteDefaults,
) -> Result<KeyCheckSpec, ConfigError> {
    let enabled = enabled
        .as_deref()
        .map(|text| super::key_check::parse_switch("ROUTES", &text.trim().to_ascii_lowercase()))
        .transpose()?;
    let own = KeyCheckSpec {
        enabled,
        interval_seconds,
        settings_endpoint,
    };
    Ok(own.or(&defaults.key_check))
}

fn route_from_spec(name: String, mut spec: RouteSpec, defaults: &RouteDefaults) -> Result<Route, ConfigError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ConfigError::invalid(
            "ROUTES",
            "route names use only letters, digits, `-`, `_` and `.`",
        ));
    }
    let (endpoint, key_check) = route_endpoint(&name, &mut spec, defaults)?;
    let write_key = match spec.write_key {
        Some(key) if key.trim().is_empty() => {
            return Err(ConfigError::invalid(
                "ROUTES",
                format!("route `{name}` has an empty write_key"),
            ));
        }
        Some(key) => Some(Secret::new(key)),
        None => None,
    };
    if let Some(integrations) = &spec.integrations {
        check_integrations("ROUTES", integrations)?;
    }
    let inherited = &defaults.mapping;
    let mapping = MappingOptions {
        include_anonymous: spec.include_anonymous.unwrap_or(inherited.include_anonymous),
        event_names: spec.event_names.unwrap_or_else(|| inherited.event_names.clone()),
        event_types: match spec.event_types {
            Some(EventTypes::List(list)) => parse_event_types(&list.join(",")),
            Some(EventTypes::Comma(text)) => parse_event_types(&text),
            None => inherited.event_types.clone(),
        },
        pii: spec.pii_mode.unwrap_or(inherited.pii),
        integrations: spec.integrations.or_else(|| inherited.integrations.clone()),
        naming: spec.event_naming.unwrap_or(inherited.naming),
        channel_prefixed_names: spec.channel_prefixed_names.unwrap_or(inherited.channel_prefixed_names),
        unknown_event_types: spec.unknown_event_types.unwrap_or(inherited.unknown_event_types),
    };
    Ok(Route {
        name,
        endpoint,
        write_key,
        mapping,
        key_check,
    })
}
