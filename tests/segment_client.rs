//! The real reqwest client against a Segment stand-in on loopback (wiremock).

mod common;

use std::time::Duration;

use currents_segment::config::{SegmentClientConfig, SegmentTarget};
use currents_segment::ports::SystemClock;
use currents_segment::secret::Secret;
use currents_segment::segment::{BatchOutcome, RetryPolicy, SegmentHttp, deliver_batch};
use tokio::time::Instant;
use wiremock::matchers::{basic_auth, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MESSAGES: [&str; 2] = [
    r#"{"type":"track","messageId":"m1"}"#,
    r#"{"type":"track","messageId":"m2"}"#,
];

fn client() -> SegmentHttp {
    SegmentHttp::new(&SegmentClientConfig {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(5),
        ingest_retry_budget: Duration::from_secs(5),
    })
    .unwrap()
}

fn target(server: &MockServer) -> SegmentTarget {
    SegmentTarget {
        endpoint: server.uri(),
        write_key: Secret::new("wk_test"),
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(50),
        request_timeout: Duration::from_millis(300),
    }
}

async fn deliver(server: &MockServer, within: Duration) -> BatchOutcome {
    deliver_batch(
        &client(),
        &SystemClock,
        &target(server),
        &MESSAGES,
        &policy(),
        Instant::now() + within,
    )
    .await
}

#[tokio::test]
async fn a_200_delivers_with_basic_auth_and_a_batch_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .and(basic_auth("wk_test", ""))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"success":true}"#))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        deliver(&server, Duration::from_secs(5)).await,
        BatchOutcome::Delivered { attempts: 1 }
    );
    let request = &server.received_requests().await.unwrap()[0];
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["batch"][1]["messageId"], "m2");
    assert!(body["sentAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn a_500_is_retried_with_a_fresh_sent_at() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    assert_eq!(
        deliver(&server, Duration::from_secs(5)).await,
        BatchOutcome::Delivered { attempts: 2 }
    );
    let requests = server.received_requests().await.unwrap();
    let sent_at = |i: usize| serde_json::from_slice::<serde_json::Value>(&requests[i].body).unwrap()["sentAt"].clone();
    assert_ne!(sent_at(0), sent_at(1), "sentAt is stamped on every attempt");
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let started = Instant::now();
    assert_eq!(
        deliver(&server, Duration::from_secs(5)).await,
        BatchOutcome::Delivered { attempts: 2 }
    );
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After is honoured");
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_gives_up_at_once_so_ingest_can_park() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "120"))
        .mount(&server)
        .await;
    let outcome = deliver(&server, Duration::from_secs(3)).await;
    assert!(
        matches!(outcome, BatchOutcome::Retryable { attempts: 1, ref last_error, retry_after } if last_error.contains("429") && retry_after == Some(Duration::from_secs(120))),
        "the Retry-After is kept for replay's visibility: {outcome:?}"
    );
}

#[tokio::test]
async fn a_400_is_permanent_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400))
        .expect(1)
        .mount(&server)
        .await;
    let outcome = deliver(&server, Duration::from_secs(5)).await;
    assert!(
        matches!(outcome, BatchOutcome::Permanent { attempts: 1, ref last_error, .. } if last_error.contains("400"))
    );
}

#[tokio::test]
async fn a_hanging_segment_times_out_and_stays_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let outcome = deliver(&server, Duration::from_secs(5)).await;
    assert!(
        matches!(outcome, BatchOutcome::Retryable { attempts: 3, ref last_error, .. } if last_error.contains("timeout"))
    );
}

#[tokio::test]
async fn persistent_503s_stop_after_the_attempt_limit() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&server)
        .await;
    assert!(matches!(
        deliver(&server, Duration::from_secs(5)).await,
        BatchOutcome::Retryable { attempts: 3, .. }
    ));
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let target = SegmentTarget {
        endpoint: format!("http://127.0.0.1:{port}"),
        write_key: Secret::new("k"),
    };
    let outcome = deliver_batch(
        &client(),
        &SystemClock,
        &target,
        &MESSAGES,
        &policy(),
        Instant::now() + Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(outcome, BatchOutcome::Retryable { ref last_error, .. } if last_error.contains("could not reach"))
    );
}

/// Issue 21, case 6: `SEGMENT_ENDPOINT` copied from Segment's docs (`…/v1`, `…/v1/batch`, with
/// or without a trailing slash) posts to `/v1/batch`, never `/v1/v1/batch`, through ingest and
/// the real client.
#[tokio::test]
async fn an_endpoint_copied_with_v1_or_v1_batch_posts_to_v1_batch() {
    for suffix in ["/v1", "/v1/", "/v1/batch", "/v1/batch/"] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/batch"))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
        let endpoint = format!("{}{suffix}", server.uri());
        let harness = common::Harness::new(common::config(&[("SEGMENT_ENDPOINT", &endpoint)]));
        let ingest = currents_segment::ingest::Ingest {
            segment: std::sync::Arc::new(client()),
            ..harness.ingest()
        };
        let (auth, value) = common::bearer();
        let response = ingest
            .handle(common::post(
                "/currents",
                &[(auth, &value)],
                common::fixture("all-events.json"),
            ))
            .await;
        let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert!(common::counts(&body).0 > 0, "{suffix}: {body}");
        assert_eq!(harness.retry.message_count(), 0, "{suffix}: nothing parked");
        server.verify().await;
    }
}
