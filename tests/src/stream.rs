//! The table's DynamoDB stream on the emulator (moto implements
//! `dynamodbstreams`), read shard by shard and handed to the `next-at`
//! function's code as Lambda's event source mapping would: a batch of
//! records in Lambda's event shape, parsed by `aws_lambda_events`.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::{StreamSpecification, StreamViewType};
use chrono::{DateTime, Utc};

/// A reader of one table's stream: where each shard was left.
pub struct StreamReader {
    endpoint: String,
    arn: String,
    iterators: BTreeMap<String, Option<String>>,
}

impl StreamReader {
    /// Turns the table's stream on (new images, as the template's) and
    /// reads it from its start.
    pub async fn enable(store: &dunning::aws::DynamoStore, endpoint: &str) -> Result<Self> {
        let out = store
            .client()
            .update_table()
            .table_name(store.table())
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewImage)
                    .build()?,
            )
            .send()
            .await?;
        let arn = out
            .table_description()
            .and_then(|d| d.latest_stream_arn())
            .context("the table has no stream")?
            .to_owned();
        Ok(Self {
            endpoint: endpoint.to_owned(),
            arn,
            iterators: BTreeMap::new(),
        })
    }

    fn call(&self, operation: &str, body: serde_json::Value) -> Result<serde_json::Value> {
        let text = ureq::post(&self.endpoint)
            .header(
                "X-Amz-Target",
                format!("DynamoDBStreams_20120810.{operation}"),
            )
            .header("Content-Type", "application/x-amz-json-1.0")
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .send(body.to_string())?
            .into_body()
            .read_to_string()?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Every record written since the last call, as one Lambda event.
    pub fn batch(&mut self) -> Result<aws_lambda_events::event::dynamodb::Event> {
        let stream = self.call("DescribeStream", serde_json::json!({"StreamArn": self.arn}))?;
        let shards: Vec<String> = stream["StreamDescription"]["Shards"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["ShardId"].as_str().map(str::to_owned))
            .collect();
        let mut records = Vec::new();
        for shard in shards {
            let iterator = match self.iterators.get(&shard) {
                Some(Some(it)) => it.clone(),
                Some(None) => continue,
                None => {
                    let out = self.call(
                        "GetShardIterator",
                        serde_json::json!({"StreamArn": self.arn, "ShardId": shard,
                            "ShardIteratorType": "TRIM_HORIZON"}),
                    )?;
                    out["ShardIterator"].as_str().unwrap_or_default().to_owned()
                }
            };
            let mut it = Some(iterator);
            while let Some(current) = it.clone() {
                let out = self.call(
                    "GetRecords",
                    serde_json::json!({"ShardIterator": current, "Limit": 1000}),
                )?;
                let got = out["Records"].as_array().cloned().unwrap_or_default();
                let empty = got.is_empty();
                records.extend(got);
                it = out["NextShardIterator"].as_str().map(str::to_owned);
                if empty {
                    break;
                }
            }
            self.iterators.insert(shard, it);
        }
        for r in &mut records {
            r["eventSourceARN"] = serde_json::Value::String(self.arn.clone());
        }
        Ok(serde_json::from_value(
            serde_json::json!({ "Records": records }),
        )?)
    }

    /// Hands what the stream holds to the `next-at` function's code, at `now`.
    pub async fn apply<A: dunning::run::Adapters<Store = dunning::aws::DynamoStore>>(
        &mut self,
        deps: &dunning::run::Deps<A>,
        now: DateTime<Utc>,
    ) -> Result<dunning::next_at::stream::Applied> {
        let event = self.batch()?;
        let (changes, _) = dunning::aws::stream::changes(&event);
        Ok(dunning::next_at::stream::apply(
            &deps.store,
            &deps.policy,
            deps.config.messages.business_timezone,
            now,
            changes,
        )
        .await?)
    }
}
