//! The command-line options of `currents-segment backfill`, and the options each object
//! carries through the Lambda fan-out.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::key::{KeyFilter, Selection, parse_instant};

/// Default `--lag-hours`: how long after an event's `time` Braze may still queue it. Offline
/// devices send events days late; raise it to catch those.
pub(crate) const DEFAULT_LAG_HOURS: u32 = 24;

/// Default `--max-rps`: Segment requests per second, well under what one source takes, so the
/// live path keeps its share (<https://segment.com/docs/connections/rate-limits/>).
pub const DEFAULT_MAX_RPS: u32 = 20;

/// How `--since` / `--until` select events (`--window`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    /// By each event's `time`: events in `[since, until)`, from the `date=` folders up to
    /// `--lag-hours` after `until`. The default, as before the flag existed.
    #[default]
    Event,
    /// By the hour Braze queued the events (the `date=YYYY-MM-DD-HH` folder): every event of
    /// every object whose hour overlaps `[since, until)`, whatever its `time`. For outages.
    Queued,
}

impl Window {
    fn is_event(&self) -> bool {
        *self == Self::Event
    }
}

/// `currents-segment backfill SOURCE [options]`.
#[derive(Debug, Clone, clap::Args)]
pub struct BackfillOptions {
    /// `s3://bucket/prefix` or a local folder of `.avro` files (Braze's layout or any tree).
    pub source: String,
    /// Only these event types (comma-separated, e.g. `users.messages.email.Open`).
    #[arg(long, value_delimiter = ',')]
    pub event_types: Vec<String>,
    /// What `--since` / `--until` select: `event` = events whose `time` is in the window;
    /// `queued` = every event Braze queued in the `date=` hours the window overlaps (outages).
    #[arg(long, value_enum, default_value_t = Window::Event)]
    pub window: Window,
    /// Start of the window, inclusive (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long)]
    pub since: Option<String>,
    /// End of the window, exclusive (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long)]
    pub until: Option<String>,
    /// `--window event` only: also read `date=` folders up to this many hours after `--until`
    /// (Braze's `date=` is the hour it queued an event, which can be later than its `time`).
    /// Default 24.
    #[arg(long)]
    pub lag_hours: Option<u32>,
    /// Segment requests per second, across all files (retries included).
    #[arg(long, default_value_t = DEFAULT_MAX_RPS)]
    pub max_rps: u32,
    /// Files read and sent at the same time.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// The route (from `ROUTES`) whose Segment source receives the events; `APP_ROUTES` still
    /// applies per event.
    #[arg(long, default_value = crate::config::DEFAULT_ROUTE_NAME)]
    pub route: String,
    /// JSON Lines file for dead letters when `DEAD_LETTER_QUEUE_URL` is not set.
    #[arg(long, default_value = "backfill-failures.jsonl")]
    pub failures: PathBuf,
    /// Records finished objects here and skips them on the next run.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Read and map only: print counts per event type and outcome and a few sample messages.
    #[arg(long)]
    pub dry_run: bool,
    /// Sample messages printed by `--dry-run`.
    #[arg(long, default_value_t = 3)]
    pub samples: usize,
    /// Instead of sending, enqueue one message per object on this SQS queue (the
    /// `BackfillQueue`) for the `BackfillFunction` Lambda. SOURCE must be `s3://`.
    #[arg(long, value_name = "QUEUE_URL")]
    pub enqueue: Option<String>,
}

/// What one object needs to be processed on its own: the part of the options that travels in
/// a `BackfillQueue` message. Times are UNIX seconds. The default (also for a task that carries
/// no `options`) is every event of the object, sent to the `default` route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// How `since` / `until` select; absent (as in tasks written before it existed) = `event`.
    #[serde(default, skip_serializing_if = "Window::is_event")]
    pub window: Window,
    /// Only these event types; empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_types: Vec<String>,
    /// Start of the window, inclusive, UNIX seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// End of the window, exclusive, UNIX seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// Hours of `date=` folders read past `until` (`window` `event` only; ignored otherwise).
    #[serde(default)]
    pub lag_hours: u32,
    /// The route whose Segment source receives the events.
    #[serde(default = "default_route")]
    pub route: String,
    /// Read and map only; send nothing.
    #[serde(default)]
    pub dry_run: bool,
}

fn default_route() -> String {
    crate::config::DEFAULT_ROUTE_NAME.to_owned()
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            window: Window::Event,
            event_types: Vec::new(),
            since: None,
            until: None,
            lag_hours: 0,
            route: default_route(),
            dry_run: false,
        }
    }
}

impl BackfillOptions {
    /// The options every object of this run shares; errors name the flag.
    pub fn run_options(&self) -> Result<RunOptions, String> {
        let instant = |flag: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(parse_instant)
                .transpose()
                .map_err(|e| format!("--{flag}: {e}"))
        };
        let lag_hours = match (self.window, self.lag_hours) {
            (Window::Event, lag) => lag.unwrap_or(DEFAULT_LAG_HOURS),
            (Window::Queued, None) => 0,
            (Window::Queued, Some(_)) => {
                return Err(
                    "--lag-hours widens --window event only; with --window queued the date= hours \
                     of --since/--until are the window"
                        .to_owned(),
                );
            }
        };
        let run = RunOptions {
            window: self.window,
            event_types: self
                .event_types
                .iter()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect(),
            since: instant("since", &self.since)?,
            until: instant("until", &self.until)?,
            lag_hours,
            route: self.route.clone(),
            dry_run: self.dry_run,
        };
        if let (Some(since), Some(until)) = (run.since, run.until)
            && since >= until
        {
            return Err("--since must be before --until".to_owned());
        }
        if self.max_rps == 0 || self.concurrency == 0 {
            return Err("--max-rps and --concurrency must be at least 1".to_owned());
        }
        Ok(run)
    }
}

impl RunOptions {
    pub(crate) fn key_filter(&self) -> KeyFilter {
        let (since, until) = (self.since, self.until);
        let selection = match self.window {
            Window::Event => Selection::EventTime {
                since,
                until,
                lag_hours: self.lag_hours,
            },
            Window::Queued => Selection::QueueHour { since, until },
        };
        KeyFilter {
            event_types: self.event_types.clone(),
            selection,
        }
    }
}
