//! Mapping Currents events to Segment `track` messages: pure functions, no I/O, no clock.

mod names;
mod naming;
mod options;
mod pii;
mod timestamp;
mod track;

pub use names::{BuiltinName, CLASSIC_EVENT_COUNT, EVENT_NAMES, EVENT_TABLE, EventSpec, Moves, builtin};
pub use naming::{EffectiveName, SegmentName, effective_names, segment_name};
pub use options::{EventNaming, MappingOptions, PiiMode, UnknownEventTypes};
pub use pii::{hash_email, hash_phone, hash_text};
pub use timestamp::{iso8601_millis, iso8601_seconds};
pub use track::{Lifted, TrackInput, render_track, write_track};
