//! The `replay` function: re-delivers parked envelopes from RetryQueue for up to
//! `REPLAY_MAX_AGE_HOURS`, then dead-letters them as expired.

mod expiry;
mod handler;
mod record;

pub use expiry::{UNREADABLE_MAX_RECEIVES, is_expired, replay_delay, unreadable_given_up, visibility_backoff};
pub use handler::Replay;
