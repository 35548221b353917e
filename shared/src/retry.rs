//! One retry helper for calls the SDK's own retries do not cover, with
//! jittered exponential backoff, so that concurrent callers spread out.
//!
//! Retries here multiply with the SDK's: a call the SDK tries
//! `AWS_MAX_ATTEMPTS` times (default 4, [`crate::aws::sdk`]) and this helper
//! `attempts` times can reach the service `AWS_MAX_ATTEMPTS x attempts`
//! times. Each caller says its total where it calls [`retry`]. Sending
//! clients make one SDK attempt per call, so for them the total is `attempts`.

use std::future::Future;
use std::time::Duration;

/// How often and how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Calls in all, the first included.
    pub attempts: u32,
    /// The wait before the second call (before jitter); doubled each time after.
    pub base: Duration,
    /// The doubled base stops growing here; jitter adds up to half of it on top.
    pub max: Duration,
}

impl Backoff {
    /// The wait before call `attempt + 1` (`attempt` from 1): the doubled
    /// base (at most `max`) and a random part of up to half of it on top, so
    /// that callers spread out and none waits less than the doubled base.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max);
        let half = u64::try_from((doubled / 2).as_nanos()).unwrap_or(u64::MAX);
        doubled.saturating_add(Duration::from_nanos(if half == 0 {
            0
        } else {
            jitter() % half
        }))
    }
}

/// A cheap random number: the clock's nanoseconds, mixed (enough to spread
/// callers, never used for anything secret).
fn jitter() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // splitmix64's finaliser.
    let mut z = nanos.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce5_e9b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Calls `call` until it succeeds, `retryable` says its error is final, or
/// `backoff.attempts` calls were made; returns the last result. `what`
/// names the call in the warning logged before each retry.
pub async fn retry<T, E, F, Fut>(
    backoff: Backoff,
    what: &str,
    retryable: impl Fn(&E) -> bool,
    mut call: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(err) if attempt < backoff.attempts && retryable(&err) => {
                tracing::warn!(error = %err, attempt, "{what} failed; retrying");
                tokio::time::sleep(backoff.delay(attempt)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const FAST: Backoff = Backoff {
        attempts: 4,
        base: Duration::from_millis(1),
        max: Duration::from_millis(4),
    };

    #[test]
    fn delays_double_with_up_to_half_again_of_jitter_and_stop_at_the_maximum() {
        let b = Backoff {
            attempts: 9,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for attempt in 1..9 {
            let full =
                (Duration::from_millis(100) * (1 << (attempt - 1))).min(Duration::from_secs(1));
            let d = b.delay(attempt);
            assert!(
                d >= full && d <= full * 3 / 2,
                "attempt {attempt}: {d:?} outside {full:?} to 1.5 times it"
            );
        }
    }

    #[tokio::test]
    async fn a_call_is_retried_until_it_succeeds_and_no_more() {
        let calls = AtomicU32::new(0);
        let out: Result<u32, String> = retry(
            FAST,
            "test",
            |_| true,
            || async {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                if n < 3 {
                    Err(format!("fail {n}"))
                } else {
                    Ok(n)
                }
            },
        )
        .await;
        assert_eq!(out, Ok(3));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_final_error_or_the_last_attempt_returns_the_error() {
        let calls = AtomicU32::new(0);
        let out: Result<(), String> = retry(
            FAST,
            "test",
            |_| true,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("always".to_owned())
            },
        )
        .await;
        assert_eq!(out, Err("always".to_owned()));
        assert_eq!(calls.load(Ordering::SeqCst), FAST.attempts);
        let calls = AtomicU32::new(0);
        let out: Result<(), String> = retry(
            FAST,
            "test",
            |e: &String| e != "final",
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("final".to_owned())
            },
        )
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
