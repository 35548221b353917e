//! The work queue (SQS) a fanned-out run puts its shards' [`WorkOrder`]s on;
//! the run function consumes it as worker invocations.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;

use crate::fanout::WorkOrder;

/// Orders that could not be queued: the SQS error (its source kept), or an
/// entry SQS refused in a batch.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("SQS SendMessageBatch failed: {code}: {message}")]
    Sqs {
        code: String,
        message: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("SQS refused an order: {0}")]
    Refused(String),
    #[error("an order could not be built: {0}")]
    Build(String),
}

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

    /// Queues the orders, one message each (an order is a few hundred
    /// bytes), ten to a batch; returns how many were queued, and the error
    /// that stopped the rest.
    pub async fn send(&self, orders: &[WorkOrder]) -> (usize, Option<QueueError>) {
        let mut queued = 0;
        for batch in orders.chunks(10) {
            let mut request = self.client.send_message_batch().queue_url(&self.url);
            for (i, order) in batch.iter().enumerate() {
                let entry = serde_json::to_string(order)
                    .map_err(|e| e.to_string())
                    .and_then(|body| {
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(body)
                            .build()
                            .map_err(|e| e.to_string())
                    });
                match entry {
                    Ok(entry) => request = request.entries(entry),
                    Err(e) => return (queued, Some(QueueError::Build(e))),
                }
            }
            match request.send().await {
                Ok(out) => {
                    queued += out.successful.len();
                    if let Some(failed) = out.failed.first() {
                        let why = format!(
                            "{}: {}",
                            failed.code,
                            failed.message.as_deref().unwrap_or("")
                        );
                        return (queued, Some(QueueError::Refused(why)));
                    }
                }
                Err(e) => {
                    let c = super::classify(&e);
                    let error = QueueError::Sqs {
                        code: c.code,
                        message: c.message,
                        source: Box::new(e),
                    };
                    return (queued, Some(error));
                }
            }
        }
        (queued, None)
    }
}
