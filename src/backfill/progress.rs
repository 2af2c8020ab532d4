//! Progress: an `indicatif` bar (files, events/s, ETA) on a terminal, a plain log line every
//! [`LOG_EVERY`] otherwise (CI, Lambda, redirected output).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Interval between plain progress lines.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(10);

pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    records: AtomicU64,
    files: AtomicU64,
    started: Instant,
    last_log: Mutex<Instant>,
}

impl Progress {
    /// A bar when `terminal`, else plain lines.
    pub(crate) fn new(terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let bar = ProgressBar::new(0);
            let style =
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} files  {msg}  ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar
        });
        Self {
            bar,
            records: AtomicU64::new(0),
            files: AtomicU64::new(0),
            started: Instant::now(),
            last_log: Mutex::new(Instant::now()),
        }
    }

    /// More files were selected by the listing.
    pub(crate) fn selected(&self, files: u64) {
        if let Some(bar) = &self.bar {
            bar.inc_length(files);
        }
    }

    pub(crate) fn records(&self, n: u64) {
        let total = self.records.fetch_add(n, Ordering::Relaxed) + n;
        self.update(total);
    }

    pub(crate) fn file_done(&self) {
        self.files.fetch_add(1, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        self.update(self.records.load(Ordering::Relaxed));
    }

    fn update(&self, records: u64) {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = records as f64 / seconds;
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{records} events  {rate:.0} events/s"));
            return;
        }
        let mut last = self.last_log.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= LOG_EVERY {
            *last = Instant::now();
            let files = self.files.load(Ordering::Relaxed);
            tracing::info!(
                files,
                events = records,
                events_per_second = rate as u64,
                "Backfill progress."
            );
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
