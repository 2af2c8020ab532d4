//! Reading [`Config`] from environment variables.

use std::collections::HashMap;
use std::time::Duration;

use super::key_check::KeyCheckSpec;
use super::routes::{self, RouteDefaults, Routing};
use crate::limits::{DEFAULT_MAX_BODY_BYTES, SQS_DEFAULT_MESSAGE_BYTES, SQS_MAX_MESSAGE_BYTES};
use crate::mapping::{EventNaming, MappingOptions, PiiMode, UnknownEventTypes};

/// Smallest allowed parked message: room for a maximal 32 KB Segment message and its envelope.
const MIN_PARK_MESSAGE_BYTES: usize = 65_536;
use crate::secret::{BearerTokens, Secret};

/// A configuration value an operator must fix. It never quotes a secret.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var} {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn invalid(var: &'static str, reason: impl Into<String>) -> Self {
        Self {
            var,
            reason: reason.into(),
        }
    }
}

/// Timeouts and retry budget of the Segment client.
#[derive(Clone, Debug)]
pub struct SegmentClientConfig {
    /// TCP connect timeout (`SEGMENT_CONNECT_TIMEOUT_MS`, default 2,000 ms).
    pub connect_timeout: Duration,
    /// Whole-request timeout (`SEGMENT_TIMEOUT_MS`, default 10,000 ms).
    pub request_timeout: Duration,
    /// How long ingest keeps retrying Segment before it parks what is left.
    pub ingest_retry_budget: Duration,
}

/// How big a parked message may be.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// Largest SQS message body we send, in bytes (`PARK_MESSAGE_MAX_BYTES`, 65,536 to 1,048,576).
    pub park_message_max_bytes: usize,
}

/// Everything the bridge reads from its environment, parsed once.
#[derive(Clone, Debug)]
pub struct Config {
    /// Routes and their Segment targets.
    pub routing: Routing,
    /// Bearer tokens Currents may send (`CURRENTS_AUTH_TOKEN`: one token, or a JSON array of
    /// tokens accepted together during a rotation).
    pub auth_token: Option<BearerTokens>,
    /// Accept requests without a token (`ALLOW_UNAUTHENTICATED`).
    pub allow_unauthenticated: bool,
    /// Largest request body accepted, in bytes (`MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Parking limits.
    pub queues: QueueConfig,
    /// How long replay keeps trying a parked message (`REPLAY_MAX_AGE_HOURS`, default 48 h).
    pub replay_max_age: Duration,
    /// Segment client timeouts and retry budget.
    pub segment: SegmentClientConfig,
}

/// Every environment variable [`Config::from_lookup`] and `DeliveryConfig` read, for
/// `check-config`'s `sources`. A unit test fails when one is read that is not listed here.
pub(crate) const VARIABLES: &[&str] = &[
    "ALLOW_UNAUTHENTICATED",
    "APP_ROUTES",
    "CHANNEL_PREFIXED_NAMES",
    "CURRENTS_AUTH_TOKEN",
    "DEAD_LETTER_QUEUE_URL",
    "EVENT_NAMES",
    "EVENT_NAMING",
    "EVENT_TYPES",
    "INCLUDE_ANONYMOUS",
    "INGEST_RETRY_BUDGET_MS",
    "INTEGRATIONS",
    "MAX_BODY_BYTES",
    "PARK_MESSAGE_MAX_BYTES",
    "PII_MODE",
    "REPLAY_MAX_AGE_HOURS",
    "RETRY_QUEUE_URL",
    "ROUTES",
    "SEGMENT_CONNECT_TIMEOUT_MS",
    "SEGMENT_ENDPOINT",
    "SEGMENT_REGION",
    "SEGMENT_SETTINGS_ENDPOINT",
    "SEGMENT_TIMEOUT_MS",
    "SEGMENT_WRITE_KEY",
    "UNKNOWN_EVENT_TYPES",
    "WRITE_KEY_CHECK",
    "WRITE_KEY_CHECK_INTERVAL_SECONDS",
];

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads configuration through `lookup`; empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str| lookup(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let defaults = route_defaults(&get)?;
        let routing = routes::build_routing(get("ROUTES").as_deref(), get("APP_ROUTES").as_deref(), defaults)?;
        let park_message_max_bytes = number(&get, "PARK_MESSAGE_MAX_BYTES", SQS_DEFAULT_MESSAGE_BYTES as u64)? as usize;
        if !(MIN_PARK_MESSAGE_BYTES..=SQS_MAX_MESSAGE_BYTES).contains(&park_message_max_bytes) {
            return Err(ConfigError::invalid(
                "PARK_MESSAGE_MAX_BYTES",
                "must be between 65536 and 1048576",
            ));
        }
        let replay_max_age_hours = number(&get, "REPLAY_MAX_AGE_HOURS", 48)?;
        if replay_max_age_hours == 0 {
            return Err(ConfigError::invalid("REPLAY_MAX_AGE_HOURS", "must be at least 1"));
        }
        Ok(Self {
            routing,
            auth_token: get("CURRENTS_AUTH_TOKEN")
                .map(|text| BearerTokens::parse(&text))
                .transpose()
                .map_err(|reason| ConfigError::invalid("CURRENTS_AUTH_TOKEN", reason))?,
            allow_unauthenticated: flag(&get, "ALLOW_UNAUTHENTICATED")?,
            max_body_bytes: number(&get, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES as u64)? as usize,
            queues: QueueConfig { park_message_max_bytes },
            replay_max_age: Duration::from_secs(replay_max_age_hours * 3_600),
            segment: SegmentClientConfig {
                connect_timeout: Duration::from_millis(number(&get, "SEGMENT_CONNECT_TIMEOUT_MS", 2_000)?),
                request_timeout: Duration::from_millis(number(&get, "SEGMENT_TIMEOUT_MS", 10_000)?),
                ingest_retry_budget: Duration::from_millis(number(&get, "INGEST_RETRY_BUDGET_MS", 8_000)?),
            },
        })
    }
}

/// The global values every route inherits: endpoint, write key and mapping options.
fn route_defaults(get: &impl Fn(&str) -> Option<String>) -> Result<RouteDefaults, ConfigError> {
    let region = get("SEGMENT_REGION");
    let (endpoint, follow_region) = match get("SEGMENT_ENDPOINT") {
        // `auto` starts on a Segment host given explicitly (the template declares the US one).
        Some(endpoint) if region.as_deref().is_some_and(|r| r.eq_ignore_ascii_case("auto")) => {
            let endpoint = routes::normalize_endpoint("SEGMENT_ENDPOINT", &endpoint)?;
            if !super::is_segment_host(&endpoint) {
                return Err(ConfigError::invalid(
                    "SEGMENT_REGION",
                    "`auto` follows Segment's own hosts; it cannot be combined with a custom SEGMENT_ENDPOINT",
                ));
            }
            (endpoint, true)
        }
        Some(endpoint) => (routes::normalize_endpoint("SEGMENT_ENDPOINT", &endpoint)?, false),
        None => routes::endpoint_for_region("SEGMENT_REGION", region.as_deref().unwrap_or("us"))?,
    };
    Ok(RouteDefaults {
        endpoint,
        follow_region,
        write_key: get("SEGMENT_WRITE_KEY").map(Secret::new),
        mapping: mapping_options(get)?,
        key_check: KeyCheckSpec::from_env(get)?,
    })
}

fn mapping_options(get: &impl Fn(&str) -> Option<String>) -> Result<MappingOptions, ConfigError> {
    let mapping = MappingOptions {
        include_anonymous: flag(get, "INCLUDE_ANONYMOUS")?,
        event_names: match get("EVENT_NAMES") {
            Some(text) => serde_json::from_str::<HashMap<String, String>>(&text)
                .map_err(|_| ConfigError::invalid("EVENT_NAMES", "must be a JSON object of event_type to name"))?,
            None => HashMap::new(),
        },
        event_types: get("EVENT_TYPES").as_deref().and_then(routes::parse_event_types),
        pii: match get("PII_MODE") {
            Some(text) => PiiMode::parse(&text.to_ascii_lowercase())
                .ok_or_else(|| ConfigError::invalid("PII_MODE", "must be keep, hash or drop"))?,
            None => PiiMode::Keep,
        },
        integrations: get("INTEGRATIONS")
            .map(|t| routes::parse_integrations("INTEGRATIONS", &t))
            .transpose()?,
        naming: choice(get, "EVENT_NAMING", EventNaming::parse, "must be braze or legacy")?,
        channel_prefixed_names: flag(get, "CHANNEL_PREFIXED_NAMES")?,
        unknown_event_types: choice(
            get,
            "UNKNOWN_EVENT_TYPES",
            UnknownEventTypes::parse,
            "must be skip or send",
        )?,
    };
    if mapping.event_names.values().any(|name| name.trim().is_empty()) {
        return Err(ConfigError::invalid("EVENT_NAMES", "names must not be empty"));
    }
    Ok(mapping)
}

fn flag(get: &impl Fn(&str) -> Option<String>, var: &'static str) -> Result<bool, ConfigError> {
    match get(var).map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(_) => Err(ConfigError::invalid(var, "must be true or false")),
    }
}

/// A setting with a few named values; unset means the default value.
fn choice<T: Default>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    parse: fn(&str) -> Option<T>,
    expected: &str,
) -> Result<T, ConfigError> {
    match get(var) {
        None => Ok(T::default()),
        Some(text) => parse(&text.to_ascii_lowercase()).ok_or_else(|| ConfigError::invalid(var, expected)),
    }
}

fn number(get: &impl Fn(&str) -> Option<String>, var: &'static str, default: u64) -> Result<u64, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| ConfigError::invalid(var, "must be a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn a_lone_write_key_makes_one_default_route_on_the_us_endpoint() {
        let config = config(&[("SEGMENT_WRITE_KEY", "wk")]).unwrap();
        let routes = config.routing.routes();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].name, "default");
        assert_eq!(routes[0].endpoint, "https://api.segment.io");
        assert_eq!(config.replay_max_age, Duration::from_secs(48 * 3600));
        assert_eq!(config.queues.park_message_max_bytes, 262_144);
    }

    #[test]
    fn numeric_settings_land_in_their_fields_in_their_units() {
        let config = config(&[
            ("SEGMENT_TIMEOUT_MS", "1234"),
            ("SEGMENT_CONNECT_TIMEOUT_MS", "567"),
            ("INGEST_RETRY_BUDGET_MS", "890"),
            ("REPLAY_MAX_AGE_HOURS", "72"),
            ("PARK_MESSAGE_MAX_BYTES", "1048576"),
            ("MAX_BODY_BYTES", "1000"),
        ])
        .unwrap();
        assert_eq!(config.segment.request_timeout, Duration::from_millis(1234));
        assert_eq!(config.segment.connect_timeout, Duration::from_millis(567));
        assert_eq!(config.segment.ingest_retry_budget, Duration::from_millis(890));
        assert_eq!(config.replay_max_age, Duration::from_secs(72 * 3600));
        assert_eq!(config.queues.park_message_max_bytes, 1_048_576);
        assert_eq!(config.max_body_bytes, 1000);
    }

    #[test]
    fn eu_region_and_endpoint_override_pick_the_host() {
        let eu = config(&[("SEGMENT_REGION", "eu")]).unwrap();
        assert_eq!(eu.routing.routes()[0].endpoint, "https://events.eu1.segmentapis.com");
        let local = config(&[("SEGMENT_REGION", "eu"), ("SEGMENT_ENDPOINT", "http://127.0.0.1:9/")]).unwrap();
        assert_eq!(local.routing.routes()[0].endpoint, "http://127.0.0.1:9");
        assert!(config(&[("SEGMENT_REGION", "ap")]).is_err());
        let auto = config(&[
            ("SEGMENT_REGION", "auto"),
            ("SEGMENT_ENDPOINT", "https://api.segment.io"),
        ])
        .unwrap();
        assert!(auto.routing.routes()[0].key_check.on().unwrap().follow_region);
        assert!(config(&[("SEGMENT_REGION", "auto"), ("SEGMENT_ENDPOINT", "http://127.0.0.1:9")]).is_err());
        let off = [("SEGMENT_REGION", "auto"), ("WRITE_KEY_CHECK", "off")];
        assert_eq!(config(&off).unwrap_err().var, "WRITE_KEY_CHECK");
    }

    /// `check-config` shows a source for every variable the configuration reads.
    #[test]
    fn every_variable_read_is_listed_for_check_config() {
        let read = std::cell::RefCell::new(std::collections::BTreeSet::new());
        let lookup = |key: &str| {
            read.borrow_mut().insert(key.to_owned());
            None
        };
        let config = super::super::Config::from_lookup(lookup).unwrap();
        super::super::DeliveryConfig::problems(&config, lookup);
        let read = read.take();
        let unlisted: Vec<&String> = read.iter().filter(|k| !VARIABLES.contains(&k.as_str())).collect();
        assert!(unlisted.is_empty(), "add to VARIABLES: {unlisted:?}");
        let unread: Vec<&&str> = VARIABLES.iter().filter(|k| !read.contains(**k)).collect();
        assert!(unread.is_empty(), "never read, remove from VARIABLES: {unread:?}");
    }

    /// Issue 21, case 6: an endpoint copied from Segment's docs posted to `/v1/v1/batch`.
    #[test]
    fn an_endpoint_copied_from_segments_docs_is_its_base_url() {
        for copied in [
            "https://events.eu1.segmentapis.com/v1",
            "https://events.eu1.segmentapis.com/v1/",
            "https://events.eu1.segmentapis.com/v1/batch",
            "https://events.eu1.segmentapis.com/v1/batch/",
            " https://events.eu1.segmentapis.com/V1/Track ",
            "https://events.eu1.segmentapis.com/",
            "events.eu1.segmentapis.com",
            "events.eu1.segmentapis.com/v1/batch",
        ] {
            let config = config(&[("SEGMENT_ENDPOINT", copied)]).unwrap();
            assert_eq!(
                config.routing.routes()[0].endpoint,
                "https://events.eu1.segmentapis.com",
                "{copied}"
            );
            let routes = format!(r#"{{"r":{{"write_key":"k","endpoint":"{}"}}}}"#, copied.trim());
            let config = super::super::Config::from_lookup(|k| (k == "ROUTES").then(|| routes.clone())).unwrap();
            assert_eq!(
                config.routing.routes()[0].endpoint,
                "https://events.eu1.segmentapis.com",
                "{copied}"
            );
        }
        // A path of a proxy's own is kept; only Segment's trailing `/v1[/call]` goes.
        let proxy = config(&[("SEGMENT_ENDPOINT", "https://proxy.example/segment/v1/batch")]).unwrap();
        assert_eq!(proxy.routing.routes()[0].endpoint, "https://proxy.example/segment");
        let kept = config(&[("SEGMENT_ENDPOINT", "https://proxy.example/batch")]).unwrap();
        assert_eq!(kept.routing.routes()[0].endpoint, "https://proxy.example/batch");
        // What no request could ever reach is refused at cold start, naming the variable.
        for broken in [
            "https://",
            "ftp://events.eu1.segmentapis.com",
            "https://host/v1?x=1",
            "http://a b",
            "https://h#f",
        ] {
            assert_eq!(
                config(&[("SEGMENT_ENDPOINT", broken)]).unwrap_err().var,
                "SEGMENT_ENDPOINT",
                "{broken}"
            );
            let routes = format!(r#"{{"r":{{"write_key":"k","endpoint":"{broken}"}}}}"#);
            let refused = super::super::Config::from_lookup(|k| (k == "ROUTES").then(|| routes.clone()));
            assert_eq!(refused.unwrap_err().var, "ROUTES", "{broken}");
        }
    }

    #[test]
    fn routes_inherit_global_options_unless_they_set_their_own() {
        let config = config(&[
            ("ROUTES", r#"{"brand-a":{"write_key":"ka","region":"eu","pii_mode":"hash"},"brand-b":{"write_key":"kb","event_types":["users.messages.email.Send"]}}"#),
            ("INCLUDE_ANONYMOUS", "true"),
            ("APP_ROUTES", r#"{"app-1":"brand-b"}"#),
        ])
        .unwrap();
        let a = config.routing.route(config.routing.find("brand-a").unwrap());
        let b = config.routing.route(config.routing.find("brand-b").unwrap());
        assert_eq!(a.mapping.pii, PiiMode::Hash);
        assert!(a.mapping.include_anonymous && b.mapping.include_anonymous);
        assert_eq!(b.mapping.pii, PiiMode::Keep);
        assert_eq!(b.mapping.event_types.as_ref().unwrap().len(), 1);
        assert_eq!(a.endpoint, "https://events.eu1.segmentapis.com");
        assert_eq!(config.routing.for_app("app-1"), config.routing.find("brand-b"));
        assert!(
            config.routing.find("default").is_none(),
            "no default route without SEGMENT_WRITE_KEY"
        );
    }

    #[test]
    fn bad_values_are_rejected_without_quoting_secrets() {
        for (var, value) in [
            ("ROUTES", r#"{"a":{"write_key":"sekrit","colour":"blue"}}"#),
            // A route written as an array is not read positionally (issue 21, case 11's sibling).
            ("ROUTES", r#"{"a":["sekrit","eu"]}"#),
            ("APP_ROUTES", r#"{"app":"missing"}"#),
            ("PII_MODE", "scramble"),
            ("INCLUDE_ANONYMOUS", "maybe"),
            ("EVENT_NAMES", "[1]"),
            ("PARK_MESSAGE_MAX_BYTES", "2000000"),
            ("REPLAY_MAX_AGE_HOURS", "0"),
            ("INTEGRATIONS", "[true]"),
            ("EVENT_NAMING", "old"),
            ("CHANNEL_PREFIXED_NAMES", "maybe"),
            ("UNKNOWN_EVENT_TYPES", "drop"),
        ] {
            let error = config(&[(var, value), ("SEGMENT_WRITE_KEY", "wk")]).unwrap_err();
            assert_eq!(error.var, var);
            assert!(!error.to_string().contains("sekrit"), "{error}");
        }
    }
}
