//! Senders that record what they were given instead of sending it, and can
//! be told to refuse some recipients.

use std::sync::{Arc, Mutex};

use crate::contact::{EmailAddress, PhoneNumber};
use crate::ports::{Envelope, EventPublisher, Mailer, SendError, Texter};
use crate::render::EmailContent;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub envelope: Envelope,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSms {
    pub id: String,
    pub to: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PublishedEvent {
    pub id: String,
    pub topic: String,
    pub subject: String,
    pub event: serde_json::Value,
}

/// Everything sent so far, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    pub emails: Vec<SentEmail>,
    pub sms: Vec<SentSms>,
    pub events: Vec<PublishedEvent>,
}

type Refusal = Arc<dyn Fn(&str) -> Option<SendError> + Send + Sync>;

/// A mailer, texter and event publisher in one; clones share what they recorded.
#[derive(Clone, Default)]
pub struct Recorder {
    recorded: Arc<Mutex<Recorded>>,
    refuse: Option<Refusal>,
    opted_out: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder that answers `refuse(recipient)` with its error instead of sending.
    pub fn refusing(refuse: impl Fn(&str) -> Option<SendError> + Send + Sync + 'static) -> Self {
        Self {
            recorded: Default::default(),
            refuse: Some(Arc::new(refuse)),
            opted_out: Default::default(),
        }
    }

    /// The numbers `opted_out_numbers` lists from now on (as SNS's list).
    pub fn set_opted_out(&self, numbers: &[&str]) {
        *self.opted_out.lock().unwrap_or_else(|e| e.into_inner()) =
            numbers.iter().map(|n| (*n).to_owned()).collect();
    }

    /// What was sent so far.
    pub fn recorded(&self) -> Recorded {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn accept(
        &self,
        to: &str,
        record: impl FnOnce(&mut Recorded, String),
    ) -> Result<String, SendError> {
        if let Some(err) = self.refuse.as_ref().and_then(|r| r(to)) {
            return Err(err);
        }
        let mut recorded = self.lock();
        let n = recorded.emails.len() + recorded.sms.len() + recorded.events.len();
        let id = format!("rec-{n:06}");
        record(&mut recorded, id.clone());
        Ok(id)
    }
}

impl Mailer for Recorder {
    async fn send(
        &self,
        to: &EmailAddress,
        email: &EmailContent,
        envelope: &Envelope,
    ) -> Result<String, SendError> {
        self.accept(to.as_str(), |r, id| {
            r.emails.push(SentEmail {
                id,
                to: to.as_str().to_owned(),
                subject: email.subject.clone(),
                html: email.html.clone(),
                text: email.text.clone(),
                envelope: envelope.clone(),
            })
        })
    }
}

impl Texter for Recorder {
    async fn send(&self, to: &PhoneNumber, text: &str) -> Result<String, SendError> {
        self.accept(to.as_str(), |r, id| {
            r.sms.push(SentSms {
                id,
                to: to.as_str().to_owned(),
                text: text.to_owned(),
            })
        })
    }

    async fn opted_out_numbers(&self) -> Result<Vec<String>, SendError> {
        Ok(self
            .opted_out
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }
}

impl EventPublisher for Recorder {
    async fn publish(
        &self,
        topic: &str,
        subject: &str,
        event: &serde_json::Value,
    ) -> Result<String, SendError> {
        self.accept(topic, |r, id| {
            r.events.push(PublishedEvent {
                id,
                topic: topic.to_owned(),
                subject: subject.to_owned(),
                event: event.clone(),
            })
        })
    }
}
