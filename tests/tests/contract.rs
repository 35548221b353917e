//! One contract for both stores: every test here runs against the in-memory
//! store (`dunning::testing::MemoryStore`) and the DynamoDB store on a
//! private moto server, so that the fast scenario tests (`policy.rs`) and
//! production cannot drift apart. Claims that conflict, leases that expire,
//! guarded updates that refuse a changed invoice, the cap, failure
//! transitions, and payments that wait for an in-flight mark.

use std::time::Duration;

use anyhow::Result;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, NaiveDate, Utc};
use dunning::cap::Cap;
use dunning::channel::Channel;
use dunning::claim::{Claim, ClaimOutcome, Held, Lost, Member};
use dunning::invoice::RawValue;
use dunning::ledger::{reminder_sk, ErrorClass, LedgerState, MAX_ATTEMPTS};
use dunning::link::{LinkState, LinkTarget, LinkToken, PayLink};
use dunning::money::Currency;
use dunning::payment::{Applied, Payment, PaymentError};
use dunning::ports::{DueItem, Links, Payments, SendError, Store};
use dunning::testing::MemoryStore;
use dunning_e2e::{invoice, TestEnv};

/// A value a billing system writes.
#[derive(Clone, Copy)]
enum Value<'a> {
    Text(&'a str),
    Bool(bool),
}

/// What a contract test needs of a store besides its ports: writing items
/// as a billing system does, and reading back what was written.
trait Harness {
    type S: Store + Payments + Links + dunning::ports::EditStore;
    fn store(&self) -> &Self::S;
    /// The same store (the same records) with due-index pages of `n` items.
    fn paged(&self, n: usize) -> Self::S;
    async fn put(&self, attrs: &[(&str, &str)]) -> Result<()>;
    /// Sets (`Some`) or removes (`None`) one attribute of an invoice item.
    async fn set(&self, id: &str, attr: &str, value: Option<Value<'_>>) -> Result<()>;
    async fn history(&self, id: &str) -> Result<Vec<serde_json::Value>>;
}

struct Memory(MemoryStore);

impl Harness for Memory {
    type S = MemoryStore;
    fn store(&self) -> &MemoryStore {
        &self.0
    }
    fn paged(&self, n: usize) -> MemoryStore {
        self.0.clone().with_page_size(n)
    }
    async fn put(&self, attrs: &[(&str, &str)]) -> Result<()> {
        self.0.put_text(attrs);
        Ok(())
    }
    async fn set(&self, id: &str, attr: &str, value: Option<Value<'_>>) -> Result<()> {
        let value = value.map(|v| match v {
            Value::Text(t) => RawValue::Text(t.into()),
            Value::Bool(b) => RawValue::Bool(b),
        });
        self.0.set(id, attr, value);
        Ok(())
    }
    async fn history(&self, id: &str) -> Result<Vec<serde_json::Value>> {
        Ok(self.0.history(id))
    }
}

impl Harness for TestEnv {
    type S = dunning::aws::DynamoStore;
    fn store(&self) -> &Self::S {
        &self.deps.store
    }
    fn paged(&self, n: usize) -> Self::S {
        self.deps.store.clone().with_page_limit(n as i32)
    }
    async fn put(&self, attrs: &[(&str, &str)]) -> Result<()> {
        self.put_invoice(attrs).await
    }
    async fn set(&self, id: &str, attr: &str, value: Option<Value<'_>>) -> Result<()> {
        let u = self
            .deps
            .store
            .client()
            .update_item()
            .table_name(self.deps.store.table())
            .key("invoice_id", AttributeValue::S(id.into()))
            .key("sk", AttributeValue::S("invoice".into()))
            .expression_attribute_names("#a", attr);
        let u = match value {
            None => u.update_expression("REMOVE #a"),
            Some(v) => u
                .update_expression("SET #a = :v")
                .expression_attribute_values(
                    ":v",
                    match v {
                        Value::Text(t) => AttributeValue::S(t.into()),
                        Value::Bool(b) => AttributeValue::Bool(b),
                    },
                ),
        };
        u.send().await?;
        Ok(())
    }
    async fn history(&self, id: &str) -> Result<Vec<serde_json::Value>> {
        TestEnv::history(self, id).await
    }
}

const DUE: &str = "2026-11-23";

fn due() -> NaiveDate {
    DUE.parse().unwrap()
}

/// The invoice as a run reads it: from the due index (every page), with the store's snapshot.
async fn read<H: Harness>(h: &H, id: &str) -> Result<DueItem<<H::S as Store>::Snapshot>> {
    let mut start = None;
    loop {
        let page = h.store().due_page(due(), due(), start).await?;
        if let Some(item) = page.items.into_iter().find(|i| i.raw.id_hint() == Some(id)) {
            return Ok(item);
        }
        start = page.next;
        if start.is_none() {
            anyhow::bail!("{id} is not in the due index");
        }
    }
}

/// A claim of the due-today email for `ids`, as the run makes it.
fn claim<'a, S>(
    members: &[(&'a str, &'a S)],
    token: &str,
    now: DateTime<Utc>,
    cap: Option<Cap>,
) -> Claim<'a, S> {
    Claim {
        members: members
            .iter()
            .map(|&(invoice_id, snapshot)| Member {
                invoice_id,
                snapshot,
                sk: reminder_sk("due_today", Channel::Email),
                late_fee: None,
                amount: "USD 120.00".into(),
                plan_defaulted_on: None,
            })
            .collect(),
        customer_id: "C1",
        step: "due_today",
        offset_days: 0,
        cycle: None,
        channel: "email",
        recipient: "x@example.com",
        local_date: due(),
        run_id: "t",
        token: token.into(),
        now,
        as_of: now,
        lease: Duration::from_secs(900),
        cap,
    }
}

fn lost(outcome: ClaimOutcome) -> Vec<Lost> {
    match outcome {
        ClaimOutcome::Lost(l) => l.into_iter().map(|(_, l)| l).collect(),
        other => panic!("expected the claim to be lost, got {other:?}"),
    }
}

fn claimed(outcome: &ClaimOutcome) -> bool {
    matches!(outcome, ClaimOutcome::Claimed { .. })
}

async fn seed<H: Harness>(h: &H, ids: &[&str]) -> Result<()> {
    for id in ids {
        h.put(&invoice(
            id,
            DUE,
            &[("customer_id", "C1"), ("email", "x@example.com")],
        ))
        .await?;
    }
    Ok(())
}

async fn ledger<H: Harness>(h: &H, id: &str) -> Result<Vec<serde_json::Value>> {
    Ok(h.history(id)
        .await?
        .into_iter()
        .filter(|r| r["sk"] != "invoice")
        .collect())
}

const EMAIL_SK: &str = "reminder#due_today#email";

async fn a_claim_fails_once_the_invoice_is_paid_or_changed_after_it_was_read<H: Harness>(
    h: &H,
) -> Result<()> {
    seed(h, &["INV"]).await?;
    let seen = read(h, "INV").await?;
    let now = Utc::now();
    let try_claim = |token: &'static str| {
        let c = claim(&[("INV", &seen.snapshot)], token, now, None);
        async move { h.store().claim(&c).await }
    };
    // A partial payment lands between the run's read and its claim.
    h.set("INV", "amount_paid", Some(Value::Text("10.00")))
        .await?;
    assert_eq!(lost(try_claim("a").await?), [Lost::InvoiceChanged]);
    // A dispute, a pause, an opt-out, collections: the same.
    h.set("INV", "amount_paid", None).await?;
    for (attr, value) in [
        ("disputed", Value::Bool(true)),
        ("reminders_paused_until", Value::Text("2026-12-31")),
        ("channels", Value::Text("sms")),
        ("in_collections", Value::Bool(true)),
    ] {
        h.set("INV", attr, Some(value)).await?;
        assert_eq!(
            lost(try_claim("b").await?),
            [Lost::InvoiceChanged],
            "{attr}"
        );
        h.set("INV", attr, None).await?;
    }
    // Paid in full.
    h.set("INV", "status", Some(Value::Text("paid"))).await?;
    assert_eq!(lost(try_claim("c").await?), [Lost::InvoiceChanged]);
    assert!(
        ledger(h, "INV").await?.is_empty(),
        "a failed claim writes nothing"
    );
    // Back to open and unchanged: the claim goes through.
    h.set("INV", "status", Some(Value::Text("open"))).await?;
    assert!(claimed(&try_claim("d").await?));
    Ok(())
}

async fn a_live_claim_is_exclusive_and_an_expired_one_can_be_taken_over<H: Harness>(
    h: &H,
) -> Result<()> {
    seed(h, &["INV"]).await?;
    let seen = read(h, "INV").await?;
    let held = |token| Held {
        invoice_id: "INV",
        sk: EMAIL_SK,
        token,
    };
    let t0 = Utc::now();
    let store = h.store();
    assert!(claimed(
        &store
            .claim(&claim(&[("INV", &seen.snapshot)], "first", t0, None))
            .await?
    ));
    // The first claim moved the invoice's step marker: read it again, as a new run would.
    let seen = read(h, "INV").await?;
    let at = |minutes| t0 + chrono::Duration::minutes(minutes);
    let second = store
        .claim(&claim(&[("INV", &seen.snapshot)], "second", at(14), None))
        .await?;
    assert_eq!(lost(second), [Lost::AlreadyClaimed]);
    // The first claimant crashed: after the lease another run may take over...
    assert!(claimed(
        &store
            .claim(&claim(&[("INV", &seen.snapshot)], "third", at(16), None))
            .await?
    ));
    // ...and the crashed one can no longer record over it.
    assert!(!store.record_sent(&held("first"), "m-1", at(16)).await?);
    assert!(store.record_sent(&held("third"), "m-3", at(16)).await?);
    let records = ledger(h, "INV").await?;
    assert_eq!(records[0]["message_id"], "m-3");
    assert_eq!(records[0]["state"], "sent");
    assert_eq!(records[0]["attempts"], 2);
    // A sent record is never claimed again, however late.
    let late = store
        .claim(&claim(
            &[("INV", &seen.snapshot)],
            "fourth",
            at(3 * 24 * 60),
            None,
        ))
        .await?;
    assert_eq!(lost(late), [Lost::AlreadyClaimed]);
    Ok(())
}

async fn a_combined_claim_keeps_the_invoices_it_can_and_reports_the_others<H: Harness>(
    h: &H,
) -> Result<()> {
    seed(h, &["A", "B", "C"]).await?;
    let (a, b, c) = (
        read(h, "A").await?,
        read(h, "B").await?,
        read(h, "C").await?,
    );
    let now = Utc::now();
    let store = h.store();
    // A is already claimed by another run, B is paid meanwhile.
    assert!(claimed(
        &store
            .claim(&claim(&[("A", &a.snapshot)], "other", now, None))
            .await?
    ));
    h.set("B", "status", Some(Value::Text("paid"))).await?;
    let out = store
        .claim(&claim(
            &[("A", &a.snapshot), ("B", &b.snapshot), ("C", &c.snapshot)],
            "mine",
            now,
            None,
        ))
        .await?;
    assert_eq!(
        out,
        ClaimOutcome::Claimed {
            claimed: vec![2],
            lost: vec![(0, Lost::AlreadyClaimed), (1, Lost::InvoiceChanged)]
        }
    );
    assert_eq!(ledger(h, "C").await?[0]["claim_token"], "mine");
    assert_eq!(ledger(h, "C").await?[0]["message_invoices"], 3);
    assert!(ledger(h, "B").await?.is_empty());
    Ok(())
}

async fn the_cap_counts_a_customers_messages_and_says_when_the_next_may_go<H: Harness>(
    h: &H,
) -> Result<()> {
    seed(h, &["A", "B"]).await?;
    let (a, b) = (read(h, "A").await?, read(h, "B").await?);
    let now: DateTime<Utc> = "2026-11-23T14:00:00Z".parse()?;
    let cap = Some(Cap {
        messages: 1,
        days: 7,
    });
    let store = h.store();
    assert!(claimed(
        &store
            .claim(&claim(&[("A", &a.snapshot)], "a", now, cap))
            .await?
    ));
    let next = store
        .claim(&claim(&[("B", &b.snapshot)], "b", now, cap))
        .await?;
    assert_eq!(
        next,
        ClaimOutcome::CapReached {
            until: now + chrono::Duration::days(7)
        }
    );
    // The deferral is recorded, never over a claim, and claimable once due.
    let until = now + chrono::Duration::days(7);
    store
        .record_deferred("B", EMAIL_SK, "customer_cap", until, now)
        .await?;
    store
        .record_deferred("A", EMAIL_SK, "customer_cap", until, now)
        .await?;
    assert_eq!(ledger(h, "A").await?[0]["state"], "claimed");
    assert_eq!(ledger(h, "B").await?[0]["state"], "deferred");
    let early = store
        .claim(&claim(
            &[("B", &b.snapshot)],
            "b2",
            until - chrono::Duration::hours(1),
            None,
        ))
        .await?;
    assert_eq!(lost(early), [Lost::AlreadyClaimed]);
    assert!(claimed(
        &store
            .claim(&claim(&[("B", &b.snapshot)], "b3", until, None))
            .await?
    ));
    Ok(())
}

async fn a_transient_failure_is_retried_later_until_the_attempts_run_out<H: Harness>(
    h: &H,
) -> Result<()> {
    seed(h, &["INV", "PERM"]).await?;
    let store = h.store();
    let transient = SendError {
        class: ErrorClass::Transient,
        code: "Throttling".into(),
        message: "slow down".into(),
    };
    let mut now: DateTime<Utc> = Utc::now();
    for attempt in 1..=MAX_ATTEMPTS {
        let seen = read(h, "INV").await?;
        let token = format!("t{attempt}");
        let c = claim(&[("INV", &seen.snapshot)], &token, now, None);
        assert!(claimed(&store.claim(&c).await?), "attempt {attempt}");
        let held = Held {
            invoice_id: "INV",
            sk: EMAIL_SK,
            token: &token,
        };
        let state = store.record_failure(&held, &transient, now).await?;
        store.release_invoice("INV", &token).await?;
        let record = &ledger(h, "INV").await?[0];
        assert_eq!(record["attempts"], attempt);
        if attempt < MAX_ATTEMPTS {
            assert_eq!(state, LedgerState::Retry);
            let retry_after = record["retry_after"].as_i64().expect("a retry time");
            assert!(retry_after > now.timestamp());
            // Not before its time.
            let early = claim(&[("INV", &seen.snapshot)], "early", now, None);
            assert_eq!(lost(store.claim(&early).await?), [Lost::AlreadyClaimed]);
            now = DateTime::from_timestamp(retry_after, 0).unwrap();
        } else {
            assert_eq!(state, LedgerState::Failed);
            assert_eq!(record["state"], "failed");
            assert!(record.get("retry_after").is_none_or(|v| v.is_null()));
        }
    }
    let seen = read(h, "INV").await?;
    let far = claim(
        &[("INV", &seen.snapshot)],
        "far",
        now + chrono::Duration::days(30),
        None,
    );
    assert_eq!(lost(store.claim(&far).await?), [Lost::AlreadyClaimed]);
    // A permanent failure ends at once.
    let seen = read(h, "PERM").await?;
    assert!(claimed(
        &store
            .claim(&claim(&[("PERM", &seen.snapshot)], "p", now, None))
            .await?
    ));
    let held = Held {
        invoice_id: "PERM",
        sk: EMAIL_SK,
        token: "p",
    };
    let rejected = SendError::permanent("MessageRejected", "no");
    assert_eq!(
        store.record_failure(&held, &rejected, now).await?,
        LedgerState::Failed
    );
    assert_eq!(ledger(h, "PERM").await?[0]["error_class"], "permanent");
    Ok(())
}

async fn a_skipped_step_is_recorded_once_and_never_over_another_record<H: Harness>(
    h: &H,
) -> Result<()> {
    seed(h, &["INV"]).await?;
    let store = h.store();
    let now = Utc::now();
    store
        .record_skipped(
            "INV",
            "reminder#pre_due#email",
            "superseded by due_today",
            now,
        )
        .await?;
    store
        .record_skipped("INV", "reminder#pre_due#email", "again", now)
        .await?;
    let seen = read(h, "INV").await?;
    assert!(claimed(
        &store
            .claim(&claim(&[("INV", &seen.snapshot)], "x", now, None))
            .await?
    ));
    store.record_skipped("INV", EMAIL_SK, "late", now).await?;
    let records = ledger(h, "INV").await?;
    let by_sk = |sk: &str| records.iter().find(|r| r["sk"] == sk).cloned().unwrap();
    assert_eq!(
        by_sk("reminder#pre_due#email")["skip_reason"],
        "superseded by due_today"
    );
    assert_eq!(by_sk(EMAIL_SK)["state"], "claimed");
    // Marks land on the invoice once.
    store
        .mark_reminded("INV", "due_today#email", Some(now))
        .await?;
    let later = now + chrono::Duration::hours(1);
    store
        .mark_reminded("INV", "due_today#email", Some(later))
        .await?;
    store.mark_in_collections("INV", now).await?;
    let inv = h
        .history("INV")
        .await?
        .into_iter()
        .find(|r| r["sk"] == "invoice")
        .unwrap();
    assert_eq!(inv["reminded"], serde_json::json!(["due_today#email"]));
    // The instant it went, from the first mark.
    assert_eq!(
        inv["sent_at#due_today#email"],
        now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .as_str()
    );
    assert_eq!(inv["in_collections"], true);
    Ok(())
}

fn payment(id: &str, amount: &str) -> Payment {
    Payment::once(
        id,
        id,
        "INV",
        amount.parse().unwrap(),
        Currency::parse("USD").unwrap(),
        "2026-11-23T15:00:00Z".parse().unwrap(),
        "generic",
        "payment",
    )
}

async fn an_event_id_counts_once_across_the_table_and_other_content_is_a_conflict<H: Harness>(
    h: &H,
) -> Result<()> {
    seed(h, &["INV", "OTHER"]).await?;
    let store = h.store();
    let now = Utc::now();
    let first = payment("evt-1", "20.00");
    assert!(matches!(
        store.apply_payment(&first, now).await?,
        Applied::Applied { .. }
    ));
    // The same event again: a duplicate, nothing changes.
    assert!(matches!(
        store.apply_payment(&first, now).await?,
        Applied::Duplicate { .. }
    ));
    // The same id with another amount, or for another invoice: a conflict.
    let more = payment("evt-1", "30.00");
    assert!(matches!(
        store.apply_payment(&more, now).await,
        Err(PaymentError::Conflict)
    ));
    let elsewhere = Payment {
        invoice_id: "OTHER".into(),
        ..first.clone()
    };
    assert!(matches!(
        store.apply_payment(&elsewhere, now).await,
        Err(PaymentError::Conflict)
    ));
    // Another event for the same money (its payment key): a duplicate.
    let again = Payment {
        event_id: "evt-2".into(),
        ..first.clone()
    };
    assert!(matches!(
        store.apply_payment(&again, now).await?,
        Applied::Duplicate { .. }
    ));
    let paid = |hist: Vec<serde_json::Value>| {
        hist.into_iter()
            .find(|r| r["sk"] == "invoice")
            .map(|r| r["amount_paid"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(paid(h.history("INV").await?), Some("20.00".into()));
    assert_eq!(paid(h.history("OTHER").await?), Some(String::new()));
    let claim = h.history("event#generic#evt-1").await?;
    assert_eq!(claim.len(), 1);
    assert_eq!(claim[0]["fingerprint"], first.fingerprint());
    Ok(())
}

async fn a_payment_waits_for_the_reminder_in_flight_and_counts_once<H: Harness>(
    h: &H,
) -> Result<()> {
    seed(h, &["INV"]).await?;
    let store = h.store();
    let seen = read(h, "INV").await?;
    let now = Utc::now();
    assert!(claimed(
        &store
            .claim(&claim(&[("INV", &seen.snapshot)], "tok", now, None))
            .await?
    ));
    // The payment arrives while the reminder is in flight; the sender
    // records and releases a moment later.
    let hold = Duration::from_millis(400);
    let p1 = payment("p1", "120.00");
    let (applied, ()) = tokio::join!(store.apply_payment(&p1, now), async {
        tokio::time::sleep(hold).await;
        let held = Held {
            invoice_id: "INV",
            sk: EMAIL_SK,
            token: "tok",
        };
        store.record_sent(&held, "m-1", Utc::now()).await.unwrap();
        store.release_invoice("INV", "tok").await.unwrap();
    });
    let applied = applied?;
    let Applied::Applied {
        settlement, waited, ..
    } = applied
    else {
        panic!("expected the payment to apply, got {applied:?}");
    };
    assert!(settlement.fully_paid);
    assert!(waited > 0, "the payment saw the mark and waited");
    let inv = h
        .history("INV")
        .await?
        .into_iter()
        .find(|r| r["sk"] == "invoice")
        .unwrap();
    assert_eq!(inv["status"], "paid");
    let recorded: DateTime<Utc> = ledger(h, "INV")
        .await?
        .iter()
        .find(|r| r["sk"] == "payment#p1")
        .unwrap()["recorded_at"]
        .as_str()
        .unwrap()
        .parse()?;
    let sent: DateTime<Utc> = ledger(h, "INV")
        .await?
        .iter()
        .find(|r| r["sk"] == EMAIL_SK)
        .unwrap()["sent_at"]
        .as_str()
        .unwrap()
        .parse()?;
    assert!(
        recorded >= sent,
        "payment {recorded} before the reminder was recorded {sent}"
    );
    // The same payment again changes nothing; a payment for a void invoice is refused.
    assert_eq!(
        store.apply_payment(&payment("p1", "120.00"), now).await?,
        Applied::Duplicate {
            invoice_id: "INV".into()
        }
    );
    h.set("INV", "status", Some(Value::Text("void"))).await?;
    assert!(matches!(
        store.apply_payment(&payment("p2", "1.00"), now).await,
        Err(dunning::payment::PaymentError::Void)
    ));
    Ok(())
}

async fn a_late_fee_is_applied_once_and_recorded_on_the_ledger<H: Harness>(h: &H) -> Result<()> {
    seed(h, &["FEE"]).await?;
    let store = h.store();
    let now = Utc::now();
    let with_fee = |snapshot, token: &'static str, fee: &str, at| {
        let mut c = claim(&[("FEE", snapshot)], token, at, None);
        c.members[0].late_fee = Some(fee.parse().unwrap());
        c
    };
    let seen = read(h, "FEE").await?;
    assert!(claimed(
        &store
            .claim(&with_fee(&seen.snapshot, "a", "5.00", now))
            .await?
    ));
    let transient = SendError {
        class: ErrorClass::Transient,
        code: "Throttling".into(),
        message: "slow down".into(),
    };
    let held = Held {
        invoice_id: "FEE",
        sk: EMAIL_SK,
        token: "a",
    };
    store.record_failure(&held, &transient, now).await?;
    store.release_invoice("FEE", "a").await?;
    // The retry claims again with another amount: the fee on the invoice stays the first.
    let retry_at = now + chrono::Duration::hours(1);
    let seen = read(h, "FEE").await?;
    assert!(claimed(
        &store
            .claim(&with_fee(&seen.snapshot, "b", "7.00", retry_at))
            .await?
    ));
    let history = h.history("FEE").await?;
    let inv = history.iter().find(|r| r["sk"] == "invoice").unwrap();
    assert_eq!(inv["late_fee#due_today"], "5.00");
    let record = history.iter().find(|r| r["sk"] == EMAIL_SK).unwrap();
    assert_eq!(
        record["late_fee"], "7.00",
        "the ledger records what this claim's message states"
    );
    assert_eq!(record["attempts"], 2);
    Ok(())
}

async fn the_due_index_holds_the_open_invoices_in_the_range_across_pages<H: Harness>(
    h: &H,
) -> Result<()> {
    let days = [
        "2026-11-20",
        "2026-11-21",
        "2026-11-22",
        "2026-11-23",
        "2026-11-24",
    ];
    for (i, day) in days.iter().enumerate() {
        for j in 0..2 {
            let id = format!("D{i}{j}");
            let status = if j == 1 && i % 2 == 0 { "paid" } else { "open" };
            h.put(&invoice(
                &id,
                day,
                &[("email", "x@example.com"), ("status", status)],
            ))
            .await?;
        }
    }
    let (from, to) = ("2026-11-21".parse()?, "2026-11-23".parse()?);
    let mut ids = Vec::new();
    let mut start = None;
    let mut pages = 0;
    let store = h.paged(2);
    loop {
        let page = store.due_page(from, to, start).await?;
        pages += 1;
        ids.extend(
            page.items
                .iter()
                .filter_map(|i| i.raw.id_hint().map(str::to_owned)),
        );
        start = page.next;
        if start.is_none() {
            break;
        }
    }
    ids.sort();
    assert_eq!(
        ids,
        ["D10", "D11", "D20", "D30", "D31"],
        "open, in range, each once"
    );
    assert!(pages >= 3, "five items in pages of two: {pages} pages");
    Ok(())
}

async fn the_next_at_index_holds_what_has_come_by_shard_and_writes_only_over_what_was_read<
    H: Harness,
>(
    h: &H,
) -> Result<()> {
    use dunning::next_at::{shard, SHARDS};
    let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    // Twelve invoices, so that several shards hold some; one paid, one
    // written by a billing system with no `next_at` at all.
    for i in 0..12 {
        let id = format!("N{i:02}");
        let status = if i == 11 { "paid" } else { "open" };
        let customer = if i < 3 { "C-ONE" } else { "C-OTHER" };
        h.put(&invoice(
            &id,
            DUE,
            &[
                ("email", "x@example.com"),
                ("status", status),
                ("customer_id", customer),
            ],
        ))
        .await?;
        if i == 10 {
            continue;
        }
        // N00's instant has a fraction: stamped to the second, never later.
        let at = t("2026-11-23T09:00:00Z")
            + chrono::Duration::hours(i)
            + chrono::Duration::milliseconds(if i == 0 { 750 } else { 0 });
        assert!(h.store().set_next_at(&id, Some(at), None).await?, "{id}");
    }
    // At or before: N05's 14:00 is in, N06's 15:00 not.
    let until = t("2026-11-23T14:00:00Z");
    let mut found: Vec<(String, String)> = Vec::new();
    let store = h.paged(2);
    for s in 0..SHARDS {
        let mut start = None;
        loop {
            let page = store.scheduled_page(s, until, start).await?;
            for item in &page.items {
                let id = item.raw.id_hint().unwrap_or_default().to_owned();
                assert_eq!(shard(&id), s, "{id} in its own shard");
                let at = dunning::next_at::stream::held(&item.raw)
                    .unwrap_or_default()
                    .to_owned();
                found.push((id, at));
            }
            start = page.next;
            if start.is_none() {
                break;
            }
        }
    }
    found.sort();
    let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        ["N00", "N01", "N02", "N03", "N04", "N05"],
        "09:00 to 14:00, not 15:00"
    );
    assert_eq!(found[5].1, "2026-11-23T14:00:00Z");
    assert_eq!(found[0].1, "2026-11-23T09:00:00Z", "stamped to the second");
    // A write expects what was read: a stale one changes nothing.
    assert!(!h.store().set_next_at("N00", Some(until), None).await?);
    assert!(
        !h.store()
            .set_next_at("N00", None, Some("2026-11-23T10:00:00Z"))
            .await?
    );
    assert!(
        h.store()
            .set_next_at("N00", None, Some("2026-11-23T09:00:00Z"))
            .await?,
        "removed"
    );
    assert!(
        !h.store().set_next_at("NOPE", Some(until), None).await?,
        "never creates an item"
    );
    let mut left = Vec::new();
    for s in 0..SHARDS {
        let mut start = None;
        loop {
            let page = store.scheduled_page(s, until, start).await?;
            left.extend(
                page.items
                    .iter()
                    .filter_map(|i| i.raw.id_hint().map(str::to_owned)),
            );
            start = page.next;
            if start.is_none() {
                break;
            }
        }
    }
    left.sort();
    assert_eq!(
        left,
        ["N01", "N02", "N03", "N04", "N05"],
        "N00 left the index"
    );
    // A customer's open invoices, whole.
    let mut of_one: Vec<String> = h
        .store()
        .open_invoices_of("C-ONE")
        .await?
        .iter()
        .filter_map(|r| r.id_hint().map(str::to_owned))
        .collect();
    of_one.sort();
    assert_eq!(of_one, ["N00", "N01", "N02"]);
    Ok(())
}

async fn the_run_state_moves_only_forward<H: Harness>(h: &H) -> Result<()> {
    use dunning::reads::ReadState;
    let store = h.store();
    assert_eq!(store.read_state().await?, ReadState::default());
    let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let first = ReadState {
        last_run_at: Some(t("2026-11-23T10:00:00Z")),
        last_full_read_at: Some(t("2026-11-23T10:00:00Z")),
        zones: vec![chrono_tz::Asia::Kolkata, chrono_tz::Tz::UTC],
        series_since: Some(t("2026-11-20T00:00:00Z")),
        full_read_due: Some(t("2026-11-23T16:00:00Z")),
        customer_settings: false,
        scheduled: Some("5f1e0c".into()),
        rescheduled_at: Some(t("2026-11-23T10:00:00Z")),
    };
    // Zones are a set: compared in name order.
    let read = || async {
        let mut state = store.read_state().await?;
        state.zones.sort_by_key(|z| z.name());
        anyhow::Ok(state)
    };
    store.record_read(&first).await?;
    assert_eq!(read().await?, first);
    // A band read an hour later keeps what it does not say, and clears the due full read.
    let band = ReadState {
        last_run_at: Some(t("2026-11-23T11:00:00Z")),
        full_read_due: None,
        ..ReadState::default()
    };
    store.record_read(&band).await?;
    let after = read().await?;
    assert_eq!(after.last_run_at, band.last_run_at);
    assert_eq!(
        (after.last_full_read_at, after.series_since),
        (first.last_full_read_at, first.series_since)
    );
    assert_eq!((&after.zones, after.full_read_due), (&first.zones, None));
    assert_eq!(
        (&after.scheduled, after.rescheduled_at),
        (&first.scheduled, first.rescheduled_at),
        "a run that did not reschedule keeps the last reschedule's"
    );
    // An older run finishing late changes nothing.
    store.record_read(&first).await?;
    assert_eq!(read().await?, after);
    Ok(())
}

fn link(target: LinkTarget, now: DateTime<Utc>) -> PayLink {
    PayLink {
        token: LinkToken::generate().unwrap(),
        target,
        created_at: now,
        expires_at: now + chrono::Duration::days(45),
        revoked_at: None,
    }
}

async fn a_pay_link_is_stored_once_and_read_back<H: Harness>(h: &H) -> Result<()> {
    let store = h.store();
    let now: DateTime<Utc> = "2026-11-23T14:00:00Z".parse()?;
    let one = link(LinkTarget::Invoice("INV-1".into()), now);
    assert!(store.put_link(&one).await?);
    assert_eq!(store.get_link(&one.token).await?, Some(one.clone()));
    // The record carries the table's TTL attribute: 30 days after the expiry.
    let record = h.history(&format!("link#{}", one.token.as_str())).await?;
    assert_eq!(record.len(), 1);
    assert_eq!(
        record[0]["link_ttl"],
        (one.expires_at + chrono::Duration::days(30)).timestamp()
    );
    // The same token again is refused, and the first record stays.
    let again = PayLink {
        target: LinkTarget::Customer {
            customer_id: "C1".into(),
            invoices: vec!["INV-A".into(), "INV-B".into()],
        },
        ..one.clone()
    };
    assert!(!store.put_link(&again).await?);
    assert_eq!(store.get_link(&one.token).await?, Some(one.clone()));
    let customer = link(
        LinkTarget::Customer {
            customer_id: "C1".into(),
            invoices: vec!["INV-A".into(), "INV-B".into()],
        },
        now,
    );
    assert!(store.put_link(&customer).await?);
    assert_eq!(
        store.get_link(&customer.token).await?.map(|l| l.target),
        Some(customer.target)
    );
    // An unknown token is one cheap miss.
    let unknown = LinkToken::generate().unwrap();
    assert_eq!(store.get_link(&unknown).await?, None);
    // A link record never enters the due index.
    let page = store
        .due_page("2000-01-01".parse()?, "2100-01-01".parse()?, None)
        .await?;
    assert!(page.items.is_empty());
    Ok(())
}

async fn a_revoked_link_stays_revoked_from_its_first_revocation<H: Harness>(h: &H) -> Result<()> {
    let store = h.store();
    let now: DateTime<Utc> = "2026-11-23T14:00:00Z".parse()?;
    let l = link(LinkTarget::Invoice("INV-1".into()), now);
    store.put_link(&l).await?;
    let first = now + chrono::Duration::hours(1);
    assert!(store.revoke_link(&l.token, first).await?);
    assert!(
        store
            .revoke_link(&l.token, first + chrono::Duration::days(1))
            .await?
    );
    let stored = store.get_link(&l.token).await?.expect("still stored");
    assert_eq!(stored.revoked_at, Some(first));
    assert_eq!(stored.state(first), LinkState::Revoked);
    assert_eq!(stored.state(now), LinkState::Active);
    assert!(
        !store
            .revoke_link(&LinkToken::generate().unwrap(), now)
            .await?
    );
    Ok(())
}

async fn the_pay_page_reads_invoices_and_keeps_one_intent_per_invoice<H: Harness>(
    h: &H,
) -> Result<()> {
    let store = h.store();
    h.put(&invoice("INV-A", "2026-11-23", &[])).await?;
    h.put(&invoice("INV-B", "2026-11-23", &[("status", "paid")]))
        .await?;
    // Named twice, and one that does not exist: each found once, the missing left out.
    let mut found: Vec<String> = store
        .page_invoices(&["INV-B", "INV-A", "NOPE", "INV-A"])
        .await?
        .iter()
        .filter_map(|r| r.id_hint().map(str::to_owned))
        .collect();
    found.sort();
    assert_eq!(found, ["INV-A", "INV-B"]);
    let now: DateTime<Utc> = "2026-11-23T14:00:00Z".parse()?;
    let intent = |id: &str, minor: i64| dunning::link::StoredIntent {
        intent_id: id.into(),
        key: format!("key-{id}"),
        amount_minor: minor,
        currency: "usd".into(),
        amount_paid: "250.00".parse().unwrap(),
        created_at: now,
    };
    assert_eq!(store.get_intent("INV-A").await?, None);
    assert!(
        store
            .put_intent("INV-A", &intent("pi_1", 1000), None)
            .await?
    );
    assert_eq!(store.get_intent("INV-A").await?, Some(intent("pi_1", 1000)));
    // A second first writer loses; replacing needs the current intent's id.
    assert!(
        !store
            .put_intent("INV-A", &intent("pi_2", 1000), None)
            .await?
    );
    assert!(
        !store
            .put_intent("INV-A", &intent("pi_3", 1200), Some("pi_9"))
            .await?
    );
    assert!(
        store
            .put_intent("INV-A", &intent("pi_3", 1200), Some("pi_1"))
            .await?
    );
    assert_eq!(
        store.get_intent("INV-A").await?.map(|i| i.intent_id),
        Some("pi_3".into())
    );
    // Kept apart from the invoice (its own partition), with the table's TTL.
    let record = h.history("intent#INV-A").await?;
    assert_eq!(record.len(), 1);
    assert_eq!(
        record[0]["link_ttl"],
        (now + chrono::Duration::days(dunning::link::StoredIntent::KEEP_DAYS)).timestamp()
    );
    assert!(h
        .history("INV-A")
        .await?
        .iter()
        .all(|r| !r["sk"].as_str().unwrap_or("").starts_with("intent")));
    Ok(())
}

/// Customer records: changed once per change (the first mark kept), read
/// back in batches of any size, absent ones left out.
async fn customer_records_change_once_and_are_read_in_batches<H: Harness>(h: &H) -> Result<()> {
    use dunning::customer::{Change, Mark};
    let at: DateTime<Utc> = "2026-11-23T10:00:00Z".parse()?;
    let mark = |source: &str| Mark {
        source: source.into(),
        at,
        reason: None,
    };
    let out = Change::OptOut {
        channel: Channel::Email,
        mark: mark("unsubscribe"),
    };
    assert!(h.store().change_customer_record("C-1", &out).await?);
    let again = Change::OptOut {
        channel: Channel::Email,
        mark: mark("ses:complaint"),
    };
    assert!(!h.store().change_customer_record("C-1", &again).await?);
    let replied = Change::Replied {
        at,
        pause_until: at + chrono::Duration::days(5),
    };
    assert!(h.store().change_customer_record("C-2", &replied).await?);
    // 150 ids: more than one BatchGetItem (100 keys) on DynamoDB.
    let mut ids: Vec<String> = (0..148).map(|i| format!("NONE-{i}")).collect();
    ids.extend(["C-1".to_owned(), "C-2".to_owned()]);
    let found = h.store().customers(&ids).await?;
    assert_eq!(found.len(), 2, "only the customers that have a record");
    assert_eq!(found["C-1"].opt_outs["email"].source, "unsubscribe");
    assert!(!found["C-1"].accepts(Channel::Email) && found["C-1"].accepts(Channel::Sms));
    assert_eq!(found["C-2"].replied_at, Some(at));
    assert!(found["C-2"].paused_at(at + chrono::Duration::days(4)));
    assert!(h.store().customers(&[]).await?.is_empty());
    Ok(())
}

async fn invalid_items_logged_today_are_kept_for_the_day_only<H: Harness>(h: &H) -> Result<()> {
    let store = h.store();
    let day = |d: &str| d.parse::<NaiveDate>().unwrap();
    let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let set = |k: &[&str]| {
        k.iter()
            .map(|s| s.to_string())
            .collect::<std::collections::HashSet<_>>()
    };
    assert!(store.warned(day("2026-11-23")).await?.is_empty());
    store
        .record_warned(day("2026-11-23"), &keys(&["a", "b"]))
        .await?;
    store
        .record_warned(day("2026-11-23"), &keys(&["b", "c"]))
        .await?;
    store.record_warned(day("2026-11-23"), &[]).await?;
    assert_eq!(
        store.warned(day("2026-11-23")).await?,
        set(&["a", "b", "c"])
    );
    assert!(
        store.warned(day("2026-11-24")).await?.is_empty(),
        "another day's"
    );
    // The next day starts afresh; a run for an earlier day changes nothing.
    store
        .record_warned(day("2026-11-24"), &keys(&["c"]))
        .await?;
    store
        .record_warned(day("2026-11-23"), &keys(&["z"]))
        .await?;
    assert_eq!(store.warned(day("2026-11-24")).await?, set(&["c"]));
    assert!(store.warned(day("2026-11-23")).await?.is_empty());
    Ok(())
}

async fn an_edit_waits_for_the_reminder_in_flight_and_a_claim_refuses_an_edited_invoice<
    H: Harness,
>(
    h: &H,
) -> Result<()> {
    use dunning::edit::{Edit, Request};
    use dunning::ports::{edit_invoice, Edited};
    seed(h, &["INV", "INV-2"]).await?;
    let store = h.store();
    let request = |amount: &str| Request {
        edit: Edit::Set(vec![("amount".into(), Some(amount.into()))]),
        by: "import:invoices.csv".into(),
        reason: None,
        command: Some("import"),
    };
    // A claim holds INV: the edit waits until its outcome is recorded.
    let seen = read(h, "INV").await?;
    let now = Utc::now();
    assert!(claimed(
        &store
            .claim(&claim(&[("INV", &seen.snapshot)], "tok", now, None))
            .await?
    ));
    let hold = Duration::from_millis(400);
    let to_100 = request("100.00");
    let (edited, ()) = tokio::join!(edit_invoice(store, "INV", &to_100, Utc::now), async {
        tokio::time::sleep(hold).await;
        let held = Held {
            invoice_id: "INV",
            sk: EMAIL_SK,
            token: "tok",
        };
        store.record_sent(&held, "m-1", Utc::now()).await.unwrap();
        store.release_invoice("INV", "tok").await.unwrap();
    });
    let Edited::Applied { plan, waited } = edited? else {
        panic!("the edit applies");
    };
    assert!(waited > 0, "the edit saw the reminder in flight and waited");
    let records = ledger(h, "INV").await?;
    let at = |sk: &str, attr: &str| -> DateTime<Utc> {
        records.iter().find(|r| r["sk"] == sk).unwrap()[attr]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        at(&plan.record_sk, "recorded_at") >= at(EMAIL_SK, "sent_at"),
        "the change committed after the message stating the old amount was sent"
    );
    let change = records.iter().find(|r| r["sk"] == plan.record_sk).unwrap();
    assert_eq!(change["by"], "import:invoices.csv");
    assert_eq!(change["changes"][0], "amount: 120.00 -> 100.00");
    // A run read INV-2, then the amount changed: its claim is refused.
    let stale = read(h, "INV-2").await?;
    let edited = edit_invoice(store, "INV-2", &request("90.00"), Utc::now).await?;
    assert!(matches!(edited, Edited::Applied { waited: 0, .. }));
    assert_eq!(
        lost(
            store
                .claim(&claim(
                    &[("INV-2", &stale.snapshot)],
                    "tok-2",
                    Utc::now(),
                    None
                ))
                .await?
        ),
        [Lost::InvoiceChanged]
    );
    // Read again, it is claimed with the new amount; the same edit again changes nothing.
    let fresh = read(h, "INV-2").await?;
    assert_eq!(
        dunning::invoice::Invoice::parse(&fresh.raw)?
            .amount
            .amount
            .to_string(),
        "90.00"
    );
    assert!(claimed(
        &store
            .claim(&claim(
                &[("INV-2", &fresh.snapshot)],
                "tok-3",
                Utc::now(),
                None
            ))
            .await?
    ));
    assert_eq!(
        edit_invoice(store, "INV-2", &request("90.00"), Utc::now).await?,
        Edited::Unchanged
    );
    assert!(matches!(
        edit_invoice(store, "NOPE", &request("1.00"), Utc::now).await,
        Err(dunning::edit::EditError::UnknownInvoice(_))
    ));
    Ok(())
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    // Pages of 2, so that paging is exercised.
                    super::$name(&super::Memory(dunning::testing::MemoryStore::new().with_page_size(2))).await
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    super::$name(&dunning_e2e::TestEnv::start().await?).await
                }
            )*
        }
    };
}

contract!(
    a_claim_fails_once_the_invoice_is_paid_or_changed_after_it_was_read,
    a_live_claim_is_exclusive_and_an_expired_one_can_be_taken_over,
    a_combined_claim_keeps_the_invoices_it_can_and_reports_the_others,
    the_cap_counts_a_customers_messages_and_says_when_the_next_may_go,
    a_transient_failure_is_retried_later_until_the_attempts_run_out,
    a_skipped_step_is_recorded_once_and_never_over_another_record,
    a_payment_waits_for_the_reminder_in_flight_and_counts_once,
    a_late_fee_is_applied_once_and_recorded_on_the_ledger,
    the_due_index_holds_the_open_invoices_in_the_range_across_pages,
    the_run_state_moves_only_forward,
    the_next_at_index_holds_what_has_come_by_shard_and_writes_only_over_what_was_read,
    a_pay_link_is_stored_once_and_read_back,
    a_revoked_link_stays_revoked_from_its_first_revocation,
    the_pay_page_reads_invoices_and_keeps_one_intent_per_invoice,
    an_event_id_counts_once_across_the_table_and_other_content_is_a_conflict,
    customer_records_change_once_and_are_read_in_batches,
    invalid_items_logged_today_are_kept_for_the_day_only,
    an_edit_waits_for_the_reminder_in_flight_and_a_claim_refuses_an_edited_invoice,
);
