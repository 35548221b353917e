//! The claim of the exactly-once protocol ([`crate::claim`]) on DynamoDB:
//! one `TransactWriteItems` (the contact log with optimistic versioning, then
//! per invoice its ledger record and a guarded update of the invoice item).
//! The cap is the domain's rule ([`crate::cap`]): this file only writes what
//! it decides. What follows a claim is in `outcomes`.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::errors::store_error;
use super::store::{
    cancellation_codes, n, rfc3339, s, DynamoSnapshot, DynamoStore, PARTITION_KEY, SORT_KEY,
};
use crate::cap::CapDecision;
use crate::claim::{Claim, ClaimOutcome, Lost, Member, CLAIM_ROUNDS, GUARDED};
use crate::ledger::{LedgerState, INVOICE_SK};
use crate::ports::StoreError;

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
        // Steps only move forward within the claim's cycle: an offset
        // reached in another cycle (an earlier instalment) does not hold it back.
        let other_cycle = match c.cycle {
            Some(_) => "attribute_not_exists(reminder_cycle) OR reminder_cycle <> :cycle",
            None => "attribute_exists(reminder_cycle)",
        };
        let mut condition = format!(
            "#status = :open AND (attribute_not_exists(reminder_offset) OR reminder_offset <= :offset OR {other_cycle}) \
             AND (attribute_not_exists(sending_until) OR sending_until < :now_secs)",
        );
        // `sending_until` holds payments back while the message is in flight
        // (see `payments`); recording the outcome releases it.
        let mut set = String::from(
            "SET reminder_offset = :offset, sending_until = :sending_until, sending_token = :sending_token",
        );
        if c.cycle.is_some() {
            set.push_str(", reminder_cycle = :cycle");
        }
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
        if let Some(cycle) = c.cycle {
            u = u.expression_attribute_values(":cycle", s(cycle));
        }
        u = super::store::unchanged_since(u, &mut condition, GUARDED, |a| m.snapshot.get(a), "g");
        if let Some(fee) = m.late_fee {
            set.push_str(", #fee = if_not_exists(#fee, :fee)");
            u = u
                .expression_attribute_names(
                    "#fee",
                    format!("late_fee#{}", crate::ledger::base_step(c.step)),
                )
                .expression_attribute_values(":fee", s(fee.to_string()));
        }
        if let Some(date) = m.plan_defaulted_on {
            set.push_str(", plan_defaulted_on = if_not_exists(plan_defaulted_on, :defaulted)");
            u = u.expression_attribute_values(":defaulted", s(date.to_string()));
        }
        if c.cycle.is_none() {
            set.push_str(" REMOVE reminder_cycle");
        }
        let u = u
            .update_expression(set)
            .condition_expression(condition)
            .build()
            .map_err(|e| StoreError::local("TransactWriteItems", e.to_string()))?;
        Ok(TransactWriteItem::builder().update(u).build())
    }

    /// Claims a message ([`crate::claim`]). Members lost to a race are
    /// dropped and the rest claimed again ([`CLAIM_ROUNDS`] rounds at most).
    pub(super) async fn claim_message(
        &self,
        c: &DynamoClaim<'_>,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut remaining: Vec<usize> = (0..c.members.len()).collect();
        let mut lost = Vec::new();
        for round in 0..CLAIM_ROUNDS {
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
            let members: Vec<(&str, &str)> = remaining
                .iter()
                .map(|&i| (c.members[i].invoice_id, c.members[i].sk.as_str()))
                .collect();
            let token = request_token(
                &c.token,
                round,
                &members,
                contacts.as_ref().map(|(_, v)| *v),
            );
            match self
                .client()
                .transact_write_items()
                .set_transact_items(Some(items))
                // The same token on the SDK's own retries of this one request: a
                // claim that committed but whose answer was lost is not refused as
                // a conflict on retry. Another round sends other items, so
                // another token (DynamoDB refuses a token reused with other
                // items: IdempotentParameterMismatch).
                .client_request_token(token)
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
}

/// A `ClientRequestToken` (at most 36 characters) for one round of a claim:
/// derived from the claim's token, the round, the members it writes
/// (invoice, ledger key) and the contact log's version it expects, so it is
/// never reused with other items.
fn request_token(
    claim_token: &str,
    round: usize,
    members: &[(&str, &str)],
    contacts_version: Option<Option<i64>>,
) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(claim_token.as_bytes());
    h.update([0]);
    h.update((round as u64).to_be_bytes());
    for (invoice, sk) in members {
        h.update(invoice.as_bytes());
        h.update([0]);
        h.update(sk.as_bytes());
        h.update([0]);
    }
    h.update(format!("{contacts_version:?}").as_bytes());
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod token_tests {
    use super::request_token;

    #[test]
    fn a_request_token_changes_with_the_items_and_holds_for_the_same_ones() {
        let members = [
            ("INV-1", "reminder#due#email"),
            ("INV-2", "reminder#due#email"),
        ];
        let first = request_token("run-1:7", 0, &members, Some(Some(3)));
        assert_eq!(first.len(), 32);
        // The SDK's retries of one request: the same items, the same token.
        assert_eq!(first, request_token("run-1:7", 0, &members, Some(Some(3))));
        // A later round without a member lost to a race, or expecting another
        // contact-log version, or another claim: each another token.
        let others = [
            request_token("run-1:7", 1, &members[..1], Some(Some(3))),
            request_token("run-1:7", 1, &members, Some(Some(3))),
            request_token("run-1:7", 0, &members, Some(Some(4))),
            request_token("run-1:7", 0, &members, None),
            request_token("run-1:8", 0, &members, Some(Some(3))),
        ];
        for (i, other) in others.iter().enumerate() {
            assert_ne!(&first, other, "case {i}");
        }
    }
}
