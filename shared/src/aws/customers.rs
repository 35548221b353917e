//! Customer records on DynamoDB ([`crate::customer`]): read whole, changed
//! by a conditional put that expects the version read (a change that races
//! another is read and applied again).

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;

use super::claims::customer_pk;
use super::errors::store_error;
use super::store::{n, s, DynamoStore, Item, PARTITION_KEY, SORT_KEY};
use crate::customer::{Change, CustomerRecord, CUSTOMER_SK};
use crate::ports::StoreError;

/// Rounds of read, apply and conditional put before a change gives up.
const CHANGE_ROUNDS: usize = 5;

impl DynamoStore {
    /// The customer's record (strongly consistent), if it has one.
    pub async fn customer(&self, customer_id: &str) -> Result<Option<CustomerRecord>, StoreError> {
        let Some(mut item) = self
            .get_record(&customer_pk(customer_id), CUSTOMER_SK)
            .await?
        else {
            return Ok(None);
        };
        item.remove(PARTITION_KEY);
        item.remove(SORT_KEY);
        serde_dynamo::from_item(item).map(Some).map_err(|e| {
            StoreError::local("GetItem", format!("customer record {customer_id}: {e}"))
        })
    }

    /// Applies `change` to the customer's record (created if absent); returns
    /// the record and whether it changed (false: it already said so).
    pub async fn change_customer(
        &self,
        customer_id: &str,
        change: &Change,
    ) -> Result<(CustomerRecord, bool), StoreError> {
        for _ in 0..CHANGE_ROUNDS {
            let current = self.customer(customer_id).await?;
            let read_version = current.as_ref().map(|r| r.version);
            let mut record = current.unwrap_or_default();
            if !record.apply(change) {
                return Ok((record, false));
            }
            if change.is_setting() {
                // First, so that no run reads past a setting it was not told of.
                self.mark_customer_settings().await?;
            }
            let mut item: Item = serde_dynamo::to_item(&record)
                .map_err(|e| StoreError::local("PutItem", e.to_string()))?;
            item.insert(PARTITION_KEY.into(), s(customer_pk(customer_id)));
            item.insert(SORT_KEY.into(), s(CUSTOMER_SK));
            let put = self
                .client()
                .put_item()
                .table_name(self.table())
                .set_item(Some(item));
            let put = match read_version {
                Some(v) => put
                    .condition_expression("version = :v")
                    .expression_attribute_values(":v", n(v)),
                None => put.condition_expression("attribute_not_exists(sk)"),
            };
            match put.send().await {
                Ok(_) => return Ok((record, true)),
                Err(SdkError::ServiceError(e))
                    if e.err().is_conditional_check_failed_exception() =>
                {
                    continue
                }
                Err(e) => return Err(store_error("PutItem", e)),
            }
        }
        Err(StoreError::local(
            "PutItem",
            format!("customer record {customer_id} kept changing; try again"),
        ))
    }

    /// Tells runs that customer records hold settings
    /// (`ReadState::customer_settings`, on the run-state record).
    async fn mark_customer_settings(&self) -> Result<(), StoreError> {
        self.client()
            .update_item()
            .table_name(self.table())
            .key(PARTITION_KEY, s(super::store::RUN_STATE_KEY.0))
            .key(SORT_KEY, s(super::store::RUN_STATE_KEY.1))
            .update_expression("SET customer_settings = :t")
            .expression_attribute_values(":t", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
            .send()
            .await
            .map_err(|e| store_error("UpdateItem", e))?;
        Ok(())
    }

    /// The records of these customers, those that have one ([`DynamoStore::batch_get`]).
    pub(super) async fn customers_batch(
        &self,
        customer_ids: &[String],
    ) -> Result<HashMap<String, CustomerRecord>, StoreError> {
        let keys = customer_ids
            .iter()
            .map(|id| {
                HashMap::from([
                    (PARTITION_KEY.to_owned(), s(customer_pk(id))),
                    (SORT_KEY.to_owned(), s(CUSTOMER_SK)),
                ])
            })
            .collect();
        let mut out = HashMap::new();
        for mut item in self.batch_get(keys).await? {
            let Some(id) = item
                .get(PARTITION_KEY)
                .and_then(|v| v.as_s().ok())
                .and_then(|pk| pk.strip_prefix("customer#"))
                .map(str::to_owned)
            else {
                continue;
            };
            item.remove(PARTITION_KEY);
            item.remove(SORT_KEY);
            let record: CustomerRecord = serde_dynamo::from_item(item).map_err(|e| {
                StoreError::local("BatchGetItem", format!("customer record {id}: {e}"))
            })?;
            out.insert(id, record);
        }
        Ok(out)
    }
}
