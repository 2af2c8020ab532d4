//! Any request body through the pure path: it must never panic, every event must land in one
//! list, and every message must be valid JSON within Segment's limits.

use currents_segment::config::Config;
use currents_segment::transform::transform_body;

fn main() {
    let config = Config::from_lookup(|key| match key {
        "SEGMENT_WRITE_KEY" => Some("fuzz".to_owned()),
        "INCLUDE_ANONYMOUS" => Some("true".to_owned()),
        "PII_MODE" => Some("hash".to_owned()),
        _ => None,
    })
    .expect("static configuration");
    afl::fuzz!(|data: &[u8]| {
        if let Ok(out) = transform_body(data, &config.routing, config.routing.find("default").unwrap()) {
            for message in &out.messages {
                let value: serde_json::Value = serde_json::from_str(&message.json).expect("messages are JSON");
                assert!(value["userId"].is_string() || value["anonymousId"].is_string());
                assert!(message.json.len() <= currents_segment::limits::SEGMENT_MAX_MESSAGE_BYTES);
            }
        }
    });
}
