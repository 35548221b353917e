//! The work queue (SQS) a fanned-out run puts its shards' [`WorkOrder`]s on;
//! the run function consumes it as worker invocations.

use aws_sdk_sqs::Client;

use super::store::StoreError;
use crate::fanout::WorkOrder;

#[derive(Clone, Debug)]
pub struct WorkQueue {
    client: Client,
    url: String,
}

impl WorkQueue {
    pub fn new(sdk: &aws_config::SdkConfig, url: impl Into<String>) -> Self {
        Self {
            client: Client::new(sdk),
            url: url.into(),
        }
    }

    /// Queues every order, one message each (an order is a few hundred bytes).
    pub async fn send(&self, orders: &[WorkOrder]) -> Result<(), StoreError> {
        for order in orders {
            let body = serde_json::to_string(order)
                .map_err(|e| StoreError::local("SendMessage", e.to_string()))?;
            self.client
                .send_message()
                .queue_url(&self.url)
                .message_body(body)
                .send()
                .await
                .map_err(|e| StoreError::from_sdk("SendMessage", e))?;
        }
        Ok(())
    }
}
