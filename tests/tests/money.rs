//! The money property: over random interleavings of payments (generic,
//! PaymentIntents, Checkout Sessions, a Stripe invoice paid in parts with its
//! running totals), refunds (running totals and single refunds), disputes
//! (won and lost) and duplicates of every one of them, each delivered as
//! Stripe does (again after any non-2xx answer), on each API version's shape,
//! `amount_paid` ends equal to the distinct payments less the distinct
//! refunds and lost disputes, and the status matches it. Runs the real
//! webhook over the in-memory store (held to DynamoDB by `contract.rs`).

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};
use dunning::config::WebhookConfig;
use dunning::invoice::RawValue;
use dunning::testing::MemoryStore;
use dunning::webhook::signature::sign;
use dunning::webhook::{handle, Answer, Outbound};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};

const GENERIC: &str = "whsec_money_generic_0123";
const STRIPE: &str = "whsec_money_stripe_01234";
const INVOICE: &str = "INV-M";

fn config() -> WebhookConfig {
    WebhookConfig::from_lookup(|k| match k {
        "TABLE_NAME" => Some("invoices".into()),
        "WEBHOOK_SECRETS" => Some(GENERIC.into()),
        "STRIPE_WEBHOOK_SECRETS" => Some(STRIPE.into()),
        "STRIPE_LIVEMODE" => Some("false".into()),
        _ => None,
    })
    .unwrap()
}

/// When every event happened; deliveries are a minute later, within the
/// hour in which a refund that overtook its payment is delivered again.
fn created() -> DateTime<Utc> {
    "2026-11-24T10:00:00Z".parse().unwrap()
}

fn stripe_event(version: &str, id: &str, kind: &str, object: Value) -> Value {
    json!({"id": id, "object": "event", "api_version": version, "created": created().timestamp(),
        "livemode": false, "pending_webhooks": 1, "type": kind, "data": {"object": object}})
}

#[derive(Debug, Clone)]
enum Route {
    Generic,
    Intent,
    Checkout,
    /// Checkout in payment mode with invoice creation: the session, its
    /// intent (sometimes with our metadata too) and the Stripe invoice it
    /// created (with ours), three reports of the same money.
    CheckoutInvoice,
}

#[derive(Debug, Clone)]
enum After {
    Nothing,
    /// Refunds of these amounts (cents), each once, with the charge's running totals.
    Refunds(Vec<i64>),
    /// A dispute of the whole payment; lost takes its money back.
    Dispute {
        lost: bool,
    },
}

#[derive(Debug, Clone)]
struct Scenario {
    version: &'static str,
    total_cents: i64,
    payments: Vec<(Route, i64, After)>,
    /// A Stripe invoice paid in these parts, each reported once and by the
    /// running totals after it.
    stripe_invoice: Vec<i64>,
    /// The Stripe invoice's first part was paid through a subscription's
    /// Checkout Session (no PaymentIntent on the session).
    subscription_checkout: bool,
    /// Delivered two hours after the events: a refund that overtakes its
    /// payment is no longer waited for but kept as unapplied.
    late: bool,
    /// How many times each event is delivered (1-3), and the order (sort keys).
    copies: Vec<u8>,
    order: Vec<u32>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let after = |cents: i64| {
        prop_oneof![
            2 => Just(After::Nothing),
            2 => prop::collection::vec(1i64..=cents.max(1), 1..3).prop_map(move |mut r| {
                // Refunds never exceed the payment.
                let mut left = cents;
                r.retain_mut(|a| {
                    *a = (*a).min(left);
                    left -= *a;
                    *a > 0
                });
                After::Refunds(r)
            }),
            1 => any::<bool>().prop_map(|lost| After::Dispute { lost }),
        ]
    };
    let payment = (
        prop_oneof![
            Just(Route::Generic),
            Just(Route::Intent),
            Just(Route::Checkout),
            Just(Route::CheckoutInvoice)
        ],
        1i64..60_000,
    )
        .prop_flat_map(move |(route, cents)| (Just(route), Just(cents), after(cents)));
    (
        prop::sample::select(vec!["2024-06-20", "2025-03-31.basil", "2026-10-28.clover"]),
        10_000i64..150_000,
        prop::collection::vec(payment, 0..5),
        prop::collection::vec(1i64..40_000, 0..4),
        any::<bool>(),
        prop::bool::weighted(0.3),
        prop::collection::vec(1u8..=3, 64),
        prop::collection::vec(any::<u32>(), 192),
    )
        .prop_map(
            |(
                version,
                total_cents,
                payments,
                stripe_invoice,
                subscription_checkout,
                late,
                copies,
                order,
            )| {
                Scenario {
                    version,
                    total_cents,
                    payments,
                    stripe_invoice,
                    subscription_checkout,
                    late,
                    copies,
                    order,
                }
            },
        )
}

/// A delivery: the header to sign it with, and the body.
type Delivery = (&'static str, Vec<u8>);

/// Every event of the scenario, and the amount_paid (cents) it must end at.
fn events(s: &Scenario) -> (Vec<Delivery>, i64) {
    let v = s.version;
    let old = v == "2024-06-20";
    let mut out: Vec<Delivery> = Vec::new();
    let mut expect = 0i64;
    let mut stripe = |id: String, kind: &str, object: Value| {
        out.push((
            "stripe-signature",
            stripe_event(v, &id, kind, object).to_string().into_bytes(),
        ))
    };
    let mut generic_bodies = Vec::new();
    for (i, (route, cents, after)) in s.payments.iter().enumerate() {
        let pi = format!("pi_m{i}");
        let ch = format!("ch_m{i}");
        expect += cents;
        match route {
            Route::Generic => generic_bodies.push(
                json!({"id": format!("pay_m{i}"), "invoice_id": INVOICE, "amount": Decimal::new(*cents, 2).to_string(),
                    "currency": "USD", "paid_at": "2026-11-24T10:00:00Z"})
                .to_string()
                .into_bytes(),
            ),
            Route::Intent => stripe(
                format!("evt_pi_{i}"),
                "payment_intent.succeeded",
                json!({"id": pi, "object": "payment_intent", "amount": cents, "amount_received": cents,
                    "currency": "usd", "latest_charge": ch, "metadata": {"invoice_id": INVOICE}, "status": "succeeded"}),
            ),
            Route::Checkout | Route::CheckoutInvoice => {
                let with_invoice = matches!(route, Route::CheckoutInvoice);
                let created_invoice = format!("in_c{i}");
                let session = json!({"id": format!("cs_m{i}"), "object": "checkout.session", "amount_total": cents,
                    "client_reference_id": INVOICE, "currency": "usd", "mode": "payment",
                    "invoice": if with_invoice { Value::from(created_invoice.clone()) } else { Value::Null },
                    "payment_intent": pi, "payment_status": "paid", "status": "complete"});
                if with_invoice {
                    stripe(
                        format!("evt_csinv_{i}"),
                        "invoice.paid",
                        json!({"id": created_invoice, "object": "invoice", "amount_paid": cents, "currency": "usd",
                            "metadata": {"invoice_id": INVOICE}, "status": "paid"}),
                    );
                }
                stripe(format!("evt_cs_{i}"), "checkout.session.completed", session);
                // Its intent: with no metadata of ours, as Checkout creates it,
                // or (odd amounts) with ours, set through payment_intent_data:
                // the same money under the same key either way.
                let metadata = if cents % 2 == 1 { json!({"invoice_id": INVOICE}) } else { json!({}) };
                stripe(
                    format!("evt_cspi_{i}"),
                    "payment_intent.succeeded",
                    json!({"id": pi, "object": "payment_intent", "amount": cents, "amount_received": cents,
                        "currency": "usd", "latest_charge": ch, "metadata": metadata, "status": "succeeded"}),
                );
            }
        }
        if matches!(route, Route::Generic) {
            continue; // refunds and disputes are Stripe's
        }
        match after {
            After::Nothing => {}
            After::Refunds(refunds) => {
                let mut refunded = 0;
                for (j, r) in refunds.iter().enumerate() {
                    refunded += r;
                    expect -= r;
                    stripe(
                        format!("evt_re_{i}_{j}"),
                        "refund.updated",
                        json!({"id": format!("re_m{i}_{j}"), "object": "refund", "amount": r, "charge": ch,
                            "currency": "usd", "payment_intent": pi, "status": "succeeded"}),
                    );
                    stripe(
                        format!("evt_chr_{i}_{j}"),
                        "charge.refunded",
                        json!({"id": ch, "object": "charge", "amount": cents, "amount_refunded": refunded,
                            "currency": "usd", "payment_intent": pi, "refunded": refunded == *cents, "status": "succeeded"}),
                    );
                }
            }
            After::Dispute { lost } => {
                let dispute = |status: &str| {
                    json!({"id": format!("dp_m{i}"), "object": "dispute", "amount": cents, "charge": ch,
                        "currency": "usd", "payment_intent": pi, "status": status})
                };
                stripe(
                    format!("evt_dpo_{i}"),
                    "charge.dispute.created",
                    dispute("needs_response"),
                );
                // Closed only once opened: Stripe cannot close what it has not opened.
                stripe(
                    format!("evt_dpc_{i}"),
                    "charge.dispute.closed",
                    dispute(if *lost { "lost" } else { "won" }),
                );
                if *lost {
                    expect -= cents;
                }
            }
        }
    }
    // A Stripe invoice paid in parts: each part, and the running total after it.
    let stripe_invoice = "in_m1";
    if s.subscription_checkout && !s.stripe_invoice.is_empty() {
        // The subscription's session: the first part, as the invoice's total then.
        stripe(
            "evt_sub_cs".into(),
            "checkout.session.completed",
            json!({"id": "cs_sub", "object": "checkout.session", "amount_total": s.stripe_invoice[0],
                "client_reference_id": INVOICE, "currency": "usd", "invoice": stripe_invoice, "mode": "subscription",
                "payment_intent": null, "payment_status": "paid", "status": "complete"}),
        );
    }
    let mut running = 0;
    for (j, cents) in s.stripe_invoice.iter().enumerate() {
        running += cents;
        expect += cents;
        let pi = format!("pi_inv{j}");
        if old {
            stripe(
                format!("evt_invpi_{j}"),
                "payment_intent.succeeded",
                json!({"id": pi, "object": "payment_intent", "amount": cents, "amount_received": cents,
                    "currency": "usd", "invoice": stripe_invoice, "metadata": {"invoice_id": INVOICE}, "status": "succeeded"}),
            );
        } else {
            stripe(
                format!("evt_inpay_{j}"),
                "invoice_payment.paid",
                json!({"id": format!("inpay_m{j}"), "object": "invoice_payment", "amount_paid": cents,
                    "amount_requested": cents, "currency": "usd", "invoice": stripe_invoice,
                    "payment": {"type": "payment_intent", "payment_intent": pi}, "status": "paid",
                    "status_transitions": {"paid_at": created().timestamp()}}),
            );
        }
        let last = j + 1 == s.stripe_invoice.len();
        stripe(
            format!("evt_inv_{j}"),
            if last {
                "invoice.paid"
            } else {
                "invoice.payment_succeeded"
            },
            json!({"id": stripe_invoice, "object": "invoice", "amount_paid": running, "currency": "usd",
                "metadata": {"invoice_id": INVOICE}, "status": if last { "paid" } else { "open" }}),
        );
    }
    out.extend(generic_bodies.into_iter().map(|b| ("dunning-signature", b)));
    (out, expect)
}

/// Delivers every copy in the scenario's order; a non-2xx answer is
/// delivered again later, as Stripe does. Returns the deliveries made and
/// those answered `payment_not_seen` (a refund or dispute that overtook its
/// payment).
/// One delivery to the webhook at `now`, signed with the secret its header takes.
async fn deliver(store: &MemoryStore, (header, body): &Delivery, now: DateTime<Utc>) -> Answer {
    let secret = if *header == "stripe-signature" {
        STRIPE
    } else {
        GENERIC
    };
    let signature = sign(secret.as_bytes(), now.timestamp(), body);
    let out = Outbound {
        mailer: None::<&dunning::aws::SesMailer>,
        publisher: None::<&dunning::aws::SnsPublisher>,
    };
    handle(
        store,
        &out,
        &config(),
        "POST",
        |h| (h == *header).then(|| signature.clone()),
        body,
        now,
    )
    .await
}

async fn deliver_all(store: &MemoryStore, s: &Scenario, events: &[Delivery]) -> (usize, usize) {
    let mut copies: Vec<(u32, usize)> = Vec::new();
    for (i, _) in events.iter().enumerate() {
        for c in 0..s.copies[i % s.copies.len()] {
            let key = s.order[(i * 3 + c as usize) % s.order.len()];
            copies.push((key, i));
        }
    }
    copies.sort();
    let mut queue: VecDeque<usize> = copies.into_iter().map(|(_, i)| i).collect();
    let now = created()
        + if s.late {
            Duration::hours(2)
        } else {
            Duration::minutes(1)
        };
    let (mut delivered, mut overtook, mut since_progress) = (0, 0, 0);
    while let Some(i) = queue.pop_front() {
        let text = String::from_utf8_lossy(&events[i].1);
        let answer = deliver(store, &events[i], now).await;
        delivered += 1;
        if answer.status == 200 {
            since_progress = 0;
            continue;
        }
        assert_eq!(
            (answer.status, answer.body["error"].as_str()),
            (409, Some("payment_not_seen")),
            "{text}: {}",
            answer.body
        );
        overtook += 1;
        since_progress += 1;
        assert!(
            since_progress < 10 * events.len() + 100,
            "no progress: {text}"
        );
        queue.push_back(i);
    }
    (delivered, overtook)
}

/// A store holding one open USD invoice of `total`.
fn open_invoice(total: &str) -> MemoryStore {
    let store = MemoryStore::new();
    store.put(&[
        ("invoice_id", RawValue::Text(INVOICE.into())),
        ("sk", RawValue::Text("invoice".into())),
        ("customer_id", RawValue::Text("C".into())),
        ("customer_name", RawValue::Text("Ana".into())),
        ("amount", RawValue::Text(total.into())),
        ("currency", RawValue::Text("USD".into())),
        ("due_date", RawValue::Text("2026-11-20".into())),
        ("status", RawValue::Text("open".into())),
    ]);
    store
}

fn run_scenario(s: &Scenario) -> Result<(usize, usize), TestCaseError> {
    let store = open_invoice(&Decimal::new(s.total_cents, 2).to_string());
    let (events, expect) = events(s);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let counts = rt.block_on(deliver_all(&store, s, &events));
    let inv = store.invoice(INVOICE).unwrap();
    let text = |name: &str| match inv.0.get(name) {
        Some(RawValue::Text(t)) => t.clone(),
        _ => String::new(),
    };
    let paid: Decimal = text("amount_paid").parse().unwrap_or_default();
    // Delivered late, a refund or lost dispute that overtook its payment is
    // kept aside (unknown_payment) rather than waited for: nothing is lost.
    let kept_back: Decimal = store
        .history(dunning::payment::UNAPPLIED_PARTITION)
        .iter()
        .filter(|r| r["reason"] == "unknown_payment")
        .filter_map(|r| r["amount"].as_str()?.parse::<Decimal>().ok())
        .sum();
    if !s.late {
        prop_assert_eq!(kept_back, Decimal::ZERO);
    }
    prop_assert_eq!(
        paid - kept_back,
        Decimal::new(expect, 2),
        "{:?}",
        store.history(INVOICE)
    );
    let want = if paid >= Decimal::new(s.total_cents, 2) {
        "paid"
    } else {
        "open"
    };
    prop_assert_eq!(text("status"), want);
    // Late, a closing that overtook its payment names no invoice we can
    // find and is ignored; an opening delivered again after the payment then
    // marks the invoice for good (reminders stop: the safe side, and people
    // have the dispute's event). On time, every mark is lifted.
    prop_assert!(
        !inv.0.contains_key("disputed") || s.late,
        "every dispute was closed, whatever the order of its events"
    );
    Ok(counts)
}

#[test]
fn amount_paid_is_distinct_payments_less_distinct_refunds_in_any_interleaving() {
    // scripts/reliability.sh runs the heavy size (RELIABILITY=heavy).
    let heavy = std::env::var("RELIABILITY").as_deref() == Ok("heavy");
    let cases = if heavy { 2000 } else { 200 };
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..Default::default()
    });
    let stats = std::cell::Cell::new((0usize, 0usize));
    runner
        .run(&scenario(), |s| {
            let (d, o) = run_scenario(&s)?;
            let (td, to) = stats.get();
            stats.set((td + d, to + o));
            Ok(())
        })
        .unwrap();
    let (delivered, overtook) = stats.get();
    // The interleavings did put refunds and disputes ahead of their payments.
    assert!(
        overtook > 0,
        "no refund ever overtook its payment in {cases} cases"
    );
    let figures = json!({"test": "money_interleavings", "mode": if heavy { "heavy" } else { "quick" },
        "figures": {"scenarios": cases, "deliveries": delivered, "overtook_their_payment_and_were_delivered_again": overtook}});
    println!("RELIABILITY {figures}");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("money_interleavings.json"), figures.to_string());
}

/// An event that counts nothing new still leaves its references: a
/// subscription's session counts a Stripe invoice first, then `invoice.paid`
/// (before basil naming the intent) adds nothing, and a refund naming only
/// that intent still finds the invoice.
#[test]
fn an_event_already_counted_still_leaves_its_references() {
    let store = open_invoice("100.00");
    let v = "2024-06-20";
    let events = [
        stripe_event(
            v,
            "evt_s1",
            "checkout.session.completed",
            json!({"id": "cs_s", "object": "checkout.session",
            "amount_total": 10_000, "client_reference_id": INVOICE, "currency": "usd", "invoice": "in_s",
            "mode": "subscription", "payment_intent": null, "payment_status": "paid", "status": "complete"}),
        ),
        stripe_event(
            v,
            "evt_s2",
            "invoice.paid",
            json!({"id": "in_s", "object": "invoice", "amount_paid": 10_000,
            "charge": "ch_s", "currency": "usd", "metadata": {"invoice_id": INVOICE}, "payment_intent": "pi_s", "status": "paid"}),
        ),
        stripe_event(
            v,
            "evt_s3",
            "refund.updated",
            json!({"id": "re_s", "object": "refund", "amount": 5_000,
            "charge": "ch_s", "currency": "usd", "payment_intent": "pi_s", "status": "succeeded"}),
        ),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let now = created() + Duration::minutes(1);
    let results: Vec<String> = events
        .iter()
        .map(|e| {
            let answer = rt.block_on(deliver(
                &store,
                &("stripe-signature", e.to_string().into_bytes()),
                now,
            ));
            answer.body["result"].as_str().unwrap_or("").to_owned()
        })
        .collect();
    assert_eq!(results, ["applied", "covered", "refunded"]);
    let inv = store.invoice(INVOICE).unwrap();
    assert_eq!(
        inv.0.get("amount_paid"),
        Some(&RawValue::Text("50.00".into()))
    );
    assert_eq!(inv.0.get("status"), Some(&RawValue::Text("open".into())));
}
