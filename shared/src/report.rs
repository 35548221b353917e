//! What finance looks at: receivables by age, days sales outstanding, the
//! collection effectiveness index and what is in flight. Pure: it takes the
//! invoices (and the payments in its windows) and an instant, and returns
//! figures; the CLI, the scheduled report and the statement page share it.
//!
//! Every figure is per currency: amounts in different currencies are never
//! added. Days overdue count in the customer's calendar (the invoice's
//! `timezone`, else the business's), as the ladder does.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::invoice::{Invoice, InvoiceStatus};
use crate::money::Currency;

/// The aging buckets, by days overdue: not yet due (0 or fewer), then
/// 1-30, 31-60, 61-90, 91-120 and over 120.
pub const BUCKETS: [&str; 6] = ["not_due", "1-30", "31-60", "61-90", "91-120", "over_120"];

/// The bucket (index into [`BUCKETS`]) of an invoice `days` overdue.
pub fn bucket(days: i64) -> usize {
    match days {
        i64::MIN..=0 => 0,
        1..=30 => 1,
        31..=60 => 2,
        61..=90 => 3,
        91..=120 => 4,
        _ => 5,
    }
}

/// An amount and how many invoices make it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Total {
    pub amount: Decimal,
    pub count: u64,
}

impl Total {
    fn add(&mut self, amount: Decimal) {
        self.amount += amount;
        self.count += 1;
    }
}

/// One currency's receivables by age.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Aging {
    /// By bucket, in [`BUCKETS`] order.
    pub buckets: [Total; 6],
    /// Everything open (the buckets' sum).
    pub open: Total,
    /// The customers with the most overdue, most first (at most [`TOP`]).
    pub top_overdue: Vec<CustomerOverdue>,
}

/// How many customers the top list holds.
pub const TOP: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerOverdue {
    pub customer_id: String,
    pub customer_name: String,
    pub overdue: Decimal,
    pub invoices: u64,
    /// The most days any of them is overdue.
    pub oldest_days: i64,
}

/// What is held back or waiting, counted over open invoices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InFlight {
    pub paused: u64,
    pub disputed: u64,
    pub on_plan: u64,
    pub promised: u64,
    pub in_collections: u64,
}

/// The aging report of one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgingReport {
    pub as_of: Option<DateTime<Utc>>,
    pub by_currency: BTreeMap<String, Aging>,
    pub in_flight: InFlight,
}

/// Days `invoice` is overdue at `now` in its customer's calendar (negative:
/// days until due).
pub fn days_overdue(invoice: &Invoice, now: DateTime<Utc>, business_tz: Tz) -> i64 {
    let today = crate::calendar::local_date(now, invoice.timezone.unwrap_or(business_tz));
    (today - invoice.due_date).num_days()
}

/// Receivables by age at `now`: every open invoice with something owed
/// (late fees included; a plan's whole balance), in its currency's buckets.
/// Paid and void invoices, and open ones with nothing owed, are not in it.
pub fn aging<'a>(
    invoices: impl IntoIterator<Item = &'a Invoice>,
    now: DateTime<Utc>,
    business_tz: Tz,
) -> AgingReport {
    let mut report = AgingReport {
        as_of: Some(now),
        ..AgingReport::default()
    };
    let mut customers: BTreeMap<(String, String), CustomerOverdue> = BTreeMap::new();
    for invoice in invoices {
        if invoice.status != InvoiceStatus::Open {
            continue;
        }
        let owed = invoice.balance();
        if owed.amount.is_zero() {
            continue;
        }
        let flight = &mut report.in_flight;
        flight.paused += u64::from(invoice.paused_until.is_some_and(|t| t > now));
        flight.disputed += u64::from(invoice.disputed);
        flight.on_plan += u64::from(invoice.plan.is_some());
        flight.promised += u64::from(invoice.promised_by.is_some_and(|d| {
            d >= crate::calendar::local_date(now, invoice.timezone.unwrap_or(business_tz))
        }));
        flight.in_collections += u64::from(invoice.in_collections);
        let code = owed.currency.code().to_owned();
        let days = days_overdue(invoice, now, business_tz);
        let aging = report.by_currency.entry(code.clone()).or_default();
        aging.buckets[bucket(days)].add(owed.amount);
        aging.open.add(owed.amount);
        if days > 0 {
            let c = customers
                .entry((code, invoice.customer_id.clone()))
                .or_insert_with(|| CustomerOverdue {
                    customer_id: invoice.customer_id.clone(),
                    customer_name: invoice.customer_name.clone(),
                    overdue: Decimal::ZERO,
                    invoices: 0,
                    oldest_days: 0,
                });
            c.overdue += owed.amount;
            c.invoices += 1;
            c.oldest_days = c.oldest_days.max(days);
        }
    }
    for ((code, _), c) in customers {
        if let Some(aging) = report.by_currency.get_mut(&code) {
            aging.top_overdue.push(c);
        }
    }
    for aging in report.by_currency.values_mut() {
        aging.top_overdue.sort_by(|a, b| {
            b.overdue
                .cmp(&a.overdue)
                .then_with(|| a.customer_id.cmp(&b.customer_id))
        });
        aging.top_overdue.truncate(TOP);
    }
    report
}

/// A payment as the figures need it: when the money came, how much, in
/// which currency, for which invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub invoice_id: String,
    pub at: DateTime<Utc>,
    pub amount: Decimal,
    pub currency: Currency,
}

/// Days sales outstanding and the collection effectiveness index of one
/// currency over a window of `days` days ending at the report's instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Collection {
    pub days: i64,
    /// Invoiced in the window (invoices whose `issued_at`, else due date, falls in it).
    pub sales: Decimal,
    /// Owed at the window's start, and at its end.
    pub receivables_start: Decimal,
    pub receivables_end: Decimal,
    /// Owed at the end on invoices not yet due then.
    pub current_end: Decimal,
    /// `receivables_end / sales * days` (the standard method); `None` without sales.
    pub dso: Option<Decimal>,
    /// `(start + sales - end) / (start + sales - current_end) * 100`; `None`
    /// when nothing was collectable.
    pub cei: Option<Decimal>,
}

/// The date an invoice counts as a sale: its `issued_at` (an RFC 3339
/// instant or a date), else its due date.
fn issued_on(invoice: &Invoice, business_tz: Tz) -> NaiveDate {
    invoice
        .issued_at
        .as_deref()
        .and_then(|t| {
            crate::calendar::parse_date(t).or_else(|| {
                DateTime::parse_from_rfc3339(t)
                    .ok()
                    .map(|i| i.with_timezone(&business_tz).date_naive())
            })
        })
        .unwrap_or(invoice.due_date)
}

/// DSO and CEI of `currency` over the `days` days up to `now`. What an
/// invoice owed at an instant is its amount (and the late fees it carries
/// now) less what was paid before that instant; an invoice counts from its
/// issue date; a void one never counts.
pub fn collection<'a>(
    invoices: impl IntoIterator<Item = &'a Invoice> + Clone,
    payments: &[Received],
    currency: Currency,
    now: DateTime<Utc>,
    days: i64,
    business_tz: Tz,
) -> Collection {
    let end = crate::calendar::local_date(now, business_tz);
    let start = end - chrono::Duration::days(days);
    let start_at = now - chrono::Duration::days(days);
    let mut c = Collection {
        days,
        sales: Decimal::ZERO,
        receivables_start: Decimal::ZERO,
        receivables_end: Decimal::ZERO,
        current_end: Decimal::ZERO,
        dso: None,
        cei: None,
    };
    for invoice in invoices {
        if invoice.amount.currency != currency || invoice.status == InvoiceStatus::Void {
            continue;
        }
        let issued = issued_on(invoice, business_tz);
        let total = invoice.balance().amount + invoice.amount_paid;
        let paid_by = |at: DateTime<Utc>| -> Decimal {
            payments
                .iter()
                .filter(|p| p.invoice_id == invoice.id && p.currency == currency && p.at <= at)
                .map(|p| p.amount)
                .sum()
        };
        if issued > start && issued <= end {
            c.sales += total;
        }
        if issued <= start {
            c.receivables_start += (total - paid_by(start_at)).max(Decimal::ZERO);
        }
        if issued <= end {
            let owed = (total - paid_by(now)).max(Decimal::ZERO);
            c.receivables_end += owed;
            if invoice.due_date >= end {
                c.current_end += owed;
            }
        }
    }
    if !c.sales.is_zero() {
        c.dso = Some((c.receivables_end / c.sales * Decimal::from(days)).round_dp(1));
    }
    let collectable = c.receivables_start + c.sales - c.current_end;
    if collectable > Decimal::ZERO {
        let collected = c.receivables_start + c.sales - c.receivables_end;
        c.cei = Some((collected / collectable * Decimal::ONE_HUNDRED).round_dp(1));
    }
    c
}

/// One open invoice on a customer's statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementLine {
    pub invoice_id: String,
    pub due_date: NaiveDate,
    /// Days overdue in the customer's calendar (0 or fewer: not yet due).
    pub days_overdue: i64,
    /// Its aging bucket ([`BUCKETS`]).
    pub bucket: &'static str,
    /// What it still owes, late fees included.
    pub owed: Decimal,
    pub currency: String,
}

/// A customer's statement: their open invoices with their aging, what they
/// owe in each currency, and the payments received in the last `days`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub customer_id: String,
    pub customer_name: String,
    pub as_of: DateTime<Utc>,
    /// Oldest due first.
    pub lines: Vec<StatementLine>,
    /// Currency code -> total owed.
    pub total_due: BTreeMap<String, Decimal>,
    /// Newest first.
    pub recent_payments: Vec<StatementPayment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementPayment {
    pub invoice_id: String,
    pub at: DateTime<Utc>,
    pub amount: Decimal,
    pub currency: String,
}

/// How far back a statement lists payments.
pub const STATEMENT_PAYMENT_DAYS: i64 = 90;

/// The statement of `customer_id` at `now` from its invoices and their payments.
pub fn statement<'a>(
    customer_id: &str,
    invoices: impl IntoIterator<Item = &'a Invoice>,
    payments: &[Received],
    now: DateTime<Utc>,
    business_tz: Tz,
) -> Statement {
    let mut s = Statement {
        customer_id: customer_id.to_owned(),
        customer_name: String::new(),
        as_of: now,
        lines: Vec::new(),
        total_due: BTreeMap::new(),
        recent_payments: Vec::new(),
    };
    for invoice in invoices {
        if invoice.customer_id != customer_id {
            continue;
        }
        if s.customer_name.is_empty() {
            s.customer_name.clone_from(&invoice.customer_name);
        }
        let owed = invoice.balance();
        if invoice.status != InvoiceStatus::Open || owed.amount.is_zero() {
            continue;
        }
        let days = days_overdue(invoice, now, business_tz);
        let code = owed.currency.code().to_owned();
        *s.total_due.entry(code.clone()).or_default() += owed.amount;
        s.lines.push(StatementLine {
            invoice_id: invoice.id.clone(),
            due_date: invoice.due_date,
            days_overdue: days,
            bucket: BUCKETS[bucket(days)],
            owed: owed.amount,
            currency: code,
        });
    }
    s.lines
        .sort_by(|a, b| (a.due_date, &a.invoice_id).cmp(&(b.due_date, &b.invoice_id)));
    let since = now - chrono::Duration::days(STATEMENT_PAYMENT_DAYS);
    s.recent_payments = payments
        .iter()
        .filter(|p| p.at > since && p.at <= now)
        .map(|p| StatementPayment {
            invoice_id: p.invoice_id.clone(),
            at: p.at,
            amount: p.amount,
            currency: p.currency.code().to_owned(),
        })
        .collect();
    s.recent_payments.sort_by_key(|p| std::cmp::Reverse(p.at));
    s
}

#[cfg(test)]
mod tests;
