//! The `ingest` function: Braze Currents POSTs in, Segment batches out.

mod auth;
mod body;
mod error;
mod handler;
mod pipeline;
mod request;

pub(crate) use auth::{AuthError, authorize};
pub use body::{DecodedBody, decode_body};
pub(crate) use error::IngestError;
pub(crate) use pipeline::Counts;
pub use pipeline::Ingest;
pub use request::IngestRequest;
