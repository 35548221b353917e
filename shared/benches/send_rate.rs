//! Sending-rate benchmark (docs/benchmarks.md): 1,000 messages through the
//! run's limiter (`EMAIL_RATE=20`) with 8 sends in flight, into a mock
//! provider that throttles like AWS (a token bucket of 20 per second with one
//! second of burst) and answers after 20 ms. Reports the achieved rate and
//! the throttling errors. Then the same with rate 0 (unlimited): the sends
//! run concurrently up to the concurrency.
//!
//! `cargo bench -p dunning --bench send_rate`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use dunning::rate::RateLimiter;
use futures::stream::{self, StreamExt};
use tokio::time::Instant;

const MESSAGES: usize = 1_000;
const CONCURRENCY: usize = 8;
const LATENCY: Duration = Duration::from_millis(20);

/// The provider: accepts a send if its own bucket has a token, else throttles.
struct Provider {
    bucket: Option<Mutex<(f64, Instant)>>,
    rate: f64,
    throttled: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    accepted: Mutex<Vec<Instant>>,
}

impl Provider {
    fn new(rate: u64) -> Self {
        Self {
            bucket: (rate > 0).then(|| Mutex::new((rate as f64, Instant::now()))),
            rate: rate as f64,
            throttled: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            accepted: Mutex::new(Vec::new()),
        }
    }

    async fn send(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let at = Instant::now();
        let ok = match &self.bucket {
            None => true,
            Some(bucket) => {
                let mut b = bucket.lock().unwrap();
                let refill = at.saturating_duration_since(b.1).as_secs_f64() * self.rate;
                b.0 = (b.0 + refill).min(self.rate);
                b.1 = at;
                if b.0 >= 1.0 {
                    b.0 -= 1.0;
                    true
                } else {
                    false
                }
            }
        };
        if ok {
            self.accepted.lock().unwrap().push(at);
        } else {
            self.throttled.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(LATENCY).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn scenario(rate: u64) -> serde_json::Value {
    let limiter = RateLimiter::new(rate);
    // The provider enforces the same rate the limiter is set to (unlimited: none).
    let provider = Provider::new(rate);
    let started = Instant::now();
    stream::iter(0..MESSAGES)
        .map(|_| async {
            limiter.acquire(1).await;
            provider.send().await;
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let accepted = provider.accepted.lock().unwrap().clone();
    let span = accepted
        .last()
        .zip(accepted.first())
        .map_or(0.0, |(l, f)| l.duration_since(*f).as_secs_f64());
    let achieved = (accepted.len().saturating_sub(1)) as f64 / span.max(f64::EPSILON);
    serde_json::json!({
        "rate_setting_per_second": rate,
        "messages": MESSAGES,
        "concurrency": CONCURRENCY,
        "provider_latency_ms": LATENCY.as_millis() as u64,
        "accepted": accepted.len(),
        "throttled": provider.throttled.load(Ordering::SeqCst),
        "achieved_rate_per_second": (achieved * 100.0).round() / 100.0,
        "deviation_from_setting_percent": if rate > 0 { ((achieved / rate as f64 - 1.0) * 10_000.0).round() / 100.0 } else { 0.0 },
        "max_in_flight": provider.max_in_flight.load(Ordering::SeqCst),
        "wall_seconds": (elapsed * 100.0).round() / 100.0,
    })
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; arguments are ignored.
    println!("{}", scenario(20).await);
    println!("{}", scenario(0).await);
}
