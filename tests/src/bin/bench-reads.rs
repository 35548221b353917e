//! Reads benchmark (docs/benchmarks.md): on a table of `total` invoices of
//! which 95% are paid or void history, 2% are due a reminder step today and 3%
//! are open but not due one (half between two steps and already reminded for
//! the last, half due later than the first step), compare in one run
//! - the reminder run (dry run: it reads and decides exactly as a real run),
//!   which queries the due index, and
//! - a naive full-table parallel Scan doing the same work (validate and decide
//!   every item),
//!
//! by items read (sum of `ScannedCount`) and wall time; and the report
//! (`dunning-admin report`'s reads: the open invoices through the due index,
//! the rollup days of its windows, unapplied payments, customer records)
//! against the table's size and the run's wall time.
//!
//! The run is an hourly run at 09:30, half an hour after the send window
//! opened, with the run state of a day of hourly runs behind it: it reads the
//! due dates whose step began since 08:30 (bands). A full read of the whole
//! window (what a run does every `FULL_READ_HOURS`) is measured too, and both
//! must plan the same messages.
//!
//! Usage: `bench-reads <total> [all-due|day]` (default 100000); prints one JSON
//! object, with the process's peak RSS (`VmHWM`) after the table's load and
//! after the run. With
//! `all-due`, every invoice is due a step today (the memory benchmark): one
//! full-read run with a Lambda's 900 s deadline.
//! Starts its own moto server on a free port and stops it at the end.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::{DateTime, Days, NaiveDate, Utc};
use dunning::decide::decide;
use dunning::invoice::Invoice;
use dunning::ports::Store;
use dunning::reads::ReadState;
use dunning::run::{run, Deps, RunRequest};
use dunning::summary::SkipReason;
use dunning_e2e::{config, Moto};
use futures::future::join_all;
use futures::stream::{self, StreamExt};

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// The invoice item of kind `i` (deterministic): history, due, or open not due.
fn item(
    i: usize,
    total: usize,
    today: NaiveDate,
    all_due: bool,
) -> HashMap<String, AttributeValue> {
    let id = format!("INV-{i:07}");
    let share = if all_due { 96 } else { i * 100 / total.max(1) };
    let mut item: HashMap<String, AttributeValue> = [
        ("invoice_id", s(&id)),
        ("sk", s("invoice")),
        ("customer_id", s(format!("C-{i:07}"))),
        ("customer_name", s("Ana Lima")),
        ("email", s(format!("c{i}@example.com"))),
        ("amount", s("120.00")),
        ("currency", s("USD")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let (status, due) = if share < 95 {
        // History: paid or void, due any day in the past two years.
        let status = if i.is_multiple_of(10) { "void" } else { "paid" };
        (status, today - Days::new(1 + (i % 730) as u64))
    } else if share < 97 {
        // Due a step today: -3, 0, +1, +7 or +14 days from the due date.
        let offsets = [-3i64, 0, 1, 7, 14];
        let o = offsets[i % offsets.len()];
        let due = if o >= 0 {
            today - Days::new(o as u64)
        } else {
            today + Days::new((-o) as u64)
        };
        ("open", due)
    } else if i.is_multiple_of(2) {
        // Open, 2-6 days overdue: its +1 step was sent; the next is at +7.
        item.insert(
            "reminded".into(),
            AttributeValue::Ss(vec!["overdue#email".into()]),
        );
        ("open", today - Days::new(2 + (i % 5) as u64))
    } else {
        // Open, due in 10-40 days: before its first step.
        ("open", today + Days::new(10 + (i % 31) as u64))
    };
    item.insert("status".into(), s(status));
    item.insert("due_date".into(), s(due.to_string()));
    item
}

/// Writes `requests` (at most 25), again until none is left unprocessed.
async fn write_all(
    store: &dunning::aws::DynamoStore,
    mut requests: Vec<WriteRequest>,
) -> anyhow::Result<()> {
    while !requests.is_empty() {
        let out = store
            .client()
            .batch_write_item()
            .request_items(store.table(), requests)
            .send()
            .await?;
        requests = out
            .unprocessed_items
            .and_then(|mut m| m.remove(store.table()))
            .unwrap_or_default();
    }
    Ok(())
}

/// Writes the rollup days a webhook would have written (money and sends of
/// the last 90 days, the due dates of the 270 days the ladder reaches), each
/// with a few counters; returns how many.
async fn load_rollup(store: &dunning::aws::DynamoStore, today: NaiveDate) -> anyhow::Result<u64> {
    use dunning::report::rollup::{DUE, MONEY, PARTITION, SENT};
    let n = |v: u64| AttributeValue::N(v.to_string());
    let mut items = Vec::new();
    for back in 0..90u64 {
        let day = today - Days::new(back);
        items.push(vec![
            ("sk", s(format!("{MONEY}{day}"))),
            ("received#USD", n(1_000 + back)),
            ("sales_paid#USD", n(900 + back)),
        ]);
        items.push(vec![
            ("sk", s(format!("{SENT}{day}"))),
            ("pre_due#email#1", n(3)),
            ("due_today#email#0", n(5)),
            ("overdue#email#2", n(4)),
        ]);
    }
    for back in 0..270u64 {
        let day = today + Days::new(30) - Days::new(back);
        items.push(vec![
            ("sk", s(format!("{DUE}{day}"))),
            ("ALL#2", n(6)),
            ("due_today#2", n(5)),
        ]);
    }
    let count = items.len() as u64;
    for chunk in items.chunks(25) {
        let requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|attrs| {
                let mut item: HashMap<String, AttributeValue> = attrs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect();
                item.insert("invoice_id".into(), s(PARTITION));
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item))
                            .build()
                            .expect("item set"),
                    )
                    .build()
            })
            .collect();
        write_all(store, requests).await?;
    }
    Ok(count)
}

/// Writes the items `item(0..total)` makes, 25 to a batch, 4 batches at a time.
async fn load(
    store: &dunning::aws::DynamoStore,
    total: usize,
    item: impl Fn(usize) -> HashMap<String, AttributeValue> + Copy,
) -> anyhow::Result<()> {
    let batches: Vec<Vec<usize>> = (0..total)
        .collect::<Vec<_>>()
        .chunks(25)
        .map(<[usize]>::to_vec)
        .collect();
    stream::iter(batches)
        .map(|batch| async move {
            let requests: Vec<WriteRequest> = batch
                .iter()
                .map(|&i| {
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item(i)))
                                .build()
                                .expect("item set"),
                        )
                        .build()
                })
                .collect();
            write_all(store, requests).await
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()?;
    Ok(())
}

/// The day benchmark's 24 time zones: UTC-10 to UTC+11 in November,
/// with half-hour (St John's, Tehran, Kabul, Kolkata, Adelaide) and
/// 45-minute (Kathmandu, Eucla) offsets.
const DAY_ZONES: [&str; 24] = [
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/St_Johns",
    "America/Sao_Paulo",
    "Atlantic/South_Georgia",
    "Atlantic/Azores",
    "Europe/London",
    "Europe/Paris",
    "Europe/Athens",
    "Europe/Moscow",
    "Asia/Tehran",
    "Asia/Dubai",
    "Asia/Kabul",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Shanghai",
    "Australia/Eucla",
    "Asia/Tokyo",
    "Australia/Adelaide",
    "Australia/Sydney",
];

/// `bench-reads <total> day`: a simulated day of 24 hourly runs (real runs:
/// they claim and send to the emulator, so each message goes once), after
/// the day before's 24 unmeasured, over the same table mix, with the
/// customers in one time zone and in 24, against a naive hourly Scan (24 x
/// the table). Prints one JSON object.
async fn day(total: usize) -> anyhow::Result<()> {
    let mut days = serde_json::Map::new();
    for (name, zones) in [
        ("one_zone", vec!["America/New_York"]),
        ("24_zones", DAY_ZONES.to_vec()),
    ] {
        let mut both = serde_json::Map::new();
        for (reads, next) in [("bands", false), ("next_at", true)] {
            both.insert(reads.into(), day_with(total, &zones, next).await?);
        }
        days.insert(name.into(), both.into());
    }
    println!(
        "{}",
        serde_json::json!({"invoices": total, "naive_hourly_scan_items_per_day": 24 * total, "days": days})
    );
    Ok(())
}

/// What one stretch of the table's stream held: items written, of which
/// invoice items (each also written to the indexes that hold it).
#[derive(Default)]
struct Written {
    items: u64,
    invoices: u64,
    /// Items the `next-at` function read, and its `next_at` writes.
    function_read: u64,
    function_set: u64,
}

impl Written {
    /// Adds one drain's: what the stream held and what the function did with it.
    fn take(&mut self, (w, applied): (Written, dunning::next_at::stream::Applied)) {
        self.items += w.items;
        self.invoices += w.invoices;
        self.function_read += applied.items_read;
        self.function_set += applied.writes();
    }

    fn add(&mut self, event: &aws_lambda_events::event::dynamodb::Event) {
        for r in &event.records {
            self.items += 1;
            let keys: dunning::aws::Item = r.change.keys.clone().into();
            if keys
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some("invoice")
            {
                self.invoices += 1;
            }
        }
    }
}

/// One day with the customers in `zones`, reading due-date bands (`next =
/// false`) or the next-at index, the table's stream handed to the `next-at`
/// function's code before and after every run. Every write is counted from
/// the stream (one record per item written).
async fn day_with(total: usize, zones: &[&str], next: bool) -> anyhow::Result<serde_json::Value> {
    let moto = Moto::start()?;
    let sdk =
        dunning_e2e::sdk_config_at(moto.endpoint(), dunning::aws::sdk::SdkSettings::from_env()?)
            .await;
    let mode = if next {
        ("NEXT_AT_INDEX", "true")
    } else {
        ("NEXT_AT_INDEX", "false")
    };
    let deps = Deps::new(
        &sdk,
        config(&[("CLAIM_LEASE_SECONDS", "3600"), ("EMAIL_RATE", "0"), mode]),
    )?;
    deps.store.create_table().await?;
    deps.events
        .create_topic(dunning_e2e::TOPIC_NAME)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    deps.mail
        .create_sender_identity()
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    // Monday 23 November 2026, 00:30 UTC to 23:30 UTC.
    let start: DateTime<Utc> = "2026-11-23T00:30:00Z".parse()?;
    let today = start.date_naive();
    let load_started = Instant::now();
    load(&deps.store, total, |i| {
        let mut item = item(i, total, today, false);
        item.insert("timezone".into(), s(zones[i % zones.len()]));
        item
    })
    .await?;
    let load_secs = load_started.elapsed().as_secs_f64();
    // The billing system's bulk load is not streamed (the stream starts
    // after it): the first run's reschedule writes every open invoice's
    // next_at, as it would on a table that predates the stream.
    let mut stream =
        dunning_e2e::stream::StreamReader::enable(&deps.store, moto.endpoint()).await?;
    // Hands the stream to the function (reading the index), or only counts it.
    let mut drain = |now: DateTime<Utc>| {
        let event = stream.batch();
        let deps = &deps;
        async move {
            let event = event?;
            let mut written = Written::default();
            written.add(&event);
            let applied = if next {
                let (changes, _) = dunning::aws::stream::changes(&event);
                dunning::next_at::stream::apply(
                    &deps.store,
                    &deps.policy,
                    deps.config.messages.business_timezone,
                    now,
                    changes,
                )
                .await?
            } else {
                Default::default()
            };
            anyhow::Ok((written, applied))
        }
    };
    // The average item's size as DynamoDB bills it (names and values).
    let sample = 1_000.min(total).max(1);
    let bytes: usize = (0..sample)
        .map(|i| {
            let mut item = item(i * (total / sample).max(1), total, today, false);
            item.insert("timezone".into(), s(zones[i % zones.len()]));
            item.iter()
                .map(|(k, v)| {
                    k.len()
                        + match v {
                            AttributeValue::S(t) => t.len(),
                            AttributeValue::Ss(l) => l.iter().map(String::len).sum(),
                            _ => 8,
                        }
                })
                .sum::<usize>()
        })
        .sum();
    let item_bytes = bytes as f64 / sample as f64;
    // The day before is run first, unmeasured, from the run state of two
    // days of hourly runs: what was due then is sent then, not counted as
    // this day's.
    let warm_up = start - chrono::Duration::hours(24);
    let hours = |h: i64| warm_up - chrono::Duration::hours(h);
    let mut met: Vec<chrono_tz::Tz> = zones.iter().map(|z| z.parse().expect("a zone")).collect();
    met.push(chrono_tz::Tz::UTC);
    deps.store
        .record_read(&ReadState {
            last_run_at: Some(hours(1)),
            last_full_read_at: Some(hours(4)),
            zones: met,
            series_since: Some(hours(48)),
            full_read_due: None,
            customer_settings: false,
            ..ReadState::default()
        })
        .await?;
    for h in 0..24 {
        let as_of = warm_up + chrono::Duration::hours(h);
        drain(as_of).await?;
        let summary = run(&deps, &RunRequest::new(as_of, format!("eve-{h}"))).await?;
        anyhow::ensure!(
            summary.failures() == 0,
            "warm-up run {h}: {} failures",
            summary.failures()
        );
        anyhow::ensure!(
            !next || h == 0 || !summary.full_read,
            "warm-up run {h} read every open invoice again"
        );
    }
    let (mut read, mut full_read, mut sent, mut full_reads, mut secs) =
        (0u64, 0u64, 0u64, 0u64, 0f64);
    let (mut written, mut run_set) = (Written::default(), 0u64);
    let mut runs = Vec::new();
    for h in 0..24 {
        let as_of = start + chrono::Duration::hours(h);
        // What the last run (and the day before's) wrote reaches the function first.
        written.take(drain(as_of).await?);
        let started = Instant::now();
        let summary = run(&deps, &RunRequest::new(as_of, format!("day-{h}"))).await?;
        let took = started.elapsed().as_secs_f64();
        run_set += summary.next_at_written;
        anyhow::ensure!(
            summary.failures() == 0,
            "run {h}: {} failures",
            summary.failures()
        );
        read += summary.scanned_count;
        sent += summary.total_sent();
        secs += took;
        if summary.full_read {
            full_reads += 1;
            full_read += summary.scanned_count;
        }
        runs.push(
            serde_json::json!({"at": as_of, "full_read": summary.full_read,
            "read": summary.scanned_count, "sent": summary.total_sent(), "seconds": took}),
        );
    }
    // The last run's writes, and the function's writes they cause.
    for _ in 0..2 {
        written.take(drain(start + chrono::Duration::hours(24)).await?);
    }
    let (stream_read, stream_set) = (written.function_read, written.function_set);
    // Write request units: one per item (under 1 KB) written to the table,
    // and one more per index an invoice item is in (the due index and, with
    // next_at, the next-at index: both project the whole item). Claims are
    // transactions (twice the units): counted as single writes here.
    // A write that moves an index's key (next_at) is a delete and a put there.
    let indexes = if next { 2 } else { 1 };
    let write_units = written.items + written.invoices * indexes + stream_set + run_set;
    let read_units = (read + stream_read) as f64 * item_bytes / 4096.0 * 0.5;
    Ok(serde_json::json!({
        "reads": if next { "next_at" } else { "bands" },
        "zones": zones.len(),
        "items_written": written.items,
        "invoice_items_written": written.invoices,
        "next_at_written_by_the_function": stream_set,
        "next_at_written_by_runs": run_set,
        "items_read_by_the_function": stream_read,
        "write_request_units": write_units,
        "read_and_function_per_message": (read + stream_read) as f64 / sent.max(1) as f64,
        // On-demand, us-east-1 (the cost model's prices): $0.125 per million
        // read units, $0.625 per million write units.
        "dollars_per_day": read_units * 0.125e-6 + write_units as f64 * 0.625e-6,
        "load_seconds": load_secs,
        "messages_sent": sent,
        "items_read": read,
        "items_read_by_full_reads": full_read,
        "full_reads": full_reads,
        "read_per_message": read as f64 / sent.max(1) as f64,
        "item_bytes": item_bytes,
        // Queries of an index read eventually consistently: half a unit per 4 KB.
        "read_request_units": read as f64 * item_bytes / 4096.0 * 0.5,
        "naive_scan_read_request_units": (24 * total) as f64 * item_bytes / 4096.0 * 0.5,
        "naive_scan_per_message": (24 * total) as f64 / sent.max(1) as f64,
        "run_seconds": secs,
        "runs": runs,
    }))
}

/// A figure of this process's `/proc/self/status`, in KiB (0 if unreadable).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100_000);
    let mode = std::env::args().nth(2).unwrap_or_default();
    if mode == "day" {
        return day(total).await;
    }
    // `all-due-next-at`: the same with the next-at index (its first run
    // reschedules: it reads every open invoice and keeps each one's next_at).
    let all_due = mode.starts_with("all-due");
    let next_at = if mode.ends_with("next-at") {
        "true"
    } else {
        "false"
    };
    let moto = Moto::start()?;
    // The emulator reads a 100,000-item index slowly: allow long attempts (SDK_ATTEMPT_TIMEOUT_MS).
    let sdk =
        dunning_e2e::sdk_config_at(moto.endpoint(), dunning::aws::sdk::SdkSettings::from_env()?)
            .await;
    // Dry runs claim nothing; the lease must only cover the long attempts allowed above.
    let deps = Deps::new(
        &sdk,
        config(&[("CLAIM_LEASE_SECONDS", "3600"), ("NEXT_AT_INDEX", next_at)]),
    )?;
    deps.store.create_table().await?;
    let as_of: DateTime<Utc> = "2026-11-23T09:30:00Z".parse()?;
    let today = as_of.date_naive();
    let loading = Instant::now();
    load(&deps.store, total, |i| item(i, total, today, all_due)).await?;
    // A quarter of the webhook's rollup: its per-day items of the last 90
    // days of money and sends, and of the due dates the ladder reaches.
    let rollup_items = if all_due {
        0
    } else {
        load_rollup(&deps.store, today).await?
    };
    let load_secs = loading.elapsed().as_secs_f64();
    let load_peak_rss_kib = status_kib("VmHWM:");
    let load_rss_kib = status_kib("VmRSS:");

    // A full read of the window first (not in the memory benchmark).
    let mut req = RunRequest::new(as_of, "bench");
    req.dry_run = true;
    let full = if all_due {
        None
    } else {
        let started = Instant::now();
        let summary = run(&deps, &req).await?;
        anyhow::ensure!(summary.full_read, "no run state yet: a full read");
        Some((summary, started.elapsed().as_secs_f64()))
    };
    if all_due {
        // One Lambda invocation: it holds no more customers than it can send to by its deadline.
        req.deadline = Some(Instant::now() + std::time::Duration::from_secs(900));
    } else {
        // The run state of hourly runs for two days, the last full read at 05:30.
        let hours = |h: i64| as_of - chrono::Duration::hours(h);
        deps.store
            .record_read(&ReadState {
                last_run_at: Some(hours(1)),
                last_full_read_at: Some(hours(4)),
                zones: vec![chrono_tz::Tz::UTC],
                series_since: Some(hours(48)),
                full_read_due: None,
                customer_settings: false,
                ..ReadState::default()
            })
            .await?;
    }
    // The run: the due index.
    let started = Instant::now();
    let summary = run(&deps, &req).await?;
    let run_secs = started.elapsed().as_secs_f64();
    if let Some((full, _)) = &full {
        anyhow::ensure!(!summary.full_read, "the hourly run reads bands");
        anyhow::ensure!(
            full.total_planned() == summary.total_planned(),
            "the full read plans {} messages, the bands {}",
            full.total_planned(),
            summary.total_planned()
        );
    }
    let peak_rss_kib = status_kib("VmHWM:");
    // Messages due: planned by this run, or left for the next by its capacity.
    let planned = summary.total_planned() + summary.skipped(SkipReason::TimeBudget);

    // The naive way: a parallel Scan of the whole table, same validation and decision.
    let started = Instant::now();
    let segments = 4;
    let parts = (0..segments).map(|segment| {
        let deps = &deps;
        async move {
            let (mut scanned, mut eligible) = (0u64, 0u64);
            let mut start = None;
            loop {
                let page = deps.store.scan_invoices(segment, segments, start).await?;
                scanned += page.scanned_count;
                for item in &page.items {
                    if let Ok(invoice) = Invoice::parse(&item.raw) {
                        if decide(
                            &deps.policy,
                            &invoice,
                            as_of,
                            deps.config.messages.business_timezone,
                        )
                        .is_ok()
                        {
                            eligible += 1;
                        }
                    }
                }
                start = page.next;
                if start.is_none() {
                    return Ok::<_, anyhow::Error>((scanned, eligible));
                }
            }
        }
    });
    let (mut scan_read, mut scan_eligible) = (0, 0);
    for part in join_all(parts).await {
        let (r, e) = part?;
        scan_read += r;
        scan_eligible += e;
    }
    let scan_secs = started.elapsed().as_secs_f64();
    let run_eligible = full.as_ref().map_or(summary.eligible, |(f, _)| f.eligible);
    anyhow::ensure!(
        scan_eligible == run_eligible,
        "the scan found {scan_eligible} eligible, the full read {run_eligible}",
    );
    // The report: the open invoices through the due index, the rollup days
    // of its windows, the unapplied payments and the customers' records.
    let (report, report_reads, report_secs) = if all_due {
        (None, None, 0.0)
    } else {
        let steps = deps.policy.reminder_ladder();
        let started = Instant::now();
        let (input, reads) = deps.store.report_input(as_of, &steps).await?;
        let report = dunning::report::build(&input, &steps, as_of, chrono_tz::Tz::UTC);
        (Some(report), Some(reads), started.elapsed().as_secs_f64())
    };
    let open_reported = report.as_ref().map_or(0, |r| {
        r.by_currency.values().map(|a| a.open.count).sum::<u64>()
    });
    // Each invoice here has an email only: an invoice due a step today is one planned message.
    let due = planned.max(1);
    println!(
        "{}",
        serde_json::json!({
            "invoices": total,
            "due_invoices": planned,
            "eligible_including_already_reminded": summary.eligible,
            "load_seconds": load_secs,
            "peak_rss_mib_after_run": peak_rss_kib as f64 / 1024.0,
            "peak_rss_mib_after_load": load_peak_rss_kib as f64 / 1024.0,
            "rss_mib_after_load": load_rss_kib as f64 / 1024.0,
            "run": {"full_read": summary.full_read, "due_date_ranges": summary.due_date_ranges,
                     "scanned_count": summary.scanned_count, "items_read": summary.items_read,
                     "pages": summary.pages, "seconds": run_secs, "planned": summary.total_planned(),
                     "time_budget": summary.skipped(SkipReason::TimeBudget),
                     "read_per_due_invoice": summary.scanned_count as f64 / due as f64},
            "full_read": full.as_ref().map(|(f, secs)| serde_json::json!({
                     "scanned_count": f.scanned_count, "seconds": secs, "planned": f.total_planned(),
                     "read_per_due_invoice": f.scanned_count as f64 / due as f64})),
            "naive_scan": {"scanned_count": scan_read, "segments": segments, "seconds": scan_secs,
                     "read_per_due_invoice": scan_read as f64 / due as f64},
            "ratio_scan_to_run_reads": scan_read as f64 / summary.scanned_count.max(1) as f64,
            "ratio_scan_to_run_seconds": scan_secs / run_secs,
            "report": report_reads.map(|r| serde_json::json!({
                     "table_items": total as u64 + rollup_items, "items_read": r.total(),
                     "open_invoices_read": r.open_invoices, "rollup_days_read": r.rollup_days,
                     "unapplied_read": r.unapplied, "customer_records_read": r.customers,
                     "open_invoices_reported": open_reported,
                     "read_per_table_item": r.total() as f64 / (total as u64 + rollup_items) as f64,
                     "seconds": report_secs, "ratio_to_run_seconds": report_secs / run_secs})),
        })
    );
    Ok(())
}
