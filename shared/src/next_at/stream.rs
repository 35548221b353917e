//! What the `next-at` function does with a batch of the table's stream:
//! every invoice written (by anyone: a run, a payment, an edit, a billing
//! system that knows nothing of `next_at`) gets the `next_at` its new image
//! calls for ([`reschedule`]), and a customer whose record changed (a
//! pause, an opt-out, a setting) gets all their open invoices' moved.
//!
//! Each write is conditional on the `next_at` the image held, so a batch
//! handed over again, or out of date, never overwrites a newer one; and
//! each write is itself a change the stream carries back, decided again
//! from the whole item: the last image of an invoice always decides.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{reschedule, Schedule, ATTRIBUTE};
use crate::invoice::{RawInvoice, RawValue};
use crate::policy::Policy;
use crate::ports::{Store, StoreError};

/// One batch of the stream, as the function takes it.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    /// The new image of each invoice written.
    pub invoices: Vec<RawInvoice>,
    /// The customers whose record changed.
    pub customers: Vec<String>,
}

/// What one batch did (the function logs it; the benchmark counts it).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// Invoices decided (images, and the open invoices of changed customers).
    pub invoices: u64,
    pub customers_changed: u64,
    /// Items read: customer records, and the open invoices of changed customers.
    pub items_read: u64,
    pub set: u64,
    pub removed: u64,
    pub kept: u64,
    /// Writes refused because the invoice changed meanwhile (its own
    /// stream record decides again) or is gone.
    pub changed_meanwhile: u64,
}

impl Applied {
    /// Writes made to the table.
    pub fn writes(&self) -> u64 {
        self.set + self.removed
    }
}

/// `next_at` writes one batch keeps in flight.
const WRITES_IN_FLIGHT: usize = 16;

/// The `next_at` an item holds, as text (what a write's condition expects).
pub fn held(raw: &RawInvoice) -> Option<&str> {
    match raw.0.get(ATTRIBUTE) {
        Some(RawValue::Text(t)) => Some(t),
        _ => None,
    }
}

/// Decides and writes `next_at` for one batch (see the module). A store
/// failure fails the batch: the stream hands it over again, and what was
/// already written is then kept.
pub async fn apply<S: Store>(
    store: &S,
    policy: &Policy,
    business_tz: Tz,
    now: DateTime<Utc>,
    changes: Changes,
) -> Result<Applied, StoreError> {
    let mut applied = Applied::default();
    // The last image of each invoice; then, newer still, what a changed
    // customer's open invoices are now.
    let mut invoices: BTreeMap<String, RawInvoice> = BTreeMap::new();
    for raw in changes.invoices {
        if let Some(id) = raw.id_hint() {
            invoices.insert(id.to_owned(), raw);
        }
    }
    let mut changed = changes.customers;
    changed.sort();
    changed.dedup();
    applied.customers_changed = changed.len() as u64;
    for customer in &changed {
        for raw in store.open_invoices_of(customer).await? {
            applied.items_read += 1;
            if let Some(id) = raw.id_hint() {
                invoices.insert(id.to_owned(), raw);
            }
        }
    }
    // A record is read for what it gives (an invoice that leaves out its
    // zone or contacts inherits them, once some record holds settings: the
    // run state says so, one small read a batch), for a customer whose
    // record changed, and where an invoice's `next_at` would move earlier
    // without it (what it holds may be a record's pause or opt-out, which
    // the run wrote). Otherwise an invoice is decided without it: what a
    // record forbids only makes a step later, so `next_at` is never late.
    let settings = invoices.values().any(RawInvoice::inherits_settings) && {
        applied.items_read += 1;
        store.read_state().await?.customer_settings
    };
    let mut wanted: BTreeSet<String> = changed.iter().cloned().collect();
    for raw in invoices.values() {
        let Some(customer) = raw.customer_hint() else {
            continue;
        };
        let earlier = || match reschedule(policy, raw, None, now, business_tz) {
            Schedule::Set(t) => held(raw)
                .and_then(|h| DateTime::parse_from_rfc3339(h).ok())
                .is_some_and(|h| t < h),
            _ => false,
        };
        if (settings && raw.inherits_settings()) || earlier() {
            wanted.insert(customer.to_owned());
        }
    }
    let wanted: Vec<String> = wanted.into_iter().collect();
    let records: HashMap<String, crate::customer::CustomerRecord> = if wanted.is_empty() {
        HashMap::new()
    } else {
        applied.items_read += wanted.len() as u64;
        store.customers(&wanted).await?
    };
    let mut writes = Vec::new();
    for (id, raw) in &invoices {
        applied.invoices += 1;
        let record = raw.customer_hint().and_then(|c| records.get(c));
        match reschedule(policy, raw, record, now, business_tz).instant() {
            None => applied.kept += 1,
            Some(to) => writes.push((id.as_str(), to, held(raw))),
        }
    }
    // A few at a time: a customer with many open invoices fits one invocation.
    use futures::StreamExt;
    type Written = (Option<DateTime<Utc>>, Result<bool, StoreError>);
    let results: Vec<Written> = futures::stream::iter(writes)
        .map(|(id, to, held)| async move { (to, store.set_next_at(id, to, held).await) })
        .buffer_unordered(WRITES_IN_FLIGHT)
        .collect()
        .await;
    for (to, result) in results {
        match (result?, to) {
            (true, Some(_)) => applied.set += 1,
            (true, None) => applied.removed += 1,
            (false, _) => applied.changed_meanwhile += 1,
        }
    }
    Ok(applied)
}
