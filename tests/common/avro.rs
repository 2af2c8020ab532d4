//! Avro fixtures written by the tests with `apache-avro`, from the field tables of Braze's
//! storage schemas: one family per event type, nullable unions (`["null", T]`, null first,
//! default null), required bare types, and each record's HTTP-shaped twin built by hand from
//! the documented correspondence (user fields into `user`, custom/purchase `properties`
//! parsed and renamed, banner variation ids renamed, nulls left out).
#![allow(dead_code)]

use apache_avro::types::Value as Avro;
use apache_avro::{Codec, DeflateSettings, Schema, Writer};
use serde_json::{Map, Value, json};

/// Common groups of the reference tables, as field notation.
const CMP: &str = "campaign_id campaign_name message_variation_id message_variation_name";
const CNV: &str = "canvas_id canvas_name canvas_variation_id canvas_variation_name canvas_step_id canvas_step_name";
const DEV: &str = "platform os_version device_model";
const AD: &str = "ad_id ad_id_type ad_tracking_enabled:boolean";
const DEMO: &str = "gender country language";
const BASE: &str = "id! user_id! external_user_id time:int! app_group_id";

/// One event type and its fields. Notation: `name` optional string, `name!` required string,
/// `name:T` optional T, `name:T!` required T; T in int, long, float, boolean, as (array of
/// strings), asn (array of nullable strings).
pub struct Family {
    pub event_type: &'static str,
    pub fields: String,
}

fn family(event_type: &'static str, parts: &[&str]) -> Family {
    Family {
        event_type,
        fields: parts.join(" "),
    }
}

/// One type from every family of the storage export (agent console, users, behaviors,
/// campaigns, canvas, canvas steps, and each message channel).
pub fn families() -> Vec<Family> {
    vec![
        family(
            "agentconsole.ToolInvocation",
            &[
                "id! time:long! tool_call_id! duration:int! agent_id! agent_name! is_error:boolean! tool_name! tool_arguments! invocation_source request_id",
            ],
        ),
        family(
            "agentconsole.AgentExecuted",
            &[
                "id! user_id external_user_id time:long!",
                CNV,
                "invocation_id! request_id! duration:int! total_tokens:int! agent_id! agent_name! model_provider! model_name! cache_hit:boolean! is_error:boolean! input output",
            ],
        ),
        family(
            "users.RandomBucketNumberUpdate",
            &[BASE, "random_bucket_number:int! prev_random_bucket_number:int"],
        ),
        family("users.UserDeleteRequest", &["id! user_id! time:int! app_group_id"]),
        family("users.UserOrphan", &[BASE, "device_id app_id orphaned_by_id!"]),
        family(
            "users.profile.Update",
            &[
                BASE,
                "timezone",
                DEMO,
                "time_ms:long! app_id update_source! archived:boolean first_name email_address phone_number custom_attributes",
            ],
        ),
        family(
            "users.behaviors.CustomEvent",
            &[BASE, "timezone device_id", DEV, AD, "app_id name! properties!"],
        ),
        family(
            "users.behaviors.Purchase",
            &[
                BASE,
                "device_id",
                DEV,
                AD,
                "app_id product_id! price:float! currency! properties!",
            ],
        ),
        family(
            "users.behaviors.Location",
            &[
                BASE,
                "device_id",
                DEV,
                AD,
                "app_id! latitude:float! longitude:float! altitude:float",
            ],
        ),
        family("users.behaviors.Uninstall", &[BASE, "device_id app_id!"]),
        family(
            "users.behaviors.app.SessionEnd",
            &[BASE, "device_id", DEV, "app_id! duration:float session_id!"],
        ),
        family(
            "users.behaviors.liveactivity.UpdateTokenChange",
            &[
                BASE,
                "device_id activity_id update_token sdk_version ios_push_token_apns_gateway:int app_id",
            ],
        ),
        family(
            "users.behaviors.pushnotification.TokenStateChange",
            &[
                BASE,
                "app_id time_ms:long platform push_token push_token_created_at:int push_token_provisionally_opted_in:boolean",
            ],
        ),
        family(
            "users.behaviors.subscription.GlobalStateChange",
            &[
                BASE,
                "timezone campaign_id campaign_name message_variation_id",
                CNV,
                "email_address state_change_source subscription_status! channel app_id send_id",
            ],
        ),
        family(
            "users.behaviors.subscriptiongroup.StateChange",
            &[
                BASE,
                "timezone",
                CMP,
                CNV,
                "email_address phone_number app_id subscription_group_id! subscription_status! channel send_id",
            ],
        ),
        family(
            "users.campaigns.Conversion",
            &[
                BASE,
                "timezone campaign_id! campaign_name message_variation_id message_variation_name app_id send_id conversion_behavior_index:int conversion_behavior",
            ],
        ),
        family(
            "users.canvas.Entry",
            &[
                BASE,
                "timezone canvas_id! canvas_name canvas_variation_id! canvas_variation_name canvas_step_id canvas_step_name in_control_group:boolean!",
            ],
        ),
        family(
            "users.canvas.experimentstep.SplitEntry",
            &[
                "id! user_id! external_user_id time:int!",
                CNV,
                "experiment_step_id experiment_split_id in_control_group:boolean!",
            ],
        ),
        family(
            "users.canvasstep.Progression",
            &[
                BASE,
                "device_id",
                CNV,
                "progression_type! is_canvas_entry:boolean exit_reason canvas_entry_id! next_step_id",
            ],
        ),
        family(
            "users.messages.banner.Click",
            &[
                BASE,
                "timezone device_id",
                CMP,
                CNV,
                "canvas_step_message_variation_id",
                DEV,
                AD,
                DEMO,
                "app_id sdk_version resolution carrier browser button_id banner_placement_id",
            ],
        ),
        family(
            "users.messages.contentcard.Send",
            &[
                BASE,
                "timezone device_id",
                CMP,
                CNV,
                "content_card_id! send_id message_extras",
            ],
        ),
        family(
            "users.messages.email.Open",
            &[
                BASE,
                "timezone",
                CMP,
                CNV,
                "dispatch_id email_address! send_id user_agent machine_open esp is_amp:boolean device_class",
            ],
        ),
        family(
            "users.messages.email.Click",
            &[
                BASE,
                "timezone",
                CMP,
                CNV,
                "dispatch_id email_address! url send_id link_alias is_suspected_bot_click:boolean suspected_bot_click_reason:as",
            ],
        ),
        family(
            "users.messages.featureflag.Impression",
            &[
                BASE,
                "timezone device_id",
                CMP,
                CNV,
                "canvas_step_message_variation_id",
                DEV,
                DEMO,
                "app_id feature_flag_id_name",
            ],
        ),
        family(
            "users.messages.inappmessage.Click",
            &[
                BASE,
                "timezone device_id",
                CMP,
                CNV,
                DEV,
                AD,
                "app_id! card_id button_id send_id",
            ],
        ),
        family(
            "users.messages.line.Send",
            &[
                BASE,
                "timezone device_id campaign_id campaign_name message_variation_id canvas_id canvas_variation_id canvas_step_id canvas_step_name canvas_step_message_variation_id dispatch_id line_channel_id! line_channel_name! message_extras native_line_id! send_id subscription_group_id",
            ],
        ),
        family(
            "users.messages.liveactivity.Send",
            &[
                BASE,
                "activity_id activity_attributes_type push_to_start_token update_token live_activity_event_type app_id",
            ],
        ),
        family(
            "users.messages.pushnotification.Send",
            &[
                BASE,
                "timezone device_id",
                CMP,
                CNV,
                AD,
                "app_id! platform! send_id dispatch_id message_extras push_token",
            ],
        ),
        family(
            "users.messages.rcs.InboundReceive",
            &[
                "id! user_id external_user_id time:int! app_group_id",
                CMP,
                CNV,
                "action! media_urls:asn send_id user_phone_number! message_body! to_rcs_sender!",
            ],
        ),
        family(
            "users.messages.sms.Delivery",
            &[
                BASE,
                "timezone",
                CMP,
                CNV,
                "dispatch_id to_phone_number subscription_group_id from_phone_number send_id is_sms_fallback:boolean",
            ],
        ),
        family(
            "users.messages.webhook.Failure",
            &[
                BASE,
                CMP,
                CNV,
                "http_status_code:int endpoint_url content_length:int retry_count:int is_terminal:boolean",
            ],
        ),
        family(
            "users.messages.whatsapp.Send",
            &[
                "id! user_id! external_user_id time:long! app_group_id timezone device_id",
                CMP,
                CNV,
                "to_phone_number from_phone_number! subscription_group_id dispatch_id message_extras send_id template_name message_id",
            ],
        ),
    ]
}

/// A parsed field: name, Avro type name, required.
#[derive(Clone)]
pub struct Field {
    pub name: String,
    pub kind: String,
    pub required: bool,
}

pub fn fields(notation: &str) -> Vec<Field> {
    notation
        .split_whitespace()
        .map(|token| {
            let required = token.ends_with('!');
            let token = token.trim_end_matches('!');
            let (name, kind) = token.split_once(':').unwrap_or((token, "string"));
            Field {
                name: name.to_owned(),
                kind: kind.to_owned(),
                required,
            }
        })
        .collect()
}

fn avro_type(kind: &str) -> Value {
    match kind {
        "as" => json!({"type": "array", "items": "string"}),
        "asn" => json!({"type": "array", "items": ["null", "string"]}),
        other => json!(other),
    }
}

/// The schema Braze would embed: record named after the type's last part, in
/// `dataexport.S3.inner.<rest>`; optional fields `["null", T]` with `"default": null`.
/// `extra` adds an optional field a newer schema version might carry.
pub fn schema(family: &Family, extra: Option<&str>) -> Schema {
    let (namespace, name) = family.event_type.rsplit_once('.').unwrap();
    let mut list: Vec<Value> = fields(&family.fields)
        .iter()
        .map(|f| {
            if f.required {
                json!({"name": f.name, "type": avro_type(&f.kind)})
            } else {
                json!({"name": f.name, "type": ["null", avro_type(&f.kind)], "default": null})
            }
        })
        .collect();
    if let Some(extra) = extra {
        list.push(json!({"name": extra, "type": ["null", "string"], "default": null}));
    }
    let schema = json!({"type": "record", "name": name, "namespace": format!("dataexport.S3.inner.{namespace}"),
        "doc": "test fixture", "owner": "@test", "fields": list});
    Schema::parse_str(&schema.to_string()).expect("fixture schema parses")
}

/// The plain value of field `f` in record `i` (before any union wrapping), or `None` for a
/// null. Optional fields are null in every third record so both union branches appear.
pub fn value(event_type: &str, f: &Field, i: usize) -> Option<Value> {
    if !f.required && i % 3 == 2 {
        return None;
    }
    Some(match (f.name.as_str(), f.kind.as_str()) {
        ("id", _) => json!(format!("{}-{i}", short_type(event_type))),
        ("time", _) => json!(1_764_000_000 + i as i64 * 60),
        ("user_id", _) => json!(format!("5f{:022x}", i)),
        ("external_user_id", _) => json!(format!("user-{i}")),
        ("timezone", _) => json!("America/Chicago"),
        ("email_address", _) => json!(format!("person{i}@example.com")),
        ("to_phone_number" | "user_phone_number" | "phone_number", _) => json!("+15550100199"),
        ("properties", _) => json!(format!("{{\"plan\":\"gold\",\"seats\":{i}}}")),
        ("machine_open", _) => json!("true"),
        (_, "int") => json!(7 + i as i64),
        (_, "long") => json!(1_764_000_000_123_i64 + i as i64),
        (_, "float") => json!(1.1),
        (_, "boolean") => json!(i.is_multiple_of(2)),
        (_, "as") => json!(["a", "b"]),
        (_, "asn") => json!(["https://example.com/m.png"]),
        (name, _) => json!(format!("{name}-{i}")),
    })
}

/// The last two parts of a type, which tell every fixture type apart: `email.Open`.
pub fn short_type(event_type: &str) -> String {
    let parts: Vec<&str> = event_type.rsplitn(3, '.').collect();
    format!("{}.{}", parts[1], parts[0])
}

fn to_avro(kind: &str, value: &Value) -> Avro {
    match kind {
        "int" => Avro::Int(value.as_i64().unwrap() as i32),
        "long" => Avro::Long(value.as_i64().unwrap()),
        "float" => Avro::Float(value.as_f64().unwrap() as f32),
        "boolean" => Avro::Boolean(value.as_bool().unwrap()),
        "as" => Avro::Array(
            value
                .as_array()
                .unwrap()
                .iter()
                .map(|v| Avro::String(v.as_str().unwrap().into()))
                .collect(),
        ),
        "asn" => Avro::Array(
            value
                .as_array()
                .unwrap()
                .iter()
                .map(|v| Avro::Union(1, Box::new(Avro::String(v.as_str().unwrap().into()))))
                .collect(),
        ),
        _ => Avro::String(value.as_str().unwrap().into()),
    }
}

/// Record `i` of a family as an Avro value. `extra` fills the extra field of [`schema`].
pub fn record(family: &Family, i: usize, extra: Option<&str>) -> Avro {
    let mut out: Vec<(String, Avro)> = fields(&family.fields)
        .iter()
        .map(|f| {
            let v = match (value(family.event_type, f, i), f.required) {
                (Some(v), true) => to_avro(&f.kind, &v),
                (Some(v), false) => Avro::Union(1, Box::new(to_avro(&f.kind, &v))),
                (None, _) => Avro::Union(0, Box::new(Avro::Null)),
            };
            (f.name.clone(), v)
        })
        .collect();
    if let Some(extra) = extra {
        out.push((
            extra.to_owned(),
            Avro::Union(1, Box::new(Avro::String(format!("new-{i}")))),
        ));
    }
    Avro::Record(out)
}

/// The HTTP (Custom HTTP Currents) twin of record `i`, written from the documented field
/// correspondence, independently of the code under test.
pub fn http_twin(family: &Family, i: usize, extra: Option<&str>) -> Value {
    let et = family.event_type;
    let mut user = Map::new();
    let mut properties = Map::new();
    let mut event = Map::new();
    event.insert("event_type".into(), json!(et));
    for f in fields(&family.fields) {
        let Some(v) = value(et, &f, i) else { continue };
        match f.name.as_str() {
            "id" | "time" => drop(event.insert(f.name.clone(), v)),
            "user_id" | "external_user_id" | "device_id" | "timezone" => drop(user.insert(f.name.clone(), v)),
            "properties" if et == "users.behaviors.CustomEvent" => drop(properties.insert(
                "custom_properties".into(),
                serde_json::from_str(v.as_str().unwrap()).unwrap(),
            )),
            "properties" if et == "users.behaviors.Purchase" => drop(properties.insert(
                "purchase_properties".into(),
                serde_json::from_str(v.as_str().unwrap()).unwrap(),
            )),
            "canvas_step_message_variation_id" if et.starts_with("users.messages.banner.") => {
                drop(properties.insert("canvas_step_message_variation_api_id".into(), v))
            }
            _ => drop(properties.insert(f.name.clone(), v)),
        }
    }
    if let Some(extra) = extra {
        properties.insert(extra.to_owned(), json!(format!("new-{i}")));
    }
    event.insert("user".into(), Value::Object(user));
    event.insert("properties".into(), Value::Object(properties));
    Value::Object(event)
}

/// The three codecs Avro readers must handle (null, deflate) or commonly meet (snappy).
pub fn codecs() -> [Codec; 3] {
    [Codec::Null, Codec::Deflate(DeflateSettings::default()), Codec::Snappy]
}

/// An Avro container file of `records`, with a block boundary every `per_block` records.
pub fn container(schema: &Schema, records: Vec<Avro>, codec: Codec, per_block: usize) -> Vec<u8> {
    let mut writer = Writer::with_codec(schema, Vec::new(), codec);
    for (i, record) in records.into_iter().enumerate() {
        writer.append(record).expect("record matches its schema");
        if (i + 1) % per_block == 0 {
            writer.flush().expect("block written");
        }
    }
    writer.into_inner().expect("container finished")
}

/// A whole file for `family`: records `from..to`.
pub fn family_file(
    family: &Family,
    range: std::ops::Range<usize>,
    codec: Codec,
    per_block: usize,
    extra: Option<&str>,
) -> Vec<u8> {
    let schema = schema(family, extra);
    let records = range.map(|i| record(family, i, extra)).collect();
    container(&schema, records, codec, per_block)
}

/// Braze's key for a file of `event_type` queued in `hour` (`YYYY-MM-DD-HH`).
pub fn braze_key(prefix: &str, event_type: &str, hour: &str, offset: u64) -> String {
    let folder = "dataexport.prod-03.S3.integration.5d3f2a1b9c8e7d6f5a4b3c2d";
    format!("{prefix}{folder}/event_type={event_type}/date={hour}/512/a/{folder}+0+{offset:010}.avro")
}
