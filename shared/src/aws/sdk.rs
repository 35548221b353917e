//! The one SDK configuration every binary uses: the standard retry mode
//! (exponential backoff with full jitter, throttling and transport errors
//! retried) and timeouts, so a hung connection costs seconds rather than the
//! run's whole time budget.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};

/// Attempts per request, including the first (`AWS_MAX_ATTEMPTS`).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;
/// Time allowed for one attempt (`SDK_ATTEMPT_TIMEOUT_MS`).
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Retry and timeout settings, from the environment or the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdkSettings {
    pub max_attempts: u32,
    pub attempt_timeout: Duration,
}

impl Default for SdkSettings {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
        }
    }
}

impl SdkSettings {
    /// `AWS_MAX_ATTEMPTS` (1-10) and `SDK_ATTEMPT_TIMEOUT_MS` (100-60000);
    /// an absent or out-of-range value keeps the default.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let number = |name: &str| get(name).and_then(|v| v.trim().parse::<u64>().ok());
        let default = Self::default();
        Self {
            max_attempts: number("AWS_MAX_ATTEMPTS")
                .filter(|n| (1..=10).contains(n))
                .map_or(default.max_attempts, |n| n as u32),
            attempt_timeout: number("SDK_ATTEMPT_TIMEOUT_MS")
                .filter(|n| (100..=60_000).contains(n))
                .map_or(default.attempt_timeout, Duration::from_millis),
        }
    }

    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Applies the settings to a loader (tests add their endpoint and region).
    pub fn apply(self, loader: ConfigLoader) -> ConfigLoader {
        let retry = RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_secs(5));
        // Every attempt may time out; the backoffs between them add a few seconds.
        let operation = self.attempt_timeout * self.max_attempts + Duration::from_secs(5);
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(self.attempt_timeout)
            .operation_timeout(operation)
            .build();
        loader.retry_config(retry).timeout_config(timeouts)
    }
}

/// The configuration for clients that send messages (SES, SNS): one attempt
/// per call. A send whose answer timed out or failed with a 5xx may have gone
/// out; retrying it at once could send it twice. The ledger records such a
/// failure and a later run retries it; throttling refusals are retried by
/// the sender itself.
pub fn single_attempt(sdk: &SdkConfig) -> SdkConfig {
    sdk.to_builder()
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .build()
}

/// The SDK configuration from the environment (region, credentials,
/// `AWS_ENDPOINT_URL`) with our retry and timeout settings.
pub async fn load() -> SdkConfig {
    SdkSettings::from_env()
        .apply(aws_config::defaults(BehaviorVersion::latest()))
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_the_environment_within_bounds() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(SdkSettings::from_lookup(env(&[])), SdkSettings::default());
        let set = SdkSettings::from_lookup(env(&[
            ("AWS_MAX_ATTEMPTS", "6"),
            ("SDK_ATTEMPT_TIMEOUT_MS", "800"),
        ]));
        assert_eq!(set.max_attempts, 6);
        assert_eq!(set.attempt_timeout, Duration::from_millis(800));
        let out_of_range = SdkSettings::from_lookup(env(&[
            ("AWS_MAX_ATTEMPTS", "0"),
            ("SDK_ATTEMPT_TIMEOUT_MS", "5"),
        ]));
        assert_eq!(out_of_range, SdkSettings::default());
    }
}
