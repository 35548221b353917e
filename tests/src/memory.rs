//! The same harness as [`crate::TestEnv`], over the in-memory store and a
//! recorder instead of moto: for the run's policy scenarios, which then run
//! in milliseconds. What the recorder got reads like what moto "sent".

use anyhow::Result;
use dunning::config::Config;
use dunning::invoice::RawValue;
use dunning::ports::SendError;
use dunning::run::Deps;
use dunning::testing::{self, InMemory, MemoryStore, Recorder};

use crate::{config, Outbox, SentEmail, SentSms, SENDER};

/// A memory store and a recorder behind a run's dependencies.
pub struct MemEnv {
    pub deps: Deps<InMemory>,
    /// What the senders were given.
    pub sent: Sent,
}

impl MemEnv {
    pub async fn start() -> Result<Self> {
        Self::with_config(config(&[]), true).await
    }

    /// `register_sender: false` refuses every email as SES refuses an
    /// unverified sender (`MessageRejected`, systemic: the account's state).
    pub async fn with_config(config: Config, register_sender: bool) -> Result<Self> {
        let recorder = if register_sender {
            Recorder::default()
        } else {
            Recorder::refusing(|to| {
                to.contains('@')
                    .then(|| SendError::systemic("MessageRejected", "Email address not verified"))
            })
        };
        Self::with_recorder(config, recorder)
    }

    /// Over a recorder of the test's own (e.g. one that refuses some sends).
    pub fn with_recorder(config: Config, recorder: Recorder) -> Result<Self> {
        dunning::telemetry::init_capture_only();
        let deps = testing::deps_over(config, MemoryStore::new(), recorder.clone())?;
        Ok(Self {
            deps,
            sent: Sent(recorder),
        })
    }

    /// Writes an invoice item from text attributes, as a billing system would.
    pub async fn put_invoice(&self, attrs: &[(&str, &str)]) -> Result<()> {
        self.deps.store.put_text(attrs);
        Ok(())
    }

    /// Writes an item exactly as given.
    pub async fn put_raw(&self, attrs: &[(&str, RawValue)]) -> Result<()> {
        self.deps.store.put(attrs);
        Ok(())
    }

    /// Every record under an invoice as JSON.
    pub async fn history(&self, invoice_id: &str) -> Result<Vec<serde_json::Value>> {
        Ok(self.deps.store.history(invoice_id))
    }

    /// An invoice's ledger and payment records (everything but the invoice item).
    pub async fn ledger(&self, invoice_id: &str) -> Result<Vec<serde_json::Value>> {
        Ok(self
            .deps
            .store
            .history(invoice_id)
            .into_iter()
            .filter(|r| r["sk"] != "invoice")
            .collect())
    }
}

/// What the recorder got, in the shapes [`crate::Moto`] reads.
pub struct Sent(pub Recorder);

impl Outbox for Sent {
    /// Every email, in order; `body` is the HTML part, as moto keeps it.
    fn sent_emails(&self) -> Result<Vec<SentEmail>> {
        Ok(self
            .0
            .recorded()
            .emails
            .into_iter()
            .map(|e| SentEmail {
                id: e.id,
                to: vec![e.to],
                cc: e
                    .envelope
                    .cc
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect(),
                subject: e.subject,
                body: e.html,
                text: e.text,
                source: SENDER.to_owned(),
                tags: e
                    .envelope
                    .tags
                    .into_iter()
                    .map(|(k, v)| (k, vec![v]))
                    .collect(),
                headers: e.envelope.headers,
                reply_to: e
                    .envelope
                    .reply_to
                    .map(|r| r.as_str().to_owned())
                    .into_iter()
                    .collect(),
            })
            .collect())
    }

    /// Every SMS, in order.
    fn sent_sms(&self) -> Result<Vec<SentSms>> {
        Ok(self
            .0
            .recorded()
            .sms
            .into_iter()
            .map(|m| SentSms {
                id: m.id,
                phone: m.to,
                message: m.text,
            })
            .collect())
    }
}

impl Sent {
    /// Every event published to `topic_arn`: (message id, body).
    pub fn published(&self, topic_arn: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .0
            .recorded()
            .events
            .into_iter()
            .filter(|e| e.topic == topic_arn)
            .map(|e| (e.id, e.event.to_string()))
            .collect())
    }
}
