use super::*;

/// An event record in the shape of the SES developer guide's examples
/// ("Examples of event data that Amazon SES publishes to Amazon SNS"), with
/// the tags a reminder carries.
fn record(event_type: &str, body: serde_json::Value) -> String {
    let mut v = serde_json::json!({
        "eventType": event_type,
        "mail": {
            "timestamp": "2026-12-01T09:00:00.012Z",
            "source": "Acme Accounts <accounts@acme.example>",
            "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/acme.example",
            "sendingAccountId": "123456789012",
            "messageId": "0102018c-aaaa-bbbb-cccc-000000000001-000000",
            "destination": ["ana@customer.example"],
            "headersTruncated": false,
            "headers": [{"name": "From", "value": "accounts@acme.example"}],
            "commonHeaders": {"from": ["accounts@acme.example"], "to": ["ana@customer.example"], "subject": "Invoice due"},
            "tags": {
                "ses:configuration-set": ["dunning"],
                "ses:from-domain": ["acme.example"],
                "dunning-claim": ["run_2D7_3A3"],
                "dunning-customer": ["C_2D1"],
                "dunning-step": ["due_5Ftoday"],
                "dunning-invoices": ["INV_2D1-INV_2D2"]
            }
        }
    });
    if let serde_json::Value::Object(extra) = body {
        for (k, val) in extra {
            v[k] = val;
        }
    }
    v.to_string()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[test]
fn a_send_names_its_claim_and_settles_the_claimed_record() {
    let e = parse(&record("Send", serde_json::json!({"send": {}}))).unwrap();
    assert_eq!(e.kind, EventKind::Send);
    assert_eq!(e.at, at("2026-12-01T09:00:00.012Z"));
    let tags = e.tags.clone().unwrap();
    assert_eq!(tags.claim, "run-7:3");
    assert_eq!(tags.customer_id, "C-1");
    assert_eq!(tags.step, "due_today");
    assert_eq!(tags.invoices, ["INV-1", "INV-2"]);
    let fx = e.effects();
    assert!(fx.settle && fx.changes.is_empty() && !fx.escalate);
    assert_eq!(fx.note.unwrap().0, "mail_send");
}

#[test]
fn a_permanent_bounce_suppresses_the_address_and_escalates_a_transient_one_does_not() {
    let bounce = |kind: &str, sub: &str| {
        record(
            "Bounce",
            serde_json::json!({"bounce": {
                "bounceType": kind, "bounceSubType": sub,
                "bouncedRecipients": [{"emailAddress": "ana@customer.example", "action": "failed",
                    "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
                "timestamp": "2026-12-01T09:00:41.669Z",
                "feedbackId": "0100-feedback", "reportingMTA": "dsn; mta.example.com"}}),
        )
    };
    let e = parse(&bounce("Permanent", "General")).unwrap();
    assert_eq!(e.at, at("2026-12-01T09:00:41.669Z"));
    let fx = e.effects();
    assert!(!fx.settle && fx.escalate);
    assert_eq!(
        fx.changes,
        [Change::Suppress {
            address: "ana@customer.example".into(),
            mark: Mark {
                source: "ses:bounce".into(),
                at: e.at,
                reason: Some("General".into())
            }
        }]
    );
    let (attr, note) = fx.note.unwrap();
    assert_eq!(attr, "mail_bounce");
    assert_eq!(note.detail, "permanent bounce: General");
    assert!(!note.detail.contains('@'), "no address in the ledger note");
    // SES's account-level suppression list bounces as a permanent one.
    let listed = parse(&bounce("Permanent", "OnAccountSuppressionList")).unwrap();
    assert!(matches!(
        &listed.effects().changes[..],
        [Change::Suppress { .. }]
    ));
    let soft = parse(&bounce("Transient", "MailboxFull"))
        .unwrap()
        .effects();
    assert!(soft.changes.is_empty() && !soft.escalate);
    assert_eq!(soft.note.unwrap().1.detail, "transient bounce: MailboxFull");
}

#[test]
fn a_complaint_opts_the_customer_out_of_email() {
    let e = parse(&record(
        "Complaint",
        serde_json::json!({"complaint": {
            "complainedRecipients": [{"emailAddress": "ana@customer.example"}],
            "timestamp": "2026-12-01T10:00:00Z", "feedbackId": "f",
            "userAgent": "Mozilla/5.0", "complaintFeedbackType": "abuse",
            "arrivalDate": "2026-12-01T09:59:00Z"}}),
    ))
    .unwrap();
    let fx = e.effects();
    assert!(matches!(
        &fx.changes[..],
        [Change::OptOut { channel: Channel::Email, mark }] if mark.source == "ses:complaint" && mark.at == at("2026-12-01T10:00:00Z")
    ));
    assert!(!fx.escalate);
}

#[test]
fn other_events_are_recorded_only_and_unknown_ones_ignored() {
    let cases = [
        (
            "Delivery",
            serde_json::json!({"delivery": {"timestamp": "2026-12-01T09:00:02Z", "processingTimeMillis": 546, "recipients": ["ana@customer.example"], "smtpResponse": "250 ok", "reportingMTA": "a8-70.smtp-out.amazonses.com"}}),
            Some("mail_delivery"),
        ),
        (
            "Reject",
            serde_json::json!({"reject": {"reason": "Bad content"}}),
            Some("mail_reject"),
        ),
        (
            "Rendering Failure",
            serde_json::json!({"failure": {"errorMessage": "Attribute 'name' is not present", "templateName": "t"}}),
            Some("mail_rendering_failure"),
        ),
        (
            "DeliveryDelay",
            serde_json::json!({"deliveryDelay": {"timestamp": "2026-12-01T09:30:00Z", "delayType": "TransientCommunicationFailure", "expirationTime": "2026-12-01T21:00:00Z", "delayedRecipients": [{"emailAddress": "ana@customer.example", "status": "4.4.1", "diagnosticCode": "smtp; 421"}]}}),
            Some("mail_delivery_delay"),
        ),
        (
            "Open",
            serde_json::json!({"open": {"ipAddress": "192.0.2.1", "timestamp": "2026-12-01T09:40:00Z", "userAgent": "x"}}),
            None,
        ),
    ];
    for (kind, body, attr) in cases {
        let fx = parse(&record(kind, body)).unwrap().effects();
        assert_eq!(fx.note.as_ref().map(|(a, _)| *a), attr, "{kind}");
        assert!(fx.changes.is_empty() && !fx.settle, "{kind}");
    }
}

#[test]
fn malformed_records_are_refused_with_a_reason_never_a_panic() {
    assert!(matches!(parse("not json"), Err(ParseError::Json(_))));
    assert_eq!(
        parse(
            r#"{"notificationType":"AmazonSnsSubscriptionSucceeded","mail":{"timestamp":"2026-12-01T09:00:00Z","messageId":"m"}}"#
        ),
        Err(ParseError::NotAnEvent)
    );
    assert!(matches!(
        parse(&record("Bounce", serde_json::json!({}))),
        Err(ParseError::Json(_))
    ));
    // A message without our tags (a receipt) parses with none.
    let plain = r#"{"eventType":"Delivery","mail":{"timestamp":"2026-12-01T09:00:00Z","messageId":"m","tags":{"ses:configuration-set":["dunning"]}}}"#;
    assert_eq!(parse(plain).unwrap().tags, None);
}

#[test]
fn a_bounce_or_complaint_of_the_bcc_archive_changes_nothing_of_the_customer() {
    let with_to = |event_type: &str, body: serde_json::Value, who: &str| {
        let mut v: serde_json::Value = serde_json::from_str(&record(event_type, body)).unwrap();
        v["mail"]["tags"]["dunning-to"] =
            serde_json::json!([tags::address_hash("ana@customer.example")]);
        v["mail"]["destination"] = serde_json::json!(["ana@customer.example", who]);
        parse(&v.to_string()).unwrap().effects()
    };
    let bounce = |who: &str| {
        serde_json::json!({"bounce": {"bounceType": "Permanent", "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": who}], "timestamp": "2026-12-01T09:00:41Z"}})
    };
    let archive = "archive@acme.example";
    let fx = with_to("Bounce", bounce(archive), archive);
    assert!(
        fx.changes.is_empty() && !fx.escalate,
        "the archive bounced, not the customer"
    );
    assert!(fx.note.is_some(), "still noted");
    let fx = with_to("Bounce", bounce("ANA@customer.example"), archive);
    assert_eq!(
        fx.changes.len(),
        1,
        "the customer's own address, in any case"
    );
    let complaint = |who: &str| {
        serde_json::json!({"complaint": {"complainedRecipients": [{"emailAddress": who}],
            "timestamp": "2026-12-01T10:00:00Z", "complaintFeedbackType": "abuse"}})
    };
    assert!(with_to("Complaint", complaint(archive), archive)
        .changes
        .is_empty());
    assert_eq!(
        with_to("Complaint", complaint("ana@customer.example"), archive)
            .changes
            .len(),
        1
    );
}

#[test]
fn a_bounce_naming_a_mailbox_the_message_was_not_sent_to_is_the_customer_s() {
    // The customer's address forwards; the final mailbox bounces and the
    // report names it: still the customer's only address.
    let mut v: serde_json::Value = serde_json::from_str(&record(
        "Bounce",
        serde_json::json!({"bounce": {"bounceType": "Permanent", "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": "ana@elsewhere.example"}]}}),
    ))
    .unwrap();
    v["mail"]["tags"]["dunning-to"] =
        serde_json::json!([tags::address_hash("ana@customer.example")]);
    let fx = parse(&v.to_string()).unwrap().effects();
    assert!(fx.escalate && fx.changes.len() == 1);
}

#[test]
fn a_copy_that_bounces_or_complains_is_suppressed_and_the_customer_keeps_e_mail() {
    let copy = "cfo@customer.example";
    let event = |event_type: &str, body: serde_json::Value| {
        let mut v: serde_json::Value = serde_json::from_str(&record(event_type, body)).unwrap();
        v["mail"]["tags"]["dunning-to"] =
            serde_json::json!([tags::address_hash("ana@customer.example")]);
        v["mail"]["tags"]["dunning-cc"] = serde_json::json!([tags::address_hash(copy)]);
        v["mail"]["destination"] = serde_json::json!(["ana@customer.example", copy]);
        parse(&v.to_string()).unwrap().effects()
    };
    let bounce = event(
        "Bounce",
        serde_json::json!({"bounce": {"bounceType": "Permanent", "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": copy}], "timestamp": "2026-12-01T09:00:41Z"}}),
    );
    assert!(!bounce.escalate, "the customer's own address still works");
    assert!(matches!(&bounce.changes[..], [Change::Suppress { address, .. }] if address == copy));
    let complaint = event(
        "Complaint",
        serde_json::json!({"complaint": {"complainedRecipients": [{"emailAddress": copy}],
            "timestamp": "2026-12-01T10:00:00Z", "complaintFeedbackType": "abuse"}}),
    );
    assert!(
        matches!(&complaint.changes[..], [Change::Suppress { address, .. }] if address == copy),
        "the copy is suppressed, the customer not opted out: {:?}",
        complaint.changes
    );
}
