//! The decision for one invoice at one instant: which step is due, on which
//! channels it may go now, and which older steps it supersedes. Pure: the run
//! re-checks everything that can change at claim time.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::channel::Channel;
use crate::invoice::{Invoice, InvoiceStatus};
use crate::money::Money;
use crate::policy::{Action, Policy, Step};

/// Why an invoice gets no reminder in this run. `as_str()` keys run summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hold {
    Paid,
    Void,
    Disputed,
    Paused,
    /// The customer promised to pay by a date that has not passed (or whose
    /// next business day has not come).
    Promised,
    InCollections,
    NothingOutstanding,
    /// No step's day has come yet.
    NotYet,
    /// The last step's catch-up time is over.
    LadderFinished,
    /// The step due is older than one already sent (the clock went back).
    StepAlreadyPassed,
    /// A pre-due step on or after the due date (no due-day step in the policy).
    PreDueTooLate,
    BelowMinimum,
    /// Today is not a business day in the customer's calendar (a weekend
    /// with `skip_weekends`, or a holiday): nothing is sent to them, not a
    /// catch-up, a retry or a message the cap deferred.
    NotABusinessDay,
}

impl Hold {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::Void => "void",
            Self::Disputed => "disputed",
            Self::Paused => "paused",
            Self::Promised => "promised",
            Self::InCollections => "in_collections",
            Self::NothingOutstanding => "nothing_outstanding",
            Self::NotYet => "not_yet",
            Self::LadderFinished => "ladder_finished",
            Self::StepAlreadyPassed => "step_already_passed",
            Self::PreDueTooLate => "pre_due_too_late",
            Self::BelowMinimum => "below_minimum",
            Self::NotABusinessDay => "not_a_business_day",
        }
    }
}

/// Whether a channel of the due step can be sent in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Outside the send window (or SMS quiet hours) of the customer's local time: a later run sends it.
    OutsideWindow,
    /// The customer opted out of this channel.
    OptedOut,
    /// The invoice has no address for this channel.
    NoAddress,
}

impl Readiness {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::OutsideWindow => "outside_window",
            Self::OptedOut => "opted_out",
            Self::NoAddress => "no_address",
        }
    }
}

/// A step due for one invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due<'p> {
    pub step: &'p Step,
    /// The customer's local date.
    pub local_date: NaiveDate,
    /// The date the step was due to fire (its business day); earlier than
    /// `local_date` when catching up.
    pub step_day: NaiveDate,
    /// Each of the step's channels and whether it can go now (empty for escalation).
    pub channels: Vec<(Channel, Readiness)>,
    /// Older steps never reached whose time has passed: recorded as skipped.
    pub superseded: Vec<&'p Step>,
    /// The offset a claim records as reached (`reminder_offset`): the step's
    /// own, or for a broken promise's message, past the ladder's steps it
    /// stands in for.
    pub claim_offset: i64,
}

impl Due<'_> {
    pub fn ready(&self) -> impl Iterator<Item = Channel> + '_ {
        self.channels
            .iter()
            .filter(|(_, r)| *r == Readiness::Ready)
            .map(|(c, _)| *c)
    }
}

/// The late fee `step` adds to `invoice` now: none when the step has no fee,
/// when it was already applied, or when it does not apply to the currency.
pub fn late_fee_due(step: &Step, invoice: &Invoice) -> Option<Money> {
    let outstanding = invoice.outstanding();
    step.late_fee
        .filter(|_| !invoice.late_fees.contains_key(&step.name))
        .and_then(|fee| fee.amount_for(outstanding.amount, outstanding.currency))
        .map(|amount| Money::new(amount, outstanding.currency))
}

/// Decides which step, if any, `invoice` is due at `now`.
pub fn decide<'p>(
    policy: &'p Policy,
    invoice: &Invoice,
    now: DateTime<Utc>,
    business_tz: Tz,
) -> Result<Due<'p>, Hold> {
    match invoice.status {
        InvoiceStatus::Paid => return Err(Hold::Paid),
        InvoiceStatus::Void => return Err(Hold::Void),
        InvoiceStatus::Open => {}
    }
    if invoice.disputed {
        return Err(Hold::Disputed);
    }
    if invoice.in_collections {
        return Err(Hold::InCollections);
    }
    if invoice.paused_until.is_some_and(|until| until > now) {
        return Err(Hold::Paused);
    }
    let outstanding = invoice.outstanding();
    if outstanding.amount.is_zero() {
        return Err(Hold::NothingOutstanding);
    }
    let local = now.with_timezone(&invoice.timezone.unwrap_or(business_tz));
    let today = local.date_naive();
    let steps = policy.steps();
    let latest = steps
        .iter()
        .rposition(|s| policy.calendar.step_day(s.offset_days, invoice.due_date) <= today);
    if let Some(promised) = invoice.promised_by {
        if let Some(due) = broken_promise(policy, invoice, promised, local, latest)? {
            return Ok(due);
        }
    }
    let index = latest.ok_or(Hold::NotYet)?;
    let step = &steps[index];
    let step_day = policy.calendar.step_day(step.offset_days, invoice.due_date);
    if invoice
        .reached()
        .is_some_and(|reached| reached > step.offset_days)
    {
        return Err(Hold::StepAlreadyPassed);
    }
    if step.offset_days < 0 && today >= invoice.due_date {
        return Err(Hold::PreDueTooLate);
    }
    // A step's own day is a business day (`step_day`); a late send (caught
    // up, retried, deferred by the cap) or escalation waits for the next one too.
    if !policy.calendar.is_business_day(today) {
        return Err(Hold::NotABusinessDay);
    }
    let last = index + 1 == steps.len();
    // Counted in business days: days nothing may be sent on do not use up the catch-up.
    let catch_up = policy.calendar.catch_up_days;
    if last
        && policy
            .calendar
            .business_days_between(step_day, today, catch_up)
            > catch_up
    {
        return Err(Hold::LadderFinished);
    }
    if step
        .min_outstanding
        .get(&outstanding.currency)
        .is_some_and(|min| outstanding.amount < *min)
    {
        return Err(Hold::BelowMinimum);
    }
    let superseded = not_reached(invoice, &steps[..index]);
    let channels = match step.action {
        Action::Escalate => Vec::new(),
        Action::Remind => readiness(policy, invoice, step, local.time()),
    };
    Ok(Due {
        step,
        local_date: today,
        step_day,
        channels,
        superseded,
        claim_offset: step.offset_days,
    })
}

/// Steps of `steps` the invoice has not reached in its current cycle.
fn not_reached<'p>(invoice: &Invoice, steps: &'p [Step]) -> Vec<&'p Step> {
    steps
        .iter()
        .filter(|s| {
            invoice
                .reached()
                .is_none_or(|reached| s.offset_days > reached)
        })
        .collect()
}

/// Each of `step`'s channels and whether it can go at local time `time`.
fn readiness(
    policy: &Policy,
    invoice: &Invoice,
    step: &Step,
    time: chrono::NaiveTime,
) -> Vec<(Channel, Readiness)> {
    step.channels
        .iter()
        .map(|&c| {
            let readiness = if !invoice.accepts(c) {
                Readiness::OptedOut
            } else if !invoice.has_address(c) {
                Readiness::NoAddress
            } else if !policy.calendar.open(c, time) {
                Readiness::OutsideWindow
            } else {
                Readiness::Ready
            };
            (c, readiness)
        })
        .collect()
}

/// A promise to pay by `promised`: nothing before the next business day
/// after it (`Hold::Promised`); then, if the invoice is still owed and the
/// message was not sent, the broken promise's message, within the catch-up
/// days, standing in for the ladder's steps that fell due meanwhile (they
/// are recorded as superseded, and the ladder goes on with the next one).
/// `None`: the promise is settled (its message went, or its time is over)
/// and the ladder decides.
fn broken_promise<'p>(
    policy: &'p Policy,
    invoice: &Invoice,
    promised: NaiveDate,
    local: DateTime<Tz>,
    latest: Option<usize>,
) -> Result<Option<Due<'p>>, Hold> {
    let today = local.date_naive();
    let cal = &policy.calendar;
    let broken_day = cal.effective_day(promised.succ_opt().unwrap_or(promised));
    if today < broken_day {
        return Err(Hold::Promised);
    }
    let step = policy.promise_step();
    let name = invoice.ledger_step(&step.name);
    let settled = invoice.reminded.iter().any(|k| {
        k.strip_prefix(name.as_str())
            .is_some_and(|rest| rest.starts_with('#'))
    });
    let lapsed =
        cal.business_days_between(broken_day, today, cal.catch_up_days) > cal.catch_up_days;
    if settled || lapsed || step.channels.is_empty() {
        return Ok(None);
    }
    if !cal.is_business_day(today) {
        return Err(Hold::NotABusinessDay);
    }
    let steps = policy.steps();
    // An escalation that fell due meanwhile is not stood in for: it follows.
    let latest = latest.and_then(|i| steps[..=i].iter().rposition(|s| s.action == Action::Remind));
    let (superseded, claim_offset) = match latest {
        Some(index) => (
            not_reached(invoice, &steps[..=index]),
            steps[index]
                .offset_days
                .max(invoice.reached().unwrap_or(i64::MIN))
                + 1,
        ),
        None => (Vec::new(), invoice.reached().unwrap_or(i64::MIN)),
    };
    Ok(Some(Due {
        step,
        local_date: today,
        step_day: broken_day,
        channels: readiness(policy, invoice, step, local.time()),
        superseded,
        claim_offset,
    }))
}

#[cfg(test)]
mod tests;
