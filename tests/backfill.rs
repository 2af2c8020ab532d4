//! Backfill from a local folder of Avro files that the tests write with `apache-avro`: the same
//! messages as the HTTP path, every codec, schema changes, filters, accounting, dead letters,
//! corrupt files and resume.

mod common;
#[path = "common/avro.rs"]
mod fixtures;
#[path = "common/avro_run.rs"]
mod runs;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use apache_avro::Codec;
use common::{FixedClock, RecordingQueue, ScriptedSegment, quick_policy};
use currents_segment::backfill::{Backfill, JsonlFile, LocalDir, run};
use currents_segment::config::Config;
use currents_segment::ports::{AttemptError, Deliver, Park};
use currents_segment::transform::transform_body;
use fixtures::{Family, braze_key, codecs, families, family_file, http_twin};
use runs::{killed_run, options, sent_by_id, tree};
use serde_json::{Value, json};

/// 2025-11-24T16:00:00Z, the `time` of record 0 of every fixture.
const T0: i64 = 1_764_000_000;
const HOUR: &str = "2025-11-24-16";

/// A configuration that names every fixture type the built-in table does not, so each
/// produces messages.
fn config_naming_all() -> Config {
    let names: HashMap<String, String> = families()
        .iter()
        .filter(|f| currents_segment::mapping::builtin(f.event_type).is_none())
        .map(|f| (f.event_type.to_owned(), format!("Backfill {}", f.event_type)))
        .collect();
    common::config(&[("EVENT_NAMES", &serde_json::to_string(&names).unwrap())])
}

fn deps(root: &Path, segment: Arc<dyn Deliver>, dead: Arc<dyn Park>, config: Config) -> Backfill {
    Backfill {
        source: Arc::new(LocalDir::new(root)),
        segment,
        dead_letters: dead,
        clock: FixedClock::at(T0 + 86_400),
        config: Arc::new(config),
        policy: quick_policy(),
        progress_bar: false,
        key_health: common::settings::trusting_key_health(),
    }
}

/// Sends a tree of files with the default configuration and a healthy Segment.
async fn send_tree(files: &[(String, Vec<u8>)]) -> (currents_segment::backfill::Summary, Arc<ScriptedSegment>) {
    let root = tree(files);
    let segment = ScriptedSegment::new();
    let deps = deps(&root, segment.clone(), RecordingQueue::new(), common::config(&[]));
    (run(&options(&root, &[]), deps).await.unwrap(), segment)
}

/// The email.Open fixture family, used where any one type will do.
fn email_open() -> Family {
    families()
        .into_iter()
        .find(|f| f.event_type == "users.messages.email.Open")
        .unwrap()
}

fn file_of(family: &Family, n: usize, codec: Codec) -> (String, Vec<u8>) {
    (
        braze_key("", family.event_type, HOUR, n as u64),
        family_file(family, 0..7, codec, 3, None),
    )
}

#[tokio::test]
async fn every_event_family_gives_the_same_message_as_its_http_twin() {
    let families = families();
    let files: Vec<_> = families
        .iter()
        .enumerate()
        .map(|(n, f)| file_of(f, n, codecs()[n % 3]))
        .collect();
    let root = tree(&files);
    let segment = ScriptedSegment::new();
    let config = config_naming_all();
    let summary = run(
        &options(&root, &[]),
        deps(&root, segment.clone(), RecordingQueue::new(), config_naming_all()),
    )
    .await
    .unwrap();
    assert!(summary.ok(), "{}", summary.render());
    assert_eq!(summary.files_finished, families.len() as u64);
    let sent = sent_by_id(&segment);
    let mut compared = 0;
    for family in &families {
        let twins: Vec<Value> = (0..7).map(|i| http_twin(family, i, None)).collect();
        let body = json!({ "events": twins }).to_string();
        let expected = transform_body(
            body.as_bytes(),
            &config.routing,
            config.routing.find("default").unwrap(),
        )
        .unwrap();
        let outcomes = &summary.by_event_type[family.event_type];
        assert_eq!(
            outcomes.get("delivered").copied().unwrap_or(0),
            expected.messages.len() as u64,
            "{}",
            family.event_type
        );
        assert_eq!(outcomes.values().sum::<u64>(), 7, "{}", family.event_type);
        for message in &expected.messages {
            let want: Value = serde_json::from_str(&message.json).unwrap();
            let id = want["messageId"].as_str().unwrap();
            assert_eq!(sent[id], want, "{} record {id}", family.event_type);
            compared += 1;
        }
    }
    // ToolInvocation has no user at all; every other family yields messages.
    assert!(
        compared >= (families.len() - 1) * 4,
        "only {compared} messages compared"
    );
}

#[tokio::test]
async fn a_newer_schema_with_an_extra_field_maps_it_as_a_property() {
    let family = email_open();
    let bytes = family_file(&family, 0..4, Codec::Snappy, 2, Some("brand_new_field"));
    let root = tree(&[(braze_key("", family.event_type, HOUR, 1), bytes)]);
    let segment = ScriptedSegment::new();
    let config = common::config(&[]);
    let summary = run(
        &options(&root, &[]),
        deps(&root, segment.clone(), RecordingQueue::new(), common::config(&[])),
    )
    .await
    .unwrap();
    assert!(summary.ok());
    let sent = sent_by_id(&segment);
    let twin = json!({ "events": [http_twin(&family, 0, Some("brand_new_field"))] }).to_string();
    let expected = transform_body(
        twin.as_bytes(),
        &config.routing,
        config.routing.find("default").unwrap(),
    )
    .unwrap();
    let want: Value = serde_json::from_str(&expected.messages[0].json).unwrap();
    assert_eq!(want["properties"]["brand_new_field"], "new-0");
    assert_eq!(sent[want["messageId"].as_str().unwrap()], want);
}

#[tokio::test]
async fn a_truncated_or_corrupt_file_is_reported_by_key_and_the_others_finish() {
    let family = email_open();
    let good = family_file(&family, 0..30, Codec::Null, 10, None);
    let mut cut = family_file(&family, 100..130, Codec::Deflate(Default::default()), 10, None);
    cut.truncate(cut.len() * 6 / 10);
    let files = vec![
        (braze_key("", family.event_type, HOUR, 1), good.clone()),
        (braze_key("", family.event_type, HOUR, 2), cut),
        (braze_key("", family.event_type, HOUR, 3), b"not avro at all".to_vec()),
        (
            braze_key("", family.event_type, HOUR, 4),
            family_file(&family, 200..230, Codec::Snappy, 10, None),
        ),
    ];
    let (summary, segment) = send_tree(&files).await;
    assert!(!summary.ok(), "a failed file must fail the run");
    assert_eq!((summary.files_finished, summary.files_failed), (2, 2));
    let failed: Vec<&str> = summary.failures.iter().map(|f| f.key.as_str()).collect();
    assert!(failed.iter().any(|k| k.ends_with("+0+0000000002.avro")), "{failed:?}");
    assert!(
        summary
            .failures
            .iter()
            .any(|f| f.error.contains("corrupt or truncated after")),
        "{:?}",
        summary.failures
    );
    assert!(
        summary
            .failures
            .iter()
            .any(|f| f.error.contains("not a readable Avro file"))
    );
    let sent = sent_by_id(&segment);
    // Every third record has no external_user_id and is skipped by Braze's rule.
    for i in (0..30).chain(200..230).filter(|i| i % 3 != 2) {
        assert!(
            sent.contains_key(&format!("email.Open-{i}")),
            "email.Open-{i} of a good file was not sent"
        );
    }
    // Records read from the truncated file before the cut were accounted for too.
    assert_eq!(
        summary.records,
        summary.delivered + summary.skipped.values().sum::<u64>()
    );
}

#[tokio::test]
async fn folders_are_pruned_and_events_filtered_by_type_and_time() {
    let families = families();
    let open = families
        .iter()
        .find(|f| f.event_type == "users.messages.email.Open")
        .unwrap();
    let send = families
        .iter()
        .find(|f| f.event_type == "users.messages.pushnotification.Send")
        .unwrap();
    let mut files = Vec::new();
    for (n, hour) in ["2025-11-24-15", "2025-11-24-16", "2025-11-24-17", "2025-11-24-18"]
        .iter()
        .enumerate()
    {
        files.push((
            braze_key("", open.event_type, hour, n as u64),
            family_file(open, 0..7, Codec::Null, 7, None),
        ));
        files.push((
            braze_key("", send.event_type, hour, n as u64),
            family_file(send, 0..7, Codec::Null, 7, None),
        ));
    }
    let root = tree(&files);
    let segment = ScriptedSegment::new();
    let args = [
        "--event-types",
        open.event_type,
        "--since",
        "2025-11-24T16:02:00Z",
        "--until",
        "2025-11-24T16:05:00Z",
        "--lag-hours",
        "1",
    ];
    let summary = run(
        &options(&root, &args),
        deps(&root, segment.clone(), RecordingQueue::new(), common::config(&[])),
    )
    .await
    .unwrap();
    assert!(summary.ok(), "{}", summary.render());
    // Hours 16 and 17 of email.Open only: 15 closed before --since, 18 is past --until + lag.
    assert_eq!(summary.files_selected, 2);
    assert_eq!(summary.records, 14);
    // Records 2, 3, 4 (16:02, 16:03, 16:04) of each file; 4 of those 6 have no null user.
    assert_eq!(summary.skipped["outside_time_window"], 8);
    let ids: Vec<String> = segment.delivered_ids();
    assert!(
        ids.iter()
            .all(|id| ["email.Open-2", "email.Open-3", "email.Open-4"].contains(&id.as_str())),
        "{ids:?}"
    );
    assert_eq!(ids.len() as u64, summary.delivered);
    assert_eq!(summary.delivered + summary.skipped.values().sum::<u64>(), 14);
}

#[tokio::test]
async fn a_dry_run_sends_nothing_and_counts_per_type_with_samples() {
    let families = families();
    let files: Vec<_> = families
        .iter()
        .take(6)
        .enumerate()
        .map(|(n, f)| file_of(f, n, Codec::Null))
        .collect();
    let root = tree(&files);
    let segment = ScriptedSegment::new();
    let dead = RecordingQueue::new();
    let summary = run(
        &options(&root, &["--dry-run", "--samples", "2"]),
        deps(&root, segment.clone(), dead.clone(), config_naming_all()),
    )
    .await
    .unwrap();
    assert_eq!(segment.requests(), 0);
    assert!(dead.bodies.lock().unwrap().is_empty());
    assert_eq!(summary.samples.len(), 2);
    assert_eq!(summary.samples[0]["type"], "track");
    assert!(summary.delivered > 0);
    let profile = &summary.by_event_type["users.profile.Update"];
    assert!(profile["would_deliver"] > 0, "{profile:?}");
    let text = summary.render();
    assert!(
        text.contains("dry run") && text.contains("users.profile.Update: ") && text.contains("sample: {"),
        "{text}"
    );
}

#[tokio::test]
async fn invalid_and_refused_events_are_dead_lettered_to_the_failures_file() {
    // `time` optional and null in every third record: those cannot become messages.
    let family = Family {
        event_type: "users.messages.email.Open",
        fields: "id! user_id! external_user_id! time:int email_address!".to_owned(),
    };
    let root = tree(&[(
        braze_key("", family.event_type, HOUR, 1),
        family_file(&family, 0..9, Codec::Null, 4, None),
    )]);
    let failures = root.join("failures.jsonl");
    let segment = ScriptedSegment::new().always(Err(AttemptError::Status {
        status: 400,
        retry_after: None,
    }));
    let summary = run(
        &options(&root, &[]),
        deps(
            &root,
            segment.clone(),
            Arc::new(JsonlFile::new(&failures)),
            common::config(&[]),
        ),
    )
    .await
    .unwrap();
    assert!(summary.ok(), "dead letters are accounted for: {}", summary.render());
    assert_eq!(summary.dead_lettered["invalid_event"], 3);
    assert_eq!(summary.dead_lettered["permanent_failure"], 6);
    assert_eq!(summary.delivered, 0);
    let lines: Vec<Value> = std::fs::read_to_string(&failures)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: usize = lines
        .iter()
        .filter(|e| e["reason"] == "invalid_event")
        .map(|e| e["events"].as_array().unwrap().len())
        .sum();
    let messages: usize = lines
        .iter()
        .filter(|e| e["reason"] == "permanent_failure")
        .map(|e| e["messages"].as_array().unwrap().len())
        .sum();
    assert_eq!((events, messages), (3, 6));
    assert!(lines.iter().all(|e| e["version"] == 1 && e["route"] == "default"));
}

#[tokio::test]
async fn a_file_segment_keeps_failing_stays_unfinished_and_is_resent_on_the_next_run() {
    let family = email_open();
    let root = tree(&[(
        braze_key("", family.event_type, HOUR, 1),
        family_file(&family, 0..5, Codec::Null, 5, None),
    )]);
    let state = root.join("state.jsonl");
    let state_arg = state.display().to_string();
    let down = ScriptedSegment::new().always(Err(AttemptError::Status {
        status: 503,
        retry_after: None,
    }));
    let summary = run(
        &options(&root, &["--state", &state_arg]),
        deps(&root, down, RecordingQueue::new(), common::config(&[])),
    )
    .await
    .unwrap();
    assert!(!summary.ok());
    assert!(summary.undelivered > 0);
    assert!(
        summary.failures[0].error.contains("Segment still failing"),
        "{:?}",
        summary.failures
    );

    let up = ScriptedSegment::new();
    let again = run(
        &options(&root, &["--state", &state_arg]),
        deps(&root, up.clone(), RecordingQueue::new(), common::config(&[])),
    )
    .await
    .unwrap();
    assert!(again.ok());
    assert_eq!(again.delivered, up.delivered_ids().len() as u64);
    assert!(again.delivered > 0);
    let third = run(
        &options(&root, &["--state", &state_arg]),
        deps(
            &root,
            ScriptedSegment::new(),
            RecordingQueue::new(),
            common::config(&[]),
        ),
    )
    .await
    .unwrap();
    assert_eq!((third.files_already_done, third.records), (1, 0));
}

#[tokio::test]
async fn a_killed_run_resumes_without_resending_finished_files() {
    let family = families()
        .into_iter()
        .find(|f| f.event_type == "users.messages.sms.Delivery")
        .unwrap();
    // 8 files of 3,000 records: two Segment batches each.
    let files: Vec<_> = (0..8)
        .map(|n| {
            (
                braze_key("", family.event_type, HOUR, n),
                family_file(
                    &family,
                    n as usize * 10_000..n as usize * 10_000 + 3_000,
                    Codec::Snappy,
                    1_000,
                    None,
                ),
            )
        })
        .collect();
    let root = tree(&files);
    let state = root.join("state.jsonl").display().to_string();
    let opts = options(&root, &["--state", &state, "--concurrency", "1"]);
    let first = ScriptedSegment::new();
    let before = killed_run(
        &opts,
        deps(&root, first.clone(), RecordingQueue::new(), common::config(&[])),
        first,
        12,
    )
    .await;
    let done: Vec<usize> = std::fs::read_to_string(&state)
        .unwrap()
        .lines()
        .map(|line| {
            let key: Value = serde_json::from_str(line).unwrap();
            let key = key["done"].as_str().unwrap();
            key[key.len() - 7..key.len() - 5].parse().unwrap()
        })
        .collect();
    assert!(
        !done.is_empty() && done.len() < 8,
        "killed midway, yet {} files done",
        done.len()
    );

    let second = ScriptedSegment::new();
    let summary = run(
        &opts,
        deps(&root, second.clone(), RecordingQueue::new(), common::config(&[])),
    )
    .await
    .unwrap();
    assert!(summary.ok(), "{}", summary.render());
    assert_eq!(summary.files_already_done, done.len() as u64);
    assert_eq!(summary.files_finished, 8 - done.len() as u64);
    let file_of = |id: &String| id.trim_start_matches("sms.Delivery-").parse::<usize>().unwrap() / 10_000;
    let after = second.delivered_ids();
    assert!(
        after.iter().all(|id| !done.contains(&file_of(id))),
        "a finished file was sent again"
    );
    let mut all: Vec<&String> = before.iter().chain(after.iter()).collect();
    all.sort();
    all.dedup();
    let expected = (0..8)
        .flat_map(|n| n * 10_000..n * 10_000 + 3_000)
        .filter(|i| i % 3 != 2)
        .count();
    assert_eq!(all.len(), expected, "every message reached Segment across the two runs");
}

#[tokio::test]
async fn a_schema_the_direct_decoder_does_not_cover_is_read_by_apache_avro_alike() {
    // A uuid logical type sends the file to apache-avro's own reader; the messages are the same.
    let family = email_open();
    let plain = fixtures::schema(&family, None);
    let text = plain.canonical_form().replace(
        r#"{"name":"send_id","type":["null","string"]}"#,
        r#"{"name":"send_id","type":["null",{"type":"string","logicalType":"uuid"}]}"#,
    );
    assert!(text.contains("uuid"), "the fixture schema changed shape");
    let uuid_schema = apache_avro::Schema::parse_str(&text).unwrap();
    let records: Vec<_> = (0..6)
        .map(|i| match fixtures::record(&family, i, None) {
            apache_avro::types::Value::Record(fields) => apache_avro::types::Value::Record(
                fields
                    .into_iter()
                    .map(|(name, value)| match (name.as_str(), value) {
                        ("send_id", apache_avro::types::Value::Union(1, _)) => {
                            let id = format!("00000000-0000-4000-8000-00000000000{i}");
                            let uuid = apache_avro::types::Value::Uuid(id.parse().unwrap());
                            (name, apache_avro::types::Value::Union(1, Box::new(uuid)))
                        }
                        (_, value) => (name, value),
                    })
                    .collect(),
            ),
            other => other,
        })
        .collect();
    let bytes = fixtures::container(&uuid_schema, records, Codec::Deflate(Default::default()), 4);
    let (summary, segment) = send_tree(&[(braze_key("", family.event_type, HOUR, 1), bytes)]).await;
    assert!(summary.ok(), "{}", summary.render());
    let sent = sent_by_id(&segment);
    let config = common::config(&[]);
    let mut twin = http_twin(&family, 0, None);
    twin["properties"]["send_id"] = json!("00000000-0000-4000-8000-000000000000");
    let body = json!({ "events": [twin] }).to_string();
    let expected = transform_body(
        body.as_bytes(),
        &config.routing,
        config.routing.find("default").unwrap(),
    )
    .unwrap();
    let want: Value = serde_json::from_str(&expected.messages[0].json).unwrap();
    assert_eq!(sent["email.Open-0"], want);
    assert_eq!(summary.delivered, 4);
}

#[tokio::test]
async fn the_command_prints_a_summary_and_exits_by_its_outcome() {
    let family = email_open();
    let good = (
        braze_key("", family.event_type, HOUR, 1),
        family_file(&family, 0..6, Codec::Null, 3, None),
    );
    let root = tree(std::slice::from_ref(&good));
    let dir = root.display().to_string();
    let mut out = Vec::new();
    let code = currents_segment::backfill::command(&[dir.clone(), "--dry-run".into()], &mut out).await;
    let text = String::from_utf8(out).unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("Backfill summary (dry run") && text.contains("would_deliver=4"),
        "{text}"
    );

    let broken = tree(&[
        good,
        (braze_key("", family.event_type, HOUR, 2), b"Obj\x01junk".to_vec()),
    ]);
    let mut out = Vec::new();
    let code = currents_segment::backfill::command(&[broken.display().to_string(), "--dry-run".into()], &mut out).await;
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&out));

    let mut out = Vec::new();
    assert_eq!(
        currents_segment::backfill::command(&[dir, "--since".into(), "soon".into()], &mut out).await,
        2
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("--since"), "{text}");
}

/// A backfill under a key Segment's settings CDN does not know sends nothing and says which
/// route, never the key; a dry run checks nothing; an EU source on the US host is refused too.
#[tokio::test]
async fn a_backfill_refuses_to_send_into_a_key_segment_would_drop() {
    let files = [
        file_of(&email_open(), 0, Codec::Null),
        file_of(&email_open(), 1, Codec::Null),
        file_of(&email_open(), 2, Codec::Null),
    ];
    let root = tree(&files);
    for (name, script) in [
        (
            "revoked",
            Box::new(|s: &common::settings::ScriptedSettings| s.revoke(common::WRITE_KEY)) as Box<dyn Fn(&_)>,
        ),
        (
            "EU source",
            Box::new(|s: &common::settings::ScriptedSettings| {
                s.ingests_at(common::WRITE_KEY, "events.eu1.segmentapis.com/v1")
            }),
        ),
    ] {
        let settings = common::settings::ScriptedSettings::new();
        script(&settings);
        let segment = ScriptedSegment::new();
        let dead = RecordingQueue::new();
        let held = Backfill {
            key_health: common::settings::key_health(&settings),
            ..deps(&root, segment.clone(), dead.clone(), common::config(&[]))
        };
        let error = run(&options(&root, &[]), held).await.map(|s| s.render()).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("route `default`") && text.contains("nothing was sent"),
            "{name}: {text}"
        );
        assert!(!text.contains(common::WRITE_KEY), "{text}");
        assert_eq!(
            (segment.requests(), dead.message_count(), settings.requests()),
            (0, 0, 1),
            "{name}"
        );

        // A dry run sends nothing, so it checks nothing.
        let dry_segment = ScriptedSegment::new();
        let dry = Backfill {
            key_health: common::settings::key_health(&settings),
            ..deps(&root, dry_segment.clone(), RecordingQueue::new(), common::config(&[]))
        };
        let summary = run(&options(&root, &["--dry-run"]), dry).await.unwrap();
        assert!(summary.records > 0 && dry_segment.requests() == 0, "{name}");
        assert_eq!(settings.requests(), 1, "{name}: a dry run makes no settings request");
    }
}

/// Revokes the key at the settings stand-in after the first batch it delivers, and moves
/// tokio's (paused) clock past the verdict interval: a key that goes bad in the middle of a run.
struct RevokingSegment {
    inner: Arc<ScriptedSegment>,
    settings: Arc<common::settings::ScriptedSettings>,
}

#[async_trait::async_trait]
impl Deliver for RevokingSegment {
    async fn deliver(
        &self,
        target: &currents_segment::config::SegmentTarget,
        body: Vec<u8>,
        timeout: std::time::Duration,
    ) -> Result<(), AttemptError> {
        let result = self.inner.deliver(target, body, timeout).await;
        self.settings.revoke(common::WRITE_KEY);
        tokio::time::advance(std::time::Duration::from_secs(2)).await;
        result
    }
}

/// A key Segment stops knowing in the middle of a run stops the files not yet sent, once the
/// verdict is older than the interval: they are left unfinished for the next run, not lost.
#[tokio::test(start_paused = true)]
async fn a_key_revoked_mid_run_stops_the_files_that_follow() {
    let files: Vec<_> = (0..3).map(|n| file_of(&email_open(), n, Codec::Null)).collect();
    let root = tree(&files);
    let settings = common::settings::ScriptedSettings::new();
    let segment = ScriptedSegment::new();
    let revoking = Arc::new(RevokingSegment {
        inner: segment.clone(),
        settings: settings.clone(),
    });
    let config = common::config(&[("WRITE_KEY_CHECK_INTERVAL_SECONDS", "1")]);
    let held = Backfill {
        key_health: common::settings::key_health(&settings),
        ..deps(&root, revoking, RecordingQueue::new(), config)
    };
    let summary = run(&options(&root, &["--concurrency", "1"]), held).await.unwrap();
    assert_eq!(segment.requests(), 1, "only the first file was sent");
    assert!(!summary.ok());
    assert_eq!(
        (summary.files_finished, summary.files_failed),
        (1, 2),
        "{}",
        summary.render()
    );
    assert!(summary.render().contains("write_key_invalid"), "{}", summary.render());
}

/// The Lambda fan-out: a task whose route's key Segment does not know is a batch-item failure
/// with no Segment request, so SQS keeps it; once the key is known again the same task is done.
#[tokio::test(start_paused = true)]
async fn the_fan_out_keeps_a_task_whose_key_segment_does_not_know() {
    use currents_segment::backfill::{BackfillWorker, ObjectSource, handle_tasks};
    let file = file_of(&email_open(), 0, Codec::Null);
    let key = file.0.clone();
    let root = tree(&[file]);
    let settings = common::settings::ScriptedSettings::new();
    settings.revoke(common::WRITE_KEY);
    let segment = ScriptedSegment::new();
    let config = common::config(&[("WRITE_KEY_CHECK_INTERVAL_SECONDS", "1")]);
    let source_root = root.to_path_buf();
    let worker = BackfillWorker {
        source_for: Box::new(move |_bucket: &str| Arc::new(LocalDir::new(&source_root)) as Arc<dyn ObjectSource>),
        segment: segment.clone(),
        dead_letters: RecordingQueue::new(),
        clock: FixedClock::at(T0 + 86_400),
        config: Arc::new(config),
        policy: quick_policy(),
        key_health: common::settings::key_health(&settings),
    };
    // A task with no `options` is every event of the object, on the `default` route.
    let key = root.join(&key).to_string_lossy().into_owned(); // LocalDir's keys are paths
    // Issue 21, case 11's class: the same fields as an array are not a task (kept for the
    // queue's DLQ, nothing read or sent).
    let array = json!([1, "archive", key]).to_string();
    let refused = handle_tasks(&worker, common::sqs_event(&[array], 1)).await;
    assert_eq!(refused.batch_item_failures.len(), 1, "an array is not a task");
    assert_eq!(segment.requests(), 0);
    let task = json!({"version": 1, "bucket": "archive", "key": key}).to_string();
    let event = || common::sqs_event(std::slice::from_ref(&task), 1);
    let held = handle_tasks(&worker, event()).await;
    assert_eq!(held.batch_item_failures.len(), 1, "SQS keeps the task");
    assert_eq!(segment.requests(), 0);

    settings.answer(
        common::WRITE_KEY,
        currents_segment::ports::SettingsAnswer::Found(b"{}".to_vec()),
    );
    tokio::time::advance(std::time::Duration::from_secs(2)).await;
    let done = handle_tasks(&worker, event()).await;
    assert!(done.batch_item_failures.is_empty());
    assert!(segment.requests() > 0);
}
