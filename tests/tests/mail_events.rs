//! What SES says about reminders, end to end against moto: a run sends, the
//! SES events the configuration set would publish (built from what moto
//! recorded as sent, tags included: `dunning_e2e::ses_events`) are handed
//! to the mail-events handler in the SNS event Lambda delivers, and the next
//! run acts on what they changed.

use dunning::aws::mail_events::Listener;
use dunning::run::run;
use dunning::summary::SkipReason;
use dunning_e2e::ses_events::{eventbridge_event, simulate, simulator, sns_event};
use dunning_e2e::{at, invoice, outcome, Outbox, TestEnv, TOPIC_ARN};

/// Every event SES would publish about everything sent so far.
fn events_for_all_sent(env: &TestEnv) -> anyhow::Result<Vec<String>> {
    let when = "2026-11-23T10:00:00Z".parse()?;
    Ok(env
        .moto
        .sent_emails()?
        .iter()
        .flat_map(|m| simulate(m, when))
        .collect())
}

fn listener(env: &TestEnv) -> Listener<'_, dunning::aws::SnsPublisher> {
    Listener {
        store: &env.deps.store,
        escalations: Some((&env.deps.events, TOPIC_ARN)),
        replies: None,
    }
}

async fn deliver(
    env: &TestEnv,
    bodies: &[String],
) -> anyhow::Result<dunning::aws::mail_events::Batch> {
    Ok(listener(env).handle_sns_event(&sns_event(bodies)).await?)
}

fn record_of<'a>(ledger: &'a [serde_json::Value], sk: &str) -> &'a serde_json::Value {
    ledger
        .iter()
        .find(|r| r["sk"] == sk)
        .unwrap_or_else(|| panic!("no {sk} in {ledger:?}"))
}

#[tokio::test]
async fn a_bounce_suppresses_the_next_step_s_email_but_not_the_sms_and_a_complaint_opts_out(
) -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let bounce = simulator("bounce", "c1");
    let complaint = simulator("complaint", "c2");
    for (id, customer, email, phone) in [
        ("INV-1", "C-1", bounce.as_str(), "+15555550101"),
        ("INV-2", "C-2", complaint.as_str(), "+15555550102"),
        ("INV-3", "C-3", "ok@example.com", "+15555550103"),
    ] {
        env.put_invoice(&invoice(
            id,
            "2026-11-23",
            &[
                ("customer_id", customer),
                ("email", email),
                ("phone", phone),
            ],
        ))
        .await?;
    }
    let first = run(&env.deps, &at("2026-11-23T10:00:00Z", "r1")).await?;
    assert_eq!(outcome(&first, "due_today", "email"), (3, 0, 0));
    let sent = env.moto.sent_emails()?;
    // Each reminder carries the tags that name its claim, customer, step and invoice.
    let to_bounce = sent.iter().find(|m| m.to == [bounce.clone()]).unwrap();
    assert_eq!(to_bounce.tags["dunning-customer"], ["C_2D1"]);
    assert_eq!(to_bounce.tags["dunning-step"], ["due_5Ftoday"]);
    assert_eq!(to_bounce.tags["dunning-invoices"], ["INV_2D1"]);
    let ledger = env.ledger("INV-1").await?;
    let claim = record_of(&ledger, "reminder#due_today#email")["claim_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        to_bounce.tags["dunning-claim"],
        [dunning::mail_events::tags::escape(&claim)]
    );

    let events = events_for_all_sent(&env)?;
    assert_eq!(
        events.len(),
        3 + 4,
        "a send each, then a bounce, a delivery and a complaint, a delivery"
    );
    let batch = deliver(&env, &events).await?;
    assert_eq!((batch.events, batch.malformed, batch.missing), (7, 0, 0));
    assert_eq!((batch.changed, batch.escalated), (2, 1));

    // The ledger keeps each event (never an address); history shows them.
    let ledger = env.ledger("INV-1").await?;
    let email = record_of(&ledger, "reminder#due_today#email");
    assert_eq!(email["state"], "sent");
    assert_eq!(email["mail_send"]["message_id"], to_bounce.id);
    assert_eq!(email["mail_bounce"]["detail"], "permanent bounce: General");
    let ok = env.ledger("INV-3").await?;
    assert_eq!(
        record_of(&ok, "reminder#due_today#email")["mail_delivery"]["detail"],
        "delivered"
    );
    // The customer records say what happened, with source and instant.
    let c1 = env.deps.store.customer("C-1").await?.unwrap();
    assert_eq!(c1.suppression(&bounce).unwrap().source, "ses:bounce");
    let c2 = env.deps.store.customer("C-2").await?.unwrap();
    assert_eq!(c2.opt_outs["email"].source, "ses:complaint");
    assert!(env.deps.store.customer("C-3").await?.is_none());
    // People hear that C-1 has no working e-mail: once, though SNS delivers twice.
    let again = deliver(&env, &events).await?;
    assert_eq!((again.changed, again.escalated), (0, 0));
    let escalations: Vec<serde_json::Value> = env
        .moto
        .published(TOPIC_ARN)?
        .iter()
        .map(|(_, body)| serde_json::from_str(body).unwrap())
        .filter(|e: &serde_json::Value| e["type"] == "customer.email_bounced")
        .collect();
    assert_eq!(escalations.len(), 1);
    assert_eq!(escalations[0]["customer_id"], "C-1");
    assert_eq!(escalations[0]["invoice_ids"], serde_json::json!(["INV-1"]));
    assert!(
        !escalations[0].to_string().contains(&bounce),
        "no address in the event"
    );

    // The next step: no e-mail to the bounced address nor the complainer; SMS go.
    let emails_before = env.moto.sent_emails()?.len();
    let next = run(&env.deps, &at("2026-11-24T10:00:00Z", "r2")).await?;
    assert_eq!(outcome(&next, "overdue", "email"), (1, 0, 2));
    assert_eq!(outcome(&next, "overdue", "sms"), (3, 0, 0));
    assert_eq!(next.skipped(SkipReason::EmailBounced), 1);
    assert_eq!(next.skipped(SkipReason::OptedOut), 1);
    let new: Vec<_> = env.moto.sent_emails()?[emails_before..].to_vec();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].to, ["ok@example.com"]);
    Ok(())
}

#[tokio::test]
async fn a_suppression_list_bounce_suppresses_and_bad_records_are_skipped_and_counted(
) -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let listed = simulator("suppressionlist", "c9");
    env.put_invoice(&invoice(
        "INV-9",
        "2026-11-23",
        &[("customer_id", "C-9"), ("email", listed.as_str())],
    ))
    .await?;
    run(&env.deps, &at("2026-11-23T10:00:00Z", "r1")).await?;
    // This time as the template delivers them: one EventBridge event each.
    let mut payloads: Vec<serde_json::Value> = events_for_all_sent(&env)?
        .iter()
        .map(|body| eventbridge_event(body))
        .collect();
    payloads.push(serde_json::json!({"unexpected": true}));
    let mut totals = (0, 0);
    for payload in &payloads {
        let b = listener(&env).handle_payload(payload).await?;
        totals = (totals.0 + b.events, totals.1 + b.malformed);
    }
    assert_eq!(totals, (2, 1));
    // In an SNS delivery, a body that is not an event record is skipped and counted.
    let bodies = vec![
        "not json".to_owned(),
        r#"{"notificationType":"AmazonSnsSubscriptionSucceeded","message":"x"}"#.to_owned(),
    ];
    let batch = deliver(&env, &bodies).await?;
    assert_eq!((batch.events, batch.malformed), (0, 2));
    let c9 = env.deps.store.customer("C-9").await?.unwrap();
    let mark = c9.suppression(&listed).unwrap();
    assert_eq!(mark.reason.as_deref(), Some("OnAccountSuppressionList"));
    let next = run(&env.deps, &at("2026-11-24T10:00:00Z", "r2")).await?;
    assert_eq!(next.skipped(SkipReason::EmailBounced), 1);
    Ok(())
}

#[tokio::test]
async fn every_reminder_e_mail_has_one_click_unsubscribe_and_its_url_opts_the_customer_out(
) -> anyhow::Result<()> {
    use dunning::pay_page::{PageDeps, PageRequest};
    let env = TestEnv::start().await?;
    env.put_invoice(&invoice(
        "INV-5",
        "2026-11-23",
        &[
            ("customer_id", "C-5"),
            ("email", "c5@example.com"),
            ("phone", "+15555550105"),
        ],
    ))
    .await?;
    run(&env.deps, &at("2026-11-23T10:00:00Z", "r1")).await?;
    let sent = env.moto.sent_emails()?;
    let header = |name: &str| {
        sent[0]
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let list = header("List-Unsubscribe").expect("a List-Unsubscribe header");
    let url = list
        .strip_prefix('<')
        .and_then(|u| u.strip_suffix('>'))
        .unwrap()
        .to_owned();
    assert!(url.starts_with(dunning_e2e::PAY_BASE) && url.ends_with("/unsubscribe"));
    // The same link in the footer of both parts.
    assert!(sent[0].text.contains(&url) && sent[0].body.contains(&url));

    // The mail client POSTs to it; the pay page function opts the customer out.
    let config = dunning::config::PayPageConfig::from_lookup(|k| {
        Some(
            match k {
                "TABLE_NAME" => "invoices",
                "BUSINESS_NAME" => "Acme Ltd",
                "BUSINESS_TIMEZONE" => "UTC",
                "PAY_LINK_BASE_URL" => dunning_e2e::PAY_BASE,
                "STRIPE_SECRET_KEY" => "sk_test_unused",
                "STRIPE_PUBLISHABLE_KEY" => "pk_test_unused",
                _ => return None,
            }
            .to_owned(),
        )
    })?;
    let stripe = dunning::stripe::http::StripeClient::new("http://127.0.0.1:9", "sk_test_unused")?;
    let page = PageDeps::new(env.deps.store.clone(), stripe, config);
    let path = &url[dunning_e2e::PAY_BASE.len()..];
    let answer = page
        .handle(PageRequest {
            method: "POST",
            path,
            query: None,
            origin: None,
            accept_language: None,
            body: b"List-Unsubscribe=One-Click",
            now: "2026-11-23T11:00:00Z".parse()?,
        })
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let record = env.deps.store.customer("C-5").await?.unwrap();
    assert_eq!(record.opt_outs["email"].source, "unsubscribe");

    let next = run(&env.deps, &at("2026-11-24T10:00:00Z", "r2")).await?;
    assert_eq!(outcome(&next, "overdue", "email"), (0, 0, 1));
    assert_eq!(outcome(&next, "overdue", "sms"), (1, 0, 0));
    assert_eq!(env.moto.sent_emails()?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn an_sns_opt_out_opts_the_customer_out_of_sms_once_and_later_steps_do_not_try(
) -> anyhow::Result<()> {
    use dunning::aws::sdk::SdkSettings;
    use dunning_e2e::{sdk_config_at, FaultProxy};
    let env = TestEnv::start().await?;
    // The proxy answers a publish to a number ending 0000 as SNS answers a
    // number that replied STOP: OptedOut.
    let proxy = FaultProxy::start(
        env.moto.endpoint(),
        0.0,
        1,
        std::time::Duration::from_millis(100),
    )?;
    let deps = dunning::run::Deps::new(
        &sdk_config_at(&proxy.endpoint, SdkSettings::default()).await,
        dunning_e2e::config(&[]),
    )?;
    env.put_invoice(&invoice(
        "INV-6",
        "2026-11-23",
        &[
            ("customer_id", "C-6"),
            ("email", "c6@example.com"),
            ("phone", "+447700900000"),
        ],
    ))
    .await?;
    let first = run(&deps, &at("2026-11-23T10:00:00Z", "r1")).await?;
    assert_eq!(outcome(&first, "due_today", "sms"), (0, 1, 0));
    assert_eq!(first.failed.get("OptedOut"), Some(&1));
    let record = env.deps.store.customer("C-6").await?.unwrap();
    let mark = &record.opt_outs["sms"];
    assert_eq!(mark.source, "sns:opt-out");
    assert!(record.accepts(dunning::channel::Channel::Email));
    let ledger = env.ledger("INV-6").await?;
    assert_eq!(
        record_of(&ledger, "reminder#due_today#sms")["error_class"],
        "permanent"
    );

    let refused = proxy.stats()?["permanent"]["sns"].as_u64();
    let next = run(&deps, &at("2026-11-24T10:00:00Z", "r2")).await?;
    assert_eq!(outcome(&next, "overdue", "sms"), (0, 0, 1));
    assert_eq!(outcome(&next, "overdue", "email"), (1, 0, 0));
    assert_eq!(next.skipped(SkipReason::OptedOut), 1);
    assert_eq!(
        proxy.stats()?["permanent"]["sns"].as_u64(),
        refused,
        "the next step did not try the number"
    );
    assert_eq!(
        env.deps.store.customer("C-6").await?.unwrap().version,
        record.version
    );
    Ok(())
}

#[tokio::test]
async fn a_reply_pauses_the_customer_and_is_forwarded_and_an_out_of_office_does_not_pause(
) -> anyhow::Result<()> {
    use dunning::aws::mail_events::Replies;
    use dunning_e2e::ses_events::received;
    let config = dunning_e2e::config(&[
        ("INBOUND_DOMAIN", "in.acme.example"),
        ("REPLY_TO_EMAIL", "finance@acme.example"),
    ]);
    let env = TestEnv::with_config(config, true).await?;
    env.put_invoice(&invoice(
        "INV-7",
        "2026-11-23",
        &[
            ("customer_id", "C-7"),
            ("email", "ana7@customer.example"),
            ("phone", "+15555550107"),
        ],
    ))
    .await?;
    run(&env.deps, &at("2026-11-23T10:00:00Z", "r1")).await?;
    let sent = env.moto.sent_emails()?;
    let reply_to = sent[0].reply_to.first().cloned().expect("a Reply-To");
    assert!(
        reply_to.starts_with("reply+") && reply_to.ends_with("@in.acme.example"),
        "{reply_to}"
    );
    let forward_to = dunning::contact::EmailAddress::parse("finance@acme.example").unwrap();
    let listener = Listener {
        store: &env.deps.store,
        escalations: Some((&env.deps.events, TOPIC_ARN)),
        replies: Some(Replies {
            domain: "in.acme.example",
            pause: chrono::Duration::days(5),
            forward: Some((&env.deps.mail, &forward_to)),
        }),
    };
    let at_reply: chrono::DateTime<chrono::Utc> = "2026-11-23T15:00:00Z".parse()?;
    let subject = format!("Re: {}", sent[0].subject);
    // An out-of-office first: counted, nothing paused, nothing forwarded.
    let ooo = received(
        "ana7@customer.example",
        &reply_to,
        &subject,
        &[("Auto-Submitted", "auto-replied")],
        "I am away until Monday.",
        at_reply,
    );
    let b = listener.handle_sns_event(&sns_event(&[ooo])).await?;
    assert_eq!((b.auto_replies, b.replies, b.forwarded), (1, 0, 0));
    assert!(env.deps.store.customer("C-7").await?.is_none());
    // A person's reply: the customer is paused for 5 days and it is forwarded.
    let reply = received(
        "Ana Lima <ana7@customer.example>",
        &reply_to,
        &subject,
        &[],
        "I paid yesterday, see the attached remittance.",
        at_reply,
    );
    let b = listener
        .handle_sns_event(&sns_event(std::slice::from_ref(&reply)))
        .await?;
    assert_eq!(
        (b.replies, b.changed, b.forwarded, b.malformed),
        (1, 1, 1, 0)
    );
    let record = env.deps.store.customer("C-7").await?.unwrap();
    assert_eq!(record.replied_at, Some(at_reply));
    assert_eq!(
        record.paused_until,
        Some(at_reply + chrono::Duration::days(5))
    );
    let forwarded = env.moto.sent_raw()?;
    assert_eq!(forwarded.len(), 1);
    // (moto lists the To header's address beside the destination given.)
    assert!(forwarded[0].0.iter().all(|d| d == "finance@acme.example"));
    let raw = &forwarded[0].1;
    assert!(raw.starts_with(&format!("From: {}\r\n", dunning_e2e::SENDER)));
    assert!(raw.contains("Reply-To: Ana Lima <ana7@customer.example>\r\n"));
    assert!(raw.contains("I paid yesterday"));
    // A mail to another address at the domain is not a reply.
    let stray = received(
        "x@else.example",
        "sales@in.acme.example",
        "Hi",
        &[],
        "hello",
        at_reply,
    );
    let b = listener.handle_sns_event(&sns_event(&[stray])).await?;
    assert_eq!(
        (b.unmatched_replies, b.replies, b.forwarded),
        (1, 0, 1),
        "forwarded, nobody paused"
    );
    assert_eq!(env.moto.sent_raw()?.len(), 2);
    // Such mail that failed SES's spam scan is not relayed; our own forward
    // coming back is not forwarded again.
    let mut spam: serde_json::Value = serde_json::from_str(&received(
        "x@else.example",
        "sales@in.acme.example",
        "Win",
        &[],
        "spam",
        at_reply,
    ))?;
    spam["receipt"]["spamVerdict"]["status"] = serde_json::json!("FAIL");
    let back = received(
        dunning_e2e::SENDER,
        "x@in.acme.example",
        "Fwd",
        &[("X-Dunning-Forwarded", "yes")],
        "loop",
        at_reply,
    );
    let b = listener
        .handle_sns_event(&sns_event(&[spam.to_string(), back]))
        .await?;
    assert_eq!((b.not_clean, b.unmatched_replies, b.forwarded), (1, 2, 0));
    assert_eq!(env.moto.sent_raw()?.len(), 2);

    // The next day: nothing to the customer who replied, on any channel.
    let next = run(&env.deps, &at("2026-11-24T10:00:00Z", "r2")).await?;
    assert_eq!(outcome(&next, "overdue", "email"), (0, 0, 1));
    assert_eq!(outcome(&next, "overdue", "sms"), (0, 0, 1));
    assert_eq!(next.skipped(SkipReason::CustomerPaused), 2);
    Ok(())
}

#[tokio::test]
async fn a_full_read_takes_sns_s_opted_out_list_and_never_tries_those_numbers() -> anyhow::Result<()>
{
    let env = TestEnv::start().await?;
    // moto's ListPhoneNumbersOptedOut lists +447420500600 (among others).
    env.put_invoice(&invoice(
        "INV-8",
        "2026-11-23",
        &[
            ("customer_id", "C-8"),
            ("email", "c8@example.com"),
            ("phone", "+447420500600"),
        ],
    ))
    .await?;
    let first = run(&env.deps, &at("2026-11-23T10:00:00Z", "r1")).await?;
    assert!(first.full_read);
    assert_eq!(first.sms_opt_outs_synced, 1);
    assert_eq!(outcome(&first, "due_today", "sms"), (0, 0, 1));
    assert_eq!(outcome(&first, "due_today", "email"), (1, 0, 0));
    assert!(
        env.moto.sent_sms()?.is_empty(),
        "the number was never tried"
    );
    let record = env.deps.store.customer("C-8").await?.unwrap();
    assert_eq!(
        record.opt_outs["sms"].reason.as_deref(),
        Some("ListPhoneNumbersOptedOut")
    );
    Ok(())
}

/// Puts an invoice's e-mail record back as a run killed between SES's
/// acceptance and its own record leaves it: claimed, lease expired, no
/// message id, the invoice not marked reminded.
async fn as_if_killed_after_the_send(env: &TestEnv, invoice_id: &str) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let key = |sk: &str| {
        std::collections::HashMap::from([
            (
                "invoice_id".to_owned(),
                AttributeValue::S(invoice_id.into()),
            ),
            ("sk".to_owned(), AttributeValue::S(sk.into())),
        ])
    };
    let client = env.deps.store.client();
    let lease_ended: chrono::DateTime<chrono::Utc> = "2026-11-23T10:15:00Z".parse()?;
    client
        .update_item()
        .table_name(env.deps.store.table())
        .set_key(Some(key("reminder#due_today#email")))
        .update_expression("SET #s = :claimed, lease_expires = :lease REMOVE message_id, sent_at")
        .expression_attribute_names("#s", "state")
        .expression_attribute_values(":claimed", AttributeValue::S("claimed".into()))
        .expression_attribute_values(
            ":lease",
            AttributeValue::N(lease_ended.timestamp().to_string()),
        )
        .send()
        .await?;
    client
        .update_item()
        .table_name(env.deps.store.table())
        .set_key(Some(key("invoice")))
        .update_expression("REMOVE reminded")
        .send()
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_send_event_records_a_killed_run_s_claim_sent_and_the_takeover_does_not_send_again(
) -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    for id in ["INV-A", "INV-B"] {
        let email = format!("{}@example.com", id.to_lowercase());
        env.put_invoice(&invoice(id, "2026-11-23", &[("email", email.as_str())]))
            .await?;
    }
    run(&env.deps, &at("2026-11-23T10:00:00Z", "r1")).await?;
    let sent = env.moto.sent_emails()?;
    assert_eq!(sent.len(), 2);
    for id in ["INV-A", "INV-B"] {
        as_if_killed_after_the_send(&env, id).await?;
    }
    // SES's Send event arrives for INV-A's message only.
    let a = sent.iter().find(|m| m.to == ["inv-a@example.com"]).unwrap();
    let b = deliver(
        &env,
        &[dunning_e2e::ses_events::record(
            a,
            "Send",
            "2026-11-23T10:00:00Z".parse()?,
        )],
    )
    .await?;
    assert_eq!((b.settled, b.noted), (1, 1));
    let ledger = env.ledger("INV-A").await?;
    let rec = record_of(&ledger, "reminder#due_today#email");
    assert_eq!(
        (rec["state"].as_str(), rec["sent_by"].as_str()),
        (Some("sent"), Some("ses_event"))
    );
    assert_eq!(rec["message_id"], a.id);
    // The same event again (SNS delivers twice): nothing settles twice.
    assert_eq!(
        deliver(
            &env,
            &[dunning_e2e::ses_events::record(
                a,
                "Send",
                "2026-11-23T10:00:00Z".parse()?
            )]
        )
        .await?
        .settled,
        0
    );

    // After the lease a run takes the claims over: INV-B, whose event never
    // came, goes out a second time (the window the event closes); INV-A does not.
    let after = run(&env.deps, &at("2026-11-23T10:20:00Z", "r2")).await?;
    assert_eq!(outcome(&after, "due_today", "email"), (1, 0, 1));
    let to: Vec<Vec<String>> = env.moto.sent_emails()?[2..]
        .iter()
        .map(|m| m.to.clone())
        .collect();
    assert_eq!(to, [vec!["inv-b@example.com".to_owned()]]);
    Ok(())
}
