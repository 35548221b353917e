//! Sending at the provider's rate: a token bucket per channel (SES's account
//! sending rate in emails per second, SNS's SMS rate in message parts per
//! second). Combined with the run's bounded concurrency, a run never sends
//! faster than the account allows, so the provider has no reason to throttle.
//!
//! The bucket holds at most one token: no burst, sends are spaced 1/rate
//! apart. A caller that finds too few reserves what it needs (the balance
//! goes negative) and sleeps for its share, so waiting callers are served in
//! order and the rate is exact. Buckets are per process: runs overlap only
//! when a schedule is retried or redelivered, and then briefly.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// The pure bucket: `reserve` says how long to wait before `cost` tokens are yours.
#[derive(Debug, Clone)]
pub struct Bucket {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A bucket refilled at `per_second` (0 is taken as 1), holding one token.
    pub fn new(per_second: u64, now: Instant) -> Self {
        let per_second = per_second.max(1) as f64;
        Self {
            per_second,
            capacity: 1.0,
            tokens: 1.0,
            last: now,
        }
    }

    /// Takes `cost` tokens at `now`; returns how long the caller must wait
    /// before using them (zero when they were there).
    pub fn reserve(&mut self, cost: u32, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.tokens -= f64::from(cost.max(1));
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.per_second)
        }
    }
}

/// A shared limiter; rate 0 means unlimited.
#[derive(Debug)]
pub struct RateLimiter {
    bucket: Option<Mutex<Bucket>>,
}

impl RateLimiter {
    pub fn new(per_second: u64) -> Self {
        Self {
            bucket: (per_second > 0).then(|| Mutex::new(Bucket::new(per_second, Instant::now()))),
        }
    }

    pub fn unlimited() -> Self {
        Self { bucket: None }
    }

    /// Waits until `cost` units may be sent.
    pub async fn acquire(&self, cost: u32) {
        let Some(bucket) = &self.bucket else { return };
        let wait = bucket.lock().await.reserve(cost, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the pattern of requests, the units released (when their
        /// wait ends) in any window [a, b] never exceed rate x (b - a) plus the
        /// one token the bucket holds and the largest single request.
        #[test]
        fn never_releases_more_than_the_rate_allows(
            rate in 1u64..200,
            requests in proptest::collection::vec((0u64..2_000, 1u32..4), 1..300),
        ) {
            let start = Instant::now();
            let mut bucket = Bucket::new(rate, start);
            let mut at_ms = 0;
            let mut released: Vec<(f64, u32)> = Vec::new();
            for (gap_ms, cost) in requests {
                at_ms += gap_ms / 10;
                let now = start + Duration::from_millis(at_ms);
                let wait = bucket.reserve(cost, now);
                released.push(((now + wait - start).as_secs_f64(), cost));
            }
            released.sort_by(|a, b| a.0.total_cmp(&b.0));
            for i in 0..released.len() {
                let mut units = 0u64;
                for later in &released[i..] {
                    units += u64::from(later.1);
                    let allowed = rate as f64 * (later.0 - released[i].0) + 1.0 + 3.0;
                    prop_assert!(units as f64 <= allowed + 1e-6,
                        "{} units in {}s at {}/s", units, later.0 - released[i].0, rate);
                }
            }
        }
    }

    #[test]
    fn a_steady_stream_is_spaced_at_the_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::new(20, start);
        // 100 requests all at once: the last may go after 99/20 s.
        let waits: Vec<Duration> = (0..100).map(|_| bucket.reserve(1, start)).collect();
        assert_eq!(waits[0], Duration::ZERO);
        let last = waits[99].as_secs_f64();
        assert!((last - 99.0 / 20.0).abs() < 1e-9, "{last}");
        // Waits grow by exactly 1/20 s.
        for pair in waits[1..].windows(2) {
            assert!(((pair[1] - pair[0]).as_secs_f64() - 0.05).abs() < 1e-9);
        }
    }
}
