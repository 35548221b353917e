//! An edit's commit in memory: the same conditions as `aws::edits`.

use chrono::{DateTime, Utc};

use super::{get_number, same_value, text, MemoryStore, Record};
use crate::edit::EditPlan;
use crate::ledger::INVOICE_SK;
use crate::ports::{Commit, EditStore, StoreError};

impl EditStore for MemoryStore {
    async fn commit_edit(
        &self,
        invoice_id: &str,
        plan: &EditPlan,
        seen: &Record,
        now: DateTime<Utc>,
    ) -> Result<Commit, StoreError> {
        let mut inner = self.lock();
        let key = (invoice_id.to_owned(), INVOICE_SK.to_owned());
        let record_key = (invoice_id.to_owned(), plan.record_sk.clone());
        let Some(current) = inner.records.get(&key) else {
            return Ok(Commit::Changed);
        };
        let unchanged = plan
            .guarded()
            .chain(["status"])
            .all(|attr| same_value(current.get(attr), seen.get(attr)))
            && get_number(current, "sending_until").is_none_or(|t| t < now.timestamp());
        let record_taken = !plan.record_sk.is_empty() && inner.records.contains_key(&record_key);
        if !unchanged || record_taken {
            return Ok(Commit::Changed);
        }
        let invoice = inner.records.get_mut(&key).expect("read above");
        for (name, value) in &plan.set {
            invoice.insert(name.clone(), value.clone());
        }
        for name in &plan.remove {
            invoice.remove(name);
        }
        let mut record: Record = plan
            .record
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        record.insert("invoice_id".into(), text(invoice_id));
        record.insert("sk".into(), text(&plan.record_sk));
        if !plan.record_sk.is_empty() {
            inner.records.insert(record_key, record);
        }
        for date in &plan.wake {
            let key = (
                crate::edit::WAKE_PARTITION.to_owned(),
                crate::edit::wake_sk(*date, invoice_id),
            );
            let wake: Record = [
                ("invoice_id".to_owned(), text(&key.0)),
                ("sk".to_owned(), text(&key.1)),
                ("for_invoice".to_owned(), text(invoice_id)),
            ]
            .into();
            inner.records.insert(key, wake);
        }
        super::add_rollup(&mut inner.records, &plan.rollup);
        Ok(Commit::Done)
    }

    async fn create_invoice(
        &self,
        invoice_id: &str,
        raw: &crate::invoice::RawInvoice,
        record: &(String, Vec<(&'static str, crate::invoice::RawValue)>),
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let key = (invoice_id.to_owned(), INVOICE_SK.to_owned());
        if inner.records.contains_key(&key) {
            return Ok(false);
        }
        let mut item: Record = raw.0.clone();
        item.insert("invoice_id".into(), text(invoice_id));
        item.insert("sk".into(), text(INVOICE_SK));
        inner.records.insert(key, item);
        let mut history: Record = record
            .1
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        history.insert("invoice_id".into(), text(invoice_id));
        history.insert("sk".into(), text(&record.0));
        inner
            .records
            .insert((invoice_id.to_owned(), record.0.clone()), history);
        Ok(true)
    }
}
