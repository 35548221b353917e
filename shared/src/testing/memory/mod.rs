//! A store in memory that behaves like the DynamoDB adapter: the same records
//! under (`invoice_id`, `sk`), the same conditions on every write, the same
//! answers when they fail. One lock makes each write atomic, as a
//! DynamoDB transaction is; a claim reads the contact log and commits in two
//! steps, as on DynamoDB, so concurrent claims conflict the same way. The
//! run's operations are in `store`, payments in `payments`; this file holds
//! the records and what tests use to write and read them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::claim::GUARDED;
use crate::invoice::{RawInvoice, RawValue};
use crate::ledger::{LedgerState, INVOICE_SK};
use crate::reads::ReadState;

mod edits;
mod links;
mod payments;
mod store;

/// One record: attribute name to value, as DynamoDB would hold it.
type Record = BTreeMap<String, RawValue>;

/// An invoice's guarded attributes as read.
#[derive(Debug, Clone, PartialEq)]
pub struct MemorySnapshot(Vec<(&'static str, Option<RawValue>)>);

impl MemorySnapshot {
    fn of(record: &Record) -> Self {
        Self(
            GUARDED
                .iter()
                .map(|&a| (a, record.get(a).cloned()))
                .collect(),
        )
    }

    fn holds_for(&self, record: &Record) -> bool {
        self.0
            .iter()
            .all(|(a, v)| same_value(record.get(*a), v.as_ref()))
    }
}

#[derive(Default)]
struct Inner {
    records: BTreeMap<(String, String), Record>,
    run_state: Option<ReadState>,
    /// The invalid items logged on a day ([`crate::ports::Store::warned`]).
    warned: Option<(chrono::NaiveDate, std::collections::HashSet<String>)>,
    customers: BTreeMap<String, crate::customer::CustomerRecord>,
    /// What [`MemoryStore::stream`] last handed out, to tell what changed since.
    streamed: BTreeMap<String, Record>,
    streamed_customers: BTreeMap<String, crate::customer::CustomerRecord>,
}

/// The store; clones share their records.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    page_size: usize,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// Equality as DynamoDB compares: numbers by value (`10.0` = `10.00`),
/// string sets whatever their order, everything else exactly.
fn same_value(a: Option<&RawValue>, b: Option<&RawValue>) -> bool {
    match (a, b) {
        (Some(RawValue::Number(x)), Some(RawValue::Number(y))) => {
            match (
                x.parse::<rust_decimal::Decimal>(),
                y.parse::<rust_decimal::Decimal>(),
            ) {
                (Ok(x), Ok(y)) => x == y,
                _ => x == y,
            }
        }
        (Some(RawValue::List(x)), Some(RawValue::List(y))) => {
            let (mut x, mut y) = (x.clone(), y.clone());
            x.sort();
            y.sort();
            x == y
        }
        _ => a == b,
    }
}

/// Adds `additions` to the rollup's day items, as DynamoDB's `ADD` does.
fn add_rollup(
    records: &mut BTreeMap<(String, String), Record>,
    additions: &crate::report::rollup::Additions,
) {
    for (sk, adds) in additions {
        let day = records
            .entry((crate::report::rollup::PARTITION.to_owned(), sk.clone()))
            .or_default();
        for (attr, by) in adds {
            let was = match day.get(attr) {
                Some(RawValue::Number(n)) => n.parse().unwrap_or_default(),
                _ => rust_decimal::Decimal::ZERO,
            };
            day.insert(attr.clone(), RawValue::Number((was + by).to_string()));
        }
    }
}

fn text(v: impl Into<String>) -> RawValue {
    RawValue::Text(v.into())
}

fn number(v: impl ToString) -> RawValue {
    RawValue::Number(v.to_string())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn get_text<'r>(r: &'r Record, name: &str) -> Option<&'r str> {
    match r.get(name) {
        Some(RawValue::Text(t)) => Some(t),
        _ => None,
    }
}

fn get_number(r: &Record, name: &str) -> Option<i64> {
    match r.get(name) {
        Some(RawValue::Number(n)) => n.parse().ok(),
        _ => None,
    }
}

fn state_is(r: &Record, state: LedgerState) -> bool {
    get_text(r, "state") == Some(state.as_str())
}

impl MemoryStore {
    pub fn new() -> Self {
        Self {
            inner: Default::default(),
            page_size: 100,
        }
    }

    /// Due-index pages of at most `n` items (DynamoDB's are up to 1 MB).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = n.max(1);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets what earlier runs read: the next run plans as the first one.
    pub fn forget_reads(&self) {
        self.lock().run_state = None;
    }

    /// What changed since the last call, as a DynamoDB stream would carry
    /// it: the new image of each invoice written (a removed one is left
    /// out: its index entries go with it) and the ids of the customers
    /// whose record changed.
    pub fn stream(&self) -> crate::next_at::stream::Changes {
        let mut inner = self.lock();
        let invoices: BTreeMap<String, Record> = inner
            .records
            .iter()
            .filter(|((_, sk), _)| sk == INVOICE_SK)
            .map(|((pk, _), r)| (pk.clone(), r.clone()))
            .collect();
        let mut changes = crate::next_at::stream::Changes::default();
        for (id, r) in &invoices {
            if inner.streamed.get(id) != Some(r) {
                changes.invoices.push(RawInvoice(r.clone()));
            }
        }
        for (id, c) in &inner.customers {
            if inner.streamed_customers.get(id) != Some(c) {
                changes.customers.push(id.clone());
            }
        }
        inner.streamed = invoices;
        inner.streamed_customers = inner.customers.clone();
        changes
    }

    /// Writes an item exactly as given (`sk` defaults to `invoice`), as an
    /// outside billing system would.
    pub fn put(&self, attrs: &[(&str, RawValue)]) {
        let mut record: Record = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let sk = match record.remove("sk") {
            Some(RawValue::Text(sk)) => sk,
            _ => INVOICE_SK.to_owned(),
        };
        let pk = get_text(&record, "invoice_id")
            .unwrap_or_default()
            .to_owned();
        record.insert("sk".into(), text(&sk));
        self.lock().records.insert((pk, sk), record);
    }

    /// Writes an invoice item from text attributes.
    /// Applies a change to a customer's record, as `dunning-admin customer set` does.
    pub fn change_customer(&self, customer_id: &str, change: &crate::customer::Change) -> bool {
        let mut inner = self.lock();
        let changed = inner
            .customers
            .entry(customer_id.to_owned())
            .or_default()
            .apply(change);
        if changed && change.is_setting() {
            inner
                .run_state
                .get_or_insert_with(Default::default)
                .customer_settings = true;
        }
        changed
    }

    pub fn put_text(&self, attrs: &[(&str, &str)]) {
        let attrs: Vec<(&str, RawValue)> = attrs.iter().map(|(k, v)| (*k, text(*v))).collect();
        self.put(&attrs);
    }

    /// Sets (or with `None` removes) one attribute of an invoice, as a billing system would.
    pub fn set(&self, invoice_id: &str, name: &str, value: Option<RawValue>) {
        let mut inner = self.lock();
        if let Some(r) = inner
            .records
            .get_mut(&(invoice_id.to_owned(), INVOICE_SK.to_owned()))
        {
            match value {
                Some(v) => r.insert(name.to_owned(), v),
                None => r.remove(name),
            };
        }
    }

    /// The invoice item, as stored.
    pub fn invoice(&self, invoice_id: &str) -> Option<RawInvoice> {
        self.record(invoice_id, INVOICE_SK)
    }

    /// One record under an invoice (`sk` = `invoice`, `reminder#...`, `payment#...`).
    pub fn record(&self, invoice_id: &str, sk: &str) -> Option<RawInvoice> {
        self.lock()
            .records
            .get(&(invoice_id.to_owned(), sk.to_owned()))
            .map(|r| RawInvoice(r.clone()))
    }

    /// Every record under an invoice as JSON, numbers as numbers (what
    /// `DynamoStore::history` gives).
    pub fn history(&self, invoice_id: &str) -> Vec<serde_json::Value> {
        let inner = self.lock();
        inner
            .records
            .range((invoice_id.to_owned(), String::new())..)
            .take_while(|((pk, _), _)| pk == invoice_id)
            .map(|((pk, _), r)| {
                let mut json = serde_json::Map::new();
                json.insert("invoice_id".into(), pk.clone().into());
                for (k, v) in r {
                    let value = match v {
                        RawValue::Text(t) => t.clone().into(),
                        RawValue::Number(n) => {
                            serde_json::from_str(n).unwrap_or_else(|_| n.clone().into())
                        }
                        RawValue::Bool(b) => (*b).into(),
                        RawValue::List(l) => l.clone().into(),
                        RawValue::Other(o) => (*o).into(),
                    };
                    json.insert(k.clone(), value);
                }
                serde_json::Value::Object(json)
            })
            .collect()
    }

    /// Updates the record (`pk`, `sk`) if `condition` holds for it (`None`: absent).
    fn update(
        &self,
        pk: &str,
        sk: &str,
        condition: impl FnOnce(Option<&Record>) -> bool,
        change: impl FnOnce(&mut Record),
    ) -> bool {
        let mut inner = self.lock();
        let key = (pk.to_owned(), sk.to_owned());
        if !condition(inner.records.get(&key)) {
            return false;
        }
        let record = inner.records.entry(key).or_insert_with(|| {
            [
                ("invoice_id".to_owned(), text(pk)),
                ("sk".to_owned(), text(sk)),
            ]
            .into()
        });
        change(record);
        true
    }

    fn contacts(&self, customer_id: &str) -> (Vec<i64>, Option<i64>) {
        let inner = self.lock();
        match inner
            .records
            .get(&(format!("customer#{customer_id}"), "contacts".into()))
        {
            None => (Vec::new(), None),
            Some(r) => {
                let sent = match r.get("sent_at") {
                    Some(RawValue::List(l)) => l.iter().filter_map(|t| t.parse().ok()).collect(),
                    _ => Vec::new(),
                };
                (sent, get_number(r, "version"))
            }
        }
    }
}
