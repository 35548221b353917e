//! Putting failed ledger records back to be sent (`dunning-admin retry`):
//! after a fix, the messages a misclassified or systemic failure ended in
//! `failed` (before systemic failures waited by themselves) go out with the
//! next run. Each record goes back once: its state must still be `failed`
//! with the `failed_at` that was read, the invoice must still be open and
//! not past that step, and the invoice's `reminded` mark for it goes in the
//! same transaction.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::errors::store_error;
use super::store::{n, rfc3339, s, DynamoStore, Item, PARTITION_KEY, RUN_STATE_KEY, SORT_KEY};
use crate::channel::Channel;
use crate::ledger::{ledger_key, reminder_sk, LedgerState, INVOICE_SK};
use crate::ports::StoreError;

/// Which failed records to put back.
#[derive(Debug, Clone)]
pub struct RetryFilter {
    pub step: String,
    pub channel: Channel,
    /// Failed at or after this instant.
    pub since: DateTime<Utc>,
    /// Only this error code (`error_code`), when given.
    pub reason: Option<String>,
}

/// A failed record found by [`DynamoStore::failed_records`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecord {
    pub invoice_id: String,
    pub failed_at: String,
    pub error_code: String,
    pub error_class: String,
}

/// What putting one record back did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutBack {
    /// Back in `retry`, claimable by the next run.
    Requeued,
    /// The invoice is no longer open (paid, void, disputed, in collections ...).
    NotOpen,
    /// A later step was claimed for the invoice since: this one is superseded.
    Superseded,
    /// The record or the invoice changed since it was read (put back by
    /// another call, or sent): nothing written.
    Changed,
}

impl PutBack {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requeued => "put back",
            Self::NotOpen => "not open",
            Self::Superseded => "superseded by a later step",
            Self::Changed => "changed meanwhile",
        }
    }
}

fn text(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

impl DynamoStore {
    /// Every `failed` ledger record of (step, channel) that `filter` selects:
    /// one Scan of the table with a filter (an operator's command after a
    /// fix, never a run's read), oldest failure first.
    pub async fn failed_records(
        &self,
        filter: &RetryFilter,
    ) -> Result<Vec<FailedRecord>, StoreError> {
        let mut condition = String::from("sk = :sk AND #state = :failed AND failed_at >= :since");
        if filter.reason.is_some() {
            condition.push_str(" AND error_code = :reason");
        }
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let mut scan = self
                .client()
                .scan()
                .table_name(self.table())
                .filter_expression(&condition)
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":sk", s(reminder_sk(&filter.step, filter.channel)))
                .expression_attribute_values(":failed", s(LedgerState::Failed.as_str()))
                .expression_attribute_values(":since", s(rfc3339(filter.since)))
                .set_exclusive_start_key(start);
            if let Some(reason) = &filter.reason {
                scan = scan.expression_attribute_values(":reason", s(reason));
            }
            let out = scan.send().await.map_err(|e| store_error("Scan", e))?;
            found.extend(
                out.items
                    .unwrap_or_default()
                    .iter()
                    .map(|item| FailedRecord {
                        invoice_id: text(item, PARTITION_KEY),
                        failed_at: text(item, "failed_at"),
                        error_code: text(item, "error_code"),
                        error_class: text(item, "error_class"),
                    }),
            );
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        found.sort_by(|a, b| (&a.failed_at, &a.invoice_id).cmp(&(&b.failed_at, &b.invoice_id)));
        Ok(found)
    }

    /// What putting `record` back would do, read from its invoice now.
    pub async fn put_back_check(
        &self,
        record: &FailedRecord,
        offset_days: i64,
    ) -> Result<PutBack, StoreError> {
        let Some(invoice) = self.get_invoice(&record.invoice_id).await? else {
            return Ok(PutBack::NotOpen);
        };
        if text(&invoice, "status") != "open" {
            return Ok(PutBack::NotOpen);
        }
        let reached = invoice
            .get("reminder_offset")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok());
        if reached.is_some_and(|r| r > offset_days) {
            return Ok(PutBack::Superseded);
        }
        Ok(PutBack::Requeued)
    }

    /// Puts one failed record back in `retry`, claimable at `now`, its
    /// attempts reset, and takes its mark off the invoice, in one
    /// transaction whose conditions make it happen once.
    pub async fn put_back(
        &self,
        record: &FailedRecord,
        filter: &RetryFilter,
        offset_days: i64,
        now: DateTime<Utc>,
    ) -> Result<PutBack, StoreError> {
        let check = self.put_back_check(record, offset_days).await?;
        if check != PutBack::Requeued {
            return Ok(check);
        }
        let local = |e: aws_sdk_dynamodb::error::BuildError| {
            StoreError::local("TransactWriteItems", e.to_string())
        };
        let ledger = Update::builder()
            .table_name(self.table())
            .key(PARTITION_KEY, s(&record.invoice_id))
            .key(SORT_KEY, s(reminder_sk(&filter.step, filter.channel)))
            .update_expression(
                "SET #state = :retry, retry_after = :now, attempts = :zero, requeued_at = :at",
            )
            .condition_expression("#state = :failed AND failed_at = :seen")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":retry", s(LedgerState::Retry.as_str()))
            .expression_attribute_values(":failed", s(LedgerState::Failed.as_str()))
            .expression_attribute_values(":seen", s(&record.failed_at))
            .expression_attribute_values(":now", n(now.timestamp()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":at", s(rfc3339(now)))
            .build()
            .map_err(local)?;
        let invoice = Update::builder()
            .table_name(self.table())
            .key(PARTITION_KEY, s(&record.invoice_id))
            .key(SORT_KEY, s(INVOICE_SK))
            .update_expression("DELETE reminded :key")
            .condition_expression(
                "#status = :open AND (attribute_not_exists(reminder_offset) OR reminder_offset <= :offset)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":open", s("open"))
            .expression_attribute_values(":offset", n(offset_days))
            .expression_attribute_values(
                ":key",
                AttributeValue::Ss(vec![ledger_key(&filter.step, filter.channel)]),
            )
            .build()
            .map_err(local)?;
        let items = vec![
            TransactWriteItem::builder().update(ledger).build(),
            TransactWriteItem::builder().update(invoice).build(),
        ];
        Ok(match self.transact(items).await? {
            None => PutBack::Requeued,
            Some(_) => PutBack::Changed,
        })
    }

    /// Makes a full read due at `at` in the run state (an earlier due one is
    /// kept): what was put back may lie outside the next band read.
    pub async fn request_full_read(&self, at: DateTime<Utc>) -> Result<(), StoreError> {
        let result = self
            .update_record(RUN_STATE_KEY.0, RUN_STATE_KEY.1)
            .update_expression("SET full_read_due = :d")
            .condition_expression("attribute_not_exists(full_read_due) OR full_read_due > :d")
            .expression_attribute_values(":d", s(rfc3339(at)))
            .send()
            .await;
        super::outcomes::condition_failure_is_false(result.map(|_| ()), "UpdateItem").map(|_| ())
    }
}
