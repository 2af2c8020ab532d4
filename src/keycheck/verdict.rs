//! The pure half of the write-key check: what a settings answer means ([`judge`]), and what a
//! route does with a verdict ([`plan`]): send (maybe to the host the settings name) or hold.

use std::borrow::Cow;

use serde_json::Value;

use crate::config::{KeyCheck, SegmentTarget, host_of, is_segment_host};
use crate::ports::SettingsAnswer;

/// What the settings CDN says of a write key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyVerdict {
    /// The CDN knows the key. `ingestion_host` is the host its settings name for ingestion
    /// (`integrations["Segment.io"].apiHost` without `/v1`), when they name one.
    Valid {
        /// E.g. `events.eu1.segmentapis.com`, lower-cased, no scheme, port or path.
        ingestion_host: Option<String>,
    },
    /// The CDN answered 404 with Segment's invalid-key text: Segment would drop every event.
    Invalid,
    /// Anything else: deliveries go out as usual (fail open). The text says why.
    Unknown(String),
}

/// Why a route's messages are held (parked, never sent) instead of delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// Segment's settings CDN does not know the route's write key.
    WriteKeyInvalid,
    /// The source ingests in another region than the host the route sends to.
    RegionMismatch {
        /// The host the route sends to.
        sending: String,
        /// The host the source's settings name.
        ingests_at: String,
    },
}

impl Hold {
    /// The stable code: `write_key_invalid` or `region_mismatch`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WriteKeyInvalid => "write_key_invalid",
            Self::RegionMismatch { .. } => "region_mismatch",
        }
    }

    /// The `last_error` of a held envelope: the cause and the route, never the key.
    pub fn last_error(&self, route: &str) -> String {
        match self {
            Self::WriteKeyInvalid => format!(
                "write_key_invalid: Segment's settings CDN does not know the write key of route `{route}` \
                 (404); held, not sent, until the key is fixed"
            ),
            Self::RegionMismatch { sending, ingests_at } => format!(
                "region_mismatch: route `{route}` sends to {sending} but its Segment source ingests at \
                 {ingests_at}; held, not sent, until the route's region is fixed"
            ),
        }
    }
}

/// What a route does with its messages now.
#[derive(Debug, Clone)]
pub enum Plan<'t> {
    /// Deliver to this target (the configured one, or the host `SEGMENT_REGION=auto` follows).
    Send(Cow<'t, SegmentTarget>),
    /// Park them on RetryQueue with the hold's `last_error`; send nothing.
    Hold(Hold),
}

/// Largest settings body read, in bytes. Segment's settings for a source with many
/// destinations run to tens of KB; anything bigger is not what we expect ("unknown").
pub const SETTINGS_MAX_BYTES: usize = 1 << 20;

/// Segment's 404 body for an unknown key is `Cannot GET - Invalid path or write key provided.`
/// (segmentio/analytics.js-integrations, `compiler/scripts/settings.js`, tests for the same text).
const INVALID_KEY_TEXT: &str = "invalid path or write key";

/// The verdict an answer gives. Only a 404 carrying Segment's invalid-key text is `Invalid`;
/// a body that is not a JSON object, or whose `integrations["Segment.io"]` or `apiHost` has
/// the wrong type, is `Unknown`.
pub fn judge(answer: &SettingsAnswer) -> KeyVerdict {
    match answer {
        SettingsAnswer::NotFound(body) if body.to_ascii_lowercase().contains(INVALID_KEY_TEXT) => KeyVerdict::Invalid,
        SettingsAnswer::NotFound(_) => {
            KeyVerdict::Unknown("settings answered 404 without Segment's invalid-key text".into())
        }
        SettingsAnswer::Failed(reason) => KeyVerdict::Unknown(reason.clone()),
        SettingsAnswer::Found(body) => match ingestion_host(body) {
            Ok(ingestion_host) => KeyVerdict::Valid { ingestion_host },
            Err(reason) => KeyVerdict::Unknown(reason.to_owned()),
        },
    }
}

/// `integrations["Segment.io"].apiHost` as a bare host, `None` when the settings name none.
fn ingestion_host(body: &[u8]) -> Result<Option<String>, &'static str> {
    let settings: Value = serde_json::from_slice(body).map_err(|_| "settings are not JSON")?;
    let settings = settings.as_object().ok_or("settings are not a JSON object")?;
    let Some(integrations) = settings.get("integrations") else {
        return Ok(None);
    };
    let integrations = integrations
        .as_object()
        .ok_or("settings' integrations is not an object")?;
    let Some(segment) = integrations.get("Segment.io") else {
        return Ok(None);
    };
    let segment = segment.as_object().ok_or("settings' Segment.io is not an object")?;
    match segment.get("apiHost") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(host)) => bare_host(host).map(Some).ok_or("settings' apiHost is not a host"),
        Some(_) => Err("settings' apiHost is not a string"),
    }
}

/// `events.eu1.segmentapis.com/v1` (or with a scheme) → `events.eu1.segmentapis.com`.
fn bare_host(api_host: &str) -> Option<String> {
    let text = api_host.trim();
    let with_scheme = if text.contains("://") {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(format!("https://{text}"))
    };
    host_of(&with_scheme).filter(|host| !host.is_empty())
}

/// The workspace region a Segment ingestion host belongs to; `None` for hosts that are not
/// Segment's (never a mismatch). EU hosts carry an `eu<N>` label (`events.eu1.segmentapis.com`
/// today, `in.eu2.segmentapis.com` for a while in 2024); every other Segment host, the regional
/// edge hosts US workspaces could pick (`in.ap1…`, `in.au1…`) included, serves US workspaces
/// (segmentio/segment-docs, `src/guides/regional-segment.md`; README, "Regions").
fn workspace_region(host: &str) -> Option<&'static str> {
    let segment = host == "api.segment.io" || host.ends_with(".segmentapis.com");
    let eu = host.split('.').any(|label| {
        label
            .strip_prefix("eu")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    match (segment, eu) {
        (false, _) => None,
        (true, true) => Some("eu"),
        (true, false) => Some("us"),
    }
}

/// What a route does with its messages, given its check and the freshest verdict (`None` when
/// the route is not checked).
pub fn plan<'t>(target: &'t SegmentTarget, check: &KeyCheck, verdict: Option<&KeyVerdict>) -> Plan<'t> {
    let follow_region = check.on().is_some_and(|on| on.follow_region);
    match verdict {
        None | Some(KeyVerdict::Unknown(_)) | Some(KeyVerdict::Valid { ingestion_host: None }) => {
            Plan::Send(Cow::Borrowed(target))
        }
        Some(KeyVerdict::Invalid) => Plan::Hold(Hold::WriteKeyInvalid),
        Some(KeyVerdict::Valid {
            ingestion_host: Some(host),
        }) => {
            let followed = format!("https://{host}");
            if follow_region && is_segment_host(&followed) {
                return Plan::Send(Cow::Owned(SegmentTarget {
                    endpoint: followed,
                    write_key: target.write_key.clone(),
                }));
            }
            let sending = host_of(&target.endpoint).unwrap_or_default();
            match (workspace_region(&sending), workspace_region(host)) {
                (Some(ours), Some(theirs)) if ours != theirs => Plan::Hold(Hold::RegionMismatch {
                    sending,
                    ingests_at: host.clone(),
                }),
                _ => Plan::Send(Cow::Borrowed(target)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{KeyCheckOff, KeyCheckOn};
    use crate::secret::Secret;

    fn found(body: &str) -> KeyVerdict {
        judge(&SettingsAnswer::Found(body.as_bytes().to_vec()))
    }

    fn target(endpoint: &str) -> SegmentTarget {
        SegmentTarget {
            endpoint: endpoint.to_owned(),
            write_key: Secret::new("wk"),
        }
    }

    fn on(follow_region: bool) -> KeyCheck {
        KeyCheck::On(KeyCheckOn {
            settings_endpoint: "https://cdn.segment.com".into(),
            interval: Duration::from_secs(300),
            follow_region,
        })
    }

    #[test]
    fn only_segments_404_text_is_invalid() {
        let segment = SettingsAnswer::NotFound("Cannot GET - Invalid path or write key provided.".into());
        assert_eq!(judge(&segment), KeyVerdict::Invalid);
        assert!(matches!(
            judge(&SettingsAnswer::NotFound("<html>Not Found</html>".into())),
            KeyVerdict::Unknown(_)
        ));
        assert!(matches!(
            judge(&SettingsAnswer::Failed("HTTP 503".into())),
            KeyVerdict::Unknown(_)
        ));
    }

    #[test]
    fn the_ingestion_host_is_read_from_segment_io_api_host() {
        let eu = r#"{"integrations":{"Segment.io":{"apiKey":"k","apiHost":"events.eu1.segmentapis.com/v1"}}}"#;
        assert_eq!(
            found(eu),
            KeyVerdict::Valid {
                ingestion_host: Some("events.eu1.segmentapis.com".into())
            }
        );
        let schemed = r#"{"integrations":{"Segment.io":{"apiHost":"https://API.segment.io/v1"}}}"#;
        assert_eq!(
            found(schemed),
            KeyVerdict::Valid {
                ingestion_host: Some("api.segment.io".into())
            }
        );
        for none in [
            r#"{}"#,
            r#"{"integrations":{}}"#,
            r#"{"integrations":{"Segment.io":{"apiHost":null}}}"#,
        ] {
            assert_eq!(found(none), KeyVerdict::Valid { ingestion_host: None }, "{none}");
        }
    }

    #[test]
    fn bodies_of_the_wrong_shape_are_unknown_never_a_panic() {
        for body in [
            "",
            "not json",
            "[1,2]",
            r#"{"integrations":[]}"#,
            r#"{"integrations":{"Segment.io":"x"}}"#,
            r#"{"integrations":{"Segment.io":{"apiHost":7}}}"#,
            r#"{"integrations":{"Segment.io":{"apiHost":""}}}"#,
            r#"{"integrations":{"Segment.io":{"apiHost":"#,
        ] {
            assert!(matches!(found(body), KeyVerdict::Unknown(_)), "{body}");
        }
        assert!(matches!(
            judge(&SettingsAnswer::Found(vec![0xff, 0xfe])),
            KeyVerdict::Unknown(_)
        ));
    }

    #[test]
    fn a_key_segment_does_not_know_is_held_and_unknown_fails_open() {
        let us = target("https://api.segment.io");
        assert!(matches!(
            plan(&us, &on(false), Some(&KeyVerdict::Invalid)),
            Plan::Hold(Hold::WriteKeyInvalid)
        ));
        let unknown = KeyVerdict::Unknown("timeout".into());
        assert!(matches!(
            plan(&us, &on(false), Some(&unknown)),
            Plan::Send(Cow::Borrowed(_))
        ));
        assert!(matches!(
            plan(&us, &KeyCheck::Off(KeyCheckOff::Disabled), None),
            Plan::Send(_)
        ));
    }

    #[test]
    fn an_eu_source_is_never_sent_to_the_us_host_nor_the_reverse() {
        let eu_source = KeyVerdict::Valid {
            ingestion_host: Some("events.eu1.segmentapis.com".into()),
        };
        let us_source = KeyVerdict::Valid {
            ingestion_host: Some("api.segment.io".into()),
        };
        let (us, eu) = (
            target("https://api.segment.io"),
            target("https://events.eu1.segmentapis.com"),
        );
        let Plan::Hold(hold) = plan(&us, &on(false), Some(&eu_source)) else {
            panic!("EU source on the US host")
        };
        assert_eq!(hold.code(), "region_mismatch");
        let text = hold.last_error("brand-a");
        assert!(
            text.contains("api.segment.io")
                && text.contains("events.eu1.segmentapis.com")
                && text.contains("`brand-a`"),
            "{text}"
        );
        assert!(matches!(
            plan(&eu, &on(false), Some(&us_source)),
            Plan::Hold(Hold::RegionMismatch { .. })
        ));
        assert!(matches!(plan(&eu, &on(false), Some(&eu_source)), Plan::Send(_)));
        assert!(matches!(plan(&us, &on(false), Some(&us_source)), Plan::Send(_)));
        // US workspaces' regional hosts are US hosts; a 2024 EU host is an EU host.
        for (host, held) in [
            ("in.ap1.segmentapis.com", false),
            ("in.au1.segmentapis.com", false),
            ("in.eu2.segmentapis.com", true),
        ] {
            let verdict = KeyVerdict::Valid {
                ingestion_host: Some(host.into()),
            };
            assert_eq!(
                matches!(plan(&us, &on(false), Some(&verdict)), Plan::Hold(_)),
                held,
                "{host}"
            );
        }
        // A stand-in's host is in no region: never a mismatch.
        assert!(matches!(
            plan(&target("http://127.0.0.1:9"), &on(false), Some(&eu_source)),
            Plan::Send(_)
        ));
    }

    #[test]
    fn region_auto_follows_the_host_the_settings_name() {
        let eu_source = KeyVerdict::Valid {
            ingestion_host: Some("events.eu1.segmentapis.com".into()),
        };
        let us = target("https://api.segment.io");
        let Plan::Send(followed) = plan(&us, &on(true), Some(&eu_source)) else {
            panic!("auto follows")
        };
        assert_eq!(followed.endpoint, "https://events.eu1.segmentapis.com");
        assert_eq!(followed.write_key.expose(), "wk");
        // Never to a host that is not Segment's.
        let odd = KeyVerdict::Valid {
            ingestion_host: Some("collector.example.com".into()),
        };
        let Plan::Send(kept) = plan(&us, &on(true), Some(&odd)) else {
            panic!("not held")
        };
        assert_eq!(kept.endpoint, "https://api.segment.io");
    }
}
