//! `record-payment`: money received outside any provider (a bank transfer, a
//! cheque) applied through the same transaction as the webhook's payments,
//! once per reference.

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use dunning::aws::DynamoStore;
use dunning::money::{parse_amount, Currency};
use dunning::payment::{Applied, Payment, PaymentError};
use dunning::ports::Payments;

/// The payment a reference names: its key and event id are the reference,
/// under the provider `offline`, so the same reference applies once and the
/// same reference with another amount or invoice is refused.
pub fn offline_payment(
    invoice_id: &str,
    amount: &str,
    currency: &str,
    reference: &str,
    paid_at: DateTime<Utc>,
) -> Result<Payment> {
    let currency = Currency::parse(&currency.to_ascii_uppercase())
        .ok_or_else(|| anyhow::anyhow!("unknown currency {currency}"))?;
    let amount = parse_amount(amount, currency)
        .map_err(|e| anyhow::anyhow!("--amount {amount}: {e:?} for {}", currency.code()))?;
    if amount.is_zero() {
        bail!("--amount must be more than zero (to take a payment back, --reverse)");
    }
    let reference = checked_reference(reference)?;
    Ok(Payment::once(
        reference,
        format!("offline:{reference}"),
        invoice_id,
        amount,
        currency,
        paid_at,
        "offline",
        "offline_payment",
    ))
}

fn checked_reference(reference: &str) -> Result<&str> {
    let reference = reference.trim();
    if reference.is_empty() || reference.len() > 200 || reference.contains('#') {
        bail!("--reference must be 1-200 characters without '#'");
    }
    // The ids this command and apply-unapplied make of references.
    if ["reverse:", "apply:", "move:"]
        .iter()
        .any(|p| reference.starts_with(p))
    {
        bail!("--reference may not start with reverse:, apply: or move:");
    }
    Ok(reference)
}

/// The reversal of the offline payment `reference` recorded for the invoice:
/// its amount back, once (record `refund#offline:<reference>`, event
/// `reverse:<reference>`). `--amount` and `--currency`, when given, must be
/// the recorded ones.
pub async fn reversal(
    store: &DynamoStore,
    invoice_id: &str,
    reference: &str,
    amount: Option<&str>,
    currency: Option<&str>,
    at: DateTime<Utc>,
) -> Result<Payment> {
    let reference = checked_reference(reference)?;
    let key = format!("offline:{reference}");
    let Some(item) = store
        .get_record(
            invoice_id,
            &format!("{}{key}", dunning::ledger::PAYMENT_PREFIX),
        )
        .await?
    else {
        bail!("no offline payment with reference {reference} is recorded for {invoice_id}; nothing changed");
    };
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let currency_code = text("currency");
    let recorded_currency = Currency::parse(&currency_code)
        .ok_or_else(|| anyhow::anyhow!("the recorded payment has no valid currency"))?;
    let recorded_amount = parse_amount(&text("amount"), recorded_currency)
        .map_err(|_| anyhow::anyhow!("the recorded payment has no valid amount"))?;
    if let Some(c) = currency {
        if !c.eq_ignore_ascii_case(&currency_code) {
            bail!("{reference} was recorded in {currency_code}, not {c}; nothing changed");
        }
    }
    if let Some(a) = amount {
        if parse_amount(a, recorded_currency).ok() != Some(recorded_amount) {
            bail!("{reference} was recorded as {recorded_amount} {currency_code}, not {a}; nothing changed");
        }
    }
    // An overpayment's excess kept aside: still open, it would be counted
    // twice; moved to another invoice, it is no longer here to take back.
    let mut back_amount = recorded_amount;
    let excess_id = format!("offline:{reference}");
    if let Some(excess) = store
        .get_record(dunning::payment::UNAPPLIED_PARTITION, &excess_id)
        .await?
    {
        let field = |name: &str| {
            excess
                .get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        match field("state").as_str() {
            "open" => bail!(
                "the excess of {reference} ({} {currency_code}) is listed as unapplied {excess_id}: apply or dismiss it first; nothing changed",
                field("amount")
            ),
            "applied" => {
                let moved = parse_amount(&field("amount"), recorded_currency).unwrap_or_default();
                back_amount -= moved;
                println!(
                    "{moved} {currency_code} of it was moved to {}: taking back {back_amount}",
                    field("applied_to")
                );
            }
            _ => {}
        }
    }
    let mut payment = Payment::once(
        format!("reverse:{reference}"),
        key,
        invoice_id,
        back_amount,
        recorded_currency,
        at,
        "offline",
        "offline_reversal",
    );
    payment.flow = dunning::payment::Flow::Back;
    Ok(payment)
}

pub async fn record(store: &DynamoStore, payment: &Payment) -> Result<()> {
    match store.apply_payment(payment, Utc::now()).await {
        Ok(Applied::Applied { settlement, .. }) => {
            let back = payment.flow == dunning::payment::Flow::Back;
            println!(
                "{} {} {} {} {}: amount_paid {}{}{}{}",
                if back { "reversed" } else { "applied" },
                payment.amount,
                payment.currency.code(),
                if back { "on" } else { "to" },
                payment.invoice_id,
                settlement.amount_paid,
                if settlement.fully_paid { ", paid in full" } else { "" },
                if settlement.overpaid && !back {
                    " (overpaid: the excess is listed by dunning-admin unapplied)"
                } else {
                    ""
                },
                if settlement.reopened { ", open again" } else { "" },
            );
            Ok(())
        }
        Ok(Applied::Duplicate { .. } | Applied::Unapplied { .. }) => {
            println!("already recorded: reference {} (nothing changed)", payment.event_id);
            Ok(())
        }
        Err(PaymentError::Conflict) => bail!(
            "reference {} was recorded before with another invoice, amount or currency; nothing changed",
            payment.event_id
        ),
        Err(e) => bail!("not recorded: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::offline_payment;

    #[test]
    fn a_reference_names_one_payment_in_the_invoice_currency() {
        let at = "2026-11-24T10:00:00Z".parse().unwrap();
        let p = offline_payment("INV-1", "120.00", "eur", "BANK-2026-1187", at).unwrap();
        assert_eq!(
            (p.payment_key.as_str(), p.provider, p.currency.code()),
            ("offline:BANK-2026-1187", "offline", "EUR")
        );
        assert_eq!(p.amount.to_string(), "120.00");
        assert!(
            offline_payment("INV-1", "120.001", "EUR", "R", at).is_err(),
            "more decimals than EUR has"
        );
        assert!(offline_payment("INV-1", "0", "EUR", "R", at).is_err());
        assert!(offline_payment("INV-1", "-5", "EUR", "R", at).is_err());
        assert!(offline_payment("INV-1", "5", "XXQ", "R", at).is_err());
        assert!(offline_payment("INV-1", "5", "EUR", " ", at).is_err());
        assert!(offline_payment("INV-1", "5", "EUR", "a#b", at).is_err());
    }
}
