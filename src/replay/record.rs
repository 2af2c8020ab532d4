//! One RetryQueue record as replay sees it ([`ReplayRecord`]), and the judgement of what to do
//! with its envelope ([`judge`]). Pure: the reading and writing is in the handler.

use std::collections::HashMap;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsMessage, SqsMessageAttribute};
use time::OffsetDateTime;

use super::expiry::{is_expired, retry_after_left};
use crate::config::{RouteId, Routing};
use crate::dlq::{Attribute, Received};
use crate::park::{DeadLetterReason, Envelope, PayloadPointer, decode};

/// The parts of an SQS record replay needs.
#[derive(Debug, Clone)]
pub(crate) struct ReplayRecord {
    /// SQS's message id, echoed in a batch-item failure.
    pub message_id: String,
    /// Handle for changing the message's visibility.
    pub receipt_handle: String,
    /// The envelope, as SQS holds it.
    pub body: String,
    /// `ApproximateReceiveCount`, 1 on the first receive.
    pub receive_count: u32,
    /// `SentTimestamp`: when RetryQueue accepted the message; `None` when SQS did not say.
    pub sent_at: Option<OffsetDateTime>,
    /// The message attributes (`ExtendedPayloadSize` on an S3 pointer), kept so a body sent
    /// back unchanged keeps them too.
    pub attributes: HashMap<String, Attribute>,
}

impl From<SqsMessage> for ReplayRecord {
    fn from(message: SqsMessage) -> Self {
        let receive_count = message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        // Milliseconds since the epoch, as a string.
        let sent_at = message
            .attributes
            .get("SentTimestamp")
            .and_then(|ms| ms.parse::<i128>().ok())
            .and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).ok());
        Self {
            message_id: message.message_id.unwrap_or_default(),
            receipt_handle: message.receipt_handle.unwrap_or_default(),
            body: message.body.unwrap_or_default(),
            receive_count,
            sent_at,
            attributes: message
                .message_attributes
                .into_iter()
                .filter_map(|(name, attribute)| Some((name, attribute_of(attribute)?)))
                .collect(),
        }
    }
}

/// A Lambda SQS record's message attribute as one to send on (see [`Attribute::of`]).
fn attribute_of(attribute: SqsMessageAttribute) -> Option<Attribute> {
    let data_type = attribute.data_type.unwrap_or_else(|| "String".to_owned());
    Attribute::of(data_type, attribute.string_value, attribute.binary_value.map(|b| b.0))
}

impl ReplayRecord {
    /// The body to decode: the S3 pointer a redriven `payload_missing` or `unreadable` dead
    /// letter kept (so restoring the object, or S3 access, is enough to replay it), else the
    /// body as received.
    pub(crate) fn body_to_open(&self) -> String {
        kept_pointer(&self.body).unwrap_or_else(|| self.body.clone())
    }

    /// The record as a message to send on unchanged: its body and its message attributes.
    pub(crate) fn as_received(&self) -> Received {
        Received {
            message_id: self.message_id.clone(),
            receipt_handle: self.receipt_handle.clone(),
            body: self.body.clone(),
            attributes: self.attributes.clone(),
        }
    }

    /// Attempts before this one: the envelope's own, plus this record's earlier receives.
    pub(crate) fn prior_attempts(&self, envelope: &Envelope) -> u32 {
        envelope.attempts + self.receive_count.saturating_sub(1)
    }
}

/// The S3 pointer a `payload_missing` or `unreadable` dead letter kept under `body`, when
/// `body` (a record redriven from the DLQ) is such a dead letter.
fn kept_pointer(body: &str) -> Option<String> {
    let kept = [DeadLetterReason::PayloadMissing, DeadLetterReason::Unreadable];
    if !kept.iter().any(|reason| body.contains(reason.as_str())) {
        return None;
    }
    let envelope = decode(body).ok()?;
    let reason = envelope.reason?;
    let pointer = envelope.body.filter(|b| PayloadPointer::from_body(b).is_some())?;
    kept.contains(&reason).then_some(pointer)
}

/// What replay does with a decoded envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Past the replay window: dead-lettered as `expired`, never sent again.
    Expired,
    /// Nothing replay can act on: back to DeadLetterQueue as it came, for this reason.
    BackUnchanged(DeadLetterReason),
    /// Its route is no longer configured: dead-lettered as `unknown_route`.
    UnknownRoute,
    /// Delivered to this route, its raw events re-mapped through today's configuration first.
    Resend(RouteId),
    /// Parked with Segment's `Retry-After`, which has not passed: hidden this much longer,
    /// nothing sent.
    Wait(Duration),
}

/// Judges an envelope at `now`: expired once `max_age` has passed since its first failure;
/// waiting while Segment's `Retry-After` runs from `sent_at` (the record's `SentTimestamp`);
/// otherwise by its route (`routing`) and the reason it was dead-lettered, if it was.
pub(crate) fn judge(
    envelope: &Envelope,
    routing: &Routing,
    now: OffsetDateTime,
    max_age: Duration,
    sent_at: Option<OffsetDateTime>,
) -> Verdict {
    if is_expired(now, envelope.first_failed_at, max_age) {
        return Verdict::Expired;
    }
    let retry_after = envelope.retry_after_s.map(Duration::from_secs);
    if let Some(wait) = retry_after_left(retry_after, sent_at, now, envelope.first_failed_at, max_age) {
        return Verdict::Wait(wait);
    }
    match (routing.find(&envelope.route), envelope.reason) {
        (_, Some(DeadLetterReason::Undecodable)) => Verdict::BackUnchanged(DeadLetterReason::Undecodable),
        (None, Some(reason)) => Verdict::BackUnchanged(reason),
        (None, None) => Verdict::UnknownRoute,
        (Some(_), reason) if envelope.messages.is_empty() && envelope.events.is_empty() => {
            Verdict::BackUnchanged(reason.unwrap_or(DeadLetterReason::Undecodable))
        }
        (Some(route), _) => Verdict::Resend(route),
    }
}
