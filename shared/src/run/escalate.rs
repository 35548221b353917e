//! Escalation: a step that messages no customer. Its claim (no cap) guards
//! an event published for people (`ESCALATION_TOPIC_ARN`); the invoice is
//! then marked in collections, which ends its automated reminders.

use chrono::Utc;

use super::intake::Escalation;
use super::outcome::Outcome;
use super::send::record_superseded;
use super::{Adapters, Deps, RunRequest, Sending, Snapshot};
use crate::claim::{Claim, ClaimOutcome, Held, Member};
use crate::ledger::{escalation_sk, ESCALATION};
use crate::ports::{EventPublisher, Store};
use crate::summary::SkipReason;

/// The event people act on: what is owed, since when, by whom.
fn event(e: &Escalation<'_, impl Sized>) -> serde_json::Value {
    let outstanding = e.invoice.outstanding();
    serde_json::json!({
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
    })
}

/// Claims an escalation, publishes the event for people, and marks the invoice in collections.
#[tracing::instrument(skip_all, fields(invoice_id = %e.invoice.id, step = %e.step.name))]
pub(super) async fn escalate<A: Adapters>(
    deps: &Deps<A>,
    req: &RunRequest,
    sending: &Sending,
    e: Escalation<'_, Snapshot<A>>,
) -> Outcome {
    if req.dry_run {
        return Outcome::Planned;
    }
    let Some(topic) = deps.config.escalation_topic_arn.as_deref() else {
        return Outcome::Failed("no_escalation_topic".into());
    };
    let ledger_step = e.invoice.ledger_step(&e.step.name);
    let sk = escalation_sk(&ledger_step);
    let claim = Claim {
        members: vec![Member {
            invoice_id: &e.invoice.id,
            snapshot: &e.snapshot,
            sk: sk.clone(),
            late_fee: None,
            amount: e.invoice.outstanding().to_string(),
            plan_defaulted_on: e.invoice.on_plan.as_ref().and_then(|v| v.defaulted_on),
        }],
        customer_id: &e.invoice.customer_id,
        step: &ledger_step,
        offset_days: e.step.offset_days,
        cycle: e.invoice.cycle.as_deref(),
        channel: ESCALATION,
        recipient: topic,
        local_date: e.local_date,
        run_id: &req.run_id,
        token: sending.token(req),
        now: req.clock(),
        as_of: req.as_of,
        lease: deps.config.claim_lease,
        cap: None,
    };
    match deps.store.claim(&claim).await {
        Ok(ClaimOutcome::Claimed { .. }) => {}
        Ok(ClaimOutcome::Lost(lost)) => {
            return Outcome::Skipped(
                lost.first()
                    .map_or(SkipReason::ClaimConflict, |(_, l)| (*l).into()),
            )
        }
        Ok(_) => return Outcome::Skipped(SkipReason::ClaimConflict),
        Err(err) => {
            tracing::warn!(error = %err, "claim failed; a later run retries");
            return Outcome::Skipped(SkipReason::ClaimError);
        }
    }
    let subject = format!("Invoice {} escalated to collections", e.invoice.id);
    let held = Held {
        invoice_id: &e.invoice.id,
        sk: &sk,
        token: &claim.token,
    };
    let now = req.clock();
    record_superseded(deps, &e.invoice, &e.superseded, e.step).await;
    let outcome = match deps.events.publish(topic, &subject, &event(&e)).await {
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
            if err.class == crate::ledger::ErrorClass::Systemic {
                // The topic or its permissions: the escalation waits in retry.
                Outcome::Stopped {
                    scope: ESCALATION.into(),
                    code: err.code,
                }
            } else {
                Outcome::Failed(err.code)
            }
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
