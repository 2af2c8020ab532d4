//! Whether and how each route's write key is checked against Segment's settings CDN
//! (`WRITE_KEY_CHECK`, `WRITE_KEY_CHECK_INTERVAL_SECONDS`, `SEGMENT_SETTINGS_ENDPOINT`, and the
//! same three per route in `ROUTES`). See `crate::keycheck` for what the check does.

use std::time::Duration;

use super::ConfigError;

/// Segment's settings CDN, what its SDKs read at start-up
/// (<https://github.com/segmentio/action-destinations>, `destinations/segment/properties.ts`).
pub(crate) const DEFAULT_SETTINGS_ENDPOINT: &str = "https://cdn.segment.com";
/// How long a verdict is used before it is checked again, by default.
const DEFAULT_INTERVAL_SECONDS: u64 = 300;

/// How a route's write key is checked. Built once from configuration: a route that is checked
/// always has a settings endpoint and an interval of at least one second.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyCheck {
    /// Not checked; deliveries go out as they did before the check existed.
    Off(KeyCheckOff),
    /// Checked before any delivery, with a verdict at most `interval` old.
    On(KeyCheckOn),
}

/// Why a route is not checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyCheckOff {
    /// `WRITE_KEY_CHECK=off` (globally or on the route).
    Disabled,
    /// The route sends to a custom (Segment-compatible) endpoint and no settings endpoint was
    /// set explicitly: Segment's CDN knows nothing of such keys.
    CustomEndpoint,
}

/// A checked route's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyCheckOn {
    /// Base URL of the settings CDN, without a trailing `/` or `/v1`
    /// (`SEGMENT_SETTINGS_ENDPOINT`, default `https://cdn.segment.com`).
    pub settings_endpoint: String,
    /// Longest age of a verdict a delivery may use (`WRITE_KEY_CHECK_INTERVAL_SECONDS`, ≥ 1 s).
    pub interval: Duration,
    /// `SEGMENT_REGION=auto`: send to the ingestion host the source's settings name.
    pub follow_region: bool,
}

impl KeyCheck {
    /// The check's settings, when the route is checked.
    pub fn on(&self) -> Option<&KeyCheckOn> {
        match self {
            Self::On(on) => Some(on),
            Self::Off(_) => None,
        }
    }

    /// `on`, or why not, for `check-config`.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Self::On(_) => "on",
            Self::Off(KeyCheckOff::Disabled) => "off",
            Self::Off(KeyCheckOff::CustomEndpoint) => {
                "off (custom endpoint: set SEGMENT_SETTINGS_ENDPOINT to check it)"
            }
        }
    }
}

/// The three settings as written, globally or on one route; `None` means "not set here".
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyCheckSpec {
    pub enabled: Option<bool>,
    pub interval_seconds: Option<u64>,
    pub settings_endpoint: Option<String>,
}

impl KeyCheckSpec {
    /// Reads the global settings through `get` (trimmed, empty = unset).
    pub(crate) fn from_env(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let enabled = match get("WRITE_KEY_CHECK").map(|v| v.to_ascii_lowercase()).as_deref() {
            None => None,
            Some(text) => Some(parse_switch("WRITE_KEY_CHECK", text)?),
        };
        let interval_seconds = match get("WRITE_KEY_CHECK_INTERVAL_SECONDS") {
            None => None,
            Some(text) => Some(
                text.parse()
                    .map_err(|_| ConfigError::invalid("WRITE_KEY_CHECK_INTERVAL_SECONDS", "must be a whole number"))?,
            ),
        };
        Ok(Self {
            enabled,
            interval_seconds,
            settings_endpoint: get("SEGMENT_SETTINGS_ENDPOINT"),
        })
    }

    /// This spec where it sets a value, `inherited` where it does not.
    pub(crate) fn or(self, inherited: &Self) -> Self {
        Self {
            enabled: self.enabled.or(inherited.enabled),
            interval_seconds: self.interval_seconds.or(inherited.interval_seconds),
            settings_endpoint: self.settings_endpoint.or_else(|| inherited.settings_endpoint.clone()),
        }
    }

    /// The route's [`KeyCheck`]. `endpoint` is where the route sends; `follow_region` is
    /// `SEGMENT_REGION=auto`. `var` names the setting in errors.
    pub(crate) fn resolve(
        &self,
        var: &'static str,
        endpoint: &str,
        follow_region: bool,
    ) -> Result<KeyCheck, ConfigError> {
        let interval = self.interval_seconds.unwrap_or(DEFAULT_INTERVAL_SECONDS);
        if interval == 0 {
            return Err(ConfigError::invalid(
                var,
                "WRITE_KEY_CHECK_INTERVAL_SECONDS must be at least 1",
            ));
        }
        if self.enabled == Some(false) {
            return match follow_region {
                true => Err(ConfigError::invalid(var, "region `auto` needs WRITE_KEY_CHECK=on")),
                false => Ok(KeyCheck::Off(KeyCheckOff::Disabled)),
            };
        }
        let settings_endpoint = match (&self.settings_endpoint, is_segment_host(endpoint)) {
            (Some(explicit), _) => normalize_settings_endpoint(var, explicit)?,
            (None, true) => DEFAULT_SETTINGS_ENDPOINT.to_owned(),
            (None, false) => return Ok(KeyCheck::Off(KeyCheckOff::CustomEndpoint)),
        };
        Ok(KeyCheck::On(KeyCheckOn {
            settings_endpoint,
            interval: Duration::from_secs(interval),
            follow_region,
        }))
    }
}

/// `on`/`off` (also `true`/`false`, `1`/`0`, `yes`/`no`).
pub(crate) fn parse_switch(var: &'static str, text: &str) -> Result<bool, ConfigError> {
    match text {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError::invalid(var, "must be on or off")),
    }
}

/// An http(s) base URL, with a trailing `/`, `/v1` or `/v1/projects` (as copied from Segment's
/// docs) removed; a bare host gets `https://`.
fn normalize_settings_endpoint(var: &'static str, text: &str) -> Result<String, ConfigError> {
    super::routes::base_url(var, text, strip_settings_path, "https://cdn.segment.com")
}

/// `base` without a trailing `/v1/projects` or `/v1`. ASCII lower-casing keeps byte offsets,
/// so the cut falls on a character boundary.
fn strip_settings_path(base: &str) -> &str {
    let lower = base.to_ascii_lowercase();
    match ["/v1/projects", "/v1"].into_iter().find(|s| lower.ends_with(s)) {
        Some(suffix) => &base[..base.len() - suffix.len()],
        None => base,
    }
}

/// The host of an endpoint URL such as `https://api.segment.io`, lower-cased, without a port.
pub(crate) fn host_of(endpoint: &str) -> Option<String> {
    reqwest::Url::parse(endpoint)
        .ok()
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase))
}

/// Whether `endpoint` is one of Segment's own ingestion hosts: `api.segment.io` or a host under
/// `segmentapis.com` (<https://segment.com/docs/guides/regional-segment/>).
pub(crate) fn is_segment_host(endpoint: &str) -> bool {
    host_of(endpoint).is_some_and(|host| host == "api.segment.io" || host.ends_with(".segmentapis.com"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(enabled: Option<bool>, interval: Option<u64>, settings: Option<&str>) -> KeyCheckSpec {
        KeyCheckSpec {
            enabled,
            interval_seconds: interval,
            settings_endpoint: settings.map(str::to_owned),
        }
    }

    #[test]
    fn segment_hosts_are_checked_on_the_cdn_by_default_every_300_seconds() {
        let check = spec(None, None, None)
            .resolve("X", "https://api.segment.io", false)
            .unwrap();
        let on = check.on().unwrap();
        assert_eq!(on.settings_endpoint, "https://cdn.segment.com");
        assert_eq!(on.interval, Duration::from_secs(300));
        let eu = spec(None, Some(1), None)
            .resolve("X", "https://events.eu1.segmentapis.com", false)
            .unwrap();
        assert_eq!(eu.on().unwrap().interval, Duration::from_secs(1));
    }

    #[test]
    fn a_custom_endpoint_is_checked_only_with_an_explicit_settings_endpoint() {
        let custom = "https://hosted.rudderlabs.example";
        assert_eq!(
            spec(None, None, None).resolve("X", custom, false).unwrap(),
            KeyCheck::Off(KeyCheckOff::CustomEndpoint)
        );
        let explicit = spec(Some(true), None, Some("http://127.0.0.1:9/v1/"))
            .resolve("X", custom, false)
            .unwrap();
        assert_eq!(explicit.on().unwrap().settings_endpoint, "http://127.0.0.1:9");
        // A host that merely contains Segment's name is not Segment's.
        assert!(!is_segment_host("https://api.segment.io.example.com"));
        assert!(!is_segment_host("https://notsegmentapis.com"));
    }

    #[test]
    fn off_zero_and_bad_values_are_settled_at_parse_time() {
        assert_eq!(
            spec(Some(false), None, Some("https://cdn.segment.com"))
                .resolve("X", "https://api.segment.io", false)
                .unwrap(),
            KeyCheck::Off(KeyCheckOff::Disabled)
        );
        assert!(
            spec(None, Some(0), None)
                .resolve("X", "https://api.segment.io", false)
                .is_err()
        );
        assert!(
            spec(Some(false), None, None)
                .resolve("X", "https://api.segment.io", true)
                .is_err()
        );
        for broken in ["ftp://cdn.segment.com", "https://", "http://a b"] {
            let check = spec(None, None, Some(broken)).resolve("X", "https://api.segment.io", false);
            assert!(check.is_err(), "{broken}");
        }
        assert!(parse_switch("X", "maybe").is_err());
    }

    /// Issue 21, case 6's class for the settings endpoint: a bare host, or a URL copied with
    /// Segment's `/v1` or `/v1/projects` path, is its base URL.
    #[test]
    fn a_settings_endpoint_as_copied_is_its_base_url() {
        for copied in [
            "cdn.segment.com",
            " https://cdn.segment.com/ ",
            "https://cdn.segment.com/v1",
            "https://cdn.segment.com/V1/Projects/",
            "cdn.segment.com/v1/projects",
        ] {
            let check = spec(Some(true), None, Some(copied)).resolve("X", "https://api.segment.io", false);
            assert_eq!(
                check.unwrap().on().unwrap().settings_endpoint,
                "https://cdn.segment.com",
                "{copied}"
            );
        }
        let proxy = spec(Some(true), None, Some("https://proxy.example/projects"));
        let kept = proxy.resolve("X", "https://api.segment.io", false).unwrap();
        assert_eq!(kept.on().unwrap().settings_endpoint, "https://proxy.example/projects");
    }

    #[test]
    fn a_route_spec_inherits_what_it_does_not_set() {
        let global = spec(Some(false), Some(60), Some("https://cdn.example"));
        let route = spec(Some(true), None, None).or(&global);
        assert_eq!(
            (
                route.enabled,
                route.interval_seconds,
                route.settings_endpoint.as_deref()
            ),
            (Some(true), Some(60), Some("https://cdn.example"))
        );
    }
}
