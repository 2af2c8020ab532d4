//! The `ingest` function: Braze Currents POSTs in, Segment batches out.

mod auth;
mod body;
mod error;
mod handler;
mod pipeline;
mod request;

pub use auth::{AuthError, authorize};
pub use body::decode_body;
pub use error::IngestError;
pub use pipeline::{Counts, Ingest};
pub use request::{IngestRequest, route_from_path};
