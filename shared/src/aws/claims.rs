//! The exactly-once protocol ([`crate::claim`]) on DynamoDB: a claim is one
//! `TransactWriteItems` (the contact log with optimistic versioning, then per
//! invoice its ledger record and a guarded update of the invoice item); the
//! outcome, skip, deferral, release and marks are conditional updates. The
//! rules (the cap, the state after a failure) are the domain's: this file
//! only writes what they decide.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use chrono::{DateTime, NaiveDate, Utc};

use super::errors::store_error;
use super::store::{
    cancellation_codes, n, raw_invoice, rfc3339, s, DynamoPage, DynamoSnapshot, DynamoStore, Item,
    DUE_INDEX, PARTITION_KEY, RUN_STATE_KEY, SORT_KEY,
};
use crate::cap::CapDecision;
use crate::claim::{Claim, ClaimOutcome, Held, Lost, Member, CLAIM_ROUNDS, GUARDED};
use crate::ledger::{after_failure, LedgerState, INVOICE_SK};
use crate::ports::{DueItem, DuePage, SendError, Store, StoreError};
use crate::reads::ReadState;
use crate::retry::{retry, Backoff};

/// Partition of a customer's contact log.
pub fn customer_pk(customer_id: &str) -> String {
    format!("customer#{customer_id}")
}

/// Sort key of the contact log item.
pub const CONTACTS_SK: &str = "contacts";

type DynamoClaim<'a> = Claim<'a, DynamoSnapshot>;
type DynamoMember<'a> = Member<'a, DynamoSnapshot>;

/// The ledger record condition: new, a crashed claim past its lease, or a due retry or deferral.
const CLAIMABLE: &str = "attribute_not_exists(sk) OR (#state = :claimed AND lease_expires < :now) \
     OR (#state IN (:retry, :deferred) AND retry_after <= :now)";

impl DynamoStore {
    pub(super) async fn contacts(
        &self,
        customer_id: &str,
    ) -> Result<(Vec<i64>, Option<i64>), StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, s(customer_pk(customer_id)))
            .key(SORT_KEY, s(CONTACTS_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
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

    fn ledger_claim(
        &self,
        c: &DynamoClaim<'_>,
        m: &DynamoMember<'_>,
    ) -> Result<TransactWriteItem, StoreError> {
        let now = c.now.timestamp();
        let lease = c.lease_expires();
        let mut set = String::from(
            "SET #state = :claimed, step = :step, channel = :channel, claim_token = :token, claimed_at = :now_text, \
             lease_expires = :lease, run_id = :run, recipient = :to, local_date = :date, amount = :amount, \
             message_invoices = :count",
        );
        let mut u = Update::builder()
            .table_name(self.table())
            .key(PARTITION_KEY, s(m.invoice_id))
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
        c: &DynamoClaim<'_>,
        m: &DynamoMember<'_>,
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
        let lease = c.lease_expires();
        let mut u = Update::builder()
            .table_name(self.table())
            .key(PARTITION_KEY, s(m.invoice_id))
            .key(SORT_KEY, s(INVOICE_SK))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":open", s("open"))
            .expression_attribute_values(":offset", n(c.offset_days))
            .expression_attribute_values(":sending_until", n(lease))
            .expression_attribute_values(":sending_token", s(&c.token))
            .expression_attribute_values(":now_secs", n(c.now.timestamp()));
        for (i, attr) in GUARDED.iter().enumerate() {
            u = u.expression_attribute_names(format!("#g{i}"), *attr);
            match m.snapshot.0.get(*attr) {
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
}

impl Store for DynamoStore {
    type Snapshot = DynamoSnapshot;
    type Cursor = Item;

    /// One page of open invoices with `from <= due_date <= to`.
    async fn due_page(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        start: Option<Item>,
    ) -> Result<DynamoPage, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(DUE_INDEX)
            .key_condition_expression("#status = :open AND due_date BETWEEN :from AND :to")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":open", s("open"))
            .expression_attribute_values(":from", s(from.to_string()))
            .expression_attribute_values(":to", s(to.to_string()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| store_error("Query", e))?;
        Ok(DuePage {
            scanned_count: u64::try_from(out.scanned_count).unwrap_or(0),
            items: out
                .items
                .unwrap_or_default()
                .iter()
                .map(|item| DueItem {
                    raw: raw_invoice(item),
                    snapshot: DynamoSnapshot::of(item),
                })
                .collect(),
            next: out.last_evaluated_key.filter(|k| !k.is_empty()),
        })
    }

    /// What earlier runs read (strongly consistent: a run right after another sees it).
    async fn read_state(&self) -> Result<ReadState, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, s(RUN_STATE_KEY.0))
            .key(SORT_KEY, s(RUN_STATE_KEY.1))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        let at = |name: &str| {
            out.item
                .as_ref()
                .and_then(|i| i.get(name))
                .and_then(|v| v.as_s().ok())
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let zones = out
            .item
            .as_ref()
            .and_then(|i| i.get("zones"))
            .and_then(|v| v.as_ss().ok())
            .map(|names| names.iter().filter_map(|n| n.parse().ok()).collect())
            .unwrap_or_default();
        Ok(ReadState {
            last_run_at: at("last_run_at"),
            last_full_read_at: at("last_full_read_at"),
            zones,
            series_since: at("series_since"),
            full_read_due: at("full_read_due"),
        })
    }

    /// Records the state after a run that read all it planned. Instants
    /// only move forward: an older run finishing late changes nothing.
    async fn record_read(&self, state: &ReadState) -> Result<(), StoreError> {
        let Some(last_run_at) = state.last_run_at else {
            return Ok(());
        };
        let mut set = vec!["last_run_at = :t"];
        let mut update = self
            .update_record(RUN_STATE_KEY.0, RUN_STATE_KEY.1)
            .condition_expression("attribute_not_exists(last_run_at) OR last_run_at < :t")
            .expression_attribute_values(":t", s(rfc3339(last_run_at)));
        if let Some(t) = state.series_since {
            set.push("series_since = :s");
            update = update.expression_attribute_values(":s", s(rfc3339(t)));
        }
        let mut remove = "";
        match state.full_read_due {
            Some(t) => {
                set.push("full_read_due = :d");
                update = update.expression_attribute_values(":d", s(rfc3339(t)));
            }
            None => remove = " REMOVE full_read_due",
        }
        if let Some(t) = state.last_full_read_at {
            set.push("last_full_read_at = :f");
            update = update.expression_attribute_values(":f", s(rfc3339(t)));
        }
        if !state.zones.is_empty() {
            set.push("zones = :z");
            let names = state.zones.iter().map(|z| z.name().to_owned()).collect();
            update = update.expression_attribute_values(":z", AttributeValue::Ss(names));
        }
        match update
            .update_expression(format!("SET {}{remove}", set.join(", ")))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    /// Claims a message ([`crate::claim`]). Members lost to a race are
    /// dropped and the rest claimed again ([`CLAIM_ROUNDS`] rounds at most).
    async fn claim(&self, c: &DynamoClaim<'_>) -> Result<ClaimOutcome, StoreError> {
        let mut remaining: Vec<usize> = (0..c.members.len()).collect();
        let mut lost = Vec::new();
        for _ in 0..CLAIM_ROUNDS {
            let contacts = match c.cap {
                None => None,
                Some(cap) => {
                    let (sent, version) = self.contacts(c.customer_id).await?;
                    match cap.decide(&sent, c.as_of) {
                        CapDecision::Reached { until } => {
                            return Ok(ClaimOutcome::CapReached { until })
                        }
                        CapDecision::Admit { log } => Some((log, version)),
                    }
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
                        return Err(store_error(
                            "TransactWriteItems",
                            SdkError::ServiceError(err),
                        ))
                    }
                },
                Err(e) => return Err(store_error("TransactWriteItems", e)),
            }
        }
        Ok(ClaimOutcome::Conflict)
    }

    /// Records a successful send on the claim we hold, at real time `at`.
    /// `Ok(false)` means our lease had expired and another run took the claim over.
    /// The message is out: a store failure here is retried, 5 calls of up to
    /// `AWS_MAX_ATTEMPTS` SDK attempts each (15 by default), so that the claim
    /// does not lapse and the message go again.
    async fn record_sent(
        &self,
        held: &Held<'_>,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const RECORD: Backoff = Backoff {
            attempts: 5,
            base: std::time::Duration::from_millis(400),
            max: std::time::Duration::from_millis(3200),
        };
        retry(
            RECORD,
            "recording a sent message",
            |_| true,
            || self.record_sent_once(held, message_id, at),
        )
        .await
    }

    /// Records a failed send as [`after_failure`] says. The attempts are
    /// known only after the first write (the claim added one), so a record
    /// that waits is written again when its attempt was not the first.
    async fn record_failure(
        &self,
        held: &Held<'_>,
        error: &SendError,
        at: DateTime<Utc>,
    ) -> Result<LedgerState, StoreError> {
        let update = |state: LedgerState, retry_after: Option<DateTime<Utc>>| {
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
            match retry_after {
                Some(t) => {
                    set.push_str(", retry_after = :retry REMOVE lease_expires");
                    u = u.expression_attribute_values(":retry", n(t.timestamp()));
                }
                None => set.push_str(" REMOVE lease_expires, retry_after"),
            }
            u.update_expression(set).send()
        };
        let first = after_failure(error.class, 1, at);
        let out = match update(first.state, first.retry_after).await {
            Ok(out) => out,
            Err(e) if is_condition_failure(&e) => return Ok(first.state),
            Err(e) => return Err(store_error("UpdateItem", e)),
        };
        let attempts: u32 = out
            .attributes
            .as_ref()
            .and_then(|a| a.get("attempts"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let next = after_failure(error.class, attempts, at);
        if next == first {
            return Ok(first.state);
        }
        match update(next.state, next.retry_after).await {
            Ok(_) => Ok(next.state),
            Err(e) if is_condition_failure(&e) => Ok(next.state),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    /// Records that a step will never be sent (e.g. superseded by a later step
    /// after missed runs). Only creates: an existing record is left as it is.
    async fn record_skipped(
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
    async fn record_deferred(
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
    async fn release_invoice(&self, invoice_id: &str, token: &str) -> Result<(), StoreError> {
        let result = self
            .update_invoice(invoice_id)
            .update_expression("REMOVE sending_until, sending_token")
            .condition_expression("sending_token = :token")
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        condition_failure_is_false(result.map(|_| ()), "UpdateItem").map(|_| ())
    }

    /// Copies a settled ledger key onto the invoice so later runs skip it
    /// without a write. Best effort: the ledger record is the authority.
    async fn mark_reminded(&self, invoice_id: &str, key: &str) -> Result<(), StoreError> {
        let result = self
            .update_invoice(invoice_id)
            .update_expression("ADD reminded :key")
            .condition_expression("attribute_exists(invoice_id)")
            .expression_attribute_values(":key", AttributeValue::Ss(vec![key.to_owned()]))
            .send()
            .await;
        condition_failure_is_false(result.map(|_| ()), "UpdateItem").map(|_| ())
    }

    /// Marks an escalated invoice as in collections: automated reminders stop.
    async fn mark_in_collections(
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
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(()) => Ok(true),
        Err(e) if is_condition_failure(&e) => Ok(false),
        Err(e) => Err(store_error(operation, e)),
    }
}
