//! The SQS message body: a versioned JSON envelope that operators read and may hand-craft.
//! It carries the route name, never a write key or token.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;

use super::sqs_text::sqs_safe;
use crate::pack::pack;

pub(crate) const ENVELOPE_VERSION: u32 = 1;

/// A raw event bigger than this is kept as a string excerpt so its envelope still fits SQS.
const EVENT_EXCERPT_BYTES: usize = 16 * 1024;

crate::string_enum::string_enum! {
    /// Why something was dead-lettered rather than retried: the envelope's `reason`.
    pub enum DeadLetterReason {
        /// Older than `REPLAY_MAX_AGE_HOURS` since its first failure; never sent again.
        Expired = "expired",
        /// Raw Currents events that cannot become messages Segment would keep.
        InvalidEvent = "invalid_event",
        /// An S3 pointer whose object or bucket no longer exists (or whose object is not text);
        /// `body` keeps the pointer as received.
        PayloadMissing = "payload_missing",
        /// Messages Segment refused for good (a permanent 4xx), after bisection.
        PermanentFailure = "permanent_failure",
        /// An SQS body that is not an envelope, kept as received.
        Undecodable = "undecodable",
        /// The envelope's route is no longer configured.
        UnknownRoute = "unknown_route",
        /// An SQS body that could not be read (S3 failing) for as long as replay tries anything
        /// (see `replay::unreadable_given_up`); `body` keeps it as received.
        Unreadable = "unreadable",
    }
}

/// One parked or dead-lettered SQS message: a route's messages or events plus their delivery history, as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// Format version, currently 1.
    pub version: u32,
    /// The route the messages belong to.
    pub route: String,
    /// When delivery first failed; replay measures the 48-hour window from here.
    #[serde(with = "time::serde::rfc3339")]
    pub first_failed_at: OffsetDateTime,
    /// Segment requests made so far.
    #[serde(default)]
    pub attempts: u32,
    /// The last failure, at most 200 bytes.
    #[serde(default)]
    pub last_error: String,
    /// Segment `track` messages without `sentAt`.
    #[serde(default)]
    pub messages: Vec<Box<RawValue>>,
    /// Why it was dead-lettered; `None` while it is parked for retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DeadLetterReason>,
    /// The raw Currents events, for `invalid_event`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Box<RawValue>>,
    /// The SQS body as received, for `undecodable`, `payload_missing` and `unreadable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Segment's last `Retry-After` for these messages, in seconds, on a parked envelope:
    /// replay sends nothing until this long after RetryQueue accepted the envelope (its
    /// `SentTimestamp`). Never set on a dead letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

impl Envelope {
    /// An empty envelope; `last_error` is cut to 200 bytes.
    pub fn new(route: &str, first_failed_at: OffsetDateTime, attempts: u32, last_error: &str) -> Self {
        Self {
            version: ENVELOPE_VERSION,
            route: route.to_owned(),
            first_failed_at,
            attempts,
            last_error: short(last_error),
            messages: Vec::new(),
            reason: None,
            events: Vec::new(),
            body: None,
            retry_after_s: None,
        }
    }

    /// Marks the envelope dead-lettered for `reason`.
    pub fn dead(mut self, reason: DeadLetterReason) -> Self {
        self.reason = Some(reason);
        self.retry_after_s = None;
        self
    }

    /// The SQS body: compact JSON in which every character SQS refuses is a `\u` escape
    /// (see [`super::sqs_safe`]), so SQS stores it and it decodes to the same values.
    pub(crate) fn to_json(&self) -> String {
        // Every field serialises infallibly.
        let json = serde_json::to_string(self).unwrap_or_default();
        match sqs_safe(&json) {
            Cow::Borrowed(_) => json,
            Cow::Owned(safe) => safe,
        }
    }

    /// Raw Currents events plus Segment messages, plus the undecodable body if any: what an
    /// operator counts as the envelope's events.
    pub(crate) fn event_count(&self) -> usize {
        self.messages.len() + self.events.len() + usize::from(self.body.is_some())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("body is not an envelope: {0}")]
    Malformed(String),
    #[error("unsupported envelope version {0}")]
    Version(u32),
}

/// Reads an SQS body back into an envelope. Only a JSON object is one: an array is not read
/// field by field ([`crate::object_only`]).
pub fn decode(body: &str) -> Result<Envelope, EnvelopeError> {
    let crate::object_only::ObjectOnly(envelope) =
        serde_json::from_str::<crate::object_only::ObjectOnly<Envelope>>(body)
            .map_err(|e| EnvelopeError::Malformed(crate::text::json_error(&e)))?;
    if envelope.version != ENVELOPE_VERSION {
        return Err(EnvelopeError::Version(envelope.version));
    }
    Ok(envelope)
}

/// Packs messages into as few envelopes as fit `max_bytes` each.
pub(crate) fn pack_messages<S: AsRef<str>>(template: &Envelope, messages: &[S], max_bytes: usize) -> Vec<String> {
    let overhead = template.to_json().len() + 8;
    pack_into(
        template,
        messages,
        |m| m.as_ref(),
        overhead,
        max_bytes,
        |e| &mut e.messages,
    )
}

/// Packs raw Currents events into `invalid_event` envelopes of at most `max_bytes` each. Events
/// are kept whole: one too large for any envelope gets an envelope of its own, which the queue
/// adapter offloads to S3 (or, with no bucket, cuts down with `fit_within`).
pub fn dead_letter_events(template: &Envelope, events: &[&RawValue], max_bytes: usize) -> Vec<String> {
    // Measured with its `reason`, which every envelope this writes carries, and with the
    // `"events":[]` that the template (having none) leaves out; `pack` adds a comma per event.
    let template = template.clone().dead(DeadLetterReason::InvalidEvent);
    let overhead = template.to_json().len() + r#","events":[]"#.len();
    pack_into(&template, events, |e| e.get(), overhead, max_bytes, |e| &mut e.events)
}

/// Copies of `template`, each with a run of `values` in the list `slot` picks, of at most
/// `max_bytes` each once written. Values are sized as sent: escapes for characters SQS refuses
/// make a value longer.
fn pack_into<T>(
    template: &Envelope,
    values: &[T],
    text: impl Fn(&T) -> &str,
    overhead: usize,
    max_bytes: usize,
    slot: impl Fn(&mut Envelope) -> &mut Vec<Box<RawValue>>,
) -> Vec<String> {
    let sizes = values.iter().map(|v| sqs_safe(text(v)).len());
    let runs = pack(sizes, overhead, max_bytes, usize::MAX);
    runs.into_iter()
        .map(|range| {
            let mut envelope = template.clone();
            *slot(&mut envelope) = values[range].iter().filter_map(|v| raw(text(v).to_owned())).collect();
            envelope.to_json()
        })
        .collect()
}

/// The last resort for an envelope over `max_bytes` when no S3 bucket is configured: each raw
/// event, and an undecodable `body`, too large to fit is replaced by a string holding its
/// first 16 KiB. Returns the new body and how many values were cut, or `None` when `body` is
/// not an envelope (it is then cut as plain text by the caller's queue, which refuses it).
pub(crate) fn fit_within(body: &str, max_bytes: usize) -> Option<(String, usize)> {
    let mut envelope = decode(body).ok()?;
    let mut cut = 0;
    let budget = max_bytes.saturating_sub(1024);
    for event in &mut envelope.events {
        if event.get().len() > budget.min(EVENT_EXCERPT_BYTES) {
            *event = serde_json::value::to_raw_value(&excerpt(event.get())).ok()?;
            cut += 1;
        }
    }
    if let Some(text) = envelope.body.as_mut().filter(|b| b.len() > EVENT_EXCERPT_BYTES) {
        *text = excerpt(text);
        cut += 1;
    }
    Some((envelope.to_json(), cut))
}

fn excerpt(text: &str) -> String {
    let kept = crate::text::prefix_within(text, EVENT_EXCERPT_BYTES);
    format!("[truncated: event was {} bytes] {kept}", text.len())
}

fn raw(json: String) -> Option<Box<RawValue>> {
    RawValue::from_string(json).ok()
}

/// Keeps `last_error` short: it is for humans skimming a queue, not a log dump.
fn short(text: &str) -> String {
    crate::text::prefix_within(text, 200).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    #[test]
    fn envelopes_round_trip_and_match_the_documented_shape() {
        let json = pack_messages(
            &Envelope::new("default", at(), 2, "Segment answered HTTP 503"),
            &[r#"{"a":1}"#],
            10_000,
        );
        assert_eq!(json.len(), 1);
        assert_eq!(
            json[0],
            r#"{"version":1,"route":"default","first_failed_at":"2023-11-14T22:13:20Z","attempts":2,"last_error":"Segment answered HTTP 503","messages":[{"a":1}]}"#
        );
        let back = decode(&json[0]).unwrap();
        assert_eq!(back.first_failed_at, at());
        assert_eq!(back.messages[0].get(), r#"{"a":1}"#);
    }

    /// Issue 21, case 11's class: serde would read an envelope from an array, field by field.
    #[test]
    fn an_array_is_never_an_envelope() {
        let object = r#"{"version":1,"route":"default","first_failed_at":"2025-11-24T16:00:00Z"}"#;
        assert!(decode(object).is_ok());
        for array in [
            r#"[1,"default","2025-11-24T16:00:00Z"]"#,
            r#"[1,"default","2025-11-24T16:00:00Z",0,"",[]]"#,
        ] {
            assert!(matches!(decode(array), Err(EnvelopeError::Malformed(_))), "{array}");
        }
    }

    #[test]
    fn hand_written_envelopes_need_only_the_core_fields() {
        let envelope =
            decode(r#"{"version":1,"route":"r","first_failed_at":"2026-01-01T00:00:00Z","messages":[]}"#).unwrap();
        assert_eq!((envelope.attempts, envelope.last_error.as_str()), (0, ""));
        assert!(matches!(
            decode(r#"{"version":2,"route":"r","first_failed_at":"2026-01-01T00:00:00Z"}"#),
            Err(EnvelopeError::Version(2))
        ));
        assert!(matches!(decode("not json"), Err(EnvelopeError::Malformed(_))));
    }

    #[test]
    fn messages_split_across_envelopes_that_each_fit() {
        let message = format!(r#"{{"p":"{}"}}"#, "x".repeat(30_000));
        let messages = vec![message; 20];
        let envelopes = pack_messages(&Envelope::new("default", at(), 1, "x"), &messages, 65_536);
        assert_eq!(envelopes.len(), 10);
        let total: usize = envelopes.iter().map(|e| decode(e).unwrap().messages.len()).sum();
        assert_eq!(total, 20);
        assert!(envelopes.iter().all(|e| e.len() <= 65_536));
    }

    #[test]
    fn invalid_events_stay_whole_and_are_cut_only_as_a_last_resort() {
        let small = RawValue::from_string(r#"{"id":"e1"}"#.to_owned()).unwrap();
        let huge = RawValue::from_string(format!(r#"{{"id":"e2","p":"{}"}}"#, "y".repeat(100_000))).unwrap();
        let template = Envelope::new("default", at(), 0, "missing_time: `time` is missing");
        let envelopes = dead_letter_events(&template, &[&small, &huge], 65_536);
        assert_eq!(envelopes.len(), 2);
        let decoded: Vec<Envelope> = envelopes.iter().map(|e| decode(e).unwrap()).collect();
        assert_eq!(decoded[0].events[0].get(), r#"{"id":"e1"}"#);
        assert_eq!(decoded[1].events[0].get(), huge.get(), "kept whole for S3");
        assert!(decoded.iter().all(|e| e.reason == Some(DeadLetterReason::InvalidEvent)));

        let (cut, count) = fit_within(&envelopes[1], 65_536).unwrap();
        assert_eq!(count, 1);
        assert!(cut.len() <= 65_536);
        let back = decode(&cut).unwrap();
        assert!(
            back.events[0]
                .get()
                .starts_with("\"[truncated: event was 100018 bytes] {")
        );
        assert_eq!(fit_within(&envelopes[0], 65_536).unwrap(), (envelopes[0].clone(), 0));
    }

    #[test]
    fn an_undecodable_body_is_cut_only_when_over_the_excerpt_size() {
        let with_body = |text: String| {
            let mut envelope = Envelope::new("default", at(), 0, "undecodable");
            envelope.body = Some(text);
            envelope.to_json()
        };
        let small = with_body("not json".to_owned());
        assert_eq!(fit_within(&small, 65_536).unwrap(), (small.clone(), 0));
        let (cut, count) = fit_within(&with_body("z".repeat(100_000)), 65_536).unwrap();
        assert_eq!(count, 1);
        let body = decode(&cut).unwrap().body.unwrap();
        assert!(
            body.starts_with("[truncated: event was 100000 bytes] zzz"),
            "{}",
            &body[..60]
        );
        assert!(body.len() < EVENT_EXCERPT_BYTES + 64);
    }

    #[test]
    fn a_raw_uffff_in_an_invalid_event_is_escaped_in_the_envelope() {
        let event = RawValue::from_string("{\"id\":\"e\",\"properties\":{\"x\":\"a\u{FFFF}b\"}}".to_owned()).unwrap();
        let message = "{\"userId\":\"user-\u{FFFF}-7\"}";
        let template = Envelope::new("default", at(), 0, "x");
        let bodies = [
            dead_letter_events(&template, &[&event], 65_536),
            pack_messages(&template, &[message], 65_536),
        ]
        .concat();
        for body in &bodies {
            assert!(body.chars().all(super::super::sqs_text::sqs_allows), "{body}");
            assert!(body.contains(r"\uffff"));
        }
        let value: serde_json::Value = serde_json::from_str(decode(&bodies[1]).unwrap().messages[0].get()).unwrap();
        assert_eq!(value["userId"], "user-\u{FFFF}-7");
    }

    #[test]
    fn envelopes_fit_their_limit_after_escaping() {
        let message = format!(r#"{{"p":"{}"}}"#, "\u{FFFF}".repeat(10_000));
        let messages = vec![message; 6];
        let envelopes = pack_messages(&Envelope::new("default", at(), 1, "x"), &messages, 65_536);
        assert!(envelopes.iter().all(|e| e.len() <= 65_536), "escaped length counts");
        let total: usize = envelopes.iter().map(|e| decode(e).unwrap().messages.len()).sum();
        assert_eq!(total, 6);
    }

    /// Packing is exact to within the few bytes of slack it keeps: at every limit around an
    /// envelope's real size, every envelope fits, and a limit a little over the size of one
    /// envelope holding everything gives exactly one.
    #[test]
    fn packing_is_tight_at_the_byte_limit() {
        let template = Envelope::new("default", at(), 1, "Segment answered HTTP 503");
        let messages: Vec<String> = (0..5)
            .map(|i| format!(r#"{{"m":"{}"}}"#, "x".repeat(100 + i)))
            .collect();
        let events: Vec<Box<RawValue>> = messages.iter().map(|m| raw(m.clone()).unwrap()).collect();
        let events: Vec<&RawValue> = events.iter().map(AsRef::as_ref).collect();
        let whole = [
            pack_messages(&template, &messages, usize::MAX),
            dead_letter_events(&template, &events, usize::MAX),
        ];
        for (kind, one) in whole.iter().enumerate() {
            let size = one[0].len();
            for limit in size - 200..size + 200 {
                let packed = match kind {
                    0 => pack_messages(&template, &messages, limit),
                    _ => dead_letter_events(&template, &events, limit),
                };
                assert!(packed.iter().all(|e| e.len() <= limit), "kind {kind}, limit {limit}");
                if limit >= size + 16 {
                    assert_eq!(packed.len(), 1, "kind {kind}: {limit} bytes hold all {size}");
                }
            }
        }
    }

    #[test]
    fn an_envelope_counts_its_messages_its_events_and_its_body() {
        let mut envelope = Envelope::new("default", at(), 0, "x");
        envelope.messages = vec![raw("{}".into()).unwrap(), raw("{}".into()).unwrap()];
        envelope.events = vec![raw("{}".into()).unwrap(); 3];
        assert_eq!(envelope.event_count(), 5);
        envelope.body = Some("not json".into());
        assert_eq!(envelope.event_count(), 6);
    }

    /// The excerpt size is a limit, not a cut-off: a value of exactly 16 KiB is kept whole.
    #[test]
    fn values_of_exactly_the_excerpt_size_are_kept_whole() {
        let event_of = |len: usize| {
            let pad = len - r#"{"p":""}"#.len();
            raw(format!(r#"{{"p":"{}"}}"#, "e".repeat(pad))).unwrap()
        };
        for (len, cut) in [(EVENT_EXCERPT_BYTES, 0), (EVENT_EXCERPT_BYTES + 1, 1)] {
            let mut envelope = Envelope::new("default", at(), 0, "x");
            envelope.events = vec![event_of(len)];
            assert_eq!(envelope.events[0].get().len(), len);
            assert_eq!(
                fit_within(&envelope.to_json(), 1 << 20).unwrap().1,
                cut,
                "event of {len}"
            );
            let mut envelope = Envelope::new("default", at(), 0, "x");
            envelope.body = Some("b".repeat(len));
            assert_eq!(
                fit_within(&envelope.to_json(), 1 << 20).unwrap().1,
                cut,
                "body of {len}"
            );
        }
    }
}
