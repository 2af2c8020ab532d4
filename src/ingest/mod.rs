//! The `ingest` function: Braze Currents POSTs in, Segment batches out.

mod auth;
mod body;
mod error;
mod handler;
mod pipeline;

pub use auth::{AuthError, authorize};
pub use body::decode_body;
pub use error::IngestError;
pub use handler::{IngestRequest, deadline_from_epoch_ms, reserve_for, route_from_path};
pub use pipeline::{Counts, Ingest};
