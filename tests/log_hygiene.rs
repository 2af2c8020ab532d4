//! Captures every log line of the full scenarios, through the production log filter at DEBUG,
//! and checks that no write key, token, email address, phone number or payload text is in it.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fault_segment::{Fault, FaultSegment};
use common::{Harness, TOKEN, WRITE_KEY, bearer, config, fixture, post, sqs_event};
use currents_segment::ingest::Ingest;
use currents_segment::ports::AttemptError;
use currents_segment::segment::SegmentHttp;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for Capture {
    type Writer = Capture;
    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn no_secret_pii_or_payload_reaches_the_logs() {
    let capture = Capture::default();
    assert!(
        currents_segment::telemetry::init_with("debug", capture.clone()),
        "first subscriber in this binary"
    );
    let (auth, value) = bearer();
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(5);

    // Healthy, through the real HTTP client, then every failure mode of Segment.
    let server = FaultSegment::start(
        &[Fault::Ok, Fault::Status(503), Fault::Reset, Fault::Status(500)],
        Fault::Status(400),
    )
    .await;
    let harness = Harness::new(config(&[("SEGMENT_ENDPOINT", server.url.as_str())]));
    let real = Ingest {
        segment: Arc::new(SegmentHttp::new(&harness.config.segment).unwrap()),
        ..harness.ingest()
    };
    for body in ["all-events.json", "all-events.json", "mixed-batch.json"] {
        real.handle(post("/currents", &[(auth, &value)], fixture(body))).await;
    }
    // Parking, dead letters and refused requests with the fakes.
    let harness = Harness::new(config(&[]));
    harness.segment.always(Err(AttemptError::Status {
        status: 503,
        retry_after: None,
    }));
    harness
        .ingest()
        .handle(post("/currents", &[(auth, &value)], fixture("all-events.json")))
        .await;
    harness
        .ingest()
        .handle(post(
            "/currents",
            &[("authorization", "Bearer wrong-token-value")],
            fixture("all-events.json"),
        ))
        .await;
    harness
        .ingest()
        .handle(post(
            "/currents",
            &[(auth, &value)],
            "{\"events\": [\"ada.lovelace@example.com\"",
        ))
        .await;
    harness.retry.refuse_next(1);
    harness
        .ingest()
        .handle(post("/currents", &[(auth, &value)], fixture("all-events.json")))
        .await;
    // A route name from the URL is never a span field unless it is configured: a token pasted
    // into the path must not reach every line of the invocation.
    harness
        .ingest()
        .handle(post(
            &format!("/currents/{TOKEN}"),
            &[(auth, &value)],
            fixture("all-events.json"),
        ))
        .await;
    Harness::new(config(&[("CURRENTS_AUTH_TOKEN", "")]))
        .ingest()
        .handle(post("/currents", &[], fixture("all-events.json")))
        .await;
    // Replay: still failing, expired, undecodable, permanent.
    let parked = std::mem::take(&mut *harness.retry.bodies.lock().unwrap());
    harness.replay().handle(sqs_event(&parked, 1), deadline()).await;
    harness.segment.always(Err(AttemptError::Status {
        status: 400,
        retry_after: None,
    }));
    harness.replay().handle(sqs_event(&parked, 1), deadline()).await;
    harness
        .replay()
        .handle(
            sqs_event(&["ada.lovelace@example.com +15550100199".to_owned()], 1),
            deadline(),
        )
        .await;
    harness.clock.advance(Duration::from_secs(49 * 3600));
    harness.replay().handle(sqs_event(&parked, 1), deadline()).await;
    // A write key Segment does not know, and a settings CDN that fails, through the real
    // settings client: held (ERROR) and fail-open (WARN) lines, ingest and replay.
    let cdn = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path(format!("/v1/projects/{WRITE_KEY}/settings")))
        .respond_with(
            wiremock::ResponseTemplate::new(404).set_body_string("Cannot GET - Invalid path or write key provided."),
        )
        .mount(&cdn)
        .await;
    for (settings_endpoint, body) in [
        (cdn.uri(), "all-events.json"),
        ("http://127.0.0.1:9".to_owned(), "all-events.json"),
    ] {
        let checked = Harness::new(config(&[("SEGMENT_SETTINGS_ENDPOINT", &settings_endpoint)]));
        let real_settings = currents_segment::keycheck::SettingsHttp::new(Duration::from_millis(300)).unwrap();
        let checked = Harness {
            key_health: Arc::new(currents_segment::keycheck::KeyHealth::new(
                Arc::new(real_settings),
                Duration::from_millis(500),
            )),
            ..checked
        };
        checked
            .ingest()
            .handle(post("/currents", &[(auth, &value)], fixture(body)))
            .await;
        let held = std::mem::take(&mut *checked.retry.bodies.lock().unwrap());
        checked.replay().handle(sqs_event(&held, 1), deadline()).await;
    }
    // And a replay that goes through.
    let clean = Harness::new(config(&[]));
    clean.segment.always(Ok(()));
    clean.replay().handle(sqs_event(&parked, 1), deadline()).await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.lines().count() > 20, "the scenarios logged: {logs}");
    assert!(logs.contains("Envelope dead-lettered.") && logs.contains("Segment delivery failed; parked for replay."));
    // Levels: a missing token needs an operator (ERROR); a refused request is the caller's
    // (WARN); a 503's cause was logged where the queue failed, so it gets no second line.
    let line_with = |level: &str, needles: &[&str]| {
        logs.lines()
            .any(|l| l.contains(&format!(r#""level":"{level}""#)) && needles.iter().all(|n| l.contains(n)))
    };
    assert!(line_with("ERROR", &["auth_not_configured"]), "{logs}");
    assert!(line_with("WARN", &["Request refused.", "unauthorized"]), "{logs}");
    assert!(
        line_with("ERROR", &["answering 503"]),
        "the queue failure itself is logged: {logs}"
    );
    assert!(!line_with("WARN", &["Request refused.", "unavailable"]), "{logs}");
    assert!(
        line_with("ERROR", &["Replay invocation handled.", r#""expired":1"#]),
        "replay's summary says what was dead-lettered: {logs}"
    );
    assert!(
        line_with("WARN", &["Replay invocation handled.", r#""still_failing":"#]),
        "and is a WARN when records only still fail: {logs}"
    );
    assert!(
        line_with("INFO", &["Replay invocation handled.", r#""still_failing":0"#]),
        "and an INFO when all went through: {logs}"
    );
    assert!(
        line_with(
            "ERROR",
            &[
                "Held events for a write key Segment would drop",
                "write_key_invalid",
                r#""route":"default""#
            ]
        ),
        "ingest's hold is an ERROR naming the route and cause: {logs}"
    );
    // Issue 23, item 7: every line of an ingest invocation carries its span's fields.
    assert!(
        line_with(
            "ERROR",
            &[
                "Held events for a write key Segment would drop",
                r#""spans":[{"function":"ingest","request_id":"#,
                r#""route":"default""#
            ]
        ),
        "ingest's lines carry the invocation span: {logs}"
    );
    assert!(
        line_with(
            "WARN",
            &[
                "Request refused: the route in the URL is not configured.",
                r#""route":"unknown""#
            ]
        ),
        "{logs}"
    );
    assert!(
        line_with(
            "WARN",
            &[
                "Replay still failing; will retry.",
                r#""message_id":"msg-0""#,
                r#""route":"default""#
            ]
        ),
        "replay's lines carry the record's span, with the envelope's route: {logs}"
    );
    assert!(
        line_with("ERROR", &["Held parked events", "write_key_invalid"]),
        "{logs}"
    );
    assert!(
        line_with("WARN", &["Could not check the route's write key", "could not connect"]),
        "a failing CDN is a WARN: {logs}"
    );
    let forbidden = [
        WRITE_KEY,
        TOKEN,
        "wrong-token-value",
        "ada.lovelace",
        "@example.com",
        "+1555",
        "5550100199",
        "STOP please",
        "Mozilla/5.0",
        "Winter Sale",
        "shop.example.com",
        "user-001",
        "5f1a0000",
    ];
    for needle in forbidden {
        assert!(!logs.contains(needle), "`{needle}` leaked into the logs:\n{logs}");
    }
}
