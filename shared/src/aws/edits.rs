//! An edit's commit on DynamoDB ([`crate::ports::EditStore`]): one
//! transaction of the invoice's update, conditional on what it touches and
//! its status being as read and on no reminder in flight, the history
//! record of the change, and what a status change adds to the report's
//! rollup.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::payments::attribute;
use super::store::{
    n, s, set_and_remove, unchanged_since, DynamoStore, Item, PARTITION_KEY, SORT_KEY,
};
use crate::edit::{wake_sk, EditPlan, WAKE_PARTITION};
use crate::invoice::{RawInvoice, RawValue};
use crate::ledger::INVOICE_SK;
use crate::ports::{Commit, EditStore, StoreError};

impl EditStore for DynamoStore {
    async fn commit_edit(
        &self,
        invoice_id: &str,
        plan: &EditPlan,
        seen: &Item,
        now: DateTime<Utc>,
    ) -> Result<Commit, StoreError> {
        let local = |e: aws_sdk_dynamodb::error::BuildError| {
            StoreError::local("TransactWriteItems", e.to_string())
        };
        let mut condition = String::from(
            "attribute_exists(sk) AND (attribute_not_exists(sending_until) OR sending_until < :now)",
        );
        let update = Update::builder()
            .table_name(self.table())
            .key(PARTITION_KEY, s(invoice_id))
            .key(SORT_KEY, s(INVOICE_SK))
            .expression_attribute_values(":now", n(now.timestamp()));
        let mut guarded: Vec<&str> = plan.guarded().collect();
        guarded.push("status");
        guarded.sort_unstable();
        guarded.dedup();
        let update = unchanged_since(update, &mut condition, &guarded, |a| seen.get(a), "g");
        let (update, expression) = set_and_remove(
            update,
            plan.set.iter().map(|(k, v)| (k.as_str(), attribute(v))),
            plan.remove.iter().map(String::as_str),
        );
        let update = update
            .update_expression(expression)
            .condition_expression(condition)
            .build()
            .map_err(local)?;
        let mut record = Put::builder()
            .table_name(self.table())
            .item(PARTITION_KEY, s(invoice_id))
            .item(SORT_KEY, s(&plan.record_sk))
            .condition_expression("attribute_not_exists(sk)");
        for (name, value) in &plan.record {
            record = record.item(*name, attribute(value));
        }
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        if !plan.record_sk.is_empty() {
            items.push(
                TransactWriteItem::builder()
                    .put(record.build().map_err(local)?)
                    .build(),
            );
        }
        for date in &plan.wake {
            let wake = Put::builder()
                .table_name(self.table())
                .item(PARTITION_KEY, s(WAKE_PARTITION))
                .item(SORT_KEY, s(wake_sk(*date, invoice_id)))
                .item("for_invoice", s(invoice_id))
                .build()
                .map_err(local)?;
            items.push(TransactWriteItem::builder().put(wake).build());
        }
        for (sk, adds) in &plan.rollup {
            items.push(
                TransactWriteItem::builder()
                    .update(self.rollup_update(sk, adds)?)
                    .build(),
            );
        }
        Ok(match self.transact(items).await? {
            None => Commit::Done,
            Some(_) => Commit::Changed,
        })
    }

    async fn create_invoice(
        &self,
        invoice_id: &str,
        raw: &RawInvoice,
        record: &(String, Vec<(&'static str, RawValue)>),
    ) -> Result<bool, StoreError> {
        let local = |e: aws_sdk_dynamodb::error::BuildError| {
            StoreError::local("TransactWriteItems", e.to_string())
        };
        let mut item = Put::builder()
            .table_name(self.table())
            .condition_expression("attribute_not_exists(sk)");
        for (name, value) in &raw.0 {
            item = item.item(name, attribute(value));
        }
        let item = item
            .item(PARTITION_KEY, s(invoice_id))
            .item(SORT_KEY, s(INVOICE_SK))
            .build()
            .map_err(local)?;
        let mut history = Put::builder()
            .table_name(self.table())
            .item(PARTITION_KEY, s(invoice_id))
            .item(SORT_KEY, s(&record.0));
        for (name, value) in &record.1 {
            history = history.item(*name, attribute(value));
        }
        let items = vec![
            TransactWriteItem::builder().put(item).build(),
            TransactWriteItem::builder()
                .put(history.build().map_err(local)?)
                .build(),
        ];
        match self.transact(items).await? {
            None => Ok(true),
            // The invoice's own condition: it exists.
            Some(failed) if failed.first() == Some(&true) => Ok(false),
            Some(_) => Err(StoreError::local(
                "TransactWriteItems",
                "the invoice's creation conflicted with another write; retry",
            )),
        }
    }
}
