//! Mapping Currents events to Segment `track` messages: pure functions, no I/O, no clock.

mod names;
mod options;
mod pii;
mod timestamp;
mod track;

pub use names::{CLASSIC_EVENT_COUNT, EVENT_NAMES, builtin_name};
pub use options::{MappingOptions, PiiMode};
pub use pii::{hash_email, hash_phone, hash_text};
pub use timestamp::{iso8601_millis, iso8601_seconds};
pub use track::{Lifted, TrackInput, write_track};
