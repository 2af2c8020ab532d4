//! Parking: what Segment did not take goes to SQS in versioned envelopes. Every body is one SQS
//! stores ([`sqs_safe`]); bodies over the message limit live in S3 behind extended-client
//! pointers ([`PayloadPointer`]) that [`decode_resolving`] follows.

mod envelope;
mod offload;
mod s3;
mod sqs;
mod sqs_text;

pub use envelope::{
    DeadLetterReason, ENVELOPE_VERSION, Envelope, EnvelopeError, dead_letter_events, decode, fit_within, pack_messages,
};
pub use offload::{
    PAYLOAD_SIZE_ATTRIBUTE, POINTER_CLASS, PayloadPointer, PayloadStore, ResolveError, StoreError, decode_resolving,
    payload_key, resolve_body,
};
pub use s3::S3PayloadStore;
pub use sqs::{SqsQueue, aws_sdk_config, client_from_env};
pub use sqs_text::{ascii_only, sqs_allows, sqs_safe};
