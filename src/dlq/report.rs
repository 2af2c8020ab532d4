//! The pure side of the `dlq` tool: what a dead letter holds, counts by reason, route and age,
//! and PII redaction for `peek`. No I/O; the clock is passed in.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::park::{Envelope, PayloadPointer, decode};

/// One dead letter, its S3 pointer (if it was offloaded) resolved.
#[derive(Debug)]
pub struct Inspected {
    pub message_id: String,
    /// The full body: the SQS body, or the S3 object it points at.
    pub body: String,
    pub pointer: Option<PayloadPointer>,
    /// `None` when the body is not an envelope.
    pub envelope: Option<Envelope>,
    /// The body is an S3 pointer whose payload is gone for good (deleted object or bucket);
    /// `body` is then the pointer.
    pub dangling: bool,
}

impl Inspected {
    pub fn new(message_id: String, body: String, pointer: Option<PayloadPointer>) -> Self {
        let envelope = decode(&body).ok();
        Self {
            message_id,
            body,
            pointer,
            envelope,
            dangling: false,
        }
    }

    /// A letter whose S3 pointer `body` can never be followed: counted as one event under
    /// `payload_missing`, shown and exported as the pointer, never redriven.
    pub fn dangling(message_id: String, body: String, pointer: Option<PayloadPointer>) -> Self {
        Self {
            dangling: true,
            envelope: None,
            ..Self::new(message_id, body, pointer)
        }
    }

    /// The envelope's reason; `retries_exhausted` for an envelope SQS moved here itself (it
    /// carries no reason), `payload_missing` for an S3 pointer whose payload is gone,
    /// `not_an_envelope` for any other body that is not one.
    pub fn reason(&self) -> &str {
        match &self.envelope {
            Some(envelope) => envelope.reason.map_or("retries_exhausted", |r| r.as_str()),
            None if self.dangling => crate::park::DeadLetterReason::PayloadMissing.as_str(),
            None => "not_an_envelope",
        }
    }

    /// The envelope's route, or `unknown` for a body that is not an envelope.
    pub fn route(&self) -> &str {
        self.envelope.as_ref().map_or("unknown", |e| e.route.as_str())
    }

    /// Events in the envelope; a body that is not an envelope counts as one.
    pub fn events(&self) -> usize {
        self.envelope.as_ref().map_or(1, Envelope::event_count)
    }
}

/// `dlq stats --json`: `{"total": <envelopes>, "events": <events>, "by_reason": {reason:
/// events}, "by_route": {route: events}, "by_age": {bucket: events},
/// "oldest_first_failed_at": "<RFC 3339>" | null}`. Age buckets: `under_1h`, `1h_to_24h`,
/// `1d_to_7d`, `over_7d`, measured from `first_failed_at`.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    /// Envelopes read.
    pub total: usize,
    /// Events in them.
    pub events: usize,
    /// Reason → events.
    pub by_reason: BTreeMap<String, usize>,
    /// Route → events.
    pub by_route: BTreeMap<String, usize>,
    /// Age bucket → events.
    pub by_age: BTreeMap<String, usize>,
    /// Earliest `first_failed_at`, if any.
    #[serde(with = "time::serde::rfc3339::option")]
    pub oldest_first_failed_at: Option<OffsetDateTime>,
}

impl Stats {
    /// Counts one dead letter, its age measured at `now`.
    pub fn add(&mut self, letter: &Inspected, now: OffsetDateTime) {
        let events = letter.events();
        self.total += 1;
        self.events += events;
        *self.by_reason.entry(letter.reason().to_owned()).or_default() += events;
        *self.by_route.entry(letter.route().to_owned()).or_default() += events;
        if let Some(envelope) = &letter.envelope {
            let hours = (now - envelope.first_failed_at).whole_hours();
            let bucket = match hours {
                ..1 => "under_1h",
                1..24 => "1h_to_24h",
                24..168 => "1d_to_7d",
                _ => "over_7d",
            };
            *self.by_age.entry(bucket.to_owned()).or_default() += events;
            let first = envelope.first_failed_at;
            self.oldest_first_failed_at = Some(self.oldest_first_failed_at.map_or(first, |o| o.min(first)));
        }
    }

    /// The human form of `dlq stats`.
    pub fn render(&self) -> String {
        let mut out = format!("{} envelopes, {} events\n", self.total, self.events);
        for (title, counts) in [
            ("by reason", &self.by_reason),
            ("by route", &self.by_route),
            ("by age", &self.by_age),
        ] {
            out.push_str(title);
            out.push('\n');
            for (key, count) in counts {
                out.push_str(&format!("  {key:<24} {count}\n"));
            }
        }
        if let Some(oldest) = self.oldest_first_failed_at.and_then(|t| t.format(&Rfc3339).ok()) {
            out.push_str(&format!("oldest first_failed_at {oldest}\n"));
        }
        out
    }
}

/// Keys whose values are personal data, in Currents events and Segment messages alike.
const PII_KEYS: &[&str] = &[
    "userId",
    "anonymousId",
    "external_user_id",
    "user_id",
    "braze_id",
    "device_id",
    "email",
    "email_address",
    "phone",
    "phone_number",
    "to_phone_number",
    "from_phone_number",
    "user_phone_number",
    "inbound_phone_number",
    "message_body",
    "ip",
    "ip_address",
    "first_name",
    "last_name",
    "address",
    "user_agent",
    "body",
    "undecodable_event_base64",
];

/// `dlq peek` without `--show-pii`: the envelope as JSON with every value under a PII key,
/// any string holding `@`, and every embedded raw body replaced by `"[redacted]"`.
pub(crate) fn redact(letter: &Inspected) -> Value {
    if letter.envelope.is_none() {
        return Value::String(format!(
            "[redacted: {} bytes that are not an envelope]",
            letter.body.len()
        ));
    }
    let mut value = serde_json::from_str(&letter.body).unwrap_or(Value::Null);
    redact_value(&mut value);
    value
}

fn redact_value(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if PII_KEYS.contains(&key.as_str()) && !inner.is_null() {
                    *inner = Value::String("[redacted]".to_owned());
                } else {
                    redact_value(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        Value::String(text) if text.contains('@') => *text = "[redacted]".to_owned(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(body: &str) -> Inspected {
        Inspected::new("m".into(), body.into(), None)
    }

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    #[test]
    fn stats_count_envelopes_and_events_by_reason_route_and_age() {
        let mut stats = Stats::default();
        let now = at("2026-01-08T00:00:00Z");
        for body in [
            r#"{"version":1,"route":"a","first_failed_at":"2026-01-07T23:30:00Z","reason":"invalid_event","events":[{},{}]}"#,
            r#"{"version":1,"route":"b","first_failed_at":"2026-01-01T00:00:00Z","reason":"expired","messages":[{}]}"#,
            r#"{"version":1,"route":"a","first_failed_at":"2026-01-07T12:00:00Z","messages":[{}]}"#,
            "garbage",
        ] {
            stats.add(&letter(body), now);
        }
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "total": 4, "events": 5,
                "by_reason": {"invalid_event": 2, "expired": 1, "retries_exhausted": 1, "not_an_envelope": 1},
                "by_route": {"a": 3, "b": 1, "unknown": 1},
                "by_age": {"under_1h": 2, "1h_to_24h": 1, "over_7d": 1},
                "oldest_first_failed_at": "2026-01-01T00:00:00Z"
            })
        );
        assert!(stats.render().contains("invalid_event"));
    }

    #[test]
    fn peek_redacts_identities_and_emails_everywhere() {
        let body = r#"{"version":1,"route":"a","first_failed_at":"2026-01-01T00:00:00Z","reason":"invalid_event",
            "events":[{"id":"e1","user":{"external_user_id":"u-7"},"properties":{"email_address":"a@b.c","note":"x@y.z","n":1}}]}"#;
        let shown = redact(&letter(body)).to_string();
        assert!(
            !shown.contains("u-7") && !shown.contains("a@b.c") && !shown.contains("x@y.z"),
            "{shown}"
        );
        assert!(shown.contains(r#""id":"e1""#) && shown.contains(r#""n":1"#));
        assert_eq!(
            redact(&letter("secret@example.com")).as_str().unwrap(),
            "[redacted: 18 bytes that are not an envelope]"
        );
    }
}
