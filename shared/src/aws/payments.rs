//! A payment's two store operations on DynamoDB ([`PaymentStore`]; the
//! protocol over them, with its retries and its wait for a reminder in
//! flight, is `Payments` in `ports`): a strongly consistent read of the
//! invoice, and one transaction that records the payment under the invoice
//! (keyed by its payment key, so a redelivery changes nothing), sets
//! `amount_paid` to what [`PayableInvoice::settle`] decided, and marks the
//! invoice paid when it is fully paid, which takes it out of the due index.
//! The invoice update is conditional on what was read and on no reminder
//! being in flight.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::errors::store_error;
use super::store::{n, raw_invoice, rfc3339, s, DynamoStore, Item, PARTITION_KEY, SORT_KEY};
use crate::invoice::InvoiceStatus;
use crate::ledger::{INVOICE_SK, PAYMENT_PREFIX};
use crate::payment::{PayableInvoice, Payment, Settlement, EVENT_SK};
use crate::ports::{Commit, PaymentStore, SeenInvoice, StoreError};

impl PaymentStore for DynamoStore {
    type Copy = Item;

    async fn read_for_payment(
        &self,
        invoice_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SeenInvoice<Item>>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, s(invoice_id))
            .key(SORT_KEY, s(INVOICE_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        Ok(out.item.map(|item| SeenInvoice {
            raw: raw_invoice(&item),
            sending: item
                .get("sending_until")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|until| until >= now.timestamp()),
            copy: item,
        }))
    }

    async fn commit_payment(
        &self,
        payment: &Payment,
        item: &Item,
        invoice: &PayableInvoice,
        settlement: Settlement,
        waited: u32,
        now: DateTime<Utc>,
    ) -> Result<Commit, StoreError> {
        let Settlement {
            amount_paid: paid,
            fully_paid,
            overpaid,
        } = settlement;
        let local = |e: aws_sdk_dynamodb::error::BuildError| {
            StoreError::local("TransactWriteItems", e.to_string())
        };
        let record = Put::builder()
            .table_name(self.table())
            .item(PARTITION_KEY, s(&payment.invoice_id))
            .item(
                SORT_KEY,
                s(format!("{PAYMENT_PREFIX}{}", payment.payment_key)),
            )
            .item("event_id", s(&payment.event_id))
            .item("provider", s(payment.provider))
            .item("event_type", s(&payment.event_type))
            .item("amount", s(payment.amount.to_string()))
            .item("currency", s(payment.currency.code()))
            .item("paid_at", s(rfc3339(payment.paid_at)))
            // The commit's own time, for the history and the payment-during-run guarantee.
            .item("recorded_at", s(rfc3339(Utc::now().max(now))))
            .item("amount_paid_after", s(paid.to_string()))
            .item("waited_for_reminder", n(waited))
            .item("overpaid", AttributeValue::Bool(overpaid))
            .condition_expression("attribute_not_exists(sk)")
            .build()
            .map_err(local)?;
        let mut set = String::from("SET amount_paid = :paid");
        let mut condition = String::from(
            "#status = :seen AND (attribute_not_exists(sending_until) OR sending_until < :now)",
        );
        let mut update = Update::builder()
            .table_name(self.table())
            .key(PARTITION_KEY, s(&payment.invoice_id))
            .key(SORT_KEY, s(INVOICE_SK))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":paid", s(paid.to_string()))
            .expression_attribute_values(":seen", s(invoice.status.as_str()))
            .expression_attribute_values(":now", n(now.timestamp()));
        // As read: payments so far, and the step marker (a claim that adds a late
        // fee moves it, so the total this payment was compared with still holds).
        for (attr, placeholder) in [
            ("amount_paid", ":before"),
            ("reminder_offset", ":offset_before"),
        ] {
            match item.get(attr) {
                Some(v) => {
                    condition.push_str(&format!(" AND {attr} = {placeholder}"));
                    update = update.expression_attribute_values(placeholder, v.clone());
                }
                None => condition.push_str(&format!(" AND attribute_not_exists({attr})")),
            }
        }
        if fully_paid && invoice.status == InvoiceStatus::Open {
            set.push_str(", #status = :paid_status, paid_at = :paid_at");
            update = update
                .expression_attribute_values(":paid_status", s("paid"))
                .expression_attribute_values(":paid_at", s(rfc3339(payment.paid_at)));
        }
        if overpaid {
            set.push_str(", overpaid = :true");
            update = update.expression_attribute_values(":true", AttributeValue::Bool(true));
        }
        let update = update
            .update_expression(set)
            .condition_expression(condition)
            .build()
            .map_err(local)?;
        // The event id's claim across the table: an id sent again, even for
        // another invoice, is recognised by its fingerprint.
        let event = Put::builder()
            .table_name(self.table())
            .item(PARTITION_KEY, s(payment.event_partition()))
            .item(SORT_KEY, s(EVENT_SK))
            .item("fingerprint", s(payment.fingerprint()))
            .item("for_invoice", s(&payment.invoice_id))
            .item("recorded_at", s(rfc3339(Utc::now().max(now))))
            .condition_expression("attribute_not_exists(sk)")
            .build()
            .map_err(local)?;
        let result = self
            .client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(event).build())
            .transact_items(TransactWriteItem::builder().put(record).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Commit::Done),
            Err(SdkError::ServiceError(err)) => match err.err() {
                TransactWriteItemsError::TransactionCanceledException(cancel) => {
                    let codes = super::store::cancellation_codes(cancel);
                    let failed = |i: usize| codes.get(i) == Some(&"ConditionalCheckFailed");
                    if failed(0) {
                        return self.seen_event(payment).await;
                    }
                    Ok(if failed(1) {
                        Commit::Duplicate
                    } else {
                        Commit::Changed
                    })
                }
                _ => Err(store_error(
                    "TransactWriteItems",
                    SdkError::ServiceError(err),
                )),
            },
            Err(e) => Err(store_error("TransactWriteItems", e)),
        }
    }
}

impl DynamoStore {
    /// An event id already claimed: the same content is a duplicate, other
    /// content a conflict.
    async fn seen_event(&self, payment: &Payment) -> Result<Commit, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, s(payment.event_partition()))
            .key(SORT_KEY, s(EVENT_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        let fingerprint = out
            .item
            .as_ref()
            .and_then(|i| i.get("fingerprint"))
            .and_then(|v| v.as_s().ok());
        Ok(if fingerprint == Some(&payment.fingerprint()) {
            Commit::Duplicate
        } else {
            Commit::Conflict
        })
    }
}
