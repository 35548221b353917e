//! `run`: the reminders once, as the scheduled function runs them.

use anyhow::Result;
use chrono::{DateTime, Utc};
use dunning::config::Config;
use dunning::run::{run, Deps, RunRequest};

use crate::output::{print_brief, print_summary};

#[derive(clap::Args)]
pub struct Args {
    /// The instant that decides "today" (RFC 3339); default now.
    #[arg(long)]
    pub as_of: Option<DateTime<Utc>>,
    /// Decide and render, send nothing, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON (as the Lambda returns it) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print one line: what was sent and why the rest waits.
    #[arg(long, conflicts_with = "json")]
    pub brief: bool,
    /// Treat this many seconds from now as the run's deadline, as a Lambda
    /// run does: it stops taking new work when DEADLINE_MARGIN_SECONDS (at
    /// most a third of the budget) is left, and finishes what it claimed.
    #[arg(long, value_name = "SECONDS")]
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
