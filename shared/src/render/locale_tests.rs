use super::*;
use crate::invoice::{RawInvoice, RawValue};
use crate::money::Currency;
use crate::templates::BUILT_IN_TEMPLATES;
use proptest::prelude::*;

fn invoice(name: &str, amount: &str, currency: &str) -> Invoice {
    let mut raw = RawInvoice::default();
    for (k, v) in [
        ("invoice_id", "INV-1001"),
        ("customer_id", "C-1"),
        ("customer_name", name),
        ("email", "ana@example.com"),
        ("amount", amount),
        ("currency", currency),
        ("due_date", "2026-11-26"),
        ("status", "open"),
    ] {
        raw.insert(k, RawValue::Text(v.into()));
    }
    Invoice::parse(&raw).unwrap()
}

fn context(locale: Locale, step: &str, count: usize) -> ReminderContext {
    let inv = invoice("Ana Lima", "1250.00", "USD");
    let today = match step {
        "pre_due" => "2026-11-23",
        "due_today" => "2026-11-26",
        "overdue" => "2026-11-27",
        _ => "2026-12-10",
    };
    let mut inv = inv;
    if step == crate::policy::PROMISE_STEP {
        inv.promised_by = "2026-12-08".parse().ok();
    }
    let lines = (0..count)
        .map(|i| {
            let mut inv = inv.clone();
            inv.id = format!("INV-100{}", i + 1);
            let fee = (i == 1)
                .then(|| Money::new(rust_decimal::Decimal::new(2500, 2), inv.amount.currency));
            // One link for the whole message, as a run makes it.
            let link = "https://pay.acme.example/Zm9vYmFyZm9vYmFy".to_owned();
            InvoiceLine::new(&inv, today.parse().unwrap(), link, fee, locale)
        })
        .collect();
    ReminderContext::new(locale, "Acme Ltd", "Ana Lima", step, lines).unwrap()
}

#[test]
fn a_template_directory_overrides_and_extends_the_built_in_ones() {
    let dir = std::env::temp_dir().join(format!("dunning-templates-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("en/due_today")).unwrap();
    std::fs::write(
        dir.join("en/due_today/subject.txt"),
        "Friendly nudge: {{ invoice_id }}",
    )
    .unwrap();
    let r = Renderer::with_overrides(&dir).unwrap();
    let email = r
        .email("due_today", &context(Locale::En, "due_today", 1))
        .unwrap();
    assert_eq!(email.subject, "Friendly nudge: INV-1001");
    assert!(
        email.text.contains("is due today"),
        "the other parts stay built in"
    );
    std::fs::write(dir.join("en/due_today/sms.txt"), "{% if %}").unwrap();
    let err = Renderer::with_overrides(&dir).err().unwrap();
    assert!(err.to_string().contains("en/due_today/sms.txt"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn language_tags_map_to_the_supported_locales() {
    let cases = [
        ("en", Some(Locale::En)),
        ("en-GB", Some(Locale::En)),
        ("zh-Hans", Some(Locale::ZhHans)),
        ("zh-CN", Some(Locale::ZhHans)),
        ("zh", Some(Locale::ZhHans)),
        ("zh_TW", Some(Locale::ZhHant)),
        ("zh-Hant", Some(Locale::ZhHant)),
        ("zh-HK", Some(Locale::ZhHant)),
        ("fr", None),
        ("", None),
    ];
    for (tag, want) in cases {
        assert_eq!(Locale::parse(tag), want, "{tag}");
    }
    let d = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
    assert_eq!(
        (Locale::En.long_date(d), Locale::En.short_date(d)),
        ("3 November 2026".into(), "3 Nov".into())
    );
    assert_eq!(
        (Locale::ZhHant.long_date(d), Locale::ZhHans.short_date(d)),
        ("2026年11月3日".into(), "11月3日".into())
    );
}

#[test]
fn every_template_file_is_compiled_in() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(
                    path.strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    files.sort();
    let mut listed: Vec<String> = crate::templates::sources()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    listed.sort();
    assert_eq!(
        listed, files,
        "every file under shared/templates/ is embedded"
    );
}

/// Golden copies of a plan's reminders in every locale: an instalment's
/// (its amount and date, with the balance), and one after the plan ended.
#[test]
fn golden_plan_messages() {
    let r = Renderer::new();
    let usd = crate::money::Currency::parse("USD").unwrap();
    let mut inv = invoice("Ana Lima", "1200.00", "USD");
    inv.amount_paid = "400.00".parse().unwrap();
    inv.plan = Some(
        crate::invoice::instalments::PaymentPlan::new(
            [
                "2026-12-15:400.00",
                "2027-01-15:400.00",
                "2027-02-15:400.00",
            ]
            .iter()
            .map(|t| crate::invoice::instalments::Instalment::parse(t, usd).unwrap())
            .collect(),
            "1200.00".parse().unwrap(),
            rust_decimal::Decimal::ZERO,
        )
        .unwrap(),
    );
    let link = "https://pay.acme.example/Zm9vYmFyZm9vYmFy".to_owned();
    for locale in Locale::ALL {
        for (name, today, step) in [
            ("instalment", "2027-01-15", "due_today"),
            ("ended", "2027-02-01", "overdue"),
        ] {
            let on = inv.scheduled(today.parse().unwrap(), Some(14));
            let line = InvoiceLine::new(&on, today.parse().unwrap(), link.clone(), None, locale);
            let ctx =
                ReminderContext::new(locale, "Acme Ltd", "Ana Lima", step, vec![line]).unwrap();
            let email = r.email(step, &ctx).unwrap();
            let sms = r.sms(step, &ctx).unwrap();
            insta::assert_snapshot!(
                format!("{}__plan_{name}", locale.tag()),
                format!(
                    "SUBJECT: {}\n\n--- TEXT ---\n{}\n\n--- SMS ---\n{}\n",
                    email.subject, email.text, sms
                )
            );
        }
    }
}

/// Golden copies of every default template in every locale and channel,
/// for one invoice and for a combined message of three (one with a late fee).
#[test]
fn golden_messages() {
    let r = Renderer::new();
    for locale in Locale::ALL {
        for step in BUILT_IN_TEMPLATES {
            for count in [1, 3] {
                let ctx = context(locale, step, count);
                let email = r.email(step, &ctx).unwrap();
                let sms = r.sms(step, &ctx).unwrap();
                let name = format!("{}__{step}__{count}", locale.tag());
                let shown = format!(
                    "SUBJECT: {}\n\n--- TEXT ---\n{}\n\n--- HTML ---\n{}\n\n--- SMS ({:?}, {} segments) ---\n{}\n",
                    email.subject,
                    email.text,
                    email.html,
                    crate::segments::measure(&sms).encoding,
                    crate::segments::measure(&sms).segments,
                    sms
                );
                insta::assert_snapshot!(name, shown);
            }
        }
        let receipt = r
            .receipt(&ReceiptContext {
                business_name: "Acme Ltd".into(),
                customer_name: "Ana Lima".into(),
                invoice_id: "INV-1001".into(),
                payment: "USD 1,250.00".into(),
                paid_on: locale.long_date(NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()),
                locale,
            })
            .unwrap();
        insta::assert_snapshot!(
            format!("{}__receipt", locale.tag()),
            format!(
                "SUBJECT: {}\n\n--- TEXT ---\n{}\n\n--- HTML ---\n{}\n",
                receipt.subject, receipt.text, receipt.html
            )
        );
    }
}

/// The demo's invoices (`examples/invoices.csv`) and its pay-page base
/// (`infra/local.env`): every one's due-today SMS is one segment in every
/// locale, with a real 16-character token.
#[test]
fn every_demo_due_today_sms_is_one_segment_in_every_locale() {
    let r = Renderer::new();
    let env = include_str!("../../../infra/local.env");
    let base = env
        .lines()
        .find_map(|l| l.strip_prefix("PAY_LINK_BASE_URL="))
        .expect("local.env sets PAY_LINK_BASE_URL");
    let business = env
        .lines()
        .find_map(|l| l.strip_prefix("BUSINESS_NAME="))
        .expect("local.env sets BUSINESS_NAME")
        .trim_matches('"');
    let rows = crate::import::parse_csv(include_str!("../../../examples/invoices.csv").as_bytes());
    let invoices: Vec<Invoice> = rows
        .into_iter()
        .filter_map(|row| row.ok().map(|row| row.invoice))
        .filter(|inv| inv.status == crate::invoice::InvoiceStatus::Open)
        .collect();
    assert!(invoices.len() >= 8, "{}", invoices.len());
    let link = crate::link::LinkToken::generate().unwrap().url(base);
    for inv in &invoices {
        for locale in Locale::ALL {
            let line = InvoiceLine::new(inv, inv.due_date, link.clone(), None, locale);
            let c = ReminderContext::new(
                locale,
                business,
                &inv.customer_name,
                "due_today",
                vec![line],
            )
            .unwrap();
            let sms = r.sms("due_today", &c).unwrap();
            let size = crate::segments::measure(&sms);
            assert_eq!(
                size.segments,
                1,
                "{} {}: {} units: {sms}",
                inv.id,
                locale.tag(),
                size.units
            );
        }
    }
}

/// A message for several invoices carries one link: its SMS is one segment
/// however many invoices it names (up to the most a message combines).
#[test]
fn a_combined_sms_does_not_grow_with_its_invoices() {
    let r = Renderer::new();
    for locale in Locale::ALL {
        for step in BUILT_IN_TEMPLATES {
            for count in 2..=crate::claim::MAX_COMBINED {
                let sms = r.sms(step, &context(locale, step, count)).unwrap();
                let size = crate::segments::measure(&sms);
                assert_eq!(size.segments, 1, "{} {step} x{count}: {sms}", locale.tag());
            }
        }
    }
}

#[test]
fn chinese_sms_are_ucs2_and_stay_within_two_segments() {
    let r = Renderer::new();
    for locale in [Locale::ZhHans, Locale::ZhHant] {
        for step in BUILT_IN_TEMPLATES {
            let sms = r.sms(step, &context(locale, step, 1)).unwrap();
            let size = crate::segments::measure(&sms);
            assert_eq!(size.encoding, crate::segments::Encoding::Ucs2, "{sms}");
            assert!(
                size.segments <= 2,
                "{} {step}: {} segments: {sms}",
                locale.tag(),
                size.segments
            );
        }
    }
}

proptest! {
    #[test]
    fn rendering_never_fails_on_any_name_amount_or_currency(
        before in "[^\\p{Cc}<>&\"']{0,80}",
        markup in prop::sample::select(vec![
            "<script>alert(1)</script>",
            "\"><img src=x onerror=alert(1)>",
            "<a href=\"javascript:alert(1)\">pay</a>",
            "</p><h1>Pay here</h1>",
            "O'Brien & <Sons>",
        ]),
        after in "[^\\p{Cc}<>&\"']{0,80}",
        cents in 1i64..100_000_000_000_000,
        code in prop::sample::select(vec!["USD", "JPY", "KWD", "EUR", "CNY", "TWD", "BHD", "CLF"]),
        locale in prop::sample::select(Locale::ALL.to_vec()),
        step in prop::sample::select(BUILT_IN_TEMPLATES.to_vec()),
    ) {
        // Markup in the name on purpose, somewhere in it: the HTML part must escape it.
        let name = format!("{before}{markup}{after}");
        let currency = Currency::parse(code).unwrap();
        let mut inv = invoice("x", "1", code);
        inv.customer_name = name.clone();
        inv.amount = Money::new(rust_decimal::Decimal::new(cents, currency.exponent()), currency);
        let line = InvoiceLine::new(&inv, "2026-11-27".parse().unwrap(), "https://p.example/i/x?exp=1&sig=y".into(), None, locale);
        let ctx = ReminderContext::new(locale, "Acme", &name, step, vec![line]).unwrap();
        let r = Renderer::new();
        let email = r.email(step, &ctx).unwrap();
        prop_assert!(!email.subject.contains('\n') && !email.subject.contains('\r'));
        let tags = ["<script", "<img", "<a href=\"javascript", "<h1>", "<Sons>"];
        for tag in tags {
            prop_assert!(!email.html.contains(tag), "{} unescaped in {}", tag, email.html);
        }
        // Every snippet has a `<` or an `&`: shown escaped.
        prop_assert!(email.html.contains("&lt;") || email.html.contains("&amp;"));
        // The plain-text part shows the name as the customer wrote it.
        prop_assert!(email.text.contains(name.trim()), "{}", email.text);
        let sms = r.sms(step, &ctx).unwrap();
        prop_assert!(sms.contains("https://p.example/i/x?exp=1&sig=y"));
        prop_assert!(email.text.contains(&inv.outstanding().to_string()));
    }
}
