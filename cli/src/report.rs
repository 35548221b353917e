//! `report`: receivables by age, per currency, with the top overdue
//! customers and what is in flight ([`dunning::report`]), from the open
//! invoices the due index holds: a table that fits 100 columns, CSV (one
//! section after another) or JSON.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use dunning::aws::DynamoStore;
use dunning::invoice::Invoice;
use dunning::money::Money;
use dunning::ports::Store;
use dunning::report::{aging, AgingReport, BUCKETS};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
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
    #[arg(long, env = "TABLE_NAME")]
    pub table: String,
}

/// Every open invoice, through the due index (all due dates); items that
/// are not valid invoices are counted, not reported on.
pub(crate) async fn open_invoices(store: &DynamoStore) -> Result<(Vec<Invoice>, u64)> {
    // As text, every four-digit year sorts between these.
    let (from, to) = (
        NaiveDate::from_ymd_opt(1, 1, 1).expect("a date"),
        NaiveDate::from_ymd_opt(9999, 12, 31).expect("a date"),
    );
    let (mut invoices, mut invalid, mut start) = (Vec::new(), 0, None);
    loop {
        let page = store.due_page(from, to, start).await?;
        for item in page.items {
            match Invoice::parse(&item.raw) {
                Ok(invoice) => invoices.push(invoice),
                Err(_) => invalid += 1,
            }
        }
        start = page.next;
        if start.is_none() {
            return Ok((invoices, invalid));
        }
    }
}

/// An amount with its currency's digits and grouping, without its code.
fn amount(value: rust_decimal::Decimal, code: &str) -> String {
    let currency = dunning::money::Currency::parse(code).expect("a report's own currency");
    let shown = Money::new(value, currency).to_string();
    shown
        .strip_prefix(code)
        .map_or(shown.clone(), |s| s.trim().to_owned())
}

pub fn table(report: &AgingReport, invalid: u64) -> String {
    let mut out = String::new();
    let as_of = report.as_of.map(|t| t.to_rfc3339()).unwrap_or_default();
    out.push_str(&format!("Receivables by days overdue, as of {as_of}\n"));
    out.push_str(&format!(
        "{:<4}{:>12}{:>12}{:>12}{:>12}{:>12}{:>12}{:>14}\n",
        "", "not due", "1-30", "31-60", "61-90", "91-120", "over 120", "open"
    ));
    for (code, aging) in &report.by_currency {
        let mut line = format!("{code:<4}");
        for total in &aging.buckets {
            line.push_str(&format!("{:>12}", amount(total.amount, code)));
        }
        line.push_str(&format!("{:>14}\n", amount(aging.open.amount, code)));
        out.push_str(&line);
        let mut counts = format!("{:<4}", "");
        for total in &aging.buckets {
            counts.push_str(&format!("{:>12}", format!("({})", total.count)));
        }
        counts.push_str(&format!("{:>14}\n", format!("({})", aging.open.count)));
        out.push_str(&counts);
    }
    for (code, aging) in &report.by_currency {
        if aging.top_overdue.is_empty() {
            continue;
        }
        out.push_str(&format!("\nMost overdue, {code}\n"));
        for c in &aging.top_overdue {
            let name: String = c.customer_id.chars().take(30).collect();
            out.push_str(&format!(
                "  {name:<30} {:>16}  {:>3} invoice(s), oldest {} days\n",
                amount(c.overdue, code),
                c.invoices,
                c.oldest_days
            ));
        }
    }
    let f = &report.in_flight;
    out.push_str(&format!(
        "\nIn flight: paused {}, disputed {}, on a plan {}, promised {}, in collections {}\n",
        f.paused, f.disputed, f.on_plan, f.promised, f.in_collections
    ));
    if invalid > 0 {
        out.push_str(&format!(
            "{invalid} open item(s) are not valid invoices and are left out (dunning-admin audit lists them)\n"
        ));
    }
    out
}

pub fn csv(report: &AgingReport) -> Result<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(["section", "currency", "bucket", "amount", "count"])?;
    for (code, aging) in &report.by_currency {
        for (name, total) in BUCKETS.iter().zip(&aging.buckets) {
            w.write_record([
                "aging",
                code,
                name,
                &total.amount.to_string(),
                &total.count.to_string(),
            ])?;
        }
        w.write_record([
            "aging",
            code,
            "open",
            &aging.open.amount.to_string(),
            &aging.open.count.to_string(),
        ])?;
        for c in &aging.top_overdue {
            w.write_record([
                "top_overdue",
                code,
                &c.customer_id,
                &c.overdue.to_string(),
                &c.invoices.to_string(),
            ])?;
        }
    }
    let f = &report.in_flight;
    for (name, n) in [
        ("paused", f.paused),
        ("disputed", f.disputed),
        ("on_plan", f.on_plan),
        ("promised", f.promised),
        ("in_collections", f.in_collections),
    ] {
        w.write_record(["in_flight", "", name, "", &n.to_string()])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

pub async fn report(args: Args) -> Result<()> {
    let store = DynamoStore::new(&crate::aws().await?, &args.table);
    let (invoices, invalid) = open_invoices(&store).await?;
    let now = args.as_of.unwrap_or_else(Utc::now);
    let report = aging(&invoices, now, args.business_timezone);
    let text = match args.format {
        ReportFormat::Table => table(&report, invalid),
        ReportFormat::Csv => csv(&report)?,
        ReportFormat::Json => {
            let mut v = serde_json::to_value(&report)?;
            v["invalid_items"] = invalid.into();
            format!("{}\n", serde_json::to_string_pretty(&v)?)
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

/// The payments recorded under `invoice_id` (`payment#` records).
async fn payments_of(
    store: &DynamoStore,
    invoice_id: &str,
) -> Result<Vec<dunning::report::Received>> {
    let mut out = Vec::new();
    for r in store.history(invoice_id).await? {
        let text = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
        if !text("sk").starts_with(dunning::ledger::PAYMENT_PREFIX) {
            continue;
        }
        let (Ok(at), Some(currency), Ok(amount)) = (
            text("paid_at").parse::<DateTime<Utc>>(),
            dunning::money::Currency::parse(&text("currency")),
            text("amount").parse::<rust_decimal::Decimal>(),
        ) else {
            continue;
        };
        out.push(dunning::report::Received {
            invoice_id: invoice_id.to_owned(),
            at,
            amount,
            currency,
        });
    }
    Ok(out)
}

/// `statement CUST`: the customer's open invoices with their aging, the
/// total due per currency, and the payments of the last 90 days on them.
pub async fn statement(args: StatementArgs) -> Result<()> {
    let store = DynamoStore::new(&crate::aws().await?, &args.table);
    let (invoices, _) = open_invoices(&store).await?;
    let theirs: Vec<Invoice> = invoices
        .into_iter()
        .filter(|i| i.customer_id == args.customer_id)
        .collect();
    if theirs.is_empty() {
        anyhow::bail!(
            "customer {} has no open invoice in table {}",
            args.customer_id,
            args.table
        );
    }
    let mut payments = Vec::new();
    for invoice in &theirs {
        payments.extend(payments_of(&store, &invoice.id).await?);
    }
    let now = args.as_of.unwrap_or_else(Utc::now);
    let s = dunning::report::statement(
        &args.customer_id,
        &theirs,
        &payments,
        now,
        args.business_timezone,
    );
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
