//! `/v1/batch` bodies, built by joining already-serialised messages.

use std::ops::Range;

use time::OffsetDateTime;

use crate::limits::{SEGMENT_MAX_BATCH_BYTES, SEGMENT_MAX_BATCH_MESSAGES};
use crate::pack::pack;
use crate::timestamp::iso8601_millis;

/// Bytes a batch body costs besides its messages.
const BATCH_OVERHEAD: usize = r#"{"batch":[],"sentAt":"0000-00-00T00:00:00.000Z"}"#.len();

/// Splits messages into batches Segment accepts whole: at most 480,000 bytes and 2,500 messages.
pub fn plan_batches<S: AsRef<str>>(messages: &[S]) -> Vec<Range<usize>> {
    pack(
        messages.iter().map(|m| m.as_ref().len()),
        BATCH_OVERHEAD,
        SEGMENT_MAX_BATCH_BYTES,
        SEGMENT_MAX_BATCH_MESSAGES,
    )
}

/// `{"batch":[...],"sentAt":"..."}`. `sent_at` is the time of this attempt: a stale `sentAt`
/// would shift Segment's corrected timestamp by the retry delay (<https://segment.com/docs/connections/spec/common/#timestamps>).
pub fn batch_body<S: AsRef<str>>(messages: &[S], sent_at: OffsetDateTime) -> Vec<u8> {
    let size: usize = messages.iter().map(|m| m.as_ref().len() + 1).sum();
    let mut body = Vec::with_capacity(size + BATCH_OVERHEAD);
    body.extend_from_slice(b"{\"batch\":[");
    for (i, message) in messages.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(message.as_ref().as_bytes());
    }
    body.extend_from_slice(b"],\"sentAt\":\"");
    body.extend_from_slice(iso8601_millis(sent_at).as_bytes());
    body.extend_from_slice(b"\"}");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_valid_json_with_a_fresh_sent_at() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let body = batch_body(&[r#"{"a":1}"#, r#"{"b":2}"#], at);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["batch"].as_array().unwrap().len(), 2);
        assert_eq!(value["sentAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(batch_body::<&str>(&[], at).len(), BATCH_OVERHEAD);
    }

    #[test]
    fn batches_stay_under_segments_limits() {
        let big = format!(r#"{{"p":"{}"}}"#, "x".repeat(31_000));
        let many: Vec<String> = (0..40).map(|_| big.clone()).collect();
        let at = OffsetDateTime::UNIX_EPOCH;
        let plan = plan_batches(&many);
        assert_eq!(plan.len(), 3);
        for range in plan {
            assert!(batch_body(&many[range], at).len() <= SEGMENT_MAX_BATCH_BYTES);
        }
        let small: Vec<&str> = vec!["{}"; 6_000];
        assert_eq!(plan_batches(&small), vec![0..2_500, 2_500..5_000, 5_000..6_000]);
    }
}
