//! `currents-segment backfill`: replays Braze's Currents storage exports (Avro files in S3 or a
//! local folder) into Segment through the same mapping, routing, PII rules, validation, client,
//! batching and retry policy as the HTTP path. A record and its HTTP twin give the same
//! message and `messageId`, so Segment dedups against what the live path already sent.
//!
//! Every decoded record ends delivered, skipped (with a reason) or dead-lettered (the
//! dead-letter queue when `DEAD_LETTER_QUEUE_URL` is set, else `--failures FILE`). Objects are
//! streamed and processed a few at a time, so memory stays bounded whatever the export's size.

mod avro;
mod deliver;
mod enqueue;
mod fast;
mod files;
mod key;
mod lambda;
mod object;
mod options;
mod progress;
mod s3;
mod source;
mod summary;

use std::io::IsTerminal;
use std::sync::Arc;

use tokio::task::JoinSet;

pub use deliver::{RateLimited, Sent, backfill_policy, deliver_messages};
pub use enqueue::enqueue;
pub use files::JsonlFile;
pub(crate) use files::StateFile;
pub(crate) use key::{KeyFilter, Verdict};
pub use lambda::{BackfillWorker, SourceFor, handle_tasks};
pub use options::{BackfillOptions, DEFAULT_MAX_RPS, RunOptions, Window};
pub(crate) use progress::Progress;
pub(crate) use s3::parse_s3_url;
pub use s3::{S3Source, s3_client_from_env};
pub(crate) use source::SourceError;
pub use source::{LocalDir, ObjectSource};
pub(crate) use summary::FileReport;
pub use summary::Summary;

use crate::config::{Config, ConfigError, DeliveryTargets, RouteId};
use crate::keycheck::{KeyHealth, Plan, SETTINGS_TIMEOUT, SettingsHttp};
use crate::ports::{Clock, Deliver, Park, QueueError};
use crate::segment::RetryPolicy;

/// Why a run could not go on. Per-file problems are not errors: they are in the [`Summary`].
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The caller's fault: fix the command line.
    #[error("{0}")]
    Usage(String),
    /// Configuration is missing or invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The source (S3 or local folder) could not be listed or read.
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot use the state file {path}: {error}")]
    /// The `--state` file could not be read or written.
    State {
        /// The file's path.
        path: String,
        /// What went wrong.
        error: std::io::Error,
    },
    /// The queue did not accept some object tasks (`--enqueue`).
    #[error("cannot enqueue: {0}")]
    Enqueue(QueueError),
    /// A route the run would use has a write key Segment's settings CDN does not know, or sends
    /// to the wrong region: nothing was sent. The text names the routes, never a key.
    #[error("{0}; nothing was sent (README, Troubleshooting)")]
    Held(String),
    /// The command line could not start its async runtime.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// The outside world of a run: where objects come from and where messages and dead letters go.
pub struct Backfill {
    /// Where objects are listed and read from.
    pub source: Arc<dyn ObjectSource>,
    /// Segment, usually wrapped in [`RateLimited`].
    pub segment: Arc<dyn Deliver>,
    /// The dead-letter queue, or a [`JsonlFile`].
    pub dead_letters: Arc<dyn Park>,
    /// Wall-clock time, passed in so tests can move it.
    pub clock: Arc<dyn Clock>,
    /// Configuration (routes, Segment client).
    pub config: Arc<Config>,
    /// How Segment requests are retried.
    pub policy: RetryPolicy,
    /// Draw a progress bar (else plain log lines).
    pub progress_bar: bool,
    /// Write-key verdicts: checked for every route the run uses before anything is sent.
    pub key_health: Arc<KeyHealth>,
}

/// What every object of a run shares.
pub(crate) struct Context {
    source: Arc<dyn ObjectSource>,
    segment: Arc<dyn Deliver>,
    dead_letters: Option<Arc<dyn Park>>,
    clock: Arc<dyn Clock>,
    config: Arc<Config>,
    policy: RetryPolicy,
    run: RunOptions,
    route: RouteId,
    filter: KeyFilter,
    samples: usize,
    progress: Progress,
    key_health: Arc<KeyHealth>,
    /// Every route's target; `None` in a dry run, which sends nothing.
    targets: Option<DeliveryTargets>,
}

impl Context {
    /// `deps.segment` is used as given: wrap it in [`RateLimited`] first.
    fn new(deps: Backfill, run: RunOptions, samples: usize) -> Result<Self, BackfillError> {
        let route = deps
            .config
            .routing
            .find(&run.route)
            .ok_or_else(|| BackfillError::Usage(format!("unknown route `{}`", run.route)))?;
        let targets = match run.dry_run {
            true => None,
            false => Some(deps.config.routing.delivery_targets()?),
        };
        Ok(Self {
            key_health: deps.key_health,
            targets,
            source: deps.source,
            segment: deps.segment,
            dead_letters: (!run.dry_run).then_some(deps.dead_letters),
            clock: deps.clock,
            config: deps.config,
            policy: deps.policy,
            filter: run.key_filter(),
            route,
            run,
            samples,
            progress: Progress::new(deps.progress_bar),
        })
    }
}

/// Runs a backfill over every object `deps.source` lists that `options` select, `concurrency`
/// objects at a time. Errors only when listing or the state file fails; per-object failures
/// are in the summary, and [`Summary::ok`] says whether the exit code should be zero.
pub async fn run(options: &BackfillOptions, deps: Backfill) -> Result<Summary, BackfillError> {
    let run = options.run_options().map_err(BackfillError::Usage)?;
    let state = match &options.state {
        Some(path) => Some(StateFile::open(path).map_err(|error| BackfillError::State {
            path: path.display().to_string(),
            error,
        })?),
        None => None,
    };
    let deps = Backfill {
        segment: Arc::new(RateLimited::new(deps.segment, options.max_rps)),
        ..deps
    };
    let ctx = Arc::new(Context::new(deps, run, options.samples)?);
    preflight(&ctx).await?;
    let mut summary = Summary {
        dry_run: ctx.run.dry_run,
        window: ctx.filter.describe(),
        ..Summary::default()
    };
    let mut tasks = JoinSet::new();
    let mut after: Option<String> = None;
    loop {
        let page = ctx.source.list_page(after.as_deref()).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        for meta in page {
            if !admit(&ctx, &meta.key, state.as_ref(), &mut summary) {
                continue;
            }
            while tasks.len() >= options.concurrency {
                settle(&ctx, tasks.join_next().await, state.as_ref(), &mut summary)?;
            }
            tasks.spawn(object::process_object(ctx.clone(), meta.key));
        }
    }
    while !tasks.is_empty() {
        settle(&ctx, tasks.join_next().await, state.as_ref(), &mut summary)?;
    }
    ctx.progress.finish();
    log_summary(&summary);
    Ok(summary)
}

/// Whether the listed object at `key` is to be processed now, counting it in the summary:
/// selected (and maybe already done), or one the queue-hour window cannot place.
fn admit(ctx: &Context, key: &str, state: Option<&StateFile>, summary: &mut Summary) -> bool {
    match ctx.filter.verdict(key) {
        Verdict::Pass => return false,
        Verdict::NoQueueHour => {
            let shown = ctx.source.display(key);
            tracing::error!(key = %shown, "Object has no date= hour folder; --window queued cannot place it, not read.");
            summary.add_without_queue_hour(shown);
            return false;
        }
        Verdict::Read => {}
    }
    summary.files_selected += 1;
    if state.is_some_and(|s| s.is_done(key)) {
        summary.files_already_done += 1;
        return false;
    }
    ctx.progress.selected(1);
    true
}

/// Checks the write key of every route the run may send to (the run's route, or every route
/// when `APP_ROUTES` may pick another) before anything is sent. A dry run sends nothing and
/// checks nothing. An unknown verdict (the CDN did not answer) does not stop the run.
pub(crate) async fn preflight(ctx: &Context) -> Result<(), BackfillError> {
    let Some(targets) = &ctx.targets else { return Ok(()) };
    let routing = &ctx.config.routing;
    let routes: Vec<RouteId> = match routing.has_app_routes() {
        true => routing.ids().collect(),
        false => vec![ctx.route],
    };
    let plans = ctx.key_health.plans(&routes, routing, targets).await;
    let held: Vec<String> = plans
        .plans
        .iter()
        .filter_map(|(id, plan)| match plan {
            Plan::Hold(hold) => Some(hold.last_error(&routing.route(*id).name)),
            Plan::Send(_) => None,
        })
        .collect();
    if held.is_empty() {
        return Ok(());
    }
    tracing::error!(
        routes = held.len(),
        "Backfill refused: a route's write key or region is bad; nothing sent."
    );
    Err(BackfillError::Held(held.join("; ")))
}

/// Adds a finished object to the summary and, when it is done for good, to the state file.
fn settle(
    ctx: &Context,
    joined: Option<Result<FileReport, tokio::task::JoinError>>,
    state: Option<&StateFile>,
    summary: &mut Summary,
) -> Result<(), BackfillError> {
    let Some(joined) = joined else { return Ok(()) };
    let report = joined.unwrap_or_else(|error| FileReport {
        error: Some(format!("task failed: {error}")),
        ..FileReport::default()
    });
    ctx.progress.file_done();
    let shown = ctx.source.display(&report.key);
    if let Some(error) = &report.error {
        tracing::error!(key = %shown, error = %error, "Could not finish an object; it stays for the next run.");
    }
    if report.finished()
        && !ctx.run.dry_run
        && let Some(state) = state
    {
        state.mark_done(&report.key).map_err(|error| BackfillError::State {
            path: "--state".to_owned(),
            error,
        })?;
    }
    summary.add(report, &shown, ctx.samples);
    Ok(())
}

fn log_summary(summary: &Summary) {
    tracing::info!(
        files_selected = summary.files_selected,
        files_finished = summary.files_finished,
        files_failed = summary.files_failed,
        records = summary.records,
        delivered = summary.delivered,
        skipped = summary.skipped.values().sum::<u64>(),
        dead_lettered = summary.dead_lettered.values().sum::<u64>(),
        undelivered = summary.undelivered,
        files_without_queue_hour = summary.files_without_queue_hour,
        window = %summary.window,
        dry_run = summary.dry_run,
        "Backfill finished."
    );
}

/// Builds the production [`Backfill`] for `options.source` from the environment: S3 or a
/// local folder, Segment over HTTPS, dead letters to `DEAD_LETTER_QUEUE_URL` or the
/// `--failures` file. Needs a write key on every route unless `--dry-run`.
pub async fn from_env(options: &BackfillOptions) -> Result<Backfill, BackfillError> {
    let config = Config::from_env()?;
    if !options.dry_run
        && let Some(route) = config.routing.routes().iter().find(|r| r.write_key.is_none())
    {
        return Err(BackfillError::Usage(format!(
            "no Segment write key for route `{}`: set SEGMENT_WRITE_KEY (or use --dry-run)",
            route.name
        )));
    }
    let source: Arc<dyn ObjectSource> = match parse_s3_url(&options.source) {
        Some((bucket, prefix)) => Arc::new(S3Source::new(s3_client_from_env().await, bucket, prefix)),
        None if options.source.starts_with("s3://") => {
            return Err(BackfillError::Usage(format!(
                "`{}` is not s3://bucket/prefix",
                options.source
            )));
        }
        None => Arc::new(LocalDir::new(&options.source)),
    };
    let dead_letter_url = std::env::var("DEAD_LETTER_QUEUE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .map(|url| crate::config::QueueUrl::parse("DEAD_LETTER_QUEUE_URL", &url))
        .transpose()?;
    let dead_letters: Arc<dyn Park> = match &dead_letter_url {
        Some(url) => Arc::new(
            crate::park::SqsQueue::new(crate::park::client_from_env().await, url.as_str())
                .with_max_message_bytes(config.queues.park_message_max_bytes)
                .with_metrics_function("backfill"),
        ),
        None => Arc::new(JsonlFile::new(&options.failures)),
    };
    let segment = crate::segment::SegmentHttp::new(&config.segment)
        .map_err(|e| BackfillError::Usage(format!("cannot build the Segment client: {e}")))?;
    let settings = SettingsHttp::with_client(segment.http_client());
    Ok(Backfill {
        key_health: Arc::new(KeyHealth::new(Arc::new(settings), SETTINGS_TIMEOUT)),
        source,
        segment: Arc::new(segment),
        dead_letters,
        clock: Arc::new(crate::ports::SystemClock),
        policy: backfill_policy(config.segment.request_timeout),
        config: Arc::new(config),
        progress_bar: std::io::stderr().is_terminal(),
    })
}

/// `currents-segment backfill …` as a whole: runs or enqueues, and prints the summary to `out`.
/// `Ok(true)` when every selected object was read and every record accounted for (exit 0),
/// `Ok(false)` otherwise (exit 1); an error is a usage or configuration problem (exit 2).
pub(crate) async fn execute(options: &BackfillOptions, out: &mut dyn std::io::Write) -> Result<bool, BackfillError> {
    options.run_options().map_err(BackfillError::Usage)?;
    let summary = match &options.enqueue {
        Some(queue_url) => {
            let summary = enqueue::enqueue_from_env(options, queue_url).await?;
            let _ = writeln!(out, "Enqueued {} objects on {queue_url}", summary.files_selected);
            let _ = write!(out, "{}", summary.render_window());
            summary
        }
        None => {
            let summary = run(options, from_env(options).await?).await?;
            let _ = write!(out, "{}", summary.render());
            summary
        }
    };
    Ok(summary.ok())
}

/// [`execute`] on a runtime of its own, for the command line.
pub fn run_blocking(options: &BackfillOptions, out: &mut dyn std::io::Write) -> Result<bool, BackfillError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BackfillError::Runtime)?;
    runtime.block_on(execute(options, out))
}

/// `currents-segment backfill ARGS…` with everything it prints going to `out`, errors included
/// (the binary sends errors to stderr instead): `args` come after the word `backfill` and are
/// parsed by the one command-line tree ([`crate::cli::Cli`]). Returns the process exit code:
/// 0 when every selected object was read and every record accounted for, 1 otherwise, 2 on a
/// usage or configuration error (0 for `--help`).
pub async fn command(args: &[String], out: &mut (dyn std::io::Write + Send)) -> u8 {
    let options = match crate::cli::parse_backfill(args) {
        Ok(options) => options,
        Err(error) => {
            let _ = write!(out, "{error}");
            return if error.use_stderr() { 2 } else { 0 };
        }
    };
    match execute(&options, out).await {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(error) => {
            let _ = writeln!(out, "currents-segment backfill: {error}");
            2
        }
    }
}
