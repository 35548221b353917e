//! The exactly-once protocol's vocabulary. A message to a customer covers one
//! or more invoices at one step on one channel; claiming it is one atomic
//! write in the store: the customer's contact log (the rolling cap), and for
//! each invoice its ledger record (created, or taken over after a lease or a
//! due retry) and a guarded update of the invoice (still open, the
//! [`GUARDED`] attributes unchanged since read, steps only move forward, an
//! in-flight mark that holds payments back until the outcome is recorded).
//! The store adapters implement it ([`crate::ports::Store::claim`]).

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::cap::Cap;

/// Invoice attributes a billing system may change that the decision depends
/// on: a claim requires each to be as the run read it.
/// An edit or re-import of the amount, the due date (and with it the
/// ladder's cycle) or the contacts commits either before a claim reads the
/// invoice or after its outcome: no message states what an edit replaced.
pub const GUARDED: &[&str] = &[
    "amount_paid",
    "disputed",
    "reminders_paused_until",
    "channels",
    "in_collections",
    "amount",
    "currency",
    "due_date",
    "ladder_cycle",
    "email",
    "phone",
    "promised_by",
    "instalments",
    "plan_paid_before",
    "timezone",
    "locale",
    "customer_name",
    "customer_id",
    "pay_url",
];

/// Most invoices one combined message may cover (a DynamoDB transaction
/// holds 100 items: 2 per invoice and the contact log).
pub const MAX_COMBINED: usize = 40;

/// The ledger record a claim holds: what `record_*` update, guarded by the token.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    pub invoice_id: &'a str,
    pub sk: &'a str,
    pub token: &'a str,
}

/// One invoice in a claim.
#[derive(Debug, Clone)]
pub struct Member<'a, S> {
    pub invoice_id: &'a str,
    /// The store's snapshot of the invoice as read: its guarded attributes must be unchanged.
    pub snapshot: &'a S,
    /// Ledger sort key (`reminder#<step>#<channel>`).
    pub sk: String,
    /// A late fee this step applies (once) to the invoice.
    pub late_fee: Option<Decimal>,
    /// The amount the message states.
    pub amount: String,
    /// A plan this message says has ended: kept on the invoice
    /// (`plan_defaulted_on`, once), so that a late payment does not revive it.
    pub plan_defaulted_on: Option<NaiveDate>,
}

/// A claim of one message.
#[derive(Debug, Clone)]
pub struct Claim<'a, S> {
    pub members: Vec<Member<'a, S>>,
    pub customer_id: &'a str,
    pub step: &'a str,
    pub offset_days: i64,
    /// The ladder cycle `offset_days` is reached in (`reminder_cycle`):
    /// steps only move forward within a cycle.
    pub cycle: Option<&'a str>,
    /// `email`, `sms`, or `escalation`.
    pub channel: &'a str,
    pub recipient: &'a str,
    pub local_date: NaiveDate,
    pub run_id: &'a str,
    pub token: String,
    /// The clock for leases and retries: the later of the real time and the run's instant.
    pub now: DateTime<Utc>,
    /// The run's instant: messages count against the customer's cap at this time.
    pub as_of: DateTime<Utc>,
    pub lease: Duration,
    /// The rolling cap; `None` for escalations, which message no customer.
    pub cap: Option<Cap>,
}

impl<S> Claim<'_, S> {
    /// When the claim's lease (and its in-flight mark on the invoices) ends, in seconds.
    pub fn lease_expires(&self) -> i64 {
        self.now.timestamp() + i64::try_from(self.lease.as_secs()).unwrap_or(86_400)
    }
}

/// Why one invoice of a claim was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// Its ledger record exists (sent, failed, or claimed by a live run).
    AlreadyClaimed,
    /// It is no longer open, its payments or pause changed, a later step was
    /// claimed, or another message for it is in flight.
    InvoiceChanged,
}

/// What a claim attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// We own the sends of `claimed` (indices into the members) until the lease expires.
    Claimed {
        claimed: Vec<usize>,
        lost: Vec<(usize, Lost)>,
    },
    /// Every member was lost.
    Lost(Vec<(usize, Lost)>),
    /// The customer's cap is reached until `until`.
    CapReached { until: DateTime<Utc> },
    /// Another run wrote to the same customer or invoice at the same moment; a later run retries.
    Conflict,
}

/// Rounds of a claim: members lost to a race are dropped and the rest claimed again.
pub const CLAIM_ROUNDS: usize = 3;
