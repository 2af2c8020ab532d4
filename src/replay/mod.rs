//! The `replay` function: re-delivers parked envelopes from RetryQueue for up to
//! `REPLAY_MAX_AGE_HOURS`, then dead-letters them as expired.

mod expiry;
mod handler;
mod record;

pub use expiry::{is_expired, replay_delay, visibility_backoff};
pub use handler::Replay;
