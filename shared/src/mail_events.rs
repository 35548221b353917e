//! What comes back from SES about a reminder, and what it changes. Pure:
//! [`parse`] reads one event record SES publishes through its configuration
//! set (the JSON of the SES developer guide's "event publishing" examples,
//! as the SNS message body), [`MailEvent::effects`] says what to write; the
//! `mail-events` function carries that out (`aws::mail_events`).
//!
//! - `Send`: SES accepted the message. A ledger record still `claimed` by
//!   the claim the tags name is recorded `sent` with the message id: a run
//!   that crashed between the provider's acceptance and its own record
//!   leaves no claim for a later run to take over and send again.
//! - `Delivery`, `DeliveryDelay`, `Reject`, `Rendering Failure`, a
//!   transient bounce: recorded on the ledger records only.
//! - A permanent bounce (including SES's own `OnAccountSuppressionList`):
//!   recorded, and the address is suppressed for the customer; a
//!   `customer.email_bounced` event tells people the customer has no
//!   working e-mail.
//! - A complaint: recorded, and the customer is opted out of e-mail.

pub mod inbound;
pub mod tags;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::channel::Channel;
use crate::customer::{Change, Mark, BOUNCE_SOURCE, COMPLAINT_SOURCE};
pub use tags::MessageTags;

/// One event SES published about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailEvent {
    /// SES's message id (what `SendEmail` returned and the ledger holds).
    pub message_id: String,
    /// When the event happened (the event's own time, else the send's).
    pub at: DateTime<Utc>,
    /// `None` for a message that is not one of our reminders (a receipt, say).
    pub tags: Option<MessageTags>,
    /// Every address the message was sent to (To and the BCC archive).
    pub destination: Vec<String>,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Send,
    Delivery,
    Bounce {
        permanent: bool,
        /// SES's `bounceSubType` (`General`, `NoEmail`, `OnAccountSuppressionList`, ...).
        sub_type: String,
        /// The addresses that bounced.
        recipients: Vec<String>,
    },
    Complaint {
        /// `complaintFeedbackType` when the receiver said (`abuse`, ...).
        feedback_type: Option<String>,
        /// The addresses that complained.
        recipients: Vec<String>,
    },
    Reject {
        reason: String,
    },
    RenderingFailure {
        error: String,
    },
    DeliveryDelay {
        delay_type: String,
    },
    /// Open, Click, Subscription, or a type SES adds later: ignored.
    Other(String),
}

/// Why an event record cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("not JSON of an SES event: {0}")]
    Json(String),
    #[error("not an SES event record (no eventType)")]
    NotAnEvent,
}

impl ParseError {
    /// serde_json's message may quote the body (an address, a reply's
    /// words): only where and what kind of error it was is kept, for logs.
    fn json(e: &serde_json::Error) -> Self {
        Self::Json(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    }
}

/// What one event writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effects {
    /// The attribute on each ledger record the tags name (`mail_bounce`,
    /// ...) and the note it holds; `None` for events we do not keep.
    pub note: Option<(&'static str, Note)>,
    /// Record a still-claimed record `sent` (a `Send` event).
    pub settle: bool,
    /// Changes to the customer's record.
    pub changes: Vec<Change>,
    /// Tell people the customer has no working e-mail (if a change applied).
    pub escalate: bool,
}

/// What the ledger keeps of an event: its time, its message, a short detail
/// (never an address).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    pub at: DateTime<Utc>,
    pub message_id: String,
    pub detail: String,
}

impl MailEvent {
    /// The SES event type's name as we store it (`bounce`, `send`, ...).
    pub fn name(&self) -> &str {
        match &self.kind {
            EventKind::Send => "send",
            EventKind::Delivery => "delivery",
            EventKind::Bounce { .. } => "bounce",
            EventKind::Complaint { .. } => "complaint",
            EventKind::Reject { .. } => "reject",
            EventKind::RenderingFailure { .. } => "rendering_failure",
            EventKind::DeliveryDelay { .. } => "delivery_delay",
            EventKind::Other(_) => "other",
        }
    }

    /// Whether `address` stands for the customer: it is the one the tags
    /// name, or one the message was not sent to (a mailbox the customer's
    /// address forwards to, named by the bounce report). Only another
    /// address the message went to, the `BCC_EMAIL` archive, is not; on a
    /// message tagged before `dunning-to` every recipient is the customer.
    /// Whether `address` is one of the message's copies (Cc): the
    /// customer's other addresses, each suppressed on its own.
    fn is_a_copy(&self, address: &str) -> bool {
        let h = tags::address_hash(address);
        self.tags.as_ref().is_some_and(|t| t.cc_hashes.contains(&h))
    }

    fn is_the_customer(&self, address: &str) -> bool {
        let Some(h) = self.tags.as_ref().and_then(|t| t.to_hash.as_deref()) else {
            return true;
        };
        let key = |a: &str| a.trim().to_lowercase();
        tags::address_hash(address) == h || !self.destination.iter().any(|d| key(d) == key(address))
    }

    /// What the event writes.
    pub fn effects(&self) -> Effects {
        let mark = |source: &str, reason: String| Mark {
            source: source.into(),
            at: self.at,
            reason: Some(reason),
        };
        let note = |attr: &'static str, detail: String| {
            Some((
                attr,
                Note {
                    at: self.at,
                    message_id: self.message_id.clone(),
                    detail,
                },
            ))
        };
        let mut e = Effects {
            note: None,
            settle: false,
            changes: Vec::new(),
            escalate: false,
        };
        match &self.kind {
            EventKind::Send => {
                e.note = note("mail_send", "accepted by SES".into());
                e.settle = true;
            }
            EventKind::Delivery => e.note = note("mail_delivery", "delivered".into()),
            EventKind::Bounce {
                permanent,
                sub_type,
                recipients,
            } => {
                let kind = if *permanent { "permanent" } else { "transient" };
                e.note = note("mail_bounce", format!("{kind} bounce: {sub_type}"));
                if *permanent {
                    let suppress = |address: &String| Change::Suppress {
                        address: address.clone(),
                        mark: mark(BOUNCE_SOURCE, sub_type.clone()),
                    };
                    let own: Vec<Change> = recipients
                        .iter()
                        .filter(|a| !self.is_a_copy(a) && self.is_the_customer(a))
                        .map(suppress)
                        .collect();
                    // No working e-mail is the customer's own address failing;
                    // a copy that bounces only stops getting copies.
                    e.escalate = !own.is_empty();
                    e.changes = own;
                    e.changes.extend(
                        recipients
                            .iter()
                            .filter(|a| self.is_a_copy(a))
                            .map(suppress),
                    );
                }
            }
            EventKind::Complaint {
                feedback_type,
                recipients,
            } => {
                let what = feedback_type.clone().unwrap_or_else(|| "complaint".into());
                e.note = note("mail_complaint", what.clone());
                // A copy's reader complained: that address gets no more copies.
                e.changes = recipients
                    .iter()
                    .filter(|a| self.is_a_copy(a))
                    .map(|address| Change::Suppress {
                        address: address.clone(),
                        mark: mark(COMPLAINT_SOURCE, what.clone()),
                    })
                    .collect();
                // SES may leave the complainer out; then it can only be the To.
                let own = recipients
                    .iter()
                    .any(|a| !self.is_a_copy(a) && self.is_the_customer(a));
                if recipients.is_empty() || own {
                    e.changes.push(Change::OptOut {
                        channel: Channel::Email,
                        mark: mark(COMPLAINT_SOURCE, what),
                    });
                }
            }
            EventKind::Reject { reason } => e.note = note("mail_reject", reason.clone()),
            EventKind::RenderingFailure { error } => {
                e.note = note("mail_rendering_failure", error.clone())
            }
            EventKind::DeliveryDelay { delay_type } => {
                e.note = note("mail_delivery_delay", delay_type.clone())
            }
            EventKind::Other(_) => {}
        }
        e
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    event_type: Option<String>,
    mail: RawMail,
    bounce: Option<RawBounce>,
    complaint: Option<RawComplaint>,
    delivery: Option<RawTimed>,
    reject: Option<RawReject>,
    failure: Option<RawFailure>,
    delivery_delay: Option<RawDelay>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
/// The `mail` object of an event record and of a receipt notification.
struct RawMail {
    timestamp: DateTime<Utc>,
    message_id: String,
    #[serde(default)]
    tags: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    destination: Vec<String>,
    #[serde(default)]
    headers: Vec<RawHeader>,
}

#[derive(Deserialize)]
struct RawHeader {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBounce {
    bounce_type: String,
    #[serde(default)]
    bounce_sub_type: String,
    #[serde(default)]
    bounced_recipients: Vec<RawRecipient>,
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecipient {
    email_address: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawComplaint {
    complaint_feedback_type: Option<String>,
    #[serde(default)]
    complained_recipients: Vec<RawRecipient>,
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct RawTimed {
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct RawReject {
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFailure {
    #[serde(default)]
    error_message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDelay {
    #[serde(default)]
    delay_type: String,
    timestamp: Option<DateTime<Utc>>,
}

/// Reads one SES event record (the SNS message body).
pub fn parse(body: &str) -> Result<MailEvent, ParseError> {
    let raw: RawEvent = serde_json::from_str(body).map_err(|e| ParseError::json(&e))?;
    let event_type = raw.event_type.ok_or(ParseError::NotAnEvent)?;
    let sent = raw.mail.timestamp;
    let (kind, at) = match event_type.as_str() {
        "Send" => (EventKind::Send, None),
        "Delivery" => (EventKind::Delivery, raw.delivery.and_then(|d| d.timestamp)),
        "Bounce" => {
            let b = raw
                .bounce
                .ok_or_else(|| ParseError::Json("a Bounce without bounce".into()))?;
            (
                EventKind::Bounce {
                    permanent: b.bounce_type == "Permanent",
                    sub_type: b.bounce_sub_type,
                    recipients: b
                        .bounced_recipients
                        .into_iter()
                        .map(|r| r.email_address)
                        .collect(),
                },
                b.timestamp,
            )
        }
        "Complaint" => {
            let c = raw.complaint.unwrap_or(RawComplaint {
                complaint_feedback_type: None,
                complained_recipients: Vec::new(),
                timestamp: None,
            });
            (
                EventKind::Complaint {
                    feedback_type: c.complaint_feedback_type,
                    recipients: c
                        .complained_recipients
                        .into_iter()
                        .map(|r| r.email_address)
                        .collect(),
                },
                c.timestamp,
            )
        }
        "Reject" => (
            EventKind::Reject {
                reason: raw.reject.map(|r| r.reason).unwrap_or_default(),
            },
            None,
        ),
        "Rendering Failure" => (
            EventKind::RenderingFailure {
                error: raw.failure.map(|f| f.error_message).unwrap_or_default(),
            },
            None,
        ),
        "DeliveryDelay" => {
            let d = raw.delivery_delay;
            let at = d.as_ref().and_then(|d| d.timestamp);
            (
                EventKind::DeliveryDelay {
                    delay_type: d.map(|d| d.delay_type).unwrap_or_default(),
                },
                at,
            )
        }
        other => (EventKind::Other(other.to_owned()), None),
    };
    Ok(MailEvent {
        message_id: raw.mail.message_id,
        at: at.unwrap_or(sent),
        tags: MessageTags::from_event(&raw.mail.tags),
        destination: raw.mail.destination,
        kind,
    })
}

#[cfg(test)]
mod tests;
