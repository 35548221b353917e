//! The DynamoDB store as the run's [`Store`]: each operation, and the file
//! that holds it (`index` reads, `claims` claims, `outcomes` records).

use chrono::{DateTime, NaiveDate, Utc};

use super::store::{DynamoPage, DynamoSnapshot, DynamoStore, Item};
use crate::claim::{Claim, ClaimOutcome, Held};
use crate::ledger::LedgerState;
use crate::ports::{SendError, Store, StoreError};
use crate::reads::ReadState;

impl Store for DynamoStore {
    type Snapshot = DynamoSnapshot;
    type Cursor = Item;

    async fn due_page(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        start: Option<Item>,
    ) -> Result<DynamoPage, StoreError> {
        self.due_page_query(from, to, start).await
    }

    async fn woken(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<crate::ports::DueItem<DynamoSnapshot>>, StoreError> {
        self.woken_items(from, to).await
    }

    async fn scheduled_page(
        &self,
        shard: u32,
        until: DateTime<Utc>,
        start: Option<Item>,
    ) -> Result<DynamoPage, StoreError> {
        self.scheduled_page_query(shard, until, start).await
    }

    async fn set_next_at(
        &self,
        invoice_id: &str,
        to: Option<DateTime<Utc>>,
        held: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.write_next_at(invoice_id, to, held).await
    }

    async fn open_invoices_of(
        &self,
        customer_id: &str,
    ) -> Result<Vec<crate::invoice::RawInvoice>, StoreError> {
        self.open_invoices_query(customer_id).await
    }

    async fn read_state(&self) -> Result<ReadState, StoreError> {
        self.run_state().await
    }

    async fn customers(
        &self,
        customer_ids: &[String],
    ) -> Result<std::collections::HashMap<String, crate::customer::CustomerRecord>, StoreError>
    {
        self.customers_batch(customer_ids).await
    }

    async fn warned(
        &self,
        day: NaiveDate,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        self.warned_on(day).await
    }

    async fn record_warned(&self, day: NaiveDate, keys: &[String]) -> Result<(), StoreError> {
        self.record_warned_on(day, keys).await
    }

    async fn record_read(&self, state: &ReadState) -> Result<(), StoreError> {
        self.record_run_state(state).await
    }

    async fn claim(&self, c: &Claim<'_, DynamoSnapshot>) -> Result<ClaimOutcome, StoreError> {
        self.claim_message(c).await
    }

    async fn record_sent(
        &self,
        held: &Held<'_>,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.record_sent_retried(held, message_id, at).await
    }

    async fn record_failure(
        &self,
        held: &Held<'_>,
        error: &SendError,
        at: DateTime<Utc>,
    ) -> Result<LedgerState, StoreError> {
        self.record_failure_item(held, error, at).await
    }

    async fn record_skipped(
        &self,
        invoice_id: &str,
        sk: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.record_skipped_item(invoice_id, sk, reason, at).await
    }

    async fn record_deferred(
        &self,
        invoice_id: &str,
        sk: &str,
        reason: &str,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.record_deferred_item(invoice_id, sk, reason, until, at)
            .await
    }

    async fn record_stopped(
        &self,
        invoice_id: &str,
        sk: &str,
        error: &SendError,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.record_stopped_item(invoice_id, sk, error, until, at)
            .await
    }

    async fn release_invoice(&self, invoice_id: &str, token: &str) -> Result<(), StoreError> {
        self.release_invoice_item(invoice_id, token).await
    }

    async fn mark_reminded(
        &self,
        invoice_id: &str,
        key: &str,
        sent_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.mark_reminded_item(invoice_id, key, sent_at).await
    }

    async fn mark_in_collections(
        &self,
        invoice_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.mark_in_collections_item(invoice_id, at).await
    }
}
