//! Limits imposed by the services around us. Each constant names its source.

/// Segment rejects an event over 32 KB inside `/v1/batch` (HTTP API docs, "Max request size").
/// Segment's own libraries read "KB" differently, so we take the smallest reading: 32,000 bytes.
pub(crate) const SEGMENT_MAX_MESSAGE_BYTES: usize = 32_000;

/// Segment rejects a `/v1/batch` body over 500 KB (HTTP API docs, "Batch"). analytics-next caps
/// at 480 KiB; we keep 480,000 bytes for headroom under every reading of "KB".
pub(crate) const SEGMENT_MAX_BATCH_BYTES: usize = 480_000;

/// Segment answers 200 but drops every event of a batch holding more than 2,500
/// (HTTP API docs, "Errors").
pub(crate) const SEGMENT_MAX_BATCH_MESSAGES: usize = 2_500;

/// Segment drops a message whose `messageId` is 100 characters or longer (HTTP API docs, "Errors").
pub(crate) const SEGMENT_MAX_MESSAGE_ID_CHARS: usize = 100;

/// `SendMessageBatch` takes at most 10 entries (SQS developer guide, "batch actions").
pub const SQS_MAX_BATCH_ENTRIES: usize = 10;

/// `SendMessageBatch` takes at most 1 MiB in total (SQS developer guide, "batch actions").
pub const SQS_MAX_BATCH_BYTES: usize = 1_048_576;

/// A queue's default maximum message size (SQS quotas); a queue can be raised to 1 MiB.
pub const SQS_DEFAULT_MESSAGE_BYTES: usize = 262_144;

/// The largest message size any SQS queue accepts (SQS quotas, raised from 256 KiB in 2025).
pub(crate) const SQS_MAX_MESSAGE_BYTES: usize = 1_048_576;

/// SQS caps a visibility timeout at 12 hours (SQS quotas).
pub(crate) const SQS_MAX_VISIBILITY_SECS: u64 = 43_200;

/// A synchronous Lambda invocation carries at most 6 MB of request payload (Lambda quotas), so
/// anything larger never reaches us uncompressed; we use it as the default body cap.
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// Largest `time` we turn into an ISO-8601 timestamp: 9999-12-31T23:59:59Z. A millisecond value
/// (the classic Currents mistake that yields dates in 1970 or year 50,000) lands above it.
pub(crate) const MAX_EVENT_TIME_SECS: i64 = 253_402_300_799;
