//! `customer show|set`: a customer's record (opt-outs, suppressed addresses,
//! pause), each mark with its source and instant. Every change is
//! idempotent: setting what is already set changes nothing and says so.

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use dunning::aws::DynamoStore;
use dunning::channel::Channel;
use dunning::customer::{Change, CustomerRecord, Mark};

/// What `customer set` was asked to change.
#[derive(Debug, Default)]
pub struct SetArgs {
    pub opt_out: Vec<String>,
    pub opt_in: Vec<String>,
    pub suppress: Vec<String>,
    pub unsuppress: Vec<String>,
    pub pause_until: Option<DateTime<Utc>>,
    pub resume: bool,
    pub reason: Option<String>,
    pub by: Option<String>,
    /// The language and time zone invoices without their own inherit ("" clears).
    pub locale: Option<String>,
    pub timezone: Option<String>,
    /// The e-mail addresses (primary first; "" clears), and phone numbers.
    pub emails: Option<Vec<String>>,
    pub phones: Option<Vec<String>>,
}

fn channel(text: &str) -> Result<Channel> {
    Channel::parse(text).ok_or_else(|| anyhow::anyhow!("no channel {text:?}: email or sms"))
}

fn print(customer_id: &str, record: &CustomerRecord) {
    println!("customer {customer_id} (version {})", record.version);
    for line in lines(record) {
        println!("  {line}");
    }
}

/// What a record says, one line each: opt-outs and suppressions with their
/// source and instant (addresses masked), the pause, the last reply.
pub fn lines(record: &CustomerRecord) -> Vec<String> {
    let mut out = Vec::new();
    let line = |what: &str, key: &str, m: &Mark| {
        let reason = m
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        format!(
            "{what} {key}: {} at {}{reason}",
            m.source,
            m.at.to_rfc3339()
        )
    };
    for (c, m) in &record.opt_outs {
        out.push(line("opted out of", c, m));
    }
    for (address, m) in &record.suppressed {
        out.push(line(
            "suppressed",
            &dunning::contact::redact(&address.to_lowercase()),
            m,
        ));
    }
    out.push(match (record.paused_until, &record.paused_by) {
        (Some(t), Some(m)) => line("paused until", &t.to_rfc3339(), m),
        (Some(t), None) => format!("paused until {}", t.to_rfc3339()),
        (None, _) => "not paused".to_owned(),
    });
    if let Some(t) = record.replied_at {
        out.push(format!("customer replied at {}", t.to_rfc3339()));
    }
    if record.opt_outs.is_empty() {
        out.push("takes email and SMS".to_owned());
    }
    // What invoices without their own inherit; addresses and numbers masked.
    for (what, value) in [("locale", &record.locale), ("time zone", &record.timezone)] {
        if let Some(v) = value {
            out.push(format!("{what} {v} (for invoices without one)"));
        }
    }
    for (what, list) in [("e-mail", &record.emails), ("phone", &record.phones)] {
        for (i, v) in list.iter().enumerate() {
            let role = if i == 0 { "primary" } else { "copy" };
            out.push(format!(
                "{what} {} ({role}, for invoices without one)",
                dunning::contact::redact(v)
            ));
        }
    }
    out
}

pub async fn show(store: &DynamoStore, customer_id: &str, json: bool) -> Result<()> {
    let record = store.customer(customer_id).await?.unwrap_or_default();
    if json {
        println!("{}", serde_json::to_string(&record)?);
    } else {
        print(customer_id, &record);
    }
    Ok(())
}

pub async fn set(store: &DynamoStore, customer_id: &str, args: SetArgs) -> Result<()> {
    let now = Utc::now();
    let mark = || Mark {
        source: format!("cli:{}", args.by.as_deref().unwrap_or("admin")),
        at: now,
        reason: args.reason.clone(),
    };
    let mut changes = Vec::new();
    for c in &args.opt_out {
        changes.push(Change::OptOut {
            channel: channel(c)?,
            mark: mark(),
        });
    }
    for c in &args.opt_in {
        changes.push(Change::OptIn {
            channel: channel(c)?,
        });
    }
    for a in &args.suppress {
        if !a.contains('@') {
            bail!("--suppress takes an e-mail address");
        }
        changes.push(Change::Suppress {
            address: a.clone(),
            mark: mark(),
        });
    }
    for a in &args.unsuppress {
        changes.push(Change::Unsuppress { address: a.clone() });
    }
    if let Some(until) = args.pause_until {
        changes.push(Change::Pause {
            until,
            mark: mark(),
        });
    }
    if args.resume {
        changes.push(Change::Resume);
    }
    let setting = |r: Result<Change, dunning::customer::SettingError>, flag: &str| {
        r.map_err(|e| anyhow::anyhow!("{flag}: {e}"))
    };
    if let Some(l) = &args.locale {
        changes.push(setting(Change::locale(l), "--locale")?);
    }
    if let Some(t) = &args.timezone {
        changes.push(setting(Change::timezone(t), "--timezone")?);
    }
    if let Some(list) = &args.emails {
        changes.push(setting(Change::emails(list), "--email")?);
    }
    if let Some(list) = &args.phones {
        changes.push(setting(Change::phones(list), "--phone")?);
    }
    if changes.is_empty() {
        bail!("nothing to set: --opt-out, --opt-in, --suppress, --unsuppress, --pause-until, --resume, --locale, --timezone, --email or --phone");
    }
    let mut record = None;
    for change in &changes {
        let (after, changed) = store.change_customer(customer_id, change).await?;
        let what = match change {
            Change::OptOut { channel, .. } => format!("opt out of {channel}"),
            Change::OptIn { channel } => format!("opt in to {channel}"),
            Change::Suppress { address, .. } => {
                format!(
                    "suppress {}",
                    dunning::contact::redact(&address.to_lowercase())
                )
            }
            Change::Unsuppress { address } => {
                format!(
                    "unsuppress {}",
                    dunning::contact::redact(&address.to_lowercase())
                )
            }
            Change::Pause { until, .. } => format!("pause until {}", until.to_rfc3339()),
            Change::Resume => "resume".to_owned(),
            Change::Replied { at, .. } => format!("replied at {}", at.to_rfc3339()),
            Change::Locale(l) => format!("locale {}", l.as_deref().unwrap_or("(none)")),
            Change::Timezone(t) => format!("time zone {}", t.as_deref().unwrap_or("(none)")),
            Change::Emails(list) => format!("{} e-mail address(es)", list.len()),
            Change::Phones(list) => format!("{} phone number(s)", list.len()),
        };
        println!(
            "{what}: {}",
            if changed {
                "changed"
            } else {
                "unchanged (already so)"
            }
        );
        record = Some(after);
    }
    if let Some(record) = record {
        print(customer_id, &record);
    }
    Ok(())
}
