//! Rotating the Currents bearer token loses nothing (issue 21, case 1), against a real Secrets
//! Manager API (moto): `put-secret-value` moves `AWSCURRENT` to the new version and
//! `AWSPREVIOUS` to the old one, and a version staged `AWSPENDING` passes while it is young. `scripts/test` starts `moto_server` and sets
//! `SECRETS_ENDPOINT`. The env-var path (no secret) is checked without moto.

mod common;
#[path = "common/secrets_client.rs"]
mod secrets_client;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Harness, post, send};
use currents_segment::config::Config;
use currents_segment::ports::Clock;
use currents_segment::secrets::{REREAD_INTERVAL, SecretValues, SecretsCache, SecretsManagerSource, overlay};
use secrets_client::client;
use time::OffsetDateTime;

const TTL: Duration = Duration::from_secs(300);
const GRACE: Duration = Duration::from_secs(3_600);
const TOKEN_A: &str = "tok-A-0123456789abcdef";
const TOKEN_B: &str = "tok-B-0123456789abcdef";
const TOKEN_C: &str = "tok-C-0123456789abcdef";
const TOKEN_P: &str = "tok-P-0123456789abcdef";

/// Starts at the real time: moto stamps each version's `CreatedDate` with it.
struct TestClock(Mutex<OffsetDateTime>);

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

fn secret_text(token: &str) -> String {
    serde_json::json!({"SEGMENT_WRITE_KEY": "wk_rotation", "CURRENTS_AUTH_TOKEN": token}).to_string()
}

/// The configuration a function builds from `values` over an environment naming the queues.
fn config(values: &SecretValues) -> Config {
    let env = |key: &str| match key {
        "RETRY_QUEUE_URL" => Some("retry".to_owned()),
        "DEAD_LETTER_QUEUE_URL" => Some("dead".to_owned()),
        _ => None,
    };
    Config::from_lookup(overlay(values, env)).unwrap()
}

/// What ingest answers an empty batch POSTed with `token`, on `config`.
async fn status(config: Config, token: &str) -> u16 {
    let request = post(
        "/currents",
        &[("authorization", &format!("Bearer {token}"))],
        "{\"events\":[]}",
    );
    send(&Harness::new(config), request).await.0
}

/// A warm instance's answer to `token`: a token the values in effect refuse makes it re-read
/// the secret first (rate-limited), as `Wired::ingest_for` does.
async fn answer(cache: &SecretsCache, token: &str) -> u16 {
    match status(config(&*cache.current().await), token).await {
        401 if cache.reread().await => status(config(&*cache.current().await), token).await,
        status => status,
    }
}

/// A new secret in moto holding `token` (named after `test`), a clock at the real time (moto
/// stamps each version's `CreatedDate` with it) and a cache reading it.
async fn secret_holding(
    token: &str,
    test: &str,
) -> (aws_sdk_secretsmanager::Client, String, Arc<TestClock>, SecretsCache) {
    let client = client();
    let name = format!("currents-segment-{test}-{}", fastrand::u32(..));
    let created = client.create_secret().name(name).secret_string(secret_text(token));
    let arn = created.send().await.unwrap().arn.unwrap();
    let clock = Arc::new(TestClock(Mutex::new(OffsetDateTime::now_utc())));
    let source = Arc::new(SecretsManagerSource::new(client.clone(), &arn));
    let cache = SecretsCache::load_with_grace(source, clock.clone(), TTL, GRACE)
        .await
        .unwrap();
    (client, arn, clock, cache)
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn put_secret_value_rotates_the_token_with_no_401_for_the_new_or_the_previous_one() {
    let (client, arn, clock, cache) = secret_holding(TOKEN_A, "token").await;
    assert_eq!(answer(&cache, TOKEN_A).await, 200);
    let put = |token: &str| {
        client
            .put_secret_value()
            .secret_id(&arn)
            .secret_string(secret_text(token))
    };

    *clock.0.lock().unwrap() += REREAD_INTERVAL;
    put(TOKEN_B).send().await.unwrap();
    assert_eq!(
        answer(&cache, TOKEN_B).await,
        200,
        "the new token passes at once, no 401"
    );
    assert_eq!(answer(&cache, TOKEN_A).await, 200, "the previous token still passes");

    // A version staged AWSPENDING (Secrets Manager's rotation model: the service accepts the
    // pending credentials before clients move to them) passes at once, beside the current one.
    *clock.0.lock().unwrap() += REREAD_INTERVAL;
    let pending = put(TOKEN_P).version_stages("AWSPENDING");
    pending.send().await.unwrap();
    assert_eq!(
        answer(&cache, TOKEN_P).await,
        200,
        "a staged token passes before promotion"
    );
    assert_eq!(answer(&cache, TOKEN_B).await, 200, "and the current one still does");

    *clock.0.lock().unwrap() += REREAD_INTERVAL;
    put(TOKEN_C).send().await.unwrap();
    assert_eq!(answer(&cache, TOKEN_C).await, 200);
    assert_eq!(answer(&cache, TOKEN_B).await, 200, "B is AWSPREVIOUS now");
    assert_eq!(answer(&cache, TOKEN_A).await, 401, "A is two rotations old");

    *clock.0.lock().unwrap() += GRACE;
    assert_eq!(answer(&cache, TOKEN_B).await, 401, "the overlap ends with the grace");
    assert_eq!(
        answer(&cache, TOKEN_P).await,
        401,
        "a pending version left staged ends with it too"
    );
    assert_eq!(answer(&cache, TOKEN_C).await, 200);
}

/// A rotation as AWS's rotation Lambdas run it: `createSecret` stages token B as AWSPENDING,
/// `testSecret` calls the service with it, `finishSecret` moves AWSCURRENT to it. Braze may be
/// switched to B at any point after the staging, and no answer is a 401.
#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_rotation_lambdas_staged_token_passes_from_create_to_finish() {
    let (client, arn, clock, cache) = secret_holding(TOKEN_A, "staged").await;
    assert_eq!(answer(&cache, TOKEN_A).await, 200);

    *clock.0.lock().unwrap() += REREAD_INTERVAL;
    let staged = client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(secret_text(TOKEN_B))
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer(&cache, TOKEN_B).await,
        200,
        "testSecret's call with the pending token"
    );
    assert_eq!(answer(&cache, TOKEN_A).await, 200, "Braze not switched yet");

    let current = client.describe_secret().secret_id(&arn).send().await.unwrap();
    let old_version = current
        .version_ids_to_stages
        .unwrap()
        .into_iter()
        .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
        .map(|(id, _)| id)
        .unwrap();
    *clock.0.lock().unwrap() += REREAD_INTERVAL;
    client
        .update_secret_version_stage()
        .secret_id(&arn)
        .version_stage("AWSCURRENT")
        .move_to_version_id(staged.version_id.unwrap())
        .remove_from_version_id(old_version)
        .send()
        .await
        .unwrap();
    *clock.0.lock().unwrap() += TTL;
    assert_eq!(answer(&cache, TOKEN_B).await, 200, "after finishSecret");
    assert_eq!(
        answer(&cache, TOKEN_A).await,
        200,
        "A is AWSPREVIOUS: Braze may still use it"
    );
    assert_eq!(answer(&cache, TOKEN_C).await, 401);
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_secret_with_no_previous_version_starts_and_an_explicit_list_passes_every_token() {
    let client = client();
    let text = serde_json::json!({"SEGMENT_WRITE_KEY": "wk", "CURRENTS_AUTH_TOKEN": [TOKEN_B, TOKEN_A]});
    let name = format!("currents-segment-token-list-{}", fastrand::u32(..));
    let created = client.create_secret().name(name).secret_string(text.to_string());
    let arn = created.send().await.unwrap().arn.unwrap();
    let clock = Arc::new(TestClock(Mutex::new(OffsetDateTime::now_utc())));
    let source = Arc::new(SecretsManagerSource::new(client, &arn));
    let cache = SecretsCache::load_with_grace(source, clock, TTL, GRACE).await.unwrap();
    assert_eq!(answer(&cache, TOKEN_A).await, 200);
    assert_eq!(answer(&cache, TOKEN_B).await, 200);
    assert_eq!(answer(&cache, TOKEN_C).await, 401);
}

#[tokio::test]
async fn the_environment_token_works_as_before() {
    let one = common::config(&[("CURRENTS_AUTH_TOKEN", TOKEN_A)]);
    assert_eq!(status(one.clone(), TOKEN_A).await, 200);
    assert_eq!(status(one, TOKEN_B).await, 401);
    let list = format!(r#"["{TOKEN_B}","{TOKEN_A}"]"#);
    let both = common::config(&[("CURRENTS_AUTH_TOKEN", &list)]);
    assert_eq!(status(both.clone(), TOKEN_A).await, 200);
    assert_eq!(status(both, TOKEN_B).await, 200);
}
