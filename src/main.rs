//! `currents-segment`: preview what Segment would receive, and check configuration.

use std::process::ExitCode;

use currents_segment::cli;
use currents_segment::config::Config;

fn main() -> ExitCode {
    // SAFETY: no other thread exists yet.
    if let Err(error) = unsafe { currents_segment::aws_env::clean_process_env() } {
        eprintln!("currents-segment: {error}");
        return ExitCode::from(2);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("backfill") {
        return backfill(&args[1..]);
    }
    let mut stdout = std::io::stdout().lock();
    match cli::run(&args, Config::from_env, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let text = error.to_string();
            eprintln!("currents-segment: {}", text.lines().next().unwrap_or_default());
            for line in text.lines().skip(1) {
                eprintln!("{line}");
            }
            ExitCode::from(error.exit_code())
        }
    }
}

/// `currents-segment backfill …`: exit 0 when every record is accounted for, 1 when a file could
/// not be read or an event is unaccounted for, 2 for bad arguments or configuration.
fn backfill(args: &[String]) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("currents-segment: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let mut stdout = std::io::stdout();
    ExitCode::from(runtime.block_on(currents_segment::backfill::command(args, &mut stdout)))
}
