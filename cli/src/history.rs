//! `history`: an invoice, its reminder ledger and its payments, oldest first.

use anyhow::{bail, Result};
use dunning::aws::DynamoStore;

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
        } else {
            println!("{}  {sk} {}", when(r), r);
        }
    }
    Ok(())
}
