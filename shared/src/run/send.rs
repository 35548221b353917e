//! Claiming and sending one message: claim it in the store (the exactly-once
//! protocol, [`crate::claim`]), render it, send it through the mailer or the
//! texter at the run's rate, record the outcome for every invoice before
//! anything else, then release the invoices, mark them reminded and record
//! the steps the message superseded.

use chrono::{DateTime, Utc};

use super::group::Message;
use super::intake::Address;
use super::outcome::{Counted, Outcome};
use super::{Adapters, Deps, RunRequest, Sending, Snapshot};
use crate::claim::{Claim, ClaimOutcome, Held, Member};
use crate::failure::RENDER_ERROR;
use crate::invoice::Invoice;
use crate::ledger::{escalation_sk, ledger_key, reminder_sk, ErrorClass, LedgerState};
use crate::link::{LinkTarget, PayLink};
use crate::mail_events::MessageTags;
use crate::policy::{Action, Step};
use crate::ports::{Envelope, Links, Mailer, SendError, Store, Texter};
use crate::render::{InvoiceLine, Locale, ReminderContext};
use crate::summary::SkipReason;

/// The invoice's language when it is one we write, else the business default.
pub(super) fn locale_of<A: Adapters>(deps: &Deps<A>, invoice: &Invoice) -> Locale {
    Locale::resolve(
        invoice.locale.as_deref(),
        deps.config.messages.default_locale,
    )
}

/// Claims, renders, sends and records one message; returns an outcome per invoice.
#[tracing::instrument(skip_all, fields(customer_id = %message.members[0].invoice.customer_id, step = %message.step.name, channel = %message.channel))]
pub(super) async fn send_message<'p, A: Adapters>(
    deps: &'p Deps<A>,
    req: &RunRequest,
    sending: &Sending,
    message: Message<'p, Snapshot<A>>,
) -> Vec<Counted<'p>> {
    let (step, channel) = (message.step, message.channel);
    if req.dry_run {
        return message.each(Outcome::Planned);
    }
    if let Some((scope, err)) = sending.stopped(channel, &step.template) {
        return held_back(deps, req, &message, &scope, &err).await;
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
                // Made once the message is claimed (`deliver`): only a sent message has a link.
                String::new(),
                c.late_fee,
                locale,
            )
        })
        .collect();
    let first = &message.members[0];
    let ledger_step = message.ledger_step();
    let claim = Claim {
        members: message
            .members
            .iter()
            .zip(&lines)
            .map(|(c, line)| Member {
                invoice_id: &c.invoice.id,
                snapshot: &*c.snapshot,
                sk: reminder_sk(&ledger_step, channel),
                late_fee: c.late_fee.map(|f| f.amount),
                amount: line.amount.clone(),
                plan_defaulted_on: c.invoice.on_plan.as_ref().and_then(|v| v.defaulted_on),
            })
            .collect(),
        customer_id: &first.invoice.customer_id,
        step: &ledger_step,
        offset_days: first.claim_offset,
        cycle: first.invoice.cycle.as_deref(),
        channel: channel.as_str(),
        recipient: message.address.text(),
        local_date: first.local_date,
        run_id: &req.run_id,
        token: sending.token(req),
        now: req.clock(),
        as_of: req.as_of,
        lease: deps.config.claim_lease,
        cap: Some(deps.policy.cap),
    };
    let lost_ones = |lost: &[(usize, crate::claim::Lost)]| -> Vec<Counted<'p>> {
        lost.iter()
            .map(|(_, l)| message.counted(Outcome::Skipped((*l).into())))
            .collect()
    };
    // The lease runs from before the claim was asked for (a conservative start).
    let lease_ends = std::time::Instant::now() + deps.config.claim_lease;
    match deps.store.claim(&claim).await {
        Ok(ClaimOutcome::Claimed { claimed, lost }) => {
            let mut out = lost_ones(&lost);
            let held = Lease {
                token: &claim.token,
                now: claim.now,
                as_of: claim.as_of,
                ends: lease_ends,
            };
            out.extend(deliver(deps, sending, &message, &lines, &claimed, held).await);
            out
        }
        Ok(ClaimOutcome::Lost(lost)) => lost_ones(&lost),
        Ok(ClaimOutcome::CapReached { until }) => {
            tracing::info!(%until, "customer cap reached; reminder deferred");
            sending.defer_to(until);
            for c in &message.members {
                let sk = reminder_sk(&ledger_step, channel);
                if let Err(err) = deps
                    .store
                    .record_deferred(&c.invoice.id, &sk, "customer_cap", until, req.clock())
                    .await
                {
                    tracing::warn!(invoice_id = %c.invoice.id, error = %err, "could not record the deferral");
                }
            }
            message.each(Outcome::Skipped(SkipReason::CustomerCap))
        }
        Ok(ClaimOutcome::Conflict) => message.each(Outcome::Skipped(SkipReason::ClaimConflict)),
        Err(err) => {
            tracing::warn!(error = %err, "claim failed; a later run retries");
            message.each(Outcome::Skipped(SkipReason::ClaimError))
        }
    }
}

/// A message its stopped channel (or template) does not try: each invoice's
/// record waits in `retry` for the next run, with the error that stopped it.
async fn held_back<'p, A: Adapters>(
    deps: &Deps<A>,
    req: &RunRequest,
    message: &Message<'p, Snapshot<A>>,
    scope: &str,
    err: &SendError,
) -> Vec<Counted<'p>> {
    let now = req.clock();
    let until = crate::ledger::after_failure(err.class, 1, now)
        .retry_after
        .unwrap_or(now);
    let sk = reminder_sk(&message.ledger_step(), message.channel);
    let held = SendError {
        message: format!("not tried: {scope} stopped for this run after {err}"),
        ..err.clone()
    };
    for c in &message.members {
        if let Err(e) = deps
            .store
            .record_stopped(&c.invoice.id, &sk, &held, until, now)
            .await
        {
            tracing::warn!(invoice_id = %c.invoice.id, error = %e, "could not record a message held back; the next run still finds it");
        }
    }
    message.each(Outcome::Stopped {
        scope: scope.to_owned(),
        code: err.code.clone(),
    })
}

/// The claim a message is sent under: its token, the ledger's instant of
/// the claim, and when its lease ends in real time.
#[derive(Clone, Copy)]
struct Lease<'a> {
    token: &'a str,
    now: DateTime<Utc>,
    /// The run's instant: when the reminder is for (kept on the invoice).
    as_of: DateTime<Utc>,
    ends: std::time::Instant,
}

impl Lease<'_> {
    /// Checked just before the send: the provider must be able to answer
    /// (every call of the send, `budget`) before the lease ends, or another
    /// run could take the claim over and send the message too.
    fn covers(&self, budget: std::time::Duration) -> Result<(), SendError> {
        let left = self
            .ends
            .saturating_duration_since(std::time::Instant::now());
        if left > budget {
            return Ok(());
        }
        // The run is behind its sends: later ones would be later still. The
        // channel stops for the run (systemic) and the message waits, no attempt used.
        Err(SendError::systemic(
            "lease_expiring",
            format!(
                "not sent: {} s of the claim's lease left, a send and its record may take {} s",
                left.as_secs(),
                budget.as_secs()
            ),
        ))
    }
}

/// Renders the message for the claimed members and sends it: the provider's
/// message id, or why it was not sent.
async fn compose_and_send<A: Adapters>(
    deps: &Deps<A>,
    sending: &Sending,
    message: &Message<'_, Snapshot<A>>,
    ctx: Option<ReminderContext>,
    envelope: &Envelope,
    lease: Lease<'_>,
) -> Result<String, SendError> {
    let step = message.step;
    let Some(ctx) = ctx else {
        return Err(SendError::systemic(RENDER_ERROR, "no invoices"));
    };
    match &message.address {
        Address::Email(to) => match deps.renderer.email(&step.template, &ctx) {
            Ok(email) => {
                sending.email.acquire(1).await;
                lease.covers(deps.send_budget)?;
                deps.mail.send(to, &email, envelope).await
            }
            Err(e) => Err(render_failure(&e)),
        },
        Address::Sms(to) => {
            let opt_out =
                crate::segments::opt_out_line(to.as_str(), &deps.config.sms_opt_out).unwrap_or("");
            // Shorter wording before ever going over the segments (each is billed).
            let text = deps
                .renderer
                .sms_fitting(&step.template, &ctx, opt_out, deps.config.sms_max_segments)
                .map_err(|e| render_failure(&e))?
                .ok_or_else(|| {
                    SendError::permanent(
                        "sms_too_long",
                        format!(
                            "even the shortest SMS is over the maximum of {} segments",
                            deps.config.sms_max_segments
                        ),
                    )
                })?;
            let parts = crate::segments::measure(&text).segments;
            sending
                .sms
                .acquire(u32::try_from(parts).unwrap_or(u32::MAX))
                .await;
            lease.covers(deps.send_budget)?;
            deps.sms.send(to, &text).await
        }
    }
}

/// After an SMS's outcome is recorded as sent: a copy to the customer's
/// other number (`phone_copies`). Best effort, and never before the record:
/// a copy's time can never let the message's claim run out and the message
/// go twice. A copy that fails is logged (masked); the message itself is sent.
async fn send_sms_copies<A: Adapters>(
    deps: &Deps<A>,
    sending: &Sending,
    message: &Message<'_, Snapshot<A>>,
    ctx: &ReminderContext,
) {
    let step = message.step;
    for copy in &message.members[0].invoice.phone_copies {
        let opt_out =
            crate::segments::opt_out_line(copy.as_str(), &deps.config.sms_opt_out).unwrap_or("");
        let Ok(Some(text)) =
            deps.renderer
                .sms_fitting(&step.template, ctx, opt_out, deps.config.sms_max_segments)
        else {
            continue;
        };
        let parts = crate::segments::measure(&text).segments;
        sending
            .sms
            .acquire(u32::try_from(parts).unwrap_or(u32::MAX))
            .await;
        let recipient = crate::contact::redact(copy.as_str());
        match deps.sms.send(copy, &text).await {
            Ok(id) => tracing::info!(%recipient, message_id = %id, "SMS copy sent"),
            Err(err) => {
                tracing::warn!(%recipient, code = %err.code, class = err.class.as_str(), "SMS copy not sent")
            }
        }
    }
}

/// Sends a claimed message covering `claimed` members and records the outcome for each.
async fn deliver<'p, A: Adapters>(
    deps: &Deps<A>,
    sending: &Sending,
    message: &Message<'p, Snapshot<A>>,
    lines: &[InvoiceLine],
    claimed: &[usize],
    lease: Lease<'_>,
) -> Vec<Counted<'p>> {
    let (token, now) = (lease.token, lease.now);
    let (step, channel) = (message.step, message.channel);
    let first = &message.members[claimed[0]].invoice;
    let mut sent_lines: Vec<InvoiceLine> = claimed.iter().map(|&i| lines[i].clone()).collect();
    let link = pay_link(deps, message, claimed, now).await;
    if let Ok(url) = &link {
        // One link for the whole message: an invoice's page, or the customer's
        // page of the invoices it names. An SMS never grows with the invoices.
        for line in &mut sent_lines {
            line.pay_link.clone_from(url);
        }
    }
    // An e-mail's footer link and its `List-Unsubscribe` headers (RFC 8058)
    // open the pay page's unsubscribe route on the message's own link.
    let unsubscribe = match (&link, channel) {
        (Ok(url), crate::channel::Channel::Email) => Some(format!("{url}/unsubscribe")),
        _ => None,
    };
    let context = ReminderContext::new(
        locale_of(deps, first),
        &deps.config.messages.business_name,
        &first.customer_name,
        &step.name,
        sent_lines,
    )
    .map(|mut ctx| {
        ctx.contact_line = deps.config.messages.contact_line.clone();
        ctx.unsubscribe_url = unsubscribe.clone();
        ctx
    });
    // Its tags name the claim and the ledger records, for what SES says
    // about the message later (`mail_events`).
    let envelope = Envelope {
        tags: MessageTags {
            claim: token.to_owned(),
            customer_id: first.customer_id.clone(),
            step: message.ledger_step(),
            invoices: claimed
                .iter()
                .map(|&i| message.members[i].invoice.id.clone())
                .collect(),
            to_hash: Some(crate::mail_events::tags::address_hash(
                message.address.text(),
            )),
            cc_hashes: match channel {
                crate::channel::Channel::Email => first
                    .email_copies
                    .iter()
                    .map(|a| crate::mail_events::tags::address_hash(a.as_str()))
                    .collect(),
                crate::channel::Channel::Sms => Vec::new(),
            },
        }
        .to_tags(),
        headers: unsubscribe
            .iter()
            .flat_map(|url| {
                [
                    ("List-Unsubscribe".to_owned(), format!("<{url}>")),
                    (
                        "List-Unsubscribe-Post".to_owned(),
                        "List-Unsubscribe=One-Click".to_owned(),
                    ),
                ]
            })
            .collect(),
        cc: match channel {
            crate::channel::Channel::Email => first.email_copies.clone(),
            crate::channel::Channel::Sms => Vec::new(),
        },
        // With INBOUND_DOMAIN, a reply comes back to us (`mail_events::inbound`).
        reply_to: match (&link, &deps.config.inbound_domain) {
            (Ok(url), Some(domain)) => url
                .rsplit('/')
                .next()
                .and_then(crate::link::LinkToken::parse)
                .and_then(|token| {
                    crate::contact::EmailAddress::parse(
                        &crate::mail_events::inbound::reply_address(&token, domain),
                    )
                }),
            _ => None,
        },
    };
    let copies_context = (channel == crate::channel::Channel::Sms
        && !message.members[0].invoice.phone_copies.is_empty())
    .then(|| context.clone())
    .flatten();
    let sent = match link {
        Ok(_) => compose_and_send(deps, sending, message, context, &envelope, lease).await,
        Err(err) => Err(err),
    };
    let sk = reminder_sk(&message.ledger_step(), channel);
    let key = ledger_key(&message.ledger_step(), channel);
    match &sent {
        Ok(message_id) => {
            tracing::info!(recipient = %message.address.masked(), %message_id, invoices = claimed.len(), "reminder sent")
        }
        Err(err) if err.class == ErrorClass::Systemic => {
            let scope = super::stop_scope(channel, &step.template, err);
            if sending.stop(&scope, err) {
                tracing::error!(%scope, code = %err.code, error = %err.message, "systemic failure: stopped for the rest of the run; its messages wait in retry");
            }
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
    if let Err(err) = &sent {
        if channel == crate::channel::Channel::Sms && err.code == SMS_OPTED_OUT {
            record_sms_opt_out(deps, &first.customer_id, now).await;
        }
    }
    if let (Ok(_), Some(ctx)) = (&sent, &copies_context) {
        send_sms_copies(deps, sending, message, ctx).await;
    }
    // Then the bookkeeping: release the invoice for payments, mark it, record skipped steps.
    let mut out = Vec::new();
    for (&i, settled) in claimed.iter().zip(settled) {
        let c = &message.members[i];
        out.push(message.counted(match &sent {
            Ok(_) => Outcome::Sent,
            Err(err) if err.class == ErrorClass::Systemic => Outcome::Stopped {
                scope: super::stop_scope(channel, &step.template, err),
                code: err.code.clone(),
            },
            Err(err) => Outcome::Failed(err.code.clone()),
        }));
        // Marked while the claim still holds the invoice: a payment that
        // commits once it is released sees when this reminder went.
        if settled {
            let sent_at = sent.is_ok().then_some(lease.as_of);
            if let Err(err) = deps.store.mark_reminded(&c.invoice.id, &key, sent_at).await {
                tracing::warn!(invoice_id = %c.invoice.id, error = %err, "could not mark the invoice reminded; the ledger still guards it");
            }
        }
        if let Err(err) = deps.store.release_invoice(&c.invoice.id, token).await {
            tracing::warn!(invoice_id = %c.invoice.id, error = %err, "could not release the invoice; payments wait until the lease ends");
        }
        record_superseded(deps, &c.invoice, &c.superseded, step).await;
    }
    out
}

/// SNS's answer to a publish to a number that opted out (replied STOP).
const SMS_OPTED_OUT: &str = "OptedOut";

/// The customer opted out of SMS at SNS: their record says so (once), so
/// that later steps do not try. Best effort: SNS refuses every later publish
/// anyway, and the next refusal records it again.
async fn record_sms_opt_out<A: Adapters>(deps: &Deps<A>, customer_id: &str, now: DateTime<Utc>) {
    let change = crate::customer::Change::sns_opt_out(now, "publish refused: OptedOut");
    match deps
        .store
        .change_customer_record(customer_id, &change)
        .await
    {
        Ok(changed) => tracing::info!(
            changed,
            "the number opted out of SMS at SNS; the customer is opted out of SMS"
        ),
        Err(err) => {
            tracing::warn!(error = %err, "could not record the customer's SMS opt-out; the next refusal tries again")
        }
    }
}

/// Stores the link the message carries: to the invoice's page when it covers
/// one invoice, else to the customer's page of the invoices it covers. A
/// store that cannot take it makes the send fail transiently (retried).
async fn pay_link<A: Adapters>(
    deps: &Deps<A>,
    message: &Message<'_, Snapshot<A>>,
    claimed: &[usize],
    now: DateTime<Utc>,
) -> Result<String, SendError> {
    let first = &message.members[claimed[0]].invoice;
    let target = match claimed {
        [_] => LinkTarget::Invoice(first.id.clone()),
        _ => LinkTarget::Customer {
            customer_id: first.customer_id.clone(),
            invoices: claimed
                .iter()
                .map(|&i| message.members[i].invoice.id.clone())
                .collect(),
        },
    };
    let link = PayLink::create(target, now, deps.config.messages.pay_link_days)
        .map_err(|e| SendError::transient("pay_link_error", e.to_string()))?;
    match deps.store.put_link(&link).await {
        Ok(true) => Ok(deps.composer().pay_link(&link.token)),
        // 96 random bits met an existing token: never seen, but never overwritten.
        Ok(false) => Err(SendError::transient("pay_link_error", "token collision")),
        Err(err) => Err(SendError::transient("pay_link_error", err.to_string())),
    }
}

fn render_failure(err: &crate::render::RenderError) -> SendError {
    SendError::systemic(RENDER_ERROR, err.to_string())
}

/// Older steps a newer one replaced after missed runs: recorded as skipped, never sent.
pub(super) async fn record_superseded<A: Adapters>(
    deps: &Deps<A>,
    invoice: &crate::invoice::Invoice,
    superseded: &[&Step],
    by: &Step,
) {
    let invoice_id = invoice.id.as_str();
    let reason = format!("superseded by {}", by.name);
    for old in superseded {
        let name = invoice.ledger_step(&old.name);
        let keys: Vec<String> = match old.action {
            Action::Escalate => vec![escalation_sk(&name)],
            Action::Remind => old
                .channels
                .iter()
                .map(|&c| reminder_sk(&name, c))
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
