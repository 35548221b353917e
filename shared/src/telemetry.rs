//! Logging set-up: JSON lines for Lambda (CloudWatch), compact text for the
//! CLI. With `DUNNING_LOG_CAPTURE` naming a directory, every line at `info`
//! and above is also written, as JSON, to `<dir>/<program>-<pid>.log`: the
//! test suite's check that no log line carries personal data
//! (`scripts/check-logs.py`) reads them. Unset in production.

use std::sync::Mutex;

use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The variable naming the capture directory.
pub const CAPTURE_VAR: &str = "DUNNING_LOG_CAPTURE";

/// The capture layer, when `DUNNING_LOG_CAPTURE` is set (and writable).
fn capture<S>() -> Option<impl Layer<S>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let dir = std::path::PathBuf::from(std::env::var_os(CAPTURE_VAR)?);
    std::fs::create_dir_all(&dir).ok()?;
    let program = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "process".into());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{program}-{}.log", std::process::id())))
        .ok()?;
    Some(
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(Mutex::new(file))
            .with_filter(EnvFilter::new("info")),
    )
}

fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

/// JSON logs to stdout, level from `RUST_LOG` (default `info`).
pub fn init_json() {
    let console = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .with_writer(BoxMakeWriter::new(std::io::stdout))
        .with_filter(filter("info"));
    let _ = tracing_subscriber::registry()
        .with(console)
        .with(capture())
        .try_init();
}

/// Human-readable logs to stderr, level from `RUST_LOG` (default `warn`);
/// colours only when standard error is a terminal (a file or a pipe gets
/// plain text).
pub fn init_text() {
    use std::io::IsTerminal;
    let console = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(filter("warn"));
    let _ = tracing_subscriber::registry()
        .with(console)
        .with(capture())
        .try_init();
}

/// Only the capture (nothing on the console): for test processes, which
/// run the functions in-process. Does nothing without `DUNNING_LOG_CAPTURE`.
pub fn init_capture_only() {
    if std::env::var_os(CAPTURE_VAR).is_some() {
        let _ = tracing_subscriber::registry().with(capture()).try_init();
    }
}
