//! The payment webhook's configuration: its table, the signing secrets
//! (several during a rotation), the signature tolerance and receipts.

use super::{ConfigError, Env};
use crate::contact::EmailAddress;
use crate::render::Locale;

/// Every variable [`WebhookConfig::from_lookup`] reads (and the ARN that
/// `aws::secrets::resolve` reads its secrets from).
pub const WEBHOOK_ENV_VARS: &[&str] = &[
    "TABLE_NAME",
    "WEBHOOK_SECRETS",
    "WEBHOOK_SECRETS_ARN",
    "STRIPE_WEBHOOK_SECRETS",
    "STRIPE_WEBHOOK_SECRETS_ARN",
    "STRIPE_LIVEMODE",
    "METRIC_NAMESPACE",
    "STRIPE_ACCOUNT_IDS",
    "SIGNATURE_TOLERANCE_SECONDS",
    "RECEIPT_EMAILS",
    "SENDER_EMAIL",
    "BUSINESS_NAME",
    "DEFAULT_LOCALE",
    "ESCALATION_TOPIC_ARN",
    "STRIPE_SYNC",
    "BUSINESS_TIMEZONE",
];

/// Receipt emails: off unless `RECEIPT_EMAILS=true`.
#[derive(Debug, Clone)]
pub struct Receipts {
    pub sender: EmailAddress,
    pub business_name: String,
    pub default_locale: Locale,
}

#[derive(Clone)]
pub struct WebhookConfig {
    pub table_name: String,
    /// Secrets for `Dunning-Signature`, newest first; several during a rotation.
    pub generic_secrets: Vec<Vec<u8>>,
    /// Stripe endpoint secrets (`whsec_...`) for `Stripe-Signature`.
    pub stripe_secrets: Vec<Vec<u8>>,
    pub tolerance_secs: i64,
    /// Stripe events of this mode only (`STRIPE_LIVEMODE`, default true: a
    /// test-mode secret in the rotation list must never mark real invoices paid).
    pub stripe_livemode: bool,
    /// Connect accounts whose events are taken (`STRIPE_ACCOUNT_IDS`); empty:
    /// any. An event without `account` is the endpoint's own account's.
    pub stripe_account_ids: Vec<String>,
    /// CloudWatch namespace of the answers' Embedded Metric Format records.
    pub metric_namespace: String,
    /// When set, a payment that completes an invoice sends the customer a receipt.
    pub receipts: Option<Receipts>,
    /// SNS topic an opened dispute is published to (`ESCALATION_TOPIC_ARN`,
    /// the run's escalation topic); unset: the dispute is only recorded and logged.
    pub escalation_topic_arn: Option<String>,
    /// `STRIPE_SYNC=true`: Stripe invoices' events create and update invoice
    /// items ([`crate::webhook::sync`]), their dates in this zone
    /// (`BUSINESS_TIMEZONE`, required then).
    pub stripe_sync: Option<chrono_tz::Tz>,
}

/// Never prints a secret.
impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("table_name", &self.table_name)
            .field("generic_secrets", &self.generic_secrets.len())
            .field("stripe_secrets", &self.stripe_secrets.len())
            .field("tolerance_secs", &self.tolerance_secs)
            .finish()
    }
}

impl WebhookConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Secrets are comma-separated lists; at least one of the two must be set
    /// (directly, or read from `WEBHOOK_SECRETS_ARN` and
    /// `STRIPE_WEBHOOK_SECRETS_ARN` into the environment first).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(get);
        let list = |name| secret_list(&env.optional(name).unwrap_or_default());
        let table_name = env.required("TABLE_NAME")?;
        let generic_secrets = list("WEBHOOK_SECRETS");
        let stripe_secrets = list("STRIPE_WEBHOOK_SECRETS");
        if generic_secrets.is_empty()
            && stripe_secrets.is_empty()
            && (env.optional("WEBHOOK_SECRETS_ARN").is_some()
                || env.optional("STRIPE_WEBHOOK_SECRETS_ARN").is_some())
        {
            return Err(ConfigError::invalid(
                "WEBHOOK_SECRETS_ARN",
                "is read from Secrets Manager at start-up (aws::secrets::resolve), not here",
            ));
        }
        check_secrets(&generic_secrets, &stripe_secrets)?;
        let tolerance_secs = env.number("SIGNATURE_TOLERANCE_SECONDS", 300, 1..=3600)? as i64;
        let stripe_livemode = match env.optional("STRIPE_LIVEMODE").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => return Err(ConfigError::invalid("STRIPE_LIVEMODE", "true or false")),
        };
        let stripe_account_ids: Vec<String> = env
            .optional("STRIPE_ACCOUNT_IDS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if stripe_account_ids.iter().any(|a| !a.starts_with("acct_")) {
            return Err(ConfigError::invalid(
                "STRIPE_ACCOUNT_IDS",
                "comma-separated Stripe account ids (acct_...)",
            ));
        }
        let receipts = if env.flag("RECEIPT_EMAILS")? {
            Some(Receipts {
                sender: env
                    .email("SENDER_EMAIL")?
                    .ok_or(ConfigError::Missing("SENDER_EMAIL"))?,
                business_name: env.required("BUSINESS_NAME")?,
                default_locale: env.locale("DEFAULT_LOCALE")?,
            })
        } else {
            None
        };
        Ok(Self {
            table_name,
            generic_secrets,
            stripe_secrets,
            tolerance_secs,
            stripe_livemode,
            stripe_account_ids,
            metric_namespace: env
                .optional("METRIC_NAMESPACE")
                .unwrap_or_else(|| "Dunning".to_owned()),
            receipts,
            escalation_topic_arn: env.optional("ESCALATION_TOPIC_ARN"),
            stripe_sync: if env.flag("STRIPE_SYNC")? {
                let name = env.required("BUSINESS_TIMEZONE")?;
                Some(name.parse().map_err(|_| {
                    ConfigError::invalid(
                        "BUSINESS_TIMEZONE",
                        "an IANA time zone (e.g. Europe/London)",
                    )
                })?)
            } else {
                None
            },
        })
    }
}

fn secret_list(text: &str) -> Vec<Vec<u8>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.as_bytes().to_vec())
        .collect()
}

fn check_secrets(generic: &[Vec<u8>], stripe: &[Vec<u8>]) -> Result<(), ConfigError> {
    if generic.is_empty() && stripe.is_empty() {
        return Err(ConfigError::Missing("WEBHOOK_SECRETS"));
    }
    if generic.iter().chain(stripe).any(|s| s.len() < 16) {
        return Err(ConfigError::invalid(
            "WEBHOOK_SECRETS",
            "each secret must be at least 16 characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn receipts_need_a_sender_and_a_known_locale() {
        let base = lookup(&[("TABLE_NAME", "t"), ("WEBHOOK_SECRETS", "0123456789abcdef")]);
        assert!(WebhookConfig::from_lookup(base).unwrap().receipts.is_none());
        let err = WebhookConfig::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("WEBHOOK_SECRETS", "0123456789abcdef"),
            ("RECEIPT_EMAILS", "true"),
            ("SENDER_EMAIL", "billing@example.com"),
            ("BUSINESS_NAME", "Acme"),
            ("DEFAULT_LOCALE", "xx"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("DEFAULT_LOCALE"), "{err}");
        let err = WebhookConfig::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("WEBHOOK_SECRETS", "short"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("16 characters"), "{err}");
    }
}
