//! What Braze Currents sends: the `{"events":[...]}` body and the events inside it.
//!
//! [`parse_event`] is the specification: one event, parsed on its own, into a typed [`Event`] or
//! an [`InvalidEvent`] naming what is wrong. `for_each_event_fast` is an equivalent shortcut
//! for well-formed bodies (one pass over the whole body); whenever it meets anything unusual it
//! falls back to `parse_event`. The property test
//! `hostile::the_one_pass_path_matches_the_per_event_path` (and `generators`) checks they agree.
//! Both read the HTTP shape and the flat storage shape; the `flat` module gives the rule that tells them
//! apart and how a flat event is read.
//!
//! One job a file, each using only the files listed before it:
//! - `properties`: an event's `properties`, kept raw; `event`: the [`Event`] type and [`InvalidEvent`];
//! - `flat`: the storage shape (where each flat field goes; also used by backfill);
//! - `wire`: how one event is read: its fields, then its shape, then the HTTP or the flat reading;
//! - `diagnose`: names the field at fault when an event could not be read;
//! - `parse`: the entries, [`parse_event`] and `for_each_event_fast`; `body`: [`parse_body`].

mod body;
mod diagnose;
mod event;
pub(crate) mod flat;
mod parse;
mod properties;
#[cfg(test)]
mod tests;
mod wire;

pub(crate) use body::BodyError;
pub use body::parse_body;
pub use event::{Event, InvalidEvent, InvalidReason};
pub(crate) use parse::for_each_event_fast;
pub use parse::parse_event;
pub(crate) use properties::BorrowedText;
pub use properties::{Properties, text};
