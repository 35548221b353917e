//! The seams between the domain and the outside world, only where the run and
//! the webhook need one: what a run needs from its store ([`Store`]), a mailer
//! ([`Mailer`]), a texter ([`Texter`]) and an event publisher
//! ([`EventPublisher`]); what the webhook needs to apply a payment
//! ([`Payments`]). Each has two implementations: the AWS adapters in
//! [`crate::aws`] and the in-memory ones in `crate::testing` (feature
//! `test-util`), held to the same behaviour by one contract test suite
//! (`tests/tests/contract.rs`).
//!
//! Methods return `impl Future + Send` (rather than `async fn`) so that a
//! run over any adapters can be awaited from a multi-threaded runtime.

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};

use crate::claim::{Claim, ClaimOutcome, Held};
use crate::contact::{EmailAddress, PhoneNumber};
/// The failures the ports report, defined in [`crate::failure`].
pub use crate::failure::{SendError, StoreError};
use crate::invoice::RawInvoice;
use crate::ledger::LedgerState;
use crate::link::{LinkToken, PayLink, StoredIntent};
use crate::payment::{
    check, plan, Applied, PayableInvoice, Payment, PaymentError, Plan, UnappliedReason,
    PAYMENT_BACKOFF,
};
use crate::reads::ReadState;
use crate::render::EmailContent;

/// One open invoice from the due index: the record as stored, for
/// [`crate::invoice::Invoice::parse`], and the store's snapshot of what a
/// claim re-checks.
#[derive(Debug, Clone)]
pub struct DueItem<S> {
    pub raw: RawInvoice,
    pub snapshot: S,
}

/// One page of the due index.
#[derive(Debug)]
pub struct DuePage<S, C> {
    pub items: Vec<DueItem<S>>,
    /// Items the store read for this page (what read capacity is charged on).
    pub scanned_count: u64,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<C>,
}

/// What a run does to its store: exactly these operations.
pub trait Store: Send + Sync {
    /// The store's copy of an invoice's guarded attributes as read
    /// ([`crate::claim::GUARDED`]): a claim succeeds only while they are unchanged.
    type Snapshot: Send + Sync;
    /// A position in the due index.
    type Cursor: Clone + Send + Sync;

    /// One page of open invoices with `from <= due_date <= to`.
    fn due_page(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        start: Option<Self::Cursor>,
    ) -> impl Future<Output = Result<DuePage<Self::Snapshot, Self::Cursor>, StoreError>> + Send;

    /// The open invoices with a date of their own in `from..=to` that is not
    /// their due date (a plan's instalment, a promise to pay: their wake
    /// records, [`crate::edit::WAKE_PARTITION`]); a full read takes them
    /// besides the due index's window.
    fn woken(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Future<Output = Result<Vec<DueItem<Self::Snapshot>>, StoreError>> + Send;

    /// What earlier runs read ([`crate::reads`]), read strongly consistently.
    fn read_state(&self) -> impl Future<Output = Result<ReadState, StoreError>> + Send;

    /// The records of these customers ([`crate::customer`]), those that have
    /// one; batched (one request per 100).
    fn customers(
        &self,
        customer_ids: &[String],
    ) -> impl Future<
        Output = Result<
            std::collections::HashMap<String, crate::customer::CustomerRecord>,
            StoreError,
        >,
    > + Send;

    /// The invalid items already logged on `day` (the business's date), by
    /// [`crate::summary::warning_key`]: a bad item is logged once a day.
    fn warned(
        &self,
        day: NaiveDate,
    ) -> impl Future<Output = Result<std::collections::HashSet<String>, StoreError>> + Send;

    /// Adds `keys` to the items logged on `day` (an earlier day's are dropped).
    fn record_warned(
        &self,
        day: NaiveDate,
        keys: &[String],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records the state after a run that read all it planned; instants only move forward.
    fn record_read(&self, state: &ReadState)
        -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One page of shard `shard` of the next-at index: the open invoices
    /// whose `next_at` ([`crate::next_at`]) is at or before `until`.
    fn scheduled_page(
        &self,
        shard: u32,
        until: DateTime<Utc>,
        start: Option<Self::Cursor>,
    ) -> impl Future<Output = Result<DuePage<Self::Snapshot, Self::Cursor>, StoreError>> + Send;

    /// Writes (`Some`) or removes (`None`) an invoice's `next_at` and its
    /// shard, if the invoice is there and still holds `held` (its `next_at`
    /// as read; `None`: none). `false` when it changed meanwhile: the
    /// change's own stream record decides again.
    fn set_next_at(
        &self,
        invoice_id: &str,
        to: Option<DateTime<Utc>>,
        held: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A customer's open invoices, whole (for a change of their record).
    fn open_invoices_of(
        &self,
        customer_id: &str,
    ) -> impl Future<Output = Result<Vec<RawInvoice>, StoreError>> + Send;

    /// Claims a message ([`crate::claim`]).
    fn claim(
        &self,
        claim: &Claim<'_, Self::Snapshot>,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;

    /// Records a send on the claim held; `Ok(false)`: the lease had expired
    /// and another run took the claim over.
    fn record_sent(
        &self,
        held: &Held<'_>,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records a failed send ([`crate::ledger::after_failure`]); returns the state written.
    fn record_failure(
        &self,
        held: &Held<'_>,
        error: &SendError,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<LedgerState, StoreError>> + Send;

    /// Records that a step will never be sent; only creates a record.
    fn record_skipped(
        &self,
        invoice_id: &str,
        sk: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records that a message waits (the customer's cap) until `until`;
    /// never overwrites a claim or an outcome.
    fn record_deferred(
        &self,
        invoice_id: &str,
        sk: &str,
        reason: &str,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records that a message due now was not tried because its channel (or
    /// template) stopped for this run after a systemic failure (`error`): it
    /// waits in `retry` until `until`, without a claim and without using an
    /// attempt. Never overwrites a claim or an outcome, nor moves a wait earlier.
    fn record_stopped(
        &self,
        invoice_id: &str,
        sk: &str,
        error: &SendError,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Ends the in-flight mark the claim `token` put on the invoice.
    fn release_invoice(
        &self,
        invoice_id: &str,
        token: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Copies a settled ledger key (`step#channel`) onto the invoice, and
    /// for a message that went, the instant it went as `sent_at#<key>`
    /// (kept from the first mark): what the report's reminder
    /// effectiveness counts from ([`crate::report::rollup`]).
    fn mark_reminded(
        &self,
        invoice_id: &str,
        key: &str,
        sent_at: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks an escalated invoice in collections: automated reminders stop.
    fn mark_in_collections(
        &self,
        invoice_id: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Stored pay links ([`crate::link`]): written for the messages a run
/// sends, read and revoked for the pay page, with what the page reads and
/// writes beside them (the invoices a link opens, the intents it made).
pub trait Links: Send + Sync {
    /// Stores a new link; `Ok(false)` when its token exists (never overwritten).
    fn put_link(&self, link: &PayLink) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The link under `token`; `None` when there is none (or its record is unreadable).
    fn get_link(
        &self,
        token: &LinkToken,
    ) -> impl Future<Output = Result<Option<PayLink>, StoreError>> + Send;

    /// Revokes the link at `at`; `Ok(false)` when there is none. A second
    /// revocation keeps the first instant.
    fn revoke_link(
        &self,
        token: &LinkToken,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The invoice items named (strongly consistent: a payment just applied
    /// shows); missing ones are left out, in no particular order.
    fn page_invoices(
        &self,
        ids: &[&str],
    ) -> impl Future<Output = Result<Vec<RawInvoice>, StoreError>> + Send;

    /// The intent the page made last for `invoice_id`, if any.
    fn get_intent(
        &self,
        invoice_id: &str,
    ) -> impl Future<Output = Result<Option<StoredIntent>, StoreError>> + Send;

    /// Applies `change` to the customer's record (the page's unsubscribe);
    /// false when it already said so.
    fn change_customer_record(
        &self,
        customer_id: &str,
        change: &crate::customer::Change,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores `intent` as the invoice's: when there is none yet
    /// (`replacing: None`), or in place of the intent `replacing` names.
    /// `Ok(false)` when another writer got there first (nothing written).
    fn put_intent(
        &self,
        invoice_id: &str,
        intent: &StoredIntent,
        replacing: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// For a customer's statement: their open invoices and those paid on
    /// or after `paid_since`, as [`crate::report::statement_picks`] picks
    /// them (strongly consistent items, found through the customer index);
    /// `true` when some were left out.
    fn statement_invoices(
        &self,
        customer_id: &str,
        paid_since: NaiveDate,
    ) -> impl Future<Output = Result<(Vec<RawInvoice>, bool), StoreError>> + Send;

    /// The money received on `invoice_id`: its `payment#` records.
    fn payments_received(
        &self,
        invoice_id: &str,
    ) -> impl Future<Output = Result<Vec<crate::report::Received>, StoreError>> + Send;
}

/// Applying a payment, once per payment key, never while a reminder is in
/// flight. Every [`PaymentStore`] is one: the protocol is written once, here.
pub trait Payments: Send + Sync {
    fn apply_payment(
        &self,
        payment: &Payment,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Applied, PaymentError>> + Send;

    /// Keeps a payment that cannot be applied aside, with the event's claim:
    /// `Applied::Unapplied` once stored, `Duplicate` when this event was kept
    /// (or applied) before, `Conflict` when its id came with other content.
    fn keep_unapplied(
        &self,
        payment: &Payment,
        reason: UnappliedReason,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Applied, PaymentError>> + Send;
}

/// The invoice item as a payment reads it (strongly consistent).
pub struct SeenInvoice<S> {
    /// The store's copy, which the commit requires unchanged.
    pub copy: S,
    pub raw: RawInvoice,
    /// A reminder for the invoice is between its claim and its outcome.
    pub sending: bool,
    /// The records the read asked for ([`Payment::reads`]), in order, each
    /// `None` when absent.
    pub records: Vec<Option<RawInvoice>>,
}

/// What a payment's conditional commit found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    Done,
    /// The payment key, or the event with the same content, is recorded
    /// already: nothing changed.
    Duplicate,
    /// The event id is recorded already with other content: nothing changed.
    Conflict,
    /// The invoice or the tally changed since they were read, or a reminder
    /// went in flight.
    Changed,
}

/// The operations a store does for a payment; [`Payments`] is built on them.
pub trait PaymentStore: Send + Sync {
    type Copy: Send + Sync;

    /// The invoice item at `now`, and the records `record_sks` name under
    /// it; `None` when there is no such invoice.
    fn read_for_payment(
        &self,
        invoice_id: &str,
        record_sks: &[String],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<SeenInvoice<Self::Copy>>, StoreError>> + Send;

    /// In one atomic write: the event's claim, only if its id is new
    /// (`Conflict` when it is recorded with another fingerprint); the plan's
    /// record, as its [`RecordGuard`](crate::payment::RecordGuard) says
    /// (`Duplicate` when a once-only record exists); the plan's changes to
    /// the invoice, only if it is as `seen` and nothing is in flight; and the
    /// payment's provider references (`ref#<provider>#<id>`).
    fn commit_payment(
        &self,
        payment: &Payment,
        plan: &Plan,
        seen: &Self::Copy,
        invoice: &PayableInvoice,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Commit, StoreError>> + Send;

    /// In one atomic write: the event's claim (as in
    /// [`commit_payment`](Self::commit_payment)) and the unapplied payment
    /// (partition `unapplied`, sort key [`Payment::unapplied_id`]) holding
    /// `amount` of it, only if new.
    fn commit_unapplied(
        &self,
        payment: &Payment,
        reason: UnappliedReason,
        amount: rust_decimal::Decimal,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Commit, StoreError>> + Send;

    /// The invoice a provider's object was remembered for: the first of
    /// `refs` that names one.
    fn find_invoice(
        &self,
        provider: &str,
        refs: &[String],
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}

impl<T: PaymentStore> Payments for T {
    /// Finds the invoice when the event names none, reads it (with the
    /// group's tally), checks the payment against it, waits while a reminder
    /// is in flight, plans and commits; a change in between starts again from
    /// a fresh read. At most [`PAYMENT_BACKOFF`]`.attempts` rounds, then busy
    /// (the provider retries later).
    async fn apply_payment(
        &self,
        payment: &Payment,
        now: DateTime<Utc>,
    ) -> Result<Applied, PaymentError> {
        let found;
        let payment = if payment.invoice_id.is_empty() {
            let id = self
                .find_invoice(payment.provider, &payment.refs)
                .await?
                .ok_or(PaymentError::UnknownInvoice)?;
            found = Payment {
                invoice_id: id,
                found: true,
                ..payment.clone()
            };
            &found
        } else {
            payment
        };
        let reads = payment.reads();
        // Rounds spent waiting for a reminder in flight: kept on the payment record.
        let mut waited = 0u32;
        for attempt in 1..=PAYMENT_BACKOFF.attempts {
            let seen = self
                .read_for_payment(&payment.invoice_id, &reads, now)
                .await?
                .ok_or(PaymentError::UnknownInvoice)?;
            let invoice =
                PayableInvoice::parse(&seen.raw).map_err(|_| PaymentError::InvalidInvoice)?;
            check(&invoice, payment)?;
            let last = attempt == PAYMENT_BACKOFF.attempts;
            if seen.sending {
                // A reminder for this invoice is between claim and send: let it finish.
                waited += 1;
                if !last {
                    tokio::time::sleep(PAYMENT_BACKOFF.delay(attempt + 5)).await;
                }
                continue;
            }
            let duplicate = || Applied::Duplicate {
                invoice_id: payment.invoice_id.clone(),
            };
            let Some(mut plan) = plan(&invoice, &seen.records, payment, waited)? else {
                return Ok(duplicate());
            };
            plan.rollup = crate::report::rollup::on_payment(
                &seen.raw,
                &payment.movement(&invoice, &plan.settlement),
            );
            match self
                .commit_payment(payment, &plan, &seen.copy, &invoice, now)
                .await?
            {
                Commit::Done => {
                    return Ok(Applied::Applied {
                        settlement: plan.settlement,
                        delta: plan.delta,
                        waited,
                        invoice: Box::new(invoice),
                        invoice_id: payment.invoice_id.clone(),
                    })
                }
                Commit::Duplicate => return Ok(duplicate()),
                Commit::Conflict => return Err(PaymentError::Conflict),
                Commit::Changed if !last => {
                    tokio::time::sleep(PAYMENT_BACKOFF.delay(attempt)).await
                }
                Commit::Changed => {}
            }
        }
        Err(PaymentError::Busy)
    }

    async fn keep_unapplied(
        &self,
        payment: &Payment,
        reason: UnappliedReason,
        now: DateTime<Utc>,
    ) -> Result<Applied, PaymentError> {
        match self
            .commit_unapplied(payment, reason, payment.amount, now)
            .await?
        {
            Commit::Done => Ok(Applied::Unapplied {
                id: payment.unapplied_id(),
                reason,
            }),
            Commit::Conflict => Err(PaymentError::Conflict),
            Commit::Duplicate => Ok(Applied::Duplicate {
                invoice_id: payment.invoice_id.clone(),
            }),
            // A conflicting write or throttling: the provider retries.
            Commit::Changed => Err(PaymentError::Busy),
        }
    }
}

/// The store operation an edit needs beside the payment read
/// ([`PaymentStore::read_for_payment`], which reads the invoice and whether
/// a reminder is in flight).
pub trait EditStore: PaymentStore {
    /// In one atomic write: the plan's changes to the invoice, only while
    /// every attribute it touches and its status are as `seen` and no
    /// reminder is in flight, and its history record (`Changed` otherwise).
    fn commit_edit(
        &self,
        invoice_id: &str,
        plan: &crate::edit::EditPlan,
        seen: &Self::Copy,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Commit, StoreError>> + Send;

    /// In one atomic write: the invoice item `raw` (its `sk` is `invoice`),
    /// only if there is none, and its history record `(sk, attributes)`;
    /// `Ok(false)` when the invoice exists.
    fn create_invoice(
        &self,
        invoice_id: &str,
        raw: &RawInvoice,
        record: &(String, Vec<(&'static str, crate::invoice::RawValue)>),
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// What an edit did.
#[derive(Debug, Clone, PartialEq)]
pub enum Edited {
    /// Committed, after waiting `waited` rounds for a reminder in flight.
    Applied {
        plan: crate::edit::EditPlan,
        waited: u32,
    },
    /// The invoice is already so.
    Unchanged,
}

/// Applies an edit like a payment: it reads the invoice, waits while a
/// reminder is in flight (that reminder finishes with what it read; a claim
/// made after the edit commits reads the new values, and one that read
/// before it is refused, [`crate::claim::GUARDED`]), plans and commits; a
/// change in between starts again from a fresh read.
pub async fn edit_invoice<S: EditStore>(
    store: &S,
    invoice_id: &str,
    request: &crate::edit::Request,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<Edited, crate::edit::EditError> {
    use crate::edit::EditError;
    let mut waited = 0;
    for attempt in 1..=PAYMENT_BACKOFF.attempts {
        let at = now();
        let seen = store
            .read_for_payment(invoice_id, &[], at)
            .await?
            .ok_or_else(|| EditError::UnknownInvoice(invoice_id.to_owned()))?;
        let Some(plan) = crate::edit::plan(&seen.raw, request, at)? else {
            return Ok(Edited::Unchanged);
        };
        let last = attempt == PAYMENT_BACKOFF.attempts;
        if seen.sending {
            waited += 1;
            if !last {
                tokio::time::sleep(PAYMENT_BACKOFF.delay(attempt + 5)).await;
            }
            continue;
        }
        match store.commit_edit(invoice_id, &plan, &seen.copy, at).await? {
            Commit::Done => return Ok(Edited::Applied { plan, waited }),
            _ if !last => tokio::time::sleep(PAYMENT_BACKOFF.delay(attempt)).await,
            _ => {}
        }
    }
    Err(EditError::Busy)
}

/// What an e-mail carries besides its content: the SES message tags that
/// name its ledger records ([`crate::mail_events::MessageTags`]), headers of
/// its own (`List-Unsubscribe`) and a reply address of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub tags: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// Replies go here instead of the mailer's own reply address.
    pub reply_to: Option<EmailAddress>,
    /// Copies (Cc): the customer's other addresses.
    pub cc: Vec<EmailAddress>,
}

/// Sends one e-mail; returns the provider's message id.
pub trait Mailer: Send + Sync {
    fn send(
        &self,
        to: &EmailAddress,
        email: &EmailContent,
        envelope: &Envelope,
    ) -> impl Future<Output = Result<String, SendError>> + Send;
}

/// Sends one SMS; returns the provider's message id.
pub trait Texter: Send + Sync {
    fn send(
        &self,
        to: &PhoneNumber,
        text: &str,
    ) -> impl Future<Output = Result<String, SendError>> + Send;

    /// Every number that opted out of the account's SMS (replied STOP),
    /// E.164, all pages.
    fn opted_out_numbers(&self) -> impl Future<Output = Result<Vec<String>, SendError>> + Send;
}

/// Publishes an event (JSON) for people to act on; returns the message id.
pub trait EventPublisher: Send + Sync {
    fn publish(
        &self,
        topic: &str,
        subject: &str,
        event: &serde_json::Value,
    ) -> impl Future<Output = Result<String, SendError>> + Send;
}
