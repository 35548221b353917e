use super::*;
use crate::invoice::{RawInvoice, RawValue};
use proptest::prelude::*;

fn invoice(due: NaiveDate, zone: &str, extra: &[(&str, RawValue)]) -> Invoice {
    let mut raw = RawInvoice::default();
    for (k, v) in [
        ("invoice_id", "INV-1"),
        ("customer_id", "C-1"),
        ("customer_name", "Ana"),
        ("email", "ana@example.com"),
        ("phone", "+15555550100"),
        ("amount", "100.00"),
        ("currency", "USD"),
        ("due_date", &due.to_string()),
        ("status", "open"),
        ("timezone", zone),
    ] {
        raw.insert(k, RawValue::Text(v.into()));
    }
    for (k, v) in extra {
        raw.insert(*k, v.clone());
    }
    Invoice::parse(&raw).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

#[test]
fn the_next_step_opens_in_the_customer_s_own_morning() {
    let p = Policy::default_policy();
    // Due Monday 23 November in New York: the pre-due step (3 days before)
    // goes on Friday 20th, when the send window opens at 09:00 EST (14:00Z).
    let inv = invoice(day("2026-11-23"), "America/New_York", &[]);
    let from = at("2026-11-18T00:00:00Z");
    let next = next_at(&p, &inv, from, Tz::UTC).unwrap();
    assert_eq!(next, at("2026-11-20T14:00:00Z"));
    assert!(sendable(&p, &inv, next, Tz::UTC));
    assert!(!sendable(&p, &inv, next - Duration::minutes(1), Tz::UTC));
    // Already ready: now. Kathmandu (+05:45): 09:00 there is 03:15Z.
    assert_eq!(next_at(&p, &inv, next, Tz::UTC), Some(next));
    let far = invoice(day("2026-11-23"), "Asia/Kathmandu", &[]);
    assert_eq!(
        next_at(&p, &far, from, Tz::UTC),
        Some(at("2026-11-20T03:15:00Z"))
    );
}

#[test]
fn a_pause_a_paid_invoice_and_a_finished_ladder() {
    let p = Policy::default_policy();
    let paused_until = RawValue::Text("2026-11-24T16:20:00Z".into());
    let inv = invoice(
        day("2026-11-23"),
        "Europe/London",
        &[("reminders_paused_until", paused_until)],
    );
    // Paused over the due day: the step can go the moment the pause ends.
    assert_eq!(
        next_at(&p, &inv, at("2026-11-22T00:00:00Z"), Tz::UTC),
        Some(at("2026-11-24T16:20:00Z"))
    );
    let paid = invoice(
        day("2026-11-23"),
        "UTC",
        &[("status", RawValue::Text("paid".into()))],
    );
    assert_eq!(
        next_at(&p, &paid, at("2026-11-22T00:00:00Z"), Tz::UTC),
        None
    );
    // A year after its due date nothing is due again.
    let old = invoice(day("2025-01-06"), "UTC", &[]);
    assert_eq!(next_at(&p, &old, at("2026-11-22T00:00:00Z"), Tz::UTC), None);
    // Paused for two years: look again when the search's horizon ends.
    let long = invoice(
        day("2026-11-23"),
        "UTC",
        &[(
            "reminders_paused_until",
            RawValue::Text("2028-12-01T00:00:00Z".into()),
        )],
    );
    let from = at("2026-11-22T00:00:00Z");
    assert_eq!(
        next_at(&p, &long, from, Tz::UTC),
        Some(from + Duration::days(HORIZON_DAYS as i64 + 1))
    );
}

#[test]
fn a_step_already_sent_waits_for_the_next_one() {
    let p = Policy::default_policy();
    let due = day("2026-11-23");
    let sent = invoice(
        due,
        "UTC",
        &[
            ("reminder_offset", RawValue::Number("0".into())),
            (
                "reminded",
                RawValue::List(vec!["due_today#email".into(), "due_today#sms".into()]),
            ),
        ],
    );
    // The due-day step went at 09:00: the run sends nothing more until the
    // next step's day (the day after, at 09:00).
    let next = next_at(&p, &sent, at("2026-11-23T10:00:00Z"), Tz::UTC).unwrap();
    let step = p.steps().iter().find(|s| s.offset_days > 0).unwrap();
    assert_eq!(
        next.date_naive(),
        p.calendar.step_day(step.offset_days, due)
    );
    assert!(next > at("2026-11-23T10:00:00Z"));
}

const ZONES: [&str; 10] = [
    "UTC",
    // DST at midnight: 14 March 2027 has no 00:00, 1 November 2026 two.
    "America/Havana",
    "Australia/Sydney",
    "America/New_York",
    "America/St_Johns",
    "Asia/Kathmandu",
    "Australia/Eucla",
    "Pacific/Honolulu",
    "Asia/Tokyo",
    "Europe/London",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// `next_at` is where `decide` first says a run would send: ready there,
    /// and at no quarter hour between the start and it (a run between sends
    /// nothing a run reading everything would). Also with an SMS window that
    /// opens later than e-mail's, after a step whose e-mail alone went.
    #[test]
    fn next_at_is_the_first_instant_decide_would_send(
        zone in 0..ZONES.len(),
        // Across the DST changes of October, November and March.
        start in prop::sample::select(vec!["2026-09-28T00:00:00Z", "2026-11-16T00:00:00Z", "2027-03-01T00:00:00Z"]),
        due_in in -40i64..40,
        from_minutes in 0i64..(24 * 60),
        reached in prop::option::of(prop::sample::select(vec![-3i64, 0, 1, 7, 14])),
        pause_hours in prop::option::of(1i64..200),
        // SMS may open later than e-mail, and a step may have sent only its e-mail.
        sms_opens_later in any::<bool>(),
        email_only_sent in any::<bool>(),
    ) {
        let mut p = Policy::default_policy();
        if sms_opens_later {
            p.calendar.sms_window = crate::calendar::Window::parse("10:30-20:00").unwrap();
        }
        let from = at(start) + Duration::minutes(from_minutes);
        let due = from.date_naive() + Duration::days(due_in);
        let mut extra = Vec::new();
        if let Some(r) = reached {
            extra.push(("reminder_offset", RawValue::Number(r.to_string())));
            // As the run leaves it: that step's messages sent.
            if let Some(step) = p.steps().iter().find(|s| s.offset_days == r) {
                let keys = step
                    .channels
                    .iter()
                    .filter(|&&c| !email_only_sent || c == crate::channel::Channel::Email)
                    .map(|c| crate::ledger::ledger_key(&step.name, *c))
                    .collect();
                extra.push(("reminded", RawValue::List(keys)));
            }
        }
        if let Some(h) = pause_hours {
            let until = (from + Duration::hours(h)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            extra.push(("reminders_paused_until", RawValue::Text(until)));
        }
        let inv = invoice(due, ZONES[zone], &extra);
        let next = next_at(&p, &inv, from, Tz::UTC);
        let horizon = from + Duration::days(60);
        let end = next.unwrap_or(horizon).min(horizon);
        let mut t = from;
        while t < end {
            prop_assert!(!sendable(&p, &inv, t, Tz::UTC), "sendable at {t}, before next_at {next:?}");
            t += Duration::minutes(15);
        }
        if let Some(n) = next {
            prop_assert!(n >= from);
            prop_assert!(sendable(&p, &inv, n, Tz::UTC), "not sendable at next_at {n}");
        }
    }
}

fn raw(due: &str, extra: &[(&str, &str)]) -> RawInvoice {
    let mut raw = RawInvoice::default();
    for (k, v) in [
        ("invoice_id", "INV-1"),
        ("customer_id", "C-1"),
        ("customer_name", "Ana"),
        ("email", "ana@example.com"),
        ("amount", "100.00"),
        ("currency", "USD"),
        ("due_date", due),
        ("status", "open"),
        ("timezone", "America/New_York"),
    ] {
        raw.insert(k, RawValue::Text(v.into()));
    }
    for (k, v) in extra {
        raw.insert(*k, RawValue::Text((*v).into()));
    }
    // Where the index keeps it: the invoice's own shard.
    if !raw.lacks(ATTRIBUTE) {
        raw.insert(SHARD_ATTRIBUTE, RawValue::Text(shard("INV-1").to_string()));
    }
    raw
}

#[test]
fn reschedule_sets_keeps_moves_and_removes_what_an_item_holds() {
    let p = Policy::default_policy();
    let now = at("2026-11-18T00:00:00Z");
    // A plain item (no next_at): the pre-due step's morning in New York.
    let plain = raw("2026-11-23", &[]);
    assert_eq!(
        reschedule(&p, &plain, None, now, Tz::UTC),
        Schedule::Set(at("2026-11-20T14:00:00Z"))
    );
    // What it holds already: kept; anything else is moved.
    let right = raw("2026-11-23", &[("next_at", "2026-11-20T14:00:00Z")]);
    assert_eq!(reschedule(&p, &right, None, now, Tz::UTC), Schedule::Keep);
    let wrong = raw("2026-11-23", &[("next_at", "2026-11-25T14:00:00Z")]);
    assert_eq!(
        reschedule(&p, &wrong, None, now, Tz::UTC),
        Schedule::Set(at("2026-11-20T14:00:00Z"))
    );
    // Due now, holding an earlier instant: kept (not moved on every look).
    let late = at("2026-11-20T16:00:00Z");
    let due = raw("2026-11-23", &[("next_at", "2026-11-20T14:00:00Z")]);
    assert_eq!(reschedule(&p, &due, None, late, Tz::UTC), Schedule::Keep);
    // Paid: out of the index.
    let paid = raw(
        "2026-11-23",
        &[("status", "paid"), ("next_at", "2026-11-20T14:00:00Z")],
    );
    assert_eq!(reschedule(&p, &paid, None, now, Tz::UTC), Schedule::Remove);
    assert_eq!(
        reschedule(
            &p,
            &raw("2026-11-23", &[("status", "void")]),
            None,
            now,
            Tz::UTC
        ),
        Schedule::Keep,
        "nothing held, nothing wanted"
    );
    // Not a valid invoice: read once a day, at the business's midnight.
    let bad = raw("23/11/2026", &[]);
    assert_eq!(
        reschedule(&p, &bad, None, now, chrono_tz::Europe::Paris),
        Schedule::Set(at("2026-11-18T23:00:00Z"))
    );
    // The customer's record: a pause moves it to the pause's end (then the
    // first window after it); an opt-out of e-mail with no phone: nothing.
    let record = crate::customer::CustomerRecord {
        paused_until: Some(at("2026-11-24T12:00:00Z")),
        ..Default::default()
    };
    let Schedule::Set(t) = reschedule(&p, &plain, Some(&record), now, Tz::UTC) else {
        panic!("a paused customer's invoice stays in the index");
    };
    assert!(t >= at("2026-11-24T12:00:00Z"), "{t}");
    let paused = with_record(Invoice::parse(&plain).unwrap(), &record);
    assert_eq!(
        state(&p, &paused, record.paused_until, t, Tz::UTC),
        Some(true)
    );
    assert_eq!(
        state(
            &p,
            &paused,
            record.paused_until,
            t - Duration::minutes(1),
            Tz::UTC
        ),
        Some(false)
    );
    let mut out = crate::customer::CustomerRecord::default();
    out.apply(&crate::customer::Change::sns_opt_out(now, "test"));
    out.opt_outs.insert(
        "email".into(),
        out.opt_outs.values().next().cloned().unwrap(),
    );
    assert_eq!(
        reschedule(&p, &right, Some(&out), now, Tz::UTC),
        Schedule::Set(at("2026-12-23T05:00:00Z")),
        "no channel left: only the escalation, 30 days after the due date at midnight in New York"
    );
    // Kept only where the index finds it: in its own shard, as a stamp.
    let mut elsewhere = right.clone();
    elsewhere.insert(
        SHARD_ATTRIBUTE,
        RawValue::Text(((shard("INV-1") + 1) % SHARDS).to_string()),
    );
    assert_eq!(
        reschedule(&p, &elsewhere, None, now, Tz::UTC),
        Schedule::Set(at("2026-11-20T14:00:00Z"))
    );
    let offset = raw("2026-11-23", &[("next_at", "2026-11-20T09:00:00-05:00")]);
    assert_eq!(
        reschedule(&p, &offset, None, now, Tz::UTC),
        Schedule::Set(at("2026-11-20T14:00:00Z")),
        "the same instant, but not as the index orders it"
    );
    // A stamp is fixed width, to the second.
    assert_eq!(
        stamp(at("2026-11-20T14:00:00.750Z")),
        "2026-11-20T14:00:00Z"
    );
}
