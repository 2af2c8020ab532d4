//! The ingest handler on real lambda_http request values, with fakes behind every port.

mod common;
mod flat_twin;

use std::io::Write;

use common::{Emf, Harness, TOKEN, bearer, config, counts, fixture, post, send};
use currents_segment::ports::AttemptError;
use serde_json::{Value, json};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// An `events/` file deserialised the way the Lambda runtime does it (any front lambda_http reads).
fn event_file(name: &str) -> lambda_http::Request {
    let text = std::fs::read_to_string(format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    lambda_http::request::from_str(&text).expect("a valid API Gateway or ALB event")
}

/// How many events `all-events.json` (and so the committed sample batch) holds.
fn fixture_len() -> u64 {
    let fixture: Value = serde_json::from_slice(&fixture("all-events.json")).unwrap();
    fixture["events"].as_array().unwrap().len() as u64
}

fn sample_config() -> currents_segment::config::Config {
    config(&[("CURRENTS_AUTH_TOKEN", "sample-currents-token")])
}

#[tokio::test]
async fn a_full_batch_is_delivered_in_one_segment_request() {
    let harness = Harness::new(config(&[]));
    let (auth, value) = bearer();
    let (status, body) = send(
        &harness,
        post("/currents", &[(auth, &value)], fixture("all-events.json")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&body), (fixture_len(), 0, 0, 0));
    assert_eq!(harness.segment.requests(), 1);
    assert_eq!(harness.segment.delivered_ids().len() as u64, fixture_len());
}

/// Braze's storage exports lay events out flat; posted as they are, they reach Segment as the
/// same messages as their HTTP twins.
#[tokio::test]
async fn a_flat_storage_shaped_batch_is_delivered_as_its_http_twin() {
    let http = flat_twin::http_body_without_nulls(&fixture("all-events.json"));
    let flat = flat_twin::flat_body(&http);
    let (auth, value) = bearer();
    let mut sent = Vec::new();
    for body in [http, flat] {
        let harness = Harness::new(config(&[]));
        let (status, answer) = send(&harness, post("/currents", &[(auth, &value)], body)).await;
        assert_eq!((status, counts(&answer)), (200, (fixture_len(), 0, 0, 0)), "{answer}");
        let bodies = harness.segment.bodies.lock().unwrap().clone();
        sent.push(
            bodies
                .iter()
                .flat_map(|b| b["batch"].as_array().unwrap().clone())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(sent[0].len() as u64, fixture_len());
    assert_eq!(sent[1], sent[0]);
}

#[tokio::test]
async fn the_committed_api_gateway_events_work_as_sam_would_send_them() {
    let harness = Harness::new(sample_config());
    let (status, body) = send(&harness, event_file("ingest-valid.json")).await;
    assert_eq!((status, counts(&body).0), (200, fixture_len()));
    let (status, body) = send(&harness, event_file("ingest-gzip.json")).await;
    assert_eq!((status, counts(&body).0), (200, fixture_len()), "base64 + gzip body");
    let (status, _) = send(&harness, event_file("ingest-wrong-token.json")).await;
    assert_eq!(status, 401);
    let (status, body) = send(&harness, event_file("ingest-malformed.json")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
}

/// Issue 21, case 9: a REST API (payload 1.0, e.g. for AWS WAF) or an ALB in front of ingest.
/// Both were invocation errors (502s until Braze disables the connector).
#[tokio::test]
async fn rest_api_and_alb_events_are_read_like_http_api_events() {
    let harness = Harness::new(sample_config());
    let (status, body) = send(&harness, event_file("ingest-rest.json")).await;
    assert_eq!((status, counts(&body).0), (200, fixture_len()), "REST API, payload 1.0");
    let (status, body) = send(&harness, event_file("ingest-alb-gzip.json")).await;
    assert_eq!((status, counts(&body).0), (200, fixture_len()), "ALB, base64 + gzip");
    let rest = |edit: &dyn Fn(&mut Value)| {
        let text = std::fs::read_to_string(format!("{}/events/ingest-rest.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let mut event: Value = serde_json::from_str(&text).unwrap();
        edit(&mut event);
        lambda_http::request::from_str(&event.to_string()).expect("a REST API event")
    };
    // The stage lambda_http puts before the path does not hide the route; `?route=` works too.
    let by_path = rest(&|e| e["path"] = json!("/currents/nowhere"));
    assert_eq!(
        send(&harness, by_path).await.0,
        404,
        "unknown route from /prod/currents/nowhere"
    );
    let by_query = rest(&|e| e["queryStringParameters"] = json!({"route": "nowhere"}));
    assert_eq!(send(&harness, by_query).await.0, 404, "unknown route from ?route=");
    let wrong = rest(&|e| e["headers"]["Authorization"] = json!("Bearer not-the-token"));
    assert_eq!(send(&harness, wrong).await.0, 401);
    // An ALB with multi-value headers on sends only `multiValueHeaders`.
    let text = std::fs::read_to_string(format!("{}/events/ingest-alb-gzip.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut alb: Value = serde_json::from_str(&text).unwrap();
    let headers = alb.as_object_mut().unwrap().remove("headers").unwrap();
    let multi: serde_json::Map<String, Value> = headers
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), json!([v])))
        .collect();
    alb["multiValueHeaders"] = Value::Object(multi);
    alb["multiValueQueryStringParameters"] = json!({});
    let request = lambda_http::request::from_str(&alb.to_string()).expect("an ALB event");
    let (status, body) = send(&harness, request).await;
    assert_eq!(
        (status, counts(&body).0),
        (200, fixture_len()),
        "ALB, multi-value headers"
    );
}

#[tokio::test]
async fn the_events_files_carry_exactly_our_fixture() {
    let fixture: Value = serde_json::from_slice(&fixture("all-events.json")).unwrap();
    for name in ["ingest-valid.json", "ingest-rest.json"] {
        let request = event_file(name);
        let sent: Value = serde_json::from_slice(request.body().as_ref()).unwrap();
        assert_eq!(
            sent, fixture,
            "{name}: run scripts/make-events --fixed after changing fixtures"
        );
    }
}

#[tokio::test]
async fn an_empty_body_or_batch_is_an_authenticated_no_op() {
    let harness = Harness::new(config(&[]));
    let (auth, value) = bearer();
    for body in ["", r#"{"events":[]}"#] {
        let (status, answer) = send(&harness, post("/currents", &[(auth, &value)], body)).await;
        assert_eq!(status, 200);
        assert_eq!(counts(&answer), (0, 0, 0, 0));
        let (status, _) = send(&harness, post("/currents", &[], body)).await;
        assert_eq!(status, 401, "credentials are checked even on empty batches");
    }
    assert_eq!(harness.segment.requests(), 0);
}

#[tokio::test]
async fn missing_wrong_duplicated_and_lower_case_authorization() {
    let harness = Harness::new(config(&[]));
    let body = fixture("all-events.json");
    let right = format!("Bearer {TOKEN}");
    let lower = format!("bearer {TOKEN}");
    let cases: [(&[(&str, &str)], u16); 5] = [
        (&[], 401),
        (&[("authorization", "Bearer nope")], 401),
        (&[("authorization", &right), ("authorization", &right)], 401),
        (&[("authorization", TOKEN)], 401),
        (&[("authorization", &lower)], 200),
    ];
    for (headers, expected) in cases {
        let (status, answer) = send(&harness, post("/currents", headers, body.clone())).await;
        assert_eq!(status, expected, "{headers:?}: {answer}");
    }
    assert_eq!(
        harness.segment.requests(),
        1,
        "only the accepted request reached Segment"
    );
}

#[tokio::test]
async fn without_a_configured_token_requests_are_refused_unless_allowed() {
    let no_token = Harness::new(config(&[("CURRENTS_AUTH_TOKEN", "")]));
    let (status, body) = send(&no_token, post("/currents", &[], fixture("all-events.json"))).await;
    assert_eq!((status, body["error"].as_str()), (500, Some("auth_not_configured")));
    let open = Harness::new(config(&[
        ("CURRENTS_AUTH_TOKEN", ""),
        ("ALLOW_UNAUTHENTICATED", "true"),
    ]));
    let (status, _) = send(&open, post("/currents", &[], fixture("all-events.json"))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bad_bodies_get_clear_client_errors() {
    let harness = Harness::new(config(&[("MAX_BODY_BYTES", "30000")]));
    let (auth, value) = bearer();
    let h = [(auth, value.as_str())];
    let cases: Vec<(lambda_http::Request, u16, &str)> = vec![
        (post("/currents", &h, "{not json"), 400, "bad_request"),
        (post("/currents", &h, b"\xff\xfe\x00".to_vec()), 400, "bad_request"),
        (post("/currents", &h, r#"{"events":{"a":1}}"#), 400, "bad_request"),
        (post("/currents", &h, r#"{"data":[]}"#), 400, "bad_request"),
        // Issue 21, case 11: an array is not an envelope, however its events are nested.
        (post("/currents", &h, "[[]]"), 400, "bad_request"),
        (
            post(
                "/currents",
                &h,
                r#"[[{"id":"a","event_type":"users.behaviors.CustomEvent","time":1}]]"#,
            ),
            400,
            "bad_request",
        ),
        (post("/currents", &h, vec![b' '; 30_001]), 413, "payload_too_large"),
        (
            post(
                "/currents",
                &[h[0], ("content-encoding", "gzip")],
                gzip(&vec![b' '; 5_000_000]),
            ),
            413,
            "payload_too_large",
        ),
        (
            post(
                "/currents",
                &[h[0], ("content-encoding", "br")],
                b"\x1b\x0d\x00 brotli".to_vec(),
            ),
            415,
            "unsupported_encoding",
        ),
        (
            post("/currents", &[h[0], ("content-encoding", "gzip")], "plain"),
            400,
            "bad_request",
        ),
    ];
    for (request, status, code) in cases {
        let (got, body) = send(&harness, request).await;
        assert_eq!((got, body["error"].as_str()), (status, Some(code)), "{body}");
    }
    let exactly = format!("{}{}", r#"{"events":[]}"#, " ".repeat(30_000 - 13));
    let (status, _) = send(&harness, post("/currents", &h, exactly)).await;
    assert_eq!(status, 200, "a body of exactly the limit is accepted");
    let get = lambda_http::http::Request::builder()
        .method("GET")
        .uri("/currents")
        .header(auth, &value)
        .body(lambda_http::Body::Empty)
        .unwrap();
    assert_eq!(send(&harness, get).await.0, 405);
}

/// Issue 21, case 7's class through the handler: an API Gateway REST API with payload
/// compression enabled inflates the body and passes `Content-Encoding: gzip` on; a client may
/// gzip without saying so; a gzip file may be padded with zero bytes. Each is delivered.
#[tokio::test]
async fn a_body_is_read_by_its_bytes_when_the_header_does_not_match() {
    let harness = Harness::new(config(&[]));
    let (auth, value) = bearer();
    let envelope = |id: &str| {
        format!(
            r#"{{"events":[{{"id":"{id}","event_type":"users.messages.email.Open","time":1764000000,"user":{{"external_user_id":"u-1"}}}}]}}"#
        )
    };
    let padded = [gzip(envelope("padded").as_bytes()), vec![0; 16]].concat();
    let cases: [(&str, Option<&str>, Vec<u8>); 4] = [
        ("inflated", Some("gzip"), envelope("inflated").into_bytes()),
        ("deflated", Some("deflate"), envelope("deflated").into_bytes()),
        ("undeclared", None, gzip(envelope("undeclared").as_bytes())),
        ("padded", Some("gzip"), padded),
    ];
    for (id, coding, body) in cases {
        let mut headers = vec![(auth, value.as_str())];
        headers.extend(coding.map(|c| ("content-encoding", c)));
        let (status, answer) = send(&harness, post("/currents", &headers, body)).await;
        assert_eq!((status, counts(&answer)), (200, (1, 0, 0, 0)), "{id}: {answer}");
    }
    let mut delivered = harness.segment.delivered_ids();
    delivered.sort();
    assert_eq!(delivered, ["deflated", "inflated", "padded", "undeclared"]);
}

#[tokio::test]
async fn a_mixed_batch_delivers_the_good_and_dead_letters_the_invalid_with_raw_events() {
    let harness = Harness::new(config(&[]));
    let (auth, value) = bearer();
    let (status, body) = send(
        &harness,
        post("/currents", &[(auth, &value)], fixture("mixed-batch.json")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&body), (2, 0, 2, 6));
    let envelopes = harness.dead.envelopes();
    assert!(
        envelopes
            .iter()
            .all(|e| e["reason"] == "invalid_event" && e["route"] == "default")
    );
    let events: Vec<&Value> = envelopes.iter().flat_map(|e| e["events"].as_array().unwrap()).collect();
    assert_eq!(events.len(), 6);
    assert!(events.iter().any(|e| e["id"] == "mixed-no-time"));
    assert!(
        events.contains(&&json!(42)) && events.contains(&&Value::Null),
        "non-objects kept as they came"
    );
    let errors: Vec<&str> = envelopes.iter().map(|e| e["last_error"].as_str().unwrap()).collect();
    assert!(errors.iter().any(|e| e.starts_with("missing_time")));
}

#[tokio::test]
async fn segment_down_parks_everything_and_answers_200() {
    let harness = Harness::new(config(&[]));
    harness.segment.always(Err(AttemptError::Status {
        status: 503,
        retry_after: None,
    }));
    let (auth, value) = bearer();
    let (status, body) = send(
        &harness,
        post("/currents", &[(auth, &value)], fixture("all-events.json")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&body), (0, fixture_len(), 0, 0));
    assert_eq!(harness.retry.message_count() as u64, fixture_len());
    let envelope = &harness.retry.envelopes()[0];
    assert_eq!(envelope["version"], 1);
    assert_eq!(envelope["route"], "default");
    assert_eq!(envelope["first_failed_at"], "2025-11-24T16:00:00Z");
    assert_eq!(envelope["last_error"], "Segment answered HTTP 503");
    assert!(envelope["messages"][0].get("sentAt").is_none());
    let text = harness.retry.bodies.lock().unwrap().join("");
    assert!(
        !text.contains(common::WRITE_KEY) && !text.contains(TOKEN),
        "envelopes never carry secrets"
    );
}

#[tokio::test]
async fn a_permanent_segment_refusal_is_dead_lettered() {
    let harness = Harness::new(config(&[]));
    harness.segment.always(Err(AttemptError::Status {
        status: 400,
        retry_after: None,
    }));
    let (auth, value) = bearer();
    let (status, body) = send(
        &harness,
        post("/currents", &[(auth, &value)], fixture("all-events.json")),
    )
    .await;
    assert_eq!(status, 200);
    let n = fixture_len();
    assert_eq!(counts(&body), (0, 0, 0, n));
    // No request is retried as it was: the refused batch is bisected down to single messages,
    // a full binary tree over n leaves (n singles + n - 1 inner batches).
    assert_eq!(
        harness.segment.requests() as u64,
        2 * n - 1,
        "each batch is sent once, then halved"
    );
    assert!(
        harness
            .dead
            .envelopes()
            .iter()
            .all(|e| e["reason"] == "permanent_failure")
    );
    assert_eq!(harness.dead.message_count() as u64, n);
}

#[tokio::test]
async fn when_nothing_can_be_stored_the_answer_is_503() {
    let harness = Harness::new(config(&[]));
    harness.segment.always(Err(AttemptError::Timeout));
    harness.retry.refuse_next(1);
    let (auth, value) = bearer();
    let (status, body) = send(
        &harness,
        post("/currents", &[(auth, &value)], fixture("all-events.json")),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (503, Some("unavailable")));

    let harness = Harness::new(config(&[]));
    harness.dead.refuse_next(1);
    let (status, _) = send(
        &harness,
        post("/currents", &[(auth, &value)], fixture("mixed-batch.json")),
    )
    .await;
    assert_eq!(
        status, 503,
        "invalid events that cannot be dead-lettered fail the request"
    );
}

#[tokio::test]
async fn a_retry_that_succeeds_counts_as_delivered() {
    let harness = Harness::new(config(&[]));
    harness.segment.then(Err(AttemptError::Status {
        status: 502,
        retry_after: None,
    }));
    harness
        .segment
        .then(Err(AttemptError::Connection("connection dropped")));
    let (auth, value) = bearer();
    let (status, body) = send(
        &harness,
        post("/currents", &[(auth, &value)], fixture("all-events.json")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(counts(&body), (fixture_len(), 0, 0, 0));
    assert_eq!(harness.segment.requests(), 3);
}

#[tokio::test]
async fn the_same_batch_twice_yields_identical_message_ids_and_no_extra_dead_letters() {
    let harness = Harness::new(config(&[]));
    let (auth, value) = bearer();
    for _ in 0..2 {
        send(
            &harness,
            post("/currents", &[(auth, &value)], fixture("mixed-batch.json")),
        )
        .await;
    }
    let ids = harness.segment.delivered_ids();
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[..2], ids[2..]);
    assert_eq!(
        harness
            .dead
            .envelopes()
            .iter()
            .map(|e| e["events"].as_array().unwrap().len())
            .sum::<usize>(),
        12
    );
}

/// An invocation's EMF metrics carry the same counts as its answer, and a reason for each dead
/// letter.
#[tokio::test]
async fn the_metrics_carry_the_answers_counts() {
    let harness = Harness::new(config(&[]));
    let mut body: Value = serde_json::from_slice(&fixture("all-events.json")).unwrap();
    let events = body["events"].as_array_mut().unwrap();
    events.push(json!({"id": "bad-1", "event_type": "users.behaviors.app.SessionStart", "time": "soon"}));
    let n = events.len() as u64;
    let body = serde_json::to_vec(&body).unwrap();

    let emf = Emf::of(&harness.process(&body).await, "ingest");

    assert_eq!(
        (
            emf.total("Received"),
            emf.total("Delivered"),
            emf.total("DeadLettered"),
            emf.total("Parked")
        ),
        (n as f64, (n - 1) as f64, 1.0, 0.0),
        "{emf:?}"
    );
    assert_eq!(emf.dead_lettered("invalid_event"), Some(1.0), "{emf:?}");
}

/// `SegmentLatencyMs` is in milliseconds: one 503 then a success, with the test policy's 1-2 ms
/// backoff, on tokio's paused clock (so the figure is exact, whatever the machine does).
#[tokio::test(start_paused = true)]
async fn segment_latency_is_recorded_in_milliseconds() {
    let harness = Harness::new(config(&[]));
    harness
        .segment
        .then(Err(AttemptError::Status {
            status: 503,
            retry_after: None,
        }))
        .always(Ok(()));
    let emf = Emf::of(&harness.process(&fixture("all-events.json")).await, "ingest");
    let totals = &emf.0[0];
    let latency = totals["SegmentLatencyMs"][0].as_f64().unwrap();
    assert!((1.0..=3.0).contains(&latency), "{latency} ms");
}
