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
        bail!("--amount must be more than zero (a reversal is not supported yet)");
    }
    let reference = reference.trim();
    if reference.is_empty() || reference.len() > 200 || reference.contains('#') {
        bail!("--reference must be 1-200 characters without '#'");
    }
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

pub async fn record(store: &DynamoStore, payment: &Payment) -> Result<()> {
    match store.apply_payment(payment, Utc::now()).await {
        Ok(Applied::Applied { settlement, .. }) => {
            println!(
                "applied {} {} to {}: amount_paid {}{}{}",
                payment.amount,
                payment.currency.code(),
                payment.invoice_id,
                settlement.amount_paid,
                if settlement.fully_paid { ", paid in full" } else { "" },
                if settlement.overpaid { " (overpaid)" } else { "" },
            );
            Ok(())
        }
        Ok(Applied::Duplicate) => {
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
