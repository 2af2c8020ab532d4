//! currents-segment: takes Braze Currents batches and delivers them to Segment as `track`
//! events, parking what Segment does not take in SQS and replaying it for up to 48 hours.
//!
//! The pure core (`currents`, `mapping`, `transform`, `pack`, `segment::batch`, `replay::expiry`,
//! `replay::record`, `replay::report`, `keycheck::verdict`) does no I/O; outside effects sit
//! behind the traits in [`ports`].
//!
//! The public surface is what the four binaries (`ingest`, `replay`, `backfill`, the
//! `currents-segment` CLI), the integration tests in `tests/` and the benchmarks in `benches/`
//! use, and nothing more: every other item is `pub(crate)` or narrower, which rustc's
//! `unreachable_pub` lint keeps true. It is not a stable API for other crates.

#![warn(clippy::too_many_lines)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

#[macro_use]
mod string_enum;

pub mod aws_env;
pub mod backfill;
pub mod cli;
pub mod config;
pub mod currents;
pub mod deadline;
pub(crate) mod digest;
pub mod dlq;
pub mod ingest;
pub mod keycheck;
pub mod limits;
pub mod mapping;
pub mod metrics;
pub(crate) mod object_only;
pub mod pack;
pub mod park;
pub mod ports;
pub mod replay;
pub mod secret;
pub mod secrets;
pub mod segment;
pub(crate) mod settle;
pub mod telemetry;
pub(crate) mod text;
pub(crate) mod timestamp;
pub mod transform;
pub mod wiring;
