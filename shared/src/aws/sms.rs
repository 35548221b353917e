//! SMS through SNS (direct publish to a phone number): the [`Texter`].

use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;

use super::errors::{classify, require_id, send_refusals_retried};
use crate::contact::PhoneNumber;
use crate::ledger::ErrorClass;
use crate::ports::{SendError, Texter};

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
}

impl Texter for SnsTexter {
    /// Publishes a transactional SMS; returns the SNS message id.
    async fn send(&self, to: &PhoneNumber, text: &str) -> Result<String, SendError> {
        let transactional = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("Transactional")
            .build()
            .map_err(|e| SendError {
                class: ErrorClass::Systemic,
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

    /// `ListPhoneNumbersOptedOut`, every page (100 numbers each).
    async fn opted_out_numbers(&self) -> Result<Vec<String>, SendError> {
        let mut numbers = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .list_phone_numbers_opted_out()
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| classify(&e))?;
            numbers.extend(out.phone_numbers.unwrap_or_default());
            match out.next_token {
                Some(token) if !token.is_empty() => next = Some(token),
                _ => return Ok(numbers),
            }
        }
    }
}
