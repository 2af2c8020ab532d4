//! Replay with fakes behind every port and a clock the tests move.

mod common;

use std::time::Duration;

use common::{Emf, Harness, bearer, config, counts, fixture, post, send, sqs_event};
use currents_segment::ports::AttemptError;
use tokio::time::Instant;

/// How many events the sample batch (`all-events.json`) holds.
fn fixture_len() -> usize {
    let fixture: serde_json::Value = serde_json::from_slice(&fixture("all-events.json")).unwrap();
    fixture["events"].as_array().unwrap().len()
}

fn failures(response: &aws_lambda_events::sqs::SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

/// Ingest a batch with Segment down so its envelopes land on the fake RetryQueue.
async fn park_a_batch(harness: &Harness) -> Vec<String> {
    park_a_batch_after(harness, 503, None).await
}

/// [`park_a_batch`], Segment answering `status` with `retry_after`.
async fn park_a_batch_after(harness: &Harness, status: u16, retry_after: Option<Duration>) -> Vec<String> {
    harness
        .segment
        .always(Err(AttemptError::Status { status, retry_after }));
    let (auth, value) = bearer();
    let (status, body) = send(
        harness,
        post("/currents", &[(auth, &value)], fixture("all-events.json")),
    )
    .await;
    assert_eq!((status, counts(&body).1), (200, fixture_len() as u64));
    std::mem::take(&mut *harness.retry.bodies.lock().unwrap())
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// Replays `bodies` (each received `receive_count` times) and returns the answer with the
/// metrics the invocation recorded.
async fn replay_recording(
    harness: &Harness,
    bodies: &[String],
    receive_count: u32,
) -> (aws_lambda_events::sqs::SqsBatchResponse, Emf) {
    replay_event_recording(harness, sqs_event(bodies, receive_count)).await
}

/// [`replay_recording`] for an SQS event built by the test.
async fn replay_event_recording(
    harness: &Harness,
    event: aws_lambda_events::sqs::SqsEvent,
) -> (aws_lambda_events::sqs::SqsBatchResponse, Emf) {
    let mut metrics = currents_segment::metrics::Metrics::default();
    let response = harness.replay().handle_recording(event, deadline(), &mut metrics).await;
    (response, Emf::of(&metrics, "replay"))
}

#[tokio::test]
async fn segment_back_up_delivers_every_parked_event_once_with_a_fresh_sent_at() {
    let harness = Harness::new(config(&[]));
    let parked = park_a_batch(&harness).await;
    let ingest_requests = harness.segment.requests();
    harness.segment.always(Ok(()));
    harness.clock.advance(Duration::from_secs(3600));
    let response = harness.replay().handle(sqs_event(&parked, 2), deadline()).await;
    assert!(failures(&response).is_empty());
    let mut ids = harness.segment.delivered_ids();
    assert_eq!(ids.len(), fixture_len());
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), fixture_len(), "each messageId exactly once");
    let bodies = harness.segment.bodies.lock().unwrap();
    let replayed = &bodies[ingest_requests];
    assert_eq!(
        replayed["sentAt"], "2025-11-24T17:00:00.000Z",
        "sentAt is the replay time, not the park time"
    );
    assert!(harness.dead.bodies.lock().unwrap().is_empty());
}

#[tokio::test]
async fn still_down_reports_the_record_and_backs_off_its_visibility() {
    let harness = Harness::new(config(&[]));
    let parked = park_a_batch(&harness).await;
    let response = harness.replay().handle(sqs_event(&parked, 3), deadline()).await;
    assert_eq!(failures(&response), ["msg-0"]);
    let postponed = harness.retry.postponed.lock().unwrap().clone();
    assert_eq!(
        postponed,
        [("receipt-0".to_owned(), Duration::from_secs(240))],
        "60 s doubled per receive"
    );
    assert!(harness.dead.bodies.lock().unwrap().is_empty());
}

/// Issue 21, case 8's class at ingest: Segment answered 429 with `Retry-After: 120` on the
/// first attempt, and the batch was parked. RetryQueue has no delay, so replay would have sent
/// it again within seconds. The envelope keeps the `Retry-After`, and replay waits it out from
/// the record's `SentTimestamp`: hidden, nothing sent, then delivered.
#[tokio::test]
async fn a_retry_after_given_to_ingest_is_waited_out_by_replay() {
    let harness = Harness::new(config(&[]));
    let parked = park_a_batch_after(&harness, 429, Some(Duration::from_secs(120))).await;
    for envelope in &parked {
        let envelope: serde_json::Value = serde_json::from_str(envelope).unwrap();
        assert_eq!(envelope["retry_after_s"], 120, "{envelope}");
    }
    let sent_at = harness.clock.now_utc();
    let received = |after: u64| {
        harness.clock.advance(Duration::from_secs(after));
        let mut event = sqs_event(&parked, 1);
        let millis = (sent_at.unix_timestamp_nanos() / 1_000_000).to_string();
        for record in &mut event.records {
            record.attributes.insert("SentTimestamp".into(), millis.clone());
        }
        event
    };
    harness.segment.always(Ok(()));
    let requests = harness.segment.requests();
    let (response, emf) = replay_event_recording(&harness, received(5)).await;
    assert_eq!(failures(&response).len(), parked.len(), "every record kept");
    assert_eq!(
        harness.segment.requests(),
        requests,
        "nothing sent before the Retry-After"
    );
    assert_eq!(emf.total("Replayed"), 0.0, "{emf:?}");
    let postponed = std::mem::take(&mut *harness.retry.postponed.lock().unwrap());
    assert!(
        postponed.iter().all(|(_, d)| *d == Duration::from_secs(115)),
        "{postponed:?}"
    );
    let response = harness.replay().handle(received(116), deadline()).await;
    assert!(failures(&response).is_empty());
    assert_eq!(harness.segment.delivered_ids().len(), fixture_len());
    assert!(harness.dead.bodies.lock().unwrap().is_empty());
}

/// Issue 21, case 8: Segment asked for 120 s and replay made the message visible after 60.
/// Visibility is the larger of the backoff and `Retry-After`, and never past the window.
#[tokio::test]
async fn a_retry_after_longer_than_the_backoff_sets_the_visibility() {
    let harness = Harness::new(config(&[]));
    let parked = park_a_batch(&harness).await;
    let limited = |seconds| {
        Err(AttemptError::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(seconds)),
        })
    };
    harness.segment.always(limited(120));
    let response = harness.replay().handle(sqs_event(&parked, 1), deadline()).await;
    assert_eq!(failures(&response), ["msg-0"]);
    // A Retry-After shorter than the backoff leaves the backoff (240 s at the third receive).
    harness.segment.always(limited(30));
    harness.replay().handle(sqs_event(&parked, 3), deadline()).await;
    // Ten minutes before expiry, a one-hour Retry-After is cut to the window's end.
    harness.segment.always(limited(3600));
    harness.clock.advance(Duration::from_secs(48 * 3600 - 600));
    harness.replay().handle(sqs_event(&parked, 1), deadline()).await;
    let postponed: Vec<Duration> = harness
        .retry
        .postponed
        .lock()
        .unwrap()
        .iter()
        .map(|(_, d)| *d)
        .collect();
    assert_eq!(
        postponed,
        [
            Duration::from_secs(120),
            Duration::from_secs(240),
            Duration::from_secs(601)
        ]
    );
    assert!(harness.dead.bodies.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_expired_record_is_dead_lettered_and_never_sent() {
    let harness = Harness::new(config(&[]));
    let parked = park_a_batch(&harness).await;
    let requests_before = harness.segment.requests();
    harness.segment.always(Ok(()));
    harness.clock.advance(Duration::from_secs(48 * 3600));
    let response = harness.replay().handle(sqs_event(&parked, 40), deadline()).await;
    assert!(failures(&response).is_empty());
    assert_eq!(
        harness.segment.requests(),
        requests_before,
        "Segment never sees an expired delivery"
    );
    let dead = harness.dead.envelopes();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["reason"], "expired");
    assert_eq!(dead[0]["messages"].as_array().unwrap().len(), fixture_len());
    assert_eq!(dead[0]["first_failed_at"], "2025-11-24T16:00:00Z");
}

/// An expired envelope counts everything it holds, messages and raw events alike (a redriven
/// dead letter can hold both), in the metrics.
#[tokio::test]
async fn an_expired_envelope_counts_its_messages_and_its_events() {
    let harness = Harness::new(config(&[]));
    let envelope = serde_json::json!({"version": 1, "route": "default",
        "first_failed_at": "2025-11-20T00:00:00Z", "attempts": 3,
        "messages": [{"messageId": "m-1"}, {"messageId": "m-2"}], "events": [{"id": "e-1"}]})
    .to_string();
    let (response, emf) = replay_recording(&harness, &[envelope], 2).await;
    assert!(failures(&response).is_empty());
    assert_eq!(harness.dead.envelopes()[0]["reason"], "expired");
    assert_eq!(
        harness.dead.envelopes()[0]["attempts"],
        4,
        "3 before, and one receive since"
    );
    assert_eq!((emf.total("DeadLettered"), emf.total("Expired")), (3.0, 3.0), "{emf:?}");
}

/// Envelopes for a route no longer configured, with or without a dead-letter reason, count all
/// they hold, messages and raw events, under their reason.
#[tokio::test]
async fn envelopes_of_a_removed_route_count_their_messages_and_events() {
    let harness = Harness::new(config(&[]));
    let envelope = |reason: Option<&str>| {
        let mut envelope = serde_json::json!({"version": 1, "route": "gone",
            "first_failed_at": "2025-11-24T15:00:00Z",
            "messages": [{"messageId": "m-1"}, {"messageId": "m-2"}], "events": [{"id": "e-1"}]});
        if let Some(reason) = reason {
            envelope["reason"] = reason.into();
        }
        envelope.to_string()
    };
    let records = [envelope(None), envelope(Some("invalid_event"))];
    let (response, emf) = replay_recording(&harness, &records, 1).await;
    assert!(failures(&response).is_empty());
    assert_eq!(
        (emf.dead_lettered("unknown_route"), emf.dead_lettered("invalid_event")),
        (Some(3.0), Some(3.0)),
        "{emf:?}"
    );
}

/// An `invalid_event` envelope is re-mapped under today's configuration: events still invalid
/// are dead-lettered as `invalid_event` again, and events that now map go to the route they now
/// belong to, which a parked rest carries.
#[tokio::test]
async fn a_redriven_invalid_event_envelope_is_remapped_onto_todays_routes() {
    let fixture: serde_json::Value = serde_json::from_slice(&fixture("all-events.json")).unwrap();
    let valid = &fixture["events"][0];
    assert_eq!(valid["properties"]["app_id"], "app-ios");
    let mut anonymous = valid.clone();
    anonymous["id"] = "anonymous".into();
    anonymous["user"].as_object_mut().unwrap().remove("external_user_id");
    // One to deliver (Segment is down, so it is parked anew) and one still invalid, then also
    // one skipped: either way the record made progress, so it is settled, not backed off whole.
    let bad = serde_json::json!({"id": "still-bad"});
    for events in [vec![valid, &bad], vec![valid, &bad, &anonymous]] {
        let harness = Harness::new(config(&[
            ("ROUTES", r#"{"brand-a":{"write_key":"ka"}}"#),
            ("APP_ROUTES", r#"{"app-ios":"brand-a"}"#),
        ]));
        harness.segment.always(Err(AttemptError::Status {
            status: 503,
            retry_after: None,
        }));
        let envelope = serde_json::json!({"version": 1, "route": "default",
            "first_failed_at": "2025-11-24T15:00:00Z", "reason": "invalid_event", "events": events})
        .to_string();
        let (_, emf) = replay_recording(&harness, &[envelope], 1).await;

        assert_eq!(emf.reasons(), ["invalid_event"], "{emf:?}");
        let parked = harness.retry.envelopes();
        assert_eq!(parked.len(), 1, "{parked:?}");
        assert_eq!(parked[0]["route"], "brand-a");
    }
}

#[tokio::test]
async fn one_second_before_expiry_it_is_still_replayed() {
    let harness = Harness::new(config(&[("REPLAY_MAX_AGE_HOURS", "2")]));
    let parked = park_a_batch(&harness).await;
    harness.segment.always(Ok(()));
    harness.clock.advance(Duration::from_secs(2 * 3600 - 1));
    let response = harness.replay().handle(sqs_event(&parked, 5), deadline()).await;
    assert!(failures(&response).is_empty());
    assert_eq!(harness.segment.delivered_ids().len(), fixture_len());
}

#[tokio::test]
async fn undecodable_bodies_are_dead_lettered_with_the_original_body() {
    let harness = Harness::new(config(&[]));
    let bodies = vec![
        "not json".to_owned(),
        r#"{"version":9,"route":"default","first_failed_at":"2026-01-01T00:00:00Z"}"#.to_owned(),
    ];
    let response = harness.replay().handle(sqs_event(&bodies, 1), deadline()).await;
    assert!(failures(&response).is_empty());
    let dead = harness.dead.envelopes();
    assert_eq!(dead.len(), 2);
    assert!(dead.iter().all(|e| e["reason"] == "undecodable"));
    assert_eq!(dead[0]["body"], "not json");
    assert!(dead[1]["last_error"].as_str().unwrap().contains("version 9"));
}

#[tokio::test]
async fn a_removed_route_is_dead_lettered_not_lost() {
    let harness = Harness::new(config(&[("ROUTES", r#"{"brand-a":{"write_key":"ka"}}"#)]));
    let (auth, value) = bearer();
    harness.segment.always(Err(AttemptError::Timeout));
    let (status, _) = send(
        &harness,
        post("/currents/brand-a", &[(auth, &value)], fixture("all-events.json")),
    )
    .await;
    assert_eq!(status, 200);
    let parked = std::mem::take(&mut *harness.retry.bodies.lock().unwrap());
    // Redeploy without brand-a, then replay.
    let after = Harness::new(config(&[]));
    let response = after.replay().handle(sqs_event(&parked, 2), deadline()).await;
    assert!(failures(&response).is_empty());
    let dead = after.dead.envelopes();
    assert_eq!(
        (dead[0]["reason"].as_str(), dead[0]["route"].as_str()),
        (Some("unknown_route"), Some("brand-a"))
    );
    assert_eq!(after.segment.requests(), 0);
    // The operator reads why: the envelope's last error names the missing route, not Segment's.
    assert!(dead.iter().all(|e| e["last_error"] == "route is no longer configured"));
}

#[tokio::test]
async fn a_permanent_refusal_at_replay_is_dead_lettered() {
    let harness = Harness::new(config(&[]));
    let parked = park_a_batch(&harness).await;
    harness.segment.always(Err(AttemptError::Status {
        status: 413,
        retry_after: None,
    }));
    let (response, emf) = replay_recording(&harness, &parked, 2).await;
    assert!(failures(&response).is_empty());
    let dead = harness.dead.envelopes();
    assert_eq!(dead[0]["reason"], "permanent_failure");
    assert_eq!(dead[0]["messages"].as_array().unwrap().len(), fixture_len());
    assert_eq!(emf.total("DeadLettered"), fixture_len() as f64, "{emf:?}");
    assert_eq!(emf.reasons(), ["permanent_failure"], "{emf:?}");
}

#[tokio::test]
async fn a_failed_dead_letter_send_keeps_the_record_on_the_queue() {
    let harness = Harness::new(config(&[]));
    harness.dead.refuse_next(1);
    let response = harness
        .replay()
        .handle(sqs_event(&["garbage".to_owned()], 1), deadline())
        .await;
    assert_eq!(failures(&response), ["msg-0"]);
}

#[tokio::test]
async fn records_are_judged_one_by_one() {
    let harness = Harness::new(config(&[]));
    let mut parked = park_a_batch(&harness).await;
    harness.segment.always(Ok(()));
    parked.push("garbage".to_owned());
    let response = harness.replay().handle(sqs_event(&parked, 1), deadline()).await;
    assert!(failures(&response).is_empty());
    assert_eq!(harness.segment.delivered_ids().len(), fixture_len());
    assert_eq!(harness.dead.envelopes().len(), 1);
}
