//! One test per documented promise that had none (issue 15): each fails when the promise breaks.

mod common;

use std::time::Duration;

use common::{Harness, bearer, config, counts, post, send, sqs_event};
use currents_segment::config::{Config, PiiMode};
use currents_segment::currents::parse_body;
use currents_segment::ports::AttemptError;
use currents_segment::transform::transform;
use serde_json::{Value, json};
use tokio::time::Instant;

fn event(id: &str, properties: Value) -> Value {
    json!({"id": id, "event_type": "users.messages.sms.Send", "time": 1_764_000_000,
        "user": {"user_id": "b-1", "external_user_id": "u-1"}, "properties": properties})
}

fn map_one(config: &Config, event: &Value) -> Result<Value, String> {
    let body = json!({ "events": [event] }).to_string();
    let raw = parse_body(body.as_bytes()).unwrap();
    let out = transform(&raw, &config.routing, config.routing.find("default").unwrap());
    match (out.messages.first(), out.invalid.first()) {
        (Some(m), _) => Ok(serde_json::from_str(&m.json).unwrap()),
        (None, Some(i)) => Err(i.error.code.to_string()),
        (None, None) => Err("skipped".to_owned()),
    }
}

#[test]
fn hash_mode_hashes_the_sender_number_and_a_phone_valued_channel_identifier() {
    let config = config(&[("PII_MODE", "hash")]);
    let sms = event(
        "pii-1",
        json!({"to_phone_number": "+15550100199", "from_phone_number": "+15550100000",
            "channel_identifier": "+15550100777", "campaign_name": "c"}),
    );
    let message = map_one(&config, &sms).unwrap();
    let text = message.to_string();
    for raw in ["5550100000", "5550100777", "5550100199"] {
        assert!(!text.contains(raw), "{raw} left raw in {text}");
    }
    assert_eq!(message["properties"]["from_phone_number"].as_str().unwrap().len(), 64);
    assert_eq!(message["properties"]["channel_identifier"].as_str().unwrap().len(), 64);

    // A channel identifier is hashed as what it holds: a phone number by its digits, an email
    // address trimmed and lower-cased, as a destination would hash them to match.
    let sha256 = |text: &str| {
        use sha2::Digest;
        sha2::Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    for (raw, normalised) in [
        ("+1 (555) 010-0777", "15550100777"),
        (" Ada@Example.COM ", "ada@example.com"),
    ] {
        let change = event("pii-2", json!({"channel_identifier": raw}));
        let message = map_one(&config, &change).unwrap();
        assert_eq!(message["properties"]["channel_identifier"], sha256(normalised), "{raw}");
    }
    // Personal data that is not text cannot be hashed as text: a number is dropped, never sent
    // raw; a null says nothing and stays.
    let odd = event(
        "pii-3",
        json!({"from_phone_number": 15550100123_u64, "email_address": null}),
    );
    let message = map_one(&config, &odd).unwrap();
    assert!(!message.to_string().contains("5550100123"), "{message}");
    assert!(message["properties"].get("from_phone_number").is_none(), "{message}");
    assert_eq!(message["properties"]["email_address"], Value::Null, "{message}");
    assert!(message["properties"].as_object().unwrap().contains_key("email_address"));
}

#[test]
fn app_group_id_routes_an_event_when_its_app_id_is_not_listed() {
    let config = config(&[
        (
            "ROUTES",
            r#"{"brand-a":{"write_key":"ka"},"brand-b":{"write_key":"kb"}}"#,
        ),
        ("APP_ROUTES", r#"{"app-ios":"brand-a","group-7":"brand-b"}"#),
    ]);
    let body = json!({"events": [
        event("r-1", json!({"app_id": "app-ios", "app_group_id": "group-7"})),
        event("r-2", json!({"app_id": "app-web", "app_group_id": "group-7"})),
        event("r-3", json!({"app_group_id": "group-7"})),
        event("r-4", json!({"app_id": "app-web", "app_group_id": "group-0"})),
    ]})
    .to_string();
    let raw = parse_body(body.as_bytes()).unwrap();
    let out = transform(&raw, &config.routing, config.routing.find("default").unwrap());
    let routes: Vec<&str> = out
        .messages
        .iter()
        .map(|m| config.routing.route(m.route).name.as_str())
        .collect();
    assert_eq!(routes, ["brand-a", "brand-b", "brand-b", "default"]);
}

/// An event whose Segment message is exactly `size` bytes.
fn event_of_message_size(config: &Config, size: usize) -> Value {
    let padded = |pad: usize| event("size-1", json!({"campaign_name": "x".repeat(pad)}));
    let base = map_one(config, &padded(0)).unwrap().to_string().len();
    padded(size - base)
}

#[test]
fn a_message_of_32000_bytes_is_sent_and_one_byte_more_is_dead_lettered() {
    let config = config(&[]);
    let at_limit = event_of_message_size(&config, 32_000);
    assert_eq!(map_one(&config, &at_limit).unwrap().to_string().len(), 32_000);
    let over = event_of_message_size(&config, 32_001);
    assert_eq!(map_one(&config, &over), Err("message_too_large".to_owned()));
}

#[test]
fn configuration_defaults_are_the_documented_ones() {
    let config = config(&[]);
    assert_eq!(config.max_body_bytes, 6_291_456);
    assert_eq!(config.queues.park_message_max_bytes, 262_144);
    assert_eq!(config.replay_max_age, Duration::from_secs(48 * 3600));
    assert_eq!(config.segment.request_timeout, Duration::from_millis(10_000));
    assert_eq!(config.segment.connect_timeout, Duration::from_millis(2_000));
    assert_eq!(config.segment.ingest_retry_budget, Duration::from_millis(8_000));
    assert!(!config.allow_unauthenticated);
    let route = config.routing.route(config.routing.find("default").unwrap());
    assert_eq!(route.endpoint, "https://api.segment.io");
    assert_eq!(route.mapping.pii, PiiMode::Keep);
    assert!(!route.mapping.include_anonymous);
    assert!(route.mapping.event_types.is_none() && route.mapping.integrations.is_none());
    let check = route.key_check.on().expect("WRITE_KEY_CHECK defaults to on");
    assert_eq!(check.settings_endpoint, "https://cdn.segment.com");
    assert_eq!(check.interval, Duration::from_secs(300));
    assert!(!check.follow_region);
    assert_eq!(currents_segment::keycheck::SETTINGS_TIMEOUT, Duration::from_secs(2));
}

#[tokio::test]
async fn ingest_stops_retrying_segment_at_the_retry_budget() {
    let harness = Harness::new(config(&[("INGEST_RETRY_BUDGET_MS", "600")]));
    harness.segment.always(Err(AttemptError::Status {
        status: 503,
        retry_after: Some(Duration::from_millis(100)),
    }));
    let mut ingest = harness.ingest();
    ingest.policy.max_attempts = 1_000;
    let (auth, value) = bearer();
    let body = json!({"events": [event("budget-1", json!({}))]}).to_string();
    let started = Instant::now();
    let response = ingest.handle(post("/currents", &[(auth, &value)], body)).await;
    assert_eq!(response.status(), 200);
    // 600 ms at one attempt per 100 ms: about 5 requests, never the 20 s default budget.
    let requests = harness.segment.requests();
    assert!((2..=8).contains(&requests), "{requests} requests");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(harness.retry.message_count(), 1, "parked once the budget ran out");
}

#[tokio::test]
async fn a_5xx_retry_after_is_honoured_like_a_429s() {
    let harness = Harness::new(config(&[]));
    // A Retry-After longer than the time left: honoured, there is no second attempt; ignored,
    // the quick policy's 1–5 ms backoff would try again at once.
    harness.segment.always(Err(AttemptError::Status {
        status: 503,
        retry_after: Some(Duration::from_secs(30)),
    }));
    let (auth, value) = bearer();
    let body = json!({"events": [event("ra-1", json!({}))]}).to_string();
    let (status, answer) = send(&harness, post("/currents", &[(auth, &value)], body)).await;
    assert_eq!((status, counts(&answer).1), (200, 1));
    assert_eq!(harness.segment.requests(), 1);
}

#[tokio::test]
async fn the_events_field_must_be_a_list() {
    let harness = Harness::new(config(&[]));
    let (auth, value) = bearer();
    for body in [r#"{"events":null}"#, r#"{"events":"x"}"#, r#"{"other":[]}"#] {
        let (status, answer) = send(&harness, post("/currents", &[(auth, &value)], body)).await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
    let (status, _) = send(
        &harness,
        post("/currents?route=unknown", &[(auth, &value)], r#"{"events":[]}"#),
    )
    .await;
    assert_eq!(status, 404);
}

/// Parked messages spanning two Segment batches (over 2,500 messages): the first batch goes
/// through, the second fails retryably. Replay may acknowledge the record only once RetryQueue
/// holds the undelivered rest; if RetryQueue refuses, the record stays.
#[tokio::test]
async fn a_mixed_envelope_parks_its_undelivered_rest_before_it_is_acknowledged() {
    let messages: Vec<Value> = (0..3_000)
        .map(|i| json!({"type": "track", "event": "E", "userId": "u", "messageId": format!("mix-{i}")}))
        .collect();
    let envelope = json!({"version": 1, "route": "default", "first_failed_at": "2025-11-24T15:00:00Z",
        "attempts": 1, "messages": messages})
    .to_string();
    for refuse in [false, true] {
        let harness = Harness::new(config(&[]));
        harness.segment.then(Ok(())).always(Err(AttemptError::Status {
            status: 503,
            retry_after: None,
        }));
        if refuse {
            harness.retry.refuse_next(1);
        }
        let mut metrics = currents_segment::metrics::Metrics::default();
        let response = harness
            .replay()
            .handle_recording(
                sqs_event(std::slice::from_ref(&envelope), 1),
                Instant::now() + Duration::from_secs(10),
                &mut metrics,
            )
            .await;
        let delivered = harness.segment.delivered_ids();
        assert!(!delivered.is_empty() && delivered.len() < 3_000);
        assert!(harness.dead.envelopes().is_empty());
        if refuse {
            assert_eq!(
                response.batch_item_failures.len(),
                1,
                "the record stays when RetryQueue refuses"
            );
            continue;
        }
        assert!(response.batch_item_failures.is_empty());
        let rest = harness.retry.envelopes();
        let parked: Vec<&str> = rest
            .iter()
            .flat_map(|e| e["messages"].as_array().unwrap())
            .map(|m| m["messageId"].as_str().unwrap())
            .collect();
        assert_eq!(
            parked.len() + delivered.len(),
            3_000,
            "every message in Segment or parked"
        );
        assert!(parked.iter().all(|id| !delivered.contains(&id.to_string())));
        // The metrics say the same: what Segment took, what was parked anew, and the calls.
        let emf = common::Emf::of(&metrics, "replay");
        let count = |name: &str| emf.total(name) as usize;
        let requests = harness.segment.requests();
        assert_eq!(
            [
                count("Replayed"),
                count("Parked"),
                count("SegmentRequests"),
                count("SegmentRetries")
            ],
            [delivered.len(), parked.len(), requests, requests - 2],
            "{emf:?}"
        );
        assert!(
            rest.iter().all(|e| e["first_failed_at"] == "2025-11-24T15:00:00Z"),
            "the window is kept"
        );
        // The rest counts the envelope's earlier attempt plus this invocation's failed ones.
        let failed_now = harness.segment.requests() as u64 - 1;
        assert!(
            rest.iter().all(|e| e["attempts"] == 1 + failed_now),
            "attempts add up: 1 + {failed_now}"
        );
    }
}
