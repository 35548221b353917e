//! Reading a policy file: TOML into the ladder, its calendar and its cap,
//! every problem reported with its line.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::Deserialize;
use toml::Spanned;

use super::{Action, LateFee, Policy, PolicyError, Step};
use crate::calendar::{Calendar, Window};
use crate::cap::Cap;
use crate::channel::Channel;
use crate::money::{parse_amount, Currency};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    calendar: Option<Spanned<RawCalendar>>,
    #[serde(default)]
    cap: Option<Spanned<RawCap>>,
    #[serde(default)]
    steps: Vec<Spanned<RawStep>>,
    #[serde(default)]
    plans: Option<Spanned<RawPlans>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlans {
    default_days: Option<Spanned<i64>>,
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
            if name == super::PROMISE_STEP {
                return Err(err(
                    s.name.span().start,
                    format!("`{name}` is the built-in step of a broken promise to pay: name the step otherwise"),
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
        let plan_default_days = match raw
            .plans
            .as_ref()
            .and_then(|p| p.get_ref().default_days.as_ref())
        {
            None => None,
            Some(days) if (1..=365).contains(days.get_ref()) => Some(days.get_ref().unsigned_abs()),
            Some(days) => {
                return Err(err(
                    days.span().start,
                    "plans.default_days must be 1 to 365 (days after an unpaid instalment's date)"
                        .into(),
                ))
            }
        };
        let mut channels: Vec<Channel> = Vec::new();
        for step in &steps {
            for c in &step.channels {
                if !channels.contains(c) {
                    channels.push(*c);
                }
            }
        }
        if !channels.is_empty() && !template_exists(super::PROMISE_STEP) {
            return Err(err(
                0,
                format!(
                    "no `{}` template for a broken promise to pay",
                    super::PROMISE_STEP
                ),
            ));
        }
        let promise = Step {
            name: super::PROMISE_STEP.into(),
            offset_days: 0,
            channels,
            template: super::PROMISE_STEP.into(),
            min_outstanding: BTreeMap::new(),
            late_fee: None,
            action: Action::Remind,
        };
        Ok(Self {
            steps,
            calendar,
            cap,
            plan_default_days,
            promise,
        })
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
