//! The records the report's money and effectiveness figures are counted
//! from, so that it never reads the history of paid invoices: a paid
//! invoice leaves the due index, and what it contributes is added, in the
//! payment's own transaction (so exactly once), to compact per-day items
//! under the partition [`PARTITION`]:
//!
//! - `money#<date>` (the UTC date): `received#<CUR>`, what came in that day
//!   (less what went back), and `sales_paid#<CUR>`, the totals of invoices
//!   issued that day that are now paid (a reopened invoice takes its total
//!   back);
//! - `sent#<date>` (the UTC date a reminder went): `<step>#<channel>#<d>`,
//!   how many invoices that got that step on that channel that day were
//!   paid in full `d` whole days (24 h) after it (`d` up to
//!   [`LATER`], which stands for "later");
//! - `due#<date>` (the invoice's due date): `ALL#<r>`, how many invoices due
//!   that day were paid `r` days after it (negative: before), and
//!   `<step>#<r>` the same for those of them that got `<step>` on some
//!   channel in their current ladder. Their difference is the invoices that
//!   got no reminder at the step: the effectiveness table's baseline.
//!
//! The invoices still open carry what they got on their own item
//! (`sent_at#<step>#<channel>`, set by the run when a message goes), and the
//! report reads those through the due index. Days in the customer's
//! calendar are the invoice's own `timezone`'s, else UTC.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use crate::invoice::{RawInvoice, RawValue};
use crate::money::Currency;

/// Partition key of the rollup items.
pub const PARTITION: &str = "#rollup";
/// Sort-key prefixes of the three kinds of day.
pub const MONEY: &str = "money#";
pub const SENT: &str = "sent#";
pub const DUE: &str = "due#";
/// Days after a reminder counted one by one; this one stands for "later".
pub const LATER: i64 = 31;
/// Days from the due date kept one by one (clamped to this range).
pub const DUE_RANGE: (i64, i64) = (-60, 180);
/// The `due#` items' count of every invoice paid (upper case: no step's
/// name can be it).
pub const ALL: &str = "ALL";
/// Prefix of the invoice's own attributes naming what it got and when.
pub const SENT_AT_PREFIX: &str = "sent_at#";

/// `sent_at#<step>#<channel>` for the ledger key `<step>#<channel>`.
pub fn sent_at_attr(key: &str) -> String {
    format!("{SENT_AT_PREFIX}{key}")
}

/// One message an invoice got: its policy step (the ledger name's base),
/// whether it belongs to the invoice's current ladder, its channel, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub step: String,
    pub channel: String,
    pub current: bool,
    pub at: DateTime<Utc>,
}

/// What an invoice item says it got (`sent_at#...` attributes), oldest first.
pub fn sends(raw: &RawInvoice) -> Vec<Sent> {
    let cycle = match raw.0.get(crate::invoice::CYCLE) {
        Some(RawValue::Text(c)) if !c.is_empty() => Some(c.as_str()),
        _ => None,
    };
    let mut out: Vec<Sent> = raw
        .0
        .iter()
        .filter_map(|(name, value)| {
            let key = name.strip_prefix(SENT_AT_PREFIX)?;
            let (name, channel) = key.rsplit_once('#')?;
            let RawValue::Text(at) = value else {
                return None;
            };
            let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
            let step = crate::ledger::base_step(name);
            let of_cycle = name.split_once('@').map(|(_, c)| c);
            Some(Sent {
                step: step.to_owned(),
                channel: channel.to_owned(),
                current: of_cycle == cycle,
                at,
            })
        })
        .collect();
    out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.step.cmp(&b.step)));
    out
}

/// The zone an invoice's days are counted in here: its own, else UTC.
pub fn zone(raw: &RawInvoice) -> Tz {
    match raw.0.get("timezone") {
        Some(RawValue::Text(t)) => t.parse().unwrap_or(Tz::UTC),
        _ => Tz::UTC,
    }
}

/// Whole days from `from` to `to` (24-hour periods; 0 within the first day).
pub fn whole_days(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_seconds().div_euclid(86_400)
}

fn date_of(raw: &RawInvoice, name: &str) -> Option<NaiveDate> {
    match raw.0.get(name) {
        Some(RawValue::Text(t)) => crate::calendar::parse_date(t).or_else(|| {
            DateTime::parse_from_rfc3339(t)
                .ok()
                .map(|i| i.with_timezone(&zone(raw)).date_naive())
        }),
        _ => None,
    }
}

fn instant_of(raw: &RawInvoice, name: &str) -> Option<DateTime<Utc>> {
    match raw.0.get(name) {
        Some(RawValue::Text(t)) => DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|i| i.with_timezone(&Utc)),
        _ => None,
    }
}

/// The additions to the rollup items, by sort key: attribute to amount.
pub type Additions = BTreeMap<String, BTreeMap<String, Decimal>>;

fn add(out: &mut Additions, sk: String, attr: String, by: Decimal) {
    if by.is_zero() {
        return;
    }
    *out.entry(sk).or_default().entry(attr).or_default() += by;
}

/// What a paid invoice contributes to the effectiveness days, once, with
/// `sign` 1 (paid at `paid_at`) or -1 (that payment's count taken back).
fn settled(raw: &RawInvoice, paid_at: DateTime<Utc>, sign: Decimal, out: &mut Additions) {
    let sends = sends(raw);
    for s in sends.iter().filter(|s| s.at <= paid_at) {
        let d = whole_days(s.at, paid_at).min(LATER);
        add(
            out,
            format!("{SENT}{}", s.at.date_naive()),
            format!("{}#{}#{d}", s.step, s.channel),
            sign,
        );
    }
    if let Some(due) = date_of(raw, "due_date") {
        let paid_on = paid_at.with_timezone(&zone(raw)).date_naive();
        let r = (paid_on - due).num_days().clamp(DUE_RANGE.0, DUE_RANGE.1);
        let sk = format!("{DUE}{due}");
        add(out, sk.clone(), format!("{ALL}#{r}"), sign);
        let mut steps: Vec<&str> = sends
            .iter()
            .filter(|s| s.current && s.at <= paid_at)
            .map(|s| s.step.as_str())
            .collect();
        steps.sort_unstable();
        steps.dedup();
        for step in steps {
            add(out, sk.clone(), format!("{step}#{r}"), sign);
        }
    }
}

/// What a payment does to an invoice, as the rollup counts it
/// ([`crate::payment::Payment::movement`] makes one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Movement {
    pub currency: Currency,
    /// The invoice's total (amount and late fees).
    pub total: Decimal,
    /// How much `amount_paid` moves (negative: money back).
    pub moved: Decimal,
    /// The payment's own instant.
    pub paid_at: DateTime<Utc>,
    /// It pays an open invoice in full.
    pub newly_paid: bool,
    /// It makes a paid invoice owe again.
    pub reopened: bool,
}

/// What `movement` of the invoice `raw` (as read) adds to the rollup: the
/// money that moved, and, when it pays the invoice in full or reopens it,
/// the invoice's count in the effectiveness days and its total among the
/// sales paid.
pub fn on_payment(raw: &RawInvoice, movement: &Movement) -> Additions {
    let mut out = Additions::new();
    let code = movement.currency.code();
    // `add` leaves out a zero: money already counted moves nothing.
    add(
        &mut out,
        format!("{MONEY}{}", movement.paid_at.date_naive()),
        format!("received#{code}"),
        movement.moved,
    );
    let issued = date_of(raw, "issued_at").or_else(|| date_of(raw, "due_date"));
    let (sign, paid_at) = if movement.newly_paid {
        (Decimal::ONE, Some(movement.paid_at))
    } else if movement.reopened {
        (Decimal::NEGATIVE_ONE, instant_of(raw, "paid_at"))
    } else {
        return out;
    };
    if let Some(issued) = issued {
        add(
            &mut out,
            format!("{MONEY}{issued}"),
            format!("sales_paid#{code}"),
            sign * movement.total,
        );
    }
    if let Some(paid_at) = paid_at {
        settled(raw, paid_at, sign, &mut out);
    }
    out
}

/// On an invoice marked paid without a payment here: the `amount_paid`
/// up to which its money is counted (its total then). A later payment counts
/// only beyond it, so the same money never counts twice; reopening removes it.
pub const COUNTED_TO: &str = "rollup_counted_to";

/// What a status change that is not a payment adds to the rollup: an
/// invoice marked paid here (paid in Stripe and synced, a re-import, an
/// `Edit::Set` of `status`) counts as a payment of what it still owed at
/// `at` (the plan writes [`COUNTED_TO`]); one made open again takes back
/// its counts, and the money its mark counted. `before` and `after` are the
/// item as read and as the edit leaves it; any other change adds nothing.
pub fn on_status_change(before: &RawInvoice, after: &RawInvoice, at: DateTime<Utc>) -> Additions {
    use crate::invoice::{Invoice, InvoiceStatus};
    let (Ok(was), Ok(now)) = (Invoice::parse(before), Invoice::parse(after)) else {
        return Additions::new();
    };
    let total = |i: &Invoice| i.amount.amount + i.late_fees.values().copied().sum::<Decimal>();
    match (was.status, now.status) {
        (InvoiceStatus::Open, InvoiceStatus::Paid) => on_payment(
            after,
            &Movement {
                currency: now.amount.currency,
                total: total(&now),
                moved: now.balance().amount,
                paid_at: at,
                newly_paid: true,
                reopened: false,
            },
        ),
        (InvoiceStatus::Paid, InvoiceStatus::Open) => on_payment(
            before,
            &Movement {
                currency: was.amount.currency,
                total: total(&was),
                // Money that came by payments stays received.
                moved: match before.amount(COUNTED_TO).ok().flatten() {
                    Some(to) => -(to.parse::<Decimal>().unwrap_or_default() - was.amount_paid)
                        .max(Decimal::ZERO),
                    None => Decimal::ZERO,
                },
                paid_at: at,
                newly_paid: false,
                reopened: true,
            },
        ),
        _ => Additions::new(),
    }
}

/// The rollup items a report read (sort key to attributes), as numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollup {
    pub days: BTreeMap<String, BTreeMap<String, Decimal>>,
}

impl Rollup {
    /// Adds `additions` (as the store's `ADD`s do).
    pub fn apply(&mut self, additions: &Additions) {
        for (sk, attrs) in additions {
            let day = self.days.entry(sk.clone()).or_default();
            for (attr, by) in attrs {
                *day.entry(attr.clone()).or_default() += by;
            }
        }
    }

    /// Attributes of the `kind#<date>` items with `from <= date <= to`.
    pub fn days_of<'a>(
        &'a self,
        kind: &'a str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Iterator<Item = (NaiveDate, &'a BTreeMap<String, Decimal>)> + 'a {
        self.days.iter().filter_map(move |(sk, attrs)| {
            let date = crate::calendar::parse_date(sk.strip_prefix(kind)?)?;
            (date >= from && date <= to).then_some((date, attrs))
        })
    }

    /// The sum of `attr` over the `kind` days from `from` to `to`.
    pub fn sum(&self, kind: &str, attr: &str, from: NaiveDate, to: NaiveDate) -> Decimal {
        self.days_of(kind, from, to)
            .filter_map(|(_, a)| a.get(attr))
            .sum()
    }
}

#[cfg(test)]
mod tests;
