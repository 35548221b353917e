//! The due index and the run state on DynamoDB: a page of open invoices in
//! a due-date range (a Query of `by_status_due`), and the record where runs
//! leave what they read ([`crate::reads`]).

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, NaiveDate, Utc};

use super::errors::store_error;
use super::outcomes::condition_failure_is_false;
use super::store::{
    page, rfc3339, s, DynamoPage, DynamoSnapshot, DynamoStore, Item, CUSTOMER_INDEX, DUE_INDEX,
    NEXT_AT_INDEX, PARTITION_KEY, RUN_STATE_KEY, SORT_KEY,
};

/// Beside the run state: the invalid items logged today (`day`, `keys`).
const WARNED_SK: &str = "warned";
use super::store::into_raw_invoice;
use crate::edit::WAKE_PARTITION;
use crate::ledger::INVOICE_SK;
use crate::next_at;
use crate::ports::{DueItem, StoreError};
use crate::reads::ReadState;

/// Whether an item read by its key is still an open invoice.
fn is_open(item: &Item) -> bool {
    item.get("status")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        == Some("open")
}

impl DynamoStore {
    /// One page of open invoices with `from <= due_date <= to`.
    pub(super) async fn due_page_query(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        start: Option<Item>,
    ) -> Result<DynamoPage, StoreError> {
        let query = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(DUE_INDEX)
            .key_condition_expression("#status = :open AND due_date BETWEEN :from AND :to")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":open", s("open"))
            .expression_attribute_values(":from", s(from.to_string()))
            .expression_attribute_values(":to", s(to.to_string()));
        self.index_page(query, start).await
    }

    /// One page of an index query, from `start`, of at most the page limit.
    async fn index_page(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        start: Option<Item>,
    ) -> Result<DynamoPage, StoreError> {
        let out = query
            .set_exclusive_start_key(start)
            .limit(self.page_limit())
            .send()
            .await
            .map_err(|e| store_error("Query", e))?;
        Ok(page(
            out.items,
            out.scanned_count,
            out.last_evaluated_key,
            DynamoSnapshot::of,
        ))
    }

    /// One page of shard `shard` of the next-at index up to `until`.
    pub(super) async fn scheduled_page_query(
        &self,
        shard: u32,
        until: DateTime<Utc>,
        start: Option<Item>,
    ) -> Result<DynamoPage, StoreError> {
        let query = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(NEXT_AT_INDEX)
            .key_condition_expression("#shard = :shard AND #next <= :until")
            .expression_attribute_names("#shard", next_at::SHARD_ATTRIBUTE)
            .expression_attribute_names("#next", next_at::ATTRIBUTE)
            .expression_attribute_values(":shard", s(shard.to_string()))
            .expression_attribute_values(":until", s(next_at::stamp(until)));
        self.index_page(query, start).await
    }

    /// Writes or removes an invoice's `next_at` if it still holds `held`
    /// ([`crate::ports::Store::set_next_at`]).
    pub(super) async fn write_next_at(
        &self,
        invoice_id: &str,
        to: Option<DateTime<Utc>>,
        held: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut update = self
            .update_record(invoice_id, INVOICE_SK)
            .expression_attribute_names("#next", next_at::ATTRIBUTE)
            .expression_attribute_names("#shard", next_at::SHARD_ATTRIBUTE)
            .expression_attribute_names("#pk", PARTITION_KEY);
        update = match held {
            Some(h) => update
                .condition_expression("attribute_exists(#pk) AND #next = :held")
                .expression_attribute_values(":held", s(h)),
            None => {
                update.condition_expression("attribute_exists(#pk) AND attribute_not_exists(#next)")
            }
        };
        update = match to {
            Some(t) => update
                .update_expression("SET #next = :next, #shard = :shard")
                .expression_attribute_values(":next", s(next_at::stamp(t)))
                .expression_attribute_values(":shard", s(next_at::shard(invoice_id).to_string())),
            None => update.update_expression("REMOVE #next, #shard"),
        };
        condition_failure_is_false(update.send().await.map(|_| ()), "UpdateItem")
    }

    /// A customer's open invoices, whole: the customer index (keys and
    /// status), then the items in batches, strongly consistent.
    pub(super) async fn open_invoices_query(
        &self,
        customer_id: &str,
    ) -> Result<Vec<crate::invoice::RawInvoice>, StoreError> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(CUSTOMER_INDEX)
                .key_condition_expression("customer_id = :c")
                .filter_expression("#sk = :invoice AND #status = :open")
                .expression_attribute_names("#sk", SORT_KEY)
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":c", s(customer_id))
                .expression_attribute_values(":invoice", s(INVOICE_SK))
                .expression_attribute_values(":open", s("open"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("Query", e))?;
            for item in out.items.unwrap_or_default() {
                if let Some(id) = item.get(PARTITION_KEY) {
                    keys.push(Item::from([
                        (PARTITION_KEY.to_owned(), id.clone()),
                        (SORT_KEY.to_owned(), s(INVOICE_SK)),
                    ]));
                }
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                break;
            }
        }
        Ok(self
            .batch_get(keys)
            .await?
            .into_iter()
            .filter(is_open)
            .map(into_raw_invoice)
            .collect())
    }

    /// What earlier runs read (strongly consistent: a run right after another sees it).
    pub(super) async fn run_state(&self) -> Result<ReadState, StoreError> {
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
            customer_settings: out
                .item
                .as_ref()
                .and_then(|i| i.get("customer_settings"))
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
            scheduled: out
                .item
                .as_ref()
                .and_then(|i| i.get("scheduled"))
                .and_then(|v| v.as_s().ok())
                .cloned(),
            rescheduled_at: at("rescheduled_at"),
        })
    }

    /// Records the state after a run that read all it planned. Instants
    /// only move forward: an older run finishing late changes nothing.
    pub(super) async fn record_run_state(&self, state: &ReadState) -> Result<(), StoreError> {
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
        if let (Some(policy), Some(t)) = (&state.scheduled, state.rescheduled_at) {
            set.push("scheduled = :p, rescheduled_at = :r");
            update = update
                .expression_attribute_values(":p", s(policy))
                .expression_attribute_values(":r", s(rfc3339(t)));
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

    /// Forgets the last reschedule (`dunning-admin reschedule`): the next
    /// run with the next-at index reads every open invoice and writes each
    /// one's `next_at` again. `false` when no run has recorded one.
    pub async fn forget_reschedule(&self) -> Result<bool, StoreError> {
        let out = self
            .update_record(RUN_STATE_KEY.0, RUN_STATE_KEY.1)
            .update_expression("REMOVE scheduled, rescheduled_at")
            .condition_expression("attribute_exists(scheduled)")
            .send()
            .await;
        condition_failure_is_false(out.map(|_| ()), "UpdateItem")
    }

    /// The invalid items logged today ([`crate::ports::Store::warned`]).
    pub(super) async fn warned_on(
        &self,
        day: NaiveDate,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, s(RUN_STATE_KEY.0))
            .key(SORT_KEY, s(WARNED_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        let item = out.item.unwrap_or_default();
        let today = item.get("day").and_then(|v| v.as_s().ok()) == Some(&day.to_string());
        Ok(match item.get("keys").and_then(|v| v.as_ss().ok()) {
            Some(keys) if today => keys.iter().cloned().collect(),
            _ => Default::default(),
        })
    }

    /// Adds to today's set; the first write of a day replaces the last day's.
    pub(super) async fn record_warned_on(
        &self,
        day: NaiveDate,
        keys: &[String],
    ) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let day = s(day.to_string());
        let set = AttributeValue::Ss(keys.to_vec());
        // Today's record: add to it. Another day's (or none): start it.
        // Two runs starting the same day race on the second; the loser adds.
        let write = |expression: &str, condition: &str| {
            self.update_record(RUN_STATE_KEY.0, WARNED_SK)
                .update_expression(expression)
                .condition_expression(condition)
                .expression_attribute_names("#keys", "keys")
                .expression_attribute_names("#day", "day")
                .expression_attribute_values(":k", set.clone())
                .expression_attribute_values(":d", day.clone())
                .send()
        };
        for _ in 0..3 {
            let added = write("ADD #keys :k", "#day = :d").await;
            if condition_failure_is_false(added.map(|_| ()), "UpdateItem")? {
                return Ok(());
            }
            // Refused: today's was started meanwhile (add to it), or a later
            // day's is there (a run for a later instant), which the next add leaves.
            let started = write(
                "SET #keys = :k, #day = :d",
                "attribute_not_exists(#day) OR #day < :d",
            )
            .await;
            if condition_failure_is_false(started.map(|_| ()), "UpdateItem")? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The open invoices whose wake records fall in `from..=to`
    /// ([`crate::ports::Store::woken`]): a Query of the wake partition, then
    /// the invoices in batches.
    pub(super) async fn woken_items(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DueItem<DynamoSnapshot>>, StoreError> {
        let mut ids = std::collections::BTreeSet::new();
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("#pk = :wake AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_names("#sk", SORT_KEY)
                .expression_attribute_values(":wake", s(WAKE_PARTITION))
                .expression_attribute_values(":from", s(from.to_string()))
                // `$` sorts after the `#` that ends the date: every record of `to`.
                .expression_attribute_values(":to", s(format!("{to}$")))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("Query", e))?;
            for item in out.items.unwrap_or_default() {
                if let Some(id) = item.get("for_invoice").and_then(|v| v.as_s().ok()) {
                    ids.insert(id.clone());
                }
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                break;
            }
        }
        let keys = ids
            .iter()
            .map(|id| {
                Item::from([
                    (PARTITION_KEY.to_owned(), s(id)),
                    (SORT_KEY.to_owned(), s(INVOICE_SK)),
                ])
            })
            .collect();
        let mut items: Vec<DueItem<DynamoSnapshot>> = self
            .batch_get(keys)
            .await?
            .into_iter()
            .filter(is_open)
            .map(|item| DueItem {
                snapshot: DynamoSnapshot::of(&item),
                raw: into_raw_invoice(item),
            })
            .collect();
        items.sort_by(|a, b| a.raw.id_hint().cmp(&b.raw.id_hint()));
        Ok(items)
    }
}
