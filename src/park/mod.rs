//! Parking: what Segment did not take goes to SQS in versioned envelopes. Every body is one SQS
//! stores (`sqs_safe`); an envelope over the queue's message limit is split in halves, and a
//! single value too large by itself lives in S3 behind an extended-client pointer
//! ([`PayloadPointer`]) that [`decode_resolving`] follows.

mod envelope;
mod fit;
mod offload;
mod s3;
mod sqs;
mod sqs_text;

pub(crate) use envelope::{DeadLetterReason, pack_messages};
pub use envelope::{Envelope, dead_letter_events, decode};
pub use offload::{
    LEGACY_PAYLOAD_SIZE_ATTRIBUTE, PAYLOAD_SIZE_ATTRIBUTE, PayloadPointer, PayloadStore, ReadError, StoreError,
    decode_resolving, payload_key,
};
pub(crate) use offload::{ResolveError, resolve_body};
pub use s3::S3PayloadStore;
pub(crate) use sqs::aws_sdk_config;
pub use sqs::{SqsQueue, client_from_env};
pub use sqs_text::sqs_allows;
