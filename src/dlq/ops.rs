//! The `dlq` operations over the ports: read, count, show, export and redrive. Reading never
//! loses a message: what is read stays in the queue (hidden for a while) and is released again;
//! a redriven message is deleted only after RetryQueue accepted it.

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget};
use serde_json::json;
use time::OffsetDateTime;

use super::DlqError;
use super::queue::{DrainQueue, Received, Requeue};
use super::report::{Inspected, Stats, redact};
use crate::park::{PayloadPointer, PayloadStore, ResolveError, resolve_body};

/// How long a read message stays hidden from other readers (replay, another operator) while
/// the tool works; it is released at the end either way.
pub(crate) const HIDE_FOR: Duration = Duration::from_secs(300);

/// What the operations talk to.
pub struct Ports<'p> {
    /// The dead-letter queue.
    pub dead_letters: &'p dyn DrainQueue,
    /// RetryQueue, for `redrive`.
    pub retry: Option<&'p dyn Requeue>,
    /// Where S3-offloaded payloads are read, if configured.
    pub store: Option<&'p dyn PayloadStore>,
    /// Upper bound on messages read in one run.
    pub max_messages: usize,
}

/// Which dead letters `redrive` moves, and how.
#[derive(Debug, Clone, Default)]
pub struct RedriveFilter {
    pub reason: Option<String>,
    pub route: Option<String>,
    pub limit: Option<usize>,
    pub dry_run: bool,
    /// Restart the 48-hour window: `first_failed_at` becomes now.
    pub reset_window: bool,
}

/// What `redrive` did. `moved` counts envelopes RetryQueue accepted (or would, with `--dry-run`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RedriveReport {
    pub scanned: usize,
    pub moved: usize,
    pub events: usize,
    pub dry_run: bool,
}

/// A progress bar on stderr when it is a terminal; hidden otherwise.
pub(crate) fn progress() -> ProgressBar {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    }
}

/// The dead letter `message` holds, its S3 pointer (either format) followed. A pointer whose
/// payload is gone for good is a letter of its own (reason `payload_missing`), not an error, so
/// one dangling pointer does not stop a run; one S3 will not serve now is an error.
pub(crate) async fn inspect(message: &Received, store: Option<&dyn PayloadStore>) -> Result<Inspected, DlqError> {
    let pointer = PayloadPointer::from_body(&message.body);
    let id = message.message_id.clone();
    match resolve_body(&message.body, store).await {
        Ok(body) => Ok(Inspected::new(id, body, pointer)),
        Err(ResolveError::Read(error)) if error.is_permanent() => {
            Ok(Inspected::dangling(id, message.body.clone(), pointer))
        }
        Err(error) => Err(error.into()),
    }
}

/// Reads up to `limit` dead letters (all, bounded by `max_messages`), hands each to `each`,
/// then releases every one so the queue is as it was.
async fn read_all(
    ports: &Ports<'_>,
    limit: usize,
    mut each: impl FnMut(&Inspected) -> Result<(), DlqError>,
) -> Result<usize, DlqError> {
    let bar = progress();
    let mut held = Vec::new();
    let mut outcome = Ok(());
    let (limit, mut seen) = (limit.min(ports.max_messages), 0);
    while seen < limit {
        let batch = match ports.dead_letters.receive(HIDE_FOR).await {
            Ok(batch) if batch.is_empty() => break,
            Ok(batch) => batch,
            Err(error) => {
                outcome = Err(error.into());
                break;
            }
        };
        held.extend(batch.iter().map(|m| m.receipt_handle.clone()));
        bar.inc(batch.len() as u64);
        let take = batch.len().min(limit - seen);
        seen += take;
        outcome = each_of(&batch[..take], ports.store, &mut each).await;
        if outcome.is_err() {
            break;
        }
    }
    bar.finish_and_clear();
    release(ports.dead_letters, &held).await?;
    outcome.map(|()| seen)
}

async fn each_of(
    batch: &[Received],
    store: Option<&dyn PayloadStore>,
    each: &mut impl FnMut(&Inspected) -> Result<(), DlqError>,
) -> Result<(), DlqError> {
    for message in batch {
        each(&inspect(message, store).await?)?;
    }
    Ok(())
}

async fn release(queue: &dyn DrainQueue, receipts: &[String]) -> Result<(), DlqError> {
    for receipt in receipts {
        queue.release(receipt).await?;
    }
    Ok(())
}

/// `dlq stats`: counts of everything in the queue.
pub async fn stats(ports: &Ports<'_>, now: OffsetDateTime) -> Result<Stats, DlqError> {
    let mut stats = Stats::default();
    read_all(ports, usize::MAX, |letter| {
        stats.add(letter, now);
        Ok(())
    })
    .await?;
    Ok(stats)
}

/// `dlq peek`: up to `count` envelopes as JSON lines, PII redacted unless `show_pii`.
pub async fn peek(ports: &Ports<'_>, count: usize, show_pii: bool, out: &mut dyn Write) -> Result<usize, DlqError> {
    read_all(ports, count, |letter| {
        let shown = if show_pii {
            serde_json::from_str(&letter.body).unwrap_or_else(|_| json!(letter.body))
        } else {
            redact(letter)
        };
        let line = json!({"message_id": letter.message_id, "reason": letter.reason(), "envelope": shown});
        writeln!(out, "{line}")?;
        Ok(())
    })
    .await
}

/// `dlq export`: every dead letter as one JSON line `{"message_id": "…", "body": "<the full
/// envelope text, S3 payloads resolved>", "s3_pointer": {…} | null}`. Lossless: `body` holds
/// the exact text, so an export can be re-sent byte for byte.
pub async fn export(ports: &Ports<'_>, out: &mut dyn Write) -> Result<usize, DlqError> {
    read_all(ports, usize::MAX, |letter| {
        let line = json!({"message_id": letter.message_id, "body": letter.body, "s3_pointer": letter.pointer});
        writeln!(out, "{line}")?;
        Ok(())
    })
    .await
}
