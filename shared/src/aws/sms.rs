//! SMS through SNS (direct publish to a phone number).

use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;

use super::errors::{classify, require_id, send_refusals_retried, SendError};
use crate::contact::PhoneNumber;
use crate::ledger::ErrorClass;

#[derive(Clone, Debug)]
pub struct SnsTexter {
    client: Client,
}

impl SnsTexter {
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

    /// Publishes an event (JSON) to a topic, for people to act on; returns the message id.
    pub async fn publish_event(
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

    /// Publishes a transactional SMS; returns the SNS message id.
    pub async fn send(&self, to: &PhoneNumber, text: &str) -> Result<String, SendError> {
        let transactional = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("Transactional")
            .build()
            .map_err(|e| SendError {
                class: ErrorClass::Permanent,
                code: "InvalidAttribute".into(),
                message: e.to_string(),
            })?;
        send_refusals_retried(|| {
            let request = self
                .client
                .publish()
                .phone_number(to.as_str())
                .message(text)
                .message_attributes("AWS.SNS.SMS.SMSType", transactional.clone());
            async move {
                let out = request.send().await.map_err(|e| classify(&e))?;
                require_id(out.message_id, "SNS")
            }
        })
        .await
    }
}
