//! currents-segment: takes Braze Currents batches and delivers them to Segment as `track`
//! events, parking what Segment does not take in SQS and replaying it for up to 48 hours.
//!
//! The pure core (`currents`, `mapping`, `transform`, `pack`, `segment::batch`, `replay::expiry`)
//! does no I/O; outside effects sit behind the traits in [`ports`].

pub mod backfill;
pub mod cli;
pub mod config;
pub mod currents;
pub mod ingest;
pub mod limits;
pub mod mapping;
pub mod metrics;
pub mod pack;
pub mod park;
pub mod ports;
pub mod replay;
pub mod secret;
pub mod segment;
pub mod telemetry;
pub mod transform;
