//! What one record ended as ([`RecordReport`]: how it settled and what its Segment requests did)
//! and what an invocation adds up to (its metrics and its one summary line). Values only, no I/O.

use std::time::Duration;

use tracing::Level;

use crate::config::{RouteId, Routing};
use crate::metrics::{Metric, Metrics};
use crate::park::DeadLetterReason;
use crate::segment::DeliveryReport;

/// How a record ended. Only `StillFailing` and `Unsettled` leave it on the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordOutcome {
    /// Everything in it was delivered (or skipped by a documented rule).
    Replayed,
    /// Segment is still failing; SQS keeps it, hidden for a backoff.
    StillFailing,
    /// Segment's `Retry-After` has not passed; SQS keeps it hidden until it has. Not sent.
    Waiting,
    /// DeadLetterQueue accepted what could not be delivered; the rest was delivered.
    DeadLettered(DeadLetterReason),
    /// A dead-letter send failed; SQS must keep the record.
    Unsettled,
    /// Segment took part of it; the rest was parked anew as new envelopes.
    Requeued,
}

impl RecordOutcome {
    /// Whether SQS must keep the record (a batch-item failure).
    pub(crate) fn keeps_record(self) -> bool {
        matches!(self, Self::StillFailing | Self::Waiting | Self::Unsettled)
    }
}

/// How a record was settled: its outcome, and what each queue accepted from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settlement {
    pub outcome: RecordOutcome,
    /// Events DeadLetterQueue accepted.
    pub dead_lettered: usize,
    /// Why `dead_lettered` went to DeadLetterQueue, whenever anything did: also for a record
    /// whose rest was requeued, whose outcome is then `Requeued`.
    pub dead_reason: Option<DeadLetterReason>,
    /// Messages parked anew on RetryQueue.
    pub requeued: usize,
}

impl Settlement {
    /// `outcome` with nothing sent to either queue: `Replayed`, `StillFailing` or `Unsettled`.
    pub(crate) fn plain(outcome: RecordOutcome) -> Self {
        Self {
            outcome,
            dead_lettered: 0,
            dead_reason: None,
            requeued: 0,
        }
    }

    /// DeadLetterQueue accepted `events` events, dead-lettered for `reason`.
    pub(crate) fn dead_lettered(reason: DeadLetterReason, events: usize) -> Self {
        Self {
            outcome: RecordOutcome::DeadLettered(reason),
            dead_lettered: events,
            dead_reason: Some(reason),
            requeued: 0,
        }
    }

    /// This settlement, then the rest of the record (`messages`) parked anew on RetryQueue.
    pub(crate) fn then_requeued(self, messages: usize) -> Self {
        Self {
            outcome: RecordOutcome::Requeued,
            dead_lettered: self.dead_lettered,
            dead_reason: self.dead_reason,
            requeued: messages,
        }
    }
}

/// What a record's Segment deliveries did; all zero for a record that was not sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sent {
    pub requests: u32,
    pub retries: u32,
    pub delivered: usize,
    pub skipped: usize,
    /// Events that can never be delivered: still invalid, or refused by Segment. They are what
    /// the record dead-letters when it settles.
    pub undeliverable: usize,
    /// Messages held, not sent, because their route's write key or region is bad, by route.
    pub held: Vec<(RouteId, usize)>,
    /// Routes whose write-key check this record made ended "unknown" (delivered as usual).
    pub checks_failed: Vec<RouteId>,
    /// The longest `Retry-After` Segment sent for what is still failing.
    pub retry_after: Option<Duration>,
}

impl Sent {
    /// Adds one route's delivery.
    pub(crate) fn add(&mut self, delivery: &DeliveryReport) {
        self.requests += delivery.requests;
        self.retries += delivery.retries;
        self.delivered += delivery.delivered;
        self.undeliverable += delivery.permanent_count();
        self.retry_after = self.retry_after.max(delivery.retry_after());
    }
}

/// What one record cost and how it settled, for metrics and the summary line. Made once per
/// record, when it has settled.
#[derive(Debug, Clone)]
pub(crate) struct RecordReport {
    pub settled: Settlement,
    pub sent: Sent,
}

impl RecordReport {
    /// The report of a record settled without sending anything to Segment.
    pub(crate) fn unsent(settled: Settlement) -> Self {
        Self {
            settled,
            sent: Sent::default(),
        }
    }

    /// Adds this record's figures to the invocation's `metrics`.
    pub(crate) fn add_to(&self, metrics: &mut Metrics, routing: &Routing) {
        let (sent, settled) = (&self.sent, &self.settled);
        metrics.add(Metric::SegmentRequests, sent.requests as usize);
        metrics.add(Metric::SegmentRetries, sent.retries as usize);
        metrics.add(Metric::Replayed, sent.delivered);
        metrics.add(Metric::Skipped, sent.skipped);
        metrics.add(Metric::Parked, settled.requeued);
        for (route, held) in &sent.held {
            metrics.add(Metric::WriteKeyInvalid, *held);
            metrics.add_route(Metric::WriteKeyInvalid, &routing.route(*route).name, *held);
        }
        metrics.add(Metric::WriteKeyCheckFailed, sent.checks_failed.len());
        for route in &sent.checks_failed {
            metrics.add_route(Metric::WriteKeyCheckFailed, &routing.route(*route).name, 1);
        }
        // By `dead_reason`, not the outcome: a record that dead-lettered part and requeued the rest
        // ends `Requeued`, and its dead letters count too.
        if let Some(reason) = settled.dead_reason {
            metrics.add_reason(Metric::DeadLettered, reason.as_str(), settled.dead_lettered);
            metrics.add(Metric::DeadLettered, settled.dead_lettered);
            if reason == DeadLetterReason::Expired {
                metrics.add(Metric::Expired, settled.dead_lettered);
            }
        }
    }
}

/// Records of one invocation by outcome, for the summary log line.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    replayed: usize,
    still_failing: usize,
    waiting: usize,
    expired: usize,
    dead_lettered: usize,
    unsettled: usize,
}

impl Tally {
    /// Counts one record's outcome.
    pub(crate) fn add(&mut self, outcome: RecordOutcome) {
        match outcome {
            RecordOutcome::Replayed => self.replayed += 1,
            RecordOutcome::StillFailing | RecordOutcome::Requeued => self.still_failing += 1,
            RecordOutcome::Waiting => self.waiting += 1,
            RecordOutcome::DeadLettered(reason) => {
                self.dead_lettered += 1;
                self.expired += usize::from(reason == DeadLetterReason::Expired);
            }
            RecordOutcome::Unsettled => self.unsettled += 1,
        }
    }

    /// ERROR when anything was dead-lettered or left unsettled, WARN when records still fail.
    fn level(&self) -> Level {
        if self.dead_lettered + self.unsettled > 0 {
            Level::ERROR
        } else if self.still_failing > 0 {
            Level::WARN
        } else {
            Level::INFO
        }
    }

    /// Writes the invocation's summary line, at [`Tally::level`].
    pub(crate) fn log(&self, records: usize) {
        let Self {
            replayed,
            still_failing,
            waiting,
            expired,
            dead_lettered,
            unsettled,
        } = *self;
        // A `tracing` level must be known at compile time, so the one line is named once here
        // and written at whichever of three levels applies.
        macro_rules! summary {
            ($level:expr) => {
                tracing::event!(
                    $level,
                    records,
                    replayed,
                    still_failing,
                    waiting,
                    expired,
                    dead_lettered,
                    unsettled,
                    "Replay invocation handled."
                )
            };
        }
        match self.level() {
            Level::ERROR => summary!(Level::ERROR),
            Level::WARN => summary!(Level::WARN),
            _ => summary!(Level::INFO),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(settled: Settlement) -> RecordReport {
        RecordReport::unsent(settled)
    }

    /// One record of each outcome, expiries twice, with distinct figures.
    fn sample_reports() -> [RecordReport; 8] {
        let expired = DeadLetterReason::Expired;
        let plain = |outcome| report(Settlement::plain(outcome));
        [
            RecordReport {
                sent: Sent {
                    requests: 2,
                    retries: 1,
                    delivered: 3,
                    skipped: 1,
                    ..Sent::default()
                },
                ..plain(RecordOutcome::Replayed)
            },
            report(Settlement::dead_lettered(expired, 2)),
            report(Settlement::dead_lettered(expired, 1)),
            report(Settlement::dead_lettered(DeadLetterReason::InvalidEvent, 5)),
            report(Settlement::plain(RecordOutcome::Replayed).then_requeued(4)),
            plain(RecordOutcome::StillFailing),
            plain(RecordOutcome::Waiting),
            plain(RecordOutcome::Unsettled),
        ]
    }

    /// Every outcome is counted once in the summary, and every report's figures reach the
    /// metrics, dead letters under their reason and expiries twice (as dead letters and expired).
    #[test]
    fn each_outcome_is_tallied_and_each_report_reaches_the_metrics() {
        let reports = sample_reports();
        let (mut tally, mut metrics) = (Tally::default(), Metrics::default());
        for report in &reports {
            report.add_to(
                &mut metrics,
                &crate::config::Config::from_lookup(|_| None).unwrap().routing,
            );
            tally.add(report.settled.outcome);
        }
        // A struct literal names every field, so a new outcome cannot go untested.
        let expected = Tally {
            replayed: 1,
            still_failing: 2,
            waiting: 1,
            expired: 2,
            dead_lettered: 3,
            unsettled: 1,
        };
        assert_eq!(tally, expected);

        let documents: Vec<serde_json::Value> = metrics
            .render("replay", 0)
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let count = |name: &str| documents[0][name].as_f64().unwrap_or(-1.0);
        let totals = [
            "SegmentRequests",
            "SegmentRetries",
            "Replayed",
            "Skipped",
            "Parked",
            "DeadLettered",
            "Expired",
        ];
        assert_eq!(
            totals.map(count),
            [2.0, 1.0, 3.0, 1.0, 4.0, 8.0, 3.0],
            "{}",
            documents[0]
        );
        let by_reason = |reason: &str| {
            documents[1..]
                .iter()
                .find(|d| d["Reason"] == reason)
                .and_then(|d| d["DeadLettered"].as_f64())
        };
        assert_eq!(
            (by_reason("expired"), by_reason("invalid_event")),
            (Some(3.0), Some(5.0))
        );
    }
}
