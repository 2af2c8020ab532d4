//! Logs at TRACE through the real Lambda runtime: the `ingest` binary polls a stand-in of the
//! Lambda Runtime API for one invocation that carries the bearer token, an email address, a
//! phone number and payload text, with `AWS_LAMBDA_LOG_LEVEL=TRACE`. None of them may appear in
//! what the process writes. `lambda_runtime` logs raw invocations at TRACE, so this fails if
//! our log filter stops capping it.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "trace-token-0123456789";
const WRITE_KEY: &str = "wk_trace_secret";
const EMAIL: &str = "trace.person@example.com";
const PHONE: &str = "+15550109876";
const PAYLOAD: &str = "campaign-text-that-must-not-be-logged";

fn invocation() -> serde_json::Value {
    let body = json!({"events": [{"id": "trace-1", "event_type": "users.messages.email.Open", "time": 1_764_000_000,
        "user": {"user_id": "b-1", "external_user_id": "u-1"},
        "properties": {"email_address": EMAIL, "campaign_name": PAYLOAD, "to_phone_number": PHONE}}]});
    json!({
        "version": "2.0", "routeKey": "POST /currents", "rawPath": "/currents", "rawQueryString": "",
        "headers": {"authorization": format!("Bearer {TOKEN}"), "content-type": "application/json"},
        "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "example.com",
            "http": {"method": "POST", "path": "/currents", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "braze"},
            "requestId": "r-1", "routeKey": "POST /currents", "stage": "$default", "time": "24/Nov/2025:16:00:00 +0000", "timeEpoch": 1_764_000_000_000_i64},
        "body": body.to_string(), "isBase64Encoded": false
    })
}

#[tokio::test]
async fn trace_level_logs_carry_no_token_key_pii_or_payload() {
    let segment = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&segment)
        .await;
    let runtime = MockServer::start().await;
    let deadline_ms = (time::OffsetDateTime::now_utc().unix_timestamp() + 30) * 1000;
    Mock::given(method("GET"))
        .and(path("/2018-06-01/runtime/invocation/next"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(invocation())
                .insert_header("Lambda-Runtime-Aws-Request-Id", "req-1")
                .insert_header("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string().as_str())
                .insert_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:ingest",
                ),
        )
        .up_to_n_times(1)
        .mount(&runtime)
        .await;
    // Later polls wait, as the real Runtime API does between invocations.
    Mock::given(method("GET"))
        .and(path("/2018-06-01/runtime/invocation/next"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .mount(&runtime)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("^/2018-06-01/runtime/invocation/.*/response$"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&runtime)
        .await;

    let mut child = Command::new(env!("CARGO_BIN_EXE_ingest"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address().to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "ingest")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_LEVEL", "TRACE")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("SEGMENT_ENDPOINT", segment.uri())
        .env("SEGMENT_WRITE_KEY", WRITE_KEY)
        .env("CURRENTS_AUTH_TOKEN", TOKEN)
        .env("RETRY_QUEUE_URL", "http://127.0.0.1:9/123456789012/retry")
        .env("DEAD_LETTER_QUEUE_URL", "http://127.0.0.1:9/123456789012/dead")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the ingest binary starts");

    // Wait (bounded) until the runtime has posted the invocation's response.
    let mut answered = None;
    for _ in 0..100 {
        let requests = runtime.received_requests().await.unwrap_or_default();
        answered = requests.into_iter().find(|r| r.url.path().ends_with("/response"));
        if answered.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().ok();
    let output = child.wait_with_output().expect("output");
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let answer = answered.unwrap_or_else(|| panic!("no response posted; logs:\n{logs}"));
    let answer: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(segment.received_requests().await.unwrap().len(), 1);
    assert!(logs.contains("Batch handled."), "the logs were captured: {logs}");
    for secret in [TOKEN, WRITE_KEY, EMAIL, PHONE, PAYLOAD, "trace.person"] {
        assert!(!logs.contains(secret), "`{secret}` leaked into the TRACE logs:\n{logs}");
    }
}
