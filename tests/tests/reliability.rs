//! The reliability suite: it attacks the running system and checks the
//! promise: every due reminder is sent once, never after payment, and nothing
//! (reminder or payment) is lost.
//!
//! Quick mode runs in the test command. `RELIABILITY=heavy` runs the sizes
//! docs/reliability.md reports (`scripts/reliability.sh`). Each test prints
//! its figures as one `RELIABILITY {json}` line and writes them to
//! `target/tmp/reliability/<test>.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use dunning::aws::sdk::SdkSettings;
use dunning::config::WebhookConfig;
use dunning::run::{run, Deps, RunRequest};
use dunning::summary::SkipReason;
use dunning::webhook::signature::sign;
use dunning_e2e::{
    config, config_env, deliver_webhook, invoice, sdk_config_at, FaultProxy, Outbox, TestEnv,
};
use futures::stream::{self, StreamExt};
use rust_decimal::Decimal;

fn heavy() -> bool {
    std::env::var("RELIABILITY").is_ok_and(|v| v == "heavy")
}

/// Quick or heavy size.
fn size(quick: usize, heavy_size: usize) -> usize {
    if heavy() {
        heavy_size
    } else {
        quick
    }
}

/// Records a test's figures for docs/reliability.md.
fn report(test: &str, figures: serde_json::Value) {
    let figures = serde_json::json!({"test": test, "mode": if heavy() { "heavy" } else { "quick" }, "figures": figures});
    println!("RELIABILITY {figures}");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{test}.json")), figures.to_string());
}

/// A small deterministic generator (xorshift64*): reproducible kill points and data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A Wednesday in the future, so a run's ledger clock is its own instant and
/// the suite can step past claim leases without waiting.
const DAY: &str = "2030-01-16";

fn at(time: &str) -> DateTime<Utc> {
    format!("{DAY}T{time}Z").parse().unwrap()
}

/// The due messages of `n` invoices due on [`DAY`], one customer each: email
/// for all, SMS for every third. Recipients ending in `bounce`/`0000` are
/// the fault proxy's permanent rejections (only when `rejects` is set).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    invoice: String,
    channel: &'static str,
    recipient: String,
}

async fn seed(env: &TestEnv, n: usize, rejects: bool) -> anyhow::Result<Vec<Key>> {
    let mut keys = Vec::new();
    for i in 0..n {
        let id = format!("INV-{i:04}");
        let email = if rejects && i % 25 == 7 {
            format!("bounce-{i:04}@example.com")
        } else {
            format!("c{i:04}@example.com")
        };
        let phone = if rejects && i % 25 == 9 {
            "+447700900000".to_owned()
        } else {
            format!("+4477009{:05}", i + 1)
        };
        let mut extra = vec![("email", email.as_str())];
        if i % 3 == 0 || (rejects && i % 25 == 9) {
            extra.push(("phone", phone.as_str()));
            keys.push(Key {
                invoice: id.clone(),
                channel: "sms",
                recipient: phone.clone(),
            });
        }
        keys.push(Key {
            invoice: id.clone(),
            channel: "email",
            recipient: email.clone(),
        });
        env.put_invoice(&invoice(&id, DAY, &extra)).await?;
    }
    keys.sort();
    Ok(keys)
}

/// The environment of a `run-once` process: the test configuration with
/// `overrides`, pointed at this test's emulator.
fn run_once_env(env: &TestEnv, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = config_env(overrides).into_iter().collect();
    vars.extend(env.moto.process_env());
    vars
}

/// The ledger record of a key's message (step `due_today`).
async fn record(env: &TestEnv, key: &Key) -> anyhow::Result<Option<serde_json::Value>> {
    let sk = format!("reminder#due_today#{}", key.channel);
    Ok(env
        .ledger(&key.invoice)
        .await?
        .into_iter()
        .find(|r| r["sk"] == sk))
}

/// The end state of a set of messages, from the ledger and what the
/// emulator accepted.
#[derive(Debug, Default)]
struct Settled {
    /// Copies the provider accepted beyond the one the ledger recorded.
    duplicates: u64,
    /// Of them, e-mails.
    email_duplicates: u64,
    /// Permanently failed (the proxy's rejections), never sent.
    failed: u64,
    /// Messages due that did not end as they must: not `sent` with an id the
    /// provider accepted (or, for a rejection, not `failed`): the reminder is lost.
    lost: u64,
}

/// Checks the end state of a set of messages: each sent (the ledger says
/// `sent` with an id the provider accepted), or, with the proxy's
/// rejections, permanently failed after one attempt and never sent. Counts
/// what is lost rather than stopping at the first; the caller reports the
/// figures, then asserts none is lost.
async fn settle_check(env: &TestEnv, keys: &[Key]) -> anyhow::Result<Settled> {
    let accepted = env.moto.ids_by_recipient()?;
    let mut settled = Settled::default();
    for key in keys {
        let ids = accepted.get(&key.recipient).cloned().unwrap_or_default();
        let rec = record(env, key).await?;
        let state = rec
            .as_ref()
            .and_then(|r| r["state"].as_str())
            .unwrap_or("none");
        let rejected = key.recipient.starts_with("bounce") || key.recipient.ends_with("0000");
        if rejected {
            assert!(ids.is_empty(), "{key:?} was rejected yet sent");
            if state != "failed" {
                eprintln!("lost: {key:?} must be recorded as failed, ended {state}");
                settled.lost += 1;
                continue;
            }
            assert_eq!(rec.as_ref().unwrap()["error_class"], "permanent", "{key:?}");
            assert_eq!(
                rec.as_ref().unwrap()["attempts"].as_u64(),
                Some(1),
                "{key:?} was retried"
            );
            settled.failed += 1;
            continue;
        }
        let recorded = rec
            .as_ref()
            .and_then(|r| r["message_id"].as_str())
            .unwrap_or_default()
            .to_owned();
        if state != "sent" || !ids.contains(&recorded) {
            eprintln!("lost: {key:?} ended {state}, ledger id {recorded:?}, provider ids {ids:?}");
            settled.lost += 1;
            continue;
        }
        // Any other copy is one the provider accepted and the ledger never heard of.
        settled.duplicates += ids.len() as u64 - 1;
        if key.channel == "email" {
            settled.email_duplicates += ids.len() as u64 - 1;
        }
    }
    Ok(settled)
}

/// Every ledger record of every invoice has an outcome: none is left `claimed`.
async fn claimed_left(env: &TestEnv, keys: &[Key]) -> anyhow::Result<usize> {
    let invoices: BTreeSet<&str> = keys.iter().map(|k| k.invoice.as_str()).collect();
    let mut n = 0;
    for id in invoices {
        n += env
            .ledger(id)
            .await?
            .iter()
            .filter(|r| r["state"] == "claimed")
            .count();
    }
    Ok(n)
}

#[tokio::test]
async fn sigkill_at_random_points_loses_nothing_and_duplicates_only_in_the_send_window(
) -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let (invoices, kills) = (size(60, 500), size(8, 50));
    let keys = seed(&env, invoices, false).await?;
    // No rate limit: the kills should land anywhere in the protocol, not mostly in waits.
    let unlimited = [("EMAIL_RATE", "0"), ("SMS_RATE", "0")];
    let process_env = run_once_env(&env, &unlimited);
    let victim = |as_of: DateTime<Utc>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_run-once"));
        cmd.arg(as_of.to_rfc3339())
            .envs(process_env.iter().cloned())
            .env("RUST_LOG", "off")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        cmd
    };
    let mut rng = Rng(0x005e_ed0f_c4a5);
    let (mut performed, mut finished_first) = (0, 0);
    let mut kill_points_ms = Vec::new();
    // Runs at 10:00, each SIGKILLed after a random delay, until `kills` landed mid-run.
    while performed < kills && performed + finished_first < kills * 4 {
        let mut child = victim(at("10:00:00")).spawn()?;
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line)?;
        // A new run first retries the claims earlier kills left behind (each lost
        // to its live lease): later kills wait longer to land in new work.
        let delay = Duration::from_millis(rng.below(2500) + 160 * performed as u64);
        let started = Instant::now();
        // Not a timing assertion: the delay only picks where the kill lands.
        while started.elapsed() < delay && child.try_wait()?.is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.try_wait()?.is_none() {
            child.kill()?; // SIGKILL
            child.wait()?;
            performed += 1;
            kill_points_ms.push(delay.as_millis() as u64);
        } else {
            finished_first += 1;
        }
    }
    let after_kills = env
        .moto
        .ids_by_recipient()?
        .values()
        .map(Vec::len)
        .sum::<usize>();
    // SES publishes a Send event for every e-mail it accepted, within
    // seconds; the lease (15 minutes) is far longer. The events arrive before
    // any run may take a killed claim over, and record an e-mail that went
    // out `sent`: no second copy. (SMS have no such event.)
    let emails = env.moto.sent_emails()?;
    let events: Vec<String> = emails
        .iter()
        .flat_map(|m| dunning_e2e::ses_events::simulate(m, at("10:00:00")))
        .collect();
    let batch = dunning::aws::mail_events::Listener::<dunning::aws::SnsPublisher> {
        store: &env.deps.store,
        escalations: None,
        replies: None,
    }
    .handle_sns_event(&dunning_e2e::ses_events::sns_event(&events))
    .await?;
    // Then runs continue after the claim lease (15 minutes) until one has nothing left.
    let mut recovery_runs = 0;
    for minute in 16..40 {
        let out = victim(at(&format!("10:{minute}:00"))).output()?;
        anyhow::ensure!(out.status.success(), "recovery run failed");
        let stdout = String::from_utf8(out.stdout)?;
        let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))?;
        recovery_runs += 1;
        let sent: u64 = summary["steps"]
            .as_object()
            .into_iter()
            .flat_map(|s| s.values())
            .flat_map(|c| c.as_object().into_iter().flat_map(|o| o.values()))
            .map(|o| o["sent"].as_u64().unwrap_or(0))
            .sum();
        if sent == 0 && claimed_left(&env, &keys).await? == 0 {
            break;
        }
    }
    assert_eq!(
        claimed_left(&env, &keys).await?,
        0,
        "a claim was left without an outcome"
    );
    // Nothing lost; every duplicate is a copy the provider accepted whose ledger write a kill prevented.
    let settled = settle_check(&env, &keys).await?;
    let duplicates = settled.duplicates;
    let concurrency = dunning_e2e::config(&[]).send_concurrency as u64;
    assert!(duplicates <= performed as u64 * concurrency);
    assert!(performed > 0, "no kill landed during a run");
    report(
        "crash",
        serde_json::json!({
            "invoices": invoices, "messages_due": keys.len(), "kills_performed": performed,
            "runs_finished_before_their_kill": finished_first, "sent_during_kills": after_kills,
            "recovery_runs": recovery_runs, "duplicates": duplicates,
            "email_duplicates": settled.email_duplicates,
            "sms_duplicates": duplicates - settled.email_duplicates,
            "emails_recorded_sent_by_their_ses_send_event": batch.settled,
            "duplicates_between_provider_acceptance_and_ledger_write": duplicates,
            "lost": settled.lost, "kill_points_ms": kill_points_ms,
        }),
    );
    assert_eq!(settled.lost, 0, "reminders lost");
    assert_eq!(
        settled.email_duplicates, 0,
        "an e-mail went out twice although its Send event had arrived"
    );
    Ok(())
}

#[tokio::test]
async fn four_runs_at_once_and_a_redelivered_event_send_each_message_once() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let keys = seed(&env, size(40, 300), false).await?;
    let as_of = at("10:00:00");
    // Four runs, plus the same scheduled event delivered a second time (a new request id).
    let runs = ["a", "b", "c", "d", "a-redelivered"].map(|id| RunRequest::new(as_of, id));
    let summaries = futures::future::join_all(runs.iter().map(|r| run(&env.deps, r))).await;
    let sent: u64 = summaries
        .into_iter()
        .map(|s| s.map(|s| s.total_sent()))
        .sum::<Result<u64, _>>()?;
    let settled = settle_check(&env, &keys).await?;
    report(
        "races",
        serde_json::json!({"concurrent_runs": runs.len(), "messages_due": keys.len(), "sent": sent,
            "duplicates": settled.duplicates, "lost": settled.lost}),
    );
    assert_eq!((settled.duplicates, settled.lost), (0, 0));
    assert_eq!(sent, keys.len() as u64);
    Ok(())
}

#[tokio::test]
async fn provider_faults_are_retried_and_every_reminder_ends_sent_once_or_failed(
) -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let keys = seed(&env, size(50, 400), true).await?;
    let proxy = FaultProxy::start(env.moto.endpoint(), 0.2, 42, Duration::from_millis(1500))?;
    let settings = SdkSettings {
        max_attempts: 4,
        attempt_timeout: Duration::from_millis(700),
    };
    let deps = Deps::new(&sdk_config_at(&proxy.endpoint, settings).await, config(&[]))?;
    // Hourly runs through the day, all at a 20% fault rate.
    let mut rounds = 0;
    let mut run_errors = 0;
    for hour in 9..17 {
        rounds += 1;
        let req = RunRequest::new(at(&format!("{hour:02}:30:00")), format!("round-{hour}"));
        if run(&deps, &req).await.is_err() {
            run_errors += 1; // the index could not be read: the next run starts over
        }
        let pending = pending(&env, &keys).await?;
        if pending == 0 {
            break;
        }
    }
    let stats = proxy.stats()?;
    let settled = settle_check(&env, &keys).await?;
    let (duplicates, failed) = (settled.duplicates, settled.failed);
    let permanent: u64 = stats["permanent"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(|v| v.as_u64())
        .sum();
    assert_eq!(permanent, failed, "each rejection was tried exactly once");
    let faults: u64 = stats["faults"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .flat_map(|k| k.as_object().into_iter().flat_map(|o| o.values()))
        .filter_map(|v| v.as_u64())
        .sum();
    assert!(faults > 0, "no fault was injected");
    report(
        "faults",
        serde_json::json!({"messages_due": keys.len(), "rounds": rounds, "runs_failed_whole": run_errors,
            "faults_injected": faults, "faults_by_service": stats["faults"], "requests": stats["requests"],
            "permanent_rejections": permanent, "recorded_failed": failed, "duplicates": duplicates,
            "lost": settled.lost}),
    );
    assert_eq!((duplicates, settled.lost), (0, 0));
    Ok(())
}

/// Messages not yet settled: no record, or a record still claimed or waiting to retry.
async fn pending(env: &TestEnv, keys: &[Key]) -> anyhow::Result<usize> {
    let mut n = 0;
    for key in keys {
        let state = record(env, key)
            .await?
            .and_then(|r| r["state"].as_str().map(str::to_owned));
        if !matches!(state.as_deref(), Some("sent" | "failed")) {
            n += 1;
        }
    }
    Ok(n)
}

#[tokio::test]
async fn a_run_out_of_time_takes_no_new_work_and_the_next_run_continues() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let keys = seed(&env, size(30, 200), false).await?;
    // At its deadline already: nothing is claimed, everything waits.
    let mut late = RunRequest::new(at("10:00:00"), "late");
    late.deadline = Some(Instant::now());
    let summary = run(&env.deps, &late).await?;
    assert!(summary.stopped_early);
    assert_eq!((summary.total_sent(), summary.items_read), (0, 0));
    // A deadline that falls during the run: whatever it claimed has an outcome.
    let mut tight = RunRequest::new(at("10:00:00"), "tight");
    // 900 ms left: a third is kept free, the run takes work for about 600 ms.
    tight.deadline = Some(Instant::now() + Duration::from_millis(900));
    let first = run(&env.deps, &tight).await?;
    assert_eq!(claimed_left(&env, &keys).await?, 0);
    let waiting = first
        .skipped
        .get(&SkipReason::TimeBudget)
        .copied()
        .unwrap_or(0);
    // At EMAIL_RATE (14/s) the emails alone take longer than 900 ms: the deadline must have cut in.
    assert!(first.stopped_early && waiting > 0, "{first:?}");
    assert_eq!(first.total_sent() + waiting, keys.len() as u64);
    // The next run sends exactly the rest.
    let next = run(&env.deps, &RunRequest::new(at("11:00:00"), "next")).await?;
    assert_eq!(next.total_sent(), waiting);
    let settled = settle_check(&env, &keys).await?;
    report(
        "time_budget",
        serde_json::json!({"messages_due": keys.len(), "sent_before_deadline": first.total_sent(),
            "left_for_next_run": waiting, "stopped_early": first.stopped_early,
            "duplicates": settled.duplicates, "lost": settled.lost}),
    );
    assert_eq!((settled.duplicates, settled.lost), (0, 0));
    Ok(())
}

/// One malformed invoice item of kind `kind` (0..KINDS), due on [`DAY`].
const KINDS: usize = 25;

fn malformed(kind: usize, i: usize) -> (String, Vec<(&'static str, AttributeValue)>, &'static str) {
    let id = format!("BAD-{kind:02}-{i:04}");
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let mut item: BTreeMap<&'static str, AttributeValue> = [
        ("invoice_id", s(&id)),
        ("customer_id", s(&format!("cust-{id}"))),
        ("customer_name", s("Ana Lima")),
        ("email", s(&format!("{}@example.com", id.to_lowercase()))),
        ("amount", s("120.00")),
        ("currency", s("USD")),
        ("due_date", s(DAY)),
        ("status", s("open")),
    ]
    .into_iter()
    .collect();
    let huge = "x".repeat(50_000);
    let reason = match kind {
        0 => {
            // A DynamoDB Number is an exact amount, under the same precision rules.
            item.insert("amount", AttributeValue::N("120.125".into()));
            "bad_amount_too_precise"
        }
        1 => {
            item.insert("amount", s(""));
            "missing_amount"
        }
        2 => {
            item.insert("amount", s("-5.00"));
            "bad_amount_not_positive"
        }
        3 => {
            item.insert("amount", s("99999999999999999999999999.00"));
            "bad_amount_too_large"
        }
        4 => {
            item.insert("amount", s("12.345"));
            "bad_amount_too_precise"
        }
        5 => {
            item.insert("amount", s("NaN"));
            "bad_amount"
        }
        6 => {
            item.insert("currency", s("XYZ"));
            "unknown_currency"
        }
        7 => {
            item.insert("timezone", s("Mars/Olympus"));
            "bad_timezone"
        }
        8 => {
            item.insert("customer_name", s("Ana\r\nBcc: all@example.com"));
            "bad_customer_name"
        }
        9 => {
            item.insert("email", s("ana@example.com\r\nBcc: all@example.com"));
            "bad_email"
        }
        10 => {
            item.insert("phone", s("+CALL-ME-MAYBE"));
            "bad_phone"
        }
        11 => {
            item.remove("customer_name");
            "missing_customer_name"
        }
        12 => {
            item.remove("currency");
            "missing_currency"
        }
        13 => {
            item.insert("customer_name", s(&huge));
            "bad_customer_name"
        }
        14 => {
            item.remove("email");
            "no_contact"
        }
        15 => {
            item.insert("amount_paid", s("-1.00"));
            "bad_amount_paid"
        }
        16 => {
            item.insert("locale", s("tlh-Klingon-but-much-too-long-to-be-a-tag"));
            "bad_locale"
        }
        17 => {
            item.insert("pay_url", s("javascript:alert(1)"));
            "bad_pay_url"
        }
        18 => {
            item.insert("reminders_paused_until", s("tomorrow"));
            "bad_paused_until"
        }
        19 => {
            item.insert("disputed", s("maybe"));
            "bad_disputed"
        }
        20 => {
            item.insert("channels", s("pigeon"));
            "bad_channels"
        }
        21 => {
            item.insert("amount", AttributeValue::L(vec![s("1")]));
            "wrong_type_amount"
        }
        22 => {
            item.remove("customer_id");
            "missing_customer_id"
        }
        23 => {
            // Sorts inside the run's due-date window, so the run reads it.
            item.insert("due_date", s(&format!("{DAY}T25:99")));
            "bad_due_date"
        }
        _ => {
            item.insert("email", s(&huge));
            "bad_email"
        }
    };
    (id, item.into_iter().collect(), reason)
}

#[tokio::test]
async fn a_thousand_malformed_items_are_each_reported_once_and_never_sent_to() -> anyhow::Result<()>
{
    let env = TestEnv::start().await?;
    let per_kind = size(5, 40);
    let mut expected: BTreeMap<String, &str> = BTreeMap::new();
    let mut items = Vec::new();
    for kind in 0..KINDS {
        for i in 0..per_kind {
            let (id, attrs, reason) = malformed(kind, i);
            expected.insert(id, reason);
            items.push(attrs);
        }
    }
    stream::iter(items.iter())
        .map(|attrs| env.put_raw(attrs))
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()?;
    let good = seed(&env, 20, false).await?;
    // Impossible dates fall outside the due index's window: only the audit sees them.
    let mut outside: BTreeMap<String, &str> = BTreeMap::new();
    for (i, date) in ["2030-02-30", "2030-13-01", "16/01/2030", ""]
        .iter()
        .enumerate()
    {
        let (id, mut attrs, _) = malformed(0, 9000 + i);
        attrs.retain(|(k, _)| *k != "due_date" && *k != "amount");
        attrs.push(("amount", AttributeValue::S("10.00".into())));
        if !date.is_empty() {
            attrs.push(("due_date", AttributeValue::S(date.to_string())));
        }
        env.put_raw(&attrs).await?;
        outside.insert(
            id,
            if date.is_empty() {
                "missing_due_date"
            } else {
                "bad_due_date"
            },
        );
    }
    // In its own process, with its logs: each bad item is logged once, with id and reason.
    let process_env = run_once_env(&env, &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_run-once"))
        .arg(at("10:00:00").to_rfc3339())
        .envs(process_env)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout)?;
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))?;
    let logs = String::from_utf8_lossy(&out.stderr);
    let mut logged: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for line in logs
        .lines()
        .filter(|l| l.contains("invalid invoice item skipped"))
    {
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .map(|v| v.trim_matches('"').to_owned())
        };
        let (id, reason) = (
            field("invoice_id").unwrap_or_default(),
            field("reason").unwrap_or_default(),
        );
        let entry = logged.entry(id).or_insert((0, reason));
        entry.0 += 1;
    }
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(id, reason)| logged.get(*id) != Some(&(1, reason.to_string())))
        .map(|(id, reason)| format!("{id}: expected {reason} once, logged {:?}", logged.get(id)))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} items not reported exactly once: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(30)]
    );
    let invalid_total: u64 = summary["invalid"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|v| v.as_u64())
        .sum();
    assert_eq!(invalid_total, expected.len() as u64);
    // Nothing went to a malformed item; every valid one got its messages once.
    let settled = settle_check(&env, &good).await?;
    assert_eq!((settled.duplicates, settled.lost), (0, 0));
    let accepted = env.moto.ids_by_recipient()?;
    assert_eq!(
        accepted.len(),
        good.len(),
        "sent only to the valid invoices"
    );
    // The audit (a parallel Scan) lists every one of them too.
    let audit = dunning::audit::audit(&env.deps.store, 4).await?;
    let listed: BTreeMap<String, String> = audit.unusable.into_iter().collect();
    for (id, reason) in expected.iter().chain(&outside) {
        assert_eq!(listed.get(id).map(String::as_str), Some(*reason), "{id}");
    }
    report(
        "bad_data",
        serde_json::json!({"malformed_items_in_the_due_window": expected.len(), "kinds": KINDS + outside.len(),
            "reasons": expected.values().chain(outside.values()).collect::<BTreeSet<_>>().len(),
            "reported_once_by_the_run": expected.len(), "listed_by_the_audit": expected.len() + outside.len(),
            "valid_messages_sent_once": good.len(), "sent_to_malformed": 0}),
    );
    Ok(())
}

const SECRET: &str = "whsec_reliability_0123456789";

fn webhook_config() -> WebhookConfig {
    WebhookConfig::from_lookup(|k| match k {
        "TABLE_NAME" => Some("invoices".into()),
        "WEBHOOK_SECRETS" => Some(SECRET.into()),
        "STRIPE_WEBHOOK_SECRETS" => Some("whsec_stripe_reliability_01".into()),
        "STRIPE_LIVEMODE" => Some("false".into()),
        _ => None,
    })
    .unwrap()
}

#[test]
fn webhook_fuzz_never_answers_5xx_and_every_signature_mutation_is_401() -> anyhow::Result<()> {
    use proptest::prelude::*;
    use proptest::test_runner::{Config as PropConfig, TestRunner};
    let rt = tokio::runtime::Runtime::new()?;
    let env = rt.block_on(TestEnv::start())?;
    rt.block_on(env.put_invoice(&invoice("FUZZ-1", DAY, &[("email", "f@example.com")])))?;
    let cases = size(300, 5000) as u32;
    let config = webhook_config();
    let now = Utc::now();
    let deliver = |header_name: &str, header: String, body: &[u8]| {
        rt.block_on(deliver_webhook(
            &env.deps.store,
            &config,
            header_name,
            header,
            body,
            now,
        ))
    };
    // A runner per part: one runner counts its cases across runs, so a
    // reused one would run the later parts zero times.
    let runner = || {
        TestRunner::new(PropConfig {
            cases,
            failure_persistence: None,
            ..PropConfig::default()
        })
    };
    // 1. Arbitrary bytes and headers: never a 5xx (a panic fails the test).
    runner()
        .run(
            &(
                proptest::collection::vec(any::<u8>(), 0..2048),
                ".{0,200}",
                prop_oneof![
                    Just("dunning-signature"),
                    Just("stripe-signature"),
                    Just("x-other")
                ],
            ),
            |(body, header, name)| {
                let answer = deliver(name, header, &body);
                prop_assert!(answer.status < 500, "{} {}", answer.status, answer.body);
                Ok(())
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // 2. Correctly signed JSON, most of it a payment with a field or two
    // wrong or missing: never a 5xx, and a good share reaches the payment
    // transaction (counted below).
    let field = prop_oneof![
        Just(serde_json::Value::Null),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("FUZZ-1")),
        Just(serde_json::Value::from("USD")),
        "-?[0-9]{1,30}(\\.[0-9]{0,30})?".prop_map(serde_json::Value::from),
    ];
    let text = |valid: BoxedStrategy<String>| {
        prop::option::weighted(
            0.95,
            prop_oneof![6 => valid.prop_map(serde_json::Value::from), 1 => field.clone()],
        )
    };
    let payment = (
        text("pay_[a-z0-9]{1,16}".boxed()),
        text(Just("FUZZ-1".to_owned()).boxed()),
        text("[1-9][0-9]{0,2}\\.[0-9]{2}".boxed()),
        text(Just("USD".to_owned()).boxed()),
        text("2026-11-2[0-9]T1[0-9]:00:00Z".boxed()),
        proptest::collection::vec((".{1,10}", field.clone()), 0..2),
    );
    let reached = std::cell::Cell::new(0u32);
    runner()
        .run(
            &payment,
            |(id, invoice_id, amount, currency, paid_at, extra)| {
                let mut body = serde_json::Map::new();
                for (k, v) in extra {
                    body.insert(k, v);
                }
                for (k, v) in [
                    ("id", id),
                    ("invoice_id", invoice_id),
                    ("amount", amount),
                    ("currency", currency),
                    ("paid_at", paid_at),
                ] {
                    if let Some(v) = v {
                        body.insert(k.to_owned(), v);
                    }
                }
                let body = serde_json::Value::Object(body).to_string().into_bytes();
                let header = sign(SECRET.as_bytes(), now.timestamp(), &body);
                let answer = deliver("dunning-signature", header, &body);
                prop_assert!(answer.status < 500, "{} {}", answer.status, answer.body);
                if matches!(
                    answer.body["result"].as_str(),
                    Some("applied" | "duplicate")
                ) {
                    reached.set(reached.get() + 1);
                }
                Ok(())
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let reached = reached.get();
    assert!(
        reached * 5 >= cases,
        "only {reached} of {cases} signed bodies reached the payment transaction"
    );
    // 3. Every mutation of a valid signature (or of the signed body) is a 401.
    let body = br#"{"id":"pay_fuzz","invoice_id":"FUZZ-1","amount":"1.00","currency":"USD","paid_at":"2030-01-16T10:00:00Z"}"#;
    let valid = sign(SECRET.as_bytes(), now.timestamp(), body);
    runner()
        .run(
            &(0usize..7, any::<usize>(), 1i64..300),
            |(how, at, delta)| {
                let (t, v1) = valid.split_once(",v1=").unwrap();
                let mut v1 = v1.to_owned();
                let mut t = t.to_owned();
                let mut sent_body = body.to_vec();
                match how {
                    0 => {
                        // one hex digit changed
                        let i = at % v1.len();
                        let c = v1.as_bytes()[i];
                        let new = if c == b'0' { '1' } else { '0' };
                        v1.replace_range(i..=i, &new.to_string());
                    }
                    1 => v1.truncate(at % v1.len()),
                    2 => t = format!("t={}", now.timestamp() + delta),
                    3 => t = format!("t={}", now.timestamp() - delta),
                    4 => {
                        let i = at % sent_body.len();
                        sent_body[i] ^= 1 + (delta as u8 % 127);
                    }
                    5 => v1 = v1.to_uppercase() + "00",
                    _ => {
                        let header = format!("{t},v2={v1}");
                        let answer = deliver("dunning-signature", header, &sent_body);
                        prop_assert_eq!(answer.status, 401);
                        return Ok(());
                    }
                }
                let answer = deliver("dunning-signature", format!("{t},v1={v1}"), &sent_body);
                prop_assert_eq!(answer.status, 401, "mutation {} gave {}", how, answer.body);
                Ok(())
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // 4. Stripe events of every kind and API version (the fixtures), signed,
    // most with a new event id and some with a field changed or dropped:
    // never a 5xx, and most reach the payment transaction, every kind of them.
    for (id, amount, currency) in [
        ("INV-1001", "1250.00", "USD"),
        ("INV-1003", "54000", "JPY"),
        ("INV-1004", "300.00", "EUR"),
        ("INV-1005", "125.500", "KWD"),
    ] {
        rt.block_on(env.put_invoice(&invoice(
            id,
            DAY,
            &[
                ("email", "f@example.com"),
                ("amount", amount),
                ("currency", currency),
            ],
        )))?;
    }
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tests/fixtures/stripe");
    let mut fixtures: Vec<(String, serde_json::Value)> = Vec::new();
    for version in std::fs::read_dir(&dir)? {
        for file in std::fs::read_dir(version?.path())? {
            let path = file?.path();
            let body: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
            fixtures.push((path.display().to_string(), body));
        }
    }
    fixtures.sort_by(|a, b| a.0.cmp(&b.0));
    let stripe_secret = "whsec_stripe_reliability_01";
    let reached_stripe = std::cell::RefCell::new(BTreeMap::<String, u32>::new());
    let stripe_cases = std::cell::Cell::new(0u32);
    runner()
        .run(
            &(
                0..fixtures.len(),
                0u32..40,
                0u8..10,
                any::<prop::sample::Index>(),
                field.clone(),
                0i64..2_000_000,
            ),
            |(which, event, mutation, pick, value, minor)| {
                let mut body = fixtures[which].1.clone();
                let mut kind = body["type"].as_str().unwrap_or("").to_owned();
                // A refund is reported by refund.created as by refund.updated.
                if kind == "refund.updated" && event % 2 == 0 {
                    kind = "refund.created".into();
                    body["type"] = kind.clone().into();
                }
                body["id"] = format!("evt_fuzz_{which}_{event}").into();
                let object = body["data"]["object"].as_object_mut().unwrap();
                let keys: Vec<String> = object.keys().cloned().collect();
                let key = pick.get(&keys).clone();
                match mutation {
                    0..=5 => {}
                    6 => {
                        for amount in [
                            "amount",
                            "amount_paid",
                            "amount_received",
                            "amount_total",
                            "amount_refunded",
                        ] {
                            if object.contains_key(amount) {
                                object.insert(amount.into(), minor.into());
                            }
                        }
                    }
                    7 => {
                        object.remove(&key);
                    }
                    8 => {
                        object.insert(key, value);
                    }
                    _ => {
                        object.insert(
                            "metadata".into(),
                            serde_json::json!({"invoice_id": format!("INV-{minor}")}),
                        );
                    }
                }
                let body = body.to_string().into_bytes();
                let header = sign(stripe_secret.as_bytes(), now.timestamp(), &body);
                let answer = deliver("stripe-signature", header, &body);
                prop_assert!(answer.status < 500, "{} {}", answer.status, answer.body);
                stripe_cases.set(stripe_cases.get() + 1);
                if matches!(
                    answer.body["result"].as_str(),
                    Some(
                        "applied"
                            | "refunded"
                            | "covered"
                            | "dispute_opened"
                            | "dispute_closed"
                            | "duplicate"
                            | "unapplied"
                    )
                ) {
                    *reached_stripe.borrow_mut().entry(kind).or_default() += 1;
                }
                Ok(())
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let reached_stripe = reached_stripe.into_inner();
    let stripe_reached: u32 = reached_stripe.values().sum();
    for kind in dunning::webhook::event::STRIPE_EVENTS {
        // A failed delayed payment applies nothing, by design.
        if kind != "checkout.session.async_payment_failed" {
            assert!(
                reached_stripe.contains_key(kind),
                "no {kind} reached the payment transaction: {reached_stripe:?}"
            );
        }
    }
    assert!(
        stripe_reached * 3 >= stripe_cases.get(),
        "only {stripe_reached} of {} Stripe events reached the payment transaction",
        stripe_cases.get()
    );
    report(
        "webhook_fuzz",
        serde_json::json!({"fuzz_iterations": cases * 3 + stripe_cases.get(), "signed_bodies": cases,
            "reached_the_payment_transaction": reached, "stripe_events": stripe_cases.get(),
            "stripe_fixtures": fixtures.len(), "stripe_reached_the_payment_transaction": stripe_reached,
            "stripe_reached_by_kind": reached_stripe, "server_errors": 0, "panics": 0}),
    );
    Ok(())
}

#[tokio::test]
async fn deliveries_with_duplicates_and_reordering_leave_amount_paid_exact() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let deliveries = size(200, 1000);
    let invoices = deliveries / 20;
    // Each invoice of 120.00 is paid in parts; every part is delivered 1-3 times, in random order.
    let mut rng = Rng(0xfeed_beef);
    let mut parts: BTreeMap<String, Vec<(String, Decimal)>> = BTreeMap::new();
    let mut bodies = Vec::new();
    for i in 0..invoices {
        let id = format!("PAY-{i:03}");
        env.put_invoice(&invoice(&id, DAY, &[("email", "p@example.com")]))
            .await?;
        let n = 1 + rng.below(6) as usize;
        for p in 0..n {
            let amount = Decimal::new(1 + rng.below(2000) as i64, 2);
            let pay_id = format!("pay_{id}_{p}");
            parts
                .entry(id.clone())
                .or_default()
                .push((pay_id.clone(), amount));
            let body =
                serde_json::json!({"id": pay_id, "invoice_id": id, "amount": amount.to_string(),
                "currency": "USD", "paid_at": format!("{DAY}T10:00:00Z")})
                .to_string();
            for _ in 0..1 + rng.below(3) {
                bodies.push(body.clone());
            }
        }
    }
    while bodies.len() < deliveries {
        let i = rng.below(bodies.len() as u64) as usize;
        bodies.push(bodies[i].clone());
    }
    for i in (1..bodies.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        bodies.swap(i, j);
    }
    let config = webhook_config();
    let answers: Vec<u16> = stream::iter(bodies.iter())
        .map(|body| {
            let config = &config;
            let env = &env;
            async move {
                let header = sign(SECRET.as_bytes(), Utc::now().timestamp(), body.as_bytes());
                let (store, body) = (&env.deps.store, body.as_bytes());
                deliver_webhook(store, config, "dunning-signature", header, body, Utc::now())
                    .await
                    .status
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    // Each distinct payment must have its record under its invoice, and the
    // invoice's amount_paid their exact sum.
    let (mut lost_payments, mut exact) = (0usize, 0usize);
    for (id, paid) in &parts {
        let want: Decimal = paid.iter().map(|(_, a)| *a).sum();
        let history = env.deps.store.history(id).await?;
        let recorded: BTreeSet<String> = history
            .iter()
            .filter_map(|r| {
                r["sk"]
                    .as_str()?
                    .strip_prefix("payment#")
                    .map(str::to_owned)
            })
            .collect();
        lost_payments += paid
            .iter()
            .filter(|(key, _)| !recorded.contains(key.as_str()))
            .count();
        let item = history.into_iter().find(|r| r["sk"] == "invoice").unwrap();
        let got: Decimal = item["amount_paid"].as_str().unwrap_or("0").parse()?;
        exact += usize::from(got == want);
        assert_eq!(got, want, "{id}");
        let status = if want >= Decimal::new(12000, 2) {
            "paid"
        } else {
            "open"
        };
        assert_eq!(item["status"], status, "{id}");
    }
    report(
        "payments",
        serde_json::json!({"deliveries": bodies.len(), "distinct_payments": parts.values().map(Vec::len).sum::<usize>(),
            "invoices": parts.len(), "lost_payments": lost_payments, "amounts_exact": exact}),
    );
    assert_eq!(lost_payments, 0);
    Ok(())
}
