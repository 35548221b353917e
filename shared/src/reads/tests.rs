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
        customer_settings: false,
        ..ReadState::default()
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
