//! The invoice item contract and its validation.
//!
//! Invoices arrive from three places (a DynamoDB item written by a billing
//! system, a CSV row, a JSON line); each source turns its record into a
//! [`RawInvoice`] and [`Invoice::parse`] validates it once, the same way, with
//! a stable reason code for every refusal.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use crate::calendar::parse_date;
use crate::channel::Channel;
use crate::contact::{EmailAddress, PhoneNumber};
use crate::money::{parse_amount, AmountError, Currency, Money};

pub mod instalments;
mod raw;
pub use raw::{exact_number, AmountProblem, InvalidReason, RawInvoice, RawValue, Rejected};

/// The attribute that names the invoice's current ladder (absent: the
/// first): a later due date starts another ([`crate::edit`]).
pub const CYCLE: &str = "ladder_cycle";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvoiceStatus {
    Open,
    Paid,
    Void,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Paid => "paid",
            Self::Void => "void",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Self::Open),
            "paid" => Some(Self::Paid),
            "void" => Some(Self::Void),
            _ => None,
        }
    }
}

/// A validated invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct Invoice {
    pub id: String,
    pub customer_id: String,
    pub customer_name: String,
    pub email: Option<EmailAddress>,
    pub phone: Option<PhoneNumber>,
    /// Copies of each e-mail reminder (`cc_emails`; the customer record's
    /// other addresses when the invoice inherits its contacts).
    pub email_copies: Vec<EmailAddress>,
    /// Copies of each SMS reminder (`cc_phones`).
    pub phone_copies: Vec<PhoneNumber>,
    /// The invoiced amount.
    pub amount: Money,
    pub amount_paid: Decimal,
    /// `amount_paid` as given, in plain decimal form (an import writes it so).
    pub amount_paid_text: Option<String>,
    pub due_date: NaiveDate,
    pub status: InvoiceStatus,
    pub timezone: Option<Tz>,
    pub locale: Option<String>,
    pub pay_url: Option<String>,
    pub issued_at: Option<String>,
    pub paused_until: Option<DateTime<Utc>>,
    pub disputed: bool,
    /// Ledger keys (`step#channel`) already settled, copied onto the item so a
    /// run skips them without a write. The ledger stays the authority.
    pub reminded: BTreeSet<String>,
    /// The channels the customer accepts (`channels`); absent means all.
    pub channels: Option<BTreeSet<Channel>>,
    /// Set by an escalation step: automated reminders stop.
    pub in_collections: bool,
    /// Offset of the latest step claimed (written by the run): steps never go
    /// backwards within the ladder cycle the claim was for ([`Invoice::reached`]).
    pub reminder_offset: Option<i64>,
    /// The cycle `reminder_offset` was claimed in (`reminder_cycle`; absent: the first).
    pub reminder_cycle: Option<String>,
    /// Late fees applied, by step (`late_fee#<step>` attributes).
    pub late_fees: BTreeMap<String, Decimal>,
    /// The ladder's cycle since the due date last changed ([`CYCLE`]).
    pub cycle: Option<String>,
    /// A promise to pay by this date (`promised_by`): no reminders until
    /// then, one message on the next business day if it is not kept.
    pub promised_by: Option<NaiveDate>,
    /// A payment plan ([`crate::invoice::instalments`]).
    pub plan: Option<crate::invoice::instalments::PaymentPlan>,
    /// What the ladder runs on now when the invoice is on a plan (set by
    /// [`Invoice::scheduled`]): the instalment, or the plan's end.
    pub on_plan: Option<PlanView>,
}

/// An invoice's plan as the ladder sees it on one day.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanView {
    /// The instalment (from 1) of how many; `None` once the plan ended.
    pub instalment: Option<(usize, usize)>,
    /// What is due now: what is left of the instalment, or everything.
    pub due: Money,
    /// Everything still outstanding.
    pub balance: Money,
    /// The instalment whose default ended the plan, for the run to keep.
    pub defaulted_on: Option<NaiveDate>,
}

impl Invoice {
    /// What is owed now, late fees included: never negative. On a plan,
    /// what is left of the instalment the ladder runs on.
    pub fn outstanding(&self) -> Money {
        let balance = self.balance();
        match &self.on_plan {
            Some(view) => Money::new(view.due.amount.min(balance.amount), balance.currency),
            None => balance,
        }
    }

    /// Everything still owed, late fees included, plan or not.
    pub fn balance(&self) -> Money {
        let fees: Decimal = self.late_fees.values().copied().sum();
        let left = (self.amount.amount + fees - self.amount_paid).max(Decimal::ZERO);
        Money::new(left, self.amount.currency)
    }

    /// The latest step offset claimed in the current cycle: a claim of
    /// another cycle (an earlier instalment, an old due date) does not hold
    /// this one back.
    pub fn reached(&self) -> Option<i64> {
        self.reminder_offset
            .filter(|_| self.reminder_cycle == self.cycle)
    }

    /// The invoice as the ladder runs on it on the customer's `today`: on a
    /// plan, due on the next unpaid instalment's date for what is left of
    /// it, under that date's cycle; once the plan ended, everything due as
    /// of the missed instalment's date. Without a plan, itself.
    pub fn scheduled(&self, today: NaiveDate, default_days: Option<u64>) -> Self {
        use crate::invoice::instalments::PlanState;
        let Some(plan) = &self.plan else {
            return self.clone();
        };
        let balance = self.balance();
        let (date, view) = match plan.state(self.amount_paid, today, default_days) {
            PlanState::Active {
                number,
                of,
                date,
                left,
            } => (
                date,
                Some(PlanView {
                    instalment: Some((number, of)),
                    due: Money::new(left, balance.currency),
                    balance,
                    defaulted_on: None,
                }),
            ),
            PlanState::Defaulted { date } => (
                date,
                Some(PlanView {
                    instalment: None,
                    due: balance,
                    balance,
                    defaulted_on: plan.defaulted_on.is_none().then_some(date),
                }),
            ),
            PlanState::Completed { last } => (last, None),
        };
        Self {
            due_date: date,
            cycle: Some(date.to_string()),
            on_plan: view,
            ..self.clone()
        }
    }

    /// The name `step`'s ledger records carry for this invoice
    /// ([`crate::ledger::cycle_step`]); a broken promise's message is named
    /// after the promise's date.
    pub fn ledger_step(&self, step: &str) -> String {
        if step == crate::policy::PROMISE_STEP {
            let date = self.promised_by.map(|d| d.to_string());
            return crate::ledger::cycle_step(step, date.as_deref());
        }
        crate::ledger::cycle_step(step, self.cycle.as_deref())
    }

    /// Whether the customer accepts messages on `channel`.
    pub fn accepts(&self, channel: Channel) -> bool {
        self.channels
            .as_ref()
            .is_none_or(|set| set.contains(&channel))
    }

    /// Whether the invoice has an address for `channel`.
    pub fn has_address(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.email.is_some(),
            Channel::Sms => self.phone.is_some(),
        }
    }

    /// Validates a raw record. The first problem found is reported.
    pub fn parse(raw: &RawInvoice) -> Result<Self, Rejected> {
        Self::validate(raw).map_err(|reason| Rejected {
            invoice_id: raw.id_hint().map(str::to_owned),
            reason,
        })
    }

    /// An invoice id the contract admits: 1-128 characters, no `#`, no
    /// control characters.
    pub fn is_valid_id(id: &str) -> bool {
        !id.is_empty()
            && id.chars().count() <= 128
            && !id.contains('#')
            && !id.chars().any(char::is_control)
    }

    fn validate(raw: &RawInvoice) -> Result<Self, InvalidReason> {
        let id = raw.required("invoice_id")?;
        if !Self::is_valid_id(id) {
            return Err(InvalidReason::BadInvoiceId);
        }
        let customer_id = raw.required("customer_id")?;
        if customer_id.chars().any(char::is_control) {
            return Err(InvalidReason::WrongType("customer_id"));
        }
        let customer_name = raw.required("customer_name")?;
        if customer_name.chars().count() > 200 || customer_name.chars().any(char::is_control) {
            return Err(InvalidReason::BadCustomerName);
        }
        let email = raw
            .text("email")?
            .map(|e| EmailAddress::parse(e).ok_or(InvalidReason::BadEmail))
            .transpose()?;
        let phone = raw
            .text("phone")?
            .map(|p| PhoneNumber::parse(p).ok_or(InvalidReason::BadPhone))
            .transpose()?;
        if email.is_none() && phone.is_none() {
            return Err(InvalidReason::NoContact);
        }
        let list = |name: &str| -> Result<Vec<String>, InvalidReason> {
            Ok(match raw.0.get(name) {
                None => Vec::new(),
                Some(RawValue::List(items)) => items.clone(),
                Some(RawValue::Text(t)) => t
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                Some(_) => return Err(InvalidReason::BadCopies),
            })
        };
        let email_copies = list("cc_emails")?
            .iter()
            .map(|a| EmailAddress::parse(a).ok_or(InvalidReason::BadCopies))
            .collect::<Result<Vec<_>, _>>()?;
        let phone_copies = list("cc_phones")?
            .iter()
            .map(|p| PhoneNumber::parse(p).ok_or(InvalidReason::BadCopies))
            .collect::<Result<Vec<_>, _>>()?;
        if email_copies.len() >= crate::contact::MAX_EMAILS
            || phone_copies.len() >= crate::contact::MAX_PHONES
        {
            return Err(InvalidReason::BadCopies);
        }
        let currency =
            Currency::parse(raw.required("currency")?).ok_or(InvalidReason::UnknownCurrency)?;
        let amount = parse_amount(&raw.required_amount("amount")?, currency).map_err(|e| {
            InvalidReason::BadAmount(match e {
                AmountError::NotDecimal => AmountProblem::NotDecimal,
                AmountError::Negative => AmountProblem::NotPositive,
                AmountError::TooPrecise => AmountProblem::TooPrecise,
                AmountError::TooLarge => AmountProblem::TooLarge,
            })
        })?;
        if amount.is_zero() {
            return Err(InvalidReason::BadAmount(AmountProblem::NotPositive));
        }
        let amount_paid_text = raw.amount("amount_paid")?;
        let amount_paid = amount_paid_text
            .as_deref()
            .map(|t| parse_amount(t, currency).map_err(|_| InvalidReason::BadAmountPaid))
            .transpose()?
            .unwrap_or(Decimal::ZERO);
        let due_date = parse_date(raw.required("due_date")?).ok_or(InvalidReason::BadDueDate)?;
        let status =
            InvoiceStatus::parse(raw.required("status")?).ok_or(InvalidReason::BadStatus)?;
        let timezone = raw
            .text("timezone")?
            .map(|t| t.parse::<Tz>().map_err(|_| InvalidReason::BadTimezone))
            .transpose()?;
        let locale = raw.text("locale")?;
        if let Some(l) = locale {
            let ok = l.len() <= 35
                && l.split('-')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()));
            if !ok {
                return Err(InvalidReason::BadLocale);
            }
        }
        let pay_url = raw.text("pay_url")?;
        if let Some(url) = pay_url {
            let ok = url.len() > "https://".len()
                && url.starts_with("https://")
                && !url.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                return Err(InvalidReason::BadPayUrl);
            }
        }
        let paused_until = raw
            .text("reminders_paused_until")?
            .map(|t| parse_pause(t, timezone).ok_or(InvalidReason::BadPausedUntil))
            .transpose()?;
        let disputed = match raw.0.get("disputed") {
            None | Some(RawValue::Bool(false)) => false,
            Some(RawValue::Bool(true)) => true,
            Some(RawValue::Text(t)) => match t.as_str() {
                "" | "false" => false,
                "true" => true,
                _ => return Err(InvalidReason::BadDisputed),
            },
            Some(_) => return Err(InvalidReason::BadDisputed),
        };
        let reminded = match raw.0.get("reminded") {
            Some(RawValue::List(keys)) => keys.iter().cloned().collect(),
            _ => BTreeSet::new(),
        };
        let channels = match raw.0.get("channels") {
            None => None,
            Some(RawValue::List(names)) => Some(parse_channels(names.iter().map(String::as_str))?),
            Some(RawValue::Text(t)) if t.trim().is_empty() => None,
            Some(RawValue::Text(t)) => Some(parse_channels(
                t.split([',', ' ']).filter(|s| !s.is_empty()),
            )?),
            Some(_) => return Err(InvalidReason::BadChannels),
        };
        let in_collections = matches!(raw.0.get("in_collections"), Some(RawValue::Bool(true)))
            || matches!(raw.0.get("in_collections"), Some(RawValue::Text(t)) if t == "true");
        let reminder_offset = match raw.0.get("reminder_offset") {
            Some(RawValue::Number(n) | RawValue::Text(n)) => n.parse::<i64>().ok(),
            _ => None,
        };
        let mut late_fees = BTreeMap::new();
        for (name, value) in &raw.0 {
            if let Some(step) = name.strip_prefix("late_fee#") {
                let text = match value {
                    RawValue::Text(t) => Some(t.clone()),
                    RawValue::Number(n) => raw::exact_number(n),
                    _ => None,
                };
                let fee = text
                    .and_then(|t| parse_amount(&t, currency).ok())
                    .ok_or(InvalidReason::BadLateFee)?;
                late_fees.insert(step.to_owned(), fee);
            }
        }
        Ok(Self {
            id: id.to_owned(),
            customer_id: customer_id.to_owned(),
            customer_name: customer_name.to_owned(),
            email,
            phone,
            email_copies,
            phone_copies,
            amount: Money::new(amount, currency),
            amount_paid,
            amount_paid_text,
            due_date,
            status,
            timezone,
            locale: locale.map(str::to_owned),
            pay_url: pay_url.map(str::to_owned),
            issued_at: raw.text("issued_at")?.map(str::to_owned),
            paused_until,
            disputed,
            reminded,
            channels,
            in_collections,
            reminder_offset,
            late_fees,
            cycle: raw.text("ladder_cycle")?.map(str::to_owned),
            reminder_cycle: match raw.0.get("reminder_cycle") {
                Some(RawValue::Text(t)) if !t.is_empty() => Some(t.clone()),
                _ => None,
            },
            promised_by: raw
                .text("promised_by")?
                .map(|t| parse_date(t).ok_or(InvalidReason::BadPromisedBy))
                .transpose()?,
            plan: crate::invoice::instalments::PaymentPlan::read(raw, currency)
                .map_err(|_| InvalidReason::BadPlan)?,
            on_plan: None,
        })
    }
}

fn parse_channels<'a>(
    names: impl Iterator<Item = &'a str>,
) -> Result<BTreeSet<Channel>, InvalidReason> {
    names
        .map(|n| Channel::parse(n.trim()).ok_or(InvalidReason::BadChannels))
        .collect()
}

/// A pause given as a date lasts to the end of that day in the invoice's zone
/// (UTC when it has none); an RFC 3339 instant is taken as is.
fn parse_pause(text: &str, tz: Option<Tz>) -> Option<DateTime<Utc>> {
    if let Some(date) = parse_date(text) {
        let next = date.succ_opt()?.and_time(NaiveTime::MIN);
        let tz = tz.unwrap_or(Tz::UTC);
        return next
            .and_local_timezone(tz)
            .earliest()
            .map(|t| t.with_timezone(&Utc));
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests;
