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

/// How long a claimed message can take at these SDK settings, in the worst
/// case of every attempt timing out: the claim itself (its rounds, each a
/// read and a transaction), the pay link's store call, the send (every call
/// of [`super::errors::send_budget`]) and recording its outcome (every call
/// of the recording's retries). The lease must cover all of it, or another
/// run could take the claim over and send the message again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimBudget {
    pub claim_and_link: Duration,
    pub send: Duration,
    pub record: Duration,
}

impl ClaimBudget {
    /// What `CLAIM_LEASE_SECONDS` must cover: start-up refuses less.
    pub fn total(&self) -> Duration {
        self.claim_and_link + self.from_send()
    }

    /// What must be left of the lease just before a send.
    pub fn from_send(&self) -> Duration {
        self.send + self.record
    }
}

/// The [`ClaimBudget`] of these SDK settings (their timeouts).
pub fn claim_budget(sdk: &SdkConfig) -> ClaimBudget {
    let timeouts = sdk.timeout_config();
    let attempt = timeouts
        .and_then(|t| t.operation_attempt_timeout())
        .unwrap_or(DEFAULT_ATTEMPT_TIMEOUT);
    let operation = timeouts
        .and_then(|t| t.operation_timeout())
        .unwrap_or(attempt * DEFAULT_MAX_ATTEMPTS + Duration::from_secs(5));
    let record = super::outcomes::RECORD;
    // Waits at most 1.5 x each doubling delay, capped.
    let waits: Duration = (0..record.attempts.saturating_sub(1))
        .map(|i| (record.base * 2u32.pow(i)).min(record.max) * 3 / 2)
        .sum();
    ClaimBudget {
        claim_and_link: operation * (2 * crate::claim::CLAIM_ROUNDS as u32 + 1),
        send: super::errors::send_budget(attempt),
        record: operation * record.attempts + waits,
    }
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
        // An operation: 4 attempts of 5 s and 5 s of backoffs (25 s). The claim:
        // 3 rounds of a read and a transaction, then the pay link (7 operations);
        // the send: 4 calls of 5 s and 1.05 s of waits; the record: 5
        // operations and waits of 0.6 + 1.2 + 2.4 + 4.8 s.
        let b = claim_budget(&sdk(SdkSettings::default()));
        assert_eq!(b.claim_and_link, Duration::from_secs(175));
        assert_eq!(b.send, Duration::from_millis(21_050));
        assert_eq!(b.record, Duration::from_millis(125_000 + 9_000));
        assert_eq!(b.total(), Duration::from_millis(330_050));
        let slow = SdkSettings {
            max_attempts: 10,
            attempt_timeout: Duration::from_secs(60),
        };
        let b = claim_budget(&sdk(slow));
        assert_eq!(b.send, Duration::from_millis(241_050));
        assert_eq!(
            b.from_send(),
            b.send + Duration::from_secs(605 * 5) + Duration::from_millis(9_000)
        );
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
