use super::*;
use crate::invoice::{RawInvoice, RawValue};

fn invoice(name: &str, paid: &str) -> Invoice {
    let mut raw = RawInvoice::default();
    for (k, v) in [
        ("invoice_id", "INV-7"),
        ("customer_id", "C-7"),
        ("customer_name", name),
        ("email", "ana@example.com"),
        ("amount", "1250.00"),
        ("amount_paid", paid),
        ("currency", "USD"),
        ("due_date", "2026-11-26"),
        ("status", "open"),
    ] {
        raw.insert(k, RawValue::Text(v.into()));
    }
    Invoice::parse(&raw).unwrap()
}

fn line(inv: &Invoice, today: &str) -> InvoiceLine {
    InvoiceLine::new(
        inv,
        today.parse().unwrap(),
        "https://pay.example.com/Zm9vYmFyZm9vYmFy".into(),
        None,
        Locale::En,
    )
}

fn ctx(inv: &Invoice, step: &str, today: &str) -> ReminderContext {
    ReminderContext::new(
        Locale::En,
        "Acme Ltd",
        &inv.customer_name,
        step,
        vec![line(inv, today)],
    )
    .unwrap()
}

#[test]
fn every_step_renders_amount_date_and_link_in_every_part() {
    let r = Renderer::new();
    let inv = invoice("Ana Lima", "");
    for (step, today) in [
        ("pre_due", "2026-11-23"),
        ("due_today", "2026-11-26"),
        ("overdue", "2026-11-27"),
        ("final_notice", "2026-12-10"),
    ] {
        assert!(r.has_template(step));
        let c = ctx(&inv, step, today);
        let email = r.email(step, &c).unwrap();
        let sms = r.sms(step, &c).unwrap();
        for part in [&email.subject, &email.html, &email.text, &sms] {
            assert!(part.contains("USD 1,250.00"), "{step}: {part}");
        }
        for part in [&email.text, &sms] {
            assert!(
                part.contains("https://pay.example.com/Zm9vYmFyZm9vYmFy"),
                "{step}: {part}"
            );
        }
        assert!(
            email
                .html
                .contains("href=\"https://pay.example.com/Zm9vYmFyZm9vYmFy\""),
            "{step}: {}",
            email.html
        );
        assert!(
            email.text.contains("26 November 2026"),
            "{step}: {}",
            email.text
        );
        assert!(
            email.html.contains("26 November 2026"),
            "{step}: {}",
            email.html
        );
        assert!(sms.contains("26 Nov"), "{step}: {sms}");
        assert_eq!(
            crate::segments::measure(&sms).segments,
            1,
            "{step} SMS fits one segment: {sms}"
        );
    }
    assert!(!r.has_template("no_such_template"));
}

#[test]
fn default_sms_fit_one_gsm7_segment_with_a_real_link() {
    let r = Renderer::new();
    let mut inv = invoice("Ana Lima", "");
    // Typical sizes: an 8-character id, five-figure amounts, a short pay domain,
    // a 16-character business name. Longer ones take two segments (the default maximum).
    inv.id = "INV-1001".into();
    inv.amount.amount = rust_decimal::Decimal::new(1_234_567, 2);
    let link = crate::link::LinkToken::generate()
        .unwrap()
        .url("https://pay.acme.example");
    for (step, today) in [
        ("pre_due", "2026-11-23"),
        ("due_today", "2026-11-26"),
        ("overdue", "2026-11-27"),
        ("final_notice", "2026-12-10"),
    ] {
        let lines = vec![InvoiceLine::new(
            &inv,
            today.parse().unwrap(),
            link.clone(),
            None,
            Locale::En,
        )];
        let c =
            ReminderContext::new(Locale::En, "Acme Trading Ltd", "Ana Lima", step, lines).unwrap();
        let sms = r.sms(step, &c).unwrap();
        let size = crate::segments::measure(&sms);
        assert_eq!(
            (size.encoding, size.segments),
            (crate::segments::Encoding::Gsm7, 1),
            "{step}: {} units: {sms}",
            size.units
        );
    }
}

#[test]
fn a_partly_paid_invoice_shows_what_is_still_owed() {
    let r = Renderer::new();
    let email = r
        .email(
            "overdue",
            &ctx(&invoice("Ana", "250"), "overdue", "2026-11-27"),
        )
        .unwrap();
    assert!(email.text.contains("USD 1,000.00"));
    assert!(!email.text.contains("1,250.00"));
}

#[test]
fn html_escapes_names_and_plain_text_keeps_them() {
    let r = Renderer::new();
    let inv = invoice("<script>alert(1)</script> & Co", "");
    let email = r
        .email("due_today", &ctx(&inv, "due_today", "2026-11-26"))
        .unwrap();
    assert!(!email.html.contains("<script>"));
    assert!(email.html.contains("&lt;script&gt;"));
    assert!(email.text.contains("<script>alert(1)</script> & Co"));
}

#[test]
fn a_combined_message_lists_each_invoice_with_its_fee_and_one_link() {
    let r = Renderer::new();
    let a = invoice("Ana", "");
    let mut b = invoice("Ana", "");
    b.id = "INV-8".into();
    let fee = Money::new(rust_decimal::Decimal::new(2500, 2), b.amount.currency);
    let lines = vec![
        line(&a, "2026-11-27"),
        InvoiceLine::new(
            &b,
            "2026-11-27".parse().unwrap(),
            // A combined message's one link: the customer's page.
            "https://pay.example.com/Zm9vYmFyZm9vYmFy".into(),
            Some(fee),
            Locale::En,
        ),
    ];
    let c = ReminderContext::new(Locale::En, "Acme Ltd", "Ana", "overdue", lines).unwrap();
    let email = r.email("overdue", &c).unwrap();
    assert_eq!(email.subject, "Overdue: 2 invoices are past their due date");
    for text in [&email.text, &email.html] {
        assert!(text.contains("INV-7") && text.contains("INV-8"), "{text}");
        assert!(
            text.contains("USD 1,275.00") && text.contains("late fee USD 25.00")
                || text.contains("late fee of USD 25.00"),
            "{text}"
        );
    }
    // One link for the message, shown once in each part.
    for text in [&email.text, &email.html] {
        assert_eq!(
            text.matches("https://pay.example.com/Zm9vYmFyZm9vYmFy")
                .count(),
            1,
            "{text}"
        );
    }
    let sms = r.sms("overdue", &c).unwrap();
    assert!(
        sms.contains("2 invoices overdue")
            && sms.contains("https://pay.example.com/Zm9vYmFyZm9vYmFy"),
        "{sms}"
    );
}

#[test]
fn a_pay_url_cannot_break_out_of_its_attribute() {
    let r = Renderer::new();
    let mut c = ctx(&invoice("Ana", ""), "due_today", "2026-11-26");
    c.first.pay_link = "https://x.example/\"><script>alert(1)</script>".into();
    let html = r.email("due_today", &c).unwrap().html;
    assert!(!html.contains("<script>") && html.contains("&quot;&gt;&lt;script&gt;"));
}

#[test]
fn subjects_and_sms_are_single_lines() {
    assert_eq!(one_line("a\r\nBcc: x\n b"), "a Bcc: x b");
    let r = Renderer::new();
    let email = r
        .email(
            "pre_due",
            &ctx(&invoice("Ana", ""), "pre_due", "2026-11-23"),
        )
        .unwrap();
    assert!(!email.subject.contains('\n') && !email.subject.contains('\r'));
    assert!(email.text.contains("in 3 days"));
}

mod sms_fits {
    use super::*;
    use proptest::prelude::*;

    fn line(id: &str, amount: &str, link: &str) -> InvoiceLine {
        InvoiceLine {
            invoice_id: id.to_owned(),
            amount: amount.to_owned(),
            invoice_amount: amount.to_owned(),
            partly_paid: false,
            late_fee: None,
            due_date: "23 November 2026".into(),
            due_date_short: "23 Nov".into(),
            days_until_due: 0,
            days_overdue: 3,
            pay_link: link.to_owned(),
            instalment: None,
            plan_ended: false,
            promised_by: None,
            promised_by_short: None,
        }
    }

    /// Text of any kind: GSM-7, extension characters, Chinese, emoji.
    fn text(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                4 => prop::char::range('a', 'z'),
                1 => Just('€'),
                1 => Just('{'),
                2 => prop::char::range('一', '龥'),
                1 => Just('😀'),
                1 => Just(' '),
            ],
            0..=max,
        )
        .prop_map(|c| c.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Whatever the invoices (1 to 40), their ids (up to 128 characters),
        /// the business name, the locale, the step and the opt-out line, the
        /// SMS fits `SMS_MAX_SEGMENTS` whenever start-up accepted the settings:
        /// no `sms_too_long` ever.
        #[test]
        fn every_sms_fits_its_segments(
            count in 1usize..=40,
            id in text(128),
            name in text(120),
            locale in prop::sample::select(Locale::ALL.to_vec()),
            step in prop::sample::select(vec!["pre_due", "due_today", "overdue", "final_notice"]),
            opt_out in prop::sample::select(vec!["", "Reply STOP to opt out", "回复TD退订"]),
            max_segments in 1usize..=3,
            base in prop::sample::select(vec!["https://pay.example.com", "https://payments.a-rather-long-company-domain.example.com/pay"]),
        ) {
            let link = format!("{base}/{}", "A".repeat(22));
            let amount = "USD 12,345.67";
            prop_assume!(Renderer::sms_always_fits(&link, "USD 999,999,999,999.99", max_segments));
            let lines: Vec<InvoiceLine> = (0..count).map(|i| line(&format!("{id}{i}"), amount, &link)).collect();
            let ctx = ReminderContext::new(locale, &name, "Ana", step, lines).unwrap();
            let renderer = Renderer::new();
            let text = renderer.sms_fitting(step, &ctx, opt_out, max_segments).unwrap();
            let Some(text) = text else {
                return Err(TestCaseError::fail("no SMS fits"));
            };
            prop_assert!(crate::segments::measure(&text).segments <= max_segments, "{text}");
            prop_assert!(text.contains(&link), "the link is always there: {text}");
        }
    }

    #[test]
    fn a_long_name_and_id_are_shortened_before_the_shortest_form() {
        let link = format!("https://pay.example.com/{}", "A".repeat(22));
        let id = "INV-".repeat(32);
        let name = "Acme Very Long Trading Name ".repeat(6);
        let ctx = ReminderContext::new(
            Locale::En,
            name.trim(),
            "Ana",
            "due_today",
            vec![line(&id, "USD 120.00", &link)],
        )
        .unwrap();
        let text = Renderer::new()
            .sms_fitting("due_today", &ctx, "", 1)
            .unwrap()
            .unwrap();
        assert_eq!(
            text,
            format!("Acme Very Long Tra..: invoice INV-INV-INV-IN.., USD 120.00 due today (23 Nov). Pay: {link}")
        );
        // One segment cannot hold the long wording with a longer link: the shortest form.
        let long = format!(
            "https://payments.example.com/{}/{}",
            "p".repeat(40),
            "A".repeat(22)
        );
        let ctx = ReminderContext::new(
            Locale::En,
            name.trim(),
            "Ana",
            "due_today",
            vec![line(&id, "USD 120.00", &long)],
        )
        .unwrap();
        let text = Renderer::new()
            .sms_fitting("due_today", &ctx, "", 1)
            .unwrap()
            .unwrap();
        assert!(
            text.ends_with(&format!("USD 120.00 due. Pay: {long}")),
            "{text}"
        );
        assert!(crate::segments::measure(&text).segments == 1);
    }
}

#[test]
fn an_email_s_footer_links_to_unsubscribe_in_its_language_and_an_sms_never_does() {
    let inv = invoice("Ana Lima", "0");
    let url = "https://pay.example.com/Zm9vYmFyZm9vYmFy/unsubscribe";
    let r = Renderer::new();
    for (locale, text_words, html_words) in [
        (
            Locale::En,
            "No more e-mail reminders: ",
            "Stop e-mail reminders",
        ),
        (Locale::ZhHans, "不再接收电子邮件提醒：", "停止电子邮件提醒"),
        (Locale::ZhHant, "不再接收電子郵件提醒：", "停止電子郵件提醒"),
    ] {
        for step in ["pre_due", "due_today", "overdue", "final_notice"] {
            let mut c = ctx(&inv, step, "2026-11-26");
            c.locale = locale;
            let without = r.email(step, &c).unwrap();
            assert!(!without.text.contains("unsubscribe") && !without.html.contains("unsubscribe"));
            c.unsubscribe_url = Some(url.to_owned());
            let with = r.email(step, &c).unwrap();
            assert!(
                with.text.contains(&format!("{text_words}{url}")),
                "{locale:?} {step}"
            );
            assert!(
                with.html.contains(&format!(r#"<a href="{url}""#))
                    && with.html.contains(html_words),
                "{locale:?} {step}"
            );
            assert!(!r.sms(step, &c).unwrap().contains("unsubscribe"));
        }
    }
}
