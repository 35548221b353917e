//! What the finance team changes on an invoice: a pause, a dispute, a void,
//! a new due date, corrected fields, a re-import. Pure: [`plan`] takes the
//! invoice as read and the request, and returns the attributes to set and
//! remove with a history record saying who changed what and when; `None`
//! when the invoice is already so (every command is idempotent). The store
//! commits a plan only while the invoice is as read and no reminder is in
//! flight (`ports::edit_invoice`).
//!
//! A changed due date starts the ladder again: the invoice's `ladder_cycle`
//! becomes the new date, so the new date's steps have ledger records of
//! their own (`reminder#<step>@<cycle>#<channel>`) and what was sent for the
//! old date stays in the history.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use crate::invoice::instalments::{Instalment, PaymentPlan, INSTALMENTS, PLAN_DEFAULTED_ON};
use crate::invoice::{InvalidReason, Invoice, InvoiceStatus, RawInvoice, RawValue};

/// The partition of wake records (`<date>#<invoice_id>`): the dates an
/// invoice's ladder runs on besides its due date (a plan's instalments, a
/// promise), which a full read takes from here.
pub const WAKE_PARTITION: &str = "#wake";

/// The sort key of an invoice's wake record for `date`.
pub fn wake_sk(date: NaiveDate, invoice_id: &str) -> String {
    format!("{date}#{invoice_id}")
}

/// The item attribute holding the `created` instant (Unix seconds) of the
/// provider event it was last synced from ([`Edit::Sync`]).
pub const SYNCED_CREATED: &str = "stripe_event_created";

/// The Stripe invoice a synced item belongs to (`stripe_invoice_id`).
pub const STRIPE_LINK: &str = "stripe_invoice_id";

/// The `created` instant of the provider event the item was last synced from.
pub fn synced_created(raw: &RawInvoice) -> Option<i64> {
    match raw.0.get(SYNCED_CREATED) {
        Some(RawValue::Number(n) | RawValue::Text(n)) => n.parse().ok(),
        _ => None,
    }
}

/// The command name of a re-import's changes.
pub const IMPORT: &str = "import";

/// Sort-key prefix of the history records of changes.
pub const CHANGE_PREFIX: &str = "change#";

pub use crate::invoice::CYCLE;

/// What a re-import or `edit` may change, in the item contract's names.
pub const EDITABLE: &[&str] = &[
    "customer_id",
    "customer_name",
    "email",
    "phone",
    "amount",
    "currency",
    "due_date",
    "status",
    "timezone",
    "locale",
    "pay_url",
    "channels",
    "promised_by",
    "instalments",
    "cc_emails",
    "cc_phones",
];

/// One change the finance team asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// No reminders before `until`: `YYYY-MM-DD` (through that day in the
    /// invoice's zone) or an RFC 3339 instant, as `reminders_paused_until`.
    Pause {
        until: String,
    },
    Resume,
    Dispute,
    Resolve,
    Void,
    /// A later due date: the ladder starts again for it.
    Extend {
        due: NaiveDate,
    },
    /// A promise to pay by a date: no reminders until then.
    Promise {
        by: NaiveDate,
    },
    /// A payment plan: `DATE:AMOUNT` instalments summing to what is outstanding.
    Plan {
        instalments: Vec<String>,
    },
    /// Attributes (of [`EDITABLE`]) to these values; `None` removes one.
    Set(Vec<(String, Option<String>)>),
    /// A provider's copy of the invoice (a Stripe invoice's event, created
    /// at `created`, Unix seconds): as `Set`, unless the item was synced from
    /// a later event; never reopens what is paid or void.
    Sync {
        fields: Vec<(String, Option<String>)>,
        created: i64,
    },
}

impl Edit {
    /// The command's name, as history shows it.
    pub fn command(&self) -> &'static str {
        match self {
            Self::Pause { .. } => "pause",
            Self::Resume => "resume",
            Self::Dispute => "dispute",
            Self::Resolve => "resolve",
            Self::Void => "void",
            Self::Extend { .. } => "extend",
            Self::Promise { .. } => "promise",
            Self::Plan { .. } => "plan",
            Self::Set(_) => "edit",
            Self::Sync { .. } => "sync",
        }
    }
}

/// An edit with who asks for it and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub edit: Edit,
    /// Who: kept as `cli:<by>` (or `import:<file>`).
    pub by: String,
    pub reason: Option<String>,
    /// Overrides [`Edit::command`] in the history (`import`).
    pub command: Option<&'static str>,
}

/// One attribute's change, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub attribute: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl Change {
    /// The change with an address or number masked (`a***@example.com`):
    /// what the history record keeps and prints.
    pub fn masked(&self) -> Self {
        let contact = matches!(self.attribute.as_str(), "email" | "phone");
        let mask = |v: &Option<String>| {
            v.as_deref().map(|v| {
                if contact {
                    crate::contact::redact(v)
                } else {
                    v.to_owned()
                }
            })
        };
        Self {
            attribute: self.attribute.clone(),
            before: mask(&self.before),
            after: mask(&self.after),
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
        write!(
            f,
            "{}: {} -> {}",
            self.attribute,
            show(&self.before),
            show(&self.after)
        )
    }
}

/// What committing an edit writes.
#[derive(Debug, Clone, PartialEq)]
pub struct EditPlan {
    pub set: Vec<(String, RawValue)>,
    pub remove: Vec<String>,
    /// What the person asked for that changes something (the history's lines).
    pub changes: Vec<Change>,
    /// The history record (`change#<at>#<command>`) and its attributes.
    pub record_sk: String,
    pub record: Vec<(&'static str, RawValue)>,
    /// Dates a full read must take the invoice on ([`WAKE_PARTITION`]).
    pub wake: Vec<NaiveDate>,
    /// What a status change between open and paid adds to the report's
    /// rollup ([`crate::report::rollup::on_status_change`]), in the commit.
    pub rollup: crate::report::rollup::Additions,
    /// Attributes the plan was computed from besides those it writes.
    pub guard: Vec<String>,
}

impl EditPlan {
    /// Every attribute the plan writes, removes or was computed from: the
    /// commit requires each unchanged since read (and `status`).
    pub fn guarded(&self) -> impl Iterator<Item = &str> {
        self.set
            .iter()
            .map(|(k, _)| k.as_str())
            .chain(self.remove.iter().map(String::as_str))
            .chain(self.guard.iter().map(String::as_str))
    }
}

/// Why an edit was refused.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("no invoice {0}")]
    UnknownInvoice(String),
    #[error("the invoice would be invalid: {0} [{code}]", code = .0.code())]
    Invalid(InvalidReason),
    #[error("{0}")]
    NotAllowed(String),
    #[error("`{0}` cannot be edited (editable: {list})", list = EDITABLE.join(", "))]
    NotEditable(String),
    #[error("a reminder for the invoice is being sent and did not finish in time; try again in a minute")]
    Busy,
    #[error(transparent)]
    Plan(#[from] crate::invoice::instalments::PlanError),
    #[error(transparent)]
    Store(#[from] crate::failure::StoreError),
}

fn stored(raw: &RawInvoice, name: &str) -> Option<String> {
    raw.0
        .get(name)
        .map(RawValue::shown)
        .filter(|v| !v.is_empty() && v != "false")
}

/// The plan for `request` on the invoice as read (`raw`, already valid or
/// not), or `None` when it changes nothing.
pub fn plan(
    raw: &RawInvoice,
    request: &Request,
    at: DateTime<Utc>,
) -> Result<Option<EditPlan>, EditError> {
    // Fields set as a whole (an edit, a re-import, a provider's copy) may
    // repair an item that is invalid now; the other commands need a valid one.
    let current = Invoice::parse(raw).map_err(|r| r.reason);
    let lenient = matches!(request.edit, Edit::Set(_) | Edit::Sync { .. });
    if let (Err(reason), false) = (&current, lenient) {
        return Err(EditError::Invalid(*reason));
    }
    let valid = || current.as_ref().map_err(|r| EditError::Invalid(*r));
    let status = match &current {
        Ok(invoice) => invoice.status,
        Err(_) => raw
            .text("status")
            .ok()
            .flatten()
            .and_then(InvoiceStatus::parse)
            .unwrap_or(InvoiceStatus::Open),
    };
    let id = raw.id_hint().unwrap_or("").to_owned();
    let open = |what: &str| -> Result<(), EditError> {
        match status {
            InvoiceStatus::Open => Ok(()),
            other => Err(EditError::NotAllowed(format!(
                "invoice {id} is {}: there are no reminders to {what}",
                other.as_str()
            ))),
        }
    };
    let mut wanted: Vec<(String, Option<RawValue>)> = Vec::new();
    let text = |v: &str| Some(RawValue::Text(v.to_owned()));
    match &request.edit {
        Edit::Pause { until } => {
            open("pause")?;
            wanted.push(("reminders_paused_until".into(), text(until)));
        }
        Edit::Resume => wanted.push(("reminders_paused_until".into(), None)),
        Edit::Dispute => {
            open("hold")?;
            if !valid()?.disputed {
                wanted.push(("disputed".into(), Some(RawValue::Bool(true))));
            }
        }
        Edit::Resolve => {
            wanted.push(("disputed".into(), None));
            wanted.push(("dispute_id".into(), None));
        }
        Edit::Void => {
            if status == InvoiceStatus::Paid {
                return Err(EditError::NotAllowed(format!(
                    "invoice {id} is paid: reverse its payments before voiding it"
                )));
            }
            wanted.push(("status".into(), text("void")));
        }
        Edit::Extend { due } => {
            open("move")?;
            // The same date again changes nothing (idempotent); an earlier one is refused.
            let current_due = valid()?.due_date;
            if *due < current_due {
                return Err(EditError::NotAllowed(format!(
                    "the new due date {due} is not after the current one ({current_due})"
                )));
            }
            wanted.push(("due_date".into(), text(&due.to_string())));
        }
        Edit::Promise { by } => {
            open("hold")?;
            wanted.push(("promised_by".into(), text(&by.to_string())));
        }
        Edit::Plan { instalments } => {
            open("plan")?;
            wanted.push((INSTALMENTS.into(), text(&instalments.join(","))));
        }
        Edit::Sync { created, .. } if synced_created(raw).is_some_and(|at| at > *created) => {
            return Ok(None);
        }
        Edit::Set(fields) | Edit::Sync { fields, .. } => {
            for (name, value) in fields {
                let sync = matches!(request.edit, Edit::Sync { .. });
                let allowed = EDITABLE.contains(&name.as_str()) || (sync && name == STRIPE_LINK);
                if !allowed {
                    return Err(EditError::NotEditable(name.clone()));
                }
                // A file or a provider never reopens what payments or a
                // person closed here.
                let reopens = name == "status"
                    && value.as_deref() == Some(InvoiceStatus::Open.as_str())
                    && status != InvoiceStatus::Open;
                if reopens && (request.command == Some(IMPORT) || sync) {
                    continue;
                }
                // A paid invoice is not voided: its payments are reversed first.
                let voids_paid = name == "status"
                    && value.as_deref() == Some(InvoiceStatus::Void.as_str())
                    && status == InvoiceStatus::Paid;
                if voids_paid && sync {
                    continue;
                }
                if voids_paid {
                    return Err(EditError::NotAllowed(format!(
                        "invoice {id} is paid: reverse its payments before voiding it"
                    )));
                }
                let value = value.as_deref().filter(|v| !v.is_empty());
                wanted.push((name.clone(), value.and_then(text)));
            }
        }
    }
    let mut set = Vec::new();
    let mut remove = Vec::new();
    let mut changes = Vec::new();
    for (name, value) in wanted {
        let before = stored(raw, &name);
        let after = value.as_ref().map(RawValue::shown);
        if before == after || (name == "amount" && same_amount(&before, &after)) {
            continue;
        }
        changes.push(Change {
            attribute: name.clone(),
            before,
            after,
        });
        match value {
            Some(v) => set.push((name, v)),
            None if raw.0.contains_key(&name) => remove.push(name),
            None => {}
        }
    }
    // A newer provider event is kept even when it changes nothing, so that
    // an older one arriving later changes nothing either.
    let newer = match &request.edit {
        Edit::Sync { created, .. } if synced_created(raw) != Some(*created) => Some(*created),
        _ => None,
    };
    if changes.is_empty() && newer.is_none() {
        return Ok(None);
    }
    if let Some(created) = newer {
        set.push((SYNCED_CREATED.into(), RawValue::Number(created.to_string())));
    }
    let mut wake = Vec::new();
    // A plan sums to what is outstanding now; payments from now on pay it.
    if let Some(i) = set.iter().position(|(k, _)| k == INSTALMENTS) {
        if raw.0.contains_key(STRIPE_LINK) {
            return Err(EditError::NotAllowed(format!(
                "invoice {id} is synced from Stripe, whose payments this plan would not see: make the plan in Stripe"
            )));
        }
        let invoice = valid()?;
        let currency = invoice.amount.currency;
        let parts = set[i]
            .1
            .shown()
            .split(',')
            .filter(|t| !t.trim().is_empty())
            .map(|t| Instalment::parse(t, currency))
            .collect::<Result<Vec<_>, _>>()?;
        let plan = PaymentPlan::new(parts, invoice.balance().amount, invoice.amount_paid)?;
        set.remove(i);
        set.extend(plan.attributes());
        if raw.0.contains_key(PLAN_DEFAULTED_ON) {
            remove.push(PLAN_DEFAULTED_ON.into());
        }
        wake.extend(plan.instalments.iter().map(|i| i.date));
    }
    if remove.iter().any(|k| k == INSTALMENTS) {
        for attr in [
            crate::invoice::instalments::PLAN_PAID_BEFORE,
            PLAN_DEFAULTED_ON,
        ] {
            if raw.0.contains_key(attr) {
                remove.push(attr.into());
            }
        }
    }
    if let Some((_, v)) = set.iter().find(|(k, _)| k == "promised_by") {
        wake.extend(crate::calendar::parse_date(&v.shown()));
    }
    // A later due date starts the ladder again, under a cycle of its own.
    // An earlier one (a correction) stays in the cycle: what was sent stays
    // sent, and the steps only move forward.
    let later = |new: &str| match (&current, crate::calendar::parse_date(new)) {
        (Ok(invoice), Some(new)) => new > invoice.due_date,
        _ => false,
    };
    if let Some(due) = set
        .iter()
        .find(|(k, _)| k == "due_date")
        .map(|(_, v)| v.shown())
        .filter(|d| later(d))
    {
        set.push((CYCLE.into(), RawValue::Text(due)));
        if raw.0.contains_key("reminder_offset") {
            remove.push("reminder_offset".into());
        }
        // A broken promise's message is the promise's, not the date's: kept.
        if let Some(RawValue::List(keys)) = raw.0.get("reminded") {
            let promise = format!("{}@", crate::policy::PROMISE_STEP);
            let kept: Vec<String> = keys
                .iter()
                .filter(|k| k.starts_with(&promise))
                .cloned()
                .collect();
            if kept.is_empty() {
                remove.push("reminded".into());
            } else if kept.len() < keys.len() {
                set.push(("reminded".into(), RawValue::List(kept)));
            }
        }
    }
    wake.sort_unstable();
    wake.dedup();
    // Marked paid here, not by a payment: when (a provider's event's own
    // instant), for the pay page and for the report's rollup.
    let paid_at = match &request.edit {
        Edit::Sync { created, .. } => DateTime::from_timestamp(*created, 0).unwrap_or(at),
        _ => at,
    };
    let marks_paid = status == InvoiceStatus::Open
        && set
            .iter()
            .any(|(k, v)| k == "status" && v.shown() == InvoiceStatus::Paid.as_str());
    if marks_paid && !set.iter().any(|(k, _)| k == "paid_at") {
        set.push((
            "paid_at".into(),
            RawValue::Text(paid_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
        ));
    }
    let mut after = raw.clone();
    for (k, v) in &set {
        after.insert(k.clone(), v.clone());
    }
    for k in &remove {
        after.0.remove(k);
    }
    let parsed = Invoice::parse(&after).map_err(|r| EditError::Invalid(r.reason))?;
    let rollup = crate::report::rollup::on_status_change(raw, &after, paid_at);
    let counted_to = crate::report::rollup::COUNTED_TO;
    if marks_paid {
        // Its money is counted up to its total: a payment after counts only beyond.
        let fees: rust_decimal::Decimal = parsed.late_fees.values().copied().sum();
        set.push((
            counted_to.into(),
            RawValue::Text((parsed.amount.amount + fees).to_string()),
        ));
    }
    let reopens = status == InvoiceStatus::Paid && parsed.status == InvoiceStatus::Open;
    if reopens {
        set.push((
            "reopened_at".into(),
            RawValue::Text(at.to_rfc3339_opts(SecondsFormat::Millis, true)),
        ));
        for attr in ["paid_at", counted_to] {
            if raw.0.contains_key(attr) {
                remove.push(attr.into());
            }
        }
    }
    // The rollup's figures come from the amounts and sends as read: the
    // commit requires them unchanged (a payment or a send in between makes
    // the edit read again).
    let mut guard = Vec::new();
    if !rollup.is_empty() {
        guard.extend(["amount", "amount_paid", "reminded", counted_to].map(str::to_owned));
        guard.extend(raw.0.keys().filter(|k| k.starts_with("late_fee#")).cloned());
    }
    let command = request.command.unwrap_or(request.edit.command());
    let lines = changes.iter().map(|c| c.masked().to_string()).collect();
    let (record_sk, record) =
        history_record(command, &request.by, request.reason.as_deref(), lines, at);
    Ok(Some(EditPlan {
        set,
        remove,
        // Nothing a person would read changed: no history record.
        record_sk: if changes.is_empty() {
            String::new()
        } else {
            record_sk
        },
        changes,
        record,
        wake,
        rollup,
        guard,
    }))
}

/// A history record of a change (`change#<instant>#<command>`): which
/// command, who, when, the lines of what changed (already masked), and why.
pub fn history_record(
    command: &str,
    by: &str,
    reason: Option<&str>,
    lines: Vec<String>,
    at: DateTime<Utc>,
) -> (String, Vec<(&'static str, RawValue)>) {
    let at = at.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut record = vec![
        ("command", RawValue::Text(command.into())),
        ("by", RawValue::Text(by.into())),
        ("recorded_at", RawValue::Text(at.clone())),
    ];
    if !lines.is_empty() {
        record.push(("changes", RawValue::List(lines)));
    }
    if let Some(reason) = reason.filter(|r| !r.is_empty()) {
        record.push(("reason", RawValue::Text(reason.into())));
    }
    (format!("{CHANGE_PREFIX}{at}#{command}"), record)
}

/// `1200.5` and `1200.50` are the same amount (a DynamoDB Number drops zeros).
fn same_amount(a: &Option<String>, b: &Option<String>) -> bool {
    let parse = |v: &Option<String>| {
        v.as_deref()
            .and_then(crate::invoice::exact_number)
            .and_then(|t| t.parse::<rust_decimal::Decimal>().ok())
    };
    matches!((parse(a), parse(b)), (Some(x), Some(y)) if x == y)
}

/// An invoice's [`EDITABLE`] attributes in the form the importer writes
/// them (`None`: absent).
pub fn canonical(invoice: &Invoice, name: &str) -> Option<String> {
    match name {
        "customer_id" => Some(invoice.customer_id.clone()),
        "customer_name" => Some(invoice.customer_name.clone()),
        "email" => invoice.email.as_ref().map(|e| e.as_str().to_owned()),
        "phone" => invoice.phone.as_ref().map(|p| p.as_str().to_owned()),
        "amount" => Some(invoice.amount.amount.to_string()),
        "currency" => Some(invoice.amount.currency.code().to_owned()),
        "due_date" => Some(invoice.due_date.to_string()),
        "status" => Some(invoice.status.as_str().to_owned()),
        "timezone" => invoice.timezone.map(|tz| tz.name().to_owned()),
        "locale" => invoice.locale.clone(),
        "pay_url" => invoice.pay_url.clone(),
        "promised_by" => invoice.promised_by.map(|d| d.to_string()),
        "cc_emails" => listed(invoice.email_copies.iter().map(|a| a.as_str())),
        "cc_phones" => listed(invoice.phone_copies.iter().map(|p| p.as_str())),
        "instalments" => invoice.plan.as_ref().map(|p| {
            p.instalments
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        }),
        "channels" => invoice
            .channels
            .as_ref()
            .map(|set| set.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")),
        _ => None,
    }
}

/// Comma-separated, or `None` for none.
fn listed<'a>(items: impl Iterator<Item = &'a str>) -> Option<String> {
    Some(items.collect::<Vec<_>>().join(",")).filter(|s| !s.is_empty())
}

/// What a re-import of `invoice` changes: the [`EDITABLE`] attributes among
/// the row's `columns` (a column left out changes nothing; an empty cell
/// removes an optional attribute), in the importer's form. `amount_paid` is
/// not among them: money comes in as payments.
pub fn import_fields(
    invoice: &Invoice,
    columns: &std::collections::BTreeSet<String>,
) -> Vec<(String, Option<String>)> {
    EDITABLE
        .iter()
        .filter(|name| columns.contains(**name))
        .map(|name| ((*name).to_owned(), canonical(invoice, name)))
        .collect()
}

#[cfg(test)]
mod tests;
