//! Properties of whole runs over the in-memory store (held to the DynamoDB
//! store by `contract.rs`): the ledger that decides is the store's own,
//! written by the run's claims, not a model of it.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use dunning::channel::Channel;
use dunning::money::Currency;
use dunning::payment::Payment;
use dunning::ports::Payments;
use dunning::run::{run, RunRequest};
use dunning_e2e::{config, invoice, MemEnv};
use proptest::prelude::*;

/// One invoice, when (if ever) it is paid, and the gaps between runs in hours.
#[derive(Debug, Clone)]
struct Scenario {
    due_offset_days: i64,
    tz: Tz,
    paid_after_hours: Option<i64>,
    gaps: Vec<i64>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let zones = prop::sample::select(vec![
        Tz::UTC,
        chrono_tz::America::New_York,
        chrono_tz::Europe::London,
        chrono_tz::Pacific::Auckland,
        chrono_tz::Pacific::Honolulu,
        chrono_tz::Asia::Kolkata,
    ]);
    let gap = prop_oneof![8 => Just(1i64), 1 => 2i64..30, 1 => 30i64..300];
    (
        -5i64..60,
        zones,
        prop::option::of(0i64..1500),
        prop::collection::vec(gap, 50..600),
    )
        .prop_map(|(due_offset_days, tz, paid_after_hours, gaps)| Scenario {
            due_offset_days,
            tz,
            paid_after_hours,
            gaps,
        })
}

/// What each run sent: (the run's instant, step, channel), from the
/// recorder, and the store's ledger at the end.
async fn simulate(
    s: &Scenario,
) -> anyhow::Result<(
    Vec<(DateTime<Utc>, String, Channel)>,
    Vec<serde_json::Value>,
    DateTime<Utc>,
)> {
    let env = MemEnv::with_config(config(&[]), true).await?;
    let start: DateTime<Utc> = "2026-01-05T00:00:00Z".parse()?;
    let due = (start + Duration::days(s.due_offset_days))
        .date_naive()
        .to_string();
    env.put_invoice(&invoice(
        "INV-1",
        &due,
        &[
            ("email", "ana@example.com"),
            ("phone", "+15555550100"),
            ("timezone", s.tz.name()),
        ],
    ))
    .await?;
    let paid_at = s.paid_after_hours.map(|h| start + Duration::hours(h));
    let mut paid = false;
    let mut sent = Vec::new();
    let mut now = start;
    for (i, gap) in s.gaps.iter().enumerate() {
        now += Duration::hours(*gap);
        if !paid && paid_at.is_some_and(|t| t <= now) {
            let payment = Payment::once(
                "pay-1",
                "pay-1",
                "INV-1",
                "120.00".parse()?,
                Currency::parse("USD").unwrap(),
                paid_at.unwrap(),
                "generic",
                "payment",
            );
            env.deps.store.apply_payment(&payment, now).await?;
            paid = true;
        }
        let before = env.sent.0.recorded();
        run(&env.deps, &RunRequest::new(now, format!("run-{i}"))).await?;
        let after = env.sent.0.recorded();
        let ledger = env.ledger("INV-1").await?;
        // The store's ledger says which step each new message was: the
        // records this run marked sent.
        let step_sent = |channel: &str, n_new: usize| -> Vec<String> {
            if n_new == 0 {
                return Vec::new();
            }
            ledger
                .iter()
                .filter(|r| {
                    r["channel"] == channel
                        && r["state"] == "sent"
                        && r["run_id"] == format!("run-{i}")
                })
                .map(|r| r["step"].as_str().unwrap_or_default().to_owned())
                .collect()
        };
        for step in step_sent("email", after.emails.len() - before.emails.len()) {
            sent.push((now, step, Channel::Email));
        }
        for step in step_sent("sms", after.sms.len() - before.sms.len()) {
            sent.push((now, step, Channel::Sms));
        }
        assert_eq!(
            sent.len(),
            after.emails.len() + after.sms.len(),
            "every message the senders got is on the ledger as sent by its run"
        );
    }
    Ok((sent, env.ledger("INV-1").await?, start))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Over any series of runs (hourly, with outages), the run sends each
    /// (step, channel) at most once, steps never go backwards, every message
    /// goes out in the customer's window, and nothing after the payment.
    #[test]
    fn reminders_are_once_in_order_in_window_and_never_after_payment(s in scenario()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (sent, ledger, start) = rt.block_on(simulate(&s)).unwrap();
        let p = dunning::policy::Policy::default_policy();
        let mut offsets = Vec::new();
        for (when, step, channel) in &sent {
            let step = p.steps().iter().find(|x| &x.name == step).unwrap();
            offsets.push(step.offset_days);
            let local = when.with_timezone(&s.tz);
            prop_assert!(p.calendar.open(*channel, local.time()), "{when} is outside the window in {}", s.tz);
            if let Some(h) = s.paid_after_hours {
                prop_assert!(*when < start + Duration::hours(h), "sent at {when} after payment");
            }
        }
        prop_assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "{offsets:?}");
        // Each (step, channel) at most once, in what was sent and in the store.
        let mut keys: Vec<_> = sent.iter().map(|(_, st, c)| (st.clone(), *c)).collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        prop_assert_eq!(keys.len(), n);
        let sent_records = ledger.iter().filter(|r| r["state"] == "sent" && r["channel"] != "escalation").count();
        prop_assert_eq!(sent_records, n, "the store's ledger has one sent record per message");
    }
}

/// The simulation really sends: hourly runs over the whole ladder, no
/// payment, send every step on both channels once, then escalate.
#[test]
fn hourly_runs_over_the_whole_ladder_send_every_step_once() {
    let s = Scenario {
        due_offset_days: 5,
        tz: chrono_tz::America::New_York,
        paid_after_hours: None,
        gaps: vec![1; 24 * 45],
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (sent, ledger, _) = rt.block_on(simulate(&s)).unwrap();
    let p = dunning::policy::Policy::default_policy();
    let expected: Vec<(String, Channel)> = p
        .steps()
        .iter()
        .flat_map(|st| st.channels.iter().map(move |c| (st.name.clone(), *c)))
        .collect();
    let got: Vec<(String, Channel)> = sent.into_iter().map(|(_, st, c)| (st, c)).collect();
    assert_eq!(got, expected);
    assert!(ledger
        .iter()
        .any(|r| r["channel"] == "escalation" && r["state"] == "sent"));
}

/// A business-day scenario: two invoices of one customer, weekends skipped
/// and some holidays, a cap that defers, runs with outages, and sends that
/// fail transiently at random (retried by later runs).
#[derive(Debug, Clone)]
struct BusinessDays {
    due_offset_days: i64,
    second_due_after: i64,
    tz: Tz,
    holidays: Vec<i64>,
    gaps: Vec<i64>,
    fail_percent: u64,
    seed: u64,
}

fn business_days() -> impl Strategy<Value = BusinessDays> {
    let zones = prop::sample::select(vec![
        Tz::UTC,
        chrono_tz::America::New_York,
        chrono_tz::Pacific::Auckland,
        chrono_tz::Asia::Kathmandu,
        chrono_tz::Pacific::Honolulu,
    ]);
    let gap = prop_oneof![8 => Just(1i64), 1 => 2i64..30, 1 => 30i64..150];
    (
        (-5i64..40, 0i64..4, zones),
        prop::collection::vec(0i64..70, 0..5),
        prop::collection::vec(gap, 50..500),
        (0u64..50, any::<u64>()),
    )
        .prop_map(
            |((due_offset_days, second_due_after, tz), holidays, gaps, (fail_percent, seed))| {
                BusinessDays {
                    due_offset_days,
                    second_due_after,
                    tz,
                    holidays,
                    gaps,
                    fail_percent,
                    seed,
                }
            },
        )
}

/// What one business-day scenario did: the local days messages went out on,
/// and how many sends failed, were deferred by the cap, or were held for a
/// non-business day (so that the test shows those paths were taken).
#[derive(Default)]
struct Days {
    sent_on: Vec<chrono::NaiveDate>,
    failed: u64,
    deferred: u64,
    held: u64,
}

async fn simulate_business_days(
    s: &BusinessDays,
    policy: &dunning::policy::Policy,
    policy_file: &std::path::Path,
) -> anyhow::Result<Days> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let calls = AtomicU64::new(0);
    let (seed, percent) = (s.seed, s.fail_percent);
    let recorder = dunning::testing::Recorder::refusing(move |_| {
        // A hash of (seed, call number): a fixed, reproducible series of failures.
        let n = calls.fetch_add(1, Ordering::Relaxed);
        let mixed =
            (seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        ((mixed >> 33) % 100 < percent)
            .then(|| dunning::ports::SendError::transient("ServiceUnavailable", "injected"))
    });
    let env = MemEnv::with_recorder(
        config(&[("POLICY_FILE", policy_file.to_str().unwrap())]),
        recorder,
    )?;
    let start: DateTime<Utc> = "2026-01-05T00:00:00Z".parse()?;
    for (id, offset) in [
        ("INV-1", s.due_offset_days),
        ("INV-2", s.due_offset_days + s.second_due_after),
    ] {
        let due = (start + Duration::days(offset)).date_naive().to_string();
        env.put_invoice(&invoice(
            id,
            &due,
            &[
                ("customer_id", "CUST"),
                ("email", "ana@example.com"),
                ("phone", "+15555550100"),
                ("timezone", s.tz.name()),
            ],
        ))
        .await?;
    }
    let mut days = Days::default();
    let mut now = start;
    for (i, gap) in s.gaps.iter().enumerate() {
        now += Duration::hours(*gap);
        let summary = run(&env.deps, &RunRequest::new(now, format!("run-{i}"))).await?;
        let local = now.with_timezone(&s.tz).date_naive();
        days.sent_on
            .extend(std::iter::repeat_n(local, summary.total_sent() as usize));
        days.failed += summary.total_failed();
        days.deferred += summary.skipped(dunning::summary::SkipReason::CustomerCap);
        days.held += summary.held.get("not_a_business_day").copied().unwrap_or(0);
    }
    anyhow::ensure!(
        policy.calendar.skip_weekends,
        "the scenario's policy skips weekends"
    );
    Ok(days)
}

/// The default policy with weekends skipped, these holidays (days after
/// `start`) and a cap of 2 messages in 2 days, written to a file of `dir`;
/// the file and the text.
fn business_days_policy(
    dir: &std::path::Path,
    case: u32,
    start: DateTime<Utc>,
    holidays: &[i64],
) -> (std::path::PathBuf, String) {
    let holidays: Vec<String> = holidays
        .iter()
        .map(|d| format!("\"{}\"", (start + Duration::days(*d)).date_naive()))
        .collect();
    let text = dunning::policy::DEFAULT_POLICY
        .replace("skip_weekends = false", "skip_weekends = true")
        .replace(
            "holidays = []",
            &format!("holidays = [{}]", holidays.join(", ")),
        )
        .replace("messages = 7\ndays = 7", "messages = 2\ndays = 2");
    let file = dir.join(format!("policy-{case}.toml"));
    std::fs::write(&file, &text).unwrap();
    (file, text)
}

/// With weekends skipped and holidays, no message ever goes out on a
/// non-business day in the customer's calendar, whatever the outages, the
/// retries after transient failures and the cap's deferrals; and those
/// paths were really taken across the cases.
#[test]
fn no_send_on_a_weekend_or_holiday_through_outages_retries_and_deferrals() {
    use proptest::test_runner::{Config, TestRunner};
    let start: DateTime<Utc> = "2026-01-05T00:00:00Z".parse().unwrap();
    let totals = std::cell::RefCell::new(Days::default());
    let mut runner = TestRunner::new(Config::with_cases(120));
    let dir = std::env::temp_dir().join(format!("dunning-business-days-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let case = std::cell::Cell::new(0u32);
    let result = runner.run(&business_days(), |s| {
        case.set(case.get() + 1);
        let (file, text) = business_days_policy(&dir, case.get(), start, &s.holidays);
        let policy = dunning::policy::Policy::from_toml(&text, |_| true).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let days = rt
            .block_on(simulate_business_days(&s, &policy, &file))
            .unwrap();
        for day in &days.sent_on {
            prop_assert!(
                policy.calendar.is_business_day(*day),
                "sent on {day} ({})",
                day.format("%a")
            );
        }
        let mut t = totals.borrow_mut();
        t.sent_on.extend(days.sent_on);
        t.failed += days.failed;
        t.deferred += days.deferred;
        t.held += days.held;
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    result.unwrap();
    let t = totals.into_inner();
    assert!(!t.sent_on.is_empty(), "messages were sent");
    assert!(t.failed > 0, "some sends failed and were retried");
    assert!(t.deferred > 0, "the cap deferred some messages");
    assert!(t.held > 0, "some messages were held for a non-business day");
}

/// Invoices a billing system writes between runs (plain items: no
/// `next_at`), some paid later, and the runs' gaps.
#[derive(Debug, Clone)]
struct PlainWrites {
    /// (due offset in days from the start, zone, the run before which it
    /// is written, with a phone, paid before this run if any).
    invoices: Vec<(i64, Tz, usize, bool, Option<usize>)>,
    holidays: Vec<i64>,
    gaps: Vec<i64>,
    fail_percent: u64,
    seed: u64,
    /// The customer's record: paused before run `.0` for `.1` hours; opted
    /// out of SMS before run `.2` (and in again 100 runs later).
    record: (Option<(usize, i64)>, Option<usize>),
}

fn plain_writes() -> impl Strategy<Value = PlainWrites> {
    let zones = prop::sample::select(vec![
        Tz::UTC,
        chrono_tz::America::New_York,
        chrono_tz::Pacific::Auckland,
        chrono_tz::Asia::Kathmandu,
        chrono_tz::Asia::Kolkata,
        chrono_tz::Australia::Adelaide,
        chrono_tz::America::St_Johns,
        chrono_tz::Pacific::Chatham,
        chrono_tz::America::Havana,
    ]);
    let gap = prop_oneof![8 => Just(1i64), 1 => 2i64..30, 1 => 30i64..150];
    let invoice = (
        -5i64..40,
        zones,
        0usize..200,
        any::<bool>(),
        prop::option::of(0usize..400),
    );
    (
        prop::collection::vec(invoice, 1..4),
        prop::collection::vec(0i64..70, 0..4),
        prop::collection::vec(gap, 100..400),
        (0u64..30, any::<u64>()),
        (
            prop::option::of((0usize..300, 1i64..400)),
            prop::option::of(0usize..300),
        ),
    )
        .prop_map(
            |(invoices, holidays, gaps, (fail_percent, seed), record)| PlainWrites {
                invoices,
                holidays,
                gaps,
                fail_percent,
                seed,
                record,
            },
        )
}

/// What one series of runs sent, by run: (run, recipient, subject or SMS
/// marker), the items the runs read and what the stream function wrote.
#[derive(Debug, Default, PartialEq)]
struct Series {
    sent: Vec<(usize, String, String)>,
    items_read: u64,
    stream_writes: u64,
    written_plain: u64,
    /// Runs that read every open invoice (each reschedule).
    full_reads: u64,
    days: i64,
    failed: u64,
    deferred: u64,
    record_changes: u64,
}

/// Runs the scenario reading every open invoice every hour (`next =
/// false`: each run a reschedule) or through the next-at index, with the table's stream handed to the
/// `next-at` function's code after every write, as Lambda's event source
/// mapping would.
async fn simulate_plain_writes(
    s: &PlainWrites,
    policy_file: &std::path::Path,
    next: bool,
) -> anyhow::Result<Series> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let calls = AtomicU64::new(0);
    let (seed, percent) = (s.seed, s.fail_percent);
    let recorder = dunning::testing::Recorder::refusing(move |_| {
        let n = calls.fetch_add(1, Ordering::Relaxed);
        let mixed =
            (seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        ((mixed >> 33) % 100 < percent)
            .then(|| dunning::ports::SendError::transient("ServiceUnavailable", "injected"))
    });
    let env = MemEnv::with_recorder(
        config(&[
            ("POLICY_FILE", policy_file.to_str().unwrap()),
            ("NEXT_AT_INDEX", "true"),
        ]),
        recorder,
    )?;
    let tz = env.deps.config.messages.business_timezone;
    let stream = |now: DateTime<Utc>| {
        let changes = env.deps.store.stream();
        let store = &env.deps.store;
        let policy = &env.deps.policy;
        async move { dunning::next_at::stream::apply(store, policy, tz, now, changes).await }
    };
    let start: DateTime<Utc> = "2026-01-05T00:00:00Z".parse()?;
    let mut series = Series::default();
    let mut now = start;
    for (i, gap) in s.gaps.iter().enumerate() {
        now += Duration::hours(*gap);
        for (n, (offset, zone, written, phone, paid)) in s.invoices.iter().enumerate() {
            let id = format!("INV-{n}");
            if *written == i {
                let due = (start + Duration::days(*offset)).date_naive().to_string();
                let mut extra = vec![
                    ("customer_id", "CUST"),
                    ("email", "ana@example.com"),
                    ("timezone", zone.name()),
                ];
                if *phone {
                    extra.push(("phone", "+15555550100"));
                }
                env.put_invoice(&invoice(&id, &due, &extra)).await?;
                series.written_plain += 1;
            }
            if *paid == Some(i) && *written < i {
                let payment = Payment::once(
                    format!("pay-{n}"),
                    format!("pay-{n}"),
                    &id,
                    "120.00".parse()?,
                    Currency::parse("USD").unwrap(),
                    now,
                    "generic",
                    "payment",
                );
                env.deps.store.apply_payment(&payment, now).await?;
            }
        }
        let change = match s.record {
            (Some((at, hours)), _) if at == i => Some(dunning::customer::Change::Pause {
                until: now + Duration::hours(hours),
                mark: dunning::customer::Mark {
                    source: "cli:test".into(),
                    at: now,
                    reason: None,
                },
            }),
            (_, Some(at)) if at == i => Some(dunning::customer::Change::OptOut {
                channel: Channel::Sms,
                mark: dunning::customer::Mark {
                    source: "cli:test".into(),
                    at: now,
                    reason: None,
                },
            }),
            (_, Some(at)) if at + 100 == i => Some(dunning::customer::Change::OptIn {
                channel: Channel::Sms,
            }),
            _ => None,
        };
        if let Some(change) = change {
            use dunning::ports::Links;
            env.deps
                .store
                .change_customer_record("CUST", &change)
                .await?;
            series.record_changes += 1;
        }
        if next {
            series.stream_writes += stream(now).await?.writes();
        }
        if !next {
            // Reading everything: every run is a reschedule, which reads
            // every open invoice, whatever its due date.
            env.deps.store.forget_reads();
        }
        let before = env.sent.0.recorded();
        let summary = run(&env.deps, &RunRequest::new(now, format!("run-{i}"))).await?;
        if summary.full_read {
            series.full_reads += 1;
        }
        series.failed += summary.total_failed();
        series.deferred += summary.skipped(dunning::summary::SkipReason::CustomerCap);
        if next {
            series.stream_writes += stream(now).await?.writes();
        }
        series.items_read += summary.items_read;
        let after = env.sent.0.recorded();
        for e in &after.emails[before.emails.len()..] {
            series.sent.push((i, e.to.clone(), e.subject.clone()));
        }
        for m in &after.sms[before.sms.len()..] {
            series.sent.push((i, m.to.clone(), "sms".into()));
        }
        for e in &after.events[before.events.len()..] {
            series
                .sent
                .push((i, e.subject.clone(), e.event.to_string()));
        }
    }
    series.days = (now - start).num_days();
    Ok(series)
}

/// Hourly runs through the next-at index send exactly what runs reading
/// everything every hour send, run by run, while a billing system writes
/// plain items between runs (no `next_at`: the stream function gives them
/// one), payments arrive, sends fail and are retried, the customer cap
/// defers, and weekends and holidays hold messages; and they read less.
#[test]
fn the_next_at_index_sends_what_reading_everything_sends_with_plain_writers() {
    use proptest::test_runner::{Config, TestRunner};
    let start: DateTime<Utc> = "2026-01-05T00:00:00Z".parse().unwrap();
    let mut runner = TestRunner::new(Config::with_cases(60));
    let dir = std::env::temp_dir().join(format!("dunning-next-at-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let case = std::cell::Cell::new(0u32);
    let totals = std::cell::RefCell::new((0u64, 0u64, 0u64, 0u64, 0u64, 0u64, 0u64));
    let result = runner.run(&plain_writes(), |s| {
        case.set(case.get() + 1);
        let (file, _) = business_days_policy(&dir, case.get(), start, &s.holidays);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let everything = rt
            .block_on(simulate_plain_writes(&s, &file, false))
            .unwrap();
        let indexed = rt.block_on(simulate_plain_writes(&s, &file, true)).unwrap();
        // Within one run, the order of what went is the order of reading.
        let (mut a, mut b) = (indexed.sent.clone(), everything.sent.clone());
        a.sort();
        b.sort();
        prop_assert_eq!(a, b);
        // The first run, then one every RESCHEDULE_DAYS (28).
        prop_assert!(
            indexed.full_reads <= 1 + (indexed.days / 28) as u64,
            "{} reschedules in {} days",
            indexed.full_reads,
            indexed.days
        );
        let mut t = totals.borrow_mut();
        t.0 += everything.sent.len() as u64;
        t.1 += indexed.items_read;
        t.2 += everything.items_read;
        t.3 += indexed.stream_writes;
        t.4 += indexed.written_plain;
        t.5 += indexed.failed.min(indexed.deferred);
        t.6 += indexed.record_changes;
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    result.unwrap();
    let (sent, read_indexed, read_all, stream_writes, plain, failed_and_deferred, records) =
        totals.into_inner();
    assert!(
        records > 0,
        "customer records paused and opted out in some cases"
    );
    assert!(
        failed_and_deferred > 0,
        "sends failed and were retried, and the cap deferred, in some cases"
    );
    assert!(sent > 0, "messages were sent");
    assert!(
        plain > 0 && stream_writes > 0,
        "plain items got their next_at from the stream"
    );
    assert!(
        read_indexed * 5 < read_all,
        "the index read {read_indexed} items, reading everything {read_all}"
    );
}
