//! Pay-link records on DynamoDB: one item per link, partition
//! `link#<token>`, sort key `link` (outside the due index: no `status`),
//! deleted by the table's TTL (`link_ttl`) 30 days after the link expires.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::errors::store_error;
use super::store::{n, rfc3339, s, DynamoStore, Item, PARTITION_KEY, SORT_KEY};
use crate::link::{LinkTarget, LinkToken, PayLink};
use crate::ports::{Links, StoreError};

/// The sort key of a link record.
pub const LINK_SK: &str = "link";

fn link_pk(token: &LinkToken) -> String {
    format!("link#{}", token.as_str())
}

fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

/// The link an item holds, if it is a well-formed link record.
fn link_of(token: &LinkToken, item: &Item) -> Option<PayLink> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
    let instant = |name: &str| {
        text(name)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let id = text("target_id")?.to_owned();
    let target = match text("target_kind")?.as_str() {
        "invoice" => LinkTarget::Invoice(id),
        "customer" => LinkTarget::Customer(id),
        _ => return None,
    };
    Some(PayLink {
        token: token.clone(),
        target,
        created_at: instant("created_at")?,
        expires_at: instant("expires_at")?,
        revoked_at: match text("revoked_at") {
            None => None,
            Some(_) => Some(instant("revoked_at")?),
        },
    })
}

impl Links for DynamoStore {
    async fn put_link(&self, link: &PayLink) -> Result<bool, StoreError> {
        let (kind, id) = match &link.target {
            LinkTarget::Invoice(id) => ("invoice", id),
            LinkTarget::Customer(id) => ("customer", id),
        };
        let mut put = self
            .client()
            .put_item()
            .table_name(self.table())
            .item(PARTITION_KEY, s(link_pk(&link.token)))
            .item(SORT_KEY, s(LINK_SK))
            .item("target_kind", s(kind))
            .item("target_id", s(id))
            .item("created_at", s(rfc3339(link.created_at)))
            .item("expires_at", s(rfc3339(link.expires_at)))
            // DynamoDB's TTL (infra/template.yaml) deletes the record after this.
            .item("link_ttl", n(link.record_ends().timestamp()))
            .condition_expression("attribute_not_exists(sk)");
        if let Some(at) = link.revoked_at {
            put = put.item("revoked_at", s(rfc3339(at)));
        }
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => Ok(false),
            Err(e) => Err(store_error("PutItem", e)),
        }
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
        let link = link_of(token, &item);
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
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => Ok(false),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }
}
