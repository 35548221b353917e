//! Secrets from AWS Secrets Manager, read once at cold start: signing keys
//! never sit in the template or the function's environment.

use aws_sdk_secretsmanager::Client;

use super::errors::classify;

#[derive(Debug, thiserror::Error)]
#[error("cannot read secret {arn}: {reason}")]
pub struct SecretError {
    pub arn: String,
    pub reason: String,
}

/// The secret string stored under `arn`.
pub async fn fetch(sdk: &aws_config::SdkConfig, arn: &str) -> Result<String, SecretError> {
    let out = Client::new(sdk)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| SecretError {
            arn: arn.to_owned(),
            reason: classify(&e).to_string(),
        })?;
    out.secret_string.ok_or_else(|| SecretError {
        arn: arn.to_owned(),
        reason: "the secret has no string value".into(),
    })
}
