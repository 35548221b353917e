//! Message rendering with minijinja: per template id an email subject, an HTML
//! body (auto-escaped), a plain-text body and an SMS text. The default
//! templates are compiled in from `shared/templates/`.

use chrono::NaiveDate;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::invoice::Invoice;
use crate::money::Money;

/// The compiled-in templates: (name, source).
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../templates/layout.html")),
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
];

#[derive(Debug, thiserror::Error)]
#[error("rendering template `{template}` failed: {source}")]
pub struct RenderError {
    template: String,
    #[source]
    source: minijinja::Error,
}

/// What a reminder says, before it is put into a template.
#[derive(Debug, Clone, Serialize)]
pub struct ReminderContext {
    pub business_name: String,
    pub customer_name: String,
    pub invoice_id: String,
    /// The outstanding amount, never the original when partly paid.
    pub amount: String,
    pub invoice_amount: String,
    pub partly_paid: bool,
    /// `23 November 2026`.
    pub due_date: String,
    /// `23 Nov`, for SMS.
    pub due_date_short: String,
    pub days_until_due: i64,
    pub days_overdue: i64,
    pub pay_link: String,
    pub step: String,
}

impl ReminderContext {
    pub fn new(
        invoice: &Invoice,
        business_name: &str,
        step: &str,
        today: NaiveDate,
        pay_link: String,
    ) -> Self {
        let outstanding: Money = invoice.outstanding();
        let days = (invoice.due_date - today).num_days();
        Self {
            business_name: business_name.to_owned(),
            customer_name: invoice.customer_name.clone(),
            invoice_id: invoice.id.clone(),
            amount: outstanding.to_string(),
            invoice_amount: invoice.amount.to_string(),
            partly_paid: !invoice.amount_paid.is_zero(),
            due_date: invoice.due_date.format("%-d %B %Y").to_string(),
            due_date_short: invoice.due_date.format("%-d %b").to_string(),
            days_until_due: days.max(0),
            days_overdue: (-days).max(0),
            pay_link,
            step: step.to_owned(),
        }
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

    fn ctx(inv: &Invoice, step: &str, today: &str) -> ReminderContext {
        ReminderContext::new(
            inv,
            "Acme Ltd",
            step,
            today.parse().unwrap(),
            "https://pay.example.com/i/INV-7?exp=1&sig=x".into(),
        )
    }

    #[test]
    fn every_step_renders_amount_date_and_link_in_every_part() {
        let r = Renderer::new();
        let inv = invoice("Ana Lima", "");
        for (step, today) in [
            ("pre_due", "2026-11-23"),
            ("due_today", "2026-11-26"),
            ("overdue", "2026-11-27"),
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
            assert!(
                sms.chars().count() <= 160,
                "{step} SMS fits one segment: {} chars",
                sms.chars().count()
            );
        }
        assert!(!r.has_template("final_notice"));
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
    fn a_pay_url_cannot_break_out_of_its_attribute() {
        let r = Renderer::new();
        let mut c = ctx(&invoice("Ana", ""), "due_today", "2026-11-26");
        c.pay_link = "https://x.example/\"><script>alert(1)</script>".into();
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
