//! `mail-events`: what SES says about reminders, from the configuration
//! set's event destination (EventBridge, or an SNS topic), recorded on the ledger and acted on
//! (`dunning::aws::mail_events`). Builds its clients once, then serves
//! invocations.

use dunning::aws::{DynamoStore, SnsPublisher};
use dunning::config::MailEventsConfig;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    dunning::telemetry::init_json();
    let sdk = dunning::aws::sdk::load().await?;
    let config = MailEventsConfig::from_lookup(|k| std::env::var(k).ok())?;
    let store = DynamoStore::new(&sdk, &config.table_name);
    let publisher = SnsPublisher::new(&sdk);
    let topic = config.escalation_topic_arn.as_deref();
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (store, publisher) = (&store, &publisher);
        async move {
            let batch = dunning::aws::mail_events::handle_payload(
                store,
                topic.map(|t| (publisher, t)),
                &event.payload,
            )
            .await?;
            tracing::info!(
                events = batch.events,
                malformed = batch.malformed,
                settled = batch.settled,
                changed = batch.changed,
                "mail events handled"
            );
            Ok::<_, Error>(serde_json::to_value(&batch)?)
        }
    }))
    .await
}
