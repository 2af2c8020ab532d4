//! Parity with Braze's own Segment connector: every event type of Braze's Currents glossary that
//! has a Segment tab, its name and its shape, checked against our copy of those tabs
//! (`fixtures/braze/segment-names.tsv`) and our HTTP-shape fixture of each type
//! (`fixtures/braze/http-events.json`, written from the same field tables).

mod common;
mod flat_twin;

use std::collections::BTreeSet;

use common::{config, fixture};
use currents_segment::config::Config;
use currents_segment::currents::parse_body;
use currents_segment::mapping::{BuiltinName, EVENT_TABLE, EffectiveName, Moves, SegmentName, effective_names};
use currents_segment::transform::{Transformed, transform, transform_body};
use serde_json::{Value, json};

/// One row of the reference table.
struct Row {
    event_type: String,
    segment_event: String,
    legacy_event: String,
    /// (context path such as `traits.phone`, source property).
    context: Vec<(String, String)>,
    /// Documented Segment properties, without the `*` and `:type` marks.
    properties: Vec<String>,
}

fn reference() -> Vec<Row> {
    let text = String::from_utf8(fixture("braze/segment-names.tsv")).unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    assert_eq!(
        lines.next(),
        Some("event_type\tsegment_event\tlegacy_event\tcontext\tproperties")
    );
    let list = |cell: &str| -> Vec<String> { cell.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect() };
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            assert_eq!(cells.len(), 5, "{line}");
            let context = list(cells[3])
                .iter()
                .map(|c| {
                    let (path, source) = c.split_once('<').unwrap();
                    (path.trim_end_matches('*').to_owned(), source.to_owned())
                })
                .collect();
            let properties = list(cells[4])
                .iter()
                .map(|p| p.split(':').next().unwrap().trim_end_matches('*').to_owned())
                .collect();
            Row {
                event_type: cells[0].to_owned(),
                segment_event: cells[1].to_owned(),
                legacy_event: cells[2].to_owned(),
                context,
                properties,
            }
        })
        .collect()
}

/// The [`Moves`] flag for one context entry of the reference.
fn move_of(path: &str, source: &str) -> Moves {
    match (path, source) {
        ("traits.email", "email_address") => Moves::EMAIL,
        ("traits.phone", "to_phone_number") => Moves::TO_PHONE,
        ("traits.phone", "user_phone_number") => Moves::USER_PHONE,
        ("device.model", "device_model") => Moves::MODEL,
        ("device.type", "platform") => Moves::PLATFORM,
        other => panic!("unexpected context entry {other:?}"),
    }
}

const CONTEXT_MOVES: [Moves; 5] = [
    Moves::EMAIL,
    Moves::TO_PHONE,
    Moves::USER_PHONE,
    Moves::MODEL,
    Moves::PLATFORM,
];

#[test]
fn the_built_in_table_equals_the_reference_row_by_row() {
    let reference = reference();
    let named: Vec<_> = EVENT_TABLE
        .iter()
        .filter(|r| r.name != BuiltinName::LegacyOnly)
        .collect();
    assert_eq!(named.len(), 80);
    assert_eq!(reference.len(), 80);
    for (spec, row) in named.iter().zip(&reference) {
        assert_eq!(spec.event_type, row.event_type);
        let name = match spec.name {
            BuiltinName::Braze(name) => name,
            BuiltinName::CustomEventName => "(properties.name)",
            BuiltinName::LegacyOnly => unreachable!(),
        };
        assert_eq!(name, row.segment_event, "{}", row.event_type);
        assert_eq!(spec.legacy_name.unwrap_or(""), row.legacy_event, "{}", row.event_type);
        let expected: Vec<Moves> = row.context.iter().map(|(p, s)| move_of(p, s)).collect();
        for flag in CONTEXT_MOVES {
            assert_eq!(
                spec.moves.contains(flag),
                expected.contains(&flag),
                "{} {flag:?}",
                row.event_type
            );
        }
    }
    let legacy_only: Vec<(&str, Option<&str>)> = EVENT_TABLE
        .iter()
        .filter(|r| r.name == BuiltinName::LegacyOnly)
        .map(|r| (r.event_type, r.legacy_name))
        .collect();
    assert_eq!(
        legacy_only,
        [
            ("users.behaviors.app.NewsFeedImpression", Some("News Feed Viewed")),
            ("users.campaigns.Abort", Some("Campaign Aborted")),
            ("users.canvas.Abort", Some("Canvas Aborted")),
            ("users.messages.newsfeedcard.Click", Some("News Feed Card Clicked")),
            ("users.messages.newsfeedcard.Impression", Some("News Feed Card Viewed")),
        ]
    );
}

fn fixture_event(event_type: &str) -> Value {
    let body: Value = serde_json::from_slice(&fixture("braze/http-events.json")).unwrap();
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == event_type)
        .unwrap_or_else(|| panic!("no fixture for {event_type}"))
        .clone()
}

/// `(index, reason or code)` of each skipped or invalid event.
type Report = Vec<(usize, &'static str)>;

fn map_all(config: &Config, events: &[Value]) -> (Vec<Value>, Report, Report) {
    let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
    let raw = parse_body(&body).unwrap();
    let out = transform(&raw, &config.routing, config.routing.find("default").unwrap());
    let messages = out
        .messages
        .iter()
        .map(|m| serde_json::from_str(&m.json).unwrap())
        .collect();
    let skipped = out.skipped.iter().map(|s| (s.index, s.reason.as_str())).collect();
    let invalid = out.invalid.iter().map(|i| (i.index, i.error.code)).collect();
    (messages, skipped, invalid)
}

fn map_one(config: &Config, event: &Value) -> Value {
    let (mut messages, skipped, invalid) = map_all(config, std::slice::from_ref(event));
    assert_eq!(messages.len(), 1, "skipped {skipped:?}, invalid {invalid:?}");
    messages.remove(0)
}

fn context_at<'m>(message: &'m Value, path: &str) -> &'m Value {
    let (part, field) = path.split_once('.').unwrap();
    &message["context"][part][field]
}

/// Where a Segment property comes from in the HTTP payload of `event_type`.
fn source_of<'e>(event: &'e Value, event_type: &str, property: &str) -> &'e Value {
    match property {
        "device_id" => &event["user"]["device_id"],
        "link_url" if event_type == "users.messages.email.Click" => &event["properties"]["url"],
        "card_id" if event_type.contains(".contentcard.") => &event["properties"]["content_card_id"],
        other => &event["properties"][other],
    }
}

/// Name, identity, timestamp, every documented property and every context field of one type.
fn check_type(event_type: &str) {
    let row = reference().into_iter().find(|r| r.event_type == event_type).unwrap();
    let event = fixture_event(event_type);
    let message = map_one(&config(&[]), &event);
    let name = match row.segment_event.as_str() {
        "(properties.name)" => event["properties"]["name"].as_str().unwrap(),
        name => name,
    };
    assert_eq!(message["event"], name);
    assert_eq!(message["type"], "track");
    assert_eq!(message["messageId"], event["id"]);
    assert_eq!(message["userId"], event["user"]["external_user_id"]);
    assert_eq!(message.get("anonymousId"), event["user"].get("user_id"));
    let time = time::OffsetDateTime::from_unix_timestamp(event["time"].as_i64().unwrap()).unwrap();
    let rfc3339 = time.format(&time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(message["timestamp"], rfc3339.replace('Z', ".000Z"));
    let properties = &message["properties"];
    for property in &row.properties {
        let expected = source_of(&event, event_type, property);
        assert!(!expected.is_null(), "the fixture of {event_type} lacks {property}");
        assert_eq!(&properties[property], expected, "{event_type}: property {property}");
    }
    for (path, source) in &row.context {
        assert_eq!(
            context_at(&message, path),
            &event["properties"][source],
            "{event_type}: {path}"
        );
        assert!(
            properties.get(source).is_none(),
            "{event_type}: {source} moved to context"
        );
    }
    // A field Braze moves for other types but not this one stays a property.
    let moved: BTreeSet<&str> = row.context.iter().map(|(_, s)| s.as_str()).collect();
    for (source, path) in [
        ("email_address", "traits.email"),
        ("to_phone_number", "traits.phone"),
        ("user_phone_number", "traits.phone"),
        ("device_model", "device.model"),
        ("platform", "device.type"),
    ] {
        if let Some(value) = event["properties"].get(source).filter(|_| !moved.contains(source)) {
            assert_eq!(&properties[source], value, "{event_type}: {source} stays a property");
            assert_ne!(
                context_at(&message, path),
                value,
                "{event_type}: {source} not in context"
            );
        }
    }
}

macro_rules! parity_tests {
    ($($test:ident => $event_type:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check_type($event_type);
            }
        )*
        /// Every type with a test above.
        const TESTED: &[&str] = &[$($event_type),*];
    };
}

parity_tests! {
    custom_event => "users.behaviors.CustomEvent",
    install_attribution => "users.behaviors.InstallAttribution",
    location => "users.behaviors.Location",
    purchase => "users.behaviors.Purchase",
    uninstall => "users.behaviors.Uninstall",
    first_session => "users.behaviors.app.FirstSession",
    session_end => "users.behaviors.app.SessionEnd",
    session_start => "users.behaviors.app.SessionStart",
    push_to_start_token_change => "users.behaviors.liveactivity.PushToStartTokenChange",
    update_token_change => "users.behaviors.liveactivity.UpdateTokenChange",
    push_token_state_change => "users.behaviors.pushnotification.TokenStateChange",
    global_subscription_state_change => "users.behaviors.subscription.GlobalStateChange",
    subscription_group_state_change => "users.behaviors.subscriptiongroup.StateChange",
    campaign_conversion => "users.campaigns.Conversion",
    campaign_enroll_in_control => "users.campaigns.EnrollInControl",
    canvas_conversion => "users.canvas.Conversion",
    canvas_entry => "users.canvas.Entry",
    canvas_exit_matched_audience => "users.canvas.exit.MatchedAudience",
    canvas_exit_performed_event => "users.canvas.exit.PerformedEvent",
    experiment_step_conversion => "users.canvas.experimentstep.Conversion",
    experiment_split_entry => "users.canvas.experimentstep.SplitEntry",
    canvas_step_progression => "users.canvasstep.Progression",
    banner_abort => "users.messages.banner.Abort",
    banner_click => "users.messages.banner.Click",
    banner_impression => "users.messages.banner.Impression",
    content_card_abort => "users.messages.contentcard.Abort",
    content_card_click => "users.messages.contentcard.Click",
    content_card_dismiss => "users.messages.contentcard.Dismiss",
    content_card_impression => "users.messages.contentcard.Impression",
    content_card_send => "users.messages.contentcard.Send",
    email_abort => "users.messages.email.Abort",
    email_bounce => "users.messages.email.Bounce",
    email_click => "users.messages.email.Click",
    email_deferral => "users.messages.email.Deferral",
    email_delivery => "users.messages.email.Delivery",
    email_mark_as_spam => "users.messages.email.MarkAsSpam",
    email_open => "users.messages.email.Open",
    email_send => "users.messages.email.Send",
    email_soft_bounce => "users.messages.email.SoftBounce",
    email_unsubscribe => "users.messages.email.Unsubscribe",
    feature_flag_impression => "users.messages.featureflag.Impression",
    in_app_message_abort => "users.messages.inappmessage.Abort",
    in_app_message_click => "users.messages.inappmessage.Click",
    in_app_message_impression => "users.messages.inappmessage.Impression",
    line_abort => "users.messages.line.Abort",
    line_click => "users.messages.line.Click",
    line_inbound_receive => "users.messages.line.InboundReceive",
    line_send => "users.messages.line.Send",
    live_activity_outcome => "users.messages.liveactivity.Outcome",
    live_activity_send => "users.messages.liveactivity.Send",
    push_abort => "users.messages.pushnotification.Abort",
    push_bounce => "users.messages.pushnotification.Bounce",
    push_ios_foreground => "users.messages.pushnotification.IosForeground",
    push_open => "users.messages.pushnotification.Open",
    push_send => "users.messages.pushnotification.Send",
    rcs_abort => "users.messages.rcs.Abort",
    rcs_click => "users.messages.rcs.Click",
    rcs_delivery => "users.messages.rcs.Delivery",
    rcs_inbound_receive => "users.messages.rcs.InboundReceive",
    rcs_read => "users.messages.rcs.Read",
    rcs_rejection => "users.messages.rcs.Rejection",
    rcs_send => "users.messages.rcs.Send",
    sms_abort => "users.messages.sms.Abort",
    sms_carrier_send => "users.messages.sms.CarrierSend",
    sms_delivery => "users.messages.sms.Delivery",
    sms_delivery_failure => "users.messages.sms.DeliveryFailure",
    sms_inbound_receive => "users.messages.sms.InboundReceive",
    sms_rejection => "users.messages.sms.Rejection",
    sms_send => "users.messages.sms.Send",
    sms_short_link_click => "users.messages.sms.ShortLinkClick",
    webhook_abort => "users.messages.webhook.Abort",
    webhook_failure => "users.messages.webhook.Failure",
    webhook_send => "users.messages.webhook.Send",
    whatsapp_abort => "users.messages.whatsapp.Abort",
    whatsapp_click => "users.messages.whatsapp.Click",
    whatsapp_delivery => "users.messages.whatsapp.Delivery",
    whatsapp_failure => "users.messages.whatsapp.Failure",
    whatsapp_inbound_receive => "users.messages.whatsapp.InboundReceive",
    whatsapp_read => "users.messages.whatsapp.Read",
    whatsapp_send => "users.messages.whatsapp.Send",
}

#[test]
fn every_reference_type_has_a_fixture_and_a_test_and_all_map_in_one_batch() {
    let tested: BTreeSet<&str> = TESTED.iter().copied().collect();
    let reference: Vec<String> = reference().into_iter().map(|r| r.event_type).collect();
    assert_eq!(tested.len(), TESTED.len(), "no type tested twice");
    assert_eq!(tested.into_iter().collect::<Vec<_>>(), reference);
    let body: Value = serde_json::from_slice(&fixture("braze/http-events.json")).unwrap();
    let events = body["events"].as_array().unwrap();
    let (messages, skipped, invalid) = map_all(&config(&[]), events);
    assert_eq!((messages.len(), skipped, invalid), (80, vec![], vec![]));
}

/// The input of issue 10 that was skipped as `unknown_event_type`.
#[test]
fn regression_whatsapp_send_is_sent_as_braze_names_it() {
    let body = br#"{"events":[{"event_type":"users.messages.whatsapp.Send","id":"wa-send-0001","time":1764000000,"user":{"user_id":"5f0000000000000000000001","external_user_id":"user-1"},"properties":{"to_phone_number":"+15550100199","from_phone_number":"+15550100000","message_id":"m-1"}}]}"#;
    let config = config(&[]);
    let out = transform_body(body, &config.routing, config.routing.find("default").unwrap()).unwrap();
    assert!(out.skipped.is_empty() && out.invalid.is_empty());
    assert_eq!(out.messages.len(), 1);
    let message: Value = serde_json::from_str(&out.messages[0].json).unwrap();
    assert_eq!(message["event"], "WhatsApp Sent");
    assert_eq!(message["userId"], "user-1");
    assert_eq!(message["anonymousId"], "5f0000000000000000000001");
    assert_eq!(message["context"]["traits"]["phone"], "+15550100199");
    assert_eq!(message["properties"]["from_phone_number"], "+15550100000");
    assert_eq!(message["properties"]["message_id"], "m-1");
    assert!(message["properties"].get("to_phone_number").is_none());
}

fn names_of(config: &Config, types: &[&str]) -> Vec<String> {
    let events: Vec<Value> = types.iter().map(|t| fixture_event(t)).collect();
    let (messages, skipped, invalid) = map_all(config, &events);
    assert!(skipped.is_empty() && invalid.is_empty(), "{skipped:?} {invalid:?}");
    messages
        .iter()
        .map(|m| m["event"].as_str().unwrap().to_owned())
        .collect()
}

const RENAMED: [&str; 3] = [
    "users.messages.pushnotification.IosForeground",
    "users.messages.email.MarkAsSpam",
    "users.messages.email.Unsubscribe",
];

#[test]
fn legacy_naming_restores_the_older_names_globally_and_per_route() {
    let braze = ["Ios Foreground Push Opened", "Email Marked as Spam", "Unsubscribed"];
    let legacy = [
        "iOS Foreground Push Opened",
        "Email Marked As Spam",
        "Email Unsubscribed",
    ];
    assert_eq!(names_of(&config(&[]), &RENAMED), braze);
    assert_eq!(names_of(&config(&[("EVENT_NAMING", "legacy")]), &RENAMED), legacy);
    assert_eq!(names_of(&config(&[("EVENT_NAMING", "Braze")]), &RENAMED), braze);
    // A route can keep the old names while the default route moves on, and the reverse.
    let routes = config(&[
        ("ROUTES", r#"{"old":{"write_key":"k","event_naming":"legacy"}}"#),
        ("EVENT_NAMING", "braze"),
    ]);
    let old = &routes.routing.route(routes.routing.find("old").unwrap()).mapping;
    let events: Vec<Value> = RENAMED.iter().map(|t| fixture_event(t)).collect();
    let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
    let out = transform_body(&body, &routes.routing, routes.routing.find("old").unwrap()).unwrap();
    let sent: Vec<Value> = out
        .messages
        .iter()
        .map(|m| serde_json::from_str(&m.json).unwrap())
        .collect();
    assert_eq!(
        sent.iter().map(|m| m["event"].as_str().unwrap()).collect::<Vec<_>>(),
        legacy
    );
    assert_eq!(old.naming.as_str(), "legacy");
    assert_eq!(
        names_of(&routes, &RENAMED),
        braze,
        "the default route keeps Braze's names"
    );
}

#[test]
fn line_and_rcs_share_braze_bare_names_unless_channel_prefixed() {
    let types = [
        "users.messages.line.Send",
        "users.messages.rcs.Send",
        "users.messages.line.Abort",
        "users.messages.rcs.Abort",
        "users.messages.line.Click",
        "users.messages.rcs.Click",
        "users.messages.rcs.Delivery",
        "users.messages.rcs.Read",
        "users.messages.rcs.Rejection",
        "users.messages.rcs.InboundReceive",
        "users.messages.line.InboundReceive",
        "users.messages.sms.Send",
    ];
    let bare = [
        "Sent",
        "Sent",
        "Aborted",
        "Aborted",
        "Clicked",
        "Clicked",
        "Delivered",
        "Read",
        "Rejected",
        "Inbound Received",
        "LINE Inbound Received",
        "SMS Sent",
    ];
    assert_eq!(names_of(&config(&[]), &types), bare);
    let prefixed = [
        "LINE Sent",
        "RCS Sent",
        "LINE Aborted",
        "RCS Aborted",
        "LINE Clicked",
        "RCS Clicked",
        "RCS Delivered",
        "RCS Read",
        "RCS Rejected",
        "RCS Inbound Received",
        "LINE Inbound Received",
        "SMS Sent",
    ];
    assert_eq!(
        names_of(&config(&[("CHANNEL_PREFIXED_NAMES", "true")]), &types),
        prefixed
    );
    let per_route = config(&[(
        "ROUTES",
        r#"{"default":{"write_key":"k","channel_prefixed_names":true}}"#,
    )]);
    assert_eq!(names_of(&per_route, &types), prefixed);
}

/// Types Braze's Currents sends that have no Segment tab.
const NO_TAB: [&str; 5] = [
    "users.messages.email.Retry",
    "users.messages.banner.Dismiss",
    "users.canvas.costep.Send",
    "agentconsole.AgentExecuted",
    "users.messages.newsfeedcard.Click",
];

fn no_tab_events() -> Vec<Value> {
    NO_TAB
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"event_type": t, "id": format!("no-tab-{i}"), "time": 1_764_000_000,
                   "user": {"user_id": "5f0000000000000000000009", "external_user_id": "user-9"},
                   "properties": {"email_address": "a@example.com", "platform": "ios", "nested": {"k": [1]}}})
        })
        .collect()
}

#[test]
fn types_without_a_segment_tab_are_skipped_unless_unknown_event_types_is_send() {
    let events = no_tab_events();
    let (messages, skipped, _) = map_all(&config(&[]), &events);
    assert!(messages.is_empty());
    assert_eq!(skipped, (0..5).map(|i| (i, "unknown_event_type")).collect::<Vec<_>>());
    let send = config(&[("UNKNOWN_EVENT_TYPES", "send")]);
    let (messages, skipped, invalid) = map_all(&send, &events);
    assert!(skipped.is_empty() && invalid.is_empty());
    let names: Vec<&str> = messages.iter().map(|m| m["event"].as_str().unwrap()).collect();
    assert_eq!(names, NO_TAB, "named by the raw event_type");
    let generic = &messages[0];
    assert_eq!(
        generic["properties"]["email_address"], "a@example.com",
        "passes through"
    );
    assert_eq!(generic["properties"]["platform"], "ios");
    assert_eq!(generic["properties"]["nested"], json!({"k": [1]}));
    // EVENT_TYPES still filters, and the setting works per route.
    let filtered = config(&[
        ("UNKNOWN_EVENT_TYPES", "send"),
        ("EVENT_TYPES", "users.canvas.costep.Send"),
    ]);
    let (messages, skipped, _) = map_all(&filtered, &events);
    assert_eq!(messages.len(), 1);
    assert_eq!(skipped.len(), 4);
    assert!(skipped.iter().all(|(_, reason)| *reason == "event_type_not_selected"));
    let per_route = config(&[(
        "ROUTES",
        r#"{"default":{"write_key":"k","unknown_event_types":"send"}}"#,
    )]);
    assert_eq!(map_all(&per_route, &events).0.len(), 5);
}

fn custom_event_fixture() -> Value {
    fixture_event("users.behaviors.CustomEvent")
}

#[test]
fn custom_event_properties_go_to_the_top_level_in_both_shapes() {
    let http = custom_event_fixture();
    let message = map_one(&config(&[]), &http);
    assert_eq!(message["event"], "Signed Up");
    let properties = &message["properties"];
    assert_eq!(properties["plan"], "gold");
    assert_eq!(properties["seats"], 3);
    assert_eq!(properties["tags"], json!(["a", "b"]));
    assert_eq!(properties["name"], "Signed Up");
    assert!(properties.get("custom_properties").is_none());
    // The storage shape carries the same fields as a JSON string: same message.
    let mut storage = http.clone();
    let text = serde_json::to_string(&http["properties"]["custom_properties"]).unwrap();
    storage["properties"]["custom_properties"] = json!(text);
    assert_eq!(map_one(&config(&[]), &storage), message);
}

/// Only custom events flatten `custom_properties`, and only purchases `purchase_properties`:
/// any other event keeps a field of either name as the nested property it is.
#[test]
fn other_events_keep_fields_named_like_custom_or_purchase_properties() {
    let mut event = fixture_event("users.messages.email.Open");
    event["properties"]["custom_properties"] = json!({"c": 1});
    event["properties"]["purchase_properties"] = json!({"p": 2});
    let properties = &map_one(&config(&[]), &event)["properties"];
    assert_eq!(properties["custom_properties"], json!({"c": 1}));
    assert_eq!(properties["purchase_properties"], json!({"p": 2}));
    assert!(properties.get("c").is_none() && properties.get("p").is_none());
    let mut purchase = fixture_event("users.behaviors.Purchase");
    purchase["properties"]["custom_properties"] = json!({"c": 1});
    let properties = &map_one(&config(&[]), &purchase)["properties"];
    assert_eq!(
        properties["custom_properties"],
        json!({"c": 1}),
        "a purchase keeps custom_properties nested"
    );
}

#[test]
fn purchase_properties_go_to_the_top_level_in_both_shapes() {
    let http = fixture_event("users.behaviors.Purchase");
    let message = map_one(&config(&[]), &http);
    assert_eq!(message["event"], "Purchased");
    assert_eq!(message["properties"]["gift"], true);
    assert_eq!(message["properties"]["size"], "L");
    assert_eq!(message["properties"]["price"], 19.99);
    let mut storage = http.clone();
    let text = serde_json::to_string(&http["properties"]["purchase_properties"]).unwrap();
    storage["properties"]["purchase_properties"] = json!(text);
    assert_eq!(map_one(&config(&[]), &storage), message);
}

#[test]
fn the_event_own_fields_win_a_clash_and_the_clashing_entries_stay_nested() {
    let mut event = custom_event_fixture();
    event["properties"]["custom_properties"] = json!({"app_id": "mine", "device_id": "mine too", "colour": "red"});
    let message = map_one(&config(&[]), &event);
    let properties = &message["properties"];
    assert_eq!(properties["app_id"], event["properties"]["app_id"]);
    assert_eq!(properties["device_id"], event["user"]["device_id"]);
    assert_eq!(properties["colour"], "red");
    assert_eq!(
        properties["custom_properties"],
        json!({"app_id": "mine", "device_id": "mine too"})
    );
}

#[test]
fn odd_custom_events_pass_through_or_are_dead_lettered_with_a_reason() {
    let mut not_json = custom_event_fixture();
    not_json["properties"]["custom_properties"] = json!("not json");
    let message = map_one(&config(&[]), &not_json);
    assert_eq!(message["properties"]["custom_properties"], "not json");
    let mut nameless = custom_event_fixture();
    nameless["properties"].as_object_mut().unwrap().remove("name");
    let mut blank = custom_event_fixture();
    blank["properties"]["name"] = json!("  ");
    let (messages, _, invalid) = map_all(&config(&[]), &[nameless, blank]);
    assert!(messages.is_empty());
    assert_eq!(invalid, [(0, "empty_event_name"), (1, "empty_event_name")]);
    // An explicit name for the type wins over the event's own.
    let named = config(&[("EVENT_NAMES", r#"{"users.behaviors.CustomEvent":"Custom Event"}"#)]);
    assert_eq!(map_one(&named, &custom_event_fixture())["event"], "Custom Event");
}

#[test]
fn pii_modes_cover_flattened_properties_and_moved_phones() {
    let mut event = custom_event_fixture();
    event["properties"]["custom_properties"] = json!({"email_address": "a@example.com", "plan": "gold"});
    let hashed = map_one(&config(&[("PII_MODE", "hash")]), &event);
    assert_eq!(hashed["properties"]["email_address"].as_str().unwrap().len(), 64);
    assert_eq!(hashed["properties"]["plan"], "gold");
    let dropped = map_one(&config(&[("PII_MODE", "drop")]), &event);
    assert!(dropped["properties"].get("email_address").is_none());
    let whatsapp = map_one(
        &config(&[("PII_MODE", "drop")]),
        &fixture_event("users.messages.whatsapp.Send"),
    );
    assert!(whatsapp["context"].get("traits").is_none());
    assert!(whatsapp["properties"].get("to_phone_number").is_none());
}

fn row<'t>(table: &[EffectiveName<'t>], event_type: &str) -> EffectiveName<'t> {
    table.iter().find(|r| r.event_type == event_type).cloned().unwrap()
}

#[test]
fn the_effective_table_applies_names_types_and_settings() {
    let plain = config(&[]);
    let options = &plain.routing.route(plain.routing.find("default").unwrap()).mapping;
    let table = effective_names(options);
    assert_eq!(table.len(), 85);
    assert_eq!(
        row(&table, "users.messages.whatsapp.Send").name,
        Some(SegmentName::Braze("WhatsApp Sent"))
    );
    assert_eq!(
        row(&table, "users.behaviors.CustomEvent").name,
        Some(SegmentName::CustomEventName)
    );
    assert_eq!(row(&table, "users.canvas.Abort").name, None, "skipped as unknown");
    assert!(table.iter().all(|r| r.selected));

    let custom = config(&[
        (
            "EVENT_NAMES",
            r#"{"users.messages.email.Send":"Mail Out","brand.new.Type":"Brand New"}"#,
        ),
        ("EVENT_TYPES", "users.messages.email.Send,brand.new.Type,other.Type"),
        ("EVENT_NAMING", "legacy"),
        ("UNKNOWN_EVENT_TYPES", "send"),
    ]);
    let table = effective_names(&custom.routing.route(custom.routing.find("default").unwrap()).mapping);
    assert_eq!(table.len(), 87);
    assert_eq!(
        row(&table, "users.messages.email.Send").name,
        Some(SegmentName::Configured("Mail Out"))
    );
    assert!(row(&table, "users.messages.email.Send").selected);
    assert!(!row(&table, "users.messages.sms.Send").selected);
    assert_eq!(
        row(&table, "users.canvas.Abort").name,
        Some(SegmentName::Legacy("Canvas Aborted"))
    );
    assert_eq!(row(&table, "other.Type").name, Some(SegmentName::EventType));
    assert_eq!(
        serde_json::to_value(row(&table, "other.Type")).unwrap(),
        json!({"event_type": "other.Type", "event": "other.Type", "source": "event_type", "selected": true})
    );
    assert_eq!(
        serde_json::to_value(row(&table, "users.messages.email.MarkAsSpam")).unwrap(),
        json!({"event_type": "users.messages.email.MarkAsSpam", "event": "Email Marked As Spam",
               "source": "legacy", "selected": false})
    );
    let sorted: Vec<&str> = table.iter().map(|r| r.event_type).collect();
    assert!(sorted.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn fields_past_the_64th_property_still_move_to_context() {
    let mut event = fixture_event("users.messages.email.Open");
    let properties = event["properties"].as_object_mut().unwrap();
    let email = properties.remove("email_address").unwrap();
    let model = properties.remove("device_model").unwrap();
    // serde_json's map sorts keys, so these come first and push the others past index 64.
    for i in 0..70 {
        properties.insert(format!("aa_extra_{i:02}"), json!(i));
    }
    properties.insert("email_address".into(), email.clone());
    properties.insert("device_model".into(), model.clone());
    properties.insert("platform".into(), json!("ios"));
    let message = map_one(&config(&[]), &event);
    assert_eq!(message["context"]["traits"]["email"], email);
    assert_eq!(message["context"]["device"]["model"], model);
    assert!(message["properties"].get("email_address").is_none());
    assert!(message["properties"].get("device_model").is_none());
    assert_eq!(message["properties"]["platform"], "ios", "email Open keeps platform");
    assert_eq!(message["properties"]["aa_extra_69"], 69);
}

/// Messages (byte for byte), skips and dead-letter codes, by position.
type Outcome = (Vec<String>, Report, Report);

fn outcome(out: &Transformed<'_>) -> Outcome {
    (
        out.messages.iter().map(|m| m.json.clone()).collect(),
        out.skipped.iter().map(|s| (s.index, s.reason.as_str())).collect(),
        out.invalid.iter().map(|i| (i.index, i.error.code)).collect(),
    )
}

/// Storage exports lay every event out flat; ingest and the CLI read that shape as its HTTP
/// twin, on the one-pass path and on the per-event path alike.
#[test]
fn flat_twins_of_every_fixture_event_give_byte_identical_messages_on_both_paths() {
    let settings: [&[(&str, &str)]; 3] = [
        &[],
        &[("INCLUDE_ANONYMOUS", "true"), ("PII_MODE", "hash")],
        &[("UNKNOWN_EVENT_TYPES", "send"), ("PII_MODE", "drop")],
    ];
    for name in ["braze/http-events.json", "all-events.json"] {
        let http = flat_twin::http_body_without_nulls(&fixture(name));
        let flat = flat_twin::flat_body(&http);
        let events = parse_body(&http).unwrap().len();
        for vars in settings {
            let config = config(vars);
            let route = config.routing.find("default").unwrap();
            let expected = outcome(&transform_body(&http, &config.routing, route).unwrap());
            assert_eq!(expected.0.len(), events, "{name} {vars:?}: every event maps");
            let one_pass = outcome(&transform_body(&flat, &config.routing, route).unwrap());
            assert_eq!(one_pass, expected, "{name} {vars:?}: one-pass path");
            let raw = parse_body(&flat).unwrap();
            let per_event = outcome(&transform(&raw, &config.routing, route));
            assert_eq!(per_event, expected, "{name} {vars:?}: per-event path");
        }
    }
}

#[test]
fn the_flat_whatsapp_send_of_the_regression_is_sent_too() {
    let body = br#"{"events":[{"event_type":"users.messages.whatsapp.Send","id":"wa-send-0001","time":1764000000,
        "user_id":"5f0000000000000000000001","external_user_id":"user-1","timezone":null,
        "to_phone_number":"+15550100199","from_phone_number":"+15550100000","message_id":"m-1"}]}"#;
    let config = config(&[]);
    let out = transform_body(body, &config.routing, config.routing.find("default").unwrap()).unwrap();
    assert_eq!((out.skipped.len(), out.invalid.len()), (0, 0));
    let message: Value = serde_json::from_str(&out.messages[0].json).unwrap();
    assert_eq!(message["event"], "WhatsApp Sent");
    assert_eq!(message["userId"], "user-1");
    assert_eq!(message["anonymousId"], "5f0000000000000000000001");
    assert_eq!(message["context"]["traits"]["phone"], "+15550100199");
    assert_eq!(message["properties"]["message_id"], "m-1");
    assert!(message["properties"].get("timezone").is_none());
}

/// The sample batch (`all-events.json`, copied into `events/ingest-valid.json` and
/// `scripts/dev`'s batch) holds at least one event of every family of the built-in table
/// (its type without the last part, e.g. `users.messages.whatsapp`), plus the customer-behaviour
/// events the README names, and every one of them reaches Segment with the defaults.
#[test]
fn the_sample_batch_covers_every_family_of_the_built_in_table() {
    let family = |event_type: &str| event_type.rsplit_once('.').unwrap().0.to_owned();
    let body = fixture("all-events.json");
    let events: Value = serde_json::from_slice(&body).unwrap();
    let types: BTreeSet<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    let sampled: BTreeSet<String> = types.iter().map(|t| family(t)).collect();
    let named = EVENT_TABLE.iter().filter(|r| r.name != BuiltinName::LegacyOnly);
    let missing: Vec<&str> = named
        .map(|r| r.event_type)
        .filter(|t| !sampled.contains(&family(t)))
        .collect();
    assert!(missing.is_empty(), "no sample of the family of {missing:?}");
    for named in [
        "users.behaviors.app.SessionStart",
        "users.behaviors.app.SessionEnd",
        "users.behaviors.Purchase",
        "users.behaviors.CustomEvent",
        "users.behaviors.Location",
        "users.behaviors.InstallAttribution",
        "users.behaviors.pushnotification.TokenStateChange",
        "users.messages.webhook.Failure",
        "users.messages.sms.ShortLinkClick",
    ] {
        assert!(types.contains(named), "{named} is not in the sample batch");
    }
    let config = config(&[]);
    let out = transform_body(&body, &config.routing, config.routing.find("default").unwrap()).unwrap();
    assert_eq!(
        (out.messages.len(), out.total()),
        (events["events"].as_array().unwrap().len(), out.messages.len())
    );
}

/// Fields move only for the types that move them: an unknown type sent as is keeps
/// `os_version` and `content_card_id` as properties, and an email event keeps
/// `content_card_id` (only content card events rename it `card_id`).
#[test]
fn fields_move_only_for_the_types_that_move_them() {
    let mut event = fixture_event("users.messages.email.Open");
    event["event_type"] = json!("users.messages.future.Thing");
    event["properties"]["os_version"] = json!("17.1");
    event["properties"]["content_card_id"] = json!("cc-9");
    let message = map_one(&config(&[("UNKNOWN_EVENT_TYPES", "send")]), &event);
    assert_eq!(message["properties"]["os_version"], "17.1", "{message}");
    assert_eq!(message["properties"]["content_card_id"], "cc-9");
    assert!(message["context"].get("os").is_none() && message["properties"].get("card_id").is_none());
    // Each rename belongs to its own family: an email click keeps `content_card_id`, a content
    // card click keeps `url`.
    let mut click = fixture_event("users.messages.email.Click");
    click["properties"]["content_card_id"] = json!("cc-9");
    let properties = &map_one(&config(&[]), &click)["properties"];
    assert_eq!(properties["content_card_id"], "cc-9", "{properties}");
    let mut card = fixture_event("users.messages.contentcard.Click");
    card["properties"]["url"] = json!("https://shop.example.com/x");
    let properties = &map_one(&config(&[]), &card)["properties"];
    assert_eq!(properties["url"], "https://shop.example.com/x", "{properties}");
    assert!(properties.get("link_url").is_none(), "{properties}");
    // With no device id either, there is no `context.device` at all (not an empty object).
    event["user"].as_object_mut().unwrap().remove("device_id");
    let message = map_one(&config(&[("UNKNOWN_EVENT_TYPES", "send")]), &event);
    assert!(message["context"].get("device").is_none(), "{message}");

    let mut email = fixture_event("users.messages.email.Open");
    email["properties"]["content_card_id"] = json!("cc-9");
    let message = map_one(&config(&[]), &email);
    assert_eq!(message["properties"]["content_card_id"], "cc-9", "{message}");
    assert!(message["properties"].get("card_id").is_none());
}

/// A custom event's dead letter says it is the event's own `properties.name` that is missing.
#[test]
fn a_nameless_custom_event_is_dead_lettered_saying_which_name_is_missing() {
    let mut blank = custom_event_fixture();
    blank["properties"]["name"] = json!("");
    let body = serde_json::to_vec(&json!({ "events": [blank] })).unwrap();
    let raw = parse_body(&body).unwrap();
    let config = config(&[]);
    let out = transform(&raw, &config.routing, config.routing.find("default").unwrap());
    let error = out.invalid[0].error.to_string();
    assert!(error.contains("custom event's `properties.name`"), "{error}");
}

/// Past the 64th property the mapper finds moved fields by name rather than by position: a
/// context field there moves when its value is a usable string, and stays otherwise. (JSON
/// text, not `json!`, because the position of each key matters.)
#[test]
fn properties_past_the_64th_move_exactly_as_the_first_ones() {
    let mut properties: Vec<String> = (0..64).map(|i| format!(r#""p{i:02}":{i}"#)).collect();
    properties.push(r#""device_model":"Pixel 9""#.into());
    properties.push(r#""os_version":5"#.into());
    let event = format!(
        r#"{{"id":"e1","event_type":"users.messages.email.Open","time":1764000060,"user":{{"external_user_id":"u-1"}},"properties":{{{}}}}}"#,
        properties.join(",")
    );
    let body = format!(r#"{{"events":[{event}]}}"#);
    let raw = parse_body(body.as_bytes()).unwrap();
    let config = config(&[]);
    let out = transform(&raw, &config.routing, config.routing.find("default").unwrap());
    let message: Value = serde_json::from_str(&out.messages[0].json).unwrap();
    assert_eq!(message["context"]["device"]["model"], "Pixel 9", "{message}");
    assert!(message["properties"].get("device_model").is_none(), "{message}");
    assert_eq!(message["properties"]["os_version"], 5, "{message}");
    assert!(message["context"].get("os").is_none(), "{message}");
    assert_eq!(message["properties"]["p63"], 63);
}
