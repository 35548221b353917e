//! Payments, in the domain: a payment to apply ([`Payment`]), what applying
//! it needs of an invoice ([`PayableInvoice`]), and the settlement
//! arithmetic (the total owed with late fees, fully paid, overpaid). The
//! store adapters only write what [`PayableInvoice::settle`] decides
//! ([`crate::ports::Payments`]).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::contact::EmailAddress;
use crate::failure::StoreError;
use crate::invoice::{AmountProblem, InvalidReason, InvoiceStatus, RawInvoice, RawValue};
use crate::ledger::PAYMENT_PREFIX;
use crate::money::{parse_amount, Currency, Money};

mod plan;
pub use plan::{plan, Plan, RecordGuard, Tally};

/// Which way money moves: to the business (a payment) or back to the
/// customer (a refund, a dispute lost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    In,
    Back,
}

/// How an event's amount counts toward an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    /// Once per key: the record `payment#<key>` (money in) or `refund#<key>`
    /// (money back), written only if new.
    Once,
    /// The provider's running total for a group: a Stripe invoice's
    /// cumulative `amount_paid`, a charge's cumulative `amount_refunded`.
    Total(String),
    /// One part of a group, once per key: one payment of a Stripe invoice,
    /// one refund of a charge.
    Part(String),
}

/// What an event does to a dispute on the invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeChange {
    /// Opened: the invoice is marked disputed (reminders stop).
    Opened,
    /// Closed: the mark is lifted; lost comes with its money back.
    Closed,
}

/// A movement of money (or a dispute's change) to apply to an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The provider's event id.
    pub event_id: String,
    /// What makes this movement unique: it is applied once per key (within
    /// its group, for [`Basis::Part`]). For Stripe the PaymentIntent id, so
    /// every event about the same money has the same key; otherwise the event id.
    pub payment_key: String,
    /// Our invoice; empty when the event names none and the invoice is to be
    /// found by `refs` ([`crate::ports::PaymentStore::find_invoice`]).
    pub invoice_id: String,
    /// Never negative: `flow` says which way it moves.
    pub amount: Decimal,
    pub currency: Currency,
    pub paid_at: DateTime<Utc>,
    /// `stripe`, `generic` or `offline`.
    pub provider: &'static str,
    pub event_type: String,
    pub flow: Flow,
    pub basis: Basis,
    /// The provider's ids of the objects behind this money (PaymentIntent,
    /// charge, Stripe invoice), remembered for the invoice so that a later
    /// refund or dispute, which names only them, finds it.
    pub refs: Vec<String>,
    pub dispute: Option<DisputeChange>,
    /// `invoice_id` was found by `refs`, not named by the event.
    pub found: bool,
}

impl Payment {
    /// A payment in, applied once per key, naming its invoice.
    #[allow(clippy::too_many_arguments)]
    pub fn once(
        event_id: impl Into<String>,
        payment_key: impl Into<String>,
        invoice_id: impl Into<String>,
        amount: Decimal,
        currency: Currency,
        paid_at: DateTime<Utc>,
        provider: &'static str,
        event_type: impl Into<String>,
    ) -> Self {
        Self {
            event_id: event_id.into(),
            payment_key: payment_key.into(),
            invoice_id: invoice_id.into(),
            amount,
            currency,
            paid_at,
            provider,
            event_type: event_type.into(),
            flow: Flow::In,
            basis: Basis::Once,
            refs: Vec::new(),
            dispute: None,
            found: false,
        }
    }

    /// What the payment says, hashed: the invoice, the amount, the currency
    /// and the payment key (and, for anything but a payment in applied once,
    /// its flow, basis and dispute change). The same event id delivered again
    /// with the same fingerprint is a duplicate; with another, a conflict,
    /// never applied. (A redelivered Stripe event's body differs in fields
    /// such as `pending_webhooks`, so the raw body is not what is compared.)
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let extra = match (&self.flow, &self.basis, self.dispute) {
            (Flow::In, Basis::Once, None) => String::new(),
            (flow, basis, dispute) => format!("{flow:?}{basis:?}{dispute:?}"),
        };
        // The invoice as the event named it: one found by its references is
        // not part of what the event said.
        let named = if self.found {
            ""
        } else {
            self.invoice_id.as_str()
        };
        for part in [
            named,
            &self.amount.normalize().to_string(),
            self.currency.code(),
            &self.payment_key,
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        if !extra.is_empty() {
            h.update(extra.as_bytes());
            h.update([0]);
        }
        hex::encode(&h.finalize()[..16])
    }

    /// The item that claims the event id across the whole table (partition
    /// `event#<provider>#<event id>`), so that an id sent again, even for
    /// another invoice, is recognised.
    pub fn event_partition(&self) -> String {
        format!("event#{}#{}", self.provider, self.event_id)
    }

    /// The records under the invoice that applying this movement reads
    /// besides the invoice (strongly consistent), in the order
    /// [`plan`] takes them: a group's tally and, for a part, the once-only
    /// record of its key (the same money reported on its own); for an opened
    /// dispute, its closing (a closing that came first).
    pub fn reads(&self) -> Vec<String> {
        match (&self.basis, self.dispute) {
            (Basis::Total(_), _) => vec![self.record_sk()],
            (Basis::Part(_), _) => vec![self.record_sk(), self.once_sk()],
            (Basis::Once, Some(DisputeChange::Opened)) => vec![Self {
                dispute: Some(DisputeChange::Closed),
                ..self.clone()
            }
            .record_sk()],
            (Basis::Once, _) => Vec::new(),
        }
    }

    /// The attributes of the once-only record a part writes for its key (the
    /// store adds its keys and `recorded_at`): the money, and the group's
    /// record that counts it (`counted_in`).
    pub fn marker_record(&self, counted_in: &str) -> Vec<(&'static str, RawValue)> {
        let mut attrs = self.described(self.amount);
        attrs.push(("counted_in", RawValue::Text(counted_in.to_owned())));
        attrs
    }

    /// What every record of this movement says of it: the event (id,
    /// provider, type), `amount` in its currency, and when it was paid.
    pub fn described(&self, amount: Decimal) -> Vec<(&'static str, RawValue)> {
        let text = |v: &str| RawValue::Text(v.to_owned());
        vec![
            ("event_id", text(&self.event_id)),
            ("provider", text(self.provider)),
            ("event_type", text(&self.event_type)),
            ("amount", text(&amount.to_string())),
            ("currency", text(self.currency.code())),
            (
                "paid_at",
                text(
                    &self
                        .paid_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                ),
            ),
        ]
    }

    /// The once-only record of this movement's key (`payment#<key>` or
    /// `refund#<key>`), whatever its basis.
    pub fn once_sk(&self) -> String {
        match self.flow {
            Flow::In => format!("{PAYMENT_PREFIX}{}", self.payment_key),
            Flow::Back => format!("{REFUND_PREFIX}{}", self.payment_key),
        }
    }

    /// The sort key of the record this movement writes under its invoice.
    pub fn record_sk(&self) -> String {
        match (&self.basis, self.flow, self.dispute) {
            (Basis::Total(group) | Basis::Part(group), _, _) => {
                let flow = if self.flow == Flow::In { "in" } else { "back" };
                format!("{TALLY_PREFIX}{flow}#{group}")
            }
            (Basis::Once, _, Some(change)) => {
                let phase = match change {
                    DisputeChange::Opened => "opened",
                    DisputeChange::Closed => "closed",
                };
                format!("{DISPUTE_PREFIX}{}#{phase}", self.payment_key)
            }
            (Basis::Once, _, None) => self.once_sk(),
        }
    }
}

/// The partition that remembers which invoice a provider's object is for.
pub fn ref_partition(provider: &str, id: &str) -> String {
    format!("ref#{provider}#{id}")
}

/// The sort key of an event's claim.
pub const EVENT_SK: &str = "event";
/// The sort key of a provider reference (`ref#<provider>#<id>`).
pub const REF_SK: &str = "ref";
/// Sort-key prefix of a running total's record (`tally#in#<group>`).
pub const TALLY_PREFIX: &str = "tally#";
/// Sort-key prefix of a refund's record.
pub const REFUND_PREFIX: &str = "refund#";
/// Sort-key prefix of a dispute change's record.
pub const DISPUTE_PREFIX: &str = "dispute#";

/// Why money was kept aside (an *unapplied payment*) instead of applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnappliedReason {
    /// The event names an invoice we do not have.
    UnknownInvoice,
    Void,
    CurrencyMismatch,
    /// The invoice item fails validation (fix it, then apply).
    InvalidInvoice,
    /// Applied, and more than was owed: the excess, to move or refund.
    Overpaid,
    /// Money back (a refund, a dispute lost) for a payment we have no record of.
    UnknownPayment,
}

impl UnappliedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownInvoice => "unknown_invoice",
            Self::Void => "invoice_void",
            Self::CurrencyMismatch => "currency_mismatch",
            Self::InvalidInvoice => "invoice_invalid",
            Self::Overpaid => "overpaid",
            Self::UnknownPayment => "unknown_payment",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::UnknownInvoice,
            Self::Void,
            Self::CurrencyMismatch,
            Self::InvalidInvoice,
            Self::Overpaid,
            Self::UnknownPayment,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }

    /// The payment errors whose money is kept aside rather than refused.
    pub fn of(error: &PaymentError) -> Option<Self> {
        match error {
            PaymentError::UnknownInvoice => Some(Self::UnknownInvoice),
            PaymentError::Void => Some(Self::Void),
            PaymentError::CurrencyMismatch => Some(Self::CurrencyMismatch),
            PaymentError::InvalidInvoice => Some(Self::InvalidInvoice),
            _ => None,
        }
    }
}

/// The partition of unapplied payments (sort key: [`Payment::unapplied_id`]).
pub const UNAPPLIED_PARTITION: &str = "unapplied";

/// A provider's name as the code spells it (`stripe`, `generic`, `offline`).
pub fn provider_name(text: &str) -> Option<&'static str> {
    ["stripe", "generic", "offline"]
        .into_iter()
        .find(|p| *p == text)
}

impl Payment {
    /// The id of the unapplied payment this event would keep: `<provider>:<event id>`.
    pub fn unapplied_id(&self) -> String {
        format!("{}:{}", self.provider, self.event_id)
    }

    /// The attributes of the record that keeps `amount` of this payment aside
    /// (the store adds its keys and `received_at`): enough to apply it later
    /// as it came.
    pub fn unapplied_record(
        &self,
        reason: UnappliedReason,
        amount: Decimal,
    ) -> Vec<(&'static str, RawValue)> {
        let text = |v: &str| RawValue::Text(v.to_owned());
        let (basis, group) = match &self.basis {
            Basis::Once => ("once", ""),
            Basis::Total(g) => ("total", g.as_str()),
            Basis::Part(g) => ("part", g.as_str()),
        };
        let mut attrs = self.described(amount);
        attrs.extend([
            ("reason", text(reason.as_str())),
            ("state", text("open")),
            ("payment_key", text(&self.payment_key)),
            (
                "flow",
                text(if self.flow == Flow::In { "in" } else { "back" }),
            ),
            ("basis", text(basis)),
            ("for_invoice", text(&self.invoice_id)),
        ]);
        if !group.is_empty() {
            attrs.push(("group", text(group)));
        }
        if !self.refs.is_empty() {
            attrs.push(("refs", RawValue::List(self.refs.clone())));
        }
        attrs
    }

    /// The payment an unapplied record kept, with its reason; `None` when the
    /// record is not one.
    pub fn from_unapplied(record: &RawInvoice) -> Option<(Self, UnappliedReason)> {
        let text = |name: &str| match record.0.get(name) {
            Some(RawValue::Text(t)) => Some(t.as_str()),
            _ => None,
        };
        let reason = UnappliedReason::parse(text("reason")?)?;
        let currency = Currency::parse(text("currency")?)?;
        let amount = text("amount")?.parse::<Decimal>().ok()?;
        let group = text("group").unwrap_or_default().to_owned();
        let basis = match text("basis")? {
            "once" => Basis::Once,
            "total" => Basis::Total(group),
            "part" => Basis::Part(group),
            _ => return None,
        };
        let refs = match record.0.get("refs") {
            Some(RawValue::List(l)) => l.clone(),
            _ => Vec::new(),
        };
        Some((
            Self {
                event_id: text("event_id")?.to_owned(),
                payment_key: text("payment_key")?.to_owned(),
                invoice_id: text("for_invoice").unwrap_or_default().to_owned(),
                amount,
                currency,
                paid_at: DateTime::parse_from_rfc3339(text("paid_at")?)
                    .ok()?
                    .with_timezone(&Utc),
                provider: provider_name(text("provider")?)?,
                event_type: text("event_type")?.to_owned(),
                flow: if text("flow")? == "back" {
                    Flow::Back
                } else {
                    Flow::In
                },
                basis,
                refs,
                dispute: None,
                found: false,
            },
            reason,
        ))
    }
}

/// What applying a payment needs from an invoice item. Read leniently: a bad
/// phone number or a missing contact must never stop money being recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct PayableInvoice {
    pub id: String,
    pub status: InvoiceStatus,
    pub amount: Money,
    pub amount_paid: Decimal,
    /// Late fees applied so far (sum of `late_fee#<step>`).
    pub late_fees: Decimal,
    pub customer_name: String,
    /// For a receipt, when the address is usable.
    pub email: Option<EmailAddress>,
    pub locale: Option<String>,
    /// Marked disputed (by a provider's dispute or by hand).
    pub disputed: bool,
    /// The provider dispute that marked the invoice disputed, if one did.
    pub dispute_id: Option<String>,
    /// The `amount_paid` up to which the report's rollup already counted the
    /// money, when the invoice was marked paid without a payment here
    /// ([`crate::report::rollup::COUNTED_TO`]).
    pub counted_to: Option<Decimal>,
}

impl PayableInvoice {
    pub fn parse(raw: &RawInvoice) -> Result<Self, InvalidReason> {
        let id = raw.required("invoice_id")?.to_owned();
        let status =
            InvoiceStatus::parse(raw.required("status")?).ok_or(InvalidReason::BadStatus)?;
        let currency =
            Currency::parse(raw.required("currency")?).ok_or(InvalidReason::UnknownCurrency)?;
        let amount = parse_amount(&raw.required_amount("amount")?, currency)
            .map_err(|_| InvalidReason::BadAmount(AmountProblem::NotDecimal))?;
        // No upper bound here: an overpaid invoice keeps taking payments.
        let decimal = |t: &str| t.parse::<Decimal>().ok().filter(|d| !d.is_sign_negative());
        let amount_paid = match raw.amount("amount_paid")? {
            None => Decimal::ZERO,
            Some(t) => decimal(&t).ok_or(InvalidReason::BadAmountPaid)?,
        };
        let mut late_fees = Decimal::ZERO;
        for (name, value) in &raw.0 {
            if name.starts_with("late_fee#") {
                let text = match value {
                    RawValue::Text(t) => Some(t.clone()),
                    RawValue::Number(n) => crate::invoice::exact_number(n),
                    _ => None,
                };
                late_fees += text
                    .and_then(|t| decimal(&t))
                    .ok_or(InvalidReason::BadLateFee)?;
            }
        }
        Ok(Self {
            id,
            status,
            amount: Money::new(amount, currency),
            amount_paid,
            late_fees,
            customer_name: raw
                .text("customer_name")
                .ok()
                .flatten()
                .unwrap_or_default()
                .to_owned(),
            email: raw
                .text("email")
                .ok()
                .flatten()
                .and_then(EmailAddress::parse),
            locale: raw.text("locale").ok().flatten().map(str::to_owned),
            disputed: match raw.0.get("disputed") {
                Some(RawValue::Bool(b)) => *b,
                Some(RawValue::Text(t)) => t == "true",
                _ => false,
            },
            dispute_id: raw.text("dispute_id").ok().flatten().map(str::to_owned),
            counted_to: raw
                .amount(crate::report::rollup::COUNTED_TO)
                .ok()
                .flatten()
                .and_then(|t| decimal(&t)),
        })
    }
}

impl Payment {
    /// What this payment, planned as `settlement`, does to `invoice` as the
    /// report's rollup counts it.
    pub fn movement(
        &self,
        invoice: &PayableInvoice,
        settlement: &Settlement,
    ) -> crate::report::rollup::Movement {
        let delta = settlement.amount_paid - invoice.amount_paid;
        // Money in to an invoice marked paid without a payment here counts
        // only beyond what the mark already counted; money back counts whole.
        let moved = match (self.flow, invoice.status, invoice.counted_to) {
            (Flow::In, InvoiceStatus::Paid, Some(covered)) => {
                settlement.amount_paid.max(covered) - invoice.amount_paid.max(covered)
            }
            _ => delta,
        };
        crate::report::rollup::Movement {
            currency: invoice.amount.currency,
            total: invoice.total(),
            moved,
            paid_at: self.paid_at,
            // As the plan marks it paid: only when `amount_paid` moves.
            newly_paid: self.flow == Flow::In
                && settlement.fully_paid
                && invoice.status == InvoiceStatus::Open
                && !delta.is_zero(),
            reopened: settlement.reopened,
        }
    }
}

/// What a movement does to an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    /// `amount_paid` after the movement.
    pub amount_paid: Decimal,
    /// The invoice is paid in full (late fees included).
    pub fully_paid: bool,
    /// More than the total has been paid.
    pub overpaid: bool,
    /// A paid invoice owes money again (a refund, a dispute lost): it is
    /// open again, back in the due index, and its ladder goes on.
    pub reopened: bool,
}

impl PayableInvoice {
    /// What the customer owes in all: the amount and every late fee applied.
    pub fn total(&self) -> Decimal {
        self.amount.amount + self.late_fees
    }

    /// The settlement after `amount` more is paid (`Flow::In`; negative when
    /// a group's count is corrected down) or paid back (`Flow::Back`);
    /// never below zero.
    pub fn settle(&self, flow: Flow, amount: Decimal) -> Settlement {
        let total = self.total();
        let amount_paid = match flow {
            Flow::In => (self.amount_paid + amount).max(Decimal::ZERO),
            Flow::Back => (self.amount_paid - amount).max(Decimal::ZERO),
        };
        Settlement {
            amount_paid,
            fully_paid: amount_paid >= total,
            overpaid: amount_paid > total,
            // Only less paid than before reopens (money back, or a running
            // total's correction): a payment never does, even to an invoice
            // marked paid without its payments recorded.
            reopened: amount_paid < self.amount_paid
                && self.status == InvoiceStatus::Paid
                && amount_paid < total,
        }
    }
}

/// A payment applied (or found already applied).
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    Applied {
        settlement: Settlement,
        /// How much `amount_paid` moved (zero for a part already counted in
        /// its group's total, or a dispute's mark).
        delta: Decimal,
        /// Rounds the store waited for a reminder in flight before committing.
        waited: u32,
        /// The invoice as read before this payment (for a receipt).
        invoice: Box<PayableInvoice>,
        /// The invoice the payment went to (found by its references when the
        /// event named none).
        invoice_id: String,
    },
    /// Recorded before: nothing changed. `invoice_id` is the invoice it was
    /// for (found by the references when the event named none).
    Duplicate { invoice_id: String },
    /// Kept aside as an unapplied payment (`id`), not applied.
    Unapplied { id: String, reason: UnappliedReason },
}

/// Why a payment was not applied.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("no such invoice")]
    UnknownInvoice,
    #[error("the invoice is void")]
    Void,
    #[error("the payment currency is not the invoice currency")]
    CurrencyMismatch,
    #[error("the invoice item fails validation")]
    InvalidInvoice,
    #[error("the invoice kept changing or a reminder is being sent; retry later")]
    Busy,
    #[error("this event id was applied before with another invoice, amount or currency")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a store waits for an invoice that is changing or has a reminder in
/// flight: 40 rounds of read and commit, then busy (the provider retries
/// later). A changed invoice waits 20 ms doubling to 160-240 ms, a reminder in
/// flight 160-240 ms a round: at most about 9.4 s of waiting, which leaves
/// about 5 s of the webhook's 15 s timeout for the calls. Each round's calls
/// may take the SDK's own attempts (`AWS_MAX_ATTEMPTS`).
pub const PAYMENT_BACKOFF: crate::retry::Backoff = crate::retry::Backoff {
    attempts: 40,
    base: std::time::Duration::from_millis(20),
    max: std::time::Duration::from_millis(160),
};

/// Checks a payment against the invoice it is for, before anything is written.
pub fn check(invoice: &PayableInvoice, payment: &Payment) -> Result<(), PaymentError> {
    if invoice.status == InvoiceStatus::Void {
        return Err(PaymentError::Void);
    }
    if invoice.amount.currency != payment.currency {
        return Err(PaymentError::CurrencyMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn invoice(amount: &str, paid: &str, fees: &str) -> PayableInvoice {
        PayableInvoice {
            id: "INV-1".into(),
            status: InvoiceStatus::Open,
            amount: Money::new(amount.parse().unwrap(), Currency::parse("USD").unwrap()),
            amount_paid: paid.parse().unwrap(),
            late_fees: fees.parse().unwrap(),
            customer_name: String::new(),
            email: None,
            locale: None,
            disputed: false,
            dispute_id: None,
            counted_to: None,
        }
    }

    #[test]
    fn money_to_an_invoice_marked_paid_counts_only_beyond_what_the_mark_counted() {
        let usd = Currency::parse("USD").unwrap();
        let at = "2026-11-02T10:00:00Z".parse().unwrap();
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        // Marked paid with 40.00 of 100.00 recorded: the mark counted 60.00.
        let marked = PayableInvoice {
            status: InvoiceStatus::Paid,
            counted_to: Some(d("100.00")),
            ..invoice("100.00", "40.00", "0")
        };
        let mut payment = Payment::once("e", "k", "INV-1", Decimal::ZERO, usd, at, "stripe", "t");
        // The transfer the mark stood for, recorded after all: nothing new.
        let same = payment.movement(&marked, &marked.settle(Flow::In, d("60.00")));
        assert_eq!(same.moved, Decimal::ZERO);
        assert!(!same.newly_paid && !same.reopened);
        // Paid twice over: what goes beyond is money that came.
        let twice = payment.movement(&marked, &marked.settle(Flow::In, d("100.00")));
        assert_eq!(twice.moved, d("40.00"));
        // A part of it: nothing new either.
        let part = marked.settle(Flow::In, d("30.00"));
        assert_eq!(payment.movement(&marked, &part).moved, Decimal::ZERO);
        // Money back counts whole, and reopens.
        payment.flow = Flow::Back;
        let back = payment.movement(&marked, &marked.settle(Flow::Back, d("10.00")));
        assert_eq!(back.moved, d("-10.00"));
        assert!(back.reopened);
        // Open (the mark taken back): money counts as always.
        payment.flow = Flow::In;
        let reopened = PayableInvoice {
            status: InvoiceStatus::Open,
            ..marked.clone()
        };
        let paid = payment.movement(&reopened, &reopened.settle(Flow::In, d("60.00")));
        assert_eq!(paid.moved, d("60.00"));
        assert!(paid.newly_paid);
    }

    #[test]
    fn a_movement_says_whether_it_pays_in_full_or_reopens_for_the_rollup() {
        let usd = Currency::parse("USD").unwrap();
        let at = "2026-11-02T10:00:00Z".parse().unwrap();
        let mut payment = Payment::once("e", "k", "INV-1", Decimal::ZERO, usd, at, "stripe", "t");
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let open = invoice("100.00", "40.00", "5.00");
        // The rest: paid in full, the total with its fee.
        let full = payment.movement(&open, &open.settle(Flow::In, d("65.00")));
        assert_eq!((full.moved, full.total), (d("65.00"), d("105.00")));
        assert!(full.newly_paid && !full.reopened);
        let part = payment.movement(&open, &open.settle(Flow::In, d("10.00")));
        assert!(!part.newly_paid && !part.reopened);
        // Money back on a paid invoice reopens it.
        let paid = PayableInvoice {
            status: InvoiceStatus::Paid,
            amount_paid: d("105.00"),
            ..open.clone()
        };
        payment.flow = Flow::Back;
        let back = payment.movement(&paid, &paid.settle(Flow::Back, d("5.00")));
        assert_eq!(back.moved, d("-5.00"));
        assert!(back.reopened && !back.newly_paid);
        // More on a paid invoice: money only.
        payment.flow = Flow::In;
        let more = payment.movement(&paid, &paid.settle(Flow::In, d("1.00")));
        assert!(!more.newly_paid && !more.reopened);
    }

    #[test]
    fn late_fees_count_toward_what_is_owed() {
        let inv = invoice("100.00", "40.00", "5.00");
        assert_eq!(inv.total(), "105.00".parse::<Decimal>().unwrap());
        let part = inv.settle(Flow::In, "60.00".parse().unwrap());
        assert_eq!((part.fully_paid, part.overpaid), (false, false));
        let exact = inv.settle(Flow::In, "65.00".parse().unwrap());
        assert_eq!((exact.fully_paid, exact.overpaid), (true, false));
        let over = inv.settle(Flow::In, "65.01".parse().unwrap());
        assert_eq!((over.fully_paid, over.overpaid), (true, true));
        assert_eq!(over.amount_paid, "105.01".parse::<Decimal>().unwrap());
    }

    proptest! {
        /// Payments applied one after another add up exactly, whatever their
        /// order, and the invoice is paid from the first payment that reaches
        /// the total on.
        #[test]
        fn payments_add_up_exactly_in_any_order(cents in prop::collection::vec(1i64..50_000, 1..8), total in 1i64..200_000) {
            let mut inv = invoice(&Decimal::new(total, 2).to_string(), "0", "0");
            let mut paid_from = None;
            for (i, c) in cents.iter().enumerate() {
                let s = inv.settle(Flow::In, Decimal::new(*c, 2));
                inv.amount_paid = s.amount_paid;
                prop_assert_eq!(s.overpaid, s.amount_paid > inv.total());
                if s.fully_paid && paid_from.is_none() {
                    paid_from = Some(i);
                }
                prop_assert_eq!(s.fully_paid, paid_from.is_some());
            }
            let sum: i64 = cents.iter().sum();
            prop_assert_eq!(inv.amount_paid, Decimal::new(sum, 2));
            let mut reversed = invoice(&Decimal::new(total, 2).to_string(), "0", "0");
            for c in cents.iter().rev() {
                reversed.amount_paid = reversed.settle(Flow::In, Decimal::new(*c, 2)).amount_paid;
            }
            prop_assert_eq!(reversed.amount_paid, inv.amount_paid);
        }
    }
}
