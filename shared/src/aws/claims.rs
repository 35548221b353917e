//! The exactly-once protocol on DynamoDB: claim, record, skip, defer.
//!
//! A message to a customer covers one or more invoices at one step on one
//! channel. Claiming it is one transaction: the customer's contact log (the
//! rolling cap, with optimistic versioning), and for each invoice its ledger
//! record (created, or taken over after a lease or a due retry) and a guarded
//! update of the invoice (still open, unchanged since read, steps only move
//! forward, late fee applied once).

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::errors::SendError;
use super::store::{
    cancellation_codes, n, rfc3339, s, DynamoStore, Item, StoreError, PARTITION_KEY, SORT_KEY,
};
use crate::invoice::Invoice;
use crate::ledger::{self, ErrorClass, LedgerState, INVOICE_SK, MAX_ATTEMPTS};
use crate::policy::Cap;

/// Invoice attributes a billing system may change that the decision depends
/// on: a claim requires each to be as the run read it.
const GUARDED: &[&str] = &[
    "amount_paid",
    "disputed",
    "reminders_paused_until",
    "channels",
    "in_collections",
];

/// The attributes of `item` a claim re-checks: all a run keeps of the item it read.
pub fn guarded(item: &Item) -> Item {
    GUARDED
        .iter()
        .filter_map(|&a| item.get(a).map(|v| (a.to_owned(), v.clone())))
        .collect()
}

/// Most invoices one combined message may cover (2 transaction items each, 100 at most).
pub const MAX_COMBINED: usize = 40;

/// Partition of a customer's contact log.
pub fn customer_pk(customer_id: &str) -> String {
    format!("customer#{customer_id}")
}

/// Sort key of the contact log item.
pub const CONTACTS_SK: &str = "contacts";

/// The ledger record a claim holds: what `record_*` update, guarded by the token.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    pub invoice_id: &'a str,
    pub sk: &'a str,
    pub token: &'a str,
}

/// One invoice in a claim.
#[derive(Debug, Clone)]
pub struct Member<'a> {
    pub invoice: &'a Invoice,
    /// The item as read: the guarded attributes must be unchanged.
    pub item: &'a Item,
    /// Ledger sort key (`reminder#<step>#<channel>`).
    pub sk: String,
    /// A late fee this step applies (once) to the invoice.
    pub late_fee: Option<Decimal>,
    /// The amount the message states.
    pub amount: String,
}

/// A claim of one message.
#[derive(Debug, Clone)]
pub struct Claim<'a> {
    pub members: Vec<Member<'a>>,
    pub customer_id: &'a str,
    pub step: &'a str,
    pub offset_days: i64,
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

/// Why one invoice of a claim was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// Its ledger record exists (sent, failed, or claimed by a live run).
    AlreadyClaimed,
    /// It is no longer open, its payments or pause changed, or a later step was claimed.
    InvoiceChanged,
}

impl Lost {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlreadyClaimed => "already_claimed",
            Self::InvoiceChanged => "invoice_changed",
        }
    }
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

/// The ledger record condition: new, a crashed claim past its lease, or a due retry or deferral.
const CLAIMABLE: &str = "attribute_not_exists(sk) OR (#state = :claimed AND lease_expires < :now) \
     OR (#state IN (:retry, :deferred) AND retry_after <= :now)";

impl DynamoStore {
    async fn contacts(&self, customer_id: &str) -> Result<(Vec<i64>, Option<i64>), StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, s(customer_pk(customer_id)))
            .key(SORT_KEY, s(CONTACTS_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("GetItem", e))?;
        let Some(item) = out.item else {
            return Ok((Vec::new(), None));
        };
        let sent = match item.get("sent_at") {
            Some(AttributeValue::L(list)) => list
                .iter()
                .filter_map(|v| v.as_n().ok()?.parse().ok())
                .collect(),
            _ => Vec::new(),
        };
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok());
        Ok((sent, version))
    }

    /// Claims a message: see the module documentation. Members lost to a race
    /// are dropped and the rest claimed again (at most three rounds).
    pub async fn claim(&self, c: &Claim<'_>) -> Result<ClaimOutcome, StoreError> {
        let mut remaining: Vec<usize> = (0..c.members.len()).collect();
        let mut lost = Vec::new();
        for _ in 0..3 {
            let contacts = match c.cap {
                None => None,
                Some(cap) => {
                    let (sent, version) = self.contacts(c.customer_id).await?;
                    let window_start = c.as_of.timestamp() - i64::from(cap.days) * 86_400;
                    let mut recent: Vec<i64> =
                        sent.into_iter().filter(|t| *t > window_start).collect();
                    recent.sort_unstable();
                    if recent.len() >= cap.messages as usize {
                        let oldest = recent[recent.len() - cap.messages as usize];
                        let until =
                            DateTime::from_timestamp(oldest + i64::from(cap.days) * 86_400, 0)
                                .unwrap_or(c.as_of);
                        return Ok(ClaimOutcome::CapReached { until });
                    }
                    recent.push(c.as_of.timestamp());
                    Some((recent, version))
                }
            };
            let mut items = Vec::new();
            if let Some((recent, version)) = &contacts {
                items.push(self.contacts_update(c.customer_id, recent, *version)?);
            }
            for &i in &remaining {
                items.push(self.ledger_claim(c, &c.members[i])?);
                items.push(self.invoice_claim(c, &c.members[i])?);
            }
            let first_member = usize::from(contacts.is_some());
            match self
                .client()
                .transact_write_items()
                .set_transact_items(Some(items))
                // The same token on the SDK's own retries: a claim that committed but
                // whose answer was lost is not refused as a conflict on retry.
                .client_request_token(request_token(&c.token))
                .send()
                .await
            {
                Ok(_) => {
                    return Ok(ClaimOutcome::Claimed {
                        claimed: remaining,
                        lost,
                    })
                }
                Err(SdkError::ServiceError(err)) => match err.err() {
                    TransactWriteItemsError::TransactionCanceledException(cancel) => {
                        let codes = cancellation_codes(cancel);
                        if codes.contains(&"TransactionConflict")
                            || codes.first() == Some(&"ConditionalCheckFailed") && first_member == 1
                        {
                            return Ok(ClaimOutcome::Conflict);
                        }
                        let mut keep = Vec::new();
                        for (k, &i) in remaining.iter().enumerate() {
                            let at = first_member + 2 * k;
                            match (codes.get(at), codes.get(at + 1)) {
                                (Some(&"ConditionalCheckFailed"), _) => {
                                    lost.push((i, Lost::AlreadyClaimed))
                                }
                                (_, Some(&"ConditionalCheckFailed")) => {
                                    lost.push((i, Lost::InvoiceChanged))
                                }
                                _ => keep.push(i),
                            }
                        }
                        if keep.len() == remaining.len() {
                            return Ok(ClaimOutcome::Conflict);
                        }
                        remaining = keep;
                        if remaining.is_empty() {
                            return Ok(ClaimOutcome::Lost(lost));
                        }
                    }
                    _ => {
                        return Err(StoreError::from_sdk(
                            "TransactWriteItems",
                            SdkError::ServiceError(err),
                        ))
                    }
                },
                Err(e) => return Err(StoreError::from_sdk("TransactWriteItems", e)),
            }
        }
        Ok(ClaimOutcome::Conflict)
    }

    fn contacts_update(
        &self,
        customer_id: &str,
        recent: &[i64],
        version: Option<i64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let list = AttributeValue::L(recent.iter().map(n).collect());
        let mut u = Update::builder()
            .table_name(self.table())
            .key(PARTITION_KEY, s(customer_pk(customer_id)))
            .key(SORT_KEY, s(CONTACTS_SK))
            .update_expression("SET sent_at = :sent, version = :next")
            .expression_attribute_values(":sent", list)
            .expression_attribute_values(":next", n(version.unwrap_or(0) + 1));
        u = match version {
            Some(v) => u
                .condition_expression("version = :version")
                .expression_attribute_values(":version", n(v)),
            None => u.condition_expression("attribute_not_exists(version)"),
        };
        let u = u
            .build()
            .map_err(|e| StoreError::local("TransactWriteItems", e.to_string()))?;
        Ok(TransactWriteItem::builder().update(u).build())
    }

    fn ledger_claim(&self, c: &Claim<'_>, m: &Member<'_>) -> Result<TransactWriteItem, StoreError> {
        let now = c.now.timestamp();
        let lease = now + i64::try_from(c.lease.as_secs()).unwrap_or(86_400);
        let mut set = String::from(
            "SET #state = :claimed, step = :step, channel = :channel, claim_token = :token, claimed_at = :now_text, \
             lease_expires = :lease, run_id = :run, recipient = :to, local_date = :date, amount = :amount, \
             message_invoices = :count",
        );
        let mut u = Update::builder()
            .table_name(self.table())
            .key(PARTITION_KEY, s(&m.invoice.id))
            .key(SORT_KEY, s(&m.sk))
            .condition_expression(CLAIMABLE)
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":claimed", s(LedgerState::Claimed.as_str()))
            .expression_attribute_values(":retry", s(LedgerState::Retry.as_str()))
            .expression_attribute_values(":deferred", s(LedgerState::Deferred.as_str()))
            .expression_attribute_values(":step", s(c.step))
            .expression_attribute_values(":channel", s(c.channel))
            .expression_attribute_values(":token", s(&c.token))
            .expression_attribute_values(":now_text", s(rfc3339(c.now)))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":lease", n(lease))
            .expression_attribute_values(":run", s(c.run_id))
            .expression_attribute_values(":to", s(c.recipient))
            .expression_attribute_values(":date", s(c.local_date.to_string()))
            .expression_attribute_values(":amount", s(&m.amount))
            .expression_attribute_values(":count", n(c.members.len()))
            .expression_attribute_values(":one", n(1));
        if let Some(fee) = m.late_fee {
            set.push_str(", late_fee = :fee");
            u = u.expression_attribute_values(":fee", s(fee.to_string()));
        }
        set.push_str(" REMOVE retry_after, defer_reason ADD attempts :one");
        let u = u
            .update_expression(set)
            .build()
            .map_err(|e| StoreError::local("TransactWriteItems", e.to_string()))?;
        Ok(TransactWriteItem::builder().update(u).build())
    }

    fn invoice_claim(
        &self,
        c: &Claim<'_>,
        m: &Member<'_>,
    ) -> Result<TransactWriteItem, StoreError> {
        // Another claim's message for this invoice still in flight blocks this one:
        // its in-flight mark must not be overwritten (payments wait on it).
        let mut condition = String::from(
            "#status = :open AND (attribute_not_exists(reminder_offset) OR reminder_offset <= :offset) \
             AND (attribute_not_exists(sending_until) OR sending_until < :now_secs)",
        );
        // `sending_until` holds payments back while the message is in flight
        // (see `payments`); recording the outcome releases it.
        let mut set = String::from(
            "SET reminder_offset = :offset, sending_until = :sending_until, sending_token = :sending_token",
        );
        let lease = c.now.timestamp() + i64::try_from(c.lease.as_secs()).unwrap_or(86_400);
        let mut u = Update::builder()
            .table_name(self.table())
            .key(PARTITION_KEY, s(&m.invoice.id))
            .key(SORT_KEY, s(INVOICE_SK))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":open", s("open"))
            .expression_attribute_values(":offset", n(c.offset_days))
            .expression_attribute_values(":sending_until", n(lease))
            .expression_attribute_values(":sending_token", s(&c.token))
            .expression_attribute_values(":now_secs", n(c.now.timestamp()));
        for (i, attr) in GUARDED.iter().enumerate() {
            u = u.expression_attribute_names(format!("#g{i}"), *attr);
            match m.item.get(*attr) {
                Some(value) => {
                    condition.push_str(&format!(" AND #g{i} = :g{i}"));
                    u = u.expression_attribute_values(format!(":g{i}"), value.clone());
                }
                None => condition.push_str(&format!(" AND attribute_not_exists(#g{i})")),
            }
        }
        if let Some(fee) = m.late_fee {
            set.push_str(", #fee = if_not_exists(#fee, :fee)");
            u = u
                .expression_attribute_names("#fee", format!("late_fee#{}", c.step))
                .expression_attribute_values(":fee", s(fee.to_string()));
        }
        let u = u
            .update_expression(set)
            .condition_expression(condition)
            .build()
            .map_err(|e| StoreError::local("TransactWriteItems", e.to_string()))?;
        Ok(TransactWriteItem::builder().update(u).build())
    }

    /// Records a successful send on the claim we hold, at real time `at`.
    /// `Ok(false)` means our lease had expired and another run took the claim over.
    /// The message is out: a store failure here is retried (beyond the SDK's own
    /// retries) so that the claim does not lapse and the message go again.
    pub async fn record_sent(
        &self,
        held: &Held<'_>,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut attempt = 0;
        loop {
            match self.record_sent_once(held, message_id, at).await {
                Err(err) if attempt < 4 => {
                    attempt += 1;
                    tracing::warn!(error = %err, attempt, "recording a sent message failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                outcome => return outcome,
            }
        }
    }

    async fn record_sent_once(
        &self,
        held: &Held<'_>,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self.update_record(held.invoice_id, held.sk)
            .update_expression("SET #state = :sent, message_id = :id, sent_at = :at REMOVE lease_expires, error_code, error_class, error_message")
            .condition_expression("claim_token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sent", s(LedgerState::Sent.as_str()))
            .expression_attribute_values(":id", s(message_id))
            .expression_attribute_values(":at", s(rfc3339(at)))
            .expression_attribute_values(":token", s(held.token))
            .send()
            .await;
        condition_failure_is_false(result.map(|_| ()), "UpdateItem")
    }

    /// Records a failed send. A permanent error, or a transient one on the last
    /// attempt, ends in `failed`; otherwise the record waits in `retry` with
    /// backoff. Returns the state written.
    pub async fn record_failure(
        &self,
        held: &Held<'_>,
        error: &SendError,
        at: DateTime<Utc>,
    ) -> Result<LedgerState, StoreError> {
        let update = |state: LedgerState, retry_after: Option<i64>| {
            let mut set = String::from(
                "SET #state = :state, error_class = :class, error_code = :code, error_message = :msg, failed_at = :at",
            );
            let mut u = self
                .update_record(held.invoice_id, held.sk)
                .condition_expression("claim_token = :token")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":state", s(state.as_str()))
                .expression_attribute_values(":class", s(error.class.as_str()))
                .expression_attribute_values(":code", s(&error.code))
                .expression_attribute_values(
                    ":msg",
                    s(error.message.chars().take(500).collect::<String>()),
                )
                .expression_attribute_values(":at", s(rfc3339(at)))
                .expression_attribute_values(":token", s(held.token))
                .return_values(ReturnValue::AllNew);
            if let Some(t) = retry_after {
                set.push_str(", retry_after = :retry");
                u = u.expression_attribute_values(":retry", n(t));
            }
            set.push_str(" REMOVE lease_expires");
            u.update_expression(set).send()
        };
        let (state, retry_after) = match error.class {
            ErrorClass::Permanent => (LedgerState::Failed, None),
            ErrorClass::Transient => (
                LedgerState::Retry,
                Some(at.timestamp() + ledger::retry_delay(1).as_secs() as i64),
            ),
        };
        let out = match update(state, retry_after).await {
            Ok(out) => out,
            Err(e) if is_condition_failure(&e) => return Ok(state),
            Err(e) => return Err(StoreError::from_sdk("UpdateItem", e)),
        };
        if state != LedgerState::Retry {
            return Ok(state);
        }
        let attempts: u32 = out
            .attributes
            .as_ref()
            .and_then(|a| a.get("attempts"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        if attempts <= 1 {
            return Ok(state);
        }
        // Later attempts wait longer, and the last one gives up.
        let (state, retry_after) = if attempts >= MAX_ATTEMPTS {
            (LedgerState::Failed, None)
        } else {
            (
                LedgerState::Retry,
                Some(at.timestamp() + ledger::retry_delay(attempts).as_secs() as i64),
            )
        };
        match update(state, retry_after).await {
            Ok(_) => Ok(state),
            Err(e) if is_condition_failure(&e) => Ok(state),
            Err(e) => Err(StoreError::from_sdk("UpdateItem", e)),
        }
    }

    /// Records that a step will never be sent (e.g. superseded by a later step
    /// after missed runs). Only creates: an existing record is left as it is.
    pub async fn record_skipped(
        &self,
        invoice_id: &str,
        sk: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = self
            .update_record(invoice_id, sk)
            .update_expression("SET #state = :skipped, skip_reason = :reason, skipped_at = :at")
            .condition_expression("attribute_not_exists(sk)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":skipped", s(LedgerState::Skipped.as_str()))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":at", s(rfc3339(at)))
            .send()
            .await;
        condition_failure_is_false(result.map(|_| ()), "UpdateItem").map(|_| ())
    }

    /// Records that a message was held back (the customer's cap) until `until`;
    /// a run after that may claim it. Never overwrites a claim or an outcome.
    pub async fn record_deferred(
        &self,
        invoice_id: &str,
        sk: &str,
        reason: &str,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = self.update_record(invoice_id, sk)
            .update_expression("SET #state = :deferred, defer_reason = :reason, retry_after = :until, deferred_at = :at")
            .condition_expression("attribute_not_exists(sk) OR #state = :deferred")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":deferred", s(LedgerState::Deferred.as_str()))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":until", n(until.timestamp()))
            .expression_attribute_values(":at", s(rfc3339(at)))
            .send()
            .await;
        condition_failure_is_false(result.map(|_| ()), "UpdateItem").map(|_| ())
    }

    /// Ends the in-flight mark a claim put on the invoice, once the outcome is
    /// recorded: payments for it may commit again. Only the claim's own mark.
    pub async fn release_invoice(&self, invoice_id: &str, token: &str) -> Result<(), StoreError> {
        let result = self
            .update_invoice(invoice_id)
            .update_expression("REMOVE sending_until, sending_token")
            .condition_expression("sending_token = :token")
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        condition_failure_is_false(result.map(|_| ()), "UpdateItem").map(|_| ())
    }

    /// Marks an escalated invoice as in collections: automated reminders stop.
    pub async fn mark_in_collections(
        &self,
        invoice_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = self
            .update_invoice(invoice_id)
            .update_expression("SET in_collections = :true, collections_at = :at")
            .condition_expression("attribute_exists(invoice_id)")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":at", s(rfc3339(at)))
            .send()
            .await;
        condition_failure_is_false(result.map(|_| ()), "UpdateItem").map(|_| ())
    }

    /// Copies a settled ledger key onto the invoice so later runs skip it
    /// without a write. Best effort: the ledger record is the authority.
    pub async fn mark_reminded(&self, invoice_id: &str, key: &str) -> Result<(), StoreError> {
        let result = self
            .update_invoice(invoice_id)
            .update_expression("ADD reminded :key")
            .condition_expression("attribute_exists(invoice_id)")
            .expression_attribute_values(":key", AttributeValue::Ss(vec![key.to_owned()]))
            .send()
            .await;
        condition_failure_is_false(result.map(|_| ()), "UpdateItem").map(|_| ())
    }
}

/// A `ClientRequestToken` (at most 36 characters) derived from a claim token.
fn request_token(claim_token: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(claim_token.as_bytes())[..16])
}

fn is_condition_failure<E, R>(err: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

fn condition_failure_is_false<E, R>(
    result: Result<(), SdkError<E, R>>,
    operation: &'static str,
) -> Result<bool, StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(()) => Ok(true),
        Err(e) if is_condition_failure(&e) => Ok(false),
        Err(e) => Err(StoreError::from_sdk(operation, e)),
    }
}
