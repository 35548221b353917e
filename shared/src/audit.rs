//! The audit: a parallel Scan of every invoice item that reports those a run
//! cannot use (malformed, or open without a usable `due_date`, which keeps
//! them out of the due index), so nothing is silently ignored. It reads the
//! whole table: run it on demand, never on the daily path.

use std::collections::BTreeMap;

use futures::future::join_all;
use serde::Serialize;

use crate::aws::DynamoStore;
use crate::invoice::Invoice;
use crate::ports::StoreError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Items DynamoDB read (the whole table).
    pub scanned: u64,
    /// Invoice items examined.
    pub invoices: u64,
    /// Unusable invoice items by reason.
    pub by_reason: BTreeMap<String, u64>,
    /// Every unusable item: (invoice id, reason), sorted by id.
    pub unusable: Vec<(String, String)>,
}

/// Scans the table in `segments` parallel segments.
pub async fn audit(store: &DynamoStore, segments: i32) -> Result<AuditReport, StoreError> {
    let segments = segments.clamp(1, 64);
    let scans = (0..segments).map(|segment| async move {
        let mut report = AuditReport::default();
        let mut start = None;
        loop {
            let page = store.scan_invoices(segment, segments, start).await?;
            report.scanned += page.scanned_count;
            for item in &page.items {
                report.invoices += 1;
                if let Err(rejected) = Invoice::parse(&item.raw) {
                    let id = rejected.invoice_id.unwrap_or_else(|| "<no id>".into());
                    report.unusable.push((id, rejected.reason.code()));
                }
            }
            start = page.next;
            if start.is_none() {
                return Ok::<_, StoreError>(report);
            }
        }
    });
    let mut total = AuditReport::default();
    for part in join_all(scans).await {
        let part = part?;
        total.scanned += part.scanned;
        total.invoices += part.invoices;
        total.unusable.extend(part.unusable);
    }
    total.unusable.sort();
    for (_, reason) in &total.unusable {
        *total.by_reason.entry(reason.clone()).or_default() += 1;
    }
    Ok(total)
}
