//! The run summary: what a run read, decided and did, by step, channel and
//! reason. Returned by the Lambda, printed by the CLI, logged as one line.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Invalid items listed by id in a summary, at most (all are counted and logged).
pub const MAX_LISTED_INVALID: usize = 100;

/// Outcomes for one (step, channel).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    pub sent: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Dry run: would have been claimed and sent.
    pub planned: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvalidItem {
    pub invoice_id: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub as_of: Option<DateTime<Utc>>,
    pub dry_run: bool,
    /// Pages of the due index read.
    pub pages: u64,
    /// Items returned by the due index.
    pub items_read: u64,
    /// Items DynamoDB read to return them (sum of `ScannedCount`).
    pub scanned_count: u64,
    /// Invoices with a step due in this run.
    pub eligible: u64,
    /// Invoices escalated to collections (an event published for people).
    pub escalated: u64,
    /// step -> channel -> outcomes.
    pub steps: BTreeMap<String, BTreeMap<String, Outcomes>>,
    /// Invoices read but not due a reminder, by reason.
    pub held: BTreeMap<String, u64>,
    /// Messages not sent although due, by reason (already sent, claimed by another run, ...).
    pub skipped: BTreeMap<String, u64>,
    /// Failed sends by provider error code.
    pub failed: BTreeMap<String, u64>,
    /// Items that failed validation, by reason.
    pub invalid: BTreeMap<String, u64>,
    /// The first invalid items, by id.
    pub invalid_items: Vec<InvalidItem>,
}

impl RunSummary {
    pub fn outcomes(&mut self, step: &str, channel: &str) -> &mut Outcomes {
        self.steps
            .entry(step.to_owned())
            .or_default()
            .entry(channel.to_owned())
            .or_default()
    }

    pub fn count(map: &mut BTreeMap<String, u64>, key: &str) {
        *map.entry(key.to_owned()).or_default() += 1;
    }

    pub fn add_invalid(&mut self, invoice_id: Option<String>, reason: String) {
        Self::count(&mut self.invalid, &reason);
        if self.invalid_items.len() < MAX_LISTED_INVALID {
            self.invalid_items.push(InvalidItem { invoice_id, reason });
        }
    }

    /// Total sent over all steps and channels.
    pub fn total_sent(&self) -> u64 {
        self.steps
            .values()
            .flat_map(|c| c.values())
            .map(|o| o.sent)
            .sum()
    }

    pub fn total_failed(&self) -> u64 {
        self.steps
            .values()
            .flat_map(|c| c.values())
            .map(|o| o.failed)
            .sum()
    }
}
