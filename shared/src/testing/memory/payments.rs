//! A payment's two store operations in memory: the same read and the same
//! transaction as `aws::payments`.

use chrono::{DateTime, Utc};

use super::{get_number, get_text, rfc3339, text, MemoryStore, Record};
use crate::invoice::{RawInvoice, RawValue};
use crate::ledger::{INVOICE_SK, PAYMENT_PREFIX};
use crate::payment::{PayableInvoice, Payment, Settlement, EVENT_SK};
use crate::ports::{Commit, PaymentStore, SeenInvoice, StoreError};

impl PaymentStore for MemoryStore {
    type Copy = Record;

    async fn read_for_payment(
        &self,
        invoice_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SeenInvoice<Record>>, StoreError> {
        let key = (invoice_id.to_owned(), INVOICE_SK.to_owned());
        Ok(self.lock().records.get(&key).map(|r| SeenInvoice {
            raw: RawInvoice(r.clone()),
            sending: get_number(r, "sending_until").is_some_and(|t| t >= now.timestamp()),
            copy: r.clone(),
        }))
    }

    /// The payment's transaction: its record (only if new) and the invoice
    /// update (only if unchanged since `seen` and nothing in flight).
    async fn commit_payment(
        &self,
        payment: &Payment,
        seen: &Record,
        invoice: &PayableInvoice,
        settlement: Settlement,
        waited: u32,
        now: DateTime<Utc>,
    ) -> Result<Commit, StoreError> {
        let payment_sk = format!("{PAYMENT_PREFIX}{}", payment.payment_key);
        let payment_sk = payment_sk.as_str();
        let key = (payment.invoice_id.clone(), INVOICE_SK.to_owned());
        let mut inner = self.lock();
        let event_key = (payment.event_partition(), EVENT_SK.to_owned());
        if let Some(event) = inner.records.get(&event_key) {
            return Ok(
                if get_text(event, "fingerprint") == Some(payment.fingerprint().as_str()) {
                    Commit::Duplicate
                } else {
                    Commit::Conflict
                },
            );
        }
        if inner
            .records
            .contains_key(&(payment.invoice_id.clone(), payment_sk.to_owned()))
        {
            return Ok(Commit::Duplicate);
        }
        let current = inner.records.get(&key);
        let unchanged = current.is_some_and(|r| {
            get_text(r, "status") == Some(invoice.status.as_str())
                && get_number(r, "sending_until").is_none_or(|t| t < now.timestamp())
                && super::same_value(r.get("amount_paid"), seen.get("amount_paid"))
                && super::same_value(r.get("reminder_offset"), seen.get("reminder_offset"))
        });
        if !unchanged {
            return Ok(Commit::Changed);
        }
        let record: Record = [
            ("invoice_id", text(&payment.invoice_id)),
            ("sk", text(payment_sk)),
            ("event_id", text(&payment.event_id)),
            ("provider", text(payment.provider)),
            ("event_type", text(&payment.event_type)),
            ("amount", text(payment.amount.to_string())),
            ("currency", text(payment.currency.code())),
            ("paid_at", text(rfc3339(payment.paid_at))),
            ("recorded_at", text(rfc3339(Utc::now().max(now)))),
            (
                "amount_paid_after",
                text(settlement.amount_paid.to_string()),
            ),
            ("waited_for_reminder", super::number(waited)),
            ("overpaid", RawValue::Bool(settlement.overpaid)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        inner
            .records
            .insert((payment.invoice_id.clone(), payment_sk.to_owned()), record);
        let event: Record = [
            ("invoice_id", text(&event_key.0)),
            ("sk", text(EVENT_SK)),
            ("fingerprint", text(payment.fingerprint())),
            ("for_invoice", text(&payment.invoice_id)),
            ("recorded_at", text(rfc3339(Utc::now().max(now)))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        inner.records.insert(event_key, event);
        let r = inner
            .records
            .get_mut(&key)
            .expect("checked above under the same lock");
        r.insert(
            "amount_paid".into(),
            text(settlement.amount_paid.to_string()),
        );
        if settlement.fully_paid && invoice.status == crate::invoice::InvoiceStatus::Open {
            r.insert("status".into(), text("paid"));
            r.insert("paid_at".into(), text(rfc3339(payment.paid_at)));
        }
        if settlement.overpaid {
            r.insert("overpaid".into(), RawValue::Bool(true));
        }
        Ok(Commit::Done)
    }
}
