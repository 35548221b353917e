//! Configuration from the environment, read once at start-up, by one parser
//! ([`Env`]) for the run ([`Config`]), the webhook ([`WebhookConfig`]) and
//! the SDK settings (`aws::sdk::SdkSettings`). Identity values have no
//! default: a missing one stops start-up with the variable's name. Tuning
//! values have documented defaults (docs/configuration.md); an invalid one
//! is an error naming the variable and what it accepts. Secrets kept in
//! Secrets Manager are read into the environment first
//! (`aws::secrets::resolve`), so a configuration is complete once parsed.

mod env;
mod mail_events;
mod pay_page;
mod webhook;

use std::time::Duration;

use chrono_tz::Tz;

use crate::contact::EmailAddress;
pub use env::Env;
pub use mail_events::{MailEventsConfig, MAIL_EVENTS_ENV_VARS};
pub use pay_page::{origin_of, PayPageConfig, PAY_PAGE_ENV_VARS};
pub use webhook::{Receipts, WebhookConfig, WEBHOOK_ENV_VARS};

/// Every variable the `next-at` function reads: the table, and what the
/// policy is loaded with ([`MessageConfig`]).
pub const NEXT_AT_ENV_VARS: &[&str] = &[
    "TABLE_NAME",
    "BUSINESS_NAME",
    "BUSINESS_TIMEZONE",
    "CONTACT_LINE",
    "DEFAULT_LOCALE",
    "PAY_LINK_BASE_URL",
    "PAY_LINK_DAYS",
    "PAY_LINK_TTL_DAYS",
    "POLICY_FILE",
    "TEMPLATE_DIR",
];

/// Every variable [`Config::from_env`] reads, for documentation and for the
/// test that compares them with the deployment template.
pub const ENV_VARS: &[&str] = &[
    "TABLE_NAME",
    "SENDER_EMAIL",
    "BUSINESS_NAME",
    "BUSINESS_TIMEZONE",
    "PAY_LINK_BASE_URL",
    "PAY_LINK_DAYS",
    "SES_CONFIGURATION_SET",
    "SEND_CONCURRENCY",
    "CLAIM_LEASE_SECONDS",
    "SMS_MAX_SEGMENTS",
    "DEFAULT_LOCALE",
    "REPLY_TO_EMAIL",
    "INBOUND_DOMAIN",
    "BCC_EMAIL",
    "CONTACT_LINE",
    "TEMPLATE_DIR",
    "SMS_OPT_OUT",
    "POLICY_FILE",
    "ESCALATION_TOPIC_ARN",
    "METRIC_NAMESPACE",
    "DEADLINE_MARGIN_SECONDS",
    "EMAIL_RATE",
    "SMS_RATE",
    "FULL_READ_HOURS",
    "NEXT_AT_INDEX",
    "RESCHEDULE_DAYS",
    "WORK_QUEUE_URL",
    "MAX_WORKERS",
    "WORKER_SEND_RATE",
    "REPORT_EMAILS",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {why}")]
    Invalid { name: &'static str, why: String },
}

impl ConfigError {
    pub fn invalid(name: &'static str, why: impl Into<String>) -> Self {
        Self::Invalid {
            name,
            why: why.into(),
        }
    }
}

/// What composing a reminder needs: who the business is, its default
/// calendar and language, its templates and policy, and its pay links. Part
/// of [`Config`]; read alone by `dunning-admin preview --file`, which sends
/// nothing and needs nothing else.
#[derive(Clone)]
pub struct MessageConfig {
    pub business_name: String,
    pub business_timezone: Tz,
    /// The language of customers whose invoice has no (supported) `locale`.
    pub default_locale: crate::render::Locale,
    /// A line shown in every email, e.g. "Questions? Call +44 20 7946 0000".
    pub contact_line: Option<String>,
    /// A directory of templates replacing or adding to the built-in ones.
    pub template_dir: Option<String>,
    /// A policy file to use instead of the compiled-in default.
    pub policy_file: Option<String>,
    /// Where the pay page is served: a reminder links to `<base>/<token>`.
    pub pay_link_base_url: String,
    /// Days a pay link opens its page (`PAY_LINK_DAYS`, default 45).
    pub pay_link_days: u64,
}

/// Names the business's settings that identify it, not its templates.
impl std::fmt::Debug for MessageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageConfig")
            .field("business_timezone", &self.business_timezone)
            .field("pay_link_base_url", &self.pay_link_base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct Config {
    pub table_name: String,
    pub sender_email: EmailAddress,
    pub messages: MessageConfig,
    pub ses_configuration_set: Option<String>,
    pub send_concurrency: usize,
    pub claim_lease: Duration,
    /// Most segments an SMS may take; every SMS is made to fit ([`crate::render::Renderer::sms_fitting`]).
    pub sms_max_segments: usize,
    /// Where customers' replies go (default: the sender).
    pub reply_to: Option<EmailAddress>,
    /// Replies to a reminder go to `reply+<its link>@INBOUND_DOMAIN` (SES
    /// receives them for `mail-events`, which pauses the customer and
    /// forwards the reply to `REPLY_TO_EMAIL`); unset: to `REPLY_TO_EMAIL`.
    pub inbound_domain: Option<String>,
    /// A blind copy of every reminder email (e.g. the finance team).
    pub bcc: Option<EmailAddress>,
    /// Opt-out lines appended to SMS by calling-code prefix, e.g.
    /// `SMS_OPT_OUT="+1=Reply STOP to opt out;+44=Text STOP to opt out"`.
    pub sms_opt_out: Vec<(String, String)>,
    /// SNS topic for escalation events (required when the policy escalates).
    pub escalation_topic_arn: Option<String>,
    /// CloudWatch namespace of the run's Embedded Metric Format metrics.
    pub metric_namespace: String,
    /// A run takes no new work when less than this is left before the Lambda deadline.
    pub deadline_margin: Duration,
    /// Emails per second at most (the SES account's sending rate); 0 = unlimited.
    pub email_rate: u64,
    /// SMS parts (segments) per second at most (the SNS account's SMS rate); 0 = unlimited.
    pub sms_rate: u64,
    /// Hours between full reads of the due window (`FULL_READ_HOURS`); runs in
    /// between read only the due dates whose step just began. `None`: derived
    /// from the policy's send window ([`crate::reads::default_full_read_interval`]);
    /// `Some(0)`: every run reads the whole window.
    pub full_read_hours: Option<u64>,
    /// `NEXT_AT_INDEX=true`: hourly runs read the next-at index (the
    /// invoices whose next step has come, [`crate::next_at`]) instead of
    /// due-date bands. Only where the table's stream feeds the `next-at`
    /// function, which keeps `next_at` current for every writer.
    pub next_at_index: bool,
    /// With the next-at index, days between the full reads that write every
    /// open invoice's `next_at` again (`RESCHEDULE_DAYS`, default 28): the
    /// safety net for a stream record lost.
    pub reschedule_days: u64,
    /// The SQS queue of worker orders (`WORK_QUEUE_URL`); without it a run never fans out.
    pub work_queue_url: Option<String>,
    /// Most workers one run fans out to (`MAX_WORKERS`, default 1: never).
    pub max_workers: u32,
    /// Messages per second one invocation sustains on its own (`WORKER_SEND_RATE`).
    pub worker_send_rate: u64,
    /// Who gets the weekly report (`REPORT_EMAILS`, comma-separated, at most
    /// [`MAX_REPORT_EMAILS`]); empty: the report mode sends nothing.
    pub report_emails: Vec<EmailAddress>,
}

/// Most addresses `REPORT_EMAILS` may name.
pub const MAX_REPORT_EMAILS: usize = 10;

/// Never prints the secret.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("table_name", &self.table_name)
            .field("messages", &self.messages)
            .finish_non_exhaustive()
    }
}

impl MessageConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::parse(&Env::new(get))
    }

    fn parse<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let business_timezone = env
            .required("BUSINESS_TIMEZONE")?
            .parse::<Tz>()
            .map_err(|_| {
                ConfigError::invalid(
                    "BUSINESS_TIMEZONE",
                    "not an IANA time zone such as Europe/London",
                )
            })?;
        let pay_link_base_url = env.required("PAY_LINK_BASE_URL")?;
        if origin_of(&pay_link_base_url).is_none() {
            return Err(ConfigError::invalid(
                "PAY_LINK_BASE_URL",
                "must be an https:// URL (http:// only on loopback)",
            ));
        }
        if env.optional("PAY_LINK_TTL_DAYS").is_some() {
            // Renamed with the short links (signed links had a 30-day default).
            return Err(ConfigError::invalid(
                "PAY_LINK_TTL_DAYS",
                "was renamed PAY_LINK_DAYS (default 45)",
            ));
        }
        let contact_line = env.optional("CONTACT_LINE");
        if contact_line
            .as_ref()
            .is_some_and(|l| l.chars().any(char::is_control) || l.chars().count() > 200)
        {
            return Err(ConfigError::invalid(
                "CONTACT_LINE",
                "one line of at most 200 characters",
            ));
        }
        Ok(Self {
            business_name: env.required("BUSINESS_NAME")?,
            business_timezone,
            default_locale: env.locale("DEFAULT_LOCALE")?,
            contact_line,
            template_dir: env.optional("TEMPLATE_DIR"),
            policy_file: env.optional("POLICY_FILE"),
            pay_link_base_url: pay_link_base_url.trim_end_matches('/').to_owned(),
            pay_link_days: env.number("PAY_LINK_DAYS", 45, 1..=365)?,
        })
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `get`, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(get);
        let sender_email = env
            .email("SENDER_EMAIL")?
            .ok_or(ConfigError::Missing("SENDER_EMAIL"))?;
        Ok(Self {
            messages: MessageConfig::parse(&env)?,
            reply_to: env.email("REPLY_TO_EMAIL")?,
            inbound_domain: env
                .optional("INBOUND_DOMAIN")
                .map(|d| d.trim().to_ascii_lowercase()),
            bcc: env.email("BCC_EMAIL")?,
            sms_opt_out: parse_opt_out(env.optional("SMS_OPT_OUT").unwrap_or_default()).ok_or(
                ConfigError::invalid(
                    "SMS_OPT_OUT",
                    "entries like \"+1=Reply STOP to opt out\" separated by ;",
                ),
            )?,
            table_name: env.required("TABLE_NAME")?,
            sender_email,
            ses_configuration_set: env.optional("SES_CONFIGURATION_SET"),
            send_concurrency: env.number("SEND_CONCURRENCY", 8, 1..=256)? as usize,
            claim_lease: Duration::from_secs(env.number(
                "CLAIM_LEASE_SECONDS",
                900,
                60..=86_400,
            )?),
            sms_max_segments: env.number("SMS_MAX_SEGMENTS", 2, 1..=10)? as usize,
            escalation_topic_arn: env.optional("ESCALATION_TOPIC_ARN"),
            metric_namespace: env
                .optional("METRIC_NAMESPACE")
                .map_or_else(|| "Dunning".to_owned(), |v| v.trim().to_owned()),
            deadline_margin: Duration::from_secs(env.number(
                "DEADLINE_MARGIN_SECONDS",
                60,
                5..=600,
            )?),
            email_rate: env.number("EMAIL_RATE", 14, 0..=100_000)?,
            sms_rate: env.number("SMS_RATE", 20, 0..=100_000)?,
            full_read_hours: env.optional_number("FULL_READ_HOURS", 0..=24)?,
            next_at_index: env.flag("NEXT_AT_INDEX")?,
            reschedule_days: env.number("RESCHEDULE_DAYS", 28, 1..=365)?,
            work_queue_url: env.optional("WORK_QUEUE_URL"),
            max_workers: env.number("MAX_WORKERS", 1, 1..=100)? as u32,
            worker_send_rate: env.number("WORKER_SEND_RATE", 50, 1..=10_000)?,
            report_emails: report_emails(env.optional("REPORT_EMAILS").unwrap_or_default())?,
        })
    }
}

fn report_emails(text: String) -> Result<Vec<EmailAddress>, ConfigError> {
    let list: Option<Vec<EmailAddress>> = text
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(EmailAddress::parse)
        .collect();
    match list {
        Some(list) if list.len() <= MAX_REPORT_EMAILS => Ok(list),
        _ => Err(ConfigError::invalid(
            "REPORT_EMAILS",
            "at most 10 e-mail addresses separated by commas",
        )),
    }
}

fn parse_opt_out(text: String) -> Option<Vec<(String, String)>> {
    text.split(';')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (prefix, line) = entry.split_once('=')?;
            let (prefix, line) = (prefix.trim(), line.trim());
            let ok = prefix.len() > 1
                && prefix.starts_with('+')
                && prefix[1..].bytes().all(|b| b.is_ascii_digit())
                && !line.is_empty()
                && !line.chars().any(char::is_control);
            ok.then(|| (prefix.to_owned(), line.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const BASE: &[(&str, &str)] = &[
        ("TABLE_NAME", "invoices"),
        ("SENDER_EMAIL", "billing@example.com"),
        ("BUSINESS_NAME", "Acme"),
        ("BUSINESS_TIMEZONE", "Europe/London"),
        ("PAY_LINK_BASE_URL", "https://pay.example.com/"),
    ];

    #[test]
    fn required_values_and_defaults() {
        let cfg = Config::from_lookup(env(BASE)).unwrap();
        assert_eq!(cfg.table_name, "invoices");
        assert_eq!(cfg.messages.business_timezone, chrono_tz::Europe::London);
        assert_eq!(cfg.claim_lease, Duration::from_secs(900));
        assert_eq!(cfg.send_concurrency, 8);
        assert_eq!(cfg.messages.pay_link_days, 45);
        // One slash between the base and the token, however the base is written.
        assert_eq!(cfg.messages.pay_link_base_url, "https://pay.example.com");
    }

    #[test]
    fn each_missing_or_bad_variable_is_named() {
        for (i, (name, _)) in BASE.iter().enumerate() {
            let mut pairs = BASE.to_vec();
            pairs.remove(i);
            let err = Config::from_lookup(env(&pairs)).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        let mut bad = BASE.to_vec();
        bad.push(("SEND_CONCURRENCY", "zero"));
        assert!(Config::from_lookup(env(&bad))
            .unwrap_err()
            .to_string()
            .contains("SEND_CONCURRENCY"));
        let mut bad_reply = BASE.to_vec();
        bad_reply.push(("REPLY_TO_EMAIL", "accounts"));
        assert!(Config::from_lookup(env(&bad_reply))
            .unwrap_err()
            .to_string()
            .contains("REPLY_TO_EMAIL"));
        let mut crlf = BASE.to_vec();
        crlf.push(("CONTACT_LINE", "Call us\r\nBcc: x@y.z"));
        assert!(Config::from_lookup(env(&crlf))
            .unwrap_err()
            .to_string()
            .contains("CONTACT_LINE"));
        let mut opt = BASE.to_vec();
        opt.push(("SMS_OPT_OUT", "+1=Reply STOP to opt out; +44=Text STOP"));
        let cfg = Config::from_lookup(env(&opt)).unwrap();
        assert_eq!(
            cfg.sms_opt_out,
            [
                ("+1".to_owned(), "Reply STOP to opt out".to_owned()),
                ("+44".to_owned(), "Text STOP".to_owned())
            ]
        );
        opt.push(("SMS_OPT_OUT", "US=STOP"));
        assert!(Config::from_lookup(env(&opt))
            .unwrap_err()
            .to_string()
            .contains("SMS_OPT_OUT"));
        let mut bad_locale = BASE.to_vec();
        bad_locale.push(("DEFAULT_LOCALE", "fr"));
        assert!(Config::from_lookup(env(&bad_locale))
            .unwrap_err()
            .to_string()
            .contains("DEFAULT_LOCALE"));
        let mut renamed = BASE.to_vec();
        renamed.push(("PAY_LINK_TTL_DAYS", "30"));
        assert!(Config::from_lookup(env(&renamed))
            .unwrap_err()
            .to_string()
            .contains("renamed PAY_LINK_DAYS"));
        let mut days = BASE.to_vec();
        days.push(("PAY_LINK_DAYS", "400"));
        assert!(Config::from_lookup(env(&days))
            .unwrap_err()
            .to_string()
            .contains("PAY_LINK_DAYS"));
        let mut bad_tz = BASE.to_vec();
        bad_tz[3] = ("BUSINESS_TIMEZONE", "Mars/Olympus");
        assert!(Config::from_lookup(env(&bad_tz))
            .unwrap_err()
            .to_string()
            .contains("BUSINESS_TIMEZONE"));
    }
}
