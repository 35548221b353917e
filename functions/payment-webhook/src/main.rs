//! `payment-webhook`: payments from providers stop reminders. Builds its
//! clients once, then serves a Function URL or an HTTP API (payload v2).

mod handler;

use dunning::aws::{DynamoStore, SesMailer, SnsPublisher};
use dunning::config::WebhookConfig;
use lambda_http::{service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    dunning::telemetry::init_json();
    let sdk = dunning::aws::sdk::load().await?;
    let env = dunning::aws::secrets::resolve(&sdk, |k| std::env::var(k).ok()).await?;
    let config = WebhookConfig::from_lookup(|k| env.get(k))?;
    let store = DynamoStore::new(&sdk, &config.table_name);
    let mailer = config
        .receipts
        .as_ref()
        .map(|r| SesMailer::new(&sdk, r.sender.clone(), None));
    let publisher = config
        .escalation_topic_arn
        .as_ref()
        .map(|_| SnsPublisher::new(&sdk));
    let deps = handler::Deps {
        store,
        mailer,
        publisher,
        config,
    };
    lambda_http::run(service_fn(|request| handler::handle(&deps, request))).await
}
