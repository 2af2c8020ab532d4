//! The write-key check end to end through ingest and replay, with fakes behind every port: a key
//! Segment's settings CDN does not know is held (parked, never sent), alarmed, and delivered once
//! it is fixed; a CDN that fails never stops delivery; an EU source is never sent to the US host.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::settings::ScriptedSettings;
use common::{Emf, Harness, WRITE_KEY, config, counts, fixture, sqs_event};
use currents_segment::ingest::IngestRequest;
use currents_segment::metrics::Metrics;
use currents_segment::ports::SettingsAnswer;
use serde_json::Value;
use tokio::time::Instant;

/// Events of the sample batch that map to a message (the rest are skipped or invalid), as a
/// harness with a healthy key on the same configuration delivers them.
async fn sendable(harness: &Harness) -> u64 {
    let probe = Harness::new((*harness.config).clone());
    let metrics = probe.process(&fixture("all-events.json")).await;
    Emf::of(&metrics, "ingest").total("Delivered") as u64
}

/// POSTs `body` to ingest on `route` and returns the answer's JSON and the metrics.
async fn post(harness: &Harness, route: Option<&str>, body: &[u8]) -> (Value, Emf) {
    let authorization = format!("Bearer {}", common::TOKEN);
    let request = IngestRequest {
        authorization: vec![authorization.as_bytes()],
        content_encoding: None,
        method_is_post: true,
        route,
        body,
        deadline: Instant::now() + Duration::from_secs(10),
    };
    let mut metrics = Metrics::default();
    let counts = harness.ingest().process(request, &mut metrics).await.expect("accepted");
    (serde_json::to_value(counts).unwrap(), Emf::of(&metrics, "ingest"))
}

async fn replay(harness: &Harness, bodies: &[String], receive_count: u32) -> (Vec<String>, Emf) {
    let mut metrics = Metrics::default();
    let response = harness
        .replay()
        .handle_recording(
            sqs_event(bodies, receive_count),
            Instant::now() + Duration::from_secs(10),
            &mut metrics,
        )
        .await;
    let failures = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    (failures, Emf::of(&metrics, "replay"))
}

fn take_parked(harness: &Harness) -> Vec<String> {
    std::mem::take(&mut *harness.retry.bodies.lock().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_held_parked_and_alarmed_never_sent_and_never_named() {
    let harness = Harness::new(config(&[]));
    let expected = sendable(&harness).await;
    assert!(expected > 40, "the sample batch reaches the delivery step: {expected}");
    harness.settings.revoke(WRITE_KEY);

    let (answer, emf) = post(&harness, None, &fixture("all-events.json")).await;
    let (delivered, parked, _, _) = counts(&answer);
    assert_eq!((delivered, parked), (0, expected), "{answer}");
    assert_eq!(
        harness.segment.requests(),
        0,
        "nothing is sent to a key Segment would drop"
    );
    assert_eq!(harness.retry.message_count() as u64, expected);
    for envelope in harness.retry.envelopes() {
        let last_error = envelope["last_error"].as_str().unwrap();
        assert!(
            last_error.starts_with("write_key_invalid") && last_error.contains("`default`"),
            "{last_error}"
        );
        assert!(
            !envelope.to_string().contains(WRITE_KEY),
            "the key never reaches an envelope"
        );
    }
    assert_eq!(emf.total("WriteKeyInvalid"), expected as f64, "{emf:?}");
    assert_eq!(
        emf.by_route("WriteKeyInvalid", "default"),
        Some(expected as f64),
        "{emf:?}"
    );
    assert_eq!(emf.total("Parked"), expected as f64);
    assert!(!format!("{emf:?}").contains(WRITE_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_holds_while_the_key_is_invalid_and_delivers_once_it_is_rotated() {
    let harness = Harness::new(config(&[]));
    harness.settings.revoke(WRITE_KEY);
    post(&harness, None, &fixture("all-events.json")).await;
    let parked = take_parked(&harness);
    assert!(!parked.is_empty());

    // Still invalid: no Segment request, every record kept with a backoff.
    let (failures, emf) = replay(&harness, &parked, 2).await;
    assert_eq!(failures.len(), parked.len());
    assert_eq!(harness.segment.requests(), 0);
    assert_eq!(harness.retry.postponed.lock().unwrap().len(), parked.len());
    assert!(emf.total("WriteKeyInvalid") > 0.0, "{emf:?}");
    assert_eq!(
        emf.by_route("WriteKeyInvalid", "default"),
        Some(emf.total("WriteKeyInvalid")),
        "{emf:?}"
    );
    assert_eq!(harness.dead.message_count(), 0, "held, not dead-lettered");

    // The operator rotates the key (a new runtime secret or a redeploy): a new key is checked at
    // once, whatever the old key's verdict age, and replay delivers.
    let rotated = Harness {
        config: Arc::new(config(&[("SEGMENT_WRITE_KEY", "wk_rotated")])),
        ..harness.clone()
    };
    let (failures, emf) = replay(&rotated, &parked, 3).await;
    assert!(failures.is_empty(), "{failures:?}");
    assert!(emf.total("WriteKeyInvalid") <= 0.0, "nothing held: {emf:?}");
    assert!(emf.total("Replayed") > 0.0 && harness.segment.requests() > 0, "{emf:?}");
    assert_eq!(harness.retry.bodies.lock().unwrap().len(), 0, "nothing parked anew");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_envelope_expires_to_the_dead_letter_queue_naming_the_key_problem() {
    let harness = Harness::new(config(&[]));
    // Parked while Segment was down, so its own last_error says 503.
    harness
        .segment
        .always(Err(currents_segment::ports::AttemptError::Status {
            status: 503,
            retry_after: None,
        }));
    post(&harness, None, &fixture("all-events.json")).await;
    let parked = take_parked(&harness);
    harness.settings.revoke(WRITE_KEY);
    harness.clock.advance(Duration::from_secs(48 * 3600));
    let requests = harness.segment.requests();

    // Replay is another function, with verdicts of its own.
    let replay_instance = Harness {
        key_health: common::settings::key_health(&harness.settings),
        ..harness.clone()
    };
    let (failures, emf) = replay(&replay_instance, &parked, 50).await;
    assert!(failures.is_empty());
    assert_eq!(
        harness.segment.requests(),
        requests,
        "an expired envelope is never sent"
    );
    let dead = harness.dead.envelopes();
    assert_eq!(dead.len(), parked.len());
    for envelope in &dead {
        assert_eq!(envelope["reason"], "expired");
        let last_error = envelope["last_error"].as_str().unwrap();
        assert!(last_error.starts_with("write_key_invalid"), "{last_error}");
    }
    assert!(emf.total("Expired") > 0.0);

    // The key is fixed and the operator runs `dlq redrive --reset-window`: each dead letter
    // goes back to RetryQueue with a fresh window (what `dlq::redrive` writes), and replay
    // delivers every message it held.
    let fixed = Harness {
        config: Arc::new(config(&[("SEGMENT_WRITE_KEY", "wk_fixed")])),
        ..replay_instance.clone()
    };
    let now = fixed.clock.now_utc();
    let redriven: Vec<String> = harness
        .dead
        .bodies
        .lock()
        .unwrap()
        .iter()
        .map(|body| {
            let mut envelope = currents_segment::park::decode(body).unwrap();
            envelope.first_failed_at = now;
            serde_json::to_string(&envelope).unwrap()
        })
        .collect();
    let held_messages: usize = dead.iter().map(|e| e["messages"].as_array().map_or(0, Vec::len)).sum();
    harness.segment.always(Ok(()));
    let before = harness.segment.delivered_ids().len();
    let (failures, _) = replay(&fixed, &redriven, 1).await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(
        harness.segment.delivered_ids().len() - before,
        held_messages,
        "every held message delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_cdn_that_fails_never_stops_delivery() {
    for answer in [
        SettingsAnswer::Failed("settings request timed out".into()),
        SettingsAnswer::Failed("settings answered HTTP 503".into()),
        SettingsAnswer::Found(b"<html>".to_vec()),
        SettingsAnswer::NotFound("Not Found".into()),
    ] {
        let harness = Harness::new(config(&[]));
        let expected = sendable(&harness).await;
        harness.settings.answer(WRITE_KEY, answer.clone());
        let (answer_json, emf) = post(&harness, None, &fixture("all-events.json")).await;
        assert_eq!(counts(&answer_json).0, expected, "{answer:?}: {answer_json}");
        assert_eq!(emf.total("WriteKeyCheckFailed"), 1.0, "{answer:?}: {emf:?}");
        assert_eq!(emf.by_route("WriteKeyCheckFailed", "default"), Some(1.0));
        assert_eq!(emf.total("WriteKeyInvalid"), -1.0, "nothing held");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eu_source_is_never_sent_to_the_us_host_and_the_reverse() {
    for (region, api_host) in [("us", "events.eu1.segmentapis.com/v1"), ("eu", "api.segment.io/v1")] {
        let harness = Harness::new(config(&[("SEGMENT_REGION", region)]));
        harness.settings.ingests_at(WRITE_KEY, api_host);
        let (answer, emf) = post(&harness, None, &fixture("all-events.json")).await;
        assert_eq!(counts(&answer).0, 0, "{region}: {answer}");
        assert_eq!(harness.segment.requests(), 0);
        let last_error = harness.retry.envelopes()[0]["last_error"].as_str().unwrap().to_owned();
        assert!(last_error.starts_with("region_mismatch"), "{last_error}");
        assert!(last_error.contains("api.segment.io") && last_error.contains("events.eu1.segmentapis.com"));
        assert!(emf.total("WriteKeyInvalid") > 0.0);
    }
    // A matching region, and `auto`, deliver.
    let eu = Harness::new(config(&[("SEGMENT_REGION", "eu")]));
    eu.settings.ingests_at(WRITE_KEY, "events.eu1.segmentapis.com/v1");
    assert!(counts(&post(&eu, None, &fixture("all-events.json")).await.0).0 > 0);
    let auto = Harness::new(config(&[("SEGMENT_REGION", "auto")]));
    auto.settings.ingests_at(WRITE_KEY, "events.eu1.segmentapis.com/v1");
    assert!(counts(&post(&auto, None, &fixture("all-events.json")).await.0).0 > 0);
    assert_eq!(
        auto.segment.endpoints(),
        ["https://events.eu1.segmentapis.com"],
        "auto follows the settings"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_routes_bad_key_holds_only_that_route() {
    let routes = r#"{"good":{"write_key":"wk_good"},"bad":{"write_key":"wk_bad"}}"#;
    let harness = Harness::new(config(&[("ROUTES", routes)]));
    harness.settings.revoke("wk_bad");
    let body = fixture("all-events.json");
    let (good, _) = post(&harness, Some("good"), &body).await;
    let (bad, emf) = post(&harness, Some("bad"), &body).await;
    assert_eq!(counts(&good).1, 0);
    assert_eq!(counts(&bad).0, 0);
    assert_eq!(
        counts(&bad).1,
        counts(&good).0,
        "what one route delivers, the other holds"
    );
    assert_eq!(emf.by_route("WriteKeyInvalid", "bad"), Some(counts(&good).0 as f64));
    assert_eq!(emf.by_route("WriteKeyInvalid", "good"), None);
}

#[tokio::test(start_paused = true)]
async fn a_warm_request_with_a_fresh_verdict_asks_nothing_and_a_stale_one_asks_once() {
    let harness = Harness::new(config(&[("WRITE_KEY_CHECK_INTERVAL_SECONDS", "60")]));
    let body = fixture("all-events.json");
    post(&harness, None, &body).await;
    assert_eq!(harness.settings.requests(), 1, "the first request checks");
    tokio::time::advance(Duration::from_secs(59)).await;
    post(&harness, None, &body).await;
    assert_eq!(harness.settings.requests(), 1, "a fresh verdict makes no request");
    // The key is revoked; within the interval the old verdict stands, after it the new one holds.
    harness.settings.revoke(WRITE_KEY);
    tokio::time::advance(Duration::from_secs(1)).await;
    let (answer, _) = post(&harness, None, &body).await;
    assert_eq!(harness.settings.requests(), 2);
    assert_eq!(
        counts(&answer).0,
        0,
        "never a verdict older than the interval: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_on_a_cold_instance_ask_once_per_key() {
    let harness = Arc::new(Harness::new(config(&[])));
    let body = fixture("all-events.json");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (harness, body) = (harness.clone(), body.clone());
            tokio::spawn(async move { post(&harness, None, &body).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(harness.settings.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_endpoint_is_not_checked_unless_a_settings_endpoint_is_set() {
    let custom = Harness::new(config(&[("SEGMENT_ENDPOINT", "https://hosted.rudderlabs.example")]));
    custom.settings.revoke(WRITE_KEY);
    post(&custom, None, &fixture("all-events.json")).await;
    assert_eq!((custom.settings.requests(), custom.retry.message_count()), (0, 0));
    let off = Harness::new(config(&[("WRITE_KEY_CHECK", "off")]));
    off.settings.revoke(WRITE_KEY);
    post(&off, None, &fixture("all-events.json")).await;
    assert_eq!((off.settings.requests(), off.retry.message_count()), (0, 0));
    let explicit = Harness::new(config(&[
        ("SEGMENT_ENDPOINT", "https://hosted.rudderlabs.example"),
        ("SEGMENT_SETTINGS_ENDPOINT", "http://127.0.0.1:9"),
    ]));
    explicit.settings.revoke(WRITE_KEY);
    let (answer, _) = post(&explicit, None, &fixture("all-events.json")).await;
    assert_eq!((explicit.settings.requests(), counts(&answer).0), (1, 0));
}

/// `ScriptedSettings` is shared, so a test can hand one harness's stand-ins to another.
#[test]
fn the_scripted_settings_count_and_answer_per_key() {
    let settings = ScriptedSettings::new();
    settings.revoke("a");
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let secret = currents_segment::secret::Secret::new("a");
    let answer = rt.block_on(currents_segment::ports::FetchSettings::fetch_settings(
        &*settings,
        "x",
        &secret,
        Duration::ZERO,
    ));
    assert!(matches!(answer, SettingsAnswer::NotFound(_)));
    assert_eq!(settings.requests(), 1);
}
