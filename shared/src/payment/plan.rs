//! What applying one movement writes, decided from what was read: the record
//! under the invoice, the invoice's changed attributes and the settlement.
//! Both stores carry a [`Plan`] out in one atomic write, with the event's
//! claim and the provider references.
//!
//! **Running totals.** Stripe reports some money as a running total (a Stripe
//! invoice's `amount_paid`, a charge's `amount_refunded`) and the same money
//! again part by part (`invoice_payment.paid`, one `refund.updated` per
//! refund). A group's [`Tally`] keeps the highest total seen and each part
//! once; what it counts is the larger of the total and the sum of the parts.
//! Both are lower bounds of the true amount, so the count never exceeds it,
//! and it reaches it once either the last total or every part has arrived,
//! in any order, with any duplicates.
//!
//! **One key, counted once.** A part is also the money of its key (a
//! PaymentIntent id), which another event may report on its own (a Checkout
//! Session's intent with our metadata). Both write the key's once-only record
//! (`payment#<key>`): a part whose key was counted on its own joins its group
//! as *outside* (its money is in the group's count but not added again), and
//! an event on its own whose key a part counted is a duplicate.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;

use super::{Basis, DisputeChange, Flow, PayableInvoice, Payment, PaymentError, Settlement};
use crate::invoice::{InvoiceStatus, RawInvoice, RawValue};

/// A group's running total and its parts, as its record holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// The highest running total the provider reported.
    pub total: Decimal,
    /// Each part once, by key.
    pub parts: BTreeMap<String, Decimal>,
    /// Parts whose money was counted on its own before it joined the group.
    pub outside: BTreeSet<String>,
    /// The record's version (0: no record yet); a write requires it unchanged.
    pub version: u64,
}

impl Tally {
    /// The tally a record holds (`None` for no record); `Err` when the
    /// record is malformed.
    pub fn read(record: Option<&RawInvoice>) -> Result<Self, PaymentError> {
        let Some(record) = record else {
            return Ok(Self::default());
        };
        let bad = || PaymentError::InvalidInvoice;
        let decimal = |t: &str| t.parse::<Decimal>().ok().filter(|d| !d.is_sign_negative());
        let total = match record.0.get("total") {
            Some(RawValue::Text(t)) => decimal(t).ok_or_else(bad)?,
            None => Decimal::ZERO,
            Some(_) => return Err(bad()),
        };
        let mut parts = BTreeMap::new();
        match record.0.get("parts") {
            Some(RawValue::List(list)) => {
                for part in list {
                    let (key, amount) = part.rsplit_once('=').ok_or_else(bad)?;
                    parts.insert(key.to_owned(), decimal(amount).ok_or_else(bad)?);
                }
            }
            None => {}
            Some(_) => return Err(bad()),
        }
        let outside = match record.0.get("outside") {
            Some(RawValue::List(list)) => list.iter().cloned().collect(),
            None => BTreeSet::new(),
            Some(_) => return Err(bad()),
        };
        let version = match record.0.get("version") {
            Some(RawValue::Number(n)) => n.parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        Ok(Self {
            total,
            parts,
            outside,
            version,
        })
    }

    /// What the group counts: the larger of its total and its parts' sum.
    pub fn counted(&self) -> Decimal {
        self.total.max(self.parts.values().copied().sum())
    }

    /// What the group adds to `amount_paid`: its count less the parts
    /// counted on their own.
    pub fn contribution(&self) -> Decimal {
        let outside: Decimal = self
            .outside
            .iter()
            .filter_map(|k| self.parts.get(k))
            .copied()
            .sum();
        self.counted() - outside
    }

    /// The tally after one more report; `None` when it says nothing new (a
    /// total no higher than one seen, a part seen before). `outside`: the
    /// part's money was counted on its own already.
    pub fn observe(
        &self,
        basis: &Basis,
        key: &str,
        amount: Decimal,
        outside: bool,
    ) -> Option<Self> {
        let mut next = self.clone();
        match basis {
            Basis::Total(_) if amount > self.total => next.total = amount,
            Basis::Part(_) if !self.parts.contains_key(key) => {
                next.parts.insert(key.to_owned(), amount);
                if outside {
                    next.outside.insert(key.to_owned());
                }
            }
            _ => return None,
        }
        next.version += 1;
        Some(next)
    }
}

/// How a store writes a movement's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordGuard {
    /// Only if there is none: one there makes the movement a duplicate.
    Once,
    /// Only if the record's `version` is still this (0: no record); another
    /// means the read is stale (read again).
    Version(u64),
    /// Not written: the event says nothing new (a total or part counted
    /// already), and only its claim and references are recorded.
    Skip,
}

/// What one movement writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub record_sk: String,
    /// The record's attributes (the store adds its keys and `recorded_at`).
    pub record: Vec<(&'static str, RawValue)>,
    pub guard: RecordGuard,
    /// The invoice's attributes to set and remove; when both are empty the
    /// invoice is not written.
    pub set: Vec<(&'static str, RawValue)>,
    pub remove: Vec<&'static str>,
    pub settlement: Settlement,
    /// How much `amount_paid` moves.
    pub delta: Decimal,
    /// For a part whose key has no once-only record yet: that record's sort
    /// key, written with the part (only if still absent; else the read is
    /// stale), so the same money reported on its own is a duplicate.
    pub marker: Option<String>,
    /// Money in beyond what was owed: applied, and also kept as an unapplied
    /// payment (reason `overpaid`) so that someone moves or refunds it.
    pub excess: Option<Decimal>,
    /// What the report's rollup items gain, in the same write
    /// ([`crate::report::rollup::on_payment`]; filled by
    /// [`crate::ports::Payments::apply_payment`], which has the item as read).
    pub rollup: crate::report::rollup::Additions,
}

fn text(v: impl Into<String>) -> RawValue {
    RawValue::Text(v.into())
}

/// What applying `payment` to `invoice` writes, given the records its
/// [`Payment::reads`] names as read (`reads`, in that order). A total or
/// part already counted gives a plan that writes only the event's claim and
/// references ([`RecordGuard::Skip`]).
pub fn plan(
    invoice: &PayableInvoice,
    reads: &[Option<RawInvoice>],
    payment: &Payment,
    waited: u32,
) -> Result<Option<Plan>, PaymentError> {
    let read = |i: usize| reads.get(i).and_then(Option::as_ref);
    let mut marker = None;
    let (delta, guard, mut attrs) = match &payment.basis {
        Basis::Once => {
            let delta = match payment.dispute {
                Some(DisputeChange::Opened) => Decimal::ZERO,
                _ => payment.amount,
            };
            (delta, RecordGuard::Once, Vec::new())
        }
        Basis::Total(_) | Basis::Part(_) => {
            let tally = Tally::read(read(0))?;
            let part = matches!(payment.basis, Basis::Part(_));
            let counted_alone = part && read(1).is_some();
            let Some(next) = tally.observe(
                &payment.basis,
                &payment.payment_key,
                payment.amount,
                counted_alone,
            ) else {
                // Nothing new to count, but the event's claim and its
                // references (a later refund may name only them) are kept.
                return Ok(Some(Plan {
                    record_sk: payment.record_sk(),
                    record: Vec::new(),
                    guard: RecordGuard::Skip,
                    set: Vec::new(),
                    remove: Vec::new(),
                    settlement: invoice.settle(payment.flow, Decimal::ZERO),
                    delta: Decimal::ZERO,
                    marker: None,
                    excess: None,
                    rollup: Default::default(),
                }));
            };
            if part && !counted_alone {
                marker = Some(payment.once_sk());
            }
            let delta = next.contribution() - tally.contribution();
            let mut attrs = vec![
                ("total", text(next.total.to_string())),
                ("counted", text(next.counted().to_string())),
                ("version", RawValue::Number(next.version.to_string())),
            ];
            if !next.parts.is_empty() {
                attrs.push((
                    "parts",
                    RawValue::List(next.parts.iter().map(|(k, a)| format!("{k}={a}")).collect()),
                ));
            }
            if !next.outside.is_empty() {
                attrs.push((
                    "outside",
                    RawValue::List(next.outside.iter().cloned().collect()),
                ));
            }
            (delta, RecordGuard::Version(tally.version), attrs)
        }
    };
    let settlement = invoice.settle(payment.flow, delta);
    attrs.extend(payment.described(payment.amount));
    attrs.extend([
        (
            "amount_paid_after",
            text(settlement.amount_paid.to_string()),
        ),
        ("waited_for_reminder", RawValue::Number(waited.to_string())),
        ("overpaid", RawValue::Bool(settlement.overpaid)),
    ]);
    if payment.flow == Flow::Back {
        attrs.push(("flow", text("back")));
    }
    if settlement.reopened {
        attrs.push(("reopened", RawValue::Bool(true)));
    }
    let mut set = Vec::new();
    let mut remove = Vec::new();
    if !delta.is_zero() {
        set.push(("amount_paid", text(settlement.amount_paid.to_string())));
        if payment.flow == Flow::In
            && settlement.fully_paid
            && invoice.status == InvoiceStatus::Open
        {
            set.push(("status", text("paid")));
            set.push(("paid_at", text(rfc3339(payment.paid_at))));
        }
        if settlement.reopened {
            set.push(("status", text("open")));
            set.push(("reopened_at", text(rfc3339(payment.paid_at))));
            remove.push("paid_at");
            // Open again: what a mark counted was taken back ([`Payment::movement`]).
            if invoice.counted_to.is_some() {
                remove.push(crate::report::rollup::COUNTED_TO);
            }
        }
        if settlement.overpaid {
            set.push(("overpaid", RawValue::Bool(true)));
        } else if payment.flow == Flow::Back || delta < Decimal::ZERO {
            remove.push("overpaid");
        }
    }
    match payment.dispute {
        // Not when its closing came first, nor over a mark already there
        // (set by hand, or by another dispute), which stays as it is.
        Some(DisputeChange::Opened) if read(0).is_none() && !invoice.disputed => {
            set.push(("disputed", RawValue::Bool(true)));
            set.push(("dispute_id", text(&payment.payment_key)));
        }
        // Only the dispute that marked the invoice lifts the mark: one the
        // business set by hand stays.
        Some(DisputeChange::Closed)
            if invoice.dispute_id.as_deref() == Some(payment.payment_key.as_str()) =>
        {
            remove.extend(["disputed", "dispute_id"]);
        }
        _ => {}
    }
    let excess = (payment.flow == Flow::In && settlement.overpaid && delta > Decimal::ZERO)
        .then(|| delta.min(settlement.amount_paid - invoice.total()));
    Ok(Some(Plan {
        marker,
        excess,
        rollup: Default::default(),
        record_sk: payment.record_sk(),
        record: attrs,
        guard,
        set,
        remove,
        settlement,
        delta,
    }))
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tally_after(reports: &[(bool, &str, i64)]) -> Tally {
        let mut t = Tally::default();
        for (total, key, cents) in reports {
            let basis = if *total {
                Basis::Total("g".into())
            } else {
                Basis::Part("g".into())
            };
            if let Some(next) = t.observe(&basis, key, Decimal::new(*cents, 2), false) {
                t = next;
            }
        }
        t
    }

    #[test]
    fn a_total_and_its_parts_count_once_in_any_order() {
        let c = |r: &[(bool, &str, i64)]| tally_after(r).counted();
        let full = Decimal::new(10_000, 2);
        assert_eq!(
            c(&[(true, "", 10_000), (false, "a", 4_000), (false, "b", 6_000)]),
            full
        );
        assert_eq!(
            c(&[(false, "a", 4_000), (true, "", 10_000), (false, "b", 6_000)]),
            full
        );
        assert_eq!(
            c(&[(false, "a", 4_000), (false, "b", 6_000), (true, "", 10_000)]),
            full
        );
        // A total that counted the first part, then the second part alone.
        assert_eq!(
            c(&[(true, "", 4_000), (false, "b", 6_000), (false, "a", 4_000)]),
            full
        );
        // Duplicates and an older, lower total change nothing.
        assert_eq!(
            c(&[
                (false, "a", 4_000),
                (false, "a", 4_000),
                (true, "", 4_000),
                (true, "", 1_000)
            ]),
            Decimal::new(4_000, 2)
        );
    }

    proptest! {
        /// Whatever order and duplicates the reports of one group's payments
        /// come in, the count never exceeds what was paid, and is exactly it
        /// once the final total or every part has arrived.
        #[test]
        fn a_tally_never_overcounts_and_converges(
            parts in prop::collection::vec(1i64..10_0000, 1..6),
            order in prop::collection::vec(0usize..1000, 0..30),
            with_final_total in any::<bool>(),
        ) {
            // Reports: each part, the running total after each part, duplicated at will.
            let mut reports = Vec::new();
            let mut running = 0;
            for (i, p) in parts.iter().enumerate() {
                running += p;
                reports.push((false, format!("k{i}"), *p));
                if with_final_total || i + 1 < parts.len() {
                    reports.push((true, String::new(), running));
                }
            }
            let n = reports.len();
            let mut seq: Vec<usize> = order.iter().map(|o| o % n).collect();
            seq.extend(0..n); // every report at least once, the last ones last
            let mut t = Tally::default();
            let paid = Decimal::new(parts.iter().sum(), 2);
            for i in seq {
                let (total, key, cents) = &reports[i];
                let basis = if *total { Basis::Total("g".into()) } else { Basis::Part("g".into()) };
                if let Some(next) = t.observe(&basis, key, Decimal::new(*cents, 2), false) {
                    prop_assert!(next.counted() >= t.counted());
                    t = next;
                }
                prop_assert!(t.counted() <= paid);
            }
            prop_assert_eq!(t.counted(), paid);
        }
    }
}
