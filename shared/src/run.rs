//! One reminder run: select -> validate -> decide -> render -> claim -> send
//! -> record. Tolerant (a bad item or a failed send is counted, never fatal),
//! idempotent (every send is claimed in the ledger first) and bounded (one page
//! of the due index in memory, a fixed number of sends in flight).

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Days, NaiveDate, Utc};
use futures::stream::{self, StreamExt};

use crate::aws::store::{raw_invoice, Claim, ClaimOutcome, Held};
use crate::aws::{DynamoStore, SesMailer, SnsTexter, StoreError};
use crate::calendar::due_date_window;
use crate::config::Config;
use crate::contact::{EmailAddress, PhoneNumber};
use crate::invoice::Invoice;
use crate::ledger::{ledger_key, ErrorClass};
use crate::paylink::PayLinkSigner;
use crate::policy::{decide, Channel, Policy};
use crate::render::{EmailContent, ReminderContext, Renderer};
use crate::summary::RunSummary;

/// Everything a run needs, built once per process.
pub struct Deps {
    pub config: Config,
    pub policy: Policy,
    pub store: DynamoStore,
    pub mail: SesMailer,
    pub sms: SnsTexter,
    pub renderer: Renderer,
    pub links: PayLinkSigner,
}

impl Deps {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        let mut policy = Policy::default_ladder();
        policy.catch_up_days = config.catch_up_days;
        Self {
            store: DynamoStore::new(sdk, &config.table_name),
            mail: SesMailer::new(
                sdk,
                config.sender_email.clone(),
                config.ses_configuration_set.clone(),
            ),
            sms: SnsTexter::new(sdk),
            renderer: Renderer::new(),
            links: PayLinkSigner::new(&config.pay_link_base_url, config.pay_link_secret.as_bytes()),
            policy,
            config,
        }
    }
}

/// What to run: the instant that decides "today" for every customer, and
/// whether to send or only report what would be sent.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub as_of: DateTime<Utc>,
    pub dry_run: bool,
    /// Unique per run (the Lambda request id): it names claims in the ledger.
    pub run_id: String,
}

/// A rendered message and its validated address.
enum Message {
    Email(EmailAddress, EmailContent),
    Sms(PhoneNumber, String),
}

/// One (invoice, step, channel) message to claim and send.
struct Job {
    invoice: Invoice,
    step: String,
    local_date: NaiveDate,
    channel: Channel,
    message: Message,
}

enum JobResult {
    Sent,
    Failed(String),
    Skipped(&'static str),
    Planned,
}

/// Runs once over the due index. Fails only when the index cannot be read.
pub async fn run(deps: &Deps, req: &RunRequest) -> Result<RunSummary, StoreError> {
    let mut summary = RunSummary {
        run_id: req.run_id.clone(),
        as_of: Some(req.as_of),
        dry_run: req.dry_run,
        ..RunSummary::default()
    };
    let (from, to) = due_date_window(req.as_of, deps.policy.lead_days(), deps.policy.lag_days());
    let sequence = AtomicU64::new(0);
    let mut start = None;
    loop {
        let page = deps.store.due_page(from, to, start).await?;
        summary.pages += 1;
        summary.scanned_count += page.scanned_count;
        summary.items_read += page.items.len() as u64;
        let jobs: Vec<Job> = page
            .items
            .iter()
            .flat_map(|item| plan(deps, req, item, &mut summary))
            .collect();
        let results: Vec<(String, Channel, JobResult)> = stream::iter(jobs)
            .map(|job| async {
                let (step, channel) = (job.step.clone(), job.channel);
                (step, channel, execute(deps, req, job, &sequence).await)
            })
            .buffer_unordered(deps.config.send_concurrency)
            .collect()
            .await;
        for (step, channel, result) in results {
            tally(&mut summary, &step, channel, result);
        }
        start = page.next;
        if start.is_none() {
            break;
        }
    }
    tracing::info!(
        run_id = %summary.run_id,
        items_read = summary.items_read,
        eligible = summary.eligible,
        sent = summary.total_sent(),
        failed = summary.total_failed(),
        summary = %serde_json::to_string(&summary).unwrap_or_default(),
        "run finished"
    );
    Ok(summary)
}

/// Validates and decides one item; returns the messages it is due.
fn plan(
    deps: &Deps,
    req: &RunRequest,
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    summary: &mut RunSummary,
) -> Vec<Job> {
    let raw = raw_invoice(item);
    let invoice = match Invoice::parse(&raw) {
        Ok(invoice) => invoice,
        Err(rejected) => {
            let reason = rejected.reason.code();
            tracing::warn!(invoice_id = rejected.invoice_id.as_deref().unwrap_or("<none>"), %reason, "invalid invoice item skipped: {}", rejected.reason);
            summary.add_invalid(rejected.invoice_id, reason);
            return Vec::new();
        }
    };
    let due = match decide(
        &deps.policy,
        &invoice,
        req.as_of,
        deps.config.business_timezone,
    ) {
        Ok(due) => due,
        Err(hold) => {
            RunSummary::count(&mut summary.held, hold.as_str());
            return Vec::new();
        }
    };
    summary.eligible += 1;
    let step = due.step;
    let pay_link = invoice.pay_url.clone().unwrap_or_else(|| {
        let expires = req.as_of + Days::new(deps.config.pay_link_ttl_days);
        deps.links.sign(&invoice.id, expires)
    });
    let ctx = ReminderContext::new(
        &invoice,
        &deps.config.business_name,
        &step.name,
        due.local_date,
        pay_link,
    );
    let mut jobs = Vec::new();
    for &channel in &step.channels {
        let key = ledger_key(&step.name, channel);
        let message = match (channel, &invoice.email, &invoice.phone) {
            _ if invoice.reminded.contains(&key) => {
                tally(
                    summary,
                    &step.name,
                    channel,
                    JobResult::Skipped("already_sent"),
                );
                continue;
            }
            (Channel::Email, Some(to), _) => deps
                .renderer
                .email(&step.template, &ctx)
                .map(|c| Message::Email(to.clone(), c)),
            (Channel::Sms, _, Some(to)) => deps
                .renderer
                .sms(&step.template, &ctx)
                .map(|t| Message::Sms(to.clone(), t)),
            // No address for this channel on this invoice.
            _ => continue,
        };
        match message {
            Ok(message) => jobs.push(Job {
                invoice: invoice.clone(),
                step: step.name.clone(),
                local_date: due.local_date,
                channel,
                message,
            }),
            Err(err) => {
                tracing::error!(invoice_id = %invoice.id, step = %step.name, %channel, error = %err, "render failed");
                tally(
                    summary,
                    &step.name,
                    channel,
                    JobResult::Failed("render_error".into()),
                );
            }
        }
    }
    jobs
}

fn tally(summary: &mut RunSummary, step: &str, channel: Channel, result: JobResult) {
    let outcomes = summary.outcomes(step, channel.as_str());
    match result {
        JobResult::Sent => outcomes.sent += 1,
        JobResult::Planned => outcomes.planned += 1,
        JobResult::Skipped(reason) => {
            outcomes.skipped += 1;
            RunSummary::count(&mut summary.skipped, reason);
        }
        JobResult::Failed(code) => {
            outcomes.failed += 1;
            RunSummary::count(&mut summary.failed, &code);
        }
    }
}

/// Claims, sends and records one message.
#[tracing::instrument(skip_all, fields(invoice_id = %job.invoice.id, step = %job.step, channel = %job.channel))]
async fn execute(deps: &Deps, req: &RunRequest, job: Job, sequence: &AtomicU64) -> JobResult {
    if req.dry_run {
        return JobResult::Planned;
    }
    let (recipient_text, masked) = match &job.message {
        Message::Email(to, _) => (to.as_str().to_owned(), to.masked()),
        Message::Sms(to, _) => (to.as_str().to_owned(), to.masked()),
    };
    let claim = Claim {
        invoice: &job.invoice,
        step: &job.step,
        channel: job.channel,
        recipient: &recipient_text,
        local_date: job.local_date,
        run_id: &req.run_id,
        token: format!(
            "{}:{}",
            req.run_id,
            sequence.fetch_add(1, Ordering::Relaxed)
        ),
        now: Utc::now(),
        lease: deps.config.claim_lease,
    };
    let token = match deps.store.claim(&claim).await {
        Ok(ClaimOutcome::Claimed { token }) => token,
        Ok(ClaimOutcome::AlreadyClaimed) => return JobResult::Skipped("already_claimed"),
        Ok(ClaimOutcome::InvoiceChanged) => return JobResult::Skipped("invoice_changed"),
        Ok(ClaimOutcome::Conflict) => return JobResult::Skipped("claim_conflict"),
        Err(err) => {
            tracing::warn!(error = %err, "claim failed; a later run retries");
            return JobResult::Skipped("claim_error");
        }
    };
    let sent = match &job.message {
        Message::Email(to, email) => deps.mail.send(to, email).await,
        Message::Sms(to, text) => deps.sms.send(to, text).await,
    };
    let key = ledger_key(&job.step, job.channel);
    let id = &job.invoice.id;
    let held = Held {
        invoice_id: id,
        step: &job.step,
        channel: job.channel,
        token: &token,
    };
    match sent {
        Ok(message_id) => {
            tracing::info!(recipient = %masked, %message_id, "reminder sent");
            match deps.store.record_sent(&held, &message_id, Utc::now()).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(%message_id, "sent after our claim lease expired; another run may send too")
                }
                Err(err) => {
                    tracing::error!(%message_id, error = %err, "sent but not recorded; the claim stays until its lease expires")
                }
            }
            if let Err(err) = deps.store.mark_reminded(id, &key).await {
                tracing::warn!(error = %err, "could not mark the invoice reminded; the ledger still guards it");
            }
            JobResult::Sent
        }
        Err(err) => {
            tracing::warn!(recipient = %masked, class = err.class.as_str(), code = %err.code, "send failed");
            match deps.store.record_failure(&held, &err, Utc::now()).await {
                Ok(state)
                    if err.class == ErrorClass::Permanent
                        || state == crate::ledger::LedgerState::Failed =>
                {
                    if let Err(e) = deps.store.mark_reminded(id, &key).await {
                        tracing::warn!(error = %e, "could not mark the invoice reminded");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "failure not recorded; the claim stays until its lease expires")
                }
            }
            JobResult::Failed(err.code)
        }
    }
}
