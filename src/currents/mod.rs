//! What Braze Currents sends: the `{"events":[...]}` body and the events inside it.

mod body;
mod event;
mod properties;

pub use body::{BodyError, parse_body};
pub use event::{Event, InvalidEvent, User, parse_event, parse_events_fast};
pub use properties::{BorrowedText, Properties, text};
