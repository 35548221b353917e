//! `history`: an invoice, its reminder ledger and its payments, oldest first.

use anyhow::{bail, Result};
use dunning::aws::DynamoStore;

/// The ledger's notes of SES events, and how history names them.
const MAIL_NOTES: &[(&str, &str)] = &[
    ("mail_send", "SES accepted"),
    ("mail_delivery", "delivered"),
    ("mail_delivery_delay", "delivery delayed"),
    ("mail_bounce", "bounced"),
    ("mail_complaint", "complaint"),
    ("mail_reject", "rejected"),
    ("mail_rendering_failure", "rendering failed"),
];

pub async fn history(store: &DynamoStore, invoice_id: &str, json: bool) -> Result<()> {
    let mut records = store.history(invoice_id).await?;
    if records.is_empty() {
        bail!("no invoice {invoice_id} in table {}", store.table());
    }
    let field =
        |r: &serde_json::Value, k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    // The invoice first, then ledger and payments by time.
    let when = |r: &serde_json::Value| {
        [
            "claimed_at",
            "skipped_at",
            "deferred_at",
            "paid_at",
            "recorded_at",
        ]
        .iter()
        .map(|k| field(r, k))
        .find(|v| !v.is_empty())
        .unwrap_or_default()
    };
    records.sort_by_key(|r| (field(r, "sk") != "invoice", when(r)));
    if json {
        for r in &records {
            println!("{r}");
        }
        return Ok(());
    }
    for r in &records {
        let sk = field(r, "sk");
        if sk == "invoice" {
            println!(
                "invoice {} {} {} {} due {} amount_paid {}",
                field(r, "invoice_id"),
                field(r, "status"),
                field(r, "amount"),
                field(r, "currency"),
                field(r, "due_date"),
                if field(r, "amount_paid").is_empty() {
                    "0".into()
                } else {
                    field(r, "amount_paid")
                },
            );
        } else if let Some(key) = sk.strip_prefix(dunning::ledger::REMINDER_PREFIX) {
            println!(
                "{}  reminder {key:<20} {:<8} {} {}{}",
                when(r),
                field(r, "state"),
                field(r, "amount"),
                field(r, "message_id"),
                [
                    ("error_code", "error"),
                    ("skip_reason", "reason:"),
                    ("defer_reason", "deferred:")
                ]
                .iter()
                .filter(|(k, _)| !field(r, k).is_empty())
                .map(|(k, label)| format!(" {label} {}", field(r, k)))
                .collect::<String>(),
            );
            // What SES said about the message (`mail-events`), oldest first.
            let mut events: Vec<(String, String)> = MAIL_NOTES
                .iter()
                .filter_map(|(attr, label)| {
                    let note = r.get(*attr)?;
                    let at = note.get("at")?.as_str()?.to_owned();
                    let detail = note.get("detail").and_then(|d| d.as_str()).unwrap_or("");
                    Some((at.clone(), format!("{at}    {label}: {detail}")))
                })
                .collect();
            events.sort();
            for (_, line) in events {
                println!("    {line}");
            }
        } else if sk.starts_with(dunning::edit::CHANGE_PREFIX) {
            // Who changed what (`pause`, `edit`, `import`, ...), and why.
            let mut changes: Vec<&str> = r
                .get("changes")
                .and_then(|c| c.as_array())
                .map(|c| c.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            changes.sort_unstable();
            let reason = field(r, "reason");
            println!(
                "{}  {} by {}: {}{}",
                when(r),
                field(r, "command"),
                field(r, "by"),
                changes.join("; "),
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(" (reason: {reason})")
                }
            );
        } else {
            println!("{}  {sk} {}", when(r), r);
        }
    }
    // What the customer's record says (opt-outs, suppressions, a pause, a
    // reply), each with its source and instant: it changes what is sent.
    let customer = records
        .iter()
        .find(|r| field(r, "sk") == "invoice")
        .map(|r| field(r, "customer_id"))
        .filter(|c| !c.is_empty());
    if let Some(customer_id) = customer {
        if let Some(record) = store.customer(&customer_id).await? {
            println!("customer {customer_id}:");
            for line in crate::customer::lines(&record) {
                println!("  {line}");
            }
        }
    }
    Ok(())
}
