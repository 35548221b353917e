//! Payment events: our generic event and the Stripe events we act on, parsed
//! into one [`Payment`]. Stripe amounts are integers in the currency's minor
//! unit (JPY 0 decimals, USD 2, KWD 3) and become exact decimals.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::money::{parse_amount, Currency};
pub use crate::payment::Payment;

/// What a body turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Payment(Payment),
    /// A well-formed event we do not act on (answered 200 so the provider does not retry).
    Ignored {
        event_type: String,
        reason: &'static str,
    },
}

/// A malformed body: the field at fault, never its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not a JSON object")]
    NotJson,
    #[error("`{0}` is missing")]
    Missing(&'static str),
    #[error("`{0}` is invalid")]
    Invalid(&'static str),
}

fn text<'a>(v: &'a Value, field: &'static str) -> Result<&'a str, ParseError> {
    match v.get(field) {
        None | Some(Value::Null) => Err(ParseError::Missing(field)),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(ParseError::Invalid(field)),
    }
}

fn invoice_id(id: &str, field: &'static str) -> Result<String, ParseError> {
    let ok = id.chars().count() <= 128 && !id.contains('#') && !id.chars().any(char::is_control);
    ok.then(|| id.to_owned()).ok_or(ParseError::Invalid(field))
}

/// Our event: `{"id", "invoice_id", "amount": "120.50", "currency": "USD", "paid_at": RFC 3339}`.
pub fn parse_generic(body: &[u8]) -> Result<Parsed, ParseError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| ParseError::NotJson)?;
    if !v.is_object() {
        return Err(ParseError::NotJson);
    }
    let event_id = text(&v, "id")?;
    // `offline:` keys are the payments `dunning-admin record-payment` records:
    // a generic id of that shape would be taken for one of them.
    if event_id.len() > 255 || event_id.starts_with("offline:") {
        return Err(ParseError::Invalid("id"));
    }
    let currency = Currency::parse(text(&v, "currency")?).ok_or(ParseError::Invalid("currency"))?;
    let amount =
        parse_amount(text(&v, "amount")?, currency).map_err(|_| ParseError::Invalid("amount"))?;
    if amount.is_zero() {
        return Err(ParseError::Invalid("amount"));
    }
    let paid_at = DateTime::parse_from_rfc3339(text(&v, "paid_at")?)
        .map_err(|_| ParseError::Invalid("paid_at"))?
        .with_timezone(&Utc);
    Ok(Parsed::Payment(Payment {
        event_id: event_id.to_owned(),
        payment_key: event_id.to_owned(),
        invoice_id: invoice_id(text(&v, "invoice_id")?, "invoice_id")?,
        amount,
        currency,
        paid_at,
        provider: "generic",
        event_type: "payment".into(),
    }))
}

/// A Stripe event (`invoice.paid`, `checkout.session.completed`,
/// `payment_intent.succeeded`); our invoice id comes from
/// `metadata.invoice_id`, or `client_reference_id` on a Checkout Session.
pub fn parse_stripe(body: &[u8]) -> Result<Parsed, ParseError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| ParseError::NotJson)?;
    if !v.is_object() {
        return Err(ParseError::NotJson);
    }
    let event_id = text(&v, "id")?;
    let event_type = text(&v, "type")?.to_owned();
    let object = v
        .pointer("/data/object")
        .filter(|o| o.is_object())
        .ok_or(ParseError::Missing("data.object"))?;
    let amount_field = match event_type.as_str() {
        "invoice.paid" => "amount_paid",
        // A delayed method (SEPA, ACH debit) completes the session unpaid;
        // the money is this later event, on the same session.
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => "amount_total",
        "checkout.session.async_payment_failed" => {
            tracing::warn!(%event_id, "a delayed Checkout payment failed; nothing applied");
            return Ok(Parsed::Ignored {
                event_type,
                reason: "payment_failed",
            });
        }
        "payment_intent.succeeded" => "amount_received",
        _ => {
            return Ok(Parsed::Ignored {
                event_type,
                reason: "event_type_not_handled",
            })
        }
    };
    if event_type.starts_with("checkout.session.")
        && object.get("payment_status").and_then(Value::as_str) != Some("paid")
    {
        // Delayed payment methods complete the session before the money arrives.
        return Ok(Parsed::Ignored {
            event_type,
            reason: "not_paid_yet",
        });
    }
    let reference = object
        .pointer("/metadata/invoice_id")
        .and_then(Value::as_str)
        .or_else(|| object.get("client_reference_id").and_then(Value::as_str))
        .filter(|s| !s.is_empty());
    let Some(reference) = reference else {
        return Ok(Parsed::Ignored {
            event_type,
            reason: "no_invoice_reference",
        });
    };
    let currency_code = object
        .get("currency")
        .and_then(Value::as_str)
        .ok_or(ParseError::Missing("currency"))?;
    let currency = Currency::parse(&currency_code.to_ascii_uppercase())
        .ok_or(ParseError::Invalid("currency"))?;
    let minor = object
        .get(amount_field)
        // A succeeded intent received its whole amount; payloads without
        // `amount_received` (API versions before it, and localstripe's) say `amount`.
        .or_else(|| {
            (event_type == "payment_intent.succeeded")
                .then(|| object.get("amount"))
                .flatten()
        })
        .and_then(Value::as_i64)
        .ok_or(ParseError::Missing("amount"))?;
    if !(0..=1_000_000_000_000_000).contains(&minor) {
        return Err(ParseError::Invalid("amount"));
    }
    if minor == 0 {
        return Ok(Parsed::Ignored {
            event_type,
            reason: "zero_amount",
        });
    }
    // Stripe's minor units, which are not always ISO's (ISK, MGA, ...): the
    // same rule the pay page charges with.
    let amount = crate::stripe::from_minor(minor, currency);
    let paid_at = object
        .pointer("/status_transitions/paid_at")
        .and_then(Value::as_i64)
        .or_else(|| v.get("created").and_then(Value::as_i64))
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .ok_or(ParseError::Missing("created"))?;
    let payment_intent = match event_type.as_str() {
        "payment_intent.succeeded" => object.get("id"),
        _ => object.get("payment_intent"),
    };
    let payment_key = payment_intent
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= 255)
        .unwrap_or(event_id)
        .to_owned();
    Ok(Parsed::Payment(Payment {
        event_id: event_id.to_owned(),
        payment_key,
        invoice_id: invoice_id(reference, "metadata.invoice_id")?,
        amount,
        currency,
        paid_at,
        provider: "stripe",
        event_type,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/stripe/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn payment(parsed: Parsed) -> Payment {
        match parsed {
            Parsed::Payment(p) => p,
            other => panic!("expected a payment, got {other:?}"),
        }
    }

    #[test]
    fn stripe_invoice_paid_uses_metadata_and_minor_units() {
        let p = payment(parse_stripe(&fixture("invoice.paid.json")).unwrap());
        assert_eq!(
            (p.event_id.as_str(), p.invoice_id.as_str()),
            ("evt_1QaInvoicePaid00000001", "INV-1001")
        );
        assert_eq!(
            (p.amount, p.currency.code()),
            (Decimal::new(125_000, 2), "USD")
        );
        assert_eq!(p.paid_at.to_rfc3339(), "2026-11-24T10:15:00+00:00");
    }

    #[test]
    fn stripe_checkout_session_uses_client_reference_id_and_jpy_has_no_decimals() {
        let p = payment(parse_stripe(&fixture("checkout.session.completed.json")).unwrap());
        assert_eq!(
            (p.invoice_id.as_str(), p.amount, p.currency.code()),
            ("INV-1003", Decimal::from(54_000), "JPY")
        );
    }

    #[test]
    fn stripe_payment_intent_in_kwd_has_three_decimals() {
        let p = payment(parse_stripe(&fixture("payment_intent.succeeded.json")).unwrap());
        assert_eq!(
            (
                p.invoice_id.as_str(),
                p.amount.to_string(),
                p.currency.code()
            ),
            ("INV-1005", "125.500".into(), "KWD")
        );
    }

    #[test]
    fn the_same_stripe_payment_has_one_key_whichever_event_reports_it() {
        let invoice_paid = payment(parse_stripe(&fixture("invoice.paid.json")).unwrap());
        let mut pi: Value =
            serde_json::from_slice(&fixture("payment_intent.succeeded.json")).unwrap();
        pi["data"]["object"]["id"] = "pi_3QaInvoice1001".into();
        let intent = payment(parse_stripe(&serde_json::to_vec(&pi).unwrap()).unwrap());
        assert_eq!(invoice_paid.payment_key, "pi_3QaInvoice1001");
        assert_eq!(intent.payment_key, invoice_paid.payment_key);
        assert_ne!(intent.event_id, invoice_paid.event_id);
        let checkout = payment(parse_stripe(&fixture("checkout.session.completed.json")).unwrap());
        assert_eq!(checkout.payment_key, "pi_3QaCheckout3");
    }

    #[test]
    fn other_stripe_events_and_unreferenced_payments_are_ignored() {
        let ignored = parse_stripe(&fixture("customer.created.json")).unwrap();
        assert_eq!(
            ignored,
            Parsed::Ignored {
                event_type: "customer.created".into(),
                reason: "event_type_not_handled"
            }
        );
        let mut v: Value =
            serde_json::from_slice(&fixture("payment_intent.succeeded.json")).unwrap();
        v["data"]["object"]["metadata"] = serde_json::json!({});
        let parsed = parse_stripe(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(matches!(
            parsed,
            Parsed::Ignored {
                reason: "no_invoice_reference",
                ..
            }
        ));
        let mut unpaid: Value =
            serde_json::from_slice(&fixture("checkout.session.completed.json")).unwrap();
        unpaid["data"]["object"]["payment_status"] = "unpaid".into();
        assert!(matches!(
            parse_stripe(&serde_json::to_vec(&unpaid).unwrap()).unwrap(),
            Parsed::Ignored {
                reason: "not_paid_yet",
                ..
            }
        ));
        // The delayed payment of that session: succeeded is the money, keyed
        // like the session's other events; failed applies nothing.
        let completed = payment(parse_stripe(&fixture("checkout.session.completed.json")).unwrap());
        let mut later = unpaid.clone();
        later["id"] = "evt_async_1".into();
        later["type"] = "checkout.session.async_payment_succeeded".into();
        later["data"]["object"]["payment_status"] = "paid".into();
        let async_paid = payment(parse_stripe(&serde_json::to_vec(&later).unwrap()).unwrap());
        assert_eq!(
            (
                async_paid.amount,
                async_paid.invoice_id.as_str(),
                async_paid.payment_key.as_str()
            ),
            (
                completed.amount,
                completed.invoice_id.as_str(),
                completed.payment_key.as_str()
            )
        );
        later["type"] = "checkout.session.async_payment_failed".into();
        later["data"]["object"]["payment_status"] = "unpaid".into();
        assert!(matches!(
            parse_stripe(&serde_json::to_vec(&later).unwrap()).unwrap(),
            Parsed::Ignored {
                reason: "payment_failed",
                ..
            }
        ));
    }

    #[test]
    fn generic_events_are_validated_field_by_field() {
        let ok = br#"{"id":"pay_1","invoice_id":"INV-1","amount":"120.50","currency":"USD","paid_at":"2026-11-24T10:00:00Z"}"#;
        let p = payment(parse_generic(ok).unwrap());
        assert_eq!((p.amount, p.provider), (Decimal::new(12_050, 2), "generic"));
        let cases: [(&[u8], ParseError); 8] = [
            (br#"{"id":"offline:BANK-1","invoice_id":"INV-1","amount":"1","currency":"USD","paid_at":"2026-11-24T10:00:00Z"}"#, ParseError::Invalid("id")),
            (b"not json", ParseError::NotJson),
            (b"[1]", ParseError::NotJson),
            (br#"{"invoice_id":"INV-1","amount":"1","currency":"USD","paid_at":"2026-11-24T10:00:00Z"}"#, ParseError::Missing("id")),
            (br#"{"id":"p","invoice_id":"INV-1","amount":120.5,"currency":"USD","paid_at":"2026-11-24T10:00:00Z"}"#, ParseError::Invalid("amount")),
            (br#"{"id":"p","invoice_id":"INV-1","amount":"1.001","currency":"USD","paid_at":"2026-11-24T10:00:00Z"}"#, ParseError::Invalid("amount")),
            (br#"{"id":"p","invoice_id":"INV-1","amount":"1","currency":"usd!","paid_at":"2026-11-24T10:00:00Z"}"#, ParseError::Invalid("currency")),
            (br#"{"id":"p","invoice_id":"INV-1","amount":"1","currency":"USD","paid_at":"yesterday"}"#, ParseError::Invalid("paid_at")),
        ];
        for (body, err) in cases {
            assert_eq!(
                parse_generic(body),
                Err(err),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
