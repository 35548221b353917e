//! Setting an account up: `create-table`, `create-topic`, `verify-sender`;
//! and `reschedule`.

use anyhow::{Context, Result};
use dunning::aws::{DynamoStore, SesMailer, SnsPublisher};

pub async fn create_table(table: &str) -> Result<()> {
    DynamoStore::new(&crate::aws().await?, table)
        .create_table()
        .await?;
    println!(
        "created table {table} with index {}",
        dunning::aws::store::DUE_INDEX
    );
    Ok(())
}

pub async fn create_topic(name: &str) -> Result<()> {
    let arn = SnsPublisher::new(&crate::aws().await?)
        .create_topic(name)
        .await?;
    println!("{arn}");
    Ok(())
}

pub async fn verify_sender(sender: &str) -> Result<()> {
    let from = dunning::contact::EmailAddress::parse(sender)
        .context("SENDER_EMAIL is not an email address")?;
    SesMailer::new(&crate::aws().await?, from, None)
        .create_sender_identity()
        .await?;
    println!("registered sender identity {sender}");
    Ok(())
}

pub async fn reschedule(table: &str) -> Result<()> {
    let store = DynamoStore::new(&crate::aws().await?, table);
    if store.forget_reschedule().await? {
        println!("the next run reads every open invoice and writes its next_at again");
    } else {
        println!("no reschedule recorded: the next run with NEXT_AT_INDEX=true reschedules anyway");
    }
    Ok(())
}
