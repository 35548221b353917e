//! `import`: invoices from CSV or JSON lines into the table, each validated
//! as a run validates it. A new invoice is created; one already there is
//! updated with what the file changes (as `edit` does: after any reminder in
//! flight, with a history record), and `--dry-run` shows the changes
//! without writing. Bad rows are reported and skipped.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use dunning::aws::DynamoStore;
use dunning::edit::{import_fields, plan, Edit, EditError, Request, IMPORT};
use dunning::import::{parse_csv, parse_json_lines, ImportRow};
use dunning::ports::{edit_invoice, Edited, PaymentStore};

use crate::Format;

/// Contract attributes a new invoice gets after its creation, as an edit.
const ADDED_AFTER: &[&str] = &["promised_by", "instalments", "cc_emails", "cc_phones"];

/// What one run of `import` did.
#[derive(Debug, Default)]
struct Counts {
    created: u64,
    updated: u64,
    unchanged: u64,
    refused: u64,
}

pub async fn import(
    store: &DynamoStore,
    file: &Path,
    format: Option<Format>,
    dry_run: bool,
) -> Result<()> {
    let format = match format {
        Some(f) => f,
        None => match file.extension().and_then(|e| e.to_str()) {
            Some("csv") => Format::Csv,
            Some("jsonl" | "ndjson" | "json") => Format::Jsonl,
            _ => bail!(
                "cannot tell the format of {}: pass --format csv or --format jsonl",
                file.display()
            ),
        },
    };
    let input = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let rows = match format {
        Format::Csv => parse_csv(input),
        Format::Jsonl => parse_json_lines(BufReader::new(input)),
    };
    let by = format!(
        "import:{}",
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut counts = Counts::default();
    for row in rows {
        match row {
            Ok(row) => one(store, &row, &by, dry_run, &mut counts).await?,
            Err(err) => {
                counts.refused += 1;
                eprintln!("rejected {err}");
            }
        }
    }
    println!(
        "{}created {}, updated {}, unchanged {}, refused {}",
        if dry_run {
            "dry run (nothing written): "
        } else {
            ""
        },
        counts.created,
        counts.updated,
        counts.unchanged,
        counts.refused
    );
    Ok(())
}

async fn one(
    store: &DynamoStore,
    row: &ImportRow,
    by: &str,
    dry_run: bool,
    counts: &mut Counts,
) -> Result<()> {
    let (line, id) = (row.line, &row.invoice.id);
    let request = Request {
        edit: Edit::Set(import_fields(&row.invoice, &row.columns)),
        by: by.to_owned(),
        reason: None,
        command: Some(IMPORT),
    };
    let outcome = if dry_run {
        match store.read_for_payment(id, &[], Utc::now()).await? {
            None => None,
            Some(seen) => Some(plan(&seen.raw, &request, Utc::now()).map(|p| match p {
                Some(plan) => Edited::Applied { plan, waited: 0 },
                None => Edited::Unchanged,
            })),
        }
    } else if store
        .insert_invoice(&row.invoice)
        .await
        .with_context(|| format!("line {line} ({id}): write failed"))?
    {
        // What the importer's item leaves out (a promise, a plan, copies)
        // goes on as an edit: its wake records and its history with it.
        let extra: Vec<(String, Option<String>)> = import_fields(&row.invoice, &row.columns)
            .into_iter()
            .filter(|(k, v)| ADDED_AFTER.contains(&k.as_str()) && v.is_some())
            .collect();
        if !extra.is_empty() {
            let added = Request {
                edit: Edit::Set(extra),
                ..request.clone()
            };
            if let Err(err) = edit_invoice(store, id, &added, Utc::now).await {
                counts.refused += 1;
                eprintln!("line {line} ({id}): created, but its promise, plan or copies were refused: {err}");
            }
        }
        None
    } else {
        Some(edit_invoice(store, id, &request, Utc::now).await)
    };
    match outcome {
        None => {
            counts.created += 1;
            if dry_run {
                println!("line {line} ({id}): would be created");
            }
        }
        Some(Ok(Edited::Unchanged)) => counts.unchanged += 1,
        Some(Ok(Edited::Applied { plan, .. })) => {
            counts.updated += 1;
            let changes: Vec<String> = plan
                .changes
                .iter()
                .map(|c| c.masked().to_string())
                .collect();
            println!(
                "line {line} ({id}): {} {}",
                if dry_run { "would change" } else { "updated" },
                changes.join("; ")
            );
        }
        Some(Err(EditError::Store(err))) => {
            return Err(err).with_context(|| format!("line {line} ({id}): write failed"))
        }
        Some(Err(err)) => {
            counts.refused += 1;
            eprintln!("line {line} ({id}): update refused: {err}");
        }
    }
    Ok(())
}
