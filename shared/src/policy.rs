//! The reminder policy: a ladder of steps relative to the due date and the
//! calendar they fire on, loaded from TOML (`infra/policy.toml` is compiled in
//! as the default). Loading validates everything once, at start-up, and names
//! the line of the first problem.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::calendar::Calendar;
use crate::cap::Cap;
use crate::channel::Channel;
use crate::money::Currency;

mod load;

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

/// The built-in step of a broken promise to pay: its template, and the name
/// its ledger records carry (`promise_broken@<promised date>`).
pub const PROMISE_STEP: &str = "promise_broken";

/// The ladder, sorted by offset, with its calendar and cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    steps: Vec<Step>,
    pub calendar: Calendar,
    pub cap: Cap,
    /// A plan's instalment unpaid this many days after its date ends the
    /// plan (`[plans] default_days`; `None`: plans never end by themselves).
    pub plan_default_days: Option<u64>,
    /// The message a broken promise gets, on every channel the ladder uses.
    promise: Step,
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

    /// The reminder steps (not escalations): name and days from the due
    /// date, in order; what the report's effectiveness table is for.
    pub fn reminder_ladder(&self) -> Vec<(String, i64)> {
        self.steps()
            .iter()
            .filter(|s| s.action == Action::Remind)
            .map(|s| (s.name.clone(), s.offset_days))
            .collect()
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The step of a broken promise's message ([`PROMISE_STEP`]).
    pub fn promise_step(&self) -> &Step {
        &self.promise
    }

    /// How many days before the due date the first step fires.
    pub fn lead_days(&self) -> u64 {
        self.steps
            .first()
            .map_or(0, |s| (-s.offset_days).max(0).unsigned_abs())
    }

    /// How many days after the due date a step may still fire: the last
    /// step's offset, weekend and holiday deferral, and catch-up (counted in
    /// business days, so the weekends and holidays inside it too).
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
        let catch_up = self.calendar.catch_up_days;
        let weekends = if self.calendar.skip_weekends {
            (catch_up / 5 + 1) * 2
        } else {
            0
        };
        last + catch_up + deferral + weekends + self.calendar.holidays.len() as u64
    }
}

#[cfg(test)]
mod tests;
