//! What Braze Currents sends: the `{"events":[...]}` body and the events inside it.
//!
//! [`parse_event`] is the specification: one event, parsed on its own, into a typed [`Event`] or
//! an [`InvalidEvent`] naming what is wrong. `for_each_event_fast` is an equivalent shortcut
//! for well-formed bodies (one pass over the whole body); whenever it meets anything unusual it
//! falls back to `parse_event`. The property test
//! `hostile::the_one_pass_path_matches_the_per_event_path` (and `generators`) checks they agree.
//! Both read the HTTP shape and the flat storage shape; the `flat` module gives the rule that tells them
//! apart and how a flat event is read.

mod body;
mod event;
pub(crate) mod flat;
mod properties;

pub(crate) use body::BodyError;
pub use body::parse_body;
pub(crate) use event::for_each_event_fast;
pub use event::{Event, InvalidEvent, InvalidReason, parse_event};
pub(crate) use properties::BorrowedText;
pub use properties::{Properties, text};
