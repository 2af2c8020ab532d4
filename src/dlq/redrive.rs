//! `dlq redrive`: moves dead letters back to RetryQueue, each deleted from the DeadLetterQueue
//! only after RetryQueue accepted it.

use indicatif::ProgressBar;
use time::OffsetDateTime;

use super::DlqError;
use super::ops::{HIDE_FOR, Ports, RedriveFilter, RedriveReport, inspect, progress};
use super::queue::{Received, Requeue};
use super::report::Inspected;

impl RedriveFilter {
    /// Only envelopes move; a body that is not one would come straight back.
    fn matches(&self, letter: &Inspected) -> bool {
        letter.envelope.is_some()
            && self.reason.as_deref().is_none_or(|r| r == letter.reason())
            && self.route.as_deref().is_none_or(|r| r == letter.route())
    }
}

/// With `reset_window`, the envelope with `first_failed_at` set to `now`, to park anew (offloaded
/// again if large). `None` when the message moves as it is: body and message attributes
/// unchanged, so an S3 pointer stays a pointer with its `ExtendedPayloadSize`.
fn rewritten(letter: &Inspected, filter: &RedriveFilter, now: OffsetDateTime) -> Option<String> {
    let mut envelope = letter.envelope.clone().filter(|_| filter.reset_window)?;
    envelope.first_failed_at = now;
    Some(envelope.to_json())
}

/// Moves matching dead letters to RetryQueue. Stops at the first failure, leaving that letter
/// in the DeadLetterQueue. Every letter read and not moved is released.
pub async fn redrive(
    ports: &Ports<'_>,
    filter: &RedriveFilter,
    now: OffsetDateTime,
) -> Result<RedriveReport, DlqError> {
    let retry = ports.retry.ok_or(DlqError::NoRetryQueue)?;
    let mut run = Run {
        ports,
        retry,
        filter,
        now,
        limit: filter.limit.unwrap_or(usize::MAX),
        report: RedriveReport {
            dry_run: filter.dry_run,
            ..RedriveReport::default()
        },
        held: Vec::new(),
    };
    let bar = progress();
    let outcome = run.read(&bar).await;
    bar.finish_and_clear();
    for receipt in &run.held {
        ports.dead_letters.release(receipt).await?;
    }
    outcome.map(|()| run.report)
}

struct Run<'r, 'p> {
    ports: &'r Ports<'p>,
    retry: &'p dyn Requeue,
    filter: &'r RedriveFilter,
    now: OffsetDateTime,
    limit: usize,
    report: RedriveReport,
    /// Receipts of letters read and kept, to release at the end.
    held: Vec<String>,
}

impl Run<'_, '_> {
    async fn read(&mut self, bar: &ProgressBar) -> Result<(), DlqError> {
        while self.report.moved < self.limit && self.report.scanned < self.ports.max_messages {
            let batch = self.ports.dead_letters.receive(HIDE_FOR).await?;
            if batch.is_empty() {
                return Ok(());
            }
            let mut rest = batch.into_iter();
            while let Some(message) = rest.next() {
                self.report.scanned += 1;
                bar.inc(1);
                if let Err(error) = self.one(message).await {
                    self.held.extend(rest.map(|m| m.receipt_handle));
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    async fn one(&mut self, message: Received) -> Result<(), DlqError> {
        let letter = match inspect(&message, self.ports.store).await {
            Ok(letter) => letter,
            Err(error) => {
                self.held.push(message.receipt_handle);
                return Err(error);
            }
        };
        let wanted = self.report.moved < self.limit && self.filter.matches(&letter);
        if !wanted || self.filter.dry_run {
            if wanted {
                self.report.moved += 1;
                self.report.events += letter.events();
            }
            self.held.push(message.receipt_handle);
            return Ok(());
        }
        let sent = match rewritten(&letter, self.filter, self.now) {
            Some(body) => self.retry.park(&[body]).await,
            None => self.retry.forward(&message).await,
        };
        if let Err(error) = sent {
            self.held.push(message.receipt_handle);
            return Err(error.into());
        }
        self.report.moved += 1;
        self.report.events += letter.events();
        // Accepted by RetryQueue: only now may the dead letter go. Should the delete fail, the
        // letter is in both queues, never in neither.
        self.ports.dead_letters.delete(&message.receipt_handle).await?;
        Ok(())
    }
}
