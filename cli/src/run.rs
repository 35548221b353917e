//! `run`: the reminders once, as the scheduled function runs them.

use anyhow::Result;
use chrono::{DateTime, Utc};
use dunning::config::Config;
use dunning::run::{run, Deps, RunRequest};

use crate::output::{print_brief, print_summary};

pub struct Args {
    pub as_of: Option<DateTime<Utc>>,
    pub dry_run: bool,
    pub json: bool,
    pub brief: bool,
    pub time_budget: Option<u64>,
}

pub async fn run_once(args: Args) -> Result<()> {
    let sdk = crate::aws().await?;
    let env = dunning::aws::secrets::resolve(&sdk, |k| std::env::var(k).ok()).await?;
    let deps = Deps::new(&sdk, Config::from_lookup(|k| env.get(k))?)?;
    let run_id = format!(
        "cli-{}-{}",
        Utc::now().timestamp_nanos_opt().unwrap_or_default(),
        std::process::id()
    );
    let mut request = RunRequest::new(args.as_of.unwrap_or_else(Utc::now), run_id);
    request.dry_run = args.dry_run;
    request.deadline = args
        .time_budget
        .map(|s| std::time::Instant::now() + std::time::Duration::from_secs(s));
    // A rehearsal for another instant leaves the scheduled runs' read state alone.
    request.record_reads = args.as_of.is_none();
    let summary = run(&deps, &request).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if args.brief {
        print_brief(&summary);
    } else {
        print_summary(&summary);
    }
    Ok(())
}
