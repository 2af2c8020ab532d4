//! Checks on template.yaml that cfn-lint and `sam validate` do not make: a wrong runtime or a
//! misspelled ReportBatchItemFailures passes both linters.

use std::collections::{BTreeSet, HashMap};

use currents_segment::config::{KeyCheck, KeyCheckOff};
use currents_segment::metrics::{Metric, NAMESPACE};
use serde_yaml_ng::Value;

use currents_segment::aws_env;
/// Replay's real backoff schedule, to check the template's redrive against it.
#[path = "../src/replay/expiry.rs"]
#[allow(dead_code)]
mod expiry;

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
        .filter(|policy| !matches!(policy, Value::Tagged(_)) && policy.get("Statement").is_none())
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
    assert_eq!(
        tagged(&ingest["ReservedConcurrentExecutions"]),
        ("!Ref".into(), "IngestReservedConcurrency".into())
    );
    assert!(
        ingest.get("Events").is_none(),
        "routes live on CurrentsApi or the function URL"
    );
}

#[test]
fn http_api_routes_both_paths_to_ingest_with_parameterised_throttles() {
    let template = template();
    let api = resource(&template, "CurrentsApi");
    assert_eq!(api["Condition"], "UseHttpApi");
    let settings = &api["Properties"]["DefaultRouteSettings"];
    assert_eq!(tagged(&settings["ThrottlingRateLimit"]).1, "HttpApiThrottleRate");
    assert_eq!(tagged(&settings["ThrottlingBurstLimit"]).1, "HttpApiThrottleBurst");
    let paths = api["Properties"]["DefinitionBody"]["paths"].as_mapping().unwrap();
    let names: Vec<&str> = paths.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(names, ["/currents", "/currents/{route}"]);
    for (_, path) in paths {
        let integration = &path["post"]["x-amazon-apigateway-integration"];
        assert_eq!(integration["type"], "aws_proxy");
        assert_eq!(integration["payloadFormatVersion"], "2.0");
        assert!(
            tagged(&integration["uri"])
                .1
                .contains("${IngestFunction.Arn}/invocations")
        );
    }
    let permission = &resource(&template, "CurrentsApiInvokePermission")["Properties"];
    assert_eq!(permission["Principal"], "apigateway.amazonaws.com");
    assert!(
        tagged(&permission["SourceArn"])
            .1
            .ends_with("${CurrentsApi}/*/POST/currents*")
    );
    for parameter in [
        "HttpApiThrottleRate",
        "HttpApiThrottleBurst",
        "IngestReservedConcurrency",
    ] {
        assert_eq!(template["Parameters"][parameter]["Type"], "Number", "{parameter}");
    }
}

#[test]
fn function_url_is_public_with_the_bearer_check_in_the_function() {
    let template = template();
    let endpoint = &template["Parameters"]["Endpoint"];
    assert_eq!(endpoint["Default"], "HttpApi");
    assert_eq!(
        endpoint["AllowedValues"],
        serde_yaml_ng::from_str::<Value>("[HttpApi, FunctionUrl]").unwrap()
    );
    let url = resource(&template, "CurrentsFunctionUrl");
    assert_eq!(url["Condition"], "UseFunctionUrl");
    assert_eq!(url["Properties"]["AuthType"], "NONE");
    assert_eq!(tagged(&url["Properties"]["TargetFunctionArn"]).1, "IngestFunction.Arn");
    let by_url = &resource(&template, "CurrentsFunctionUrlPermission")["Properties"];
    assert_eq!(
        (by_url["Action"].as_str(), by_url["FunctionUrlAuthType"].as_str()),
        (Some("lambda:InvokeFunctionUrl"), Some("NONE"))
    );
    let invoke = &resource(&template, "CurrentsFunctionUrlInvokePermission")["Properties"];
    assert_eq!(invoke["Action"], "lambda:InvokeFunction");
    assert_eq!(invoke["InvokedViaFunctionUrl"], true, "only calls through the URL");
    // The bearer token is the function's own check, on either endpoint.
    let token = &resource(&template, "IngestFunction")["Properties"]["Environment"]["Variables"]["CURRENTS_AUTH_TOKEN"];
    assert!(!token.is_null());
}

#[test]
fn each_endpoint_value_creates_its_own_resources_and_no_dangling_reference() {
    let template = template();
    let api = ["CurrentsApi", "CurrentsApiInvokePermission"];
    let url = [
        "CurrentsFunctionUrl",
        "CurrentsFunctionUrlPermission",
        "CurrentsFunctionUrlInvokePermission",
    ];
    for (endpoint, present, absent) in [("HttpApi", &api[..], &url[..]), ("FunctionUrl", &url[..], &api[..])] {
        for options in ["false", "true"] {
            let parameters = HashMap::from([
                ("Endpoint", endpoint),
                ("EnableBackfill", options),
                ("EnableLargePayloadBucket", options),
            ]);
            let existing = existing_resources(&template, &parameters);
            for name in present {
                assert!(existing.contains(*name), "{endpoint}: {name} exists");
            }
            for name in absent {
                assert!(!existing.contains(*name), "{endpoint}: {name} does not exist");
            }
            assert_no_dangling_references(&template, &parameters, &existing);
        }
    }
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
fn max_receive_count_covers_the_longest_replay_window_even_without_backoff() {
    let template = template();
    let retry = &resource(&template, "RetryQueue")["Properties"];
    let max_receive_count = int(&retry["RedrivePolicy"]["maxReceiveCount"]);
    // SQS allows 1 to 1,000: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
    assert!((1..=1000).contains(&max_receive_count));
    let longest = int(&template["Parameters"]["ReplayMaxAgeHours"]["MaxValue"]) * 3600;
    // Worst case: every visibility change fails, so messages return after VisibilityTimeout.
    let receives_in_window = longest / int(&retry["VisibilityTimeout"]) + 1;
    assert!(
        max_receive_count > receives_in_window,
        "{receives_in_window} receives in the longest window reach maxReceiveCount {max_receive_count}"
    );
}

#[test]
fn replays_backoff_schedule_never_reaches_the_redrive_before_expiry() {
    let template = template();
    let retry = &resource(&template, "RetryQueue")["Properties"];
    let max_receive_count = int(&retry["RedrivePolicy"]["maxReceiveCount"]);
    for hours in [
        int(&template["Parameters"]["ReplayMaxAgeHours"]["MaxValue"]),
        int(&template["Parameters"]["ReplayMaxAgeHours"]["Default"]),
    ] {
        let max_age = std::time::Duration::from_secs(hours as u64 * 3600);
        let first = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let (mut now, mut receives) = (first, 0_i64);
        // Each receive fails and hides the envelope for replay's backoff, until it expires.
        while !expiry::is_expired(now, first, max_age) {
            receives += 1;
            assert!(receives < 100_000, "the schedule must end");
            now += expiry::visibility_backoff(receives as u32, now, first, max_age);
        }
        // The receive that finds it expired dead-letters it with a reason.
        receives += 1;
        assert!(
            receives < max_receive_count,
            "{hours} h: {receives} receives reach maxReceiveCount {max_receive_count}"
        );
    }
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
        ("SQSSendMessagePolicy".to_owned(), "RetryQueue.QueueName".to_owned()),
        (
            "SQSSendMessagePolicy".to_owned(),
            "DeadLetterQueue.QueueName".to_owned(),
        ),
    ];
    assert_eq!(ingest, expected_ingest);
    assert_eq!(replay, expected_replay);
    let readme = readme();
    for (function, list) in [
        ("IngestFunction", &expected_ingest[..]),
        ("ReplayFunction", &expected_replay[..]),
    ] {
        for (policy, queue) in list.iter() {
            let queue = queue.trim_end_matches(".QueueName");
            let line = format!("| {function} | `{policy}` | {queue} |");
            assert!(readme.contains(&line), "README lists `{line}`");
        }
    }
}

/// Issue 21, case 5: at cold start each function reads both queues' `MaximumMessageSize`, so
/// parked bodies stay within it even when `PARK_MESSAGE_MAX_BYTES` is larger.
#[test]
fn ingest_and_replay_may_read_both_queues_message_size() {
    let template = template();
    for function in ["IngestFunction", "ReplayFunction"] {
        let reads: Vec<Value> = statements(&template, &deployable(&[]), function)
            .into_iter()
            .filter(|s| s["Action"] == "sqs:GetQueueAttributes")
            .collect();
        assert_eq!(reads.len(), 1, "{function}: one GetQueueAttributes statement");
        let resources: Vec<(String, String)> = reads[0]["Resource"]
            .as_sequence()
            .expect("a list of queue ARNs")
            .iter()
            .map(tagged)
            .collect();
        let arn = |queue: &str| ("!GetAtt".to_owned(), format!("{queue}.Arn"));
        assert_eq!(resources, [arn("RetryQueue"), arn("DeadLetterQueue")], "{function}");
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
    for output in [
        "CurrentsEndpoint",
        "RetryQueueUrl",
        "DeadLetterQueueUrl",
        "DashboardUrl",
    ] {
        assert!(template["Outputs"].get(output).is_some(), "{output}");
    }
}

#[test]
fn write_key_invalid_alarm_sums_ingest_and_replay_and_notifies_like_the_others() {
    let template = template();
    let alarm = resource(&template, "WriteKeyInvalidAlarm");
    assert_eq!(alarm["Type"], "AWS::CloudWatch::Alarm");
    assert!(alarm.get("Condition").is_none(), "always present");
    let properties = &alarm["Properties"];
    let metrics = properties["Metrics"].as_sequence().unwrap();
    let mut functions = Vec::new();
    let mut ids = Vec::new();
    for query in metrics.iter().filter(|m| m.get("MetricStat").is_some()) {
        let stat = &query["MetricStat"];
        assert_eq!(stat["Metric"]["Namespace"], NAMESPACE);
        assert_eq!(stat["Metric"]["MetricName"], Metric::WriteKeyInvalid.name());
        assert_eq!((stat["Stat"].as_str(), int(&stat["Period"])), (Some("Sum"), 300));
        // The totals document carries `Function` alone; `Function`+`Route` would miss routes.
        let dimensions = stat["Metric"]["Dimensions"].as_sequence().unwrap();
        assert_eq!(dimensions.len(), 1);
        assert_eq!(dimensions[0]["Name"], "Function");
        functions.push(dimensions[0]["Value"].as_str().unwrap().to_owned());
        assert_eq!(query["ReturnData"], false);
        ids.push(query["Id"].as_str().unwrap().to_owned());
    }
    assert_eq!(functions, ["ingest", "replay"]);
    let returned: Vec<&Value> = metrics.iter().filter(|m| m["ReturnData"] == true).collect();
    assert_eq!(returned.len(), 1, "one series decides");
    let expression = returned[0]["Expression"].as_str().unwrap();
    for id in &ids {
        // A function with no data this period counts as 0 rather than hiding the other's.
        assert!(expression.contains(&format!("FILL({id}, 0)")), "{expression} adds {id}");
    }
    assert_eq!(int(&properties["Threshold"]), 0);
    assert_eq!(properties["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(int(&properties["EvaluationPeriods"]), 1);
    assert_eq!(properties["TreatMissingData"], "notBreaching");
    let topic: Value = serde_yaml_ng::from_str("!If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]").unwrap();
    let alarms: Vec<(&Value, &Value)> = template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .collect();
    assert!(alarms.len() >= 6);
    for (name, alarm) in alarms {
        assert_eq!(
            alarm["Properties"]["AlarmActions"], topic,
            "{name:?} notifies AlarmTopicArn"
        );
    }
    let description = properties["AlarmDescription"].as_str().unwrap();
    for words in ["write key", "region", "held in RetryQueue", "README, Troubleshooting"] {
        assert!(description.contains(words), "the description says {words:?}");
    }
    assert!(
        readme().contains("| **WriteKeyInvalidAlarm** ("),
        "README, Troubleshooting has a row for the alarm"
    );
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
        "SEGMENT_ENDPOINT",
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
        "LARGE_PAYLOAD_BUCKET",
        "SECRETS_ARN",
        "SECRETS_TTL_SECONDS",
        "WRITE_KEY_CHECK",
        "WRITE_KEY_CHECK_INTERVAL_SECONDS",
        "SEGMENT_SETTINGS_ENDPOINT",
    ];
    let source: String = [
        "src/config/env.rs",
        "src/config/routes.rs",
        "src/config/delivery.rs",
        "src/config/key_check.rs",
        "src/secrets/mod.rs",
    ]
    .iter()
    .map(|p| std::fs::read_to_string(format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap())
    .collect();
    for function in ["IngestFunction", "ReplayFunction"] {
        for name in variables(&template, function) {
            if aws_env::shape_of(&name).is_some() {
                continue; // read by the AWS SDK itself (checked at cold start by aws_env)
            }
            assert!(known.contains(&name.as_str()), "{function} sets unknown {name}");
            assert!(source.contains(&format!("\"{name}\"")), "the code reads {name}");
        }
    }
}

fn variables(template: &Value, function: &str) -> Vec<String> {
    resource(template, function)["Properties"]["Environment"]["Variables"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn sam_local_env_file_overrides_only_declared_variables_and_endpoints_are_never_empty() {
    let template = template();
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/events/env.json")).unwrap();
    let env: serde_json::Value = serde_json::from_str(&text).unwrap();
    for function in ["IngestFunction", "ReplayFunction"] {
        let declared = variables(&template, function);
        let local = env[function].as_object().unwrap();
        // sam local silently ignores a variable the template does not declare.
        for (name, value) in local {
            assert!(declared.contains(name), "{function} must declare {name} for sam local");
            assert!(!value.as_str().unwrap().is_empty(), "{name}");
        }
        for name in [
            "SEGMENT_ENDPOINT",
            "AWS_ENDPOINT_URL_SQS",
            "RETRY_QUEUE_URL",
            "DEAD_LETTER_QUEUE_URL",
        ] {
            assert!(
                local.contains_key(name),
                "env.json points {function}'s {name} at a stand-in"
            );
        }
        let vars = &resource(&template, function)["Properties"]["Environment"]["Variables"];
        for name in declared.iter().filter(|n| n.contains("ENDPOINT")) {
            let value = &vars[name.as_str()];
            assert!(!value.is_null(), "{function}: {name}");
            let default = resolved(&template, &HashMap::new(), value);
            if name == "SEGMENT_SETTINGS_ENDPOINT" {
                // Empty on purpose: empty counts as unset (Segment's CDN for Segment's hosts),
                // while any value would also check custom endpoints. Declared for sam local.
                assert_eq!(default.as_deref(), Some(""), "{function}: {name}");
            } else {
                assert_ne!(default.as_deref(), Some(""), "{function}: {name} has an empty default");
            }
        }
        assert_eq!(
            tagged(&vars["AWS_ENDPOINT_URL_SQS"]).1,
            "https://sqs.${AWS::Region}.${AWS::URLSuffix}"
        );
    }
}

/// BridgeDashboard's body as JSON, each `${...}` of its `!Sub` left out.
fn dashboard(template: &Value) -> serde_json::Value {
    let (tag, body) = tagged(&resource(template, "BridgeDashboard")["Properties"]["DashboardBody"]);
    assert_eq!(tag, "!Sub");
    let mut plain = String::new();
    for (i, part) in body.split("${").enumerate() {
        // `${X.Y}` becomes the placeholder `X.Y` so the body parses as JSON.
        plain.push_str(if i == 0 {
            part
        } else {
            part.split_once('}').map_or(part, |(_, rest)| rest)
        });
    }
    serde_json::from_str(&plain).expect("DashboardBody is JSON")
}

/// Every `{Namespace, MetricName}` pair a dashboard widget names, from metric arrays and from
/// SEARCH expressions.
fn dashboard_metrics(template: &Value) -> Vec<(String, String)> {
    let dashboard = dashboard(template);
    let mut found = Vec::new();
    for widget in dashboard["widgets"].as_array().unwrap() {
        for metric in widget["properties"]["metrics"].as_array().unwrap() {
            if let Some(expression) = metric[0]["expression"].as_str() {
                let namespace = expression.split('{').nth(1).unwrap().split(',').next().unwrap();
                let name = expression
                    .split("MetricName=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                found.push((namespace.to_owned(), name.to_owned()));
            } else {
                let array = metric.as_array().unwrap();
                assert_ne!(array[0], ".", "no shorthand: every metric names its namespace");
                assert_ne!(array[1], ".", "no shorthand: every metric names itself");
                found.push((
                    array[0].as_str().unwrap().to_owned(),
                    array[1].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    found
}

#[test]
fn dashboard_names_only_metrics_the_code_emits_and_shows_each_concern() {
    let template = template();
    let emitted: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    let found = dashboard_metrics(&template);
    for (namespace, name) in &found {
        match namespace.as_str() {
            n if n == NAMESPACE => assert!(emitted.contains(&name.as_str()), "the code emits no {name}"),
            "AWS/SQS" | "AWS/Lambda" => {}
            other => panic!("unexpected namespace {other} for {name}"),
        }
    }
    let shown: BTreeSet<(&str, &str)> = found.iter().map(|(n, m)| (n.as_str(), m.as_str())).collect();
    for name in [
        "Received",
        "Delivered",
        "Parked",
        "Skipped",
        "DeadLettered",
        "InvalidEvent",
        "Replayed",
        "Expired",
        "SegmentLatencyMs",
        "SegmentRequests",
        "SegmentRetries",
        "WriteKeyInvalid",
        "WriteKeyCheckFailed",
    ] {
        assert!(shown.contains(&(NAMESPACE, name)), "the dashboard shows {name}");
    }
    for (namespace, name) in [
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
    ] {
        assert!(
            shown.contains(&(namespace, name)),
            "the dashboard shows {namespace} {name}"
        );
    }
    let body = tagged(&resource(&template, "BridgeDashboard")["Properties"]["DashboardBody"]).1;
    assert!(
        body.contains("\"p50\"") && body.contains("\"p99\""),
        "Segment latency p50 and p99"
    );
    assert!(
        tagged(&template["Outputs"]["DashboardUrl"]["Value"])
            .1
            .contains("${BridgeDashboard}")
    );
}

#[test]
fn dashboard_shows_the_write_key_check_for_ingest_and_replay() {
    let dashboard = dashboard(&template());
    let mut shown = BTreeSet::new();
    for widget in dashboard["widgets"].as_array().unwrap() {
        for metric in widget["properties"]["metrics"].as_array().unwrap() {
            let words: Vec<&str> = metric.as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
            if let [NAMESPACE, name, "Function", function, ..] = words[..] {
                shown.insert((name.to_owned(), function.to_owned()));
            }
        }
    }
    for metric in [Metric::WriteKeyInvalid, Metric::WriteKeyCheckFailed] {
        for function in ["ingest", "replay"] {
            assert!(
                shown.contains(&(metric.name().to_owned(), function.to_owned())),
                "the dashboard shows {} for {function}",
                metric.name()
            );
        }
    }
}

#[test]
fn large_payload_bucket_is_private_encrypted_and_outlives_the_dead_letters() {
    let template = template();
    let bucket = resource(&template, "LargePayloadBucket");
    assert_eq!(bucket["Condition"], "HasLargePayloadBucket");
    let properties = &bucket["Properties"];
    let block = properties["PublicAccessBlockConfiguration"].as_mapping().unwrap();
    assert_eq!(block.len(), 4);
    assert!(block.values().all(|v| *v == true), "every public access block is on");
    let sse = &properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0];
    assert!(sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"].is_string());
    let rules = &properties["LifecycleConfiguration"]["Rules"];
    let days = int(&rules[0]["ExpirationInDays"]);
    // A payload deleted by mistake can be restored from its previous version, for a bounded time.
    assert_eq!(properties["VersioningConfiguration"]["Status"], "Enabled");
    assert_eq!(int(&rules[0]["NoncurrentVersionExpiration"]["NoncurrentDays"]), 14);
    assert_eq!(rules[1]["ExpiredObjectDeleteMarker"], true);
    let dead_letter_days =
        int(&resource(&template, "DeadLetterQueue")["Properties"]["MessageRetentionPeriod"]) / 86_400;
    assert!(
        days > dead_letter_days,
        "{days} days must outlive the DLQ's {dead_letter_days}"
    );
    for function in ["IngestFunction", "ReplayFunction"] {
        let properties = &resource(&template, function)["Properties"];
        let variable = &properties["Environment"]["Variables"]["LARGE_PAYLOAD_BUCKET"];
        assert_eq!(
            if_branches(variable),
            ("HasLargePayloadBucket".into(), "!Ref LargePayloadBucket".into())
        );
        let conditional: Vec<&Value> = properties["Policies"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter(|p| matches!(p, Value::Tagged(_)) && untag(p)[0] == "HasLargePayloadBucket")
            .collect();
        assert_eq!(conditional.len(), 1, "{function}: one conditional S3 policy");
        let statement = &untag(conditional[0])[1]["Statement"];
        // Replay may also list the bucket, so a deleted object is NoSuchKey, not AccessDenied
        // (issue 21, case 3: dead-lettered at once as `payload_missing`).
        let statements = if function == "ReplayFunction" { 2 } else { 1 };
        assert_eq!(statement.as_sequence().unwrap().len(), statements, "{function}");
        assert_eq!(
            statement[0]["Action"],
            serde_yaml_ng::from_str::<Value>("[s3:PutObject, s3:GetObject]").unwrap()
        );
        assert_eq!(tagged(&statement[0]["Resource"]).1, "${LargePayloadBucket.Arn}/*");
        if function == "ReplayFunction" {
            assert_eq!(statement[1]["Action"], "s3:ListBucket");
            assert_eq!(tagged(&statement[1]["Resource"]).1, "LargePayloadBucket.Arn");
        }
    }
}

#[test]
fn the_runtime_secret_is_optional_and_readable_only_by_arn() {
    let template = template();
    assert_eq!(template["Parameters"]["RuntimeSecretArn"]["Default"], "");
    for function in DELIVERING {
        let properties = &resource(&template, function)["Properties"];
        let variable = &properties["Environment"]["Variables"]["SECRETS_ARN"];
        assert_eq!(
            if_branches(variable),
            ("HasRuntimeSecret".into(), "!Ref RuntimeSecretArn".into())
        );
        assert_eq!(
            tagged(&properties["Environment"]["Variables"]["SECRETS_TTL_SECONDS"]),
            ("!Ref".into(), "SecretsTtlSeconds".into()),
            "{function}"
        );
        let secret: Vec<&Value> = properties["Policies"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter(|p| matches!(p, Value::Tagged(_)) && untag(p)[0] == "HasRuntimeSecret")
            .collect();
        assert_eq!(secret.len(), 1, "{function}: one conditional secrets policy");
        let statement = &untag(secret[0])[1]["Statement"];
        assert_eq!(statement.as_sequence().unwrap().len(), 1);
        assert_eq!(statement[0]["Action"], "secretsmanager:GetSecretValue");
        assert_eq!(tagged(&statement[0]["Resource"]).1, "RuntimeSecretArn");
    }
}

/// The statements of `function`'s inline policies under `parameters` (policy templates left out).
fn statements(template: &Value, parameters: &HashMap<&str, &str>, function: &str) -> Vec<Value> {
    let mut found = Vec::new();
    for policy in resource(template, function)["Properties"]["Policies"]
        .as_sequence()
        .unwrap()
    {
        let policy = match tag_of(policy).as_deref() {
            Some("!If") => {
                let parts = untag(policy);
                let holds = named_condition(template, parameters, parts[0].as_str().unwrap());
                &parts[if holds { 1 } else { 2 }]
            }
            _ => policy,
        };
        if let Some(statements) = policy.get("Statement").and_then(Value::as_sequence) {
            found.extend(statements.iter().cloned());
        }
    }
    found
}

#[test]
fn with_the_runtime_secret_backfill_reads_it_and_holds_no_write_key_in_its_environment() {
    let template = template();
    let secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:currents-segment/runtime-AbCdEf";
    let reads_the_secret = |statements: &[Value]| {
        statements.iter().any(|s| {
            s["Action"] == "secretsmanager:GetSecretValue"
                && tagged(&s["Resource"]) == ("!Ref".into(), "RuntimeSecretArn".into())
        })
    };
    for routes in [
        "",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:currents-segment/routes-AbCdEf",
    ] {
        let without = deployable(&[("EnableBackfill", "true"), ("RoutesSecretArn", routes)]);
        let env = environment(&template, &without, "BackfillFunction");
        assert_eq!(env.get("SEGMENT_WRITE_KEY").map(String::as_str), Some("wk_template"));
        assert!(env.contains_key("ROUTES"), "ROUTES as before");
        assert!(!env.contains_key("SECRETS_ARN"));
        assert!(!reads_the_secret(&statements(&template, &without, "BackfillFunction")));

        let with = deployable(&[
            ("EnableBackfill", "true"),
            ("RoutesSecretArn", routes),
            ("RuntimeSecretArn", secret),
        ]);
        let env = environment(&template, &with, "BackfillFunction");
        assert_eq!(env.get("SECRETS_ARN").map(String::as_str), Some(secret));
        assert_eq!(env.get("SECRETS_TTL_SECONDS").map(String::as_str), Some("300"));
        for name in ["SEGMENT_WRITE_KEY", "ROUTES"] {
            assert!(
                !env.contains_key(name),
                "routes {routes:?}: no {name} beside the runtime secret"
            );
        }
        assert!(
            reads_the_secret(&statements(&template, &with, "BackfillFunction")),
            "GetSecretValue on RuntimeSecretArn"
        );
    }
}

#[test]
fn backfill_is_optional_bounded_and_reads_only_its_prefix() {
    let template = template();
    assert_eq!(template["Parameters"]["EnableBackfill"]["Default"], "false");
    for name in ["BackfillFunction", "BackfillQueue", "BackfillDeadLetterQueue"] {
        assert_eq!(resource(&template, name)["Condition"], "BackfillEnabled", "{name}");
    }
    let function = resource(&template, "BackfillFunction");
    assert_eq!(function["Metadata"]["BuildProperties"]["Binary"], "backfill");
    let properties = &function["Properties"];
    assert!(properties.get("Runtime").is_none() && properties.get("Architectures").is_none());
    assert_eq!(
        tagged(&properties["ReservedConcurrentExecutions"]).1,
        "BackfillConcurrency"
    );
    let event = &properties["Events"]["Backfill"];
    assert_eq!(event["Type"], "SQS");
    assert_eq!(tagged(&event["Properties"]["Queue"]).1, "BackfillQueue.Arn");
    assert_eq!(
        event["Properties"]["FunctionResponseTypes"][0],
        "ReportBatchItemFailures"
    );
    let queue = &resource(&template, "BackfillQueue")["Properties"];
    assert_eq!(
        tagged(&queue["RedrivePolicy"]["deadLetterTargetArn"]).1,
        "BackfillDeadLetterQueue.Arn"
    );
    let timeout = int(&properties["Timeout"]);
    // Lambda's maximum, and what the README's sizing text promises.
    assert_eq!(timeout, 900, "BackfillFunction's Timeout");
    assert_eq!(
        int(&queue["VisibilityTimeout"]),
        6 * timeout,
        "BackfillQueue's VisibilityTimeout is 6 x the function's, as Lambda recommends"
    );
    let readme = readme();
    assert!(
        readme.contains(&format!("a {}-minute timeout", timeout / 60)),
        "README gives the backfill timeout"
    );
    assert!(
        readme.contains(&format!("{} s, Lambda's maximum", timeout)),
        "README gives the backfill timeout in seconds"
    );
    let visibility = 6 * timeout;
    let visibility = format!("{},{:03} s", visibility / 1000, visibility % 1000);
    assert!(
        readme.contains(&visibility),
        "README gives the visibility timeout, {visibility}"
    );
    let s3: Vec<&Value> = properties["Policies"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|p| p.get("Statement"))
        .flat_map(|s| s.as_sequence().unwrap())
        .collect();
    let grants: Vec<(String, String)> = s3
        .iter()
        .map(|s| (s["Action"].as_str().unwrap().to_owned(), tagged(&s["Resource"]).1))
        .collect();
    assert_eq!(
        grants,
        [
            (
                "s3:GetObject".into(),
                "arn:${AWS::Partition}:s3:::${BackfillBucket}/${BackfillPrefix}*".into()
            ),
            (
                "s3:ListBucket".into(),
                "arn:${AWS::Partition}:s3:::${BackfillBucket}".into()
            ),
        ]
    );
    assert_eq!(
        tagged(&s3[1]["Condition"]["StringLike"]["s3:prefix"]).1,
        "${BackfillPrefix}*"
    );
}

/// The functions that deliver to Segment and read the delivery configuration.
const DELIVERING: [&str; 3] = ["IngestFunction", "ReplayFunction", "BackfillFunction"];

fn allowed_values(template: &Value, name: &str) -> Vec<String> {
    template["Parameters"][name]["AllowedValues"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{name} has AllowedValues"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn write_key_check_parameters_reach_every_delivering_function() {
    let template = template();
    let parameters = &template["Parameters"];
    assert_eq!(allowed_values(&template, "WriteKeyCheck"), ["on", "off"]);
    assert_eq!(parameters["WriteKeyCheck"]["Default"], "on");
    let interval = &parameters["WriteKeyCheckIntervalSeconds"];
    assert_eq!(interval["Type"], "Number");
    assert_eq!((int(&interval["Default"]), int(&interval["MinValue"])), (300, 1));
    assert_eq!(parameters["SegmentSettingsEndpoint"]["Type"], "String");
    // Empty counts as unset: a non-empty default would also check custom endpoints.
    assert_eq!(parameters["SegmentSettingsEndpoint"]["Default"], "");
    assert_eq!(allowed_values(&template, "SegmentRegion"), ["us", "eu", "auto"]);
    for function in DELIVERING {
        let vars = &resource(&template, function)["Properties"]["Environment"]["Variables"];
        for (name, parameter) in [
            ("WRITE_KEY_CHECK", "WriteKeyCheck"),
            ("WRITE_KEY_CHECK_INTERVAL_SECONDS", "WriteKeyCheckIntervalSeconds"),
            ("SEGMENT_SETTINGS_ENDPOINT", "SegmentSettingsEndpoint"),
            ("SEGMENT_REGION", "SegmentRegion"),
        ] {
            assert_eq!(
                tagged(&vars[name]),
                ("!Ref".into(), parameter.into()),
                "{function}: {name}"
            );
        }
    }
}

/// Parameters every deploy needs, plus `overrides`.
fn deployable<'a>(overrides: &[(&'a str, &'a str)]) -> HashMap<&'a str, &'a str> {
    let mut parameters = HashMap::from([
        ("SegmentWriteKey", "wk_template"),
        ("CurrentsAuthToken", "a-token-of-sixteen-chars"),
    ]);
    parameters.extend(overrides.iter().copied());
    parameters
}

/// What the code makes of `function`'s environment under `parameters`, with `local` on top
/// (as `sam local --env-vars` would).
fn parsed(
    template: &Value,
    parameters: &HashMap<&str, &str>,
    function: &str,
    local: &[(&str, &str)],
) -> Result<currents_segment::config::Config, String> {
    let mut env = environment(template, parameters, function);
    env.extend(local.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    currents_segment::config::Config::from_lookup(|key| env.get(key).cloned()).map_err(|e| e.to_string())
}

fn key_check(config: &currents_segment::config::Config) -> KeyCheck {
    config.routing.routes()[0].key_check.clone()
}

#[test]
fn write_key_check_defaults_check_segment_hosts_and_leave_custom_endpoints_alone() {
    let template = template();
    for function in DELIVERING {
        let defaults = parsed(&template, &deployable(&[]), function, &[]).unwrap();
        let KeyCheck::On(on) = key_check(&defaults) else {
            panic!("{function}: the default route is checked by default");
        };
        assert_eq!(on.settings_endpoint, "https://cdn.segment.com", "{function}");
        assert_eq!(on.interval, std::time::Duration::from_secs(300), "{function}");
        assert!(!on.follow_region, "{function}");
        // sam local's env.json points SEGMENT_ENDPOINT at a stand-in: not checked by default.
        let local = parsed(
            &template,
            &deployable(&[]),
            function,
            &[("SEGMENT_ENDPOINT", "http://host.docker.internal:8089")],
        )
        .unwrap();
        assert_eq!(
            key_check(&local),
            KeyCheck::Off(KeyCheckOff::CustomEndpoint),
            "{function}"
        );
        let set = [
            ("SegmentSettingsEndpoint", "https://settings.example.com"),
            ("WriteKeyCheckIntervalSeconds", "60"),
        ];
        let custom = parsed(&template, &deployable(&set), function, &[]).unwrap();
        let KeyCheck::On(on) = key_check(&custom) else {
            panic!("{function}: checked");
        };
        assert_eq!(
            (on.settings_endpoint.as_str(), on.interval.as_secs()),
            ("https://settings.example.com", 60),
            "{function}"
        );
        let off = parsed(&template, &deployable(&[("WriteKeyCheck", "off")]), function, &[]).unwrap();
        assert_eq!(key_check(&off), KeyCheck::Off(KeyCheckOff::Disabled), "{function}");
        let auto = parsed(&template, &deployable(&[("SegmentRegion", "auto")]), function, &[]).unwrap();
        assert!(key_check(&auto).on().unwrap().follow_region, "{function}: auto follows");
    }
}

#[test]
fn every_region_and_check_setting_the_rules_allow_starts_every_function() {
    let template = template();
    let regions = allowed_values(&template, "SegmentRegion");
    let checks = allowed_values(&template, "WriteKeyCheck");
    for region in &regions {
        for check in &checks {
            let parameters = deployable(&[("SegmentRegion", region), ("WriteKeyCheck", check)]);
            let allowed = rules_allow(&template, &parameters);
            for function in DELIVERING {
                let started = parsed(&template, &parameters, function, &[]);
                assert_eq!(
                    allowed,
                    started.is_ok(),
                    "region {region}, check {check}: the rules allow exactly what {function} accepts ({started:?})",
                    started = started.as_ref().err()
                );
            }
        }
    }
}

// ---- a small evaluator of the template's conditions, for the per-parameter checks ----

/// The value `value` takes under `parameters`: `None` for `!Ref AWS::NoValue` (no variable),
/// the tag and its text for what only CloudFormation knows (a resource's `!Ref`, `!Sub`).
fn resolved(template: &Value, parameters: &HashMap<&str, &str>, value: &Value) -> Option<String> {
    match tag_of(value).as_deref() {
        None => Some(value.as_str().map_or_else(|| int(value).to_string(), str::to_owned)),
        Some("!Ref") => match untag(value).as_str().unwrap() {
            "AWS::NoValue" => None,
            name if template["Parameters"].get(name).is_some() => Some(parameter(template, parameters, name)),
            name => Some(format!("!Ref {name}")),
        },
        Some("!If") => {
            let parts = untag(value);
            let branch = if named_condition(template, parameters, parts[0].as_str().unwrap()) {
                1
            } else {
                2
            };
            resolved(template, parameters, &parts[branch])
        }
        Some(tag) => Some(format!("{tag} {:?}", untag(value))),
    }
}

/// A function's environment under `parameters`, as far as the template alone decides it.
fn environment(template: &Value, parameters: &HashMap<&str, &str>, function: &str) -> HashMap<String, String> {
    resource(template, function)["Properties"]["Environment"]["Variables"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter_map(|(name, value)| {
            Some((
                name.as_str().unwrap().to_owned(),
                resolved(template, parameters, value)?,
            ))
        })
        .collect()
}

/// Whether every rule whose condition holds under `parameters` passes its assertions.
fn rules_allow(template: &Value, parameters: &HashMap<&str, &str>) -> bool {
    template["Rules"].as_mapping().unwrap().values().all(|rule| {
        let applies = rule
            .get("RuleCondition")
            .is_none_or(|c| condition(template, parameters, c));
        !applies
            || rule["Assertions"]
                .as_sequence()
                .unwrap()
                .iter()
                .all(|a| condition(template, parameters, &a["Assert"]))
    })
}

fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => &tagged.value,
        other => other,
    }
}

fn tag_of(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) => Some(tagged.tag.to_string()),
        _ => None,
    }
}

/// `!If [Condition, !Ref X, ...]` as (condition, "!Ref X").
fn if_branches(value: &Value) -> (String, String) {
    assert_eq!(tag_of(value).as_deref(), Some("!If"));
    let parts = untag(value);
    let (tag, target) = tagged(&parts[1]);
    (parts[0].as_str().unwrap().to_owned(), format!("{tag} {target}"))
}

fn parameter<'a>(template: &'a Value, parameters: &HashMap<&str, &'a str>, name: &str) -> String {
    parameters.get(name).map_or_else(
        || {
            let default = &template["Parameters"][name]["Default"];
            default.as_str().map_or_else(|| int(default).to_string(), str::to_owned)
        },
        |v| (*v).to_owned(),
    )
}

fn scalar(template: &Value, parameters: &HashMap<&str, &str>, value: &Value) -> String {
    match tag_of(value).as_deref() {
        Some("!Ref") => parameter(template, parameters, untag(value).as_str().unwrap()),
        None => value.as_str().map_or_else(|| int(value).to_string(), str::to_owned),
        Some(other) => panic!("unsupported {other} in a condition"),
    }
}

fn condition(template: &Value, parameters: &HashMap<&str, &str>, value: &Value) -> bool {
    let args = untag(value);
    match tag_of(value).as_deref() {
        Some("!Equals") => scalar(template, parameters, &args[0]) == scalar(template, parameters, &args[1]),
        Some("!Not") => !condition(template, parameters, &args[0]),
        Some("!And") => args
            .as_sequence()
            .unwrap()
            .iter()
            .all(|c| condition(template, parameters, c)),
        Some("!Or") => args
            .as_sequence()
            .unwrap()
            .iter()
            .any(|c| condition(template, parameters, c)),
        Some("!Condition") => named_condition(template, parameters, args.as_str().unwrap()),
        other => panic!("unsupported condition {other:?}"),
    }
}

fn named_condition(template: &Value, parameters: &HashMap<&str, &str>, name: &str) -> bool {
    condition(template, parameters, &template["Conditions"][name])
}

fn existing_resources(template: &Value, parameters: &HashMap<&str, &str>) -> BTreeSet<String> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| {
            r.get("Condition")
                .is_none_or(|c| named_condition(template, parameters, c.as_str().unwrap()))
        })
        .map(|(name, _)| name.as_str().unwrap().to_owned())
        .collect()
}

/// Resource names a value refers to through `!Ref`, `!GetAtt` and `${...}` in `!Sub`, skipping
/// the branch of each `!If` that the parameters rule out.
fn references(template: &Value, parameters: &HashMap<&str, &str>, value: &Value, out: &mut Vec<String>) {
    let inner = untag(value);
    match tag_of(value).as_deref() {
        Some("!Ref") => out.push(inner.as_str().unwrap().to_owned()),
        Some("!GetAtt") => out.push(inner.as_str().unwrap().split('.').next().unwrap().to_owned()),
        Some("!Sub") => {
            let text = inner.as_str().or_else(|| inner[0].as_str()).unwrap();
            for part in text.split("${").skip(1) {
                let name = part.split(['}', '.']).next().unwrap();
                out.push(name.to_owned());
            }
        }
        Some("!If") => {
            let chosen = if named_condition(template, parameters, inner[0].as_str().unwrap()) {
                1
            } else {
                2
            };
            references(template, parameters, &inner[chosen], out);
            return;
        }
        _ => {}
    }
    match inner {
        Value::Sequence(items) => items.iter().for_each(|v| references(template, parameters, v, out)),
        Value::Mapping(map) => map.values().for_each(|v| references(template, parameters, v, out)),
        _ => {}
    }
}

fn assert_no_dangling_references(template: &Value, parameters: &HashMap<&str, &str>, existing: &BTreeSet<String>) {
    let declared: BTreeSet<String> = template["Parameters"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let mut holders: Vec<(&str, &Value)> = template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(name, _)| existing.contains(name.as_str().unwrap()))
        .map(|(name, r)| (name.as_str().unwrap(), r))
        .collect();
    for (name, output) in template["Outputs"].as_mapping().unwrap() {
        if output
            .get("Condition")
            .is_none_or(|c| named_condition(template, parameters, c.as_str().unwrap()))
        {
            holders.push((name.as_str().unwrap(), output));
        }
    }
    for (holder, value) in holders {
        let mut found = Vec::new();
        references(template, parameters, value, &mut found);
        for name in found {
            let ok = existing.contains(&name) || declared.contains(&name) || name.starts_with("AWS::");
            assert!(ok, "{parameters:?}: {holder} refers to {name}, which does not exist");
        }
    }
}

#[test]
fn a_token_from_any_of_the_three_sources_satisfies_token_is_provided() {
    let template = template();
    let secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:currents-runtime-AbCdEf";
    let no_token = [("CurrentsAuthToken", "")];
    assert!(!rules_allow(&template, &deployable(&no_token)), "no token at all");
    for (parameter, value) in [("CredentialsSecretArn", secret), ("RuntimeSecretArn", secret)] {
        let parameters = deployable(&[no_token[0], (parameter, value)]);
        assert!(rules_allow(&template, &parameters), "{parameter} alone");
    }
}

/// Issue 23, item 9: each function logs to a group the stack owns, kept `LogRetentionDays`.
#[test]
fn every_function_logs_to_its_own_group_kept_log_retention_days() {
    let template = template();
    let days = &template["Parameters"]["LogRetentionDays"];
    assert_eq!(int(&days["Default"]), 30);
    assert!(
        days["AllowedValues"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|d| int(d) == 3653)
    );
    for (function, group, condition) in [
        ("IngestFunction", "IngestLogGroup", None),
        ("ReplayFunction", "ReplayLogGroup", None),
        ("BackfillFunction", "BackfillLogGroup", Some("BackfillEnabled")),
    ] {
        let logging = &resource(&template, function)["Properties"]["LoggingConfig"];
        assert_eq!(
            tagged(&logging["LogGroup"]),
            ("!Ref".into(), group.into()),
            "{function}"
        );
        let group = resource(&template, group);
        assert_eq!(group["Type"], "AWS::Logs::LogGroup");
        assert_eq!(group["Condition"].as_str(), condition, "{function}");
        assert_eq!(
            tagged(&group["Properties"]["RetentionInDays"]),
            ("!Ref".into(), "LogRetentionDays".into())
        );
    }
    // The Globals' JSON format and levels still apply (SAM merges the two maps).
    assert_eq!(template["Globals"]["Function"]["LoggingConfig"]["LogFormat"], "JSON");
}

/// Issue 23, item 9: the HTTP API's access log is optional, off by default, and never holds a
/// header or a body.
#[test]
fn the_api_access_log_is_off_by_default_and_carries_no_header_or_body() {
    let template = template();
    assert_eq!(template["Parameters"]["EnableApiAccessLog"]["Default"], "false");
    assert_eq!(resource(&template, "ApiAccessLogGroup")["Condition"], "HasApiAccessLog");
    let settings = &resource(&template, "CurrentsApi")["Properties"]["AccessLogSettings"];
    assert_eq!(tag_of(settings).as_deref(), Some("!If"));
    let parts = untag(settings);
    assert_eq!(parts[0], "HasApiAccessLog");
    let format = parts[1]["Format"].as_str().unwrap();
    let fields: serde_json::Value = serde_json::from_str(format).expect("a JSON access log line");
    for forbidden in ["header", "authorization", "body", "requestbody"] {
        assert!(
            !format.to_ascii_lowercase().contains(forbidden),
            "{forbidden} in {format}"
        );
    }
    assert!(fields["requestId"].is_string() && fields["status"].is_string());
    assert_eq!(tagged(&parts[2]), ("!Ref".into(), "AWS::NoValue".into()));
}

/// Issue 23, item 9: every checkov finding the template skips says why, on the resource.
#[test]
fn every_checkov_skip_names_its_check_and_gives_a_reason() {
    let template = template();
    let mut skips = 0;
    for (name, resource) in template["Resources"].as_mapping().unwrap() {
        let Some(list) = resource["Metadata"]["checkov"]["skip"].as_sequence() else {
            continue;
        };
        for skip in list {
            let id = skip["id"].as_str().unwrap_or_default();
            let comment = skip["comment"].as_str().unwrap_or_default();
            assert!(id.starts_with("CKV_"), "{name:?}: {skip:?}");
            assert!(comment.len() >= 40, "{name:?} {id}: say why it does not apply");
            skips += 1;
        }
    }
    assert!(skips >= 10, "the template's skips are where they apply: {skips}");
}
