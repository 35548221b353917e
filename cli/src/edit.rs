//! The finance team's commands on one invoice (`pause`, `resume`,
//! `dispute`, `resolve`, `void`, `extend`, `edit`), and a customer's pause.
//! Each is idempotent (asking again says "unchanged"), waits for a reminder
//! in flight, and leaves a history record of who changed what, when and why.

use anyhow::{bail, Result};
use chrono::{NaiveDate, Utc};
use dunning::aws::DynamoStore;
pub use dunning::edit::Edit;
use dunning::edit::{EditError, Request};
use dunning::ports::{edit_invoice, Edited};

/// Who makes a change and why; the table.
#[derive(clap::Args)]
pub struct Who {
    /// Who makes the change (kept as `cli:<who>`; default admin).
    #[arg(long)]
    pub by: Option<String>,
    /// Why (kept with the change).
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(long, env = "TABLE_NAME")]
    pub table: String,
}

impl Who {
    pub fn source(&self) -> String {
        format!("cli:{}", self.by.as_deref().unwrap_or("admin"))
    }
}

/// The fields `edit` changes; an empty value removes an optional one.
#[derive(clap::Args)]
pub struct Fields {
    #[arg(long)]
    pub amount: Option<String>,
    #[arg(long)]
    pub currency: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long)]
    pub phone: Option<String>,
    /// The customer's name as reminders address them.
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub locale: Option<String>,
    #[arg(long)]
    pub timezone: Option<String>,
    #[arg(long)]
    pub pay_url: Option<String>,
    /// The channels the customer accepts (`email,sms`).
    #[arg(long)]
    pub channels: Option<String>,
}

impl Fields {
    pub fn edit(self) -> Result<Edit> {
        let fields: Vec<(String, Option<String>)> = [
            ("amount", self.amount),
            ("currency", self.currency),
            ("email", self.email),
            ("phone", self.phone),
            ("customer_name", self.name),
            ("locale", self.locale),
            ("timezone", self.timezone),
            ("pay_url", self.pay_url),
            ("channels", self.channels),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), Some(v))))
        .collect();
        if fields.is_empty() {
            bail!("nothing to edit: --amount, --currency, --email, --phone, --name, --locale, --timezone, --pay-url or --channels");
        }
        Ok(Edit::Set(fields))
    }
}

/// Pauses (`until`: a date, through that day in BUSINESS_TIMEZONE, or an
/// RFC 3339 instant) or resumes every invoice of a customer, on the
/// customer's record.
pub async fn pause_customer(
    store: &DynamoStore,
    customer_id: &str,
    until: Option<&str>,
    who: &Who,
) -> Result<()> {
    let until = until.map(instant).transpose()?;
    let args = crate::customer::SetArgs {
        pause_until: until,
        resume: until.is_none(),
        reason: who.reason.clone(),
        by: who.by.clone(),
        ..Default::default()
    };
    crate::customer::set(store, customer_id, args).await
}

/// A date (the end of that day in BUSINESS_TIMEZONE, UTC when unset) or an RFC 3339 instant.
fn instant(text: &str) -> Result<chrono::DateTime<Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let Ok(date) = text.parse::<NaiveDate>() else {
        bail!("--until {text:?} is neither YYYY-MM-DD nor an RFC 3339 instant");
    };
    let tz: chrono_tz::Tz = match std::env::var("BUSINESS_TIMEZONE") {
        Ok(name) => name
            .parse()
            .map_err(|_| anyhow::anyhow!("BUSINESS_TIMEZONE {name:?} is not an IANA zone"))?,
        Err(_) => chrono_tz::UTC,
    };
    date.succ_opt()
        .and_then(|d| {
            d.and_time(chrono::NaiveTime::MIN)
                .and_local_timezone(tz)
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| anyhow::anyhow!("--until {text:?} has no end of day in {tz}"))
}

/// Applies `edit` to `invoice_id` and says what it did.
pub async fn apply(store: &DynamoStore, invoice_id: &str, edit: Edit, who: &Who) -> Result<()> {
    if matches!(edit, Edit::Dispute) && who.reason.as_deref().is_none_or(str::is_empty) {
        bail!("dispute needs --reason (what the customer disputes)");
    }
    let request = Request {
        edit,
        by: who.source(),
        reason: who.reason.clone(),
        command: None,
    };
    let command = request.edit.command();
    match edit_invoice(store, invoice_id, &request, Utc::now).await {
        Ok(Edited::Applied { plan, .. }) => {
            println!("{command} {invoice_id}: changed ({})", who.source());
            for change in &plan.changes {
                println!("  {}", change.masked());
            }
            if plan.set.iter().any(|(k, _)| k == dunning::edit::CYCLE) {
                println!("  the ladder starts again for the new due date; what was sent stays in history");
            }
            Ok(())
        }
        Ok(Edited::Unchanged) => {
            println!("{command} {invoice_id}: unchanged (already so)");
            Ok(())
        }
        Err(EditError::UnknownInvoice(id)) => {
            bail!("no invoice {id} in table {}", store.table())
        }
        Err(err) => bail!("{command} {invoice_id}: {err}"),
    }
}
