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
use crate::invoice::Invoice;
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
fn state(policy: &Policy, invoice: &Invoice, at: DateTime<Utc>, business_tz: Tz) -> Option<bool> {
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
            Some(due.step.action == Action::Escalate || unsent)
        }
        Err(Hold::Paid | Hold::Void | Hold::Disputed | Hold::InCollections) => None,
        // On a plan the next instalment, or its default, can owe again.
        Err(Hold::NothingOutstanding | Hold::LadderFinished) if !on_plan => None,
        Err(_) => Some(false),
    }
}

/// Whether a run at `at` would send something for `invoice`.
pub fn sendable(policy: &Policy, invoice: &Invoice, at: DateTime<Utc>, business_tz: Tz) -> bool {
    state(policy, invoice, at, business_tz) == Some(true)
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
    if state(policy, invoice, from, business_tz)? {
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
    let mut candidates: Vec<DateTime<Utc>> = invoice
        .paused_until
        .filter(|until| *until > from)
        .into_iter()
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
            if state(policy, invoice, c, business_tz)? {
                return Some(c);
            }
        }
    }
    first_day
        .checked_add_days(Days::new(HORIZON_DAYS + 1))
        .and_then(|d| local_instant(d, NaiveTime::MIN, tz))
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

#[cfg(test)]
mod tests;
