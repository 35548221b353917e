//! Pay page benchmark (docs/benchmarks.md): the server time of a warm GET,
//! median and p99 over 1,000 requests, for
//! - the page against DynamoDB on moto (one `GetItem` for the link and one
//!   `BatchGetItem` for the invoices, then the view and the render), and
//! - the same page over the in-memory store: our code's share alone;
//!
//! and the weight of the HTML (its CSS inline) for an invoice page, a
//! customer page of three invoices and the neutral page, before Stripe.js.
//! Usage: `bench-pay-page [requests]` (default 1000); prints one JSON object.
//! Starts its own moto server on a free port and stops it at the end.

use std::time::{Duration, Instant};

use chrono::Utc;
use dunning::aws::DynamoStore;
use dunning::config::PayPageConfig;
use dunning::invoice::RawValue;
use dunning::link::{LinkTarget, PayLink};
use dunning::pay_page::{PageDeps, PageRequest};
use dunning::ports::Links;
use dunning::stripe::http::StripeClient;
use dunning::testing::MemoryStore;
use dunning_e2e::Moto;

const INVOICE: &[(&str, &str)] = &[
    ("sk", "invoice"),
    ("customer_id", "C-1"),
    ("customer_name", "Ana Lima"),
    ("email", "ana@example.com"),
    ("amount", "1250.00"),
    ("currency", "USD"),
    ("due_date", "2026-11-20"),
    ("status", "open"),
    ("late_fee#overdue", "25.00"),
];

fn config() -> PayPageConfig {
    PayPageConfig::from_lookup(|k| {
        Some(
            match k {
                "TABLE_NAME" => "invoices",
                "BUSINESS_NAME" => "Acme Ltd",
                "BUSINESS_TIMEZONE" => "Europe/London",
                "PAY_LINK_BASE_URL" => "https://pay.acme.example",
                "STRIPE_SECRET_KEY" => "sk_test_bench",
                "STRIPE_PUBLISHABLE_KEY" => "pk_test_bench",
                _ => return None,
            }
            .to_owned(),
        )
    })
    .expect("bench configuration")
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn time_gets<S: Links>(deps: &PageDeps<S>, path: &str, n: usize) -> serde_json::Value {
    let get = || PageRequest {
        method: "GET",
        path,
        query: None,
        origin: None,
        accept_language: None,
        body: b"",
        now: Utc::now(),
    };
    // Warm: templates, connections.
    for _ in 0..20 {
        assert_eq!(deps.handle(get()).await.status, 200);
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let answer = deps.handle(get()).await;
        times.push(start.elapsed());
        assert_eq!(answer.status, 200);
    }
    times.sort();
    serde_json::json!({
        "requests": n,
        "median_ms": percentile(&times, 0.5),
        "p99_ms": percentile(&times, 0.99),
        "max_ms": percentile(&times, 1.0),
    })
}

async fn seed<S: Links>(store: &S, put: impl Fn(&str)) -> (PayLink, PayLink) {
    for id in ["INV-1", "INV-2", "INV-3"] {
        put(id);
    }
    let one = PayLink::create(LinkTarget::Invoice("INV-1".into()), Utc::now(), 45).unwrap();
    let many = PayLink::create(
        LinkTarget::Customer {
            customer_id: "C-1".into(),
            invoices: vec!["INV-1".into(), "INV-2".into(), "INV-3".into()],
        },
        Utc::now(),
        45,
    )
    .unwrap();
    store.put_link(&one).await.unwrap();
    store.put_link(&many).await.unwrap();
    (one, many)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1000);
    let stripe = StripeClient::new("https://api.stripe.com", "sk_test_bench")?;

    let memory = MemoryStore::new();
    let (one, many) = seed(&memory, |id| {
        let mut attrs: Vec<(&str, RawValue)> = INVOICE
            .iter()
            .map(|(k, v)| (*k, RawValue::Text((*v).into())))
            .collect();
        attrs.push(("invoice_id", RawValue::Text(id.into())));
        memory.put(&attrs);
    })
    .await;
    let deps = PageDeps::new(memory.clone(), stripe.clone(), config());
    let path = |l: &PayLink| format!("/{}", l.token.as_str());
    let in_memory = time_gets(&deps, &path(&one), n).await;
    let weigh = |p: String| {
        let deps = &deps;
        async move {
            deps.handle(PageRequest {
                method: "GET",
                path: &p,
                query: None,
                origin: None,
                accept_language: None,
                body: b"",
                now: Utc::now(),
            })
            .await
            .body
            .len()
        }
    };
    let weights = serde_json::json!({
        "invoice_page_bytes": weigh(path(&one)).await,
        "customer_page_3_invoices_bytes": weigh(path(&many)).await,
        "not_valid_page_bytes": weigh("/AAAAAAAAAAAAAAAA".into()).await,
    });

    let moto = Moto::start()?;
    let sdk = moto.sdk_config().await;
    let store = DynamoStore::new(&sdk, "invoices");
    store.create_table().await?;
    let client = store.client().clone();
    let (one, _) = {
        for id in ["INV-1", "INV-2", "INV-3"] {
            let mut put = client.put_item().table_name("invoices").item(
                "invoice_id",
                aws_sdk_dynamodb::types::AttributeValue::S(id.into()),
            );
            for (k, v) in INVOICE {
                put = put.item(*k, aws_sdk_dynamodb::types::AttributeValue::S((*v).into()));
            }
            put.send().await?;
        }
        seed(&store, |_| {}).await
    };
    let deps = PageDeps::new(store, stripe, config());
    let on_moto = time_gets(&deps, &path(&one), n).await;
    println!(
        "{}",
        serde_json::json!({ "get_in_memory": in_memory, "get_on_moto": on_moto, "weights": weights })
    );
    Ok(())
}
