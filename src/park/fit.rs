//! Fitting envelopes to a queue's message limit, and reading SQS's "too large" refusals. Pure:
//! no I/O.
//!
//! A queue's `MaximumMessageSize` is 1,024 to 1,048,576 bytes (default 262,144), and SQS refuses
//! a larger message as a sender fault
//! (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html>,
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html>).
//! An envelope over the limit is split into halves until every half fits or holds one value;
//! splitting is lossless, so it comes before an S3 offload or an excerpt.

use super::envelope::{Envelope, decode};

/// The smallest `MaximumMessageSize` SQS allows a queue; no limit we learn goes below it.
pub(crate) const SQS_MIN_MESSAGE_BYTES: usize = 1_024;

/// `body` as two envelopes, each with half of its messages (or, for a dead letter, half of its
/// raw events) and the same route, history and reason. `None` when `body` is not an envelope
/// (an S3 pointer, say) or holds a single value, which only an offload or an excerpt can shrink.
pub(crate) fn split_in_halves(body: &str) -> Option<(String, String)> {
    let envelope = decode(body).ok()?;
    let halves = |first: Envelope, second: Envelope| Some((first.to_json(), second.to_json()));
    if envelope.messages.len() > 1 {
        let (mut first, mut second) = (envelope.clone(), envelope);
        let tail = first.messages.split_off(first.messages.len() / 2);
        second.messages = tail;
        // A dead letter's raw events stay with the first half, never in both.
        second.events.clear();
        second.body = None;
        return halves(first, second);
    }
    if envelope.events.len() > 1 && envelope.body.is_none() {
        let (mut first, mut second) = (envelope.clone(), envelope);
        second.events = first.events.split_off(first.events.len() / 2);
        second.messages.clear();
        return halves(first, second);
    }
    None
}

/// True when SQS refused a message, or a whole `SendMessageBatch`, for its size: the code
/// `BatchRequestTooLong` or `MessageTooLong`, or a message such as `InvalidParameterValue`'s
/// "Message must be shorter than 262144 bytes." or "Batch requests cannot be longer than …".
pub(crate) fn refused_for_size(code: &str, message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    code.contains("TooLong")
        || message.contains("must be shorter than")
        || message.contains("cannot be longer than")
        || message.contains("too long")
}

/// The byte limit a size refusal names ("shorter than 1024 bytes" → 1,024), at least
/// [`SQS_MIN_MESSAGE_BYTES`]. `None` when the message names none.
pub(crate) fn limit_named(message: &str) -> Option<usize> {
    let lower = message.to_ascii_lowercase();
    let at = ["shorter than ", "longer than "]
        .iter()
        .find_map(|phrase| lower.find(phrase).map(|i| i + phrase.len()))?;
    let digits: String = lower[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<usize>().ok().map(|n| n.max(SQS_MIN_MESSAGE_BYTES))
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;

    fn envelope(messages: usize, events: usize) -> Envelope {
        let raw = |i: usize| RawValue::from_string(format!(r#"{{"n":{i}}}"#)).unwrap();
        let mut envelope = Envelope::new(
            "default",
            time::OffsetDateTime::UNIX_EPOCH,
            3,
            "Segment answered HTTP 500",
        );
        envelope.messages = (0..messages).map(raw).collect();
        envelope.events = (0..events).map(raw).collect();
        envelope
    }

    #[test]
    fn halves_keep_every_message_once_in_order_with_the_same_history() {
        let (first, second) = split_in_halves(&envelope(5, 0).to_json()).unwrap();
        let (first, second) = (decode(&first).unwrap(), decode(&second).unwrap());
        let all: Vec<&str> = first.messages.iter().chain(&second.messages).map(|m| m.get()).collect();
        assert_eq!(
            all,
            [r#"{"n":0}"#, r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#, r#"{"n":4}"#]
        );
        assert_eq!((first.messages.len(), second.messages.len()), (2, 3));
        for half in [&first, &second] {
            assert_eq!((half.route.as_str(), half.attempts), ("default", 3));
            assert_eq!(half.last_error, "Segment answered HTTP 500");
        }
    }

    #[test]
    fn a_dead_letters_events_are_halved_and_keep_their_reason() {
        let dead = envelope(0, 3).dead(crate::park::DeadLetterReason::InvalidEvent);
        let (first, second) = split_in_halves(&dead.to_json()).unwrap();
        let (first, second) = (decode(&first).unwrap(), decode(&second).unwrap());
        assert_eq!(first.events.len() + second.events.len(), 3);
        assert_eq!(second.reason, Some(crate::park::DeadLetterReason::InvalidEvent));
    }

    #[test]
    fn a_single_value_or_a_pointer_cannot_be_split() {
        assert!(split_in_halves(&envelope(1, 0).to_json()).is_none());
        assert!(split_in_halves(&envelope(0, 1).to_json()).is_none());
        assert!(split_in_halves(r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{}]"#).is_none());
    }

    #[test]
    fn size_refusals_are_told_from_other_sender_faults() {
        let moto = "One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes.";
        assert!(refused_for_size("InvalidParameterValue", moto));
        assert!(refused_for_size("BatchRequestTooLong", ""));
        assert!(!refused_for_size("InvalidMessageContents", "Invalid characters found."));
        assert_eq!(limit_named(moto), Some(1_024));
        let batch = "Batch requests cannot be longer than 262144 bytes. You have sent 866955 bytes.";
        assert_eq!(limit_named(batch), Some(262_144));
        assert_eq!(limit_named("Message must be shorter than 10 bytes"), Some(1_024));
        assert_eq!(limit_named("Invalid characters found."), None);
    }
}
