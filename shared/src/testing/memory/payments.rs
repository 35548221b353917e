//! A payment's store operations in memory: the same reads and the same
//! transaction as `aws::payments`.

use chrono::{DateTime, Utc};

use super::{add_rollup, get_number, get_text, rfc3339, text, MemoryStore, Record};
use crate::invoice::RawInvoice;
use crate::ledger::INVOICE_SK;
use crate::payment::{
    ref_partition, PayableInvoice, Payment, Plan, RecordGuard, UnappliedReason, EVENT_SK, REF_SK,
    UNAPPLIED_PARTITION,
};
use crate::ports::{Commit, PaymentStore, SeenInvoice, StoreError};

impl PaymentStore for MemoryStore {
    type Copy = Record;

    async fn read_for_payment(
        &self,
        invoice_id: &str,
        record_sks: &[String],
        now: DateTime<Utc>,
    ) -> Result<Option<SeenInvoice<Record>>, StoreError> {
        let inner = self.lock();
        let key = (invoice_id.to_owned(), INVOICE_SK.to_owned());
        let records = record_sks
            .iter()
            .map(|sk| {
                inner
                    .records
                    .get(&(invoice_id.to_owned(), sk.clone()))
                    .map(|r| RawInvoice(r.clone()))
            })
            .collect();
        Ok(inner.records.get(&key).map(|r| SeenInvoice {
            raw: RawInvoice(r.clone()),
            sending: get_number(r, "sending_until").is_some_and(|t| t >= now.timestamp()),
            copy: r.clone(),
            records,
        }))
    }

    /// The payment's transaction: the event's claim (only if new), the
    /// plan's record (as its guard says), the invoice's changes (only if
    /// unchanged since `seen` and nothing in flight) and the references.
    async fn commit_payment(
        &self,
        payment: &Payment,
        plan: &Plan,
        seen: &Record,
        invoice: &PayableInvoice,
        now: DateTime<Utc>,
    ) -> Result<Commit, StoreError> {
        let record_key = (payment.invoice_id.clone(), plan.record_sk.clone());
        let key = (payment.invoice_id.clone(), INVOICE_SK.to_owned());
        let mut inner = self.lock();
        let event_key = (payment.event_partition(), EVENT_SK.to_owned());
        if let Some(seen) = seen_claim(inner.records.get(&event_key), payment) {
            return Ok(seen);
        }
        let existing = inner.records.get(&record_key);
        match plan.guard {
            RecordGuard::Once if existing.is_some() => return Ok(Commit::Duplicate),
            RecordGuard::Version(v) => {
                let version = existing.map_or(Some(0), |r| get_number(r, "version"));
                if version != i64::try_from(v).ok() {
                    return Ok(Commit::Changed);
                }
            }
            RecordGuard::Once | RecordGuard::Skip => {}
        }
        let marker_key = plan
            .marker
            .as_ref()
            .map(|sk| (payment.invoice_id.clone(), sk.clone()));
        if marker_key
            .as_ref()
            .is_some_and(|k| inner.records.contains_key(k))
        {
            return Ok(Commit::Changed);
        }
        let unapplied_key = (UNAPPLIED_PARTITION.to_owned(), payment.unapplied_id());
        if plan.excess.is_some() && inner.records.contains_key(&unapplied_key) {
            return Ok(Commit::Changed);
        }
        let writes_invoice = !(plan.set.is_empty() && plan.remove.is_empty());
        if writes_invoice {
            let unchanged = inner.records.get(&key).is_some_and(|r| {
                get_text(r, "status") == Some(invoice.status.as_str())
                    && get_number(r, "sending_until").is_none_or(|t| t < now.timestamp())
                    && super::same_value(r.get("amount_paid"), seen.get("amount_paid"))
                    && super::same_value(r.get("reminder_offset"), seen.get("reminder_offset"))
            });
            if !unchanged {
                return Ok(Commit::Changed);
            }
        }
        let recorded_at = text(rfc3339(Utc::now().max(now)));
        let mut record: Record = plan
            .record
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        record.insert("invoice_id".into(), text(&payment.invoice_id));
        record.insert("sk".into(), text(&plan.record_sk));
        record.insert("recorded_at".into(), recorded_at.clone());
        if let Some(marker_key) = marker_key {
            let marker = marker_record(payment, plan, &marker_key.1, recorded_at.clone());
            inner.records.insert(marker_key, marker);
        }
        if plan.guard != RecordGuard::Skip {
            inner.records.insert(record_key, record);
        }
        let event = claim(payment, &payment.invoice_id, recorded_at.clone());
        inner.records.insert(event_key, event);
        for id in &payment.refs {
            let partition = ref_partition(payment.provider, id);
            let reference: Record = [
                ("invoice_id", text(&partition)),
                ("sk", text(REF_SK)),
                ("for_invoice", text(&payment.invoice_id)),
                ("recorded_at", recorded_at.clone()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            inner
                .records
                .insert((partition, REF_SK.to_owned()), reference);
        }
        add_rollup(&mut inner.records, &plan.rollup);
        if let Some(excess) = plan.excess {
            let id = payment.unapplied_id();
            let mut entry = unapplied_entry(payment, UnappliedReason::Overpaid, excess, &id);
            entry.insert("received_at".into(), recorded_at.clone());
            inner
                .records
                .insert((UNAPPLIED_PARTITION.to_owned(), id), entry);
        }
        if writes_invoice {
            let r = inner
                .records
                .get_mut(&key)
                .expect("checked above under the same lock");
            for (name, value) in &plan.set {
                r.insert((*name).to_owned(), value.clone());
            }
            for name in &plan.remove {
                r.remove(*name);
            }
        }
        Ok(Commit::Done)
    }

    async fn commit_unapplied(
        &self,
        payment: &Payment,
        reason: UnappliedReason,
        amount: rust_decimal::Decimal,
        now: DateTime<Utc>,
    ) -> Result<Commit, StoreError> {
        let mut inner = self.lock();
        let event_key = (payment.event_partition(), EVENT_SK.to_owned());
        if let Some(seen) = seen_claim(inner.records.get(&event_key), payment) {
            return Ok(seen);
        }
        let id = payment.unapplied_id();
        let key = (UNAPPLIED_PARTITION.to_owned(), id.clone());
        if inner.records.contains_key(&key) {
            return Ok(Commit::Duplicate);
        }
        let recorded_at = text(rfc3339(Utc::now().max(now)));
        let mut entry = unapplied_entry(payment, reason, amount, &id);
        entry.insert("received_at".into(), recorded_at.clone());
        inner.records.insert(key, entry);
        inner
            .records
            .insert(event_key, claim(payment, UNAPPLIED_PARTITION, recorded_at));
        Ok(Commit::Done)
    }

    async fn find_invoice(
        &self,
        provider: &str,
        refs: &[String],
    ) -> Result<Option<String>, StoreError> {
        let inner = self.lock();
        Ok(refs.iter().find_map(|id| {
            inner
                .records
                .get(&(ref_partition(provider, id), REF_SK.to_owned()))
                .and_then(|r| get_text(r, "for_invoice"))
                .map(str::to_owned)
        }))
    }
}

fn unapplied_entry(
    payment: &Payment,
    reason: UnappliedReason,
    amount: rust_decimal::Decimal,
    id: &str,
) -> Record {
    let mut entry: Record = payment
        .unapplied_record(reason, amount)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    entry.insert("invoice_id".into(), text(UNAPPLIED_PARTITION));
    entry.insert("sk".into(), text(id));
    entry
}

/// What an existing claim of the payment's event id makes of it: the same
/// content a duplicate, other content a conflict; `None` when unclaimed.
fn seen_claim(claim: Option<&Record>, payment: &Payment) -> Option<Commit> {
    claim.map(|event| {
        if get_text(event, "fingerprint") == Some(payment.fingerprint().as_str()) {
            Commit::Duplicate
        } else {
            Commit::Conflict
        }
    })
}

/// The claim of the payment's event id.
fn claim(payment: &Payment, for_invoice: &str, recorded_at: crate::invoice::RawValue) -> Record {
    [
        ("invoice_id", text(payment.event_partition())),
        ("sk", text(EVENT_SK)),
        ("fingerprint", text(payment.fingerprint())),
        ("for_invoice", text(for_invoice)),
        ("recorded_at", recorded_at),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The once-only record a part writes for its key: the money, and the group
/// that counts it.
fn marker_record(
    payment: &Payment,
    plan: &Plan,
    sk: &str,
    recorded_at: crate::invoice::RawValue,
) -> Record {
    payment
        .marker_record(&plan.record_sk)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain([
            ("invoice_id".to_owned(), text(&payment.invoice_id)),
            ("sk".to_owned(), text(sk)),
            ("recorded_at".to_owned(), recorded_at),
        ])
        .collect()
}
