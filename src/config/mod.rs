//! Typed configuration, read once at cold start from environment variables.
//!
//! Parsing is a pure function over a lookup so tests never touch the process environment.

mod env;
mod routes;

pub use crate::mapping::{MappingOptions, PiiMode};
pub use env::{Config, ConfigError, QueueConfig, SegmentClientConfig};
pub use routes::{DEFAULT_ROUTE as DEFAULT_ROUTE_NAME, Route, RouteId, Routing, SegmentTarget};
