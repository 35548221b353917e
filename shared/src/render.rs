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
    /// On a plan: the instalment the amount and due date are of.
    pub instalment: Option<InstalmentLine>,
    /// The plan ended (an instalment went unpaid): the amount is the whole balance.
    pub plan_ended: bool,
    /// A promise to pay by this date (long and short forms), if one was made.
    pub promised_by: Option<String>,
    pub promised_by_short: Option<String>,
}

/// The instalment a plan's reminder is about.
#[derive(Debug, Clone, Serialize)]
pub struct InstalmentLine {
    /// From 1, of `of`.
    pub number: usize,
    pub of: usize,
    /// Everything still outstanding on the invoice.
    pub balance: String,
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
            instalment: invoice.on_plan.as_ref().and_then(|view| {
                let (number, of) = view.instalment?;
                let mut balance = view.balance;
                if let Some(fee) = late_fee {
                    balance.amount += fee.amount;
                }
                Some(InstalmentLine {
                    number,
                    of,
                    balance: balance.to_string(),
                })
            }),
            plan_ended: invoice
                .on_plan
                .as_ref()
                .is_some_and(|view| view.instalment.is_none()),
            promised_by: invoice.promised_by.map(|d| locale.long_date(d)),
            promised_by_short: invoice.promised_by.map(|d| locale.short_date(d)),
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
    /// The e-mail footer's link that stops e-mail reminders (the pay
    /// page's `<token>/unsubscribe`), when the message has a pay link.
    pub unsubscribe_url: Option<String>,
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
            unsubscribe_url: None,
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

/// Names and ids an SMS shortens, in characters, when its template's text
/// does not fit: the business name and the invoice id (the link names the
/// invoice in full).
const SMS_SHORT_NAME: usize = 20;
const SMS_SHORT_ID: usize = 16;

/// `text` cut to `max` characters, `..` marking the cut (GSM-7, unlike `…`).
fn shortened(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max.saturating_sub(2)).collect();
    format!("{}..", kept.trim_end())
}

/// The shortest SMS we send, built in: the amount (or the number of
/// invoices) and the one link, after the business name when there is room.
fn minimal_sms(locale: Locale, name: &str, ctx: &ReminderContext) -> String {
    let what = match (locale, ctx.count) {
        (Locale::En, 1) => format!("{} due. Pay: {}", ctx.first.amount, ctx.first.pay_link),
        (Locale::En, n) => format!("{n} invoices due. Pay: {}", ctx.first.pay_link),
        (Locale::ZhHans, 1) | (Locale::ZhHant, 1) => {
            format!("{}，付款 {}", ctx.first.amount, ctx.first.pay_link)
        }
        (Locale::ZhHans, n) => format!("{n}张发票，付款 {}", ctx.first.pay_link),
        (Locale::ZhHant, n) => format!("{n}張發票，付款 {}", ctx.first.pay_link),
    };
    match (name.is_empty(), locale) {
        (true, _) => what,
        (false, Locale::En) => format!("{name}: {what}"),
        (false, _) => format!("{name}：{what}"),
    }
}

impl Renderer {
    /// The SMS for `template`, made to fit `max_segments` with the opt-out
    /// line when it fits too (dropped first): the template's text; else the
    /// same with the business name and the invoice id shortened; else the
    /// built-in shortest form, with as much of the business name as fits.
    /// `None` only when even the shortest form without a name does not fit
    /// (a link or an amount longer than the segments allow: start-up refuses
    /// such settings, [`Renderer::sms_always_fits`]).
    pub fn sms_fitting(
        &self,
        template: &str,
        ctx: &ReminderContext,
        opt_out: &str,
        max_segments: usize,
    ) -> Result<Option<String>, RenderError> {
        let fit = |text: &str| crate::segments::fit(text, &[opt_out], max_segments);
        if let Some(text) = fit(&self.sms(template, ctx)?) {
            return Ok(Some(text));
        }
        let mut short = ctx.clone();
        short.business_name = shortened(&ctx.business_name, SMS_SHORT_NAME);
        short.first.invoice_id = shortened(&ctx.first.invoice_id, SMS_SHORT_ID);
        if let Some(text) = fit(&self.sms(template, &short)?) {
            return Ok(Some(text));
        }
        let name: Vec<char> = short.business_name.chars().collect();
        for keep in (0..=name.len()).rev() {
            let name: String = name[..keep].iter().collect();
            if let Some(text) = fit(&minimal_sms(ctx.locale, name.trim_end(), ctx)) {
                return Ok(Some(text));
            }
        }
        Ok(None)
    }

    /// Whether the shortest SMS fits `max_segments` in every locale with a
    /// link of `pay_link`'s length and an amount of `amount`'s: checked at
    /// start-up with the longest of each, so that every SMS fits.
    pub fn sms_always_fits(pay_link: &str, amount: &str, max_segments: usize) -> bool {
        Locale::ALL.iter().all(|&locale| {
            let line = InvoiceLine {
                invoice_id: String::new(),
                amount: amount.to_owned(),
                invoice_amount: amount.to_owned(),
                partly_paid: false,
                late_fee: None,
                due_date: String::new(),
                due_date_short: String::new(),
                days_until_due: 0,
                days_overdue: 0,
                pay_link: pay_link.to_owned(),
                instalment: None,
                plan_ended: false,
                promised_by: None,
                promised_by_short: None,
            };
            let Some(ctx) = ReminderContext::new(locale, "", "", "", vec![line.clone(), line])
            else {
                return false;
            };
            let one = ReminderContext {
                count: 1,
                ..ctx.clone()
            };
            let many = ReminderContext { count: 99, ..ctx };
            [many, one].iter().all(|c| {
                crate::segments::measure(&minimal_sms(locale, "", c)).segments <= max_segments
            })
        })
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
mod tests;

#[cfg(test)]
mod locale_tests;
