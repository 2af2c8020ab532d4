//! Delivering messages to Segment's HTTP API.

mod batch;
mod client;
mod deliver;
mod retry;

pub use batch::{batch_body, plan_batches};
pub use client::SegmentHttp;
pub use deliver::{BatchOutcome, Delivery, DeliveryReport, RetryPolicy, deliver_batch, deliver_messages};
pub(crate) use deliver::{SendsToSegment, Undelivered};
