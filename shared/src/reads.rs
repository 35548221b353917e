//! Which due dates a run reads: all of its ladder's window now and then
//! (a *full read*), and in between only the dates whose step day has just
//! begun somewhere (*bands*), so that the items a run reads follow the
//! reminders due rather than the open invoices.
//!
//! A step becomes ready for an invoice when its send window opens on the
//! step day in the customer's zone (local midnight for an escalation). A run
//! at `now` whose previous complete read was at `since` reads the due dates
//! whose step day's window opened in (`since`, `now`] in one of the time
//! zones the last full read met (the invoices' `timezone`s and the business
//! default): every invoice that became ready since the last run. What is
//! ready without its window having just opened (a step caught up after
//! missed runs, a send that failed and may be retried, a pause that ended, an
//! invoice imported late or in a zone not seen before) is found by the next
//! full read; one a run found and held back (a weekend or holiday, a
//! caught-up step's channel outside its window) makes a full read due when
//! it becomes ready ([`next_opening`]). Full reads come at least every `FULL_READ_HOURS`, less than the
//! shortest send window, so every time zone has one inside its window each day.

use std::collections::BTreeSet;

use chrono::{DateTime, Days, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::calendar::due_date_window;
use crate::channel::Channel;
use crate::policy::{Action, Policy};

/// What the last complete runs left in the run-state record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadState {
    /// The instant (`as_of`) of the latest run that read all it planned.
    pub last_run_at: Option<DateTime<Utc>>,
    /// The instant of the latest complete full read.
    pub last_full_read_at: Option<DateTime<Utc>>,
    /// The time zones that full read met (the business default included).
    pub zones: Vec<Tz>,
    /// The first run of the current unbroken series: runs less than the
    /// full-read interval apart, each reading all it planned.
    pub series_since: Option<DateTime<Utc>>,
    /// A full read is due at or after this instant: a full read left work
    /// behind, or reminders were deferred (customer cap) until then.
    pub full_read_due: Option<DateTime<Utc>>,
    /// Some customer record holds settings its invoices inherit (a time
    /// zone, a language, contacts): runs read the records of invoices that
    /// leave those out before deciding. Set by the record's change, never unset.
    pub customer_settings: bool,
    /// With the next-at index: the policy (its [`crate::next_at::fingerprint`])
    /// under which the latest complete reschedule wrote every open invoice's
    /// `next_at`, and when.
    pub scheduled: Option<String>,
    pub rescheduled_at: Option<DateTime<Utc>>,
}

/// How long runs must have followed each other without a break before they
/// read bands: a day, so that after missed runs every time zone has had its
/// send window under full reads, which send what the missed runs left.
pub const SETTLE: Duration = Duration::hours(24);

impl ReadState {
    /// The state after a run at `now` read all it planned (`full_read_zones`:
    /// it was a full read and met these zones).
    pub fn after(
        &self,
        now: DateTime<Utc>,
        full_read_zones: Option<Vec<Tz>>,
        every: Duration,
    ) -> Self {
        let unbroken = self
            .last_run_at
            .is_some_and(|t| t <= now && now - t < every);
        let series_since = match self.series_since {
            Some(since) if unbroken => since,
            _ => now,
        };
        let full = full_read_zones.is_some();
        let (last_full_read_at, zones) = match full_read_zones {
            Some(zones) => (Some(now), zones),
            None => (self.last_full_read_at, self.zones.clone()),
        };
        Self {
            last_run_at: Some(now),
            last_full_read_at,
            zones,
            series_since: Some(series_since),
            // A full read answers a due one that has come; a later one (a cap
            // deferral, a business day's opening) stays due, and a band read keeps it.
            full_read_due: self.full_read_due.filter(|&due| !full || due > now),
            customer_settings: self.customer_settings,
            // Written only by a run that rescheduled (never copied back: a
            // `dunning-admin reschedule` meanwhile must stand).
            scheduled: None,
            rescheduled_at: None,
        }
    }

    /// Marks a full read due: at `now` when a full read left work behind
    /// (what it left may lie outside every band), and at `deferred_until`.
    pub fn needing(
        mut self,
        now: Option<DateTime<Utc>>,
        deferred_until: Option<DateTime<Utc>>,
    ) -> Self {
        for t in [now, deferred_until].into_iter().flatten() {
            self.full_read_due = Some(self.full_read_due.map_or(t, |due| due.min(t)));
        }
        self
    }
}

/// The due-date ranges one run reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    /// True when the run reads its ladder's whole window.
    pub full: bool,
    /// Disjoint inclusive ranges of due dates, in order.
    pub ranges: Vec<(NaiveDate, NaiveDate)>,
    /// With the next-at index: read the invoices whose `next_at` is at or
    /// before this instant, instead of `ranges`.
    pub due_by: Option<DateTime<Utc>>,
    /// A reschedule: `ranges` holds every open invoice, and each one read
    /// gets its `next_at` written ([`crate::next_at`]).
    pub reschedule: bool,
}

impl ReadPlan {
    /// Due-date ranges, read by the due index.
    pub fn dates(full: bool, ranges: Vec<(NaiveDate, NaiveDate)>) -> Self {
        Self {
            full,
            ranges,
            due_by: None,
            reschedule: false,
        }
    }
}

/// Every due date a valid invoice can have, as the index orders them (text:
/// four-digit years).
pub const ALL_DUE_DATES: (NaiveDate, NaiveDate) = (
    NaiveDate::from_ymd_opt(1, 1, 1).unwrap(),
    NaiveDate::from_ymd_opt(9999, 12, 31).unwrap(),
);

/// What a run at `now` reads with the next-at index: the invoices whose
/// `next_at` has come, once a reschedule under this policy (`fingerprint`)
/// has written every open invoice's, less than `every` ago; else that
/// reschedule: every open invoice, by the due index (a Query of the open
/// partition, not a Scan of the history).
pub fn plan_scheduled(
    state: &ReadState,
    now: DateTime<Utc>,
    fingerprint: &str,
    every: Duration,
) -> ReadPlan {
    let current = state.scheduled.as_deref() == Some(fingerprint)
        && state
            .rescheduled_at
            .is_some_and(|t| t <= now && now - t < every);
    if current {
        ReadPlan {
            due_by: Some(now),
            ..ReadPlan::dates(false, Vec::new())
        }
    } else {
        ReadPlan {
            reschedule: true,
            ..ReadPlan::dates(true, vec![ALL_DUE_DATES])
        }
    }
}

/// The local times at which a step's channels open: the send window's start
/// (the later of it and the SMS window's for SMS), or midnight for an escalation.
fn openings(policy: &Policy) -> Vec<(i64, NaiveTime)> {
    let cal = &policy.calendar;
    let mut out = Vec::new();
    for step in policy.steps() {
        let times: Vec<NaiveTime> = match step.action {
            Action::Escalate => vec![NaiveTime::MIN],
            Action::Remind => step
                .channels
                .iter()
                .map(|c| match c {
                    Channel::Email => cal.send_window.start,
                    Channel::Sms => cal.send_window.start.max(cal.sms_window.start),
                })
                .collect(),
        };
        for t in times {
            if !out.contains(&(step.offset_days, t)) {
                out.push((step.offset_days, t));
            }
        }
    }
    out
}

/// The next instant after `now` at which `channel` opens on a business day
/// in `tz` (for SMS the later of the send and SMS windows' starts). A
/// message found ready but held back where no band finds it again (today is
/// not a business day, or a caught-up step's channel is outside its window:
/// its step day is past) makes a full read due then ([`ReadState::needing`]).
pub fn next_opening(
    policy: &Policy,
    tz: Tz,
    now: DateTime<Utc>,
    channel: Channel,
) -> DateTime<Utc> {
    let cal = &policy.calendar;
    let open = match channel {
        Channel::Email => cal.send_window.start,
        Channel::Sms => cal.send_window.start.max(cal.sms_window.start),
    };
    let local = now.with_timezone(&tz);
    let today = local.date_naive();
    let day = if cal.is_business_day(today) && local.time() < open {
        today
    } else {
        cal.effective_day(today + Days::new(1))
    };
    // A time a DST change skips: the hour after it.
    day.and_time(open)
        .and_local_timezone(tz)
        .earliest()
        .or_else(|| {
            (day.and_time(open) + Duration::hours(1))
                .and_local_timezone(tz)
                .earliest()
        })
        .map_or(now + Duration::hours(24), |t| t.with_timezone(&Utc))
        .max(now)
}

/// The time between full reads when `FULL_READ_HOURS` is not set: two hours
/// less than the shortest window a message can go in, at least one hour, so
/// that with hourly runs every time zone has a full read inside its window.
pub fn default_full_read_interval(policy: &Policy) -> Duration {
    let cal = &policy.calendar;
    let email = cal.send_window.end - cal.send_window.start;
    let sms = cal.send_window.end.min(cal.sms_window.end)
        - cal.send_window.start.max(cal.sms_window.start);
    let shortest = if policy
        .steps()
        .iter()
        .any(|s| s.channels.contains(&Channel::Sms))
        && sms > Duration::zero()
    {
        email.min(sms)
    } else {
        email
    };
    (shortest - Duration::hours(2)).max(Duration::hours(1))
}

/// The due dates whose step day, in one of `zones`, had a channel open in
/// (`since`, `now`]: every invoice there a step became ready for in that time.
pub fn opened_bands(
    policy: &Policy,
    zones: &[Tz],
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<(NaiveDate, NaiveDate)> {
    let mut days: BTreeSet<(i64, NaiveDate)> = BTreeSet::new();
    for (offset, open) in openings(policy) {
        for tz in zones {
            // Local wall-clock times (a DST change repeats or skips an hour:
            // a repeated opening is read twice, a skipped one still counts).
            let a = since.with_timezone(tz).naive_local();
            let b = now.with_timezone(tz).naive_local();
            // Local days L with a < L@open <= b.
            let mut day = if a.time() < open {
                a.date()
            } else {
                a.date() + Days::new(1)
            };
            while day.and_time(open) <= b {
                days.insert((offset, day));
                day = day + Days::new(1);
            }
        }
    }
    let cal = &policy.calendar;
    let mut ranges: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for (offset, step_day) in days {
        // Step days are business days: on others no step fires.
        if !cal.is_business_day(step_day) {
            continue;
        }
        // The nominal days deferred to `step_day`: back to the previous business day.
        let mut first = step_day;
        for _ in 0..400 {
            let before = first - Days::new(1);
            if cal.is_business_day(before) {
                break;
            }
            first = before;
        }
        let shift = |d: NaiveDate| d.checked_sub_signed(Duration::days(offset));
        if let (Some(from), Some(to)) = (shift(first), shift(step_day)) {
            ranges.push((from, to));
        }
    }
    merge(ranges)
}

/// Sorts and merges overlapping or adjacent ranges.
fn merge(mut ranges: Vec<(NaiveDate, NaiveDate)>) -> Vec<(NaiveDate, NaiveDate)> {
    ranges.sort();
    let mut out: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for (from, to) in ranges {
        match out.last_mut() {
            Some(last) if from <= last.1 + Days::new(1) => last.1 = last.1.max(to),
            _ => out.push((from, to)),
        }
    }
    out
}

/// What a run at `now` reads: bands since the last complete run when a full
/// read is recent enough (less than `full_every` ago, and not in the future),
/// none is due ([`ReadState::full_read_due`]) and the runs have followed each
/// other unbroken for a day ([`SETTLE`]), else the whole window.
pub fn plan(
    policy: &Policy,
    state: ReadState,
    now: DateTime<Utc>,
    full_every: Duration,
) -> ReadPlan {
    let recent = |t: Option<DateTime<Utc>>| t.filter(|&t| t <= now && now - t < full_every);
    match (recent(state.last_full_read_at), recent(state.last_run_at)) {
        (Some(full), Some(since))
            if since >= full
                && !state.zones.is_empty()
                && state.full_read_due.is_none_or(|due| due > now)
                && state
                    .series_since
                    .is_some_and(|s| s <= now && now - s >= SETTLE) =>
        {
            ReadPlan::dates(false, opened_bands(policy, &state.zones, since, now))
        }
        _ => {
            let (from, to) = due_date_window(now, policy.lead_days(), policy.lag_days());
            ReadPlan::dates(true, vec![(from, to)])
        }
    }
}

#[cfg(test)]
mod tests;
