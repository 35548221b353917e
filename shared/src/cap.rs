//! The rolling per-customer cap: at most `messages` reminders to a customer
//! in any `days` days. A pure decision over the customer's contact log (the
//! instants, in Unix seconds, of the messages sent); the store keeps the log
//! and writes the decision atomically with the claim.

use chrono::{DateTime, Utc};

/// The cap, from the policy's `[cap]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub messages: u32,
    pub days: u32,
}

/// What the cap says about one more message at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapDecision {
    /// Send; the contact log becomes `log` (the window's messages and this one, oldest first).
    Admit { log: Vec<i64> },
    /// Wait until `until`, when the oldest message of the window leaves it.
    Reached { until: DateTime<Utc> },
}

impl Cap {
    fn window_secs(self) -> i64 {
        i64::from(self.days) * 86_400
    }

    /// Whether a message at `at` fits, given the instants already in the log.
    pub fn decide(self, log: &[i64], at: DateTime<Utc>) -> CapDecision {
        let window_start = at.timestamp() - self.window_secs();
        let mut recent: Vec<i64> = log.iter().copied().filter(|t| *t > window_start).collect();
        recent.sort_unstable();
        let limit = self.messages as usize;
        if recent.len() >= limit {
            // `limit` is at least 1 (the policy refuses 0), so an oldest exists.
            let oldest = recent[recent.len() - limit.max(1)];
            let until = DateTime::from_timestamp(oldest + self.window_secs(), 0).unwrap_or(at);
            return CapDecision::Reached { until };
        }
        recent.push(at.timestamp());
        CapDecision::Admit { log: recent }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: i64 = 86_400;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn the_next_message_after_the_cap_waits_for_the_oldest_to_leave_the_window() {
        let cap = Cap {
            messages: 2,
            days: 7,
        };
        let t0 = 1_800_000_000;
        assert_eq!(
            cap.decide(&[], at(t0)),
            CapDecision::Admit { log: vec![t0] }
        );
        assert_eq!(
            cap.decide(&[t0], at(t0 + DAY)),
            CapDecision::Admit {
                log: vec![t0, t0 + DAY]
            }
        );
        assert_eq!(
            cap.decide(&[t0 + DAY, t0], at(t0 + 2 * DAY)),
            CapDecision::Reached {
                until: at(t0 + 7 * DAY)
            }
        );
        // Exactly a window later the oldest has left it.
        assert_eq!(
            cap.decide(&[t0, t0 + DAY], at(t0 + 7 * DAY)),
            CapDecision::Admit {
                log: vec![t0 + DAY, t0 + 7 * DAY]
            }
        );
    }

    proptest! {
        /// Whatever the log, an admitted message never makes more than
        /// `messages` in any window, and a refusal names an instant after
        /// which the same message is admitted.
        #[test]
        fn the_cap_is_never_exceeded_and_a_refusal_ends_when_it_says(
            messages in 1u32..6,
            days in 1u32..10,
            log in prop::collection::vec(0i64..(20 * DAY), 0..12),
            now in 0i64..(20 * DAY),
        ) {
            let cap = Cap { messages, days };
            let now = at(1_800_000_000 + now);
            // A log holds the instants of earlier runs: none after this one.
            let log: Vec<i64> = log
                .iter()
                .map(|t| 1_800_000_000 + t)
                .filter(|t| *t <= now.timestamp())
                .collect();
            match cap.decide(&log, now) {
                CapDecision::Admit { log: after } => {
                    prop_assert!(after.len() <= messages as usize);
                    prop_assert_eq!(after.last().copied(), Some(now.timestamp()));
                    prop_assert!(after.iter().all(|t| *t > now.timestamp() - i64::from(days) * DAY));
                }
                CapDecision::Reached { until } => {
                    prop_assert!(until > now);
                    let admitted = matches!(cap.decide(&log, until), CapDecision::Admit { .. });
                    prop_assert!(admitted);
                }
            }
        }
    }
}
