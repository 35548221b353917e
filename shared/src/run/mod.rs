//! One reminder run: select -> validate -> decide -> group by customer ->
//! claim -> send -> record. Tolerant (a bad item or a failed send is counted,
//! never fatal), idempotent (every send is claimed in the ledger first) and
//! bounded (a fixed number of customers in flight).
//!
//! This file owns the entry ([`run`]) and what a run depends on ([`Deps`],
//! over any [`Adapters`]); each stage has its own file:
//! - [`intake`]: which due dates to read, reading them, validating and deciding each item;
//! - [`group`]: one message per customer and channel;
//! - [`send`]: claiming, rendering, sending and recording a message;
//! - [`escalate`]: escalation steps (an event for people);
//! - [`outcome`]: typed outcomes and the summary's bookkeeping;
//! - [`workers`]: handing shards of the customers to workers.

mod escalate;
mod group;
mod intake;
mod outcome;
mod send;
mod workers;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::aws::queue::WorkQueue;
use crate::aws::{DynamoStore, SesMailer, SnsPublisher, SnsTexter};
use crate::compose::{load_content, Composer, ContentError};
use crate::config::Config;
use crate::fanout::{Shard, WorkOrder};
use crate::policy::{Action, Policy};
use crate::ports::{EventPublisher, Links, Mailer, Store, StoreError, Texter};
use crate::rate::RateLimiter;
use crate::render::Renderer;
use crate::summary::{RunSummary, SkipReason, Target};
use outcome::{tally, Counted, Outcome};

/// The implementations a run talks to: AWS in production ([`Aws`]), the
/// in-memory ones in tests (`crate::testing::InMemory`).
pub trait Adapters {
    type Store: Store + Links;
    type Mail: Mailer;
    type Sms: Texter;
    type Events: EventPublisher;
}

/// DynamoDB, SES v2 and SNS.
#[derive(Debug)]
pub struct Aws;

impl Adapters for Aws {
    type Store = DynamoStore;
    type Mail = SesMailer;
    type Sms = SnsTexter;
    type Events = SnsPublisher;
}

/// The store's snapshot type for adapters `A`.
type Snapshot<A> = <<A as Adapters>::Store as Store>::Snapshot;

/// Everything a run needs, built once per process.
pub struct Deps<A: Adapters = Aws> {
    pub config: Config,
    pub policy: Policy,
    pub store: A::Store,
    pub mail: A::Mail,
    pub sms: A::Sms,
    /// Where escalations are published (`ESCALATION_TOPIC_ARN`).
    pub events: A::Events,
    pub renderer: Renderer,
    /// The work queue a run fans out to (`WORK_QUEUE_URL`), if any.
    pub queue: Option<WorkQueue>,
    /// The longest a send and the recording of its outcome take: a claim
    /// whose lease ends sooner is not sent ([`crate::aws::sdk::ClaimBudget`]).
    pub send_budget: Duration,
}

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error("the policy has an escalation step but ESCALATION_TOPIC_ARN is not set")]
    NoEscalationTopic,
    #[error(
        "CLAIM_LEASE_SECONDS={lease} is shorter than a claimed message can take at these SDK settings \
         ({needed} s: the claim, the pay link, every call of the send and of recording it, from \
         AWS_MAX_ATTEMPTS and SDK_ATTEMPT_TIMEOUT_MS); another run could send it again meanwhile"
    )]
    LeaseTooShort { lease: u64, needed: u64 },
    #[error(
        "SMS_MAX_SEGMENTS={segments} cannot hold even the shortest SMS (an amount and the pay link): \
         shorten PAY_LINK_BASE_URL or allow more segments"
    )]
    SmsCannotFit { segments: usize },
}

/// The longest amount the start-up check assumes an SMS carries.
const LONGEST_AMOUNT: &str = "USD 999,999,999,999.99";

impl Deps<Aws> {
    /// Loads the policy (`POLICY_FILE`, else the compiled-in default) and builds the AWS clients.
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Result<Self, SetupError> {
        let mail = SesMailer::new(
            sdk,
            config.sender_email.clone(),
            config.ses_configuration_set.clone(),
        )
        .with_reply_to(config.reply_to.clone())
        .with_bcc(config.bcc.clone());
        let queue = config
            .work_queue_url
            .as_deref()
            .map(|url| WorkQueue::new(sdk, url));
        let budget = crate::aws::sdk::claim_budget(sdk);
        let needed = budget.total();
        if config.claim_lease < needed {
            return Err(SetupError::LeaseTooShort {
                lease: config.claim_lease.as_secs(),
                needed: needed.as_secs_f64().ceil() as u64,
            });
        }
        let store = DynamoStore::new(sdk, &config.table_name);
        let mut deps = Self::with_adapters(
            config,
            store,
            mail,
            SnsTexter::new(sdk),
            SnsPublisher::new(sdk),
        )?;
        deps.queue = queue;
        deps.send_budget = budget.from_send();
        Ok(deps)
    }
}

impl<A: Adapters> Deps<A> {
    /// A run over the given adapters: loads the policy and the templates as
    /// [`Deps::new`] does; no work queue.
    pub fn with_adapters(
        config: Config,
        store: A::Store,
        mail: A::Mail,
        sms: A::Sms,
        events: A::Events,
    ) -> Result<Self, SetupError> {
        let (renderer, policy) = load_content(&config.messages)?;
        // The longest link and amount an SMS carries: the shortest SMS must fit.
        let link = crate::link::PayLink::create(
            crate::link::LinkTarget::Invoice("check".into()),
            Utc::now(),
            config.messages.pay_link_days,
        )
        .map(|l| l.token.url(&config.messages.pay_link_base_url))
        .unwrap_or_else(|_| format!("{}/{}", config.messages.pay_link_base_url, "x".repeat(32)));
        let sends_sms = policy
            .steps()
            .iter()
            .any(|s| s.channels.contains(&crate::channel::Channel::Sms));
        if sends_sms && !Renderer::sms_always_fits(&link, LONGEST_AMOUNT, config.sms_max_segments) {
            return Err(SetupError::SmsCannotFit {
                segments: config.sms_max_segments,
            });
        }
        if policy.steps().iter().any(|s| s.action == Action::Escalate)
            && config.escalation_topic_arn.is_none()
        {
            return Err(SetupError::NoEscalationTopic);
        }
        Ok(Self {
            store,
            mail,
            sms,
            events,
            queue: None,
            send_budget: crate::aws::sdk::claim_budget(&aws_config::SdkConfig::builder().build())
                .from_send(),
            renderer,
            policy,
            config,
        })
    }

    /// What composing a reminder needs, borrowed from these dependencies.
    pub fn composer(&self) -> Composer<'_> {
        Composer {
            messages: &self.config.messages,
            policy: &self.policy,
            renderer: &self.renderer,
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

/// A run id unique to one invocation attempt: `base` (Lambda's request id,
/// which an asynchronous retry reuses) and 8 random hex digits, so that a
/// retried invocation never makes the claim tokens of the attempt before it.
pub fn attempt_run_id(base: &str) -> String {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: the clock's nanoseconds still differ per attempt.
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        bytes = (nanos as u32).to_be_bytes();
    }
    format!("{base}/{}", hex::encode(bytes))
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
    fn margin(&self, configured: Duration) -> Duration {
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
    fn out_of_time(&self, margin: Duration) -> bool {
        self.deadline
            .is_some_and(|d| d.saturating_duration_since(Instant::now()) <= margin)
    }

    /// The ledger's clock for leases and retries: real time, or the run's
    /// instant when that is later (a run for a future instant, in tests and rehearsals).
    fn clock(&self) -> DateTime<Utc> {
        Utc::now().max(self.as_of)
    }
}

/// What a run's sends share: the rates (`EMAIL_RATE` emails and `SMS_RATE`
/// SMS parts per second, or a worker's share of them), the earliest instant
/// the customer cap deferred a reminder to, the sequence that makes each
/// claim's token unique, and the circuit breaker: the channels and templates
/// a systemic failure stopped for the rest of the run.
struct Sending {
    email: RateLimiter,
    sms: RateLimiter,
    deferred_until: std::sync::Mutex<Option<DateTime<Utc>>>,
    sequence: AtomicU64,
    stops: std::sync::Mutex<std::collections::BTreeMap<String, crate::ports::SendError>>,
}

/// What a systemic failure stops: the channel (`email`), or for a template
/// that does not render only that template on it (`email template due_today`).
fn stop_scope(
    channel: crate::channel::Channel,
    template: &str,
    err: &crate::ports::SendError,
) -> String {
    if err.code == crate::failure::RENDER_ERROR {
        format!("{channel} template {template}")
    } else {
        channel.to_string()
    }
}

impl Sending {
    /// A token unique to one claim of this run.
    fn token(&self, req: &RunRequest) -> String {
        format!(
            "{}:{}",
            req.run_id,
            self.sequence.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Stops `scope` for the rest of the run; true the first time.
    fn stop(&self, scope: &str, err: &crate::ports::SendError) -> bool {
        let mut stops = self.stops.lock().unwrap_or_else(|e| e.into_inner());
        if stops.contains_key(scope) {
            return false;
        }
        stops.insert(scope.to_owned(), err.clone());
        true
    }

    /// The stop that holds a message on `channel` with `template` back, if any.
    fn stopped(
        &self,
        channel: crate::channel::Channel,
        template: &str,
    ) -> Option<(String, crate::ports::SendError)> {
        let stops = self.stops.lock().unwrap_or_else(|e| e.into_inner());
        let template_scope = format!("{channel} template {template}");
        [channel.to_string(), template_scope]
            .into_iter()
            .find_map(|scope| stops.get(&scope).map(|e| (scope, e.clone())))
    }

    fn defer_to(&self, until: DateTime<Utc>) {
        let mut earliest = self
            .deferred_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *earliest = Some(earliest.map_or(until, |t| t.min(until)));
    }
}

/// Runs once over the due index. Fails only when the index cannot be read.
pub async fn run<A: Adapters>(deps: &Deps<A>, req: &RunRequest) -> Result<RunSummary, StoreError> {
    let mut summary = RunSummary {
        run_id: req.run_id.clone(),
        as_of: Some(req.as_of),
        dry_run: req.dry_run,
        ..RunSummary::default()
    };
    let margin = req.margin(deps.config.deadline_margin);
    let mut read = intake::read(deps, req, margin, &mut summary).await?;
    intake::write_schedules(deps, req, &mut read, &mut summary).await;
    if let Some(workers) = workers::fan_out(
        deps,
        req,
        &read.plan,
        read.customer_settings,
        read.intake.customers(),
        margin,
    )
    .await
    {
        summary.fanned_out = workers;
        return Ok(summary);
    }
    let share = |rate| req.shard().map_or(rate, |s| s.share(rate));
    let sending = &Sending {
        email: RateLimiter::new(share(deps.config.email_rate)),
        sms: RateLimiter::new(share(deps.config.sms_rate)),
        deferred_until: Default::default(),
        sequence: AtomicU64::new(0),
        stops: Default::default(),
    };
    let mut customers: Vec<_> = group::group(read.candidates).into_values().collect();
    // Each run starts at a random customer: should one message's own data
    // draw an error that looks systemic, the breaker it trips does not hold
    // the same customers back every run (those before it go each time).
    if !customers.is_empty() {
        let mut bytes = [0u8; 4];
        let start = getrandom::fill(&mut bytes).map_or(0, |_| u32::from_le_bytes(bytes) as usize);
        let len = customers.len();
        customers.rotate_left(start % len);
    }
    let stopped = &AtomicBool::new(false);
    let results: Vec<Vec<Counted<'_>>> = stream::iter(customers)
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
                        let reason = if out_of_time {
                            SkipReason::TimeBudget
                        } else {
                            SkipReason::OneMessagePerCustomerPerRun
                        };
                        out.extend(message.each(Outcome::Skipped(reason)));
                        continue;
                    }
                    let outcomes = send::send_message(deps, req, sending, message).await;
                    sent_one = !outcome::all_lost(&outcomes);
                    out.extend(outcomes);
                }
            }
            out
        })
        .buffer_unordered(deps.config.send_concurrency)
        .collect()
        .await;
    for counted in results.into_iter().flatten() {
        tally(&mut summary, counted);
    }
    summary.stopped_early |= stopped.load(Ordering::Relaxed);
    summary.deferred_until = *sending
        .deferred_until
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // In invoice order, whatever index they came from.
    let mut escalations = read.escalations;
    escalations.sort_by(|a, b| a.invoice.id.cmp(&b.invoice.id));
    for escalation in escalations {
        let step = escalation.step.name.as_str();
        let outcome = if req.out_of_time(margin) {
            summary.stopped_early = true;
            Outcome::Skipped(SkipReason::TimeBudget)
        } else {
            escalate::escalate(deps, req, sending, escalation).await
        };
        if outcome == Outcome::Sent {
            summary.escalated += 1;
        }
        tally(
            &mut summary,
            Counted {
                step,
                target: Target::Escalation,
                outcome,
            },
        );
    }
    intake::record_reads(
        deps,
        req,
        &read.plan,
        read.state,
        read.every,
        &read.intake,
        &summary,
    )
    .await;
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

#[cfg(test)]
mod attempt_tests {
    use super::attempt_run_id;

    #[test]
    fn each_attempt_of_one_request_has_its_own_run_id() {
        let ids: std::collections::BTreeSet<String> =
            (0..50).map(|_| attempt_run_id("req-1")).collect();
        assert_eq!(ids.len(), 50);
        assert!(ids
            .iter()
            .all(|id| id.starts_with("req-1/") && id.len() == "req-1/".len() + 8));
    }
}
