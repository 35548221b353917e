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
    /// The run reached its time budget and left work for the next run.
    pub stopped_early: bool,
    /// The run read its ladder's whole window of due dates (else only the
    /// dates whose step began since the last run: see [`crate::reads`]).
    pub full_read: bool,
    /// Due-date ranges queried.
    pub due_date_ranges: u64,
    /// Workers this run queued orders for (0: it sent itself).
    pub fanned_out: u32,
    /// Items a worker read that belong to another worker's shard.
    pub other_shards: u64,
    /// The earliest instant reminders were deferred to by the customer cap.
    pub deferred_until: Option<DateTime<Utc>>,
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

    /// The sum of one outcome over all steps and channels.
    fn total(&self, outcome: impl Fn(&Outcomes) -> u64) -> u64 {
        self.steps
            .values()
            .flat_map(|c| c.values())
            .map(outcome)
            .sum()
    }

    /// Whether the run left work that only a re-read finds: it stopped
    /// early, a send failed (a transient failure is retried), a claim failed
    /// or was held by another run, or a customer's second message waits.
    pub fn left_work(&self) -> bool {
        const WAITING: &[&str] = &[
            "time_budget",
            "claim_error",
            "claim_conflict",
            "already_claimed",
            "invoice_changed",
            "one_message_per_customer_per_run",
        ];
        self.stopped_early
            || self.total_failed() > 0
            || WAITING.iter().any(|r| self.skipped.contains_key(*r))
    }

    /// Total sent over all steps and channels.
    pub fn total_sent(&self) -> u64 {
        self.total(|o| o.sent)
    }

    /// Messages the run could not send (whether the ledger retries them in a
    /// later run or not), plus items it could not read: what the
    /// `RunFailures` alarm counts.
    pub fn failures(&self) -> u64 {
        self.total_failed() + self.invalid.values().sum::<u64>()
    }

    /// The summary as one CloudWatch Embedded Metric Format record: printed
    /// as a line on stdout, CloudWatch turns it into metrics in `namespace`
    /// (dimension `Function=dunning-run`) without an API call.
    pub fn emf(&self, namespace: &str, timestamp: DateTime<Utc>) -> serde_json::Value {
        let skipped: u64 = self.skipped.values().sum();
        let metrics: [(&str, u64); 8] = [
            ("RunFailures", self.failures()),
            ("Sent", self.total_sent()),
            ("Failed", self.total_failed()),
            ("Skipped", skipped),
            ("Invalid", self.invalid.values().sum()),
            ("Escalated", self.escalated),
            ("ItemsRead", self.items_read),
            ("ScannedCount", self.scanned_count),
        ];
        let mut record = serde_json::json!({
            "_aws": {
                "Timestamp": timestamp.timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [["Function"]],
                    "Metrics": metrics.iter().map(|(name, _)| serde_json::json!({"Name": name, "Unit": "Count"})).collect::<Vec<_>>(),
                }],
            },
            "Function": "dunning-run",
            "run_id": self.run_id,
        });
        for (name, value) in metrics {
            record[name] = value.into();
        }
        record
    }

    /// The metric record of a run that failed as a whole (its index could not be read).
    pub fn failed_run(run_id: &str) -> Self {
        let mut summary = Self {
            run_id: run_id.to_owned(),
            ..Self::default()
        };
        Self::count(&mut summary.failed, "run_failed");
        summary.outcomes("run", "none").failed = 1;
        summary
    }

    /// Total planned (dry run) over all steps and channels.
    pub fn total_planned(&self) -> u64 {
        self.total(|o| o.planned)
    }

    pub fn total_failed(&self) -> u64 {
        self.total(|o| o.failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_record_declares_every_metric_it_carries() {
        let mut summary = RunSummary {
            run_id: "r1".into(),
            items_read: 7,
            scanned_count: 7,
            ..RunSummary::default()
        };
        summary.outcomes("due", "email").sent = 3;
        summary.outcomes("due", "sms").failed = 1;
        summary.add_invalid(Some("INV-9".into()), "bad_due_date".into());
        let now: DateTime<Utc> = "2026-11-23T14:00:00Z".parse().unwrap();
        let record = summary.emf("Dunning", now);
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Dunning");
        assert_eq!(record["_aws"]["Timestamp"], now.timestamp_millis());
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(record[name].is_u64(), "{name} declared but missing");
        }
        for dims in directive["Dimensions"][0].as_array().unwrap() {
            assert!(record[dims.as_str().unwrap()].is_string());
        }
        assert_eq!(record["Sent"], 3);
        assert_eq!(
            record["RunFailures"], 2,
            "one failed send and one unreadable item"
        );
        assert_eq!(
            RunSummary::failed_run("r2").emf("Dunning", now)["RunFailures"],
            1
        );
    }
}
