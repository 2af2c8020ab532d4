//! Property tests that start from valid events and mutate a few fields, so the generated inputs
//! reach the mapping, the one-pass parser and the handler (issue 15). Each test counts what its
//! cases exercised and fails if the interesting branches stopped running.

mod common;

use std::cell::Cell;

use common::{Harness, bearer, config, fixture, post, send};
use currents_segment::currents::parse_body;
use currents_segment::transform::{Transformed, transform, transform_body};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Value, json};

/// The 80 event types, each as Braze documents it, from our own fixture.
fn seeds() -> Vec<Value> {
    let value: Value = serde_json::from_slice(&fixture("braze/http-events.json")).unwrap();
    value["events"].as_array().unwrap().clone()
}

/// How one event is changed. Most leave it mappable; a few hit each validation rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mutation {
    None,
    TimeNear(i64),
    TimeMillis,
    NoExternalUserId,
    NoIdentity,
    OddProperty(u8),
    LongProperty(usize),
    UnknownType,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => Just(Mutation::None),
        2 => (-86_400i64..86_400).prop_map(Mutation::TimeNear),
        1 => Just(Mutation::TimeMillis),
        1 => Just(Mutation::NoExternalUserId),
        1 => Just(Mutation::NoIdentity),
        2 => (0u8..6).prop_map(Mutation::OddProperty),
        1 => (31_000usize..33_000).prop_map(Mutation::LongProperty),
        1 => Just(Mutation::UnknownType),
    ]
}

fn apply(event: &mut Value, mutation: Mutation) {
    let user = |event: &mut Value| event["user"].as_object_mut().unwrap().clone();
    match mutation {
        Mutation::None => {}
        Mutation::TimeNear(delta) => event["time"] = json!(1_764_000_000 + delta),
        Mutation::TimeMillis => event["time"] = json!(1_764_000_000_123i64),
        Mutation::NoExternalUserId => {
            let mut u = user(event);
            u.remove("external_user_id");
            event["user"] = Value::Object(u);
        }
        Mutation::NoIdentity => event["user"] = json!({}),
        Mutation::OddProperty(kind) => {
            event["properties"]["campaign_name"] = match kind {
                0 => json!("caf\u{e9} \u{fffe}\u{ffff} \u{1f600}"),
                1 => json!(null),
                2 => json!([1, {"a": [true]}]),
                3 => json!("{\"json\":\"in a string\"}"),
                4 => json!(""),
                _ => json!(1e300),
            }
        }
        Mutation::LongProperty(len) => event["properties"]["campaign_name"] = json!("x".repeat(len)),
        Mutation::UnknownType => event["event_type"] = json!("users.messages.newchannel.Send"),
    }
}

fn batch() -> impl Strategy<Value = Vec<(usize, Mutation)>> {
    prop::collection::vec((0usize..80, mutation()), 1..20)
}

fn build(seeds: &[Value], picks: &[(usize, Mutation)]) -> Vec<Value> {
    picks
        .iter()
        .enumerate()
        .map(|(i, (pick, m))| {
            let mut event = seeds[*pick % seeds.len()].clone();
            event["id"] = json!(format!("gen-{i}"));
            apply(&mut event, *m);
            event
        })
        .collect()
}

fn summary(t: &Transformed<'_>) -> (Vec<String>, Vec<usize>, Vec<usize>) {
    (
        t.messages.iter().map(|m| m.json.clone()).collect(),
        t.skipped.iter().map(|s| s.index).collect(),
        t.invalid.iter().map(|i| i.index).collect(),
    )
}

#[test]
fn mutated_braze_events_are_accounted_for_and_mostly_map() {
    let seeds = seeds();
    let config = config(&[]);
    let route = config.routing.find("default").unwrap();
    let [total, mapped, skipped, invalid] = [(); 4].map(|()| Cell::new(0usize));
    let mut runner = TestRunner::new(RunnerConfig::with_cases(300));
    runner
        .run(&batch(), |picks| {
            let events = build(&seeds, &picks);
            let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
            let raw = parse_body(&body).unwrap();
            let slow = transform(&raw, &config.routing, route);
            let fast = transform_body(&body, &config.routing, route).unwrap();
            prop_assert_eq!(slow.total(), events.len());
            prop_assert_eq!(summary(&fast), summary(&slow));
            for message in &slow.messages {
                let value: Value = serde_json::from_str(&message.json).unwrap();
                prop_assert!(value["userId"].is_string() || value["anonymousId"].is_string());
                prop_assert!(value["event"].as_str().is_some_and(|e| !e.is_empty()));
                prop_assert!(message.json.len() <= 32_000);
            }
            total.set(total.get() + events.len());
            mapped.set(mapped.get() + slow.messages.len());
            skipped.set(skipped.get() + slow.skipped.len());
            invalid.set(invalid.get() + slow.invalid.len());
            Ok(())
        })
        .unwrap();
    // The generator must keep reaching every branch: most events map, some skip, some fail.
    let (total, mapped, skipped, invalid) = (total.get(), mapped.get(), skipped.get(), invalid.get());
    assert!(mapped * 2 >= total, "only {mapped} of {total} events mapped");
    assert!(skipped > 0 && invalid > 0, "skipped {skipped}, invalid {invalid}");
}

/// Flips, drops or inserts a few bytes of a valid body.
fn corrupt(mut body: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for (at, kind, byte) in edits {
        let at = at % body.len().max(1);
        match kind % 4 {
            0 => body[at] = *byte,
            1 => {
                body.remove(at);
            }
            2 => body.insert(at, *byte),
            _ => body.insert(at, 0xE9),
        }
    }
    body
}

#[test]
fn corrupted_bodies_through_the_handler_never_lose_the_good_events() {
    let seeds = seeds();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let edits = prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..3);
    let [answered_200, delivered_any, cases] = [(); 3].map(|()| Cell::new(0usize));
    let mut runner = TestRunner::new(RunnerConfig::with_cases(200));
    runner
        .run(&(batch(), edits), |(picks, edits)| {
            let events = build(&seeds, &picks);
            let body = corrupt(serde_json::to_vec(&json!({ "events": events })).unwrap(), &edits);
            let (status, answer) = runtime.block_on(async {
                let harness = Harness::new(config(&[]));
                let (auth, value) = bearer();
                send(&harness, post("/currents", &[(auth, &value)], body)).await
            });
            prop_assert!(status == 200 || status == 400, "{status}: {answer}");
            cases.set(cases.get() + 1);
            if status == 200 {
                let (delivered, parked, _, _) = common::counts(&answer);
                prop_assert_eq!(parked, 0, "Segment is up");
                answered_200.set(answered_200.get() + 1);
                delivered_any.set(delivered_any.get() + usize::from(delivered > 0));
            }
            Ok(())
        })
        .unwrap();
    let (answered_200, delivered_any, cases) = (answered_200.get(), delivered_any.get(), cases.get());
    assert!(
        answered_200 * 2 >= cases,
        "only {answered_200} of {cases} corrupted bodies answered 200"
    );
    assert!(
        delivered_any * 3 >= cases,
        "only {delivered_any} of {cases} delivered anything"
    );
}
