//! `dunning-run`: the scheduled reminder run. Builds its clients once, then serves invocations.

mod handler;

use dunning::config::Config;
use dunning::run::Deps;
use lambda_runtime::{service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    dunning::telemetry::init_json();
    let sdk = dunning::aws::sdk::load().await?;
    let env = dunning::aws::secrets::resolve(&sdk, |k| std::env::var(k).ok()).await?;
    let config = Config::from_lookup(|k| env.get(k))?;
    let deps = Deps::new(&sdk, config)?;
    lambda_runtime::run(service_fn(|event| handler::handle(&deps, event))).await
}
