//! Message rendering with minijinja: per template id an email subject, an HTML
//! body (auto-escaped), a plain-text body and an SMS text. The default
//! templates are compiled in from `shared/templates/`.

use chrono::NaiveDate;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::invoice::Invoice;
use crate::money::Money;

/// Template ids with a complete set of parts among the compiled-in templates.
pub const BUILT_IN_TEMPLATES: &[&str] = &["pre_due", "due_today", "overdue", "final_notice"];

/// The compiled-in templates: (name, source).
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../templates/layout.html")),
    (
        "receipt/subject.txt",
        include_str!("../templates/receipt/subject.txt"),
    ),
    (
        "receipt/body.html",
        include_str!("../templates/receipt/body.html"),
    ),
    (
        "receipt/body.txt",
        include_str!("../templates/receipt/body.txt"),
    ),
    ("lines.txt", include_str!("../templates/lines.txt")),
    ("footer.txt", include_str!("../templates/footer.txt")),
    (
        "pre_due/subject.txt",
        include_str!("../templates/pre_due/subject.txt"),
    ),
    (
        "pre_due/body.html",
        include_str!("../templates/pre_due/body.html"),
    ),
    (
        "pre_due/body.txt",
        include_str!("../templates/pre_due/body.txt"),
    ),
    (
        "pre_due/sms.txt",
        include_str!("../templates/pre_due/sms.txt"),
    ),
    (
        "due_today/subject.txt",
        include_str!("../templates/due_today/subject.txt"),
    ),
    (
        "due_today/body.html",
        include_str!("../templates/due_today/body.html"),
    ),
    (
        "due_today/body.txt",
        include_str!("../templates/due_today/body.txt"),
    ),
    (
        "due_today/sms.txt",
        include_str!("../templates/due_today/sms.txt"),
    ),
    (
        "overdue/subject.txt",
        include_str!("../templates/overdue/subject.txt"),
    ),
    (
        "overdue/body.html",
        include_str!("../templates/overdue/body.html"),
    ),
    (
        "overdue/body.txt",
        include_str!("../templates/overdue/body.txt"),
    ),
    (
        "overdue/sms.txt",
        include_str!("../templates/overdue/sms.txt"),
    ),
    (
        "final_notice/subject.txt",
        include_str!("../templates/final_notice/subject.txt"),
    ),
    (
        "final_notice/body.html",
        include_str!("../templates/final_notice/body.html"),
    ),
    (
        "final_notice/body.txt",
        include_str!("../templates/final_notice/body.txt"),
    ),
    (
        "final_notice/sms.txt",
        include_str!("../templates/final_notice/sms.txt"),
    ),
];

#[derive(Debug, thiserror::Error)]
#[error("rendering template `{template}` failed: {source}")]
pub struct RenderError {
    template: String,
    #[source]
    source: minijinja::Error,
}

/// One invoice in a reminder.
#[derive(Debug, Clone, Serialize)]
pub struct InvoiceLine {
    pub invoice_id: String,
    /// The outstanding amount (late fees included), never the original when partly paid.
    pub amount: String,
    pub invoice_amount: String,
    pub partly_paid: bool,
    /// The late fee this step adds, when it has one.
    pub late_fee: Option<String>,
    /// `23 November 2026`.
    pub due_date: String,
    /// `23 Nov`, for SMS.
    pub due_date_short: String,
    pub days_until_due: i64,
    pub days_overdue: i64,
    pub pay_link: String,
}

impl InvoiceLine {
    /// `late_fee` is the fee this step adds now (already part of `outstanding` once applied).
    pub fn new(
        invoice: &Invoice,
        today: NaiveDate,
        pay_link: String,
        late_fee: Option<Money>,
    ) -> Self {
        let mut outstanding: Money = invoice.outstanding();
        if let Some(fee) = late_fee {
            outstanding.amount += fee.amount;
        }
        let days = (invoice.due_date - today).num_days();
        Self {
            invoice_id: invoice.id.clone(),
            amount: outstanding.to_string(),
            invoice_amount: invoice.amount.to_string(),
            partly_paid: !invoice.amount_paid.is_zero(),
            late_fee: late_fee.map(|f| f.to_string()),
            due_date: invoice.due_date.format("%-d %B %Y").to_string(),
            due_date_short: invoice.due_date.format("%-d %b").to_string(),
            days_until_due: days.max(0),
            days_overdue: (-days).max(0),
            pay_link,
        }
    }
}

/// What a reminder says, before it is put into a template: one or more
/// invoices of one customer at one step. The first invoice's fields are
/// repeated at the top level so single-invoice templates read naturally.
#[derive(Debug, Clone, Serialize)]
pub struct ReminderContext {
    pub business_name: String,
    pub customer_name: String,
    pub step: String,
    pub count: usize,
    pub invoices: Vec<InvoiceLine>,
    #[serde(flatten)]
    pub first: InvoiceLine,
}

impl ReminderContext {
    /// `invoices` must not be empty.
    pub fn new(
        business_name: &str,
        customer_name: &str,
        step: &str,
        invoices: Vec<InvoiceLine>,
    ) -> Option<Self> {
        let first = invoices.first()?.clone();
        Some(Self {
            business_name: business_name.to_owned(),
            customer_name: customer_name.to_owned(),
            step: step.to_owned(),
            count: invoices.len(),
            invoices,
            first,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailContent {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// Renders reminders from a fixed set of templates; build once per process.
pub struct Renderer {
    env: Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("url", url_filter);
        for (name, source) in TEMPLATES {
            // The sources are compiled in and covered by the tests below.
            env.add_template(name, source)
                .expect("built-in template compiles");
        }
        Self { env }
    }

    /// True when `template` has all four parts.
    pub fn has_template(&self, template: &str) -> bool {
        ["subject.txt", "body.html", "body.txt", "sms.txt"]
            .iter()
            .all(|part| self.env.get_template(&format!("{template}/{part}")).is_ok())
    }

    fn render(&self, name: String, ctx: &ReminderContext) -> Result<String, RenderError> {
        let render = || {
            self.env
                .get_template(&name)?
                .render(minijinja::value::Serde(ctx))
        };
        render()
            .map(|s| s.trim().to_owned())
            .map_err(|source| RenderError {
                template: name,
                source,
            })
    }

    pub fn email(
        &self,
        template: &str,
        ctx: &ReminderContext,
    ) -> Result<EmailContent, RenderError> {
        let subject = self.render(format!("{template}/subject.txt"), ctx)?;
        Ok(EmailContent {
            subject: one_line(&subject),
            html: self.render(format!("{template}/body.html"), ctx)?,
            text: self.render(format!("{template}/body.txt"), ctx)?,
        })
    }

    pub fn sms(&self, template: &str, ctx: &ReminderContext) -> Result<String, RenderError> {
        self.render(format!("{template}/sms.txt"), ctx)
            .map(|s| one_line(&s))
    }
}

/// What a payment receipt says.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptContext {
    pub business_name: String,
    pub customer_name: String,
    pub invoice_id: String,
    /// The payment that completed the invoice, e.g. `USD 120.00`.
    pub payment: String,
    /// `24 November 2026`.
    pub paid_on: String,
}

impl Renderer {
    /// The receipt sent (when enabled) once a payment completes an invoice.
    pub fn receipt(&self, ctx: &ReceiptContext) -> Result<EmailContent, RenderError> {
        let render = |name: &str| {
            self.env
                .get_template(name)
                .and_then(|t| t.render(minijinja::value::Serde(ctx)))
                .map(|s| s.trim().to_owned())
                .map_err(|source| RenderError {
                    template: name.to_owned(),
                    source,
                })
        };
        Ok(EmailContent {
            subject: one_line(&render("receipt/subject.txt")?),
            html: render("receipt/body.html")?,
            text: render("receipt/body.txt")?,
        })
    }
}

/// Escapes a URL for an HTML attribute or text: only `& < > " '`, so the link
/// stays readable (the default HTML escaping also rewrites every `/`).
fn url_filter(url: String) -> minijinja::Value {
    let mut out = String::with_capacity(url.len() + 8);
    for c in url.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    minijinja::Value::from_safe_string(out)
}

/// Collapses every run of whitespace (CR and LF included) to one space, so a
/// subject can never carry a header break.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
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
            "https://pay.example.com/i/INV-7?exp=1&sig=x".into(),
            None,
        )
    }

    fn ctx(inv: &Invoice, step: &str, today: &str) -> ReminderContext {
        ReminderContext::new("Acme Ltd", &inv.customer_name, step, vec![line(inv, today)]).unwrap()
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
                    part.contains("https://pay.example.com/i/INV-7?exp=1&sig=x"),
                    "{step}: {part}"
                );
            }
            assert!(
                email
                    .html
                    .contains("href=\"https://pay.example.com/i/INV-7?exp=1&amp;sig=x\""),
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
    fn default_sms_fit_one_gsm7_segment_with_a_real_signed_link() {
        let r = Renderer::new();
        let mut inv = invoice("Ana Lima", "");
        // Typical sizes: an 8-character id, five-figure amounts, a short pay domain,
        // a 16-character business name. Longer ones take two segments (the default maximum).
        inv.id = "INV-1001".into();
        inv.amount.amount = rust_decimal::Decimal::new(1_234_567, 2);
        let signer = crate::paylink::PayLinkSigner::new(
            "https://pay.acme.example/i",
            b"0123456789abcdef".to_vec(),
        );
        let link = signer.sign(&inv.id, "2026-12-31T00:00:00Z".parse().unwrap());
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
            )];
            let c = ReminderContext::new("Acme Trading Ltd", "Ana Lima", step, lines).unwrap();
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
    fn a_combined_message_lists_each_invoice_with_its_own_link_and_fee() {
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
                "https://pay.example.com/i/INV-8?exp=1&sig=y".into(),
                Some(fee),
            ),
        ];
        let c = ReminderContext::new("Acme Ltd", "Ana", "overdue", lines).unwrap();
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
        assert!(email
            .text
            .contains("https://pay.example.com/i/INV-8?exp=1&sig=y"));
        assert!(email
            .html
            .contains("https://pay.example.com/i/INV-8?exp=1&amp;sig=y"));
        let sms = r.sms("overdue", &c).unwrap();
        assert!(
            sms.contains("2 invoices overdue") && sms.contains("INV-8?exp=1&sig=y"),
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
}
