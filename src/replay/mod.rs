//! The `replay` function: re-delivers parked envelopes from RetryQueue for up to
//! `REPLAY_MAX_AGE_HOURS`, then dead-letters them as expired.
//!
//! Read it in this order; each file uses only the ones before it:
//! - `expiry`: the replay window and the backoff, pure functions of the clock passed in;
//! - `record`: one SQS record as replay sees it, and the judgement of what to do with it;
//! - `report`: what a record ended as, and what an invocation adds up to (metrics, summary);
//! - `handler`: [`Replay`] and all it does: an invocation, then each record's path,
//!   decode → judge → deliver or re-map → settle.

mod expiry;
mod handler;
mod record;
mod report;

pub use expiry::{UNREADABLE_MAX_RECEIVES, is_expired, replay_delay, unreadable_given_up, visibility_backoff};
pub use handler::Replay;
