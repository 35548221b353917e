//! Scale-out: when one invocation cannot send a run's messages in its time
//! budget, the scheduled run splits the due customers into `N` disjoint
//! shards and queues one [`WorkOrder`] per shard; `N` worker invocations each
//! send their shard's messages at `1/N` of the provider rates. A customer's
//! invoices all hash to one shard, so a customer still gets at most one
//! message per channel, and the ledger's claims keep any overlap harmless.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Worker `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether `customer_id` belongs to this shard.
    pub fn owns(&self, customer_id: &str) -> bool {
        shard_of(customer_id, self.count) == self.index
    }

    /// This shard's part of a rate (per second; 0 = unlimited stays unlimited).
    /// Never rounds a limited rate up to unlimited: at least 1.
    pub fn share(&self, rate: u64) -> u64 {
        if rate == 0 {
            0
        } else {
            (rate / u64::from(self.count.max(1))).max(1)
        }
    }
}

/// The shard of a customer among `count`: FNV-1a of the id, stable across
/// builds and platforms (unlike `std`'s hasher), so every worker agrees.
pub fn shard_of(customer_id: &str, count: u32) -> u32 {
    (customer_hash(customer_id) % u64::from(count.max(1))) as u32
}

/// FNV-1a (64 bits) of a customer id.
pub fn customer_hash(customer_id: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in customer_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// One worker's share of a run: the same instant and due dates as the run
/// that queued it, and its shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkOrder {
    pub as_of: DateTime<Utc>,
    /// The queuing run's id; the worker's run id is `<run_id>/<index>`.
    pub run_id: String,
    pub shard: Shard,
    /// The due-date ranges the queuing run read.
    pub ranges: Vec<(NaiveDate, NaiveDate)>,
    /// The queuing run was a full read: the worker also takes the invoices
    /// woken in those ranges (a plan's instalment, a promise).
    #[serde(default)]
    pub woken: bool,
    /// Customer records hold settings: the worker reads them before deciding.
    #[serde(default)]
    pub customer_settings: bool,
    /// The queuing run read the next-at index: the worker reads the
    /// invoices whose `next_at` is at or before this instant (not `ranges`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_by: Option<DateTime<Utc>>,
}

/// The messages per second one invocation sends: the provider's `rate`
/// (0 = unlimited) or what it sustains on its own, whichever is lower.
pub fn per_invocation_rate(rate: u64, worker_rate: u64) -> u64 {
    match rate {
        0 => worker_rate,
        r => r.min(worker_rate),
    }
}

/// How many workers a run needs: enough that each sends its share within
/// one invocation's budget, but no more than the provider rate can keep
/// busy and never more than `max_workers`.
///
/// - `messages`: the messages the run has to send;
/// - `rate`: the provider's rate per second (the lower of email and SMS
///   parts that are limited; 0 = unlimited);
/// - `worker_rate`: what one invocation sustains on its own
///   (`WORKER_SEND_RATE`: sends in flight / provider latency);
/// - `budget_secs`: the seconds one invocation can spend sending.
///
/// When the provider rate is no more than one invocation sustains, more
/// workers would only share the same rate: the answer is 1, and the time
/// budget spreads the sending over the following runs instead.
pub fn workers_needed(
    messages: u64,
    rate: u64,
    worker_rate: u64,
    budget_secs: u64,
    max_workers: u32,
) -> u32 {
    let worker_rate = worker_rate.max(1);
    let per_worker = per_invocation_rate(rate, worker_rate);
    let by_volume = messages.div_ceil((per_worker * budget_secs).max(1));
    let by_rate = if rate == 0 {
        u64::MAX
    } else {
        rate.div_ceil(worker_rate)
    };
    let n = by_volume.min(by_rate).min(u64::from(max_workers)).max(1);
    u32::try_from(n).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_worker_while_one_invocation_can_send_it_all() {
        // 14 emails/s (SES default), 840 s: 11,760 messages fit one invocation.
        assert_eq!(workers_needed(11_760, 14, 50, 840, 8), 1);
        // More do not help at 14/s: one invocation already sends at the rate.
        assert_eq!(workers_needed(100_000, 14, 50, 840, 8), 1);
    }

    #[test]
    fn a_high_rate_and_volume_fan_out_up_to_the_rate_and_the_maximum() {
        // 500/s, 50/s per worker: 10 could be kept busy; the volume needs 3.
        assert_eq!(workers_needed(100_000, 500, 50, 840, 16), 3);
        // A bigger volume needs 10, the rate allows 10, the maximum is 8.
        assert_eq!(workers_needed(1_000_000, 500, 50, 840, 8), 8);
        // Unlimited rate: the volume decides.
        assert_eq!(workers_needed(300, 0, 1, 100, 4), 3);
        assert_eq!(workers_needed(0, 0, 1, 100, 4), 1);
    }

    #[test]
    fn a_shard_gets_its_share_of_the_rate() {
        let s = Shard { index: 0, count: 4 };
        assert_eq!(s.share(20), 5);
        assert_eq!(s.share(2), 1, "never unlimited by rounding");
        assert_eq!(s.share(0), 0);
    }

    proptest! {
        #[test]
        fn every_customer_is_in_exactly_one_shard(id in "[A-Za-z0-9-]{1,40}", count in 1u32..64) {
            let owners = (0..count).filter(|&index| Shard { index, count }.owns(&id)).count();
            prop_assert_eq!(owners, 1);
        }

        #[test]
        fn the_workers_never_exceed_the_maximum_or_the_rate(
            messages in 0u64..10_000_000, rate in 0u64..2_000, worker_rate in 1u64..500,
            budget in 1u64..900, max in 1u32..32,
        ) {
            let n = workers_needed(messages, rate, worker_rate, budget, max);
            prop_assert!(n >= 1 && n <= max);
            if rate > 0 {
                prop_assert!(u64::from(n) <= rate.div_ceil(worker_rate).max(1));
            }
        }
    }
}
