//! A Secrets Manager client for moto. `scripts/test` starts `moto_server` on a free loopback
//! port and sets `SECRETS_ENDPOINT` to it. Included with `#[path]` by the tests that need it.

use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};

/// A client for moto at `SECRETS_ENDPOINT` (dummy credentials, short timeouts).
pub fn client() -> Client {
    let endpoint =
        std::env::var("SECRETS_ENDPOINT").expect("SECRETS_ENDPOINT must point at moto_server; run scripts/test");
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .timeout_config(
            aws_sdk_secretsmanager::config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(2))
                .connect_timeout(Duration::from_millis(500))
                .build(),
        )
        .build();
    Client::from_conf(config)
}
