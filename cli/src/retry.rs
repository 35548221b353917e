//! `retry`: after a fix, puts failed ledger records of one step and channel
//! back to be sent by the next run ([`dunning::aws::requeue`]), printing
//! what it changes (or, with `--dry-run`, what it would). Idempotent: a
//! record put back is no longer `failed`, so a second call finds nothing.

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use dunning::aws::requeue::{PutBack, RetryFilter};
use dunning::aws::DynamoStore;
use dunning::channel::Channel;
use dunning::policy::Action;

pub struct RetryArgs {
    pub step: String,
    pub channel: String,
    pub since: DateTime<Utc>,
    pub reason: Option<String>,
    pub dry_run: bool,
}

pub async fn retry(store: &DynamoStore, args: RetryArgs) -> Result<()> {
    let policy = crate::policy()?;
    let names: Vec<&str> = policy.steps().iter().map(|s| s.name.as_str()).collect();
    let Some(step) = policy.steps().iter().find(|s| s.name == args.step) else {
        bail!(
            "no step {:?} in the policy; its steps: {}",
            args.step,
            names.join(", ")
        );
    };
    let Some(channel) = Channel::parse(&args.channel) else {
        bail!("no channel {:?}: email or sms", args.channel);
    };
    if step.action != Action::Remind || !step.channels.contains(&channel) {
        bail!("step {} sends no {channel} reminder", step.name);
    }
    let now = Utc::now();
    if args.since > now {
        bail!("--since {} is in the future", args.since.to_rfc3339());
    }
    let filter = RetryFilter {
        step: step.name.clone(),
        channel,
        since: args.since,
        reason: args.reason.clone(),
    };
    let records = store.failed_records(&filter).await?;
    if records.is_empty() {
        println!(
            "no failed {}/{channel} records since {}{}",
            step.name,
            args.since.to_rfc3339(),
            args.reason
                .as_deref()
                .map(|r| format!(" with reason {r}"))
                .unwrap_or_default()
        );
        return Ok(());
    }
    let mut counts: std::collections::BTreeMap<&str, u64> = Default::default();
    for record in &records {
        let done = if args.dry_run {
            store.put_back_check(record, step.offset_days).await?
        } else {
            store
                .put_back(record, &filter, step.offset_days, now)
                .await?
        };
        let what = match (done, args.dry_run) {
            (PutBack::Requeued, true) => "would be put back",
            (other, _) => other.as_str(),
        };
        *counts.entry(what).or_default() += 1;
        println!(
            "{:<24} {}/{channel} failed {} {} ({}): {what}",
            record.invoice_id, step.name, record.failed_at, record.error_code, record.error_class
        );
    }
    let totals: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    println!(
        "{}{} of {} failed records",
        if args.dry_run { "dry run: " } else { "" },
        totals.join(", "),
        records.len()
    );
    if !args.dry_run && counts.contains_key(PutBack::Requeued.as_str()) {
        // What was put back may lie outside the next band read: the next run reads it all.
        store.request_full_read(now).await?;
        println!("the next run reads the whole due window and sends them");
    }
    Ok(())
}
