//! Pay links in memory: the same records and conditions as `aws::links`.

use chrono::{DateTime, Utc};

use super::{get_text, rfc3339, text, MemoryStore, Record};
use crate::invoice::{RawInvoice, RawValue};
use crate::link::{LinkToken, PayLink, StoredIntent};
use crate::ports::{Links, StoreError};

fn intent_key(invoice_id: &str) -> (String, String) {
    (
        StoredIntent::partition(invoice_id),
        StoredIntent::SORT_KEY.to_owned(),
    )
}

/// An item of text attributes under `k`, deleted by TTL at `ends`.
fn record(
    k: &(String, String),
    fields: Vec<(&'static str, String)>,
    ends: DateTime<Utc>,
) -> Record {
    let mut record: Record = fields
        .into_iter()
        .map(|(name, value)| (name.to_owned(), text(value)))
        .collect();
    record.insert("invoice_id".into(), text(&k.0));
    record.insert("sk".into(), text(&k.1));
    record.insert("link_ttl".into(), super::number(ends.timestamp()));
    record
}

fn key(token: &LinkToken) -> (String, String) {
    (format!("link#{}", token.as_str()), "link".to_owned())
}

impl Links for MemoryStore {
    async fn change_customer_record(
        &self,
        customer_id: &str,
        change: &crate::customer::Change,
    ) -> Result<bool, StoreError> {
        Ok(self.change_customer(customer_id, change))
    }

    async fn put_link(&self, link: &PayLink) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let k = key(&link.token);
        if inner.records.contains_key(&k) {
            return Ok(false);
        }
        let record = record(&k, link.text_fields(), link.record_ends());
        inner.records.insert(k, record);
        Ok(true)
    }

    async fn get_link(&self, token: &LinkToken) -> Result<Option<PayLink>, StoreError> {
        Ok(self
            .lock()
            .records
            .get(&key(token))
            .and_then(|r| PayLink::from_text_fields(token, |name| get_text(r, name))))
    }

    async fn revoke_link(&self, token: &LinkToken, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(r) = inner.records.get_mut(&key(token)) else {
            return Ok(false);
        };
        r.entry("revoked_at".into())
            .or_insert_with(|| RawValue::Text(rfc3339(at)));
        Ok(true)
    }

    async fn page_invoices(&self, ids: &[&str]) -> Result<Vec<RawInvoice>, StoreError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids.into_iter().filter_map(|id| self.invoice(id)).collect())
    }

    async fn get_intent(&self, invoice_id: &str) -> Result<Option<StoredIntent>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .records
            .get(&intent_key(invoice_id))
            .and_then(|r| StoredIntent::from_text_fields(|name| get_text(r, name))))
    }

    async fn put_intent(
        &self,
        invoice_id: &str,
        intent: &StoredIntent,
        replacing: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let k = intent_key(invoice_id);
        let current = inner.records.get(&k).and_then(|r| get_text(r, "intent_id"));
        if current != replacing {
            return Ok(false);
        }
        let record = record(&k, intent.text_fields(), intent.record_ends());
        inner.records.insert(k, record);
        Ok(true)
    }

    async fn statement_invoices(
        &self,
        customer_id: &str,
        paid_since: chrono::NaiveDate,
    ) -> Result<(Vec<RawInvoice>, bool), StoreError> {
        // What the customer index holds, in its order, with the Query's filter.
        let since = paid_since.to_string();
        let mut found: Vec<(String, String, bool)> = self
            .lock()
            .records
            .iter()
            .filter(|((_, sk), r)| {
                sk == crate::ledger::INVOICE_SK && get_text(r, "customer_id") == Some(customer_id)
            })
            .filter_map(|((id, _), r)| {
                let due = get_text(r, "due_date")?.to_owned();
                let open = get_text(r, "status") == Some("open");
                let paid_lately = get_text(r, "paid_at").is_some_and(|p| p >= since.as_str());
                (open || paid_lately).then(|| (due, id.clone(), open))
            })
            .collect();
        found.sort();
        let found: Vec<(String, bool)> = found.into_iter().map(|(_, id, o)| (id, o)).collect();
        let (ids, more) = crate::report::statement_picks(&found);
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        Ok((self.page_invoices(&ids).await?, more))
    }

    async fn payments_received(
        &self,
        invoice_id: &str,
    ) -> Result<Vec<crate::report::Received>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .records
            .range((invoice_id.to_owned(), String::new())..)
            .take_while(|((id, _), _)| id == invoice_id)
            .filter_map(|((_, sk), r)| {
                crate::report::Received::from_record(invoice_id, sk, &RawInvoice(r.clone()))
            })
            .collect())
    }
}
