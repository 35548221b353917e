//! `audit`: every invoice item a run cannot use, by a parallel Scan.

use anyhow::Result;
use dunning::aws::DynamoStore;

pub async fn audit(table: &str, segments: i32, json: bool) -> Result<()> {
    let store = DynamoStore::new(&crate::aws().await?, table);
    let report = dunning::audit::audit(&store, segments).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "scanned {} items, {} invoices, {} unusable",
            report.scanned,
            report.invoices,
            report.unusable.len()
        );
        for (id, reason) in &report.unusable {
            println!("  {id}: {reason}");
        }
    }
    Ok(())
}
