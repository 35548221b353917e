//! The invoice item contract and its validation.
//!
//! Invoices arrive from three places (a DynamoDB item written by a billing
//! system, a CSV row, a JSON line); each source turns its record into a
//! [`RawInvoice`] and [`Invoice::parse`] validates it once, the same way, with
//! a stable reason code for every refusal.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use crate::calendar::parse_date;
use crate::channel::Channel;
use crate::contact::{EmailAddress, PhoneNumber};
use crate::money::{parse_amount, AmountError, Currency, Money};

/// One attribute as a source delivered it, before validation.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Text(String),
    /// An exact decimal as text (a DynamoDB `N` or a JSON number).
    Number(String),
    Bool(bool),
    List(Vec<String>),
    /// Any other type, named for the error message (`map`, `binary`, ...).
    Other(&'static str),
}

/// An invoice record as delivered: attribute name to value. Unknown attributes are kept and ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawInvoice(pub BTreeMap<String, RawValue>);

impl RawInvoice {
    pub fn insert(&mut self, name: impl Into<String>, value: RawValue) {
        self.0.insert(name.into(), value);
    }

    /// The invoice id when it is present as text: used to name bad items in reports.
    pub fn id_hint(&self) -> Option<&str> {
        match self.0.get("invoice_id") {
            Some(RawValue::Text(id)) if !id.is_empty() => Some(id),
            _ => None,
        }
    }

    /// Text of an attribute; empty text counts as absent (CSV has no null).
    pub(crate) fn text(&self, name: &'static str) -> Result<Option<&str>, InvalidReason> {
        match self.0.get(name) {
            None => Ok(None),
            Some(RawValue::Text(s)) if s.is_empty() => Ok(None),
            Some(RawValue::Text(s)) => Ok(Some(s)),
            Some(_) => Err(InvalidReason::WrongType(name)),
        }
    }

    pub(crate) fn required(&self, name: &'static str) -> Result<&str, InvalidReason> {
        self.text(name)?.ok_or(InvalidReason::Missing(name))
    }
}

/// Why an invoice item cannot be used. `code()` is stable: it keys run summaries and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InvalidReason {
    Missing(&'static str),
    WrongType(&'static str),
    BadInvoiceId,
    BadCustomerName,
    NoContact,
    BadEmail,
    BadPhone,
    BadAmount(AmountProblem),
    BadAmountPaid,
    UnknownCurrency,
    BadDueDate,
    BadStatus,
    BadTimezone,
    BadLocale,
    BadPayUrl,
    BadPausedUntil,
    BadDisputed,
    BadChannels,
    BadLateFee,
}

/// The ways an amount can be wrong, kept apart because users fix them differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AmountProblem {
    NotDecimal,
    NotPositive,
    TooPrecise,
    TooLarge,
}

impl InvalidReason {
    pub fn code(&self) -> String {
        match self {
            Self::Missing(field) => format!("missing_{field}"),
            Self::WrongType(field) => format!("wrong_type_{field}"),
            Self::BadAmount(AmountProblem::NotDecimal) => "bad_amount".into(),
            Self::BadAmount(AmountProblem::NotPositive) => "bad_amount_not_positive".into(),
            Self::BadAmount(AmountProblem::TooPrecise) => "bad_amount_too_precise".into(),
            Self::BadAmount(AmountProblem::TooLarge) => "bad_amount_too_large".into(),
            Self::BadInvoiceId => "bad_invoice_id".into(),
            Self::BadCustomerName => "bad_customer_name".into(),
            Self::NoContact => "no_contact".into(),
            Self::BadEmail => "bad_email".into(),
            Self::BadPhone => "bad_phone".into(),
            Self::BadAmountPaid => "bad_amount_paid".into(),
            Self::UnknownCurrency => "unknown_currency".into(),
            Self::BadDueDate => "bad_due_date".into(),
            Self::BadStatus => "bad_status".into(),
            Self::BadTimezone => "bad_timezone".into(),
            Self::BadLocale => "bad_locale".into(),
            Self::BadPayUrl => "bad_pay_url".into(),
            Self::BadPausedUntil => "bad_paused_until".into(),
            Self::BadDisputed => "bad_disputed".into(),
            Self::BadChannels => "bad_channels".into(),
            Self::BadLateFee => "bad_late_fee".into(),
        }
    }
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::Missing(field) => return write!(f, "`{field}` is missing"),
            Self::WrongType(field) => {
                return write!(f, "`{field}` has the wrong type (expected text)")
            }
            Self::BadInvoiceId => {
                "`invoice_id` must be 1-128 characters without control characters or `#`"
            }
            Self::BadCustomerName => {
                "`customer_name` must be 1-200 characters without control characters"
            }
            Self::NoContact => "neither `email` nor `phone` is given",
            Self::BadEmail => "`email` is not a valid address",
            Self::BadPhone => "`phone` is not in E.164 form (e.g. +15555550100)",
            Self::BadAmount(AmountProblem::NotDecimal) => {
                "`amount` is not a decimal string like \"120.50\""
            }
            Self::BadAmount(AmountProblem::NotPositive) => "`amount` must be greater than zero",
            Self::BadAmount(AmountProblem::TooPrecise) => {
                "`amount` has more decimals than the currency allows"
            }
            Self::BadAmount(AmountProblem::TooLarge) => "`amount` is larger than 1,000,000,000,000",
            Self::BadAmountPaid => {
                "`amount_paid` must be a decimal string from 0 up to the amount's precision"
            }
            Self::UnknownCurrency => {
                "`currency` is not an ISO 4217 code with minor units (e.g. USD)"
            }
            Self::BadDueDate => "`due_date` is not a calendar date in YYYY-MM-DD form",
            Self::BadStatus => "`status` must be open, paid or void",
            Self::BadTimezone => "`timezone` is not an IANA time zone (e.g. Europe/London)",
            Self::BadLocale => "`locale` is not a language tag (e.g. en, zh-Hans)",
            Self::BadPayUrl => "`pay_url` must be an https URL without spaces",
            Self::BadPausedUntil => {
                "`reminders_paused_until` must be YYYY-MM-DD or an RFC 3339 instant"
            }
            Self::BadDisputed => "`disputed` must be true or false",
            Self::BadChannels => {
                "`channels` must list email and/or sms (the channels the customer accepts)"
            }
            Self::BadLateFee => {
                "a `late_fee#<step>` attribute is not an amount in the invoice currency"
            }
        };
        f.write_str(text)
    }
}

/// A refused item: its id when one could be read, and the first reason found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invoice {}: {reason}", invoice_id.as_deref().unwrap_or("<no id>"))]
pub struct Rejected {
    pub invoice_id: Option<String>,
    pub reason: InvalidReason,
}

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
    /// The invoiced amount.
    pub amount: Money,
    pub amount_paid: Decimal,
    /// `amount_paid` exactly as stored: a claim re-checks that it has not changed.
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
    /// Offset of the latest step claimed (written by the run): steps never go backwards.
    pub reminder_offset: Option<i64>,
    /// Late fees applied, by step (`late_fee#<step>` attributes).
    pub late_fees: BTreeMap<String, Decimal>,
}

impl Invoice {
    /// What is still owed, late fees included: never negative.
    pub fn outstanding(&self) -> Money {
        let fees: Decimal = self.late_fees.values().copied().sum();
        let left = (self.amount.amount + fees - self.amount_paid).max(Decimal::ZERO);
        Money::new(left, self.amount.currency)
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

    fn validate(raw: &RawInvoice) -> Result<Self, InvalidReason> {
        let id = raw.required("invoice_id")?;
        if id.chars().count() > 128 || id.contains('#') || id.chars().any(char::is_control) {
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
        let currency =
            Currency::parse(raw.required("currency")?).ok_or(InvalidReason::UnknownCurrency)?;
        let amount = parse_amount(raw.required("amount")?, currency).map_err(|e| {
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
        let amount_paid_text = raw.text("amount_paid")?;
        let amount_paid = amount_paid_text
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
                let fee = match value {
                    RawValue::Text(t) => {
                        parse_amount(t, currency).map_err(|_| InvalidReason::BadLateFee)?
                    }
                    _ => return Err(InvalidReason::BadLateFee),
                };
                late_fees.insert(step.to_owned(), fee);
            }
        }
        Ok(Self {
            id: id.to_owned(),
            customer_id: customer_id.to_owned(),
            customer_name: customer_name.to_owned(),
            email,
            phone,
            amount: Money::new(amount, currency),
            amount_paid,
            amount_paid_text: amount_paid_text.map(str::to_owned),
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
mod tests {
    use super::*;
    use crate::payment::PayableInvoice;
    use proptest::prelude::*;

    pub(crate) fn sample() -> RawInvoice {
        let mut raw = RawInvoice::default();
        for (k, v) in [
            ("invoice_id", "INV-1"),
            ("customer_id", "C-1"),
            ("customer_name", "Ana Lima"),
            ("email", "ana@example.com"),
            ("phone", "+15555550100"),
            ("amount", "120.00"),
            ("currency", "USD"),
            ("due_date", "2026-11-20"),
            ("status", "open"),
        ] {
            raw.insert(k, RawValue::Text(v.into()));
        }
        raw
    }

    fn with(mut raw: RawInvoice, k: &str, v: RawValue) -> RawInvoice {
        raw.insert(k, v);
        raw
    }

    fn reason(raw: RawInvoice) -> InvalidReason {
        Invoice::parse(&raw).expect_err("should be refused").reason
    }

    #[test]
    fn a_complete_item_validates() {
        let inv = Invoice::parse(&sample()).expect("valid");
        assert_eq!(inv.id, "INV-1");
        assert_eq!(inv.outstanding().to_string(), "USD 120.00");
        assert_eq!(inv.status, InvoiceStatus::Open);
    }

    #[test]
    fn partial_payment_reduces_outstanding_but_never_below_zero() {
        let inv = Invoice::parse(&with(
            sample(),
            "amount_paid",
            RawValue::Text("20.5".into()),
        ))
        .unwrap();
        assert_eq!(inv.outstanding().to_string(), "USD 99.50");
        let over =
            Invoice::parse(&with(sample(), "amount_paid", RawValue::Text("500".into()))).unwrap();
        assert_eq!(over.outstanding().amount, Decimal::ZERO);
    }

    #[test]
    fn each_kind_of_bad_item_has_its_own_reason() {
        let t = |s: &str| RawValue::Text(s.into());
        let mut no_contact = sample();
        no_contact.0.remove("email");
        no_contact.0.remove("phone");
        let cases = [
            (no_contact, "no_contact"),
            (with(sample(), "amount", t("12,50")), "bad_amount"),
            (with(sample(), "amount", t("0")), "bad_amount_not_positive"),
            (with(sample(), "amount", t("-5")), "bad_amount_not_positive"),
            (
                with(sample(), "amount", RawValue::Number("12".into())),
                "wrong_type_amount",
            ),
            (with(sample(), "due_date", t("2026-02-30")), "bad_due_date"),
            (with(sample(), "due_date", t("20/11/2026")), "bad_due_date"),
            (with(sample(), "currency", t("XYZ")), "unknown_currency"),
            (with(sample(), "email", t("not-an-email")), "bad_email"),
            (with(sample(), "phone", t("call me")), "bad_phone"),
            (with(sample(), "status", t("pending")), "bad_status"),
            (with(sample(), "timezone", t("Mars/Base")), "bad_timezone"),
            (
                with(sample(), "customer_name", t("Eve\r\nBcc: x@y.z")),
                "bad_customer_name",
            ),
            (
                with(sample(), "customer_name", t("")),
                "missing_customer_name",
            ),
            (
                with(sample(), "pay_url", t("http://pay.example.com")),
                "bad_pay_url",
            ),
            (with(sample(), "amount_paid", t("x")), "bad_amount_paid"),
            (with(sample(), "disputed", t("maybe")), "bad_disputed"),
            (with(sample(), "locale", t("en US")), "bad_locale"),
            (
                with(sample(), "reminders_paused_until", t("soon")),
                "bad_paused_until",
            ),
            (with(sample(), "invoice_id", t("A#B")), "bad_invoice_id"),
            (
                with(sample(), "customer_id", RawValue::Other("map")),
                "wrong_type_customer_id",
            ),
        ];
        for (raw, code) in cases {
            assert_eq!(reason(raw).code(), code);
        }
    }

    #[test]
    fn a_refused_item_keeps_its_id_for_the_report() {
        let err =
            Invoice::parse(&with(sample(), "amount", RawValue::Text("abc".into()))).unwrap_err();
        assert_eq!(err.invoice_id.as_deref(), Some("INV-1"));
        assert!(err.to_string().contains("INV-1"));
    }

    #[test]
    fn a_pause_date_lasts_through_that_local_day() {
        let raw = with(
            with(
                sample(),
                "reminders_paused_until",
                RawValue::Text("2026-11-30".into()),
            ),
            "timezone",
            RawValue::Text("America/New_York".into()),
        );
        let until = Invoice::parse(&raw).unwrap().paused_until.unwrap();
        assert_eq!(until.to_rfc3339(), "2026-12-01T05:00:00+00:00");
    }

    #[test]
    fn channels_list_what_the_customer_accepts() {
        let inv =
            Invoice::parse(&with(sample(), "channels", RawValue::Text("email".into()))).unwrap();
        assert!(inv.accepts(Channel::Email) && !inv.accepts(Channel::Sms));
        let all = Invoice::parse(&sample()).unwrap();
        assert!(all.accepts(Channel::Email) && all.accepts(Channel::Sms));
        let list = RawValue::List(vec!["sms".into()]);
        assert!(!Invoice::parse(&with(sample(), "channels", list))
            .unwrap()
            .accepts(Channel::Email));
        let bad = with(sample(), "channels", RawValue::Text("fax".into()));
        assert_eq!(
            Invoice::parse(&bad).unwrap_err().reason,
            InvalidReason::BadChannels
        );
    }

    #[test]
    fn late_fees_add_to_what_is_owed() {
        let raw = with(
            with(
                sample(),
                "late_fee#overdue_7",
                RawValue::Text("12.50".into()),
            ),
            "amount_paid",
            RawValue::Text("20".into()),
        );
        assert_eq!(
            Invoice::parse(&raw).unwrap().outstanding().to_string(),
            "USD 112.50"
        );
        let bad = with(sample(), "late_fee#x", RawValue::Text("1.001".into()));
        assert_eq!(
            Invoice::parse(&bad).unwrap_err().reason,
            InvalidReason::BadLateFee
        );
    }

    #[test]
    fn a_payment_target_needs_only_the_money_fields() {
        let mut raw = sample();
        raw.0.remove("email");
        raw.insert("phone", RawValue::Text("call me".into()));
        raw.insert("amount_paid", RawValue::Text("5000000000000".into()));
        assert!(Invoice::parse(&raw).is_err(), "not usable for reminders");
        let payable = PayableInvoice::parse(&raw).expect("still takes payments");
        assert_eq!(payable.amount_paid, Decimal::from(5_000_000_000_000_i64));
        assert_eq!(payable.email, None);
        raw.insert("currency", RawValue::Text("???".into()));
        assert_eq!(
            PayableInvoice::parse(&raw).unwrap_err(),
            InvalidReason::UnknownCurrency
        );
    }

    #[test]
    fn disputed_accepts_bool_or_text() {
        assert!(
            Invoice::parse(&with(sample(), "disputed", RawValue::Bool(true)))
                .unwrap()
                .disputed
        );
        assert!(
            Invoice::parse(&with(sample(), "disputed", RawValue::Text("true".into())))
                .unwrap()
                .disputed
        );
        assert!(!Invoice::parse(&sample()).unwrap().disputed);
    }

    proptest! {
        #[test]
        fn validation_never_panics_on_arbitrary_text(field in prop::sample::select(vec![
            "invoice_id", "customer_id", "customer_name", "email", "phone", "amount",
            "amount_paid", "currency", "due_date", "status", "timezone", "locale",
            "pay_url", "reminders_paused_until", "disputed",
        ]), value in "\\PC{0,64}") {
            let raw = with(sample(), field, RawValue::Text(value));
            if let Ok(inv) = Invoice::parse(&raw) {
                prop_assert!(inv.outstanding().amount >= Decimal::ZERO);
                prop_assert!(!inv.customer_name.contains('\n'));
            }
        }
    }
}
