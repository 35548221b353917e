use super::*;
use crate::payment::PayableInvoice;
use proptest::prelude::*;

pub(crate) fn sample() -> RawInvoice {
    let mut raw = RawInvoice::default();
    for (k, v) in [
        ("invoice_id", "INV-1"),
        ("customer_id", "C-1"),
        ("customer_name", "Ana Lima"),
        ("email", "ana@example.com"),
        ("phone", "+15555550100"),
        ("amount", "120.00"),
        ("currency", "USD"),
        ("due_date", "2026-11-20"),
        ("status", "open"),
    ] {
        raw.insert(k, RawValue::Text(v.into()));
    }
    raw
}

fn with(mut raw: RawInvoice, k: &str, v: RawValue) -> RawInvoice {
    raw.insert(k, v);
    raw
}

fn reason(raw: RawInvoice) -> InvalidReason {
    Invoice::parse(&raw).expect_err("should be refused").reason
}

#[test]
fn a_complete_item_validates() {
    let inv = Invoice::parse(&sample()).expect("valid");
    assert_eq!(inv.id, "INV-1");
    assert_eq!(inv.outstanding().to_string(), "USD 120.00");
    assert_eq!(inv.status, InvoiceStatus::Open);
}

#[test]
fn partial_payment_reduces_outstanding_but_never_below_zero() {
    let inv = Invoice::parse(&with(
        sample(),
        "amount_paid",
        RawValue::Text("20.5".into()),
    ))
    .unwrap();
    assert_eq!(inv.outstanding().to_string(), "USD 99.50");
    let over =
        Invoice::parse(&with(sample(), "amount_paid", RawValue::Text("500".into()))).unwrap();
    assert_eq!(over.outstanding().amount, Decimal::ZERO);
}

#[test]
fn each_kind_of_bad_item_has_its_own_reason() {
    let t = |s: &str| RawValue::Text(s.into());
    let mut no_contact = sample();
    no_contact.0.remove("email");
    no_contact.0.remove("phone");
    let cases = [
        (no_contact, "no_contact"),
        (with(sample(), "amount", t("12,50")), "bad_amount"),
        (with(sample(), "amount", t("0")), "bad_amount_not_positive"),
        (with(sample(), "amount", t("-5")), "bad_amount_not_positive"),
        (
            with(sample(), "amount", RawValue::Other("JSON number")),
            "wrong_type_amount",
        ),
        (
            with(sample(), "amount", RawValue::Number("12.505".into())),
            "bad_amount_too_precise",
        ),
        (
            with(sample(), "amount", RawValue::Number("-1".into())),
            "bad_amount_not_positive",
        ),
        (
            with(sample(), "amount_paid", RawValue::Number("1e400".into())),
            "wrong_type_amount_paid",
        ),
        (with(sample(), "due_date", t("2026-02-30")), "bad_due_date"),
        (with(sample(), "due_date", t("20/11/2026")), "bad_due_date"),
        (with(sample(), "currency", t("XYZ")), "unknown_currency"),
        (with(sample(), "email", t("not-an-email")), "bad_email"),
        (with(sample(), "phone", t("call me")), "bad_phone"),
        (with(sample(), "status", t("pending")), "bad_status"),
        (with(sample(), "timezone", t("Mars/Base")), "bad_timezone"),
        (
            with(sample(), "customer_name", t("Eve\r\nBcc: x@y.z")),
            "bad_customer_name",
        ),
        (
            with(sample(), "customer_name", t("")),
            "missing_customer_name",
        ),
        (
            with(sample(), "pay_url", t("http://pay.example.com")),
            "bad_pay_url",
        ),
        (with(sample(), "amount_paid", t("x")), "bad_amount_paid"),
        (with(sample(), "disputed", t("maybe")), "bad_disputed"),
        (with(sample(), "locale", t("en US")), "bad_locale"),
        (
            with(sample(), "reminders_paused_until", t("soon")),
            "bad_paused_until",
        ),
        (with(sample(), "invoice_id", t("A#B")), "bad_invoice_id"),
        (
            with(sample(), "customer_id", RawValue::Other("map")),
            "wrong_type_customer_id",
        ),
    ];
    for (raw, code) in cases {
        assert_eq!(reason(raw).code(), code);
    }
}

#[test]
fn a_refused_item_keeps_its_id_for_the_report() {
    let err = Invoice::parse(&with(sample(), "amount", RawValue::Text("abc".into()))).unwrap_err();
    assert_eq!(err.invoice_id.as_deref(), Some("INV-1"));
    assert!(err.to_string().contains("INV-1"));
}

#[test]
fn a_pause_date_lasts_through_that_local_day() {
    let raw = with(
        with(
            sample(),
            "reminders_paused_until",
            RawValue::Text("2026-11-30".into()),
        ),
        "timezone",
        RawValue::Text("America/New_York".into()),
    );
    let until = Invoice::parse(&raw).unwrap().paused_until.unwrap();
    assert_eq!(until.to_rfc3339(), "2026-12-01T05:00:00+00:00");
}

#[test]
fn channels_list_what_the_customer_accepts() {
    let inv = Invoice::parse(&with(sample(), "channels", RawValue::Text("email".into()))).unwrap();
    assert!(inv.accepts(Channel::Email) && !inv.accepts(Channel::Sms));
    let all = Invoice::parse(&sample()).unwrap();
    assert!(all.accepts(Channel::Email) && all.accepts(Channel::Sms));
    let list = RawValue::List(vec!["sms".into()]);
    assert!(!Invoice::parse(&with(sample(), "channels", list))
        .unwrap()
        .accepts(Channel::Email));
    let bad = with(sample(), "channels", RawValue::Text("fax".into()));
    assert_eq!(
        Invoice::parse(&bad).unwrap_err().reason,
        InvalidReason::BadChannels
    );
}

#[test]
fn late_fees_add_to_what_is_owed() {
    let raw = with(
        with(
            sample(),
            "late_fee#overdue_7",
            RawValue::Text("12.50".into()),
        ),
        "amount_paid",
        RawValue::Text("20".into()),
    );
    assert_eq!(
        Invoice::parse(&raw).unwrap().outstanding().to_string(),
        "USD 112.50"
    );
    let bad = with(sample(), "late_fee#x", RawValue::Text("1.001".into()));
    assert_eq!(
        Invoice::parse(&bad).unwrap_err().reason,
        InvalidReason::BadLateFee
    );
}

#[test]
fn a_payment_target_needs_only_the_money_fields() {
    let mut raw = sample();
    raw.0.remove("email");
    raw.insert("phone", RawValue::Text("call me".into()));
    raw.insert("amount_paid", RawValue::Text("5000000000000".into()));
    assert!(Invoice::parse(&raw).is_err(), "not usable for reminders");
    let payable = PayableInvoice::parse(&raw).expect("still takes payments");
    assert_eq!(payable.amount_paid, Decimal::from(5_000_000_000_000_i64));
    assert_eq!(payable.email, None);
    raw.insert("currency", RawValue::Text("???".into()));
    assert_eq!(
        PayableInvoice::parse(&raw).unwrap_err(),
        InvalidReason::UnknownCurrency
    );
}

#[test]
fn disputed_accepts_bool_or_text() {
    assert!(
        Invoice::parse(&with(sample(), "disputed", RawValue::Bool(true)))
            .unwrap()
            .disputed
    );
    assert!(
        Invoice::parse(&with(sample(), "disputed", RawValue::Text("true".into())))
            .unwrap()
            .disputed
    );
    assert!(!Invoice::parse(&sample()).unwrap().disputed);
}

proptest! {
    #[test]
    fn validation_never_panics_on_arbitrary_text(field in prop::sample::select(vec![
        "invoice_id", "customer_id", "customer_name", "email", "phone", "amount",
        "amount_paid", "currency", "due_date", "status", "timezone", "locale",
        "pay_url", "reminders_paused_until", "disputed",
    ]), value in "\\PC{0,64}") {
        let raw = with(sample(), field, RawValue::Text(value));
        if let Ok(inv) = Invoice::parse(&raw) {
            prop_assert!(inv.outstanding().amount >= Decimal::ZERO);
            prop_assert!(!inv.customer_name.contains('\n'));
        }
    }
}

#[test]
fn a_dynamodb_number_is_an_exact_amount_under_the_same_rules_as_text() {
    let n = |s: &str| RawValue::Number(s.into());
    let raw = with(
        with(
            with(sample(), "amount", n("1.2005E+3")),
            "amount_paid",
            n("200.5"),
        ),
        "late_fee#overdue_3",
        n("25"),
    );
    let inv = Invoice::parse(&raw).unwrap();
    assert_eq!(inv.amount.amount.to_string(), "1200.5");
    assert_eq!(inv.amount_paid.to_string(), "200.5");
    // 1200.50 + 25.00 - 200.50: exact, no float anywhere.
    assert_eq!(inv.outstanding().amount.to_string(), "1025.0");
    let payable = crate::payment::PayableInvoice::parse(&raw).unwrap();
    assert_eq!(payable.total().to_string(), "1225.5");
    assert_eq!(payable.amount_paid, inv.amount_paid);
    let message = InvalidReason::WrongType("amount").to_string();
    assert!(message.contains("JSON number"), "{message}");
}
