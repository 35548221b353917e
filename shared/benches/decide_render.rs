//! CPU cost of our own code per invoice, in process and on one core: parse
//! (validate) the stored item, decide its step, sign its pay link, and render
//! the email (subject, HTML, text) and the SMS. What a run does between
//! reading an item and handing a message to the provider.
//!
//! `cargo bench -p dunning --bench decide_render` (docs/benchmarks.md).

use chrono::{DateTime, Days, NaiveDate, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dunning::channel::Channel;
use dunning::decide::decide;
use dunning::invoice::{Invoice, RawInvoice, RawValue};
use dunning::link::LinkToken;
use dunning::policy::Policy;
use dunning::render::{InvoiceLine, Locale, ReminderContext, Renderer};

const N: usize = 1_000;

fn items(as_of: NaiveDate) -> Vec<RawInvoice> {
    let offsets = [-3i64, 0, 1, 7, 14];
    let locales = ["en", "zh-Hans", "zh-Hant"];
    (0..N)
        .map(|i| {
            let offset = offsets[i % offsets.len()];
            let due = if offset >= 0 {
                as_of - Days::new(offset as u64)
            } else {
                as_of + Days::new((-offset) as u64)
            };
            let mut raw = RawInvoice::default();
            for (k, v) in [
                ("invoice_id", format!("INV-{i:06}")),
                ("customer_id", format!("C-{i:06}")),
                ("customer_name", "Ana Lima".to_owned()),
                ("email", format!("c{i}@example.com")),
                ("phone", format!("+1555555{:04}", i % 10_000)),
                ("amount", format!("{}.{:02}", 100 + i, i % 100)),
                ("currency", "USD".to_owned()),
                ("due_date", due.to_string()),
                ("status", "open".to_owned()),
                ("locale", locales[i % locales.len()].to_owned()),
            ] {
                raw.insert(k, RawValue::Text(v));
            }
            raw
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let as_of: DateTime<Utc> = "2026-11-23T14:00:00Z".parse().unwrap();
    let policy = Policy::default_policy();
    let renderer = Renderer::new();
    let raw = items(as_of.date_naive());
    let tz = chrono_tz::UTC;
    let mut group = c.benchmark_group("per_invoice");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("parse_decide", |b| {
        b.iter(|| {
            raw.iter()
                .filter_map(|r| Invoice::parse(r).ok())
                .filter(|inv| decide(&policy, inv, as_of, tz).is_ok())
                .count()
        })
    });
    group.bench_function("parse_decide_link_render_email_and_sms", |b| {
        b.iter_batched(
            || raw.clone(),
            |raw| {
                let mut bytes = 0usize;
                for r in &raw {
                    let Ok(invoice) = Invoice::parse(r) else {
                        continue;
                    };
                    let Ok(due) = decide(&policy, &invoice, as_of, tz) else {
                        continue;
                    };
                    // A run makes a random token per message (the store write is not timed here).
                    let link = LinkToken::generate()
                        .unwrap()
                        .url("https://pay.example.com");
                    let locale = Locale::resolve(invoice.locale.as_deref(), Locale::En);
                    let line = InvoiceLine::new(&invoice, due.local_date, link, None, locale);
                    let ctx = ReminderContext::new(
                        locale,
                        "Acme Ltd",
                        &invoice.customer_name,
                        &due.step.name,
                        vec![line],
                    )
                    .unwrap();
                    for (channel, _) in &due.channels {
                        bytes += match channel {
                            Channel::Email => {
                                let email = renderer.email(&due.step.template, &ctx).unwrap();
                                email.html.len() + email.text.len() + email.subject.len()
                            }
                            Channel::Sms => renderer.sms(&due.step.template, &ctx).unwrap().len(),
                        };
                    }
                }
                bytes
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
