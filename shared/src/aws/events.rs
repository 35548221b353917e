//! Events for people through SNS topics: the [`EventPublisher`] (an
//! escalation to collections), and creating a topic (the demo and tests).

use aws_sdk_sns::Client;

use super::errors::{classify, require_id};
use crate::ledger::ErrorClass;
use crate::ports::{EventPublisher, SendError};

#[derive(Clone, Debug)]
pub struct SnsPublisher {
    client: Client,
}

impl SnsPublisher {
    /// One SDK attempt per call, like the senders: a failed publish is the
    /// ledger's to retry, never repeated at once.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::new(&super::sdk::single_attempt(sdk)),
        }
    }

    /// Creates (or finds) a topic by name; returns its ARN.
    pub async fn create_topic(&self, name: &str) -> Result<String, SendError> {
        let out = self
            .client
            .create_topic()
            .name(name)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        out.topic_arn.ok_or_else(|| SendError {
            class: ErrorClass::Permanent,
            code: "NoTopicArn".into(),
            message: "SNS created the topic without an ARN".into(),
        })
    }
}

impl EventPublisher for SnsPublisher {
    /// Publishes an event (JSON) to a topic, for people to act on; returns the message id.
    async fn publish(
        &self,
        topic_arn: &str,
        subject: &str,
        event: &serde_json::Value,
    ) -> Result<String, SendError> {
        let out = self
            .client
            .publish()
            .topic_arn(topic_arn)
            .subject(subject.chars().take(100).collect::<String>())
            .message(event.to_string())
            .send()
            .await
            .map_err(|e| classify(&e))?;
        require_id(out.message_id, "SNS")
    }
}
