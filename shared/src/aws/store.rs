//! The DynamoDB store: one table holds invoices, their reminder ledger and
//! their payments, keyed (`invoice_id`, `sk`); the `by_status_due` index on
//! (`status`, `due_date`) lets a run read only open invoices in its window;
//! `by_customer_due` on (`customer_id`, `due_date`) finds a customer's
//! invoices for their statement.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::errors::store_error;
use crate::claim::GUARDED;
use crate::invoice::{Invoice, RawInvoice, RawValue};
use crate::ledger::INVOICE_SK;
use crate::ports::{DueItem, DuePage, StoreError};

pub const PARTITION_KEY: &str = "invoice_id";
pub const SORT_KEY: &str = "sk";
pub const DUE_INDEX: &str = "by_status_due";
/// The customer index on (`customer_id`, `due_date`): a customer's
/// invoices for their statement. It projects only the keys, `status` and
/// `paid_at`, so a run's and a payment's other writes never touch it.
pub const CUSTOMER_INDEX: &str = "by_customer_due";
/// The next-at index on (`next_shard`, `next_at`): the open invoices whose
/// next step has come ([`crate::next_at`]). Sparse: only invoices with a
/// `next_at` are in it. It projects the whole item, as the due index does:
/// a run decides from what it reads.
pub const NEXT_AT_INDEX: &str = "by_next_at";
/// The non-key attributes [`CUSTOMER_INDEX`] projects.
pub const CUSTOMER_INDEX_PROJECTS: [&str; 2] = ["status", "paid_at"];
/// The record where runs leave what they read ([`ReadState`]): outside the
/// due index (no `status`), and not an invoice (its `sk` is not `invoice`).
pub const RUN_STATE_KEY: (&str, &str) = ("#run", "read-state");

pub type Item = HashMap<String, AttributeValue>;

/// The store's snapshot of an invoice: its [`GUARDED`] attributes as read,
/// which a claim requires unchanged. Only those present are kept, each by
/// its place in [`GUARDED`]: a run holds one for every message it plans, so
/// it is a slice, not a map of names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DynamoSnapshot(Box<[(u8, AttributeValue)]>);

impl DynamoSnapshot {
    pub fn of(item: &Item) -> Self {
        Self(
            GUARDED
                .iter()
                .enumerate()
                .filter_map(|(i, &a)| item.get(a).map(|v| (i as u8, v.clone())))
                .collect(),
        )
    }

    /// The value `attr` had when read; `None` if it was absent (or is not
    /// one of [`GUARDED`]).
    pub fn get(&self, attr: &str) -> Option<&AttributeValue> {
        let i = GUARDED.iter().position(|&a| a == attr)?;
        self.0
            .iter()
            .find(|(at, _)| usize::from(*at) == i)
            .map(|(_, v)| v)
    }
}

/// A page of the due index as DynamoDB returns it.
pub type DynamoPage = DuePage<DynamoSnapshot, Item>;

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
    /// `email,sms`: the channels the customer accepts.
    #[serde(skip_serializing_if = "Option::is_none")]
    channels: Option<String>,
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Adds to `condition` that each of `attrs` is as `seen` gives it (or
/// absent there: still absent), with `#<tag><i>` / `:<tag><i>` placeholders.
pub(super) fn unchanged_since<'a>(
    mut update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    condition: &mut String,
    attrs: &[&str],
    seen: impl Fn(&str) -> Option<&'a AttributeValue>,
    tag: &str,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    for (i, attr) in attrs.iter().enumerate() {
        update = update.expression_attribute_names(format!("#{tag}{i}"), *attr);
        match seen(attr) {
            Some(v) => {
                condition.push_str(&format!(" AND #{tag}{i} = :{tag}{i}"));
                update = update.expression_attribute_values(format!(":{tag}{i}"), v.clone());
            }
            None => condition.push_str(&format!(" AND attribute_not_exists(#{tag}{i})")),
        }
    }
    update
}

/// A `SET a = .., b = .. REMOVE c, d` expression for these attributes, with
/// its placeholders on `update`.
pub(super) fn set_and_remove<'a>(
    mut update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    set: impl IntoIterator<Item = (&'a str, AttributeValue)>,
    remove: impl IntoIterator<Item = &'a str>,
) -> (aws_sdk_dynamodb::types::builders::UpdateBuilder, String) {
    let mut expression = String::new();
    for (i, (name, value)) in set.into_iter().enumerate() {
        expression.push_str(if i == 0 { "SET " } else { ", " });
        expression.push_str(&format!("#s{i} = :s{i}"));
        update = update
            .expression_attribute_names(format!("#s{i}"), name)
            .expression_attribute_values(format!(":s{i}"), value);
    }
    for (i, name) in remove.into_iter().enumerate() {
        expression.push_str(if i == 0 { " REMOVE " } else { ", " });
        expression.push_str(&format!("#r{i}"));
        update = update.expression_attribute_names(format!("#r{i}"), name);
    }
    (update, expression.trim_start().to_owned())
}

pub(super) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A page of a Query or Scan: each item as the raw record and the store's
/// `snapshot` of it, what DynamoDB read, and where the next page starts.
pub(super) fn page<S>(
    items: Option<Vec<Item>>,
    scanned_count: i32,
    last_evaluated_key: Option<Item>,
    snapshot: impl Fn(&Item) -> S,
) -> DuePage<S, Item> {
    DuePage {
        scanned_count: u64::try_from(scanned_count).unwrap_or(0),
        items: items
            .unwrap_or_default()
            .into_iter()
            .map(|item| DueItem {
                snapshot: snapshot(&item),
                raw: into_raw_invoice(item),
            })
            .collect(),
        next: last_evaluated_key.filter(|k| !k.is_empty()),
    }
}

/// Turns a DynamoDB item into the raw record [`Invoice::parse`] validates.
pub fn raw_invoice(item: &Item) -> RawInvoice {
    into_raw_invoice(item.clone())
}

/// [`raw_invoice`] of an item it consumes: its texts move rather than being
/// copied, so a page never holds an item twice.
pub fn into_raw_invoice(item: Item) -> RawInvoice {
    let mut raw = RawInvoice::default();
    for (name, value) in item {
        if let Some(v) = raw_value(value) {
            raw.insert(name, v);
        }
    }
    raw
}

/// An attribute's value as a [`RawValue`]; `None` for a `NULL` (no value).
fn raw_value(value: AttributeValue) -> Option<RawValue> {
    Some(match value {
        AttributeValue::S(t) => RawValue::Text(t),
        AttributeValue::N(t) => RawValue::Number(t),
        AttributeValue::Bool(b) => RawValue::Bool(b),
        AttributeValue::Ss(list) => RawValue::List(list),
        AttributeValue::Null(_) => return None,
        AttributeValue::M(_) => RawValue::Other("map"),
        AttributeValue::L(_) => RawValue::Other("list"),
        _ => RawValue::Other("binary or set"),
    })
}

/// The store over one table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Items per page of the due and next-at indexes (`Limit`).
    page_limit: i32,
}

/// Items per page of the due and next-at indexes (a run's reads, and the
/// report's open invoices), unless told otherwise. A run holds a page at a
/// time, and DynamoDB's own 1 MB pages hold about 6,700 small invoices
/// (about 13 MiB of a run's peak at 100,000 due, as the SDK's items and
/// their raw records). Smaller pages cost round trips, not reads: a Query is
/// charged by what it reads.
pub const PAGE_ITEMS: i32 = 1_000;

const _: () = assert!(
    GUARDED.len() <= u8::MAX as usize,
    "a snapshot numbers GUARDED in a u8"
);

impl DynamoStore {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: Client::new(sdk),
            table: table.into(),
            page_limit: PAGE_ITEMS,
        }
    }

    /// Pages of the due and next-at indexes of at most `n` items ([`PAGE_ITEMS`] by default).
    pub fn with_page_limit(mut self, n: i32) -> Self {
        self.page_limit = n.max(1);
        self
    }

    pub(super) fn page_limit(&self) -> i32 {
        self.page_limit
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// An UpdateItem on the record (`invoice_id`, `sk`).
    pub(super) fn update_record(&self, invoice_id: &str, sk: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(invoice_id))
            .key(SORT_KEY, s(sk))
    }

    /// An UpdateItem on the invoice item itself.
    pub(super) fn update_invoice(&self, invoice_id: &str) -> UpdateItemFluentBuilder {
        self.update_record(invoice_id, INVOICE_SK)
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
        let customers = GlobalSecondaryIndex::builder()
            .index_name(CUSTOMER_INDEX)
            .key_schema(key("customer_id", KeyType::Hash)?)
            .key_schema(key("due_date", KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .set_non_key_attributes(Some(
                        CUSTOMER_INDEX_PROJECTS.map(str::to_owned).to_vec(),
                    ))
                    .build(),
            )
            .build()
            .map_err(|e| StoreError::local("CreateTable", e.to_string()))?;
        let next = GlobalSecondaryIndex::builder()
            .index_name(NEXT_AT_INDEX)
            .key_schema(key(crate::next_at::SHARD_ATTRIBUTE, KeyType::Hash)?)
            .key_schema(key(crate::next_at::ATTRIBUTE, KeyType::Range)?)
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
            .attribute_definitions(attr("customer_id")?)
            .attribute_definitions(attr(crate::next_at::SHARD_ATTRIBUTE)?)
            .attribute_definitions(attr(crate::next_at::ATTRIBUTE)?)
            .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
            .key_schema(key(SORT_KEY, KeyType::Range)?)
            .global_secondary_indexes(index)
            .global_secondary_indexes(customers)
            .global_secondary_indexes(next)
            .send()
            .await
            .map_err(|e| store_error("CreateTable", e))?;
        Ok(())
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
            channels: crate::edit::canonical(invoice, "channels"),
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
            Err(e) => Err(store_error("PutItem", e)),
        }
    }

    /// One page of one segment of a parallel Scan over invoice items only
    /// (`sk = invoice`). For the audit, never for a run.
    pub async fn scan_invoices(
        &self,
        segment: i32,
        total: i32,
        start: Option<Item>,
    ) -> Result<DuePage<(), Item>, StoreError> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .segment(segment)
            .total_segments(total)
            .filter_expression("sk = :invoice")
            .expression_attribute_values(":invoice", s(INVOICE_SK))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| store_error("Scan", e))?;
        Ok(page(
            out.items,
            out.scanned_count,
            out.last_evaluated_key,
            |_| (),
        ))
    }

    /// The items with these keys (strongly consistent), those that exist:
    /// BatchGetItem, 100 keys a request; keys DynamoDB leaves unprocessed
    /// under load are asked again, 5 rounds at most. Keys must be distinct.
    pub(super) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(100) {
            let mut keys = chunk.to_vec();
            for _ in 0..5 {
                if keys.is_empty() {
                    break;
                }
                let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::local("BatchGetItem", e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| store_error("BatchGetItem", e))?;
                if let Some(mut items) = out.responses {
                    found.extend(items.remove(&self.table).unwrap_or_default());
                }
                if let Some(mut left) = out.unprocessed_keys {
                    keys = left.remove(&self.table).map(|k| k.keys).unwrap_or_default();
                }
            }
            if !keys.is_empty() {
                return Err(StoreError::local("BatchGetItem", "keys left unprocessed"));
            }
        }
        Ok(found)
    }

    /// The invoice item, as stored.
    pub async fn get_invoice(&self, invoice_id: &str) -> Result<Option<Item>, StoreError> {
        self.get_record(invoice_id, INVOICE_SK).await
    }

    /// One record under an invoice (strongly consistent), as stored.
    pub async fn get_record(&self, invoice_id: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(invoice_id))
            .key(SORT_KEY, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        Ok(out.item)
    }

    /// Every record under a partition (an invoice: the invoice, its ledger,
    /// its payments; or `unapplied`) as JSON, strongly consistent.
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
                // What was just written (a payment, a kept one) is there.
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("Query", e))?;
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

/// The reason code of each item of a cancelled transaction, in order (`None` where it passed).
pub(super) fn cancellation_codes(
    cancel: &aws_sdk_dynamodb::types::error::TransactionCanceledException,
) -> Vec<&str> {
    cancel
        .cancellation_reasons()
        .iter()
        .map(|r| r.code().unwrap_or("None"))
        .collect()
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;

    #[test]
    fn a_snapshot_keeps_each_guarded_attribute_present_as_read_and_nothing_else() {
        let item: Item = [
            ("invoice_id", s("INV-1")),
            ("amount", s("120.50")),
            ("amount_paid", n(0)),
            ("disputed", AttributeValue::Bool(false)),
            ("pay_url", s("https://pay.example/i/1")),
            ("reminded", s("not guarded")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let snapshot = DynamoSnapshot::of(&item);
        for &attr in GUARDED {
            assert_eq!(snapshot.get(attr), item.get(attr), "{attr}");
        }
        // Only the guarded ones present: 4 of the item's 6.
        assert_eq!(snapshot.0.len(), 4);
        assert_eq!(snapshot.get("reminded"), None);
        assert_eq!(snapshot.get("invoice_id"), None);
        assert_eq!(DynamoSnapshot::default().get("amount"), None);
    }
}
