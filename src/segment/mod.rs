//! Delivering messages to Segment's HTTP API.

mod batch;
mod client;
mod deliver;
mod retry;

pub use batch::{batch_body, plan_batches};
pub use client::SegmentHttp;
pub use deliver::{BatchOutcome, Delivery, DeliveryReport, RetryPolicy, Undelivered, deliver_batch, deliver_messages};
pub use retry::{Disposition, classify, parse_retry_after};
