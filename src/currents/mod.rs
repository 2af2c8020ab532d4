//! What Braze Currents sends: the `{"events":[...]}` body and the events inside it.

mod body;
mod event;
pub mod flat;
mod properties;

pub use body::{BodyError, parse_body};
pub use event::{Event, InvalidEvent, User, for_each_event_fast, parse_event};
pub use properties::{BorrowedText, Properties, text};
