//! Message rendering with minijinja: per template id an email subject, an HTML
//! body (auto-escaped), a plain-text body and an SMS text. The default
//! templates are compiled in from `shared/templates/`.

use chrono::NaiveDate;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::invoice::Invoice;
use crate::money::Money;

/// The languages messages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Locale {
    En,
    /// Simplified Chinese.
    ZhHans,
    /// Traditional Chinese.
    ZhHant,
}

impl Locale {
    pub const ALL: [Locale; 3] = [Locale::En, Locale::ZhHans, Locale::ZhHant];

    /// The template directory and BCP 47 tag.
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::ZhHans => "zh-Hans",
            Self::ZhHant => "zh-Hant",
        }
    }

    /// Maps a language tag to a supported locale: `zh-Hans`, `zh-CN`, `zh-SG`
    /// and `zh` are Simplified; `zh-Hant`, `zh-TW`, `zh-HK`, `zh-MO` Traditional;
    /// `en-*` English. `None` for anything else.
    pub fn parse(tag: &str) -> Option<Self> {
        let lower = tag.trim().to_ascii_lowercase().replace('_', "-");
        let mut parts = lower.split('-');
        match (parts.next()?, parts.next()) {
            ("en", _) => Some(Self::En),
            ("zh", None | Some("hans" | "cn" | "sg")) => Some(Self::ZhHans),
            ("zh", Some("hant" | "tw" | "hk" | "mo")) => Some(Self::ZhHant),
            _ => None,
        }
    }

    /// The locale for an invoice's `locale` tag: the tag when we write that
    /// language, else `default`.
    pub fn resolve(tag: Option<&str>, default: Locale) -> Locale {
        tag.and_then(Self::parse).unwrap_or(default)
    }

    /// `23 November 2026` / `2026年11月23日`.
    pub fn long_date(self, date: NaiveDate) -> String {
        match self {
            Self::En => date.format("%-d %B %Y").to_string(),
            Self::ZhHans | Self::ZhHant => date.format("%Y年%-m月%-d日").to_string(),
        }
    }

    /// `23 Nov` / `11月23日`, for SMS.
    pub fn short_date(self, date: NaiveDate) -> String {
        match self {
            Self::En => date.format("%-d %b").to_string(),
            Self::ZhHans | Self::ZhHant => date.format("%-m月%-d日").to_string(),
        }
    }
}

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
        locale: Locale,
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
            due_date: locale.long_date(invoice.due_date),
            due_date_short: locale.short_date(invoice.due_date),
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
    #[serde(skip)]
    pub locale: Locale,
    pub business_name: String,
    pub customer_name: String,
    pub step: String,
    pub count: usize,
    pub invoices: Vec<InvoiceLine>,
    /// A contact line for emails (`CONTACT_LINE`), if configured.
    pub contact_line: Option<String>,
    #[serde(flatten)]
    pub first: InvoiceLine,
}

impl ReminderContext {
    /// `invoices` must not be empty.
    pub fn new(
        locale: Locale,
        business_name: &str,
        customer_name: &str,
        step: &str,
        invoices: Vec<InvoiceLine>,
    ) -> Option<Self> {
        let first = invoices.first()?.clone();
        Some(Self {
            locale,
            business_name: business_name.to_owned(),
            customer_name: customer_name.to_owned(),
            step: step.to_owned(),
            count: invoices.len(),
            contact_line: None,
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
        for (name, source) in crate::templates::sources() {
            // The sources are compiled in and covered by the tests below.
            env.add_template_owned(name, source)
                .expect("built-in template compiles");
        }
        Self { env }
    }

    /// True when `template` has all four parts.
    pub fn has_template(&self, template: &str) -> bool {
        Locale::ALL.iter().all(|l| {
            ["subject.txt", "body.html", "body.txt", "sms.txt"]
                .iter()
                .all(|part| {
                    self.env
                        .get_template(&format!("{}/{template}/{part}", l.tag()))
                        .is_ok()
                })
        })
    }

    fn render<C: Serialize>(&self, name: String, ctx: &C) -> Result<String, RenderError> {
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
        let dir = format!("{}/{template}", ctx.locale.tag());
        Ok(EmailContent {
            subject: one_line(&self.render(format!("{dir}/subject.txt"), ctx)?),
            html: self.render(format!("{dir}/body.html"), ctx)?,
            text: self.render(format!("{dir}/body.txt"), ctx)?,
        })
    }

    pub fn sms(&self, template: &str, ctx: &ReminderContext) -> Result<String, RenderError> {
        self.render(format!("{}/{template}/sms.txt", ctx.locale.tag()), ctx)
            .map(|s| one_line(&s))
    }
}

/// A template directory that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    #[error("cannot read template directory {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("template {name} does not compile: {source}")]
    Syntax {
        name: String,
        source: minijinja::Error,
    },
}

impl Renderer {
    /// The compiled-in templates, with every file under `dir` (same layout,
    /// `<locale>/<template>/<part>`, e.g. `en/overdue/subject.txt`) replacing
    /// the built-in one of that name or adding a new template id.
    pub fn with_overrides(dir: &std::path::Path) -> Result<Self, OverrideError> {
        let mut renderer = Self::new();
        let read = |path: &std::path::Path, e| OverrideError::Read {
            path: path.display().to_string(),
            source: e,
        };
        let mut pending = vec![dir.to_path_buf()];
        while let Some(current) = pending.pop() {
            for entry in std::fs::read_dir(&current).map_err(|e| read(&current, e))? {
                let path = entry.map_err(|e| read(&current, e))?.path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let name = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                let source = std::fs::read_to_string(&path).map_err(|e| read(&path, e))?;
                renderer
                    .env
                    .add_template_owned(name.clone(), source)
                    .map_err(|source| OverrideError::Syntax { name, source })?;
            }
        }
        Ok(renderer)
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
    #[serde(skip)]
    pub locale: Locale,
}

impl Renderer {
    /// The receipt sent (when enabled) once a payment completes an invoice.
    pub fn receipt(&self, ctx: &ReceiptContext) -> Result<EmailContent, RenderError> {
        let dir = format!("{}/receipt", ctx.locale.tag());
        Ok(EmailContent {
            subject: one_line(&self.render(format!("{dir}/subject.txt"), ctx)?),
            html: self.render(format!("{dir}/body.html"), ctx)?,
            text: self.render(format!("{dir}/body.txt"), ctx)?,
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
                Locale::En,
            )];
            let c = ReminderContext::new(Locale::En, "Acme Trading Ltd", "Ana Lima", step, lines)
                .unwrap();
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

#[cfg(test)]
mod locale_tests {
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
        let lines = (0..count)
            .map(|i| {
                let mut inv = inv.clone();
                inv.id = format!("INV-100{}", i + 1);
                let fee = (i == 1)
                    .then(|| Money::new(rust_decimal::Decimal::new(2500, 2), inv.amount.currency));
                let link = format!(
                    "https://pay.acme.example/i/{}?exp=1798675200&sig=TSVwBnv61xoHq9UR8PUVIQ",
                    inv.id
                );
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
            name in "[^\\p{Cc}]{1,200}",
            cents in 1i64..100_000_000_000_000,
            code in prop::sample::select(vec!["USD", "JPY", "KWD", "EUR", "CNY", "TWD", "BHD", "CLF"]),
            locale in prop::sample::select(Locale::ALL.to_vec()),
            step in prop::sample::select(BUILT_IN_TEMPLATES.to_vec()),
        ) {
            let currency = Currency::parse(code).unwrap();
            let mut inv = invoice("x", "1", code);
            inv.customer_name = name.clone();
            inv.amount = Money::new(rust_decimal::Decimal::new(cents, currency.exponent()), currency);
            let line = InvoiceLine::new(&inv, "2026-11-27".parse().unwrap(), "https://p.example/i/x?exp=1&sig=y".into(), None, locale);
            let ctx = ReminderContext::new(locale, "Acme", &name, step, vec![line]).unwrap();
            let r = Renderer::new();
            let email = r.email(step, &ctx).unwrap();
            prop_assert!(!email.subject.contains('\n') && !email.subject.contains('\r'));
            prop_assert!(!email.html.contains("<script"));
            let sms = r.sms(step, &ctx).unwrap();
            prop_assert!(sms.contains("https://p.example/i/x?exp=1&sig=y"));
            prop_assert!(email.text.contains(&inv.outstanding().to_string()));
        }
    }
}
