//! Scenarios that run the same on every harness: the DynamoDB store on moto
//! ([`crate::TestEnv`]) and the in-memory store ([`crate::MemEnv`]).

use chrono::{DateTime, Utc};
use dunning::link::{LinkState, LinkTarget, LinkToken, PayLink};
use dunning::ports::Links;
use dunning::run::RunRequest;
use dunning::summary::RunSummary;

use crate::{at, invoice, outcome, MemEnv, Outbox, TestEnv, MONDAY_2PM, PAY_BASE, SENDER};

/// What a scenario does to a harness: write invoices, run, read the ledger
/// and what the providers accepted.
// Test-only: callers await these on one task, so no `Send` bound is needed.
#[allow(async_fn_in_trait)]
pub trait Harness {
    type Box: Outbox;
    fn outbox(&self) -> &Self::Box;
    async fn put_invoice(&self, attrs: &[(&str, &str)]) -> anyhow::Result<()>;
    async fn ledger(&self, invoice_id: &str) -> anyhow::Result<Vec<serde_json::Value>>;
    async fn run(&self, request: &RunRequest) -> anyhow::Result<RunSummary>;
    /// The stored pay link under `token`.
    async fn link(&self, token: &LinkToken) -> anyhow::Result<Option<PayLink>>;
}

impl Harness for TestEnv {
    type Box = crate::Moto;
    fn outbox(&self) -> &crate::Moto {
        &self.moto
    }
    async fn put_invoice(&self, attrs: &[(&str, &str)]) -> anyhow::Result<()> {
        TestEnv::put_invoice(self, attrs).await
    }
    async fn ledger(&self, invoice_id: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        TestEnv::ledger(self, invoice_id).await
    }
    async fn run(&self, request: &RunRequest) -> anyhow::Result<RunSummary> {
        Ok(dunning::run::run(&self.deps, request).await?)
    }
    async fn link(&self, token: &LinkToken) -> anyhow::Result<Option<PayLink>> {
        Ok(self.deps.store.get_link(token).await?)
    }
}

impl Harness for MemEnv {
    type Box = crate::memory::Sent;
    fn outbox(&self) -> &crate::memory::Sent {
        &self.sent
    }
    async fn put_invoice(&self, attrs: &[(&str, &str)]) -> anyhow::Result<()> {
        MemEnv::put_invoice(self, attrs).await
    }
    async fn ledger(&self, invoice_id: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        MemEnv::ledger(self, invoice_id).await
    }
    async fn run(&self, request: &RunRequest) -> anyhow::Result<RunSummary> {
        Ok(dunning::run::run(&self.deps, request).await?)
    }
    async fn link(&self, token: &LinkToken) -> anyhow::Result<Option<PayLink>> {
        Ok(self.deps.store.get_link(token).await?)
    }
}

/// One invoice for each case: every step, with and without a phone, and each
/// kind of invoice that must get nothing.
pub async fn seed_ladder(env: &impl Harness) -> anyhow::Result<()> {
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

/// A run at Monday 14:00 over [`seed_ladder`]: each due step's email and
/// SMS, with the right amounts, dates and pay links, and nothing else.
pub async fn each_step_sends_the_expected_email_and_sms_and_nothing_else(
    env: &impl Harness,
) -> anyhow::Result<()> {
    seed_ladder(env).await?;
    let summary = env.run(&at(MONDAY_2PM, "r1")).await?;

    // Emails: one per due invoice with an address, nothing to paid, void or future ones.
    let mut emails = env.outbox().sent_emails()?;
    emails.sort_by(|a, b| a.to.cmp(&b.to));
    let to: Vec<&str> = emails.iter().map(|e| e.to[0].as_str()).collect();
    assert_eq!(
        to,
        ["late@example.com", "pre@example.com", "today@example.com"]
    );
    assert!(emails.iter().all(|e| e.source == SENDER));

    let as_of: DateTime<Utc> = MONDAY_2PM.parse()?;
    // The invoice a message's link opens, read from the store as the pay page reads it.
    let opens = |text: String| async move {
        let start = text.find(PAY_BASE).expect("a pay link");
        let token = text[start + PAY_BASE.len() + 1..]
            .split(['"', ' ', '<', '\n'])
            .next()
            .unwrap()
            .to_owned();
        let token = LinkToken::parse(&token).expect("a 16-character token");
        let link = env.link(&token).await?.expect("the link is stored");
        // Open for PAY_LINK_DAYS (45) from when the message was sent.
        assert_eq!(link.state(link.created_at), LinkState::Active);
        assert_eq!(
            link.expires_at - link.created_at,
            chrono::Duration::days(45)
        );
        assert!(link.created_at >= as_of);
        anyhow::Ok(match link.target {
            LinkTarget::Invoice(id) => id,
            other => panic!("one invoice, one invoice link: {other:?}"),
        })
    };

    let late = &emails[0];
    assert!(
        late.subject
            .starts_with("Overdue: invoice LATE for JPY 54,000"),
        "{}",
        late.subject
    );
    assert!(late.body.contains("22 November 2026"));
    assert_eq!(opens(late.body.clone()).await?, "LATE");

    let pre = &emails[1];
    assert!(
        pre.subject.contains("USD 1,250.00") && pre.subject.contains("26 November 2026"),
        "{}",
        pre.subject
    );
    assert_eq!(opens(pre.body.clone()).await?, "PRE");

    let today = &emails[2];
    assert!(
        today.subject.contains("due today") && today.subject.contains("USD 120.00"),
        "{}",
        today.subject
    );
    assert!(today.body.contains("23 November 2026"));
    // An invoice with its own pay_url gets our link too: the pay page sends
    // the customer on to it (and can state a late fee the hosted page cannot).
    assert!(!today.body.contains("invoice.stripe.com"), "{}", today.body);
    assert_eq!(opens(today.body.clone()).await?, "TODAY");

    // SMS: only invoices with a phone; the partly paid one states what is still owed.
    let mut sms = env.outbox().sent_sms()?;
    sms.sort_by(|a, b| a.phone.cmp(&b.phone));
    let phones: Vec<&str> = sms.iter().map(|m| m.phone.as_str()).collect();
    assert_eq!(phones, ["+15555550101", "+15555550103", "+15555550107"]);
    assert!(sms[0].message.contains("USD 1,250.00") && sms[0].message.contains("26 Nov"));
    assert_eq!(opens(sms[0].message.clone()).await?, "PRE");
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
