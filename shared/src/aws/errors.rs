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
