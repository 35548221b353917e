//! Stripe's REST API over HTTPS: the two calls the pay page makes. It uses
//! the hyper, hyper-rustls and rustls (aws-lc-rs) the AWS SDK already
//! builds, so the function carries one HTTP/TLS stack. The API base is a
//! setting (`STRIPE_API_BASE`), so tests point it at localstripe.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use super::{IntentRequest, PaymentIntent, StripeError};

/// How long one Stripe request may take. A tap makes up to five (retrieve,
/// cancel, create, and for a tap that lost a race, cancel and retrieve); the
/// page also bounds the whole at 11 s, within the function's 15 s.
const TIMEOUT: Duration = Duration::from_secs(3);

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// A client for one Stripe account (its secret key).
#[derive(Clone)]
pub struct StripeClient {
    http: Client<Https, Full<Bytes>>,
    base: String,
    secret_key: String,
}

/// Never prints the key.
impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl StripeClient {
    /// `base` is `https://api.stripe.com` in production; `http://` is
    /// accepted for an emulator on loopback.
    pub fn new(base: &str, secret_key: &str) -> Result<Self, StripeError> {
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| StripeError::network(format!("TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            http: Client::builder(TokioExecutor::new()).build(https),
            base: base.trim_end_matches('/').to_owned(),
            secret_key: secret_key.to_owned(),
        })
    }

    /// Creates the intent, or gets the one Stripe already made for the same
    /// idempotency key.
    pub async fn create_payment_intent(
        &self,
        req: &IntentRequest,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<PaymentIntent, StripeError> {
        let body = form_encode(&req.form());
        let key = req.idempotency_key(now);
        self.call(
            http::Method::POST,
            "/v1/payment_intents",
            Some(body),
            Some(key),
        )
        .await
    }

    pub async fn retrieve_payment_intent(&self, id: &str) -> Result<PaymentIntent, StripeError> {
        check_id(id)?;
        let path = format!("/v1/payment_intents/{id}");
        self.call(http::Method::GET, &path, None, None).await
    }

    /// Cancels an intent nobody paid, so that it can never be paid later.
    pub async fn cancel_payment_intent(&self, id: &str) -> Result<PaymentIntent, StripeError> {
        check_id(id)?;
        // No idempotency key: canceling twice is harmless, and a key would
        // replay a refusal (an intent paid meanwhile) for 24 hours.
        let path = format!("/v1/payment_intents/{id}/cancel");
        self.call(http::Method::POST, &path, Some(String::new()), None)
            .await
    }

    async fn call(
        &self,
        method: http::Method,
        path: &str,
        form: Option<String>,
        idempotency_key: Option<String>,
    ) -> Result<PaymentIntent, StripeError> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            // No Stripe-Version: the account's own. The fields read from a
            // PaymentIntent (id, client_secret, status, amount, currency) are
            // the same in every API version that has PaymentIntents.
            .header("authorization", format!("Bearer {}", self.secret_key));
        if form.is_some() {
            builder = builder.header("content-type", "application/x-www-form-urlencoded");
        }
        if let Some(key) = idempotency_key {
            builder = builder.header("idempotency-key", key);
        }
        let body = form.unwrap_or_default();
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| StripeError::network(e.to_string()))?;
        let answer = tokio::time::timeout(TIMEOUT, async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| StripeError::network(e.to_string()))?;
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| StripeError::network(e.to_string()))?
                .to_bytes();
            Ok::<_, StripeError>((status, bytes))
        })
        .await
        .map_err(|_| StripeError::network("timed out"))??;
        let (status, bytes) = answer;
        if !(200..300).contains(&status) {
            return Err(StripeError::from_answer(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| StripeError {
            status,
            code: "unreadable_answer".into(),
            message: e.to_string(),
            transient: false,
        })
    }
}

/// An intent id is `pi_` and letters, digits and `_` (it goes into a path).
fn check_id(id: &str) -> Result<(), StripeError> {
    if id.starts_with("pi_") && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(())
    } else {
        Err(StripeError::from_answer(400, b"not a PaymentIntent id"))
    }
}

/// `application/x-www-form-urlencoded`, as Stripe's API takes it.
fn form_encode(pairs: &[(String, String)]) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    #[test]
    fn forms_are_percent_encoded() {
        let got = super::form_encode(&[
            ("metadata[invoice_id]".into(), "INV 1&2".into()),
            ("description".into(), "Acme — 请款".into()),
        ]);
        assert_eq!(
            got,
            "metadata%5Binvoice%5Fid%5D=INV%201%262&description=Acme%20%E2%80%94%20%E8%AF%B7%E6%AC%BE"
        );
    }
}
