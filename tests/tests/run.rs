//! End-to-end: the reminder run against a private moto server, asserting on
//! what was really written to DynamoDB and "sent" through SES and SNS.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use dunning::paylink::PayLinkSigner;
use dunning::run::{run, RunRequest};
use dunning::summary::SkipReason;
use dunning_e2e::{invoice, outcome, Outbox, TestEnv, MONDAY_2PM, PAY_BASE, SECRET, SENDER};

/// A run at [`MONDAY_2PM`]; the business zone is UTC.
fn request(run_id: &str) -> RunRequest {
    RunRequest::new(MONDAY_2PM.parse().unwrap(), run_id)
}

/// One invoice for each case: every step, with and without a phone, and each
/// kind of invoice that must get nothing.
async fn seed_ladder(env: &TestEnv) -> anyhow::Result<()> {
    let cases: [Vec<(&str, &str)>; 7] = [
        invoice(
            "PRE",
            "2026-11-26",
            &[
                ("email", "pre@example.com"),
                ("phone", "+15555550101"),
                ("amount", "1250.00"),
            ],
        ),
        invoice(
            "TODAY",
            "2026-11-23",
            &[
                ("email", "today@example.com"),
                ("pay_url", "https://invoice.stripe.com/i/acct_1/test_TODAY"),
            ],
        ),
        invoice(
            "LATE",
            "2026-11-22",
            &[
                ("email", "late@example.com"),
                ("phone", "+15555550103"),
                ("currency", "JPY"),
                ("amount", "54000"),
            ],
        ),
        invoice(
            "PAID",
            "2026-11-23",
            &[
                ("email", "paid@example.com"),
                ("phone", "+15555550104"),
                ("status", "paid"),
            ],
        ),
        invoice(
            "VOID",
            "2026-11-22",
            &[("email", "void@example.com"), ("status", "void")],
        ),
        invoice(
            "FUTURE",
            "2026-11-27",
            &[("email", "future@example.com"), ("phone", "+15555550106")],
        ),
        invoice(
            "PARTLY",
            "2026-11-22",
            &[("phone", "+15555550107"), ("amount_paid", "20.00")],
        ),
    ];
    for attrs in &cases {
        env.put_invoice(attrs).await?;
    }
    Ok(())
}

#[tokio::test]
async fn each_step_sends_the_expected_email_and_sms_and_nothing_else() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    seed_ladder(&env).await?;
    let summary = run(&env.deps, &request("r1")).await?;

    // Emails: one per due invoice with an address, nothing to paid, void or future ones.
    let mut emails = env.moto.sent_emails()?;
    emails.sort_by(|a, b| a.to.cmp(&b.to));
    let to: Vec<&str> = emails.iter().map(|e| e.to[0].as_str()).collect();
    assert_eq!(
        to,
        ["late@example.com", "pre@example.com", "today@example.com"]
    );
    assert!(emails.iter().all(|e| e.source == SENDER));

    let signer = PayLinkSigner::new(PAY_BASE, SECRET.as_bytes());
    let as_of: DateTime<Utc> = MONDAY_2PM.parse()?;
    let link_in = |text: &str| -> String {
        let start = text.find(PAY_BASE).expect("a signed pay link");
        text[start..]
            .split(['"', ' ', '<', '\n'])
            .next()
            .unwrap()
            .replace("&amp;", "&")
    };

    let late = &emails[0];
    assert!(
        late.subject
            .starts_with("Overdue: invoice LATE for JPY 54,000"),
        "{}",
        late.subject
    );
    assert!(late.body.contains("22 November 2026"));
    assert_eq!(signer.verify(&link_in(&late.body), as_of)?, "LATE");

    let pre = &emails[1];
    assert!(
        pre.subject.contains("USD 1,250.00") && pre.subject.contains("26 November 2026"),
        "{}",
        pre.subject
    );
    assert_eq!(signer.verify(&link_in(&pre.body), as_of)?, "PRE");

    let today = &emails[2];
    assert!(
        today.subject.contains("due today") && today.subject.contains("USD 120.00"),
        "{}",
        today.subject
    );
    assert!(today.body.contains("23 November 2026"));
    assert!(
        today
            .body
            .contains("https://invoice.stripe.com/i/acct_1/test_TODAY"),
        "the invoice's own pay_url is used"
    );

    // SMS: only invoices with a phone; the partly paid one states what is still owed.
    let mut sms = env.moto.sent_sms()?;
    sms.sort_by(|a, b| a.phone.cmp(&b.phone));
    let phones: Vec<&str> = sms.iter().map(|m| m.phone.as_str()).collect();
    assert_eq!(phones, ["+15555550101", "+15555550103", "+15555550107"]);
    assert!(sms[0].message.contains("USD 1,250.00") && sms[0].message.contains("26 Nov"));
    assert_eq!(signer.verify(&link_in(&sms[0].message), as_of)?, "PRE");
    assert!(sms[1].message.contains("JPY 54,000") && sms[1].message.contains("overdue"));
    assert!(sms[2].message.contains("USD 100.00"), "{}", sms[2].message);

    // The summary counts the same, and the ledger holds each provider message id.
    assert_eq!(
        summary.items_read, 5,
        "paid and void invoices are not in the open partition of the index"
    );
    assert_eq!(summary.eligible, 4);
    assert_eq!(outcome(&summary, "pre_due", "email"), (1, 0, 0));
    assert_eq!(outcome(&summary, "pre_due", "sms"), (1, 0, 0));
    assert_eq!(outcome(&summary, "due_today", "email"), (1, 0, 0));
    assert_eq!(outcome(&summary, "overdue", "email"), (1, 0, 0));
    assert_eq!(outcome(&summary, "overdue", "sms"), (2, 0, 0));
    assert_eq!(summary.held.get("not_yet"), Some(&1));
    let ledger = env.ledger("PRE").await?;
    assert_eq!(ledger.len(), 2);
    for record in &ledger {
        assert_eq!(record["state"], "sent");
        let id = record["message_id"].as_str().unwrap();
        let provider_ids: Vec<&str> = emails
            .iter()
            .map(|e| e.id.as_str())
            .chain(sms.iter().map(|m| m.id.as_str()))
            .collect();
        assert!(
            provider_ids.contains(&id),
            "ledger id {id} is a real provider id"
        );
    }
    assert!(env.ledger("PAID").await?.is_empty() && env.ledger("FUTURE").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn running_the_same_instant_twice_sends_nothing_new() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    seed_ladder(&env).await?;
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
    seed_ladder(&env).await?;
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
            ("wrong_type_amount", 1)
        ]
    );
    let mut ids: Vec<&str> = summary
        .invalid_items
        .iter()
        .filter_map(|i| i.invoice_id.as_deref())
        .collect();
    ids.sort();
    assert_eq!(ids, ["BADAMOUNT", "BADDATE", "NOCONTACT", "NUMERIC", "XYZ"]);
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
        ["c@example.com", "good@example.com"],
        "only the valid invoices got email"
    );
    assert!(env.moto.sent_sms()?.is_empty());
    Ok(())
}

#[tokio::test]
async fn dry_run_plans_without_sending_or_writing() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    seed_ladder(&env).await?;
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
async fn a_permanent_send_failure_is_recorded_once_and_not_retried() -> anyhow::Result<()> {
    // A sender that is not a verified SES identity: SES rejects every message.
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
    assert_eq!(outcome(&first, "due_today", "email"), (0, 1, 0));
    assert_eq!(
        outcome(&first, "due_today", "sms"),
        (1, 0, 0),
        "the SMS is independent of the email"
    );
    assert_eq!(first.failed.get("MessageRejected"), Some(&1));
    let ledger = env.ledger("INV").await?;
    let email = ledger.iter().find(|r| r["channel"] == "email").unwrap();
    assert_eq!(email["state"], "failed");
    assert_eq!(email["error_class"], "permanent");
    let second = run(&env.deps, &request("r2")).await?;
    assert_eq!(second.total_failed() + second.total_sent(), 0);
    assert_eq!(second.skipped.get(&SkipReason::AlreadySent), Some(&2));
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
        .create_secret("pay-link", "secret-from-secrets-manager")
        .await?;
    // The secret is read into the environment before the configuration is
    // parsed, so a parsed configuration is complete.
    let mut vars = dunning_e2e::config_env(&[("PAY_LINK_SECRET_ARN", arn.as_str())]);
    vars.remove("PAY_LINK_SECRET");
    let lookup = move |k: &str| vars.get(k).cloned();
    let env_vars = dunning::aws::secrets::resolve(&sdk, lookup.clone()).await?;
    let config = dunning::config::Config::from_lookup(|k| env_vars.get(k))?;
    assert_eq!(
        config.messages.pay_link_secret,
        "secret-from-secrets-manager"
    );
    // Without that step the ARN alone is refused, never a placeholder secret.
    let err = dunning::config::Config::from_lookup(lookup).unwrap_err();
    assert!(err.to_string().contains("PAY_LINK_SECRET_ARN"), "{err}");
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
        (k == "PAY_LINK_SECRET_ARN")
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
