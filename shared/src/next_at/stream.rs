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

use std::collections::{BTreeMap, HashMap};

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
    // zone or contacts inherits them: they decide the day) and for a
    // customer whose record changed. Otherwise an invoice is decided
    // without it: what a record forbids (a pause, an opt-out) only makes
    // a step later, so without it `next_at` is never late, at worst early
    // (the run reads the invoice then, holds it and writes the later one).
    // Only once some record holds settings (the run state says so: one
    // small read a batch).
    let inheriting: Vec<&RawInvoice> = invoices
        .values()
        .filter(|r| ["timezone", "email", "phone"].iter().any(|n| r.lacks(n)))
        .collect();
    let settings = !inheriting.is_empty() && {
        applied.items_read += 1;
        store.read_state().await?.customer_settings
    };
    let mut wanted: Vec<String> = inheriting
        .into_iter()
        .filter(|_| settings)
        .filter_map(|r| r.customer_hint().map(str::to_owned))
        .chain(changed.iter().cloned())
        .collect();
    wanted.sort();
    wanted.dedup();
    let records: HashMap<String, crate::customer::CustomerRecord> = if wanted.is_empty() {
        HashMap::new()
    } else {
        applied.items_read += wanted.len() as u64;
        store.customers(&wanted).await?
    };
    for (id, raw) in &invoices {
        applied.invoices += 1;
        let record = raw.customer_hint().and_then(|c| records.get(c));
        let to = match reschedule(policy, raw, record, now, business_tz) {
            Schedule::Keep => {
                applied.kept += 1;
                continue;
            }
            Schedule::Set(t) => Some(t),
            Schedule::Remove => None,
        };
        if store.set_next_at(id, to, held(raw)).await? {
            match to {
                Some(_) => applied.set += 1,
                None => applied.removed += 1,
            }
        } else {
            applied.changed_meanwhile += 1;
        }
    }
    Ok(applied)
}
