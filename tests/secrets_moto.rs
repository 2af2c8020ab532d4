//! Secrets runtime mode against a real Secrets Manager API (moto). `scripts/test` starts
//! `moto_server` on a free loopback port and sets `SECRETS_ENDPOINT` to it.

#[path = "common/secrets_client.rs"]
mod secrets_client;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use currents_segment::config::{Config, DeliveryConfig};
use currents_segment::ports::Clock;
use currents_segment::secrets::{SecretValues, SecretsCache, SecretsError, SecretsManagerSource, overlay};
use secrets_client::client;
use time::OffsetDateTime;

const TTL: Duration = Duration::from_secs(300);

struct TestClock(Mutex<OffsetDateTime>);

impl TestClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

fn secret_text(write_key: &str) -> String {
    serde_json::json!({
        "SEGMENT_WRITE_KEY": write_key,
        "CURRENTS_AUTH_TOKEN": "token-0123456789abcdef",
        "ROUTES": {"brand-a": {"write_key": format!("{write_key}-a"), "region": "eu"}},
    })
    .to_string()
}

/// The write keys of the default route and `brand-a` in the config built from `values` over
/// an environment that only names the queues.
fn write_keys(values: &SecretValues) -> (String, String) {
    let env = |key: &str| match key {
        "RETRY_QUEUE_URL" => Some("https://sqs.example/retry".to_owned()),
        "DEAD_LETTER_QUEUE_URL" => Some("https://sqs.example/dead".to_owned()),
        _ => None,
    };
    let config = Config::from_lookup(overlay(values, env)).unwrap();
    let delivery = DeliveryConfig::from_lookup(&config, overlay(values, env)).unwrap();
    let key = |name: &str| {
        let target = delivery.targets.get(config.routing.find(name).unwrap());
        target.write_key.expose().to_owned()
    };
    (key("default"), key("brand-a"))
}

async fn create_secret(client: &Client, write_key: &str) -> String {
    let name = format!("currents-segment-{}", fastrand::u32(..));
    let created = client
        .create_secret()
        .name(name)
        .secret_string(secret_text(write_key))
        .send()
        .await
        .unwrap();
    created.arn.unwrap()
}

/// A rotation as Secrets Manager's rotation runs it: the new value is staged `AWSPENDING`,
/// then `AWSCURRENT` moves to it.
async fn rotate(client: &Client, arn: &str, write_key: &str) {
    let current = client.describe_secret().secret_id(arn).send().await.unwrap();
    let old_version = current
        .version_ids_to_stages
        .unwrap_or_default()
        .into_iter()
        .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
        .map(|(version, _)| version)
        .unwrap();
    let pending = client
        .put_secret_value()
        .secret_id(arn)
        .secret_string(secret_text(write_key))
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();
    client
        .update_secret_version_stage()
        .secret_id(arn)
        .version_stage("AWSCURRENT")
        .move_to_version_id(pending.version_id.unwrap())
        .remove_from_version_id(old_version)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_rotated_write_key_takes_effect_after_the_ttl_and_a_failed_refresh_keeps_the_last_good() {
    let client = client();
    let arn = create_secret(&client, "wk_before").await;
    let clock = Arc::new(TestClock(Mutex::new(
        OffsetDateTime::from_unix_timestamp(1_764_000_000).unwrap(),
    )));
    let source = Arc::new(SecretsManagerSource::new(client.clone(), &arn));
    let cache = SecretsCache::load(source, clock.clone(), TTL).await.unwrap();
    assert_eq!(
        write_keys(&*cache.current().await),
        ("wk_before".into(), "wk_before-a".into())
    );

    rotate(&client, &arn, "wk_after").await;
    clock.advance(TTL - Duration::from_secs(1));
    assert_eq!(
        write_keys(&*cache.current().await).0,
        "wk_before",
        "cached within the TTL"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        write_keys(&*cache.current().await),
        ("wk_after".into(), "wk_after-a".into())
    );

    client
        .delete_secret()
        .secret_id(&arn)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    clock.advance(TTL);
    assert_eq!(
        write_keys(&*cache.current().await).0,
        "wk_after",
        "a failed refresh keeps the last good value"
    );
    let cold = SecretsCache::load(Arc::new(SecretsManagerSource::new(client, &arn)), clock, TTL).await;
    match cold.err() {
        Some(SecretsError::Fetch { secret_id, reason }) => {
            assert_eq!(secret_id, arn);
            assert!(reason.contains("ResourceNotFound"), "{reason}");
        }
        other => panic!("a cold start without the secret must fail, got {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_secret_that_is_not_the_documented_object_fails_the_cold_start_without_quoting_it() {
    let client = client();
    let created = client
        .create_secret()
        .name(format!("currents-segment-bad-{}", fastrand::u32(..)))
        .secret_string("wk_plain_SECRET_value")
        .send()
        .await
        .unwrap();
    let clock = Arc::new(TestClock(Mutex::new(OffsetDateTime::UNIX_EPOCH)));
    let source = Arc::new(SecretsManagerSource::new(client, created.arn.unwrap()));
    let error = SecretsCache::load(source, clock, TTL).await.err().unwrap();
    assert!(matches!(error, SecretsError::Shape(_)), "{error}");
    assert!(!error.to_string().contains("SECRET"), "{error}");
}
