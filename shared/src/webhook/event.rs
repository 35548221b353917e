//! Payment events: our generic event and the Stripe events we act on, parsed
//! into one [`Payment`]. Stripe amounts are integers in the currency's minor
//! unit (JPY 0 decimals, USD 2, KWD 3) and become exact decimals.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::money::{parse_amount, Currency};
pub use crate::payment::Payment;
use crate::payment::{Basis, DisputeChange, Flow};

/// What a body turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Payment(Payment),
    /// Money whose invoice reference cannot name an invoice of ours: kept
    /// aside as an unapplied payment (`unknown_invoice`).
    Unplaceable(Payment),
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
    /// With Stripe invoices synced in, a Stripe invoice's own payment: its
    /// invoice's `amount_remaining` counts it (not an error: ignored).
    #[error("counted by the Stripe invoice's sync")]
    CountedBySync,
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
    // `offline:` keys are the payments `dunning-admin record-payment` records,
    // `apply:` and `move:` ids those `apply-unapplied` makes: a generic id of
    // that shape would be taken for one of them.
    if event_id.len() > 255
        || ["offline:", "apply:", "move:"]
            .iter()
            .any(|p| event_id.starts_with(p))
    {
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
    Ok(Parsed::Payment(Payment::once(
        event_id,
        event_id,
        invoice_id(text(&v, "invoice_id")?, "invoice_id")?,
        amount,
        currency,
        paid_at,
        "generic",
        "payment",
    )))
}

/// The Stripe events this endpoint acts on; every other type is answered
/// `ignored`. `docs/webhook.md` says which is authoritative for which kind of
/// payment and why the others cannot count the same money twice.
pub const STRIPE_EVENTS: [&str; 11] = [
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice_payment.paid",
    "payment_intent.succeeded",
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "refund.created",
    "refund.updated",
    "charge.dispute.created",
    "charge.dispute.closed",
];

/// A string field of a Stripe object, or the `id` of an expanded one.
fn id_of<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    let v = object.get(field)?;
    v.as_str()
        .or_else(|| v.get("id").and_then(Value::as_str))
        .filter(|s| !s.is_empty() && s.len() <= 255 && !s.contains('#'))
}

/// The group of a Stripe invoice's payments.
fn stripe_invoice_group(id: &str) -> String {
    format!("stripe_invoice:{id}")
}

/// A Stripe event: a payment (of a Stripe invoice, a PaymentIntent, a
/// Checkout Session), a refund or a dispute, on any API version from
/// `2024-06-20` on. Our invoice id comes from `metadata.invoice_id`, or
/// `client_reference_id` on a Checkout Session; refunds and disputes, which
/// carry neither, find it by the PaymentIntent or charge a payment recorded.
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
    let ignored = |reason: &'static str| {
        Ok(Parsed::Ignored {
            event_type: event_type.clone(),
            reason,
        })
    };
    // A charge's `amount_refunded` counts refunds still pending, and goes
    // down again when one fails: a running total that cannot be trusted to
    // only grow. Each refund's own event, once it has succeeded, counts.
    if event_type == "charge.refunded" {
        return ignored("counted_by_refund_events");
    }
    if !STRIPE_EVENTS.contains(&event_type.as_str()) {
        return ignored("event_type_not_handled");
    }
    let metadata_invoice = object
        .pointer("/metadata/invoice_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let intent = id_of(object, "payment_intent");
    let charge = id_of(object, "charge");
    // (amount field, basis, key, our invoice id if named, refs, flow, dispute)
    let (amount_field, basis, key, reference, refs, flow, dispute) = match event_type.as_str() {
        // A Stripe invoice's `amount_paid` is its running total: counted as
        // such, with the invoice's own payments as its parts.
        "invoice.paid" | "invoice.payment_succeeded" => {
            let id = id_of(object, "id").ok_or(ParseError::Missing("data.object.id"))?;
            let mut refs = vec![id.to_owned()];
            // Before 2025-03-31.basil the invoice named its PaymentIntent and charge.
            refs.extend([intent, charge].into_iter().flatten().map(str::to_owned));
            let Some(reference) = metadata_invoice else {
                return ignored("no_invoice_reference");
            };
            (
                "amount_paid",
                Basis::Total(stripe_invoice_group(id)),
                id.to_owned(),
                reference.to_owned(),
                refs,
                Flow::In,
                None,
            )
        }
        // One payment of a Stripe invoice (2025-03-31.basil on). It names the
        // Stripe invoice, not ours: found by a reference an earlier event of
        // that invoice left, else counted by the invoice's total when it comes.
        "invoice_payment.paid" => {
            if object.get("status").and_then(Value::as_str) != Some("paid") {
                return ignored("not_paid_yet");
            }
            let stripe_invoice =
                id_of(object, "invoice").ok_or(ParseError::Missing("data.object.invoice"))?;
            let payment = object.get("payment").unwrap_or(&Value::Null);
            let paid_by = id_of(payment, "payment_intent").or_else(|| id_of(payment, "charge"));
            let key = paid_by
                .or_else(|| id_of(object, "id"))
                .ok_or(ParseError::Missing("data.object.id"))?;
            let mut refs = vec![stripe_invoice.to_owned()];
            refs.extend(paid_by.map(str::to_owned));
            let reference = object
                .pointer("/invoice/metadata/invoice_id")
                .and_then(Value::as_str)
                .unwrap_or("");
            (
                "amount_paid",
                Basis::Part(stripe_invoice_group(stripe_invoice)),
                key.to_owned(),
                reference.to_owned(),
                refs,
                Flow::In,
                None,
            )
        }
        "payment_intent.succeeded" => {
            let id = id_of(object, "id").ok_or(ParseError::Missing("data.object.id"))?;
            let Some(reference) = metadata_invoice else {
                return ignored("no_invoice_reference");
            };
            // Before basil an intent a Stripe invoice created names it: then
            // the intent is one of that invoice's payments.
            let basis = match id_of(object, "invoice") {
                Some(stripe_invoice) => Basis::Part(stripe_invoice_group(stripe_invoice)),
                None => Basis::Once,
            };
            let mut refs = vec![id.to_owned()];
            refs.extend(
                [id_of(object, "latest_charge"), id_of(object, "invoice")]
                    .into_iter()
                    .flatten()
                    .map(str::to_owned),
            );
            (
                "amount_received",
                basis,
                id.to_owned(),
                reference.to_owned(),
                refs,
                Flow::In,
                None,
            )
        }
        "checkout.session.async_payment_failed" => {
            tracing::warn!(%event_id, "a delayed Checkout payment failed; nothing applied");
            return ignored("payment_failed");
        }
        // A delayed method (SEPA, ACH debit) completes the session unpaid;
        // the money is `async_payment_succeeded`, on the same session.
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            if object.get("payment_status").and_then(Value::as_str) != Some("paid") {
                return ignored("not_paid_yet");
            }
            let id = id_of(object, "id").ok_or(ParseError::Missing("data.object.id"))?;
            let reference = metadata_invoice.or_else(|| {
                object
                    .get("client_reference_id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            });
            let Some(reference) = reference else {
                return ignored("no_invoice_reference");
            };
            let key = intent.unwrap_or(id);
            // A session that created a Stripe invoice pays that invoice, whose
            // `invoice.paid` reports the same money as its total: a part of
            // it under its PaymentIntent, or (a subscription's session, which
            // has no intent) that invoice's running total itself.
            let basis = match (id_of(object, "invoice"), intent) {
                (Some(stripe_invoice), Some(_)) => {
                    Basis::Part(stripe_invoice_group(stripe_invoice))
                }
                (Some(stripe_invoice), None) => Basis::Total(stripe_invoice_group(stripe_invoice)),
                (None, _) => Basis::Once,
            };
            let refs = [intent, id_of(object, "invoice")]
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect();
            (
                "amount_total",
                basis,
                key.to_owned(),
                reference.to_owned(),
                refs,
                Flow::In,
                None,
            )
        }
        // One refund, once it has succeeded.
        "refund.created" | "refund.updated" => {
            if object.get("status").and_then(Value::as_str) != Some("succeeded") {
                return ignored("refund_not_succeeded");
            }
            let id = id_of(object, "id").ok_or(ParseError::Missing("data.object.id"))?;
            let refs = [intent, charge]
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect();
            (
                "amount",
                Basis::Once,
                id.to_owned(),
                metadata_invoice.unwrap_or("").to_owned(),
                refs,
                Flow::Back,
                None,
            )
        }
        "charge.dispute.created" | "charge.dispute.closed" => {
            let id = id_of(object, "id").ok_or(ParseError::Missing("data.object.id"))?;
            let status = object.get("status").and_then(Value::as_str).unwrap_or("");
            let change = if event_type == "charge.dispute.created" {
                DisputeChange::Opened
            } else {
                DisputeChange::Closed
            };
            let refs = [intent, charge]
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect();
            // Lost: the money goes back as a refund does. Won (or an inquiry
            // closed): nothing moves; the mark is lifted.
            let amount_field = match (change, status) {
                (DisputeChange::Closed, "lost") => "amount",
                (DisputeChange::Closed, _) => "",
                (DisputeChange::Opened, _) => "amount",
            };
            (
                amount_field,
                Basis::Once,
                id.to_owned(),
                metadata_invoice.unwrap_or("").to_owned(),
                refs,
                Flow::Back,
                Some(change),
            )
        }
        _ => return ignored("event_type_not_handled"),
    };
    let currency_code = object
        .get("currency")
        .and_then(Value::as_str)
        .ok_or(ParseError::Missing("currency"))?;
    let currency = Currency::parse(&currency_code.to_ascii_uppercase())
        .ok_or(ParseError::Invalid("currency"))?;
    let minor = if amount_field.is_empty() {
        0
    } else {
        object
            .get(amount_field)
            // A succeeded intent received its whole amount; payloads without
            // `amount_received` (localstripe's) say `amount`.
            .or_else(|| {
                (event_type == "payment_intent.succeeded")
                    .then(|| object.get("amount"))
                    .flatten()
            })
            .and_then(Value::as_i64)
            .ok_or(ParseError::Missing("amount"))?
    };
    if !(0..=1_000_000_000_000_000).contains(&minor) {
        return Err(ParseError::Invalid("amount"));
    }
    if minor == 0 && dispute.is_none() {
        return ignored("zero_amount");
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
    // A reference that cannot be one of our invoice ids (a `#`, control
    // characters, too long) names no invoice: the money is kept aside.
    let (invoice_id, unplaceable) = match reference.as_str() {
        "" => (String::new(), false),
        r => match invoice_id(r, "metadata.invoice_id") {
            Ok(id) => (id, false),
            Err(_) => (String::new(), true),
        },
    };
    let payment = Payment {
        event_id: event_id.to_owned(),
        payment_key: key,
        invoice_id,
        amount,
        currency,
        paid_at,
        provider: "stripe",
        event_type,
        flow,
        basis,
        refs,
        dispute,
        found: false,
    };
    Ok(if unplaceable {
        Parsed::Unplaceable(payment)
    } else {
        Parsed::Payment(payment)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    const VERSIONS: [&str; 3] = ["2024-06-20", "2025-03-31.basil", "2026-10-28.clover"];

    fn fixture(version: &str, name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/stripe/{version}/{name}.json",
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

    fn parsed(version: &str, name: &str) -> Payment {
        payment(parse_stripe(&fixture(version, name)).unwrap())
    }

    fn reason(version: &str, name: &str) -> &'static str {
        match parse_stripe(&fixture(version, name)).unwrap() {
            Parsed::Ignored { reason, .. } => reason,
            other => panic!("{version}/{name}: expected ignored, got {other:?}"),
        }
    }

    fn group(p: &Payment) -> &str {
        match &p.basis {
            Basis::Total(g) | Basis::Part(g) => g,
            Basis::Once => "",
        }
    }

    #[test]
    fn a_stripe_invoice_is_a_running_total_on_every_version() {
        for v in VERSIONS {
            let paid = parsed(v, "invoice.paid");
            assert!(matches!(paid.basis, Basis::Total(_)), "{v}");
            assert_eq!(
                (
                    paid.invoice_id.as_str(),
                    paid.amount,
                    paid.currency.code(),
                    paid.flow
                ),
                ("INV-1001", Decimal::new(125_000, 2), "USD", Flow::In),
                "{v}"
            );
            assert_eq!(paid.paid_at.to_rfc3339(), "2026-11-24T10:15:00+00:00");
            let succeeded = parsed(v, "invoice.payment_succeeded");
            assert_eq!(
                (group(&succeeded), succeeded.amount),
                (group(&paid), paid.amount)
            );
            // Its own payment, whichever event reports it, is a part of the
            // same group under the PaymentIntent's id.
            let parts: Vec<Payment> = ["invoice_payment.paid", "payment_intent.succeeded.invoice"]
                .into_iter()
                .filter_map(
                    |name| match parse_stripe(&fixture_or_none(v, name)?).unwrap() {
                        Parsed::Payment(p) => Some(p),
                        _ => None,
                    },
                )
                .collect();
            assert_eq!(parts.len(), 1, "{v}: one event names the payment as a part");
            let part = &parts[0];
            assert!(matches!(part.basis, Basis::Part(_)), "{v}");
            assert_eq!(
                (
                    group(part),
                    part.amount,
                    part.payment_key.starts_with("pi_")
                ),
                (group(&paid), paid.amount, true),
                "{v}"
            );
            assert!(part.refs.iter().any(|r| r.starts_with("in_")), "{v}");
        }
        // Before basil the invoice named its intent; from basil on the intent
        // a Stripe invoice creates carries no reference to ours and is ignored.
        assert!(parsed("2024-06-20", "invoice.paid")
            .refs
            .iter()
            .any(|r| r.starts_with("pi_")));
        for v in &VERSIONS[1..] {
            assert_eq!(
                reason(v, "payment_intent.succeeded.invoice"),
                "no_invoice_reference"
            );
            // invoice_payment.paid names the Stripe invoice, not ours.
            assert_eq!(parsed(v, "invoice_payment.paid").invoice_id, "");
        }
    }

    fn fixture_or_none(version: &str, name: &str) -> Option<Vec<u8>> {
        std::fs::read(format!(
            "{}/tests/fixtures/stripe/{version}/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .ok()
    }

    #[test]
    fn intents_and_sessions_are_once_per_payment_intent_in_their_minor_units() {
        for v in VERSIONS {
            let pi = parsed(v, "payment_intent.succeeded");
            assert_eq!(
                (
                    pi.invoice_id.as_str(),
                    pi.amount.to_string(),
                    pi.currency.code(),
                    &pi.basis
                ),
                ("INV-1005", "125.500".into(), "KWD", &Basis::Once),
                "{v}"
            );
            assert_eq!(pi.refs.len(), 2, "{v}: the intent and its charge");
            let cs = parsed(v, "checkout.session.completed");
            assert_eq!(
                (cs.invoice_id.as_str(), cs.amount, cs.currency.code()),
                ("INV-1003", Decimal::from(54_000), "JPY"),
                "{v}"
            );
            assert!(cs.payment_key.starts_with("pi_"), "{v}");
            // A delayed method: completed unpaid, then the money, keyed alike.
            assert_eq!(
                reason(v, "checkout.session.completed.unpaid"),
                "not_paid_yet"
            );
            let later = parsed(v, "checkout.session.async_payment_succeeded");
            assert_eq!(
                (
                    later.invoice_id.as_str(),
                    later.amount,
                    later.currency.code()
                ),
                ("INV-1004", Decimal::from(300), "EUR"),
                "{v}"
            );
            assert_eq!(
                reason(v, "checkout.session.async_payment_failed"),
                "payment_failed"
            );
            assert_eq!(reason(v, "customer.created"), "event_type_not_handled");
        }
    }

    #[test]
    fn refunds_are_money_back_counted_per_intent_and_disputes_change_the_mark() {
        for v in VERSIONS {
            let pi = parsed(v, "payment_intent.succeeded");
            // The charge's running total counts pending refunds: not trusted.
            assert_eq!(reason(v, "charge.refunded"), "counted_by_refund_events");
            let refund = parsed(v, "refund.updated");
            assert_eq!(
                (
                    refund.flow,
                    refund.amount.to_string(),
                    refund.invoice_id.as_str(),
                    &refund.basis
                ),
                (Flow::Back, "25.500".into(), "", &Basis::Once),
                "{v}"
            );
            assert!(
                refund.payment_key.starts_with("re_")
                    && refund.record_sk().starts_with("refund#re_")
            );
            // Found by the intent the payment remembered.
            assert!(refund.refs.contains(&pi.payment_key), "{v}");
            let opened = parsed(v, "charge.dispute.created");
            let closed = parsed(v, "charge.dispute.closed");
            assert_eq!(
                (opened.dispute, closed.dispute),
                (Some(DisputeChange::Opened), Some(DisputeChange::Closed))
            );
            assert_eq!(opened.payment_key, closed.payment_key);
            assert_ne!(opened.record_sk(), closed.record_sk());
            assert_eq!(
                closed.amount,
                Decimal::from(54_000),
                "{v}: lost, the money goes back"
            );
            let mut won: Value =
                serde_json::from_slice(&fixture(v, "charge.dispute.closed")).unwrap();
            won["data"]["object"]["status"] = "won".into();
            let won = payment(parse_stripe(&serde_json::to_vec(&won).unwrap()).unwrap());
            assert_eq!(
                (won.amount, won.dispute),
                (Decimal::ZERO, Some(DisputeChange::Closed))
            );
            // A refund still pending moves nothing.
            let mut pending: Value = serde_json::from_slice(&fixture(v, "refund.updated")).unwrap();
            pending["data"]["object"]["status"] = "pending".into();
            assert!(matches!(
                parse_stripe(&serde_json::to_vec(&pending).unwrap()).unwrap(),
                Parsed::Ignored {
                    reason: "refund_not_succeeded",
                    ..
                }
            ));
        }
    }

    #[test]
    fn a_reference_that_cannot_be_an_invoice_id_is_money_to_keep_aside() {
        let mut v: Value =
            serde_json::from_slice(&fixture("2026-10-28.clover", "payment_intent.succeeded"))
                .unwrap();
        v["data"]["object"]["metadata"]["invoice_id"] = "INV#1".into();
        match parse_stripe(&serde_json::to_vec(&v).unwrap()).unwrap() {
            Parsed::Unplaceable(p) => assert_eq!(
                (p.invoice_id.as_str(), p.amount.to_string()),
                ("", "125.500".into())
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_subscription_checkout_is_its_stripe_invoice_s_running_total() {
        let mut v: Value =
            serde_json::from_slice(&fixture("2026-10-28.clover", "checkout.session.completed"))
                .unwrap();
        v["data"]["object"]["mode"] = "subscription".into();
        v["data"]["object"]["invoice"] = "in_sub_1".into();
        v["data"]["object"]["payment_intent"] = Value::Null;
        let p = payment(parse_stripe(&serde_json::to_vec(&v).unwrap()).unwrap());
        assert_eq!(p.basis, Basis::Total("stripe_invoice:in_sub_1".into()));
        v["data"]["object"]["payment_intent"] = "pi_x".into();
        let p = payment(parse_stripe(&serde_json::to_vec(&v).unwrap()).unwrap());
        assert_eq!(
            (p.basis, p.payment_key.as_str()),
            (Basis::Part("stripe_invoice:in_sub_1".into()), "pi_x")
        );
    }

    #[test]
    fn unreferenced_payments_are_ignored() {
        let mut v: Value =
            serde_json::from_slice(&fixture("2026-10-28.clover", "payment_intent.succeeded"))
                .unwrap();
        v["data"]["object"]["metadata"] = serde_json::json!({});
        assert!(matches!(
            parse_stripe(&serde_json::to_vec(&v).unwrap()).unwrap(),
            Parsed::Ignored {
                reason: "no_invoice_reference",
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
