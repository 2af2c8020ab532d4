//! Parking: what Segment did not take goes to SQS in versioned envelopes.

mod envelope;
mod sqs;

pub use envelope::{
    DeadLetterReason, ENVELOPE_VERSION, Envelope, EnvelopeError, dead_letter_events, decode, pack_messages,
};
pub use sqs::{SqsQueue, aws_sdk_config, client_from_env};
