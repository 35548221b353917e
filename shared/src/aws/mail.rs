//! Email through SES v2.

use aws_sdk_sesv2::types::{
    Body, Content, Destination, EmailContent as SesContent, Message, MessageHeader, MessageTag,
};
use aws_sdk_sesv2::Client;

use super::errors::{classify, require_id, send_refusals_retried};
use crate::contact::EmailAddress;
use crate::ledger::ErrorClass;
use crate::ports::{Envelope, Mailer, SendError};
use crate::render::EmailContent;

/// Sends email from one verified sender identity.
#[derive(Clone, Debug)]
pub struct SesMailer {
    client: Client,
    from: EmailAddress,
    configuration_set: Option<String>,
    reply_to: Option<EmailAddress>,
    bcc: Option<EmailAddress>,
}

impl SesMailer {
    pub fn new(
        sdk: &aws_config::SdkConfig,
        from: EmailAddress,
        configuration_set: Option<String>,
    ) -> Self {
        Self {
            client: Client::new(&super::sdk::single_attempt(sdk)),
            from,
            configuration_set,
            reply_to: None,
            bcc: None,
        }
    }

    /// Replies go to `reply_to` (e.g. the accounts team) instead of the sender.
    pub fn with_reply_to(mut self, reply_to: Option<EmailAddress>) -> Self {
        self.reply_to = reply_to;
        self
    }

    /// A blind copy of every reminder to `bcc` (e.g. the finance team's archive).
    pub fn with_bcc(mut self, bcc: Option<EmailAddress>) -> Self {
        self.bcc = bcc;
        self
    }

    /// The sender identity.
    pub fn from(&self) -> &EmailAddress {
        &self.from
    }

    /// Sends a whole MIME message as it is to `to` (a forwarded reply);
    /// returns the SES message id. Its From must be the sender identity.
    pub async fn send_raw(&self, to: &EmailAddress, raw: &str) -> Result<String, SendError> {
        let message = aws_sdk_sesv2::types::RawMessage::builder()
            .data(aws_sdk_sesv2::primitives::Blob::new(raw.as_bytes()))
            .build()
            .map_err(|_| local_error("the raw message could not be built"))?;
        send_refusals_retried(|| {
            let request = self
                .client
                .send_email()
                .from_email_address(self.from.as_str())
                .destination(Destination::builder().to_addresses(to.as_str()).build())
                .content(SesContent::builder().raw(message.clone()).build());
            async move {
                let out = request.send().await.map_err(|e| classify(&e))?;
                require_id(out.message_id, "SES")
            }
        })
        .await
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Registers the sender identity (on AWS this starts verification).
    pub async fn create_sender_identity(&self) -> Result<(), SendError> {
        self.client
            .create_email_identity()
            .email_identity(self.from.as_str())
            .send()
            .await
            .map_err(|e| classify(&e))?;
        Ok(())
    }
}

impl Mailer for SesMailer {
    /// Sends a subject with an HTML and a plain-text part; returns the SES message id.
    async fn send(
        &self,
        to: &EmailAddress,
        email: &EmailContent,
        envelope: &Envelope,
    ) -> Result<String, SendError> {
        let utf8 = |text: &str| Content::builder().data(text).charset("UTF-8").build();
        let (subject, html, text) =
            match (utf8(&email.subject), utf8(&email.html), utf8(&email.text)) {
                (Ok(s), Ok(h), Ok(t)) => (s, h, t),
                _ => return Err(local_error("content could not be built")),
            };
        let headers = envelope
            .headers
            .iter()
            .map(|(name, value)| MessageHeader::builder().name(name).value(value).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| local_error("a header could not be built"))?;
        let tags = envelope
            .tags
            .iter()
            .map(|(name, value)| MessageTag::builder().name(name).value(value).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| local_error("a message tag could not be built"))?;
        let reply_to = envelope.reply_to.as_ref().or(self.reply_to.as_ref());
        send_refusals_retried(|| {
            let message = Message::builder()
                .subject(subject.clone())
                .set_headers((!headers.is_empty()).then(|| headers.clone()))
                .body(
                    Body::builder()
                        .html(html.clone())
                        .text(text.clone())
                        .build(),
                )
                .build();
            let request = self
                .client
                .send_email()
                .from_email_address(self.from.as_str())
                .destination(
                    Destination::builder()
                        .to_addresses(to.as_str())
                        .set_cc_addresses(
                            (!envelope.cc.is_empty()).then(|| {
                                envelope.cc.iter().map(|c| c.as_str().to_owned()).collect()
                            }),
                        )
                        .set_bcc_addresses(self.bcc.as_ref().map(|b| vec![b.as_str().to_owned()]))
                        .build(),
                )
                .set_reply_to_addresses(reply_to.map(|r| vec![r.as_str().to_owned()]))
                .set_email_tags((!tags.is_empty()).then(|| tags.clone()))
                .content(SesContent::builder().simple(message).build())
                .set_configuration_set_name(self.configuration_set.clone());
            async move {
                let out = request.send().await.map_err(|e| classify(&e))?;
                require_id(out.message_id, "SES")
            }
        })
        .await
    }
}

fn local_error(message: &str) -> SendError {
    SendError {
        class: ErrorClass::Systemic,
        code: "InvalidContent".into(),
        message: message.into(),
    }
}
