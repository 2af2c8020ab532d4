//! What Braze Currents sends: the `{"events":[...]}` body and the events inside it.

mod body;
mod event;
pub(crate) mod flat;
mod properties;

pub(crate) use body::BodyError;
pub use body::parse_body;
pub(crate) use event::for_each_event_fast;
pub use event::{Event, InvalidEvent, parse_event};
pub(crate) use properties::BorrowedText;
pub use properties::{Properties, text};
