//! End-to-end: reading only the due-date bands between full reads, and
//! fanning a run out to workers, against the emulator. Each compares with the
//! plain way on an identical table: the same messages, no duplicate, no gap.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use dunning::fanout::WorkOrder;
use dunning::run::{run, Deps, RunRequest};
use dunning::summary::RunSummary;
use dunning_e2e::{config, invoice, Outbox, TestEnv, MONDAY_2PM};
use futures::future::join_all;

const ZONES: [&str; 4] = [
    "UTC",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Auckland",
];

/// Invoices in four zones whose steps fall over three days from `start`
/// (every day offset from 32 days before to 6 days after), some customers
/// with two invoices, some with a phone.
async fn seed_spread(env: &TestEnv, start: DateTime<Utc>) -> anyhow::Result<()> {
    for i in 0..48i64 {
        let id = format!("INV-{i:03}");
        let due = (start + Duration::days(6 - i % 39))
            .date_naive()
            .to_string();
        let customer = format!("C-{:03}", i % 40);
        let email = format!("c{}@example.com", i % 40);
        let phone = format!("+1555555{:04}", i % 40);
        let mut extra = vec![
            ("customer_id", customer.as_str()),
            ("email", email.as_str()),
            ("timezone", ZONES[(i % 40 % 4) as usize]),
        ];
        if i % 3 == 0 {
            extra.push(("phone", phone.as_str()));
        }
        env.put_invoice(&invoice(&id, &due, &extra)).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_runs_reading_bands_send_what_full_reads_send() -> anyhow::Result<()> {
    let full = TestEnv::with_config(config(&[("FULL_READ_HOURS", "0")]), true).await?;
    let bands = TestEnv::with_config(config(&[]), true).await?;
    let start: DateTime<Utc> = "2026-11-22T00:00:00Z".parse()?;
    for env in [&full, &bands] {
        seed_spread(env, start).await?;
    }
    let (mut read_full, mut read_bands, mut band_runs) = (0, 0, 0);
    // Three days of hourly runs, the same instants for both.
    for hour in 0..72 {
        let as_of = start + Duration::hours(hour);
        let id = format!("run-{hour}");
        let a = run(&full.deps, &RunRequest::new(as_of, &id)).await?;
        let b = run(&bands.deps, &RunRequest::new(as_of, &id)).await?;
        assert!(
            a.full_read,
            "FULL_READ_HOURS=0 reads the whole window every time"
        );
        assert_eq!(
            a.total_sent(),
            b.total_sent(),
            "at {as_of}: full read sent {}, bands {} ({b:?})",
            a.total_sent(),
            b.total_sent()
        );
        if hour < 24 {
            assert!(
                b.full_read,
                "the first day after a start reads the whole window"
            );
        }
        band_runs += u64::from(!b.full_read);
        read_full += a.scanned_count;
        read_bands += b.scanned_count;
    }
    let (a, b) = (full.moto.messages()?, bands.moto.messages()?);
    assert!(!a.is_empty());
    assert_eq!(a, b, "the same messages, word for word");
    // Between full reads (every 6 hours) the runs read bands, and read less.
    assert!(band_runs >= 30, "{band_runs} runs read bands");
    assert!(
        read_bands < read_full,
        "bands read {read_bands} items, full reads {read_full}"
    );
    Ok(())
}

/// Hourly runs through the next-at index, with the table's stream read
/// from the emulator and handed to the `next-at` function's code between
/// runs (as Lambda's event source mapping would), send what runs reading
/// the whole window every hour send, word for word: while a billing system
/// writes plain items mid-way (no `next_at`) and a customer is paused and
/// resumed through their record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_runs_through_the_next_at_index_send_what_full_reads_send() -> anyhow::Result<()> {
    use dunning::customer::{Change, Mark};
    use dunning::ports::Links;
    let full = TestEnv::with_config(config(&[("FULL_READ_HOURS", "0")]), true).await?;
    let next = TestEnv::with_config(config(&[("NEXT_AT_INDEX", "true")]), true).await?;
    let mut stream =
        dunning_e2e::stream::StreamReader::enable(&next.deps.store, next.moto.endpoint()).await?;
    let start: DateTime<Utc> = "2026-11-22T00:00:00Z".parse()?;
    for env in [&full, &next] {
        seed_spread(env, start).await?;
    }
    let (mut read_full, mut read_next, mut stream_writes, mut customer_moves) = (0, 0, 0, 0);
    let mut reschedules = 0;
    for hour in 0..72 {
        let as_of = start + Duration::hours(hour);
        // A billing system's plain items, and a customer's pause and resume.
        if hour == 30 {
            for env in [&full, &next] {
                for i in 0..6i64 {
                    let due = (as_of + Duration::days(3 - i)).date_naive().to_string();
                    env.put_invoice(&invoice(
                        &format!("LATE-{i}"),
                        &due,
                        &[
                            ("customer_id", &format!("L-{i}")),
                            ("email", &format!("late{i}@example.com")),
                            ("timezone", ZONES[i as usize % 4]),
                        ],
                    ))
                    .await?;
                }
            }
        }
        let change = match hour {
            20 => Some(Change::Pause {
                until: start + Duration::hours(60),
                mark: Mark {
                    source: "cli:test".into(),
                    at: as_of,
                    reason: None,
                },
            }),
            44 => Some(Change::Resume),
            _ => None,
        };
        if let Some(change) = change {
            for env in [&full, &next] {
                env.deps
                    .store
                    .change_customer_record("C-001", &change)
                    .await?;
            }
        }
        let applied = stream.apply(&next.deps, as_of).await?;
        stream_writes += applied.writes();
        customer_moves += applied.customers_changed;
        let id = format!("run-{hour}");
        let a = run(&full.deps, &RunRequest::new(as_of, &id)).await?;
        let b = run(&next.deps, &RunRequest::new(as_of, &id)).await?;
        assert_eq!(
            a.total_sent(),
            b.total_sent(),
            "at {as_of}: full read sent {}, the index {} ({b:?})",
            a.total_sent(),
            b.total_sent()
        );
        reschedules += u64::from(b.full_read);
        read_full += a.scanned_count;
        read_next += b.scanned_count;
        // What the run wrote goes through the stream too.
        stream_writes += stream.apply(&next.deps, as_of).await?.writes();
    }
    let (a, b) = (full.moto.messages()?, next.moto.messages()?);
    assert!(!a.is_empty());
    assert_eq!(a, b, "the same messages, word for word");
    assert!(
        a.iter().any(|(to, _, _)| to.starts_with("late")),
        "the plain items were reminded"
    );
    assert_eq!(
        reschedules, 1,
        "only the first run reads every open invoice"
    );
    assert!(
        stream_writes > 0 && customer_moves == 2,
        "{stream_writes} writes, {customer_moves} customers"
    );
    assert!(
        read_next * 3 < read_full,
        "the index read {read_next} items, full reads {read_full}"
    );
    Ok(())
}

/// 90 customers, each due a step today on one to three invoices, some with SMS.
async fn seed_due_today(env: &TestEnv) -> anyhow::Result<()> {
    let today: DateTime<Utc> = MONDAY_2PM.parse()?;
    let offsets = [-3i64, 0, 1, 7, 14];
    for i in 0..150i64 {
        let id = format!("INV-{i:03}");
        let c = i % 90;
        let due = (today - Duration::days(offsets[(c % 5) as usize]))
            .date_naive()
            .to_string();
        let customer = format!("C-{c:03}");
        let email = format!("c{c}@example.com");
        let phone = format!("+1555556{c:04}");
        let mut extra = vec![
            ("customer_id", customer.as_str()),
            ("email", email.as_str()),
        ];
        if c % 4 == 0 {
            extra.push(("phone", phone.as_str()));
        }
        env.put_invoice(&invoice(&id, &due, &extra)).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_send_exactly_what_one_run_sends() -> anyhow::Result<()> {
    let as_of: DateTime<Utc> = MONDAY_2PM.parse()?;
    // One run, sending everything itself.
    let single = TestEnv::start().await?;
    seed_due_today(&single).await?;
    let one = run(&single.deps, &RunRequest::new(as_of, "single")).await?;
    assert_eq!(one.fanned_out, 0);

    // The same table, with a work queue: the run queues orders for 4 workers.
    let mut fanned = TestEnv::start().await?;
    seed_due_today(&fanned).await?;
    let sdk = fanned.moto.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = sqs.create_queue().queue_name("dunning-work").send().await?;
    let url = queue.queue_url().unwrap_or_default().to_owned();
    // One invocation sends 1 message/s (WORKER_SEND_RATE) for the 20 s its
    // 30 s deadline leaves (a third kept as margin): 90 customers need 5
    // invocations; the rate is unlimited, so the maximum, 4, decides.
    let cfg = config(&[
        ("WORK_QUEUE_URL", url.as_str()),
        ("MAX_WORKERS", "4"),
        ("WORKER_SEND_RATE", "1"),
        ("EMAIL_RATE", "0"),
    ]);
    fanned.deps = Deps::new(&sdk, cfg)?;
    let mut coordinator = RunRequest::new(as_of, "fanned");
    coordinator.deadline = Some(std::time::Instant::now() + std::time::Duration::from_secs(30));
    let queued = run(&fanned.deps, &coordinator).await?;
    assert_eq!(queued.fanned_out, 4, "{queued:?}");
    assert_eq!(queued.total_sent(), 0, "the run itself sends nothing");
    assert_eq!(fanned.moto.messages()?, vec![]);

    // The workers: each order as the queue delivers it, all four at once.
    let mut orders: Vec<WorkOrder> = Vec::new();
    while orders.len() < 4 {
        let got = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await?;
        let messages = got.messages.unwrap_or_default();
        anyhow::ensure!(!messages.is_empty(), "only {} orders queued", orders.len());
        for m in messages {
            orders.push(serde_json::from_str(m.body().unwrap_or_default())?);
        }
    }
    let mut shards: Vec<u32> = orders.iter().map(|o| o.shard.index).collect();
    shards.sort();
    assert_eq!(shards, vec![0, 1, 2, 3]);
    let deps = &fanned.deps;
    let workers: Vec<RunSummary> = join_all(
        orders
            .into_iter()
            .map(|o| async move { run(deps, &RunRequest::worker(o)).await }),
    )
    .await
    .into_iter()
    .collect::<Result<_, _>>()?;

    // No gap, no duplicate: the same messages as the single run, word for word.
    let (a, b) = (single.moto.messages()?, fanned.moto.messages()?);
    assert!(!a.is_empty());
    assert_eq!(a, b);
    // Disjoint shards: each message was sent by exactly one worker.
    let by_worker: Vec<u64> = workers.iter().map(RunSummary::total_sent).collect();
    assert_eq!(
        by_worker.iter().sum::<u64>(),
        one.total_sent(),
        "{by_worker:?}"
    );
    assert!(by_worker.iter().all(|&n| n > 0), "{by_worker:?}");
    let mut per_recipient: BTreeMap<&str, usize> = BTreeMap::new();
    for (to, _, _) in &b {
        *per_recipient.entry(to.as_str()).or_default() += 1;
    }
    assert!(
        per_recipient.values().all(|&n| n == 1),
        "one message per customer and channel"
    );
    Ok(())
}
