//! The `dunning-run` handler: turn the scheduling event into a run request and
//! run once. Accepts the classic EventBridge "Scheduled Event" envelope and the
//! JSON `Input` of an EventBridge Scheduler schedule.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use dunning::fanout::WorkOrder;
use dunning::run::{run, Deps, RunRequest};
use dunning::summary::RunSummary;
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;

/// Our fields, as the Scheduler `Input` or the `detail` of an EventBridge event.
#[derive(Debug, Default, Deserialize)]
struct RunInput {
    /// The instant that decides "today"; wins over the schedule's time.
    as_of: Option<DateTime<Utc>>,
    /// `<aws.scheduler.scheduled-time>` in the Scheduler `Input`.
    scheduled_time: Option<DateTime<Utc>>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    mode: Mode,
}

/// What an invocation is for: the reminder run, or the weekly report (the
/// `WeeklyReportSchedule`'s input, `{"mode": "weekly_report", ...}`). A mode
/// of this function rather than a function of its own: it needs this
/// function's table reads, sender and settings, and one binary fewer to
/// build and deploy.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Run,
    WeeklyReport,
}

#[derive(Debug, thiserror::Error)]
#[error("the event is not a scheduled run: {0}")]
pub struct EventError(#[from] serde_json::Error);

/// The instant and mode a payload asks for. A retried or duplicated delivery
/// of the same event carries the same instant, so it decides the same steps
/// and the ledger makes its sends no-ops.
pub fn parse_event(
    payload: Value,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, bool, Mode), EventError> {
    if payload.get("detail-type").is_some() {
        let event: EventBridgeEvent<Value> = serde_json::from_value(payload)?;
        let input: RunInput = match event.detail {
            Value::Null => RunInput::default(),
            detail => serde_json::from_value(detail)?,
        };
        let as_of = input.as_of.or(event.time).unwrap_or(now);
        return Ok((as_of, input.dry_run, input.mode));
    }
    let input: RunInput = match payload {
        Value::Null => RunInput::default(),
        payload => serde_json::from_value(payload)?,
    };
    Ok((
        input.as_of.or(input.scheduled_time).unwrap_or(now),
        input.dry_run,
        input.mode,
    ))
}

/// The Lambda deadline (milliseconds since the epoch) as an `Instant`.
/// A deadline more than an hour in the past is no deadline at all: local
/// emulators (`cargo lambda watch` sends the timeout, 600000) are not Lambda,
/// and a run must not stop before it starts because of one.
fn deadline_instant(deadline_ms: u64, now: std::time::SystemTime) -> Option<std::time::Instant> {
    let deadline = std::time::UNIX_EPOCH + std::time::Duration::from_millis(deadline_ms);
    match deadline.duration_since(now) {
        Ok(left) => Some(std::time::Instant::now() + left),
        Err(past) if past.duration() < std::time::Duration::from_secs(3600) => {
            Some(std::time::Instant::now())
        }
        Err(_) => {
            tracing::warn!(
                deadline_ms,
                "the invocation's deadline is not a time; running without one"
            );
            None
        }
    }
}

/// One SQS message: its id and the worker order in its body.
pub type Order = (String, Result<WorkOrder, EventError>);

/// The worker orders in an SQS event (a fanned-out run's shards), by message
/// id; `None` when the payload is not an SQS event.
pub fn parse_orders(payload: &Value) -> Option<Result<Vec<Order>, EventError>> {
    payload.get("Records")?;
    // A payload with `Records` is never taken for a scheduled run.
    let event: SqsEvent = match serde_json::from_value(payload.clone()) {
        Ok(event) => event,
        Err(err) => return Some(Err(err.into())),
    };
    Some(Ok(event
        .records
        .into_iter()
        .map(|m| {
            let order =
                serde_json::from_str(m.body.as_deref().unwrap_or("")).map_err(EventError::from);
            (m.message_id.unwrap_or_default(), order)
        })
        .collect()))
}

/// An order older than this is dropped: its instant decides "today" and the
/// send windows, so it must not run late. The next scheduled run reads its
/// invoices again (a fanned-out run leaves the read state as it was).
const ORDER_MAX_AGE: chrono::Duration = chrono::Duration::minutes(15);

/// Whether a worker order is too old to run at `now`.
pub fn stale(order: &WorkOrder, now: DateTime<Utc>) -> bool {
    now - order.as_of > ORDER_MAX_AGE
}

/// Runs each worker order of an SQS event; the orders that fail go back to
/// the queue (partial batch response), the malformed ones are dropped with an error log.
async fn handle_orders(
    deps: &Deps,
    orders: Vec<Order>,
    deadline: Option<std::time::Instant>,
    request_id: &str,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for (message_id, order) in orders {
        let order = match order {
            Ok(order) => order,
            Err(err) => {
                tracing::error!(%message_id, error = %err, "not a worker order; dropped");
                continue;
            }
        };
        if stale(&order, Utc::now()) {
            tracing::warn!(%message_id, as_of = %order.as_of, "worker order too old; dropped, the next run reads its invoices again");
            continue;
        }
        let mut request = RunRequest::worker(order);
        request.deadline = deadline;
        // A redelivered order, or a retried invocation, runs under its own claim tokens.
        request.run_id = dunning::run::attempt_run_id(&format!("{}/{request_id}", request.run_id));
        let result = run(deps, &request).await;
        let metrics = match &result {
            Ok(summary) => summary.clone(),
            Err(_) => RunSummary::failed_run(&request.run_id),
        };
        println!("{}", metrics.emf(&deps.config.metric_namespace, Utc::now()));
        if let Err(err) = result {
            tracing::error!(%message_id, error = %err, "worker run failed; the order is retried");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let deadline = deadline_instant(event.context.deadline, std::time::SystemTime::now());
    if let Some(orders) = parse_orders(&event.payload) {
        let response = handle_orders(deps, orders?, deadline, &event.context.request_id).await;
        return Ok(serde_json::to_value(response)?);
    }
    let now = Utc::now();
    let (as_of, dry_run, mode) = parse_event(event.payload, now)?;
    if mode == Mode::WeeklyReport {
        return weekly_report(deps, as_of).await;
    }
    // Lambda reuses a request id when it retries an asynchronous invocation.
    let mut request = RunRequest::new(
        as_of,
        dunning::run::attempt_run_id(&event.context.request_id),
    );
    request.dry_run = dry_run;
    request.deadline = deadline;
    // Only a run for about now is part of the hourly series; a rehearsal for
    // another instant leaves the read state alone.
    request.record_reads = (now - as_of).abs() < chrono::Duration::hours(1);
    tracing::info!(run_id = %request.run_id, %as_of, dry_run, deadline_ms = event.context.deadline, now_ms = Utc::now().timestamp_millis(), "run starting");
    let result = run(deps, &request).await;
    // One Embedded Metric Format line on stdout: CloudWatch makes it metrics.
    let metrics = match &result {
        Ok(summary) => summary.clone(),
        Err(_) => RunSummary::failed_run(&request.run_id),
    };
    println!("{}", metrics.emf(&deps.config.metric_namespace, Utc::now()));
    Ok(serde_json::to_value(result?)?)
}

/// The weekly report mode: the report at the schedule's instant, e-mailed
/// to `REPORT_EMAILS` once per week ([`dunning::aws::DynamoStore::send_weekly`]).
async fn weekly_report(deps: &Deps, as_of: DateTime<Utc>) -> Result<Value, Error> {
    let steps = deps.policy.reminder_ladder();
    use dunning::aws::reports::Weekly;
    let outcome = deps
        .store
        .send_weekly(&deps.mail, &deps.config, &steps, as_of)
        .await?;
    let answer = match &outcome {
        Weekly::Sent {
            week,
            message_id,
            reads,
        } => {
            tracing::info!(%week, %message_id, items_read = reads.total(), recipients = deps.config.report_emails.len(), "weekly report sent");
            serde_json::json!({"weekly_report": "sent", "week": week, "items_read": reads.total()})
        }
        Weekly::AlreadySent { week } => {
            tracing::info!(%week, "weekly report already sent this week");
            serde_json::json!({"weekly_report": "already_sent", "week": week})
        }
        Weekly::InFlight { week } => {
            tracing::warn!(%week, "another invocation is sending this week's report");
            serde_json::json!({"weekly_report": "in_flight", "week": week})
        }
        Weekly::NoRecipients => {
            tracing::warn!("REPORT_EMAILS is empty: no weekly report sent");
            serde_json::json!({"weekly_report": "no_recipients"})
        }
    };
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2030-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn classic_scheduled_event_runs_at_its_time() {
        let (as_of, dry, mode) = parse_event(fixture("scheduled-event.json"), now()).unwrap();
        assert_eq!(as_of.to_rfc3339(), "2026-11-23T14:00:00+00:00");
        assert!(!dry);
        assert_eq!(mode, Mode::Run);
    }

    #[test]
    fn scheduler_input_runs_at_the_scheduled_time() {
        let (as_of, dry, _) = parse_event(fixture("scheduler-input.json"), now()).unwrap();
        assert_eq!(as_of.to_rfc3339(), "2026-11-23T14:00:00+00:00");
        assert!(!dry);
    }

    #[test]
    fn explicit_as_of_and_dry_run_win() {
        let (as_of, dry, _) = parse_event(fixture("dry-run.json"), now()).unwrap();
        assert_eq!(as_of.to_rfc3339(), "2026-11-26T10:00:00+00:00");
        assert!(dry);
        let detail = serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events",
            "time": "2026-11-23T14:00:00Z", "detail": {"as_of": "2026-11-20T09:00:00Z", "dry_run": true}});
        let (as_of, dry, _) = parse_event(detail, now()).unwrap();
        assert_eq!(as_of.to_rfc3339(), "2026-11-20T09:00:00+00:00");
        assert!(dry);
    }

    #[test]
    fn a_real_deadline_is_kept_and_an_emulator_timeout_is_ignored() {
        let now = std::time::SystemTime::now();
        let ms = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
        };
        let in_a_minute = deadline_instant(ms(now + std::time::Duration::from_secs(60)), now)
            .expect("a future deadline is kept");
        let left = in_a_minute.saturating_duration_since(std::time::Instant::now());
        assert!(
            left > std::time::Duration::from_secs(50) && left <= std::time::Duration::from_secs(60)
        );
        let just_passed = deadline_instant(ms(now - std::time::Duration::from_secs(2)), now);
        assert!(just_passed.is_some_and(|d| d <= std::time::Instant::now()));
        assert_eq!(deadline_instant(600_000, now), None);
    }

    #[test]
    fn an_sqs_event_carries_worker_orders_and_a_malformed_one_is_an_error() {
        let orders = parse_orders(&fixture("worker-orders.json"))
            .expect("an SQS event")
            .expect("well formed");
        assert_eq!(orders.len(), 2);
        let (id, order) = &orders[0];
        assert!(id.ends_with("0001"));
        let order = order.as_ref().expect("an order");
        assert_eq!(order.shard, dunning::fanout::Shard { index: 2, count: 4 });
        assert_eq!(order.as_of.to_rfc3339(), "2026-11-23T14:00:00+00:00");
        assert_eq!(order.ranges.len(), 1);
        assert!(orders[1].1.is_err());
        // A scheduled event is not mistaken for one, nor a bad SQS event for a run.
        assert!(parse_orders(&fixture("scheduled-event.json")).is_none());
        assert!(parse_orders(&serde_json::json!({"Records": 3})).is_some_and(|r| r.is_err()));
        // An order runs within 15 minutes of its instant, or never.
        let order = orders[0].1.as_ref().unwrap();
        let at = |m: i64| order.as_of + chrono::Duration::minutes(m);
        assert!(!stale(order, at(15)));
        assert!(stale(order, at(16)));
    }

    #[test]
    fn the_weekly_schedule_s_input_asks_for_the_report_at_its_time() {
        let input =
            serde_json::json!({"mode": "weekly_report", "scheduled_time": "2026-12-07T08:00:00Z"});
        let (as_of, dry, mode) = parse_event(input, now()).unwrap();
        assert_eq!(
            (as_of.to_rfc3339(), dry, mode),
            (
                "2026-12-07T08:00:00+00:00".to_owned(),
                false,
                Mode::WeeklyReport
            )
        );
    }

    #[test]
    fn an_empty_event_runs_now() {
        assert_eq!(
            parse_event(serde_json::json!({}), now()).unwrap(),
            (now(), false, Mode::Run)
        );
        assert_eq!(
            parse_event(Value::Null, now()).unwrap(),
            (now(), false, Mode::Run)
        );
    }

    #[test]
    fn malformed_fields_are_refused_not_guessed() {
        for bad in [
            serde_json::json!({"as_of": "yesterday"}),
            serde_json::json!({"dry_run": "yes"}),
            serde_json::json!({"mode": "weekly"}),
            serde_json::json!([1, 2]),
            serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {"as_of": 5}}),
        ] {
            assert!(parse_event(bad.clone(), now()).is_err(), "{bad}");
        }
    }
}
