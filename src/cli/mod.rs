//! The `currents-segment` command line: preview the mapping and check configuration, using the
//! same code path as the Lambdas and needing no write key, token or AWS settings; work the
//! dead-letter queue; backfill from Currents storage exports.
//!
//! Arguments are parsed by `clap` (derive), in one tree: every subcommand is a variant of
//! [`Command`]. To add one: add a variant with a doc comment (it becomes the `--help` text)
//! and an args struct if it takes any, put its code in a module beside this one (or its own
//! module, as `dlq` and `backfill`), and add one arm to [`Command::run`]. Every failure is a
//! [`CliError`], which the binary turns into lines on stderr and [`CliError::exit_code`].

mod check_config;
mod event_names;
mod transform;

use std::io::Write;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};

pub use check_config::CheckConfigArgs;
pub(crate) use transform::TransformArgs;

/// `currents-segment`: the arguments of one run.
#[derive(Debug, Parser)]
#[command(
    name = "currents-segment",
    version,
    about = "Preview what Segment would receive from a Braze Currents body, and check configuration.",
    after_help = "Configuration comes from the same environment variables as the Lambdas (see README).",
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands. Each variant's doc comment is its one-line `--help` summary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Map a Currents body (FILE or stdin) to Segment messages as JSON on stdout (--summary: counts)
    Transform(TransformArgs),
    /// Validate the environment configuration and print it, secrets redacted
    CheckConfig(check_config::CheckConfigArgs),
    /// Print the effective event_type -> Segment event table of each route
    EventNames(event_names::EventNamesArgs),
    /// Work the DeadLetterQueue: stats, peek, export, redrive
    Dlq(crate::dlq::DlqArgs),
    /// Replay Currents storage exports (Avro, in S3 or a local folder) into Segment
    Backfill(crate::backfill::BackfillOptions),
}

impl Command {
    /// Runs the subcommand; `config` is read only by the subcommands that need it.
    pub fn run(
        self,
        config: impl FnOnce() -> Result<Config, ConfigError>,
        out: &mut dyn Write,
    ) -> Result<(), CliError> {
        match self {
            Self::Transform(args) => transform::run(&args, config, out),
            Self::CheckConfig(args) => match config() {
                Ok(config) => check_config::run(&args, &config, out),
                Err(first) => Err(check_config::every_invalid_value(first, |k| std::env::var(k).ok())),
            },
            Self::EventNames(args) => event_names::run(&args, config, out),
            Self::Dlq(args) => Ok(crate::dlq::run_blocking(&args, out)?),
            Self::Backfill(options) => match crate::backfill::run_blocking(&options, out)? {
                true => Ok(()),
                false => Err(CliError::Unfinished),
            },
        }
    }
}

/// A failure that ends the command with exit code 2 and one line on stderr (usage errors add
/// clap's usage lines after it).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The arguments do not parse; the text is clap's message without its `error: ` prefix.
    #[error("{0}")]
    Usage(String),
    /// The input file (or stdin, named `stdin`) could not be read.
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    /// The body is not a Currents batch.
    #[error("unreadable body: {0}")]
    Body(#[from] crate::currents::BodyError),
    /// The environment configuration is invalid; never quotes a secret.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// `--route` names no configured route.
    #[error("unknown route `{0}`")]
    UnknownRoute(String),
    /// A `dlq` command failed (queue, S3 or output).
    #[error("{0}")]
    Dlq(#[from] crate::dlq::DlqError),
    /// stdout could not be written.
    #[error("cannot write output: {0}")]
    Write(std::io::Error),
    /// `check-config` found values that do not parse: every one, a line each, never a secret.
    /// Exit code 2, as for any configuration that does not parse.
    #[error("invalid configuration:\n{0}")]
    InvalidValues(String),
    /// `check-config --online` found a route whose write key Segment does not know, or that
    /// sends to the wrong region; one line per route, never a key. Exit code 1.
    #[error("{0}")]
    KeyCheck(String),
    /// `check-config` found settings ingest or replay would still need (its `problems`, one
    /// per line, never a secret). Exit code 1, after the report is printed.
    #[error("not ready for Lambda:\n{0}")]
    NotReady(String),
    /// A `backfill` could not start or was refused (bad flags, configuration, source, state
    /// file, a held write key). Nothing of the run is lost: run it again once fixed.
    #[error("{0}")]
    Backfill(#[from] crate::backfill::BackfillError),
    /// A `backfill` ran, but a file failed, a record is undelivered or an object had no queue
    /// hour; the summary on stdout names them. Exit code 1.
    #[error("backfill incomplete: see the summary (FAILED / NOT READ lines); run the same command again once fixed")]
    Unfinished,
}

impl CliError {
    /// The process exit code: 1 when a check found a bad key or region or a missing setting,
    /// or a backfill left something unaccounted for; 2 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::KeyCheck(_) | Self::NotReady(_) | Self::Unfinished => 1,
            _ => 2,
        }
    }
}

/// Runs the command named by `args` (without the program name). `--help` and `--version`
/// print to `out` and succeed; a usage error is [`CliError::Usage`].
pub fn run(
    args: &[String],
    config: impl FnOnce() -> Result<Config, ConfigError>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let program = std::iter::once("currents-segment");
    match Cli::try_parse_from(program.chain(args.iter().map(String::as_str))) {
        Ok(cli) => cli.command.run(config, out),
        Err(error) if !error.use_stderr() => write!(out, "{}", error.render()).map_err(CliError::Write),
        Err(error) => Err(usage_error(&error)),
    }
}

/// `currents-segment backfill ARGS…` parsed by this tree: the backfill's options, or clap's
/// error (which is also how `--help` arrives; [`clap::Error::use_stderr`] tells them apart).
pub(crate) fn parse_backfill(args: &[String]) -> Result<crate::backfill::BackfillOptions, clap::Error> {
    let words = ["currents-segment", "backfill"].into_iter().map(str::to_owned);
    match Cli::try_parse_from(words.chain(args.iter().cloned()))?.command {
        Command::Backfill(options) => Ok(options),
        // The first word is `backfill`, so clap either picks that subcommand or fails.
        _ => Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand)),
    }
}

fn usage_error(error: &clap::Error) -> CliError {
    let text = error.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    CliError::Usage(text.trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> (Result<(), CliError>, String) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let mut out = Vec::new();
        let result = run(&args, || Config::from_lookup(|_| None), &mut out);
        (result, String::from_utf8(out).unwrap())
    }

    #[test]
    fn help_and_version_print_to_stdout_and_succeed() {
        for args in [&["--help"][..], &["-h"], &["help"]] {
            let (result, out) = run_args(args);
            assert!(result.is_ok(), "{args:?}");
            assert!(out.contains("transform") && out.contains("check-config"), "{out}");
            assert!(out.contains("\n  backfill "), "listed like the others: {out}");
        }
        let (result, out) = run_args(&["--version"]);
        assert!(result.is_ok());
        assert_eq!(out, format!("currents-segment {}\n", env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn each_subcommand_has_its_own_help() {
        let (result, out) = run_args(&["transform", "--help"]);
        assert!(result.is_ok());
        assert!(out.contains("--route") && out.contains("[FILE]"), "{out}");
        let (result, out) = run_args(&["help", "check-config"]);
        assert!(result.is_ok());
        assert!(out.contains("secrets redacted"), "{out}");
        let (result, out) = run_args(&["backfill", "--help"]);
        assert!(result.is_ok());
        assert!(
            out.contains("Usage: currents-segment backfill [OPTIONS] <SOURCE>"),
            "{out}"
        );
    }

    #[test]
    fn bad_arguments_are_usage_errors_that_name_the_problem() {
        for (args, needle) in [
            (&[][..], "Usage:"),
            (&["frobnicate"], "frobnicate"),
            (&["transform", "--route"], "--route"),
            (&["transform", "--colour", "x"], "--colour"),
            (&["transform", "a.json", "b.json"], "b.json"),
            (&["backfill"], "<SOURCE>"),
            (&["backfill", "dir", "--window", "received"], "--window"),
        ] {
            match run_args(args).0 {
                Err(CliError::Usage(text)) => {
                    assert!(text.contains(needle), "{args:?}: {text}");
                    assert!(!text.starts_with("error:"), "{text}");
                }
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }
}
