//! Pay-link records on DynamoDB: one item per link, partition
//! `link#<token>`, sort key `link` (outside the due index: no `status`),
//! deleted by the table's TTL (`link_ttl`) 30 days after the link expires.
//! Beside each invoice, the intents the pay page made for it (`intent#<key>`,
//! also deleted by TTL), and the page's consistent reads of invoices.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::errors::store_error;
use super::outcomes::condition_failure_is_false;
use super::store::{n, raw_invoice, rfc3339, s, DynamoStore, PARTITION_KEY, SORT_KEY};
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
            .iter()
            .map(raw_invoice)
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
