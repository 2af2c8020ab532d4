//! Checks on template.yaml that cfn-lint and `sam validate` do not make: a wrong runtime or a
//! misspelled ReportBatchItemFailures passes both linters.

use serde_yaml_ng::Value;

fn template() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

fn resource<'t>(template: &'t Value, name: &str) -> &'t Value {
    &template["Resources"][name]
}

fn int(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("expected a number, got {value:?}"))
}

/// `!GetAtt X.QueueName` as (tag, target); serde_yaml_ng keeps CloudFormation's tags.
fn tagged(value: &Value) -> (String, String) {
    match value {
        Value::Tagged(tagged) => (
            tagged.tag.to_string(),
            tagged.value.as_str().unwrap_or_default().to_owned(),
        ),
        other => panic!("expected a tagged value, got {other:?}"),
    }
}

fn policies(template: &Value, function: &str) -> Vec<(String, String)> {
    resource(template, function)["Properties"]["Policies"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|policy| {
            let (name, body) = policy.as_mapping().unwrap().iter().next().unwrap();
            (name.as_str().unwrap().to_owned(), tagged(&body["QueueName"]).1)
        })
        .collect()
}

#[test]
fn both_functions_are_rust_on_arm64_al2023_with_json_logs() {
    let template = template();
    assert_eq!(template["Transform"], "AWS::Serverless-2016-10-31");
    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Architectures"][0], "arm64");
    assert_eq!(globals["Handler"], "bootstrap");
    assert_eq!(globals["LoggingConfig"]["LogFormat"], "JSON");
    for (function, binary) in [("IngestFunction", "ingest"), ("ReplayFunction", "replay")] {
        let resource = resource(&template, function);
        assert_eq!(resource["Metadata"]["BuildMethod"], "rust-cargolambda");
        assert_eq!(resource["Metadata"]["BuildProperties"]["Binary"], binary);
        assert!(
            resource["Properties"].get("Runtime").is_none(),
            "{function} must not override the runtime"
        );
        assert!(resource["Properties"].get("Architectures").is_none());
    }
}

#[test]
fn ingest_is_bounded_and_answers_within_api_gateways_limit() {
    let template = template();
    let ingest = &resource(&template, "IngestFunction")["Properties"];
    assert_eq!(template["Globals"]["Function"]["MemorySize"], 128);
    assert!(int(&ingest["Timeout"]) < 30, "HTTP API integrations time out at 30 s");
    assert!(ingest.get("ReservedConcurrentExecutions").is_some());
    let event = &ingest["Events"]["Currents"];
    assert_eq!(
        (event["Type"].as_str(), event["Properties"]["Path"].as_str()),
        (Some("HttpApi"), Some("/currents"))
    );
    assert_eq!(event["Properties"]["Method"], "POST");
}

#[test]
fn replay_reports_batch_item_failures_with_bounded_concurrency() {
    let template = template();
    let replay = &resource(&template, "ReplayFunction")["Properties"];
    let event = &replay["Events"]["Retry"];
    assert_eq!(event["Type"], "SQS");
    let types: Vec<&str> = event["Properties"]["FunctionResponseTypes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(types, ["ReportBatchItemFailures"]);
    assert!((1..=10).contains(&int(&event["Properties"]["BatchSize"])));
    assert!(event["Properties"]["ScalingConfig"].get("MaximumConcurrency").is_some());
    assert_eq!(
        tagged(&event["Properties"]["Queue"]),
        ("!GetAtt".into(), "RetryQueue.Arn".into())
    );
}

#[test]
fn queues_outlive_the_replay_window_and_are_encrypted() {
    let template = template();
    let retry = &resource(&template, "RetryQueue")["Properties"];
    let dead = &resource(&template, "DeadLetterQueue")["Properties"];
    let max_age_hours = int(&template["Parameters"]["ReplayMaxAgeHours"]["MaxValue"]);
    assert!(int(&retry["MessageRetentionPeriod"]) > 48 * 3600);
    assert!(
        int(&retry["MessageRetentionPeriod"]) > max_age_hours * 3600,
        "retention exceeds the longest window"
    );
    assert_eq!(int(&dead["MessageRetentionPeriod"]), 14 * 24 * 3600);
    let replay_timeout = int(&resource(&template, "ReplayFunction")["Properties"]["Timeout"]);
    assert!(int(&retry["VisibilityTimeout"]) >= 6 * replay_timeout);
    assert_eq!(retry["SqsManagedSseEnabled"], true);
    assert_eq!(dead["SqsManagedSseEnabled"], true);
    assert_eq!(
        tagged(&retry["RedrivePolicy"]["deadLetterTargetArn"]).1,
        "DeadLetterQueue.Arn"
    );
}

#[test]
fn max_receive_count_covers_the_replay_window_even_without_backoff() {
    let template = template();
    let retry = &resource(&template, "RetryQueue")["Properties"];
    let max_age = int(&template["Parameters"]["ReplayMaxAgeHours"]["Default"]) * 3600;
    // Worst case: every visibility change fails, so messages return after VisibilityTimeout.
    let receives_in_window = max_age / int(&retry["VisibilityTimeout"]) + 1;
    assert!(int(&retry["RedrivePolicy"]["maxReceiveCount"]) > receives_in_window);
}

#[test]
fn policies_are_least_privilege_and_match_the_readme() {
    let template = template();
    let ingest = policies(&template, "IngestFunction");
    let replay = policies(&template, "ReplayFunction");
    let expected_ingest = [
        ("SQSSendMessagePolicy".to_owned(), "RetryQueue.QueueName".to_owned()),
        (
            "SQSSendMessagePolicy".to_owned(),
            "DeadLetterQueue.QueueName".to_owned(),
        ),
    ];
    let expected_replay = [
        ("SQSPollerPolicy".to_owned(), "RetryQueue.QueueName".to_owned()),
        (
            "SQSSendMessagePolicy".to_owned(),
            "DeadLetterQueue.QueueName".to_owned(),
        ),
    ];
    assert_eq!(ingest, expected_ingest);
    assert_eq!(replay, expected_replay);
    let readme = readme();
    for (function, list) in [
        ("IngestFunction", &expected_ingest),
        ("ReplayFunction", &expected_replay),
    ] {
        for (policy, queue) in list.iter() {
            let queue = queue.trim_end_matches(".QueueName");
            let line = format!("| {function} | `{policy}` | {queue} |");
            assert!(readme.contains(&line), "README lists `{line}`");
        }
    }
}

#[test]
fn alarms_watch_dead_letters_old_retries_and_errors() {
    let template = template();
    let dead_lettered = &resource(&template, "DeadLetteredAlarm")["Properties"];
    let metrics = dead_lettered["Metrics"].as_sequence().unwrap();
    assert!(
        metrics
            .iter()
            .filter_map(|m| m.get("MetricStat"))
            .all(|m| m["Metric"]["Namespace"] == "CurrentsSegment" && m["Metric"]["MetricName"] == "DeadLettered")
    );
    assert_eq!(
        int(&resource(&template, "RetryQueueOldMessageAlarm")["Properties"]["Threshold"]),
        3600
    );
    for alarm in ["DeadLetterQueueNotEmptyAlarm", "IngestErrorsAlarm", "ReplayErrorsAlarm"] {
        assert_eq!(resource(&template, alarm)["Type"], "AWS::CloudWatch::Alarm");
    }
    for output in ["CurrentsEndpoint", "RetryQueueUrl", "DeadLetterQueueUrl"] {
        assert!(template["Outputs"].get(output).is_some(), "{output}");
    }
}

#[test]
fn secrets_are_no_echo_and_every_variable_is_one_the_code_reads() {
    let template = template();
    for parameter in ["SegmentWriteKey", "CurrentsAuthToken"] {
        assert_eq!(template["Parameters"][parameter]["NoEcho"], true);
    }
    let known = [
        "CURRENTS_AUTH_TOKEN",
        "SEGMENT_WRITE_KEY",
        "SEGMENT_REGION",
        "ROUTES",
        "APP_ROUTES",
        "INCLUDE_ANONYMOUS",
        "PII_MODE",
        "EVENT_NAMES",
        "EVENT_TYPES",
        "INTEGRATIONS",
        "REPLAY_MAX_AGE_HOURS",
        "RETRY_QUEUE_URL",
        "DEAD_LETTER_QUEUE_URL",
    ];
    let source: String = ["src/config/env.rs", "src/config/routes.rs", "src/config/delivery.rs"]
        .iter()
        .map(|p| std::fs::read_to_string(format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap())
        .collect();
    for function in ["IngestFunction", "ReplayFunction"] {
        let variables = resource(&template, function)["Properties"]["Environment"]["Variables"]
            .as_mapping()
            .unwrap();
        for name in variables.keys() {
            let name = name.as_str().unwrap();
            assert!(known.contains(&name), "{function} sets unknown {name}");
            assert!(source.contains(&format!("\"{name}\"")), "the code reads {name}");
        }
    }
}
