//! HTTP in and out: the request's method, headers and raw body (lambda_http
//! has already decoded a base64-encoded Function URL body) go to the library;
//! its answer becomes a JSON response.

use chrono::Utc;
use dunning::aws::{DynamoStore, SesMailer, SnsPublisher};
use dunning::config::WebhookConfig;
use dunning::webhook;
use lambda_http::{Body, Error, Request, Response};

pub struct Deps {
    pub store: DynamoStore,
    /// Present when receipts are enabled.
    pub mailer: Option<SesMailer>,
    /// Present when there is an escalation topic (opened disputes).
    pub publisher: Option<SnsPublisher>,
    pub config: WebhookConfig,
}

pub async fn handle(deps: &Deps, request: Request) -> Result<Response<Body>, Error> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let body: &[u8] = request.body().as_ref();
    let answer = webhook::handle(
        &deps.store,
        &webhook::Outbound {
            mailer: deps.mailer.as_ref(),
            publisher: deps.publisher.as_ref(),
        },
        &deps.config,
        request.method().as_str(),
        header,
        body,
        Utc::now(),
    )
    .await;
    // A log line when refused, and one Embedded Metric Format line per
    // answer (CloudWatch makes the metrics).
    println!(
        "{}",
        webhook::observe(&answer, body, &deps.config.metric_namespace, Utc::now())
    );
    Ok(Response::builder()
        .status(answer.status)
        .header("content-type", "application/json")
        .body(Body::from(answer.body.to_string()))?)
}

#[cfg(test)]
mod tests {
    use lambda_http::request::from_str;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn a_base64_function_url_body_reaches_the_handler_as_the_raw_bytes() {
        let request = from_str(&fixture("function-url-base64.json")).unwrap();
        let body: &[u8] = request.body().as_ref();
        assert_eq!(body, br#"{"id":"pay_b64","invoice_id":"INV-1","amount":"10.00","currency":"USD","paid_at":"2026-11-24T10:00:00Z"}"#);
        assert_eq!(
            request.headers().get("dunning-signature").unwrap(),
            "t=1795515300,v1=00"
        );
        assert_eq!(request.method(), "POST");
    }
}
