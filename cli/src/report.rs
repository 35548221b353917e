//! `report`: receivables by age per currency with the top overdue
//! customers, DSO and CEI, which reminder gets paid, and what is in flight
//! ([`dunning::report`]), from the open invoices the due index holds and the
//! rollup days of its windows: a table that fits 100 columns, CSV (one
//! section after another), JSON or one self-contained HTML file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use dunning::aws::DynamoStore;
use dunning::invoice::Invoice;
use dunning::ports::Links;
use dunning::report::build;
use dunning::report::text::{self, amount};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
    Html,
}

#[derive(clap::Args)]
pub struct Args {
    /// The instant the report is for (RFC 3339); default now.
    #[arg(long)]
    pub as_of: Option<DateTime<Utc>>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
    /// Write the report here instead of printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Days are counted in this zone for invoices without a `timezone`.
    #[arg(long, env = "BUSINESS_TIMEZONE", default_value = "UTC")]
    pub business_timezone: chrono_tz::Tz,
    /// The HTML report's title.
    #[arg(long, env = "BUSINESS_NAME", default_value = "Receivables")]
    pub business_name: String,
    #[arg(long, env = "TABLE_NAME")]
    pub table: String,
}

pub async fn report(args: Args) -> Result<()> {
    let store = DynamoStore::new(&crate::aws().await?, &args.table);
    let steps = crate::policy()?.reminder_ladder();
    let now = args.as_of.unwrap_or_else(Utc::now);
    let (input, reads) = store.report_input(now, &steps).await?;
    let report = build(&input, &steps, now, args.business_timezone);
    tracing::info!(
        open_invoices = reads.open_invoices,
        rollup_days = reads.rollup_days,
        unapplied = reads.unapplied,
        customers = reads.customers,
        total = reads.total(),
        "report: items read"
    );
    let text = match args.format {
        ReportFormat::Table => text::table(&report),
        ReportFormat::Csv => text::csv(&report)?,
        ReportFormat::Json => {
            let mut v = serde_json::to_value(&report)?;
            v["reads"] = serde_json::to_value(reads)?;
            format!("{}\n", serde_json::to_string_pretty(&v)?)
        }
        ReportFormat::Html => {
            dunning::report::html::html(&report, &format!("{}: receivables", args.business_name))
        }
    };
    match &args.out {
        Some(path) => std::fs::File::create(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct StatementArgs {
    pub customer_id: String,
    /// The instant the statement is for (RFC 3339); default now.
    #[arg(long)]
    pub as_of: Option<DateTime<Utc>>,
    /// The statement as JSON.
    #[arg(long)]
    pub json: bool,
    #[arg(long, env = "BUSINESS_TIMEZONE", default_value = "UTC")]
    pub business_timezone: chrono_tz::Tz,
    #[arg(long, env = "TABLE_NAME")]
    pub table: String,
}

/// `statement CUST`: the customer's open invoices with their aging, the
/// total due per currency, and the payments of the last 90 days on them.
pub async fn statement(args: StatementArgs) -> Result<()> {
    let store = DynamoStore::new(&crate::aws().await?, &args.table);
    let now = args.as_of.unwrap_or_else(Utc::now);
    let (raws, more) = store
        .statement_invoices(
            &args.customer_id,
            dunning::pay_page::statement::paid_since(now),
        )
        .await?;
    let mut theirs: Vec<Invoice> = Vec::new();
    for raw in &raws {
        match Invoice::parse(raw) {
            Ok(invoice) => theirs.push(invoice),
            Err(e) => eprintln!(
                "warning: invoice {} is not valid and is left out: {e}",
                raw.id_hint().unwrap_or("?")
            ),
        }
    }
    if theirs.is_empty() {
        anyhow::bail!(
            "customer {} has no open or recently paid invoice in table {}",
            args.customer_id,
            args.table
        );
    }
    let mut payments = Vec::new();
    for invoice in theirs.iter().filter(|i| !i.amount_paid.is_zero()) {
        payments.extend(store.payments_received(&invoice.id).await?);
    }
    let s = dunning::report::statement(
        &args.customer_id,
        &theirs,
        &payments,
        now,
        args.business_timezone,
    );
    if more {
        eprintln!(
            "warning: the customer has more invoices than a statement shows; the first {} are here",
            dunning::report::STATEMENT_MAX_INVOICES
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!(
        "Statement for {} ({}), as of {}",
        s.customer_name,
        s.customer_id,
        s.as_of.to_rfc3339()
    );
    println!(
        "  {:<24} {:<10} {:>8} {:<9} {:>16}",
        "invoice", "due", "overdue", "age", "owed"
    );
    for l in &s.lines {
        println!(
            "  {:<24} {:<10} {:>8} {:<9} {:>16}",
            l.invoice_id.chars().take(24).collect::<String>(),
            l.due_date,
            l.days_overdue.max(0),
            l.bucket,
            format!("{} {}", l.currency, amount(l.owed, &l.currency))
        );
    }
    for (code, total) in &s.total_due {
        println!("  total due {code} {}", amount(*total, code));
        let by_age: Vec<String> = dunning::report::BUCKETS
            .iter()
            .zip(s.aging[code])
            .filter(|(_, owed)| !owed.is_zero())
            .map(|(bucket, owed)| format!("{bucket} {}", amount(owed, code)))
            .collect();
        println!("    by age: {}", by_age.join(", "));
    }
    if !s.recent_payments.is_empty() {
        println!(
            "Payments received (last {} days):",
            dunning::report::STATEMENT_PAYMENT_DAYS
        );
        for p in &s.recent_payments {
            println!(
                "  {} {} {} on {}",
                p.at.date_naive(),
                p.currency,
                amount(p.amount, &p.currency),
                p.invoice_id
            );
        }
    }
    Ok(())
}
