//! Backfilling an outage by Braze's queue hour (`--window queued`, issue 21 case 2) against
//! selecting by event `time` (`--window event`, the default). Braze's `date=` folder is the hour
//! it queued an event; an offline device's event can be queued during the outage with a `time`
//! from the day before, and an event queued after the outage can carry a `time` inside it.

mod common;
#[path = "common/avro.rs"]
mod fixtures;
#[path = "common/avro_run.rs"]
mod runs;

use std::path::Path;
use std::sync::Arc;

use apache_avro::Codec;
use clap::Parser;
use common::{FixedClock, RecordingQueue, ScriptedSegment, quick_policy};
use currents_segment::backfill::{
    Backfill, BackfillOptions, BackfillWorker, LocalDir, ObjectSource, Summary, enqueue, handle_tasks, run,
};
use fixtures::{braze_key, families, family_file};
use runs::tree;
use serde_json::{Value, json};

/// 2025-11-24T16:00:00Z: the `time` of fixture record 0; record `i` is `i` minutes later.
const T0: i64 = 1_764_000_000;
const OPEN: &str = "users.messages.email.Open";
/// The outage: Segment refused the key from 09:00 to 17:30 UTC on 2025-11-25.
const SINCE: &str = "2025-11-25T09:00:00Z";
const UNTIL: &str = "2025-11-25T17:30:00Z";

/// One email.Open file per row: (queue hour, records). Record `i`'s `time` is T0 + `i` minutes,
/// so 1,020 is 2025-11-25T09:00Z and 1,530 is 17:30Z. None is a third record (`i % 3 == 2`),
/// which has no `external_user_id`, so every record here becomes a message.
const EXPORT: [(&str, &[usize]); 8] = [
    ("2025-11-25-08", &[1005]),       // 08:45, queued before the outage
    ("2025-11-25-09", &[1021]),       // 09:01, queued during it
    ("2025-11-25-10", &[0, 1]),       // offline device: `time` the day before, queued during it
    ("2025-11-25-10", &[1080, 1081]), // 10:00 and 10:01
    ("2025-11-25-17", &[1524]),       // 17:24, in the outage's last (partial) hour
    ("2025-11-25-17", &[1545]),       // 17:45, queued after the outage but in that hour
    ("2025-11-25-18", &[1560]),       // 18:00, after
    ("2025-11-25-19", &[1200]),       // `time` 12:00 inside the outage, queued after it
];

/// Records queued during the outage's hours (09 to 17 inclusive): what Segment never got,
/// plus 1545 from the partial last hour.
const QUEUED_IN_OUTAGE_HOURS: [usize; 7] = [1021, 0, 1, 1080, 1081, 1524, 1545];

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    options: BackfillOptions,
}

/// Options from a command line; a flag this build does not know fails the test, not the process.
fn options(source: &Path, extra: &[&str]) -> BackfillOptions {
    let mut args = vec!["backfill".to_owned(), source.display().to_string()];
    args.extend(["--max-rps", "100000"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    match Cli::try_parse_from(args) {
        Ok(cli) => cli.options,
        Err(error) => panic!("the command line does not parse: {error}"),
    }
}

fn export_files() -> Vec<(String, Vec<u8>)> {
    let families = families();
    let open = families.iter().find(|f| f.event_type == OPEN).unwrap();
    EXPORT
        .iter()
        .enumerate()
        .map(|(n, (hour, records))| {
            let from = records[0];
            assert!(records.iter().all(|i| i % 3 != 2), "a fixture record without a user");
            // Consecutive indices only: one file is one range of records.
            assert_eq!(records.last().unwrap() + 1 - from, records.len());
            let file = family_file(open, from..from + records.len(), Codec::Null, 2, None);
            (braze_key("", OPEN, hour, n as u64), file)
        })
        .collect()
}

fn ids(records: &[usize]) -> Vec<String> {
    let mut ids: Vec<String> = records.iter().map(|i| format!("email.Open-{i}")).collect();
    ids.sort();
    ids
}

fn delivered(segment: &ScriptedSegment) -> Vec<String> {
    let mut ids = segment.delivered_ids();
    ids.sort();
    ids
}

fn deps(root: &Path, segment: Arc<ScriptedSegment>) -> Backfill {
    Backfill {
        source: Arc::new(LocalDir::new(root)),
        segment,
        dead_letters: RecordingQueue::new(),
        clock: FixedClock::at(T0 + 3 * 86_400),
        config: Arc::new(common::config(&[])),
        policy: quick_policy(),
        progress_bar: false,
        key_health: common::settings::trusting_key_health(),
    }
}

async fn backfill(root: &Path, extra: &[&str]) -> (Summary, Vec<String>) {
    let segment = ScriptedSegment::new();
    let mut args = vec!["--since", SINCE, "--until", UNTIL];
    args.extend_from_slice(extra);
    let summary = run(&options(root, &args), deps(root, segment.clone())).await.unwrap();
    (summary, delivered(&segment))
}

/// The fault, kept as the reason for `--window queued`: selecting by event `time`
/// skips the offline device's events queued during the outage and sends again an event the
/// live path delivered after it.
#[tokio::test]
async fn the_event_window_misses_late_events_queued_in_the_outage_and_resends_later_ones() {
    let root = tree(&export_files());
    let (summary, sent) = backfill(&root, &[]).await;
    assert!(summary.ok(), "{}", summary.render());
    assert_eq!(sent, ids(&[1021, 1080, 1081, 1524, 1200]));
    // Missed: 0 and 1 never reached Segment. Skipped too: 1545 and 1560 (after the window).
    assert_eq!(summary.skipped["outside_time_window"], 4, "{}", summary.render());
    assert!(!sent.contains(&"email.Open-0".to_owned()));
    // Sent twice: 1200 was queued at 19:00, after the outage, so the live path delivered it.
    assert!(sent.contains(&"email.Open-1200".to_owned()));
    let text = summary.render();
    assert!(
        text.contains("window: event time"),
        "the summary names the window: {text}"
    );

    let (explicit, again) = backfill(&root, &["--window", "event"]).await;
    assert_eq!((again, explicit.records), (sent, summary.records));
}

#[tokio::test]
async fn the_queued_window_sends_every_event_queued_in_the_outage_hours_and_nothing_else() {
    let root = tree(&export_files());
    let (summary, sent) = backfill(&root, &["--window", "queued"]).await;
    assert!(summary.ok(), "{}", summary.render());
    assert_eq!(sent, ids(&QUEUED_IN_OUTAGE_HOURS));
    // Exactly the objects of hours 09 to 17: whole hours, the partial last one included.
    assert_eq!(summary.files_selected, 5, "{}", summary.render());
    assert_eq!(summary.records, QUEUED_IN_OUTAGE_HOURS.len() as u64);
    assert!(
        !summary.skipped.contains_key("outside_time_window"),
        "no event of a selected object is skipped for its time: {}",
        summary.render()
    );
    let text = summary.render();
    assert!(
        text.contains("window: queued hour") && text.contains("2025-11-25-09 to 2025-11-25-17"),
        "{text}"
    );
}

#[tokio::test]
async fn a_dry_run_names_the_window_and_bad_window_flags_are_usage_errors() {
    let root = tree(&export_files());
    let dir = root.display().to_string();
    let command = |args: &[&str]| {
        let args: Vec<String> = std::iter::once(dir.clone())
            .chain(args.iter().map(|s| s.to_string()))
            .collect();
        async move {
            let mut out = Vec::new();
            let code = currents_segment::backfill::command(&args, &mut out).await;
            (code, String::from_utf8(out).unwrap())
        }
    };
    let (code, text) = command(&["--window", "queued", "--since", SINCE, "--until", UNTIL, "--dry-run"]).await;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("dry run") && text.contains("window: queued hour") && text.contains("would_deliver=7"),
        "{text}"
    );
    let (code, text) = command(&["--since", SINCE, "--until", UNTIL, "--dry-run"]).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("window: event time"), "{text}");

    // `--lag-hours` widens an event-time window; with the queue hour it would mean nothing.
    let (code, text) = command(&["--window", "queued", "--lag-hours", "48", "--dry-run"]).await;
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("--lag-hours") && text.contains("--window queued"),
        "{text}"
    );
    let (code, text) = command(&["--window", "received", "--dry-run"]).await;
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--window"), "{text}");
}

/// An object whose key has no `date=YYYY-MM-DD-HH` folder cannot be placed in a queue hour:
/// `--window queued` reads no such object, counts and names each one, and exits 1; the
/// event window reads them as before and judges their records by `time`.
#[tokio::test]
async fn objects_without_a_queue_hour_are_counted_and_named_never_skipped_silently() {
    let mut files = export_files();
    let families = families();
    let open = families.iter().find(|f| f.event_type == OPEN).unwrap();
    let loose = family_file(open, 1083..1085, Codec::Null, 2, None);
    files.push(("copy/loose.avro".to_owned(), loose.clone()));
    files.push((format!("copy/event_type={OPEN}/date=2025-11-25/a.avro"), loose));
    let root = tree(&files);

    let (summary, sent) = backfill(&root, &["--window", "queued"]).await;
    assert_eq!(sent, ids(&QUEUED_IN_OUTAGE_HOURS), "the placed objects are still sent");
    assert_eq!(summary.files_without_queue_hour, 2, "{}", summary.render());
    assert!(!summary.ok(), "an object left unread fails the run");
    let text = summary.render();
    assert!(
        text.contains("2 objects have no date=YYYY-MM-DD-HH folder")
            && text.contains("copy/loose.avro")
            && text.contains("date=2025-11-25/a.avro"),
        "{text}"
    );

    let (summary, sent) = backfill(&root, &[]).await;
    assert!(summary.ok(), "{}", summary.render());
    assert_eq!(summary.files_without_queue_hour, 0);
    // 1083 and 1084 (10:03, 10:04) of both loose copies, by their `time`.
    assert!(sent.contains(&"email.Open-1083".to_owned()), "{sent:?}");

    let mut out = Vec::new();
    let args = [
        root.display().to_string(),
        "--window".into(),
        "queued".into(),
        "--dry-run".into(),
    ];
    let code = currents_segment::backfill::command(&args, &mut out).await;
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&out));
}

fn worker_over(root: &Path, segment: Arc<ScriptedSegment>) -> BackfillWorker {
    let source_root = root.to_path_buf();
    BackfillWorker {
        source_for: Box::new(move |_bucket: &str| Arc::new(LocalDir::new(&source_root)) as Arc<dyn ObjectSource>),
        segment,
        dead_letters: RecordingQueue::new(),
        clock: FixedClock::at(T0 + 3 * 86_400),
        config: Arc::new(common::config(&[])),
        policy: quick_policy(),
        key_health: common::settings::trusting_key_health(),
    }
}

/// The Lambda fan-out carries the window: `--enqueue` writes one task per object of the
/// outage's hours, in a version the functions built before the window refuse (so they cannot
/// read it as an event-time task), and the function sends every event of each object.
#[tokio::test]
async fn the_fan_out_carries_the_queued_window_to_the_backfill_function() {
    let root = tree(&export_files());
    let opts = options(&root, &["--window", "queued", "--since", SINCE, "--until", UNTIL]);
    let run_options = opts.run_options().unwrap();
    let queue = RecordingQueue::new();
    let enqueued = enqueue(&LocalDir::new(&*root), "archive", &run_options, &*queue)
        .await
        .unwrap();
    assert_eq!(enqueued.files_selected, 5);
    let tasks: Vec<Value> = queue.envelopes();
    assert_eq!(tasks.len(), 5);
    for task in &tasks {
        assert_eq!(task["version"], 2, "{task}");
        assert_eq!(task["options"]["window"], "queued", "{task}");
        let key = task["key"].as_str().unwrap();
        let hour = &key[key.find("date=").unwrap() + 5..][..13];
        assert!(("2025-11-25-09"..="2025-11-25-17").contains(&hour), "{key}");
    }

    let segment = ScriptedSegment::new();
    let worker = worker_over(&root, segment.clone());
    let bodies: Vec<String> = tasks.iter().map(Value::to_string).collect();
    let response = handle_tasks(&worker, common::sqs_event(&bodies, 1)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(delivered(&segment), ids(&QUEUED_IN_OUTAGE_HOURS));

    // A task as older commands wrote it (version 1, no window) still selects by event time.
    let offline = root.join(&export_files()[2].0).display().to_string();
    let old = json!({"version": 1, "bucket": "archive", "key": offline,
        "options": {"since": T0 + 17 * 3_600, "until": T0 + 25 * 3_600 + 1_800, "lag_hours": 24}});
    let quiet = ScriptedSegment::new();
    let response = handle_tasks(
        &worker_over(&root, quiet.clone()),
        common::sqs_event(&[old.to_string()], 1),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(quiet.requests(), 0, "both events are outside the event-time window");

    // A queued-window task for an object with no queue hour is left to SQS, not dropped.
    let loose = root.join("loose.avro");
    std::fs::copy(&offline, &loose).unwrap();
    let task = json!({"version": 2, "bucket": "archive", "key": loose.display().to_string(),
        "options": {"window": "queued"}});
    let response = handle_tasks(&worker, common::sqs_event(&[task.to_string()], 1)).await;
    assert_eq!(response.batch_item_failures.len(), 1);
}
