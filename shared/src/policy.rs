//! The reminder policy: a ladder of steps relative to the due date and the
//! calendar they fire on, loaded from TOML (`infra/policy.toml` is compiled in
//! as the default). Loading validates everything once, at start-up, and names
//! the line of the first problem.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::Deserialize;
use toml::Spanned;

use crate::calendar::{Calendar, Window};
use crate::cap::Cap;
use crate::channel::Channel;
use crate::money::{parse_amount, Currency};

/// The default policy, compiled in.
pub const DEFAULT_POLICY: &str = include_str!("../../infra/policy.toml");

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send the step's template on its channels.
    Remind,
    /// No customer message: publish an event for people and mark the invoice
    /// as in collections, which stops automated reminders.
    Escalate,
}

/// A late fee added once when a step is first sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateFee {
    /// A fixed amount; applies to invoices in that currency only.
    Fixed { amount: Decimal, currency: Currency },
    /// A percentage of the outstanding amount, rounded to the currency's minor unit.
    Percent(Decimal),
}

impl LateFee {
    /// The fee for an invoice with `outstanding` in `currency`, if it applies.
    pub fn amount_for(&self, outstanding: Decimal, currency: Currency) -> Option<Decimal> {
        let fee = match *self {
            Self::Fixed {
                amount,
                currency: c,
            } if c == currency => amount,
            Self::Fixed { .. } => return None,
            Self::Percent(p) => (outstanding * p / Decimal::ONE_HUNDRED).round_dp_with_strategy(
                currency.exponent(),
                rust_decimal::RoundingStrategy::MidpointAwayFromZero,
            ),
        };
        (fee > Decimal::ZERO).then_some(fee)
    }
}

/// One rung of the ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Stable name, part of ledger keys: renaming a step re-sends it.
    pub name: String,
    /// Days from the due date; negative is before it.
    pub offset_days: i64,
    pub channels: Vec<Channel>,
    /// Template id used to render the messages (empty for escalation).
    pub template: String,
    /// No reminder when the outstanding amount is below this, per currency.
    pub min_outstanding: BTreeMap<Currency, Decimal>,
    pub late_fee: Option<LateFee>,
    pub action: Action,
}

/// The ladder, sorted by offset, with its calendar and cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    steps: Vec<Step>,
    pub calendar: Calendar,
    pub cap: Cap,
}

/// An invalid policy file, with the 1-based line of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy line {line}: {message}")]
pub struct PolicyError {
    pub line: usize,
    pub message: String,
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    #[error("cannot read policy file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid policy {path}: {source}")]
    Invalid { path: String, source: PolicyError },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    calendar: Option<Spanned<RawCalendar>>,
    #[serde(default)]
    cap: Option<Spanned<RawCap>>,
    #[serde(default)]
    steps: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    send_window: Option<Spanned<String>>,
    sms_window: Option<Spanned<String>>,
    #[serde(default)]
    skip_weekends: bool,
    #[serde(default)]
    holidays: Vec<Spanned<String>>,
    catch_up_days: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCap {
    messages: Spanned<i64>,
    days: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: Spanned<String>,
    offset_days: Spanned<i64>,
    #[serde(default)]
    channels: Vec<Spanned<String>>,
    template: Option<Spanned<String>>,
    #[serde(default)]
    min_outstanding: BTreeMap<Spanned<String>, Spanned<String>>,
    late_fee: Option<Spanned<RawFee>>,
    action: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFee {
    percent: Option<String>,
    amount: Option<String>,
    currency: Option<String>,
}

impl Policy {
    /// The compiled-in default (`infra/policy.toml`): -3, 0, +1, +7, +14 (final notice), +30 (escalate).
    pub fn default_policy() -> Self {
        Self::from_toml(DEFAULT_POLICY, |t| {
            crate::templates::BUILT_IN_TEMPLATES.contains(&t)
        })
        .expect("the compiled-in policy is valid (tested)")
    }

    /// Loads `path`, or the compiled-in default when `None`.
    pub fn load(
        path: Option<&str>,
        template_exists: impl Fn(&str) -> bool,
    ) -> Result<Self, PolicyLoadError> {
        let (path, text) = match path {
            None => (
                "<built-in infra/policy.toml>".to_owned(),
                DEFAULT_POLICY.to_owned(),
            ),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| PolicyLoadError::Read {
                    path: p.to_owned(),
                    source,
                })?;
                (p.to_owned(), text)
            }
        };
        Self::from_toml(&text, template_exists)
            .map_err(|source| PolicyLoadError::Invalid { path, source })
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Parses and validates a policy; `template_exists` says which template ids can be rendered.
    pub fn from_toml(
        text: &str,
        template_exists: impl Fn(&str) -> bool,
    ) -> Result<Self, PolicyError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let err = |offset: usize, message: String| PolicyError {
            line: line_of(offset),
            message,
        };
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            err(offset, e.message().to_owned())
        })?;

        let calendar = match raw.calendar {
            None => Calendar::defaults(),
            Some(c) => {
                let c = c.into_inner();
                let window = |w: Option<Spanned<String>>, default: &str| match w {
                    None => Ok(Window::parse(default).expect("default window")),
                    Some(w) => Window::parse(w.get_ref()).ok_or_else(|| {
                        err(
                            w.span().start,
                            format!("`{}` is not a window like \"09:00-17:00\"", w.get_ref()),
                        )
                    }),
                };
                let mut holidays = BTreeSet::new();
                for h in &c.holidays {
                    let day = crate::calendar::parse_date(h.get_ref()).ok_or_else(|| {
                        err(
                            h.span().start,
                            format!("holiday `{}` is not a YYYY-MM-DD date", h.get_ref()),
                        )
                    })?;
                    holidays.insert(day);
                }
                if holidays.len() > 200 {
                    return Err(err(0, "more than 200 holidays".into()));
                }
                let catch_up_days = match c.catch_up_days {
                    None => 14,
                    Some(d) if (0..=365).contains(d.get_ref()) => *d.get_ref() as u64,
                    Some(d) => {
                        return Err(err(d.span().start, "catch_up_days must be 0-365".into()))
                    }
                };
                Calendar {
                    send_window: window(c.send_window, "09:00-17:00")?,
                    sms_window: window(c.sms_window, "08:00-21:00")?,
                    skip_weekends: c.skip_weekends,
                    holidays,
                    catch_up_days,
                }
            }
        };

        let cap = match raw.cap {
            None => Cap {
                messages: 7,
                days: 7,
            },
            Some(cap) => {
                let cap = cap.into_inner();
                let positive = |v: &Spanned<i64>, what: &str| {
                    u32::try_from(*v.get_ref())
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| err(v.span().start, format!("cap {what} must be 1-1000")))
                };
                Cap {
                    messages: positive(&cap.messages, "messages")?,
                    days: positive(&cap.days, "days")?,
                }
            }
        };

        if raw.steps.is_empty() {
            return Err(err(text.len(), "the policy has no [[steps]]".into()));
        }
        let mut steps = Vec::new();
        let mut names = BTreeSet::new();
        let mut offsets = BTreeMap::new();
        for spanned in raw.steps {
            let start = spanned.span().start;
            let s = spanned.into_inner();
            let name = s.name.get_ref().clone();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(err(
                    s.name.span().start,
                    format!("step name `{name}` must be lower-case letters, digits and _"),
                ));
            }
            if !names.insert(name.clone()) {
                return Err(err(
                    s.name.span().start,
                    format!("two steps are named `{name}`"),
                ));
            }
            let offset = *s.offset_days.get_ref();
            if !(-365..=365).contains(&offset) {
                return Err(err(
                    s.offset_days.span().start,
                    "offset_days must be -365 to 365".into(),
                ));
            }
            if let Some(other) = offsets.insert(offset, name.clone()) {
                return Err(err(
                    s.offset_days.span().start,
                    format!("steps `{other}` and `{name}` are both on offset {offset}"),
                ));
            }
            let action = match s.action.as_ref().map(|a| a.get_ref().as_str()) {
                None | Some("remind") => Action::Remind,
                Some("escalate") => Action::Escalate,
                Some(other) => {
                    let at = s.action.as_ref().map_or(start, |a| a.span().start);
                    return Err(err(
                        at,
                        format!("unknown action `{other}` (remind or escalate)"),
                    ));
                }
            };
            let mut channels = Vec::new();
            for c in &s.channels {
                let channel = Channel::parse(c.get_ref()).ok_or_else(|| {
                    err(
                        c.span().start,
                        format!("unknown channel `{}` (email or sms)", c.get_ref()),
                    )
                })?;
                if !channels.contains(&channel) {
                    channels.push(channel);
                }
            }
            let template = s
                .template
                .as_ref()
                .map(|t| t.get_ref().clone())
                .unwrap_or_default();
            match action {
                Action::Remind => {
                    if channels.is_empty() {
                        return Err(err(start, format!("step `{name}` has no channels")));
                    }
                    let at = s.template.as_ref().map_or(start, |t| t.span().start);
                    if template.is_empty() {
                        return Err(err(at, format!("step `{name}` has no template")));
                    }
                    if !template_exists(&template) {
                        return Err(err(at, format!("unknown template `{template}`")));
                    }
                }
                Action::Escalate => {
                    if !channels.is_empty() || !template.is_empty() || s.late_fee.is_some() {
                        return Err(err(start, format!("escalation step `{name}` sends no message: remove channels, template and late_fee")));
                    }
                }
            }
            let mut min_outstanding = BTreeMap::new();
            for (code, amount) in &s.min_outstanding {
                let currency = Currency::parse(code.get_ref()).ok_or_else(|| {
                    err(
                        code.span().start,
                        format!("unknown currency `{}`", code.get_ref()),
                    )
                })?;
                let value = parse_amount(amount.get_ref(), currency).map_err(|e| {
                    err(
                        amount.span().start,
                        format!("minimum `{}`: {e}", amount.get_ref()),
                    )
                })?;
                min_outstanding.insert(currency, value);
            }
            let late_fee = match &s.late_fee {
                None => None,
                Some(fee) => Some(parse_fee(fee.get_ref()).map_err(|m| err(fee.span().start, m))?),
            };
            steps.push(Step {
                name,
                offset_days: offset,
                channels,
                template,
                min_outstanding,
                late_fee,
                action,
            });
        }
        steps.sort_by_key(|s| s.offset_days);
        Ok(Self {
            steps,
            calendar,
            cap,
        })
    }

    /// How many days before the due date the first step fires.
    pub fn lead_days(&self) -> u64 {
        self.steps
            .first()
            .map_or(0, |s| (-s.offset_days).max(0).unsigned_abs())
    }

    /// How many days after the due date a step may still fire: the last
    /// step's offset, weekend and holiday deferral, and catch-up.
    pub fn lag_days(&self) -> u64 {
        let last = self
            .steps
            .last()
            .map_or(0, |s| s.offset_days.max(0).unsigned_abs());
        let deferral = if self.calendar.skip_weekends || !self.calendar.holidays.is_empty() {
            7
        } else {
            0
        };
        last + self.calendar.catch_up_days + deferral
    }
}

fn parse_fee(fee: &RawFee) -> Result<LateFee, String> {
    match (&fee.percent, &fee.amount, &fee.currency) {
        (Some(p), None, None) => {
            let value: Decimal = p.parse().map_err(|_| format!("late fee percent `{p}` is not a number"))?;
            if value <= Decimal::ZERO || value > Decimal::ONE_HUNDRED {
                return Err("late fee percent must be above 0 and at most 100".into());
            }
            Ok(LateFee::Percent(value))
        }
        (None, Some(a), Some(c)) => {
            let currency = Currency::parse(c).ok_or_else(|| format!("unknown currency `{c}`"))?;
            let amount = parse_amount(a, currency).map_err(|e| format!("late fee `{a}`: {e}"))?;
            if amount.is_zero() {
                return Err("a late fee must be above zero".into());
            }
            Ok(LateFee::Fixed { amount, currency })
        }
        (None, Some(_), None) => Err("a fixed late fee needs a currency".into()),
        _ => Err("a late fee is either { percent = \"1.5\" } or { amount = \"25.00\", currency = \"USD\" }".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    const STEP: &str = "[[steps]]\nname = \"a\"\noffset_days = 0\nchannels = [\"email\"]\ntemplate = \"due_today\"\n";

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
}
