//! What follows a claim on DynamoDB, each a conditional update: the outcome
//! of a send on the claim held (its token), a skipped or deferred step, the
//! release of the invoice's in-flight mark, and the marks a run leaves on the
//! invoice. The state after a failure is the domain's rule
//! ([`crate::ledger::after_failure`]): this file only writes it.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use super::errors::store_error;
use super::store::{n, rfc3339, s, DynamoStore};
use crate::claim::Held;
use crate::ledger::{after_failure, LedgerState};
use crate::ports::{SendError, StoreError};
use crate::retry::{retry, Backoff};

/// Recording a sent message: 5 calls, waits of 400 ms doubling to 3.2 s.
pub(super) const RECORD: Backoff = Backoff {
    attempts: 5,
    base: std::time::Duration::from_millis(400),
    max: std::time::Duration::from_millis(3200),
};

impl DynamoStore {
    /// Records a successful send on the claim we hold, at real time `at`.
    /// `Ok(false)` means our lease had expired and another run took the claim over.
    /// The message is out: a store failure here is retried, 5 calls of up to
    /// `AWS_MAX_ATTEMPTS` SDK attempts each (20 by default), so that the claim
    /// does not lapse and the message go again.
    pub(super) async fn record_sent_retried(
        &self,
        held: &Held<'_>,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
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
    pub(super) async fn record_failure_item(
        &self,
        held: &Held<'_>,
        error: &SendError,
        at: DateTime<Utc>,
    ) -> Result<LedgerState, StoreError> {
        // Each write expects the state before it (the claim, then the first
        // write's): an SDK retry of a write that applied changes nothing again.
        let update = |expect: LedgerState,
                      state: LedgerState,
                      retry_after: Option<DateTime<Utc>>| {
            let mut set = String::from(
                "SET #state = :state, error_class = :class, error_code = :code, error_message = :msg, failed_at = :at",
            );
            let mut u = self
                .update_record(held.invoice_id, held.sk)
                .condition_expression("claim_token = :token AND #state = :expect")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":expect", s(expect.as_str()))
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
            if !error.class.uses_an_attempt() {
                // The claim counted an attempt; a systemic failure gives it back.
                set.push_str(", attempts = attempts - :one");
                u = u.expression_attribute_values(":one", n(1));
            }
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
        let out = match update(LedgerState::Claimed, first.state, first.retry_after).await {
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
        match update(first.state, next.state, next.retry_after).await {
            Ok(_) => Ok(next.state),
            Err(e) if is_condition_failure(&e) => Ok(next.state),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    /// Records that a step will never be sent (e.g. superseded by a later step
    /// after missed runs). Only creates: an existing record is left as it is.
    pub(super) async fn record_skipped_item(
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
    pub(super) async fn record_deferred_item(
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

    /// Records a message its stopped channel did not try ([`crate::ports::Store::record_stopped`]).
    pub(super) async fn record_stopped_item(
        &self,
        invoice_id: &str,
        sk: &str,
        error: &SendError,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = self
            .update_record(invoice_id, sk)
            .update_expression(
                "SET #state = :retry, error_class = :class, error_code = :code, error_message = :msg, \
                 failed_at = :at, retry_after = :until",
            )
            .condition_expression(
                "attribute_not_exists(sk) OR (#state IN (:retry, :deferred) AND retry_after <= :until)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":retry", s(LedgerState::Retry.as_str()))
            .expression_attribute_values(":deferred", s(LedgerState::Deferred.as_str()))
            .expression_attribute_values(":class", s(error.class.as_str()))
            .expression_attribute_values(":code", s(&error.code))
            .expression_attribute_values(
                ":msg",
                s(error.message.chars().take(500).collect::<String>()),
            )
            .expression_attribute_values(":until", n(until.timestamp()))
            .expression_attribute_values(":at", s(rfc3339(at)))
            .send()
            .await;
        condition_failure_is_false(result.map(|_| ()), "UpdateItem").map(|_| ())
    }

    /// Ends the in-flight mark a claim put on the invoice, once the outcome is
    /// recorded: payments for it may commit again. Only the claim's own mark.
    pub(super) async fn release_invoice_item(
        &self,
        invoice_id: &str,
        token: &str,
    ) -> Result<(), StoreError> {
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
    pub(super) async fn mark_reminded_item(
        &self,
        invoice_id: &str,
        key: &str,
        sent_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut update = self
            .update_invoice(invoice_id)
            .condition_expression("attribute_exists(invoice_id)")
            .expression_attribute_values(":key", AttributeValue::Ss(vec![key.to_owned()]));
        update = match sent_at {
            Some(at) => update
                .update_expression("SET #sent = if_not_exists(#sent, :at) ADD reminded :key")
                .expression_attribute_names("#sent", crate::report::rollup::sent_at_attr(key))
                .expression_attribute_values(":at", s(rfc3339(at))),
            None => update.update_expression("ADD reminded :key"),
        };
        let result = update.send().await;
        condition_failure_is_false(result.map(|_| ()), "UpdateItem").map(|_| ())
    }

    /// Marks an escalated invoice as in collections: automated reminders stop.
    pub(super) async fn mark_in_collections_item(
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

fn is_condition_failure<E, R>(err: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

/// `Ok(false)` when a conditional write was refused by its condition.
pub(super) fn condition_failure_is_false<E, R>(
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
