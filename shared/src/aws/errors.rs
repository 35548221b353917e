//! Classifying provider errors into transient (retry later) and permanent
//! (record once, never retry).

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::ledger::ErrorClass;

/// A failed send: its class, the provider's error code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({}): {message}", class.as_str())]
pub struct SendError {
    pub class: ErrorClass,
    pub code: String,
    pub message: String,
}

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
/// again up to 3 more times with exponential backoff and jitter. Sending
/// clients make one attempt per call (see [`super::sdk::single_attempt`]), so
/// nothing else is ever sent twice within a run: any other failure goes to the
/// ledger, which retries it in a later run.
pub(super) async fn send_refusals_retried<F, Fut>(mut send: F) -> Result<String, SendError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, SendError>>,
{
    let mut attempt = 0u32;
    loop {
        match send().await {
            Err(err) if attempt < 3 && REFUSED_CODES.contains(&err.code.as_str()) => {
                attempt += 1;
                let cap_ms = 100u64 << attempt;
                let jitter = u64::from(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                        .subsec_nanos(),
                ) % cap_ms;
                tokio::time::sleep(std::time::Duration::from_millis(cap_ms / 2 + jitter / 2)).await;
            }
            result => return result,
        }
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
            (class, code, e.message().unwrap_or_default().to_owned())
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
