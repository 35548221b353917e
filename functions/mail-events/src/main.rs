//! `mail-events`: what SES says about reminders (the configuration set's
//! events, through EventBridge or an SNS topic) and, with `INBOUND_DOMAIN`
//! set, the replies SES receives; recorded and acted on
//! (`dunning::aws::mail_events`). Builds its clients once, then serves
//! invocations.

use dunning::aws::mail_events::{Listener, Replies};
use dunning::aws::{DynamoStore, SesMailer, SnsPublisher};
use dunning::config::MailEventsConfig;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    dunning::telemetry::init_json();
    let sdk = dunning::aws::sdk::load().await?;
    let config = MailEventsConfig::from_lookup(|k| std::env::var(k).ok())?;
    let store = DynamoStore::new(&sdk, &config.table_name);
    let publisher = SnsPublisher::new(&sdk);
    let mailer = config
        .forward
        .as_ref()
        .map(|(_, from)| SesMailer::new(&sdk, from.clone(), None));
    let pause = chrono::Duration::days(i64::try_from(config.reply_pause_days)?);
    let listener = Listener {
        store: &store,
        escalations: config
            .escalation_topic_arn
            .as_deref()
            .map(|t| (&publisher, t)),
        replies: config.inbound_domain.as_deref().map(|domain| Replies {
            domain,
            pause,
            forward: mailer
                .as_ref()
                .zip(config.forward.as_ref().map(|(to, _)| to)),
        }),
    };
    let listener = &listener;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<serde_json::Value>| async move {
            // Boxed: the handler's future is deep (events, replies, the store and
            // SES calls), and its layout would otherwise overflow rustc's query
            // depth when built from scratch.
            let batch = Box::pin(listener.handle_payload(&event.payload)).await?;
            tracing::info!(
                events = batch.events,
                malformed = batch.malformed,
                settled = batch.settled,
                changed = batch.changed,
                replies = batch.replies,
                "mail events handled"
            );
            Ok::<_, Error>(serde_json::to_value(&batch)?)
        },
    ))
    .await
}
