//! The reminder ledger's vocabulary: keys, states and retry timing. One ledger
//! record per (invoice, step, channel) lives under the invoice's partition;
//! creating it with a conditional write is the claim that makes a send
//! exactly-once (see `store::DynamoStore::claim`).

use std::time::Duration;

use crate::policy::Channel;

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

/// Whether a failed send may succeed if tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Throttling, 5xx, timeouts, connection errors.
    Transient,
    /// A rejected address, an opted-out number, a bad request.
    Permanent,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Permanent => "permanent",
        }
    }
}

/// Wait before attempt `attempts + 1` after a transient failure: 5 minutes,
/// doubling, at most 6 hours.
pub fn retry_delay(attempts: u32) -> Duration {
    let base = 5 * 60u64;
    let factor = 1u64 << attempts.saturating_sub(1).min(10);
    Duration::from_secs((base * factor).min(6 * 3600))
}

#[cfg(test)]
mod tests {
    use super::*;

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
