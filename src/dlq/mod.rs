//! `currents-segment dlq`: the operator's tool for the DeadLetterQueue. `stats` counts dead
//! letters by reason, route and age; `peek` shows a few with PII redacted; `export` writes them
//! all as lossless JSON Lines; `redrive` moves them back to RetryQueue, deleting each only after
//! RetryQueue accepted it. Reading never removes anything. S3-offloaded envelopes (extended
//! client pointers) are resolved transparently.
//!
//! The CLI embeds [`DlqArgs`] and calls [`run`].

mod ops;
mod queue;
mod redrive;
mod report;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use time::OffsetDateTime;

pub(crate) use ops::RedriveFilter;
pub use ops::{Ports, export, peek, stats};
pub use queue::{Attribute, AttributeValue, DrainQueue, Forward, Received, Requeue, SqsDrain, SqsRequeue};
pub use redrive::redrive;
pub use report::Stats;

use crate::park::{PayloadStore, ResolveError, S3PayloadStore, client_from_env};
use crate::ports::QueueError;

/// `currents-segment dlq …`: the arguments after `dlq`, as a parser of its own so a CLI that
/// does not use clap can hand them over (see [`parse`]).
#[derive(Debug, clap::Parser)]
#[command(
    name = "currents-segment dlq",
    about = "Inspect, export and redrive the DeadLetterQueue"
)]
struct DlqCli {
    #[command(flatten)]
    args: DlqArgs,
}

/// Parses the words after `dlq` (`["stats", "--json"]`). `--help` and mistakes come back as a
/// `clap::Error` whose `to_string()` is the text to print and `exit_code()` the code to use.
pub fn parse(words: &[String]) -> Result<DlqArgs, clap::Error> {
    use clap::Parser as _;
    let argv = std::iter::once("currents-segment dlq").chain(words.iter().map(String::as_str));
    DlqCli::try_parse_from(argv).map(|cli| cli.args)
}

/// [`run`] for a synchronous `main`: builds a Tokio runtime for the one command.
pub fn run_blocking(args: &DlqArgs, out: &mut dyn Write) -> Result<(), DlqError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(args, out))
}

/// `currents-segment dlq …`
#[derive(Debug, clap::Args)]
pub struct DlqArgs {
    /// The DeadLetterQueue's URL.
    #[arg(long = "queue-url", env = "DEAD_LETTER_QUEUE_URL")]
    pub queue_url: String,
    /// RetryQueue's URL, where `redrive` moves dead letters.
    #[arg(long = "retry-queue-url", env = "RETRY_QUEUE_URL")]
    pub retry_queue_url: Option<String>,
    /// The bucket holding envelopes too large for SQS.
    #[arg(long = "large-payload-bucket", env = "LARGE_PAYLOAD_BUCKET")]
    pub large_payload_bucket: Option<String>,
    /// Read at most this many messages in one run.
    #[arg(long = "max-messages", default_value_t = 100_000)]
    pub max_messages: usize,
    /// What to do.
    #[command(subcommand)]
    pub command: DlqCommand,
}

/// The `dlq` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// Envelopes and events by reason, by route and by age.
    Stats {
        /// Print `{"total":…, "events":…, "by_reason":{…}, "by_route":{…}, "by_age":{…},
        /// "oldest_first_failed_at":"…"}`.
        #[arg(long)]
        json: bool,
    },
    /// Show a few envelopes, one JSON line each, PII redacted.
    Peek {
        /// How many envelopes to show.
        #[arg(short = 'n', default_value_t = 10)]
        n: usize,
        /// Show emails, phone numbers and user ids as they are.
        #[arg(long = "show-pii")]
        show_pii: bool,
    },
    /// Write every dead letter to FILE as JSON Lines, S3-offloaded payloads included.
    Export {
        /// The JSON Lines file to write.
        file: PathBuf,
    },
    /// Move dead letters to RetryQueue for replay.
    Redrive {
        /// Only envelopes with this reason (invalid_event, permanent_failure, expired, …).
        #[arg(long)]
        reason: Option<String>,
        /// Only envelopes of this route.
        #[arg(long)]
        route: Option<String>,
        /// Move at most this many envelopes.
        #[arg(long)]
        limit: Option<usize>,
        /// Count what would move; move nothing.
        #[arg(long = "dry-run")]
        dry_run: bool,
        /// Restart the 48-hour replay window. Segment deduplicates on messageId for about 24 h
        /// only, so a message delivered once already may then be counted twice.
        #[arg(long = "reset-window")]
        reset_window: bool,
    },
}

/// What went wrong in a `dlq` run. Reading is undone (messages released) before it is returned.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// An offloaded payload could not be read.
    #[error("could not read an offloaded payload: {0}")]
    Resolve(#[from] ResolveError),
    /// The output file could not be written.
    #[error("could not write the output: {0}")]
    Io(#[from] std::io::Error),
    /// `redrive` without a RetryQueue URL.
    #[error("redrive needs RetryQueue: set RETRY_QUEUE_URL or pass --retry-queue-url")]
    NoRetryQueue,
}

/// Runs one `dlq` command against the real queues (credentials from the standard AWS chain,
/// `AWS_ENDPOINT_URL` for a stand-in), writing its report to `out`.
pub async fn run(args: &DlqArgs, out: &mut dyn Write) -> Result<(), DlqError> {
    let client = client_from_env().await;
    let store: Option<Arc<dyn PayloadStore>> = S3PayloadStore::from_env(args.large_payload_bucket.clone())
        .await
        .map(|s| Arc::new(s) as Arc<dyn PayloadStore>);
    let dead_letters = SqsDrain::new(client.clone(), &args.queue_url);
    let retry = args
        .retry_queue_url
        .as_ref()
        .map(|url| SqsRequeue::new(client.clone(), url, store.clone()));
    let ports = Ports {
        dead_letters: &dead_letters,
        retry: retry.as_ref().map(|r| r as &dyn Requeue),
        store: store.as_deref(),
        max_messages: args.max_messages,
    };
    run_with(&args.command, &ports, OffsetDateTime::now_utc(), out).await
}

/// [`run`] over given ports and clock, for tests and other front ends.
pub async fn run_with(
    command: &DlqCommand,
    ports: &Ports<'_>,
    now: OffsetDateTime,
    out: &mut dyn Write,
) -> Result<(), DlqError> {
    match command {
        DlqCommand::Stats { json } => {
            let stats = stats(ports, now).await?;
            if *json {
                writeln!(out, "{}", serde_json::to_string(&stats).unwrap_or_default())?;
            } else {
                write!(out, "{}", stats.render())?;
            }
        }
        DlqCommand::Peek { n, show_pii } => {
            peek(ports, *n, *show_pii, out).await?;
        }
        DlqCommand::Export { file } => {
            let mut writer = std::io::BufWriter::new(std::fs::File::create(file)?);
            let count = export(ports, &mut writer).await?;
            writer.flush()?;
            writeln!(out, "exported {count} dead letters to {}", file.display())?;
        }
        DlqCommand::Redrive {
            reason,
            route,
            limit,
            dry_run,
            reset_window,
        } => {
            let filter = RedriveFilter {
                reason: reason.clone(),
                route: route.clone(),
                limit: *limit,
                dry_run: *dry_run,
                reset_window: *reset_window,
            };
            let report = redrive(ports, &filter, now).await?;
            writeln!(out, "{}", serde_json::to_string(&report).unwrap_or_default())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_words_after_dlq_parse_into_commands() {
        let args = parse(&words(
            "--queue-url q redrive --reason invalid_event --limit 5 --dry-run",
        ))
        .unwrap();
        assert_eq!(args.queue_url, "q");
        assert!(matches!(
            args.command,
            DlqCommand::Redrive { reason: Some(ref r), limit: Some(5), dry_run: true, reset_window: false, .. } if r == "invalid_event"
        ));
        let peek = parse(&words("--queue-url q peek -n 3")).unwrap();
        assert!(matches!(peek.command, DlqCommand::Peek { n: 3, show_pii: false }));
        assert!(parse(&words("--queue-url q redrive --bogus")).is_err());
        assert!(parse(&words("--queue-url q")).is_err(), "a command is required");
    }
}
