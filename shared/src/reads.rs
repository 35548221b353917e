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
//! full read. Full reads come at least every `FULL_READ_HOURS`, less than the
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
            // A full read answers a due one; a band read keeps it (it is later than now).
            full_read_due: if full { None } else { self.full_read_due },
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
            ReadPlan {
                full: false,
                ranges: opened_bands(policy, &state.zones, since, now),
            }
        }
        _ => {
            let (from, to) = due_date_window(now, policy.lead_days(), policy.lag_days());
            ReadPlan {
                full: true,
                ranges: vec![(from, to)],
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn an_hour_after_a_run_only_the_days_whose_window_just_opened_are_read() {
        let p = Policy::default_policy();
        // 13:30 to 14:30 UTC is 08:30 to 09:30 in New York: the window opens
        // on the 23rd. Brisbane (23:30 to 00:30) starts the 24th: only an
        // escalation starts at midnight.
        let zones = [chrono_tz::America::New_York, chrono_tz::Australia::Brisbane];
        let bands = opened_bands(
            &p,
            &zones,
            at("2026-11-23T13:30:00Z"),
            at("2026-11-23T14:30:00Z"),
        );
        let expected: Vec<(NaiveDate, NaiveDate)> = {
            let v: Vec<_> = p
                .steps()
                .iter()
                .map(|s| {
                    let day = match s.action {
                        Action::Remind => d("2026-11-23"),
                        Action::Escalate => d("2026-11-24"),
                    };
                    let due = day - Duration::days(s.offset_days);
                    (due, due)
                })
                .collect();
            merge(v)
        };
        assert_eq!(bands, expected);
    }

    #[test]
    fn an_escalation_is_read_when_its_day_begins() {
        let p = Policy::default_policy();
        let last = p.steps().last().unwrap();
        assert_eq!(last.action, Action::Escalate);
        // Midnight passes in Paris at 23:00 UTC.
        let paris = [chrono_tz::Europe::Paris];
        let bands = opened_bands(
            &p,
            &paris,
            at("2026-11-23T22:50:00Z"),
            at("2026-11-23T23:10:00Z"),
        );
        let due = d("2026-11-24") - Duration::days(last.offset_days);
        assert_eq!(bands, vec![(due, due)]);
        // Two hours later nothing has begun there.
        let later = opened_bands(
            &p,
            &paris,
            at("2026-11-24T00:50:00Z"),
            at("2026-11-24T01:10:00Z"),
        );
        assert_eq!(later, vec![]);
    }

    #[test]
    fn a_monday_step_day_reads_the_weekend_deferred_to_it() {
        let mut p = Policy::default_policy();
        p.calendar.skip_weekends = true;
        // Monday 2026-11-23, 09:00 in UTC.
        let bands = opened_bands(
            &p,
            &[Tz::UTC],
            at("2026-11-23T08:30:00Z"),
            at("2026-11-23T09:30:00Z"),
        );
        for step in p.steps().iter().filter(|s| s.action == Action::Remind) {
            let sat = d("2026-11-21") - Duration::days(step.offset_days);
            let mon = d("2026-11-23") - Duration::days(step.offset_days);
            assert!(
                bands.iter().any(|&(a, b)| a <= sat && mon <= b),
                "{}: {bands:?}",
                step.name
            );
        }
        // On a Saturday no step fires, so nothing is read.
        let sat = opened_bands(
            &p,
            &[Tz::UTC],
            at("2026-11-21T08:30:00Z"),
            at("2026-11-21T09:30:00Z"),
        );
        assert!(
            sat.iter().all(|&(a, _)| {
                p.steps()
                    .iter()
                    .all(|s| a + Duration::days(s.offset_days) != d("2026-11-21"))
            }),
            "{sat:?}"
        );
    }

    #[test]
    fn a_full_read_comes_when_none_is_recent_or_the_clock_went_back() {
        let p = Policy::default_policy();
        let every = default_full_read_interval(&p);
        assert_eq!(every, Duration::hours(6), "the 09:00-17:00 window less 2 h");
        let now = at("2026-11-23T12:00:00Z");
        let state = |full: &str, run: &str| ReadState {
            last_full_read_at: Some(at(full)),
            last_run_at: Some(at(run)),
            zones: vec![Tz::UTC],
            series_since: Some(at("2026-11-20T00:00:00Z")),
            full_read_due: None,
        };
        assert!(plan(&p, ReadState::default(), now, every).full);
        let full_with = |full: &str, run: &str| plan(&p, state(full, run), now, every).full;
        assert!(!full_with("2026-11-23T07:00:00Z", "2026-11-23T11:00:00Z"));
        assert!(
            full_with("2026-11-23T06:00:00Z", "2026-11-23T11:00:00Z"),
            "6 h since a full read"
        );
        assert!(
            full_with("2026-11-23T13:00:00Z", "2026-11-23T13:00:00Z"),
            "a run in the future"
        );
        let no_zones = ReadState {
            zones: vec![],
            ..state("2026-11-23T07:00:00Z", "2026-11-23T11:00:00Z")
        };
        assert!(plan(&p, no_zones, now, every).full, "zones unknown");
        let due = ReadState {
            full_read_due: Some(at("2026-11-23T11:30:00Z")),
            ..state("2026-11-23T07:00:00Z", "2026-11-23T11:00:00Z")
        };
        assert!(plan(&p, due, now, every).full, "a deferral ended");
        let young = ReadState {
            series_since: Some(at("2026-11-22T13:00:00Z")),
            ..state("2026-11-23T07:00:00Z", "2026-11-23T11:00:00Z")
        };
        assert!(
            plan(&p, young, now, every).full,
            "runs resumed less than a day ago"
        );
        let full = plan(&p, ReadState::default(), now, every);
        let (from, to) = due_date_window(now, p.lead_days(), p.lag_days());
        assert_eq!(full.ranges, vec![(from, to)]);
    }

    #[test]
    fn a_series_of_runs_lasts_while_they_come_within_the_interval() {
        let every = Duration::hours(6);
        let t0 = at("2026-11-23T00:00:00Z");
        let s = ReadState::default().after(t0, Some(vec![Tz::UTC]), every);
        assert_eq!(s.series_since, Some(t0));
        assert_eq!(s.last_full_read_at, Some(t0));
        let s = s.after(t0 + Duration::hours(5), None, every);
        assert_eq!(s.series_since, Some(t0));
        assert_eq!(
            s.last_full_read_at,
            Some(t0),
            "a band read keeps the last full read"
        );
        assert_eq!(s.zones, vec![Tz::UTC]);
        let t = t0 + Duration::hours(11);
        let s = s.after(t, Some(vec![Tz::UTC]), every);
        assert_eq!(
            s.series_since,
            Some(t),
            "six hours without a run break the series"
        );
    }

    #[test]
    fn a_full_read_falls_due_after_work_left_or_a_deferral_and_a_full_read_clears_it() {
        let every = Duration::hours(6);
        let t0 = at("2026-11-23T00:00:00Z");
        let until = at("2026-11-25T00:00:00Z");
        let s = ReadState::default()
            .after(t0, Some(vec![Tz::UTC]), every)
            .needing(None, Some(until));
        assert_eq!(s.full_read_due, Some(until));
        let t1 = t0 + Duration::hours(1);
        let s = s.after(t1, None, every).needing(None, None);
        assert_eq!(s.full_read_due, Some(until), "a band read keeps it");
        let s = s.needing(Some(t1), None);
        assert_eq!(s.full_read_due, Some(t1), "the earliest wins");
        let s = s.after(t1 + Duration::hours(1), Some(vec![Tz::UTC]), every);
        assert_eq!(s.full_read_due, None);
    }

    #[test]
    fn ranges_merge_when_they_touch() {
        let r = merge(vec![
            (d("2026-01-05"), d("2026-01-06")),
            (d("2026-01-01"), d("2026-01-02")),
            (d("2026-01-03"), d("2026-01-03")),
        ]);
        assert_eq!(
            r,
            vec![
                (d("2026-01-01"), d("2026-01-03")),
                (d("2026-01-05"), d("2026-01-06"))
            ]
        );
    }
}
