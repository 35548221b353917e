//! What the `mail-events` function reads from its environment.

use super::env::Env;
use super::ConfigError;

/// Every variable [`MailEventsConfig::from_lookup`] reads.
pub const MAIL_EVENTS_ENV_VARS: &[&str] = &["TABLE_NAME", "ESCALATION_TOPIC_ARN"];

#[derive(Debug, Clone)]
pub struct MailEventsConfig {
    pub table_name: String,
    /// Where "the customer has no working e-mail" goes (the run's
    /// escalation topic); unset: only recorded and logged.
    pub escalation_topic_arn: Option<String>,
}

impl MailEventsConfig {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(get);
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            escalation_topic_arn: env.optional("ESCALATION_TOPIC_ARN"),
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
    }
}
