//! Logging set-up: JSON lines for Lambda (CloudWatch), compact text for the CLI.

use tracing_subscriber::EnvFilter;

/// JSON logs to stdout, level from `RUST_LOG` (default `info`).
pub fn init_json() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Human-readable logs to stderr, level from `RUST_LOG` (default `warn`).
pub fn init_text() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_target(false)
        .try_init();
}
