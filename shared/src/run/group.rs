//! Grouping: at most one message per customer and channel in a run, several
//! invoices at the same step to the same address in one message.

use std::collections::BTreeMap;

use super::intake::{Address, Candidate};
use super::outcome::{Counted, Outcome};
use crate::channel::Channel;
use crate::claim::MAX_COMBINED;
use crate::policy::Step;
use crate::summary::Target;

/// One message: a customer's invoices at one step on one channel.
pub(super) struct Message<'p, S> {
    pub step: &'p Step,
    pub channel: Channel,
    pub address: Address,
    pub members: Vec<Candidate<'p, S>>,
}

impl<'p, S> Message<'p, S> {
    /// The name its ledger records carry (its invoices share their cycle).
    pub(super) fn ledger_step(&self) -> String {
        self.members[0].invoice.ledger_step(&self.step.name)
    }

    /// The same outcome for every invoice of the message.
    pub(super) fn each(&self, outcome: Outcome) -> Vec<Counted<'p>> {
        self.members
            .iter()
            .map(|_| self.counted(outcome.clone()))
            .collect()
    }

    /// One invoice's outcome, under this message's step and channel.
    pub(super) fn counted(&self, outcome: Outcome) -> Counted<'p> {
        Counted {
            step: &self.step.name,
            target: Target::Channel(self.channel),
            outcome,
        }
    }
}

/// A customer's messages: per channel, the alternatives in the order they are tried.
pub(super) type CustomerMessages<'p, S> = Vec<Vec<Message<'p, S>>>;

/// Groups candidates into messages, at most one per customer and channel in a
/// run. For each channel the alternatives come in order: the customer's most
/// advanced step with every invoice at it to the same address first; the
/// next ones are tried only when every invoice of an earlier one is lost to
/// its claim (already sent, or changed), so one stuck invoice cannot hold the
/// customer's other reminders back. Whatever is not sent waits for the next run.
pub(super) fn group<S>(
    candidates: Vec<Candidate<'_, S>>,
) -> BTreeMap<String, CustomerMessages<'_, S>> {
    let mut by_customer: BTreeMap<(String, Channel), Vec<Candidate<'_, S>>> = BTreeMap::new();
    for c in candidates {
        by_customer
            .entry((c.invoice.customer_id.clone(), c.channel))
            // Most customers have one message due: no room for four.
            .or_insert_with(|| Vec::with_capacity(1))
            .push(c);
    }
    let mut messages: BTreeMap<String, CustomerMessages<'_, S>> = BTreeMap::new();
    for ((customer, channel), mut list) in by_customer {
        // Most advanced step first; within it, oldest due date first.
        list.sort_by(|a, b| {
            let key =
                |c: &Candidate<'_, S>| (std::cmp::Reverse(c.step.offset_days), c.invoice.due_date);
            key(a)
                .cmp(&key(b))
                .then_with(|| a.invoice.id.cmp(&b.invoice.id))
        });
        let mut alternatives: Vec<Message<'_, S>> = Vec::with_capacity(1);
        for c in list {
            let fits = |m: &Message<'_, S>| {
                m.step.offset_days == c.step.offset_days
                    && m.members[0].invoice.cycle == c.invoice.cycle
                    && m.members[0].claim_offset == c.claim_offset
                    && m.members[0].invoice.email_copies == c.invoice.email_copies
                    && m.members[0].invoice.phone_copies == c.invoice.phone_copies
                    && m.ledger_step() == c.invoice.ledger_step(&c.step.name)
                    && m.address == c.address
                    && m.members.len() < MAX_COMBINED
            };
            match alternatives.iter_mut().find(|m| fits(m)) {
                Some(m) => m.members.push(c),
                None => alternatives.push(Message {
                    step: c.step,
                    channel,
                    address: c.address.clone(),
                    members: vec![c],
                }),
            }
        }
        messages
            .entry(customer)
            .or_insert_with(|| Vec::with_capacity(1))
            .push(alternatives);
    }
    messages
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::contact::EmailAddress;
    use crate::invoice::{Invoice, RawInvoice, RawValue};
    use crate::policy::Policy;

    fn invoice(id: &str, customer: &str, due: &str) -> Arc<Invoice> {
        let mut raw = RawInvoice::default();
        for (k, v) in [
            ("invoice_id", id),
            ("customer_id", customer),
            ("customer_name", "Ana"),
            ("email", "ana@example.com"),
            ("amount", "10.00"),
            ("currency", "USD"),
            ("due_date", due),
            ("status", "open"),
        ] {
            raw.insert(k, RawValue::Text(v.into()));
        }
        Arc::new(Invoice::parse(&raw).unwrap())
    }

    fn candidate<'p>(step: &'p Step, inv: Arc<Invoice>, to: &str) -> Candidate<'p, ()> {
        Candidate {
            local_date: inv.due_date,
            invoice: inv,
            snapshot: Arc::new(()),
            step,
            channel: Channel::Email,
            address: Address::Email(EmailAddress::parse(to).unwrap()),
            superseded: Arc::new([]),
            late_fee: None,
            claim_offset: step.offset_days,
            next_at_held: None,
        }
    }

    #[test]
    fn a_customers_invoices_at_one_step_go_in_one_message_the_most_advanced_step_first() {
        let policy = Policy::default_policy();
        let step = |name: &str| policy.steps().iter().find(|s| s.name == name).unwrap();
        let (due, overdue) = (step("due_today"), step("overdue"));
        let groups = group(vec![
            candidate(due, invoice("A2", "C1", "2026-11-23"), "ana@example.com"),
            candidate(
                overdue,
                invoice("A1", "C1", "2026-11-22"),
                "ana@example.com",
            ),
            candidate(due, invoice("A3", "C1", "2026-11-23"), "ana@example.com"),
            candidate(due, invoice("A4", "C1", "2026-11-23"), "other@example.com"),
            candidate(due, invoice("B1", "C2", "2026-11-23"), "bo@example.com"),
        ]);
        let shape: Vec<(String, Vec<Vec<&str>>)> = groups
            .iter()
            .map(|(customer, channels)| {
                let alternatives = channels[0]
                    .iter()
                    .map(|m| m.members.iter().map(|c| c.invoice.id.as_str()).collect())
                    .collect();
                (customer.clone(), alternatives)
            })
            .collect();
        assert_eq!(
            shape,
            [
                (
                    "C1".to_owned(),
                    vec![vec!["A1"], vec!["A2", "A3"], vec!["A4"]]
                ),
                ("C2".to_owned(), vec![vec!["B1"]]),
            ]
        );
    }

    #[test]
    fn a_message_never_covers_more_invoices_than_a_claim_can_hold() {
        let policy = Policy::default_policy();
        let due = policy
            .steps()
            .iter()
            .find(|s| s.name == "due_today")
            .unwrap();
        let many = (0..MAX_COMBINED + 5)
            .map(|i| {
                candidate(
                    due,
                    invoice(&format!("I{i:03}"), "C1", "2026-11-23"),
                    "a@example.com",
                )
            })
            .collect();
        let groups = group(many);
        let sizes: Vec<usize> = groups["C1"][0].iter().map(|m| m.members.len()).collect();
        assert_eq!(sizes, [MAX_COMBINED, 5]);
    }
}
