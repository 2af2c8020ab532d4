//! Backfill figures; run with `cargo bench --bench backfill` (pin to one core with
//! `taskset -c 0 cargo bench --bench backfill` for the one-core figure).
//!
//! Writes 1,000,000 `users.messages.email.Open` records in 50 Avro files (snappy, blocks of
//! 1,000) to a temporary folder once, then measures each mode in a child process of its own so
//! each peak RSS is its own:
//! - `floor`: apache-avro's own decode of every file to its generic `Value`, nothing else;
//! - `dry`: `backfill --dry-run` (decode, filter, map: the whole path except sending);
//! - `send`: a full backfill to a Segment stand-in on loopback that answers 200 at once.
//!
//! For each: events, wall seconds, CPU seconds (user + system), events per CPU second, and peak
//! RSS (VmHWM). Events per CPU second is the one-core throughput whatever the core count.
//!
//! `--write-export=DIR` instead writes the mixed export `BENCHMARKS.md` times the
//! `currents-segment backfill --dry-run` binary on, end to end, and exits.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/avro.rs"]
mod fixtures;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use apache_avro::{Codec, Reader};
use clap::Parser;
use common::fault_segment::{Fault, FaultSegment};
use currents_segment::backfill::{Backfill, BackfillOptions, JsonlFile, LocalDir, backfill_policy, run};
use currents_segment::ports::SystemClock;
use currents_segment::segment::SegmentHttp;
use fixtures::{Family, braze_key, families, family_file};

const FILES: usize = 50;
const PER_FILE: usize = 20_000;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    options: BackfillOptions,
}

fn family() -> Family {
    Family {
        event_type: "users.messages.email.Open",
        fields: "id! user_id! external_user_id time:int! app_group_id timezone campaign_id campaign_name \
                 message_variation_id message_variation_name canvas_id canvas_name canvas_variation_id \
                 canvas_variation_name canvas_step_id canvas_step_name dispatch_id email_address! send_id \
                 user_agent ip_pool machine_open esp from_domain is_amp:boolean device_class device_os \
                 device_model browser mailbox_provider"
            .to_owned(),
    }
}

/// Records per file of `--write-export`.
const EXPORT_PER_FILE: usize = 40_000;

/// 400,000 records in 10 files in Braze's key layout (snappy, blocks of 1,000): six of email
/// opens, two of custom events and two of purchases (whose `properties` are JSON text).
fn write_export(dir: &Path) {
    let families = families();
    let plan = [
        ("users.messages.email.Open", 6),
        ("users.behaviors.CustomEvent", 2),
        ("users.behaviors.Purchase", 2),
    ];
    let mut n = 0;
    for (event_type, files) in plan {
        let family = families.iter().find(|f| f.event_type == event_type).unwrap();
        for _ in 0..files {
            let path = dir.join(braze_key("", event_type, "2025-11-24-16", n as u64));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let records = n * EXPORT_PER_FILE..(n + 1) * EXPORT_PER_FILE;
            std::fs::write(path, family_file(family, records, Codec::Snappy, 1_000, None)).unwrap();
            n += 1;
        }
    }
    eprintln!("wrote {} events in {n} files to {}", n * EXPORT_PER_FILE, dir.display());
}

fn data_dir() -> PathBuf {
    std::env::temp_dir().join("currents-segment-backfill-bench")
}

fn generate(dir: &Path) {
    let family = family();
    for n in 0..FILES {
        let key = braze_key("", family.event_type, "2025-11-24-16", n as u64);
        let path = dir.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes = family_file(&family, n * PER_FILE..(n + 1) * PER_FILE, Codec::Snappy, 1_000, None);
        std::fs::write(path, bytes).unwrap();
    }
}

fn avro_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            avro_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "avro") {
            out.push(path);
        }
    }
}

fn floor(dir: &Path) -> u64 {
    let mut files = Vec::new();
    avro_files(dir, &mut files);
    let mut events = 0;
    for path in files {
        let file = std::io::BufReader::with_capacity(256 * 1024, std::fs::File::open(path).unwrap());
        for value in Reader::new(file).unwrap() {
            std::hint::black_box(value.unwrap());
            events += 1;
        }
    }
    events
}

async fn backfill(dir: &Path, dry: bool) -> u64 {
    let stand_in = FaultSegment::start(&[], Fault::Ok).await;
    let config = common::config(&[("SEGMENT_ENDPOINT", &stand_in.url)]);
    let mut args = vec!["backfill".to_owned(), dir.display().to_string()];
    args.extend(["--max-rps", "1000000", "--concurrency", "2"].map(String::from));
    if dry {
        args.push("--dry-run".into());
    }
    let options = Cli::parse_from(args).options;
    let deps = Backfill {
        source: Arc::new(LocalDir::new(dir)),
        segment: Arc::new(SegmentHttp::new(&config.segment).unwrap()),
        dead_letters: Arc::new(JsonlFile::new(
            std::env::temp_dir().join("backfill-bench-failures.jsonl"),
        )),
        clock: Arc::new(SystemClock),
        policy: backfill_policy(config.segment.request_timeout),
        config: Arc::new(config),
        progress_bar: false,
        key_health: common::settings::trusting_key_health(),
    };
    let summary = run(&options, deps).await.unwrap();
    assert!(summary.ok(), "{}", summary.render());
    summary.records
}

/// (user + system CPU seconds, peak RSS in KiB) of this process, from /proc.
fn usage() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map_or(0.0, |f| f.iter().map(|t| t.parse::<f64>().unwrap_or(0.0)).sum());
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (ticks / 100.0, hwm)
}

fn child(mode: &str) {
    let dir = data_dir();
    let started = Instant::now();
    let events = match mode {
        "floor" => floor(&dir),
        "dry" | "send" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
            .block_on(backfill(&dir, mode == "dry")),
        _ => unreachable!("modes are fixed"),
    };
    let wall = started.elapsed().as_secs_f64();
    let (cpu, rss) = usage();
    println!("{mode} {events} {wall:.3} {cpu:.3} {rss}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(mode) = args.iter().find_map(|a| a.strip_prefix("--mode=")) {
        return child(mode);
    }
    if let Some(dir) = args.iter().find_map(|a| a.strip_prefix("--write-export=")) {
        return write_export(Path::new(dir));
    }
    let dir = data_dir();
    if !dir.join("done").exists() {
        let started = Instant::now();
        generate(&dir);
        std::fs::write(dir.join("done"), b"").unwrap();
        eprintln!(
            "wrote {} events in {FILES} files in {:.1}s",
            FILES * PER_FILE,
            started.elapsed().as_secs_f64()
        );
    }
    let mut rates = std::collections::HashMap::new();
    println!("mode   events     wall s   cpu s   events/cpu-s   events/wall-s   peak RSS MiB");
    for mode in ["floor", "dry", "send"] {
        let out = Command::new(std::env::current_exe().unwrap())
            .arg(format!("--mode={mode}"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().last().unwrap_or_default().to_owned();
        let f: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap_or(0.0))
            .collect();
        if f.len() < 4 {
            eprintln!("{mode} failed: {line} {}", String::from_utf8_lossy(&out.stderr));
            continue;
        }
        let per_cpu = f[0] / f[2].max(1e-3);
        rates.insert(mode, per_cpu);
        println!(
            "{mode:<6} {:>9} {:>8.2} {:>7.2} {:>14.0} {:>15.0} {:>14.1}",
            f[0],
            f[1],
            f[2],
            per_cpu,
            f[0] / f[1].max(1e-3),
            f[3] / 1024.0
        );
    }
    if let (Some(dry), Some(floor)) = (rates.get("dry"), rates.get("floor")) {
        println!(
            "dry-run / apache-avro decode floor (per CPU second): {:.2}x",
            dry / floor
        );
    }
}
