//! The one SDK configuration every binary uses: the standard retry mode
//! (exponential backoff with full jitter, throttling and transport errors
//! retried) and timeouts, so a hung connection costs seconds rather than the
//! run's whole time budget.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};

use crate::config::{ConfigError, Env};

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
    /// an absent value keeps the default, an out-of-range one is an error.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(get);
        Ok(Self {
            max_attempts: env.number("AWS_MAX_ATTEMPTS", u64::from(DEFAULT_MAX_ATTEMPTS), 1..=10)?
                as u32,
            attempt_timeout: Duration::from_millis(env.number(
                "SDK_ATTEMPT_TIMEOUT_MS",
                DEFAULT_ATTEMPT_TIMEOUT.as_millis() as u64,
                100..=60_000,
            )?),
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Applies the settings to a loader (tests add their endpoint and region).
    pub fn apply(self, loader: ConfigLoader) -> ConfigLoader {
        let retry = RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_secs(5));
        loader.retry_config(retry).timeout_config(self.timeouts())
    }

    /// The timeouts: every attempt may time out; the backoffs between them add a few seconds.
    pub fn timeouts(self) -> TimeoutConfig {
        let operation = self.attempt_timeout * self.max_attempts + Duration::from_secs(5);
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(self.attempt_timeout)
            .operation_timeout(operation)
            .build()
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

/// The time a claim must hold for, at least, with these SDK settings: the
/// store call before the send (the pay link: one operation, every attempt
/// and backoff) and the send itself ([`super::errors::send_budget`]). A run
/// whose `CLAIM_LEASE_SECONDS` is shorter does not start.
pub fn claim_budget(sdk: &SdkConfig) -> (Duration, Duration) {
    let timeouts = sdk.timeout_config();
    let attempt = timeouts
        .and_then(|t| t.operation_attempt_timeout())
        .unwrap_or(DEFAULT_ATTEMPT_TIMEOUT);
    let operation = timeouts
        .and_then(|t| t.operation_timeout())
        .unwrap_or(attempt * DEFAULT_MAX_ATTEMPTS + Duration::from_secs(5));
    let send = super::errors::send_budget(attempt);
    (operation + send, send)
}

/// The SDK configuration from the environment (region, credentials,
/// `AWS_ENDPOINT_URL`) with our retry and timeout settings.
pub async fn load() -> Result<SdkConfig, ConfigError> {
    Ok(SdkSettings::from_env()?
        .apply(aws_config::defaults(BehaviorVersion::latest()))
        .load()
        .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_must_cover_the_pay_link_and_every_call_of_the_send() {
        let sdk = |settings: SdkSettings| {
            SdkConfig::builder()
                .timeout_config(settings.timeouts())
                .build()
        };
        // 4 attempts of 5 s and 5 s of backoffs for the pay link; 4 calls of 5 s and 1.05 s of waits for the send.
        let (claim, send) = claim_budget(&sdk(SdkSettings::default()));
        assert_eq!(send, Duration::from_millis(21_050));
        assert_eq!(claim, Duration::from_secs(25) + send);
        let slow = SdkSettings {
            max_attempts: 10,
            attempt_timeout: Duration::from_secs(60),
        };
        let (claim, send) = claim_budget(&sdk(slow));
        assert_eq!(send, Duration::from_millis(241_050));
        assert_eq!(claim, Duration::from_secs(605) + send);
    }

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
        assert_eq!(
            SdkSettings::from_lookup(env(&[])),
            Ok(SdkSettings::default())
        );
        let set = SdkSettings::from_lookup(env(&[
            ("AWS_MAX_ATTEMPTS", "6"),
            ("SDK_ATTEMPT_TIMEOUT_MS", "800"),
        ]))
        .unwrap();
        assert_eq!(set.max_attempts, 6);
        assert_eq!(set.attempt_timeout, Duration::from_millis(800));
        // Out of range is an error naming the variable, never a silent default.
        let err = SdkSettings::from_lookup(env(&[("AWS_MAX_ATTEMPTS", "0")])).unwrap_err();
        assert!(err.to_string().contains("AWS_MAX_ATTEMPTS"), "{err}");
        let err = SdkSettings::from_lookup(env(&[("SDK_ATTEMPT_TIMEOUT_MS", "5")])).unwrap_err();
        assert!(err.to_string().contains("from 100 to 60000"), "{err}");
    }
}
