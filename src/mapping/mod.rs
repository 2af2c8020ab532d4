//! Mapping Currents events to Segment `track` messages: pure functions, no I/O, no clock.

mod names;
mod naming;
mod options;
mod pii;
mod track;

pub use names::{BuiltinName, CLASSIC_EVENT_COUNT, EVENT_NAMES, EVENT_TABLE, Moves, builtin};
pub(crate) use naming::segment_name;
pub use naming::{EffectiveName, SegmentName, effective_names};
pub use options::PiiMode;
pub(crate) use options::{EventNaming, MappingOptions, UnknownEventTypes};
pub(crate) use track::{Lifted, TrackInput, render_track};
