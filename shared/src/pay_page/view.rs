//! What a pay page shows, decided from the link, the invoices it opens and
//! the instant: pure, so every case is a unit test.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;

use super::strings::{self, Strings};
use crate::invoice::{Invoice, InvoiceStatus, RawInvoice};
use crate::link::{LinkState, PayLink};
use crate::money::Money;
use crate::render::Locale;

/// What can be done about one invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payability {
    /// Pay `outstanding` here (late fees included).
    Pay(Money),
    /// Paid on its own hosted page (`pay_url`); `fee` is a late fee that is
    /// payable here once the invoice itself is paid.
    Elsewhere {
        url: String,
        fee: Option<Money>,
    },
    /// Paid in full (on `paid_at`, when recorded).
    Settled {
        paid_at: Option<DateTime<Utc>>,
    },
    Void,
}

/// Decides what the customer can do about `invoice`. An invoice with its
/// own hosted page (`pay_url`, https only) is paid there while anything of
/// the invoice itself is unpaid, so the page never offers a second way to
/// pay the same amount; once it is paid, a late fee still owed is paid here.
pub fn payability(invoice: &Invoice, paid_at: Option<DateTime<Utc>>) -> Payability {
    let outstanding = invoice.outstanding();
    if invoice.status == InvoiceStatus::Void {
        return Payability::Void;
    }
    if invoice.status == InvoiceStatus::Paid || outstanding.amount.is_zero() {
        return Payability::Settled { paid_at };
    }
    let fees: Decimal = invoice.late_fees.values().copied().sum();
    match invoice.pay_url.as_deref() {
        // `Invoice::parse` admits only https URLs.
        Some(url) if invoice.amount_paid < invoice.amount.amount => Payability::Elsewhere {
            url: url.to_owned(),
            fee: (!fees.is_zero()).then(|| Money::new(fees, invoice.amount.currency)),
        },
        _ => Payability::Pay(outstanding),
    }
}

/// One invoice on the page.
#[derive(Debug, Clone, Serialize)]
pub struct InvoiceView {
    pub id: String,
    /// Label and value: the invoice amount, payments so far, each late fee.
    pub rows: Vec<(String, String)>,
    pub outstanding: String,
    /// What is owed as a plain decimal (`1025.00`): the page sends it back
    /// with a payment, so that nobody pays an amount they did not see.
    pub owed: String,
    pub due_date: String,
    pub due_note: String,
    pub overdue: bool,
    /// `pay`, `elsewhere`, `paid` or `void`.
    pub action: &'static str,
    pub pay_label: String,
    pub pay_url: Option<String>,
    pub note: Option<String>,
}

/// A page to show.
#[derive(Debug, Clone, Serialize)]
pub struct PageView {
    pub lang: &'static str,
    pub title: String,
    pub business_name: String,
    /// Several invoices (a customer link).
    pub many: bool,
    pub invoices: Vec<InvoiceView>,
    /// Some invoice can be paid here: Stripe.js is loaded.
    pub payable: bool,
    pub t: &'static Strings,
}

/// What the handler answers a GET with.
#[derive(Debug, Clone)]
pub enum Page {
    /// Unknown (404), or expired and revoked (410) links: one neutral page.
    Gone {
        status: u16,
        locale: Locale,
    },
    /// One invoice paid on its own hosted page, with no late fee: go there.
    Redirect(String),
    Show(PageView),
}

/// The invoice's language, else the browser's (`Accept-Language`), else the business's.
pub fn page_locale(
    invoice_locale: Option<&str>,
    accept_language: Option<&str>,
    default: Locale,
) -> Locale {
    if let Some(l) = invoice_locale.and_then(Locale::parse) {
        return l;
    }
    let mut offered: Vec<(f32, Locale)> = accept_language
        .unwrap_or("")
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let locale = Locale::parse(pieces.next()?)?;
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
            (q > 0.0).then_some((q, locale))
        })
        .collect();
    // Stable: among equal weights the first offered wins.
    offered.sort_by(|a, b| b.0.total_cmp(&a.0));
    offered.first().map_or(default, |(_, l)| *l)
}

/// An invoice as the page reads it: validated, with the instant it was paid.
pub struct PageInvoice {
    pub invoice: Invoice,
    pub paid_at: Option<DateTime<Utc>>,
}

impl PageInvoice {
    /// `None` for an item that is not a valid invoice (logged by the caller).
    pub fn parse(raw: &RawInvoice) -> Option<Self> {
        let invoice = Invoice::parse(raw).ok()?;
        let paid_at = match raw.0.get("paid_at") {
            Some(crate::invoice::RawValue::Text(t)) => DateTime::parse_from_rfc3339(t)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            _ => None,
        };
        Some(Self { invoice, paid_at })
    }
}

/// Inputs the page needs besides the invoices.
pub struct PageContext<'a> {
    pub business_name: &'a str,
    pub business_timezone: Tz,
    pub default_locale: Locale,
    pub accept_language: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// The page for `link` (if any) over the invoices it opens, in link order.
pub fn build(link: Option<&PayLink>, invoices: &[PageInvoice], ctx: &PageContext<'_>) -> Page {
    let gone_locale = page_locale(None, ctx.accept_language, ctx.default_locale);
    let Some(link) = link else {
        return Page::Gone {
            status: 404,
            locale: gone_locale,
        };
    };
    if link.state(ctx.now) != LinkState::Active {
        return Page::Gone {
            status: 410,
            locale: gone_locale,
        };
    }
    if invoices.is_empty() {
        return Page::Gone {
            status: 404,
            locale: gone_locale,
        };
    }
    let locale = page_locale(
        invoices[0].invoice.locale.as_deref(),
        ctx.accept_language,
        ctx.default_locale,
    );
    let many = matches!(link.target, crate::link::LinkTarget::Customer { .. });
    if let [one] = invoices {
        if let Payability::Elsewhere { url, fee: None } = payability(&one.invoice, one.paid_at) {
            if !many {
                return Page::Redirect(url);
            }
        }
    }
    let views: Vec<InvoiceView> = invoices
        .iter()
        .map(|i| invoice_view(i, locale, ctx))
        .collect();
    Page::Show(PageView {
        lang: Strings::of(locale).lang,
        title: strings::title(locale, ctx.business_name),
        business_name: ctx.business_name.to_owned(),
        many,
        payable: views.iter().any(|v| v.action == "pay"),
        invoices: views,
        t: Strings::of(locale),
    })
}

pub(super) fn invoice_view(p: &PageInvoice, locale: Locale, ctx: &PageContext<'_>) -> InvoiceView {
    let t = Strings::of(locale);
    let inv = &p.invoice;
    let currency = inv.amount.currency;
    let mut rows = vec![(t.invoice_amount.to_owned(), inv.amount.to_string())];
    if !inv.amount_paid.is_zero() {
        rows.push((
            t.paid_so_far.to_owned(),
            Money::new(inv.amount_paid, currency).to_string(),
        ));
    }
    for fee in inv.late_fees.values() {
        rows.push((
            t.late_fee.to_owned(),
            Money::new(*fee, currency).to_string(),
        ));
    }
    let today = ctx
        .now
        .with_timezone(&inv.timezone.unwrap_or(ctx.business_timezone))
        .date_naive();
    let days = (today - inv.due_date).num_days();
    let due_note = match days {
        0 => t.due_today.to_owned(),
        d if d > 0 => strings::overdue_by(locale, d),
        d => strings::due_in(locale, -d),
    };
    let outstanding = inv.outstanding();
    let (action, pay_url, note) = match payability(inv, p.paid_at) {
        Payability::Pay(_) => ("pay", None, None),
        Payability::Elsewhere { url, fee } => (
            "elsewhere",
            Some(url),
            fee.map(|f| strings::fee_after_hosted(locale, &f.to_string())),
        ),
        Payability::Settled { paid_at } => (
            "paid",
            None,
            Some(match paid_at {
                Some(at) => strings::paid_on(
                    locale,
                    &locale.long_date(
                        at.with_timezone(&inv.timezone.unwrap_or(ctx.business_timezone))
                            .date_naive(),
                    ),
                ),
                None => t.nothing_to_pay.to_owned(),
            }),
        ),
        Payability::Void => ("void", None, Some(t.void.to_owned())),
    };
    let settled = matches!(action, "paid" | "void");
    InvoiceView {
        id: inv.id.clone(),
        rows,
        outstanding: if settled {
            Money::new(Decimal::ZERO, currency).to_string()
        } else {
            outstanding.to_string()
        },
        owed: outstanding.amount.to_string(),
        due_date: locale.long_date(inv.due_date),
        due_note,
        overdue: days > 0 && !settled,
        action,
        pay_label: strings::pay_amount(locale, &outstanding.to_string()),
        pay_url,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invoice::RawValue;
    use crate::link::{LinkTarget, LinkToken};

    fn raw(pairs: &[(&str, &str)]) -> RawInvoice {
        let mut raw = RawInvoice::default();
        for (k, v) in [
            ("invoice_id", "INV-1"),
            ("customer_id", "C-1"),
            ("customer_name", "Ana Lima"),
            ("email", "ana@example.com"),
            ("phone", "+15555550101"),
            ("amount", "1250.00"),
            ("currency", "USD"),
            ("due_date", "2026-11-20"),
            ("status", "open"),
            ("timezone", "America/New_York"),
        ]
        .iter()
        .chain(pairs)
        {
            raw.insert(*k, RawValue::Text((*v).into()));
        }
        raw
    }

    fn page_invoice(pairs: &[(&str, &str)]) -> PageInvoice {
        PageInvoice::parse(&raw(pairs)).unwrap()
    }

    fn link(target: LinkTarget) -> PayLink {
        PayLink {
            token: LinkToken::placeholder(),
            target,
            created_at: "2026-11-20T14:00:00Z".parse().unwrap(),
            expires_at: "2027-01-04T14:00:00Z".parse().unwrap(),
            revoked_at: None,
        }
    }

    fn ctx(accept: Option<&str>) -> PageContext<'_> {
        PageContext {
            business_name: "Acme Ltd",
            business_timezone: chrono_tz::Europe::London,
            default_locale: Locale::En,
            accept_language: accept,
            now: "2026-11-23T15:00:00Z".parse().unwrap(),
        }
    }

    fn show(page: Page) -> PageView {
        match page {
            Page::Show(v) => v,
            other => panic!("a page, not {other:?}"),
        }
    }

    #[test]
    fn an_open_invoice_shows_what_is_owed_with_each_late_fee() {
        let inv = page_invoice(&[("amount_paid", "250.00"), ("late_fee#overdue_3", "25.00")]);
        let v = show(build(
            Some(&link(LinkTarget::Invoice("INV-1".into()))),
            &[inv],
            &ctx(None),
        ));
        let one = &v.invoices[0];
        assert_eq!(one.action, "pay");
        assert_eq!(one.outstanding, "USD 1,025.00");
        assert_eq!(
            one.rows,
            [
                ("Invoice amount".to_owned(), "USD 1,250.00".to_owned()),
                ("Paid so far".to_owned(), "USD 250.00".to_owned()),
                ("Late fee".to_owned(), "USD 25.00".to_owned()),
            ]
        );
        // 20 November, seen on 23 November in New York: three days.
        assert_eq!(one.due_note, "3 days overdue");
        assert!(one.overdue && v.payable && !v.many);
        assert_eq!(one.pay_label, "Pay USD 1,025.00");
    }

    #[test]
    fn a_paid_or_void_invoice_has_nothing_to_pay() {
        let paid = page_invoice(&[
            ("status", "paid"),
            ("amount_paid", "1250.00"),
            ("paid_at", "2026-11-22T03:00:00Z"),
        ]);
        let v = show(build(
            Some(&link(LinkTarget::Invoice("INV-1".into()))),
            &[paid],
            &ctx(None),
        ));
        assert_eq!(v.invoices[0].action, "paid");
        assert!(!v.payable);
        // 03:00 UTC is still 21 November in New York.
        assert_eq!(
            v.invoices[0].note.as_deref(),
            Some("Paid in full. Last payment received on 21 November 2026. Thank you!")
        );
        let void = page_invoice(&[("status", "void")]);
        let v = show(build(
            Some(&link(LinkTarget::Invoice("INV-1".into()))),
            &[void],
            &ctx(None),
        ));
        assert_eq!(
            (v.invoices[0].action, v.invoices[0].overdue),
            ("void", false)
        );
        assert_eq!(v.invoices[0].outstanding, "USD 0.00");
    }

    #[test]
    fn unknown_expired_and_revoked_links_get_one_neutral_page() {
        let inv = || vec![page_invoice(&[])];
        assert!(matches!(
            build(None, &inv(), &ctx(None)),
            Page::Gone { status: 404, .. }
        ));
        let mut expired = link(LinkTarget::Invoice("INV-1".into()));
        expired.expires_at = "2026-11-23T14:59:59Z".parse().unwrap();
        assert!(matches!(
            build(Some(&expired), &inv(), &ctx(None)),
            Page::Gone { status: 410, .. }
        ));
        let mut revoked = link(LinkTarget::Invoice("INV-1".into()));
        revoked.revoked_at = Some("2026-11-21T00:00:00Z".parse().unwrap());
        assert!(matches!(
            build(Some(&revoked), &inv(), &ctx(None)),
            Page::Gone { status: 410, .. }
        ));
        // A link whose invoice is gone says no more than an unknown one.
        assert!(matches!(
            build(
                Some(&link(LinkTarget::Invoice("INV-1".into()))),
                &[],
                &ctx(None)
            ),
            Page::Gone { status: 404, .. }
        ));
    }

    #[test]
    fn a_hosted_invoice_page_is_where_the_invoice_is_paid() {
        let hosted = [("pay_url", "https://invoice.stripe.com/i/acct_1/test_1")];
        let one = link(LinkTarget::Invoice("INV-1".into()));
        match build(Some(&one), &[page_invoice(&hosted)], &ctx(None)) {
            Page::Redirect(url) => assert_eq!(url, hosted[0].1),
            other => panic!("{other:?}"),
        }
        // With a late fee the page says so, links to the hosted page, and takes no card.
        let with_fee = page_invoice(&[hosted[0], ("late_fee#overdue_3", "25.00")]);
        let v = show(build(Some(&one), &[with_fee], &ctx(None)));
        assert_eq!(v.invoices[0].action, "elsewhere");
        assert!(!v.payable);
        assert!(v.invoices[0].note.as_deref().unwrap().contains("USD 25.00"));
        // Once the invoice is paid there, the fee is paid here.
        let fee_only = page_invoice(&[
            hosted[0],
            ("late_fee#overdue_3", "25.00"),
            ("amount_paid", "1250.00"),
        ]);
        assert_eq!(
            payability(&fee_only.invoice, None),
            Payability::Pay(Money::new(
                "25.00".parse().unwrap(),
                fee_only.invoice.amount.currency
            ))
        );
        // Only an https page is ever linked to: anything else is not a valid invoice.
        assert!(PageInvoice::parse(&raw(&[("pay_url", "javascript:alert(1)")])).is_none());
    }

    #[test]
    fn a_customer_page_lists_each_invoice_it_names() {
        let target = LinkTarget::Customer {
            customer_id: "C-1".into(),
            invoices: vec!["INV-1".into(), "INV-2".into(), "INV-3".into()],
        };
        let invoices = [
            page_invoice(&[]),
            page_invoice(&[
                ("invoice_id", "INV-2"),
                ("status", "paid"),
                ("amount_paid", "1250.00"),
            ]),
            page_invoice(&[
                ("invoice_id", "INV-3"),
                ("pay_url", "https://invoice.stripe.com/i/x"),
            ]),
        ];
        let v = show(build(Some(&link(target)), &invoices, &ctx(None)));
        assert!(v.many && v.payable);
        let actions: Vec<&str> = v.invoices.iter().map(|i| i.action).collect();
        assert_eq!(actions, ["pay", "paid", "elsewhere"]);
    }

    #[test]
    fn the_language_is_the_invoice_s_then_the_browser_s_then_the_business_s() {
        assert_eq!(
            page_locale(Some("zh-Hant"), Some("en"), Locale::En),
            Locale::ZhHant
        );
        assert_eq!(
            page_locale(None, Some("fr-FR,zh-TW;q=0.8,en;q=0.5"), Locale::En),
            Locale::ZhHant
        );
        assert_eq!(
            page_locale(None, Some("en;q=0.2, zh-CN"), Locale::En),
            Locale::ZhHans
        );
        assert_eq!(page_locale(None, Some("zh;q=0"), Locale::En), Locale::En);
        assert_eq!(
            page_locale(Some("fr"), None, Locale::ZhHans),
            Locale::ZhHans
        );
        let zh = page_invoice(&[("locale", "zh-Hans")]);
        let v = show(build(
            Some(&link(LinkTarget::Invoice("INV-1".into()))),
            &[zh],
            &ctx(Some("en")),
        ));
        assert_eq!(v.lang, "zh-Hans");
        assert_eq!(v.invoices[0].due_note, "已逾期 3 天");
    }
}
