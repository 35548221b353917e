//! `import`: invoices from CSV or JSON lines into the table, each validated
//! as a run validates it; bad rows are reported and skipped.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{bail, Context, Result};
use dunning::aws::DynamoStore;
use dunning::import::{parse_csv, parse_json_lines};

use crate::Format;

pub async fn import(store: &DynamoStore, file: &Path, format: Option<Format>) -> Result<()> {
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
    let (mut imported, mut existing, mut rejected) = (0, 0, 0);
    for row in rows {
        match row {
            Ok((line, invoice)) => {
                let created = store
                    .insert_invoice(&invoice)
                    .await
                    .with_context(|| format!("line {line} ({}): write failed", invoice.id))?;
                if created {
                    imported += 1;
                } else {
                    existing += 1;
                    eprintln!(
                        "line {line} ({}): already in the table, left unchanged",
                        invoice.id
                    );
                }
            }
            Err(err) => {
                rejected += 1;
                eprintln!("rejected {err}");
            }
        }
    }
    println!("imported {imported}, already present {existing}, rejected {rejected}");
    Ok(())
}
