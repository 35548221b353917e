//! One reminder run in a process of its own, configured from the environment
//! as the Lambda is: the reliability suite SIGKILLs it at random points.
//! Usage: `run-once <as_of RFC 3339> [run_id]`; prints `running` when the run
//! begins, then the summary as JSON.

use anyhow::Context;
use dunning::config::Config;
use dunning::run::{run, Deps, RunRequest};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    dunning::telemetry::init_text();
    let mut args = std::env::args().skip(1);
    let as_of = args
        .next()
        .context("usage: run-once <as_of> [run_id]")?
        .parse()
        .context("as_of must be an RFC 3339 instant")?;
    let run_id = args
        .next()
        .unwrap_or_else(|| format!("run-once-{}", std::process::id()));
    let sdk = dunning::aws::sdk::load().await?;
    let deps = Deps::new(&sdk, Config::from_env()?)?;
    // The suite times its kill from this line: start-up is over, the run begins.
    println!("running");
    let summary = run(&deps, &RunRequest::new(as_of, run_id)).await?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
