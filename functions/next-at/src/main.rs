//! `next-at`: the table's DynamoDB stream, batch by batch. Every invoice
//! written (by a run, a payment, an edit, or a billing system that knows
//! nothing of `next_at`) gets the `next_at` its new image calls for, and a
//! customer whose record changed gets all their open invoices' moved
//! (`dunning::next_at::stream`). A batch that fails is handed over again
//! by Lambda, and after its retries lands in the function's dead-letter
//! queue, whose alarm says so; the next reschedule writes what it missed.

use dunning::aws::DynamoStore;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    dunning::telemetry::init_json();
    let sdk = dunning::aws::sdk::load().await?;
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is required")?;
    let messages = dunning::config::MessageConfig::from_env()?;
    let (_, policy) = dunning::compose::load_content(&messages)?;
    let tz = messages.business_timezone;
    let store = DynamoStore::new(&sdk, &table);
    let (store, policy) = (&store, &policy);
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<aws_lambda_events::event::dynamodb::Event>| async move {
            let (changes, records) = dunning::aws::stream::changes(&event.payload);
            let applied = Box::pin(dunning::next_at::stream::apply(
                store,
                policy,
                tz,
                chrono::Utc::now(),
                changes,
            ))
            .await?;
            tracing::info!(
                records,
                invoices = applied.invoices,
                customers_changed = applied.customers_changed,
                set = applied.set,
                removed = applied.removed,
                changed_meanwhile = applied.changed_meanwhile,
                "next_at kept current"
            );
            Ok::<_, Error>(serde_json::to_value(&applied)?)
        },
    ))
    .await
}
