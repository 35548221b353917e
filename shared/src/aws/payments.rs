//! A payment's store operations on DynamoDB ([`PaymentStore`]; the protocol
//! over them, with its retries and its wait for a reminder in flight, is
//! `Payments` in `ports`): strongly consistent reads of the invoice (and of a
//! group's tally), and one transaction that carries out a
//! [`Plan`](crate::payment::Plan): the event's claim, the movement's record
//! under the invoice (once per key, or a tally replaced at its version), the
//! invoice's changes (paid takes it out of the due index, reopened puts it
//! back), conditional on what was read and on no reminder being in flight,
//! and the provider references a later refund or dispute is found by.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::errors::store_error;
use super::store::{
    into_raw_invoice, n, raw_invoice, rfc3339, s, DynamoStore, Item, PARTITION_KEY, SORT_KEY,
};
use crate::invoice::RawValue;
use crate::ledger::INVOICE_SK;
use crate::payment::{
    ref_partition, PayableInvoice, Payment, Plan, RecordGuard, UnappliedReason, EVENT_SK, REF_SK,
    UNAPPLIED_PARTITION,
};
use crate::ports::{Commit, PaymentStore, SeenInvoice, StoreError};

/// A record's value as DynamoDB stores it (a list as a string set).
pub(super) fn attribute(value: &RawValue) -> AttributeValue {
    match value {
        RawValue::Text(t) => s(t),
        RawValue::Number(t) => AttributeValue::N(t.clone()),
        RawValue::Bool(b) => AttributeValue::Bool(*b),
        RawValue::List(list) => AttributeValue::Ss(list.clone()),
        RawValue::Other(_) => AttributeValue::Null(true),
    }
}

/// The payment a `payment#` record holds, as the webhook applied it.
fn recorded_payment(item: &Item) -> Option<Payment> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let key = text(SORT_KEY)?
        .strip_prefix(crate::ledger::PAYMENT_PREFIX)?
        .to_owned();
    Some(Payment::once(
        text("event_id")?,
        key,
        text(PARTITION_KEY)?,
        text("amount")?.parse().ok()?,
        crate::money::Currency::parse(&text("currency")?)?,
        Utc::now(),
        crate::payment::provider_name(&text("provider")?)?,
        text("event_type").unwrap_or_default(),
    ))
}

/// What [`DynamoStore::backfill_event_claims`] found and did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Backfill {
    /// Payment records read.
    pub payments: u64,
    /// Claims written.
    pub claimed: u64,
    /// Records whose event id was claimed already.
    pub claimed_before: u64,
    /// Records without a readable event id, amount, currency or provider.
    pub unreadable: u64,
    /// Stripe PaymentIntents remembered for their invoice (`ref#stripe#<pi>`),
    /// so that their refunds and disputes find it.
    pub references: u64,
}

impl PaymentStore for DynamoStore {
    type Copy = Item;

    async fn read_for_payment(
        &self,
        invoice_id: &str,
        record_sks: &[String],
        now: DateTime<Utc>,
    ) -> Result<Option<SeenInvoice<Item>>, StoreError> {
        let get = |sk: &str| {
            self.client()
                .get_item()
                .table_name(self.table())
                .key(PARTITION_KEY, s(invoice_id))
                .key(SORT_KEY, s(sk))
                .consistent_read(true)
                .send()
        };
        let out = get(INVOICE_SK)
            .await
            .map_err(|e| store_error("GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let mut records = Vec::with_capacity(record_sks.len());
        for sk in record_sks {
            records.push(
                get(sk)
                    .await
                    .map_err(|e| store_error("GetItem", e))?
                    .item
                    .map(into_raw_invoice),
            );
        }
        Ok(Some(SeenInvoice {
            raw: raw_invoice(&item),
            sending: item
                .get("sending_until")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|until| until >= now.timestamp()),
            copy: item,
            records,
        }))
    }

    async fn commit_payment(
        &self,
        payment: &Payment,
        plan: &Plan,
        item: &Item,
        invoice: &PayableInvoice,
        now: DateTime<Utc>,
    ) -> Result<Commit, StoreError> {
        let local = |e: aws_sdk_dynamodb::error::BuildError| {
            StoreError::local("TransactWriteItems", e.to_string())
        };
        let recorded_at = s(rfc3339(Utc::now().max(now)));
        let mut record = Put::builder()
            .table_name(self.table())
            .item(PARTITION_KEY, s(&payment.invoice_id))
            .item(SORT_KEY, s(&plan.record_sk))
            // The commit's own time, for the history and the payment-during-run guarantee.
            .item("recorded_at", recorded_at.clone());
        for (name, value) in &plan.record {
            record = record.item(*name, attribute(value));
        }
        let record = match plan.guard {
            RecordGuard::Once | RecordGuard::Version(0) => {
                Some(record.condition_expression("attribute_not_exists(sk)"))
            }
            RecordGuard::Version(v) => Some(
                record
                    .condition_expression("version = :version")
                    .expression_attribute_values(":version", n(v)),
            ),
            RecordGuard::Skip => None,
        };
        let event = self.event_claim(payment, &payment.invoice_id, recorded_at.clone())?;
        let mut items = vec![TransactWriteItem::builder().put(event).build()];
        if let Some(record) = record {
            let record = record.build().map_err(local)?;
            items.push(TransactWriteItem::builder().put(record).build());
        }
        if let Some(sk) = &plan.marker {
            let mut marker = Put::builder()
                .table_name(self.table())
                .item(PARTITION_KEY, s(&payment.invoice_id))
                .item(SORT_KEY, s(sk))
                .item("recorded_at", recorded_at.clone());
            for (name, value) in payment.marker_record(&plan.record_sk) {
                marker = marker.item(name, attribute(&value));
            }
            let marker = marker
                .condition_expression("attribute_not_exists(sk)")
                .build()
                .map_err(local)?;
            items.push(TransactWriteItem::builder().put(marker).build());
        }
        if !(plan.set.is_empty() && plan.remove.is_empty()) {
            items.push(
                TransactWriteItem::builder()
                    .update(self.invoice_update(payment, plan, item, invoice, now)?)
                    .build(),
            );
        }
        if let Some(excess) = plan.excess {
            items.push(
                TransactWriteItem::builder()
                    .put(self.unapplied_put(payment, UnappliedReason::Overpaid, excess, now)?)
                    .build(),
            );
        }
        for (sk, adds) in &plan.rollup {
            items.push(
                TransactWriteItem::builder()
                    .update(self.rollup_update(sk, adds)?)
                    .build(),
            );
        }
        for id in &payment.refs {
            let reference = self.reference_put(
                payment.provider,
                id,
                &payment.invoice_id,
                recorded_at.clone(),
            )?;
            items.push(TransactWriteItem::builder().put(reference).build());
        }
        let Some(failed) = self.transact(items).await? else {
            return Ok(Commit::Done);
        };
        if failed.first() == Some(&true) {
            return self.seen_event(payment).await;
        }
        Ok(
            if failed.get(1) == Some(&true) && plan.guard == RecordGuard::Once {
                Commit::Duplicate
            } else {
                Commit::Changed
            },
        )
    }

    async fn commit_unapplied(
        &self,
        payment: &Payment,
        reason: UnappliedReason,
        amount: rust_decimal::Decimal,
        now: DateTime<Utc>,
    ) -> Result<Commit, StoreError> {
        let event = self.event_claim(
            payment,
            UNAPPLIED_PARTITION,
            s(rfc3339(Utc::now().max(now))),
        )?;
        let entry = self.unapplied_put(payment, reason, amount, now)?;
        let items = vec![
            TransactWriteItem::builder().put(event).build(),
            TransactWriteItem::builder().put(entry).build(),
        ];
        match self.transact(items).await? {
            None => Ok(Commit::Done),
            Some(failed) if failed.first() == Some(&true) => self.seen_event(payment).await,
            Some(failed) if failed.get(1) == Some(&true) => Ok(Commit::Duplicate),
            // A conflicting transaction or throttling: nothing was kept.
            Some(_) => Ok(Commit::Changed),
        }
    }

    async fn find_invoice(
        &self,
        provider: &str,
        refs: &[String],
    ) -> Result<Option<String>, StoreError> {
        for id in refs {
            let out = self
                .client()
                .get_item()
                .table_name(self.table())
                .key(PARTITION_KEY, s(ref_partition(provider, id)))
                .key(SORT_KEY, s(REF_SK))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| store_error("GetItem", e))?;
            if let Some(invoice) = out
                .item
                .as_ref()
                .and_then(|i| i.get("for_invoice"))
                .and_then(|v| v.as_s().ok())
            {
                return Ok(Some(invoice.clone()));
            }
        }
        Ok(None)
    }
}

impl DynamoStore {
    /// The plan's changes to the invoice, conditional on the invoice being as
    /// read: its status, its payments so far, and the step marker (a claim
    /// that adds a late fee moves it, so the total this payment was compared
    /// with still holds), and on no reminder in flight.
    fn invoice_update(
        &self,
        payment: &Payment,
        plan: &Plan,
        item: &Item,
        invoice: &PayableInvoice,
        now: DateTime<Utc>,
    ) -> Result<Update, StoreError> {
        let mut condition = String::from(
            "#status = :seen AND (attribute_not_exists(sending_until) OR sending_until < :now)",
        );
        let mut update = Update::builder()
            .table_name(self.table())
            .key(PARTITION_KEY, s(&payment.invoice_id))
            .key(SORT_KEY, s(INVOICE_SK))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":seen", s(invoice.status.as_str()))
            .expression_attribute_values(":now", n(now.timestamp()));
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
        let (update, expression) = super::store::set_and_remove(
            update,
            plan.set.iter().map(|(k, v)| (*k, attribute(v))),
            plan.remove.iter().copied(),
        );
        update
            .update_expression(expression)
            .condition_expression(condition)
            .build()
            .map_err(|e| StoreError::local("TransactWriteItems", e.to_string()))
    }

    /// The event id's claim across the table, only if new: an id sent again,
    /// even for another invoice, is recognised by its fingerprint.
    fn event_claim(
        &self,
        payment: &Payment,
        for_invoice: &str,
        recorded_at: AttributeValue,
    ) -> Result<Put, StoreError> {
        Put::builder()
            .table_name(self.table())
            .item(PARTITION_KEY, s(payment.event_partition()))
            .item(SORT_KEY, s(EVENT_SK))
            .item("fingerprint", s(payment.fingerprint()))
            .item("for_invoice", s(for_invoice))
            .item("recorded_at", recorded_at)
            .condition_expression("attribute_not_exists(sk)")
            .build()
            .map_err(|e| StoreError::local("TransactWriteItems", e.to_string()))
    }

    /// Writes a payment's items in one transaction: `None` when it
    /// committed, else which items' conditions failed, in order.
    pub(super) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Vec<bool>>, StoreError> {
        let result = self
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(err)) => match err.err() {
                TransactWriteItemsError::TransactionCanceledException(cancel) => Ok(Some(
                    super::store::cancellation_codes(cancel)
                        .into_iter()
                        .map(|c| c == "ConditionalCheckFailed")
                        .collect(),
                )),
                _ => Err(store_error(
                    "TransactWriteItems",
                    SdkError::ServiceError(err),
                )),
            },
            Err(e) => Err(store_error("TransactWriteItems", e)),
        }
    }

    /// The put of an unapplied payment's record, only if new.
    fn unapplied_put(
        &self,
        payment: &Payment,
        reason: UnappliedReason,
        amount: rust_decimal::Decimal,
        now: DateTime<Utc>,
    ) -> Result<Put, StoreError> {
        let mut put = Put::builder()
            .table_name(self.table())
            .item(PARTITION_KEY, s(UNAPPLIED_PARTITION))
            .item(SORT_KEY, s(payment.unapplied_id()))
            .item("received_at", s(rfc3339(Utc::now().max(now))));
        for (name, value) in payment.unapplied_record(reason, amount) {
            put = put.item(name, attribute(&value));
        }
        put.condition_expression("attribute_not_exists(sk)")
            .build()
            .map_err(|e| StoreError::local("TransactWriteItems", e.to_string()))
    }

    /// The unapplied payments (`state` open, or all) as JSON, oldest first.
    pub async fn unapplied(&self, all: bool) -> Result<Vec<serde_json::Value>, StoreError> {
        // The partition's records, read as an invoice's history is.
        let mut items: Vec<serde_json::Value> = self
            .history(UNAPPLIED_PARTITION)
            .await?
            .into_iter()
            .filter(|i| all || i["state"] == "open")
            .collect();
        items.sort_by_key(|i| i["received_at"].as_str().map(str::to_owned));
        Ok(items)
    }

    /// Marks an unapplied payment applied to `invoice_id`; `false` when it
    /// was not open (applied before).
    pub async fn mark_unapplied_applied(
        &self,
        id: &str,
        invoice_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.close_unapplied(id, "applied", ("applied_to", invoice_id), now)
            .await
    }

    /// Marks an unapplied payment dismissed, with the reason; `false` when
    /// it was not open.
    pub async fn dismiss_unapplied(
        &self,
        id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.close_unapplied(id, "dismissed", ("dismiss_reason", reason), now)
            .await
    }

    async fn close_unapplied(
        &self,
        id: &str,
        state: &str,
        (attr, value): (&str, &str),
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(PARTITION_KEY, s(UNAPPLIED_PARTITION))
            .key(SORT_KEY, s(id))
            .update_expression("SET #state = :state, #attr = :value, closed_at = :at")
            .condition_expression("#state = :open")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#attr", attr)
            .expression_attribute_values(":state", s(state))
            .expression_attribute_values(":open", s("open"))
            .expression_attribute_values(":value", s(value))
            .expression_attribute_values(":at", s(rfc3339(now)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    /// Claims the event id of every payment record written before event
    /// claims existed (a Scan of `payment#` records; run once after
    /// upgrading), with the fingerprint the webhook would compute, so that
    /// such an id sent again for another invoice is a conflict, and remembers
    /// each Stripe PaymentIntent for its invoice, so that its refunds and
    /// disputes find it. What is there already is left alone. `dry_run`
    /// counts without writing.
    pub async fn backfill_event_claims(&self, dry_run: bool) -> Result<Backfill, StoreError> {
        let mut done = Backfill::default();
        let mut start = None;
        loop {
            let out = self
                .client()
                .scan()
                .table_name(self.table())
                .filter_expression("begins_with(sk, :payment)")
                .expression_attribute_values(":payment", s(crate::ledger::PAYMENT_PREFIX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("Scan", e))?;
            for item in out.items.unwrap_or_default() {
                done.payments += 1;
                let payment = recorded_payment(&item);
                let Some(payment) = payment else {
                    done.unreadable += 1;
                    continue;
                };
                if dry_run {
                    continue;
                }
                if payment.provider == "stripe" && payment.payment_key.starts_with("pi_") {
                    let reference = self.reference_put(
                        "stripe",
                        &payment.payment_key,
                        &payment.invoice_id,
                        s(rfc3339(Utc::now())),
                    )?;
                    if self.put_if_absent(reference).await? {
                        done.references += 1;
                    }
                }
                // Claimed when the payment was recorded, as the webhook would have.
                let recorded_at = item
                    .get("recorded_at")
                    .cloned()
                    .unwrap_or_else(|| s(rfc3339(Utc::now())));
                let claim = self.event_claim(&payment, &payment.invoice_id, recorded_at)?;
                if self.put_if_absent(claim).await? {
                    done.claimed += 1;
                } else {
                    done.claimed_before += 1;
                }
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                return Ok(done);
            }
        }
    }

    /// The rollup day `sk` gains `adds` ([`crate::report::rollup`]).
    pub(super) fn rollup_update(
        &self,
        sk: &str,
        adds: &std::collections::BTreeMap<String, rust_decimal::Decimal>,
    ) -> Result<Update, StoreError> {
        let mut update = Update::builder()
            .table_name(self.table())
            .key(PARTITION_KEY, s(crate::report::rollup::PARTITION))
            .key(SORT_KEY, s(sk));
        let mut expression = Vec::new();
        for (i, (attr, by)) in adds.iter().enumerate() {
            expression.push(format!("#a{i} :v{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), attr)
                .expression_attribute_values(format!(":v{i}"), n(by));
        }
        update
            .update_expression(format!("ADD {}", expression.join(", ")))
            .build()
            .map_err(|e| StoreError::local("TransactWriteItems", e.to_string()))
    }

    /// That the invoice a provider's object is for (`ref#<provider>#<id>`).
    fn reference_put(
        &self,
        provider: &str,
        id: &str,
        invoice_id: &str,
        recorded_at: AttributeValue,
    ) -> Result<Put, StoreError> {
        Put::builder()
            .table_name(self.table())
            .item(PARTITION_KEY, s(ref_partition(provider, id)))
            .item(SORT_KEY, s(REF_SK))
            .item("for_invoice", s(invoice_id))
            .item("recorded_at", recorded_at)
            .build()
            .map_err(|e| StoreError::local("TransactWriteItems", e.to_string()))
    }

    /// Writes `put`'s item on its own, only if there is none: `false` when
    /// there was one.
    async fn put_if_absent(&self, put: Put) -> Result<bool, StoreError> {
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(put.item().clone()))
            .condition_expression("attribute_not_exists(sk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(store_error("PutItem", e)),
        }
    }

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
