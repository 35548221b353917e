//! `dunning-admin`'s commands that change the table, run as a finance person
//! runs them, against the emulator (`scripts/test.sh` builds the binary first).

use std::path::PathBuf;
use std::process::{Command, Output};

use dunning_e2e::{invoice, Outbox, TestEnv};

/// `dunning-admin` against the test's emulator, with nothing else of this
/// process's environment.
fn command(env: &TestEnv) -> Command {
    // target/debug/deps/admin-<hash> -> target/debug/dunning-admin
    let exe = std::env::current_exe().expect("the test's own path");
    let bin: PathBuf = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug")
        .join("dunning-admin");
    let mut command = Command::new(bin);
    command
        .env_clear()
        .envs(dunning_e2e::capture_env())
        .envs(env.moto.process_env())
        .env("TABLE_NAME", "invoices");
    command
}

fn admin(env: &TestEnv, args: &[&str]) -> Output {
    command(env)
        .args(args)
        .output()
        .expect("dunning-admin runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn amount_paid(env: &TestEnv, id: &str) -> anyhow::Result<(String, String)> {
    let inv = env
        .deps
        .store
        .history(id)
        .await?
        .into_iter()
        .find(|r| r["sk"] == "invoice")
        .ok_or_else(|| anyhow::anyhow!("no invoice {id}"))?;
    Ok((
        inv["amount_paid"].as_str().unwrap_or("").to_owned(),
        inv["status"].as_str().unwrap_or("").to_owned(),
    ))
}

#[tokio::test]
async fn an_offline_payment_is_recorded_once_per_reference() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    env.put_invoice(&invoice("INV", "2026-11-23", &[("email", "x@example.com")]))
        .await?;
    let record = |amount: &'static str, reference: &'static str| {
        let env = &env;
        move || {
            admin(
                env,
                &[
                    "record-payment",
                    "INV",
                    "--amount",
                    amount,
                    "--currency",
                    "USD",
                    "--reference",
                    reference,
                    "--paid-at",
                    "2026-11-24T10:00:00Z",
                ],
            )
        }
    };
    let first = record("20.00", "BANK-2026-1187")();
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).starts_with("applied 20.00 USD to INV: amount_paid 20.00"),
        "{}",
        text(&first)
    );
    // The same reference again: nothing changes.
    let again = record("20.00", "BANK-2026-1187")();
    assert!(
        again.status.success() && text(&again).starts_with("already recorded"),
        "{}",
        text(&again)
    );
    // The same reference with another amount: refused, nothing changes.
    let other = record("25.00", "BANK-2026-1187")();
    assert!(
        !other.status.success() && text(&other).contains("recorded before"),
        "{}",
        text(&other)
    );
    assert_eq!(
        amount_paid(&env, "INV").await?,
        ("20.00".into(), "open".into())
    );
    // The rest, under its own reference: paid in full, and in the history.
    let rest = record("100.00", "BANK-2026-1190")();
    assert!(text(&rest).contains("paid in full"), "{}", text(&rest));
    assert_eq!(
        amount_paid(&env, "INV").await?,
        ("120.00".into(), "paid".into())
    );
    // A payment recorded by mistake, taken back: once, and the invoice is open again.
    let reverse = |extra: &[&str]| {
        let mut args = vec![
            "record-payment",
            "INV",
            "--reference",
            "BANK-2026-1190",
            "--reverse",
        ];
        args.extend_from_slice(extra);
        admin(&env, &args)
    };
    let wrong = reverse(&["--amount", "99.00", "--currency", "USD"]);
    assert!(
        !wrong.status.success() && text(&wrong).contains("was recorded as 100.00 USD"),
        "{}",
        text(&wrong)
    );
    let back = reverse(&[]);
    assert!(
        back.status.success()
            && text(&back).starts_with("reversed 100.00 USD on INV: amount_paid 20.00, open again"),
        "{}",
        text(&back)
    );
    assert!(text(&reverse(&[])).starts_with("already recorded"));
    assert_eq!(
        amount_paid(&env, "INV").await?,
        ("20.00".into(), "open".into())
    );
    let reserved = admin(
        &env,
        &[
            "record-payment",
            "INV",
            "--amount",
            "1.00",
            "--currency",
            "USD",
            "--reference",
            "apply:X",
        ],
    );
    assert!(
        !reserved.status.success() && text(&reserved).contains("may not start with"),
        "{}",
        text(&reserved)
    );
    let never = admin(
        &env,
        &[
            "record-payment",
            "INV",
            "--reference",
            "NEVER-1",
            "--reverse",
        ],
    );
    assert!(
        !never.status.success()
            && text(&never).contains("no offline payment with reference NEVER-1"),
        "{}",
        text(&never)
    );
    let history = admin(&env, &["history", "INV"]);
    for sk in [
        "payment#offline:BANK-2026-1187",
        "refund#offline:BANK-2026-1190",
    ] {
        assert!(text(&history).contains(sk), "{sk}: {}", text(&history));
    }
    // An unknown invoice, or too many decimals: a clear error.
    let unknown = admin(
        &env,
        &[
            "record-payment",
            "NOPE",
            "--amount",
            "1",
            "--currency",
            "USD",
            "--reference",
            "R1",
        ],
    );
    assert!(
        !unknown.status.success() && text(&unknown).contains("no such invoice"),
        "{}",
        text(&unknown)
    );
    let precise = admin(
        &env,
        &[
            "record-payment",
            "INV",
            "--amount",
            "1.001",
            "--currency",
            "USD",
            "--reference",
            "R2",
        ],
    );
    assert!(
        !precise.status.success() && text(&precise).contains("--amount"),
        "{}",
        text(&precise)
    );
    Ok(())
}

/// A generic payment delivered to the webhook (signed with its secret).
async fn webhook_payment(
    env: &TestEnv,
    id: &str,
    invoice: &str,
    amount: &str,
    currency: &str,
) -> serde_json::Value {
    const SECRET: &str = "whsec_admin_test_0123456";
    let config = dunning::config::WebhookConfig::from_lookup(|k| match k {
        "TABLE_NAME" => Some("invoices".into()),
        "WEBHOOK_SECRETS" => Some(SECRET.into()),
        _ => None,
    })
    .unwrap();
    let body = serde_json::json!({"id": id, "invoice_id": invoice, "amount": amount, "currency": currency, "paid_at": "2026-11-24T10:00:00Z"}).to_string();
    let now = chrono::Utc::now();
    let signature =
        dunning::webhook::signature::sign(SECRET.as_bytes(), now.timestamp(), body.as_bytes());
    dunning_e2e::deliver_webhook(
        &env.deps.store,
        &config,
        "dunning-signature",
        signature,
        body.as_bytes(),
        now,
    )
    .await
    .body
}

#[tokio::test]
async fn unapplied_payments_are_listed_and_applied_once() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    for id in ["INV-A", "INV-B"] {
        env.put_invoice(&invoice(id, "2026-11-23", &[("email", "x@example.com")]))
            .await?;
    }
    // A payment naming an invoice we do not have, and an overpayment.
    assert_eq!(
        webhook_payment(&env, "pay_typo", "INV-AA", "50.00", "USD").await["result"],
        "unapplied"
    );
    assert_eq!(
        webhook_payment(&env, "pay_over", "INV-B", "150.00", "USD").await["overpaid"],
        true
    );
    let list = admin(&env, &["unapplied"]);
    let listed = text(&list);
    assert!(list.status.success(), "{listed}");
    for (id, reason, amount) in [
        ("generic:pay_typo", "unknown_invoice", "50.00"),
        ("generic:pay_over", "overpaid", "30.00"),
    ] {
        let line = listed
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} in {listed}"));
        assert!(
            line.contains(reason) && line.contains(amount) && line.contains("open"),
            "{line}"
        );
    }
    // The typo's money to the invoice it was meant for, once.
    let applied = admin(
        &env,
        &["apply-unapplied", "generic:pay_typo", "--invoice", "INV-A"],
    );
    assert!(
        text(&applied).starts_with("applied 50.00 USD to INV-A: amount_paid 50.00"),
        "{}",
        text(&applied)
    );
    let again = admin(
        &env,
        &["apply-unapplied", "generic:pay_typo", "--invoice", "INV-A"],
    );
    assert!(
        text(&again).starts_with("already applied to INV-A"),
        "{}",
        text(&again)
    );
    assert_eq!(
        amount_paid(&env, "INV-A").await?,
        ("50.00".into(), "open".into())
    );
    // A target that cannot take it: refused before anything moves.
    let nowhere = admin(
        &env,
        &["apply-unapplied", "generic:pay_over", "--invoice", "INV-ZZ"],
    );
    assert!(
        !nowhere.status.success() && text(&nowhere).contains("no invoice INV-ZZ; nothing changed"),
        "{}",
        text(&nowhere)
    );
    assert_eq!(
        amount_paid(&env, "INV-B").await?,
        ("150.00".into(), "paid".into())
    );
    // The excess moves: off INV-B (still paid in full), onto INV-A.
    let moved = admin(
        &env,
        &["apply-unapplied", "generic:pay_over", "--invoice", "INV-A"],
    );
    let out = text(&moved);
    assert!(
        out.contains("took 30.00 USD off INV-B: amount_paid 120.00"),
        "{out}"
    );
    assert!(
        out.contains("applied 30.00 USD to INV-A: amount_paid 80.00"),
        "{out}"
    );
    assert_eq!(
        amount_paid(&env, "INV-B").await?,
        ("120.00".into(), "paid".into())
    );
    assert_eq!(
        amount_paid(&env, "INV-A").await?,
        ("80.00".into(), "open".into())
    );
    let inv_b = env.deps.store.history("INV-B").await?;
    assert!(inv_b
        .iter()
        .find(|r| r["sk"] == "invoice")
        .unwrap()
        .get("overpaid")
        .is_none());
    // Nothing open any more; --all shows where each went.
    assert!(text(&admin(&env, &["unapplied"])).starts_with("no unapplied payments open"));
    let all = text(&admin(&env, &["unapplied", "--all"]));
    assert!(all.contains("applied to INV-A"), "{all}");
    // One that is not ours is dismissed: no longer open, never applied.
    assert_eq!(
        webhook_payment(&env, "pay_stray", "INV-X9", "5.00", "USD").await["result"],
        "unapplied"
    );
    let dismissed = admin(
        &env,
        &[
            "dismiss-unapplied",
            "generic:pay_stray",
            "--reason",
            "not ours",
        ],
    );
    assert!(
        text(&dismissed).starts_with("dismissed generic:pay_stray: not ours"),
        "{}",
        text(&dismissed)
    );
    assert!(text(&admin(&env, &["unapplied"])).starts_with("no unapplied payments open"));
    let late = admin(
        &env,
        &["apply-unapplied", "generic:pay_stray", "--invoice", "INV-A"],
    );
    assert!(
        !late.status.success() && text(&late).contains("was dismissed"),
        "{}",
        text(&late)
    );
    // A clear error for an id that is not there.
    let nope = admin(
        &env,
        &["apply-unapplied", "generic:nope", "--invoice", "INV-A"],
    );
    assert!(!nope.status.success() && text(&nope).contains("no unapplied payment generic:nope"));
    Ok(())
}

/// A payment recorded before event claims existed: its id, sent again for
/// another invoice, applied again until `backfill-claims` claims it.
#[tokio::test]
async fn backfilled_claims_make_an_old_event_id_sent_for_another_invoice_a_conflict(
) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    let env = TestEnv::start().await?;
    for id in ["INV-A", "INV-B"] {
        env.put_invoice(&invoice(id, "2026-11-23", &[("email", "x@example.com")]))
            .await?;
    }
    let legacy = |id: &str| {
        vec![
            ("invoice_id", S("INV-A".into())),
            ("sk", S(format!("payment#{id}"))),
            ("event_id", S(id.into())),
            ("provider", S("generic".into())),
            ("event_type", S("payment".into())),
            ("amount", S("10.00".into())),
            ("currency", S("USD".into())),
            ("recorded_at", S("2026-11-01T10:00:00.000Z".into())),
        ]
    };
    env.put_raw(&legacy("pay_old")).await?;
    env.put_raw(&legacy("pay_old_2")).await?;
    let dry = admin(&env, &["backfill-claims", "--dry-run"]);
    assert!(
        text(&dry).starts_with("2 payment records: 2 to check (dry run), 0 claimed before"),
        "{}",
        text(&dry)
    );
    // The gap the dry run leaves: the old id applies again to another invoice.
    assert_eq!(
        webhook_payment(&env, "pay_old_2", "INV-B", "10.00", "USD").await["result"],
        "applied"
    );
    let run = admin(&env, &["backfill-claims"]);
    // pay_old_2 was claimed by its second application, for INV-B: only
    // pay_old is claimed now.
    assert!(
        text(&run).starts_with("3 payment records: 1 claimed, 2 claimed before, 0 unreadable"),
        "{}",
        text(&run)
    );
    let again = webhook_payment(&env, "pay_old", "INV-B", "10.00", "USD").await;
    assert_eq!(again["error"], "event_conflict", "{again}");
    assert_eq!(
        webhook_payment(&env, "pay_old", "INV-A", "10.00", "USD").await["result"],
        "duplicate"
    );
    assert_eq!(amount_paid(&env, "INV-B").await?.0, "10.00");
    let twice = admin(&env, &["backfill-claims"]);
    assert!(
        text(&twice).starts_with("3 payment records: 0 claimed, 3 claimed before"),
        "{}",
        text(&twice)
    );
    Ok(())
}

/// Reversing an overpaid offline payment: refused while its excess is open;
/// once the excess moved elsewhere, only what stayed is taken back.
#[tokio::test]
async fn reversing_an_overpayment_respects_its_excess() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    for id in ["INV-A", "INV-B"] {
        env.put_invoice(&invoice(id, "2026-11-23", &[("email", "x@example.com")]))
            .await?;
    }
    let over = admin(
        &env,
        &[
            "record-payment",
            "INV-A",
            "--amount",
            "150.00",
            "--currency",
            "USD",
            "--reference",
            "BANK-9",
        ],
    );
    assert!(text(&over).contains("overpaid"), "{}", text(&over));
    let open = admin(
        &env,
        &[
            "record-payment",
            "INV-A",
            "--reference",
            "BANK-9",
            "--reverse",
        ],
    );
    assert!(
        !open.status.success() && text(&open).contains("listed as unapplied offline:BANK-9"),
        "{}",
        text(&open)
    );
    let moved = admin(
        &env,
        &["apply-unapplied", "offline:BANK-9", "--invoice", "INV-B"],
    );
    assert!(moved.status.success(), "{}", text(&moved));
    let back = admin(
        &env,
        &[
            "record-payment",
            "INV-A",
            "--reference",
            "BANK-9",
            "--reverse",
        ],
    );
    assert!(
        text(&back).contains("30.00 USD of it was moved to INV-B: taking back 120.00")
            && text(&back).contains("reversed 120.00 USD on INV-A: amount_paid 0.00, open again"),
        "{}",
        text(&back)
    );
    assert_eq!(
        amount_paid(&env, "INV-B").await?,
        ("30.00".into(), "open".into())
    );
    Ok(())
}

#[tokio::test]
async fn retry_puts_failed_records_back_once_and_the_next_run_sends_them() -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    use chrono::Utc;
    use dunning::ports::Store;
    use dunning::run::{run, Deps};
    use std::time::Duration;
    let env = TestEnv::start().await?;
    // The proxy rejects `bounce*` addresses: three reminders end `failed`.
    let proxy =
        dunning_e2e::FaultProxy::start(env.moto.endpoint(), 0.0, 1, Duration::from_millis(100))?;
    let sdk = dunning_e2e::sdk_config_at(&proxy.endpoint, Default::default()).await;
    let deps = Deps::new(&sdk, dunning_e2e::config(&[]))?;
    for id in ["A", "B", "C"] {
        let email = format!("bounce-{id}@example.com");
        env.put_invoice(&invoice(id, "2026-11-23", &[("email", &email)]))
            .await?;
    }
    let first = run(&deps, &dunning_e2e::at("2026-11-23T14:00:00Z", "r1")).await?;
    assert_eq!(first.failed.get("MessageRejected"), Some(&3));
    // A complete run after it: no full read is due any more.
    run(&deps, &dunning_e2e::at("2026-11-23T14:30:00Z", "r1b")).await?;
    assert_eq!(deps.store.read_state().await?.full_read_due, None);
    // The fix: finance corrects two addresses; the third invoice is paid meanwhile.
    let set = |id: &'static str, attr: &'static str, value: &'static str| {
        env.deps
            .store
            .client()
            .update_item()
            .table_name("invoices")
            .key("invoice_id", AttributeValue::S(id.into()))
            .key("sk", AttributeValue::S("invoice".into()))
            .update_expression("SET #a = :v")
            .expression_attribute_names("#a", attr)
            .expression_attribute_values(":v", AttributeValue::S(value.into()))
            .send()
    };
    set("A", "email", "ana@example.com").await?;
    set("B", "email", "bo@example.com").await?;
    set("C", "status", "paid").await?;
    let state = |id: &'static str| {
        let env = &env;
        async move {
            let ledger = env.ledger(id).await?;
            anyhow::Ok(ledger[0]["state"].as_str().unwrap_or("").to_owned())
        }
    };
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "retry",
            "--step",
            "due_today",
            "--channel",
            "email",
            "--since",
            "2026-11-23T00:00:00Z",
        ];
        a.extend_from_slice(extra);
        a
    };
    let dry = admin(&env, &args(&["--dry-run"]));
    let out = text(&dry);
    assert!(dry.status.success(), "{out}");
    assert!(
        out.contains("dry run: 1 not open, 2 would be put back of 3 failed records"),
        "{out}"
    );
    assert_eq!(state("A").await?, "failed", "a dry run writes nothing");
    let other = text(&admin(&env, &args(&["--reason", "AccessDeniedException"])));
    assert!(
        other.contains("no failed due_today/email records since"),
        "{other}"
    );
    let done = text(&admin(&env, &args(&[])));
    assert!(
        done.contains("1 not open, 2 put back of 3 failed records"),
        "{done}"
    );
    assert_eq!(
        (state("A").await?, state("B").await?, state("C").await?),
        ("retry".into(), "retry".into(), "failed".into())
    );
    // The next run reads the whole due window (what was put back may lie outside its bands).
    let state = env.deps.store.read_state().await?;
    assert!(
        state.full_read_due.is_some_and(|t| t <= Utc::now()),
        "{state:?}"
    );
    assert!(
        done.contains("the next run reads the whole due window"),
        "{done}"
    );
    let again = text(&admin(&env, &args(&[])));
    assert!(again.contains("1 not open of 1 failed records"), "{again}");
    // Clear errors for a step or channel the policy does not have.
    let unknown = admin(
        &env,
        &[
            "retry",
            "--step",
            "nope",
            "--channel",
            "email",
            "--since",
            "2026-11-23T00:00:00Z",
        ],
    );
    assert!(
        !unknown.status.success() && text(&unknown).contains("its steps: pre_due"),
        "{}",
        text(&unknown)
    );
    let second = run(&deps, &dunning_e2e::at("2026-11-23T15:00:00Z", "r2")).await?;
    assert_eq!(second.total_sent(), 2, "{second:?}");
    let mut to: Vec<String> = env
        .moto
        .sent_emails()?
        .into_iter()
        .flat_map(|e| e.to)
        .collect();
    to.sort();
    assert_eq!(to, ["ana@example.com", "bo@example.com"]);
    let third = run(&deps, &dunning_e2e::at("2026-11-23T16:00:00Z", "r3")).await?;
    assert_eq!(third.total_sent() + third.total_failed(), 0);
    Ok(())
}

#[tokio::test]
async fn a_customer_record_is_shown_and_changed_once_with_its_source() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let out = |args: &[&str]| {
        let o = admin(&env, args);
        (o.status.success(), text(&o))
    };
    let (ok, fresh) = out(&["customer", "show", "CUST-9"]);
    assert!(ok && fresh.contains("takes email and SMS"), "{fresh}");
    let set = [
        "customer",
        "set",
        "CUST-9",
        "--opt-out",
        "email",
        "--by",
        "ana",
        "--reason",
        "asked by phone",
    ];
    let (ok, first) = out(&set);
    assert!(ok && first.contains("opt out of email: changed"), "{first}");
    assert!(
        first.contains("opted out of email: cli:ana at") && first.contains("(asked by phone)"),
        "{first}"
    );
    let (_, again) = out(&set);
    assert!(
        again.contains("opt out of email: unchanged (already so)"),
        "{again}"
    );
    let (_, suppressed) = out(&[
        "customer",
        "set",
        "CUST-9",
        "--suppress",
        "Ana.Lima@Example.com",
    ]);
    assert!(
        suppressed.contains("suppress a***@e***.com: changed"),
        "{suppressed}"
    );
    assert!(
        !suppressed.to_lowercase().contains("ana.lima@example.com"),
        "never printed whole"
    );
    let (_, back) = out(&[
        "customer",
        "set",
        "CUST-9",
        "--opt-in",
        "email",
        "--pause-until",
        "2026-12-20T00:00:00Z",
    ]);
    assert!(
        back.contains("opt in to email: changed") && back.contains("paused until 2026-12-20"),
        "{back}"
    );
    let (_, json) = out(&["customer", "show", "CUST-9", "--json"]);
    let record: serde_json::Value = serde_json::from_str(json.trim())?;
    assert_eq!(record["opt_outs"], serde_json::Value::Null, "{record}");
    assert_eq!(
        record["suppressed"]["ana.lima@example.com"]["source"],
        "cli:admin"
    );
    assert_eq!(
        record["version"], 4,
        "one version per change that changed something"
    );
    let (ok, bad) = out(&["customer", "set", "CUST-9", "--opt-out", "fax"]);
    assert!(
        !ok && bad.contains("no channel \"fax\": email or sms"),
        "{bad}"
    );
    let (ok, none) = out(&["customer", "set", "CUST-9"]);
    assert!(!ok && none.contains("nothing to set"), "{none}");
    Ok(())
}

#[tokio::test]
async fn a_run_honours_the_customer_record_the_cli_sets() -> anyhow::Result<()> {
    use dunning::run::run;
    let env = TestEnv::start().await?;
    env.put_invoice(&invoice(
        "INV-7",
        "2026-11-23",
        &[
            ("customer_id", "CUST-7"),
            ("email", "c7@example.com"),
            ("phone", "+15555550107"),
        ],
    ))
    .await?;
    let set = admin(
        &env,
        &[
            "customer",
            "set",
            "CUST-7",
            "--opt-out",
            "sms",
            "--by",
            "ana",
        ],
    );
    assert!(set.status.success(), "{}", text(&set));
    let summary = run(&env.deps, &dunning_e2e::at("2026-11-23T14:00:00Z", "r1")).await?;
    assert_eq!(
        dunning_e2e::outcome(&summary, "due_today", "email"),
        (1, 0, 0)
    );
    assert_eq!(
        dunning_e2e::outcome(&summary, "due_today", "sms"),
        (0, 0, 1),
        "opted out"
    );
    assert!(env.moto.sent_sms()?.is_empty());
    Ok(())
}

#[tokio::test]
async fn history_shows_what_ses_said_and_what_the_customer_record_says() -> anyhow::Result<()> {
    use dunning::aws::mail_events::Listener;
    use dunning_e2e::ses_events::{simulate, simulator, sns_event};
    let env = TestEnv::start().await?;
    let bounce = simulator("bounce", "h1");
    env.put_invoice(&invoice(
        "INV-H",
        "2026-11-23",
        &[("customer_id", "C-H"), ("email", bounce.as_str())],
    ))
    .await?;
    dunning::run::run(&env.deps, &dunning_e2e::at("2026-11-23T10:00:00Z", "r1")).await?;
    let events: Vec<String> = env
        .moto
        .sent_emails()?
        .iter()
        .flat_map(|m| simulate(m, "2026-11-23T10:00:00Z".parse().unwrap()))
        .collect();
    Listener::<dunning::aws::SnsPublisher> {
        store: &env.deps.store,
        escalations: None,
        replies: None,
    }
    .handle_sns_event(&sns_event(&events))
    .await?;
    let out = admin(&env, &["history", "INV-H"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    let lines: Vec<&str> = shown.lines().collect();
    let reminder = lines
        .iter()
        .position(|l| l.contains("reminder due_today#email"))
        .expect("the reminder line");
    assert!(lines[reminder + 1]
        .trim_start()
        .ends_with("SES accepted: accepted by SES"));
    assert!(lines[reminder + 2]
        .trim_start()
        .ends_with("bounced: permanent bounce: General"));
    assert!(shown.contains("customer C-H:\n  suppressed "), "{shown}");
    assert!(
        shown.contains(": ses:bounce at 2026-11-23T10:00:02"),
        "{shown}"
    );
    assert!(!shown.contains(&bounce), "no address in history");
    Ok(())
}

/// `dunning-admin run` with the test configuration, at `as_of`.
fn admin_run(env: &TestEnv, as_of: &str) -> Output {
    command(env)
        .args(["run", "--as-of", as_of])
        .envs(dunning_e2e::config_env(&[]))
        .output()
        .expect("dunning-admin runs")
}

#[tokio::test]
async fn a_boto3_item_with_number_amounts_is_reminded_and_a_bad_item_is_logged_once_a_day(
) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let env = TestEnv::start().await?;
    // As boto3 writes `Decimal`s: DynamoDB Numbers, stored exactly.
    let mut item: Vec<(&str, AttributeValue)> = invoice(
        "INV-N",
        "2026-11-23",
        &[("email", "n@example.com"), ("customer_id", "CUST-N")],
    )
    .into_iter()
    .filter(|(k, _)| *k != "amount")
    .map(|(k, v)| (k, AttributeValue::S(v.into())))
    .collect();
    item.push(("amount", AttributeValue::N("1200.5".into())));
    item.push(("amount_paid", AttributeValue::N("2.005E+2".into())));
    env.put_raw(&item).await?;
    // A bad item: a run logs it once a day, and counts it in every summary.
    let bad = invoice("INV-BAD", "2026-11-23", &[("email", "bad@example.com")]);
    let mut bad: Vec<(&str, AttributeValue)> = bad
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v.into())))
        .collect();
    bad.retain(|(k, _)| *k != "amount");
    bad.push(("amount", AttributeValue::N("12.505".into())));
    env.put_raw(&bad).await?;

    let first = admin_run(&env, "2026-11-23T14:00:00Z");
    assert!(first.status.success(), "{}", text(&first));
    let sent = env.moto.sent_emails()?;
    assert_eq!(sent.len(), 1, "{}", text(&first));
    assert!(
        sent[0].text.contains("USD 1,000.00"),
        "1200.50 less 200.50, exactly: {}",
        sent[0].text
    );
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let logged = |o: &Output| {
        stderr(o)
            .lines()
            .filter(|l| l.contains("invalid invoice item skipped") && l.contains("INV-BAD"))
            .count()
    };
    assert_eq!(logged(&first), 1, "{}", stderr(&first));
    assert!(
        !first.stderr.contains(&0x1b),
        "no colour codes on a pipe: {:?}",
        stderr(&first)
    );
    assert!(text(&first).contains("invalid: bad_amount_too_precise 1"));
    // Later runs the same day: counted, not logged; the next day: logged again.
    for (as_of, lines) in [
        ("2026-11-23T15:00:00Z", 0),
        ("2026-11-23T23:00:00Z", 0),
        ("2026-11-24T09:00:00Z", 1),
    ] {
        let later = admin_run(&env, as_of);
        assert!(later.status.success(), "{}", text(&later));
        assert_eq!(logged(&later), lines, "{as_of}: {}", stderr(&later));
        assert!(
            text(&later).contains("invalid: bad_amount_too_precise 1"),
            "{}",
            text(&later)
        );
        if as_of.starts_with("2026-11-23") {
            assert_eq!(env.moto.sent_emails()?.len(), 1, "nothing sent twice");
        }
    }
    Ok(())
}

#[tokio::test]
async fn each_finance_command_changes_once_says_who_and_the_runs_follow() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    env.put_invoice(&invoice(
        "INV-A",
        "2026-11-23",
        &[("customer_id", "C-A"), ("email", "a@example.com")],
    ))
    .await?;
    let ok = |args: &[&str]| {
        let out = admin(&env, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        text(&out)
    };
    let sent = || env.moto.sent_emails().map(|e| e.len());
    let pause = [
        "pause",
        "INV-A",
        "--until",
        "2026-11-24",
        "--by",
        "ana",
        "--reason",
        "asked for a week",
    ];
    assert!(ok(&pause).contains("pause INV-A: changed (cli:ana)"));
    assert!(ok(&pause).contains("unchanged (already so)"));
    ok_run(&env, "2026-11-23T14:00:00Z");
    assert_eq!(sent()?, 0, "paused");
    assert!(ok(&["resume", "INV-A", "--by", "ana"]).contains("changed"));
    ok_run(&env, "2026-11-23T15:00:00Z");
    assert_eq!(sent()?, 1, "due today, once resumed");

    let no_reason = admin(&env, &["dispute", "INV-A"]);
    assert!(!no_reason.status.success() && text(&no_reason).contains("--reason"));
    ok(&[
        "dispute",
        "INV-A",
        "--by",
        "bo",
        "--reason",
        "wrong quantity",
    ]);
    ok_run(&env, "2026-11-24T14:00:00Z");
    assert_eq!(sent()?, 1, "disputed: the overdue step waits");
    ok(&["resolve", "INV-A", "--by", "bo"]);
    let edited = ok(&[
        "edit",
        "INV-A",
        "--amount",
        "100.00",
        "--email",
        "a2@example.com",
        "--by",
        "bo",
    ]);
    assert!(edited.contains("amount: 120.00 -> 100.00"), "{edited}");
    assert!(
        !edited.contains("a2@example.com"),
        "addresses are masked: {edited}"
    );
    ok_run(&env, "2026-11-24T15:00:00Z");
    let emails = env.moto.sent_emails()?;
    assert_eq!(emails.len(), 2);
    assert_eq!(emails[1].to, ["a2@example.com"]);
    assert!(emails[1].text.contains("USD 100.00"), "{}", emails[1].text);

    // A later due date: the ladder starts again (pre-due, then due-day).
    let extended = ok(&["extend", "INV-A", "--due", "2026-12-07", "--by", "ana"]);
    assert!(extended.contains("ladder starts again"), "{extended}");
    let earlier = admin(&env, &["extend", "INV-A", "--due", "2026-12-01"]);
    assert!(!earlier.status.success() && text(&earlier).contains("not after"));
    ok_run(&env, "2026-12-04T14:00:00Z");
    ok_run(&env, "2026-12-07T14:00:00Z");
    ok_run(&env, "2026-12-07T15:00:00Z");
    let steps: Vec<String> = env
        .moto
        .sent_emails()?
        .iter()
        .map(|e| dunning::mail_events::tags::unescape(&e.tags["dunning-step"].join("")).unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "due_today",
            "overdue",
            "pre_due@2026-12-07",
            "due_today@2026-12-07"
        ],
        "the new date's steps, each once"
    );
    ok(&["void", "INV-A", "--by", "ana"]);
    ok_run(&env, "2026-12-08T14:00:00Z");
    assert_eq!(sent()?, 4, "void: nothing more");
    let unknown = admin(&env, &["void", "NOPE"]);
    assert!(!unknown.status.success() && text(&unknown).contains("no invoice NOPE"));

    let history = ok(&["history", "INV-A"]);
    for line in [
        "pause by cli:ana: reminders_paused_until: (none) -> 2026-11-24 (reason: asked for a week)",
        "resume by cli:ana",
        "dispute by cli:bo: disputed: (none) -> true (reason: wrong quantity)",
        "resolve by cli:bo",
        "edit by cli:bo: amount: 120.00 -> 100.00; email: a***@e***.com -> a***@e***.com",
        "extend by cli:ana: due_date: 2026-11-23 -> 2026-12-07",
        "void by cli:ana: status: open -> void",
        "reminder due_today#email",
        "reminder due_today@2026-12-07#email",
    ] {
        assert!(history.contains(line), "{line:?} not in:\n{history}");
    }
    Ok(())
}

/// Open invoices due on `due`, each (id, customer, e-mail).
async fn put_invoices(env: &TestEnv, due: &str, rows: &[(&str, &str, &str)]) -> anyhow::Result<()> {
    for (id, customer, email) in rows {
        env.put_invoice(&invoice(
            id,
            due,
            &[("customer_id", customer), ("email", email)],
        ))
        .await?;
    }
    Ok(())
}

/// `admin_run` that must succeed.
fn ok_run(env: &TestEnv, as_of: &str) {
    let out = admin_run(env, as_of);
    assert!(out.status.success(), "{as_of}: {}", text(&out));
}

#[tokio::test]
async fn a_customer_pause_covers_all_their_invoices_and_resume_sends_them_together(
) -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    put_invoices(
        &env,
        "2026-11-23",
        &[
            ("INV-P1", "C-P", "p@example.com"),
            ("INV-P2", "C-P", "p@example.com"),
            ("INV-Q", "C-Q", "q@example.com"),
        ],
    )
    .await?;
    let paused = admin(
        &env,
        &[
            "pause",
            "--customer",
            "C-P",
            "--until",
            "2026-11-30",
            "--by",
            "ana",
            "--reason",
            "restructuring",
        ],
    );
    assert!(paused.status.success(), "{}", text(&paused));
    assert!(
        text(&paused).contains("paused until 2026-12-01T00:00:00+00:00: cli:ana"),
        "{}",
        text(&paused)
    );
    ok_run(&env, "2026-11-23T14:00:00Z");
    assert_eq!(
        env.moto.recipients()?,
        ["q@example.com"],
        "only the other customer"
    );
    let resumed = admin(&env, &["resume", "--customer", "C-P", "--by", "ana"]);
    assert!(
        text(&resumed).contains("resume: changed"),
        "{}",
        text(&resumed)
    );
    ok_run(&env, "2026-11-23T15:00:00Z");
    let emails = env.moto.sent_emails()?;
    assert_eq!(emails.len(), 2, "one message for both of C-P's invoices");
    assert!(emails[1].text.contains("INV-P1") && emails[1].text.contains("INV-P2"));
    Ok(())
}

#[tokio::test]
async fn a_reimport_creates_updates_and_leaves_alone_and_a_dry_run_writes_nothing(
) -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let dir = std::env::temp_dir().join(format!("dunning-reimport-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let header =
        "invoice_id,customer_id,customer_name,email,amount,currency,due_date,status,locale\n";
    let write = |name: &str, rows: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("{header}{rows}")).unwrap();
        path.to_string_lossy().into_owned()
    };
    let v1 = write(
        "v1.csv",
        "INV-R1,C-R,Rita,r@example.com,120.00,USD,2026-11-23,open,en\n\
         INV-R2,C-S,Sam,s@example.com,80.00,USD,2026-11-23,open,\n",
    );
    let first = admin(&env, &["import", &v1]);
    assert!(
        text(&first).contains("created 2, updated 0, unchanged 0, refused 0"),
        "{}",
        text(&first)
    );
    let again = admin(&env, &["import", &v1]);
    assert!(
        text(&again).contains("created 0, updated 0, unchanged 2, refused 0"),
        "{}",
        text(&again)
    );
    // The billing system's next export: a corrected amount and due date, a
    // removed locale, a new invoice and a bad row.
    let v2 = write(
        "v2.csv",
        "INV-R1,C-R,Rita,r@example.com,100.00,USD,2026-11-30,open,\n\
         INV-R2,C-S,Sam,s@example.com,80.00,USD,2026-11-23,open,\n\
         INV-R3,C-T,Tom,t@example.com,50.00,USD,2026-11-23,open,\n\
         INV-R4,C-U,Uma,u@example.com,12.345,USD,2026-11-23,open,\n",
    );
    let before = env.history("INV-R1").await?;
    let dry = admin(&env, &["import", &v2, "--dry-run"]);
    let dry_text = text(&dry);
    for expected in [
        "line 2 (INV-R1): would change amount: 120.00 -> 100.00; due_date: 2026-11-23 -> 2026-11-30; locale: en -> (none)",
        "line 4 (INV-R3): would be created",
        "dry run (nothing written): created 1, updated 1, unchanged 1, refused 1",
    ] {
        assert!(dry_text.contains(expected), "{expected:?} not in:\n{dry_text}");
    }
    assert_eq!(
        env.history("INV-R1").await?,
        before,
        "a dry run writes nothing"
    );
    assert!(env.history("INV-R3").await?.is_empty());
    let real = admin(&env, &["import", &v2]);
    assert!(
        text(&real).contains("created 1, updated 1, unchanged 1, refused 1"),
        "{}",
        text(&real)
    );
    let history = text(&admin(&env, &["history", "INV-R1"]));
    assert!(
        history.contains("import by import:v2.csv: amount: 120.00 -> 100.00; due_date: 2026-11-23 -> 2026-11-30; locale: en -> (none)"),
        "{history}"
    );
    // The run reminds with what the file says now: due on the new date.
    ok_run(&env, "2026-11-23T14:00:00Z");
    let emails = env.moto.sent_emails()?;
    let to: Vec<&str> = emails.iter().map(|e| e.to[0].as_str()).collect();
    assert!(
        !to.contains(&"r@example.com"),
        "INV-R1 is due on the 30th now: {to:?}"
    );
    ok_run(&env, "2026-11-30T14:00:00Z");
    let to_rita: Vec<_> = env
        .moto
        .sent_emails()?
        .into_iter()
        .filter(|e| e.to == ["r@example.com"])
        .collect();
    assert_eq!(to_rita.len(), 1, "due today on the new date, once");
    assert!(
        to_rita[0].text.contains("USD 100.00"),
        "{}",
        to_rita[0].text
    );
    // A new row with a promise: created, and the promise holds its reminders.
    let v3 = dir.join("v3.csv");
    std::fs::write(
        &v3,
        "invoice_id,customer_id,customer_name,email,amount,currency,due_date,status,promised_by\n\
         INV-R5,C-V,Vera,v@example.com,70.00,USD,2026-11-23,open,2026-11-27\n",
    )?;
    let third = admin(&env, &["import", &v3.to_string_lossy()]);
    assert!(
        text(&third).contains("created 1, updated 0, unchanged 0, refused 0"),
        "{}",
        text(&third)
    );
    let history = text(&admin(&env, &["history", "INV-R5"]));
    assert!(
        history.contains("import by import:v3.csv: promised_by: (none) -> 2026-11-27"),
        "{history}"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The steps (ledger names) of the emails sent to `to`, in order.
fn steps_to(env: &TestEnv, to: &str) -> anyhow::Result<Vec<String>> {
    Ok(env
        .moto
        .sent_emails()?
        .into_iter()
        .filter(|e| e.to == [to])
        .map(|e| {
            dunning::mail_events::tags::unescape(&e.tags["dunning-step"].join(""))
                .unwrap_or_default()
        })
        .collect())
}

#[tokio::test]
async fn a_promise_kept_stops_reminders_and_a_broken_one_gets_its_message_then_the_ladder(
) -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let both = [
        ("INV-PK", "C-PK", "kept@example.com"),
        ("INV-PB", "C-PB", "broken@example.com"),
    ];
    put_invoices(&env, "2026-11-23", &both).await?;
    for (id, _, _) in both {
        let promised = admin(
            &env,
            &[
                "promise",
                id,
                "--by",
                "2026-11-27",
                "--who",
                "ana",
                "--reason",
                "called",
            ],
        );
        assert!(
            text(&promised).contains(&format!("promise {id}: changed (cli:ana)")),
            "{}",
            text(&promised)
        );
    }
    let again = admin(&env, &["promise", "INV-PB", "--by", "2026-11-27"]);
    assert!(text(&again).contains("unchanged"), "{}", text(&again));
    ok_run(&env, "2026-11-23T14:00:00Z");
    ok_run(&env, "2026-11-27T14:00:00Z");
    assert!(
        env.moto.sent_emails()?.is_empty(),
        "nothing while the promise stands"
    );
    // INV-PK is paid as promised.
    let paid = admin(
        &env,
        &[
            "record-payment",
            "INV-PK",
            "--amount",
            "120.00",
            "--currency",
            "USD",
            "--reference",
            "BANK-PK",
        ],
    );
    assert!(paid.status.success(), "{}", text(&paid));
    // The next business day after the promise: INV-PB's message, once.
    ok_run(&env, "2026-11-28T14:00:00Z");
    ok_run(&env, "2026-11-28T15:00:00Z");
    assert!(steps_to(&env, "kept@example.com")?.is_empty());
    assert_eq!(
        steps_to(&env, "broken@example.com")?,
        ["promise_broken@2026-11-27"]
    );
    let message = env.moto.sent_emails()?.pop().unwrap();
    assert!(
        message
            .text
            .contains("You promised to pay invoice INV-PB by 27 November 2026"),
        "{}",
        message.text
    );
    // Then the ladder resumes with its next step, overdue_7 on the 30th.
    ok_run(&env, "2026-11-29T14:00:00Z");
    ok_run(&env, "2026-11-30T14:00:00Z");
    assert_eq!(
        steps_to(&env, "broken@example.com")?,
        ["promise_broken@2026-11-27", "overdue_7"]
    );
    let history = text(&admin(&env, &["history", "INV-PB"]));
    assert!(
        history.contains("promise by cli:ana: promised_by: (none) -> 2026-11-27 (reason: called)"),
        "{history}"
    );
    assert!(
        history.contains("reminder overdue#email")
            && history.contains("superseded by promise_broken"),
        "{history}"
    );
    Ok(())
}

#[tokio::test]
async fn a_plan_runs_on_its_instalments_the_first_paid_the_second_missed_then_it_ends(
) -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    env.put_invoice(&invoice(
        "INV-PL",
        "2026-11-01",
        &[
            ("customer_id", "C-PL"),
            ("email", "plan@example.com"),
            ("amount", "1200.00"),
        ],
    ))
    .await?;
    let bad = admin(
        &env,
        &[
            "plan",
            "INV-PL",
            "--instalment",
            "2026-11-30:400.00",
            "--instalment",
            "2026-12-15:400.00",
        ],
    );
    assert!(
        !bad.status.success() && text(&bad).contains("sum to 800.00, not the 1200.00 outstanding"),
        "{}",
        text(&bad)
    );
    let planned = admin(
        &env,
        &[
            "plan",
            "INV-PL",
            "--instalment",
            "2026-11-30:400.00",
            "--instalment",
            "2026-12-15:400.00",
            "--instalment",
            "2027-01-15:400.00",
            "--by",
            "ana",
        ],
    );
    assert!(planned.status.success(), "{}", text(&planned));
    let pay = |amount: &str, reference: &str| {
        let out = admin(
            &env,
            &[
                "record-payment",
                "INV-PL",
                "--amount",
                amount,
                "--currency",
                "USD",
                "--reference",
                reference,
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
    };
    // The first instalment: its pre-due reminder states it, then it is paid.
    ok_run(&env, "2026-11-27T14:00:00Z");
    let first = env.moto.sent_emails()?.pop().unwrap();
    assert!(
        first
            .text
            .contains("USD 400.00, due 30 November 2026 (instalment 1 of 3; balance USD 1,200.00)"),
        "{}",
        first.text
    );
    pay("400.00", "BANK-PL-1");
    ok_run(&env, "2026-11-30T14:00:00Z");
    // The second: pre-due, due-day, overdue steps; unpaid.
    for day in ["2026-12-12", "2026-12-15", "2026-12-16", "2026-12-22"] {
        ok_run(&env, &format!("{day}T14:00:00Z"));
    }
    assert_eq!(
        steps_to(&env, "plan@example.com")?,
        [
            "pre_due@2026-11-30",
            "pre_due@2026-12-15",
            "due_today@2026-12-15",
            "overdue@2026-12-15",
            "overdue_7@2026-12-15"
        ]
    );
    let second = env.moto.sent_emails()?.pop().unwrap();
    assert!(
        second
            .text
            .contains("USD 400.00, due 15 December 2026 (instalment 2 of 3; balance USD 800.00)"),
        "{}",
        second.text
    );
    // 14 days past the missed instalment the plan ends: the whole balance is
    // due, on the ladder's next step for that date. The due date (1 November)
    // is out of the due index's window by now: its wake record finds it.
    let run = command(&env)
        .args(["run", "--as-of", "2026-12-30T14:00:00Z", "--json"])
        .envs(dunning_e2e::config_env(&[]))
        .output()?;
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout)?;
    assert_eq!(summary["woken"], 1, "{summary}");
    assert!(summary["full_read"].as_bool().unwrap());
    let ended = env.moto.sent_emails()?.pop().unwrap();
    assert_eq!(
        dunning::mail_events::tags::unescape(&ended.tags["dunning-step"].join("")).unwrap(),
        "final_notice@2026-12-15"
    );
    assert!(
        ended.text.contains("USD 800.00, due 15 December 2026 (the payment plan has ended: the whole balance is due)"),
        "{}",
        ended.text
    );
    let item = env
        .history("INV-PL")
        .await?
        .into_iter()
        .find(|r| r["sk"] == "invoice")
        .unwrap();
    assert_eq!(item["plan_defaulted_on"], "2026-12-15", "the end is kept");
    // A late payment of the missed instalment does not revive the plan: no
    // pre-due reminder for the third instalment (12 January).
    pay("400.00", "BANK-PL-2");
    let before = env.moto.sent_emails()?.len();
    ok_run(&env, "2027-01-12T14:00:00Z");
    assert_eq!(env.moto.sent_emails()?.len(), before);
    let history = text(&admin(&env, &["history", "INV-PL"]));
    assert!(history.contains("plan by cli:ana: instalments: (none) -> 2026-11-30:400.00,2026-12-15:400.00,2027-01-15:400.00"), "{history}");
    Ok(())
}

#[tokio::test]
async fn a_customer_s_settings_are_what_their_invoices_without_their_own_inherit(
) -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let set = admin(
        &env,
        &[
            "customer",
            "set",
            "C-S",
            "--timezone",
            "Asia/Tokyo",
            "--locale",
            "zh-Hans",
            "--email",
            "ap@customer.example",
            "--email",
            "cfo@customer.example",
            "--phone",
            "+15555550121",
            "--phone",
            "+15555550122",
            "--by",
            "ana",
        ],
    );
    assert!(set.status.success(), "{}", text(&set));
    let shown = text(&admin(&env, &["customer", "show", "C-S"]));
    assert!(
        shown.contains("time zone Asia/Tokyo")
            && shown.contains("(copy, for invoices without one)"),
        "{shown}"
    );
    assert!(!shown.contains("cfo@customer.example"), "masked: {shown}");
    let bad = admin(&env, &["customer", "set", "C-S", "--phone", "call me"]);
    assert!(
        !bad.status.success() && text(&bad).contains("--phone"),
        "{}",
        text(&bad)
    );
    // An invoice with no contact, zone or language of its own: the record's.
    let mut attrs = invoice("INV-S1", "2026-11-23", &[("customer_id", "C-S")]);
    attrs.retain(|(k, _)| *k != "email");
    env.put_invoice(&attrs).await?;
    // 01:00 UTC is 10:00 in Tokyo on the due date: due today there, not in UTC.
    ok_run(&env, "2026-11-23T01:00:00Z");
    let emails = env.moto.sent_emails()?;
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert_eq!(emails[0].to, ["ap@customer.example"]);
    assert_eq!(
        emails[0].cc,
        ["cfo@customer.example"],
        "the other address gets a copy"
    );
    assert!(
        emails[0].subject.contains("今天到期"),
        "in the customer's language: {}",
        emails[0].subject
    );
    let mut phones: Vec<String> = env.moto.sent_sms()?.into_iter().map(|m| m.phone).collect();
    phones.sort();
    assert_eq!(
        phones,
        ["+15555550121", "+15555550122"],
        "the SMS and its copy"
    );
    // An invoice with its own address keeps it, with no copies.
    env.put_invoice(&invoice(
        "INV-S2",
        "2026-11-24",
        &[("customer_id", "C-S"), ("email", "own@customer.example")],
    ))
    .await?;
    // (One message per customer and channel a run: INV-S1's overdue step goes first.)
    ok_run(&env, "2026-11-24T01:00:00Z");
    ok_run(&env, "2026-11-24T02:00:00Z");
    let own: Vec<_> = env
        .moto
        .sent_emails()?
        .into_iter()
        .filter(|e| e.to == ["own@customer.example"])
        .collect();
    assert_eq!(own.len(), 1);
    assert!(own[0].cc.is_empty());
    Ok(())
}

#[tokio::test]
async fn the_report_ages_receivables_per_currency_as_a_table_csv_and_json() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    for (id, customer, due, extra) in [
        ("R-NOT-DUE", "C-1", "2026-12-10", vec![]),
        ("R-10", "C-1", "2026-11-21", vec![("amount_paid", "20.00")]),
        ("R-45", "C-2", "2026-10-17", vec![]),
        (
            "R-PAID",
            "C-3",
            "2026-09-01",
            vec![("status", "paid"), ("amount_paid", "120.00")],
        ),
        (
            "R-EUR",
            "C-4",
            "2026-07-01",
            vec![("currency", "EUR"), ("disputed", "true")],
        ),
    ] {
        let mut attrs = vec![("customer_id", customer), ("email", "r@example.com")];
        attrs.extend(extra);
        env.put_invoice(&invoice(id, due, &attrs)).await?;
    }
    let run = |format: &str| {
        let out = admin(
            &env,
            &[
                "report",
                "--as-of",
                "2026-12-01T12:00:00Z",
                "--format",
                format,
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let json: serde_json::Value = serde_json::from_str(&run("json"))?;
    let usd = &json["by_currency"]["USD"];
    let amounts: Vec<&str> = usd["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["amount"].as_str().unwrap())
        .collect();
    // Not due 120; 10 days: 100 owed; 45 days: 120; the paid one is not there.
    assert_eq!(amounts, ["120.00", "100.00", "120.00", "0", "0", "0"]);
    assert_eq!(usd["open"]["amount"], "340.00");
    assert_eq!(usd["top_overdue"][0]["customer_id"], "C-2");
    assert_eq!(json["by_currency"]["EUR"]["buckets"][5]["count"], 1);
    assert_eq!(json["in_flight"]["disputed"], 1);
    let table = run("table");
    assert!(
        table.lines().all(|l| l.chars().count() <= 100),
        "fits 100 columns:\n{table}"
    );
    assert!(
        table.contains("USD") && table.contains("340.00") && table.contains("Most overdue, USD"),
        "{table}"
    );
    let csv = run("csv");
    assert!(
        csv.starts_with("section,currency,key,amount,count,value\n"),
        "{csv}"
    );
    assert!(csv.contains("aging,USD,open,340.00,3,\n"), "{csv}");
    Ok(())
}

#[tokio::test]
async fn the_report_counts_which_reminder_got_paid_and_the_money_of_paid_invoices(
) -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    // Three invoices due on 2 Nov; the third's customer is paused, so it gets nothing.
    for (id, extra) in [
        ("E-1", vec![]),
        ("E-2", vec![]),
        (
            "E-3",
            vec![("reminders_paused_until", "2027-01-01T00:00:00Z")],
        ),
    ] {
        let mut attrs = vec![("email", "e@example.com")];
        attrs.extend(extra);
        env.put_invoice(&invoice(id, "2026-11-02", &attrs)).await?;
    }
    let out = admin_run(&env, "2026-11-02T14:00:00Z");
    assert!(out.status.success(), "{}", text(&out));
    let item = env
        .deps
        .store
        .history("E-1")
        .await?
        .into_iter()
        .find(|r| r["sk"] == "invoice")
        .unwrap();
    assert_eq!(
        item["sent_at#due_today#email"], "2026-11-02T14:00:00.000Z",
        "the run keeps when each reminder went on the invoice"
    );
    // E-1 pays that evening, E-3 two days later; E-2 never.
    for (id, at) in [
        ("E-1", "2026-11-02T20:00:00Z"),
        ("E-3", "2026-11-04T10:00:00Z"),
    ] {
        let out = admin(
            &env,
            &[
                "record-payment",
                id,
                "--amount",
                "120.00",
                "--currency",
                "USD",
                "--reference",
                id,
                "--paid-at",
                at,
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = admin(
        &env,
        &[
            "report",
            "--as-of",
            "2026-12-01T12:00:00Z",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let rows = json["effectiveness"]["rows"].as_array().unwrap();
    let row = |channel: serde_json::Value| {
        rows.iter()
            .find(|r| r["step"] == "due_today" && r["channel"] == channel)
            .unwrap_or_else(|| panic!("no due_today {channel} row in {rows:?}"))
            .clone()
    };
    // Reminded: E-1 (paid within the day) and E-2 (unpaid).
    let reminded = row("email".into());
    assert_eq!(reminded["invoices"], 2);
    assert_eq!(reminded["paid_within"], serde_json::json!([1, 1, 1]));
    assert_eq!(reminded["share"][0], "50.0");
    assert_eq!(reminded["median_days"], 0);
    // Not reminded: E-3, paid two days after its due date.
    let baseline = row(serde_json::Value::Null);
    assert_eq!(baseline["invoices"], 1);
    assert_eq!(baseline["paid_within"], serde_json::json!([0, 1, 1]));
    assert_eq!(baseline["median_days"], 2);
    // The paid invoices left the due index; their money is in the rollup.
    let usd = &json["collection"]["USD"][0];
    assert_eq!(usd["days"], 30);
    assert_eq!(
        (&usd["sales"], &usd["received"], &usd["receivables_end"]),
        (&"360.00".into(), &"240.00".into(), &"120.00".into())
    );
    // DSO = 120 / 360 * 30; CEI = 240 / (240 + 120 - 0) * 100.
    assert_eq!((&usd["dso"], &usd["cei"]), (&"10.0".into(), &"66.7".into()));
    assert!(
        json["reads"]["rollup_days"].as_u64().unwrap() >= 3,
        "{}",
        json["reads"]
    );
    Ok(())
}

#[tokio::test]
async fn a_statement_reads_one_customer_s_invoices_through_their_index() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    for (id, customer, due, extra) in [
        ("S-OLD", "C-1", "2026-10-15", vec![]),
        ("S-NEW", "C-1", "2026-12-10", vec![("currency", "EUR")]),
        ("S-PAID", "C-1", "2026-11-20", vec![]),
        ("S-OTHER", "C-2", "2026-11-01", vec![]),
    ] {
        let mut attrs = vec![("customer_id", customer), ("email", "s@example.com")];
        attrs.extend(extra);
        env.put_invoice(&invoice(id, due, &attrs)).await?;
    }
    for (id, amount, reference) in [("S-PAID", "120.00", "BANK-1"), ("S-OLD", "20.00", "BANK-2")] {
        let out = admin(
            &env,
            &[
                "record-payment",
                id,
                "--amount",
                amount,
                "--currency",
                "USD",
                "--reference",
                reference,
                "--paid-at",
                "2026-11-25T10:00:00Z",
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    let statement = |args: &[&str]| {
        let mut all = vec!["statement", "C-1", "--as-of", "2026-12-01T12:00:00Z"];
        all.extend(args);
        admin(&env, &all)
    };
    let out = statement(&["--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let lines: Vec<(&str, &str, &str)> = json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["invoice_id"].as_str().unwrap(),
                l["bucket"].as_str().unwrap(),
                l["owed"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [("S-OLD", "31-60", "100.00"), ("S-NEW", "not_due", "120.00")],
        "C-1's open invoices, oldest due first; the paid one and C-2's are not lines"
    );
    assert_eq!(json["total_due"]["USD"], "100.00");
    assert_eq!(json["aging"]["USD"][2], "100.00");
    let paid: Vec<(&str, &str)> = json["recent_payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["invoice_id"].as_str().unwrap(),
                p["amount"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        paid.len(),
        2,
        "both payments, the paid invoice's too: {paid:?}"
    );
    assert!(paid.contains(&("S-PAID", "120.00")) && paid.contains(&("S-OLD", "20.00")));
    let table = String::from_utf8_lossy(&statement(&[]).stdout).into_owned();
    for text in [
        "Statement for Ana Lima (C-1)",
        "S-OLD",
        "total due USD 100.00",
        "by age: 31-60 100.00",
        "2026-11-25 USD 120.00 on S-PAID",
    ] {
        assert!(table.contains(text), "{text:?} in:\n{table}");
    }
    assert!(!table.contains("S-OTHER"), "{table}");
    let unknown = admin(&env, &["statement", "C-NOBODY"]);
    assert!(
        !unknown.status.success() && text(&unknown).contains("customer C-NOBODY has no open"),
        "{}",
        text(&unknown)
    );
    Ok(())
}

/// The report's effectiveness row of the invoices that got no `due_today`.
fn due_today_baseline(report: &serde_json::Value) -> Option<serde_json::Value> {
    report["effectiveness"]["rows"]
        .as_array()?
        .iter()
        .find(|r| r["step"] == "due_today" && r["channel"].is_null())
        .cloned()
}

#[tokio::test]
async fn an_invoice_a_reimport_marks_paid_counts_in_the_report_as_a_payment() -> anyhow::Result<()>
{
    let env = TestEnv::start().await?;
    let dir = std::env::temp_dir().join(format!("dunning-paid-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let due = (chrono::Utc::now() - chrono::Duration::days(12)).date_naive();
    let write = |name: &str, status: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "invoice_id,customer_id,customer_name,email,amount,currency,due_date,status\n\
                 INV-M1,C-M,Mia,m@example.com,120.00,USD,{due},{status}\n\
                 INV-M2,C-N,Noa,n@example.com,80.00,USD,{due},open\n"
            ),
        )
        .unwrap();
        path.to_string_lossy().into_owned()
    };
    let report = || -> anyhow::Result<serde_json::Value> {
        let out = admin(&env, &["report", "--format", "json"]);
        anyhow::ensure!(out.status.success(), "{}", text(&out));
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    let out = admin(&env, &["import", &write("v1.csv", "open")]);
    assert!(out.status.success(), "{}", text(&out));
    let before = report()?;
    assert_eq!(before["collection"]["USD"][0]["received"], "0");
    let unpaid = due_today_baseline(&before);
    assert!(
        unpaid.as_ref().is_some_and(|r| r["median_days"].is_null()),
        "nobody paid yet: {unpaid:?}"
    );
    // The billing system says INV-M1 was paid (by a transfer it recorded).
    let out = admin(&env, &["import", &write("v2.csv", "paid")]);
    assert!(
        text(&out).contains("created 0, updated 1, unchanged 1"),
        "{}",
        text(&out)
    );
    let history = String::from_utf8_lossy(&admin(&env, &["history", "INV-M1"]).stdout).into_owned();
    assert!(history.starts_with("invoice INV-M1 paid"), "{history}");
    let after = report()?;
    let usd = &after["collection"]["USD"][0];
    assert_eq!(
        (&usd["received"], &usd["receivables_end"]),
        (&"120.00".into(), &"80.00".into()),
        "what INV-M1 owed came in today: {usd}"
    );
    let baseline = due_today_baseline(&after).expect("a baseline row");
    // Both unreminded; one of the two paid, 12 days after its due date.
    assert_eq!(baseline["invoices"], 2);
    assert_eq!(baseline["median_days"], 12, "{baseline}");
    // The same file again changes nothing, and counts nothing twice.
    let out = admin(&env, &["import", &write("v2.csv", "paid")]);
    assert!(
        text(&out).contains("created 0, updated 0, unchanged 2"),
        "{}",
        text(&out)
    );
    assert_eq!(report()?["collection"]["USD"][0]["received"], "120.00");
    // The transfer the billing system saw, recorded here after all: the
    // same money, not counted again.
    let out = admin(
        &env,
        &[
            "record-payment",
            "INV-M1",
            "--amount",
            "120.00",
            "--currency",
            "USD",
            "--reference",
            "BANK-M1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let last = report()?;
    assert_eq!(last["collection"]["USD"][0]["received"], "120.00");
    let baseline = due_today_baseline(&last).expect("a baseline row");
    assert_eq!(baseline["invoices"], 2, "INV-M1 counted once");
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// `dunning-admin reschedule`: after it, the next run through the next-at
/// index reads every open invoice again and writes their `next_at`; then
/// runs query the index only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reschedule_makes_the_next_run_write_every_open_invoice_s_next_at_again(
) -> anyhow::Result<()> {
    use dunning::run::{run, Deps, RunRequest};
    let mut env = TestEnv::start().await?;
    let sdk = env.moto.sdk_config().await;
    env.deps = Deps::new(&sdk, dunning_e2e::config(&[("NEXT_AT_INDEX", "true")]))?;
    for i in 0..3 {
        env.put_invoice(&invoice(&format!("R-{i}"), "2026-12-20", &[]))
            .await?;
    }
    let at = |h: i64| {
        "2026-11-23T10:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
            + chrono::Duration::hours(h)
    };
    let first = run(&env.deps, &RunRequest::new(at(0), "first")).await?;
    assert!(first.full_read && first.next_at_written == 3, "{first:?}");
    let second = run(&env.deps, &RunRequest::new(at(1), "second")).await?;
    assert!(!second.full_read && second.items_read == 0, "{second:?}");
    // A stale next_at (as a lost stream record would leave it).
    env.deps
        .store
        .client()
        .update_item()
        .table_name(env.deps.store.table())
        .key(
            "invoice_id",
            aws_sdk_dynamodb::types::AttributeValue::S("R-1".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("invoice".into()),
        )
        .update_expression("SET next_at = :t")
        .expression_attribute_values(
            ":t",
            aws_sdk_dynamodb::types::AttributeValue::S("2027-06-01T00:00:00Z".into()),
        )
        .send()
        .await?;
    let o = admin(&env, &["reschedule"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("the next run reads every open invoice"),
        "{}",
        text(&o)
    );
    let third = run(&env.deps, &RunRequest::new(at(2), "third")).await?;
    assert!(
        third.full_read && third.next_at_written == 1,
        "only R-1 moved: {third:?}"
    );
    let again = admin(&env, &["reschedule"]);
    assert!(again.status.success(), "{}", text(&again));
    Ok(())
}
