//! The reminder policy: a ladder of steps relative to the due date, and the
//! decision of which step (if any) an invoice is due at a given instant.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::calendar::local_date;
use crate::invoice::{Invoice, InvoiceStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    /// Template id used to render the messages.
    pub template: String,
}

/// The ladder, sorted by offset, and how late a missed step may still be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    steps: Vec<Step>,
    /// A step whose day was missed (no run, an outage) is still sent up to this
    /// many days late, unless a later step's day has come.
    pub catch_up_days: u64,
}

impl Policy {
    pub fn new(mut steps: Vec<Step>, catch_up_days: u64) -> Self {
        steps.sort_by_key(|s| s.offset_days);
        Self {
            steps,
            catch_up_days,
        }
    }

    /// pre-due (3 days before), due today, overdue (1 day after); email and SMS.
    pub fn default_ladder() -> Self {
        let step = |name: &str, offset_days| Step {
            name: name.into(),
            offset_days,
            channels: vec![Channel::Email, Channel::Sms],
            template: name.into(),
        };
        Self::new(
            vec![
                step("pre_due", -3),
                step("due_today", 0),
                step("overdue", 1),
            ],
            3,
        )
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// How many days before the due date the first step fires.
    pub fn lead_days(&self) -> u64 {
        self.steps
            .first()
            .map_or(0, |s| (-s.offset_days).max(0).unsigned_abs())
    }

    /// How many days after the due date the last step may still fire.
    pub fn lag_days(&self) -> u64 {
        self.steps
            .last()
            .map_or(0, |s| s.offset_days.max(0).unsigned_abs())
            + self.catch_up_days
    }

    /// The step due on local date `today` for an invoice due on `due`: the
    /// latest step whose day has come, if it is at most `catch_up_days` late;
    /// never a pre-due step on or after the due date.
    pub fn step_due(&self, due: NaiveDate, today: NaiveDate) -> Option<&Step> {
        let age = (today - due).num_days();
        let step = self.steps.iter().rev().find(|s| s.offset_days <= age)?;
        let late = age - step.offset_days;
        let pre_due_too_late = step.offset_days < 0 && age >= 0;
        (late <= self.catch_up_days as i64 && !pre_due_too_late).then_some(step)
    }
}

/// Why an invoice gets no reminder in this run. `as_str()` keys run summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hold {
    Paid,
    Void,
    Disputed,
    Paused,
    NothingOutstanding,
    NoStepDue,
}

impl Hold {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::Void => "void",
            Self::Disputed => "disputed",
            Self::Paused => "paused",
            Self::NothingOutstanding => "nothing_outstanding",
            Self::NoStepDue => "no_step_due",
        }
    }
}

/// A step to send for one invoice, on the customer's local date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due<'p> {
    pub step: &'p Step,
    pub local_date: NaiveDate,
}

/// Decides which step, if any, `invoice` is due at `as_of`. Pure: the claim
/// re-checks the invoice's state in the store.
pub fn decide<'p>(
    policy: &'p Policy,
    invoice: &Invoice,
    as_of: DateTime<Utc>,
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
    if invoice.paused_until.is_some_and(|until| until > as_of) {
        return Err(Hold::Paused);
    }
    if invoice.outstanding().amount.is_zero() {
        return Err(Hold::NothingOutstanding);
    }
    let today = local_date(as_of, invoice.timezone.unwrap_or(business_tz));
    let step = policy
        .step_due(invoice.due_date, today)
        .ok_or(Hold::NoStepDue)?;
    Ok(Due {
        step,
        local_date: today,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invoice::{RawInvoice, RawValue};
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn invoice(due: &str, extra: &[(&str, &str)]) -> Invoice {
        let mut raw = RawInvoice::default();
        let base = [
            ("invoice_id", "INV-1"),
            ("customer_id", "C-1"),
            ("customer_name", "Ana"),
            ("email", "ana@example.com"),
            ("amount", "100.00"),
            ("currency", "USD"),
            ("due_date", due),
            ("status", "open"),
        ];
        for (k, v) in base.iter().chain(extra) {
            raw.insert(*k, RawValue::Text((*v).into()));
        }
        Invoice::parse(&raw).unwrap()
    }

    fn step_name(policy: &Policy, due: &str, today: &str) -> Option<String> {
        policy.step_due(d(due), d(today)).map(|s| s.name.clone())
    }

    #[test]
    fn default_ladder_picks_each_step_on_its_day() {
        let p = Policy::default_ladder();
        let cases = [
            ("2026-11-26", "2026-11-22", None),
            ("2026-11-26", "2026-11-23", Some("pre_due")),
            ("2026-11-26", "2026-11-25", Some("pre_due")),
            ("2026-11-23", "2026-11-23", Some("due_today")),
            ("2026-11-22", "2026-11-23", Some("overdue")),
            ("2026-11-20", "2026-11-23", Some("overdue")),
            ("2026-11-19", "2026-11-23", Some("overdue")),
            ("2026-11-18", "2026-11-23", None),
            // Month end and a leap day.
            ("2028-03-01", "2028-02-27", Some("pre_due")),
            ("2028-02-29", "2028-03-01", Some("overdue")),
        ];
        for (due, today, want) in cases {
            assert_eq!(
                step_name(&p, due, today).as_deref(),
                want,
                "due {due} today {today}"
            );
        }
    }

    #[test]
    fn window_covers_lead_and_lag_of_the_ladder() {
        let p = Policy::default_ladder();
        assert_eq!(p.lead_days(), 3);
        assert_eq!(p.lag_days(), 1 + 3);
    }

    #[test]
    fn paid_void_disputed_paused_and_settled_invoices_are_held() {
        let p = Policy::default_ladder();
        let now: DateTime<Utc> = "2026-11-23T15:00:00Z".parse().unwrap();
        let tz = Tz::UTC;
        assert_eq!(
            decide(&p, &invoice("2026-11-23", &[("status", "paid")]), now, tz),
            Err(Hold::Paid)
        );
        assert_eq!(
            decide(&p, &invoice("2026-11-23", &[("status", "void")]), now, tz),
            Err(Hold::Void)
        );
        assert_eq!(
            decide(&p, &invoice("2026-11-23", &[("disputed", "true")]), now, tz),
            Err(Hold::Disputed)
        );
        let paused = invoice("2026-11-23", &[("reminders_paused_until", "2026-11-30")]);
        assert_eq!(decide(&p, &paused, now, tz), Err(Hold::Paused));
        let pause_over = invoice("2026-11-23", &[("reminders_paused_until", "2026-11-22")]);
        assert!(decide(&p, &pause_over, now, tz).is_ok());
        let settled = invoice("2026-11-23", &[("amount_paid", "100")]);
        assert_eq!(decide(&p, &settled, now, tz), Err(Hold::NothingOutstanding));
        assert_eq!(
            decide(&p, &invoice("2026-12-31", &[]), now, tz),
            Err(Hold::NoStepDue)
        );
    }

    #[test]
    fn the_customers_zone_decides_the_day() {
        let p = Policy::default_ladder();
        // 03:00 UTC on the 23rd is still the 22nd in New York: the invoice due
        // on the 23rd is not yet due there, but is in London.
        let now: DateTime<Utc> = "2026-11-23T03:00:00Z".parse().unwrap();
        let ny = invoice("2026-11-23", &[("timezone", "America/New_York")]);
        let london = invoice("2026-11-23", &[("timezone", "Europe/London")]);
        assert_eq!(decide(&p, &ny, now, Tz::UTC).unwrap().step.name, "pre_due");
        assert_eq!(
            decide(&p, &london, now, Tz::UTC).unwrap().step.name,
            "due_today"
        );
        // Without an invoice zone the business zone applies.
        let plain = invoice("2026-11-23", &[]);
        let business = chrono_tz::America::New_York;
        assert_eq!(
            decide(&p, &plain, now, business).unwrap().local_date,
            d("2026-11-22")
        );
    }

    proptest! {
        #[test]
        fn a_pre_due_step_is_never_chosen_on_or_after_the_due_date(
            due_days in 0i64..3000, age in -40i64..60, catch_up in 0u64..20,
        ) {
            let p = Policy::new(Policy::default_ladder().steps().to_vec(), catch_up);
            let due = d("2026-01-01") + chrono::Days::new(due_days as u64);
            let today = due + chrono::Duration::days(age);
            if let Some(step) = p.step_due(due, today) {
                prop_assert!(step.offset_days <= age);
                prop_assert!(age - step.offset_days <= catch_up as i64);
                prop_assert!(step.offset_days >= 0 || age < 0);
                // No later step's day has come.
                prop_assert!(p.steps().iter().all(|s| s.offset_days <= step.offset_days || s.offset_days > age));
            }
        }
    }
}
