//! Stripe, as the pay page uses it: amounts in Stripe's minor units, the
//! PaymentIntent the page asks for (with its idempotency key), and what
//! Stripe answers. Pure; the HTTP client is [`http::StripeClient`].

pub mod http;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::money::Money;

/// Currencies Stripe charges in whole units (its "zero-decimal" list,
/// docs.stripe.com/currencies#zero-decimal).
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];

/// Currencies with three decimals, whose Stripe amounts must end in 0
/// (docs.stripe.com/currencies#three-decimal).
const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

/// An amount Stripe cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("{0} has more decimals than Stripe accepts")]
    Unsupported(&'static str),
    #[error("the amount is not positive")]
    NotPositive,
    #[error("the amount is too large for Stripe")]
    TooLarge,
}

/// What the customer is charged, in Stripe's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeAmount {
    /// Minor units as Stripe counts them.
    pub minor: i64,
    /// Lower-case ISO code, as Stripe wants it.
    pub currency: String,
    /// The amount charged, in the invoice's currency: `money` unless a
    /// three-decimal amount was rounded up to Stripe's step of 0.010.
    pub charged: Decimal,
}

/// `money` in Stripe's minor units. Zero-decimal currencies are whole units;
/// ISK, zero-decimal in ISO, is sent as two-decimal (a multiple of 100, as
/// Stripe requires); three-decimal amounts must be a multiple of 10 minor
/// units and are rounded **up** to it, so that the invoice is paid in full
/// (the at most 0.009 over is recorded as an overpayment, never a remainder
/// that keeps reminders going).
pub fn stripe_amount(money: Money) -> Result<StripeAmount, AmountError> {
    let code = money.currency.code();
    if money.amount <= Decimal::ZERO {
        return Err(AmountError::NotPositive);
    }
    let (factor, charged) = if ZERO_DECIMAL.contains(&code) || code == "ISK" {
        let whole = money
            .amount
            .round_dp_with_strategy(0, RoundingStrategy::AwayFromZero);
        (if code == "ISK" { 100 } else { 1 }, whole)
    } else if THREE_DECIMAL.contains(&code) {
        (
            1000,
            money
                .amount
                .round_dp_with_strategy(2, RoundingStrategy::AwayFromZero),
        )
    } else if money.currency.exponent() <= 2 {
        (
            100,
            money
                .amount
                .round_dp_with_strategy(2, RoundingStrategy::AwayFromZero),
        )
    } else {
        return Err(AmountError::Unsupported(code));
    };
    let minor = (charged * Decimal::from(factor))
        .trunc()
        .try_into()
        .map_err(|_| AmountError::TooLarge)?;
    // Stripe's own limit is eight digits in most currencies; its API says so itself.
    Ok(StripeAmount {
        minor,
        currency: code.to_ascii_lowercase(),
        charged,
    })
}

/// Stripe's minor units back to an amount in `currency` (the inverse of
/// [`stripe_amount`]), at the currency's own precision.
pub fn from_minor(minor: i64, currency: crate::money::Currency) -> Decimal {
    let code = currency.code();
    let scale = if ZERO_DECIMAL.contains(&code) {
        0
    } else if code == "ISK" {
        2
    } else if THREE_DECIMAL.contains(&code) {
        3
    } else {
        2
    };
    Decimal::new(minor, scale).round_dp(currency.exponent())
}

/// The PaymentIntent the page creates for one invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentRequest {
    pub invoice_id: String,
    pub amount: StripeAmount,
    /// The invoice's payments so far: part of the key, so that an invoice
    /// paid and then owing again gets a new intent.
    pub amount_paid: Decimal,
    /// The intent this one replaces (canceled, gone, or for another amount).
    pub replaces: Option<String>,
}

impl IntentRequest {
    /// One key per invoice, amount, payments so far, predecessor and hour:
    /// two taps, or a retried request, never make two intents; a changed
    /// amount (a late fee since) or a replaced intent is a new one. The hour
    /// (UTC) is in it because Stripe replays a key's first answer for 24
    /// hours, a 5xx included: a failure poisons a key for the rest of its
    /// hour at most (the stored record, not the key, keeps taps across hours
    /// to one intent). A hash, so that any invoice id makes a valid header.
    pub fn idempotency_key(&self, now: chrono::DateTime<chrono::Utc>) -> String {
        let mut h = Sha256::new();
        for part in [
            self.invoice_id.as_bytes(),
            self.amount.currency.as_bytes(),
            self.amount.minor.to_string().as_bytes(),
            self.amount_paid.normalize().to_string().as_bytes(),
            self.replaces.as_deref().unwrap_or("").as_bytes(),
            now.format("%Y-%m-%dT%H").to_string().as_bytes(),
        ] {
            h.update(part);
            h.update([0]);
        }
        format!("dunning-pi-{}", hex::encode(&h.finalize()[..16]))
    }

    /// The form Stripe's API takes.
    pub fn form(&self) -> Vec<(String, String)> {
        vec![
            ("amount".into(), self.amount.minor.to_string()),
            ("currency".into(), self.amount.currency.clone()),
            ("metadata[invoice_id]".into(), self.invoice_id.clone()),
            ("payment_method_types[]".into(), "card".into()),
        ]
    }
}

/// The fields of a PaymentIntent the page reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub client_secret: String,
    pub status: String,
    pub amount: i64,
    pub currency: String,
}

/// Stripe's error body: `{"error": {"type": .., "code": .., "message": ..}}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    message: Option<String>,
}

/// A Stripe request that failed, classified: `transient` ones (network,
/// 429, 5xx) may be retried by the customer's next tap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Stripe {status}: {code}: {message}")]
pub struct StripeError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub transient: bool,
}

impl StripeError {
    /// An answer that is not 2xx.
    pub fn from_answer(status: u16, body: &[u8]) -> Self {
        let detail = serde_json::from_slice::<ErrorBody>(body)
            .ok()
            .map(|b| b.error);
        let code = detail
            .as_ref()
            .and_then(|d| d.code.clone().or_else(|| d.kind.clone()))
            .unwrap_or_else(|| "http_error".into());
        let message = detail
            .and_then(|d| d.message)
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
        Self {
            status,
            code,
            message,
            // 409: the same idempotency key in flight (two tabs at once).
            transient: status == 409 || status == 429 || status >= 500,
        }
    }

    /// No answer at all (connection, TLS, timeout).
    pub fn network(message: impl Into<String>) -> Self {
        Self {
            status: 0,
            code: "network".into(),
            message: message.into(),
            transient: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use proptest::prelude::*;

    fn money(amount: &str, code: &str) -> Money {
        Money::new(amount.parse().unwrap(), Currency::parse(code).unwrap())
    }

    #[test]
    fn minor_units_follow_stripe_per_currency() {
        let cases = [
            ("1250.00", "USD", 125_000, "1250.00"),
            ("0.50", "EUR", 50, "0.50"),
            ("54000", "JPY", 54_000, "54000"),
            ("1000", "KRW", 1000, "1000"),
            // ISK: whole krónur, sent as two-decimal.
            ("1500", "ISK", 150_000, "1500"),
            // Three decimals: a multiple of 10, rounded up so nothing is left owing.
            ("125.500", "KWD", 125_500, "125.50"),
            ("125.505", "KWD", 125_510, "125.51"),
            ("0.001", "BHD", 10, "0.01"),
        ];
        for (amount, code, minor, charged) in cases {
            let got = stripe_amount(money(amount, code)).unwrap();
            assert_eq!(got.minor, minor, "{amount} {code}");
            assert_eq!(got.currency, code.to_ascii_lowercase());
            assert_eq!(
                got.charged,
                charged.parse::<Decimal>().unwrap(),
                "{amount} {code}"
            );
        }
        for (minor, code, back) in [
            (125_000, "USD", "1250.00"),
            (54_000, "JPY", "54000"),
            (150_000, "ISK", "1500"),
            (125_510, "KWD", "125.510"),
        ] {
            let got = from_minor(minor, Currency::parse(code).unwrap());
            assert_eq!(got.to_string(), back, "{minor} {code}");
        }
        assert_eq!(
            stripe_amount(money("0", "USD")),
            Err(AmountError::NotPositive)
        );
        assert_eq!(
            stripe_amount(money("1.0000", "CLF")),
            Err(AmountError::Unsupported("CLF"))
        );
    }

    #[test]
    fn one_key_per_invoice_and_amount() {
        let at: chrono::DateTime<chrono::Utc> = "2026-11-23T14:05:00Z".parse().unwrap();
        let req = |id: &str, amount: &str| IntentRequest {
            invoice_id: id.into(),
            amount: stripe_amount(money(amount, "USD")).unwrap(),
            amount_paid: Decimal::ZERO,
            replaces: None,
        };
        let key = req("INV-1", "10.00").idempotency_key(at);
        assert_eq!(key, req("INV-1", "10.00").idempotency_key(at));
        assert_ne!(key, req("INV-1", "10.01").idempotency_key(at));
        assert_ne!(key, req("INV-2", "10.00").idempotency_key(at));
        let paid_before = IntentRequest {
            amount_paid: Decimal::new(500, 2),
            ..req("INV-1", "10.00")
        };
        assert_ne!(key, paid_before.idempotency_key(at));
        // 5.00 and 5 are the same payments so far.
        let same = IntentRequest {
            amount_paid: Decimal::new(5, 0),
            ..req("INV-1", "10.00")
        };
        assert_eq!(same.idempotency_key(at), paid_before.idempotency_key(at));
        let replacing = IntentRequest {
            replaces: Some("pi_1".into()),
            ..req("INV-1", "10.00")
        };
        assert_ne!(key, replacing.idempotency_key(at));
        assert!(key.len() < 255 && key.is_ascii());
        // The same hour, the same key; the next hour, another.
        let later: chrono::DateTime<chrono::Utc> = "2026-11-23T14:59:59Z".parse().unwrap();
        assert_eq!(req("INV-1", "10.00").idempotency_key(later), key);
        let next: chrono::DateTime<chrono::Utc> = "2026-11-23T15:00:00Z".parse().unwrap();
        assert_ne!(req("INV-1", "10.00").idempotency_key(next), key);
        // Any invoice id, even one a header could not carry, makes a valid key.
        assert!(req("请款 #1\u{7f}", "1.00").idempotency_key(at).is_ascii());
        let form = req("INV-1", "10.00").form();
        assert!(form.contains(&("amount".into(), "1000".into())));
        assert!(form.contains(&("metadata[invoice_id]".into(), "INV-1".into())));
    }

    #[test]
    fn stripe_errors_are_classified() {
        let e = StripeError::from_answer(
            402,
            br#"{"error":{"type":"card_error","code":"card_declined","message":"Your card was declined."}}"#,
        );
        assert_eq!((e.code.as_str(), e.transient), ("card_declined", false));
        assert!(StripeError::from_answer(503, b"<html>").transient);
        assert!(StripeError::from_answer(429, b"{}").transient);
        assert_eq!(StripeError::from_answer(400, b"{}").code, "http_error");
    }

    proptest! {
        /// Whatever the amount, Stripe is asked for at least what is owed and
        /// less than one step more, in a whole number of its minor units.
        #[test]
        fn never_less_than_owed_and_never_a_step_more(cents in 1i64..10_000_000_000, code in prop::sample::select(vec!["USD", "JPY", "KWD", "ISK", "GBP", "BHD"])) {
            let currency = Currency::parse(code).unwrap();
            let amount = Decimal::new(cents, currency.exponent());
            let got = stripe_amount(Money::new(amount, currency)).unwrap();
            prop_assert!(got.charged >= amount);
            let step = match code { "KWD" | "BHD" => Decimal::new(1, 2), "USD" | "GBP" => Decimal::new(1, 2), _ => Decimal::ONE };
            prop_assert!(got.charged - amount < step);
        }
    }
}
