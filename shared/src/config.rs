//! Configuration from the environment, read once at start-up. Identity values
//! have no default: a missing one stops start-up with the variable's name.
//! Tuning values have documented defaults (docs/configuration.md).

use std::time::Duration;

use chrono_tz::Tz;

use crate::contact::EmailAddress;

/// Every variable [`Config::from_env`] reads, for documentation and for the
/// test that compares them with the deployment template.
pub const ENV_VARS: &[&str] = &[
    "TABLE_NAME",
    "SENDER_EMAIL",
    "BUSINESS_NAME",
    "BUSINESS_TIMEZONE",
    "PAY_LINK_BASE_URL",
    "PAY_LINK_SECRET",
    "PAY_LINK_SECRET_ARN",
    "PAY_LINK_TTL_DAYS",
    "SES_CONFIGURATION_SET",
    "SEND_CONCURRENCY",
    "CLAIM_LEASE_SECONDS",
    "SMS_MAX_SEGMENTS",
    "DEFAULT_LOCALE",
    "REPLY_TO_EMAIL",
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
    "WORK_QUEUE_URL",
    "MAX_WORKERS",
    "WORKER_SEND_RATE",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {why}")]
    Invalid {
        name: &'static str,
        why: &'static str,
    },
}

#[derive(Clone)]
pub struct Config {
    pub table_name: String,
    pub sender_email: EmailAddress,
    pub business_name: String,
    pub business_timezone: Tz,
    pub pay_link_base_url: String,
    /// Set directly (local runs) or read from `PAY_LINK_SECRET_ARN` by [`Config::load_secrets`].
    pub pay_link_secret: String,
    pub pay_link_secret_arn: Option<String>,
    pub pay_link_ttl_days: u64,
    pub ses_configuration_set: Option<String>,
    pub send_concurrency: usize,
    pub claim_lease: Duration,
    /// An SMS longer than this many segments is not sent (recorded as failed, `sms_too_long`).
    pub sms_max_segments: usize,
    /// The language of customers whose invoice has no (supported) `locale`.
    pub default_locale: crate::render::Locale,
    /// Where customers' replies go (default: the sender).
    pub reply_to: Option<EmailAddress>,
    /// A blind copy of every reminder email (e.g. the finance team).
    pub bcc: Option<EmailAddress>,
    /// A line shown in every email, e.g. "Questions? Call +44 20 7946 0000".
    pub contact_line: Option<String>,
    /// A directory of templates replacing or adding to the built-in ones.
    pub template_dir: Option<String>,
    /// Opt-out lines appended to SMS by calling-code prefix, e.g.
    /// `SMS_OPT_OUT="+1=Reply STOP to opt out;+44=Text STOP to opt out"`.
    pub sms_opt_out: Vec<(String, String)>,
    /// A policy file to use instead of the compiled-in default.
    pub policy_file: Option<String>,
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
    /// The SQS queue of worker orders (`WORK_QUEUE_URL`); without it a run never fans out.
    pub work_queue_url: Option<String>,
    /// Most workers one run fans out to (`MAX_WORKERS`, default 1: never).
    pub max_workers: u32,
    /// Messages per second one invocation sustains on its own (`WORKER_SEND_RATE`).
    pub worker_send_rate: u64,
}

/// Never prints the secret.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("table_name", &self.table_name)
            .field("business_timezone", &self.business_timezone)
            .field("pay_link_base_url", &self.pay_link_base_url)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the pay-link secret from Secrets Manager when `PAY_LINK_SECRET_ARN` is set.
    pub async fn load_secrets(
        &mut self,
        sdk: &aws_config::SdkConfig,
    ) -> Result<(), crate::aws::secrets::SecretError> {
        if let Some(arn) = &self.pay_link_secret_arn {
            let secret = crate::aws::secrets::fetch(sdk, arn).await?;
            if secret.trim().len() < 16 {
                return Err(crate::aws::secrets::SecretError {
                    arn: arn.clone(),
                    reason: "shorter than 16 characters".into(),
                });
            }
            self.pay_link_secret = secret.trim().to_owned();
        }
        Ok(())
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `get`, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let number = |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
            match get(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or(ConfigError::Invalid {
                        name,
                        why: "not a whole number in the allowed range",
                    }),
            }
        };
        let invalid = |name, why| ConfigError::Invalid { name, why };
        let sender_email = EmailAddress::parse(&required("SENDER_EMAIL")?)
            .ok_or(invalid("SENDER_EMAIL", "not an email address"))?;
        let business_timezone = required("BUSINESS_TIMEZONE")?.parse::<Tz>().map_err(|_| {
            invalid(
                "BUSINESS_TIMEZONE",
                "not an IANA time zone such as Europe/London",
            )
        })?;
        let pay_link_base_url = required("PAY_LINK_BASE_URL")?;
        if !(pay_link_base_url.starts_with("https://") || pay_link_base_url.starts_with("http://"))
        {
            return Err(invalid("PAY_LINK_BASE_URL", "must start with https://"));
        }
        let pay_link_secret_arn = get("PAY_LINK_SECRET_ARN").filter(|v| !v.trim().is_empty());
        let pay_link_secret = match &pay_link_secret_arn {
            Some(_) => String::new(),
            None => required("PAY_LINK_SECRET")?,
        };
        if pay_link_secret_arn.is_none() && pay_link_secret.len() < 16 {
            return Err(invalid("PAY_LINK_SECRET", "must be at least 16 characters"));
        }
        let address = |name: &'static str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| EmailAddress::parse(v.trim()).ok_or(invalid(name, "not an email address")))
                .transpose()
        };
        let contact_line = get("CONTACT_LINE").filter(|v| !v.trim().is_empty());
        if contact_line
            .as_ref()
            .is_some_and(|l| l.chars().any(char::is_control) || l.chars().count() > 200)
        {
            return Err(invalid(
                "CONTACT_LINE",
                "one line of at most 200 characters",
            ));
        }
        Ok(Self {
            reply_to: address("REPLY_TO_EMAIL")?,
            bcc: address("BCC_EMAIL")?,
            contact_line,
            template_dir: get("TEMPLATE_DIR").filter(|v| !v.trim().is_empty()),
            sms_opt_out: parse_opt_out(get("SMS_OPT_OUT").unwrap_or_default()).ok_or(invalid(
                "SMS_OPT_OUT",
                "entries like \"+1=Reply STOP to opt out\" separated by ;",
            ))?,
            table_name: required("TABLE_NAME")?,
            sender_email,
            business_name: required("BUSINESS_NAME")?,
            business_timezone,
            pay_link_base_url,
            pay_link_secret,
            pay_link_secret_arn,
            pay_link_ttl_days: number("PAY_LINK_TTL_DAYS", 30, 1..=365)?,
            ses_configuration_set: get("SES_CONFIGURATION_SET").filter(|v| !v.is_empty()),
            send_concurrency: number("SEND_CONCURRENCY", 8, 1..=256)? as usize,
            claim_lease: Duration::from_secs(number("CLAIM_LEASE_SECONDS", 900, 60..=86_400)?),
            sms_max_segments: number("SMS_MAX_SEGMENTS", 2, 1..=10)? as usize,
            default_locale: match get("DEFAULT_LOCALE").filter(|v| !v.trim().is_empty()) {
                None => crate::render::Locale::En,
                Some(tag) => crate::render::Locale::parse(&tag).ok_or(ConfigError::Invalid {
                    name: "DEFAULT_LOCALE",
                    why: "not a supported locale (en, zh-Hans, zh-Hant)",
                })?,
            },
            policy_file: get("POLICY_FILE").filter(|v| !v.trim().is_empty()),
            escalation_topic_arn: get("ESCALATION_TOPIC_ARN").filter(|v| !v.trim().is_empty()),
            metric_namespace: get("METRIC_NAMESPACE")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "Dunning".to_owned()),
            deadline_margin: Duration::from_secs(number("DEADLINE_MARGIN_SECONDS", 60, 5..=600)?),
            email_rate: number("EMAIL_RATE", 14, 0..=100_000)?,
            sms_rate: number("SMS_RATE", 20, 0..=100_000)?,
            full_read_hours: match get("FULL_READ_HOURS").filter(|v| !v.trim().is_empty()) {
                None => None,
                Some(_) => Some(number("FULL_READ_HOURS", 0, 0..=24)?),
            },
            work_queue_url: get("WORK_QUEUE_URL").filter(|v| !v.trim().is_empty()),
            max_workers: number("MAX_WORKERS", 1, 1..=100)? as u32,
            worker_send_rate: number("WORKER_SEND_RATE", 50, 1..=10_000)?,
        })
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
        ("PAY_LINK_BASE_URL", "https://pay.example.com/i"),
        ("PAY_LINK_SECRET", "0123456789abcdef"),
    ];

    #[test]
    fn required_values_and_defaults() {
        let cfg = Config::from_lookup(env(BASE)).unwrap();
        assert_eq!(cfg.table_name, "invoices");
        assert_eq!(cfg.business_timezone, chrono_tz::Europe::London);
        assert_eq!(cfg.claim_lease, Duration::from_secs(900));
        assert_eq!(cfg.send_concurrency, 8);
        assert!(!format!("{cfg:?}").contains("0123456789abcdef"));
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
        let mut bad_tz = BASE.to_vec();
        bad_tz[3] = ("BUSINESS_TIMEZONE", "Mars/Olympus");
        assert!(Config::from_lookup(env(&bad_tz))
            .unwrap_err()
            .to_string()
            .contains("BUSINESS_TIMEZONE"));
    }
}
