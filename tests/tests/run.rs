//! End-to-end: the reminder run against a private moto server, asserting on
//! what was really written to DynamoDB and "sent" through SES and SNS.

use aws_sdk_dynamodb::types::AttributeValue;
use std::time::Duration;

use chrono::Utc;
use dunning::aws::sdk::SdkSettings;
use dunning::channel::Channel;
use dunning::run::{run, Deps, RunRequest};
use dunning::summary::{SkipReason, SystemicStop, Target};
use dunning_e2e::{invoice, outcome, sdk_config_at, FaultProxy, Outbox, TestEnv, MONDAY_2PM};

/// A run at [`MONDAY_2PM`]; the business zone is UTC.
fn request(run_id: &str) -> RunRequest {
    RunRequest::new(MONDAY_2PM.parse().unwrap(), run_id)
}

#[tokio::test]
async fn each_step_sends_the_expected_email_and_sms_and_nothing_else() -> anyhow::Result<()> {
    // The same scenario runs on the memory store in policy.rs.
    dunning_e2e::scenarios::each_step_sends_the_expected_email_and_sms_and_nothing_else(
        &TestEnv::start().await?,
    )
    .await
}

#[tokio::test]
async fn running_the_same_instant_twice_sends_nothing_new() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    dunning_e2e::scenarios::seed_ladder(&env).await?;
    let first = run(&env.deps, &request("r1")).await?;
    let (emails, sms) = (env.moto.sent_emails()?.len(), env.moto.sent_sms()?.len());
    let second = run(&env.deps, &request("r2")).await?;
    assert_eq!(first.total_sent(), (emails + sms) as u64);
    assert_eq!(second.total_sent(), 0);
    assert_eq!(
        second.skipped.get(&SkipReason::AlreadySent),
        Some(&first.total_sent())
    );
    assert_eq!(env.moto.sent_emails()?.len(), emails);
    assert_eq!(env.moto.sent_sms()?.len(), sms);
    Ok(())
}

#[tokio::test]
async fn two_runs_started_together_send_each_message_once() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    dunning_e2e::scenarios::seed_ladder(&env).await?;
    let (ra, rb) = (request("ra"), request("rb"));
    let (a, b) = tokio::join!(run(&env.deps, &ra), run(&env.deps, &rb));
    let (a, b) = (a?, b?);
    let emails = env.moto.sent_emails()?;
    let sms = env.moto.sent_sms()?;
    let mut recipients: Vec<String> = emails
        .iter()
        .map(|e| e.to[0].clone())
        .chain(sms.iter().map(|m| m.phone.clone()))
        .collect();
    let total = recipients.len();
    recipients.sort();
    recipients.dedup();
    assert_eq!(
        recipients.len(),
        total,
        "no recipient got the same reminder twice"
    );
    assert_eq!(total, 6);
    assert_eq!(a.total_sent() + b.total_sent(), 6);
    Ok(())
}

#[tokio::test]
async fn malformed_items_are_skipped_counted_by_reason_and_the_run_completes() -> anyhow::Result<()>
{
    let env = TestEnv::start().await?;
    env.put_invoice(&invoice(
        "GOOD",
        "2026-11-23",
        &[("email", "good@example.com")],
    ))
    .await?;
    env.put_invoice(&invoice("NOCONTACT", "2026-11-23", &[]))
        .await?;
    env.put_invoice(&invoice(
        "BADAMOUNT",
        "2026-11-23",
        &[("email", "a@example.com"), ("amount", "12,50")],
    ))
    .await?;
    env.put_invoice(&invoice(
        "BADDATE",
        "2026-11-20T00:00",
        &[("email", "b@example.com")],
    ))
    .await?;
    env.put_invoice(&invoice(
        "ALSOGOOD",
        "2026-11-23",
        &[("email", "c@example.com")],
    ))
    .await?;
    env.put_invoice(&invoice(
        "XYZ",
        "2026-11-23",
        &[("email", "e@example.com"), ("currency", "XYZ")],
    ))
    .await?;
    env.put_raw(&[
        ("invoice_id", AttributeValue::S("NUMERIC".into())),
        ("customer_id", AttributeValue::S("C".into())),
        ("customer_name", AttributeValue::S("Num".into())),
        ("email", AttributeValue::S("f@example.com".into())),
        ("amount", AttributeValue::N("99.5".into())),
        ("currency", AttributeValue::S("USD".into())),
        ("due_date", AttributeValue::S("2026-11-23".into())),
        ("status", AttributeValue::S("open".into())),
    ])
    .await?;
    let summary = run(&env.deps, &request("r1")).await?;
    let invalid: Vec<(&str, u64)> = summary
        .invalid
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        invalid,
        [
            ("bad_amount", 1),
            ("bad_due_date", 1),
            ("no_contact", 1),
            ("unknown_currency", 1),
        ]
    );
    let mut ids: Vec<&str> = summary
        .invalid_items
        .iter()
        .filter_map(|i| i.invoice_id.as_deref())
        .collect();
    ids.sort();
    assert_eq!(ids, ["BADAMOUNT", "BADDATE", "NOCONTACT", "XYZ"]);
    let to: Vec<String> = env
        .moto
        .sent_emails()?
        .into_iter()
        .flat_map(|e| e.to)
        .collect();
    let mut to = to;
    to.sort();
    assert_eq!(
        to,
        ["c@example.com", "f@example.com", "good@example.com"],
        "only the valid invoices got email (a DynamoDB Number amount is valid)"
    );
    assert!(env.moto.sent_sms()?.is_empty());
    Ok(())
}

#[tokio::test]
async fn dry_run_plans_without_sending_or_writing() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    dunning_e2e::scenarios::seed_ladder(&env).await?;
    let mut req = request("dry");
    req.dry_run = true;
    let summary = run(&env.deps, &req).await?;
    let planned = summary.total_planned();
    assert_eq!(planned, 6);
    assert_eq!(summary.total_sent(), 0);
    assert!(env.moto.sent_emails()?.is_empty() && env.moto.sent_sms()?.is_empty());
    assert!(env.ledger("PRE").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn an_unverified_sender_stops_email_for_the_run_and_the_next_run_sends_once(
) -> anyhow::Result<()> {
    // A sender that is not a verified SES identity: SES (moto) refuses every
    // message with MessageRejected "not verified", the account's state, not
    // the recipient's.
    let env = TestEnv::with_config(
        dunning_e2e::config(&[("SENDER_EMAIL", "unverified@acme.example")]),
        false,
    )
    .await?;
    env.put_invoice(&invoice(
        "INV",
        "2026-11-23",
        &[("email", "x@example.com"), ("phone", "+15555550199")],
    ))
    .await?;
    let first = run(&env.deps, &request("r1")).await?;
    assert_eq!(outcome(&first, "due_today", "email"), (0, 0, 0));
    assert_eq!(first.total_failed(), 0, "no message failed");
    assert_eq!(first.systemic["email"].code, "MessageRejected");
    assert_eq!(
        outcome(&first, "due_today", "sms"),
        (1, 0, 0),
        "the SMS is independent of the email"
    );
    let ledger = env.ledger("INV").await?;
    let email = ledger.iter().find(|r| r["channel"] == "email").unwrap();
    assert_eq!(
        (&email["state"], &email["error_class"]),
        (&"retry".into(), &"systemic".into())
    );
    assert_eq!(
        email["attempts"], 0,
        "a systemic failure uses up no attempt"
    );
    // The fix: the sender is verified. The next hourly run sends the email once.
    env.deps
        .mail
        .create_sender_identity()
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let later = |run_id| dunning_e2e::at("2026-11-23T15:00:00Z", run_id);
    let second = run(&env.deps, &later("r2")).await?;
    assert_eq!(outcome(&second, "due_today", "email"), (1, 0, 0));
    assert!(second.systemic.is_empty());
    let third = run(&env.deps, &later("r3")).await?;
    assert_eq!(third.total_sent() + third.total_failed(), 0);
    assert_eq!(env.moto.sent_emails()?.len(), 1);
    assert_eq!(env.moto.sent_sms()?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_recipient_rejection_is_recorded_once_and_not_retried() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    // The proxy rejects `bounce*` addresses as SES rejects an address (MessageRejected).
    let proxy = FaultProxy::start(env.moto.endpoint(), 0.0, 1, Duration::from_millis(100))?;
    let deps = Deps::new(
        &sdk_config_at(&proxy.endpoint, SdkSettings::default()).await,
        dunning_e2e::config(&[]),
    )?;
    env.put_invoice(&invoice(
        "INV",
        "2026-11-23",
        &[("email", "bounce@example.com"), ("phone", "+15555550199")],
    ))
    .await?;
    let first = run(&deps, &request("r1")).await?;
    assert_eq!(outcome(&first, "due_today", "email"), (0, 1, 0));
    assert_eq!(outcome(&first, "due_today", "sms"), (1, 0, 0));
    assert_eq!(first.failed.get("MessageRejected"), Some(&1));
    assert!(first.systemic.is_empty(), "one address is not the channel");
    let ledger = env.ledger("INV").await?;
    let email = ledger.iter().find(|r| r["channel"] == "email").unwrap();
    assert_eq!(email["state"], "failed");
    assert_eq!(email["error_class"], "permanent");
    let second = run(&deps, &request("r2")).await?;
    assert_eq!(second.total_failed() + second.total_sent(), 0);
    assert_eq!(second.skipped.get(&SkipReason::AlreadySent), Some(&2));
    Ok(())
}

#[tokio::test]
async fn access_denied_on_every_ses_call_stops_email_loses_nothing_and_the_next_run_sends_each_once(
) -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let proxy = FaultProxy::start(env.moto.endpoint(), 0.0, 1, Duration::from_millis(100))?;
    // One message at a time, so "stopped after the first refusal" is exact.
    let deps = Deps::new(
        &sdk_config_at(&proxy.endpoint, SdkSettings::default()).await,
        dunning_e2e::config(&[("SEND_CONCURRENCY", "1")]),
    )?;
    let customers = 6;
    for i in 0..customers {
        let (id, email, phone) = (
            format!("INV-{i}"),
            format!("c{i}@example.com"),
            format!("+1555555010{i}"),
        );
        // Each invoice is its own customer (`invoice` sets customer_id = id).
        env.put_invoice(&invoice(
            &id,
            "2026-11-23",
            &[("email", &email), ("phone", &phone)],
        ))
        .await?;
    }
    // A wrong IAM grant: SES answers AccessDeniedException to every call.
    proxy.configure(serde_json::json!({"rate": 1.0, "services": ["ses"], "kinds": ["denied"]}))?;
    let first = run(&deps, &request("denied")).await?;
    let ses_calls = proxy.stats()?["requests"]["ses"].as_u64().unwrap_or(0);
    assert_eq!(ses_calls, 1, "the channel stopped after the first refusal");
    assert_eq!(first.total_failed(), 0, "no message failed");
    assert_eq!(
        first.systemic["email"],
        SystemicStop {
            code: "AccessDeniedException".into(),
            messages: customers
        }
    );
    assert_eq!(
        first
            .outcomes("due_today", Target::Channel(Channel::Email))
            .retry,
        customers
    );
    assert_eq!(
        outcome(&first, "due_today", "sms"),
        (customers, 0, 0),
        "SMS went on"
    );
    let metrics = first.emf("Dunning", Utc::now());
    assert_eq!(metrics["SystemicFailures"], customers);
    assert_eq!(metrics["RunFailures"], 0);
    for i in 0..customers {
        let ledger = env.ledger(&format!("INV-{i}")).await?;
        let email = ledger
            .iter()
            .find(|r| r["sk"] == "reminder#due_today#email")
            .unwrap();
        assert_eq!(
            (&email["state"], &email["error_code"]),
            (&"retry".into(), &"AccessDeniedException".into())
        );
    }
    assert!(env.moto.sent_emails()?.is_empty());
    // The grant is fixed: the next hourly run sends every one of them, once.
    proxy.configure(serde_json::json!({"rate": 0.0}))?;
    let later = |run_id| dunning_e2e::at("2026-11-23T15:00:00Z", run_id);
    let second = run(&deps, &later("fixed")).await?;
    assert_eq!(outcome(&second, "due_today", "email"), (customers, 0, 0));
    assert_eq!(second.total_sent(), customers, "the SMS are not sent again");
    let third = run(&deps, &later("again")).await?;
    assert_eq!(third.total_sent() + third.total_failed(), 0);
    let mut to = env.moto.recipients()?;
    to.sort();
    let expected: Vec<String> = (0..customers)
        .map(|i| format!("c{i}@example.com"))
        .collect();
    assert_eq!(
        to.iter()
            .filter(|r| r.contains('@'))
            .cloned()
            .collect::<Vec<_>>(),
        expected
    );
    Ok(())
}

#[tokio::test]
async fn the_audit_lists_every_invoice_a_run_cannot_use_even_outside_the_index(
) -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    env.put_invoice(&invoice(
        "GOOD",
        "2026-11-23",
        &[("email", "g@example.com")],
    ))
    .await?;
    env.put_invoice(&invoice(
        "FEB30",
        "2026-02-30",
        &[("email", "f@example.com")],
    ))
    .await?;
    env.put_invoice(&invoice("NOCONTACT", "2026-11-23", &[]))
        .await?;
    env.put_raw(&[
        ("invoice_id", AttributeValue::S("NODUE".into())),
        ("customer_id", AttributeValue::S("C".into())),
        ("customer_name", AttributeValue::S("No Due".into())),
        ("email", AttributeValue::S("n@example.com".into())),
        ("amount", AttributeValue::S("10.00".into())),
        ("currency", AttributeValue::S("USD".into())),
        ("status", AttributeValue::S("open".into())),
    ])
    .await?;
    // Ledger records under a valid invoice are not invoices and are not reported.
    run(&env.deps, &request("r1")).await?;
    let report = dunning::audit::audit(&env.deps.store, 3).await?;
    let unusable: Vec<(&str, &str)> = report
        .unusable
        .iter()
        .map(|(i, r)| (i.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        unusable,
        [
            ("FEB30", "bad_due_date"),
            ("NOCONTACT", "no_contact"),
            ("NODUE", "missing_due_date")
        ]
    );
    assert_eq!(report.invoices, 4);
    assert!(
        report.scanned > report.invoices,
        "the Scan reads ledger records too: {report:?}"
    );
    Ok(())
}

#[tokio::test]
async fn signing_secrets_are_read_from_secrets_manager_at_start_up() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let sdk = env.moto.sdk_config().await;
    let arn = env
        .create_secret("stripe", "sk_test_from_secrets_manager")
        .await?;
    // The secret is read into the environment before the configuration is
    // parsed, so a parsed configuration is complete.
    let vars: std::collections::HashMap<&str, String> = [
        ("TABLE_NAME", "invoices".to_owned()),
        ("BUSINESS_NAME", "Acme".into()),
        ("BUSINESS_TIMEZONE", "Europe/London".into()),
        ("PAY_LINK_BASE_URL", "https://pay.acme.example".into()),
        ("STRIPE_PUBLISHABLE_KEY", "pk_test_1".into()),
        ("STRIPE_SECRET_ARN", arn.clone()),
    ]
    .into_iter()
    .collect();
    let lookup = move |k: &str| vars.get(k).cloned();
    let env_vars = dunning::aws::secrets::resolve(&sdk, lookup.clone()).await?;
    let config = dunning::config::PayPageConfig::from_lookup(|k| env_vars.get(k))?;
    assert_eq!(config.stripe_secret_key, "sk_test_from_secrets_manager");
    // Without that step the ARN alone is refused, never a placeholder secret.
    let err = dunning::config::PayPageConfig::from_lookup(lookup).unwrap_err();
    assert!(err.to_string().contains("STRIPE_SECRET_ARN"), "{err}");
    // A secret that is not a Stripe key stops start-up.
    let wrong = env.create_secret("not-stripe", "hunter2").await?;
    let err = dunning::aws::secrets::resolve(&sdk, move |k| {
        (k == "STRIPE_SECRET_ARN").then(|| wrong.clone())
    })
    .await
    .err()
    .expect("not a Stripe key");
    assert!(err.to_string().contains("not a Stripe secret"), "{err}");
    let webhook_arn = env
        .create_secret(
            "webhook",
            r#"{"WEBHOOK_SECRETS": "whsec_from_secrets_manager", "STRIPE_WEBHOOK_SECRETS": ""}"#,
        )
        .await?;
    let webhook_env = dunning::aws::secrets::resolve(&sdk, move |k| match k {
        "TABLE_NAME" => Some("invoices".into()),
        "WEBHOOK_SECRETS_ARN" => Some(webhook_arn.clone()),
        _ => None,
    })
    .await?;
    let webhook = dunning::config::WebhookConfig::from_lookup(|k| webhook_env.get(k))?;
    assert_eq!(
        webhook.generic_secrets,
        [b"whsec_from_secrets_manager".to_vec()]
    );
    // A missing secret stops start-up with its ARN named.
    let err = dunning::aws::secrets::resolve(&sdk, |k| {
        (k == "STRIPE_SECRET_ARN")
            .then(|| "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope".to_owned())
    })
    .await
    .err()
    .expect("a missing secret is an error");
    assert!(err.to_string().contains("secret:nope"), "{err}");
    // A webhook secret without a signing secret in it is refused with its ARN.
    let empty_arn = env
        .create_secret(
            "webhook-empty",
            r#"{"WEBHOOK_SECRETS": "", "STRIPE_WEBHOOK_SECRETS": ""}"#,
        )
        .await?;
    let err = dunning::aws::secrets::resolve(&sdk, move |k| {
        (k == "WEBHOOK_SECRETS_ARN").then(|| empty_arn.clone())
    })
    .await
    .err()
    .expect("a secret without secrets is an error");
    assert!(
        err.to_string().contains("webhook-empty") && err.to_string().contains("neither"),
        "{err}"
    );
    // Stripe's secrets alone are enough, and a secret read by ARN overrides
    // a variable set directly.
    let stripe_arn = env
        .create_secret(
            "webhook-stripe",
            r#"{"STRIPE_WEBHOOK_SECRETS": "whsec_stripe_from_manager_01"}"#,
        )
        .await?;
    let stripe_env = dunning::aws::secrets::resolve(&sdk, move |k| match k {
        "TABLE_NAME" => Some("invoices".into()),
        "WEBHOOK_SECRETS_ARN" => Some(stripe_arn.clone()),
        "STRIPE_WEBHOOK_SECRETS" => Some("whsec_set_directly_000000".into()),
        _ => None,
    })
    .await?;
    let stripe = dunning::config::WebhookConfig::from_lookup(|k| stripe_env.get(k))?;
    assert_eq!(
        stripe.stripe_secrets,
        [b"whsec_stripe_from_manager_01".to_vec()]
    );
    assert!(stripe.generic_secrets.is_empty());
    // Each list in a secret of its own, stored as it is: any character in a
    // value is safe (the template builds nothing around it).
    let odd = r#"whsec_"quoted"\back\slash${x}'}"#;
    let generic_arn = env.create_secret("webhook-plain", odd).await?;
    let stripe_only = env
        .create_secret(
            "stripe-plain",
            "whsec_plain_stripe_secret_1, whsec_plain_stripe_secret_2",
        )
        .await?;
    let plain_env = dunning::aws::secrets::resolve(&sdk, move |k| match k {
        "TABLE_NAME" => Some("invoices".into()),
        "WEBHOOK_SECRETS_ARN" => Some(generic_arn.clone()),
        "STRIPE_WEBHOOK_SECRETS_ARN" => Some(stripe_only.clone()),
        _ => None,
    })
    .await?;
    let plain = dunning::config::WebhookConfig::from_lookup(|k| plain_env.get(k))?;
    assert_eq!(plain.generic_secrets, [odd.as_bytes().to_vec()]);
    assert_eq!(
        plain.stripe_secrets,
        [
            b"whsec_plain_stripe_secret_1".to_vec(),
            b"whsec_plain_stripe_secret_2".to_vec()
        ]
    );
    Ok(())
}

#[tokio::test]
async fn an_escalation_is_published_to_the_sns_topic_and_recorded() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    // 30 days overdue on Monday: the collections step.
    env.put_invoice(&invoice(
        "OLD",
        "2026-10-24",
        &[("email", "old@example.com")],
    ))
    .await?;
    let summary = run(&env.deps, &request("r1")).await?;
    assert_eq!(summary.escalated, 1, "{summary:?}");
    let events = env.moto.published(dunning_e2e::TOPIC_ARN)?;
    assert_eq!(events.len(), 1);
    let event: serde_json::Value = serde_json::from_str(&events[0].1)?;
    assert_eq!(
        (event["type"].as_str(), event["invoice_id"].as_str()),
        (Some("invoice.escalated"), Some("OLD"))
    );
    let history = env.history("OLD").await?;
    let record = history
        .iter()
        .find(|r| r["sk"] == "reminder#collections#escalation")
        .expect("the escalation's ledger record");
    assert_eq!(record["state"], "sent");
    assert_eq!(record["message_id"], events[0].0.as_str());
    let inv = history.iter().find(|r| r["sk"] == "invoice").unwrap();
    assert_eq!(inv["in_collections"], true);
    Ok(())
}

#[tokio::test]
async fn a_lease_shorter_than_the_sdk_timeouts_allow_for_a_send_stops_start_up(
) -> anyhow::Result<()> {
    let slow = SdkSettings {
        max_attempts: 10,
        attempt_timeout: Duration::from_secs(60),
    };
    // No request is made: the endpoint is never called.
    let sdk = sdk_config_at("http://127.0.0.1:9", slow).await;
    let short = dunning_e2e::config(&[("CLAIM_LEASE_SECONDS", "600")]);
    let err = Deps::new(&sdk, short).err().expect("refused");
    let text = err.to_string();
    // 7 operations of 605 s (claim rounds, pay link), 241.05 s of send, 5
    // operations and 9 s of waits to record it.
    assert!(
        text.contains("CLAIM_LEASE_SECONDS=600") && text.contains("7511 s"),
        "{text}"
    );
    let long = dunning_e2e::config(&[("CLAIM_LEASE_SECONDS", "7600")]);
    assert!(Deps::new(&sdk, long).is_ok());
    let default = sdk_config_at("http://127.0.0.1:9", SdkSettings::default()).await;
    let short = dunning_e2e::config(&[("CLAIM_LEASE_SECONDS", "60")]);
    assert!(Deps::new(&default, short)
        .err()
        .expect("refused")
        .to_string()
        .contains("331 s"));
    assert!(
        Deps::new(&default, dunning_e2e::config(&[])).is_ok(),
        "the default 900 s covers the defaults"
    );
    Ok(())
}

#[tokio::test]
async fn the_weekly_report_goes_once_a_week_to_report_emails_with_the_figures() -> anyhow::Result<()>
{
    use dunning::aws::reports::Weekly;
    let config = dunning_e2e::config(&[("REPORT_EMAILS", "finance@example.com, cfo@example.com")]);
    let env = TestEnv::with_config(config, true).await?;
    env.put_invoice(&invoice("W-1", "2026-11-02", &[("email", "w@example.com")]))
        .await?;
    env.put_invoice(&invoice("W-2", "2026-12-20", &[("email", "w@example.com")]))
        .await?;
    let steps = [("due_today".to_owned(), 0)];
    let send = |at: &str| {
        let at = at.parse().unwrap();
        let deps = &env.deps;
        let steps = &steps;
        async move {
            deps.store
                .send_weekly(&deps.mail, &deps.config, steps, at)
                .await
        }
    };
    // Monday 7 December, 08:00; then the same invocation retried a minute later.
    let first = send("2026-12-07T08:00:00Z").await?;
    let Weekly::Sent { week, reads, .. } = &first else {
        panic!("not sent: {first:?}");
    };
    assert_eq!(week, "2026-W50");
    assert_eq!(
        reads.open_invoices, 2,
        "the two open invoices, through the due index"
    );
    assert_eq!(
        send("2026-12-07T08:01:00Z").await?,
        Weekly::AlreadySent {
            week: "2026-W50".into()
        }
    );
    let sent = env.moto.sent_emails()?;
    assert_eq!(sent.len(), 1, "once for the week");
    let email = &sent[0];
    assert_eq!(email.subject, "Acme Ltd: receivables, week 2026-W50");
    assert_eq!(email.to, ["finance@example.com"]);
    assert_eq!(email.cc, ["cfo@example.com"]);
    // Owed: W-1 (35 days overdue) and W-2 (not yet due), 120.00 each.
    assert!(
        email
            .body
            .contains(r#"data-total="USD" data-amount="240.00""#),
        "{}",
        email.body
    );
    assert!(email
        .body
        .contains(r#"data-bucket="USD-31-60" data-amount="120.00""#));
    // The next week's goes too.
    assert!(matches!(
        send("2026-12-14T08:00:00Z").await?,
        Weekly::Sent { .. }
    ));
    assert_eq!(env.moto.sent_emails()?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_weekly_report_ses_refused_is_released_and_the_retry_sends_it() -> anyhow::Result<()> {
    use dunning::aws::reports::{Weekly, WeeklyError};
    let config = dunning_e2e::config(&[("REPORT_EMAILS", "finance@example.com")]);
    // The sender is not verified yet: SES refuses.
    let env = TestEnv::with_config(config, false).await?;
    env.put_invoice(&invoice("W-1", "2026-11-02", &[("email", "w@example.com")]))
        .await?;
    let at = "2026-12-07T08:00:00Z".parse()?;
    let deps = &env.deps;
    let refused = deps
        .store
        .send_weekly(&deps.mail, &deps.config, &[], at)
        .await;
    assert!(matches!(refused, Err(WeeklyError::Send(_))), "{refused:?}");
    deps.mail
        .create_sender_identity()
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    // Lambda's retry a minute later, well inside the claim's lease: it sends.
    let retried = deps
        .store
        .send_weekly(
            &deps.mail,
            &deps.config,
            &[],
            at + chrono::Duration::minutes(1),
        )
        .await?;
    assert!(matches!(retried, Weekly::Sent { .. }), "{retried:?}");
    assert_eq!(env.moto.sent_emails()?.len(), 1);
    Ok(())
}
