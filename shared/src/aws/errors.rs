//! Provider errors: classified for sends into transient (retried later),
//! recipient-permanent (recorded once, never retried) and systemic (the
//! account, permissions, configuration or a template: the channel stops for
//! the run and the message waits), and turned into a [`StoreError`] that
//! keeps the SDK error as its source for the store.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::failure::RENDER_ERROR;
use crate::ledger::ErrorClass;
use crate::ports::{SendError, StoreError};
use crate::retry::{retry, Backoff};

/// The error codes we know, by kind. `docs/configuration.md` shows them
/// with the source each was taken from; a test keeps the two the same.
pub const KNOWN_CODES: &[(&str, ErrorClass)] = &[
    // Throttling and the provider's own faults, every service.
    ("Throttling", ErrorClass::Transient),
    ("ThrottlingException", ErrorClass::Transient),
    ("ThrottledException", ErrorClass::Transient),
    ("Throttled", ErrorClass::Transient),
    ("TooManyRequestsException", ErrorClass::Transient),
    ("RequestLimitExceeded", ErrorClass::Transient),
    ("ServiceUnavailable", ErrorClass::Transient),
    ("ServiceUnavailableException", ErrorClass::Transient),
    ("InternalFailure", ErrorClass::Transient),
    ("InternalError", ErrorClass::Transient),
    ("InternalServerError", ErrorClass::Transient),
    ("InternalServiceErrorException", ErrorClass::Transient),
    ("RequestTimeout", ErrorClass::Transient),
    ("RequestTimeoutException", ErrorClass::Transient),
    ("KMSThrottling", ErrorClass::Transient),
    ("KMSThrottlingException", ErrorClass::Transient),
    // Ours: the pay link could not be stored.
    ("pay_link_error", ErrorClass::Transient),
    ("lease_expiring", ErrorClass::Systemic),
    // Permissions and credentials, every service.
    ("AccessDenied", ErrorClass::Systemic),
    ("AccessDeniedException", ErrorClass::Systemic),
    ("AuthorizationError", ErrorClass::Systemic),
    ("UnrecognizedClientException", ErrorClass::Systemic),
    ("InvalidClientTokenId", ErrorClass::Systemic),
    ("SignatureDoesNotMatch", ErrorClass::Systemic),
    ("IncompleteSignature", ErrorClass::Systemic),
    ("InvalidSignatureException", ErrorClass::Systemic),
    ("MissingAuthenticationToken", ErrorClass::Systemic),
    ("ExpiredToken", ErrorClass::Systemic),
    ("ExpiredTokenException", ErrorClass::Systemic),
    ("InvalidSecurity", ErrorClass::Systemic),
    ("OptInRequired", ErrorClass::Systemic),
    // SES v2 SendEmail: the account, its quota, the domain, the configuration set.
    ("AccountSuspendedException", ErrorClass::Systemic),
    ("SendingPausedException", ErrorClass::Systemic),
    ("MailFromDomainNotVerifiedException", ErrorClass::Systemic),
    ("LimitExceededException", ErrorClass::Systemic),
    ("NotFoundException", ErrorClass::Systemic),
    // SNS Publish: the topic, the encryption key.
    ("NotFound", ErrorClass::Systemic),
    ("KMSAccessDenied", ErrorClass::Systemic),
    ("KMSAccessDeniedException", ErrorClass::Systemic),
    ("KMSDisabled", ErrorClass::Systemic),
    ("KMSDisabledException", ErrorClass::Systemic),
    ("KMSInvalidState", ErrorClass::Systemic),
    ("KMSInvalidStateException", ErrorClass::Systemic),
    ("KMSNotFound", ErrorClass::Systemic),
    ("KMSNotFoundException", ErrorClass::Systemic),
    ("KMSOptInRequired", ErrorClass::Systemic),
    ("PlatformApplicationDisabled", ErrorClass::Systemic),
    // Ours: a request we could not build, a template that does not render.
    ("ConstructionFailure", ErrorClass::Systemic),
    ("InvalidContent", ErrorClass::Systemic),
    ("InvalidAttribute", ErrorClass::Systemic),
    (RENDER_ERROR, ErrorClass::Systemic),
    // The recipient: SNS's disabled endpoint; the codes below that depend on the message.
    ("EndpointDisabled", ErrorClass::Permanent),
    // SNS Publish to a number that replied STOP: the customer opts out of SMS.
    ("OptedOut", ErrorClass::Permanent),
];

/// Codes whose kind depends on what the message says: (code, words that make
/// it recipient-permanent, else systemic). SES's sandbox refuses unverified
/// recipients with `MessageRejected` "Email address is not verified", which
/// is the account's state, not the address's.
pub const BY_MESSAGE: &[(&str, &str, ErrorClass)] = &[
    ("MessageRejected", "not verified", ErrorClass::Systemic),
    ("MessageRejected", "", ErrorClass::Permanent),
    ("BadRequestException", "address", ErrorClass::Permanent),
    ("BadRequestException", "domain", ErrorClass::Permanent),
    ("BadRequestException", "", ErrorClass::Systemic),
    ("InvalidParameter", "PhoneNumber", ErrorClass::Permanent),
    ("InvalidParameter", "", ErrorClass::Systemic),
    (
        "InvalidParameterValue",
        "PhoneNumber",
        ErrorClass::Permanent,
    ),
    ("InvalidParameterValue", "", ErrorClass::Systemic),
    (
        "ParameterValueInvalid",
        "PhoneNumber",
        ErrorClass::Permanent,
    ),
    ("ParameterValueInvalid", "", ErrorClass::Systemic),
    ("ValidationException", "PhoneNumber", ErrorClass::Permanent),
    ("ValidationException", "", ErrorClass::Systemic),
];

/// The kind of a provider's error code and message: the known codes, then
/// the message rules; a code we do not know is transient (retried with
/// backoff, [`crate::ledger::MAX_ATTEMPTS`] attempts), since it is neither
/// known to be the recipient's nor known to stop everyone's messages.
pub fn kind_of(code: &str, message: &str) -> ErrorClass {
    if let Some((_, kind)) = KNOWN_CODES.iter().find(|(c, _)| *c == code) {
        return *kind;
    }
    let lower = message.to_ascii_lowercase();
    BY_MESSAGE
        .iter()
        .find(|(c, words, _)| *c == code && lower.contains(&words.to_ascii_lowercase()))
        .map_or(ErrorClass::Transient, |(_, _, kind)| *kind)
}

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

/// A send's calls while the provider refuses it as throttled: waits of
/// 100-150, 200-300 and 400-600 ms between 4 calls.
pub(super) const REFUSALS: Backoff = Backoff {
    attempts: 4,
    base: std::time::Duration::from_millis(100),
    max: std::time::Duration::from_millis(800),
};

/// The longest a send can take before the provider's last answer: every
/// call of [`send_refusals_retried`] up to `attempt_timeout`, plus the waits.
pub fn send_budget(attempt_timeout: std::time::Duration) -> std::time::Duration {
    attempt_timeout * REFUSALS.attempts + std::time::Duration::from_millis(150 + 300 + 600)
}

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

/// Transport failures are transient; a service error is of its code's kind
/// ([`kind_of`]); a request the SDK could not build is systemic.
pub fn classify<E, R>(err: &SdkError<E, R>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let (class, code, message) = match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown").to_owned();
            let message = e.message().unwrap_or_default();
            // SES names the recipient in some messages: never kept whole.
            (
                kind_of(&code, message),
                code,
                crate::contact::redact(message),
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
            ErrorClass::Systemic,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_is_told_apart_by_its_code_and_message() {
        use ErrorClass::*;
        let cases = [
            (
                "AccessDeniedException",
                "User is not authorized to perform ses:SendEmail",
                Systemic,
            ),
            (
                "AuthorizationError",
                "not authorized to perform SNS:Publish",
                Systemic,
            ),
            ("SendingPausedException", "sending paused", Systemic),
            (
                "NotFoundException",
                "Configuration set <x> does not exist.",
                Systemic,
            ),
            ("KMSDisabledException", "key disabled", Systemic),
            (
                "MessageRejected",
                "Email address is not verified. The following identities failed the check",
                Systemic,
            ),
            ("MessageRejected", "Email address rejected", Permanent),
            ("BadRequestException", "Illegal address", Permanent),
            ("BadRequestException", "Tags must not contain '='", Systemic),
            (
                "InvalidParameter",
                "Invalid parameter: PhoneNumber Reason: +1555 is not valid",
                Permanent,
            ),
            ("InvalidParameter", "Invalid parameter: TopicArn", Systemic),
            ("TooManyRequestsException", "slow down", Transient),
            ("SomethingNew", "never seen", Transient),
            (RENDER_ERROR, "undefined value", Systemic),
        ];
        for (code, message, kind) in cases {
            assert_eq!(kind_of(code, message), kind, "{code}: {message}");
        }
    }

    #[test]
    fn every_code_has_one_kind_and_every_refused_code_is_transient() {
        let mut seen = std::collections::BTreeSet::new();
        for (code, _) in KNOWN_CODES {
            assert!(seen.insert(*code), "{code} listed twice");
            assert!(
                !BY_MESSAGE.iter().any(|(c, _, _)| c == code),
                "{code} in both tables"
            );
        }
        for code in REFUSED_CODES {
            assert_eq!(kind_of(code, ""), ErrorClass::Transient, "{code}");
        }
        // Each message rule ends with its code's fallback.
        for (code, _, _) in BY_MESSAGE {
            assert!(
                BY_MESSAGE.iter().any(|(c, w, _)| c == code && w.is_empty()),
                "{code}"
            );
        }
    }

    /// `docs/configuration.md` shows every code with the kind the code gives it.
    #[test]
    fn the_documented_table_is_the_code_s() {
        let doc = include_str!("../../../docs/configuration.md");
        let name = |k: ErrorClass| match k {
            ErrorClass::Transient => "transient",
            ErrorClass::Permanent => "recipient",
            ErrorClass::Systemic => "systemic",
        };
        let rows: Vec<&str> = doc.lines().filter(|l| l.starts_with("| `")).collect();
        for (code, kind) in KNOWN_CODES {
            let row = format!("| `{code}` | | {} |", name(*kind));
            assert!(rows.iter().any(|r| r.starts_with(&row)), "{row} missing");
        }
        for (code, words, kind) in BY_MESSAGE {
            let when = if words.is_empty() {
                "anything else".to_owned()
            } else {
                format!("says \"{words}\"")
            };
            let row = format!("| `{code}` | {when} | {} |", name(*kind));
            assert!(rows.iter().any(|r| r.starts_with(&row)), "{row} missing");
        }
    }
}
