//! The production [`CredentialSource`]: `GetSecretValue` on one secret.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use time::OffsetDateTime;

use super::{CredentialSource, SecretVersion, SecretsError};
use crate::secret::Secret;

/// Reads one secret's `SecretString` and `CreatedDate` (stage `AWSCURRENT`, or `AWSPREVIOUS`
/// and `AWSPENDING` for a token rotation) with
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

impl SecretsManagerSource {
    /// `GetSecretValue` on the version staged `stage`; `None` when no version carries it (only
    /// for a stage other than `AWSCURRENT`: without that one, the secret itself is missing).
    async fn get(&self, stage: &str) -> Result<Option<SecretVersion>, SecretsError> {
        let fetch_error = |reason: String| SecretsError::Fetch {
            secret_id: self.secret_id.clone(),
            reason,
        };
        let sent = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage(stage)
            .send()
            .await;
        let output = match sent {
            Ok(output) => output,
            Err(e)
                if stage != "AWSCURRENT"
                    && e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => {
                let context = aws_sdk_secretsmanager::error::DisplayErrorContext(&e);
                return Err(fetch_error(format!("GetSecretValue ({stage}) failed: {context}")));
            }
        };
        let created = output
            .created_date
            .and_then(|date| OffsetDateTime::from_unix_timestamp(date.secs()).ok());
        let text = output
            .secret_string
            .ok_or_else(|| fetch_error("the secret has no SecretString (binary secrets are not supported)".into()))?;
        Ok(Some(SecretVersion {
            text: Secret::new(text),
            created,
        }))
    }
}

#[async_trait]
impl CredentialSource for SecretsManagerSource {
    async fn fetch(&self) -> Result<SecretVersion, SecretsError> {
        // AWSCURRENT is the documented default; saying so also makes moto, which answers
        // with the first version after a stage move, behave as Secrets Manager does.
        let missing = || SecretsError::Fetch {
            secret_id: self.secret_id.clone(),
            reason: "GetSecretValue (AWSCURRENT) answered without a version".into(),
        };
        self.get("AWSCURRENT").await?.ok_or_else(missing)
    }

    async fn fetch_previous(&self) -> Result<Option<Secret>, SecretsError> {
        Ok(self.get("AWSPREVIOUS").await?.map(|version| version.text))
    }

    async fn fetch_pending(&self) -> Result<Option<SecretVersion>, SecretsError> {
        self.get("AWSPENDING").await
    }
}
