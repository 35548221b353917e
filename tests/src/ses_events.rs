//! What SES would publish about the mail moto "sent": moto publishes no
//! events, so this turns each sent message (with the tags, headers and
//! destination it was sent with, kept by `scripts/moto_server.py`) into the
//! event records an SES configuration set publishes to SNS, in the JSON
//! shape of the SES developer guide's "Examples of event data that Amazon
//! SES publishes to Amazon SNS", wrapped in the SNS event Lambda receives.
//!
//! Which events follow a send is decided as SES's mailbox simulator does, by
//! the recipient (`<kind>[+label]@simulator.amazonses.com`): `bounce` a
//! permanent bounce, `suppressionlist` a bounce from the account-level
//! suppression list, `complaint` a delivery then a complaint, anything
//! else a delivery.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::SentEmail;

/// The simulator's domain.
pub const SIMULATOR: &str = "simulator.amazonses.com";

/// A simulator address with a label (`bounce+ana@simulator.amazonses.com`).
pub fn simulator(kind: &str, label: &str) -> String {
    format!("{kind}+{label}@{SIMULATOR}")
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The `mail` object of every event about `sent`.
fn mail(sent: &SentEmail, at: DateTime<Utc>) -> Value {
    let mut tags = json!({
        "ses:configuration-set": ["dunning-reminders"],
        "ses:source-ip": ["192.0.2.0"],
        "ses:from-domain": [sent.source.rsplit('@').next().unwrap_or_default()],
        "ses:caller-identity": ["dunning-run"],
    });
    for (name, values) in &sent.tags {
        tags[name] = json!(values);
    }
    let mut headers = vec![
        json!({"name": "From", "value": sent.source}),
        json!({"name": "To", "value": sent.to.join(", ")}),
        json!({"name": "Subject", "value": sent.subject}),
        json!({"name": "MIME-Version", "value": "1.0"}),
    ];
    headers.extend(
        sent.headers
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value})),
    );
    json!({
        "timestamp": time(at),
        "source": sent.source,
        "sourceArn": format!("arn:aws:ses:us-east-1:123456789012:identity/{}", sent.source),
        "sendingAccountId": "123456789012",
        "messageId": sent.id,
        "destination": sent.to,
        "headersTruncated": false,
        "headers": headers,
        "commonHeaders": {
            "from": [sent.source],
            "to": sent.to,
            "messageId": sent.id,
            "subject": sent.subject,
        },
        "tags": tags,
    })
}

/// One event record (the SNS message body) of `event_type` about `sent`.
pub fn record(sent: &SentEmail, event_type: &str, at: DateTime<Utc>) -> String {
    let mut event = json!({"eventType": event_type, "mail": mail(sent, at)});
    let later = time(at + chrono::Duration::seconds(2));
    let recipients: Vec<Value> = sent
        .to
        .iter()
        .map(|to| json!({"emailAddress": to}))
        .collect();
    match event_type {
        "Send" => event["send"] = json!({}),
        "Delivery" => {
            event["delivery"] = json!({
                "timestamp": later,
                "processingTimeMillis": 1546,
                "recipients": sent.to,
                "smtpResponse": "250 2.6.0 Message received",
                "reportingMTA": "mta-out.us-east-1.amazonses.com",
            })
        }
        "Bounce" | "SuppressedBounce" => {
            let sub = if event_type == "Bounce" {
                "General"
            } else {
                "OnAccountSuppressionList"
            };
            event["eventType"] = json!("Bounce");
            event["bounce"] = json!({
                "bounceType": "Permanent",
                "bounceSubType": sub,
                "bouncedRecipients": sent.to.iter().map(|to| json!({
                    "emailAddress": to, "action": "failed", "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                })).collect::<Vec<_>>(),
                "timestamp": later,
                "feedbackId": format!("0100{}-feedback", sent.id),
                "reportingMTA": "dsn; mta.example.com",
            });
        }
        "Complaint" => {
            event["complaint"] = json!({
                "feedbackId": format!("0100{}-complaint", sent.id),
                "complaintSubType": null,
                "complainedRecipients": recipients,
                "timestamp": later,
                "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
                "complaintFeedbackType": "abuse",
                "arrivalDate": time(at + chrono::Duration::seconds(1)),
            })
        }
        "DeliveryDelay" => {
            event["deliveryDelay"] = json!({
                "timestamp": later,
                "delayType": "TransientCommunicationFailure",
                "expirationTime": time(at + chrono::Duration::hours(12)),
                "delayedRecipients": sent.to.iter().map(|to| json!({
                    "emailAddress": to, "status": "4.4.1",
                    "diagnosticCode": "smtp; 421 4.4.1 Unable to connect",
                })).collect::<Vec<_>>(),
            })
        }
        other => panic!("no simulated {other} event"),
    }
    event.to_string()
}

/// What the simulator publishes after SES accepted `sent`, in order.
pub fn simulate(sent: &SentEmail, at: DateTime<Utc>) -> Vec<String> {
    let kind = sent
        .to
        .first()
        .and_then(|to| to.strip_suffix(&format!("@{SIMULATOR}")))
        .map(|local| local.split('+').next().unwrap_or(local))
        .unwrap_or("success");
    let after: &[&str] = match kind {
        "bounce" => &["Bounce"],
        "suppressionlist" => &["SuppressedBounce"],
        "complaint" => &["Delivery", "Complaint"],
        _ => &["Delivery"],
    };
    std::iter::once("Send")
        .chain(after.iter().copied())
        .map(|t| record(sent, t, at))
        .collect()
}

/// The SNS event Lambda hands `mail-events` for these message bodies.
pub fn sns_event(bodies: &[String]) -> aws_lambda_events::sns::SnsEvent {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            json!({
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:dunning-mail-events:1",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": format!("95df01b4-ee98-5cb9-9903-4c221d41eb5e-{i}"),
                    "TopicArn": "arn:aws:sns:us-east-1:123456789012:dunning-mail-events",
                    "Subject": null,
                    "Message": body,
                    "Timestamp": "2026-12-01T09:00:05.000Z",
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {},
                }
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("an SNS event Lambda accepts")
}

/// The EventBridge event SES puts on the default bus for one event record
/// (the template's event destination): the record is the `detail`.
pub fn eventbridge_event(body: &str) -> Value {
    let detail: Value = serde_json::from_str(body).expect("an event record");
    let detail_type = match detail["eventType"].as_str().unwrap_or_default() {
        "Send" => "Email Sent",
        "Delivery" => "Email Delivered",
        "Bounce" => "Email Bounced",
        "Complaint" => "Email Complaint Received",
        "DeliveryDelay" => "Email Delivery Delayed",
        "Reject" => "Email Rejected",
        other => panic!("no EventBridge detail-type for {other}"),
    };
    json!({
        "version": "0",
        "id": format!(
            "ev-{}-{}",
            detail["mail"]["messageId"].as_str().unwrap_or_default(),
            detail["eventType"].as_str().unwrap_or_default()
        ),
        "detail-type": detail_type,
        "source": "aws.ses",
        "account": "123456789012",
        "time": detail["mail"]["timestamp"],
        "region": "us-east-1",
        "resources": ["arn:aws:ses:us-east-1:123456789012:configuration-set/dunning-reminders"],
        "detail": detail,
    })
}

/// An SES receipt notification (a receipt rule's SNS action, encoding
/// UTF8) for mail `from` sent to `to`, with `extra` headers and `text`, in
/// the shape of the SES developer guide's "Amazon SES email receiving
/// notification contents".
pub fn received(
    from: &str,
    to: &str,
    subject: &str,
    extra: &[(&str, &str)],
    text: &str,
    at: DateTime<Utc>,
) -> String {
    let message_id = format!("inbound-{}", at.timestamp_millis());
    let mut headers = vec![
        ("Return-Path".to_owned(), format!("<{from}>")),
        ("From".to_owned(), from.to_owned()),
        ("To".to_owned(), to.to_owned()),
        ("Subject".to_owned(), subject.to_owned()),
        (
            "Message-ID".to_owned(),
            format!("<{message_id}@customer.example>"),
        ),
        (
            "Content-Type".to_owned(),
            "text/plain; charset=UTF-8".to_owned(),
        ),
    ];
    headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    let content = format!(
        "{}\r\n\r\n{text}\r\n",
        headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect::<Vec<_>>()
            .join("\r\n")
    );
    let verdict = json!({"status": "PASS"});
    json!({
        "notificationType": "Received",
        "mail": {
            "timestamp": time(at),
            "source": from,
            "messageId": message_id,
            "destination": [to],
            "headersTruncated": false,
            "headers": headers.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
            "commonHeaders": {"returnPath": from, "from": [from], "to": [to], "subject": subject},
        },
        "receipt": {
            "timestamp": time(at),
            "processingTimeMillis": 574,
            "recipients": [to],
            "spamVerdict": verdict, "virusVerdict": verdict, "spfVerdict": verdict,
            "dkimVerdict": verdict, "dmarcVerdict": verdict,
            "action": {"type": "SNS", "topicArn": "arn:aws:sns:us-east-1:123456789012:dunning-inbound", "encoding": "UTF8"},
        },
        "content": content,
    })
    .to_string()
}
