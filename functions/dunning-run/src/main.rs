//! `dunning-run`: the scheduled reminder run. Builds its clients once, then serves invocations.

mod handler;

use dunning::config::Config;
use dunning::run::Deps;
use lambda_runtime::{service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    dunning::telemetry::init_json();
    let mut config = Config::from_env()?;
    let sdk = dunning::aws::sdk::load().await;
    config.load_secrets(&sdk).await?;
    let deps = Deps::new(&sdk, config)?;
    lambda_runtime::run(service_fn(|event| handler::handle(&deps, event))).await
}
