//! The run summary: what a run read, decided and did, by step, channel and
//! reason. Returned by the Lambda, printed by the CLI, logged as one line.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use crate::channel::Channel;

/// The `failed` key of a run that failed as a whole.
pub const RUN_FAILED: &str = "run_failed";

/// Invalid items listed by id in a summary, at most (all are counted and logged).
pub const MAX_LISTED_INVALID: usize = 100;

/// Most invalid items one run logs (each once a day); beyond them one line
/// says how many more there are (the count is in every summary, and
/// `dunning-admin audit` lists them all).
pub const MAX_LOGGED_INVALID: usize = 2_000;

/// What names a logged invalid item for the day's once-only log: its id and
/// reason, hashed (16 hex digits; the id may be anything a billing system
/// wrote). A fixed item logs again the day it breaks differently.
pub fn warning_key(invoice_id: Option<&str>, reason: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(invoice_id.unwrap_or("").as_bytes());
    h.update([0]);
    h.update(reason.as_bytes());
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a step's outcome is counted under: a customer channel, or the
/// escalation (an event for people). Serialized as `email`, `sms`,
/// `escalation`, and ordered by that name (as the summary's keys always were).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Channel(Channel),
    Escalation,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Channel(c) => c.as_str(),
            Self::Escalation => crate::ledger::ESCALATION,
        }
    }
}

/// Orders keys by their names in the summary's JSON.
macro_rules! ordered_by_name {
    ($t:ty) => {
        impl Ord for $t {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
    };
}

ordered_by_name!(Target);
ordered_by_name!(SkipReason);

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why a message due in this run was not sent. Serialized by
/// [`SkipReason::as_str`] and ordered by that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// The invoice's `reminded` set says this step and channel were settled.
    AlreadySent,
    /// The customer opted out of the channel.
    OptedOut,
    /// Outside the customer's send window (or SMS hours): a later run sends it.
    OutsideWindow,
    /// The run reached its time budget, or took on as many customers as it can send to.
    TimeBudget,
    /// The customer already gets a message on this channel in this run.
    OneMessagePerCustomerPerRun,
    /// The ledger record exists: sent, failed, or claimed by a live run.
    AlreadyClaimed,
    /// The invoice changed since it was read (paid, paused, another message in flight ...).
    InvoiceChanged,
    /// The claim could not be written (a store error).
    ClaimError,
    /// Another run wrote to the same customer or invoice at the same moment.
    ClaimConflict,
    /// The customer's rolling cap is reached: deferred.
    CustomerCap,
    /// The customer's record suppresses this e-mail address (set by hand).
    EmailSuppressed,
    /// The address bounced for good (an SES permanent bounce, or SES's
    /// account-level suppression list): suppressed for the customer.
    EmailBounced,
    /// The customer's record pauses their reminders.
    CustomerPaused,
    /// The customer's record could not be read: nothing is sent to them
    /// (an opt-out might be missed); a later run reads it again.
    CustomerUnreadable,
}

impl SkipReason {
    pub const ALL: [SkipReason; 14] = [
        Self::AlreadySent,
        Self::OptedOut,
        Self::OutsideWindow,
        Self::TimeBudget,
        Self::OneMessagePerCustomerPerRun,
        Self::AlreadyClaimed,
        Self::InvoiceChanged,
        Self::ClaimError,
        Self::ClaimConflict,
        Self::CustomerCap,
        Self::EmailSuppressed,
        Self::EmailBounced,
        Self::CustomerPaused,
        Self::CustomerUnreadable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlreadySent => "already_sent",
            Self::OptedOut => "opted_out",
            Self::OutsideWindow => "outside_window",
            Self::TimeBudget => "time_budget",
            Self::OneMessagePerCustomerPerRun => "one_message_per_customer_per_run",
            Self::AlreadyClaimed => "already_claimed",
            Self::InvoiceChanged => "invoice_changed",
            Self::ClaimError => "claim_error",
            Self::ClaimConflict => "claim_conflict",
            Self::CustomerCap => "customer_cap",
            Self::EmailSuppressed => "email_suppressed",
            Self::EmailBounced => "email_bounced",
            Self::CustomerPaused => "customer_paused",
            Self::CustomerUnreadable => "customer_unreadable",
        }
    }

    /// Whether the skipped message may still be due after this run, so that
    /// a later run must read its invoice again (a band read that left such
    /// work is not recorded: [`crate::reads`]). Settled skips (sent, opted
    /// out) and skips the next band read finds anyway (a window that opens
    /// later, a cap deferral, which sets its own re-read) leave none.
    pub fn leaves_work(self) -> bool {
        match self {
            Self::TimeBudget
            | Self::OneMessagePerCustomerPerRun
            | Self::AlreadyClaimed
            | Self::InvoiceChanged
            | Self::ClaimError
            | Self::ClaimConflict
            | Self::CustomerUnreadable => true,
            Self::AlreadySent
            | Self::OptedOut
            | Self::OutsideWindow
            | Self::CustomerCap
            | Self::EmailSuppressed
            | Self::EmailBounced
            | Self::CustomerPaused => false,
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for SkipReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Outcomes for one (step, channel).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    pub sent: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Dry run: would have been claimed and sent.
    pub planned: u64,
    /// Not sent because of a systemic failure: waiting in `retry` for a later run.
    pub retry: u64,
}

/// A channel (or template) a systemic failure stopped for the rest of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystemicStop {
    /// The provider's (or our) error code that stopped it.
    pub code: String,
    /// Messages it held back, the one that failed included.
    pub messages: u64,
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
    /// Customers a full read opted out of SMS because SNS lists their number
    /// as opted out (`ListPhoneNumbersOptedOut`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sms_opt_outs_synced: u64,
    /// Due-date ranges queried.
    pub due_date_ranges: u64,
    /// Workers this run queued orders for (0: it sent itself).
    pub fanned_out: u32,
    /// Items a worker read that belong to another worker's shard.
    pub other_shards: u64,
    /// Invoices a full read took by their wake records (a plan's
    /// instalment, a promise), besides the due index.
    #[serde(default)]
    pub woken: u64,
    /// The earliest instant reminders were deferred to by the customer cap.
    pub deferred_until: Option<DateTime<Utc>>,
    /// The earliest instant a reminder this run found but held back, where
    /// no band read finds it again, becomes ready (a non-business day's, or a
    /// caught-up step's channel outside its window): a full read is due then.
    pub full_read_at: Option<DateTime<Utc>>,
    /// Invoices whose `next_at` this run wrote (the next-at index: one it
    /// read and held, or a reschedule's), and writes refused because the
    /// invoice changed meanwhile (its stream record decides again).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub next_at_written: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub next_at_changed_meanwhile: u64,
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
    /// step -> channel (or escalation) -> outcomes.
    pub steps: BTreeMap<String, BTreeMap<Target, Outcomes>>,
    /// Invoices read but not due a reminder, by reason.
    pub held: BTreeMap<String, u64>,
    /// Messages not sent although due, by reason (already sent, claimed by another run, ...).
    pub skipped: BTreeMap<SkipReason, u64>,
    /// Failed sends by provider error code.
    pub failed: BTreeMap<String, u64>,
    /// What systemic failures stopped for the rest of the run (`email`,
    /// `sms`, or `email template <name>`), and the messages each held back.
    pub systemic: BTreeMap<String, SystemicStop>,
    /// Items that failed validation, by reason.
    pub invalid: BTreeMap<String, u64>,
    /// The first invalid items, by id.
    pub invalid_items: Vec<InvalidItem>,
}

impl RunSummary {
    pub fn outcomes_mut(&mut self, step: &str, target: Target) -> &mut Outcomes {
        self.steps
            .entry(step.to_owned())
            .or_default()
            .entry(target)
            .or_default()
    }

    /// The outcomes of one step on one target (zero when there were none).
    pub fn outcomes(&self, step: &str, target: Target) -> Outcomes {
        self.steps
            .get(step)
            .and_then(|t| t.get(&target))
            .copied()
            .unwrap_or_default()
    }

    /// How many messages were skipped for `reason`.
    pub fn skipped(&self, reason: SkipReason) -> u64 {
        self.skipped.get(&reason).copied().unwrap_or(0)
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
        self.stopped_early
            || self.total_failed() > 0
            || self.systemic_failures() > 0
            || self.skipped.keys().any(|r| r.leaves_work())
    }

    /// Messages held back by systemic failures: what the `SystemicFailures` alarm counts.
    pub fn systemic_failures(&self) -> u64 {
        self.total(|o| o.retry)
    }

    /// Total sent over all steps and channels.
    pub fn total_sent(&self) -> u64 {
        self.total(|o| o.sent)
    }

    /// Messages the run could not send (whether the ledger retries them in a
    /// later run or not), plus items it could not read: what the
    /// `RunFailures` alarm counts.
    pub fn failures(&self) -> u64 {
        self.total_failed() + self.invalid.values().sum::<u64>() + self.run_failed()
    }

    /// 1 for a run that failed as a whole ([`RunSummary::failed_run`]).
    fn run_failed(&self) -> u64 {
        self.failed.get(RUN_FAILED).copied().unwrap_or(0)
    }

    /// The summary as one CloudWatch Embedded Metric Format record: printed
    /// as a line on stdout, CloudWatch turns it into metrics in `namespace`
    /// (dimension `Function=dunning-run`) without an API call.
    pub fn emf(&self, namespace: &str, timestamp: DateTime<Utc>) -> serde_json::Value {
        let skipped: u64 = self.skipped.values().sum();
        let metrics: [(&str, u64); 9] = [
            ("RunFailures", self.failures()),
            ("SystemicFailures", self.systemic_failures()),
            ("Sent", self.total_sent()),
            ("Failed", self.total_failed() + self.run_failed()),
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
        Self::count(&mut summary.failed, RUN_FAILED);
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

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_reasons_keep_their_json_names_and_say_which_leave_work() {
        let mut summary = RunSummary::default();
        for r in SkipReason::ALL {
            *summary.skipped.entry(r).or_default() += 1;
        }
        let json = serde_json::to_value(&summary).unwrap();
        for r in SkipReason::ALL {
            assert_eq!(json["skipped"][r.as_str()], 1, "{r:?}");
        }
        let waiting: Vec<&str> = SkipReason::ALL
            .iter()
            .filter(|r| r.leaves_work())
            .map(|r| r.as_str())
            .collect();
        assert_eq!(
            waiting,
            [
                "time_budget",
                "one_message_per_customer_per_run",
                "already_claimed",
                "invoice_changed",
                "claim_error",
                "claim_conflict",
                "customer_unreadable"
            ]
        );
        for r in SkipReason::ALL {
            let one = RunSummary {
                skipped: [(r, 1)].into(),
                ..RunSummary::default()
            };
            assert_eq!(one.left_work(), r.leaves_work(), "{r:?}");
        }
    }

    #[test]
    fn keys_come_in_the_order_of_their_names() {
        let mut summary = RunSummary::default();
        for r in SkipReason::ALL {
            *summary.skipped.entry(r).or_default() += 1;
        }
        let names: Vec<&str> = summary.skipped.keys().map(|r| r.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        let mut targets = [
            Target::Escalation,
            Target::Channel(Channel::Sms),
            Target::Channel(Channel::Email),
        ];
        targets.sort();
        assert_eq!(targets.map(Target::as_str), ["email", "escalation", "sms"]);
    }

    #[test]
    fn outcomes_are_keyed_by_channel_name_in_json() {
        let mut summary = RunSummary::default();
        summary
            .outcomes_mut("final_notice", Target::Escalation)
            .sent = 1;
        summary
            .outcomes_mut("due_today", Target::Channel(Channel::Sms))
            .planned = 2;
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["steps"]["final_notice"]["escalation"]["sent"], 1);
        assert_eq!(json["steps"]["due_today"]["sms"]["planned"], 2);
    }

    #[test]
    fn emf_record_declares_every_metric_it_carries() {
        let mut summary = RunSummary {
            run_id: "r1".into(),
            items_read: 7,
            scanned_count: 7,
            ..RunSummary::default()
        };
        summary
            .outcomes_mut("due", Target::Channel(Channel::Email))
            .sent = 3;
        summary
            .outcomes_mut("due", Target::Channel(Channel::Sms))
            .failed = 1;
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
        let failed = RunSummary::failed_run("r2").emf("Dunning", now);
        assert_eq!(
            (&failed["RunFailures"], &failed["Failed"]),
            (&1.into(), &1.into())
        );
    }
}
