//! The failures adapters report, kept apart so that every module can name
//! them without importing the ports: a store operation that failed
//! ([`StoreError`], the provider's error kept as its source) and a send that
//! failed ([`SendError`], with its class).

use crate::ledger::ErrorClass;

/// A store operation that failed. The code and message are the provider's;
/// the provider's own error stays available as the source.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {code}: {message}")]
pub struct StoreError {
    /// The operation, as the provider names it (`Query`, `TransactWriteItems`, ...).
    pub operation: &'static str,
    pub code: String,
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// An error raised before anything was sent (a request that could not be built).
    pub fn local(operation: &'static str, message: impl Into<String>) -> Self {
        Self {
            operation,
            code: "Local".into(),
            message: message.into(),
            source: None,
        }
    }
}

/// The code of a template that does not render: it stops that template for
/// the rest of the run, not the channel ([`crate::run`]), and is systemic.
pub const RENDER_ERROR: &str = "render_error";

/// A failed send: its class, the provider's error code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({}): {message}", class.as_str())]
pub struct SendError {
    pub class: ErrorClass,
    pub code: String,
    pub message: String,
}

impl SendError {
    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Permanent,
            code: code.into(),
            message: message.into(),
        }
    }

    /// The account, the permissions, the configuration or a template is wrong.
    pub fn systemic(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Systemic,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn transient(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Transient,
            code: code.into(),
            message: message.into(),
        }
    }
}
