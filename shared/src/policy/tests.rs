use super::*;
use crate::calendar::Window;
use chrono::{NaiveDate, NaiveTime};

fn templates(t: &str) -> bool {
    crate::templates::BUILT_IN_TEMPLATES.contains(&t)
}

fn load(text: &str) -> Result<Policy, PolicyError> {
    Policy::from_toml(text, templates)
}

#[test]
fn the_default_policy_is_the_documented_ladder() {
    let p = Policy::default_policy();
    let ladder: Vec<(&str, i64, Action)> = p
        .steps()
        .iter()
        .map(|s| (s.name.as_str(), s.offset_days, s.action))
        .collect();
    assert_eq!(
        ladder,
        [
            ("pre_due", -3, Action::Remind),
            ("due_today", 0, Action::Remind),
            ("overdue", 1, Action::Remind),
            ("overdue_7", 7, Action::Remind),
            ("final_notice", 14, Action::Remind),
            ("collections", 30, Action::Escalate),
        ]
    );
    assert_eq!(
        p.cap,
        Cap {
            messages: 7,
            days: 7
        }
    );
    assert_eq!(
        p.calendar.send_window,
        Window::parse("09:00-17:00").unwrap()
    );
    assert!(p
        .steps()
        .iter()
        .all(|s| s.late_fee.is_none() && s.min_outstanding.is_empty()));
    assert_eq!((p.lead_days(), p.lag_days()), (3, 30 + 14));
}

const STEP: &str =
    "[[steps]]\nname = \"a\"\noffset_days = 0\nchannels = [\"email\"]\ntemplate = \"due_today\"\n";

#[test]
fn an_invalid_policy_names_its_line() {
    let cases = [
        ("[[steps]]\nname = \"a\"\noffset_days = 0\nchannels = [\"fax\"]\ntemplate = \"due_today\"\n", 4, "unknown channel `fax`"),
        ("[[steps]]\nname = \"a\"\noffset_days = 0\nchannels = [\"email\"]\ntemplate = \"nope\"\n", 5, "unknown template `nope`"),
        (&format!("{STEP}\n[[steps]]\nname = \"b\"\noffset_days = 0\nchannels = [\"sms\"]\ntemplate = \"overdue\"\n"), 9, "both on offset 0"),
        (&format!("{STEP}late_fee = {{ amount = \"5.00\" }}\n"), 6, "needs a currency"),
        (&format!("[calendar]\nsend_window = \"17:00-09:00\"\n{STEP}"), 2, "not a window"),
        (&format!("{STEP}colour = \"red\"\n"), 6, "unknown field `colour`"),
        (&format!("{STEP}min_outstanding = {{ XYZ = \"5\" }}\n"), 6, "unknown currency `XYZ`"),
        ("[[steps]]\nname = \"esc\"\noffset_days = 30\naction = \"escalate\"\nchannels = [\"email\"]\n", 1, "sends no message"),
        (&format!("{STEP}\n[[steps]]\nname = \"a\"\noffset_days = 1\nchannels = [\"sms\"]\ntemplate = \"overdue\"\n"), 8, "two steps are named `a`"),
        ("[cap]\nmessages = 0\ndays = 7\n", 2, "cap messages"),
        ("title = ", 1, ""),
    ];
    for (text, line, words) in cases {
        let err = load(text).expect_err(text);
        assert_eq!(err.line, line, "{err} for:\n{text}");
        assert!(err.to_string().contains(words), "{err}");
    }
}

#[test]
fn late_fees_round_to_the_currency_and_fixed_fees_apply_in_their_currency() {
    let usd = Currency::parse("USD").unwrap();
    let jpy = Currency::parse("JPY").unwrap();
    let pct = LateFee::Percent(Decimal::new(15, 1));
    assert_eq!(
        pct.amount_for(Decimal::new(99_99, 2), usd),
        Some(Decimal::new(150, 2))
    );
    assert_eq!(
        pct.amount_for(Decimal::from(54_321), jpy),
        Some(Decimal::from(815))
    );
    assert_eq!(
        pct.amount_for(Decimal::new(1, 2), usd),
        None,
        "a fee that rounds to zero is no fee"
    );
    let fixed = LateFee::Fixed {
        amount: Decimal::new(25_00, 2),
        currency: usd,
    };
    assert_eq!(
        fixed.amount_for(Decimal::from(10), usd),
        Some(Decimal::new(25_00, 2))
    );
    assert_eq!(fixed.amount_for(Decimal::from(10), jpy), None);
    let p = load(&format!(
        "{STEP}late_fee = {{ percent = \"2\" }}\nmin_outstanding = {{ USD = \"10.00\" }}\n"
    ))
    .unwrap();
    assert_eq!(
        p.steps()[0].late_fee,
        Some(LateFee::Percent(Decimal::from(2)))
    );
    assert_eq!(
        p.steps()[0].min_outstanding.get(&usd),
        Some(&Decimal::new(10_00, 2))
    );
}

#[test]
fn weekends_and_holidays_defer_a_step_to_the_next_business_day() {
    let mut c = Calendar::defaults();
    let d = |s: &str| s.parse::<NaiveDate>().unwrap();
    assert_eq!(
        c.effective_day(d("2026-11-28")),
        d("2026-11-28"),
        "weekends count unless skipped"
    );
    c.skip_weekends = true;
    assert_eq!(c.effective_day(d("2026-11-28")), d("2026-11-30"));
    assert_eq!(c.effective_day(d("2026-11-29")), d("2026-11-30"));
    c.holidays.insert(d("2026-12-25"));
    assert_eq!(
        c.effective_day(d("2026-12-25")),
        d("2026-12-28"),
        "Friday holiday, then the weekend"
    );
    assert_eq!(c.effective_day(d("2026-12-24")), d("2026-12-24"));
}

#[test]
fn sms_keeps_quiet_hours_inside_the_send_window() {
    let mut c = Calendar::defaults();
    c.send_window = Window::parse("07:00-22:00").unwrap();
    let t = |s: &str| NaiveTime::parse_from_str(s, "%H:%M").unwrap();
    assert!(c.open(Channel::Email, t("07:30")) && !c.open(Channel::Sms, t("07:30")));
    assert!(c.open(Channel::Email, t("21:30")) && !c.open(Channel::Sms, t("21:30")));
    assert!(c.open(Channel::Sms, t("08:00")) && !c.open(Channel::Sms, t("21:00")));
    assert!(
        !c.open(Channel::Email, t("22:00")),
        "the window's end is exclusive"
    );
}
