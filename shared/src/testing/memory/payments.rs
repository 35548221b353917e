//! Payments in memory: the same transaction as `aws::payments`.

use chrono::{DateTime, Utc};

use super::{get_number, get_text, rfc3339, text, MemoryStore, Record};
use crate::invoice::{RawInvoice, RawValue};
use crate::ledger::{INVOICE_SK, PAYMENT_PREFIX};
use crate::payment::{check, Applied, PayableInvoice, Payment, PaymentError, PAYMENT_BACKOFF};
use crate::ports::Payments;

impl Payments for MemoryStore {
    async fn apply_payment(
        &self,
        payment: &Payment,
        now: DateTime<Utc>,
    ) -> Result<Applied, PaymentError> {
        let key = (payment.invoice_id.clone(), INVOICE_SK.to_owned());
        let mut waited = 0u32;
        for attempt in 1..=PAYMENT_BACKOFF.attempts {
            let seen = self
                .lock()
                .records
                .get(&key)
                .cloned()
                .ok_or(PaymentError::UnknownInvoice)?;
            let invoice = PayableInvoice::parse(&RawInvoice(seen.clone()))
                .map_err(|_| PaymentError::InvalidInvoice)?;
            check(&invoice, payment)?;
            if get_number(&seen, "sending_until").is_some_and(|t| t >= now.timestamp()) {
                waited += 1;
                // A reminder for this invoice is between claim and send: let it finish.
                if attempt < PAYMENT_BACKOFF.attempts {
                    tokio::time::sleep(PAYMENT_BACKOFF.delay(attempt + 5)).await;
                }
                continue;
            }
            let settlement = invoice.settle(payment.amount);
            match self.commit_payment(payment, &seen, &invoice, settlement, waited, now) {
                Commit::Done => {
                    return Ok(Applied::Applied {
                        settlement,
                        waited,
                        invoice: Box::new(invoice),
                    })
                }
                Commit::Duplicate => return Ok(Applied::Duplicate),
                Commit::Changed if attempt < PAYMENT_BACKOFF.attempts => {
                    tokio::time::sleep(PAYMENT_BACKOFF.delay(attempt)).await
                }
                Commit::Changed => {}
            }
        }
        Err(PaymentError::Busy)
    }
}

enum Commit {
    Done,
    Duplicate,
    Changed,
}

impl MemoryStore {
    /// The payment's transaction: its record (only if new) and the invoice
    /// update (only if unchanged since `seen` and nothing in flight).
    fn commit_payment(
        &self,
        payment: &Payment,
        seen: &Record,
        invoice: &PayableInvoice,
        settlement: crate::payment::Settlement,
        waited: u32,
        now: DateTime<Utc>,
    ) -> Commit {
        let payment_sk = format!("{PAYMENT_PREFIX}{}", payment.payment_key);
        let payment_sk = payment_sk.as_str();
        let key = (payment.invoice_id.clone(), INVOICE_SK.to_owned());
        let mut inner = self.lock();
        if inner
            .records
            .contains_key(&(payment.invoice_id.clone(), payment_sk.to_owned()))
        {
            return Commit::Duplicate;
        }
        let current = inner.records.get(&key);
        let unchanged = current.is_some_and(|r| {
            get_text(r, "status") == Some(invoice.status.as_str())
                && get_number(r, "sending_until").is_none_or(|t| t < now.timestamp())
                && super::same_value(r.get("amount_paid"), seen.get("amount_paid"))
                && super::same_value(r.get("reminder_offset"), seen.get("reminder_offset"))
        });
        if !unchanged {
            return Commit::Changed;
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
        Commit::Done
    }
}
