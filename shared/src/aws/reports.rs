//! What the report reads ([`crate::report::ReportInput`]): the open
//! invoices through the due index, the rollup days of its windows (three
//! Queries of one partition), the open unapplied payments (one partition)
//! and the records of the customers with open invoices (batched reads).
//! Never a Scan: the items read follow the open invoices and the windows'
//! days, not the table's history.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::errors::store_error;
use super::store::{n, rfc3339, s, DynamoStore, PARTITION_KEY, SORT_KEY};
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

    /// What the report at `now` reads, for the ladder `steps` (name and
    /// days from the due date: the due days its steps' days fall on).
    pub async fn report_input(
        &self,
        now: DateTime<Utc>,
        steps: &[(String, i64)],
    ) -> Result<(ReportInput, ReportReads), StoreError> {
        let offsets = (
            steps.iter().map(|s| s.1).min().unwrap_or(0),
            steps.iter().map(|s| s.1).max().unwrap_or(0),
        );
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

/// Partition of the weekly report's records (`week#<ISO week>`).
pub const REPORT_PARTITION: &str = "#report";

/// What the report mode did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Weekly {
    /// Sent: the week, SES's message id, the items the report read.
    Sent {
        week: String,
        message_id: String,
        reads: ReportReads,
    },
    /// This week's report went before (a retried or repeated invocation).
    AlreadySent { week: String },
    /// Another invocation holds this week's claim and may be sending it.
    InFlight { week: String },
    /// `REPORT_EMAILS` is empty: nothing to do.
    NoRecipients,
}

/// Why the weekly report did not go.
#[derive(Debug, thiserror::Error)]
pub enum WeeklyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the report e-mail was not sent: {0}")]
    Send(crate::ports::SendError),
}

/// How long a claim on the week's report holds before another invocation
/// may take it over (a crash between SES's answer and the record can then
/// send it twice; nothing else does).
pub const WEEKLY_LEASE: Duration = Duration::minutes(15);

impl DynamoStore {
    /// Claims the week's report: `Ok(None)` when it was sent, `Ok(Some(false))`
    /// while another invocation's claim holds, `Ok(Some(true))` when ours.
    async fn claim_week(
        &self,
        week: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>, StoreError> {
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .item(PARTITION_KEY, s(REPORT_PARTITION))
            .item(SORT_KEY, s(format!("week#{week}")))
            .item("state", s("sending"))
            .item("claim_token", s(token))
            .item("claimed_at", s(rfc3339(now)))
            .item("lease_expires", n((now + WEEKLY_LEASE).timestamp()))
            .condition_expression(
                "attribute_not_exists(sk) OR (#state = :sending AND lease_expires < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Some(true)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                let record = self
                    .get_record(REPORT_PARTITION, &format!("week#{week}"))
                    .await?;
                let sent = record
                    .as_ref()
                    .and_then(|r| r.get("state"))
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|v| v == "sent");
                Ok(if sent { None } else { Some(false) })
            }
            Err(e) => Err(store_error("PutItem", e)),
        }
    }

    /// Gives our claim on the week's report up (its lease ends now).
    async fn release_week(&self, week: &str, token: &str) -> Result<(), StoreError> {
        self.client()
            .update_item()
            .table_name(self.table())
            .key(PARTITION_KEY, s(REPORT_PARTITION))
            .key(SORT_KEY, s(format!("week#{week}")))
            .update_expression("SET lease_expires = :zero")
            .condition_expression("claim_token = :token")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":token", s(token))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error("UpdateItem", e))
    }

    /// Records the week's report sent, on our claim.
    async fn record_week_sent(
        &self,
        week: &str,
        token: &str,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.client()
            .update_item()
            .table_name(self.table())
            .key(PARTITION_KEY, s(REPORT_PARTITION))
            .key(SORT_KEY, s(format!("week#{week}")))
            .update_expression(
                "SET #state = :sent, message_id = :id, sent_at = :at REMOVE lease_expires",
            )
            .condition_expression("claim_token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sent", s("sent"))
            .expression_attribute_values(":id", s(message_id))
            .expression_attribute_values(":at", s(rfc3339(now)))
            .expression_attribute_values(":token", s(token))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error("UpdateItem", e))
    }

    /// The weekly report: the week's claim, the report at `now` for the
    /// ladder `steps`, one e-mail to the first of `REPORT_EMAILS` with the
    /// others in copy, the record. Once per ISO week in the business's
    /// calendar: a retried or repeated invocation finds it sent.
    pub async fn send_weekly<M: crate::ports::Mailer>(
        &self,
        mailer: &M,
        config: &crate::config::Config,
        steps: &[(String, i64)],
        now: DateTime<Utc>,
    ) -> Result<Weekly, WeeklyError> {
        let Some((to, cc)) = config.report_emails.split_first() else {
            return Ok(Weekly::NoRecipients);
        };
        let tz = config.messages.business_timezone;
        let week = crate::report::weekly::week(now, tz);
        let token = format!("{}-{}", now.timestamp_millis(), std::process::id());
        match self.claim_week(&week, &token, Utc::now().max(now)).await? {
            None => return Ok(Weekly::AlreadySent { week }),
            Some(false) => return Ok(Weekly::InFlight { week }),
            Some(true) => {}
        }
        match self
            .weekly_message(mailer, config, steps, now, &week, to, cc)
            .await
        {
            Ok((message_id, reads)) => {
                self.record_week_sent(&week, &token, &message_id, Utc::now().max(now))
                    .await?;
                Ok(Weekly::Sent {
                    week,
                    message_id,
                    reads,
                })
            }
            Err(err) => {
                // Not sent (or SES's answer lost): a retry may take the claim at once.
                if let Err(e) = self.release_week(&week, &token).await {
                    tracing::warn!(error = %e, "could not release the weekly report's claim; it ends with its lease");
                }
                Err(err)
            }
        }
    }

    /// Reads, builds and sends the week's report; SES's message id.
    #[allow(clippy::too_many_arguments)]
    async fn weekly_message<M: crate::ports::Mailer>(
        &self,
        mailer: &M,
        config: &crate::config::Config,
        steps: &[(String, i64)],
        now: DateTime<Utc>,
        week: &str,
        to: &crate::contact::EmailAddress,
        cc: &[crate::contact::EmailAddress],
    ) -> Result<(String, ReportReads), WeeklyError> {
        let tz = config.messages.business_timezone;
        let (input, reads) = self.report_input(now, steps).await?;
        let report = crate::report::build(&input, steps, now, tz);
        let email = crate::report::weekly::email(&report, &config.messages.business_name, week);
        let envelope = crate::ports::Envelope {
            tags: vec![("dunning-kind".into(), "weekly-report".into())],
            headers: Vec::new(),
            reply_to: None,
            cc: cc.to_vec(),
        };
        let message_id = mailer
            .send(to, &email, &envelope)
            .await
            .map_err(WeeklyError::Send)?;
        Ok((message_id, reads))
    }
}
