//! Stripe invoices synced in (`STRIPE_SYNC=true`): the webhook turns a
//! Stripe invoice's events into the invoice item a run reminds, so a Stripe
//! user gets dunning without any import.
//!
//! - `invoice_id`: the Stripe invoice's `metadata.invoice_id` when set, else
//!   its own id (`in_...`); `customer_id`: its `customer`;
//!   `customer_name` / `email` / `phone`: `customer_name`, `customer_email`,
//!   `customer_phone`;
//! - `amount`: `amount_remaining` in the currency's major units (what is still
//!   owed; a paid invoice keeps the amount it had); `currency`;
//! - `due_date`: the invoice's `due_date` as a date in `BUSINESS_TIMEZONE`
//!   (an invoice charged automatically has none: its finalization date);
//! - `pay_url`: `hosted_invoice_url`; `status`: `open`, `paid`, `void`
//!   (`uncollectible` and a deleted invoice are void too: nothing more is
//!   sent). Drafts are not synced.
//!
//! **Order.** Stripe does not deliver events in order. Each item keeps the
//! `created` instant of the event it was synced from
//! (`stripe_event_created`): an older event changes nothing, and a paid or
//! void invoice is never made open again whatever the order. A second event
//! for the same invoice updates it; it is never duplicated (its id is the
//! partition key, created only if absent).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use super::event::ParseError;
use crate::edit::{Edit, EditError, Request};
use crate::invoice::{Invoice, InvoiceStatus, RawInvoice, RawValue};
use crate::money::Currency;
use crate::ports::{edit_invoice, EditStore, Edited};

/// The events that carry a Stripe invoice's state.
pub const SYNC_EVENTS: &[&str] = &[
    "invoice.finalized",
    "invoice.updated",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "invoice.deleted",
    "invoice.paid",
    "invoice.payment_succeeded",
];

pub use crate::edit::{STRIPE_LINK as LINK, SYNCED_CREATED as EVENT_CREATED};

/// A Stripe invoice's own payments: with sync on, its `amount_remaining`
/// counts them, so they are not counted again.
pub const COUNTED_BY_SYNC: &[&str] = &["invoice_payment.paid"];

/// The history record's command.
pub const SYNC_COMMAND: &str = "stripe-sync";

/// A Stripe invoice as an invoice item.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncedInvoice {
    pub event_id: String,
    pub event_type: String,
    /// The event's `created`: later events win.
    pub created: i64,
    pub invoice_id: String,
    pub stripe_invoice_id: String,
    pub status: InvoiceStatus,
    /// The item's contract attributes (text), `None` to remove.
    pub fields: Vec<(String, Option<String>)>,
}

/// What a Stripe event says of an invoice, or `Ok(None)` when it is not a
/// synced event (or a draft's).
pub fn parse(body: &[u8], business_tz: Tz) -> Result<Option<SyncedInvoice>, ParseError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| ParseError::NotJson)?;
    let event_type = v.get("type").and_then(Value::as_str).unwrap_or("");
    if COUNTED_BY_SYNC.contains(&event_type) {
        return Err(ParseError::CountedBySync);
    }
    if !SYNC_EVENTS.contains(&event_type) {
        return Ok(None);
    }
    let object = v
        .pointer("/data/object")
        .filter(|o| o.get("object").and_then(Value::as_str) == Some("invoice"))
        .ok_or(ParseError::Missing("data.object"))?;
    let text = |field: &str| {
        object
            .get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let number = |field: &str| object.get(field).and_then(Value::as_i64);
    let stripe_status = text("status").unwrap_or("");
    let status = match (event_type, stripe_status) {
        ("invoice.deleted", _) => InvoiceStatus::Void,
        (_, "draft") | (_, "") => return Ok(None),
        (_, "open") => InvoiceStatus::Open,
        (_, "paid") => InvoiceStatus::Paid,
        (_, "void" | "uncollectible") => InvoiceStatus::Void,
        _ => return Err(ParseError::Invalid("data.object.status")),
    };
    let stripe_id = text("id").ok_or(ParseError::Missing("data.object.id"))?;
    let invoice_id = object
        .pointer("/metadata/invoice_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(stripe_id);
    let currency = text("currency")
        .and_then(|c| Currency::parse(&c.to_ascii_uppercase()))
        .ok_or(ParseError::Invalid("data.object.currency"))?;
    let major = |minor: i64| {
        let mut amount = rust_decimal::Decimal::from(minor);
        amount
            .set_scale(currency.exponent())
            .map_err(|_| ParseError::Invalid("data.object.amount_remaining"))?;
        Ok::<_, ParseError>(amount.to_string())
    };
    let remaining =
        number("amount_remaining").ok_or(ParseError::Missing("data.object.amount_remaining"))?;
    if remaining < 0 {
        return Err(ParseError::Invalid("data.object.amount_remaining"));
    }
    // Paid: what it owed stays (the item's amount must stay above zero).
    let amount = match remaining {
        0 => number("amount_due")
            .or_else(|| number("total"))
            .filter(|t| *t > 0)
            .map(major)
            .transpose()?
            .map(|a| (a, true)),
        r => Some((major(r)?, false)),
    };
    let due_at = number("due_date")
        .or_else(|| {
            object
                .pointer("/status_transitions/finalized_at")
                .and_then(Value::as_i64)
        })
        .or_else(|| number("created"))
        .ok_or(ParseError::Missing("data.object.due_date"))?;
    let due_date = DateTime::<Utc>::from_timestamp(due_at, 0)
        .ok_or(ParseError::Invalid("data.object.due_date"))?
        .with_timezone(&business_tz)
        .date_naive();
    // Never the e-mail address as a name: it would reach the history unmasked.
    let name = text("customer_name").unwrap_or("Customer");
    let mut fields: Vec<(String, Option<String>)> = vec![
        (
            "customer_id".into(),
            Some(text("customer").unwrap_or(stripe_id).to_owned()),
        ),
        (
            "customer_name".into(),
            Some(name.chars().take(200).collect()),
        ),
        ("email".into(), text("customer_email").map(str::to_owned)),
        ("phone".into(), text("customer_phone").map(str::to_owned)),
        ("currency".into(), Some(currency.code().to_owned())),
        ("due_date".into(), Some(due_date.to_string())),
        ("status".into(), Some(status.as_str().to_owned())),
        (
            "pay_url".into(),
            text("hosted_invoice_url").map(str::to_owned),
        ),
    ];
    match amount {
        // A new paid invoice needs an amount; one already synced keeps its own.
        Some((a, true)) => fields.push(("amount_if_new".into(), Some(a))),
        Some((a, false)) => fields.push(("amount".into(), Some(a))),
        None => {}
    }
    Ok(Some(SyncedInvoice {
        event_id: v.get("id").and_then(Value::as_str).unwrap_or("").to_owned(),
        event_type: event_type.to_owned(),
        created: v
            .get("created")
            .and_then(Value::as_i64)
            .ok_or(ParseError::Missing("created"))?,
        invoice_id: invoice_id.to_owned(),
        stripe_invoice_id: stripe_id.to_owned(),
        status,
        fields,
    }))
}

/// What syncing one event did.
#[derive(Debug, Clone, PartialEq)]
pub enum Synced {
    Created,
    Updated,
    /// The item already says so.
    Unchanged,
    /// An older event than the one the item was synced from.
    Stale,
    /// The item is linked to another Stripe invoice (`stripe_invoice_id`):
    /// this one's events do not change it.
    OtherInvoice,
}

impl Synced {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
            Self::Stale => "stale",
            Self::OtherInvoice => "other_stripe_invoice",
        }
    }
}

/// Creates the invoice item, or updates it as an edit does (after any
/// reminder in flight, never reopening what is paid or void), unless the item
/// was synced from a later event or belongs to another Stripe invoice.
pub async fn sync_invoice<S: EditStore>(
    store: &S,
    synced: &SyncedInvoice,
    now: DateTime<Utc>,
) -> Result<Synced, EditError> {
    // Twice at most: created by another delivery between the read and the create.
    for _ in 0..2 {
        let Some(seen) = store.read_for_payment(&synced.invoice_id, &[], now).await? else {
            match create(store, synced, now).await? {
                Some(done) => return Ok(done),
                None => continue,
            }
        };
        return update(store, synced, &seen.raw, now).await;
    }
    Err(EditError::Busy)
}

/// Creates the item; `None` when it exists meanwhile.
async fn create<S: EditStore>(
    store: &S,
    synced: &SyncedInvoice,
    now: DateTime<Utc>,
) -> Result<Option<Synced>, EditError> {
    // Only a draft is deleted, and drafts are never items: nothing to void.
    if synced.event_type == "invoice.deleted" {
        return Ok(Some(Synced::Unchanged));
    }
    let id = &synced.invoice_id;
    let mut raw = RawInvoice::default();
    raw.insert("invoice_id", RawValue::Text(id.clone()));
    for (k, v) in &synced.fields {
        let k = if k == "amount_if_new" { "amount" } else { k };
        if let Some(v) = v {
            raw.insert(k, RawValue::Text(v.clone()));
        }
    }
    raw.insert(EVENT_CREATED, RawValue::Number(synced.created.to_string()));
    raw.insert(LINK, RawValue::Text(synced.stripe_invoice_id.clone()));
    Invoice::parse(&raw).map_err(|r| EditError::Invalid(r.reason))?;
    let record = crate::edit::history_record(
        SYNC_COMMAND,
        &format!("stripe:{}", synced.event_id),
        Some(&synced.event_type),
        vec![format!("created from {}", synced.event_type)],
        now,
    );
    Ok(store
        .create_invoice(id, &raw, &record)
        .await?
        .then_some(Synced::Created))
}

/// Updates an existing item from a newer event of its own Stripe invoice:
/// what Stripe leaves out (a phone, say) stays as it is, and so does the
/// customer the item belongs to; an item not yet linked to a Stripe invoice
/// (imported, its id in the invoice's `metadata.invoice_id`) is linked.
async fn update<S: EditStore>(
    store: &S,
    synced: &SyncedInvoice,
    raw: &RawInvoice,
    now: DateTime<Utc>,
) -> Result<Synced, EditError> {
    let linked = match raw.0.get(LINK) {
        Some(RawValue::Text(t)) if !t.is_empty() => Some(t.as_str()),
        _ => None,
    };
    match linked {
        Some(l) if l != synced.stripe_invoice_id => return Ok(Synced::OtherInvoice),
        None if synced.event_type == "invoice.deleted" => return Ok(Synced::Unchanged),
        _ => {}
    }
    if crate::edit::synced_created(raw).is_some_and(|at| at > synced.created) {
        return Ok(Synced::Stale);
    }
    let mut fields: Vec<(String, Option<String>)> = synced
        .fields
        .iter()
        .filter(|(k, v)| k != "amount_if_new" && k != "customer_id" && v.is_some())
        .cloned()
        .collect();
    if linked.is_none() {
        fields.push((LINK.into(), Some(synced.stripe_invoice_id.clone())));
    }
    let request = Request {
        edit: Edit::Sync {
            fields,
            created: synced.created,
        },
        by: format!("stripe:{}", synced.event_id),
        reason: Some(synced.event_type.clone()),
        command: Some(SYNC_COMMAND),
    };
    Ok(
        match edit_invoice(store, &synced.invoice_id, &request, || now).await? {
            Edited::Applied { .. } => Synced::Updated,
            Edited::Unchanged => Synced::Unchanged,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/stripe/2026-10-28.clover/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn field<'a>(s: &'a SyncedInvoice, name: &str) -> Option<&'a str> {
        s.fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    #[test]
    fn a_finalized_invoice_is_an_item_in_major_units_due_on_the_business_s_date() {
        let utc = parse(&fixture("invoice.finalized.sync"), Tz::UTC)
            .unwrap()
            .unwrap();
        assert_eq!(
            utc.invoice_id, "in_1QCSync000000002001",
            "no metadata: Stripe's id"
        );
        assert_eq!(utc.created, 1795168800);
        assert_eq!(field(&utc, "amount"), Some("480.00"));
        assert_eq!(field(&utc, "due_date"), Some("2026-11-23"));
        // Due at 12:00 UTC: already the 24th in Auckland.
        let nz = parse(
            &fixture("invoice.finalized.sync"),
            chrono_tz::Pacific::Auckland,
        )
        .unwrap()
        .unwrap();
        assert_eq!(field(&nz, "due_date"), Some("2026-11-24"));
        let voided = parse(&fixture("invoice.voided.sync"), Tz::UTC)
            .unwrap()
            .unwrap();
        assert_eq!(
            (voided.invoice_id.as_str(), voided.status),
            ("INV-2002", InvoiceStatus::Void)
        );
        let paid = parse(&fixture("invoice.paid.sync"), Tz::UTC)
            .unwrap()
            .unwrap();
        assert_eq!(paid.status, InvoiceStatus::Paid);
        assert_eq!(
            field(&paid, "amount"),
            None,
            "a paid invoice keeps its amount"
        );
        assert_eq!(field(&paid, "amount_if_new"), Some("300.00"));
        let uncollectible = parse(&fixture("invoice.marked_uncollectible.sync"), Tz::UTC)
            .unwrap()
            .unwrap();
        assert_eq!(uncollectible.status, InvoiceStatus::Void);
    }

    #[test]
    fn minor_units_follow_the_currency_and_what_is_not_an_invoice_s_state_is_refused_or_passed_on()
    {
        let mut v: Value = serde_json::from_slice(&fixture("invoice.finalized.sync")).unwrap();
        v["data"]["object"]["currency"] = "jpy".into();
        v["data"]["object"]["amount_remaining"] = 54000.into();
        let jpy = parse(v.to_string().as_bytes(), Tz::UTC).unwrap().unwrap();
        assert_eq!(field(&jpy, "amount"), Some("54000"));
        v["data"]["object"]["status"] = "draft".into();
        assert_eq!(parse(v.to_string().as_bytes(), Tz::UTC).unwrap(), None);
        v["data"]["object"]["status"] = "open".into();
        v["data"]["object"]["amount_remaining"] = (-1).into();
        assert!(parse(v.to_string().as_bytes(), Tz::UTC).is_err());
        v["data"]["object"]["object"] = "charge".into();
        assert!(parse(v.to_string().as_bytes(), Tz::UTC).is_err());
        // Not an invoice's event: the payment path takes it.
        assert_eq!(
            parse(&fixture("payment_intent.succeeded"), Tz::UTC).unwrap(),
            None
        );
    }
}
