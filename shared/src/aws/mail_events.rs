//! Carrying out what an SES event says ([`crate::mail_events`]) on DynamoDB:
//! a note on each ledger record the message's tags name (a `Send` event
//! records a still-claimed record `sent`), the customer record's changes,
//! and the event people get when a customer has no working e-mail.

use aws_sdk_dynamodb::types::AttributeValue;

use super::outcomes::condition_failure_is_false;
use super::store::{rfc3339, s, DynamoStore};
use crate::channel::Channel;
use crate::ledger::{ledger_key, reminder_sk, LedgerState};
use crate::mail_events::{MailEvent, MessageTags, Note};
use crate::ports::{EventPublisher, StoreError};

/// What one event changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Handled {
    /// Ledger records that got the event's note.
    pub noted: usize,
    /// Of them, records still claimed that the event recorded `sent`.
    pub settled: usize,
    /// Ledger records the tags named that do not exist.
    pub missing: usize,
    /// Changes to the customer's record that applied (not already so).
    pub changed: usize,
    /// Whether people were told the customer has no working e-mail.
    pub escalated: bool,
    /// The message was not one of our reminders: nothing to record.
    pub untagged: bool,
}

/// Where "no working e-mail" goes: a publisher and its topic.
pub struct Escalations<'a, P> {
    pub publisher: &'a P,
    pub topic: &'a str,
}

/// Records one event and applies its effects. Idempotent: SNS may deliver
/// an event twice; a note is written again the same, a change applies once
/// and people are told only when the change applied.
pub async fn handle<P: EventPublisher>(
    store: &DynamoStore,
    escalations: Option<Escalations<'_, P>>,
    event: &MailEvent,
) -> Result<Handled, StoreError> {
    let mut out = Handled::default();
    let Some(tags) = &event.tags else {
        out.untagged = true;
        return Ok(out);
    };
    let effects = event.effects();
    let sk = reminder_sk(&tags.step, Channel::Email);
    if let Some((attr, note)) = &effects.note {
        for invoice_id in &tags.invoices {
            let settled = effects.settle
                && store
                    .settle_from_event(invoice_id, &sk, tags, note, attr)
                    .await?;
            if settled {
                out.settled += 1;
                out.noted += 1;
                // What the run would have done after its own record.
                if let Err(err) = store
                    .mark_reminded_item(
                        invoice_id,
                        &ledger_key(&tags.step, Channel::Email),
                        Some(event.at),
                    )
                    .await
                {
                    tracing::warn!(%invoice_id, error = %err, "could not mark the invoice reminded; the ledger still guards it");
                }
                if let Err(err) = store.release_invoice_item(invoice_id, &tags.claim).await {
                    tracing::warn!(%invoice_id, error = %err, "could not release the invoice; payments wait until the lease ends");
                }
            } else if store.note_event(invoice_id, &sk, attr, note).await? {
                out.noted += 1;
            } else {
                out.missing += 1;
            }
        }
    }
    for change in &effects.changes {
        let (_, changed) = store.change_customer(&tags.customer_id, change).await?;
        out.changed += usize::from(changed);
    }
    if effects.escalate && out.changed > 0 {
        out.escalated = escalate(escalations, tags, event).await;
    }
    Ok(out)
}

/// Tells people the customer's e-mail bounced for good; best effort (the
/// suppression is recorded whatever happens here).
async fn escalate<P: EventPublisher>(
    escalations: Option<Escalations<'_, P>>,
    tags: &MessageTags,
    event: &MailEvent,
) -> bool {
    let Some(e) = escalations else {
        tracing::warn!(customer_id = %tags.customer_id, "e-mail suppressed after a bounce; no ESCALATION_TOPIC_ARN to tell anyone");
        return false;
    };
    let body = serde_json::json!({
        "type": "customer.email_bounced",
        "customer_id": tags.customer_id,
        "invoice_ids": tags.invoices,
        "step": tags.step,
        "message_id": event.message_id,
        "bounced_at": rfc3339(event.at),
        "what_now": "the customer has no working e-mail: later reminders skip e-mail (email_bounced); \
                     set a new address on the invoices, then `dunning-admin customer set CUST --unsuppress ADDRESS` if the old one works again",
    });
    match e
        .publisher
        .publish(e.topic, "Customer has no working e-mail", &body)
        .await
    {
        Ok(_) => true,
        Err(err) => {
            tracing::warn!(customer_id = %tags.customer_id, code = %err.code, "could not publish the bounce escalation");
            false
        }
    }
}

fn note_value(note: &Note, claim: Option<&str>) -> AttributeValue {
    let mut map = std::collections::HashMap::from([
        ("at".to_owned(), s(rfc3339(note.at))),
        ("message_id".to_owned(), s(&note.message_id)),
        ("detail".to_owned(), s(&note.detail)),
    ]);
    if let Some(c) = claim {
        map.insert("claim_token".to_owned(), s(c));
    }
    AttributeValue::M(map)
}

impl DynamoStore {
    /// A `Send` event for a record still claimed by the event's claim (its
    /// run crashed before recording), or waiting to retry after that claim's
    /// send seemed to fail (a timeout SES had in fact accepted): recorded
    /// `sent` with SES's message id (`sent_by = ses_event`), as the run's
    /// own record would have; false when it is not so.
    async fn settle_from_event(
        &self,
        invoice_id: &str,
        sk: &str,
        tags: &MessageTags,
        note: &Note,
        attr: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .update_record(invoice_id, sk)
            .update_expression(
                "SET #state = :sent, message_id = :id, sent_at = :at, sent_by = :by, #note = :note \
                 REMOVE lease_expires, error_code, error_class, error_message",
            )
            .condition_expression("#state IN (:claimed, :retry) AND claim_token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#note", attr)
            .expression_attribute_values(":sent", s(LedgerState::Sent.as_str()))
            .expression_attribute_values(":claimed", s(LedgerState::Claimed.as_str()))
            .expression_attribute_values(":retry", s(LedgerState::Retry.as_str()))
            .expression_attribute_values(":id", s(&note.message_id))
            .expression_attribute_values(":at", s(rfc3339(note.at)))
            .expression_attribute_values(":by", s("ses_event"))
            .expression_attribute_values(":token", s(&tags.claim))
            .expression_attribute_values(":note", note_value(note, Some(&tags.claim)))
            .send()
            .await;
        condition_failure_is_false(result.map(|_| ()), "UpdateItem")
    }

    /// Writes the event's note on an existing ledger record; false when
    /// there is no such record (nothing is created).
    async fn note_event(
        &self,
        invoice_id: &str,
        sk: &str,
        attr: &str,
        note: &Note,
    ) -> Result<bool, StoreError> {
        let result = self
            .update_record(invoice_id, sk)
            .update_expression("SET #note = :note")
            .condition_expression("attribute_exists(sk)")
            .expression_attribute_names("#note", attr)
            .expression_attribute_values(":note", note_value(note, None))
            .send()
            .await;
        condition_failure_is_false(result.map(|_| ()), "UpdateItem")
    }
}

/// What one delivery of SNS messages did, for the function's log line.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Batch {
    pub events: usize,
    /// Messages that are not SES event records: skipped, each logged once.
    pub malformed: usize,
    /// Events about messages that are not our reminders.
    pub untagged: usize,
    pub noted: usize,
    pub settled: usize,
    pub missing: usize,
    pub changed: usize,
    pub escalated: usize,
    /// Replies from people (each pauses its customer).
    pub replies: usize,
    /// Automatic replies (out of office, ...): counted only.
    pub auto_replies: usize,
    /// Inbound mail not to a reply address, or whose link names no customer
    /// (forwarded, nobody paused).
    pub unmatched_replies: usize,
    /// Replies forwarded to `REPLY_TO_EMAIL`.
    pub forwarded: usize,
    /// Mail naming no customer that SES's scans did not pass: not forwarded.
    pub not_clean: usize,
}

/// Where replies go: the inbound domain, how long a reply pauses, and
/// whom they are forwarded to (from the mailer's sender identity).
pub struct Replies<'a> {
    pub domain: &'a str,
    pub pause: chrono::Duration,
    pub forward: Option<(&'a super::SesMailer, &'a crate::contact::EmailAddress)>,
}

/// What handling mail events needs.
pub struct Listener<'a, P> {
    pub store: &'a DynamoStore,
    /// Where "no working e-mail" goes.
    pub escalations: Option<(&'a P, &'a str)>,
    /// Replies, when `INBOUND_DOMAIN` is set.
    pub replies: Option<Replies<'a>>,
}

impl<P: EventPublisher> Listener<'_, P> {
    /// Handles SNS messages `(message id, body)` in order: SES events and,
    /// with replies on, SES receipt notifications. A message that is
    /// neither is skipped and counted (retrying cannot mend it); a store
    /// that fails stops the batch with its error, so that Lambda delivers it
    /// again (every step is idempotent).
    pub async fn handle_messages<'m>(
        &self,
        messages: impl IntoIterator<Item = (&'m str, &'m str)>,
    ) -> Result<Batch, StoreError> {
        let mut batch = Batch::default();
        for (id, body) in messages {
            let event = match crate::mail_events::parse(body) {
                Ok(event) => event,
                Err(crate::mail_events::ParseError::NotAnEvent) if self.replies.is_some() => {
                    match crate::mail_events::inbound::parse_received(body) {
                        Ok(mail) => {
                            self.handle_reply(&mail, &mut batch).await?;
                            continue;
                        }
                        Err(err) => {
                            batch.malformed += 1;
                            tracing::warn!(sns_message_id = %id, error = %err, "neither an SES event record nor a receipt notification; skipped");
                            continue;
                        }
                    }
                }
                Err(err) => {
                    batch.malformed += 1;
                    tracing::warn!(sns_message_id = %id, error = %err, "not an SES event record; skipped");
                    continue;
                }
            };
            batch.events += 1;
            let escalations = self
                .escalations
                .map(|(publisher, topic)| Escalations { publisher, topic });
            let h = handle(self.store, escalations, &event).await?;
            if h.missing > 0 {
                tracing::warn!(message_id = %event.message_id, event = event.name(), missing = h.missing, "ledger records named by the tags do not exist");
            }
            batch.untagged += usize::from(h.untagged);
            batch.noted += h.noted;
            batch.settled += h.settled;
            batch.missing += h.missing;
            batch.changed += h.changed;
            batch.escalated += usize::from(h.escalated);
        }
        Ok(batch)
    }

    /// A reply to a reminder: the customer the reply address's link names
    /// is paused, and the reply is forwarded. An auto-reply is only counted;
    /// mail that names no customer (another address at the domain, a link
    /// gone) is forwarded without a pause. A forward that fails fails the
    /// invocation, so that Lambda delivers it again (the pause is
    /// idempotent) and, after its retries, keeps it in the dead-letter
    /// queue (with its content, as any event that failed). Nothing of what
    /// the mail says is logged.
    async fn handle_reply(
        &self,
        mail: &crate::mail_events::inbound::Inbound,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        use crate::mail_events::inbound::{forward, is_auto_reply, reply_token};
        let Some(replies) = &self.replies else {
            return Ok(());
        };
        if mail
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(crate::mail_events::inbound::FORWARDED))
        {
            batch.unmatched_replies += 1;
            tracing::warn!(message_id = %mail.message_id, "one of our own forwards came back; not forwarded again");
            return Ok(());
        }
        if is_auto_reply(&mail.headers) {
            batch.auto_replies += 1;
            tracing::info!(message_id = %mail.message_id, "an automatic reply (out of office, ...): reminders go on");
            return Ok(());
        }
        let customer_id = match reply_token(&mail.recipients, replies.domain) {
            Some(token) => self.customer_of(&token).await?,
            None => None,
        };
        match &customer_id {
            None => {
                batch.unmatched_replies += 1;
                tracing::info!(message_id = %mail.message_id, "inbound mail that names no customer: forwarded, nobody paused");
            }
            Some(customer_id) => {
                let change = crate::customer::Change::Replied {
                    at: mail.at,
                    pause_until: mail.at + replies.pause,
                };
                let (_, changed) = self.store.change_customer(customer_id, &change).await?;
                batch.replies += 1;
                batch.changed += usize::from(changed);
                tracing::info!(%customer_id, changed, "the customer replied: reminders paused");
            }
        }
        let (Some((mailer, to)), Some(content)) = (replies.forward, &mail.content) else {
            return Ok(());
        };
        // Mail that names no customer came to any address at the domain:
        // relayed only when SES's spam and virus scans passed it.
        if customer_id.is_none() && !mail.clean {
            batch.not_clean += 1;
            tracing::info!(message_id = %mail.message_id, "inbound mail failed SES's spam or virus scan; not forwarded");
            return Ok(());
        }
        let Some(message) = forward(content, mailer.from(), to) else {
            tracing::warn!(message_id = %mail.message_id, "inbound mail without a header block; not forwarded");
            return Ok(());
        };
        match mailer.send_raw(to, &message).await {
            Ok(_) => {
                batch.forwarded += 1;
                Ok(())
            }
            Err(err) if err.class == crate::ledger::ErrorClass::Permanent => {
                // SES refused this mail for good (its content): trying again cannot help.
                tracing::warn!(message_id = %mail.message_id, code = %err.code, "SES refused to forward a reply; dropped");
                Ok(())
            }
            Err(err) => {
                tracing::warn!(message_id = %mail.message_id, code = %err.code, "could not forward a reply; the invocation fails so that it is delivered again");
                Err(StoreError::local(
                    "SendEmail",
                    format!("forwarding a reply failed: {}", err.code),
                ))
            }
        }
    }

    /// The customer a reply address's link names, if its record exists.
    async fn customer_of(
        &self,
        token: &crate::link::LinkToken,
    ) -> Result<Option<String>, StoreError> {
        use crate::ports::Links;
        Ok(match self.store.get_link(token).await? {
            None => None,
            Some(link) => match &link.target {
                crate::link::LinkTarget::Customer { customer_id, .. } => Some(customer_id.clone()),
                crate::link::LinkTarget::Invoice(id) => self
                    .store
                    .page_invoices(&[id.as_str()])
                    .await?
                    .first()
                    .and_then(|raw| raw.text("customer_id").ok().flatten().map(str::to_owned)),
            },
        })
    }

    /// Handles the SNS event Lambda delivers from the configuration set's
    /// topic or the inbound receipt rule's.
    pub async fn handle_sns_event(
        &self,
        event: &aws_lambda_events::sns::SnsEvent,
    ) -> Result<Batch, StoreError> {
        let messages = event
            .records
            .iter()
            .map(|r| (r.sns.message_id.as_str(), r.sns.message.as_str()));
        self.handle_messages(messages).await
    }

    /// Handles what Lambda delivers to `mail-events`: an SNS event (a
    /// configuration set publishing to an SNS topic, or the inbound receipt
    /// rule) or an EventBridge event from SES (`source: aws.ses`, the event
    /// record in `detail`: the template's way for events). Anything else is
    /// one malformed message.
    pub async fn handle_payload(&self, payload: &serde_json::Value) -> Result<Batch, StoreError> {
        if payload.get("Records").is_some() {
            if let Ok(event) =
                serde_json::from_value::<aws_lambda_events::sns::SnsEvent>(payload.clone())
            {
                return self.handle_sns_event(&event).await;
            }
        }
        if let (Some(id), Some(detail)) = (
            payload.get("id").and_then(|v| v.as_str()),
            payload
                .get("detail")
                .filter(|_| payload.get("detail-type").is_some()),
        ) {
            let body = detail.to_string();
            return self.handle_messages([(id, body.as_str())]).await;
        }
        tracing::warn!("neither an SNS nor an EventBridge event; skipped");
        Ok(Batch {
            malformed: 1,
            ..Batch::default()
        })
    }
}
