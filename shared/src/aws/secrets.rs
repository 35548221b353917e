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
/// `WEBHOOK_SECRETS` from `WEBHOOK_SECRETS_ARN` and `STRIPE_WEBHOOK_SECRETS`
/// from `STRIPE_WEBHOOK_SECRETS_ARN` (each secret string a comma-separated
/// list, as stored; a JSON object with both keys in `WEBHOOK_SECRETS_ARN`,
/// as before 0.16, is still read).
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
    // Each list of signing secrets in a secret of its own, the secret string
    // as it is (any character is safe: nothing is built around it).
    for (arn_name, name) in [
        ("WEBHOOK_SECRETS_ARN", "WEBHOOK_SECRETS"),
        ("STRIPE_WEBHOOK_SECRETS_ARN", "STRIPE_WEBHOOK_SECRETS"),
    ] {
        let Some(arn) = arn(arn_name) else { continue };
        let text = fetch(sdk, &arn).await?;
        let legacy = (arn_name == "WEBHOOK_SECRETS_ARN")
            .then(|| serde_json::from_str::<serde_json::Value>(&text).ok())
            .flatten()
            .filter(serde_json::Value::is_object);
        let fields: Vec<(&str, String)> = match legacy {
            // Before 0.16: one JSON object holding both lists.
            Some(value) => ["WEBHOOK_SECRETS", "STRIPE_WEBHOOK_SECRETS"]
                .into_iter()
                .map(|name| match value.get(name) {
                    None | Some(serde_json::Value::Null) => Ok((name, String::new())),
                    Some(serde_json::Value::String(text)) => Ok((name, text.clone())),
                    Some(_) => Err(SecretError::new(
                        arn.clone(),
                        format!("{name} is not a comma-separated string"),
                    )),
                })
                .collect::<Result<_, _>>()?,
            None => vec![(name, text.trim().to_owned())],
        };
        let mut here = false;
        for (name, field) in fields {
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
            here |= !secrets.is_empty();
            overlay.insert(name.to_owned(), field);
        }
        if !here {
            return Err(SecretError::new(
                arn,
                format!("holds no signing secret (neither WEBHOOK_SECRETS nor STRIPE_WEBHOOK_SECRETS) for {arn_name}"),
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
