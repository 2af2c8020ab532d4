//! Accounting: every decoded record ends delivered, skipped (with a reason) or dead-lettered;
//! what a failed file left undone is counted as `undelivered`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// Failed files kept by name in a summary; the count goes on past it.
const MAX_NAMED_FAILURES: usize = 100;

/// Outcome names used in the per-type counts.
pub(crate) const DELIVERED: &str = "delivered";
pub(crate) const WOULD_DELIVER: &str = "would_deliver";
pub(crate) const UNDELIVERED: &str = "undelivered";

/// What one object came to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileReport {
    pub key: String,
    pub event_type: String,
    pub records: u64,
    pub delivered: u64,
    /// Reason → count (`outside_time_window`, `no_external_user_id`, …).
    pub skipped: BTreeMap<String, u64>,
    /// Reason → count (`invalid_event`, `permanent_failure`).
    pub dead_lettered: BTreeMap<String, u64>,
    /// Why the file could not be finished; `None` when it was.
    pub error: Option<String>,
    /// Messages kept for a dry run's samples.
    #[serde(skip)]
    pub samples: Vec<String>,
}

impl FileReport {
    pub fn new(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            ..Self::default()
        }
    }

    pub fn finished(&self) -> bool {
        self.error.is_none() && self.accounted() == self.records
    }

    /// Records that reached an outcome.
    pub fn accounted(&self) -> u64 {
        self.delivered + self.skipped.values().sum::<u64>() + self.dead_lettered.values().sum::<u64>()
    }
}

/// A failed object, by the name reports use (`s3://bucket/key` or a path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileFailure {
    pub key: String,
    pub error: String,
}

/// The whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Nothing was sent (`--dry-run`).
    pub dry_run: bool,
    /// How the run selected events: the `--window` mode and the `date=` folders it read.
    pub window: String,
    /// Objects that passed the key filter.
    pub files_selected: u64,
    /// Of those, finished in an earlier run (`--state`).
    pub files_already_done: u64,
    /// Objects read to the end.
    pub files_finished: u64,
    /// Objects that could not be finished.
    pub files_failed: u64,
    /// Objects `--window queued` could not place (no `date=YYYY-MM-DD-HH` folder in the key),
    /// so not read; the run is not ok while there are any.
    pub files_without_queue_hour: u64,
    /// Those objects, at most 100 named.
    pub without_queue_hour: Vec<String>,
    /// The failed objects, at most 100 named.
    pub failures: Vec<FileFailure>,
    /// Records decoded.
    pub records: u64,
    /// Records Segment accepted.
    pub delivered: u64,
    /// Reason → records skipped.
    pub skipped: BTreeMap<String, u64>,
    /// Reason → records dead-lettered.
    pub dead_lettered: BTreeMap<String, u64>,
    /// Records a failed object left unaccounted for.
    pub undelivered: u64,
    /// Event type → outcome → records.
    pub by_event_type: BTreeMap<String, BTreeMap<String, u64>>,
    /// A few mapped messages, for `--dry-run`.
    pub samples: Vec<serde_json::Value>,
}

impl Summary {
    /// Adds one file's report; `max_samples` bounds the dry-run samples.
    pub fn add(&mut self, report: FileReport, display: &str, max_samples: usize) {
        self.records += report.records;
        self.delivered += report.delivered;
        self.undelivered += report.records.saturating_sub(report.accounted());
        let types = self.by_event_type.entry(report.event_type.clone()).or_default();
        let delivered = if self.dry_run { WOULD_DELIVER } else { DELIVERED };
        bump(types, delivered, report.delivered);
        for (reason, n) in &report.skipped {
            bump(&mut self.skipped, reason, *n);
            bump(types, &format!("skipped:{reason}"), *n);
        }
        for (reason, n) in &report.dead_lettered {
            bump(&mut self.dead_lettered, reason, *n);
            bump(types, &format!("dead_lettered:{reason}"), *n);
        }
        bump(types, UNDELIVERED, report.records.saturating_sub(report.accounted()));
        types.retain(|_, n| *n > 0);
        let finished = report.finished();
        for sample in report.samples {
            if self.samples.len() < max_samples {
                self.samples.extend(serde_json::from_str(&sample).ok());
            }
        }
        match report.error {
            None if finished => self.files_finished += 1,
            error => {
                self.files_failed += 1;
                if self.failures.len() < MAX_NAMED_FAILURES {
                    self.failures.push(FileFailure {
                        key: display.to_owned(),
                        error: error.unwrap_or_else(|| "events left undelivered".to_owned()),
                    });
                }
            }
        }
    }

    /// Counts (and names, up to 100) an object `--window queued` cannot place.
    pub(crate) fn add_without_queue_hour(&mut self, display: String) {
        self.files_without_queue_hour += 1;
        if self.without_queue_hour.len() < MAX_NAMED_FAILURES {
            self.without_queue_hour.push(display);
        }
    }

    /// `true` when every selected file was read, every record reached an outcome, and no
    /// object was left unread for want of a queue hour.
    pub fn ok(&self) -> bool {
        self.files_failed == 0 && self.undelivered == 0 && self.files_without_queue_hour == 0
    }

    /// The lines about the window: its mode and folders, and the objects it could not place.
    pub(crate) fn render_window(&self) -> String {
        let mut out = String::new();
        if !self.window.is_empty() {
            let _ = writeln!(out, "  window: {}", self.window);
        }
        if self.files_without_queue_hour > 0 {
            let _ = writeln!(
                out,
                "  NOT READ: {} objects have no date=YYYY-MM-DD-HH folder, so --window queued cannot place \
                 them in a queue hour; read them with --window event (README, Backfill)",
                self.files_without_queue_hour
            );
        }
        for key in &self.without_queue_hour {
            let _ = writeln!(out, "  NO QUEUE HOUR {key}");
        }
        out
    }

    /// The plain-text summary printed at the end of a run.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mode = if self.dry_run { " (dry run: nothing sent)" } else { "" };
        let _ = writeln!(out, "Backfill summary{mode}");
        out.push_str(&self.render_window());
        let _ = writeln!(
            out,
            "  files: {} selected, {} already done, {} finished, {} failed",
            self.files_selected, self.files_already_done, self.files_finished, self.files_failed
        );
        let skipped: u64 = self.skipped.values().sum();
        let dead: u64 = self.dead_lettered.values().sum();
        let _ = writeln!(
            out,
            "  records: {}; delivered {}, skipped {}, dead-lettered {}, undelivered {}",
            self.records, self.delivered, skipped, dead, self.undelivered
        );
        for (event_type, outcomes) in &self.by_event_type {
            let line: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o}={n}")).collect();
            let _ = writeln!(out, "  {event_type}: {}", line.join(" "));
        }
        for failure in &self.failures {
            let _ = writeln!(out, "  FAILED {}: {}", failure.key, failure.error);
        }
        for sample in &self.samples {
            let _ = writeln!(out, "  sample: {sample}");
        }
        out
    }
}

pub(crate) fn bump(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    if n > 0 {
        *map.entry(key.to_owned()).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_adds_outcomes_and_flags_what_is_left() {
        let mut summary = Summary::default();
        let mut good = FileReport::new("a");
        good.event_type = "t".into();
        good.records = 3;
        good.delivered = 2;
        bump(&mut good.skipped, "outside_time_window", 1);
        summary.add(good, "a", 0);
        assert!(summary.ok());
        let mut cut = FileReport::new("b");
        cut.event_type = "t".into();
        cut.records = 2;
        cut.delivered = 1;
        cut.error = Some("truncated".into());
        summary.add(cut, "s3://x/b", 0);
        assert!(!summary.ok());
        assert_eq!((summary.records, summary.delivered, summary.undelivered), (5, 3, 1));
        assert_eq!(summary.by_event_type["t"]["delivered"], 3);
        assert_eq!(summary.by_event_type["t"]["undelivered"], 1);
        assert!(summary.render().contains("FAILED s3://x/b: truncated"));
    }
}
