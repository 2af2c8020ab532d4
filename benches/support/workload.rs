//! A reproducible Currents workload for the benchmarks: every one of the 34 classic event
//! types appears, the mix is mostly email and push (as in real exports), and events average
//! about 1.2 KB. Written for this project; a fixed seed makes every run identical.

use serde_json::{Value, json};

/// (event_type, weight in percent of the mix after the first 34 events).
const MIX: &[(&str, u32)] = &[
    ("users.messages.email.Send", 14),
    ("users.messages.email.Delivery", 13),
    ("users.messages.email.Open", 12),
    ("users.messages.email.Click", 6),
    ("users.messages.pushnotification.Send", 12),
    ("users.messages.pushnotification.Open", 5),
    ("users.messages.sms.Send", 5),
    ("users.messages.sms.Delivery", 4),
    ("users.messages.inappmessage.Impression", 7),
    ("users.messages.inappmessage.Click", 3),
    ("users.messages.contentcard.Send", 6),
    ("users.messages.contentcard.Impression", 7),
    ("users.messages.contentcard.Click", 3),
    ("users.campaigns.Conversion", 2),
    ("users.canvas.Entry", 1),
];

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
];

struct Gen(fastrand::Rng);

impl Gen {
    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from_digit(self.0.u32(..16), 16).unwrap())
            .collect()
    }
    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-a{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.hex(3),
            self.hex(12)
        )
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.0.usize(..items.len())]
    }
}

fn classic_types() -> Vec<&'static str> {
    currents_segment::mapping::EVENT_NAMES[..currents_segment::mapping::CLASSIC_EVENT_COUNT]
        .iter()
        .map(|(t, _)| *t)
        .collect()
}

fn properties(g: &mut Gen, event_type: &str) -> Value {
    let mut p = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        p.insert(k.to_owned(), v);
    };
    put("app_group_id", json!("6f1a2c3e-9b8d-4c5e-a1f2-0d9e8c7b6a54"));
    put("dispatch_id", json!(g.hex(24)));
    put("send_id", json!(g.uuid()));
    if g.0.bool() {
        put("campaign_id", json!(g.uuid()));
        put("campaign_name", json!(format!("Spring Sale 2026 #{}", g.0.u32(..40))));
        put("message_variation_id", json!(g.uuid()));
        put(
            "message_variation_name",
            json!(g.pick(&["Variant A", "Variant B", "Control"])),
        );
    } else {
        put("canvas_id", json!(g.uuid()));
        put("canvas_name", json!(format!("Onboarding Journey v{}", g.0.u32(..25))));
        put("canvas_step_id", json!(g.uuid()));
        put(
            "canvas_step_name",
            json!(g.pick(&["Step 1 - Email", "Step 2 - Push", "Delay then SMS"])),
        );
        put("canvas_variation_id", json!(g.uuid()));
        put("canvas_variation_name", json!(g.pick(&["Variant 1", "Variant 2"])));
    }
    let channel = event_type.split('.').nth(2).unwrap_or("");
    match channel {
        "email" => {
            put(
                "email_address",
                json!(format!("user{}@example.com", g.0.u32(..100_000))),
            );
            put("esp", json!("sendgrid"));
            put("from_domain", json!("mail.example.com"));
            put("ip_pool", json!("marketing"));
            put("sending_ip", json!("192.0.2.17"));
            put("message_extras", json!("{\"promo\":\"SPRING26\",\"tier\":\"gold\"}"));
            if event_type.ends_with("Open") || event_type.ends_with("Click") {
                put("user_agent", json!(g.pick(USER_AGENTS)));
                put("browser", json!("Safari"));
                put("device_class", json!("mobile"));
                put("device_model", json!("iPhone"));
                put("mailbox_provider", json!("Gmail"));
                put("is_amp", json!(false));
            }
            if event_type.ends_with("Click") {
                put(
                    "url",
                    json!(format!(
                        "https://shop.example.com/p/{}?utm_source=braze&utm_campaign=spring",
                        g.hex(10)
                    )),
                );
                put("link_id", json!(g.hex(8)));
                put("is_suspected_bot_click", json!(false));
                put("suspected_bot_click_reason", json!([]));
            }
        }
        "pushnotification" | "inappmessage" | "contentcard" | "newsfeedcard" => {
            put("app_id", json!(g.uuid()));
            put("platform", json!(g.pick(&["ios", "android", "web"])));
            put("device_model", json!(g.pick(&["iPhone 15 Pro", "Pixel 8", "SM-S918B"])));
            put("os_version", json!(g.pick(&["iOS 17.4.1", "Android 14"])));
            put("ad_id", json!(g.uuid()));
            put("ad_id_type", json!("ios_idfa"));
            put("ad_tracking_enabled", json!(true));
            put("push_token", json!(g.hex(64)));
            put("message_extras", json!("{\"deep_link\":\"app://offers/spring\"}"));
            if channel == "contentcard" {
                put("content_card_id", json!(g.hex(24)));
            }
        }
        "sms" => {
            put("to_phone_number", json!(format!("+1555{:07}", g.0.u32(..10_000_000))));
            put("from_phone_number", json!("+15550100000"));
            put("subscription_group_id", json!(g.uuid()));
            put("category", json!("marketing"));
            put("is_sms_fallback", json!(false));
            put("media_urls", json!(["https://media.example.com/spring.jpg"]));
        }
        _ => {
            put("app_id", json!(g.uuid()));
            put(
                "conversion_behavior",
                json!("{\"type\":\"purchase\",\"product_id\":\"sku-123\"}"),
            );
            put("conversion_behavior_index", json!(0));
            put("in_control_group", json!(false));
            put("subscription_group_id", json!(g.uuid()));
            put("subscription_status", json!("Subscribed"));
        }
    }
    Value::Object(p)
}

/// `count` events, the first 34 covering every classic type, then the weighted mix.
pub fn events(count: usize) -> Vec<Value> {
    let mut g = Gen(fastrand::Rng::with_seed(0x5eed));
    let classic = classic_types();
    let total: u32 = MIX.iter().map(|(_, w)| w).sum();
    (0..count)
        .map(|i| {
            let event_type = if i < classic.len() {
                classic[i]
            } else {
                let mut roll = g.0.u32(..total);
                MIX.iter()
                    .find(|(_, w)| {
                        if roll < *w {
                            true
                        } else {
                            roll -= w;
                            false
                        }
                    })
                    .unwrap()
                    .0
            };
            json!({
                "event_type": event_type,
                "id": g.uuid(),
                "time": 1_764_000_000 + i as i64,
                "user": {
                    "user_id": g.hex(24),
                    "external_user_id": format!("user-{}", g.0.u32(..1_000_000)),
                    "device_id": g.uuid(),
                    "timezone": g.pick(&["Europe/Paris", "America/New_York", "Asia/Tokyo"]),
                },
                "properties": properties(&mut g, event_type),
            })
        })
        .collect()
}

/// A Currents request body of `count` events.
pub fn body(count: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({ "events": events(count) })).unwrap()
}
