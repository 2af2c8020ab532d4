//! The production [`CredentialSource`]: `GetSecretValue` on one secret.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use super::{CredentialSource, SecretsError};
use crate::secret::Secret;

/// Reads one secret's current `SecretString` (stage `AWSCURRENT`) with
/// [GetSecretValue](https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html).
/// The function's role needs `secretsmanager:GetSecretValue` on this one ARN only.
pub struct SecretsManagerSource {
    client: Client,
    secret_id: String,
}

impl SecretsManagerSource {
    /// Reads `secret_id` (an ARN or a name) through `client`.
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }

    /// Reads `secret_id` with a client built from `config`. Pass the `SdkConfig` the SQS client
    /// is built from (region, credentials, `AWS_ENDPOINT_URL`, short timeouts), so a cold start
    /// or refresh that cannot reach Secrets Manager fails within the invocation.
    pub(crate) fn from_sdk_config(config: &aws_config::SdkConfig, secret_id: impl Into<String>) -> Self {
        Self::new(Client::new(config), secret_id)
    }
}

#[async_trait]
impl CredentialSource for SecretsManagerSource {
    async fn fetch(&self) -> Result<Secret, SecretsError> {
        let fetch_error = |reason: String| SecretsError::Fetch {
            secret_id: self.secret_id.clone(),
            reason,
        };
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            // AWSCURRENT is the documented default; saying so also makes moto, which answers
            // with the first version after a stage move, behave as Secrets Manager does.
            .version_stage("AWSCURRENT")
            .send()
            .await
            .map_err(|e| {
                fetch_error(format!(
                    "GetSecretValue failed: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                ))
            })?;
        output
            .secret_string
            .map(Secret::new)
            .ok_or_else(|| fetch_error("the secret has no SecretString (binary secrets are not supported)".into()))
    }
}
