//! `payment-webhook`: payments from providers stop reminders. Builds its
//! clients once, then serves a Function URL or an HTTP API (payload v2).

mod handler;

use dunning::aws::{DynamoStore, SesMailer};
use dunning::webhook::WebhookConfig;
use lambda_http::{service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    dunning::telemetry::init_json();
    let mut config = WebhookConfig::from_env()?;
    let sdk = dunning::aws::sdk::load().await;
    config.load_secrets(&sdk).await?;
    let store = DynamoStore::new(&sdk, &config.table_name);
    let mailer = config
        .receipts
        .as_ref()
        .map(|r| SesMailer::new(&sdk, r.sender.clone(), None));
    let deps = handler::Deps {
        store,
        mailer,
        config,
    };
    lambda_http::run(service_fn(|request| handler::handle(&deps, request))).await
}
