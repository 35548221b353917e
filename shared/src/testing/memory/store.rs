//! The run's [`Store`] in memory: the same conditions as `aws::claims`,
//! `aws::index` and `aws::outcomes`.

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    get_number, get_text, number, rfc3339, state_is, text, MemorySnapshot, MemoryStore, Record,
};
use crate::cap::CapDecision;
use crate::claim::{Claim, ClaimOutcome, Held, Lost, CLAIM_ROUNDS};
use crate::invoice::{RawInvoice, RawValue};
use crate::ledger::{after_failure, LedgerState, INVOICE_SK};
use crate::ports::{DueItem, DuePage, SendError, Store, StoreError};
use crate::reads::ReadState;

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
    cycle: Option<&str>,
    now: i64,
    snapshot: &MemorySnapshot,
) -> bool {
    let Some(r) = record else { return false };
    let same_cycle = get_text(r, "reminder_cycle") == cycle;
    get_text(r, "status") == Some("open")
        && (!same_cycle || get_number(r, "reminder_offset").is_none_or(|o| o <= offset))
        && get_number(r, "sending_until").is_none_or(|t| t < now)
        && snapshot.holds_for(r)
}

/// The first `size` of these records in key order, as an index's page:
/// the key of its last item is where the next page starts.
fn page_of(
    mut found: Vec<((String, String), &Record)>,
    size: usize,
) -> DuePage<MemorySnapshot, (String, String)> {
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let more = found.len() > size;
    found.truncate(size);
    let next = if more {
        found.last().map(|(k, _)| k.clone())
    } else {
        None
    };
    DuePage {
        scanned_count: found.len() as u64,
        items: found
            .into_iter()
            .map(|(_, r)| DueItem {
                raw: RawInvoice(r.clone()),
                snapshot: MemorySnapshot::of(r),
            })
            .collect(),
        next,
    }
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
        let open: Vec<((String, String), &Record)> = inner
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
        Ok(page_of(open, self.page_size))
    }

    async fn woken(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DueItem<MemorySnapshot>>, StoreError> {
        let inner = self.lock();
        let (from, to) = (from.to_string(), format!("{to}$"));
        let ids: std::collections::BTreeSet<&str> = inner
            .records
            .iter()
            .filter(|((pk, sk), _)| {
                pk == crate::edit::WAKE_PARTITION
                    && sk.as_str() >= from.as_str()
                    && sk.as_str() <= to.as_str()
            })
            .filter_map(|(_, r)| get_text(r, "for_invoice"))
            .collect();
        Ok(ids
            .into_iter()
            .filter_map(|id| inner.records.get(&(id.to_owned(), INVOICE_SK.to_owned())))
            .filter(|r| get_text(r, "status") == Some("open"))
            .map(|r| DueItem {
                raw: RawInvoice(r.clone()),
                snapshot: MemorySnapshot::of(r),
            })
            .collect())
    }

    async fn scheduled_page(
        &self,
        shard: u32,
        until: DateTime<Utc>,
        start: Option<Self::Cursor>,
    ) -> Result<DuePage<MemorySnapshot, Self::Cursor>, StoreError> {
        let (until, shard) = (crate::next_at::stamp(until), shard.to_string());
        let inner = self.lock();
        let due: Vec<((String, String), &Record)> = inner
            .records
            .iter()
            .filter(|((_, sk), r)| {
                sk == INVOICE_SK
                    && get_text(r, crate::next_at::SHARD_ATTRIBUTE) == Some(shard.as_str())
                    && get_text(r, crate::next_at::ATTRIBUTE).is_some_and(|t| t <= until.as_str())
            })
            .map(|((pk, _), r)| {
                let at = get_text(r, crate::next_at::ATTRIBUTE).unwrap_or_default();
                ((at.to_owned(), pk.clone()), r)
            })
            .filter(|(key, _)| start.as_ref().is_none_or(|s| key > s))
            .collect();
        Ok(page_of(due, self.page_size))
    }

    async fn set_next_at(
        &self,
        invoice_id: &str,
        to: Option<DateTime<Utc>>,
        held: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(r) = inner
            .records
            .get_mut(&(invoice_id.to_owned(), INVOICE_SK.to_owned()))
        else {
            return Ok(false);
        };
        if get_text(r, crate::next_at::ATTRIBUTE) != held {
            return Ok(false);
        }
        match to {
            Some(t) => {
                r.insert(
                    crate::next_at::ATTRIBUTE.into(),
                    text(crate::next_at::stamp(t)),
                );
                r.insert(
                    crate::next_at::SHARD_ATTRIBUTE.into(),
                    text(crate::next_at::shard(invoice_id).to_string()),
                );
            }
            None => {
                r.remove(crate::next_at::ATTRIBUTE);
                r.remove(crate::next_at::SHARD_ATTRIBUTE);
            }
        }
        Ok(true)
    }

    async fn open_invoices_of(&self, customer_id: &str) -> Result<Vec<RawInvoice>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .records
            .iter()
            .filter(|((_, sk), r)| {
                sk == INVOICE_SK
                    && get_text(r, "customer_id") == Some(customer_id)
                    && get_text(r, "status") == Some("open")
            })
            .map(|(_, r)| RawInvoice(r.clone()))
            .collect())
    }

    async fn read_state(&self) -> Result<ReadState, StoreError> {
        Ok(self.lock().run_state.clone().unwrap_or_default())
    }

    async fn customers(
        &self,
        customer_ids: &[String],
    ) -> Result<std::collections::HashMap<String, crate::customer::CustomerRecord>, StoreError>
    {
        let inner = self.lock();
        Ok(customer_ids
            .iter()
            .filter_map(|id| inner.customers.get(id).map(|r| (id.clone(), r.clone())))
            .collect())
    }

    async fn warned(
        &self,
        day: NaiveDate,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        Ok(match &self.lock().warned {
            Some((d, keys)) if *d == day => keys.clone(),
            _ => Default::default(),
        })
    }

    async fn record_warned(&self, day: NaiveDate, keys: &[String]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        match &mut inner.warned {
            Some((d, set)) if *d == day => set.extend(keys.iter().cloned()),
            Some((d, _)) if *d > day => {}
            _ => inner.warned = Some((day, keys.iter().cloned().collect())),
        }
        Ok(())
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
            // Set by a record's change only: a run's write keeps it.
            customer_settings: old.customer_settings,
            scheduled: state.scheduled.clone().or(old.scheduled),
            rescheduled_at: state.rescheduled_at.or(old.rescheduled_at),
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
                } else if !invoice_claimable(invoice, c.offset_days, c.cycle, now, m.snapshot) {
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
                match c.cycle {
                    Some(cycle) => inv.insert("reminder_cycle".into(), text(cycle)),
                    None => inv.remove("reminder_cycle"),
                };
                if let Some(date) = m.plan_defaulted_on {
                    inv.entry("plan_defaulted_on".into())
                        .or_insert_with(|| text(date.to_string()));
                }
                inv.insert("sending_until".into(), number(lease));
                inv.insert("sending_token".into(), text(&c.token));
                if let Some(fee) = m.late_fee {
                    inv.entry(format!("late_fee#{}", crate::ledger::base_step(c.step)))
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
            |r| {
                r.is_some_and(|r| {
                    get_text(r, "claim_token") == Some(held.token)
                        && state_is(r, LedgerState::Claimed)
                })
            },
            |r| {
                let attempts = u32::try_from(get_number(r, "attempts").unwrap_or(1)).unwrap_or(1);
                let next = after_failure(error.class, attempts, at);
                if !error.class.uses_an_attempt() {
                    // The claim counted an attempt; a systemic failure gives it back.
                    r.insert("attempts".into(), number(attempts.saturating_sub(1)));
                }
                written = next.state;
                r.insert("state".into(), text(next.state.as_str()));
                set_error(r, error, at);
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

    async fn record_stopped(
        &self,
        invoice_id: &str,
        sk: &str,
        error: &SendError,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update(
            invoice_id,
            sk,
            |r| {
                r.is_none_or(|r| {
                    (state_is(r, LedgerState::Retry) || state_is(r, LedgerState::Deferred))
                        && get_number(r, "retry_after").is_some_and(|t| t <= until.timestamp())
                })
            },
            |r| {
                r.insert("state".into(), text(LedgerState::Retry.as_str()));
                set_error(r, error, at);
                r.insert("retry_after".into(), number(until.timestamp()));
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

    async fn mark_reminded(
        &self,
        invoice_id: &str,
        key: &str,
        sent_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
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
                if let Some(at) = sent_at {
                    r.entry(crate::report::rollup::sent_at_attr(key))
                        .or_insert_with(|| RawValue::Text(super::rfc3339(at)));
                }
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

/// The error fields a failed or stopped record carries.
fn set_error(r: &mut Record, error: &SendError, at: DateTime<Utc>) {
    r.insert("error_class".into(), text(error.class.as_str()));
    r.insert("error_code".into(), text(&error.code));
    r.insert(
        "error_message".into(),
        text(error.message.chars().take(500).collect::<String>()),
    );
    r.insert("failed_at".into(), text(rfc3339(at)));
}
