//! A store in memory that behaves like the DynamoDB adapter: the same records
//! under (`invoice_id`, `sk`), the same conditions on every write, the same
//! answers when they fail. One lock makes each write atomic, as a
//! DynamoDB transaction is; a claim reads the contact log and commits in two
//! steps, as on DynamoDB, so concurrent claims conflict the same way.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use crate::cap::CapDecision;
use crate::claim::{Claim, ClaimOutcome, Held, Lost, CLAIM_ROUNDS, GUARDED};
use crate::invoice::{RawInvoice, RawValue};
use crate::ledger::{after_failure, LedgerState, INVOICE_SK, PAYMENT_PREFIX};
use crate::payment::{check, Applied, PayableInvoice, Payment, PaymentError, PAYMENT_BACKOFF};
use crate::ports::{DueItem, DuePage, Payments, SendError, Store, StoreError};
use crate::reads::ReadState;

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
        self.0.iter().all(|(a, v)| record.get(*a) == v.as_ref())
    }
}

#[derive(Default)]
struct Inner {
    records: BTreeMap<(String, String), Record>,
    run_state: Option<ReadState>,
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

/// The ledger record condition: new, a crashed claim past its lease, or a due retry or deferral.
fn claimable(record: Option<&Record>, now: i64) -> bool {
    let Some(r) = record else { return true };
    (state_is(r, LedgerState::Claimed) && get_number(r, "lease_expires").is_some_and(|l| l < now))
        || ((state_is(r, LedgerState::Retry) || state_is(r, LedgerState::Deferred))
            && get_number(r, "retry_after").is_some_and(|t| t <= now))
}

/// The invoice condition of a claim: open, steps forward, nothing in flight, guarded attributes as read.
fn invoice_claimable(
    record: Option<&Record>,
    offset: i64,
    now: i64,
    snapshot: &MemorySnapshot,
) -> bool {
    let Some(r) = record else { return false };
    get_text(r, "status") == Some("open")
        && get_number(r, "reminder_offset").is_none_or(|o| o <= offset)
        && get_number(r, "sending_until").is_none_or(|t| t < now)
        && snapshot.holds_for(r)
}

impl Store for MemoryStore {
    type Snapshot = MemorySnapshot;
    /// The last (due date, invoice id) of the page.
    type Cursor = (String, String);

    async fn due_page(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        start: Option<Self::Cursor>,
    ) -> Result<DuePage<MemorySnapshot, Self::Cursor>, StoreError> {
        let (from, to) = (from.to_string(), to.to_string());
        let inner = self.lock();
        let mut open: Vec<((String, String), &Record)> = inner
            .records
            .iter()
            .filter(|((_, sk), r)| {
                sk == INVOICE_SK
                    && get_text(r, "status") == Some("open")
                    && get_text(r, "due_date")
                        .is_some_and(|d| d >= from.as_str() && d <= to.as_str())
            })
            .map(|((pk, _), r)| {
                (
                    (
                        get_text(r, "due_date").unwrap_or_default().to_owned(),
                        pk.clone(),
                    ),
                    r,
                )
            })
            .filter(|(key, _)| start.as_ref().is_none_or(|s| key > s))
            .collect();
        open.sort_by(|a, b| a.0.cmp(&b.0));
        let more = open.len() > self.page_size;
        open.truncate(self.page_size);
        let next = if more {
            open.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        Ok(DuePage {
            scanned_count: open.len() as u64,
            items: open
                .into_iter()
                .map(|(_, r)| DueItem {
                    raw: RawInvoice(r.clone()),
                    snapshot: MemorySnapshot::of(r),
                })
                .collect(),
            next,
        })
    }

    async fn read_state(&self) -> Result<ReadState, StoreError> {
        Ok(self.lock().run_state.clone().unwrap_or_default())
    }

    async fn record_read(&self, state: &ReadState) -> Result<(), StoreError> {
        let Some(t) = state.last_run_at else {
            return Ok(());
        };
        let mut inner = self.lock();
        let old = inner.run_state.clone().unwrap_or_default();
        if old.last_run_at.is_some_and(|last| last >= t) {
            return Ok(());
        }
        inner.run_state = Some(ReadState {
            last_run_at: Some(t),
            series_since: state.series_since.or(old.series_since),
            full_read_due: state.full_read_due,
            last_full_read_at: state.last_full_read_at.or(old.last_full_read_at),
            zones: if state.zones.is_empty() {
                old.zones
            } else {
                state.zones.clone()
            },
        });
        Ok(())
    }

    async fn claim(&self, c: &Claim<'_, MemorySnapshot>) -> Result<ClaimOutcome, StoreError> {
        let mut remaining: Vec<usize> = (0..c.members.len()).collect();
        let mut lost = Vec::new();
        let now = c.now.timestamp();
        let lease = c.lease_expires();
        for _ in 0..CLAIM_ROUNDS {
            let contacts = match c.cap {
                None => None,
                Some(cap) => {
                    let (sent, version) = self.contacts(c.customer_id);
                    match cap.decide(&sent, c.as_of) {
                        CapDecision::Reached { until } => {
                            return Ok(ClaimOutcome::CapReached { until })
                        }
                        CapDecision::Admit { log } => Some((log, version)),
                    }
                }
            };
            let mut inner = self.lock();
            let contacts_key = (format!("customer#{}", c.customer_id), "contacts".to_owned());
            if let Some((_, version)) = &contacts {
                let current = inner
                    .records
                    .get(&contacts_key)
                    .and_then(|r| get_number(r, "version"));
                if current != *version {
                    return Ok(ClaimOutcome::Conflict);
                }
            }
            let mut keep = Vec::new();
            for &i in &remaining {
                let m = &c.members[i];
                let ledger = inner.records.get(&(m.invoice_id.to_owned(), m.sk.clone()));
                let invoice = inner
                    .records
                    .get(&(m.invoice_id.to_owned(), INVOICE_SK.to_owned()));
                if !claimable(ledger, now) {
                    lost.push((i, Lost::AlreadyClaimed));
                } else if !invoice_claimable(invoice, c.offset_days, now, m.snapshot) {
                    lost.push((i, Lost::InvoiceChanged));
                } else {
                    keep.push(i);
                }
            }
            if keep.len() < remaining.len() {
                remaining = keep;
                if remaining.is_empty() {
                    return Ok(ClaimOutcome::Lost(lost));
                }
                continue;
            }
            // Every condition holds: write it all under the one lock.
            if let Some((log, version)) = contacts {
                let r = inner.records.entry(contacts_key).or_default();
                r.insert(
                    "sent_at".into(),
                    RawValue::List(log.iter().map(i64::to_string).collect()),
                );
                r.insert("version".into(), number(version.unwrap_or(0) + 1));
            }
            for &i in &remaining {
                let m = &c.members[i];
                let r = inner
                    .records
                    .entry((m.invoice_id.to_owned(), m.sk.clone()))
                    .or_insert_with(|| {
                        [
                            ("invoice_id".to_owned(), text(m.invoice_id)),
                            ("sk".to_owned(), text(&m.sk)),
                        ]
                        .into()
                    });
                let attempts = get_number(r, "attempts").unwrap_or(0) + 1;
                for (k, v) in [
                    ("state", text(LedgerState::Claimed.as_str())),
                    ("step", text(c.step)),
                    ("channel", text(c.channel)),
                    ("claim_token", text(&c.token)),
                    ("claimed_at", text(rfc3339(c.now))),
                    ("lease_expires", number(lease)),
                    ("run_id", text(c.run_id)),
                    ("recipient", text(c.recipient)),
                    ("local_date", text(c.local_date.to_string())),
                    ("amount", text(&m.amount)),
                    ("message_invoices", number(c.members.len())),
                    ("attempts", number(attempts)),
                ] {
                    r.insert(k.into(), v);
                }
                if let Some(fee) = m.late_fee {
                    r.insert("late_fee".into(), text(fee.to_string()));
                }
                r.remove("retry_after");
                r.remove("defer_reason");
                let inv = inner
                    .records
                    .get_mut(&(m.invoice_id.to_owned(), INVOICE_SK.to_owned()))
                    .expect("checked above under the same lock");
                inv.insert("reminder_offset".into(), number(c.offset_days));
                inv.insert("sending_until".into(), number(lease));
                inv.insert("sending_token".into(), text(&c.token));
                if let Some(fee) = m.late_fee {
                    inv.entry(format!("late_fee#{}", c.step))
                        .or_insert_with(|| text(fee.to_string()));
                }
            }
            return Ok(ClaimOutcome::Claimed {
                claimed: remaining,
                lost,
            });
        }
        Ok(ClaimOutcome::Conflict)
    }

    async fn record_sent(
        &self,
        held: &Held<'_>,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.update(
            held.invoice_id,
            held.sk,
            |r| r.and_then(|r| get_text(r, "claim_token")) == Some(held.token),
            |r| {
                r.insert("state".into(), text(LedgerState::Sent.as_str()));
                r.insert("message_id".into(), text(message_id));
                r.insert("sent_at".into(), text(rfc3339(at)));
                for gone in [
                    "lease_expires",
                    "error_code",
                    "error_class",
                    "error_message",
                ] {
                    r.remove(gone);
                }
            },
        ))
    }

    async fn record_failure(
        &self,
        held: &Held<'_>,
        error: &SendError,
        at: DateTime<Utc>,
    ) -> Result<LedgerState, StoreError> {
        let mut written = after_failure(error.class, 1, at).state;
        self.update(
            held.invoice_id,
            held.sk,
            |r| r.and_then(|r| get_text(r, "claim_token")) == Some(held.token),
            |r| {
                let attempts = u32::try_from(get_number(r, "attempts").unwrap_or(1)).unwrap_or(1);
                let next = after_failure(error.class, attempts, at);
                written = next.state;
                r.insert("state".into(), text(next.state.as_str()));
                r.insert("error_class".into(), text(error.class.as_str()));
                r.insert("error_code".into(), text(&error.code));
                r.insert(
                    "error_message".into(),
                    text(error.message.chars().take(500).collect::<String>()),
                );
                r.insert("failed_at".into(), text(rfc3339(at)));
                match next.retry_after {
                    Some(t) => r.insert("retry_after".into(), number(t.timestamp())),
                    None => r.remove("retry_after"),
                };
                r.remove("lease_expires");
            },
        );
        Ok(written)
    }

    async fn record_skipped(
        &self,
        invoice_id: &str,
        sk: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update(
            invoice_id,
            sk,
            |r| r.is_none(),
            |r| {
                r.insert("state".into(), text(LedgerState::Skipped.as_str()));
                r.insert("skip_reason".into(), text(reason));
                r.insert("skipped_at".into(), text(rfc3339(at)));
            },
        );
        Ok(())
    }

    async fn record_deferred(
        &self,
        invoice_id: &str,
        sk: &str,
        reason: &str,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update(
            invoice_id,
            sk,
            |r| r.is_none_or(|r| state_is(r, LedgerState::Deferred)),
            |r| {
                r.insert("state".into(), text(LedgerState::Deferred.as_str()));
                r.insert("defer_reason".into(), text(reason));
                r.insert("retry_after".into(), number(until.timestamp()));
                r.insert("deferred_at".into(), text(rfc3339(at)));
            },
        );
        Ok(())
    }

    async fn release_invoice(&self, invoice_id: &str, token: &str) -> Result<(), StoreError> {
        self.update(
            invoice_id,
            INVOICE_SK,
            |r| r.and_then(|r| get_text(r, "sending_token")) == Some(token),
            |r| {
                r.remove("sending_until");
                r.remove("sending_token");
            },
        );
        Ok(())
    }

    async fn mark_reminded(&self, invoice_id: &str, key: &str) -> Result<(), StoreError> {
        self.update(
            invoice_id,
            INVOICE_SK,
            |r| r.is_some(),
            |r| {
                let mut set = match r.remove("reminded") {
                    Some(RawValue::List(l)) => l,
                    _ => Vec::new(),
                };
                if !set.iter().any(|k| k == key) {
                    set.push(key.to_owned());
                    set.sort();
                }
                r.insert("reminded".into(), RawValue::List(set));
            },
        );
        Ok(())
    }

    async fn mark_in_collections(
        &self,
        invoice_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update(
            invoice_id,
            INVOICE_SK,
            |r| r.is_some(),
            |r| {
                r.insert("in_collections".into(), RawValue::Bool(true));
                r.insert("collections_at".into(), text(rfc3339(at)));
            },
        );
        Ok(())
    }
}

impl Payments for MemoryStore {
    async fn apply_payment(
        &self,
        payment: &Payment,
        now: DateTime<Utc>,
    ) -> Result<Applied, PaymentError> {
        let key = (payment.invoice_id.clone(), INVOICE_SK.to_owned());
        let payment_sk = format!("{PAYMENT_PREFIX}{}", payment.payment_key);
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
                // A reminder for this invoice is between claim and send: let it finish.
                tokio::time::sleep(PAYMENT_BACKOFF.delay(attempt + 5)).await;
                continue;
            }
            let settlement = invoice.settle(payment.amount);
            match self.commit_payment(payment, &payment_sk, &seen, &invoice, settlement, now) {
                Commit::Done => {
                    return Ok(Applied::Applied {
                        settlement,
                        invoice: Box::new(invoice),
                    })
                }
                Commit::Duplicate => return Ok(Applied::Duplicate),
                Commit::Changed => tokio::time::sleep(PAYMENT_BACKOFF.delay(attempt)).await,
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
        payment_sk: &str,
        seen: &Record,
        invoice: &PayableInvoice,
        settlement: crate::payment::Settlement,
        now: DateTime<Utc>,
    ) -> Commit {
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
                && r.get("amount_paid") == seen.get("amount_paid")
                && r.get("reminder_offset") == seen.get("reminder_offset")
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
