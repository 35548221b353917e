//! What finance looks at: receivables by age, days sales outstanding, the
//! collection effectiveness index and what is in flight. Pure: it takes the
//! open invoices, the rollup of what paid invoices contributed
//! ([`rollup`]) and an instant, and returns figures; the CLI, the scheduled report and the statement page share it.
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

pub mod html;
pub mod rollup;
pub mod text;
pub mod weekly;
pub use rollup::Rollup;

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

/// Days sales outstanding and the collection effectiveness index of one
/// currency over a window of `days` days ending at the report's instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Collection {
    pub days: i64,
    /// Invoiced in the window: the totals of open invoices issued in it
    /// (`issued_at`, else the due date) and of paid ones ([`rollup`]'s
    /// `sales_paid`).
    pub sales: Decimal,
    /// Received in the window, less what was paid back ([`rollup`]'s `received`).
    pub received: Decimal,
    /// Owed at the end, and the part of it not yet due.
    pub receivables_end: Decimal,
    pub current_end: Decimal,
    /// `receivables_end / sales * days` (the standard method); `None` without sales.
    pub dso: Option<Decimal>,
    /// `received / (received + receivables_end - current_end) * 100`; `None`
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

/// DSO and CEI of `currency` over the `days` days up to `now`, from the
/// open invoices (as read now) and the rollup's money days. The CEI's
/// textbook form is `(start + sales - end) / (start + sales - current_end)`;
/// as long as only payments take receivables down, `start + sales - end`
/// is what was received, which gives the form here without knowing what
/// was owed at the start. Voided invoices and edited amounts are not in it.
pub fn collection(
    open: &[Invoice],
    rollup: &Rollup,
    currency: Currency,
    now: DateTime<Utc>,
    days: i64,
    business_tz: Tz,
) -> Collection {
    let end = crate::calendar::local_date(now, business_tz);
    let start = end - chrono::Duration::days(days);
    let code = currency.code();
    let first = start + chrono::Duration::days(1);
    let mut c = Collection {
        days,
        sales: rollup.sum(rollup::MONEY, &format!("sales_paid#{code}"), first, end),
        received: rollup.sum(rollup::MONEY, &format!("received#{code}"), first, end),
        receivables_end: Decimal::ZERO,
        current_end: Decimal::ZERO,
        dso: None,
        cei: None,
    };
    for invoice in open {
        if invoice.amount.currency != currency || invoice.status != InvoiceStatus::Open {
            continue;
        }
        let issued = issued_on(invoice, business_tz);
        let owed = invoice.balance().amount;
        if issued > start && issued <= end {
            c.sales += owed + invoice.amount_paid;
        }
        c.receivables_end += owed;
        if invoice.due_date >= end {
            c.current_end += owed;
        }
    }
    if c.sales > Decimal::ZERO {
        c.dso = Some(one_place(c.receivables_end / c.sales * Decimal::from(days)));
    }
    let collectable = c.received + c.receivables_end - c.current_end;
    if collectable > Decimal::ZERO {
        c.cei = Some(one_place(c.received / collectable * Decimal::ONE_HUNDRED));
    }
    c
}

/// A figure rounded to one decimal place, always written with it (`50.0`).
fn one_place(v: Decimal) -> Decimal {
    let mut v = v.round_dp(1);
    v.rescale(1);
    v
}

/// The windows DSO and CEI are given for.
pub const COLLECTION_WINDOWS: [i64; 2] = [30, 90];
/// Reminders (and steps' days) this many days back are in the effectiveness table.
pub const EFFECT_DAYS: i64 = 90;
/// Its columns: paid within this many days.
pub const WITHIN: [i64; 3] = [1, 3, 7];

/// One row of the effectiveness table: the invoices that got `step` on
/// `channel` (`None`: the invoices that reached the step's day and got it
/// on no channel), how many of them, how many paid in full within 1, 3 and
/// 7 days, and the median days to pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effect {
    pub step: String,
    pub channel: Option<String>,
    pub invoices: u64,
    /// Of them, those followed for 1, 3 and 7 whole days by the report's
    /// date (their day at least that many days before it)...
    pub followed: [u64; 3],
    /// ...and, of those, the ones paid in full within that many days.
    pub paid_within: [u64; 3],
    /// `paid_within / followed * 100`, one decimal; `None` when none was followed so long.
    pub share: [Option<Decimal>; 3],
    /// The whole days by which half of them had paid; `None` while under
    /// half have paid (or only after 30 days).
    pub median_days: Option<i64>,
}

/// The effectiveness table: reminders sent (and steps' days reached) from
/// `from` to `to`, rows in the ladder's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effectiveness {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub rows: Vec<Effect>,
}

/// Invoices of one row: their day (the send's, or the step's), the whole
/// days they took to pay (`None`: not paid), how many.
type Cohort = Vec<(NaiveDate, Option<i64>, u64)>;

fn effect(step: &str, channel: Option<&str>, cohort: &Cohort, today: NaiveDate) -> Effect {
    let invoices: u64 = cohort.iter().map(|c| c.2).sum();
    let followed = WITHIN.map(|k| {
        cohort
            .iter()
            .filter(|(day, _, _)| (today - *day).num_days() > k)
            .map(|c| c.2)
            .sum::<u64>()
    });
    let paid_within = WITHIN.map(|k| {
        cohort
            .iter()
            .filter(|(day, d, _)| (today - *day).num_days() > k && d.is_some_and(|d| d < k))
            .map(|c| c.2)
            .sum::<u64>()
    });
    let mut share = [None; 3];
    for i in 0..WITHIN.len() {
        if followed[i] > 0 {
            share[i] = Some(one_place(
                Decimal::from(paid_within[i]) * Decimal::ONE_HUNDRED / Decimal::from(followed[i]),
            ));
        }
    }
    let mut paid: Vec<(i64, u64)> = cohort
        .iter()
        .filter_map(|(_, d, n)| Some(((*d)?, *n)))
        .collect();
    paid.sort_unstable();
    let mut seen = 0u64;
    let median_days = paid.iter().find_map(|&(d, n)| {
        seen += n;
        (d < rollup::LATER && seen * 2 >= invoices).then_some(d)
    });
    Effect {
        step: step.to_owned(),
        channel: channel.map(str::to_owned),
        invoices,
        followed,
        paid_within,
        share,
        median_days,
    }
}

/// Reminder effectiveness at `now`, for the ladder `steps` (name and days
/// from the due date, in order): per step and channel, the invoices that
/// got it in the last [`EFFECT_DAYS`] and how soon they paid, and per step
/// the same for the invoices that reached its day without it. From the
/// rollup (paid invoices) and the open invoices' own sends (`open`: each
/// with [`rollup::sends`]). Days are UTC dates for sends and the
/// customer's dates for steps' days ([`rollup`]).
pub fn effectiveness(
    open: &[(Invoice, Vec<rollup::Sent>)],
    rollup: &Rollup,
    steps: &[(String, i64)],
    now: DateTime<Utc>,
) -> Effectiveness {
    let today = now.date_naive();
    // The last EFFECT_DAYS days, the report's own included.
    let from = today - chrono::Duration::days(EFFECT_DAYS - 1);
    let to = today;
    let in_window = |d: NaiveDate| d >= from && d <= to;
    // Reminded: (step, channel) -> its cohort.
    let mut reminded: BTreeMap<(String, String), Cohort> = BTreeMap::new();
    for (day, attrs) in rollup.days_of(rollup::SENT, from, to) {
        for (attr, n) in attrs {
            let mut parts = attr.rsplitn(3, '#');
            let (Some(d), Some(channel), Some(step)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(d), Ok(n)) = (d.parse::<i64>(), u64::try_from(*n)) else {
                continue;
            };
            if n > 0 {
                reminded
                    .entry((step.to_owned(), channel.to_owned()))
                    .or_default()
                    .push((day, paid_by(day, d, today), n));
            }
        }
    }
    for (invoice, sends) in open {
        if invoice.status != InvoiceStatus::Open {
            continue;
        }
        for s in sends.iter().filter(|s| in_window(s.at.date_naive())) {
            reminded
                .entry((s.step.clone(), s.channel.clone()))
                .or_default()
                .push((s.at.date_naive(), None, 1));
        }
    }
    let mut order: Vec<String> = steps.iter().map(|(s, _)| s.clone()).collect();
    for (step, _) in reminded.keys() {
        if !order.contains(step) {
            order.push(step.clone());
        }
    }
    let mut rows = Vec::new();
    for step in &order {
        for ((_, channel), cohort) in reminded.iter().filter(|((s, _), _)| s == step) {
            rows.push(effect(step, Some(channel), cohort, today));
        }
        // The baseline: invoices that reached the step's day without it.
        let Some(&(_, offset)) = steps.iter().find(|(s, _)| s == step) else {
            continue;
        };
        let shift = chrono::Duration::days(offset);
        let mut cohort = Cohort::new();
        for (due, attrs) in rollup.days_of(rollup::DUE, from - shift, to - shift) {
            for r in offset..=rollup::DUE_RANGE.1 {
                let all = attrs
                    .get(&format!("{}#{r}", rollup::ALL))
                    .copied()
                    .unwrap_or_default();
                let got = attrs
                    .get(&format!("{step}#{r}"))
                    .copied()
                    .unwrap_or_default();
                if let Ok(n) = u64::try_from(all - got) {
                    if n > 0 {
                        let point = due + shift;
                        let d = (r - offset).min(rollup::LATER);
                        cohort.push((point, paid_by(point, d, today), n));
                    }
                }
            }
        }
        for (invoice, sends) in open {
            let point = invoice.due_date + shift;
            let reached = point <= crate::calendar::local_date(now, zone_of(invoice));
            if invoice.status == InvoiceStatus::Open
                && in_window(point)
                && reached
                && !sends.iter().any(|s| s.current && &s.step == step)
            {
                cohort.push((point, None, 1));
            }
        }
        if !cohort.is_empty() {
            rows.push(effect(step, None, &cohort, today));
        }
    }
    Effectiveness { from, to, rows }
}

/// `Some(d)` for an invoice paid `d` days after `day`, unless that is after
/// `today` (a report for an earlier date does not know of it yet).
fn paid_by(day: NaiveDate, d: i64, today: NaiveDate) -> Option<i64> {
    (day + chrono::Duration::days(d) <= today).then_some(d)
}

/// The zone the rollup counts an invoice's days in ([`rollup::zone`]).
fn zone_of(invoice: &Invoice) -> Tz {
    invoice.timezone.unwrap_or(Tz::UTC)
}

/// What the report reads: the open invoices (each with what it got), the
/// rollup days of its windows, the open unapplied payments and the records
/// of the customers with open invoices.
#[derive(Debug, Clone, Default)]
pub struct ReportInput {
    pub open: Vec<(Invoice, Vec<rollup::Sent>)>,
    /// Open items that are not valid invoices (counted, not reported on).
    pub invalid: u64,
    pub rollup: Rollup,
    /// Open unapplied payments: currency and amount.
    pub unapplied: Vec<(Currency, Decimal)>,
    pub customers: std::collections::HashMap<String, crate::customer::CustomerRecord>,
}

/// Customers with open invoices whose contacts cannot be used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Contacts {
    /// Customers with at least one suppressed address (bounce, complaint).
    pub suppressed: u64,
    /// Customers who opted out of e-mail, and of SMS.
    pub email_opt_outs: u64,
    pub sms_opt_outs: u64,
}

/// The whole report: aging and what is in flight, DSO and CEI per
/// currency and window, reminder effectiveness, unapplied money and unusable
/// contacts. Its JSON is documented in `docs/reports.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub as_of: DateTime<Utc>,
    /// Currency -> its aging ([`aging`]).
    pub by_currency: BTreeMap<String, Aging>,
    pub in_flight: InFlight,
    /// Currency -> one entry per [`COLLECTION_WINDOWS`].
    pub collection: BTreeMap<String, Vec<Collection>>,
    pub effectiveness: Effectiveness,
    /// Open unapplied payments per currency (amount, count).
    pub unapplied: BTreeMap<String, Total>,
    pub contacts: Contacts,
    pub invalid_items: u64,
}

/// The report at `now` from what was read, for the ladder `steps`.
pub fn build(
    input: &ReportInput,
    steps: &[(String, i64)],
    now: DateTime<Utc>,
    business_tz: Tz,
) -> Report {
    let invoices: Vec<Invoice> = input.open.iter().map(|(i, _)| i.clone()).collect();
    let aging_report = aging(&invoices, now, business_tz);
    let mut currencies: Vec<Currency> = invoices.iter().map(|i| i.amount.currency).collect();
    for (sk, attrs) in &input.rollup.days {
        if sk.starts_with(rollup::MONEY) {
            currencies.extend(
                attrs
                    .keys()
                    .filter_map(|a| Currency::parse(a.rsplit_once('#')?.1)),
            );
        }
    }
    currencies.sort_by_key(|c| c.code());
    currencies.dedup();
    let collection = currencies
        .iter()
        .map(|&c| {
            let windows = COLLECTION_WINDOWS
                .iter()
                .map(|&days| collection(&invoices, &input.rollup, c, now, days, business_tz))
                .collect();
            (c.code().to_owned(), windows)
        })
        .collect();
    let mut unapplied: BTreeMap<String, Total> = BTreeMap::new();
    for (currency, amount) in &input.unapplied {
        unapplied
            .entry(currency.code().to_owned())
            .or_default()
            .add(*amount);
    }
    let mut contacts = Contacts::default();
    let mut ids: Vec<&str> = invoices.iter().map(|i| i.customer_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        if let Some(record) = input.customers.get(id) {
            contacts.suppressed += u64::from(!record.suppressed.is_empty());
            contacts.email_opt_outs += u64::from(!record.accepts(crate::channel::Channel::Email));
            contacts.sms_opt_outs += u64::from(!record.accepts(crate::channel::Channel::Sms));
        }
    }
    Report {
        as_of: now,
        by_currency: aging_report.by_currency,
        in_flight: aging_report.in_flight,
        collection,
        effectiveness: effectiveness(&input.open, &input.rollup, steps, now),
        unapplied,
        contacts,
        invalid_items: input.invalid,
    }
}

/// A payment as a statement shows it: when the money came, how much, in
/// which currency, for which invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub invoice_id: String,
    pub at: DateTime<Utc>,
    pub amount: Decimal,
    pub currency: Currency,
}

impl Received {
    /// The money a payment record (sort key `payment#<key>` under the
    /// invoice) says came in; `None` for any other record, or one that does
    /// not say when, how much and in which currency.
    pub fn from_record(
        invoice_id: &str,
        sk: &str,
        record: &crate::invoice::RawInvoice,
    ) -> Option<Self> {
        use crate::invoice::RawValue;
        let text = |name: &str| match record.0.get(name) {
            Some(RawValue::Text(t)) => Some(t.as_str()),
            _ => None,
        };
        if !sk.starts_with(crate::ledger::PAYMENT_PREFIX) {
            return None;
        }
        Some(Self {
            invoice_id: invoice_id.to_owned(),
            at: DateTime::parse_from_rfc3339(text("paid_at")?)
                .ok()?
                .with_timezone(&Utc),
            amount: text("amount")?.parse().ok()?,
            currency: Currency::parse(text("currency")?)?,
        })
    }
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
    /// Currency code -> what is owed in each aging bucket ([`BUCKETS`]).
    pub aging: BTreeMap<String, [Decimal; 6]>,
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

/// The most invoices a statement reads and shows.
pub const STATEMENT_MAX_INVOICES: usize = 100;

/// Which of a customer's invoices a statement reads, from what the customer
/// index says of each (`(invoice_id, open)`, in due-date order): the open
/// ones first, oldest due first, then the recently paid ones, at most
/// [`STATEMENT_MAX_INVOICES`]; `true` when some were left out.
pub fn statement_picks(found: &[(String, bool)]) -> (Vec<String>, bool) {
    let mut picks: Vec<&(String, bool)> = found.iter().filter(|(_, open)| *open).collect();
    picks.extend(found.iter().filter(|(_, open)| !*open));
    let more = picks.len() > STATEMENT_MAX_INVOICES;
    let ids = picks
        .into_iter()
        .take(STATEMENT_MAX_INVOICES)
        .map(|(id, _)| id.clone())
        .collect();
    (ids, more)
}

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
        aging: BTreeMap::new(),
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
        s.aging.entry(code.clone()).or_default()[bucket(days)] += owed.amount;
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
