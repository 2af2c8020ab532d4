//! PII modes and routing: what leaves the process, and where it goes.

mod common;

use common::{Harness, bearer, config, counts, fixture, post, send};
use currents_segment::config::Config;
use currents_segment::currents::parse_body;
use currents_segment::transform::transform;
use serde_json::Value;

/// How many events the sample batch (`all-events.json`) holds.
fn fixture_len() -> usize {
    let fixture: serde_json::Value = serde_json::from_slice(&fixture("all-events.json")).unwrap();
    fixture["events"].as_array().unwrap().len()
}

const EMAIL: &str = "ada.lovelace@example.com";
const PHONE: &str = "+15550100199";

fn mapped_text(config: &Config) -> Vec<String> {
    let body = fixture("all-events.json");
    let raw = parse_body(&body).unwrap();
    let out = transform(&raw, &config.routing, config.routing.find("default").unwrap());
    assert_eq!(out.messages.len(), fixture_len());
    out.messages.into_iter().map(|m| m.json).collect()
}

fn contains_raw_pii(text: &str) -> bool {
    text.contains(EMAIL) || text.contains("5550100199") || text.contains("STOP please") || text.contains("Mozilla/5.0")
}

#[test]
fn keep_mode_forwards_pii_as_braze_does() {
    let all = mapped_text(&config(&[])).join("\n");
    assert!(all.contains(EMAIL) && all.contains(PHONE));
}

#[test]
fn hash_mode_writes_known_sha256_values_and_no_raw_pii() {
    let messages = mapped_text(&config(&[("PII_MODE", "hash")]));
    for text in &messages {
        assert!(!contains_raw_pii(text), "raw PII leaked: {text}");
    }
    let values: Vec<Value> = messages.iter().map(|m| serde_json::from_str(m).unwrap()).collect();
    let email = values.iter().find(|m| m["event"] == "Email Sent").unwrap();
    // sha256("ada.lovelace@example.com")
    assert_eq!(email["context"]["traits"]["email"], EMAIL_HASH);
    let sms = values.iter().find(|m| m["event"] == "SMS Inbound Received").unwrap();
    // sha256("15550100199"): the digits of the E.164 number
    assert_eq!(sms["context"]["traits"]["phone"], PHONE_HASH);
    assert_eq!(sms["properties"]["inbound_phone_number"].as_str().unwrap().len(), 64);
    // sha256("STOP please"): free text is hashed as written, trimmed
    assert_eq!(sms["properties"]["message_body"], BODY_HASH);
}

/// Maps one SMS inbound event carrying these contact values, in hash mode.
fn hashed_sms(phone: &str, email: &str) -> Value {
    let event = serde_json::json!({"events": [{
        "id": "e1", "event_type": "users.messages.sms.InboundReceive", "time": 1_700_000_000,
        "user": {"external_user_id": "u1"},
        "properties": {"user_phone_number": phone, "inbound_phone_number": phone, "email_address": email}
    }]});
    let body = event.to_string();
    let config = config(&[("PII_MODE", "hash")]);
    let out = transform(
        &parse_body(body.as_bytes()).unwrap(),
        &config.routing,
        config.routing.find("default").unwrap(),
    );
    serde_json::from_str(&out.messages[0].json).unwrap()
}

/// Issue 21, case 10: NFC and NFD are one person; a value with nothing left to hash is dropped,
/// never sent as sha256("") that every such user would share.
#[test]
fn hash_mode_normalises_unicode_and_drops_what_normalises_to_nothing() {
    let nfc = hashed_sms("+15550100199", "Jos\u{e9}@example.com");
    let nfd = hashed_sms("+15550100199", "Jose\u{301}@example.com");
    assert_eq!(nfc["context"]["traits"], nfd["context"]["traits"]);
    assert_eq!(nfc["context"]["traits"]["phone"], PHONE_HASH);
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    // The same number in Arabic-Indic digits is the same person.
    let arabic = hashed_sms(
        "+\u{661}\u{665}\u{665}\u{665}\u{660}\u{661}\u{660}\u{660}\u{661}\u{669}\u{669}",
        " ",
    );
    assert_eq!(arabic["context"]["traits"]["phone"], PHONE_HASH);
    for phone in ["unknown", "N/A"] {
        let message = hashed_sms(phone, " ");
        assert!(!message.to_string().contains(EMPTY_SHA256), "{message}");
        assert!(message["context"].get("traits").is_none(), "{phone}: {message}");
        assert!(message["properties"].get("inbound_phone_number").is_none());
        assert_eq!(message["userId"], "u1", "the event itself is still sent");
    }
}

const EMAIL_HASH: &str = "e814ff3dc480a94c7ce9334062ec4733c75a002f4bcec0197f62ffea64059e2f";
const PHONE_HASH: &str = "90be998a6e4b5bec4f18e14bc56a618ba6dd57100b89276067e3a77ff7140b4a";
const BODY_HASH: &str = "885ef8454dfbce8fc35b9c2f952839610329bca48a03ea3cb6269f5678a3cd52";

#[test]
fn drop_mode_removes_every_pii_field() {
    let messages = mapped_text(&config(&[("PII_MODE", "drop")]));
    for text in &messages {
        assert!(!contains_raw_pii(text), "raw PII leaked: {text}");
        let value: Value = serde_json::from_str(text).unwrap();
        assert!(value["context"].get("traits").is_none());
        for key in [
            "user_agent",
            "message_body",
            "from_phone_number",
            "inbound_phone_number",
            "email_address",
            "channel_identifier",
        ] {
            assert!(value["properties"].get(key).is_none(), "{key} dropped");
        }
    }
}

fn two_route_config() -> Config {
    config(&[
        (
            "ROUTES",
            r#"{"brand-a":{"write_key":"key-a"},"brand-b":{"write_key":"key-b","pii_mode":"drop"}}"#,
        ),
        ("APP_ROUTES", r#"{"app-ios":"brand-a","app-android":"brand-b"}"#),
    ])
}

#[test]
fn app_routes_fan_one_batch_out_to_two_sources() {
    let config = two_route_config();
    let body = fixture("all-events.json");
    let raw = parse_body(&body).unwrap();
    let out = transform(&raw, &config.routing, config.routing.find("default").unwrap());
    let route_of = |name: &str| config.routing.find(name).unwrap();
    let count = |route| out.messages.iter().filter(|m| m.route == route).count();
    // Fixture: 9 events of app-ios, 4 of app-android, the rest fall back to the request route.
    assert_eq!(count(route_of("brand-a")), 9);
    assert_eq!(count(route_of("brand-b")), 4);
    assert_eq!(count(route_of("default")), fixture_len() - 13);
    for message in out.messages.iter().filter(|m| m.route == route_of("brand-b")) {
        assert!(!contains_raw_pii(&message.json), "brand-b drops PII");
    }
}

#[tokio::test]
async fn a_request_route_picks_the_source_and_unknown_routes_get_404() {
    let harness = Harness::new(two_route_config());
    let (auth, value) = bearer();
    let body = fixture("all-events.json");
    let (status, answer) = send(
        &harness,
        post("/currents?route=brand-b", &[(auth, &value)], body.clone()),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(counts(&answer).0, fixture_len() as u64);
    let (status, answer) = send(&harness, post("/currents/brand-a", &[(auth, &value)], body.clone())).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = send(&harness, post("/currents/nope", &[(auth, &value)], body)).await;
    assert_eq!((status, answer["error"].as_str()), (404, Some("unknown_route")));
}

#[tokio::test]
async fn each_route_gets_its_own_segment_batches() {
    let harness = Harness::new(two_route_config());
    let (auth, value) = bearer();
    let (status, answer) = send(
        &harness,
        post("/currents/brand-a", &[(auth, &value)], fixture("all-events.json")),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    // brand-a takes its own 9 plus every unrouted event; brand-b takes 4.
    let sizes: Vec<usize> = harness
        .segment
        .bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| b["batch"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [fixture_len() - 4, 4]);
}
