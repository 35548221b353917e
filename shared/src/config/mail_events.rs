//! What the `mail-events` function reads from its environment.

use super::env::Env;
use super::ConfigError;
use crate::contact::EmailAddress;

/// Every variable [`MailEventsConfig::from_lookup`] reads.
pub const MAIL_EVENTS_ENV_VARS: &[&str] = &[
    "TABLE_NAME",
    "ESCALATION_TOPIC_ARN",
    "INBOUND_DOMAIN",
    "REPLY_PAUSE_DAYS",
    "REPLY_TO_EMAIL",
    "SENDER_EMAIL",
];

#[derive(Debug, Clone)]
pub struct MailEventsConfig {
    pub table_name: String,
    /// Where "the customer has no working e-mail" goes (the run's
    /// escalation topic); unset: only recorded and logged.
    pub escalation_topic_arn: Option<String>,
    /// Replies to reminders arrive at `reply+<token>@INBOUND_DOMAIN`; unset: none.
    pub inbound_domain: Option<String>,
    /// How long a reply pauses the customer's reminders (`REPLY_PAUSE_DAYS`, 5).
    pub reply_pause_days: u64,
    /// Replies are forwarded to `REPLY_TO_EMAIL` (else `SENDER_EMAIL`), from
    /// `SENDER_EMAIL`: (to, from).
    pub forward: Option<(EmailAddress, EmailAddress)>,
}

impl MailEventsConfig {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(get);
        // Replies go to REPLY_TO_EMAIL, else to the sender (as a reply
        // to a reminder would without INBOUND_DOMAIN); always from the sender.
        let sender = env.email("SENDER_EMAIL")?;
        let forward = match (env.email("REPLY_TO_EMAIL")?, sender) {
            (Some(to), Some(from)) => Some((to, from)),
            (Some(_), None) => return Err(ConfigError::Missing("SENDER_EMAIL")),
            (None, Some(from)) => Some((from.clone(), from)),
            (None, None) => None,
        };
        let inbound_domain = env
            .optional("INBOUND_DOMAIN")
            .map(|d| d.trim().to_ascii_lowercase());
        if let (Some(domain), Some((to, _))) = (&inbound_domain, &forward) {
            if to
                .as_str()
                .to_ascii_lowercase()
                .ends_with(&format!("@{domain}"))
            {
                return Err(ConfigError::invalid(
                    "REPLY_TO_EMAIL",
                    "replies are forwarded there (else to SENDER_EMAIL), an address at INBOUND_DOMAIN itself: they would come back; use an address elsewhere",
                ));
            }
        }
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            escalation_topic_arn: env.optional("ESCALATION_TOPIC_ARN"),
            inbound_domain,
            reply_pause_days: env.number("REPLY_PAUSE_DAYS", 5, 1..=60)?,
            forward,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_required_and_the_topic_optional() {
        assert!(matches!(
            MailEventsConfig::from_lookup(|_| None),
            Err(ConfigError::Missing("TABLE_NAME"))
        ));
        let c = MailEventsConfig::from_lookup(|k| (k == "TABLE_NAME").then(|| "t".into())).unwrap();
        assert_eq!(c.table_name, "t");
        assert_eq!(c.escalation_topic_arn, None);
        assert_eq!(
            (c.inbound_domain, c.reply_pause_days, c.forward),
            (None, 5, None)
        );
        let with = |k: &str, v: &str| {
            let (k, v) = (k.to_owned(), v.to_owned());
            MailEventsConfig::from_lookup(move |n| match n {
                "TABLE_NAME" => Some("t".into()),
                n if n == k => Some(v.clone()),
                _ => None,
            })
        };
        assert!(matches!(
            with("REPLY_PAUSE_DAYS", "0"),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            with("REPLY_TO_EMAIL", "finance@acme.example"),
            Err(ConfigError::Missing("SENDER_EMAIL"))
        ));
        assert_eq!(
            with("INBOUND_DOMAIN", " In.Acme.Example ")
                .unwrap()
                .inbound_domain
                .as_deref(),
            Some("in.acme.example")
        );
        let sender = with("SENDER_EMAIL", "billing@acme.example").unwrap();
        let (to, from) = sender.forward.unwrap();
        assert_eq!(
            (to.as_str(), from.as_str()),
            ("billing@acme.example", "billing@acme.example")
        );
    }

    #[test]
    fn replies_are_never_forwarded_back_to_the_inbound_domain() {
        let looped = MailEventsConfig::from_lookup(|k| {
            Some(
                match k {
                    "TABLE_NAME" => "t",
                    "INBOUND_DOMAIN" => "in.acme.example",
                    "SENDER_EMAIL" => "billing@IN.acme.example",
                    _ => return None,
                }
                .to_owned(),
            )
        });
        assert!(matches!(
            looped,
            Err(ConfigError::Invalid {
                name: "REPLY_TO_EMAIL",
                ..
            })
        ));
    }
}
