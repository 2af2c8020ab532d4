//! `currents-segment`: preview what Segment would receive, check configuration, work the
//! dead-letter queue, backfill from storage exports. One clap tree: `currents_segment::cli`.

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
