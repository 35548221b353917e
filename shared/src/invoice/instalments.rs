//! Payment plans: an invoice's outstanding amount in instalments, each with
//! its date and amount (summing to what was outstanding when the plan was
//! made). Pure: the plan is attributes of the invoice (`instalments`,
//! `plan_paid_before`, `plan_defaulted_on`), and [`PaymentPlan::state`]
//! says, from what has been paid and the customer's date, which instalment
//! the ladder runs on now.
//!
//! Payments are allocated to instalments in date order: what was paid since
//! the plan was made (`amount_paid - plan_paid_before`) pays the first
//! instalment, then the second, and so on. The ladder runs on the first
//! instalment not paid in full, as if it were the invoice's due date (its
//! pre-due, due-day and overdue steps, under a ladder cycle of its own, so
//! each instalment's steps are sent once), stating what is left of that
//! instalment, its date and the remaining balance. When an instalment is
//! still unpaid `plan_default_days` (policy) after its date, the plan ends:
//! the whole outstanding amount is due, and the ladder goes on from that
//! instalment's overdue steps. The run keeps the end (`plan_defaulted_on`)
//! with the first message that says so, so a late payment does not revive it.

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;

use super::{RawInvoice, RawValue};
use crate::calendar::parse_date;
use crate::money::{parse_amount, Currency};

/// The invoice attribute holding the plan: `2026-12-15:400.00,2027-01-15:400.00`.
pub const INSTALMENTS: &str = "instalments";
/// `amount_paid` when the plan was made: later payments pay its instalments.
pub const PLAN_PAID_BEFORE: &str = "plan_paid_before";
/// The date of the instalment whose default ended the plan (written by the run).
pub const PLAN_DEFAULTED_ON: &str = "plan_defaulted_on";

/// Most instalments one plan may have.
pub const MAX_INSTALMENTS: usize = 36;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instalment {
    pub date: NaiveDate,
    pub amount: Decimal,
}

impl Instalment {
    /// `2026-12-15:400.00`, the amount in the invoice's currency.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, PlanError> {
        let bad = || PlanError::BadInstalment(text.to_owned());
        let (date, amount) = text.trim().split_once(':').ok_or_else(bad)?;
        let date = parse_date(date.trim()).ok_or_else(bad)?;
        let amount = parse_amount(amount.trim(), currency).map_err(|_| bad())?;
        if amount.is_zero() {
            return Err(bad());
        }
        Ok(Self { date, amount })
    }
}

impl std::fmt::Display for Instalment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.date, self.amount)
    }
}

/// Why a plan cannot be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("instalment {0:?} is not DATE:AMOUNT (e.g. 2026-12-15:400.00) with an amount above zero in the invoice's currency")]
    BadInstalment(String),
    #[error("a plan has 1 to {MAX_INSTALMENTS} instalments")]
    Count,
    #[error("instalment dates must be in order, each after the one before")]
    Order,
    #[error("the instalments sum to {sum}, not the {outstanding} outstanding")]
    Sum { sum: Decimal, outstanding: Decimal },
}

/// A plan: its instalments in date order and what had been paid when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentPlan {
    pub instalments: Vec<Instalment>,
    pub paid_before: Decimal,
    pub defaulted_on: Option<NaiveDate>,
}

/// Where a plan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanState {
    /// Instalment `number` (from 1) of `of` is the next unpaid one, `left` of it unpaid.
    Active {
        number: usize,
        of: usize,
        date: NaiveDate,
        left: Decimal,
    },
    /// The instalment of `date` went unpaid past the policy's default days:
    /// the plan ended and the whole outstanding amount is due.
    Defaulted { date: NaiveDate },
    /// Every instalment is paid; what is still owed (a late fee added after
    /// the plan was made) is due as of the last instalment's date.
    Completed { last: NaiveDate },
}

impl PaymentPlan {
    /// A new plan for an invoice with `outstanding` due and `amount_paid`
    /// paid so far: the instalments must be in date order and sum to
    /// `outstanding` exactly.
    pub fn new(
        mut instalments: Vec<Instalment>,
        outstanding: Decimal,
        amount_paid: Decimal,
    ) -> Result<Self, PlanError> {
        if instalments.is_empty() || instalments.len() > MAX_INSTALMENTS {
            return Err(PlanError::Count);
        }
        instalments.sort_by_key(|i| i.date);
        if instalments.windows(2).any(|w| w[0].date == w[1].date) {
            return Err(PlanError::Order);
        }
        let sum: Decimal = instalments.iter().map(|i| i.amount).sum();
        if sum != outstanding {
            return Err(PlanError::Sum { sum, outstanding });
        }
        Ok(Self {
            instalments,
            paid_before: amount_paid,
            defaulted_on: None,
        })
    }

    /// The plan an invoice item holds (`Ok(None)`: none).
    pub fn read(raw: &RawInvoice, currency: Currency) -> Result<Option<Self>, PlanError> {
        let list: Vec<String> = match raw.0.get(INSTALMENTS) {
            None => return Ok(None),
            Some(RawValue::Text(t)) if t.trim().is_empty() => return Ok(None),
            Some(RawValue::Text(t)) => t.split(',').map(str::to_owned).collect(),
            Some(RawValue::List(items)) => items.clone(),
            Some(other) => {
                return Err(PlanError::BadInstalment(other.shown()));
            }
        };
        let mut instalments = list
            .iter()
            .filter(|t| !t.trim().is_empty())
            .map(|t| Instalment::parse(t, currency))
            .collect::<Result<Vec<_>, _>>()?;
        if instalments.is_empty() || instalments.len() > MAX_INSTALMENTS {
            return Err(PlanError::Count);
        }
        instalments.sort_by_key(|i| i.date);
        if instalments.windows(2).any(|w| w[0].date == w[1].date) {
            return Err(PlanError::Order);
        }
        let decimal = |name: &str| -> Result<Decimal, PlanError> {
            match raw.0.get(name) {
                None => Ok(Decimal::ZERO),
                Some(RawValue::Text(t) | RawValue::Number(t)) => crate::invoice::exact_number(t)
                    .and_then(|t| t.parse().ok())
                    .filter(|d: &Decimal| !d.is_sign_negative())
                    .ok_or_else(|| PlanError::BadInstalment(format!("{name}={t}"))),
                Some(other) => Err(PlanError::BadInstalment(other.shown())),
            }
        };
        let defaulted_on = match raw.0.get(PLAN_DEFAULTED_ON) {
            Some(RawValue::Text(t)) => parse_date(t),
            _ => None,
        };
        Ok(Some(Self {
            instalments,
            paid_before: decimal(PLAN_PAID_BEFORE)?,
            defaulted_on,
        }))
    }

    /// The attributes that hold the plan on the invoice.
    pub fn attributes(&self) -> Vec<(String, RawValue)> {
        let list: Vec<String> = self.instalments.iter().map(ToString::to_string).collect();
        vec![
            (INSTALMENTS.into(), RawValue::Text(list.join(","))),
            (
                PLAN_PAID_BEFORE.into(),
                RawValue::Text(self.paid_before.to_string()),
            ),
        ]
    }

    /// Where the plan stands with `amount_paid` paid, on the customer's
    /// `today`, ending after `default_days` (calendar days after an unpaid
    /// instalment's date; `None`: never).
    pub fn state(
        &self,
        amount_paid: Decimal,
        today: NaiveDate,
        default_days: Option<u64>,
    ) -> PlanState {
        let last = self.instalments.last().map_or(today, |i| i.date);
        if let Some(date) = self.defaulted_on {
            return PlanState::Defaulted { date };
        }
        let mut left_over = (amount_paid - self.paid_before).max(Decimal::ZERO);
        for (i, instalment) in self.instalments.iter().enumerate() {
            if left_over >= instalment.amount {
                left_over -= instalment.amount;
                continue;
            }
            let defaulted = default_days
                .and_then(|d| instalment.date.checked_add_days(Days::new(d)))
                .is_some_and(|end| today > end);
            if defaulted {
                return PlanState::Defaulted {
                    date: instalment.date,
                };
            }
            return PlanState::Active {
                number: i + 1,
                of: self.instalments.len(),
                date: instalment.date,
                left: instalment.amount - left_over,
            };
        }
        PlanState::Completed { last }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn plan() -> PaymentPlan {
        let usd = Currency::parse("USD").unwrap();
        let parts = [
            "2026-12-15:400.00",
            "2027-01-15:400.00",
            "2027-02-15:400.00",
        ]
        .iter()
        .map(|t| Instalment::parse(t, usd).unwrap())
        .collect();
        PaymentPlan::new(parts, "1200.00".parse().unwrap(), "50.00".parse().unwrap()).unwrap()
    }

    #[test]
    fn payments_pay_the_instalments_in_date_order() {
        let p = plan();
        let at = |paid: &str, today: &str| p.state(paid.parse().unwrap(), d(today), Some(14));
        assert_eq!(
            at("50.00", "2026-12-01"),
            PlanState::Active {
                number: 1,
                of: 3,
                date: d("2026-12-15"),
                left: "400.00".parse().unwrap()
            }
        );
        // 150 paid toward the plan: 250 left of the first.
        assert!(
            matches!(at("200.00", "2026-12-20"), PlanState::Active { number: 1, left, .. } if left.to_string() == "250.00")
        );
        // The first in full and 100 of the second.
        assert!(
            matches!(at("550.00", "2026-12-20"), PlanState::Active { number: 2, left, .. } if left.to_string() == "300.00")
        );
        assert_eq!(
            at("1250.00", "2027-03-01"),
            PlanState::Completed {
                last: d("2027-02-15")
            }
        );
    }

    #[test]
    fn an_instalment_unpaid_past_the_default_days_ends_the_plan_for_good() {
        let p = plan();
        let paid_first: Decimal = "450.00".parse().unwrap();
        assert!(matches!(
            p.state(paid_first, d("2027-01-29"), Some(14)),
            PlanState::Active { number: 2, .. }
        ));
        assert_eq!(
            p.state(paid_first, d("2027-01-30"), Some(14)),
            PlanState::Defaulted {
                date: d("2027-01-15")
            }
        );
        assert!(matches!(
            p.state(paid_first, d("2027-06-01"), None),
            PlanState::Active { number: 2, .. }
        ));
        // Once the run kept the end, paying the missed instalment does not revive it.
        let ended = PaymentPlan {
            defaulted_on: Some(d("2027-01-15")),
            ..p
        };
        assert_eq!(
            ended.state("850.00".parse().unwrap(), d("2027-02-01"), Some(14)),
            PlanState::Defaulted {
                date: d("2027-01-15")
            }
        );
    }

    #[test]
    fn a_plan_must_be_whole_ordered_and_in_the_currency() {
        let usd = Currency::parse("USD").unwrap();
        let i = |t: &str| Instalment::parse(t, usd).unwrap();
        let outstanding: Decimal = "800.00".parse().unwrap();
        assert_eq!(
            PaymentPlan::new(vec![i("2026-12-15:400.00")], outstanding, Decimal::ZERO),
            Err(PlanError::Sum {
                sum: "400.00".parse().unwrap(),
                outstanding
            })
        );
        assert_eq!(
            PaymentPlan::new(
                vec![i("2026-12-15:400.00"), i("2026-12-15:400.00")],
                outstanding,
                Decimal::ZERO
            ),
            Err(PlanError::Order)
        );
        for bad in [
            "2026-12-15",
            "2026-12-15:4.005",
            "2026-02-30:1.00",
            "2026-12-15:0",
        ] {
            assert!(Instalment::parse(bad, usd).is_err(), "{bad}");
        }
        // Given out of order, kept in date order; read back as written.
        let p = PaymentPlan::new(
            vec![i("2027-01-15:400.00"), i("2026-12-15:400.00")],
            outstanding,
            Decimal::ZERO,
        )
        .unwrap();
        let mut raw = RawInvoice::default();
        for (k, v) in p.attributes() {
            raw.insert(k, v);
        }
        assert_eq!(PaymentPlan::read(&raw, usd), Ok(Some(p)));
    }

    proptest! {
        /// Whatever has been paid, the instalment the ladder runs on is the
        /// first one the payments do not cover, and what is left of it plus
        /// the later ones is exactly what the plan still expects.
        #[test]
        fn what_is_left_adds_up(cents in prop::collection::vec(1i64..100_000, 1..8), paid in 0i64..1_000_000) {
            let usd = Currency::parse("USD").unwrap();
            let instalments: Vec<Instalment> = cents
                .iter()
                .enumerate()
                .map(|(k, c)| Instalment {
                    date: d("2026-12-01") + Days::new(30 * k as u64),
                    amount: Decimal::new(*c, 2),
                })
                .collect();
            let total: Decimal = instalments.iter().map(|i| i.amount).sum();
            let p = PaymentPlan::new(instalments.clone(), total, Decimal::ZERO).unwrap();
            let paid = Decimal::new(paid, 2);
            match p.state(paid, d("2026-11-01"), Some(14)) {
                PlanState::Active { number, left, .. } => {
                    let later: Decimal = instalments[number..].iter().map(|i| i.amount).sum();
                    prop_assert_eq!(left + later, total - paid);
                    prop_assert!(left > Decimal::ZERO && left <= instalments[number - 1].amount);
                }
                PlanState::Completed { .. } => prop_assert!(paid >= total),
                PlanState::Defaulted { .. } => prop_assert!(false, "not before the first date"),
            }
            let _ = usd;
        }
    }
}
