//! The payment webhook: verify the signature over the raw body, parse the
//! event, apply the payment, answer with a status and a JSON body carrying a
//! stable `error` code. Expected failures are answers, not errors; nothing
//! secret, no stack trace and no personal data goes into an answer or a log.

pub mod event;
pub mod signature;
pub mod sync;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::config::WebhookConfig;
use crate::payment::{
    Applied, DisputeChange, Flow, PayableInvoice, Payment, PaymentError, UnappliedReason,
};
use crate::ports::{EventPublisher, Mailer, Payments};
use event::{parse_generic, parse_stripe, Parsed};
use signature::{verify, SignatureError};

/// Parses a verified body into a payment (or an ignored event).
type Parser = fn(&[u8]) -> Result<Parsed, event::ParseError>;

/// How long after its event a refund, a dispute or a Stripe invoice's
/// payment that matches no recorded payment is refused (so the provider
/// delivers it again, after the payment's own event) before it is taken as
/// not ours and ignored.
pub const PAYMENT_NOT_SEEN_WAIT: chrono::Duration = chrono::Duration::hours(1);

/// Bodies larger than this are refused unread (413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An answer: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

fn error(status: u16, code: &str, message: &str) -> Answer {
    Answer {
        status,
        body: json!({ "error": code, "message": message }),
    }
}

/// What becomes of an event that could not be applied.
enum SetAside {
    /// Kept as an unapplied payment.
    Keep(UnappliedReason),
    /// Refused for now (409 `payment_not_seen`): it may have overtaken its payment.
    Wait,
    /// Answered 200 `ignored` with this reason: no money of ours moves.
    Ignore(&'static str),
    /// Not a case for setting aside: answered as the error says.
    No,
}

/// Where an event that could not be applied goes. Money is kept: a payment
/// for an unknown, void, other-currency or invalid invoice, or one whose
/// reference names none (`unplaceable`); a refund or lost dispute for a
/// payment we have no record of, once it had an hour to arrive after its
/// payment (Stripe does not order deliveries). What moves no money (an
/// opened or won dispute, a Stripe invoice's part no event of ours named,
/// counted by that invoice's total) is ignored.
fn set_aside(
    payment: &Payment,
    error: &PaymentError,
    unplaceable: bool,
    now: DateTime<Utc>,
) -> SetAside {
    let moves_money = payment.dispute != Some(DisputeChange::Opened) && !payment.amount.is_zero();
    let not_found = matches!(error, PaymentError::UnknownInvoice)
        && payment.invoice_id.is_empty()
        && !unplaceable;
    if not_found {
        if now - payment.paid_at < PAYMENT_NOT_SEEN_WAIT {
            return SetAside::Wait;
        }
        return if moves_money && payment.flow == Flow::Back {
            SetAside::Keep(UnappliedReason::UnknownPayment)
        } else {
            SetAside::Ignore("unknown_payment")
        };
    }
    match UnappliedReason::of(error) {
        Some(reason) if moves_money => SetAside::Keep(reason),
        Some(_) => SetAside::Ignore("dispute_not_placeable"),
        None => SetAside::No,
    }
}

/// Whom the webhook tells besides answering: the customer (a receipt, when
/// receipts are on) and the business's people (an opened dispute, on the
/// escalation topic).
pub struct Outbound<'a, M, P> {
    pub mailer: Option<&'a M>,
    pub publisher: Option<&'a P>,
}

/// Publishes an opened dispute for people to act on (nothing for any other
/// event). When it cannot be published, the answer to give instead: 503, so
/// the provider delivers the event again, and the redelivery (a duplicate)
/// publishes again.
async fn publish_dispute(
    publisher: Option<&impl EventPublisher>,
    config: &WebhookConfig,
    payment: &Payment,
    invoice_id: &str,
) -> Option<Answer> {
    if payment.dispute != Some(DisputeChange::Opened) {
        return None;
    }
    let (Some(publisher), Some(topic)) = (publisher, config.escalation_topic_arn.as_deref()) else {
        tracing::warn!(%invoice_id, dispute_id = %payment.payment_key, "invoice disputed; no escalation topic to publish to");
        return None;
    };
    let event = json!({
        "type": "invoice.disputed",
        "invoice_id": invoice_id,
        "dispute_id": payment.payment_key,
        "amount": payment.amount.to_string(),
        "currency": payment.currency.code(),
        "provider": payment.provider,
        "disputed_at": payment.paid_at.to_rfc3339(),
    });
    let subject = format!("Invoice {invoice_id} disputed");
    match publisher.publish(topic, &subject, &event).await {
        Ok(message_id) => {
            tracing::info!(%invoice_id, %message_id, "dispute published for people");
            None
        }
        Err(e) => {
            tracing::error!(%invoice_id, code = %e.code, class = ?e.class, "dispute not published; the provider will deliver it again");
            Some(error(
                503,
                "escalation_failed",
                "the dispute is recorded but could not be published; retry",
            ))
        }
    }
}

/// Sends the receipt for a payment that completed `invoice`, when enabled.
/// Best effort: the payment is recorded whatever happens here.
async fn send_receipt(
    mailer: Option<&impl Mailer>,
    config: &WebhookConfig,
    invoice: &PayableInvoice,
    payment: &Payment,
) {
    let (Some(receipts), Some(mailer), Some(to)) = (&config.receipts, mailer, &invoice.email)
    else {
        return;
    };
    let locale = crate::render::Locale::resolve(invoice.locale.as_deref(), receipts.default_locale);
    let ctx = crate::render::ReceiptContext {
        business_name: receipts.business_name.clone(),
        customer_name: invoice.customer_name.clone(),
        invoice_id: invoice.id.clone(),
        payment: crate::money::Money::new(payment.amount, payment.currency).to_string(),
        paid_on: locale.long_date(payment.paid_at.date_naive()),
        locale,
    };
    // Built once per process: every template compiled at the first receipt.
    static RENDERER: std::sync::OnceLock<crate::render::Renderer> = std::sync::OnceLock::new();
    let renderer = RENDERER.get_or_init(crate::render::Renderer::new);
    let sent = match renderer.receipt(&ctx) {
        Ok(email) => mailer
            .send(to, &email, &crate::ports::Envelope::default())
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match sent {
        Ok(message_id) => tracing::info!(invoice_id = %invoice.id, %message_id, "receipt sent"),
        Err(error) => tracing::warn!(invoice_id = %invoice.id, %error, "receipt not sent"),
    }
}

/// A Stripe event from the other mode (`livemode`) or from an account not in
/// `STRIPE_ACCOUNT_IDS` is refused: a stable 403 code and one log line.
fn stripe_origin_refused(body: &[u8], config: &WebhookConfig) -> Option<Answer> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let event_id = v.get("id").and_then(|i| i.as_str()).unwrap_or("");
    let livemode = v.get("livemode").and_then(serde_json::Value::as_bool);
    if livemode != Some(config.stripe_livemode) {
        tracing::warn!(%event_id, ?livemode, expected = config.stripe_livemode, "Stripe event from the other mode refused");
        return Some(error(
            403,
            "livemode_mismatch",
            if config.stripe_livemode {
                "this endpoint takes live-mode events only"
            } else {
                "this endpoint takes test-mode events only"
            },
        ));
    }
    let account = v.get("account").and_then(|a| a.as_str());
    if let Some(account) = account {
        if !config.stripe_account_ids.is_empty()
            && !config.stripe_account_ids.iter().any(|a| a == account)
        {
            tracing::warn!(%event_id, %account, "Stripe event from an account not in STRIPE_ACCOUNT_IDS refused");
            return Some(error(
                403,
                "account_not_allowed",
                "events from this account are not taken",
            ));
        }
    }
    None
}

/// What the function does with each answer besides returning it: one log
/// line when it is not 2xx (status, code and, when the body says them, the
/// event's id and type and the invoice id; never anything personal), and its
/// Embedded Metric Format record ([`answer_metrics`]), returned for printing.
pub fn observe(
    answer: &Answer,
    body: &[u8],
    namespace: &str,
    timestamp: DateTime<Utc>,
) -> serde_json::Value {
    if !(200..300).contains(&answer.status) {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        // Ids from the body, shortened: the body may be unauthenticated.
        let field = |pointer: &str| -> String {
            v.pointer(pointer)
                .and_then(serde_json::Value::as_str)
                .map(|s| s.chars().take(80).collect())
                .unwrap_or_default()
        };
        let invoice_id = [
            field("/invoice_id"),
            field("/data/object/metadata/invoice_id"),
        ]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
        tracing::warn!(
            status = answer.status,
            code = answer.body["error"].as_str().unwrap_or(""),
            event_id = %field("/id"),
            event_type = %field("/type"),
            %invoice_id,
            "webhook answered"
        );
    }
    answer_metrics(answer, namespace, timestamp)
}

/// The answer as one CloudWatch Embedded Metric Format record, for the
/// function to print: `WebhookAnswers` by `Code` (`applied`, `duplicate`,
/// `ignored`, ... or the error code), `WebhookServerErrors` (5xx answers) and
/// `UnappliedPayments` (money kept aside), both alarmed on by the template,
/// under dimension `Function=payment-webhook`.
pub fn answer_metrics(
    answer: &Answer,
    namespace: &str,
    timestamp: DateTime<Utc>,
) -> serde_json::Value {
    let code = answer.body["error"]
        .as_str()
        .or_else(|| answer.body["result"].as_str())
        .unwrap_or("unknown");
    json!({
        "_aws": {
            "Timestamp": timestamp.timestamp_millis(),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [["Function", "Code"]],
                    "Metrics": [{"Name": "WebhookAnswers", "Unit": "Count"}],
                },
                {
                    "Namespace": namespace,
                    "Dimensions": [["Function"]],
                    "Metrics": [
                        {"Name": "WebhookServerErrors", "Unit": "Count"},
                        {"Name": "UnappliedPayments", "Unit": "Count"},
                    ],
                },
            ],
        },
        "Function": "payment-webhook",
        "Code": code,
        "WebhookAnswers": 1,
        "WebhookServerErrors": u8::from(answer.status >= 500),
        // Money kept aside: a new unapplied payment, or an overpayment's excess.
        "UnappliedPayments": u8::from(
            code == "unapplied" || answer.body["unapplied_id"].is_string()
        ),
    })
}

/// Syncs a Stripe invoice's event into its invoice item and answers: 200
/// with what it did; 200 `ignored` when the invoice cannot be an item (no
/// contact, say: Stripe would deliver it again for nothing); 503 when the
/// store failed or a reminder held it too long (Stripe retries).
async fn sync_answer(
    store: &impl crate::ports::EditStore,
    synced: &sync::SyncedInvoice,
    now: DateTime<Utc>,
) -> Answer {
    let invoice_id = &synced.invoice_id;
    match sync::sync_invoice(store, synced, now).await {
        Ok(done) => {
            tracing::info!(%invoice_id, event_id = %synced.event_id, event_type = %synced.event_type, result = done.as_str(), "Stripe invoice synced");
            Answer {
                status: 200,
                body: json!({
                    "result": "synced",
                    "sync": done.as_str(),
                    "invoice_id": invoice_id,
                    "status": synced.status.as_str(),
                }),
            }
        }
        Err(crate::edit::EditError::Store(err)) => {
            tracing::error!(%invoice_id, error = %err, "Stripe invoice not synced; Stripe delivers it again");
            error(
                503,
                "store_unavailable",
                "the invoice could not be stored; retry",
            )
        }
        Err(crate::edit::EditError::Busy) => error(
            503,
            "busy",
            "a reminder for the invoice is being sent; retry",
        ),
        Err(err) => {
            tracing::warn!(%invoice_id, event_id = %synced.event_id, reason = %err, "Stripe invoice not synced: it cannot be an invoice item");
            Answer {
                status: 200,
                body: json!({
                    "result": "ignored",
                    "event_type": synced.event_type,
                    "reason": "not_an_invoice_item",
                    "invoice_id": invoice_id,
                }),
            }
        }
    }
}

/// Handles one delivery. `header` looks a request header up by name
/// (case-insensitively, as HTTP does).
pub async fn handle(
    store: &impl crate::ports::EditStore,
    out: &Outbound<'_, impl Mailer, impl EventPublisher>,
    config: &WebhookConfig,
    method: &str,
    header: impl Fn(&str) -> Option<String>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Answer {
    if !method.eq_ignore_ascii_case("POST") {
        return error(405, "method_not_allowed", "use POST");
    }
    if body.len() > MAX_BODY_BYTES {
        return error(413, "body_too_large", "the body is over 64 KiB");
    }
    let (signature, secrets, parse): (_, _, Parser) =
        match (header("stripe-signature"), header("dunning-signature")) {
            (Some(sig), _) => (Some(sig), &config.stripe_secrets, parse_stripe),
            (None, sig) => (sig, &config.generic_secrets, parse_generic),
        };
    let signature_is_stripe = header("stripe-signature").is_some();
    if let Err(err) = verify(
        signature.as_deref(),
        body,
        secrets,
        now.timestamp(),
        config.tolerance_secs,
    ) {
        tracing::warn!(reason = %err, "webhook signature refused");
        let code = match err {
            SignatureError::Missing => "signature_missing",
            SignatureError::Malformed => "signature_malformed",
            SignatureError::Stale => "signature_stale",
            SignatureError::Mismatch => "signature_invalid",
        };
        return error(401, code, &err.to_string());
    }
    if signature_is_stripe {
        if let Some(refusal) = stripe_origin_refused(body, config) {
            return refusal;
        }
    }
    if let (Some(tz), true) = (config.stripe_sync, signature_is_stripe) {
        match sync::parse(body, tz) {
            Ok(Some(synced)) => return sync_answer(store, &synced, now).await,
            Ok(None) => {}
            Err(event::ParseError::CountedBySync) => {
                return Answer {
                    status: 200,
                    body: json!({ "result": "ignored", "reason": "counted_by_invoice_sync" }),
                };
            }
            Err(err) => {
                tracing::warn!(reason = %err, "Stripe invoice event malformed");
                return error(400, "malformed", &err.to_string());
            }
        }
    }
    let (payment, unplaceable) = match parse(body) {
        Ok(Parsed::Payment(p)) => (p, false),
        Ok(Parsed::Unplaceable(p)) => (p, true),
        Ok(Parsed::Ignored { event_type, reason }) => {
            tracing::info!(%event_type, reason, "webhook event ignored");
            return Answer {
                status: 200,
                body: json!({ "result": "ignored", "event_type": event_type, "reason": reason }),
            };
        }
        Err(err) => {
            tracing::warn!(reason = %err, "webhook body malformed");
            return error(400, "malformed", &err.to_string());
        }
    };
    let mut outcome = if unplaceable {
        Err(PaymentError::UnknownInvoice)
    } else {
        store.apply_payment(&payment, now).await
    };
    // Money that cannot be applied is kept aside, answered 2xx once stored
    // (so the provider stops retrying), listed by `dunning-admin unapplied`.
    if let Err(e) = &outcome {
        match set_aside(&payment, e, unplaceable, now) {
            SetAside::Keep(reason) => outcome = store.keep_unapplied(&payment, reason, now).await,
            SetAside::Wait => {
                tracing::info!(event_id = %payment.event_id, event_type = %payment.event_type, "no recorded payment matches this event yet; the provider delivers it again");
                return error(
                    409,
                    "payment_not_seen",
                    "no payment this event refers to is recorded yet; retry later",
                );
            }
            SetAside::Ignore(reason) => {
                tracing::info!(event_id = %payment.event_id, event_type = %payment.event_type, reason, "no invoice of ours takes this event; ignored");
                return Answer {
                    status: 200,
                    body: json!({ "result": "ignored", "event_type": payment.event_type, "reason": reason }),
                };
            }
            SetAside::No => {}
        }
    }
    let id = &payment.invoice_id;
    match outcome {
        Ok(Applied::Applied {
            settlement,
            delta,
            waited,
            invoice,
            invoice_id,
        }) => {
            let crate::payment::Settlement {
                amount_paid,
                fully_paid,
                overpaid,
                reopened,
            } = settlement;
            let money_in = payment.flow == Flow::In && delta > rust_decimal::Decimal::ZERO;
            if money_in && fully_paid && invoice.status == crate::invoice::InvoiceStatus::Open {
                send_receipt(out.mailer, config, &invoice, &payment).await;
            }
            let result = match (payment.dispute, delta.is_zero(), payment.flow) {
                (Some(DisputeChange::Opened), _, _) => "dispute_opened",
                (Some(DisputeChange::Closed), _, _) => "dispute_closed",
                (None, true, _) => "covered",
                // A running total's count corrected down (the same money had
                // been counted on its own first).
                (None, false, Flow::In) if delta < rust_decimal::Decimal::ZERO => "corrected",
                (None, false, Flow::In) => "applied",
                (None, false, Flow::Back) => "refunded",
            };
            tracing::info!(%invoice_id, event_id = %payment.event_id, event_type = %payment.event_type, result, %delta, fully_paid, overpaid, reopened, waited_for_reminder = waited, "payment applied");
            if overpaid && money_in {
                tracing::warn!(%invoice_id, unapplied_id = %payment.unapplied_id(), "overpayment applied and flagged; its excess is kept as unapplied");
            }
            if let Some(refusal) =
                publish_dispute(out.publisher, config, &payment, &invoice_id).await
            {
                return refusal;
            }
            let status = if reopened {
                "open"
            } else if money_in
                && fully_paid
                && invoice.status == crate::invoice::InvoiceStatus::Open
            {
                "paid"
            } else {
                invoice.status.as_str()
            };
            Answer {
                status: 200,
                body: json!({
                    "result": result,
                    "invoice_id": invoice_id,
                    "amount_paid": amount_paid.to_string(),
                    "currency": payment.currency.code(),
                    "status": status,
                    "overpaid": overpaid,
                    "reopened": reopened,
                    "unapplied_id": (overpaid && money_in).then(|| payment.unapplied_id()),
                }),
            }
        }
        Ok(Applied::Duplicate { invoice_id }) => {
            tracing::info!(%invoice_id, event_id = %payment.event_id, "duplicate delivery");
            // A dispute whose publication failed comes back as a duplicate.
            if let Some(refusal) =
                publish_dispute(out.publisher, config, &payment, &invoice_id).await
            {
                return refusal;
            }
            Answer {
                status: 200,
                body: json!({ "result": "duplicate", "invoice_id": invoice_id }),
            }
        }
        Ok(Applied::Unapplied {
            id: unapplied_id,
            reason,
        }) => {
            tracing::warn!(invoice_id = %id, event_id = %payment.event_id, event_type = %payment.event_type, reason = reason.as_str(), %unapplied_id, "payment kept as unapplied; see dunning-admin unapplied");
            Answer {
                status: 200,
                body: json!({
                    "result": "unapplied",
                    "reason": reason.as_str(),
                    "unapplied_id": unapplied_id,
                    "invoice_id": id,
                }),
            }
        }
        // Kept aside above; here only if keeping it failed in another way.
        Err(
            e @ (PaymentError::UnknownInvoice
            | PaymentError::Void
            | PaymentError::InvalidInvoice
            | PaymentError::CurrencyMismatch),
        ) => {
            tracing::error!(invoice_id = %id, error = %e, "payment neither applied nor kept");
            error(
                500,
                "internal",
                "the payment could not be recorded; retry later",
            )
        }
        Err(PaymentError::Busy) => error(503, "busy", "the invoice is busy; retry later"),
        Err(PaymentError::Conflict) => {
            tracing::warn!(invoice_id = %id, event_id = %payment.event_id, "an event id sent again with other content; not applied");
            error(
                409,
                "event_conflict",
                "this event id was received before with another invoice, amount or currency",
            )
        }
        Err(PaymentError::Store(err)) => {
            tracing::error!(invoice_id = %id, error = %err, "payment not applied: store failure");
            error(
                500,
                "internal",
                "the payment could not be recorded; retry later",
            )
        }
    }
}

#[cfg(test)]
mod metric_tests {
    use super::*;

    #[test]
    fn each_answer_is_counted_by_its_code_and_5xx_are_server_errors() {
        let at: DateTime<Utc> = "2026-11-24T10:00:00Z".parse().unwrap();
        let busy = error(503, "busy", "retry");
        let record = answer_metrics(&busy, "Dunning", at);
        assert_eq!(
            (
                record["Code"].as_str(),
                record["WebhookServerErrors"].as_u64()
            ),
            (Some("busy"), Some(1))
        );
        let declared: Vec<&str> = record["_aws"]["CloudWatchMetrics"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|d| {
                d["Metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["Name"].as_str().unwrap())
            })
            .collect();
        assert_eq!(
            declared,
            ["WebhookAnswers", "WebhookServerErrors", "UnappliedPayments"]
        );
        for name in declared {
            assert!(record[name].is_u64(), "{name} is declared and carried");
        }
        let applied = Answer {
            status: 200,
            body: json!({"result": "applied"}),
        };
        let record = answer_metrics(&applied, "Dunning", at);
        assert_eq!(
            (
                record["Code"].as_str(),
                record["WebhookServerErrors"].as_u64()
            ),
            (Some("applied"), Some(0))
        );
        assert_eq!(record["_aws"]["Timestamp"], at.timestamp_millis());
    }
}
