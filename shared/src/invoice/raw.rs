//! An invoice record as a source delivered it ([`RawInvoice`]), and why one
//! was refused ([`InvalidReason`], with a stable code for every refusal).

use std::collections::BTreeMap;
use std::fmt;

/// One attribute as a source delivered it, before validation.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Text(String),
    /// An exact decimal as text: a DynamoDB `N`. (A JSON number is
    /// `Other("JSON number")`: a float may have rounded it.)
    Number(String),
    Bool(bool),
    List(Vec<String>),
    /// Any other type, named for the error message (`map`, `binary`, ...).
    Other(&'static str),
}

impl RawValue {
    /// The value as text, for comparing and showing (a list comma-separated).
    pub fn shown(&self) -> String {
        match self {
            Self::Text(t) | Self::Number(t) => t.clone(),
            Self::Bool(b) => b.to_string(),
            Self::List(items) => items.join(","),
            Self::Other(kind) => format!("<{kind}>"),
        }
    }
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

    /// The customer id when it is present as text.
    pub fn customer_hint(&self) -> Option<&str> {
        match self.0.get("customer_id") {
            Some(RawValue::Text(id)) if !id.is_empty() => Some(id),
            _ => None,
        }
    }

    /// Whether the record leaves out something a customer record can give
    /// it: its time zone, its e-mail address or its phone.
    pub fn inherits_settings(&self) -> bool {
        ["timezone", "email", "phone"].iter().any(|n| self.lacks(n))
    }

    /// Whether the record gives no text for `name` (absent, blank, or not text).
    pub fn lacks(&self, name: &str) -> bool {
        !matches!(self.0.get(name), Some(RawValue::Text(t)) if !t.trim().is_empty())
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

    /// An amount: text, or a DynamoDB Number (`N`), which is an exact
    /// decimal (boto3 writes `Decimal`s so), in plain or exponent form.
    /// The caller checks it with the same precision rules either way.
    pub(crate) fn amount(&self, name: &'static str) -> Result<Option<String>, InvalidReason> {
        match self.0.get(name) {
            Some(RawValue::Number(n)) => exact_number(n)
                .map(Some)
                .ok_or(InvalidReason::WrongType(name)),
            _ => Ok(self.text(name)?.map(str::to_owned)),
        }
    }

    pub(crate) fn required_amount(&self, name: &'static str) -> Result<String, InvalidReason> {
        self.amount(name)?.ok_or(InvalidReason::Missing(name))
    }
}

/// A DynamoDB Number as a plain decimal string (`1.2E+2` is `120`); `None`
/// when it is not a number or needs more than 28 significant digits.
pub fn exact_number(text: &str) -> Option<String> {
    use std::str::FromStr;
    let value = if text.contains(['e', 'E']) {
        rust_decimal::Decimal::from_scientific(text).ok()?
    } else {
        rust_decimal::Decimal::from_str(text).ok()?
    };
    Some(value.to_string())
}

/// The attributes that hold money.
const AMOUNT_FIELDS: &[&str] = &["amount", "amount_paid"];

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
    BadPromisedBy,
    BadPlan,
    BadCopies,
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
            Self::BadPromisedBy => "bad_promised_by".into(),
            Self::BadPlan => "bad_plan".into(),
            Self::BadCopies => "bad_copies".into(),
        }
    }
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::Missing(field) => return write!(f, "`{field}` is missing"),
            Self::WrongType(field) if AMOUNT_FIELDS.contains(field) => {
                return write!(
                    f,
                    "`{field}` has the wrong type (expected a decimal string like \"120.50\", \
                     or a DynamoDB number; a JSON number is refused, as a float may have rounded it)"
                )
            }
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
            Self::BadPhone => {
                "`phone` is not in E.164 form (`+`, the country code and the number, digits only)"
            }
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
            Self::BadPromisedBy => "`promised_by` is not a calendar date in YYYY-MM-DD form",
            Self::BadCopies => {
                "`cc_emails` / `cc_phones` must list at most 4 valid addresses and 1 E.164 number"
            }
            Self::BadPlan => {
                "`instalments` must be DATE:AMOUNT pairs (e.g. 2026-12-15:400.00), comma-separated, in the invoice currency, one per date"
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
