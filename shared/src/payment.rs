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
use crate::money::{parse_amount, Currency, Money};

/// A payment to apply to an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The provider's event id.
    pub event_id: String,
    /// What makes this payment unique: it is applied once per key. For Stripe
    /// the PaymentIntent id, so `invoice.paid` and `payment_intent.succeeded`
    /// for the same money count once; otherwise the event id.
    pub payment_key: String,
    pub invoice_id: String,
    pub amount: Decimal,
    pub currency: Currency,
    pub paid_at: DateTime<Utc>,
    /// `stripe` or `generic`.
    pub provider: &'static str,
    pub event_type: String,
}

impl Payment {
    /// What the payment says, hashed: the invoice, the amount, the currency
    /// and the payment key. The same event id delivered again with the same
    /// fingerprint is a duplicate; with another, a conflict, never applied.
    /// (A redelivered Stripe event's body differs in fields such as
    /// `pending_webhooks`, so the raw body is not what is compared.)
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [
            self.invoice_id.as_str(),
            &self.amount.normalize().to_string(),
            self.currency.code(),
            &self.payment_key,
        ] {
            h.update(part.as_bytes());
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
}

/// The sort key of an event's claim.
pub const EVENT_SK: &str = "event";

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
}

impl PayableInvoice {
    pub fn parse(raw: &RawInvoice) -> Result<Self, InvalidReason> {
        let id = raw.required("invoice_id")?.to_owned();
        let status =
            InvoiceStatus::parse(raw.required("status")?).ok_or(InvalidReason::BadStatus)?;
        let currency =
            Currency::parse(raw.required("currency")?).ok_or(InvalidReason::UnknownCurrency)?;
        let amount = parse_amount(raw.required("amount")?, currency)
            .map_err(|_| InvalidReason::BadAmount(AmountProblem::NotDecimal))?;
        // No upper bound here: an overpaid invoice keeps taking payments.
        let decimal = |t: &str| t.parse::<Decimal>().ok().filter(|d| !d.is_sign_negative());
        let amount_paid = match raw.text("amount_paid")? {
            None => Decimal::ZERO,
            Some(t) => decimal(t).ok_or(InvalidReason::BadAmountPaid)?,
        };
        let mut late_fees = Decimal::ZERO;
        for (name, value) in &raw.0 {
            if name.starts_with("late_fee#") {
                match value {
                    RawValue::Text(t) => {
                        late_fees += decimal(t).ok_or(InvalidReason::BadLateFee)?
                    }
                    _ => return Err(InvalidReason::BadLateFee),
                }
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
        })
    }
}

/// What a payment does to an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    /// `amount_paid` after the payment.
    pub amount_paid: Decimal,
    /// The invoice is paid in full (late fees included).
    pub fully_paid: bool,
    /// More than the total has been paid.
    pub overpaid: bool,
}

impl PayableInvoice {
    /// What the customer owes in all: the amount and every late fee applied.
    pub fn total(&self) -> Decimal {
        self.amount.amount + self.late_fees
    }

    /// The settlement after `amount` more is paid.
    pub fn settle(&self, amount: Decimal) -> Settlement {
        let total = self.total();
        let amount_paid = self.amount_paid + amount;
        Settlement {
            amount_paid,
            fully_paid: amount_paid >= total,
            overpaid: amount_paid > total,
        }
    }
}

/// A payment applied (or found already applied).
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    Applied {
        settlement: Settlement,
        /// Rounds the store waited for a reminder in flight before committing.
        waited: u32,
        /// The invoice as read before this payment (for a receipt).
        invoice: Box<PayableInvoice>,
    },
    Duplicate,
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
        }
    }

    #[test]
    fn late_fees_count_toward_what_is_owed() {
        let inv = invoice("100.00", "40.00", "5.00");
        assert_eq!(inv.total(), "105.00".parse::<Decimal>().unwrap());
        let part = inv.settle("60.00".parse().unwrap());
        assert_eq!((part.fully_paid, part.overpaid), (false, false));
        let exact = inv.settle("65.00".parse().unwrap());
        assert_eq!((exact.fully_paid, exact.overpaid), (true, false));
        let over = inv.settle("65.01".parse().unwrap());
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
                let s = inv.settle(Decimal::new(*c, 2));
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
                reversed.amount_paid = reversed.settle(Decimal::new(*c, 2)).amount_paid;
            }
            prop_assert_eq!(reversed.amount_paid, inv.amount_paid);
        }
    }
}
