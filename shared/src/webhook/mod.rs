//! The payment webhook: verify the signature over the raw body, parse the
//! event, apply the payment, answer with a status and a JSON body carrying a
//! stable `error` code. Expected failures are answers, not errors; nothing
//! secret, no stack trace and no personal data goes into an answer or a log.

pub mod event;
pub mod signature;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::payment::{Applied, PayableInvoice, Payment, PaymentError};
use crate::ports::{Mailer, Payments};
use event::{parse_generic, parse_stripe, Parsed};
use signature::{verify, SignatureError};

/// Parses a verified body into a payment (or an ignored event).
type Parser = fn(&[u8]) -> Result<Parsed, event::ParseError>;

/// Bodies larger than this are refused unread (413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every variable [`WebhookConfig::from_lookup`] reads.
pub const ENV_VARS: &[&str] = &[
    "TABLE_NAME",
    "WEBHOOK_SECRETS",
    "WEBHOOK_SECRETS_ARN",
    "STRIPE_WEBHOOK_SECRETS",
    "SIGNATURE_TOLERANCE_SECONDS",
    "RECEIPT_EMAILS",
    "SENDER_EMAIL",
    "BUSINESS_NAME",
    "DEFAULT_LOCALE",
];

/// Receipt emails: off unless `RECEIPT_EMAILS=true`.
#[derive(Debug, Clone)]
pub struct Receipts {
    pub sender: crate::contact::EmailAddress,
    pub business_name: String,
    pub default_locale: crate::render::Locale,
}

#[derive(Clone)]
pub struct WebhookConfig {
    pub table_name: String,
    /// Secrets for `Dunning-Signature`, newest first; several during a rotation.
    pub generic_secrets: Vec<Vec<u8>>,
    /// Stripe endpoint secrets (`whsec_...`) for `Stripe-Signature`.
    pub stripe_secrets: Vec<Vec<u8>>,
    /// A Secrets Manager secret holding `{"WEBHOOK_SECRETS": "...", "STRIPE_WEBHOOK_SECRETS": "..."}`,
    /// read by [`WebhookConfig::load_secrets`] at cold start.
    pub secrets_arn: Option<String>,
    pub tolerance_secs: i64,
    /// When set, a payment that completes an invoice sends the customer a receipt.
    pub receipts: Option<Receipts>,
}

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
    /// Secrets are comma-separated lists; at least one of the two must be set.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, crate::config::ConfigError> {
        use crate::config::ConfigError;
        let list = |name| secret_list(&get(name).unwrap_or_default());
        let table_name = get("TABLE_NAME")
            .filter(|v| !v.trim().is_empty())
            .ok_or(ConfigError::Missing("TABLE_NAME"))?;
        let generic_secrets = list("WEBHOOK_SECRETS");
        let stripe_secrets = list("STRIPE_WEBHOOK_SECRETS");
        let secrets_arn = get("WEBHOOK_SECRETS_ARN").filter(|v| !v.trim().is_empty());
        if secrets_arn.is_none() {
            check_secrets(&generic_secrets, &stripe_secrets)?;
        }
        let tolerance_secs =
            match get("SIGNATURE_TOLERANCE_SECONDS").filter(|v| !v.trim().is_empty()) {
                None => 300,
                Some(v) => v
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=3600).contains(n))
                    .ok_or(ConfigError::Invalid {
                        name: "SIGNATURE_TOLERANCE_SECONDS",
                        why: "not a whole number of seconds from 1 to 3600",
                    })?,
            };
        let receipts = match get("RECEIPT_EMAILS").as_deref().map(str::trim) {
            None | Some("" | "false") => None,
            Some("true") => {
                let sender = get("SENDER_EMAIL").ok_or(ConfigError::Missing("SENDER_EMAIL"))?;
                Some(Receipts {
                    sender: crate::contact::EmailAddress::parse(&sender).ok_or(
                        ConfigError::Invalid {
                            name: "SENDER_EMAIL",
                            why: "not an email address",
                        },
                    )?,
                    business_name: get("BUSINESS_NAME")
                        .filter(|v| !v.trim().is_empty())
                        .ok_or(ConfigError::Missing("BUSINESS_NAME"))?,
                    default_locale: get("DEFAULT_LOCALE")
                        .and_then(|t| crate::render::Locale::parse(&t))
                        .unwrap_or(crate::render::Locale::En),
                })
            }
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "RECEIPT_EMAILS",
                    why: "true or false",
                })
            }
        };
        Ok(Self {
            table_name,
            generic_secrets,
            stripe_secrets,
            secrets_arn,
            tolerance_secs,
            receipts,
        })
    }

    /// Reads the signing secrets from Secrets Manager when `WEBHOOK_SECRETS_ARN` is set.
    pub async fn load_secrets(
        &mut self,
        sdk: &aws_config::SdkConfig,
    ) -> Result<(), crate::aws::secrets::SecretError> {
        let Some(arn) = self.secrets_arn.clone() else {
            return Ok(());
        };
        let bad = |reason: &str| crate::aws::secrets::SecretError {
            arn: arn.clone(),
            reason: reason.into(),
        };
        let text = crate::aws::secrets::fetch(sdk, &arn).await?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|_| bad("not a JSON object"))?;
        let field = |name: &str| {
            value
                .get(name)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        self.generic_secrets = secret_list(&field("WEBHOOK_SECRETS"));
        self.stripe_secrets = secret_list(&field("STRIPE_WEBHOOK_SECRETS"));
        check_secrets(&self.generic_secrets, &self.stripe_secrets).map_err(|e| bad(&e.to_string()))
    }

    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

fn secret_list(text: &str) -> Vec<Vec<u8>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.as_bytes().to_vec())
        .collect()
}

fn check_secrets(
    generic: &[Vec<u8>],
    stripe: &[Vec<u8>],
) -> Result<(), crate::config::ConfigError> {
    use crate::config::ConfigError;
    if generic.is_empty() && stripe.is_empty() {
        return Err(ConfigError::Missing("WEBHOOK_SECRETS"));
    }
    if generic.iter().chain(stripe).any(|s| s.len() < 16) {
        return Err(ConfigError::Invalid {
            name: "WEBHOOK_SECRETS",
            why: "each secret must be at least 16 characters",
        });
    }
    Ok(())
}

/// An answer: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

fn error(status: u16, code: &str, message: &str) -> Answer {
    Answer {
        status,
        body: json!({ "error": code, "message": message }),
    }
}

/// Sends the receipt for a payment that completed `invoice`, when enabled.
/// Best effort: the payment is recorded whatever happens here.
async fn send_receipt(
    mailer: Option<&impl Mailer>,
    config: &WebhookConfig,
    invoice: &PayableInvoice,
    payment: &Payment,
) {
    let (Some(receipts), Some(mailer), Some(to)) = (&config.receipts, mailer, &invoice.email)
    else {
        return;
    };
    let locale = crate::render::Locale::resolve(invoice.locale.as_deref(), receipts.default_locale);
    let ctx = crate::render::ReceiptContext {
        business_name: receipts.business_name.clone(),
        customer_name: invoice.customer_name.clone(),
        invoice_id: invoice.id.clone(),
        payment: crate::money::Money::new(payment.amount, payment.currency).to_string(),
        paid_on: locale.long_date(payment.paid_at.date_naive()),
        locale,
    };
    let sent = match crate::render::Renderer::new().receipt(&ctx) {
        Ok(email) => mailer.send(to, &email).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match sent {
        Ok(message_id) => tracing::info!(invoice_id = %invoice.id, %message_id, "receipt sent"),
        Err(error) => tracing::warn!(invoice_id = %invoice.id, %error, "receipt not sent"),
    }
}

/// Handles one delivery. `header` looks a request header up by name
/// (case-insensitively, as HTTP does).
pub async fn handle(
    store: &impl Payments,
    mailer: Option<&impl Mailer>,
    config: &WebhookConfig,
    method: &str,
    header: impl Fn(&str) -> Option<String>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Answer {
    if !method.eq_ignore_ascii_case("POST") {
        return error(405, "method_not_allowed", "use POST");
    }
    if body.len() > MAX_BODY_BYTES {
        return error(413, "body_too_large", "the body is over 64 KiB");
    }
    let (signature, secrets, parse): (_, _, Parser) =
        match (header("stripe-signature"), header("dunning-signature")) {
            (Some(sig), _) => (Some(sig), &config.stripe_secrets, parse_stripe),
            (None, sig) => (sig, &config.generic_secrets, parse_generic),
        };
    if let Err(err) = verify(
        signature.as_deref(),
        body,
        secrets,
        now.timestamp(),
        config.tolerance_secs,
    ) {
        tracing::warn!(reason = %err, "webhook signature refused");
        let code = match err {
            SignatureError::Missing => "signature_missing",
            SignatureError::Malformed => "signature_malformed",
            SignatureError::Stale => "signature_stale",
            SignatureError::Mismatch => "signature_invalid",
        };
        return error(401, code, &err.to_string());
    }
    let payment = match parse(body) {
        Ok(Parsed::Payment(p)) => p,
        Ok(Parsed::Ignored { event_type, reason }) => {
            tracing::info!(%event_type, reason, "webhook event ignored");
            return Answer {
                status: 200,
                body: json!({ "result": "ignored", "event_type": event_type, "reason": reason }),
            };
        }
        Err(err) => {
            tracing::warn!(reason = %err, "webhook body malformed");
            return error(400, "malformed", &err.to_string());
        }
    };
    let outcome = store.apply_payment(&payment, now).await;
    let id = &payment.invoice_id;
    match outcome {
        Ok(Applied::Applied {
            settlement,
            invoice,
        }) => {
            let crate::payment::Settlement {
                amount_paid,
                fully_paid,
                overpaid,
            } = settlement;
            if fully_paid && invoice.status == crate::invoice::InvoiceStatus::Open {
                send_receipt(mailer, config, &invoice, &payment).await;
            }
            tracing::info!(invoice_id = %id, event_id = %payment.event_id, fully_paid, overpaid, "payment applied");
            if overpaid {
                tracing::warn!(invoice_id = %id, "overpayment recorded and flagged on the invoice");
            }
            Answer {
                status: 200,
                body: json!({
                    "result": "applied",
                    "invoice_id": id,
                    "amount_paid": amount_paid.to_string(),
                    "currency": payment.currency.code(),
                    "status": if fully_paid { "paid" } else { "open" },
                    "overpaid": overpaid,
                }),
            }
        }
        Ok(Applied::Duplicate) => {
            tracing::info!(invoice_id = %id, event_id = %payment.event_id, "duplicate delivery");
            Answer {
                status: 200,
                body: json!({ "result": "duplicate", "invoice_id": id }),
            }
        }
        Err(PaymentError::UnknownInvoice) => error(404, "unknown_invoice", "no such invoice"),
        Err(PaymentError::Void) => error(409, "invoice_void", "the invoice is void"),
        Err(PaymentError::InvalidInvoice) => {
            tracing::error!(invoice_id = %id, "payment for an invoice item that fails validation; not applied");
            error(
                409,
                "invoice_invalid",
                "the invoice cannot take payments until it is corrected",
            )
        }
        Err(PaymentError::CurrencyMismatch) => error(
            422,
            "currency_mismatch",
            "the payment currency is not the invoice currency",
        ),
        Err(PaymentError::Busy) => error(503, "busy", "the invoice is busy; retry later"),
        Err(PaymentError::Store(err)) => {
            tracing::error!(invoice_id = %id, error = %err, "payment not applied: store failure");
            error(
                500,
                "internal",
                "the payment could not be recorded; retry later",
            )
        }
    }
}
