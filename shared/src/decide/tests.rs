use super::*;
use crate::invoice::{RawInvoice, RawValue};
use proptest::prelude::*;

fn invoice(due: &str, extra: &[(&str, &str)]) -> Invoice {
    let mut raw = RawInvoice::default();
    let base = [
        ("invoice_id", "INV-1"),
        ("customer_id", "C-1"),
        ("customer_name", "Ana"),
        ("email", "ana@example.com"),
        ("phone", "+15555550100"),
        ("amount", "100.00"),
        ("currency", "USD"),
        ("due_date", due),
        ("status", "open"),
    ];
    for (k, v) in base.iter().chain(extra) {
        let value = if *k == "reminder_offset" {
            RawValue::Number((*v).into())
        } else {
            RawValue::Text((*v).into())
        };
        raw.insert(*k, value);
    }
    Invoice::parse(&raw).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// (step name or hold, email readiness, sms readiness)
fn outcome(p: &Policy, inv: &Invoice, now: &str) -> String {
    match decide(p, inv, at(now), Tz::UTC) {
        Err(hold) => hold.as_str().to_owned(),
        Ok(due) => {
            let channels: Vec<String> = due
                .channels
                .iter()
                .map(|(c, r)| format!("{c}:{}", r.as_str()))
                .collect();
            format!("{} {}", due.step.name, channels.join(" "))
        }
    }
}

#[test]
fn the_customers_calendar_across_dst_far_zones_month_ends_and_leap_days() {
    let p = Policy::default_policy();
    let ready = "email:ready sms:ready";
    let closed = "email:outside_window sms:outside_window";
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str, String)] = &[
        // New York, DST starts 8 March 2026 (02:00 -> 03:00): 13:00Z is 09:00 EDT, not 08:00 EST.
        ("America/New_York", "2026-03-08", "2026-03-08T13:00:00Z", format!("due_today {ready}")),
        ("America/New_York", "2026-03-08", "2026-03-08T12:59:00Z", format!("due_today {closed}")),
        ("America/New_York", "2026-03-09", "2026-03-06T14:00:00Z", format!("pre_due {ready}")),
        // DST ends 1 November 2026: 14:00Z is 09:00 EST; 13:30Z is 08:30.
        ("America/New_York", "2026-11-01", "2026-11-01T14:00:00Z", format!("due_today {ready}")),
        ("America/New_York", "2026-11-01", "2026-11-01T13:30:00Z", format!("due_today {closed}")),
        // 03:30Z on the 1st is still 31 October, 23:30, in New York: pre-due, but night.
        ("America/New_York", "2026-11-01", "2026-11-01T03:30:00Z", format!("pre_due {closed}")),
        // London: BST from 29 March 2026: 08:00Z is 09:00 local; in winter 08:00Z is 08:00.
        ("Europe/London", "2026-03-29", "2026-03-29T08:00:00Z", format!("due_today {ready}")),
        ("Europe/London", "2026-11-23", "2026-11-23T08:00:00Z", format!("due_today {closed}")),
        ("Europe/London", "2026-10-25", "2026-10-25T16:30:00Z", format!("due_today {ready}")),
        // Auckland (UTC+13 in November) is a day ahead of UTC.
        ("Pacific/Auckland", "2026-11-24", "2026-11-23T20:00:00Z", format!("due_today {ready}")),
        ("Pacific/Auckland", "2026-11-24", "2026-11-23T19:59:00Z", format!("due_today {closed}")),
        // Honolulu (UTC-10) is a day behind late in the UTC day; the window ends at 17:00 local.
        ("Pacific/Honolulu", "2026-11-23", "2026-11-24T02:59:00Z", format!("due_today {ready}")),
        ("Pacific/Honolulu", "2026-11-23", "2026-11-24T03:00:00Z", format!("due_today {closed}")),
        ("Pacific/Honolulu", "2026-11-24", "2026-11-24T09:00:00Z", format!("pre_due {closed}")),
        // Kolkata (UTC+05:30): 03:30Z is 09:00.
        ("Asia/Kolkata", "2026-11-23", "2026-11-23T03:30:00Z", format!("due_today {ready}")),
        ("Asia/Kolkata", "2026-11-23", "2026-11-23T03:29:00Z", format!("due_today {closed}")),
        // Month ends and leap years.
        ("UTC", "2026-03-01", "2026-02-26T10:00:00Z", format!("pre_due {ready}")),
        ("UTC", "2026-01-31", "2026-02-01T10:00:00Z", format!("overdue {ready}")),
        ("UTC", "2026-01-31", "2026-03-02T10:00:00Z", "collections ".into()),
        ("UTC", "2028-02-29", "2028-02-26T10:00:00Z", format!("pre_due {ready}")),
        ("UTC", "2028-02-29", "2028-02-29T10:00:00Z", format!("due_today {ready}")),
        ("UTC", "2028-02-29", "2028-03-01T10:00:00Z", format!("overdue {ready}")),
        // Three days before 1 March is 27 February in a leap year, 26 February otherwise.
        ("UTC", "2028-03-01", "2028-02-26T10:00:00Z", "not_yet".into()),
        ("UTC", "2028-03-01", "2028-02-27T10:00:00Z", format!("pre_due {ready}")),
        ("UTC", "2026-03-01", "2026-02-25T10:00:00Z", "not_yet".into()),
    ];
    for (tz, due, now, want) in cases {
        let inv = invoice(due, &[("timezone", tz)]);
        assert_eq!(&outcome(&p, &inv, now), want, "{tz} due {due} at {now}");
    }
}

#[test]
fn catch_up_after_missed_days_sends_the_latest_step_once_and_supersedes_older_ones() {
    let p = Policy::default_policy();
    // Due 10 November; due_today (offset 0) was sent; then runs stopped.
    let inv = invoice("2026-11-10", &[("reminder_offset", "0")]);
    let cases = [
        ("2026-11-12T10:00:00Z", "overdue", vec![]), // 1 missed day: +1, a day late
        ("2026-11-14T10:00:00Z", "overdue", vec![]), // 3 missed days: still +1
        ("2026-11-21T10:00:00Z", "overdue_7", vec!["overdue"]), // 10 missed days: +7, +1 superseded
    ];
    for (now, step, superseded) in cases {
        let due = decide(&p, &inv, at(now), Tz::UTC).unwrap();
        assert_eq!(due.step.name, step, "{now}");
        let names: Vec<&str> = due.superseded.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, superseded, "{now}");
    }
    // An invoice first seen on its due date: the pre-due step is superseded, never sent late.
    let fresh = invoice("2026-11-10", &[]);
    let due = decide(&p, &fresh, at("2026-11-10T10:00:00Z"), Tz::UTC).unwrap();
    assert_eq!(
        (due.step.name.as_str(), due.superseded.len()),
        ("due_today", 1)
    );
    // The last step's catch-up ends: 30 + 14 days.
    assert_eq!(outcome(&p, &fresh, "2026-12-24T10:00:00Z"), "collections ");
    assert_eq!(
        outcome(&p, &fresh, "2026-12-25T10:00:00Z"),
        "ladder_finished"
    );
}

#[test]
fn never_remind_paid_void_disputed_paused_collections_opted_out_or_below_minimum() {
    let p = Policy::default_policy();
    let now = "2026-11-23T10:00:00Z";
    assert_eq!(
        outcome(&p, &invoice("2026-11-23", &[("status", "paid")]), now),
        "paid"
    );
    assert_eq!(
        outcome(&p, &invoice("2026-11-23", &[("status", "void")]), now),
        "void"
    );
    assert_eq!(
        outcome(&p, &invoice("2026-11-23", &[("disputed", "true")]), now),
        "disputed"
    );
    assert_eq!(
        outcome(
            &p,
            &invoice("2026-11-23", &[("in_collections", "true")]),
            now
        ),
        "in_collections"
    );
    assert_eq!(
        outcome(
            &p,
            &invoice("2026-11-23", &[("reminders_paused_until", "2026-11-23")]),
            now
        ),
        "paused"
    );
    assert_eq!(
        outcome(
            &p,
            &invoice("2026-11-23", &[("reminders_paused_until", "2026-11-22")]),
            now
        ),
        "due_today email:ready sms:ready"
    );
    assert_eq!(
        outcome(&p, &invoice("2026-11-23", &[("amount_paid", "100")]), now),
        "nothing_outstanding"
    );
    assert_eq!(
        outcome(&p, &invoice("2026-11-23", &[("channels", "email")]), now),
        "due_today email:ready sms:opted_out"
    );
    let min = Policy::from_toml(
        "[[steps]]\nname = \"due\"\noffset_days = 0\nchannels = [\"email\"]\ntemplate = \"due_today\"\nmin_outstanding = { USD = \"50.00\" }\n",
        |_| true,
    )
    .unwrap();
    assert_eq!(
        outcome(&min, &invoice("2026-11-23", &[("amount_paid", "60")]), now),
        "below_minimum"
    );
    assert_eq!(
        outcome(&min, &invoice("2026-11-23", &[("amount_paid", "50")]), now),
        "due email:ready"
    );
}

#[test]
fn weekends_defer_and_pre_due_never_lands_on_the_due_date() {
    let text =
        crate::policy::DEFAULT_POLICY.replace("skip_weekends = false", "skip_weekends = true");
    let p = Policy::from_toml(&text, |_| true).unwrap();
    // Due Saturday 28 November: nothing on the weekend. The due-day step and
    // the +1 step (Sunday) both move to Monday, when the invoice is overdue:
    // the later one goes, the earlier is superseded.
    let inv = invoice("2026-11-28", &[("reminder_offset", "-3")]);
    assert_eq!(
        outcome(&p, &inv, "2026-11-28T10:00:00Z"),
        "pre_due_too_late"
    );
    assert_eq!(
        outcome(&p, &inv, "2026-11-29T10:00:00Z"),
        "pre_due_too_late"
    );
    let monday = decide(&p, &inv, at("2026-11-30T10:00:00Z"), Tz::UTC).unwrap();
    assert_eq!(monday.step.name, "overdue");
    assert_eq!(
        monday
            .superseded
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["due_today"]
    );
    // Due Wednesday 2 December: pre-due falls on Sunday 29 November and moves to Monday.
    let wed = invoice("2026-12-02", &[]);
    assert_eq!(outcome(&p, &wed, "2026-11-29T10:00:00Z"), "not_yet");
    assert_eq!(
        outcome(&p, &wed, "2026-11-30T10:00:00Z"),
        "pre_due email:ready sms:ready"
    );
}

#[test]
fn a_late_send_never_lands_on_a_weekend_or_a_holiday() {
    let text = crate::policy::DEFAULT_POLICY
        .replace("skip_weekends = false", "skip_weekends = true")
        .replace("holidays = []", "holidays = [\"2026-12-01\"]");
    let p = Policy::from_toml(&text, |_| true).unwrap();
    // Due Friday 27 November; the due-day message was not sent on Friday
    // (an outage, a retry, a cap deferral): not on Saturday or Sunday.
    let inv = invoice("2026-11-27", &[("reminder_offset", "-3")]);
    for weekend in ["2026-11-28T10:00:00Z", "2026-11-29T10:00:00Z"] {
        assert_eq!(outcome(&p, &inv, weekend), "not_a_business_day");
    }
    // Monday: the overdue step (+1, Saturday, moved to Monday) goes.
    assert_eq!(
        outcome(&p, &inv, "2026-11-30T10:00:00Z"),
        "overdue email:ready sms:ready"
    );
    // A holiday on Tuesday: the same message retried then waits for Wednesday.
    let sent = invoice("2026-11-27", &[("reminder_offset", "1")]);
    assert_eq!(
        outcome(&p, &sent, "2026-12-01T10:00:00Z"),
        "not_a_business_day"
    );
    assert_eq!(
        outcome(&p, &sent, "2026-12-02T10:00:00Z"),
        "overdue email:ready sms:ready"
    );
}

#[test]
fn the_catch_up_window_counts_business_days_only() {
    let text = crate::policy::DEFAULT_POLICY
        .replace("skip_weekends = false", "skip_weekends = true")
        .replace("catch_up_days = 14", "catch_up_days = 1");
    let p = Policy::from_toml(&text, |_| true).unwrap();
    // The last step (+30 escalation) of an invoice due Wednesday 28 October
    // falls on Friday 27 November; held over the weekend, it still goes on
    // Monday (one business day after), not on Tuesday (two).
    let inv = invoice("2026-10-28", &[("reminder_offset", "14")]);
    assert_eq!(
        outcome(&p, &inv, "2026-11-28T10:00:00Z"),
        "not_a_business_day"
    );
    assert_eq!(outcome(&p, &inv, "2026-11-30T10:00:00Z"), "collections ");
    assert_eq!(outcome(&p, &inv, "2026-12-01T10:00:00Z"), "ladder_finished");
}

/// One simulated invoice: its due date, zone, when (if ever) it is paid, and the runs.
#[derive(Debug, Clone)]
struct Scenario {
    due_offset_days: i64,
    tz: Tz,
    paid_after_hours: Option<i64>,
    /// Gaps between runs, in hours (1 = hourly).
    gaps: Vec<i64>,
}

/// What a simulation sent (instant, step, channel), the invoice at the end, and the start instant.
type Simulated = (
    Vec<(DateTime<Utc>, String, Channel)>,
    Invoice,
    DateTime<Utc>,
);

/// Runs the decision the way the run does, against a set of settled keys:
/// a (step, channel) is sent when ready and not yet settled, and moves the
/// invoice's step marker. For comparing reads and decisions only: the
/// property that reminders go once, in order, in the window and never after
/// payment runs the real run against the store (`tests/tests/properties.rs`).
fn simulate(p: &Policy, s: &Scenario) -> Simulated {
    simulate_reading(p, s, None)
}

/// [`simulate`], where a run sees the invoice only when its due date is
/// in the run's [`crate::reads::plan`] (full reads every `full_every`),
/// or always when `full_every` is `None`.
fn simulate_reading(p: &Policy, s: &Scenario, full_every: Option<chrono::Duration>) -> Simulated {
    let mut state = crate::reads::ReadState::default();
    let start: DateTime<Utc> = at("2026-01-05T00:00:00Z");
    let due = (start + chrono::Duration::days(s.due_offset_days))
        .date_naive()
        .to_string();
    let mut inv = invoice(&due, &[("timezone", s.tz.name())]);
    let mut ledger: std::collections::BTreeSet<(String, Channel)> = Default::default();
    let mut sent = Vec::new();
    let mut now = start;
    for gap in &s.gaps {
        now += chrono::Duration::hours(*gap);
        let paid_at = s
            .paid_after_hours
            .map(|h| start + chrono::Duration::hours(h));
        if paid_at.is_some_and(|t| t <= now) {
            inv.status = InvoiceStatus::Paid;
        }
        if let Some(every) = full_every {
            let plan = crate::reads::plan(p, state.clone(), now, every);
            // A full read meets the business default (UTC here) and the invoice's zone.
            state = state.after(now, plan.full.then(|| vec![Tz::UTC, s.tz]), every);
            let read = plan
                .ranges
                .iter()
                .any(|&(a, b)| a <= inv.due_date && inv.due_date <= b);
            if !read {
                continue;
            }
        }
        let due = match decide(p, &inv, now, Tz::UTC) {
            Ok(due) => due,
            Err(Hold::NotABusinessDay) => {
                // As the run does: a full read at the next business opening.
                let from = crate::reads::next_opening(p, s.tz, now, Channel::Email);
                state = state.needing(None, Some(from));
                continue;
            }
            Err(_) => continue,
        };
        // As the run does: a caught-up step's channel outside its window
        // makes a full read due when it opens.
        for &(channel, readiness) in &due.channels {
            if readiness == Readiness::OutsideWindow
                && due.step_day < due.local_date
                && !ledger.contains(&(due.step.name.clone(), channel))
            {
                state = state.needing(
                    None,
                    Some(crate::reads::next_opening(p, s.tz, now, channel)),
                );
            }
        }
        let mut claimed = false;
        for channel in due.ready() {
            if ledger.insert((due.step.name.clone(), channel)) {
                sent.push((now, due.step.name.clone(), channel));
                claimed = true;
            }
        }
        if due.step.action == Action::Escalate {
            claimed = ledger.insert((due.step.name.clone(), Channel::Email));
            if claimed {
                inv.in_collections = true;
            }
        }
        if claimed {
            inv.reminder_offset = Some(due.step.offset_days);
        }
    }
    (sent, inv, start)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn with_hourly_runs_every_step_arrives_on_its_local_day(due_offset_days in 5i64..40, zone in 0usize..6) {
        let zones = [Tz::UTC, chrono_tz::America::New_York, chrono_tz::Europe::London,
            chrono_tz::Pacific::Auckland, chrono_tz::Pacific::Honolulu, chrono_tz::Asia::Kolkata];
        let s = Scenario { due_offset_days, tz: zones[zone], paid_after_hours: None, gaps: vec![1; 24 * 90] };
        let p = Policy::default_policy();
        let (sent, inv, _) = simulate(&p, &s);
        for step in p.steps().iter().filter(|st| st.action == Action::Remind) {
            for channel in &step.channels {
                let hit = sent.iter().find(|(_, st, c)| st == &step.name && c == channel);
                let Some((when, _, _)) = hit else {
                    return Err(TestCaseError::fail(format!("{} {channel} never sent", step.name)));
                };
                prop_assert_eq!(when.with_timezone(&s.tz).date_naive(), p.calendar.step_day(step.offset_days, inv.due_date));
            }
        }
        prop_assert!(inv.in_collections, "the ladder ends in collections");
    }

    /// With hourly runs and outages, reading only the bands between full
    /// reads sends the same steps on the same local days as reading the
    /// whole window every time.
    #[test]
    fn reading_bands_sends_what_reading_everything_sends(
        due_offset_days in -5i64..60,
        tz in prop::sample::select(vec![
            Tz::UTC, chrono_tz::America::New_York, chrono_tz::Pacific::Auckland,
            chrono_tz::Asia::Kathmandu, chrono_tz::Pacific::Chatham,
            chrono_tz::Pacific::Kiritimati, chrono_tz::Etc::GMTPlus12,
            chrono_tz::America::St_Johns,
        ]),
        gaps in prop::collection::vec(prop_oneof![40 => Just(1i64), 1 => 20i64..200], 200..2000),
        weekends in any::<bool>(),
        holiday in 0i64..60,
        sms_from in 6u32..12,
    ) {
        let mut p = Policy::default_policy();
        p.calendar.skip_weekends = weekends;
        p.calendar.holidays.insert((at("2026-01-05T00:00:00Z") + chrono::Duration::days(holiday)).date_naive());
        p.calendar.sms_window.start = chrono::NaiveTime::from_hms_opt(sms_from, 30, 0).unwrap();
        let s = Scenario { due_offset_days, tz, paid_after_hours: None, gaps };
        let every = crate::reads::default_full_read_interval(&p);
        let days = |sent: Vec<(DateTime<Utc>, String, Channel)>| -> Vec<(NaiveDate, String, Channel)> {
            sent.into_iter().map(|(t, step, c)| (t.with_timezone(&tz).date_naive(), step, c)).collect()
        };
        let (all, _, _) = simulate(&p, &s);
        let (banded, _, _) = simulate_reading(&p, &s, Some(every));
        prop_assert_eq!(days(all), days(banded));
    }
}

#[test]
fn a_promise_holds_until_the_next_business_day_then_its_message_stands_in_for_the_steps_meanwhile()
{
    let weekends = Policy::from_toml(
        &crate::policy::DEFAULT_POLICY.replace("skip_weekends = false", "skip_weekends = true"),
        |t| crate::templates::BUILT_IN_TEMPLATES.contains(&t),
    )
    .unwrap();
    // Due Monday 23 November; promised by Friday the 27th.
    let inv = invoice("2026-11-23", &[("promised_by", "2026-11-27")]);
    let ready = "email:ready sms:ready";
    for (now, expected) in [
        ("2026-11-23T14:00:00Z", "promised".to_owned()),
        ("2026-11-27T16:00:00Z", "promised".to_owned()),
        // Saturday and Sunday are not business days: Monday the 30th.
        ("2026-11-28T14:00:00Z", "promised".to_owned()),
        ("2026-11-30T14:00:00Z", format!("promise_broken {ready}")),
    ] {
        assert_eq!(outcome(&weekends, &inv, now), expected, "{now}");
    }
    let due = decide(&weekends, &inv, at("2026-11-30T14:00:00Z"), Tz::UTC).unwrap();
    let names: Vec<&str> = due.superseded.iter().map(|s| s.name.as_str()).collect();
    // pre_due, due_today, overdue and overdue_7 (the 30th) fell due meanwhile.
    assert_eq!(names, ["pre_due", "due_today", "overdue", "overdue_7"]);
    assert_eq!(due.claim_offset, 8, "past overdue_7, before final_notice");
    assert_eq!(inv.ledger_step(&due.step.name), "promise_broken@2026-11-27");
    // Once the message is settled on a channel, the ladder decides again.
    let mut sent = inv.clone();
    sent.reminded
        .insert("promise_broken@2026-11-27#email".into());
    sent.reminder_offset = Some(8);
    assert_eq!(
        outcome(&weekends, &sent, "2026-11-30T15:00:00Z"),
        "step_already_passed"
    );
    assert_eq!(
        outcome(&weekends, &sent, "2026-12-07T14:00:00Z"),
        format!("final_notice {ready}")
    );
    // Never sent within the catch-up days: the promise lapses and the ladder goes on.
    assert_eq!(
        outcome(&weekends, &inv, "2026-12-28T14:00:00Z"),
        "collections "
    );
    // A kept promise: nothing outstanding, nothing sent.
    let paid = invoice(
        "2026-11-23",
        &[("promised_by", "2026-11-27"), ("amount_paid", "100.00")],
    );
    assert_eq!(
        outcome(&weekends, &paid, "2026-11-30T14:00:00Z"),
        "nothing_outstanding"
    );
}

#[test]
fn a_plan_s_ladder_runs_on_its_instalment_in_a_cycle_of_its_own() {
    let p = Policy::default_policy();
    let inv = invoice(
        "2026-11-01",
        &[
            ("instalments", "2026-12-15:50.00,2027-01-15:50.00"),
            ("amount_paid", "10.00"),
            ("reminder_offset", "14"),
            ("reminder_cycle", "2026-12-15"),
        ],
    );
    // The first instalment: 40 of it left; final_notice was reached in its cycle.
    let on = inv.scheduled("2026-12-23".parse().unwrap(), p.plan_default_days);
    assert_eq!(on.due_date.to_string(), "2026-12-15");
    assert_eq!(on.outstanding().amount.to_string(), "40.00");
    assert_eq!(on.balance().amount.to_string(), "90.00");
    assert_eq!(
        outcome(&p, &on, "2026-12-23T14:00:00Z"),
        "step_already_passed"
    );
    // Paid: the second instalment's cycle starts with nothing reached.
    let mut paid = inv.clone();
    paid.amount_paid = "60.00".parse().unwrap();
    let on = paid.scheduled("2027-01-12".parse().unwrap(), p.plan_default_days);
    assert_eq!(on.cycle.as_deref(), Some("2027-01-15"));
    assert_eq!(on.reached(), None);
    assert_eq!(
        outcome(&p, &on, "2027-01-12T14:00:00Z"),
        "pre_due email:ready sms:ready"
    );
}
