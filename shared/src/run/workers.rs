//! Scale-out: a scheduled run with more to send than one invocation can
//! queues one [`WorkOrder`] per shard of the customers; each worker reads
//! the same due dates again and keeps its shard ([`crate::fanout`] has the
//! arithmetic).

use std::time::Duration;

use super::{Adapters, Deps, RunRequest};
use crate::fanout::{workers_needed, Shard, WorkOrder};
use crate::reads::ReadPlan;

/// Queues one order per shard when this scheduled run has more to send than
/// one invocation can ([`workers_needed`]); returns how many. The run state
/// is left as it was: the next run reads from the last recorded one.
pub(super) async fn fan_out<A: Adapters>(
    deps: &Deps<A>,
    req: &RunRequest,
    plan: &ReadPlan,
    customer_settings: bool,
    messages: u64,
    margin: Duration,
) -> Option<u32> {
    let queue = deps.queue.as_ref()?;
    // A reschedule writes every open invoice's `next_at` as it reads: it
    // sends itself, and what it cannot send in time is due for the next run.
    if req.dry_run || req.order.is_some() || deps.config.max_workers < 2 || plan.reschedule {
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
            ranges: plan.ranges.clone(),
            woken: plan.full,
            customer_settings,
            due_by: plan.due_by,
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
