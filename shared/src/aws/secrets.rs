//! Secrets from AWS Secrets Manager, read once at cold start: signing keys
//! never sit in the template or the function's environment. [`resolve`]
//! puts them into the environment a configuration is parsed from, so a
//! parsed configuration is complete.

use std::collections::HashMap;

use aws_sdk_secretsmanager::Client;

use super::errors::classify;

/// A secret that could not be read or is unusable, named by its ARN (never
/// its value); the SDK's error, when there is one, kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("cannot read secret {arn}: {reason}")]
pub struct SecretError {
    pub arn: String,
    pub reason: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SecretError {
    fn new(arn: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            arn: arn.into(),
            reason: reason.into(),
            source: None,
        }
    }
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
            source: Some(Box::new(e)),
        })?;
    out.secret_string
        .ok_or_else(|| SecretError::new(arn, "the secret has no string value"))
}

/// The process's variables (through `get`) with the secrets their ARNs name
/// read in: `STRIPE_SECRET_KEY` from `STRIPE_SECRET_ARN` (the secret string),
/// `WEBHOOK_SECRETS` and `STRIPE_WEBHOOK_SECRETS` from `WEBHOOK_SECRETS_ARN`
/// (a JSON object with those keys).
pub async fn resolve(
    sdk: &aws_config::SdkConfig,
    get: impl Fn(&str) -> Option<String> + 'static,
) -> Result<Environment, SecretError> {
    let mut overlay = HashMap::new();
    let arn = |name: &str| get(name).filter(|v| !v.trim().is_empty());
    if let Some(arn) = arn("STRIPE_SECRET_ARN") {
        let secret = fetch(sdk, &arn).await?;
        let secret = secret.trim();
        if !(secret.starts_with("sk_") || secret.starts_with("rk_")) {
            return Err(SecretError::new(
                arn,
                "not a Stripe secret or restricted key (sk_... or rk_...)",
            ));
        }
        overlay.insert("STRIPE_SECRET_KEY".to_owned(), secret.to_owned());
    }
    if let Some(arn) = arn("WEBHOOK_SECRETS_ARN") {
        let text = fetch(sdk, &arn).await?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .ok()
            .filter(serde_json::Value::is_object)
            .ok_or_else(|| SecretError::new(arn.clone(), "not a JSON object"))?;
        let mut any = false;
        for name in ["WEBHOOK_SECRETS", "STRIPE_WEBHOOK_SECRETS"] {
            let field = match value.get(name) {
                None | Some(serde_json::Value::Null) => "",
                Some(serde_json::Value::String(text)) => text,
                Some(_) => {
                    return Err(SecretError::new(
                        arn,
                        format!("{name} is not a comma-separated string"),
                    ))
                }
            };
            let secrets: Vec<&str> = field
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if secrets.iter().any(|s| s.len() < 16) {
                return Err(SecretError::new(
                    arn,
                    format!("a secret in {name} is shorter than 16 characters"),
                ));
            }
            any |= !secrets.is_empty();
            overlay.insert(name.to_owned(), field.to_owned());
        }
        if !any {
            return Err(SecretError::new(
                arn,
                "holds neither WEBHOOK_SECRETS nor STRIPE_WEBHOOK_SECRETS",
            ));
        }
    }
    Ok(Environment {
        overlay,
        get: Box::new(get),
    })
}

/// A lookup of environment variables.
type Lookup = Box<dyn Fn(&str) -> Option<String>>;

/// Variables with secrets read in ([`resolve`]).
pub struct Environment {
    overlay: HashMap<String, String>,
    get: Lookup,
}

impl Environment {
    pub fn get(&self, name: &str) -> Option<String> {
        self.overlay.get(name).cloned().or_else(|| (self.get)(name))
    }
}
