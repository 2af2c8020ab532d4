//! Typed configuration, read once at cold start from environment variables.
//!
//! Parsing is a pure function over a lookup so tests never touch the process environment.
//! [`Config`] is what every tool needs (routing and mapping, limits, timeouts);
//! [`DeliveryConfig`] adds what only delivering functions need, each value present by type.

mod delivery;
mod env;
mod key_check;
mod routes;

pub use crate::mapping::PiiMode;
pub use delivery::DeliveryConfig;
pub(crate) use delivery::QueueUrl;
pub use env::{Config, SegmentClientConfig};
pub(crate) use env::{ConfigError, VARIABLES};
pub use key_check::{KeyCheck, KeyCheckOff, KeyCheckOn};
pub(crate) use key_check::{host_of, is_segment_host};
pub use routes::SegmentTarget;
pub(crate) use routes::{DEFAULT_ROUTE as DEFAULT_ROUTE_NAME, DeliveryTargets, Route, RouteId, Routing};
