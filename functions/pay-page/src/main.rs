//! `pay-page`: the customer's pay page. Builds its clients once (the Stripe
//! key read from Secrets Manager through `STRIPE_SECRET_ARN`), then serves a
//! Function URL (or an HTTP API, payload v2). The library does the work:
//! `dunning::pay_page`.

use chrono::Utc;
use dunning::aws::DynamoStore;
use dunning::config::PayPageConfig;
use dunning::pay_page::{PageDeps, PageRequest};
use dunning::stripe::http::StripeClient;
use lambda_http::{service_fn, Body, Error, Request, Response};

async fn handle(deps: &PageDeps<DynamoStore>, request: Request) -> Result<Response<Body>, Error> {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let answer = deps
        .handle(PageRequest {
            method: request.method().as_str(),
            path: request.uri().path(),
            query: request.uri().query(),
            origin: header("origin"),
            accept_language: header("accept-language"),
            body: request.body().as_ref(),
            now: Utc::now(),
        })
        .await;
    let mut response = Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        response = response.header(*name, value);
    }
    Ok(response.body(Body::from(answer.body))?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    dunning::telemetry::init_json();
    let sdk = dunning::aws::sdk::load().await?;
    let env = dunning::aws::secrets::resolve(&sdk, |k| std::env::var(k).ok()).await?;
    let config = PayPageConfig::from_lookup(|k| env.get(k))?;
    let store = DynamoStore::new(&sdk, &config.table_name);
    let stripe = StripeClient::new(&config.stripe_api_base, &config.stripe_secret_key)?;
    let deps = PageDeps::new(store, stripe, config);
    lambda_http::run(service_fn(|request| handle(&deps, request))).await
}
