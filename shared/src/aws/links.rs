//! Pay-link records on DynamoDB: one item per link, partition
//! `link#<token>`, sort key `link` (outside the due index: no `status`),
//! deleted by the table's TTL (`link_ttl`) 30 days after the link expires.
//! Beside each invoice, the intents the pay page made for it (`intent#<key>`,
//! also deleted by TTL), and the page's consistent reads of invoices; for a
//! customer's statement, their invoices through the customer index and the
//! payment records of each.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, NaiveDate, Utc};

use super::errors::store_error;
use super::outcomes::condition_failure_is_false;
use super::store::{
    into_raw_invoice, n, raw_invoice, rfc3339, s, DynamoStore, Item, CUSTOMER_INDEX, PARTITION_KEY,
    SORT_KEY,
};
use crate::invoice::RawInvoice;
use crate::ledger::INVOICE_SK;
use crate::link::{LinkToken, PayLink, StoredIntent};
use crate::ports::{Links, StoreError};

/// The sort key of a link record.
pub const LINK_SK: &str = "link";

/// A text attribute of an item, for the records' `from_text_fields`.
fn text_of<'a>(
    item: &'a std::collections::HashMap<String, AttributeValue>,
) -> impl Fn(&str) -> Option<&'a str> + 'a {
    move |name| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    }
}

fn link_pk(token: &LinkToken) -> String {
    format!("link#{}", token.as_str())
}

impl Links for DynamoStore {
    async fn change_customer_record(
        &self,
        customer_id: &str,
        change: &crate::customer::Change,
    ) -> Result<bool, StoreError> {
        Ok(self.change_customer(customer_id, change).await?.1)
    }

    async fn put_link(&self, link: &PayLink) -> Result<bool, StoreError> {
        let mut put = self
            .client()
            .put_item()
            .table_name(self.table())
            .item(PARTITION_KEY, s(link_pk(&link.token)))
            .item(SORT_KEY, s(LINK_SK))
            // DynamoDB's TTL (infra/template.yaml) deletes the record after this.
            .item("link_ttl", n(link.record_ends().timestamp()))
            .condition_expression("attribute_not_exists(sk)");
        for (name, value) in link.text_fields() {
            put = put.item(name, s(value));
        }
        condition_failure_is_false(put.send().await.map(|_| ()), "PutItem")
    }

    async fn get_link(&self, token: &LinkToken) -> Result<Option<PayLink>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, s(link_pk(token)))
            .key(SORT_KEY, s(LINK_SK))
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let link = PayLink::from_text_fields(token, text_of(&item));
        if link.is_none() {
            // The token is a capability: never logged.
            tracing::warn!("unreadable pay-link record ignored");
        }
        Ok(link)
    }

    async fn revoke_link(&self, token: &LinkToken, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(PARTITION_KEY, s(link_pk(token)))
            .key(SORT_KEY, s(LINK_SK))
            .update_expression("SET revoked_at = if_not_exists(revoked_at, :at)")
            .condition_expression("attribute_exists(sk)")
            .expression_attribute_values(":at", AttributeValue::S(rfc3339(at)))
            .send()
            .await;
        condition_failure_is_false(result.map(|_| ()), "UpdateItem")
    }

    async fn statement_invoices(
        &self,
        customer_id: &str,
        paid_since: NaiveDate,
    ) -> Result<(Vec<RawInvoice>, bool), StoreError> {
        // The index's items are small (keys, status, paid_at): a customer's
        // whole history costs a few reads. Its reads are eventually
        // consistent; the items themselves are then read strongly.
        let mut found: Vec<(String, bool)> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(CUSTOMER_INDEX)
                .key_condition_expression("customer_id = :c")
                // A date bounds any RFC 3339 instant of that day or later.
                .filter_expression("sk = :invoice AND (#status = :open OR paid_at >= :since)")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":c", s(customer_id))
                .expression_attribute_values(":invoice", s(INVOICE_SK))
                .expression_attribute_values(":open", s("open"))
                .expression_attribute_values(":since", s(paid_since.to_string()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("Query", e))?;
            for item in out.items.unwrap_or_default() {
                let text = text_of(&item);
                if let Some(id) = text(PARTITION_KEY) {
                    found.push((id.to_owned(), text("status") == Some("open")));
                }
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                break;
            }
        }
        let (ids, more) = crate::report::statement_picks(&found);
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        Ok((self.page_invoices(&ids).await?, more))
    }

    async fn payments_received(
        &self,
        invoice_id: &str,
    ) -> Result<Vec<crate::report::Received>, StoreError> {
        let mut received = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("invoice_id = :id AND begins_with(sk, :payment)")
                .expression_attribute_values(":id", s(invoice_id))
                .expression_attribute_values(":payment", s(crate::ledger::PAYMENT_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("Query", e))?;
            received.extend(out.items.unwrap_or_default().iter().filter_map(|item| {
                let sk = text_of(item)(SORT_KEY)?;
                crate::report::Received::from_record(invoice_id, sk, &raw_invoice(item))
            }));
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                return Ok(received);
            }
        }
    }

    async fn page_invoices(&self, ids: &[&str]) -> Result<Vec<RawInvoice>, StoreError> {
        // At most 40 ids a link. BatchGetItem refuses a key named twice.
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let keys = ids
            .iter()
            .map(|id| {
                [
                    (PARTITION_KEY.to_owned(), s(*id)),
                    (SORT_KEY.to_owned(), s(INVOICE_SK)),
                ]
                .into_iter()
                .collect()
            })
            .collect();
        Ok(self
            .batch_get(keys)
            .await?
            .into_iter()
            .map(into_raw_invoice)
            .collect())
    }

    async fn get_intent(&self, invoice_id: &str) -> Result<Option<StoredIntent>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, s(StoredIntent::partition(invoice_id)))
            .key(SORT_KEY, s(StoredIntent::SORT_KEY))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        Ok(out
            .item
            .and_then(|item| StoredIntent::from_text_fields(text_of(&item))))
    }

    async fn put_intent(
        &self,
        invoice_id: &str,
        intent: &StoredIntent,
        replacing: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut put = self
            .client()
            .put_item()
            .table_name(self.table())
            .item(PARTITION_KEY, s(StoredIntent::partition(invoice_id)))
            .item(SORT_KEY, s(StoredIntent::SORT_KEY))
            .item("link_ttl", n(intent.record_ends().timestamp()));
        for (name, value) in intent.text_fields() {
            put = put.item(name, s(value));
        }
        put = match replacing {
            None => put.condition_expression("attribute_not_exists(sk)"),
            Some(old) => put
                .condition_expression("intent_id = :old")
                .expression_attribute_values(":old", s(old)),
        };
        condition_failure_is_false(put.send().await.map(|_| ()), "PutItem")
    }
}
