//! The reminder policy's scenarios, run against the in-memory store and a
//! recording sender (`dunning::testing`, held to the DynamoDB store's
//! behaviour by `contract.rs`): pause, dispute, opt-out, minimum, partial
//! payment, late fee, combined message, the per-customer cap, escalation,
//! catch-up, steps that never go backwards, the time budget, send windows,
//! SMS length, locales. Each runs in milliseconds (the time budget in about
//! a second: it waits on the send rate).

use dunning::run::run;
use dunning::summary::SkipReason;
use dunning_e2e::{
    at, config, fixture, invoice, outcome, MemEnv, Outbox, MONDAY_2PM, PAY_BASE, TOPIC_ARN,
};

#[tokio::test]
async fn paused_disputed_and_opted_out_customers_get_nothing_on_that_channel() -> anyhow::Result<()>
{
    let env = MemEnv::start().await?;
    env.put_invoice(&invoice(
        "PAUSED",
        "2026-11-23",
        &[
            ("email", "paused@example.com"),
            ("reminders_paused_until", "2026-11-30"),
        ],
    ))
    .await?;
    env.put_invoice(&invoice(
        "PAUSE_OVER",
        "2026-11-23",
        &[
            ("email", "resumed@example.com"),
            ("reminders_paused_until", "2026-11-22"),
        ],
    ))
    .await?;
    env.put_invoice(&invoice(
        "DISPUTED",
        "2026-11-23",
        &[("email", "disputed@example.com"), ("disputed", "true")],
    ))
    .await?;
    env.put_invoice(&invoice(
        "NO_SMS",
        "2026-11-23",
        &[
            ("email", "email-only@example.com"),
            ("phone", "+15555550150"),
            ("channels", "email"),
        ],
    ))
    .await?;
    let summary = run(&env.deps, &at(MONDAY_2PM, "r1")).await?;
    assert_eq!(
        env.sent.recipients()?,
        ["email-only@example.com", "resumed@example.com"]
    );
    assert_eq!(summary.held.get("paused"), Some(&1));
    assert_eq!(summary.held.get("disputed"), Some(&1));
    assert_eq!(outcome(&summary, "due_today", "sms"), (0, 0, 1));
    assert_eq!(summary.skipped.get(&SkipReason::OptedOut), Some(&1));
    Ok(())
}

#[tokio::test]
async fn below_the_minimum_nothing_goes_and_a_late_fee_is_added_once_and_shown(
) -> anyhow::Result<()> {
    let policy = fixture("policy-fees-and-cap.toml");
    let env = MemEnv::with_config(config(&[("POLICY_FILE", &policy)]), true).await?;
    // Due today, 40.00 outstanding after a partial payment: under the 50.00 minimum.
    env.put_invoice(&invoice(
        "SMALL",
        "2026-11-23",
        &[("email", "small@example.com"), ("amount_paid", "80.00")],
    ))
    .await?;
    // Due yesterday, partly paid: the overdue step adds 2% of the 100.00 outstanding.
    env.put_invoice(&invoice(
        "LATE",
        "2026-11-22",
        &[
            ("email", "late@example.com"),
            ("phone", "+15555550160"),
            ("amount_paid", "20.00"),
        ],
    ))
    .await?;
    let first = run(&env.deps, &at(MONDAY_2PM, "r1")).await?;
    assert_eq!(first.held.get("below_minimum"), Some(&1));
    let emails = env.sent.sent_emails()?;
    assert_eq!(emails.len(), 1);
    assert!(
        emails[0].subject.contains("USD 102.00"),
        "outstanding 100.00 plus the 2.00 fee: {}",
        emails[0].subject
    );
    assert!(
        emails[0].body.contains("late fee of USD 2.00"),
        "{}",
        emails[0].body
    );
    // The fee is on the invoice once, and in the ledger.
    let history = env.history("LATE").await?;
    let inv = history.iter().find(|r| r["sk"] == "invoice").unwrap();
    assert_eq!(inv["late_fee#overdue"], "2.00");
    let record = history
        .iter()
        .find(|r| r["sk"] == "reminder#overdue#email")
        .unwrap();
    assert_eq!(
        (record["late_fee"].as_str(), record["amount"].as_str()),
        (Some("2.00"), Some("USD 102.00"))
    );
    // The SMS is held by the cap of one message a week; once the cap frees it goes,
    // stating the same total: the fee is not added twice.
    assert_eq!(first.skipped.get(&SkipReason::CustomerCap), Some(&1));
    let later = run(&env.deps, &at("2026-11-30T15:00:00Z", "r2")).await?;
    assert_eq!(outcome(&later, "overdue", "sms"), (1, 0, 0));
    let sms = env.sent.sent_sms()?;
    assert!(sms[0].message.contains("USD 102.00"), "{}", sms[0].message);
    let history = env.history("LATE").await?;
    let inv = history.iter().find(|r| r["sk"] == "invoice").unwrap();
    assert_eq!(inv["late_fee#overdue"], "2.00");
    Ok(())
}

#[tokio::test]
async fn the_cap_defers_the_excess_and_records_why() -> anyhow::Result<()> {
    let policy = fixture("policy-fees-and-cap.toml");
    let env = MemEnv::with_config(config(&[("POLICY_FILE", &policy)]), true).await?;
    env.put_invoice(&invoice(
        "CAPPED",
        "2026-11-23",
        &[("email", "c@example.com"), ("phone", "+15555550170")],
    ))
    .await?;
    let summary = run(&env.deps, &at(MONDAY_2PM, "r1")).await?;
    assert_eq!(
        summary.total_sent(),
        1,
        "one message a week for this customer"
    );
    assert_eq!(summary.skipped.get(&SkipReason::CustomerCap), Some(&1));
    let ledger = env.ledger("CAPPED").await?;
    let deferred: Vec<_> = ledger.iter().filter(|r| r["state"] == "deferred").collect();
    assert_eq!(deferred.len(), 1);
    assert_eq!(deferred[0]["defer_reason"], "customer_cap");
    // Later runs the same day change nothing: the cap still holds.
    let again = run(&env.deps, &at("2026-11-23T16:00:00Z", "r2")).await?;
    assert_eq!(again.total_sent(), 0);
    assert_eq!(env.sent.recipients()?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_customer_with_several_invoices_at_a_step_gets_one_combined_message() -> anyhow::Result<()>
{
    let env = MemEnv::start().await?;
    for id in ["A-1", "A-2", "A-3"] {
        env.put_invoice(&invoice(
            id,
            "2026-11-22",
            &[
                ("customer_id", "ACME"),
                ("email", "ap@acme.example"),
                ("phone", "+15555550180"),
            ],
        ))
        .await?;
    }
    // A fourth invoice of the same customer at an earlier step waits for a later run.
    env.put_invoice(&invoice(
        "A-4",
        "2026-11-26",
        &[("customer_id", "ACME"), ("email", "ap@acme.example")],
    ))
    .await?;
    let summary = run(&env.deps, &at(MONDAY_2PM, "r1")).await?;
    let emails = env.sent.sent_emails()?;
    assert_eq!(emails.len(), 1, "one email for the customer");
    assert_eq!(
        emails[0].subject,
        "Overdue: 3 invoices are past their due date"
    );
    // One link, to the customer's page of the three invoices.
    let body = &emails[0].body;
    let start = body.find(PAY_BASE).expect("a pay link") + PAY_BASE.len() + 1;
    let token = dunning::link::LinkToken::parse(&body[start..start + 16]).expect("a token");
    // Besides it, only the footer's unsubscribe link, on the same token.
    assert_eq!(body.matches(PAY_BASE).count(), 2, "{body}");
    assert!(body.contains(&format!("{PAY_BASE}/{}/unsubscribe", token.as_str())));
    let link = dunning::ports::Links::get_link(&env.deps.store, &token)
        .await?
        .expect("stored");
    match link.target {
        dunning::link::LinkTarget::Customer {
            customer_id,
            mut invoices,
        } => {
            invoices.sort();
            assert_eq!(
                (customer_id.as_str(), invoices),
                ("ACME", vec!["A-1".to_owned(), "A-2".into(), "A-3".into()])
            );
        }
        other => panic!("a customer link: {other:?}"),
    }
    assert!(!emails[0].body.contains("A-4"));
    let sms = env.sent.sent_sms()?;
    assert_eq!(sms.len(), 1, "one SMS for the customer");
    assert!(
        sms[0].message.starts_with("Acme Ltd: 3 invoices overdue"),
        "{}",
        sms[0].message
    );
    assert_eq!(outcome(&summary, "overdue", "email"), (3, 0, 0));
    assert_eq!(
        summary
            .skipped
            .get(&SkipReason::OneMessagePerCustomerPerRun),
        Some(&1)
    );
    // Every invoice's ledger record names the same provider message.
    for id in ["A-1", "A-2", "A-3"] {
        let ledger = env.ledger(id).await?;
        let email = ledger.iter().find(|r| r["channel"] == "email").unwrap();
        assert_eq!(email["message_id"], emails[0].id.as_str());
        assert_eq!(email["message_invoices"], 3);
    }
    // The next run sends the waiting pre-due reminder.
    let next = run(&env.deps, &at("2026-11-23T15:00:00Z", "r2")).await?;
    assert_eq!(outcome(&next, "pre_due", "email"), (1, 0, 0));
    Ok(())
}

#[tokio::test]
async fn escalation_publishes_an_event_and_stops_reminders() -> anyhow::Result<()> {
    let env = MemEnv::start().await?;
    // Due 24 October: on 23 November it reaches the +30 collections step.
    env.put_invoice(&invoice(
        "OLD",
        "2026-10-24",
        &[
            ("email", "old@example.com"),
            ("phone", "+15555550190"),
            ("amount_paid", "20.00"),
        ],
    ))
    .await?;
    let summary = run(&env.deps, &at(MONDAY_2PM, "r1")).await?;
    assert_eq!(summary.escalated, 1);
    assert!(
        env.sent.recipients()?.is_empty(),
        "escalation sends the customer nothing"
    );
    let events = env.sent.published(TOPIC_ARN)?;
    assert_eq!(events.len(), 1);
    let event: serde_json::Value = serde_json::from_str(&events[0].1)?;
    assert_eq!(event["type"], "invoice.escalated");
    assert_eq!(event["invoice_id"], "OLD");
    assert_eq!(
        (event["outstanding"].as_str(), event["currency"].as_str()),
        (Some("100.00"), Some("USD"))
    );
    assert_eq!(event["days_overdue"], 30);
    let history = env.history("OLD").await?;
    let inv = history.iter().find(|r| r["sk"] == "invoice").unwrap();
    assert_eq!(inv["in_collections"], true);
    let record = history
        .iter()
        .find(|r| r["sk"] == "reminder#collections#escalation")
        .unwrap();
    assert_eq!(record["message_id"], events[0].0.as_str());
    // The steps it skipped are on record; later runs send nothing and publish nothing more.
    assert!(history
        .iter()
        .any(|r| r["sk"] == "reminder#final_notice#email" && r["state"] == "skipped"));
    let later = run(&env.deps, &at("2026-11-24T14:00:00Z", "r2")).await?;
    assert_eq!(later.held.get("in_collections"), Some(&1));
    assert_eq!(env.sent.published(TOPIC_ARN)?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_run_outside_the_customers_window_waits_for_their_morning() -> anyhow::Result<()> {
    let env = MemEnv::start().await?;
    env.put_invoice(&invoice(
        "NYC",
        "2026-11-23",
        &[
            ("email", "ny@example.com"),
            ("phone", "+15555550200"),
            ("timezone", "America/New_York"),
        ],
    ))
    .await?;
    // 12:00 UTC is 07:00 in New York.
    let early = run(&env.deps, &at("2026-11-23T12:00:00Z", "r1")).await?;
    assert_eq!(early.total_sent(), 0);
    assert_eq!(early.skipped.get(&SkipReason::OutsideWindow), Some(&2));
    // 14:00 UTC is 09:00: both go.
    let morning = run(&env.deps, &at(MONDAY_2PM, "r2")).await?;
    assert_eq!(outcome(&morning, "due_today", "email"), (1, 0, 0));
    assert_eq!(outcome(&morning, "due_today", "sms"), (1, 0, 0));
    Ok(())
}

#[tokio::test]
async fn an_sms_too_long_for_its_wording_goes_shorter_never_over_the_limit() -> anyhow::Result<()> {
    let long_name = "Acme Very Long Trading Name ".repeat(12);
    let long_id = "INV-2026-".repeat(14);
    let env = MemEnv::with_config(
        config(&[
            ("BUSINESS_NAME", long_name.trim()),
            ("SMS_MAX_SEGMENTS", "1"),
            ("SMS_OPT_OUT", "+1=Reply STOP to opt out"),
        ]),
        true,
    )
    .await?;
    env.put_invoice(&invoice(
        &long_id,
        "2026-11-23",
        &[("email", "l@example.com"), ("phone", "+15555550210")],
    ))
    .await?;
    let summary = run(&env.deps, &at(MONDAY_2PM, "r1")).await?;
    assert_eq!(outcome(&summary, "due_today", "sms"), (1, 0, 0));
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let sms = env.sent.sent_sms()?;
    let text = &sms[0].message;
    assert_eq!(dunning::segments::measure(text).segments, 1, "{text}");
    assert!(
        text.starts_with("Acme Very Long Tra..: invoice INV-2026-INV-2.., USD 120.00 due today"),
        "{text}"
    );
    assert!(text.contains(PAY_BASE), "the link is kept: {text}");
    Ok(())
}

#[tokio::test]
async fn each_customer_is_written_to_in_their_language() -> anyhow::Result<()> {
    let env = MemEnv::start().await?;
    env.put_invoice(&invoice(
        "HANS",
        "2026-11-23",
        &[
            ("email", "hans@example.cn"),
            ("phone", "+8613800138001"),
            ("locale", "zh-CN"),
        ],
    ))
    .await?;
    env.put_invoice(&invoice(
        "HANT",
        "2026-11-23",
        &[("email", "hant@example.tw"), ("locale", "zh-Hant")],
    ))
    .await?;
    env.put_invoice(&invoice(
        "OTHER",
        "2026-11-23",
        &[("email", "fr@example.fr"), ("locale", "fr")],
    ))
    .await?;
    run(&env.deps, &at(MONDAY_2PM, "r1")).await?;
    let mut emails = env.sent.sent_emails()?;
    emails.sort_by(|a, b| a.to.cmp(&b.to));
    let subjects: Vec<&str> = emails.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "Invoice OTHER for USD 120.00 is due today",
            "发票 HANS（USD 120.00）今天到期",
            "發票 HANT（USD 120.00）今天到期"
        ],
        "an unsupported locale falls back to the business default (en)"
    );
    assert!(emails[1].body.contains("2026年11月23日"));
    let sms = env.sent.sent_sms()?;
    assert!(
        sms[0].message.contains("USD 120.00今天到期"),
        "{}",
        sms[0].message
    );
    Ok(())
}

#[tokio::test]
async fn the_opt_out_line_goes_on_sms_to_its_country_when_it_fits() -> anyhow::Result<()> {
    let env =
        MemEnv::with_config(config(&[("SMS_OPT_OUT", "+1=Reply STOP to opt out")]), true).await?;
    env.put_invoice(&invoice("US", "2026-11-23", &[("phone", "+15555550220")]))
        .await?;
    env.put_invoice(&invoice("UK", "2026-11-23", &[("phone", "+447700900220")]))
        .await?;
    run(&env.deps, &at(MONDAY_2PM, "r1")).await?;
    let sms = env.sent.sent_sms()?;
    let us = sms.iter().find(|m| m.phone == "+15555550220").unwrap();
    let uk = sms.iter().find(|m| m.phone == "+447700900220").unwrap();
    assert!(
        us.message.ends_with(" Reply STOP to opt out"),
        "{}",
        us.message
    );
    assert!(!uk.message.contains("STOP"), "{}", uk.message);
    Ok(())
}

#[tokio::test]
async fn an_invoice_stuck_in_its_claim_does_not_hold_back_the_customers_other_reminders(
) -> anyhow::Result<()> {
    let env = MemEnv::start().await?;
    env.put_invoice(&invoice(
        "STUCK",
        "2026-11-22",
        &[("customer_id", "ONE"), ("email", "one@example.com")],
    ))
    .await?;
    run(&env.deps, &at(MONDAY_2PM, "r1")).await?;
    // Its reminder was sent, but the marker that lets runs skip it was lost (say, throttling).
    env.deps.store.set("STUCK", "reminded", None);
    env.put_invoice(&invoice(
        "NEXT",
        "2026-11-26",
        &[("customer_id", "ONE"), ("email", "one@example.com")],
    ))
    .await?;
    let second = run(&env.deps, &at("2026-11-23T15:00:00Z", "r2")).await?;
    assert_eq!(
        outcome(&second, "overdue", "email"),
        (0, 0, 1),
        "the stuck one is lost to its claim"
    );
    assert_eq!(
        outcome(&second, "pre_due", "email"),
        (1, 0, 0),
        "the customer's next reminder still goes"
    );
    assert_eq!(env.sent.sent_emails()?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn steps_never_go_backwards_even_if_a_run_is_given_an_older_instant() -> anyhow::Result<()> {
    let env = MemEnv::start().await?;
    env.put_invoice(&invoice("INV", "2026-11-23", &[("email", "x@example.com")]))
        .await?;
    let overdue = run(&env.deps, &at("2026-11-24T14:00:00Z", "late")).await?;
    assert_eq!(outcome(&overdue, "overdue", "email"), (1, 0, 0));
    // A run for the day before (a replayed old event) must not send the older step now.
    let replay = run(&env.deps, &at(MONDAY_2PM, "replay")).await?;
    assert_eq!(replay.total_sent(), 0);
    assert_eq!(replay.held.get("step_already_passed"), Some(&1));
    // The skipped older steps are on record, with the reason.
    let ledger = env.ledger("INV").await?;
    let due_today = ledger
        .iter()
        .find(|r| r["sk"] == "reminder#due_today#email")
        .expect("a record for the superseded step");
    assert_eq!(due_today["state"], "skipped");
    assert_eq!(due_today["skip_reason"], "superseded by overdue");
    Ok(())
}

#[tokio::test]
async fn after_missed_runs_only_the_latest_step_goes_once_and_the_older_are_recorded_skipped(
) -> anyhow::Result<()> {
    let env = MemEnv::start().await?;
    // Due 13 days ago and never reminded: the +7 step is the latest whose day has come.
    env.put_invoice(&invoice(
        "GAP",
        "2026-11-10",
        &[("email", "gap@example.com"), ("phone", "+15555550150")],
    ))
    .await?;
    let first = run(&env.deps, &at(MONDAY_2PM, "r1")).await?;
    assert_eq!(outcome(&first, "overdue_7", "email"), (1, 0, 0));
    assert_eq!(outcome(&first, "overdue_7", "sms"), (1, 0, 0));
    assert_eq!(first.total_sent(), 2, "{first:?}");
    let ledger = env.ledger("GAP").await?;
    for sk in [
        "reminder#pre_due#email",
        "reminder#due_today#email",
        "reminder#overdue#sms",
    ] {
        let record = ledger.iter().find(|r| r["sk"] == sk).expect(sk);
        assert_eq!(
            (record["state"].as_str(), record["skip_reason"].as_str()),
            (Some("skipped"), Some("superseded by overdue_7")),
            "{sk}"
        );
    }
    // An hour later nothing more; the older steps are never sent.
    let later = run(&env.deps, &at("2026-11-23T15:00:00Z", "r2")).await?;
    assert_eq!(later.total_sent(), 0);
    assert_eq!(
        env.sent.sent_emails()?.len() + env.sent.sent_sms()?.len(),
        2
    );
    Ok(())
}

#[tokio::test]
async fn a_run_out_of_time_takes_no_new_customer_and_the_next_run_sends_the_rest(
) -> anyhow::Result<()> {
    // Five emails a second and about a second for work: the run cannot reach all twelve.
    let env = MemEnv::with_config(config(&[("EMAIL_RATE", "5")]), true).await?;
    for i in 0..12 {
        let id = format!("T-{i:02}");
        let email = format!("t{i}@example.com");
        env.put_invoice(&invoice(&id, "2026-11-23", &[("email", email.as_str())]))
            .await?;
    }
    let mut request = at(MONDAY_2PM, "r1");
    request.deadline = Some(std::time::Instant::now() + std::time::Duration::from_millis(1500));
    let first = run(&env.deps, &request).await?;
    let waiting = first.skipped(SkipReason::TimeBudget);
    assert!(first.stopped_early && waiting > 0, "{first:?}");
    assert_eq!(first.total_sent() + waiting, 12);
    // Nothing it claimed was left without an outcome.
    for i in 0..12 {
        let ledger = env.ledger(&format!("T-{i:02}")).await?;
        assert!(ledger.iter().all(|r| r["state"] != "claimed"), "{ledger:?}");
    }
    let next = run(&env.deps, &at("2026-11-23T15:00:00Z", "r2")).await?;
    assert_eq!(next.total_sent(), waiting);
    let mut to = env.sent.recipients()?;
    to.dedup();
    assert_eq!(to.len(), 12, "each customer once");
    Ok(())
}

#[tokio::test]
async fn a_dry_run_plans_without_sending_or_writing() -> anyhow::Result<()> {
    let env = MemEnv::start().await?;
    env.put_invoice(&invoice(
        "PRE",
        "2026-11-26",
        &[("email", "pre@example.com"), ("phone", "+15555550101")],
    ))
    .await?;
    env.put_invoice(&invoice(
        "LATE",
        "2026-11-22",
        &[("email", "late@example.com")],
    ))
    .await?;
    let mut req = at(MONDAY_2PM, "dry");
    req.dry_run = true;
    let summary = run(&env.deps, &req).await?;
    assert_eq!(summary.total_planned(), 3);
    assert_eq!(summary.total_sent(), 0);
    assert!(env.sent.recipients()?.is_empty());
    assert!(env.ledger("PRE").await?.is_empty() && env.ledger("LATE").await?.is_empty());
    assert_eq!(
        env.deps
            .store
            .invoice("PRE")
            .and_then(|r| r.0.get("reminder_offset").cloned()),
        None
    );
    Ok(())
}

#[tokio::test]
async fn each_step_sends_the_expected_email_and_sms_and_nothing_else() -> anyhow::Result<()> {
    // The same scenario runs on moto in run.rs.
    dunning_e2e::scenarios::each_step_sends_the_expected_email_and_sms_and_nothing_else(
        &MemEnv::start().await?,
    )
    .await
}

#[tokio::test]
async fn a_claim_whose_lease_would_end_before_the_provider_answers_is_not_sent(
) -> anyhow::Result<()> {
    let mut env = MemEnv::start().await?;
    env.put_invoice(&invoice(
        "LEASE",
        "2027-11-22",
        &[("email", "l@example.com"), ("phone", "+15555550210")],
    ))
    .await?;
    // A send that may take longer than the whole lease (900 s): re-checked
    // just before each send, so nothing goes out and the claim is given back.
    let budget = env.deps.send_budget;
    env.deps.send_budget = env.deps.config.claim_lease + std::time::Duration::from_secs(1);
    // A Monday ahead of the real clock, so that the retry's wait (from the
    // ledger's clock, the run's instant) has passed an hour later.
    let first = run(&env.deps, &at("2027-11-22T14:00:00Z", "r1")).await?;
    assert!(first.failed.is_empty(), "{:?}", first.failed);
    for channel in ["email", "sms"] {
        assert_eq!(
            first.systemic[channel].code, "lease_expiring",
            "the run is behind: {channel} stops"
        );
    }
    assert!(env.sent.sent_emails()?.is_empty() && env.sent.sent_sms()?.is_empty());
    let due: Vec<_> = env
        .ledger("LEASE")
        .await?
        .into_iter()
        .filter(|r| {
            r["sk"]
                .as_str()
                .is_some_and(|sk| sk.starts_with("reminder#due_today#"))
        })
        .collect();
    assert_eq!(due.len(), 2);
    for record in due {
        assert_eq!(record["state"], "retry", "{record}");
    }
    env.deps.send_budget = budget;
    let later = run(&env.deps, &at("2027-11-22T15:00:00Z", "r2")).await?;
    assert_eq!(later.total_sent(), 2);
    Ok(())
}

#[tokio::test]
async fn start_up_refuses_segments_too_few_for_the_shortest_sms() -> anyhow::Result<()> {
    // A 147-character link: over one GSM-7 segment with the shortest wording,
    // and over two UCS-2 ones in Chinese.
    let base = format!("https://pay.example.com/{}", "p".repeat(100));
    let err = MemEnv::with_config(
        config(&[("PAY_LINK_BASE_URL", &base), ("SMS_MAX_SEGMENTS", "1")]),
        true,
    )
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("SMS_MAX_SEGMENTS=1"), "{err}");
    // Three segments hold it in every language.
    let ok = config(&[("PAY_LINK_BASE_URL", &base), ("SMS_MAX_SEGMENTS", "3")]);
    assert!(MemEnv::with_config(ok, true).await.is_ok());
    Ok(())
}

#[tokio::test]
async fn the_customer_record_opts_out_suppresses_and_pauses() -> anyhow::Result<()> {
    use dunning::customer::{Change, Mark};
    let env = MemEnv::start().await?;
    for id in ["OPT", "SUP", "PAU", "FREE"] {
        let (email, phone) = (format!("{}@example.com", id.to_lowercase()), "+15555550177");
        env.put_invoice(&invoice(
            id,
            "2026-11-23",
            &[("email", &email), ("phone", phone)],
        ))
        .await?;
    }
    let mark = || Mark {
        source: "cli:test".into(),
        at: MONDAY_2PM.parse().unwrap(),
        reason: None,
    };
    let store = &env.deps.store;
    store.change_customer(
        "OPT",
        &Change::OptOut {
            channel: dunning::channel::Channel::Sms,
            mark: mark(),
        },
    );
    store.change_customer(
        "SUP",
        &Change::Suppress {
            address: "SUP@example.com".into(),
            mark: mark(),
        },
    );
    store.change_customer(
        "PAU",
        &Change::Pause {
            until: "2026-11-30T00:00:00Z".parse().unwrap(),
            mark: mark(),
        },
    );
    let summary = run(&env.deps, &at(MONDAY_2PM, "r1")).await?;
    assert_eq!(summary.skipped(SkipReason::OptedOut), 1);
    assert_eq!(summary.skipped(SkipReason::EmailSuppressed), 1);
    assert_eq!(
        summary.skipped(SkipReason::CustomerPaused),
        2,
        "both channels"
    );
    let mut to = env.sent.recipients()?;
    to.sort();
    // FREE gets both, OPT its email, SUP its SMS.
    assert_eq!(
        to,
        [
            "+15555550177",
            "+15555550177",
            "free@example.com",
            "opt@example.com"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_full_read_syncs_sns_opted_out_numbers_into_customer_records() -> anyhow::Result<()> {
    use dunning::ports::Store;
    let env = MemEnv::start().await?;
    // STOP (due today), STOP-LATER (due in two days: read, nothing due), FREE.
    for (id, due, phone) in [
        ("STOP", "2026-11-23", "+15555550171"),
        ("STOP-LATER", "2026-11-25", "+15555550172"),
        ("FREE", "2026-11-23", "+15555550173"),
    ] {
        let email = format!("{}@example.com", id.to_lowercase());
        env.put_invoice(&invoice(id, due, &[("email", &email), ("phone", phone)]))
            .await?;
    }
    env.sent
        .0
        .set_opted_out(&["+15555550171", "+15555550172", "+15555550999"]);
    let summary = run(&env.deps, &at(MONDAY_2PM, "r1")).await?;
    assert!(summary.full_read);
    assert_eq!(summary.sms_opt_outs_synced, 2);
    assert_eq!(outcome(&summary, "due_today", "sms"), (1, 0, 1));
    assert_eq!(outcome(&summary, "due_today", "email"), (2, 0, 0));
    let sms = env.sent.sent_sms()?;
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].phone, "+15555550173");
    let records = env
        .deps
        .store
        .customers(&["STOP".into(), "STOP-LATER".into(), "FREE".into()])
        .await?;
    for id in ["STOP", "STOP-LATER"] {
        let mark = &records[id].opt_outs["sms"];
        assert_eq!(
            (mark.source.as_str(), mark.reason.as_deref()),
            ("sns:opt-out", Some("ListPhoneNumbersOptedOut")),
            "{id}"
        );
    }
    assert!(
        !records.contains_key("FREE"),
        "no record written for a customer who takes SMS"
    );
    // The next full read finds them opted out already: nothing written again.
    let again = run(&env.deps, &at("2026-11-24T14:00:00Z", "r2")).await?;
    assert!(again.full_read);
    assert_eq!(again.sms_opt_outs_synced, 0);
    Ok(())
}
