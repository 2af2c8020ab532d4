//! The `currents-segment` binary as a user runs it.

mod flat_twin;

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// How many events the sample batch (`all-events.json`) holds.
fn fixture_len() -> usize {
    let text = std::fs::read(fixture("all-events.json")).unwrap();
    let fixture: serde_json::Value = serde_json::from_slice(&text).unwrap();
    fixture["events"].as_array().unwrap().len()
}

const BIN: &str = env!("CARGO_BIN_EXE_currents-segment");

fn run(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    // A command refused before it reads stdin (a usage error) may exit, closing the pipe,
    // before the write: that broken pipe is the command's answer, not the test's failure.
    match child.stdin.take().unwrap().write_all(stdin) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        written => written.unwrap(),
    }
    child.wait_with_output().unwrap()
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn transform_needs_no_keys_and_prints_deterministic_json() {
    let first = run(&["transform", &fixture("mixed-batch.json")], &[], b"");
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let second = run(
        &["transform"],
        &[],
        &std::fs::read(fixture("mixed-batch.json")).unwrap(),
    );
    assert_eq!(
        first.stdout, second.stdout,
        "same output from a file and from stdin, every time"
    );
    let value: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(value["batch"].as_array().unwrap().len(), 2);
    assert!(value["batch"][0].get("sentAt").is_none());
    assert_eq!(
        value["skipped"][0],
        serde_json::json!({"index": 1, "id": "mixed-anon-1", "event_type": "users.messages.email.Send", "reason": "no_external_user_id"})
    );
    assert_eq!(value["dead_lettered"][0]["reason"], "missing_time");
}

#[test]
fn transform_reads_storage_shaped_events_as_their_http_twins() {
    let http = flat_twin::http_body_without_nulls(&std::fs::read(fixture("all-events.json")).unwrap());
    let from_http = run(&["transform"], &[], &http);
    let from_flat = run(&["transform"], &[], &flat_twin::flat_body(&http));
    assert!(
        from_flat.status.success(),
        "{}",
        String::from_utf8_lossy(&from_flat.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&from_flat.stdout).unwrap();
    assert_eq!(value["batch"].as_array().unwrap().len(), fixture_len());
    assert_eq!(from_flat.stdout, from_http.stdout);
}

#[test]
fn transform_reads_the_mapping_configuration() {
    let output = run(
        &["transform", &fixture("all-events.json")],
        &[
            ("EVENT_TYPES", "users.messages.email.Open"),
            ("EVENT_NAMES", r#"{"users.messages.email.Open":"Opened"}"#),
        ],
        b"",
    );
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["batch"].as_array().unwrap().len(), 1);
    assert_eq!(value["batch"][0]["event"], "Opened");
    assert_eq!(value["skipped"].as_array().unwrap().len(), fixture_len() - 1);
}

/// The bytes of `json` outside its strings.
fn outside_strings(json: &str) -> String {
    let (mut in_string, mut escaped, mut kept) = (false, false, String::new());
    for c in json.chars() {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (true, ..) => {}
            (false, _, '"') => in_string = true,
            (false, ..) => kept.push(c),
        }
    }
    kept
}

#[test]
fn transform_into_a_pipe_is_one_compact_json_line() {
    // all-events.json is indented, and its arrays reach the messages as they were written.
    let output = run(&["transform", &fixture("all-events.json")], &[], b"");
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one line");
    assert!(text.ends_with("}\n"));
    let structure = outside_strings(text.trim_end());
    assert!(
        !structure.contains([' ', '\n', '\t']),
        "whitespace outside strings: {structure}"
    );
    assert_eq!(
        run(&["transform", "--compact", &fixture("all-events.json")], &[], b"").stdout,
        text.as_bytes()
    );
}

#[test]
fn transform_pretty_indents_the_same_document() {
    let compact = run(&["transform", &fixture("mixed-batch.json")], &[], b"");
    let pretty = run(&["transform", "--pretty", &fixture("mixed-batch.json")], &[], b"");
    assert!(pretty.status.success(), "{}", String::from_utf8_lossy(&pretty.stderr));
    let text = String::from_utf8(pretty.stdout).unwrap();
    let same: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        same,
        serde_json::from_slice::<serde_json::Value>(&compact.stdout).unwrap()
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..4],
        ["{", "  \"batch\": [", "    {", "      \"type\": \"track\","]
    );
    assert!(
        text.contains("\n  \"dead_lettered\": [\n    {\n      \"index\": 3,\n"),
        "{text}"
    );
    assert!(lines.iter().all(|line| line.len() < 120), "{text}");
    assert_eq!(lines.last(), Some(&"}"));
}

#[test]
fn transform_summary_counts_names_skip_reasons_and_codes() {
    let output = run(&["transform", "--summary", &fixture("mixed-batch.json")], &[], b"");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|line| line.rsplitn(2, "  ").map(str::trim).collect())
        .collect();
    assert_eq!(
        text.lines().next(),
        Some("10 event(s): 2 to Segment, 2 skipped, 6 dead-lettered")
    );
    for (name, count) in [
        ("Email Opened", "1"),
        ("no_external_user_id", "1"),
        ("unknown_event_type", "1"),
        ("malformed_event", "3"),
        ("missing_time", "1"),
    ] {
        assert!(rows.contains(&vec![count, name]), "{name} x{count} in:\n{text}");
    }
    assert_eq!(
        run(&["transform", "--pretty", "--compact"], &[], b"{}").status.code(),
        Some(2),
        "one layout at a time"
    );
}

#[test]
fn an_unreadable_body_exits_2_with_one_line() {
    for (args, stdin) in [
        (vec!["transform"], &b"{not json"[..]),
        (vec!["transform", "/nonexistent/file.json"], b""),
    ] {
        let output = run(&args, &[], stdin);
        assert_eq!(output.status.code(), Some(2));
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("currents-segment: "));
    }
    assert_eq!(run(&["frobnicate"], &[], b"").status.code(), Some(2));
    assert_eq!(
        run(&["transform", "--route", "nope"], &[], b"{}").status.code(),
        Some(2)
    );
}

#[test]
fn check_config_prints_effective_settings_and_never_a_secret() {
    let env = [
        ("SEGMENT_WRITE_KEY", "wk_default_SECRET"),
        ("CURRENTS_AUTH_TOKEN", "token_SECRET_value"),
        (
            "ROUTES",
            r#"{"brand-a":{"write_key":"wk_a_SECRET","region":"eu","pii_mode":"hash"}}"#,
        ),
        ("APP_ROUTES", r#"{"app-1":"brand-a"}"#),
        ("RETRY_QUEUE_URL", "https://sqs.example/retry"),
    ];
    let output = run(&["check-config"], &env, b"");
    assert_eq!(output.status.code(), Some(1), "not ready for Lambda: exit 1");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(!text.contains("SECRET"), "{text}");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("SECRET"));
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let routes = value["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0]["name"], "brand-a");
    assert_eq!(routes[0]["write_key"], "[redacted]");
    assert_eq!(routes[0]["pii_mode"], "hash");
    assert_eq!(routes[0]["endpoint"], "https://events.eu1.segmentapis.com");
    assert_eq!(routes[0]["write_key_check"], "on");
    assert_eq!(routes[0]["settings_endpoint"], "https://cdn.segment.com");
    assert_eq!(routes[0]["write_key_check_interval_seconds"], 300);
    assert_eq!(value["app_routes"]["app-1"], "brand-a");
    assert_eq!(value["auth"]["token"], "[redacted]");
    assert_eq!(value["ready_for_lambda"], false);
    assert!(value["problems"][0].as_str().unwrap().contains("DEAD_LETTER_QUEUE_URL"));
    assert_eq!(value["routes"][0]["event_naming"], "braze");
    assert_eq!(value["segment"]["ingest_retry_budget_ms"], 8000);
}

/// Issue 22, item 5: every problem at once, and a non-zero exit while any remains.
#[test]
fn check_config_lists_every_problem_and_exits_1_until_ready() {
    let output = run(&["check-config"], &[], b"");
    assert_eq!(output.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let problems: Vec<&str> = value["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for var in [
        "SEGMENT_WRITE_KEY",
        "RETRY_QUEUE_URL",
        "DEAD_LETTER_QUEUE_URL",
        "CURRENTS_AUTH_TOKEN",
    ] {
        assert!(problems.iter().any(|p| p.contains(var)), "{var} in {problems:?}");
    }
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("not ready for Lambda") && stderr.contains("CURRENTS_AUTH_TOKEN"),
        "{stderr}"
    );
    let ready = [
        ("SEGMENT_WRITE_KEY", "wk_SECRET"),
        ("CURRENTS_AUTH_TOKEN", "token_SECRET_value"),
        ("RETRY_QUEUE_URL", "https://sqs.example/retry"),
        ("DEAD_LETTER_QUEUE_URL", "https://sqs.example/dead"),
    ];
    let output = run(&["check-config"], &ready, b"");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (
            value["ready_for_lambda"].as_bool(),
            value["problems"].as_array().map(Vec::len)
        ),
        (Some(true), Some(0))
    );
    // With a runtime secret, keys and the token may come from it: not asked for offline.
    let output = run(
        &["check-config"],
        &[
            ("SECRETS_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:x"),
            ready[2],
            ready[3],
        ],
        b"",
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// `check-config --online` against a wiremock settings CDN: one route's key is unknown to
/// Segment, one sends an EU source to the US host, one is fine. Exit 1, each bad route named on
/// stderr with its cause, no key anywhere; all fine is exit 0.
#[test]
fn check_config_online_prints_each_verdict_and_fails_on_a_bad_key_or_region() {
    use wiremock::matchers::path;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(async {
        let server = MockServer::start().await;
        let settings = |host: &str| format!(r#"{{"integrations":{{"Segment.io":{{"apiHost":"{host}/v1"}}}}}}"#);
        for (key, response) in [
            (
                "wk_good_SECRET",
                ResponseTemplate::new(200).set_body_string(settings("api.segment.io")),
            ),
            (
                "wk_eu_SECRET",
                ResponseTemplate::new(200).set_body_string(settings("events.eu1.segmentapis.com")),
            ),
            (
                "wk_gone_SECRET",
                ResponseTemplate::new(404).set_body_string("Cannot GET - Invalid path or write key provided."),
            ),
        ] {
            Mock::given(path(format!("/v1/projects/{key}/settings")))
                .respond_with(response)
                .mount(&server)
                .await;
        }
        server
    });
    let routes = r#"{"good":{"write_key":"wk_good_SECRET"},"eu":{"write_key":"wk_eu_SECRET"},"gone":{"write_key":"wk_gone_SECRET"}}"#;
    let uri = server.uri();
    let output = run(
        &["check-config", "--online"],
        &[("ROUTES", routes), ("SEGMENT_SETTINGS_ENDPOINT", &uri)],
        b"",
    );
    let (stdout, stderr) = (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    );
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        !stdout.contains("SECRET") && !stderr.contains("SECRET"),
        "{stdout}{stderr}"
    );
    assert!(
        stderr.contains("write_key_invalid") && stderr.contains("`gone`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("region_mismatch") && stderr.contains("`eu`"),
        "{stderr}"
    );
    assert!(!stderr.contains("`good`"), "{stderr}");
    let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let row = |name: &str| {
        value["online"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["route"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (row("good")["verdict"].as_str(), row("good")["held"].as_str()),
        (Some("valid"), None)
    );
    assert_eq!(row("good")["ingestion_host"], "api.segment.io");
    assert_eq!(row("eu")["held"], "region_mismatch");
    assert_eq!(row("gone")["held"], "write_key_invalid");
    assert_eq!(
        (row("gone")["verdict"].as_str(), row("eu")["verdict"].as_str()),
        (Some("invalid"), Some("valid"))
    );
    assert_eq!(row("eu")["ingestion_host"], "events.eu1.segmentapis.com");

    let fine = r#"{"good":{"write_key":"wk_good_SECRET"}}"#;
    let output = run(
        &["check-config", "--online"],
        &[
            ("ROUTES", fine),
            ("SEGMENT_SETTINGS_ENDPOINT", &uri),
            ("CURRENTS_AUTH_TOKEN", "token_SECRET_value"),
            ("RETRY_QUEUE_URL", "https://sqs.example/retry"),
            ("DEAD_LETTER_QUEUE_URL", "https://sqs.example/dead"),
        ],
        b"",
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    drop(server);
}

/// Issue 21, case 6: `check-config` shows the URL batches go to, with a copied `/v1/batch` dropped.
#[test]
fn check_config_shows_the_final_batch_url_of_a_copied_endpoint() {
    let output = run(
        &["check-config"],
        &[("SEGMENT_ENDPOINT", "https://events.eu1.segmentapis.com/v1/batch/")],
        b"",
    );
    assert_eq!(output.status.code(), Some(1), "no key or queues: printed, then exit 1");
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["routes"][0]["endpoint"], "https://events.eu1.segmentapis.com");
    assert_eq!(
        value["routes"][0]["batch_url"],
        "https://events.eu1.segmentapis.com/v1/batch"
    );
}

#[test]
fn check_config_rejects_bad_configuration_without_quoting_it() {
    let output = run(
        &["check-config"],
        &[("ROUTES", r#"{"a":{"write_key":"wk_SECRET","colour":"x"}}"#)],
        b"",
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("ROUTES") && !stderr.contains("SECRET"), "{stderr}");
}

/// `transform` reads its input as ingest reads a request body: a gzip file (several members,
/// as `cat a.gz b.gz` makes) is inflated and a leading byte order mark dropped, so what it shows
/// is what ingest would do with the same bytes.
#[test]
fn transform_reads_gzip_files_and_a_byte_order_mark_as_ingest_does() {
    use std::io::Write as _;
    let event = |id: &str| {
        format!(
            r#"{{"event_type":"users.messages.email.Open","id":"{id}","time":1764000000,"user":{{"external_user_id":"u"}}}}"#
        )
    };
    let gzip = |text: &str| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    };
    let body = format!(r#"{{"events":[{},{}]}}"#, event("a"), event("b"));
    let (head, tail) = body.split_at(20);
    let bom = [b"\xEF\xBB\xBF".as_slice(), body.as_bytes()].concat();
    for (name, input) in [
        ("two gzip members", [gzip(head), gzip(tail)].concat()),
        ("byte order mark", bom),
    ] {
        let output = run(&["transform", "--compact"], &[], &input);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(value["batch"].as_array().map(Vec::len), Some(2), "{name}");
    }
    let corrupt = run(&["transform"], &[], &gzip(&body)[..30]);
    assert_eq!(corrupt.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&corrupt.stderr).contains("gzip body is corrupt"));
}

/// Issue 22, item 5, for values that do not parse: every one is named at once (each set aside
/// in turn), exit 2, and no value is quoted.
#[test]
fn check_config_names_every_value_that_does_not_parse() {
    let output = run(
        &["check-config"],
        &[
            ("MAX_BODY_BYTES", "six-megs"),
            ("PII_MODE", "sha256"),
            ("SEGMENT_ENDPOINT", "ftp://events.example"),
            ("ROUTES", r#"{"a":{"write_key":"wk_SECRET","endpoint":"ftp://x"}}"#),
            ("CURRENTS_AUTH_TOKEN", "token_SECRET_value"),
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    for var in ["MAX_BODY_BYTES", "PII_MODE", "SEGMENT_ENDPOINT", "ROUTES"] {
        assert!(stderr.lines().any(|l| l.starts_with(var)), "{var} in {stderr}");
    }
    assert!(!stderr.contains("SECRET") && !stderr.contains("six-megs"), "{stderr}");
}

/// Issue 22, item 5: each setting's source: environment, runtime secret or default.
#[test]
fn check_config_shows_where_each_setting_comes_from() {
    let env = [
        ("SECRETS_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:x"),
        ("RETRY_QUEUE_URL", "https://sqs.example/retry"),
        ("SEGMENT_REGION", "eu"),
    ];
    let output = run(&["check-config"], &env, b"");
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let sources = &value["sources"];
    assert_eq!(sources["RETRY_QUEUE_URL"], "environment");
    assert_eq!(sources["SEGMENT_REGION"], "environment");
    assert_eq!(sources["SEGMENT_WRITE_KEY"], "runtime secret");
    assert_eq!(sources["CURRENTS_AUTH_TOKEN"], "runtime secret");
    assert_eq!(sources["MAX_BODY_BYTES"], "default");
    assert!(sources.as_object().unwrap().len() >= 20, "{sources}");
}

#[test]
fn help_goes_to_stdout_with_exit_0_and_no_arguments_is_a_usage_error() {
    for args in [&["--help"][..], &["transform", "--help"], &["help", "check-config"]] {
        let output = run(args, &[], b"");
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(output.stderr.is_empty(), "{args:?}");
        assert!(
            String::from_utf8(output.stdout)
                .unwrap()
                .contains("Usage: currents-segment")
        );
    }
    let output = run(&["--version"], &[], b"");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("currents-segment {}\n", env!("CARGO_PKG_VERSION"))
    );
    let output = run(&[], &[], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("currents-segment: ") && stderr.contains("transform"),
        "{stderr}"
    );
}

/// `backfill` is one subcommand of the tree: listed in the top-level help like the others,
/// with its own usage line; help on stdout with exit 0; usage errors on stderr with exit 2.
#[test]
fn backfill_is_a_subcommand_like_the_others() {
    let top = String::from_utf8(run(&["--help"], &[], b"").stdout).unwrap();
    assert!(
        top.lines().any(|line| line.trim_start().starts_with("backfill ")),
        "{top}"
    );
    assert!(!top.contains("Also:"), "{top}");
    for args in [&["backfill", "--help"][..], &["help", "backfill"]] {
        let output = run(args, &[], b"");
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(output.stderr.is_empty(), "{args:?}");
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(
            text.contains("Usage: currents-segment backfill [OPTIONS] <SOURCE>")
                && text.contains("--dry-run")
                && text.contains("--window"),
            "{text}"
        );
    }
    for (args, needle) in [
        (&["backfill"][..], "<SOURCE>"),
        (&["backfill", "/nonexistent", "--window", "received"], "--window"),
        (&["backfill", "/nonexistent", "--since", "soon"], "--since"),
    ] {
        let output = run(args, &[], b"");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.starts_with("currents-segment: ") && stderr.contains(needle),
            "{stderr}"
        );
    }
}

/// A dry run prints its summary on stdout and exits 0 when everything is accounted for, 1 when
/// a file could not be read (named in the summary, and one line on stderr says why).
#[test]
fn backfill_exits_by_its_outcome() {
    let dir = std::env::temp_dir().join(format!("cli-backfill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.display().to_string();
    let output = run(&["backfill", &source, "--dry-run"], &[], b"");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("Backfill summary (dry run"), "{stdout}");

    std::fs::write(dir.join("broken.avro"), b"Obj\x01junk").unwrap();
    let output = run(&["backfill", &source, "--dry-run"], &[], b"");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAILED") && stdout.contains("broken.avro"), "{stdout}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("currents-segment: backfill incomplete"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn event_names_prints_the_effective_table_per_route() {
    let out = run(
        &["event-names", "--json"],
        &[
            ("EVENT_NAMES", r#"{"users.messages.email.Open":"Opened It"}"#),
            ("EVENT_TYPES", "users.messages.email.Open,users.messages.whatsapp.Send"),
        ],
        b"",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tables: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = tables[0]["names"].as_array().unwrap();
    let row = |t: &str| names.iter().find(|r| r["event_type"] == t).unwrap().clone();
    assert_eq!(row("users.messages.email.Open")["event"], "Opened It");
    assert_eq!(row("users.messages.whatsapp.Send")["event"], "WhatsApp Sent");
    assert_eq!(row("users.messages.email.Click")["selected"], false);
    let text = run(&["event-names"], &[], b"");
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("users.messages.whatsapp.Send -> WhatsApp Sent"), "{text}");
    assert!(text.contains("UNKNOWN_EVENT_TYPES=skip"));
}
