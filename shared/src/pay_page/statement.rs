//! A customer's statement on the pay page (`<token>/statement`, the
//! customer page's "all invoices" view): their open invoices with their age
//! and each one's pay button, the total due and the amounts by age per
//! currency, and the payments of the last 90 days. Pure, from the figures
//! of [`crate::report::statement`]; printable (the page's print style).

use chrono::Duration;
use serde::Serialize;

use super::strings::{self, Strings};
use super::view::{invoice_view, page_locale, InvoiceView, PageContext, PageInvoice};
use crate::money::{Currency, Money};
use crate::report::{Received, BUCKETS, STATEMENT_MAX_INVOICES, STATEMENT_PAYMENT_DAYS};

/// One open invoice on the statement: the pay page's view of it (its pay
/// button), with its age and everything it still owes.
#[derive(Debug, Clone, Serialize)]
pub struct StatementLineView {
    pub invoice: InvoiceView,
    /// Its aging bucket ([`BUCKETS`]).
    pub bucket: &'static str,
    pub bucket_label: &'static str,
    /// Everything it owes (a plan's later instalments included), formatted
    /// and as a plain decimal.
    pub balance: String,
    pub value: String,
    pub currency: String,
}

/// An amount in one currency, formatted and as a plain decimal.
#[derive(Debug, Clone, Serialize)]
pub struct Amount {
    pub currency: String,
    pub text: String,
    pub value: String,
}

/// One aging bucket: what is owed in it in each currency of the statement.
#[derive(Debug, Clone, Serialize)]
pub struct AgingRow {
    pub bucket: &'static str,
    pub label: &'static str,
    pub amounts: Vec<Amount>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentLine {
    pub date: String,
    pub invoice_id: String,
    pub amount: Amount,
}

/// The statement page.
#[derive(Debug, Clone, Serialize)]
pub struct StatementView {
    pub lang: &'static str,
    pub title: String,
    pub business_name: String,
    pub heading: String,
    pub lines: Vec<StatementLineView>,
    pub totals: Vec<Amount>,
    pub aging: Vec<AgingRow>,
    pub payments_title: String,
    pub payments: Vec<PaymentLine>,
    /// Said when only the first invoices could be shown.
    pub more: Option<String>,
    /// Some line can be paid here: Stripe.js is loaded.
    pub payable: bool,
    pub t: &'static Strings,
}

fn amount(value: rust_decimal::Decimal, code: &str) -> Amount {
    let text = Currency::parse(code).map_or_else(
        || format!("{code} {value}"),
        |c| Money::new(value, c).to_string(),
    );
    Amount {
        currency: code.to_owned(),
        text,
        value: value.to_string(),
    }
}

/// The statement of `customer_id` over `invoices` (theirs: open ones and
/// recently paid ones) and the payments received on them; `more` when
/// the store left some of their invoices out.
pub fn statement_view(
    customer_id: &str,
    invoices: &[PageInvoice],
    payments: &[Received],
    more: bool,
    ctx: &PageContext<'_>,
) -> StatementView {
    let s = crate::report::statement(
        customer_id,
        invoices.iter().map(|p| &p.invoice),
        payments,
        ctx.now,
        ctx.business_timezone,
    );
    // The language and calendar of the oldest open invoice, else of any.
    let first = s
        .lines
        .first()
        .and_then(|l| invoices.iter().find(|p| p.invoice.id == l.invoice_id))
        .or_else(|| invoices.first());
    let locale = page_locale(
        first.and_then(|p| p.invoice.locale.as_deref()),
        ctx.accept_language,
        ctx.default_locale,
    );
    let zone = first
        .and_then(|p| p.invoice.timezone)
        .unwrap_or(ctx.business_timezone);
    let t = Strings::of(locale);
    let lines: Vec<StatementLineView> = s
        .lines
        .iter()
        .filter_map(|l| {
            let p = invoices.iter().find(|p| p.invoice.id == l.invoice_id)?;
            let bucket = crate::report::bucket(l.days_overdue);
            let owed = amount(l.owed, &l.currency);
            Some(StatementLineView {
                invoice: invoice_view(p, locale, ctx),
                bucket: BUCKETS[bucket],
                bucket_label: t.buckets[bucket],
                balance: owed.text,
                value: owed.value,
                currency: owed.currency,
            })
        })
        .collect();
    let aging = (0..BUCKETS.len())
        .map(|b| AgingRow {
            bucket: BUCKETS[b],
            label: t.buckets[b],
            amounts: s
                .aging
                .iter()
                .map(|(code, buckets)| amount(buckets[b], code))
                .collect(),
        })
        .collect();
    let payments = s
        .recent_payments
        .iter()
        .map(|p| PaymentLine {
            date: locale.long_date(p.at.with_timezone(&zone).date_naive()),
            invoice_id: p.invoice_id.clone(),
            amount: amount(p.amount, &p.currency),
        })
        .collect();
    let heading = strings::statement_of(
        locale,
        &s.customer_name,
        &locale.long_date(ctx.now.with_timezone(&zone).date_naive()),
    );
    StatementView {
        lang: t.lang,
        title: format!("{}: {}", ctx.business_name, t.statement),
        business_name: ctx.business_name.to_owned(),
        heading,
        payable: lines.iter().any(|l| l.invoice.action == "pay"),
        lines,
        totals: s
            .total_due
            .iter()
            .map(|(code, total)| amount(*total, code))
            .collect(),
        aging,
        payments_title: strings::payments_in_last(locale, STATEMENT_PAYMENT_DAYS),
        payments,
        more: more.then(|| strings::only_first(locale, STATEMENT_MAX_INVOICES)),
        t,
    }
}

/// The first day whose payments a statement at `now` may list: the
/// store's cut (by date, so an instant of any format on that day passes),
/// before the statement's own exact one.
pub fn paid_since(now: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
    (now - Duration::days(STATEMENT_PAYMENT_DAYS + 1)).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invoice::{RawInvoice, RawValue};
    use crate::render::Locale;
    use chrono::{DateTime, Utc};
    use chrono_tz::Tz;

    fn page_invoice(id: &str, pairs: &[(&str, &str)]) -> PageInvoice {
        let mut raw = RawInvoice::default();
        for (k, v) in [
            ("invoice_id", id),
            ("customer_id", "C-1"),
            ("customer_name", "Ana Lima"),
            ("email", "ana@example.com"),
            ("amount", "100.00"),
            ("currency", "USD"),
            ("due_date", "2026-11-20"),
            ("status", "open"),
        ]
        .iter()
        .chain(pairs)
        {
            raw.0
                .insert((*k).to_owned(), RawValue::Text((*v).to_owned()));
        }
        PageInvoice::parse(&raw).expect("a valid invoice")
    }

    fn ctx(now: DateTime<Utc>) -> PageContext<'static> {
        PageContext {
            business_name: "Acme Ltd",
            business_timezone: Tz::UTC,
            default_locale: Locale::En,
            accept_language: None,
            now,
        }
    }

    #[test]
    fn a_statement_shows_each_open_invoice_payable_with_its_age_and_the_totals_by_age() {
        let now: DateTime<Utc> = "2026-12-02T12:00:00Z".parse().unwrap();
        let invoices = [
            page_invoice("NEW", &[("due_date", "2026-12-10")]),
            page_invoice(
                "OLD",
                &[("due_date", "2026-09-01"), ("amount_paid", "40.00")],
            ),
            page_invoice(
                "HOSTED",
                &[
                    ("due_date", "2026-11-25"),
                    ("pay_url", "https://pay.example/i/1"),
                ],
            ),
            page_invoice(
                "PAID",
                &[
                    ("status", "paid"),
                    ("amount_paid", "100.00"),
                    ("paid_at", "2026-11-30T09:00:00Z"),
                ],
            ),
            page_invoice("EUR-1", &[("currency", "EUR"), ("amount", "80.00")]),
        ];
        let usd = Currency::parse("USD").unwrap();
        let payments = [
            Received {
                invoice_id: "PAID".into(),
                at: "2026-11-30T09:00:00Z".parse().unwrap(),
                amount: "100.00".parse().unwrap(),
                currency: usd,
            },
            Received {
                invoice_id: "OLD".into(),
                at: "2026-06-30T09:00:00Z".parse().unwrap(),
                amount: "40.00".parse().unwrap(),
                currency: usd,
            },
        ];
        let v = statement_view("C-1", &invoices, &payments, false, &ctx(now));
        let lines: Vec<(&str, &str, &str, &str)> = v
            .lines
            .iter()
            .map(|l| {
                (
                    l.invoice.id.as_str(),
                    l.bucket,
                    l.value.as_str(),
                    l.invoice.action,
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                ("OLD", "91-120", "60.00", "pay"),
                ("EUR-1", "1-30", "80.00", "pay"),
                ("HOSTED", "1-30", "100.00", "elsewhere"),
                ("NEW", "not_due", "100.00", "pay"),
            ],
            "open invoices oldest due first; the paid one is not a line"
        );
        assert_eq!(v.lines[0].bucket_label, "91–120 days overdue");
        assert_eq!(v.lines[0].invoice.pay_label, "Pay USD 60.00");
        let totals: Vec<(&str, &str)> = v
            .totals
            .iter()
            .map(|a| (a.currency.as_str(), a.text.as_str()))
            .collect();
        assert_eq!(totals, [("EUR", "EUR 80.00"), ("USD", "USD 260.00")]);
        assert_eq!(v.aging.len(), 6);
        let usd_by_age: Vec<&str> = v
            .aging
            .iter()
            .map(|r| r.amounts[1].value.as_str())
            .collect();
        assert_eq!(usd_by_age, ["100.00", "100.00", "0", "0", "60.00", "0"]);
        assert_eq!(v.payments.len(), 1, "payments of the last 90 days only");
        assert_eq!(v.payments[0].date, "30 November 2026");
        assert_eq!(v.heading, "Statement for Ana Lima, 2 December 2026");
        assert!(v.payable && v.more.is_none());
    }

    #[test]
    fn a_statement_is_in_the_customer_s_language_and_says_when_it_is_cut() {
        let now: DateTime<Utc> = "2026-12-02T12:00:00Z".parse().unwrap();
        let invoices = [page_invoice(
            "A",
            &[("locale", "zh-Hant"), ("timezone", "Asia/Taipei")],
        )];
        let v = statement_view("C-1", &invoices, &[], true, &ctx(now));
        assert_eq!(v.lang, "zh-Hant");
        assert_eq!(v.lines[0].bucket_label, "逾期 1–30 天");
        assert!(v.heading.contains("2026年12月2日"), "{}", v.heading);
        assert!(v.more.as_deref().is_some_and(|m| m.contains("100")));
        let none = statement_view("C-1", &[], &[], false, &ctx(now));
        assert!(none.lines.is_empty() && none.totals.is_empty() && !none.payable);
        assert_eq!(none.heading, "Statement, 2 December 2026");
    }

    #[test]
    fn the_store_s_cut_for_payments_is_never_later_than_the_statement_s() {
        let now: DateTime<Utc> = "2026-12-02T00:30:00Z".parse().unwrap();
        let exact = now - Duration::days(STATEMENT_PAYMENT_DAYS);
        assert!(paid_since(now) < exact.date_naive());
    }
}
