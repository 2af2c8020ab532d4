//! Hostile and broken input: no panic, bounded work, a clear answer, and the good events of a
//! mixed batch still go through.

mod common;
mod flat_twin;

use std::cell::Cell;

use common::{Harness, bearer, config, counts, fixture, post, send};
use currents_segment::currents::parse_body;
use currents_segment::transform::{transform, transform_body};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Value, json};

fn good_event(id: &str) -> Value {
    let fixture: Value = serde_json::from_slice(&fixture("all-events.json")).unwrap();
    let mut event = fixture["events"][6].clone();
    event["id"] = json!(id);
    event
}

async fn post_events(events: Vec<Value>) -> (u16, Value) {
    let harness = Harness::new(config(&[]));
    let (auth, value) = bearer();
    let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
    send(&harness, post("/currents", &[(auth, &value)], body)).await
}

#[tokio::test]
async fn wrong_types_in_place_of_events_and_fields_are_dead_lettered_beside_good_events() {
    let mut wrong_time = good_event("t");
    wrong_time["time"] = json!({"seconds": 1});
    let mut wrong_props = good_event("p");
    wrong_props["properties"] = json!("text");
    let events = vec![
        good_event("ok-1"),
        json!(null),
        json!(7),
        json!("event"),
        json!([1]),
        wrong_time,
        wrong_props,
        good_event("ok-2"),
    ];
    let (status, body) = post_events(events).await;
    assert_eq!(status, 200);
    assert_eq!(counts(&body), (2, 0, 0, 6));
}

#[tokio::test]
async fn very_long_strings_are_dead_lettered_and_the_rest_delivered() {
    let mut long = good_event("long");
    long["properties"]["campaign_name"] = json!("x".repeat(2_000_000));
    let (status, body) = post_events(vec![long, good_event("ok")]).await;
    assert_eq!(status, 200);
    assert_eq!(counts(&body), (1, 0, 0, 1));
}

#[tokio::test]
async fn deep_nesting_never_overflows_the_stack_and_costs_only_its_own_event() {
    let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let with_deep = |id: &str, path: &str, depth: usize| {
        let mut text = serde_json::to_string(&good_event(id)).unwrap();
        let marker = format!(r#""{path}":{{"#);
        let at = text.find(&marker).unwrap() + marker.len();
        text.insert_str(at, &format!(r#""deep":{},"#, nested(depth)));
        text
    };
    // serde_json skips values it does not keep without recursing, so depth costs nothing
    // there: properties pass through as raw bytes (a huge one is dead-lettered as too large)
    // and unknown user fields are ignored. A deep value where a string belongs (`id`) makes
    // only that event invalid.
    let mut deep_id = serde_json::to_string(&good_event("x")).unwrap();
    deep_id = deep_id.replacen(r#""id":"x""#, &format!(r#""id":{}"#, nested(5_000)), 1);
    let events = [
        with_deep("deep-small", "properties", 120),
        with_deep("deep-huge", "properties", 1_000_000),
        with_deep("deep-user", "user", 5_000),
        deep_id,
        serde_json::to_string(&good_event("ok")).unwrap(),
    ];
    let harness = Harness::new(config(&[]));
    let (auth, value) = bearer();
    let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
    let (status, answer) = send(&harness, post("/currents", &[(auth, &value)], body)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(counts(&answer), (3, 0, 0, 2));
    // Read as text: the dead-letter queue keeps the deep raw event, beyond what Value parses.
    let dead = harness.dead.bodies.lock().unwrap().join("\n");
    assert!(dead.contains(r#""last_error":"message_too_large"#));
    assert!(dead.contains(r#""last_error":"malformed_event: field `id` must be a string"#));
}

#[tokio::test]
async fn times_far_in_the_future_are_kept_and_milliseconds_or_negative_are_not() {
    let mut future = good_event("future");
    future["time"] = json!(4_102_444_800_i64); // 2100-01-01
    let mut millis = good_event("ms");
    millis["time"] = json!(1_764_000_000_000_i64);
    let mut negative = good_event("neg");
    negative["time"] = json!(-5);
    let (status, body) = post_events(vec![future, millis, negative]).await;
    assert_eq!(status, 200);
    assert_eq!(counts(&body), (1, 0, 0, 2), "Braze's own samples carry future dates");
}

#[tokio::test]
async fn duplicate_keys_are_decided_not_guessed() {
    let harness = Harness::new(config(&[]));
    let (auth, value) = bearer();
    let event =
        r#"{"event_type":"users.messages.email.Send","id":"a","id":"b","time":1,"user":{"external_user_id":"u"}}"#;
    let props = r#"{"event_type":"users.messages.email.Send","id":"c","time":1,"user":{"external_user_id":"u"},"properties":{"k":1,"k":2}}"#;
    let (status, body) = send(
        &harness,
        post(
            "/currents",
            &[(auth, &value)],
            format!(r#"{{"events":[{event},{props}]}}"#),
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        counts(&body),
        (1, 0, 0, 1),
        "a repeated event field is invalid; a repeated property keeps its last value"
    );
    let sent = &harness.segment.bodies.lock().unwrap()[0]["batch"][0]["properties"];
    assert_eq!(sent["k"], 2);
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
        prop::sample::select(vec![
            "users.messages.email.Open",
            "id",
            "time",
            "user",
            "external_user_id",
            "properties"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "event_type",
                    "id",
                    "time",
                    "user",
                    "properties",
                    "external_user_id",
                    "user_id",
                    "email_address",
                    "url",
                    "timezone",
                    "x"
                ])
                .prop_map(str::to_owned),
                inner,
                0..7,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Any bytes at all, half of them inside a Currents envelope so the parser gets past the
/// first byte: parsing either refuses the body or sorts every event into one place.
#[test]
fn arbitrary_bytes_never_panic() {
    let config = config(&[]);
    let route = config.routing.find("default").unwrap();
    let [parsed, with_events] = [(); 2].map(|()| Cell::new(0usize));
    // Raw bytes, or a comma-separated list of JSON values and junk that parses now and then.
    let value =
        prop::sample::select(vec![
        &b"1"[..], b"null", b"\"a\"", b"[]", b"{}", b"{\"id\":\"x\",\"time\":1}", b"{\"time\":\"t\"}",
        b"{\"event_type\":\"users.messages.email.Open\",\"id\":\"e\",\"time\":1,\"user\":{\"external_user_id\":\"u\"}}",
    ]);
    let junk = prop::sample::select(vec![&b"{"[..], b"]", b":", b"\"\xff\"", b"\"\\ud800\"", b"tru", b""]);
    let element = prop_oneof![4 => value, 1 => junk];
    let soup = prop::collection::vec(element, 0..12).prop_map(|elements| elements.join(&b","[..]));
    let bytes = (
        prop_oneof![prop::collection::vec(any::<u8>(), 0..512), soup],
        any::<bool>(),
    );
    let mut runner = TestRunner::new(RunnerConfig::with_cases(2_000));
    runner
        .run(&bytes, |(tail, wrapped)| {
            let body = if wrapped {
                [&b"{\"events\":["[..], &tail, b"]}"].concat()
            } else {
                tail
            };
            if let Ok(events) = parse_body(&body) {
                let out = transform(&events, &config.routing, route);
                prop_assert_eq!(out.total(), events.len());
                parsed.set(parsed.get() + 1);
                with_events.set(with_events.get() + usize::from(!events.is_empty()));
            }
            let _ = transform_body(&body, &config.routing, route);
            Ok(())
        })
        .unwrap();
    // Coverage: the transform must actually run, on bodies that hold events.
    assert!(parsed.get() >= 20, "only {} of 2,000 bodies parsed", parsed.get());
    assert!(with_events.get() >= 10, "only {} bodies held events", with_events.get());
}

/// An event near the Currents shape: arbitrary JSON, or a real event with one field replaced by
/// arbitrary JSON (so `time`, `user` and friends are mostly sane and events do map).
fn near_currents_event() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(vec!["event_type", "id", "time", "user", "properties", "x"]);
    prop_oneof![
        1 => arbitrary_json(),
        3 => (0..fixture_len(), field, arbitrary_json()).prop_map(|(pick, field, value)| {
            let fixture: Value = serde_json::from_slice(&fixture("all-events.json")).unwrap();
            let mut event = fixture["events"][pick].clone();
            event[field] = value;
            event
        }),
    ]
}

/// Arbitrary JSON events, near the Currents shape: every event lands in exactly one list, the
/// one-pass path agrees with the per-event path, and every message produced is valid JSON with
/// an identity, within Segment's limits.
#[test]
fn arbitrary_events_are_always_accounted_for() {
    let config = config(&[("INCLUDE_ANONYMOUS", "true")]);
    let route = config.routing.find("default").unwrap();
    let [total, mapped, invalid] = [(); 3].map(|()| Cell::new(0usize));
    let mut runner = TestRunner::new(RunnerConfig::with_cases(400));
    runner
        .run(&prop::collection::vec(near_currents_event(), 0..20), |events| {
            let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
            let raw = parse_body(&body).unwrap();
            let out = transform(&raw, &config.routing, route);
            prop_assert_eq!(out.total(), events.len());
            let fast = transform_body(&body, &config.routing, route).unwrap();
            let summary = |t: &currents_segment::transform::Transformed<'_>| {
                (
                    t.messages.iter().map(|m| (m.route, m.json.clone())).collect::<Vec<_>>(),
                    t.skipped.iter().map(|s| (s.index, s.reason)).collect::<Vec<_>>(),
                    t.invalid.iter().map(|i| (i.index, i.error.clone())).collect::<Vec<_>>(),
                )
            };
            prop_assert_eq!(summary(&fast), summary(&out));
            for message in &out.messages {
                let value: Value = serde_json::from_str(&message.json).unwrap();
                prop_assert!(value["userId"].is_string() || value["anonymousId"].is_string());
                prop_assert!(message.json.len() <= 32_000);
            }
            total.set(total.get() + events.len());
            mapped.set(mapped.get() + out.messages.len());
            invalid.set(invalid.get() + out.invalid.len());
            Ok(())
        })
        .unwrap();
    // Coverage: the message checks above must run on many events (about a fifth map), and
    // invalid ones must occur.
    let (total, mapped, invalid) = (total.get(), mapped.get(), invalid.get());
    assert!(mapped * 10 >= total, "only {mapped} of {total} events mapped");
    assert!(invalid * 10 >= total, "only {invalid} of {total} events invalid");
}

/// How many events the fixture holds.
fn fixture_len() -> usize {
    let fixture: Value = serde_json::from_slice(&fixture("all-events.json")).unwrap();
    fixture["events"].as_array().unwrap().len()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, .. ProptestConfig::default() })]

    /// Batches of real event shapes, in the HTTP and the flat (storage) shape, mostly valid, so the one-pass path is taken and compared.
    #[test]
    fn the_one_pass_path_matches_the_per_event_path(picks in prop::collection::vec((0usize..fixture_len(), 0u8..10), 0..40)) {
        let fixture: Value = serde_json::from_slice(&fixture("all-events.json")).unwrap();
        let events: Vec<Value> = picks
            .iter()
            .enumerate()
            .map(|(i, (pick, change))| {
                let mut event = fixture["events"][*pick].clone();
                event["id"] = json!(format!("e{i}"));
                match change {
                    0 => { event["user"].as_object_mut().unwrap().remove("external_user_id"); }
                    1 => event["event_type"] = json!("users.messages.unknown.Send"),
                    2 => event["properties"]["url"] = json!("https://example.com/x"),
                    3 if i % 7 == 0 => { event.as_object_mut().unwrap().remove("time"); }
                    // The storage shape, as is or without its identity.
                    8 | 9 => {
                        event = serde_json::from_str(&flat_twin::flat_event(&event.to_string())).unwrap();
                        if *change == 9 && i % 3 == 0 {
                            event.as_object_mut().unwrap().remove("external_user_id");
                        }
                    }
                    _ => {}
                }
                event
            })
            .collect();
        let config = config(&[("APP_ROUTES", r#"{"app-ios":"default"}"#)]);
        let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
        let fast = transform_body(&body, &config.routing, config.routing.find("default").unwrap()).unwrap();
        let raw = parse_body(&body).unwrap();
        let slow = transform(&raw, &config.routing, config.routing.find("default").unwrap());
        let jsons = |t: &currents_segment::transform::Transformed<'_>| t.messages.iter().map(|m| m.json.clone()).collect::<Vec<_>>();
        prop_assert_eq!(jsons(&fast), jsons(&slow));
        prop_assert_eq!(
            fast.skipped.iter().map(|s| (s.index, s.reason)).collect::<Vec<_>>(),
            slow.skipped.iter().map(|s| (s.index, s.reason)).collect::<Vec<_>>()
        );
        prop_assert_eq!(fast.invalid.len(), slow.invalid.len());
    }
}
