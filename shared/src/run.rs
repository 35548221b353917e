//! One reminder run: select -> validate -> decide -> group by customer ->
//! claim -> send -> record. Tolerant (a bad item or a failed send is counted,
//! never fatal), idempotent (every send is claimed in the ledger first) and
//! bounded (a fixed number of customers in flight).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate, Utc};
use futures::stream::{self, StreamExt};

use crate::aws::claims::{guarded, Claim, ClaimOutcome, Held, Member, MAX_COMBINED};
use crate::aws::store::{raw_invoice, Item};
use crate::aws::{DynamoStore, SesMailer, SnsTexter, StoreError};
use crate::config::Config;
use crate::contact::{EmailAddress, PhoneNumber};
use crate::decide::{decide, late_fee_due, Readiness};
use crate::fanout::{per_invocation_rate, workers_needed, Shard, WorkOrder};
use crate::invoice::Invoice;
use crate::ledger::{escalation_sk, ledger_key, reminder_sk, ErrorClass, LedgerState, ESCALATION};
use crate::money::Money;
use crate::paylink::PayLinkSigner;
use crate::policy::{Action, Channel, Policy, PolicyLoadError, Step};
use crate::rate::RateLimiter;
use crate::render::{InvoiceLine, Locale, ReminderContext, Renderer};
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
    /// The work queue a run fans out to (`WORK_QUEUE_URL`), if any.
    pub queue: Option<crate::aws::queue::WorkQueue>,
}

/// What a run's sends share: the rates (`EMAIL_RATE` emails and `SMS_RATE`
/// SMS parts per second, or a worker's share of them), and the earliest
/// instant the customer cap deferred a reminder to.
struct Sending {
    email: RateLimiter,
    sms: RateLimiter,
    deferred_until: std::sync::Mutex<Option<DateTime<Utc>>>,
}

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Policy(#[from] PolicyLoadError),
    #[error("the policy has an escalation step but ESCALATION_TOPIC_ARN is not set")]
    NoEscalationTopic,
    #[error(transparent)]
    Templates(#[from] crate::render::OverrideError),
}

impl Deps {
    /// Loads the policy (`POLICY_FILE`, else the compiled-in default) and builds the clients.
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Result<Self, SetupError> {
        let renderer = match &config.template_dir {
            None => Renderer::new(),
            Some(dir) => Renderer::with_overrides(std::path::Path::new(dir))?,
        };
        let policy = Policy::load(config.policy_file.as_deref(), |t| renderer.has_template(t))?;
        if policy.steps().iter().any(|s| s.action == Action::Escalate)
            && config.escalation_topic_arn.is_none()
        {
            return Err(SetupError::NoEscalationTopic);
        }
        Ok(Self {
            store: DynamoStore::new(sdk, &config.table_name),
            mail: SesMailer::new(
                sdk,
                config.sender_email.clone(),
                config.ses_configuration_set.clone(),
            )
            .with_reply_to(config.reply_to.clone())
            .with_bcc(config.bcc.clone()),
            sms: SnsTexter::new(sdk),
            links: PayLinkSigner::new(&config.pay_link_base_url, config.pay_link_secret.as_bytes()),
            queue: config
                .work_queue_url
                .as_deref()
                .map(|url| crate::aws::queue::WorkQueue::new(sdk, url)),
            renderer,
            policy,
            config,
        })
    }
}

impl Deps {
    /// The invoice's own `pay_url`, else a link signed to stay valid
    /// `PAY_LINK_TTL_DAYS` after `as_of`.
    pub fn pay_link(&self, invoice: &Invoice, as_of: DateTime<Utc>) -> String {
        invoice.pay_url.clone().unwrap_or_else(|| {
            self.links.sign(
                &invoice.id,
                as_of + Days::new(self.config.pay_link_ttl_days),
            )
        })
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
    /// When the run must be finished (the Lambda deadline). It takes no new
    /// work once less than `DEADLINE_MARGIN_SECONDS` is left, so every claim
    /// it makes gets its outcome recorded; the next run continues.
    pub deadline: Option<Instant>,
    /// A worker's order: its shard of the customers and the due dates the
    /// queuing run read. `None`: a scheduled run, which may fan out.
    pub order: Option<WorkOrder>,
    /// Record what this run read for the next ones ([`crate::reads`]); only
    /// scheduled runs do (a worker or a rehearsal for another instant does not).
    pub record_reads: bool,
}

impl RunRequest {
    pub fn new(as_of: DateTime<Utc>, run_id: impl Into<String>) -> Self {
        Self {
            as_of,
            dry_run: false,
            run_id: run_id.into(),
            deadline: None,
            order: None,
            record_reads: true,
        }
    }

    /// The run of one worker's order.
    pub fn worker(order: WorkOrder) -> Self {
        Self {
            as_of: order.as_of,
            dry_run: false,
            run_id: format!("{}/{}", order.run_id, order.shard.index),
            deadline: None,
            order: Some(order),
            record_reads: false,
        }
    }

    fn shard(&self) -> Option<Shard> {
        self.order.as_ref().map(|o| o.shard)
    }

    /// The margin kept free before the deadline: the configured one, or a
    /// third of the time left at the start when that is shorter (a function
    /// with a short timeout still gets work done).
    fn margin(&self, configured: std::time::Duration) -> std::time::Duration {
        self.deadline.map_or(configured, |d| {
            configured.min(d.saturating_duration_since(Instant::now()) / 3)
        })
    }

    /// The time left for work before the deadline, `margin` kept free.
    fn time_for_work(&self, margin: Duration) -> Option<Duration> {
        self.deadline.map(|d| {
            d.saturating_duration_since(Instant::now())
                .saturating_sub(margin)
        })
    }

    /// True when no more than `margin` is left before the deadline.
    fn out_of_time(&self, margin: std::time::Duration) -> bool {
        self.deadline
            .is_some_and(|d| d.saturating_duration_since(Instant::now()) <= margin)
    }
}

/// An address on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Address {
    Email(EmailAddress),
    Sms(PhoneNumber),
}

impl Address {
    fn text(&self) -> &str {
        match self {
            Self::Email(a) => a.as_str(),
            Self::Sms(p) => p.as_str(),
        }
    }

    fn masked(&self) -> String {
        match self {
            Self::Email(a) => a.masked(),
            Self::Sms(p) => p.masked(),
        }
    }
}

/// One invoice due a step on one channel in this run. A run holds every
/// candidate until all pages are read (to group a customer's invoices), so it
/// keeps only what sending needs: the parsed invoice, shared by its channels,
/// and the item's guarded attributes for the claim; the pay link is signed
/// when the message is sent.
struct Candidate<'p> {
    invoice: Arc<Invoice>,
    guarded: Arc<Item>,
    step: &'p Step,
    channel: Channel,
    address: Address,
    local_date: NaiveDate,
    superseded: Arc<[&'p Step]>,
    /// The late fee this step adds now, if it has one not yet applied.
    late_fee: Option<Money>,
}

/// One message: a customer's invoices at one step on one channel.
struct Message<'p> {
    step: &'p Step,
    channel: Channel,
    address: Address,
    members: Vec<Candidate<'p>>,
}

/// An invoice due an escalation step.
struct Escalation<'p> {
    invoice: Invoice,
    guarded: Item,
    step: &'p Step,
    local_date: NaiveDate,
    superseded: Vec<&'p Step>,
}

#[derive(Clone)]
enum Outcome {
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
    let (plan, state, every) = match &req.order {
        Some(order) => (
            crate::reads::ReadPlan {
                full: false,
                ranges: order.ranges.clone(),
            },
            Default::default(),
            Default::default(),
        ),
        None => read_plan(deps, req).await,
    };
    summary.full_read = plan.full;
    summary.due_date_ranges = plan.ranges.len() as u64;
    let mut candidates = Vec::new();
    let mut escalations = Vec::new();
    let margin = req.margin(deps.config.deadline_margin);
    let mut intake = Intake::new(deps, req, margin);
    'read: for &(from, to) in &plan.ranges {
        let mut start = None;
        loop {
            if req.out_of_time(margin) {
                summary.stopped_early = true;
                tracing::warn!(
                    pages = summary.pages,
                    "time budget reached while reading; the next run reads on"
                );
                break 'read;
            }
            let page = read_page(deps, from, to, start).await?;
            summary.pages += 1;
            summary.scanned_count += page.scanned_count;
            summary.items_read += page.items.len() as u64;
            for item in page.items {
                consider(
                    deps,
                    req,
                    item,
                    &mut summary,
                    &mut intake,
                    &mut candidates,
                    &mut escalations,
                );
            }
            start = page.next;
            if start.is_none() {
                break;
            }
        }
    }
    if let Some(workers) = fan_out(deps, req, &plan.ranges, intake.customers(), margin).await {
        summary.fanned_out = workers;
        return Ok(summary);
    }
    let share = |rate| req.shard().map_or(rate, |s| s.share(rate));
    let sending = &Sending {
        email: RateLimiter::new(share(deps.config.email_rate)),
        sms: RateLimiter::new(share(deps.config.sms_rate)),
        deferred_until: Default::default(),
    };
    let customers = group(candidates);
    let sequence = AtomicU64::new(0);
    let sequence = &sequence;
    let stopped = AtomicBool::new(false);
    let stopped = &stopped;
    let results: Vec<Vec<(String, String, Outcome)>> = stream::iter(customers.into_values())
        .map(|channels| async move {
            // One customer's messages in turn: they share the customer's cap.
            let mut out = Vec::new();
            for alternatives in channels {
                let mut sent_one = false;
                for message in alternatives {
                    let out_of_time = req.out_of_time(margin);
                    if out_of_time {
                        stopped.store(true, Ordering::Relaxed);
                    }
                    if sent_one || out_of_time {
                        let skipped = Outcome::Skipped(if out_of_time {
                            "time_budget"
                        } else {
                            "one_message_per_customer_per_run"
                        });
                        let (step, channel) = (
                            message.step.name.clone(),
                            message.channel.as_str().to_owned(),
                        );
                        out.extend(
                            message
                                .members
                                .iter()
                                .map(|_| (step.clone(), channel.clone(), skipped.clone())),
                        );
                        continue;
                    }
                    let outcomes = send_message(deps, req, sending, message, sequence).await;
                    sent_one = !all_lost(&outcomes);
                    out.extend(outcomes);
                }
            }
            out
        })
        .buffer_unordered(deps.config.send_concurrency)
        .collect()
        .await;
    for (step, channel, outcome) in results.into_iter().flatten() {
        tally(&mut summary, &step, &channel, outcome);
    }
    summary.stopped_early |= stopped.load(Ordering::Relaxed);
    summary.deferred_until = *sending
        .deferred_until
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    for escalation in escalations {
        let step = escalation.step.name.clone();
        if req.out_of_time(margin) {
            summary.stopped_early = true;
            tally(
                &mut summary,
                &step,
                ESCALATION,
                Outcome::Skipped("time_budget"),
            );
            continue;
        }
        let outcome = escalate(deps, req, escalation, sequence).await;
        if matches!(outcome, Outcome::Sent) {
            summary.escalated += 1;
        }
        tally(&mut summary, &step, ESCALATION, outcome);
    }
    // Later runs read only what begins after this one, unless it left work
    // behind that a re-read must find (stopped early, a failed send, a claim
    // held elsewhere ...).
    // A band read that left work is not recorded: the next run reads the
    // same bands again. A full read that left work is, with the next full
    // read due at once (what it left may lie outside every band).
    let left = summary.left_work();
    if req.record_reads && !req.dry_run && (plan.full || !left) {
        let zones = plan.full.then(|| intake.zones.iter().copied().collect());
        let next = state
            .after(req.as_of, zones, every)
            .needing(left.then_some(req.as_of), summary.deferred_until);
        if let Err(err) = deps.store.record_read(&next).await {
            tracing::warn!(error = %err, "could not record the run's reads; the next run reads more");
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

/// Queues one order per shard when this scheduled run has more to send than
/// one invocation can ([`workers_needed`]); returns how many. The workers
/// read the same due dates again, each keeping its shard's customers. The
/// run state is left as it was: the next run reads from the last recorded one.
async fn fan_out(
    deps: &Deps,
    req: &RunRequest,
    ranges: &[(NaiveDate, NaiveDate)],
    messages: u64,
    margin: Duration,
) -> Option<u32> {
    let queue = deps.queue.as_ref()?;
    if req.dry_run || req.order.is_some() || deps.config.max_workers < 2 {
        return None;
    }
    let budget = req
        .time_for_work(margin)
        .unwrap_or(Duration::from_secs(840));
    let n = workers_needed(
        messages,
        deps.config.email_rate,
        deps.config.worker_send_rate,
        budget.as_secs().max(1),
        deps.config.max_workers,
    );
    if n < 2 {
        return None;
    }
    let orders: Vec<WorkOrder> = (0..n)
        .map(|index| WorkOrder {
            as_of: req.as_of,
            run_id: req.run_id.clone(),
            shard: Shard { index, count: n },
            ranges: ranges.to_vec(),
        })
        .collect();
    match queue.send(&orders).await {
        (_, None) => {
            tracing::info!(workers = n, messages, "fanned out to workers");
            Some(n)
        }
        (0, Some(err)) => {
            // Sending ourselves is slower but loses nothing.
            tracing::warn!(error = %err, "could not queue the workers' orders; sending in this run");
            None
        }
        (queued, Some(err)) => {
            // The queued shards are sent by their workers; the others wait
            // for the next run, which reads them again (no state recorded).
            tracing::error!(error = %err, queued, workers = n, "only some workers' orders were queued");
            Some(n)
        }
    }
}

/// The due dates this run reads ([`crate::reads::plan`]); the whole window
/// when the run state cannot be read.
async fn read_plan(
    deps: &Deps,
    req: &RunRequest,
) -> (
    crate::reads::ReadPlan,
    crate::reads::ReadState,
    chrono::Duration,
) {
    // Never longer than the default: a longer one could miss a zone's window.
    let longest = crate::reads::default_full_read_interval(&deps.policy);
    let every = match deps.config.full_read_hours {
        Some(hours) => chrono::Duration::hours(hours as i64).min(longest),
        None => longest,
    };
    let state = match deps.store.read_state().await {
        Ok(state) => state,
        Err(err) => {
            tracing::warn!(error = %err, "run state unreadable; reading the whole window");
            crate::reads::ReadState::default()
        }
    };
    let plan = crate::reads::plan(&deps.policy, state.clone(), req.as_of, every);
    (plan, state, every)
}

/// Reads one page of the due index, retrying a failure a few times with
/// backoff (on top of the SDK's own retries) before giving up the run.
async fn read_page(
    deps: &Deps,
    from: NaiveDate,
    to: NaiveDate,
    start: Option<Item>,
) -> Result<crate::aws::store::DuePage, StoreError> {
    let mut attempt = 0;
    loop {
        match deps.store.due_page(from, to, start.clone()).await {
            Err(err) if attempt < 3 => {
                attempt += 1;
                tracing::warn!(error = %err, attempt, "reading the due index failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(250 << attempt)).await;
            }
            result => return result,
        }
    }
}

/// What a run takes in while reading: the time zones it meets (a full read
/// records them for the runs that read bands), and which customers it takes
/// on. With a deadline, a run holds no more
/// customers than it can send to before it (its rate times its budget): the
/// others are left for the next run, which reads them again. So its memory
/// follows what it can send, not how much is due.
struct Intake {
    /// Most customers this run sends to; `None` without a deadline.
    cap: Option<usize>,
    admitted: std::collections::HashSet<String>,
    /// Every customer with something due (hashed), admitted or not: the
    /// messages a fan-out has to share.
    due: std::collections::HashSet<u64>,
    zones: std::collections::HashSet<chrono_tz::Tz>,
}

impl Intake {
    fn new(deps: &Deps, req: &RunRequest, margin: Duration) -> Self {
        let cap = req.time_for_work(margin).map(|budget| {
            let rate = req
                .shard()
                .map_or(deps.config.email_rate, |s| s.share(deps.config.email_rate));
            let per_second = per_invocation_rate(rate, deps.config.worker_send_rate);
            // Whole customers, at least one (a float-to-int cast saturates).
            ((per_second as f64 * budget.as_secs_f64()).ceil() as usize).max(1)
        });
        Self {
            cap,
            admitted: Default::default(),
            due: Default::default(),
            zones: [deps.config.business_timezone].into(),
        }
    }

    /// Whether the run takes on `customer` (always, once admitted).
    fn admit(&mut self, customer: &str) -> bool {
        self.due.insert(crate::fanout::customer_hash(customer));
        if self.admitted.contains(customer) {
            return true;
        }
        if self.cap.is_some_and(|cap| self.admitted.len() >= cap) {
            return false;
        }
        self.admitted.insert(customer.to_owned());
        true
    }

    fn customers(&self) -> u64 {
        self.due.len() as u64
    }
}

/// Validates and decides one item; adds what it is due to `candidates` or `escalations`.
fn consider<'p>(
    deps: &'p Deps,
    req: &RunRequest,
    item: Item,
    summary: &mut RunSummary,
    intake: &mut Intake,
    candidates: &mut Vec<Candidate<'p>>,
    escalations: &mut Vec<Escalation<'p>>,
) {
    let invoice = match Invoice::parse(&raw_invoice(&item)) {
        Ok(invoice) if req.shard().is_some_and(|s| !s.owns(&invoice.customer_id)) => {
            summary.other_shards += 1;
            return;
        }
        Ok(invoice) => {
            intake
                .zones
                .insert(invoice.timezone.unwrap_or(deps.config.business_timezone));
            invoice
        }
        // Every worker reads it: the run that queued them reported it.
        Err(_) if req.shard().is_some() => {
            summary.other_shards += 1;
            return;
        }
        Err(rejected) => {
            let reason = rejected.reason.code();
            tracing::warn!(invoice_id = rejected.invoice_id.as_deref().unwrap_or("<none>"), %reason, "invalid invoice item skipped: {}", rejected.reason);
            summary.add_invalid(rejected.invoice_id, reason);
            return;
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
            return;
        }
    };
    summary.eligible += 1;
    let step = due.step;
    if step.action == Action::Escalate {
        escalations.push(Escalation {
            invoice,
            guarded: guarded(&item),
            step,
            local_date: due.local_date,
            superseded: due.superseded,
        });
        return;
    }
    let late_fee = late_fee_due(step, &invoice);
    // What the invoice's channels share (built for the first one).
    type Shared<'p> = (Arc<Invoice>, Arc<Item>, Arc<[&'p Step]>);
    let mut shared: Option<Shared<'p>> = None;
    for &(channel, readiness) in &due.channels {
        let key = ledger_key(&step.name, channel);
        match readiness {
            Readiness::NoAddress => continue,
            Readiness::OptedOut | Readiness::OutsideWindow => {
                tally(
                    summary,
                    &step.name,
                    channel.as_str(),
                    Outcome::Skipped(readiness.as_str()),
                );
                continue;
            }
            Readiness::Ready if invoice.reminded.contains(&key) => {
                tally(
                    summary,
                    &step.name,
                    channel.as_str(),
                    Outcome::Skipped("already_sent"),
                );
                continue;
            }
            Readiness::Ready => {}
        }
        let address = match (channel, &invoice.email, &invoice.phone) {
            (Channel::Email, Some(a), _) => Address::Email(a.clone()),
            (Channel::Sms, _, Some(p)) => Address::Sms(p.clone()),
            _ => continue,
        };
        if !intake.admit(&invoice.customer_id) {
            // More than the run can send before its deadline: the next run continues.
            summary.stopped_early = true;
            tally(
                summary,
                &step.name,
                channel.as_str(),
                Outcome::Skipped("time_budget"),
            );
            continue;
        }
        let (invoice, guarded, superseded) = shared
            .get_or_insert_with(|| {
                // The settled keys were only needed to decide.
                let mut kept = invoice.clone();
                kept.reminded = Default::default();
                (
                    Arc::new(kept),
                    Arc::new(guarded(&item)),
                    due.superseded.clone().into(),
                )
            })
            .clone();
        candidates.push(Candidate {
            invoice,
            guarded,
            step,
            channel,
            address,
            local_date: due.local_date,
            superseded,
            late_fee,
        });
    }
}

/// Groups candidates into messages, at most one per customer and channel in a
/// run. For each channel the alternatives come in order: the customer's most
/// advanced step with every invoice at it to the same address first; the
/// next ones are tried only when every invoice of an earlier one is lost to
/// its claim (already sent, or changed), so one stuck invoice cannot hold the
/// customer's other reminders back. Whatever is not sent waits for the next run.
fn group(candidates: Vec<Candidate<'_>>) -> BTreeMap<String, Vec<Vec<Message<'_>>>> {
    let mut by_customer: BTreeMap<(String, Channel), Vec<Candidate<'_>>> = BTreeMap::new();
    for c in candidates {
        by_customer
            .entry((c.invoice.customer_id.clone(), c.channel))
            .or_default()
            .push(c);
    }
    let mut messages: BTreeMap<String, Vec<Vec<Message<'_>>>> = BTreeMap::new();
    for ((customer, channel), mut list) in by_customer {
        // Most advanced step first; within it, oldest due date first.
        list.sort_by(|a, b| {
            let key =
                |c: &Candidate<'_>| (std::cmp::Reverse(c.step.offset_days), c.invoice.due_date);
            key(a)
                .cmp(&key(b))
                .then_with(|| a.invoice.id.cmp(&b.invoice.id))
        });
        let mut alternatives: Vec<Message<'_>> = Vec::new();
        for c in list {
            let fits = |m: &Message<'_>| {
                m.step.offset_days == c.step.offset_days
                    && m.address == c.address
                    && m.members.len() < MAX_COMBINED
            };
            match alternatives.iter_mut().find(|m| fits(m)) {
                Some(m) => m.members.push(c),
                None => alternatives.push(Message {
                    step: c.step,
                    channel,
                    address: c.address.clone(),
                    members: vec![c],
                }),
            }
        }
        messages.entry(customer).or_default().push(alternatives);
    }
    messages
}

/// True when every invoice of a message was lost to its claim.
fn all_lost(outcomes: &[(String, String, Outcome)]) -> bool {
    outcomes
        .iter()
        .all(|(_, _, o)| matches!(o, Outcome::Skipped("already_claimed" | "invoice_changed")))
}

fn tally(summary: &mut RunSummary, step: &str, channel: &str, outcome: Outcome) {
    let outcomes = summary.outcomes(step, channel);
    match outcome {
        Outcome::Sent => outcomes.sent += 1,
        Outcome::Planned => outcomes.planned += 1,
        Outcome::Skipped(reason) => {
            outcomes.skipped += 1;
            RunSummary::count(&mut summary.skipped, reason);
        }
        Outcome::Failed(code) => {
            outcomes.failed += 1;
            RunSummary::count(&mut summary.failed, &code);
        }
    }
}

/// The invoice's language when it is one we write, else the business default.
fn locale_of(deps: &Deps, invoice: &Invoice) -> Locale {
    Locale::resolve(invoice.locale.as_deref(), deps.config.default_locale)
}

/// The ledger's clock for leases and retries: real time, or the run's instant
/// when that is later (a run for a future instant, in tests and rehearsals).
fn clock(req: &RunRequest) -> DateTime<Utc> {
    Utc::now().max(req.as_of)
}

fn token(req: &RunRequest, sequence: &AtomicU64) -> String {
    format!(
        "{}:{}",
        req.run_id,
        sequence.fetch_add(1, Ordering::Relaxed)
    )
}

/// Claims, renders, sends and records one message; returns an outcome per invoice.
#[tracing::instrument(skip_all, fields(customer_id = %message.members[0].invoice.customer_id, step = %message.step.name, channel = %message.channel))]
async fn send_message(
    deps: &Deps,
    req: &RunRequest,
    sending: &Sending,
    message: Message<'_>,
    sequence: &AtomicU64,
) -> Vec<(String, String, Outcome)> {
    let (step, channel) = (message.step, message.channel);
    let each = |outcome: &dyn Fn() -> Outcome| -> Vec<(String, String, Outcome)> {
        message
            .members
            .iter()
            .map(|_| (step.name.clone(), channel.as_str().to_owned(), outcome()))
            .collect()
    };
    if req.dry_run {
        return each(&|| Outcome::Planned);
    }
    // A message is in its first invoice's language (the customer's), else the business default.
    let locale = locale_of(deps, &message.members[0].invoice);
    let lines: Vec<InvoiceLine> = message
        .members
        .iter()
        .map(|c| {
            InvoiceLine::new(
                &c.invoice,
                c.local_date,
                deps.pay_link(&c.invoice, req.as_of),
                c.late_fee,
                locale,
            )
        })
        .collect();
    let first = &message.members[0];
    let claim = Claim {
        members: message
            .members
            .iter()
            .zip(&lines)
            .map(|(c, line)| Member {
                invoice: &c.invoice,
                item: &c.guarded,
                sk: reminder_sk(&step.name, channel),
                late_fee: c.late_fee.map(|f| f.amount),
                amount: line.amount.clone(),
            })
            .collect(),
        customer_id: &first.invoice.customer_id,
        step: &step.name,
        offset_days: step.offset_days,
        channel: channel.as_str(),
        recipient: message.address.text(),
        local_date: first.local_date,
        run_id: &req.run_id,
        token: token(req, sequence),
        now: clock(req),
        as_of: req.as_of,
        lease: deps.config.claim_lease,
        cap: Some(deps.policy.cap),
    };
    let claimed = match deps.store.claim(&claim).await {
        Ok(ClaimOutcome::Claimed { claimed, lost }) => {
            let mut out: Vec<_> = lost
                .iter()
                .map(|(_, l)| {
                    (
                        step.name.clone(),
                        channel.as_str().to_owned(),
                        Outcome::Skipped(l.as_str()),
                    )
                })
                .collect();
            out.extend(
                deliver(
                    deps,
                    sending,
                    &message,
                    &lines,
                    &claimed,
                    &claim.token,
                    claim.now,
                )
                .await,
            );
            return out;
        }
        Ok(other) => other,
        Err(err) => {
            tracing::warn!(error = %err, "claim failed; a later run retries");
            return each(&|| Outcome::Skipped("claim_error"));
        }
    };
    match claimed {
        ClaimOutcome::Lost(lost) => lost
            .iter()
            .map(|(_, l)| {
                (
                    step.name.clone(),
                    channel.as_str().to_owned(),
                    Outcome::Skipped(l.as_str()),
                )
            })
            .collect(),
        ClaimOutcome::CapReached { until } => {
            tracing::info!(%until, "customer cap reached; reminder deferred");
            {
                let mut earliest = sending
                    .deferred_until
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                *earliest = Some(earliest.map_or(until, |t| t.min(until)));
            }
            for c in &message.members {
                let sk = reminder_sk(&step.name, channel);
                if let Err(err) = deps
                    .store
                    .record_deferred(&c.invoice.id, &sk, "customer_cap", until, clock(req))
                    .await
                {
                    tracing::warn!(invoice_id = %c.invoice.id, error = %err, "could not record the deferral");
                }
            }
            each(&|| Outcome::Skipped("customer_cap"))
        }
        _ => each(&|| Outcome::Skipped("claim_conflict")),
    }
}

/// Sends a claimed message covering `claimed` members and records the outcome for each.
async fn deliver(
    deps: &Deps,
    sending: &Sending,
    message: &Message<'_>,
    lines: &[InvoiceLine],
    claimed: &[usize],
    token: &str,
    now: DateTime<Utc>,
) -> Vec<(String, String, Outcome)> {
    let (step, channel) = (message.step, message.channel);
    let first = &message.members[claimed[0]].invoice;
    let sent_lines: Vec<InvoiceLine> = claimed.iter().map(|&i| lines[i].clone()).collect();
    let context = ReminderContext::new(
        locale_of(deps, first),
        &deps.config.business_name,
        &first.customer_name,
        &step.name,
        sent_lines,
    )
    .map(|mut ctx| {
        ctx.contact_line = deps.config.contact_line.clone();
        ctx
    });
    let sent = match context {
        None => Err(crate::aws::SendError {
            class: ErrorClass::Permanent,
            code: "render_error".into(),
            message: "no invoices".into(),
        }),
        Some(ctx) => match &message.address {
            Address::Email(to) => match deps.renderer.email(&step.template, &ctx) {
                Ok(email) => {
                    sending.email.acquire(1).await;
                    deps.mail.send(to, &email).await
                }
                Err(e) => Err(render_failure(&e)),
            },
            Address::Sms(to) => match deps.renderer.sms(&step.template, &ctx) {
                Ok(text) => {
                    // The opt-out line is optional: dropped rather than going over the limit.
                    let opt_out =
                        crate::segments::opt_out_line(to.as_str(), &deps.config.sms_opt_out)
                            .unwrap_or("");
                    match crate::segments::fit(&text, &[opt_out], deps.config.sms_max_segments) {
                        Some(text) => {
                            let parts = crate::segments::measure(&text).segments;
                            sending
                                .sms
                                .acquire(u32::try_from(parts).unwrap_or(u32::MAX))
                                .await;
                            deps.sms.send(to, &text).await
                        }
                        // Never send more than the configured segments (each is billed).
                        None => Err(crate::aws::SendError {
                            class: ErrorClass::Permanent,
                            code: "sms_too_long".into(),
                            message: format!(
                                "{} segments over the maximum of {}",
                                crate::segments::measure(&text).segments,
                                deps.config.sms_max_segments
                            ),
                        }),
                    }
                }
                Err(e) => Err(render_failure(&e)),
            },
        },
    };
    let sk = reminder_sk(&step.name, channel);
    let key = ledger_key(&step.name, channel);

    let mut out = Vec::new();
    match &sent {
        Ok(message_id) => {
            tracing::info!(recipient = %message.address.masked(), %message_id, invoices = claimed.len(), "reminder sent")
        }
        Err(err) => {
            tracing::warn!(recipient = %message.address.masked(), class = err.class.as_str(), code = %err.code, "send failed")
        }
    }
    // The outcome first, for every invoice of the message at once: between the
    // provider's acceptance and this write a crash would make a later run send
    // again, so nothing else comes before it.
    let settled: Vec<bool> = futures::future::join_all(claimed.iter().map(|&i| {
        let c = &message.members[i];
        let held = Held {
            invoice_id: &c.invoice.id,
            sk: &sk,
            token,
        };
        let sent = &sent;
        async move {
            match sent {
                Ok(message_id) => {
                    match deps.store.record_sent(&held, message_id, Utc::now()).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(invoice_id = %c.invoice.id, %message_id, "sent after our claim lease expired; another run may send too")
                        }
                        Err(err) => {
                            tracing::error!(invoice_id = %c.invoice.id, %message_id, error = %err, "sent but not recorded; the claim stays until its lease expires")
                        }
                    }
                    true
                }
                Err(err) => {
                    let state = deps.store.record_failure(&held, err, now).await;
                    if let Err(e) = &state {
                        tracing::error!(invoice_id = %c.invoice.id, error = %e, "failure not recorded; the claim stays until its lease expires");
                    }
                    matches!(state, Ok(LedgerState::Failed))
                }
            }
        }
    }))
    .await;
    // Then the bookkeeping: release the invoice for payments, mark it, record skipped steps.
    for (&i, settled) in claimed.iter().zip(settled) {
        let c = &message.members[i];
        out.push((
            step.name.clone(),
            channel.as_str().to_owned(),
            match &sent {
                Ok(_) => Outcome::Sent,
                Err(err) => Outcome::Failed(err.code.clone()),
            },
        ));
        if let Err(err) = deps.store.release_invoice(&c.invoice.id, token).await {
            tracing::warn!(invoice_id = %c.invoice.id, error = %err, "could not release the invoice; payments wait until the lease ends");
        }
        if settled {
            if let Err(err) = deps.store.mark_reminded(&c.invoice.id, &key).await {
                tracing::warn!(invoice_id = %c.invoice.id, error = %err, "could not mark the invoice reminded; the ledger still guards it");
            }
        }
        record_superseded(deps, &c.invoice.id, &c.superseded, step).await;
    }
    out
}

fn render_failure(err: &crate::render::RenderError) -> crate::aws::SendError {
    tracing::error!(error = %err, "render failed");
    crate::aws::SendError {
        class: ErrorClass::Permanent,
        code: "render_error".into(),
        message: err.to_string(),
    }
}

/// Older steps a newer one replaced after missed runs: recorded as skipped, never sent.
async fn record_superseded(deps: &Deps, invoice_id: &str, superseded: &[&Step], by: &Step) {
    let reason = format!("superseded by {}", by.name);
    for old in superseded {
        let keys: Vec<String> = match old.action {
            Action::Escalate => vec![escalation_sk(&old.name)],
            Action::Remind => old
                .channels
                .iter()
                .map(|&c| reminder_sk(&old.name, c))
                .collect(),
        };
        for sk in keys {
            if let Err(err) = deps
                .store
                .record_skipped(invoice_id, &sk, &reason, Utc::now())
                .await
            {
                tracing::warn!(%invoice_id, error = %err, "could not record a superseded step");
            }
        }
    }
}

/// Claims an escalation, publishes the event for people, and marks the invoice in collections.
#[tracing::instrument(skip_all, fields(invoice_id = %e.invoice.id, step = %e.step.name))]
async fn escalate(
    deps: &Deps,
    req: &RunRequest,
    e: Escalation<'_>,
    sequence: &AtomicU64,
) -> Outcome {
    if req.dry_run {
        return Outcome::Planned;
    }
    let Some(topic) = deps.config.escalation_topic_arn.as_deref() else {
        return Outcome::Failed("no_escalation_topic".into());
    };
    let outstanding = e.invoice.outstanding();
    let sk = escalation_sk(&e.step.name);
    let claim = Claim {
        members: vec![Member {
            invoice: &e.invoice,
            item: &e.guarded,
            sk: sk.clone(),
            late_fee: None,
            amount: outstanding.to_string(),
        }],
        customer_id: &e.invoice.customer_id,
        step: &e.step.name,
        offset_days: e.step.offset_days,
        channel: ESCALATION,
        recipient: topic,
        local_date: e.local_date,
        run_id: &req.run_id,
        token: token(req, sequence),
        now: clock(req),
        as_of: req.as_of,
        lease: deps.config.claim_lease,
        cap: None,
    };
    match deps.store.claim(&claim).await {
        Ok(ClaimOutcome::Claimed { .. }) => {}
        Ok(ClaimOutcome::Lost(lost)) => {
            return Outcome::Skipped(lost.first().map_or("claim_conflict", |(_, l)| l.as_str()))
        }
        Ok(_) => return Outcome::Skipped("claim_conflict"),
        Err(err) => {
            tracing::warn!(error = %err, "claim failed; a later run retries");
            return Outcome::Skipped("claim_error");
        }
    }
    let event = serde_json::json!({
        "type": "invoice.escalated",
        "step": e.step.name,
        "invoice_id": e.invoice.id,
        "customer_id": e.invoice.customer_id,
        "customer_name": e.invoice.customer_name,
        "outstanding": outstanding.amount.to_string(),
        "currency": outstanding.currency.code(),
        "due_date": e.invoice.due_date.to_string(),
        "days_overdue": (e.local_date - e.invoice.due_date).num_days(),
        "escalated_on": e.local_date.to_string(),
    });
    let subject = format!("Invoice {} escalated to collections", e.invoice.id);
    let held = Held {
        invoice_id: &e.invoice.id,
        sk: &sk,
        token: &claim.token,
    };
    let now = clock(req);
    record_superseded(deps, &e.invoice.id, &e.superseded, e.step).await;
    let outcome = match deps.sms.publish_event(topic, &subject, &event).await {
        Ok(message_id) => {
            if let Err(err) = deps.store.record_sent(&held, &message_id, Utc::now()).await {
                tracing::error!(error = %err, "escalation published but not recorded");
            }
            if let Err(err) = deps.store.mark_in_collections(&e.invoice.id, now).await {
                tracing::error!(error = %err, "could not mark the invoice in collections; its ladder has ended anyway");
            }
            tracing::info!(%message_id, "invoice escalated to collections");
            Outcome::Sent
        }
        Err(err) => {
            tracing::warn!(code = %err.code, "escalation publish failed");
            if let Err(e) = deps.store.record_failure(&held, &err, now).await {
                tracing::error!(error = %e, "failure not recorded");
            }
            Outcome::Failed(err.code)
        }
    };
    if let Err(err) = deps
        .store
        .release_invoice(&e.invoice.id, &claim.token)
        .await
    {
        tracing::warn!(error = %err, "could not release the invoice; payments wait until the lease ends");
    }
    outcome
}
