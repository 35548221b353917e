//! Intake: which due dates a run reads ([`crate::reads`] plans it), reading
//! them page by page, validating each item ([`Invoice::parse`]) and deciding
//! what it is due ([`decide`]); what is due becomes a [`Candidate`] (one per
//! invoice and channel) or an [`Escalation`]. After the run, what it read is
//! recorded for the next ones.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;

use super::outcome::{tally, Counted, Outcome};
use super::{Adapters, Deps, RunRequest, Snapshot};
use crate::channel::Channel;
use crate::contact::{EmailAddress, PhoneNumber};
use crate::decide::{decide, late_fee_due, Readiness};
use crate::fanout::{customer_hash, per_invocation_rate};
use crate::invoice::Invoice;
use crate::ledger::ledger_key;
use crate::money::Money;
use crate::policy::{Action, Step};
use crate::ports::{DueItem, Links, Store, StoreError, Texter};
use crate::reads::{ReadPlan, ReadState};
use crate::retry::{retry, Backoff};
use crate::summary::{RunSummary, SkipReason, Target};

/// An address on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Address {
    Email(EmailAddress),
    Sms(PhoneNumber),
}

impl Address {
    pub(super) fn text(&self) -> &str {
        match self {
            Self::Email(a) => a.as_str(),
            Self::Sms(p) => p.as_str(),
        }
    }

    pub(super) fn masked(&self) -> String {
        match self {
            Self::Email(a) => a.masked(),
            Self::Sms(p) => p.masked(),
        }
    }
}

/// One invoice due a step on one channel in this run. A run holds every
/// candidate until all pages are read (to group a customer's invoices), so it
/// keeps only what sending needs: the parsed invoice, shared by its channels,
/// and the store's snapshot for the claim; the pay link is signed when the
/// message is sent.
pub(super) struct Candidate<'p, S> {
    pub invoice: Arc<Invoice>,
    pub snapshot: Arc<S>,
    pub step: &'p Step,
    pub channel: Channel,
    pub address: Address,
    pub local_date: NaiveDate,
    pub superseded: Arc<[&'p Step]>,
    /// The late fee this step adds now, if it has one not yet applied.
    pub late_fee: Option<Money>,
    /// What its claim records as reached ([`crate::decide::Due::claim_offset`]).
    pub claim_offset: i64,
    /// With the next-at index: the invoice's `next_at` as read (a write
    /// expects it), `Some(None)` when it held none.
    pub next_at_held: Option<Option<Arc<str>>>,
}

/// An invoice due an escalation step.
pub(super) struct Escalation<'p, S> {
    pub invoice: Invoice,
    pub snapshot: S,
    pub step: &'p Step,
    pub local_date: NaiveDate,
    pub superseded: Vec<&'p Step>,
}

/// What the intake read, and what it found due.
pub(super) struct Read<'p, A: Adapters> {
    pub plan: ReadPlan,
    pub state: ReadState,
    pub every: chrono::Duration,
    pub intake: Intake,
    pub candidates: Vec<Candidate<'p, Snapshot<A>>>,
    pub escalations: Vec<Escalation<'p, Snapshot<A>>>,
    /// The customer records read so far (`None`: unreadable), each once a run.
    pub customers: HashMap<String, Option<crate::customer::CustomerRecord>>,
    /// On a full read: SNS's opted-out numbers ([`sync_sms_opt_outs`]).
    pub sms_opted_out: Option<std::collections::HashSet<String>>,
    /// Customers of this page whose invoice's number is on that list.
    pub opted_out_found: std::collections::BTreeSet<String>,
    /// The invalid items met, to be logged once a day ([`log_invalid`]).
    pub rejected: Vec<crate::invoice::Rejected>,
    /// Invalid items beyond [`crate::summary::MAX_LOGGED_INVALID`].
    pub rejected_unlisted: u64,
    /// Customer records hold settings invoices inherit: read them before deciding.
    pub customer_settings: bool,
    /// With the next-at index: the `next_at` writes what it read calls for ([`write_schedules`]).
    schedules: HashMap<String, (Option<String>, crate::next_at::Schedule)>,
}

/// Reads the planned due dates (a worker: its order's) and decides each item.
pub(super) async fn read<'p, A: Adapters>(
    deps: &'p Deps<A>,
    req: &RunRequest,
    margin: Duration,
    summary: &mut RunSummary,
) -> Result<Read<'p, A>, StoreError> {
    let (plan, state, every) = match &req.order {
        Some(order) => (
            ReadPlan {
                due_by: order.due_by,
                ..ReadPlan::dates(false, order.ranges.clone())
            },
            ReadState::default(),
            chrono::Duration::zero(),
        ),
        None => read_plan(deps, req).await,
    };
    summary.full_read = plan.full;
    summary.due_date_ranges = plan.ranges.len() as u64;
    let mut read = Read {
        intake: Intake::new(deps, req, margin),
        plan,
        state,
        every,
        candidates: Vec::new(),
        escalations: Vec::new(),
        customers: HashMap::new(),
        sms_opted_out: None,
        opted_out_found: Default::default(),
        rejected: Vec::new(),
        rejected_unlisted: 0,
        customer_settings: false,
        schedules: HashMap::new(),
    };
    read.customer_settings = match &req.order {
        Some(order) => order.customer_settings,
        None => read.state.customer_settings,
    };
    // With the next-at index a full read is rare: the hourly runs of every
    // sixth hour (UTC) sync too.
    let sync_hour =
        read.plan.due_by.is_some() && chrono::Timelike::hour(&req.as_of).is_multiple_of(6);
    if (read.plan.full || sync_hour)
        && !req.dry_run
        && deps
            .policy
            .steps()
            .iter()
            .any(|s| s.channels.contains(&crate::channel::Channel::Sms))
    {
        read.sms_opted_out = match deps.sms.opted_out_numbers().await {
            Ok(numbers) => Some(numbers.into_iter().collect()),
            Err(err) => {
                tracing::warn!(code = %err.code, "SNS's opted-out list unreadable; a refused publish still opts a customer out");
                None
            }
        };
    }
    let ranges = read.plan.ranges.clone();
    // A full read also takes the invoices whose ladder runs on a date of
    // their own (a plan's instalment, a promise) in its window; the due
    // index's pages then skip them.
    let mut woken = HashSet::new();
    let wakes = read.plan.full || req.order.as_ref().is_some_and(|o| o.woken);
    if let (true, Some(&(from, _)), Some(&(_, to))) = (wakes, ranges.first(), ranges.last()) {
        let items = deps.store.woken(from, to).await?;
        summary.items_read += items.len() as u64;
        summary.woken += items.len() as u64;
        let before = read.candidates.len();
        inherit_settings(deps, &items, &mut read).await;
        for item in items {
            if let Some(id) = item.raw.id_hint() {
                woken.insert(id.to_owned());
            }
            consider(deps, req, item, summary, &mut read);
        }
        sync_sms_opt_outs(deps, req, summary, &mut read).await;
        apply_customer_records(deps, req, before, summary, &mut read).await;
        write_schedules(deps, req, &mut read, summary).await;
    }
    let sources: Vec<Source> = match read.plan.due_by {
        Some(until) => (0..crate::next_at::SHARDS)
            .map(|shard| Source::Due { shard, until })
            .collect(),
        None => ranges
            .iter()
            .map(|&(from, to)| Source::Dates(from, to))
            .collect(),
    };
    'read: for source in sources {
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
            let page = read_page(&deps.store, source, start).await?;
            summary.pages += 1;
            summary.scanned_count += page.scanned_count;
            summary.items_read += page.items.len() as u64;
            let before = read.candidates.len();
            inherit_settings(deps, &page.items, &mut read).await;
            for item in page.items {
                if item.raw.id_hint().is_some_and(|id| woken.contains(id)) {
                    continue;
                }
                consider(deps, req, item, summary, &mut read);
            }
            sync_sms_opt_outs(deps, req, summary, &mut read).await;
            apply_customer_records(deps, req, before, summary, &mut read).await;
            // Page by page: what a run holds follows a page, not the run.
            write_schedules(deps, req, &mut read, summary).await;
            start = page.next;
            if start.is_none() {
                break;
            }
        }
    }
    log_invalid(deps, req, &mut read).await;
    Ok(read)
}

/// When customer records hold settings (`ReadState::customer_settings`),
/// reads the records of this page's customers whose invoices leave out what
/// a record may give (a time zone, an e-mail address, a phone; one batched
/// read, each customer once a run), so that [`consider`] decides with them.
/// A record that cannot be read is read again for the page's candidates.
async fn inherit_settings<A: Adapters>(
    deps: &Deps<A>,
    items: &[DueItem<Snapshot<A>>],
    read: &mut Read<'_, A>,
) {
    if !read.customer_settings {
        return;
    }
    let mut wanted: Vec<String> = items
        .iter()
        .filter(|i| i.raw.inherits_settings())
        .filter_map(|i| i.raw.customer_hint().map(str::to_owned))
        .filter(|id| !read.customers.contains_key(id))
        .collect();
    wanted.sort();
    wanted.dedup();
    if wanted.is_empty() {
        return;
    }
    match deps.store.customers(&wanted).await {
        Ok(mut found) => {
            for id in wanted {
                let record = found.remove(&id).unwrap_or_default();
                read.customers.insert(id, Some(record));
            }
        }
        Err(err) => {
            // Not decided without their settings: their messages wait.
            tracing::warn!(error = %err, customers = wanted.len(), "customer records unreadable; their messages wait");
            for id in wanted {
                read.customers.insert(id, None);
            }
        }
    }
}

/// Logs each invalid item once a day (the business's date), not on every
/// hourly run: those already logged today are left out, and the rest are
/// recorded (not by a dry run). The counts are in every run's summary.
async fn log_invalid<A: Adapters>(deps: &Deps<A>, req: &RunRequest, read: &mut Read<'_, A>) {
    if read.rejected.is_empty() {
        return;
    }
    let day = req
        .as_of
        .with_timezone(&deps.config.messages.business_timezone)
        .date_naive();
    let logged = deps.store.warned(day).await.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "could not read which invalid items were logged today; logging them all");
        Default::default()
    });
    let mut new = Vec::new();
    for rejected in std::mem::take(&mut read.rejected) {
        let reason = rejected.reason.code();
        let key = crate::summary::warning_key(rejected.invoice_id.as_deref(), &reason);
        if logged.contains(&key) {
            continue;
        }
        tracing::warn!(invoice_id = rejected.invoice_id.as_deref().unwrap_or("<none>"), %reason, "invalid invoice item skipped: {} (logged once a day)", rejected.reason);
        new.push(key);
    }
    if read.rejected_unlisted > 0 {
        tracing::warn!(
            more = read.rejected_unlisted,
            "more invalid invoice items skipped than are logged one by one; `dunning-admin audit` lists them all"
        );
    }
    if !req.dry_run {
        if let Err(err) = deps.store.record_warned(day, &new).await {
            tracing::warn!(error = %err, "could not record the invalid items logged; the next run logs them again");
        }
    }
}

/// On a full read (which reads every open invoice in the ladder's window,
/// at least every `FULL_READ_HOURS`), SNS's opted-out list is synced into
/// the records of the customers whose invoices this page holds: a customer
/// whose number opted out (replied STOP) and whose record still takes SMS is
/// opted out of SMS (`sns:opt-out`), so that no step tries the number. The
/// records read here serve the page's candidates too (each customer once a run).
async fn sync_sms_opt_outs<A: Adapters>(
    deps: &Deps<A>,
    req: &RunRequest,
    summary: &mut RunSummary,
    read: &mut Read<'_, A>,
) {
    let found: Vec<String> = std::mem::take(&mut read.opted_out_found)
        .into_iter()
        .filter(|id| !read.customers.contains_key(id))
        .collect();
    if found.is_empty() {
        return;
    }
    let mut records = match deps.store.customers(&found).await {
        Ok(records) => records,
        Err(err) => {
            // apply_customer_records reads them again (and holds their messages back if it cannot).
            tracing::warn!(error = %err, customers = found.len(), "customer records unreadable; SNS opt-outs synced later");
            return;
        }
    };
    for id in found {
        let mut record = records.remove(&id).unwrap_or_default();
        if record.accepts(crate::channel::Channel::Sms) {
            let change =
                crate::customer::Change::sns_opt_out(req.clock(), "ListPhoneNumbersOptedOut");
            match deps.store.change_customer_record(&id, &change).await {
                Ok(_) => {
                    record.apply(&change);
                    summary.sms_opt_outs_synced += 1;
                }
                Err(err) => {
                    tracing::warn!(customer_id = %id, error = %err, "could not record an SNS opt-out; a refused publish records it");
                    continue;
                }
            }
        }
        read.customers.insert(id, Some(record));
    }
}

/// Reads the records of the customers this page's candidates go to (one
/// batched read, each customer once per run) and drops what they forbid: a
/// channel the customer opted out of, a suppressed address, a pause. A
/// record that cannot be read holds that customer's messages back (an
/// opt-out must never be missed); a later run reads it again.
async fn apply_customer_records<A: Adapters>(
    deps: &Deps<A>,
    req: &RunRequest,
    from: usize,
    summary: &mut RunSummary,
    read: &mut Read<'_, A>,
) {
    let mut wanted: Vec<String> = read.candidates[from..]
        .iter()
        .map(|c| c.invoice.customer_id.clone())
        .filter(|id| !read.customers.contains_key(id))
        .collect();
    wanted.sort();
    wanted.dedup();
    if !wanted.is_empty() {
        match deps.store.customers(&wanted).await {
            Ok(mut found) => {
                for id in wanted {
                    let record = found.remove(&id);
                    read.customers.insert(id, Some(record.unwrap_or_default()));
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, customers = wanted.len(), "customer records unreadable; their messages wait");
                for id in wanted {
                    read.customers.insert(id, None);
                }
            }
        }
    }
    let page: Vec<Candidate<'_, Snapshot<A>>> = read.candidates.drain(from..).collect();
    for c in page {
        let reason = match read.customers.get(&c.invoice.customer_id) {
            Some(Some(record)) if record.paused_at(req.as_of) => Some(SkipReason::CustomerPaused),
            Some(Some(record)) if !record.accepts(c.channel) => Some(SkipReason::OptedOut),
            Some(Some(record)) => match &c.address {
                Address::Email(a) => record.suppression(a.as_str()).map(|mark| {
                    if mark.source == crate::customer::BOUNCE_SOURCE {
                        SkipReason::EmailBounced
                    } else {
                        SkipReason::EmailSuppressed
                    }
                }),
                _ => None,
            },
            _ => Some(SkipReason::CustomerUnreadable),
        };
        let mut c = c;
        // A copy's address the customer's record suppressed gets no copy.
        if let Some(Some(record)) = read.customers.get(&c.invoice.customer_id) {
            if c.invoice
                .email_copies
                .iter()
                .any(|a| record.is_suppressed(a.as_str()))
            {
                let mut invoice = (*c.invoice).clone();
                invoice
                    .email_copies
                    .retain(|a| !record.is_suppressed(a.as_str()));
                c.invoice = Arc::new(invoice);
            }
        }
        if let (Some(_), Some(Some(record))) = (reason, read.customers.get(&c.invoice.customer_id))
        {
            if reason != Some(SkipReason::CustomerUnreadable) {
                let record = record.clone();
                held_by_record(deps, req, &c, &record, read);
            }
        }
        match reason {
            None => read.candidates.push(c),
            Some(reason) => tally(
                summary,
                Counted {
                    step: &c.step.name,
                    target: Target::Channel(c.channel),
                    outcome: Outcome::Skipped(reason),
                },
            ),
        }
    }
}

/// The due dates this run reads ([`crate::reads::plan`]); the whole window
/// when the run state cannot be read.
async fn read_plan<A: Adapters>(
    deps: &Deps<A>,
    req: &RunRequest,
) -> (ReadPlan, ReadState, chrono::Duration) {
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
            ReadState::default()
        }
    };
    let plan = if deps.config.next_at_index {
        crate::reads::plan_scheduled(
            &state,
            req.as_of,
            &fingerprint(deps),
            chrono::Duration::days(deps.config.reschedule_days as i64),
        )
    } else {
        crate::reads::plan(&deps.policy, state.clone(), req.as_of, every)
    };
    (plan, state, every)
}

/// The policy `next_at` is computed under (the policy and the business's zone).
fn fingerprint<A: Adapters>(deps: &Deps<A>) -> String {
    crate::next_at::fingerprint(&deps.policy, deps.config.messages.business_timezone)
}

/// What one series of pages reads: a due-date range of the due index, or
/// a shard of the next-at index up to an instant.
#[derive(Debug, Clone, Copy)]
enum Source {
    Dates(NaiveDate, NaiveDate),
    Due {
        shard: u32,
        until: chrono::DateTime<chrono::Utc>,
    },
}

/// Reads one page of an index. A failure is retried: 4 calls, each of
/// up to `AWS_MAX_ATTEMPTS` SDK attempts (16 by default), before the run gives up.
async fn read_page<S: Store>(
    store: &S,
    source: Source,
    start: Option<S::Cursor>,
) -> Result<crate::ports::DuePage<S::Snapshot, S::Cursor>, StoreError> {
    const PAGE: Backoff = Backoff {
        attempts: 4,
        base: Duration::from_millis(500),
        max: Duration::from_secs(4),
    };
    retry(
        PAGE,
        "reading the due index",
        |_| true,
        || {
            let start = start.clone();
            async move {
                match source {
                    Source::Dates(from, to) => store.due_page(from, to, start).await,
                    Source::Due { shard, until } => store.scheduled_page(shard, until, start).await,
                }
            }
        },
    )
    .await
}

/// What a run takes in while reading: the time zones it meets (a full read
/// records them for the runs that read bands), and which customers it takes
/// on. With a deadline, a run holds no more customers than it can send to
/// before it (its rate times its budget): the others are left for the next
/// run, which reads them again. So its memory follows what it can send, not
/// how much is due.
pub(super) struct Intake {
    /// Most customers this run sends to; `None` without a deadline.
    cap: Option<usize>,
    admitted: HashSet<String>,
    /// Every customer with something due (hashed), admitted or not: the
    /// messages a fan-out has to share.
    due: HashSet<u64>,
    zones: HashSet<chrono_tz::Tz>,
    /// Every `next_at` write this run's reads called for was made.
    scheduled: bool,
}

impl Intake {
    fn new<A: Adapters>(deps: &Deps<A>, req: &RunRequest, margin: Duration) -> Self {
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
            zones: [deps.config.messages.business_timezone].into(),
            // Until a write fails; never in a run that writes none.
            scheduled: !req.dry_run && req.record_reads,
        }
    }

    /// Whether the run takes on `customer` (always, once admitted).
    fn admit(&mut self, customer: &str) -> bool {
        self.due.insert(customer_hash(customer));
        if self.admitted.contains(customer) {
            return true;
        }
        if self.cap.is_some_and(|cap| self.admitted.len() >= cap) {
            return false;
        }
        self.admitted.insert(customer.to_owned());
        true
    }

    pub(super) fn customers(&self) -> u64 {
        self.due.len() as u64
    }
}

/// Validates and decides one item; adds what it is due to the candidates or the escalations.
fn consider<'p, A: Adapters>(
    deps: &'p Deps<A>,
    req: &RunRequest,
    item: DueItem<Snapshot<A>>,
    summary: &mut RunSummary,
    read: &mut Read<'p, A>,
) {
    // What the customer's record gives an invoice that leaves it out.
    let mut item = item;
    if let Some(Some(record)) = item
        .raw
        .customer_hint()
        .and_then(|id| read.customers.get(id))
    {
        if record.has_settings() {
            record.fill(&mut item.raw);
        }
    }
    let invoice = match Invoice::parse(&item.raw) {
        Ok(invoice) if req.shard().is_some_and(|s| !s.owns(&invoice.customer_id)) => {
            summary.other_shards += 1;
            return;
        }
        Ok(invoice) => {
            if let (Some(list), Some(phone)) = (&read.sms_opted_out, &invoice.phone) {
                if list.contains(phone.as_str()) {
                    read.opted_out_found.insert(invoice.customer_id.clone());
                }
            }
            read.intake.zones.insert(
                invoice
                    .timezone
                    .unwrap_or(deps.config.messages.business_timezone),
            );
            invoice
        }
        // Every worker reads it: the run that queued them reported it.
        Err(_) if req.shard().is_some() => {
            summary.other_shards += 1;
            return;
        }
        Err(rejected) => {
            note_schedule(deps, req, &item.raw, read);
            summary.add_invalid(rejected.invoice_id.clone(), rejected.reason.code());
            if read.rejected.len() < crate::summary::MAX_LOGGED_INVALID {
                read.rejected.push(rejected);
            } else {
                read.rejected_unlisted += 1;
            }
            return;
        }
    };
    note_schedule(deps, req, &item.raw, read);
    // On a plan, the ladder runs on the instalment due in the customer's calendar.
    let invoice = if invoice.plan.is_some() {
        let tz = invoice
            .timezone
            .unwrap_or(deps.config.messages.business_timezone);
        let today = crate::calendar::local_date(req.as_of, tz);
        invoice.scheduled(today, deps.policy.plan_default_days)
    } else {
        invoice
    };
    let due = match decide(
        &deps.policy,
        &invoice,
        req.as_of,
        deps.config.messages.business_timezone,
    ) {
        Ok(due) => due,
        Err(hold) => {
            RunSummary::count(&mut summary.held, hold.as_str());
            if hold == crate::decide::Hold::NotABusinessDay {
                let tz = invoice
                    .timezone
                    .unwrap_or(deps.config.messages.business_timezone);
                // Email opens first: the next business day's first send.
                let at = crate::reads::next_opening(&deps.policy, tz, req.as_of, Channel::Email);
                summary.full_read_at = Some(summary.full_read_at.map_or(at, |t| t.min(at)));
            }
            return;
        }
    };
    summary.eligible += 1;
    let step = due.step;
    if step.action == Action::Escalate {
        read.escalations.push(Escalation {
            invoice,
            snapshot: item.snapshot,
            step,
            local_date: due.local_date,
            superseded: due.superseded,
        });
        return;
    }
    let late_fee = late_fee_due(step, &invoice);
    let skip = |summary: &mut RunSummary, channel: Channel, reason: SkipReason| {
        tally(
            summary,
            Counted {
                step: &step.name,
                target: Target::Channel(channel),
                outcome: Outcome::Skipped(reason),
            },
        )
    };
    // What the invoice's channels share (built for the first one).
    type Shared<'p, S> = (Arc<Invoice>, Arc<S>, Arc<[&'p Step]>);
    let mut shared: Option<Shared<'p, Snapshot<A>>> = None;
    let snapshot = Arc::new(item.snapshot);
    let next_at_held: Option<Option<Arc<str>>> = deps
        .config
        .next_at_index
        .then(|| crate::next_at::stream::held(&item.raw).map(Arc::from));
    for &(channel, readiness) in &due.channels {
        let key = ledger_key(&invoice.ledger_step(&step.name), channel);
        match readiness {
            Readiness::NoAddress => continue,
            Readiness::OptedOut => {
                skip(summary, channel, SkipReason::OptedOut);
                continue;
            }
            Readiness::OutsideWindow => {
                skip(summary, channel, SkipReason::OutsideWindow);
                if due.step_day < due.local_date && !invoice.reminded.contains(&key) {
                    // A caught-up step: no band opens for it again.
                    let tz = invoice
                        .timezone
                        .unwrap_or(deps.config.messages.business_timezone);
                    let at = crate::reads::next_opening(&deps.policy, tz, req.as_of, channel);
                    summary.full_read_at = Some(summary.full_read_at.map_or(at, |t| t.min(at)));
                }
                continue;
            }
            Readiness::Ready if invoice.reminded.contains(&key) => {
                skip(summary, channel, SkipReason::AlreadySent);
                continue;
            }
            Readiness::Ready => {}
        }
        let address = match (channel, &invoice.email, &invoice.phone) {
            (Channel::Email, Some(a), _) => Address::Email(a.clone()),
            (Channel::Sms, _, Some(p)) => Address::Sms(p.clone()),
            _ => continue,
        };
        if !read.intake.admit(&invoice.customer_id) {
            // More than the run can send before its deadline: the next run continues.
            summary.stopped_early = true;
            skip(summary, channel, SkipReason::TimeBudget);
            continue;
        }
        let (invoice, snapshot, superseded) = shared
            .get_or_insert_with(|| {
                // The settled keys were only needed to decide.
                let mut kept = invoice.clone();
                kept.reminded = Default::default();
                (
                    Arc::new(kept),
                    snapshot.clone(),
                    due.superseded.clone().into(),
                )
            })
            .clone();
        read.candidates.push(Candidate {
            invoice,
            snapshot,
            step,
            channel,
            address,
            local_date: due.local_date,
            superseded,
            late_fee,
            claim_offset: due.claim_offset,
            next_at_held: next_at_held.clone(),
        });
    }
}

/// With the next-at index, what an item read calls for: its `next_at` as
/// [`crate::next_at::reschedule`] decides it (with the customer's record
/// when this run has read it), for [`write_schedules`].
fn note_schedule<A: Adapters>(
    deps: &Deps<A>,
    req: &RunRequest,
    raw: &crate::invoice::RawInvoice,
    read: &mut Read<'_, A>,
) {
    if !deps.config.next_at_index {
        return;
    }
    let Some(id) = raw.id_hint() else { return };
    let known = raw.customer_hint().and_then(|c| read.customers.get(c));
    let record = known.and_then(Option::as_ref);
    // An invoice that inherits its zone or contacts from a record this run
    // could not read is left to the stream function, which reads it.
    if read.customer_settings
        && raw.inherits_settings()
        && record.is_none()
        && raw.customer_hint().is_some()
    {
        return;
    }
    let schedule = crate::next_at::reschedule(
        &deps.policy,
        raw,
        record,
        req.as_of,
        deps.config.messages.business_timezone,
    );
    if schedule != crate::next_at::Schedule::Keep {
        let held = crate::next_at::stream::held(raw).map(str::to_owned);
        read.schedules.insert(id.to_owned(), (held, schedule));
    }
}

/// With the next-at index, a message the customer's record held back (a
/// pause, an opt-out, a suppressed address): the invoice's `next_at` with
/// the record applied, when that is later than now (else it stays due).
fn held_by_record<A: Adapters>(
    deps: &Deps<A>,
    req: &RunRequest,
    c: &Candidate<'_, Snapshot<A>>,
    record: &crate::customer::CustomerRecord,
    read: &mut Read<'_, A>,
) {
    let invoice = &c.invoice;
    let Some(held) = c.next_at_held.as_ref() else {
        return;
    };
    if invoice.plan.is_some() {
        return;
    }
    let held = held.as_deref().map(str::to_owned);
    let later = crate::next_at::next_at_paused(
        &deps.policy,
        &crate::next_at::with_record((**invoice).clone(), record),
        record.paused_until,
        req.as_of,
        deps.config.messages.business_timezone,
    );
    let schedule = match later {
        None => crate::next_at::Schedule::Remove,
        Some(t) if t > req.as_of => crate::next_at::Schedule::Set(t),
        Some(_) => return,
    };
    read.schedules.insert(invoice.id.clone(), (held, schedule));
}

/// Writes the `next_at` of the invoices read so far that call for one (not
/// in a dry run), after each page; [`Intake::scheduled`] stays true while
/// every write was made or found the invoice changed meanwhile (so a
/// reschedule is complete).
pub(super) async fn write_schedules<A: Adapters>(
    deps: &Deps<A>,
    req: &RunRequest,
    read: &mut Read<'_, A>,
    summary: &mut RunSummary,
) {
    use futures::StreamExt;
    let schedules = std::mem::take(&mut read.schedules);
    // A dry run writes nothing; nor does a run for another instant than the
    // schedule's (`dunning-admin run --as-of`): what it decided is of then.
    if req.dry_run || !req.record_reads {
        return;
    }
    let store = &deps.store;
    let results: Vec<Result<bool, StoreError>> = futures::stream::iter(schedules)
        .filter_map(|(id, (held, schedule))| {
            futures::future::ready(schedule.instant().map(|to| (id, held, to)))
        })
        .map(|(id, held, to)| async move { store.set_next_at(&id, to, held.as_deref()).await })
        .buffer_unordered(deps.config.send_concurrency.max(1))
        .collect()
        .await;
    let mut complete = read.intake.scheduled;
    for result in results {
        match result {
            Ok(true) => summary.next_at_written += 1,
            Ok(false) => summary.next_at_changed_meanwhile += 1,
            Err(err) => {
                if complete {
                    tracing::warn!(error = %err, "could not write an invoice's next_at; the next reschedule writes it");
                }
                complete = false;
            }
        }
    }
    read.intake.scheduled = complete;
}

/// Records what this run read for the later runs, which then read only what
/// begins after it, unless it left work behind that a re-read must find
/// (stopped early, a failed send, a claim held elsewhere ...). A band read
/// that left work is not recorded: the next run reads the same bands again.
/// A full read that left work is, with the next full read due at once (what
/// it left may lie outside every band).
pub(super) async fn record_reads<A: Adapters>(
    deps: &Deps<A>,
    req: &RunRequest,
    plan: &ReadPlan,
    state: ReadState,
    every: chrono::Duration,
    intake: &Intake,
    summary: &RunSummary,
) {
    let left = summary.left_work();
    if req.record_reads && !req.dry_run && (plan.full || !left) {
        let zones = plan.full.then(|| intake.zones.iter().copied().collect());
        let mut next = state
            .after(req.as_of, zones, every)
            .needing(left.then_some(req.as_of), summary.deferred_until)
            .needing(None, summary.full_read_at);
        // A reschedule that read every open invoice and wrote their `next_at`.
        if plan.reschedule && intake.scheduled && !summary.stopped_early {
            next.scheduled = Some(fingerprint(deps));
            next.rescheduled_at = Some(req.as_of);
        }
        if let Err(err) = deps.store.record_read(&next).await {
            tracing::warn!(error = %err, "could not record the run's reads; the next run reads more");
        }
    }
}
