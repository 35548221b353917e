//! Replies to reminders. With `INBOUND_DOMAIN` set, a reminder's Reply-To
//! is `reply+<hex of its link token>@INBOUND_DOMAIN`; SES receives the reply
//! (a receipt rule publishing it to SNS with its content) and `mail-events`
//! reads it here. Pure: the receipt notification, the token in the address,
//! whether the mail is an auto-reply, and the forward's rewritten headers.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{ParseError, RawMail};
use crate::contact::EmailAddress;
use crate::link::LinkToken;

/// One mail SES received, as its receipt notification tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub message_id: String,
    pub at: DateTime<Utc>,
    /// The addresses it was received for (the envelope's).
    pub recipients: Vec<String>,
    /// Its headers, in order.
    pub headers: Vec<(String, String)>,
    /// The whole message (MIME), when the notification carries it.
    pub content: Option<String>,
    /// SES's spam and virus scans both said `PASS` (the rule scans).
    pub clean: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawReceived {
    notification_type: String,
    mail: RawMail,
    receipt: Option<RawReceipt>,
    content: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawReceipt {
    #[serde(default)]
    recipients: Vec<String>,
    timestamp: Option<DateTime<Utc>>,
    spam_verdict: Option<RawVerdict>,
    virus_verdict: Option<RawVerdict>,
}

#[derive(Deserialize)]
struct RawVerdict {
    status: String,
}

/// Reads an SES receipt notification (`notificationType: Received`);
/// `NotAnEvent` for any other body.
pub fn parse_received(body: &str) -> Result<Inbound, ParseError> {
    let raw: RawReceived = serde_json::from_str(body).map_err(|e| ParseError::json(&e))?;
    if raw.notification_type != "Received" {
        return Err(ParseError::NotAnEvent);
    }
    let pass = |v: &Option<RawVerdict>| v.as_ref().is_some_and(|v| v.status == "PASS");
    let clean = raw
        .receipt
        .as_ref()
        .is_some_and(|r| pass(&r.spam_verdict) && pass(&r.virus_verdict));
    let (recipients, at) = match raw.receipt {
        Some(r) if !r.recipients.is_empty() => (r.recipients, r.timestamp),
        Some(r) => (raw.mail.destination, r.timestamp),
        None => (raw.mail.destination, None),
    };
    Ok(Inbound {
        message_id: raw.mail.message_id,
        at: at.unwrap_or(raw.mail.timestamp),
        recipients,
        headers: raw
            .mail
            .headers
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect(),
        content: raw.content,
        clean,
    })
}

/// The local part's prefix of a reply address.
const PREFIX: &str = "reply+";

/// The Reply-To of a reminder whose link is `token`: case-insensitive (the
/// token in hex), so a mail system that lowercases addresses keeps it.
pub fn reply_address(token: &LinkToken, domain: &str) -> String {
    format!("{PREFIX}{}@{domain}", hex::encode(token.as_str()))
}

/// The link token in the first recipient that is a reply address at `domain`.
pub fn reply_token(recipients: &[String], domain: &str) -> Option<LinkToken> {
    recipients.iter().find_map(|r| {
        let (local, at) = r.trim().rsplit_once('@')?;
        if !at.eq_ignore_ascii_case(domain) {
            return None;
        }
        let hex_token = local
            .get(..PREFIX.len())?
            .eq_ignore_ascii_case(PREFIX)
            .then(|| &local[PREFIX.len()..])?;
        let bytes = hex::decode(hex_token.to_ascii_lowercase()).ok()?;
        LinkToken::parse(std::str::from_utf8(&bytes).ok()?)
    })
}

/// Whether the mail is an automatic answer (out of office, vacation, a
/// list or bulk mailer): `Auto-Submitted` other than `no` (RFC 3834),
/// `X-Autoreply`, `X-Autorespond`, `Precedence: bulk | junk | list |
/// auto_reply`, or the null `Return-Path: <>` of a delivery report.
/// (`X-Auto-Response-Suppress` is not one: people's mail programs send it
/// to ask that nobody auto-reply to *them*.)
pub fn is_auto_reply(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(name, value)| {
        let v = value.trim().to_ascii_lowercase();
        match name.to_ascii_lowercase().as_str() {
            "auto-submitted" => v != "no",
            "x-autoreply" | "x-autorespond" => true,
            "return-path" => v == "<>",
            "precedence" => matches!(v.as_str(), "bulk" | "junk" | "list" | "auto_reply"),
            _ => false,
        }
    })
}

/// Headers a forward drops: signatures that would no longer verify, and
/// addressing SES sets itself.
const DROPPED: &[&str] = &[
    "dkim-signature",
    "domainkey-signature",
    "return-path",
    "sender",
    "message-id",
    "reply-to",
    "from",
    "to",
    "cc",
    "bcc",
];

/// The header every forward carries: mail that comes back with it (a
/// forward to an address at the inbound domain) is never forwarded again.
pub const FORWARDED: &str = "X-Dunning-Forwarded";

/// The message to forward to `to`: from `from` (a verified identity, as SES
/// requires), replying to whoever wrote it, with the body as it came.
/// `None` when the message has no header block.
pub fn forward(raw: &str, from: &EmailAddress, to: &EmailAddress) -> Option<String> {
    let split = raw
        .find("\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| raw.find("\n\n").map(|i| (i, 2)))?;
    let (head, body) = (&raw[..split.0], &raw[split.0 + split.1..]);
    // Unfold: a line starting with white space continues the one before.
    let mut fields: Vec<String> = Vec::new();
    for line in head.lines() {
        match fields.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => {
                last.push_str("\r\n");
                last.push_str(line);
            }
            _ => fields.push(line.to_owned()),
        }
    }
    let name_of = |f: &str| {
        f.split_once(':')
            .map(|(n, _)| n.trim().to_ascii_lowercase())
            .unwrap_or_default()
    };
    let original_from = fields
        .iter()
        .find(|f| name_of(f) == "from")
        .and_then(|f| f.split_once(':'))
        .map(|(_, v)| v.trim().to_owned());
    let mut out = format!(
        "From: {}\r\nTo: {}\r\n{FORWARDED}: yes\r\n",
        from.as_str(),
        to.as_str()
    );
    if let Some(original) = &original_from {
        out.push_str(&format!("Reply-To: {original}\r\n"));
    }
    for f in &fields {
        let name = name_of(f);
        // X-SES-* would steer our own send (a configuration set, message tags).
        if !DROPPED.contains(&name.as_str()) && !name.starts_with("x-ses-") {
            out.push_str(f);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out.push_str(body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> LinkToken {
        LinkToken::parse("Ab3_-xYz09QrStUv").unwrap()
    }

    #[test]
    fn a_reply_address_carries_its_link_token_through_any_case() {
        let a = reply_address(&token(), "in.acme.example");
        assert!(a.starts_with("reply+") && a.ends_with("@in.acme.example"));
        assert_eq!(
            reply_token(std::slice::from_ref(&a), "in.acme.example"),
            Some(token())
        );
        assert_eq!(
            reply_token(&[a.to_uppercase()], "IN.acme.example"),
            Some(token()),
            "a mail system may change the case"
        );
        for other in [
            a.replace("in.acme", "other"),
            "reply+zz@in.acme.example".to_owned(),
            "accounts@in.acme.example".to_owned(),
            "reply+@in.acme.example".to_owned(),
            "no-at-sign".to_owned(),
        ] {
            assert_eq!(
                reply_token(std::slice::from_ref(&other), "in.acme.example"),
                None,
                "{other}"
            );
        }
    }

    #[test]
    fn auto_replies_are_told_from_people() {
        let h = |n: &str, v: &str| vec![(n.to_owned(), v.to_owned())];
        assert!(is_auto_reply(&h("Auto-Submitted", "auto-replied")));
        assert!(is_auto_reply(&h("auto-submitted", "auto-generated")));
        assert!(!is_auto_reply(&h("Auto-Submitted", "no")));
        assert!(is_auto_reply(&h("X-Autoreply", "yes")));
        assert!(is_auto_reply(&h("Precedence", "bulk")));
        assert!(
            !is_auto_reply(&h("X-Auto-Response-Suppress", "All")),
            "a person's Outlook sends it"
        );
        assert!(is_auto_reply(&h("Return-Path", "<>")));
        assert!(!is_auto_reply(&h("Return-Path", "<ana@customer.example>")));
        assert!(!is_auto_reply(&h("Precedence", "first-class")));
        assert!(!is_auto_reply(&h(
            "Subject",
            "Re: Invoice INV-1 is due today"
        )));
    }

    #[test]
    fn a_forward_comes_from_us_replies_to_the_writer_and_keeps_the_body() {
        let raw = "Return-Path: <ana@customer.example>\r\nX-SES-CONFIGURATION-SET: reminders\r\nX-SES-MESSAGE-TAGS: dunning-claim=x\r\nDKIM-Signature: v=1; a=rsa-sha256;\r\n b=abc\r\nFrom: Ana Lima <ana@customer.example>\r\nTo: reply+00@in.acme.example\r\nSubject: Re: Invoice INV-1\r\nMessage-ID: <1@customer.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nI paid yesterday.\r\n";
        let from = EmailAddress::parse("accounts@acme.example").unwrap();
        let to = EmailAddress::parse("finance@acme.example").unwrap();
        let out = forward(raw, &from, &to).unwrap();
        assert!(out.starts_with("From: accounts@acme.example\r\nTo: finance@acme.example\r\nX-Dunning-Forwarded: yes\r\nReply-To: Ana Lima <ana@customer.example>\r\n"));
        assert!(out.contains("Subject: Re: Invoice INV-1\r\n"));
        assert!(out.contains("Content-Type: text/plain; charset=utf-8\r\n"));
        assert!(out.ends_with("\r\n\r\nI paid yesterday.\r\n"));
        for gone in [
            "DKIM-Signature",
            " b=abc",
            "Return-Path",
            "Message-ID",
            "reply+00",
            "X-SES",
        ] {
            assert!(!out.contains(gone), "{gone} is dropped");
        }
        assert_eq!(forward("no header block", &from, &to), None);
    }

    #[test]
    fn a_receipt_notification_is_read_and_anything_else_refused() {
        let body = serde_json::json!({
            "notificationType": "Received",
            "mail": {"timestamp": "2026-11-24T08:00:00.000Z", "source": "ana@customer.example",
                     "messageId": "m-1", "destination": ["reply+00@in.acme.example"],
                     "headers": [{"name": "Subject", "value": "Re: Invoice"}]},
            "receipt": {"timestamp": "2026-11-24T08:00:01.000Z", "recipients": ["reply+11@in.acme.example"],
                        "spamVerdict": {"status": "PASS"}, "virusVerdict": {"status": "PASS"},
                        "action": {"type": "SNS", "topicArn": "arn:aws:sns:us-east-1:1:inbound", "encoding": "UTF8"}},
            "content": "From: ana@customer.example\r\n\r\nhi"
        });
        let i = parse_received(&body.to_string()).unwrap();
        assert_eq!(i.recipients, ["reply+11@in.acme.example"]);
        assert_eq!(
            i.at,
            "2026-11-24T08:00:01Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(i.headers[0].0, "Subject");
        assert!(i.content.unwrap().ends_with("hi"));
        assert!(i.clean);
        let mut spam = body.clone();
        spam["receipt"]["spamVerdict"]["status"] = serde_json::json!("FAIL");
        assert!(!parse_received(&spam.to_string()).unwrap().clean);
        assert_eq!(
            parse_received(
                r#"{"notificationType":"Bounce","mail":{"timestamp":"2026-11-24T08:00:00Z","messageId":"m"}}"#
            ),
            Err(ParseError::NotAnEvent)
        );
        assert!(parse_received("{}").is_err());
    }
}
