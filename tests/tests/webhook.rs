//! End-to-end: the payment webhook against a private moto server: signed
//! deliveries, Stripe events, duplicates, reordering, concurrency, the
//! answers for bad requests, and payments racing a reminder run.

use chrono::Utc;
use dunning::config::WebhookConfig;
use dunning::run::{run, RunRequest};
use dunning::webhook::signature::sign;
use dunning::webhook::{handle, Answer, Outbound};
use dunning_e2e::{deliver_webhook, invoice, outcome, Outbox, TestEnv, MONDAY_2PM};
use futures::future::join_all;

/// No receipts, no escalations.
const SILENT: Outbound<'static, dunning::aws::SesMailer, dunning::aws::SnsPublisher> = Outbound {
    mailer: None,
    publisher: None,
};

const GENERIC_SECRET: &str = "whsec_generic_0123456789";
const STRIPE_SECRET: &str = "whsec_stripe_0123456789a";

fn config() -> WebhookConfig {
    WebhookConfig::from_lookup(|k| match k {
        "TABLE_NAME" => Some("invoices".into()),
        "WEBHOOK_SECRETS" => Some(format!("{GENERIC_SECRET},whsec_previous_secret00")),
        "STRIPE_WEBHOOK_SECRETS" => Some(STRIPE_SECRET.into()),
        // The fixtures are test-mode events, as a test endpoint receives them.
        "STRIPE_LIVEMODE" => Some("false".into()),
        "STRIPE_ACCOUNT_IDS" => Some("acct_1CONNECTED,acct_1OTHERONE".into()),
        _ => None,
    })
    .unwrap()
}

fn payment(id: &str, invoice: &str, amount: &str, currency: &str) -> Vec<u8> {
    serde_json::json!({"id": id, "invoice_id": invoice, "amount": amount, "currency": currency, "paid_at": "2026-11-24T10:00:00Z"})
        .to_string()
        .into_bytes()
}

async fn deliver(env: &TestEnv, header: &str, secret: &str, body: &[u8]) -> Answer {
    let signature = sign(secret.as_bytes(), Utc::now().timestamp(), body);
    let (store, now) = (&env.deps.store, Utc::now());
    deliver_webhook(store, &config(), header, signature, body, now).await
}

async fn generic(env: &TestEnv, body: &[u8]) -> Answer {
    deliver(env, "dunning-signature", GENERIC_SECRET, body).await
}

async fn invoice_record(env: &TestEnv, id: &str) -> anyhow::Result<serde_json::Value> {
    let history = env.deps.store.history(id).await?;
    history
        .into_iter()
        .find(|r| r["sk"] == "invoice")
        .ok_or_else(|| anyhow::anyhow!("no invoice {id}"))
}

#[tokio::test]
async fn partial_then_full_payment_marks_the_invoice_paid_and_stops_reminders() -> anyhow::Result<()>
{
    let env = TestEnv::start().await?;
    env.put_invoice(&invoice("INV", "2026-11-23", &[("email", "x@example.com")]))
        .await?;
    let first = generic(&env, &payment("pay_1", "INV", "20.00", "USD")).await;
    assert_eq!(
        (first.status, &first.body["result"], &first.body["status"]),
        (200, &"applied".into(), &"open".into())
    );
    assert_eq!(invoice_record(&env, "INV").await?["amount_paid"], "20.00");
    // A reminder now states what is still owed.
    let summary = run(&env.deps, &RunRequest::new(MONDAY_2PM.parse()?, "r1")).await?;
    assert_eq!(summary.total_sent(), 1);
    assert!(env.moto.sent_emails()?[0].subject.contains("USD 100.00"));
    let rest = generic(&env, &payment("pay_2", "INV", "100.00", "USD")).await;
    assert_eq!((rest.status, &rest.body["status"]), (200, &"paid".into()));
    let inv = invoice_record(&env, "INV").await?;
    assert_eq!(
        (inv["status"].as_str(), inv["amount_paid"].as_str()),
        (Some("paid"), Some("120.00"))
    );
    assert_eq!(inv["paid_at"], "2026-11-24T10:00:00.000Z");
    // Paid: out of the due index, so the next day's run does not even read it.
    let next = run(
        &env.deps,
        &RunRequest::new("2026-11-24T14:00:00Z".parse()?, "r2"),
    )
    .await?;
    assert_eq!((next.items_read, next.total_sent()), (0, 0));
    Ok(())
}

#[tokio::test]
async fn duplicate_and_reordered_deliveries_change_nothing_twice() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    env.put_invoice(&invoice("INV", "2026-11-23", &[("email", "x@example.com")]))
        .await?;
    let a = payment("pay_a", "INV", "30.00", "USD");
    let b = payment("pay_b", "INV", "40.00", "USD");
    // b arrives first, then a, then both again.
    for (body, want) in [
        (&b, "applied"),
        (&a, "applied"),
        (&b, "duplicate"),
        (&a, "duplicate"),
    ] {
        let answer = generic(&env, body).await;
        assert_eq!(
            (answer.status, answer.body["result"].as_str()),
            (200, Some(want))
        );
    }
    assert_eq!(invoice_record(&env, "INV").await?["amount_paid"], "70.00");
    let payments: Vec<_> = env
        .ledger("INV")
        .await?
        .into_iter()
        .filter(|r| r["sk"].as_str().unwrap().starts_with("payment#"))
        .collect();
    assert_eq!(payments.len(), 2);
    Ok(())
}

#[tokio::test]
async fn an_event_id_sent_again_with_other_content_is_a_conflict_and_never_applied(
) -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    for id in ["INV", "OTHER"] {
        env.put_invoice(&invoice(id, "2026-11-23", &[("email", "x@example.com")]))
            .await?;
    }
    let first = generic(&env, &payment("pay_1", "INV", "20.00", "USD")).await;
    assert_eq!(first.body["result"], "applied");
    // The same id for another invoice (it used to apply again there), or with another amount.
    for body in [
        payment("pay_1", "OTHER", "20.00", "USD"),
        payment("pay_1", "INV", "25.00", "USD"),
    ] {
        let answer = generic(&env, &body).await;
        assert_eq!(
            (answer.status, answer.body["error"].as_str()),
            (409, Some("event_conflict")),
            "{}",
            answer.body
        );
    }
    assert_eq!(invoice_record(&env, "INV").await?["amount_paid"], "20.00");
    assert!(invoice_record(&env, "OTHER")
        .await?
        .get("amount_paid")
        .is_none());
    // The same delivery again is still a duplicate.
    let again = generic(&env, &payment("pay_1", "INV", "20.00", "USD")).await;
    assert_eq!(
        (again.status, again.body["result"].as_str()),
        (200, Some("duplicate"))
    );
    Ok(())
}

#[tokio::test]
async fn twenty_concurrent_payments_for_one_invoice_add_up_exactly() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    env.put_invoice(&invoice(
        "INV",
        "2026-11-23",
        &[("email", "x@example.com"), ("amount", "1000.00")],
    ))
    .await?;
    let bodies: Vec<Vec<u8>> = (1..=20)
        .map(|i| payment(&format!("pay_{i}"), "INV", &format!("{i}.25"), "USD"))
        .collect();
    let answers = join_all(bodies.iter().map(|b| generic(&env, b))).await;
    assert!(
        answers
            .iter()
            .all(|a| a.status == 200 && a.body["result"] == "applied"),
        "{answers:?}"
    );
    // 1.25 + 2.25 + ... + 20.25 = 210 + 20 * 0.25
    assert_eq!(invoice_record(&env, "INV").await?["amount_paid"], "215.00");
    Ok(())
}

const API_VERSIONS: [&str; 3] = ["2024-06-20", "2025-03-31.basil", "2026-10-28.clover"];

fn stripe_fixture(version: &str, name: &str) -> Option<Vec<u8>> {
    std::fs::read(format!(
        "{}/../shared/tests/fixtures/stripe/{version}/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .ok()
}

/// Each fixture of one API version, delivered in the order Stripe may send
/// them, then all of them again: each payment counts once, a refund lowers
/// what was paid once and reopens the invoice, a dispute marks it and, lost,
/// takes its money back.
#[tokio::test]
async fn every_event_kind_on_every_api_version_counts_each_payment_once() -> anyhow::Result<()> {
    for version in API_VERSIONS {
        let env = TestEnv::start().await?;
        for (id, amount, currency) in [
            ("INV-1001", "1250.00", "USD"),
            ("INV-1003", "54000", "JPY"),
            ("INV-1004", "300.00", "EUR"),
            ("INV-1005", "125.500", "KWD"),
        ] {
            env.put_invoice(&invoice(
                id,
                "2026-11-20",
                &[
                    ("email", "a@example.com"),
                    ("amount", amount),
                    ("currency", currency),
                ],
            ))
            .await?;
        }
        // (fixture, expected result, invoice, amount_paid and status after)
        let steps: [(&str, &str, &str, &str, &str); 16] = [
            // A Stripe invoice's payment: its part before the invoice is known
            // cannot be placed; its running total counts it; the rest add nothing.
            ("invoice_payment.paid", "ignored", "INV-1001", "", "open"),
            (
                "payment_intent.succeeded.invoice",
                "*",
                "INV-1001",
                "*",
                "*",
            ),
            ("invoice.paid", "*", "INV-1001", "1250.00", "paid"),
            (
                "invoice.payment_succeeded",
                "covered",
                "INV-1001",
                "1250.00",
                "paid",
            ),
            ("invoice_payment.paid", "*", "INV-1001", "1250.00", "paid"),
            (
                "checkout.session.completed",
                "applied",
                "INV-1003",
                "54000",
                "paid",
            ),
            (
                "checkout.session.completed.unpaid",
                "ignored",
                "INV-1004",
                "",
                "open",
            ),
            (
                "checkout.session.async_payment_failed",
                "ignored",
                "INV-1004",
                "",
                "open",
            ),
            (
                "checkout.session.async_payment_succeeded",
                "applied",
                "INV-1004",
                "300.00",
                "paid",
            ),
            (
                "payment_intent.succeeded",
                "applied",
                "INV-1005",
                "125.500",
                "paid",
            ),
            // The charge's running total counts pending refunds: each refund's own event counts.
            ("charge.refunded", "ignored", "INV-1005", "125.500", "paid"),
            ("refund.updated", "refunded", "INV-1005", "100.000", "open"),
            (
                "charge.dispute.created",
                "dispute_opened",
                "INV-1003",
                "54000",
                "paid",
            ),
            (
                "charge.dispute.closed",
                "dispute_closed",
                "INV-1003",
                "0",
                "open",
            ),
            ("customer.created", "ignored", "", "", ""),
            (
                "checkout.session.completed",
                "duplicate",
                "INV-1003",
                "0",
                "open",
            ),
        ];
        for (name, result, id, paid, status) in steps {
            let Some(body) = stripe_fixture(version, name) else {
                assert_eq!(name, "invoice_payment.paid", "{version} lacks {name}");
                continue;
            };
            let answer = deliver(&env, "stripe-signature", STRIPE_SECRET, &body).await;
            assert_eq!(answer.status, 200, "{version}/{name}: {}", answer.body);
            if result != "*" {
                assert_eq!(
                    answer.body["result"].as_str(),
                    Some(result),
                    "{version}/{name}: {}",
                    answer.body
                );
            }
            if id.is_empty() {
                continue;
            }
            let inv = invoice_record(&env, id).await?;
            if paid != "*" {
                assert_eq!(
                    inv["amount_paid"].as_str().unwrap_or(""),
                    paid,
                    "{version}/{name}: {inv}"
                );
                assert_eq!(inv["status"], status, "{version}/{name}: {inv}");
            }
            match name {
                "charge.dispute.created" => assert_eq!(inv["disputed"], true, "{inv}"),
                "charge.dispute.closed" => assert!(inv.get("disputed").is_none(), "{inv}"),
                _ => {}
            }
        }
        // Everything once more, in reverse: nothing moves.
        let before: Vec<serde_json::Value> = {
            let mut v = Vec::new();
            for id in ["INV-1001", "INV-1003", "INV-1004", "INV-1005"] {
                v.push(invoice_record(&env, id).await?["amount_paid"].clone());
            }
            v
        };
        for (name, ..) in steps.iter().rev() {
            if let Some(body) = stripe_fixture(version, name) {
                let answer = deliver(&env, "stripe-signature", STRIPE_SECRET, &body).await;
                assert_eq!(
                    answer.status, 200,
                    "{version}/{name} again: {}",
                    answer.body
                );
            }
        }
        for (i, id) in ["INV-1001", "INV-1003", "INV-1004", "INV-1005"]
            .iter()
            .enumerate()
        {
            assert_eq!(
                invoice_record(&env, id).await?["amount_paid"],
                before[i],
                "{version}: {id} moved on redelivery"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn stripe_events_from_another_mode_or_account_are_refused() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let dir = format!(
        "{}/../shared/tests/fixtures/stripe/2026-10-28.clover",
        env!("CARGO_MANIFEST_DIR")
    );
    // Another mode, or an account not listed: refused with a stable code, nothing applied.
    env.put_invoice(&invoice(
        "INV-LIVE",
        "2026-11-23",
        &[("email", "l@example.com"), ("amount", "1250.00")],
    ))
    .await?;
    let mut live: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{dir}/invoice.paid.json"))?)?;
    live["id"] = "evt_live_1".into();
    live["data"]["object"]["metadata"]["invoice_id"] = "INV-LIVE".into();
    live["livemode"] = true.into();
    let answer = deliver(
        &env,
        "stripe-signature",
        STRIPE_SECRET,
        &serde_json::to_vec(&live)?,
    )
    .await;
    assert_eq!(
        (answer.status, answer.body["error"].as_str()),
        (403, Some("livemode_mismatch"))
    );
    live["livemode"] = false.into();
    live["account"] = "acct_1STRANGER".into();
    let answer = deliver(
        &env,
        "stripe-signature",
        STRIPE_SECRET,
        &serde_json::to_vec(&live)?,
    )
    .await;
    assert_eq!(
        (answer.status, answer.body["error"].as_str()),
        (403, Some("account_not_allowed"))
    );
    assert_eq!(invoice_record(&env, "INV-LIVE").await?["status"], "open");
    // A listed connected account is taken.
    live["account"] = "acct_1CONNECTED".into();
    let answer = deliver(
        &env,
        "stripe-signature",
        STRIPE_SECRET,
        &serde_json::to_vec(&live)?,
    )
    .await;
    assert_eq!(
        (answer.status, answer.body["status"].as_str()),
        (200, Some("paid")),
        "{}",
        answer.body
    );
    // Our generic secret does not sign Stripe events.
    let body = std::fs::read(format!("{dir}/invoice.paid.json"))?;
    assert_eq!(
        deliver(&env, "stripe-signature", GENERIC_SECRET, &body)
            .await
            .status,
        401
    );
    Ok(())
}

#[tokio::test]
async fn bad_requests_get_their_4xx_with_a_stable_code_and_nothing_is_written() -> anyhow::Result<()>
{
    let env = TestEnv::start().await?;
    env.put_invoice(&invoice("INV", "2026-11-23", &[("email", "x@example.com")]))
        .await?;
    let big = vec![b' '; 64 * 1024 + 1];
    let good = payment("pay_1", "INV", "10.00", "USD");
    let stale = sign(
        GENERIC_SECRET.as_bytes(),
        Utc::now().timestamp() - 301,
        &good,
    );
    let cases: Vec<(Answer, u16, &str)> = vec![
        (generic(&env, &big).await, 413, "body_too_large"),
        (generic(&env, b"{not json").await, 400, "malformed"),
        (
            generic(&env, &payment("apply:pay_2", "INV", "10.00", "USD")).await,
            400,
            "malformed",
        ),
        (
            deliver(&env, "dunning-signature", "whsec_wrong_secret_000", &good).await,
            401,
            "signature_invalid",
        ),
        (
            handle(
                &env.deps.store,
                &SILENT,
                &config(),
                "POST",
                |_| None,
                &good,
                Utc::now(),
            )
            .await,
            401,
            "signature_missing",
        ),
        (
            handle(
                &env.deps.store,
                &SILENT,
                &config(),
                "POST",
                |h| (h == "dunning-signature").then(|| stale.clone()),
                &good,
                Utc::now(),
            )
            .await,
            401,
            "signature_stale",
        ),
        (
            handle(
                &env.deps.store,
                &SILENT,
                &config(),
                "GET",
                |_| None,
                b"",
                Utc::now(),
            )
            .await,
            405,
            "method_not_allowed",
        ),
    ];
    for (answer, status, code) in cases {
        assert_eq!(
            (answer.status, answer.body["error"].as_str()),
            (status, Some(code)),
            "{:?}",
            answer.body
        );
        let text = answer.body.to_string();
        assert!(
            !text.contains("whsec") && !text.contains("x@example.com"),
            "nothing secret or personal: {text}"
        );
    }
    assert!(invoice_record(&env, "INV")
        .await?
        .get("amount_paid")
        .is_none());
    // A previous secret still works during a rotation.
    let rotated = deliver(&env, "dunning-signature", "whsec_previous_secret00", &good).await;
    assert_eq!(
        (rotated.status, rotated.body["result"].as_str()),
        (200, Some("applied"))
    );
    Ok(())
}

#[tokio::test]
async fn a_receipt_goes_out_once_when_enabled_and_the_invoice_is_paid_in_full() -> anyhow::Result<()>
{
    let env = TestEnv::start().await?;
    env.put_invoice(&invoice("INV", "2026-11-23", &[("email", "x@example.com")]))
        .await?;
    let mut cfg = config();
    cfg.receipts = Some(dunning::config::Receipts {
        sender: dunning::contact::EmailAddress::parse(dunning_e2e::SENDER).unwrap(),
        business_name: "Acme Ltd".into(),
        default_locale: dunning::render::Locale::En,
    });
    let send = |body: Vec<u8>| {
        let cfg = cfg.clone();
        let env = &env;
        async move {
            let signature = sign(GENERIC_SECRET.as_bytes(), Utc::now().timestamp(), &body);
            let lookup = |name: &str| (name == "dunning-signature").then(|| signature.clone());
            handle(
                &env.deps.store,
                &Outbound {
                    mailer: Some(&env.deps.mail),
                    publisher: None::<&dunning::aws::SnsPublisher>,
                },
                &cfg,
                "POST",
                lookup,
                &body,
                Utc::now(),
            )
            .await
        }
    };
    send(payment("pay_1", "INV", "20.00", "USD")).await;
    assert!(
        env.moto.sent_emails()?.is_empty(),
        "no receipt for a partial payment"
    );
    let full = payment("pay_2", "INV", "100.00", "USD");
    send(full.clone()).await;
    send(full).await;
    let emails = env.moto.sent_emails()?;
    assert_eq!(
        emails.len(),
        1,
        "one receipt, none for the duplicate delivery"
    );
    assert_eq!(emails[0].subject, "Receipt: invoice INV is paid");
    assert!(emails[0].body.contains("USD 100.00") && emails[0].body.contains("24 November 2026"));
    Ok(())
}

#[tokio::test]
async fn an_overpayment_is_applied_flagged_and_its_excess_kept() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    env.put_invoice(&invoice("INV", "2026-11-23", &[("email", "x@example.com")]))
        .await?;
    let answer = generic(&env, &payment("pay_1", "INV", "150.00", "USD")).await;
    assert_eq!(
        (
            answer.body["status"].as_str(),
            answer.body["overpaid"].as_bool()
        ),
        (Some("paid"), Some(true))
    );
    let inv = invoice_record(&env, "INV").await?;
    assert_eq!(
        (inv["amount_paid"].as_str(), inv["overpaid"].as_bool()),
        (Some("150.00"), Some(true))
    );
    let record = env
        .ledger("INV")
        .await?
        .into_iter()
        .find(|r| r["sk"] == "payment#pay_1")
        .unwrap();
    assert_eq!(record["overpaid"], true);
    // The excess is kept as an unapplied payment, to move or refund.
    assert_eq!(answer.body["unapplied_id"], "generic:pay_1");
    let kept = env.deps.store.unapplied(false).await?;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        (
            kept[0]["reason"].as_str(),
            kept[0]["amount"].as_str(),
            kept[0]["for_invoice"].as_str()
        ),
        (Some("overpaid"), Some("30.00"), Some("INV"))
    );
    Ok(())
}

/// An SES mailer that holds every email for a moment before sending it, and
/// counts the emails in flight: the window in which a payment must wait.
struct HoldingMailer {
    inner: dunning::aws::SesMailer,
    in_flight: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl dunning::ports::Mailer for HoldingMailer {
    async fn send(
        &self,
        to: &dunning::contact::EmailAddress,
        email: &dunning::render::EmailContent,
        envelope: &dunning::ports::Envelope,
    ) -> Result<String, dunning::ports::SendError> {
        use std::sync::atomic::Ordering;
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let sent = self.inner.send(to, email, envelope).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        sent
    }
}

/// The production adapters with the holding mailer.
struct Holding;

impl dunning::run::Adapters for Holding {
    type Store = dunning::aws::DynamoStore;
    type Mail = HoldingMailer;
    type Sms = dunning::aws::SnsTexter;
    type Events = dunning::aws::SnsPublisher;
}

#[tokio::test]
async fn no_reminder_is_sent_after_a_payment_commits_during_a_run() -> anyhow::Result<()> {
    use std::sync::atomic::Ordering;
    let env = TestEnv::start().await?;
    let ids: Vec<String> = (0..24).map(|i| format!("RACE-{i:02}")).collect();
    for id in &ids {
        let email = format!("{}@example.com", id.to_lowercase());
        env.put_invoice(&invoice(id, "2026-11-23", &[("email", email.as_str())]))
            .await?;
    }
    let sdk = env.moto.sdk_config().await;
    let in_flight = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let config = dunning_e2e::config(&[]);
    let mailer = HoldingMailer {
        inner: dunning::aws::SesMailer::new(&sdk, config.sender_email.clone(), None),
        in_flight: in_flight.clone(),
    };
    let deps = dunning::run::Deps::<Holding>::with_adapters(
        config,
        dunning::aws::DynamoStore::new(&sdk, "invoices"),
        mailer,
        dunning::aws::SnsTexter::new(&sdk),
        dunning::aws::SnsPublisher::new(&sdk),
    )?;
    let request = RunRequest::new(MONDAY_2PM.parse()?, "race");
    let bodies: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| payment(&format!("pay_{id}"), id, "120.00", "USD"))
        .collect();
    // Every payment arrives once the first reminders are in flight: those
    // must wait for their reminder, the others beat their claim.
    let payments = async {
        let first_in_flight = async {
            while in_flight.load(Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
        };
        // A run that never sends fails the test below rather than hanging it.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(20), first_in_flight).await;
        join_all(bodies.iter().map(|b| generic(&env, b))).await
    };
    let (summary, answers) = tokio::join!(run(&deps, &request), payments);
    let summary = summary?;
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    let (mut reminded, mut waited) = (0, 0);
    for id in &ids {
        let records = env.ledger(id).await?;
        let paid = records
            .iter()
            .find(|r| r["sk"].as_str().unwrap().starts_with("payment#"))
            .unwrap();
        waited += paid["waited_for_reminder"].as_u64().unwrap_or(0);
        for sent in records.iter().filter(|r| r["state"] == "sent") {
            reminded += 1;
            let (sent_at, paid_at) = (
                sent["sent_at"].as_str().unwrap(),
                paid["recorded_at"].as_str().unwrap(),
            );
            assert!(
                sent_at <= paid_at,
                "{id}: reminder recorded at {sent_at}, after the payment committed at {paid_at}"
            );
        }
        assert_eq!(invoice_record(&env, id).await?["status"], "paid");
    }
    assert_eq!(reminded as u64, summary.total_sent());
    assert_eq!(env.moto.sent_emails()?.len() as u64, summary.total_sent());
    // The race happened: reminders were in flight, payments met them and
    // waited, and others committed first and stopped their reminder.
    assert!(
        summary.total_sent() > 0,
        "no reminder was in flight: {summary:?}"
    );
    assert!(waited > 0, "no payment waited on an in-flight reminder");
    assert!(
        summary.skipped(dunning::summary::SkipReason::InvoiceChanged) > 0,
        "no payment beat its claim: {summary:?}"
    );
    Ok(())
}

/// A clover fixture rewritten for one invoice: `invoice_id` in its metadata
/// (payments), the PaymentIntent `pi`, USD `cents`, and a fresh event id.
fn clover_event(name: &str, event_id: &str, invoice_id: &str, pi: &str, cents: i64) -> Vec<u8> {
    let mut v: serde_json::Value =
        serde_json::from_slice(&stripe_fixture("2026-10-28.clover", name).unwrap()).unwrap();
    v["id"] = event_id.into();
    let o = &mut v["data"]["object"];
    o["currency"] = "usd".into();
    match name {
        "payment_intent.succeeded" => {
            o["id"] = pi.into();
            o["metadata"]["invoice_id"] = invoice_id.into();
            o["amount"] = cents.into();
            o["amount_received"] = cents.into();
            o["latest_charge"] = format!("ch_of_{pi}").into();
        }
        _ => {
            o["payment_intent"] = pi.into();
            o["charge"] = format!("ch_of_{pi}").into();
            o["amount"] = cents.into();
        }
    }
    serde_json::to_vec(&v).unwrap()
}

/// Paid in full after its first overdue reminder, then half refunded: the
/// invoice is open again, in the due index, and its ladder goes on from the
/// step it had reached: nothing the next day, the 7-day step on its day,
/// never the steps before.
#[tokio::test]
async fn a_refund_reopens_the_invoice_and_its_ladder_goes_on_from_where_it_was(
) -> anyhow::Result<()> {
    use dunning_e2e::at;
    let env = TestEnv::start().await?;
    env.put_invoice(&invoice(
        "INV-R",
        "2026-11-22",
        &[("email", "r@example.com")],
    ))
    .await?;
    let sent = |summary: &dunning::summary::RunSummary| -> Vec<String> {
        summary
            .steps
            .iter()
            .filter(|(_, c)| c.values().any(|o| o.sent > 0))
            .map(|(s, _)| s.clone())
            .collect()
    };
    let first = run(&env.deps, &at("2026-11-23T14:00:00Z", "r1")).await?;
    assert_eq!(sent(&first), ["overdue"], "{first:?}");
    let body = clover_event(
        "payment_intent.succeeded",
        "evt_pay_r",
        "INV-R",
        "pi_r",
        12_000,
    );
    let paid = deliver(&env, "stripe-signature", STRIPE_SECRET, &body).await;
    assert_eq!(paid.body["status"], "paid", "{}", paid.body);
    let body = clover_event("refund.updated", "evt_refund_r", "", "pi_r", 6_000);
    let refunded = deliver(&env, "stripe-signature", STRIPE_SECRET, &body).await;
    assert_eq!(
        (
            refunded.body["result"].as_str(),
            refunded.body["invoice_id"].as_str(),
            refunded.body["amount_paid"].as_str(),
            refunded.body["status"].as_str(),
            refunded.body["reopened"].as_bool()
        ),
        (
            Some("refunded"),
            Some("INV-R"),
            Some("60.00"),
            Some("open"),
            Some(true)
        ),
        "{}",
        refunded.body
    );
    let inv = invoice_record(&env, "INV-R").await?;
    assert!(
        inv.get("paid_at").is_none() && inv["reopened_at"].is_string(),
        "{inv}"
    );
    // The same refund again: nothing more.
    assert_eq!(
        deliver(&env, "stripe-signature", STRIPE_SECRET, &body)
            .await
            .body["result"],
        "duplicate"
    );
    let next_day = run(&env.deps, &at("2026-11-24T14:00:00Z", "r2")).await?;
    assert!(
        sent(&next_day).is_empty(),
        "nothing is due the next day: {next_day:?}"
    );
    let week = run(&env.deps, &at("2026-11-29T14:00:00Z", "r3")).await?;
    assert_eq!(sent(&week), ["overdue_7"], "{week:?}");
    let ledger = env.ledger("INV-R").await?;
    let steps: Vec<&str> = ledger
        .iter()
        .filter(|r| r["state"] == "sent")
        .filter_map(|r| r["step"].as_str())
        .collect();
    assert_eq!(
        steps,
        ["overdue", "overdue_7"],
        "never the first steps again"
    );
    // The refund is in the history, with what it left paid.
    assert!(ledger.iter().any(|r| r["sk"] == "refund#re_3QCRefund1005"
        && r["amount_paid_after"] == "60.00"
        && r["reopened"] == true));
    Ok(())
}

/// An opened dispute stops the reminders and is published for people; lost,
/// its money goes back and the ladder goes on.
#[tokio::test]
async fn a_dispute_stops_reminders_is_published_and_lost_reopens() -> anyhow::Result<()> {
    use dunning_e2e::{at, TOPIC_ARN};
    let env = TestEnv::start().await?;
    env.put_invoice(&invoice(
        "INV-D",
        "2026-11-22",
        &[("email", "d@example.com")],
    ))
    .await?;
    let body = clover_event(
        "payment_intent.succeeded",
        "evt_pay_d",
        "INV-D",
        "pi_d",
        5_000,
    );
    let part = deliver(&env, "stripe-signature", STRIPE_SECRET, &body).await;
    assert_eq!(part.body["amount_paid"], "50.00", "{}", part.body);
    let mut cfg = config();
    cfg.escalation_topic_arn = Some(TOPIC_ARN.into());
    let publisher = dunning::aws::SnsPublisher::new(&env.moto.sdk_config().await);
    let out = Outbound {
        mailer: None::<&dunning::aws::SesMailer>,
        publisher: Some(&publisher),
    };
    let signed = |body: &[u8]| sign(STRIPE_SECRET.as_bytes(), Utc::now().timestamp(), body);
    let opened = clover_event("charge.dispute.created", "evt_dp_open", "", "pi_d", 5_000);
    let sig = signed(&opened);
    let answer = handle(
        &env.deps.store,
        &out,
        &cfg,
        "POST",
        |h| (h == "stripe-signature").then(|| sig.clone()),
        &opened,
        Utc::now(),
    )
    .await;
    assert_eq!(answer.body["result"], "dispute_opened", "{}", answer.body);
    let events = env.moto.published(TOPIC_ARN)?;
    assert_eq!(events.len(), 1);
    let event: serde_json::Value = serde_json::from_str(&events[0].1)?;
    assert_eq!(
        (
            event["type"].as_str(),
            event["invoice_id"].as_str(),
            event["amount"].as_str()
        ),
        (Some("invoice.disputed"), Some("INV-D"), Some("50.00"))
    );
    // Delivered again (as after a failed publication): a duplicate, published
    // again for the invoice the references found.
    let again = handle(
        &env.deps.store,
        &out,
        &cfg,
        "POST",
        |h| (h == "stripe-signature").then(|| sig.clone()),
        &opened,
        Utc::now(),
    )
    .await;
    assert_eq!(
        (
            again.body["result"].as_str(),
            again.body["invoice_id"].as_str()
        ),
        (Some("duplicate"), Some("INV-D"))
    );
    let events = env.moto.published(TOPIC_ARN)?;
    assert_eq!(events.len(), 2);
    let event: serde_json::Value = serde_json::from_str(&events[1].1)?;
    assert_eq!(event["invoice_id"], "INV-D");
    let inv = invoice_record(&env, "INV-D").await?;
    assert_eq!(
        (inv["disputed"].as_bool(), inv["status"].as_str()),
        (Some(true), Some("open"))
    );
    let during = run(&env.deps, &at("2026-11-23T14:00:00Z", "r1")).await?;
    assert_eq!(
        during
            .steps
            .values()
            .flat_map(|c| c.values())
            .map(|o| o.sent)
            .sum::<u64>(),
        0,
        "{during:?}"
    );
    assert!(
        during.held.keys().any(|k| k.contains("disputed")),
        "{:?}",
        during.held
    );
    let lost = clover_event("charge.dispute.closed", "evt_dp_lost", "", "pi_d", 5_000);
    let answer = deliver(&env, "stripe-signature", STRIPE_SECRET, &lost).await;
    assert_eq!(
        (
            answer.body["result"].as_str(),
            answer.body["amount_paid"].as_str()
        ),
        (Some("dispute_closed"), Some("0.00")),
        "{}",
        answer.body
    );
    let inv = invoice_record(&env, "INV-D").await?;
    assert!(inv.get("disputed").is_none(), "{inv}");
    let after = run(&env.deps, &at("2026-11-23T15:00:00Z", "r2")).await?;
    assert_eq!(outcome(&after, "overdue", "email").0, 1, "{after:?}");
    let history = env.history("INV-D").await?;
    for sk in [
        "dispute#dp_1QCDispute1003#opened",
        "dispute#dp_1QCDispute1003#closed",
    ] {
        assert!(history.iter().any(|r| r["sk"] == sk), "{sk} in the history");
    }
    Ok(())
}

/// Money that cannot be applied is kept, answered 2xx (so Stripe stops
/// retrying), counted, and listed; a redelivery keeps it once.
#[tokio::test]
async fn money_that_cannot_be_applied_is_kept_aside_once() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    env.put_invoice(&invoice("INV", "2026-11-23", &[("email", "x@example.com")]))
        .await?;
    env.put_invoice(&invoice(
        "VOID",
        "2026-11-23",
        &[("email", "v@example.com"), ("status", "void")],
    ))
    .await?;
    env.put_invoice(&invoice(
        "BROKEN",
        "2026-11-23",
        &[("email", "b@example.com"), ("amount", "lots")],
    ))
    .await?;
    let cases = [
        (payment("pay_2", "INV", "10.00", "EUR"), "currency_mismatch"),
        (payment("pay_3", "NOPE", "10.00", "USD"), "unknown_invoice"),
        (payment("pay_4", "VOID", "10.00", "USD"), "invoice_void"),
        (
            payment("pay_5", "BROKEN", "10.00", "USD"),
            "invoice_invalid",
        ),
    ];
    for (body, reason) in &cases {
        let answer = generic(&env, body).await;
        assert_eq!(
            (
                answer.status,
                answer.body["result"].as_str(),
                answer.body["reason"].as_str()
            ),
            (200, Some("unapplied"), Some(*reason)),
            "{}",
            answer.body
        );
        let metrics = dunning::webhook::answer_metrics(&answer, "Dunning", Utc::now());
        assert_eq!(metrics["UnappliedPayments"], 1);
        // Delivered again: kept once.
        assert_eq!(generic(&env, body).await.body["result"], "duplicate");
    }
    let kept = env.deps.store.unapplied(false).await?;
    let reasons: Vec<&str> = kept.iter().filter_map(|k| k["reason"].as_str()).collect();
    assert_eq!(reasons.len(), 4, "{kept:?}");
    for (_, reason) in &cases {
        assert!(reasons.contains(reason), "{reason} in {reasons:?}");
    }
    let mismatch = kept
        .iter()
        .find(|k| k["reason"] == "currency_mismatch")
        .unwrap();
    assert_eq!(
        (
            mismatch["sk"].as_str(),
            mismatch["amount"].as_str(),
            mismatch["currency"].as_str(),
            mismatch["for_invoice"].as_str()
        ),
        (
            Some("generic:pay_2"),
            Some("10.00"),
            Some("EUR"),
            Some("INV")
        )
    );
    assert!(invoice_record(&env, "INV")
        .await?
        .get("amount_paid")
        .is_none());
    assert_eq!(invoice_record(&env, "VOID").await?["status"], "void");
    // Stripe: a reference that cannot be an invoice id is kept; a refund for
    // a payment we never recorded, an hour after it, is kept as money back;
    // an opened dispute for one moves no money and is ignored.
    let stripe_cases = [
        (
            clover_event(
                "payment_intent.succeeded",
                "evt_badref",
                "INV#1",
                "pi_badref",
                1_000,
            ),
            "unapplied",
            "unknown_invoice",
        ),
        (
            clover_event(
                "refund.updated",
                "evt_lost_refund",
                "",
                "pi_never_seen",
                2_500,
            ),
            "unapplied",
            "unknown_payment",
        ),
        (
            clover_event(
                "charge.dispute.created",
                "evt_lost_dispute",
                "",
                "pi_never_seen",
                2_500,
            ),
            "ignored",
            "unknown_payment",
        ),
    ];
    for (body, result, reason) in &stripe_cases {
        let answer = deliver(&env, "stripe-signature", STRIPE_SECRET, body).await;
        assert_eq!(
            (
                answer.status,
                answer.body["result"].as_str(),
                answer.body["reason"].as_str()
            ),
            (200, Some(*result), Some(*reason)),
            "{}",
            answer.body
        );
    }
    let kept = env.deps.store.unapplied(false).await?;
    assert_eq!(kept.len(), 6, "{kept:?}");
    let refund = kept
        .iter()
        .find(|k| k["reason"] == "unknown_payment")
        .unwrap();
    assert_eq!(
        (refund["flow"].as_str(), refund["amount"].as_str()),
        (Some("back"), Some("25.00"))
    );
    // Within the hour after it, the same refund waits for its payment.
    let fresh = {
        let mut v: serde_json::Value = serde_json::from_slice(&stripe_cases[1].0)?;
        v["id"] = "evt_fresh_refund".into();
        v["created"] = Utc::now().timestamp().into();
        serde_json::to_vec(&v)?
    };
    let answer = deliver(&env, "stripe-signature", STRIPE_SECRET, &fresh).await;
    assert_eq!(
        (answer.status, answer.body["error"].as_str()),
        (409, Some("payment_not_seen"))
    );
    // The same id with another amount is a conflict, not a second entry.
    let other = generic(&env, &payment("pay_3", "NOPE", "11.00", "USD")).await;
    assert_eq!(
        (other.status, other.body["error"].as_str()),
        (409, Some("event_conflict"))
    );
    assert_eq!(env.deps.store.unapplied(false).await?.len(), 6);
    Ok(())
}

/// With `STRIPE_SYNC=true`: Stripe invoices become invoice items.
fn sync_config() -> WebhookConfig {
    WebhookConfig::from_lookup(|k| match k {
        "TABLE_NAME" => Some("invoices".into()),
        "STRIPE_WEBHOOK_SECRETS" => Some(STRIPE_SECRET.into()),
        "STRIPE_LIVEMODE" => Some("false".into()),
        "STRIPE_SYNC" => Some("true".into()),
        "BUSINESS_TIMEZONE" => Some("UTC".into()),
        _ => None,
    })
    .unwrap()
}

async fn sync(env: &TestEnv, name: &str) -> Answer {
    sync_changed(env, name, |_| {}).await
}

#[tokio::test]
async fn a_stripe_invoice_is_synced_updated_paid_and_voided_whatever_the_order_of_events(
) -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let id = "in_1QCSync000000002001";
    // Finalized: the item is created, and the run reminds it on its due date.
    let created = sync(&env, "invoice.finalized.sync").await;
    assert_eq!(
        (
            created.status,
            &created.body["sync"],
            &created.body["invoice_id"]
        ),
        (200, &"created".into(), &id.into()),
        "{created:?}"
    );
    let again = sync(&env, "invoice.finalized.sync").await;
    assert_eq!(
        again.body["sync"], "unchanged",
        "redelivered: not duplicated"
    );
    let item = invoice_record(&env, id).await?;
    for (attr, value) in [
        ("customer_id", "cus_QCCustomer0002"),
        ("customer_name", "Bea Souza"),
        ("email", "bea.souza@example.com"),
        ("phone", "+15555550102"),
        ("amount", "480.00"),
        ("currency", "EUR"),
        ("due_date", "2026-11-23"),
        ("status", "open"),
        (
            "pay_url",
            "https://invoice.stripe.com/i/acct_1DEMO/test_sync2001",
        ),
    ] {
        assert_eq!(item[attr], value, "{attr}");
    }
    run(&env.deps, &RunRequest::new(MONDAY_2PM.parse()?, "r1")).await?;
    let emails = env.moto.sent_emails()?;
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].to, ["bea.souza@example.com"]);
    assert!(
        emails[0].subject.contains("EUR 480.00"),
        "{}",
        emails[0].subject
    );
    // Paid arrives before the update it follows: paid; the update then is
    // older and changes nothing, and the finalized event again cannot reopen it.
    let paid = sync(&env, "invoice.paid.sync").await;
    assert_eq!(
        (paid.body["sync"].as_str(), paid.body["status"].as_str()),
        (Some("updated"), Some("paid"))
    );
    let late = sync(&env, "invoice.updated.sync").await;
    assert_eq!(late.body["sync"], "stale");
    assert_eq!(
        sync(&env, "invoice.finalized.sync").await.body["sync"],
        "stale"
    );
    let item = invoice_record(&env, id).await?;
    assert_eq!(
        (item["status"].as_str(), item["amount"].as_str()),
        (Some("paid"), Some("480.00"))
    );
    let summary = run(
        &env.deps,
        &RunRequest::new("2026-11-24T14:00:00Z".parse()?, "r2"),
    )
    .await?;
    assert_eq!(summary.total_sent(), 0, "paid: nothing more");
    // Paid in Stripe, not by a payment here: the report's rollup counts it
    // once (the stale events after it add nothing), with its reminder.
    let rollup = env
        .deps
        .store
        .history(dunning::report::rollup::PARTITION)
        .await?;
    let amount = |attr: &str| -> rust_decimal::Decimal {
        rollup
            .iter()
            .filter_map(|day| day.get(attr))
            .map(|v| {
                v.to_string()
                    .trim_matches('"')
                    .parse::<rust_decimal::Decimal>()
                    .unwrap()
            })
            .sum()
    };
    assert_eq!(
        amount("received#EUR"),
        rust_decimal::Decimal::from(480),
        "{rollup:?}"
    );
    assert_eq!(amount("sales_paid#EUR"), rust_decimal::Decimal::from(480));
    assert!(
        rollup.iter().any(|day| day
            .as_object()
            .is_some_and(|d| d.keys().any(|k| k.starts_with("due_today#email#")))),
        "the reminder it got before it was paid: {rollup:?}"
    );

    // Another invoice: voided delivered before finalized; void either way.
    let voided = sync(&env, "invoice.voided.sync").await;
    assert_eq!(voided.body["sync"], "created");
    assert_eq!(
        sync(&env, "invoice.finalized.sync-void").await.body["sync"],
        "stale"
    );
    assert_eq!(
        invoice_record(&env, "INV-2002").await?["status"],
        "void",
        "its metadata.invoice_id names it"
    );
    // Uncollectible: void, nothing sent. A deleted draft never was an item.
    assert_eq!(
        sync(&env, "invoice.marked_uncollectible.sync").await.body["status"],
        "void"
    );
    let deleted = sync(&env, "invoice.deleted.sync").await;
    assert_eq!(deleted.body["sync"], "unchanged", "{deleted:?}");
    assert!(env
        .deps
        .store
        .history("in_1QCSync000000002004")
        .await?
        .is_empty());
    // The history says which events made the item what it is.
    let history = env.deps.store.history(id).await?;
    let changes: Vec<&serde_json::Value> = history
        .iter()
        .filter(|r| r["sk"].as_str().is_some_and(|s| s.starts_with("change#")))
        .collect();
    assert_eq!(changes.len(), 2, "created, then paid: {changes:?}");
    assert!(changes
        .iter()
        .any(|c| c["by"] == "stripe:evt_1QCSyncPaid000001"));
    Ok(())
}

#[tokio::test]
async fn in_order_an_update_changes_the_amount_the_next_reminder_states() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    sync(&env, "invoice.finalized.sync").await;
    let updated = sync(&env, "invoice.updated.sync").await;
    assert_eq!(updated.body["sync"], "updated", "{updated:?}");
    run(&env.deps, &RunRequest::new(MONDAY_2PM.parse()?, "r1")).await?;
    let emails = env.moto.sent_emails()?;
    assert!(
        emails[0].subject.contains("EUR 300.00"),
        "{}",
        emails[0].subject
    );
    Ok(())
}

#[tokio::test]
async fn with_sync_on_a_stripe_invoice_s_own_payment_is_not_counted_twice() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let answer = sync(&env, "invoice_payment.paid").await;
    assert_eq!(
        (answer.status, &answer.body["reason"]),
        (200, &"counted_by_invoice_sync".into())
    );
    Ok(())
}

/// A sync fixture changed by `change`, delivered.
async fn sync_changed(
    env: &TestEnv,
    name: &str,
    change: impl Fn(&mut serde_json::Value),
) -> Answer {
    let mut v: serde_json::Value =
        serde_json::from_slice(&stripe_fixture("2026-10-28.clover", name).unwrap()).unwrap();
    change(&mut v);
    let body = v.to_string().into_bytes();
    let signature = sign(STRIPE_SECRET.as_bytes(), Utc::now().timestamp(), &body);
    deliver_webhook(
        &env.deps.store,
        &sync_config(),
        "stripe-signature",
        signature,
        &body,
        Utc::now(),
    )
    .await
}

#[tokio::test]
async fn a_newer_open_event_never_reopens_a_paid_invoice_and_another_stripe_invoice_never_touches_it(
) -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let id = "in_1QCSync000000002001";
    sync(&env, "invoice.finalized.sync").await;
    sync(&env, "invoice.paid.sync").await;
    // An update after the payment, still saying open (as a delayed copy may).
    let newer = sync_changed(&env, "invoice.updated.sync", |v| {
        v["created"] = 1_795_600_000.into();
        v["id"] = "evt_1QCSyncUpdatedLate1".into();
    })
    .await;
    assert_eq!(newer.body["sync"], "updated", "{newer:?}");
    assert_eq!(
        invoice_record(&env, id).await?["status"],
        "paid",
        "never reopened"
    );
    // A second Stripe invoice naming our INV-2002 (a revised copy) while the
    // first, linked one stays: its void changes nothing of ours.
    sync(&env, "invoice.finalized.sync-void").await;
    let other = sync_changed(&env, "invoice.voided.sync", |v| {
        v["data"]["object"]["id"] = "in_1QCSyncOTHER0000002002".into();
    })
    .await;
    assert_eq!(other.body["sync"], "other_stripe_invoice", "{other:?}");
    assert_eq!(invoice_record(&env, "INV-2002").await?["status"], "open");
    // An imported invoice the Stripe invoice names is linked, and keeps its
    // customer and the phone Stripe does not have.
    env.put_invoice(&dunning_e2e::invoice(
        "INV-3003",
        "2026-11-23",
        &[
            ("customer_id", "CUST-OURS"),
            ("email", "ours@example.com"),
            ("phone", "+15555550133"),
        ],
    ))
    .await?;
    let linked = sync_changed(&env, "invoice.updated.sync", |v| {
        v["data"]["object"]["id"] = "in_1QCSyncLINKED000003003".into();
        v["data"]["object"]["metadata"]["invoice_id"] = "INV-3003".into();
        v["data"]["object"]["customer_phone"] = serde_json::Value::Null;
    })
    .await;
    assert_eq!(linked.body["sync"], "updated", "{linked:?}");
    let item = invoice_record(&env, "INV-3003").await?;
    assert_eq!(
        (
            item["customer_id"].as_str(),
            item["phone"].as_str(),
            item["stripe_invoice_id"].as_str()
        ),
        (
            Some("CUST-OURS"),
            Some("+15555550133"),
            Some("in_1QCSyncLINKED000003003")
        )
    );
    Ok(())
}
