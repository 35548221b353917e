//! What the report reads ([`crate::report::ReportInput`]): the open
//! invoices through the due index, the rollup days of its windows (three
//! Queries of one partition), the open unapplied payments (one partition)
//! and the records of the customers with open invoices (batched reads).
//! Never a Scan: the items read follow the open invoices and the windows'
//! days, not the table's history.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::errors::store_error;
use super::store::{s, DynamoStore, PARTITION_KEY, SORT_KEY};
use crate::invoice::Invoice;
use crate::money::Currency;
use crate::ports::{Store, StoreError};
use crate::report::{rollup, ReportInput, Rollup, EFFECT_DAYS};

/// How many items each read took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReportReads {
    pub open_invoices: u64,
    pub rollup_days: u64,
    pub unapplied: u64,
    pub customers: u64,
}

impl ReportReads {
    pub fn total(&self) -> u64 {
        self.open_invoices + self.rollup_days + self.unapplied + self.customers
    }
}

impl DynamoStore {
    /// Every open invoice, through the due index (all due dates), with what
    /// it got; and how many open items are not valid invoices.
    pub async fn open_invoices(
        &self,
    ) -> Result<(Vec<(Invoice, Vec<rollup::Sent>)>, u64, u64), StoreError> {
        // As text, every four-digit year sorts between these.
        let (from, to) = (
            NaiveDate::from_ymd_opt(1, 1, 1).expect("a date"),
            NaiveDate::from_ymd_opt(9999, 12, 31).expect("a date"),
        );
        let (mut open, mut invalid, mut read, mut start) = (Vec::new(), 0, 0, None);
        loop {
            let page = self.due_page(from, to, start).await?;
            read += page.scanned_count;
            for item in page.items {
                match Invoice::parse(&item.raw) {
                    Ok(invoice) => open.push((invoice, rollup::sends(&item.raw))),
                    Err(_) => invalid += 1,
                }
            }
            start = page.next;
            if start.is_none() {
                return Ok((open, invalid, read));
            }
        }
    }

    /// The rollup's `kind#<date>` items from `from` to `to`.
    async fn rollup_days(
        &self,
        kind: &str,
        from: NaiveDate,
        to: NaiveDate,
        into: &mut Rollup,
    ) -> Result<u64, StoreError> {
        let (mut read, mut start) = (0, None);
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("#pk = :p AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_names("#sk", SORT_KEY)
                .expression_attribute_values(":p", s(rollup::PARTITION))
                .expression_attribute_values(":from", s(format!("{kind}{from}")))
                .expression_attribute_values(":to", s(format!("{kind}{to}")))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("Query", e))?;
            read += u64::try_from(out.count).unwrap_or_default();
            for item in out.items.unwrap_or_default() {
                let Some(sk) = item.get(SORT_KEY).and_then(|v| v.as_s().ok()) else {
                    continue;
                };
                let attrs = item
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_n().ok()?.parse::<Decimal>().ok()?)))
                    .collect();
                into.days.insert(sk.clone(), attrs);
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                return Ok(read);
            }
        }
    }

    /// What the report at `now` reads, for a ladder whose steps are between
    /// `offsets.0` and `offsets.1` days from the due date.
    pub async fn report_input(
        &self,
        now: DateTime<Utc>,
        offsets: (i64, i64),
    ) -> Result<(ReportInput, ReportReads), StoreError> {
        let mut reads = ReportReads::default();
        let (open, invalid, read) = self.open_invoices().await?;
        reads.open_invoices = read;
        let today = now.date_naive();
        // The windows: DSO and CEI's 90 days of money, the effectiveness
        // table's days of sends, and the due dates whose steps fall in it.
        let from = today - Duration::days(EFFECT_DAYS.max(90));
        let mut rollup = Rollup::default();
        reads.rollup_days += self
            .rollup_days(rollup::MONEY, from, today, &mut rollup)
            .await?;
        reads.rollup_days += self
            .rollup_days(rollup::SENT, from, today, &mut rollup)
            .await?;
        reads.rollup_days += self
            .rollup_days(
                rollup::DUE,
                from - Duration::days(offsets.1.max(0)),
                today - Duration::days(offsets.0.min(0)),
                &mut rollup,
            )
            .await?;
        // The partition's records, open or not, are what is read.
        let unapplied_items = self.unapplied(true).await?;
        reads.unapplied = unapplied_items.len() as u64;
        let unapplied = unapplied_items
            .iter()
            .filter(|i| i["state"] == "open")
            .filter_map(|i| {
                Some((
                    Currency::parse(i["currency"].as_str()?)?,
                    i["amount"].as_str()?.parse::<Decimal>().ok()?,
                ))
            })
            .collect();
        let mut ids: Vec<String> = open.iter().map(|(i, _)| i.customer_id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        let customers = self.customers(&ids).await?;
        reads.customers = ids.len() as u64;
        Ok((
            ReportInput {
                open,
                invalid,
                rollup,
                unapplied,
                customers,
            },
            reads,
        ))
    }
}
