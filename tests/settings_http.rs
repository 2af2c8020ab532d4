//! The production settings client (`SettingsHttp`) against a wiremock settings CDN: every
//! answer the issue names gives its verdict, and none panics or quotes the key.

use std::sync::Arc;
use std::time::Duration;

use currents_segment::config::{Config, KeyCheck};
use currents_segment::keycheck::{KeyHealth, KeyVerdict, Plan, SETTINGS_MAX_BYTES, SettingsHttp, judge};
use currents_segment::ports::{FetchSettings, SettingsAnswer};
use currents_segment::secret::Secret;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "wk_live_abc123";
const SETTINGS_PATH: &str = "/v1/projects/wk_live_abc123/settings";

async fn cdn(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SETTINGS_PATH))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

async fn ask(server: &MockServer, timeout: Duration) -> SettingsAnswer {
    let client = SettingsHttp::new(Duration::from_secs(1)).unwrap();
    client.fetch_settings(&server.uri(), &Secret::new(KEY), timeout).await
}

fn no_key(answer: &SettingsAnswer) {
    assert!(
        !format!("{answer:?}").contains(KEY),
        "the key never appears: {answer:?}"
    );
}

#[tokio::test]
async fn a_known_key_is_valid_with_its_ingestion_host() {
    let body = r#"{"integrations":{"Segment.io":{"apiKey":"wk_live_abc123","apiHost":"events.eu1.segmentapis.com/v1"}},"plan":{}}"#;
    let server = cdn(ResponseTemplate::new(200).set_body_string(body)).await;
    let answer = ask(&server, Duration::from_secs(2)).await;
    assert_eq!(
        judge(&answer),
        KeyVerdict::Valid {
            ingestion_host: Some("events.eu1.segmentapis.com".into())
        }
    );
}

#[tokio::test]
async fn segments_404_is_invalid() {
    let server =
        cdn(ResponseTemplate::new(404).set_body_string("Cannot GET - Invalid path or write key provided.")).await;
    let answer = ask(&server, Duration::from_secs(2)).await;
    assert_eq!(judge(&answer), KeyVerdict::Invalid);
}

#[tokio::test]
async fn every_other_answer_is_unknown() {
    let cases = [
        ("503", ResponseTemplate::new(503)),
        ("500 with a body", ResponseTemplate::new(500).set_body_string("oops")),
        ("403", ResponseTemplate::new(403)),
        (
            "a 404 of another server",
            ResponseTemplate::new(404).set_body_string("<h1>Not Found</h1>"),
        ),
        (
            "not JSON",
            ResponseTemplate::new(200).set_body_string("<html>hello</html>"),
        ),
        (
            "JSON of the wrong shape",
            ResponseTemplate::new(200).set_body_string(r#"{"integrations":{"Segment.io":{"apiHost":42}}}"#),
        ),
        (
            "truncated JSON",
            ResponseTemplate::new(200).set_body_string(r#"{"integrations":{"Segment.io":{"apiHo"#),
        ),
        (
            "oversized",
            ResponseTemplate::new(200).set_body_bytes(vec![b' '; SETTINGS_MAX_BYTES + 1]),
        ),
        (
            "a timeout",
            ResponseTemplate::new(200)
                .set_body_string("{}")
                .set_delay(Duration::from_secs(5)),
        ),
    ];
    for (name, response) in cases {
        let server = cdn(response).await;
        let answer = ask(&server, Duration::from_millis(300)).await;
        no_key(&answer);
        assert!(matches!(judge(&answer), KeyVerdict::Unknown(_)), "{name}: {answer:?}");
    }
}

#[tokio::test]
async fn no_server_is_unknown() {
    let server = MockServer::start().await;
    let uri = server.uri();
    drop(server);
    let client = SettingsHttp::new(Duration::from_millis(500)).unwrap();
    let answer = client
        .fetch_settings(&uri, &Secret::new(KEY), Duration::from_secs(1))
        .await;
    no_key(&answer);
    assert!(matches!(judge(&answer), KeyVerdict::Unknown(_)), "{answer:?}");
}

/// Both requests of a cold start must be in flight together to pass this barrier; checked one
/// after the other, the first would wait for ever (bounded here by the test's timeout).
struct Rendezvous(tokio::sync::Barrier);

#[async_trait::async_trait]
impl FetchSettings for Rendezvous {
    async fn fetch_settings(&self, _: &str, _: &Secret, _: Duration) -> SettingsAnswer {
        self.0.wait().await;
        SettingsAnswer::NotFound("Invalid path or write key provided.".into())
    }
}

fn two_routes(settings_endpoint: &str) -> Config {
    let routes = r#"{"a":{"write_key":"ka"},"b":{"write_key":"kb"}}"#;
    Config::from_lookup(|key| match key {
        "ROUTES" => Some(routes.to_owned()),
        "SEGMENT_SETTINGS_ENDPOINT" => Some(settings_endpoint.to_owned()),
        _ => None,
    })
    .unwrap()
}

#[tokio::test]
async fn a_cold_start_checks_every_route_concurrently() {
    let config = two_routes("https://cdn.segment.com");
    assert!(matches!(config.routing.routes()[0].key_check, KeyCheck::On(_)));
    let targets = config.routing.delivery_targets().unwrap();
    let health = KeyHealth::new(
        Arc::new(Rendezvous(tokio::sync::Barrier::new(2))),
        Duration::from_secs(2),
    );
    let plans = tokio::time::timeout(Duration::from_secs(10), health.warm(&config.routing, &targets))
        .await
        .expect("both checks were in flight at once");
    assert_eq!(plans.requests, 2);
    assert!(
        plans.plans.iter().all(|(_, plan)| matches!(plan, Plan::Hold(_))),
        "{plans:?}"
    );
}

/// The same through the real client and a wiremock CDN: each key asked once, and a warm call
/// asks nothing.
#[tokio::test]
async fn the_real_client_asks_each_key_once_per_interval() {
    let server = MockServer::start().await;
    for key in ["ka", "kb"] {
        Mock::given(path(format!("/v1/projects/{key}/settings")))
            .respond_with(ResponseTemplate::new(404).set_body_string("Invalid path or write key provided."))
            .expect(1)
            .mount(&server)
            .await;
    }
    let config = two_routes(&server.uri());
    let targets = config.routing.delivery_targets().unwrap();
    let health = KeyHealth::new(
        Arc::new(SettingsHttp::new(Duration::from_secs(1)).unwrap()),
        Duration::from_secs(2),
    );
    let plans = health.warm(&config.routing, &targets).await;
    assert_eq!(plans.requests, 2);
    assert!(
        plans.plans.iter().all(|(_, plan)| matches!(plan, Plan::Hold(_))),
        "{plans:?}"
    );
    let again = health.warm(&config.routing, &targets).await;
    assert_eq!(again.requests, 0);
}
