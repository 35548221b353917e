//! The DynamoDB store: one table holds invoices, their reminder ledger and
//! their payments, keyed (`invoice_id`, `sk`); the `by_status_due` index on
//! (`status`, `due_date`) lets a run read only open invoices in its window.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, ReturnValue, ScalarAttributeType,
    TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Serialize;

use super::errors::SendError;
use crate::invoice::{Invoice, RawInvoice, RawValue};
use crate::ledger::{self, ErrorClass, LedgerState, INVOICE_SK, MAX_ATTEMPTS};
use crate::policy::Channel;

pub const PARTITION_KEY: &str = "invoice_id";
pub const SORT_KEY: &str = "sk";
pub const DUE_INDEX: &str = "by_status_due";

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, thiserror::Error)]
#[error("DynamoDB {operation} failed: {code}: {message}")]
pub struct StoreError {
    pub operation: &'static str,
    pub code: String,
    pub message: String,
}

impl StoreError {
    fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let e = super::classify(&err);
        Self {
            operation,
            code: e.code,
            message: e.message,
        }
    }

    fn local(operation: &'static str, message: impl Into<String>) -> Self {
        Self {
            operation,
            code: "Local".into(),
            message: message.into(),
        }
    }
}

/// One page of the due index.
#[derive(Debug, Default)]
pub struct DuePage {
    pub items: Vec<Item>,
    /// Items DynamoDB read for this page (what read capacity is charged on).
    pub scanned_count: u64,
    pub next: Option<Item>,
}

/// What a claim attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// We own the (invoice, step, channel) send until the lease expires.
    Claimed { token: String },
    /// A ledger record exists (sent, failed, or claimed by a live run).
    AlreadyClaimed,
    /// The invoice is no longer open or its payments changed since it was read.
    InvoiceChanged,
    /// Another transaction touched the same items at the same moment; a later run retries.
    Conflict,
}

/// The ledger record a claim holds: what `record_*` update, guarded by the token.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    pub invoice_id: &'a str,
    pub step: &'a str,
    pub channel: Channel,
    pub token: &'a str,
}

/// A claim request for one reminder.
#[derive(Debug, Clone)]
pub struct Claim<'a> {
    pub invoice: &'a Invoice,
    pub step: &'a str,
    pub channel: Channel,
    pub recipient: &'a str,
    pub local_date: NaiveDate,
    pub run_id: &'a str,
    pub token: String,
    pub now: DateTime<Utc>,
    pub lease: Duration,
}

/// The invoice item as written by the importer: the documented contract.
#[derive(Debug, Serialize)]
struct InvoiceItem<'a> {
    invoice_id: &'a str,
    sk: &'static str,
    customer_id: &'a str,
    customer_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<&'a str>,
    amount: String,
    currency: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount_paid: Option<&'a str>,
    due_date: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locale: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pay_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reminders_paused_until: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    disputed: bool,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Turns a DynamoDB item into the raw record [`Invoice::parse`] validates.
pub fn raw_invoice(item: &Item) -> RawInvoice {
    let mut raw = RawInvoice::default();
    for (name, value) in item {
        let v = match value {
            AttributeValue::S(t) => RawValue::Text(t.clone()),
            AttributeValue::N(t) => RawValue::Number(t.clone()),
            AttributeValue::Bool(b) => RawValue::Bool(*b),
            AttributeValue::Ss(list) => RawValue::List(list.clone()),
            AttributeValue::Null(_) => continue,
            AttributeValue::M(_) => RawValue::Other("map"),
            AttributeValue::L(_) => RawValue::Other("list"),
            _ => RawValue::Other("binary or set"),
        };
        raw.insert(name.clone(), v);
    }
    raw
}

/// The store over one table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: Client::new(sdk),
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with its due index, on-demand billing. The same
    /// definition is in `infra/template.yaml` (a test compares them).
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StoreError::local("CreateTable", e.to_string()))
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| StoreError::local("CreateTable", e.to_string()))
        };
        let index = GlobalSecondaryIndex::builder()
            .index_name(DUE_INDEX)
            .key_schema(key("status", KeyType::Hash)?)
            .key_schema(key("due_date", KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(|e| StoreError::local("CreateTable", e.to_string()))?;
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(PARTITION_KEY)?)
            .attribute_definitions(attr(SORT_KEY)?)
            .attribute_definitions(attr("status")?)
            .attribute_definitions(attr("due_date")?)
            .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
            .key_schema(key(SORT_KEY, KeyType::Range)?)
            .global_secondary_indexes(index)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("CreateTable", e))?;
        Ok(())
    }

    /// One page of open invoices with `from <= due_date <= to`.
    pub async fn due_page(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        start: Option<Item>,
    ) -> Result<DuePage, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("#status = :open AND due_date BETWEEN :from AND :to")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":open", s("open"))
            .expression_attribute_values(":from", s(from.to_string()))
            .expression_attribute_values(":to", s(to.to_string()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("Query", e))?;
        Ok(DuePage {
            scanned_count: u64::try_from(out.scanned_count).unwrap_or(0),
            items: out.items.unwrap_or_default(),
            next: out.last_evaluated_key.filter(|k| !k.is_empty()),
        })
    }

    /// Writes a new invoice; an existing one with the same id is left untouched
    /// and reported with `Ok(false)`.
    pub async fn insert_invoice(&self, invoice: &Invoice) -> Result<bool, StoreError> {
        let record = InvoiceItem {
            invoice_id: &invoice.id,
            sk: INVOICE_SK,
            customer_id: &invoice.customer_id,
            customer_name: &invoice.customer_name,
            email: invoice.email.as_ref().map(|e| e.as_str()),
            phone: invoice.phone.as_ref().map(|p| p.as_str()),
            amount: invoice.amount.amount.to_string(),
            currency: invoice.amount.currency.code(),
            amount_paid: invoice.amount_paid_text.as_deref(),
            due_date: invoice.due_date.to_string(),
            status: invoice.status.as_str(),
            timezone: invoice.timezone.map(|tz| tz.name()),
            locale: invoice.locale.as_deref(),
            pay_url: invoice.pay_url.as_deref(),
            issued_at: invoice.issued_at.as_deref(),
            reminders_paused_until: invoice.paused_until.map(rfc3339),
            disputed: invoice.disputed,
        };
        let item: Item = serde_dynamo::to_item(&record)
            .map_err(|e| StoreError::local("PutItem", e.to_string()))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(invoice_id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::from_sdk("PutItem", e)),
        }
    }

    /// Claims (invoice, step, channel): creates or takes over its ledger record
    /// in one transaction with a check that the invoice is still open and its
    /// payments unchanged. An expired lease or a due retry may be taken over.
    pub async fn claim(&self, c: &Claim<'_>) -> Result<ClaimOutcome, StoreError> {
        let now_secs = c.now.timestamp();
        let lease_expires = now_secs + i64::try_from(c.lease.as_secs()).unwrap_or(i64::MAX / 2);
        let ledger = Update::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(&c.invoice.id))
            .key(SORT_KEY, s(ledger::reminder_sk(c.step, c.channel)))
            .update_expression(
                "SET #state = :claimed, step = :step, channel = :channel, claim_token = :token, \
                 claimed_at = :now_text, lease_expires = :lease, run_id = :run, recipient = :to, \
                 local_date = :date, amount = :amount REMOVE retry_after ADD attempts :one",
            )
            .condition_expression(
                "attribute_not_exists(sk) OR (#state = :claimed AND lease_expires < :now) \
                 OR (#state = :retry AND retry_after <= :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":claimed", s(LedgerState::Claimed.as_str()))
            .expression_attribute_values(":retry", s(LedgerState::Retry.as_str()))
            .expression_attribute_values(":step", s(c.step))
            .expression_attribute_values(":channel", s(c.channel.as_str()))
            .expression_attribute_values(":token", s(&c.token))
            .expression_attribute_values(":now_text", s(rfc3339(c.now)))
            .expression_attribute_values(":now", n(now_secs))
            .expression_attribute_values(":lease", n(lease_expires))
            .expression_attribute_values(":run", s(c.run_id))
            .expression_attribute_values(":to", s(c.recipient))
            .expression_attribute_values(":date", s(c.local_date.to_string()))
            .expression_attribute_values(":amount", s(c.invoice.outstanding().to_string()))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(|e| StoreError::local("TransactWriteItems", e.to_string()))?;
        let mut check = ConditionCheck::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(&c.invoice.id))
            .key(SORT_KEY, s(INVOICE_SK))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":open", s("open"));
        check = match &c.invoice.amount_paid_text {
            Some(paid) => check
                .condition_expression("#status = :open AND amount_paid = :paid")
                .expression_attribute_values(":paid", s(paid)),
            None => {
                check.condition_expression("#status = :open AND attribute_not_exists(amount_paid)")
            }
        };
        let check = check
            .build()
            .map_err(|e| StoreError::local("TransactWriteItems", e.to_string()))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(ledger).build())
            .transact_items(TransactWriteItem::builder().condition_check(check).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(ClaimOutcome::Claimed {
                token: c.token.clone(),
            }),
            Err(SdkError::ServiceError(err)) => match err.err() {
                TransactWriteItemsError::TransactionCanceledException(cancel) => {
                    let codes: Vec<&str> = cancel
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None"))
                        .collect();
                    Ok(match codes.as_slice() {
                        ["ConditionalCheckFailed", ..] => ClaimOutcome::AlreadyClaimed,
                        [_, "ConditionalCheckFailed"] => ClaimOutcome::InvoiceChanged,
                        _ => ClaimOutcome::Conflict,
                    })
                }
                _ => Err(StoreError::from_sdk(
                    "TransactWriteItems",
                    SdkError::ServiceError(err),
                )),
            },
            Err(e) => Err(StoreError::from_sdk("TransactWriteItems", e)),
        }
    }

    /// Records a successful send on the claim we hold. `Ok(false)` means our
    /// lease had expired and another run took the claim over.
    pub async fn record_sent(
        &self,
        held: &Held<'_>,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(held.invoice_id))
            .key(SORT_KEY, s(ledger::reminder_sk(held.step, held.channel)))
            .update_expression("SET #state = :sent, message_id = :id, sent_at = :at REMOVE lease_expires, error_code, error_class, error_message")
            .condition_expression("claim_token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sent", s(LedgerState::Sent.as_str()))
            .expression_attribute_values(":id", s(message_id))
            .expression_attribute_values(":at", s(rfc3339(at)))
            .expression_attribute_values(":token", s(held.token))
            .send()
            .await;
        lost_lease_is_false(result.map(|_| ()), "UpdateItem")
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
        let key_sk = ledger::reminder_sk(held.step, held.channel);
        let class = error.class;
        let update = |state: LedgerState, retry_after: Option<i64>| {
            let mut u = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(PARTITION_KEY, s(held.invoice_id))
                .key(SORT_KEY, s(&key_sk))
                .condition_expression("claim_token = :token")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":state", s(state.as_str()))
                .expression_attribute_values(":class", s(class.as_str()))
                .expression_attribute_values(":code", s(&error.code))
                .expression_attribute_values(
                    ":msg",
                    s(error.message.chars().take(500).collect::<String>()),
                )
                .expression_attribute_values(":at", s(rfc3339(at)))
                .expression_attribute_values(":token", s(held.token))
                .return_values(ReturnValue::AllNew);
            u = match retry_after {
                Some(t) => u
                    .update_expression("SET #state = :state, error_class = :class, error_code = :code, error_message = :msg, failed_at = :at, retry_after = :retry REMOVE lease_expires")
                    .expression_attribute_values(":retry", n(t)),
                None => u.update_expression("SET #state = :state, error_class = :class, error_code = :code, error_message = :msg, failed_at = :at REMOVE lease_expires"),
            };
            u.send()
        };
        let first_delay = ledger::retry_delay(1).as_secs() as i64;
        let (state, retry_after) = match class {
            ErrorClass::Permanent => (LedgerState::Failed, None),
            ErrorClass::Transient => (LedgerState::Retry, Some(at.timestamp() + first_delay)),
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

    /// Copies a settled ledger key onto the invoice so later runs skip it
    /// without a write. Best effort: the ledger record is the authority.
    pub async fn mark_reminded(&self, invoice_id: &str, key: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(invoice_id))
            .key(SORT_KEY, s(INVOICE_SK))
            .update_expression("ADD reminded :key")
            .condition_expression("attribute_exists(invoice_id)")
            .expression_attribute_values(":key", AttributeValue::Ss(vec![key.to_owned()]))
            .send()
            .await;
        lost_lease_is_false(result.map(|_| ()), "UpdateItem").map(|_| ())
    }

    /// Every record under an invoice (the invoice, its ledger, its payments) as JSON.
    pub async fn history(&self, invoice_id: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        let mut records = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("invoice_id = :id")
                .expression_attribute_values(":id", s(invoice_id))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::from_sdk("Query", e))?;
            for item in out.items.unwrap_or_default() {
                let value: serde_json::Value = serde_dynamo::from_item(item)
                    .map_err(|e| StoreError::local("Query", e.to_string()))?;
                records.push(value);
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                return Ok(records);
            }
        }
    }
}

fn is_condition_failure<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

fn lost_lease_is_false<E, R>(
    result: Result<(), SdkError<E, R>>,
    operation: &'static str,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(()) => Ok(true),
        Err(e) if is_condition_failure(&e) => Ok(false),
        Err(e) => Err(StoreError::from_sdk(operation, e)),
    }
}
