//! The reminder ledger's vocabulary: keys, states, retry timing, and the
//! transition from a failed send to the record's next state. One ledger
//! record per (invoice, step, channel) lives under the invoice's partition;
//! creating it conditionally is the claim that makes a send exactly-once
//! ([`crate::claim`], written by [`crate::ports::Store::claim`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::channel::Channel;

/// Sort key of the invoice item itself.
pub const INVOICE_SK: &str = "invoice";
/// Sort-key prefix of reminder ledger records.
pub const REMINDER_PREFIX: &str = "reminder#";
/// Sort-key prefix of payment records (written by the payment webhook).
pub const PAYMENT_PREFIX: &str = "payment#";

/// Transient failures are retried this many times in all before the record is
/// marked failed for good.
pub const MAX_ATTEMPTS: u32 = 5;

/// `pre_due#email`: names a (step, channel) pair in the invoice's `reminded` set.
pub fn ledger_key(step: &str, channel: Channel) -> String {
    format!("{step}#{channel}")
}

/// Sort key of the ledger record for (step, channel).
pub fn reminder_sk(step: &str, channel: Channel) -> String {
    format!("{REMINDER_PREFIX}{}", ledger_key(step, channel))
}

/// The name a step's ledger records carry: the step's own in an invoice's
/// first ladder, `<step>@<cycle>` once its due date changed
/// ([`crate::invoice::CYCLE`]), so that the new date's steps are claimed anew
/// and the old date's records stay as they were.
pub fn cycle_step(step: &str, cycle: Option<&str>) -> String {
    match cycle {
        Some(cycle) => format!("{step}@{cycle}"),
        None => step.to_owned(),
    }
}

/// The policy's step a ledger name is of (`overdue_3@2026-12-31`: `overdue_3`).
pub fn base_step(name: &str) -> &str {
    name.split_once('@').map_or(name, |(step, _)| step)
}

/// The pseudo-channel of an escalation step's ledger record.
pub const ESCALATION: &str = "escalation";

/// Sort key of an escalation step's ledger record.
pub fn escalation_sk(step: &str) -> String {
    format!("{REMINDER_PREFIX}{step}#{ESCALATION}")
}

/// States of a ledger record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerState {
    /// Someone is sending; a claim older than the lease is taken as a crash.
    Claimed,
    Sent,
    /// A transient failure: may be claimed again after `retry_after`.
    Retry,
    /// A permanent failure: never retried.
    Failed,
    /// Held back (the customer's cap): may be claimed after `retry_after`.
    Deferred,
    /// Never to be sent (superseded by a later step); kept for the history.
    Skipped,
}

impl LedgerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claimed => "claimed",
            Self::Sent => "sent",
            Self::Retry => "retry",
            Self::Failed => "failed",
            Self::Deferred => "deferred",
            Self::Skipped => "skipped",
        }
    }
}

/// Why a send failed, which says whether and when it may be tried again
/// (the codes of each kind: `aws::errors`, and `docs/configuration.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Throttling, 5xx, timeouts, connection errors: retried with backoff,
    /// [`MAX_ATTEMPTS`] attempts in all.
    Transient,
    /// Recipient-permanent: this address or number will never work (a
    /// rejected address, an opted-out or invalid number). Never retried.
    Permanent,
    /// The account, the permissions, the configuration or a template is
    /// wrong: nobody's message can go until someone fixes it. The channel (or
    /// the template) stops for the rest of the run, and the message waits in
    /// `retry` without using up an attempt, however many runs it takes.
    Systemic,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Permanent => "permanent",
            Self::Systemic => "systemic",
        }
    }

    /// Whether a failure of this class uses up one of the record's attempts.
    pub fn uses_an_attempt(self) -> bool {
        self != Self::Systemic
    }
}

/// Wait before attempt `attempts + 1` after a transient failure: 5 minutes,
/// doubling, at most 6 hours.
pub fn retry_delay(attempts: u32) -> Duration {
    let base = 5 * 60u64;
    let factor = 1u64 << attempts.saturating_sub(1).min(10);
    Duration::from_secs((base * factor).min(6 * 3600))
}

/// A ledger record's state after a failed send, and when it may be claimed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterFailure {
    pub state: LedgerState,
    pub retry_after: Option<DateTime<Utc>>,
}

/// The transition after a send failed at `at` on attempt `attempts` (the
/// claim that made it counted, so at least 1): a recipient-permanent error,
/// or a transient one on the last attempt, ends in `failed`; a transient one
/// before that waits in `retry`, longer after each attempt ([`retry_delay`]);
/// a systemic one always waits in `retry`, for the next run (its attempt is
/// given back: [`ErrorClass::uses_an_attempt`]).
pub fn after_failure(class: ErrorClass, attempts: u32, at: DateTime<Utc>) -> AfterFailure {
    let retry = |attempts| AfterFailure {
        state: LedgerState::Retry,
        retry_after: Some(at + chrono::Duration::seconds(retry_delay(attempts).as_secs() as i64)),
    };
    match class {
        // Not the message's fault: the next run may try it (this one has
        // stopped the channel), however many runs the fix takes.
        ErrorClass::Systemic => AfterFailure {
            state: LedgerState::Retry,
            retry_after: Some(at),
        },
        ErrorClass::Transient if attempts < MAX_ATTEMPTS => retry(attempts),
        ErrorClass::Transient | ErrorClass::Permanent => AfterFailure {
            state: LedgerState::Failed,
            retry_after: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_permanent_failure_ends_at_once_and_a_transient_one_after_the_last_attempt() {
        let t = at("2026-11-23T10:00:00Z");
        let failed = AfterFailure {
            state: LedgerState::Failed,
            retry_after: None,
        };
        assert_eq!(after_failure(ErrorClass::Permanent, 1, t), failed);
        assert_eq!(
            after_failure(ErrorClass::Transient, 1, t),
            AfterFailure {
                state: LedgerState::Retry,
                retry_after: Some(at("2026-11-23T10:05:00Z"))
            }
        );
        assert_eq!(
            after_failure(ErrorClass::Transient, MAX_ATTEMPTS - 1, t).retry_after,
            Some(t + chrono::Duration::seconds(retry_delay(MAX_ATTEMPTS - 1).as_secs() as i64))
        );
        assert_eq!(
            after_failure(ErrorClass::Transient, MAX_ATTEMPTS, t),
            failed
        );
    }

    #[test]
    fn a_systemic_failure_always_waits_for_the_next_run_and_keeps_its_attempts() {
        let t = at("2026-11-23T10:00:00Z");
        for attempts in [1, MAX_ATTEMPTS, MAX_ATTEMPTS * 10] {
            assert_eq!(
                after_failure(ErrorClass::Systemic, attempts, t),
                AfterFailure {
                    state: LedgerState::Retry,
                    retry_after: Some(t)
                }
            );
        }
        assert!(!ErrorClass::Systemic.uses_an_attempt());
        assert!(ErrorClass::Transient.uses_an_attempt() && ErrorClass::Permanent.uses_an_attempt());
    }

    proptest! {
        /// A transient failure is retried, later each time, exactly until the
        /// attempts run out; nothing is ever retried before it failed.
        #[test]
        fn retries_wait_longer_each_attempt_and_stop_at_the_limit(attempts in 1u32..20, secs in 0i64..4_000_000_000) {
            let t = DateTime::from_timestamp(secs, 0).unwrap();
            let now = after_failure(ErrorClass::Transient, attempts, t);
            let next = after_failure(ErrorClass::Transient, attempts + 1, t);
            prop_assert_eq!(now.state == LedgerState::Retry, attempts < MAX_ATTEMPTS);
            if let (Some(a), Some(b)) = (now.retry_after, next.retry_after) {
                prop_assert!(t < a && a <= b);
            }
        }
    }

    #[test]
    fn keys_name_step_and_channel() {
        assert_eq!(ledger_key("pre_due", Channel::Sms), "pre_due#sms");
        assert_eq!(
            reminder_sk("overdue", Channel::Email),
            "reminder#overdue#email"
        );
    }

    #[test]
    fn retry_delay_doubles_and_is_capped() {
        let mins: Vec<u64> = (1..=9).map(|a| retry_delay(a).as_secs() / 60).collect();
        assert_eq!(mins, [5, 10, 20, 40, 80, 160, 320, 360, 360]);
        assert_eq!(retry_delay(0), retry_delay(1));
        assert_eq!(retry_delay(u32::MAX).as_secs(), 6 * 3600);
    }
}
