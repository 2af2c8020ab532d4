//! Mapping tests: one per Currents event type, on our own fixtures, plus skip rules, options,
//! PII modes and routes.

mod common;

use common::{config, fixture};
use currents_segment::config::Config;
use currents_segment::currents::parse_body;
use currents_segment::transform::transform;
use serde_json::{Value, json};

/// Where a property that Braze's connector may move into `context` lands when it moves. Which
/// types move which is checked per type in `braze_parity.rs`; here: a property that left
/// `properties` must be found at its place in `context`.
const CONTEXT_PLACES: &[(&str, &str, &str)] = &[
    ("email_address", "traits", "email"),
    ("to_phone_number", "traits", "phone"),
    ("user_phone_number", "traits", "phone"),
    ("device_model", "device", "model"),
    ("platform", "device", "type"),
    ("os_version", "os", "version"),
];

/// The properties whose own entries Braze's connector brings to the top level.
const NESTED: &[&str] = &["custom_properties", "purchase_properties"];

fn all_events() -> Vec<Value> {
    let body: Value = serde_json::from_slice(&fixture("all-events.json")).unwrap();
    body["events"].as_array().unwrap().clone()
}

fn event_of(event_type: &str) -> Value {
    all_events()
        .into_iter()
        .find(|e| e["event_type"] == event_type)
        .expect("fixture has the type")
}

fn map_with(config: &Config, events: &[Value]) -> (Vec<Value>, Value) {
    let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
    let raw = parse_body(&body).unwrap();
    let default = config.routing.find("default").unwrap();
    let out = transform(&raw, &config.routing, default);
    let messages = out
        .messages
        .iter()
        .map(|m| serde_json::from_str(&m.json).unwrap())
        .collect();
    let report = json!({
        "skipped": out.skipped.iter().map(|s| json!([s.index, s.reason.as_str()])).collect::<Vec<_>>(),
        "invalid": out.invalid.iter().map(|i| json!([i.index, i.error.code])).collect::<Vec<_>>(),
    });
    (messages, report)
}

fn map_one(event: &Value) -> Value {
    let (messages, report) = map_with(&config(&[]), std::slice::from_ref(event));
    assert_eq!(messages.len(), 1, "{report}");
    messages.into_iter().next().unwrap()
}

/// What every message must carry, whatever its type.
fn assert_contract(event: &Value, message: &Value, name: &str) {
    let user = &event["user"];
    assert_eq!(message["type"], "track");
    assert_eq!(message["event"], name);
    assert_eq!(message["messageId"], event["id"]);
    let time = time::OffsetDateTime::from_unix_timestamp(event["time"].as_i64().unwrap()).unwrap();
    let expected = time
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
        .replace('Z', ".000Z");
    assert_eq!(message["timestamp"], expected.as_str());
    assert!(
        message["timestamp"].as_str().unwrap().starts_with("2025-"),
        "no 1970 dates"
    );
    assert_eq!(message["userId"], user["external_user_id"]);
    assert_eq!(message.get("anonymousId"), user.get("user_id"));
    assert!(
        message.get("sentAt").is_none(),
        "sentAt is stamped per attempt, not at mapping"
    );
    assert_eq!(
        message["context"]["library"],
        json!({"name": "currents-segment", "version": env!("CARGO_PKG_VERSION")})
    );
    if let Some(device_id) = user.get("device_id") {
        assert_eq!(&message["context"]["device"]["id"], device_id);
        assert_eq!(&message["properties"]["device_id"], device_id);
    }
    let timezone = user.get("timezone").or_else(|| event.get("timezone"));
    assert_eq!(message["context"].get("timezone"), timezone);
    // Every other property comes through untouched, apart from Braze's two renames.
    let properties = message["properties"].as_object().unwrap();
    for (key, value) in event["properties"].as_object().unwrap() {
        if let Some((_, part, field)) = CONTEXT_PLACES.iter().find(|(k, ..)| k == key)
            && !properties.contains_key(key)
        {
            assert_eq!(&message["context"][part][field], value, "{key} moved to context");
            continue;
        }
        if NESTED.contains(&key.as_str()) {
            for (inner, value) in value.as_object().unwrap() {
                assert_eq!(properties.get(inner), Some(value), "{key}.{inner} at the top level");
            }
            continue;
        }
        // Renamed only for the event types Braze renames them in.
        let out_key = match key.as_str() {
            "url" if !properties.contains_key("url") => "link_url",
            "content_card_id" if !properties.contains_key("content_card_id") => "card_id",
            other => other,
        };
        assert_eq!(properties.get(out_key), Some(value), "property {key}");
    }
}

macro_rules! mapping_test {
    ($test:ident, $event_type:literal, $name:literal, |$event:ident, $message:ident| $extra:block) => {
        #[test]
        fn $test() {
            let $event = event_of($event_type);
            let $message = map_one(&$event);
            assert_contract(&$event, &$message, $name);
            $extra
        }
    };
    ($test:ident, $event_type:literal, $name:literal) => {
        mapping_test!($test, $event_type, $name, |_e, _m| {});
    };
}

fn props(message: &Value) -> &serde_json::Map<String, Value> {
    message["properties"].as_object().unwrap()
}

mapping_test!(
    push_send,
    "users.messages.pushnotification.Send",
    "Push Notification Sent",
    |event, message| {
        // Braze keeps `platform` as a property of push Send, Bounce and Abort.
        assert_eq!(props(&message)["platform"], "ios");
        assert!(message["context"]["device"].get("type").is_none());
        assert_eq!(
            props(&message)["message_extras"],
            event["properties"]["message_extras"],
            "JSON-in-a-string stays a string"
        );
        assert_eq!(props(&message)["ad_tracking_enabled"], true);
    }
);
mapping_test!(
    push_open,
    "users.messages.pushnotification.Open",
    "Push Notification Tapped",
    |_event, message| {
        assert_eq!(
            message["context"]["device"],
            json!({"id": "device-002", "model": "iPhone 15", "type": "ios"})
        );
        assert_eq!(message["context"]["os"]["version"], "iOS 18.1");
    }
);
mapping_test!(
    push_bounce,
    "users.messages.pushnotification.Bounce",
    "Push Notification Bounced",
    |_e, message| {
        assert_eq!(props(&message)["canvas_step_id"], "step-3");
        assert_eq!(props(&message)["platform"], "android");
    }
);
mapping_test!(
    push_ios_foreground,
    "users.messages.pushnotification.IosForeground",
    "Ios Foreground Push Opened",
    |_e, message| {
        assert_eq!(message["context"]["device"]["model"], "iPhone 14");
    }
);
mapping_test!(email_send, "users.messages.email.Send", "Email Sent", |_e, message| {
    assert_eq!(message["context"]["traits"]["email"], "ada.lovelace@example.com");
});
mapping_test!(
    email_delivery,
    "users.messages.email.Delivery",
    "Email Delivered",
    |_e, message| {
        assert_eq!(message["context"]["traits"]["email"], "ada.lovelace@example.com");
        assert_eq!(props(&message)["dispatch_id"], "disp-6");
    }
);
mapping_test!(
    email_open,
    "users.messages.email.Open",
    "Email Opened",
    |_e, message| {
        assert_eq!(props(&message)["is_amp"], false, "booleans stay booleans");
        assert_eq!(props(&message)["machine_open"], "true");
        assert_eq!(message["context"]["device"]["model"], "iPhone");
    }
);
mapping_test!(
    email_click,
    "users.messages.email.Click",
    "Email Link Clicked",
    |_e, message| {
        assert_eq!(props(&message)["link_url"], "https://shop.example.com/sale?utm=1");
        assert!(props(&message).get("url").is_none());
        assert_eq!(
            props(&message)["suspected_bot_click_reason"],
            json!(["user_agent", "ip_address"])
        );
        assert_eq!(props(&message)["link_alias"], "hero");
    }
);
mapping_test!(
    email_bounce,
    "users.messages.email.Bounce",
    "Email Bounced",
    |_e, message| {
        assert_eq!(props(&message)["is_drop"], false);
    }
);
mapping_test!(
    email_soft_bounce,
    "users.messages.email.SoftBounce",
    "Email Soft Bounced"
);
mapping_test!(
    email_mark_as_spam,
    "users.messages.email.MarkAsSpam",
    "Email Marked as Spam",
    |_e, message| {
        assert_eq!(props(&message)["user_agent"], "Mozilla/5.0 (Windows NT 10.0)");
    }
);
mapping_test!(
    email_unsubscribe,
    "users.messages.email.Unsubscribe",
    "Unsubscribed",
    |_e, message| {
        assert_eq!(props(&message)["canvas_variation_id"], "cv-12");
    }
);
mapping_test!(sms_send, "users.messages.sms.Send", "SMS Sent", |_e, message| {
    assert_eq!(message["context"]["traits"]["phone"], "+15550100199");
    assert!(props(&message).get("to_phone_number").is_none());
    assert_eq!(props(&message)["subscription_group_id"], "sg-sms");
});
mapping_test!(
    sms_carrier_send,
    "users.messages.sms.CarrierSend",
    "SMS Sent to Carrier",
    |_e, message| {
        assert_eq!(props(&message)["from_phone_number"], "+15550100000");
    }
);
mapping_test!(sms_delivery, "users.messages.sms.Delivery", "SMS Delivered");
mapping_test!(
    sms_delivery_failure,
    "users.messages.sms.DeliveryFailure",
    "SMS Delivery Failed"
);
mapping_test!(
    sms_rejection,
    "users.messages.sms.Rejection",
    "SMS Rejected",
    |_e, message| {
        assert_eq!(props(&message)["is_sms_fallback"], true);
    }
);
mapping_test!(
    sms_inbound_receive,
    "users.messages.sms.InboundReceive",
    "SMS Inbound Received",
    |_e, message| {
        assert!(message.get("anonymousId").is_none(), "inbound SMS may lack user_id");
        assert_eq!(message["context"]["traits"]["phone"], "+15550100199");
        assert_eq!(
            props(&message)["media_urls"],
            json!(["https://media.example.com/1.jpg"])
        );
    }
);
mapping_test!(
    subscription_state_change,
    "users.behaviors.subscriptiongroup.StateChange",
    "Subscription Group State Changed",
    |_e, message| {
        assert_eq!(props(&message)["subscription_status"], "Unsubscribed");
        assert_eq!(props(&message)["subscription_group_id"], "sg-news");
        assert_eq!(message["context"]["traits"]["email"], "ada.lovelace@example.com");
    }
);
mapping_test!(
    iam_impression,
    "users.messages.inappmessage.Impression",
    "In-App Message Viewed",
    |_e, message| {
        assert_eq!(props(&message)["card_id"], "iam-card-1");
    }
);
mapping_test!(
    iam_click,
    "users.messages.inappmessage.Click",
    "In-App Message Clicked",
    |_e, message| {
        assert_eq!(props(&message)["button_id"], "0");
        assert_eq!(message["context"]["device"]["type"], "android");
    }
);
mapping_test!(
    content_card_send,
    "users.messages.contentcard.Send",
    "Content Card Sent",
    |_e, message| {
        assert_eq!(props(&message)["card_id"], "cc-42");
        assert!(props(&message).get("content_card_id").is_none());
    }
);
mapping_test!(
    content_card_impression,
    "users.messages.contentcard.Impression",
    "Content Card Viewed"
);
mapping_test!(
    content_card_click,
    "users.messages.contentcard.Click",
    "Content Card Clicked"
);
mapping_test!(
    content_card_dismiss,
    "users.messages.contentcard.Dismiss",
    "Content Card Dismissed",
    |_e, message| {
        assert_eq!(props(&message)["card_id"], "cc-42");
    }
);
mapping_test!(
    custom_event,
    "users.behaviors.CustomEvent",
    "Upgraded Plan",
    |_e, message| {
        assert_eq!(props(&message)["name"], "Upgraded Plan");
        assert_eq!(props(&message)["seats"], 3, "custom properties at the top level");
        assert!(props(&message).get("custom_properties").is_none());
        assert_eq!(message["context"]["device"]["type"], "ios");
    }
);
mapping_test!(purchase, "users.behaviors.Purchase", "Purchased", |_e, message| {
    assert_eq!(props(&message)["price"], 19.99);
    assert_eq!(props(&message)["product_id"], "sku-1001");
    assert_eq!(props(&message)["gift"], true, "purchase properties at the top level");
});
mapping_test!(
    session_start,
    "users.behaviors.app.SessionStart",
    "Session Started",
    |_e, message| {
        assert_eq!(props(&message)["session_id"], "sess-28");
        assert_eq!(message["context"]["device"]["model"], "iPhone 15");
    }
);
mapping_test!(
    webhook_send,
    "users.messages.webhook.Send",
    "Webhook Sent",
    |_e, message| {
        assert_eq!(
            message["context"]["timezone"], "Europe/Berlin",
            "top-level timezone is read"
        );
    }
);
mapping_test!(
    campaign_conversion,
    "users.campaigns.Conversion",
    "Campaign Converted",
    |event, message| {
        assert_eq!(
            props(&message)["conversion_behavior"],
            event["properties"]["conversion_behavior"]
        );
        assert_eq!(props(&message)["conversion_behavior_index"], 0);
    }
);
mapping_test!(canvas_conversion, "users.canvas.Conversion", "Canvas Converted");
mapping_test!(canvas_entry, "users.canvas.Entry", "Canvas Entered", |_e, message| {
    assert_eq!(props(&message)["in_control_group"], true);
});
mapping_test!(
    campaign_enroll_in_control,
    "users.campaigns.EnrollInControl",
    "Campaign Control Group Entered"
);
mapping_test!(uninstall, "users.behaviors.Uninstall", "Application Uninstalled");
mapping_test!(
    whatsapp_send,
    "users.messages.whatsapp.Send",
    "WhatsApp Sent",
    |_e, message| {
        assert_eq!(message["context"]["traits"]["phone"], "+15550100199");
        assert_eq!(props(&message)["template_name"], "spring_sale");
    }
);
mapping_test!(whatsapp_read, "users.messages.whatsapp.Read", "WhatsApp Read");
mapping_test!(line_send, "users.messages.line.Send", "Sent", |_e, message| {
    assert_eq!(props(&message)["line_channel_id"], "line-channel-id-37");
});
mapping_test!(rcs_send, "users.messages.rcs.Send", "Sent", |_e, message| {
    assert_eq!(message["context"]["traits"]["phone"], "+15550100199");
});
mapping_test!(rcs_delivery, "users.messages.rcs.Delivery", "Delivered");
mapping_test!(
    banner_impression,
    "users.messages.banner.Impression",
    "Banner Viewed",
    |_e, message| {
        assert_eq!(message["context"]["device"]["model"], "iPhone 15");
        assert_eq!(props(&message)["banner_placement_id"], "banner-placement-id-40");
    }
);
mapping_test!(
    feature_flag_impression,
    "users.messages.featureflag.Impression",
    "Feature Flag Experiment Impressed"
);
mapping_test!(
    live_activity_send,
    "users.messages.liveactivity.Send",
    "Live Activity Sent",
    |_e, message| {
        assert_eq!(props(&message)["activity_id"], "activity-id-42");
    }
);
mapping_test!(
    webhook_failure,
    "users.messages.webhook.Failure",
    "Webhook Failed",
    |_e, message| {
        assert_eq!(props(&message)["http_status_code"], 503);
        assert_eq!(props(&message)["raw_response"], r#"{"error":"busy"}"#);
    }
);
mapping_test!(
    sms_short_link_click,
    "users.messages.sms.ShortLinkClick",
    "SMS Short Link Clicked",
    |_e, message| {
        assert_eq!(message["context"]["traits"]["phone"], "+15550100199");
        assert_eq!(props(&message)["short_url"], "https://brz.ai/abc123");
    }
);
mapping_test!(
    session_end,
    "users.behaviors.app.SessionEnd",
    "Session Ended",
    |_e, message| {
        assert_eq!(props(&message)["duration"], 42.5);
        assert_eq!(message["context"]["device"]["type"], "ios");
    }
);
mapping_test!(first_session, "users.behaviors.app.FirstSession", "First Session");
mapping_test!(location, "users.behaviors.Location", "Location", |_e, message| {
    assert_eq!(props(&message)["latitude"], 40.7128);
});
mapping_test!(
    install_attribution,
    "users.behaviors.InstallAttribution",
    "Install Attribution",
    |_e, message| {
        assert_eq!(props(&message)["source"], "google_ads");
    }
);
mapping_test!(
    push_token_state_change,
    "users.behaviors.pushnotification.TokenStateChange",
    "Push Notification Token State Changed",
    |_e, message| {
        assert_eq!(props(&message)["push_token_state_change_type"], "add");
    }
);
mapping_test!(
    live_activity_push_to_start_token_change,
    "users.behaviors.liveactivity.PushToStartTokenChange",
    "Live Activity Push To Start Token Changed"
);
mapping_test!(
    live_activity_update_token_change,
    "users.behaviors.liveactivity.UpdateTokenChange",
    "Live Activity Update Token Changed"
);
mapping_test!(
    global_subscription_state_change,
    "users.behaviors.subscription.GlobalStateChange",
    "Global Subscription State Changed",
    |_e, message| {
        assert_eq!(message["context"]["traits"]["email"], "grace.hopper@example.com");
    }
);
mapping_test!(
    canvas_exit_matched_audience,
    "users.canvas.exit.MatchedAudience",
    "Exit Matched Audience"
);
mapping_test!(
    canvas_experiment_split_entry,
    "users.canvas.experimentstep.SplitEntry",
    "Experiment Split Entered"
);
mapping_test!(
    canvas_step_progression,
    "users.canvasstep.Progression",
    "Canvas Step Progression"
);

/// The News Feed events of Braze's older table, as the fixture had them before it moved on to
/// the customer-behavior events.
fn news_feed_events() -> [Value; 3] {
    let user = |n: u32| {
        json!({"user_id": format!("5f1a000000000000000000{n:02x}"), "external_user_id": format!("user-0{n}"),
               "device_id": format!("device-0{n}"), "timezone": "America/Chicago"})
    };
    let properties = json!({"app_id": "app-ios", "card_id": "nf-7", "platform": "ios", "os_version": "iOS 12.0",
                            "device_model": "iPhone X"});
    let mut impression = json!({"event_type": "users.behaviors.app.NewsFeedImpression", "id": "nf-26",
                                "time": 1_764_001_560, "user": user(26), "properties": properties});
    impression["properties"].as_object_mut().unwrap().remove("card_id");
    [
        impression,
        json!({"event_type": "users.messages.newsfeedcard.Impression", "id": "nf-27", "time": 1_764_001_620,
               "user": user(27), "properties": properties}),
        json!({"event_type": "users.messages.newsfeedcard.Click", "id": "nf-28", "time": 1_764_001_680,
               "user": user(28), "properties": properties}),
    ]
}

#[test]
fn news_feed_events_have_no_segment_tab_so_only_legacy_naming_sends_them() {
    let events = news_feed_events();
    let (messages, report) = map_with(&config(&[]), &events);
    assert!(messages.is_empty());
    assert_eq!(
        report["skipped"],
        json!([
            [0, "unknown_event_type"],
            [1, "unknown_event_type"],
            [2, "unknown_event_type"]
        ])
    );
    let (messages, report) = map_with(&config(&[("EVENT_NAMING", "legacy")]), &events);
    assert_eq!(messages.len(), 3, "{report}");
    let names = ["News Feed Viewed", "News Feed Card Viewed", "News Feed Card Clicked"];
    for ((event, message), name) in events.iter().zip(&messages).zip(names) {
        assert_contract(event, message, name);
    }
    assert_eq!(props(&messages[1])["card_id"], "nf-7");
}

#[test]
fn every_fixture_type_is_covered_by_a_test_above() {
    // One `mapping_test!` above per fixture event: keep this count in step with them.
    let events = all_events();
    assert_eq!(events.len(), 55);
    let (messages, report) = map_with(&config(&[]), &events);
    assert_eq!(messages.len(), events.len(), "{report}");
}

#[test]
fn braze_documented_segment_properties_come_through() {
    let (messages, _) = map_with(&config(&[]), &all_events());
    let documented = [
        "app_id",
        "send_id",
        "dispatch_id",
        "campaign_id",
        "campaign_name",
        "message_variation_id",
        "canvas_id",
        "canvas_name",
        "canvas_variation_id",
        "canvas_step_id",
        "in_control_group",
        "link_url",
        "button_id",
        "card_id",
        "subscription_group_id",
        "subscription_status",
    ];
    for name in documented {
        assert!(
            messages.iter().any(|m| m["properties"].get(name).is_some()),
            "{name} appears somewhere"
        );
    }
}

#[test]
fn the_mixed_batch_sorts_each_event_into_one_place() {
    let body = fixture("mixed-batch.json");
    let config = config(&[]);
    let raw = parse_body(&body).unwrap();
    let out = transform(&raw, &config.routing, config.routing.find("default").unwrap());
    assert_eq!(out.total(), raw.len());
    assert_eq!(out.messages.len(), 2);
    let skipped: Vec<(usize, &str)> = out.skipped.iter().map(|s| (s.index, s.reason.as_str())).collect();
    assert_eq!(skipped, [(1, "no_external_user_id"), (2, "unknown_event_type")]);
    let invalid: Vec<(usize, &str)> = out.invalid.iter().map(|i| (i.index, i.error.code)).collect();
    assert_eq!(
        invalid,
        [
            (3, "missing_time"),
            (4, "malformed_event"),
            (5, "invalid_time"),
            (6, "malformed_event"),
            (7, "message_too_large"),
            (8, "malformed_event")
        ]
    );
}

#[test]
fn include_anonymous_sends_anonymous_users_with_anonymous_id_only() {
    let mut event = event_of("users.messages.email.Send");
    event["user"].as_object_mut().unwrap().remove("external_user_id");
    let (skipped, report) = map_with(&config(&[]), std::slice::from_ref(&event));
    assert!(skipped.is_empty());
    assert_eq!(report["skipped"], json!([[0, "no_external_user_id"]]));
    let (sent, _) = map_with(&config(&[("INCLUDE_ANONYMOUS", "true")]), std::slice::from_ref(&event));
    assert!(sent[0].get("userId").is_none());
    assert_eq!(sent[0]["anonymousId"], event["user"]["user_id"]);
    event["user"].as_object_mut().unwrap().remove("user_id");
    let (_, report) = map_with(&config(&[("INCLUDE_ANONYMOUS", "true")]), &[event]);
    assert_eq!(
        report["invalid"],
        json!([[0, "no_identity"]]),
        "Segment would silently drop it"
    );
}

#[test]
fn event_names_override_and_extend_and_event_types_filter() {
    let mut custom = event_of("users.messages.email.Send");
    custom["event_type"] = json!("users.messages.rcs.Send");
    let events = [
        event_of("users.messages.email.Send"),
        custom,
        event_of("users.messages.sms.Send"),
    ];
    let config = config(&[
        (
            "EVENT_NAMES",
            r#"{"users.messages.email.Send":"Email Went Out","users.messages.rcs.Send":"RCS Sent"}"#,
        ),
        ("EVENT_TYPES", "users.messages.email.Send, users.messages.rcs.Send"),
    ]);
    let (messages, report) = map_with(&config, &events);
    let names: Vec<&str> = messages.iter().map(|m| m["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["Email Went Out", "RCS Sent"]);
    assert_eq!(report["skipped"], json!([[2, "event_type_not_selected"]]));
}

#[test]
fn newer_connector_events_have_names_too() {
    let mut event = event_of("users.messages.email.Send");
    event["event_type"] = json!("users.behaviors.subscription.GlobalStateChange");
    assert_eq!(map_one(&event)["event"], "Global Subscription State Changed");
}

#[test]
fn integrations_option_is_copied_into_every_message() {
    let config = config(&[(
        "INTEGRATIONS",
        r#"{"All":true,"Braze Cloud Mode (Actions)":false,"Braze":false}"#,
    )]);
    let (messages, _) = map_with(&config, &all_events());
    assert!(
        messages
            .iter()
            .all(|m| m["integrations"]["Braze"] == false && m["integrations"]["All"] == true)
    );
    let (plain, _) = map_with(&common::config(&[]), &all_events());
    assert!(
        plain.iter().all(|m| m.get("integrations").is_none()),
        "default: all destinations"
    );
}

#[test]
fn long_message_ids_and_odd_shapes_are_dead_lettered_not_sent() {
    let mut long_id = event_of("users.messages.email.Send");
    long_id["id"] = json!("x".repeat(100));
    let mut string_time = event_of("users.messages.email.Send");
    string_time["time"] = json!("1764000000");
    let mut props_array = event_of("users.messages.email.Send");
    props_array["properties"] = json!([1, 2]);
    let (messages, report) = map_with(&config(&[]), &[long_id, string_time, props_array]);
    assert!(messages.is_empty());
    assert_eq!(
        report["invalid"],
        json!([[0, "message_id_too_long"], [1, "invalid_time"], [2, "malformed_event"]])
    );
}

#[test]
fn unknown_fields_anywhere_never_fail_an_event() {
    let mut event = event_of("users.messages.email.Open");
    event["brand_new_field"] = json!({"nested": [1, 2]});
    event["user"]["new_user_field"] = json!("x");
    event["properties"]["new_property"] = json!(null);
    let message = map_one(&event);
    assert_eq!(message["properties"]["new_property"], Value::Null);
}
