//! When an open invoice next needs a run (issue 20's `next_at`): the first
//! instant at or after a given one at which [`decide`] finds a step that
//! can go for it: a reminder with a channel ready, or an escalation. Pure,
//! and defined by `decide` itself, so that a run reading the invoices whose
//! `next_at` has come finds exactly those a run reading everything would
//! send to.
//!
//! `decide`'s answer for an invoice changes only at a few instants: the
//! customer's local midnight (the date a step day is compared with), the
//! opening of each channel's window, and the end of a pause (closings only
//! make it not ready). So the answer is `decide` at the first of those
//! instants, from the given one on, where it is ready.

use chrono::{DateTime, Days, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::calendar::local_date;
use crate::decide::{decide, Hold};
use crate::invoice::{Invoice, RawInvoice, RawValue};
use crate::ledger::ledger_key;
use crate::policy::{Action, Policy};

/// How many local days after the given instant the search goes: past any
/// ladder's last step and its catch-up (a year).
pub const HORIZON_DAYS: u64 = 400;

/// Whether a run at `at` would send something for `invoice`, as the run
/// decides it (on a plan, on the instalment due that day; a channel already
/// in `reminded` is not sent again): `Some(true)` yes, `Some(false)` not
/// now, `None` never again without a change to the invoice (paid, void,
/// disputed, in collections, nothing owed, the ladder finished).
/// `customer_pause`: a customer record's pause, which holds messages, not
/// escalations (as the run applies it).
fn state(
    policy: &Policy,
    invoice: &Invoice,
    customer_pause: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
    business_tz: Tz,
) -> Option<bool> {
    let scheduled;
    let on_plan = invoice.plan.is_some();
    let invoice = if on_plan {
        let tz = invoice.timezone.unwrap_or(business_tz);
        scheduled = invoice.scheduled(local_date(at, tz), policy.plan_default_days);
        &scheduled
    } else {
        invoice
    };
    match decide(policy, invoice, at, business_tz) {
        Ok(due) => {
            let step = invoice.ledger_step(&due.step.name);
            let unsent = due
                .ready()
                .any(|c| !invoice.reminded.contains(&ledger_key(&step, c)));
            let paused = customer_pause.is_some_and(|until| at < until);
            Some(due.step.action == Action::Escalate || (unsent && !paused))
        }
        Err(Hold::Paid | Hold::Void | Hold::Disputed | Hold::InCollections) => None,
        // On a plan the next instalment, or its default, can owe again.
        Err(Hold::NothingOutstanding | Hold::LadderFinished) if !on_plan => None,
        Err(_) => Some(false),
    }
}

/// Whether a run at `at` would send something for `invoice`.
pub fn sendable(policy: &Policy, invoice: &Invoice, at: DateTime<Utc>, business_tz: Tz) -> bool {
    state(policy, invoice, None, at, business_tz) == Some(true)
}

/// The first instant `t >= from` at which a run would send something for
/// `invoice` ([`sendable`]); `None` when nothing is ever due again without
/// a change to the invoice (paid, void, disputed, in collections, nothing
/// owed, the ladder finished). With nothing due within [`HORIZON_DAYS`]
/// (a pause, a promise or a step further away), the horizon's end: look
/// again then.
pub fn next_at(
    policy: &Policy,
    invoice: &Invoice,
    from: DateTime<Utc>,
    business_tz: Tz,
) -> Option<DateTime<Utc>> {
    next_at_paused(policy, invoice, None, from, business_tz)
}

/// [`next_at`] with a customer record's pause (`customer_pause`), which
/// holds messages until it ends but not escalations.
pub fn next_at_paused(
    policy: &Policy,
    invoice: &Invoice,
    customer_pause: Option<DateTime<Utc>>,
    from: DateTime<Utc>,
    business_tz: Tz,
) -> Option<DateTime<Utc>> {
    if state(policy, invoice, customer_pause, from, business_tz)? {
        return Some(from);
    }
    let tz = invoice.timezone.unwrap_or(business_tz);
    let cal = &policy.calendar;
    let times = [
        NaiveTime::MIN,
        cal.send_window.start,
        cal.send_window.start.max(cal.sms_window.start),
    ];
    let first_day = from.with_timezone(&tz).date_naive();
    let mut candidates: Vec<DateTime<Utc>> = [invoice.paused_until, customer_pause]
        .into_iter()
        .flatten()
        .filter(|until| *until > from)
        .collect();
    for day in (0..=HORIZON_DAYS).filter_map(|d| first_day.checked_add_days(Days::new(d))) {
        candidates.extend(times.iter().filter_map(|t| local_instant(day, *t, tz)));
        candidates.retain(|c| *c > from);
        candidates.sort_unstable();
        candidates.dedup();
        // Those before the next day's first instant are in order now.
        let next_day = day
            .checked_add_days(Days::new(1))
            .and_then(|d| local_instant(d, NaiveTime::MIN, tz));
        while let Some(&c) = candidates.first() {
            if next_day.is_some_and(|n| c >= n) {
                break;
            }
            candidates.remove(0);
            if state(policy, invoice, customer_pause, c, business_tz)? {
                return Some(c);
            }
        }
    }
    first_day
        .checked_add_days(Days::new(HORIZON_DAYS + 1))
        .and_then(|d| local_instant(d, NaiveTime::MIN, tz))
}

/// The attribute an open invoice keeps its next instant in (a [`stamp`]),
/// and the one that says which partition of the next-at index holds it.
pub const ATTRIBUTE: &str = "next_at";
pub const SHARD_ATTRIBUTE: &str = "next_shard";

/// Partitions of the next-at index: an hourly run queries each once. An
/// invoice's is a hash of its id, so writes spread over all of them.
pub const SHARDS: u32 = 8;

/// The index partition of `invoice_id`.
pub fn shard(invoice_id: &str) -> u32 {
    crate::fanout::shard_of(invoice_id, SHARDS)
}

/// An instant as the index keeps it: UTC to the second, fixed width, so
/// that text order is time order (`2026-11-23T14:00:00Z`). Cutting the
/// fraction makes a stamp at most a second early, never late.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// What every `next_at` is computed under: a hash of the policy, the
/// business's zone and the index's shards. A run that finds another one
/// recorded reschedules every open invoice ([`crate::reads::plan_scheduled`]).
pub fn fingerprint(policy: &Policy, business_tz: Tz) -> String {
    use sha2::{Digest, Sha256};
    let text = format!("{policy:?}|{}|{SHARDS}", business_tz.name());
    hex::encode(&Sha256::digest(text.as_bytes())[..12])
}

/// What [`reschedule`] asks of the store for one invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// What it keeps is right.
    Keep,
    /// Write this instant ([`stamp`]) and the invoice's [`shard`].
    Set(DateTime<Utc>),
    /// Nothing is ever due again without a change: leave the index.
    Remove,
}

impl Schedule {
    /// The write it asks for: `Some(Some(t))` set, `Some(None)` remove,
    /// `None` (keep) none.
    pub fn instant(&self) -> Option<Option<DateTime<Utc>>> {
        match self {
            Self::Keep => None,
            Self::Set(t) => Some(Some(*t)),
            Self::Remove => Some(None),
        }
    }
}

/// What a customer's record forbids, applied to one of their invoices: a
/// channel opted out of, a suppressed address. (Its pause holds messages
/// but not escalations: [`next_at_paused`]. What it gives, a time zone or
/// contacts, [`CustomerRecord::fill`] fills into the item before parsing.)
///
/// [`CustomerRecord::fill`]: crate::customer::CustomerRecord::fill
pub fn with_record(mut invoice: Invoice, record: &crate::customer::CustomerRecord) -> Invoice {
    use crate::channel::Channel;
    if !record.accepts(Channel::Email)
        || invoice
            .email
            .as_ref()
            .is_some_and(|a| record.is_suppressed(a.as_str()))
    {
        invoice.email = None;
    }
    if !record.accepts(Channel::Sms) {
        invoice.phone = None;
    }
    invoice
}

/// When an item next needs a run, against what it keeps
/// ([`ATTRIBUTE`]): a pure function of the item, the customer's record
/// (if they have one), the policy and the instant, shared by the stream
/// function (every writer's change) and the run (what it read and left).
///
/// - An open invoice: [`next_at`] from `now`, with the record applied
///   ([`with_record`]). One already due keeps an earlier instant it holds
///   (it is not moved on every look while it waits for a run).
/// - An open item that is not a valid invoice: the business's next
///   midnight, so that a run reads it once a day and counts it.
/// - Anything else (paid, void, not open, nothing due again): removed.
pub fn reschedule(
    policy: &Policy,
    raw: &RawInvoice,
    record: Option<&crate::customer::CustomerRecord>,
    now: DateTime<Utc>,
    business_tz: Tz,
) -> Schedule {
    let held_text = stream::held(raw);
    let held = held_text
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    // Kept only as the index needs it: the stamp's own text, in the
    // invoice's own shard (else the query never finds it, or finds it late).
    let in_place = |h: DateTime<Utc>| {
        held_text == Some(stamp(h).as_str())
            && raw.id_hint().is_some_and(|id| {
                matches!(raw.0.get(SHARD_ATTRIBUTE), Some(RawValue::Text(s)) if *s == shard(id).to_string())
            })
    };
    let is_open = matches!(raw.0.get("status"), Some(RawValue::Text(s)) if s == "open");
    let wanted = if !is_open {
        None
    } else {
        let filled;
        let raw = match record {
            Some(r) if r.has_settings() => {
                let mut copy = raw.clone();
                r.fill(&mut copy);
                filled = copy;
                &filled
            }
            _ => raw,
        };
        match Invoice::parse(raw) {
            Ok(invoice) => match record {
                Some(r) => next_at_paused(
                    policy,
                    &with_record(invoice, r),
                    r.paused_until,
                    now,
                    business_tz,
                ),
                None => next_at(policy, &invoice, now, business_tz),
            },
            Err(_) => local_date(now, business_tz)
                .checked_add_days(Days::new(1))
                .and_then(|d| local_instant(d, NaiveTime::MIN, business_tz)),
        }
    };
    match (wanted, held, held_text) {
        (None, None, None) => Schedule::Keep,
        (None, _, _) => Schedule::Remove,
        (Some(t), Some(h), _)
            if in_place(h) && (stamp(t) == stamp(h) || (t <= now && h <= now)) =>
        {
            Schedule::Keep
        }
        (Some(t), _, _) => Schedule::Set(t),
    }
}

/// `day` at local time `t` in `tz` as an instant; a time a DST change skips
/// is the first instant after the gap.
fn local_instant(day: NaiveDate, t: NaiveTime, tz: Tz) -> Option<DateTime<Utc>> {
    let local = day.and_time(t);
    local
        .and_local_timezone(tz)
        .earliest()
        .or_else(|| {
            // In a gap (never longer than an hour or two): its end.
            (1..=180).find_map(|m| {
                (local + Duration::minutes(m))
                    .and_local_timezone(tz)
                    .earliest()
            })
        })
        .map(|t| t.with_timezone(&Utc))
}

pub mod stream;

#[cfg(test)]
mod tests;
