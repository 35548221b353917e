//! `unapplied` and `apply-unapplied`: money the webhook could not apply (an
//! unknown or void invoice, another currency, an invoice item that fails
//! validation) or an overpayment's excess, kept aside and listed until someone
//! applies it to an invoice.

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use dunning::aws::{raw_invoice, DynamoStore};
use dunning::payment::{
    Applied, Flow, PayableInvoice, Payment, UnappliedReason, UNAPPLIED_PARTITION,
};
use dunning::ports::Payments;

fn text(item: &dunning::aws::Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// Lists unapplied payments (open ones, or `all`), oldest first.
pub async fn list(store: &DynamoStore, all: bool, json: bool) -> Result<()> {
    let items = store.unapplied(all).await?;
    if json {
        for item in &items {
            println!("{item}");
        }
        return Ok(());
    }
    let text = |item: &serde_json::Value, name: &str| item[name].as_str().unwrap_or("").to_owned();
    if items.is_empty() {
        println!("no unapplied payments{}", if all { "" } else { " open" });
        return Ok(());
    }
    println!(
        "{:<40} {:<17} {:>14} {:<4} {:<14} {:<21} state",
        "id", "reason", "amount", "cur", "for invoice", "received"
    );
    for item in &items {
        let state = text(item, "state");
        println!(
            "{:<40} {:<17} {:>14} {:<4} {:<14} {:<21} {}{}",
            text(item, "sk"),
            text(item, "reason"),
            text(item, "amount"),
            text(item, "currency"),
            text(item, "for_invoice"),
            text(item, "received_at")
                .chars()
                .take(19)
                .collect::<String>(),
            state,
            match text(item, "applied_to").as_str() {
                "" => String::new(),
                to => format!(" to {to}"),
            },
        );
    }
    Ok(())
}

/// Applies the unapplied payment `id` to `target`, once. An overpayment's
/// excess is moved: taken off the invoice it overpaid, then applied.
pub async fn apply(store: &DynamoStore, id: &str, target: &str, now: DateTime<Utc>) -> Result<()> {
    let Some(item) = store.get_record(UNAPPLIED_PARTITION, id).await? else {
        bail!("no unapplied payment {id} (see dunning-admin unapplied)");
    };
    match text(&item, "state").as_str() {
        "applied" => {
            println!(
                "already applied to {} (nothing changed)",
                text(&item, "applied_to")
            );
            return Ok(());
        }
        "dismissed" => bail!("{id} was dismissed; nothing changed"),
        _ => {}
    }
    let Some((kept, reason)) = Payment::from_unapplied(&raw_invoice(&item)) else {
        bail!("{id} is not a readable unapplied payment; nothing changed");
    };
    // The target must take it before anything moves.
    let Some(target_item) = store
        .get_record(target, dunning::ledger::INVOICE_SK)
        .await?
    else {
        bail!("no invoice {target}; nothing changed");
    };
    let target_invoice = PayableInvoice::parse(&raw_invoice(&target_item)).map_err(|e| {
        anyhow::anyhow!(
            "invoice {target} fails validation: {}; nothing changed",
            e.code()
        )
    })?;
    dunning::payment::check(&target_invoice, &kept)
        .map_err(|e| anyhow::anyhow!("not applied to {target}: {e}; nothing changed"))?;
    let payment = if reason == UnappliedReason::Overpaid {
        let source = kept.invoice_id.clone();
        if source == target {
            bail!("{id} is the excess of {source}: apply it to another invoice");
        }
        let Some(invoice) = store
            .get_record(&source, dunning::ledger::INVOICE_SK)
            .await?
        else {
            bail!("the overpaid invoice {source} is gone; nothing changed");
        };
        let invoice = PayableInvoice::parse(&raw_invoice(&invoice)).map_err(|e| {
            anyhow::anyhow!(
                "the overpaid invoice {source} fails validation: {}",
                e.code()
            )
        })?;
        let excess = invoice.amount_paid - invoice.total();
        // Re-running after the move went through finds no excess left: go on.
        let moved = format!("move:{id}");
        let mut back = Payment::once(
            &moved,
            &moved,
            &source,
            kept.amount,
            kept.currency,
            now,
            kept.provider,
            "unapplied_moved",
        );
        back.flow = Flow::Back;
        if excess < kept.amount && !already(store, &source, &back).await? {
            bail!(
                "only {excess} of the {} {} excess is left on {source} (refunded?); nothing changed",
                kept.amount,
                kept.currency.code()
            );
        }
        report(&store.apply_payment(&back, now).await, &back)?;
        let applied = format!("apply:{id}");
        Payment::once(
            &applied,
            &applied,
            target,
            kept.amount,
            kept.currency,
            now,
            kept.provider,
            "unapplied_applied",
        )
    } else {
        Payment {
            event_id: format!("apply:{}", kept.event_id),
            invoice_id: target.to_owned(),
            ..kept
        }
    };
    report(&store.apply_payment(&payment, now).await, &payment)?;
    if !store.mark_unapplied_applied(id, target, now).await? {
        bail!(
            "{id} was applied to {target}, but meanwhile closed by someone else (dismissed?): \
             check dunning-admin unapplied --all and history {target}"
        );
    }
    Ok(())
}

/// The movement's record exists already (a move that went through before).
async fn already(store: &DynamoStore, invoice_id: &str, payment: &Payment) -> Result<bool> {
    Ok(store
        .get_record(invoice_id, &payment.record_sk())
        .await?
        .is_some())
}

fn report(
    outcome: &Result<Applied, dunning::payment::PaymentError>,
    payment: &Payment,
) -> Result<()> {
    match outcome {
        Ok(Applied::Applied { settlement, .. }) => {
            println!(
                "{} {} {} {} {}: amount_paid {}{}{}",
                if payment.flow == Flow::Back {
                    "took"
                } else {
                    "applied"
                },
                payment.amount,
                payment.currency.code(),
                if payment.flow == Flow::Back {
                    "off"
                } else {
                    "to"
                },
                payment.invoice_id,
                settlement.amount_paid,
                if settlement.fully_paid && payment.flow == Flow::In {
                    ", paid in full"
                } else {
                    ""
                },
                if settlement.reopened {
                    ", open again"
                } else {
                    ""
                },
            );
            Ok(())
        }
        Ok(_) => {
            println!(
                "{} on {} was done before (nothing changed)",
                payment.event_type, payment.invoice_id
            );
            Ok(())
        }
        Err(e) => bail!(
            "not applied to {}: {e}; nothing changed",
            payment.invoice_id
        ),
    }
}

/// Dismisses an unapplied payment (refunded outside, not ours, kept by the
/// business): it is no longer listed as open, and is never applied.
pub async fn dismiss(
    store: &DynamoStore,
    id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    if store.get_record(UNAPPLIED_PARTITION, id).await?.is_none() {
        bail!("no unapplied payment {id} (see dunning-admin unapplied)");
    }
    if store.dismiss_unapplied(id, reason, now).await? {
        println!("dismissed {id}: {reason}");
    } else {
        println!("{id} is not open (applied or dismissed before); nothing changed");
    }
    Ok(())
}
