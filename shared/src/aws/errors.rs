//! Provider errors: classified into transient (retry later) and permanent
//! (record once, never retry) for sends, and turned into a [`StoreError`]
//! that keeps the SDK error as its source for the store.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::ledger::ErrorClass;
use crate::ports::{SendError, StoreError};
use crate::retry::{retry, Backoff};

/// Error codes every AWS service uses for throttling and its own faults.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "Throttled",
    "TooManyRequestsException",
    "LimitExceededException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "KMSThrottling",
    "SendingPausedException",
];

/// Codes with which a provider refuses a request without processing it: a
/// send refused this way may be sent again at once without risk of a
/// duplicate (unlike a timeout or a 5xx, after which it may have gone out).
const REFUSED_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "Throttled",
    "TooManyRequestsException",
];

/// Sends with `send` and, while the provider refuses it as throttled, tries
/// again with jittered backoff: 4 calls in all. Sending clients make one SDK
/// attempt per call ([`super::sdk::single_attempt`]), so a send reaches the
/// provider at most 4 times, and only after refusals: any other failure goes
/// to the ledger, which retries it in a later run.
pub(super) async fn send_refusals_retried<F, Fut>(send: F) -> Result<String, SendError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, SendError>>,
{
    // Waits of 100-150, 200-300 and 400-600 ms.
    const REFUSALS: Backoff = Backoff {
        attempts: 4,
        base: std::time::Duration::from_millis(100),
        max: std::time::Duration::from_millis(800),
    };
    retry(
        REFUSALS,
        "a throttled send",
        |e: &SendError| REFUSED_CODES.contains(&e.code.as_str()),
        send,
    )
    .await
}

/// A store error from the SDK's: its operation, code and message, the SDK error as its source.
pub(super) fn store_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let e = classify(&err);
    StoreError {
        operation,
        code: e.code,
        message: e.message,
        source: Some(Box::new(err)),
    }
}

/// Transport failures and throttling are transient; a service error is
/// permanent unless its code is a known transient one.
pub fn classify<E, R>(err: &SdkError<E, R>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let (class, code, message) = match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown").to_owned();
            let class = if TRANSIENT_CODES.contains(&code.as_str()) {
                ErrorClass::Transient
            } else {
                ErrorClass::Permanent
            };
            // SES names the recipient in some messages: never kept whole.
            (
                class,
                code,
                crate::contact::redact(e.message().unwrap_or_default()),
            )
        }
        SdkError::TimeoutError(_) => (ErrorClass::Transient, "Timeout".into(), err.to_string()),
        SdkError::DispatchFailure(_) => (
            ErrorClass::Transient,
            "DispatchFailure".into(),
            err.to_string(),
        ),
        SdkError::ResponseError(_) => (
            ErrorClass::Transient,
            "ResponseError".into(),
            err.to_string(),
        ),
        SdkError::ConstructionFailure(_) => (
            ErrorClass::Permanent,
            "ConstructionFailure".into(),
            err.to_string(),
        ),
        _ => (ErrorClass::Transient, "Unknown".into(), err.to_string()),
    };
    SendError {
        class,
        code,
        message,
    }
}

/// The provider's message id, which a successful send must carry.
pub(super) fn require_id(id: Option<String>, provider: &str) -> Result<String, SendError> {
    id.ok_or_else(|| SendError {
        class: ErrorClass::Transient,
        code: "NoMessageId".into(),
        message: format!("{provider} accepted the message without an id"),
    })
}
