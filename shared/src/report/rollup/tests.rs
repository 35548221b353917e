use super::*;
use crate::invoice::Invoice;
use crate::money::Currency;
use crate::report::{effectiveness, Effect};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// An open invoice of 100.00 USD due on `due` that got `sent` (ledger key, instant).
fn raw(id: &str, due: &str, sent: &[(&str, &str)]) -> RawInvoice {
    let mut raw = RawInvoice::default();
    for (k, v) in [
        ("invoice_id", id),
        ("customer_id", "C"),
        ("customer_name", "C"),
        ("email", "x@example.com"),
        ("amount", "100.00"),
        ("currency", "USD"),
        ("due_date", due),
        ("status", "open"),
        ("timezone", "UTC"),
    ] {
        raw.insert(k, RawValue::Text(v.into()));
    }
    for (key, when) in sent {
        raw.insert(sent_at_attr(key), RawValue::Text((*when).into()));
    }
    raw
}

/// What paying `raw` (100.00 USD) in full at `when` adds.
fn pay(raw: &RawInvoice, when: &str) -> Additions {
    on_payment(raw, &movement("100.00", when, true, false))
}

fn movement(moved: &str, when: &str, newly_paid: bool, reopened: bool) -> Movement {
    Movement {
        currency: Currency::parse("USD").unwrap(),
        total: Decimal::ONE_HUNDRED,
        moved: moved.parse().unwrap(),
        paid_at: at(when),
        newly_paid,
        reopened,
    }
}

#[test]
fn a_full_payment_counts_each_reminder_by_the_days_after_it_and_the_due_day() {
    let p2 = raw(
        "P2",
        "2026-11-01",
        &[
            ("due_today#email", "2026-11-01T09:00:00Z"),
            ("due_today#sms", "2026-11-01T09:00:00Z"),
            ("overdue_3#email", "2026-11-04T09:00:00Z"),
        ],
    );
    let adds = pay(&p2, "2026-11-06T10:00:00Z");
    let one = Decimal::ONE;
    let expected: Additions = [
        ("money#2026-11-01", "sales_paid#USD", Decimal::ONE_HUNDRED),
        ("money#2026-11-06", "received#USD", Decimal::ONE_HUNDRED),
        ("sent#2026-11-01", "due_today#email#5", one),
        ("sent#2026-11-01", "due_today#sms#5", one),
        ("sent#2026-11-04", "overdue_3#email#2", one),
        ("due#2026-11-01", "ALL#5", one),
        ("due#2026-11-01", "due_today#5", one),
        ("due#2026-11-01", "overdue_3#5", one),
    ]
    .into_iter()
    .fold(Additions::new(), |mut m, (sk, attr, v)| {
        m.entry(sk.into()).or_default().insert(attr.into(), v);
        m
    });
    assert_eq!(adds, expected);
}

#[test]
fn a_refund_that_reopens_takes_the_count_back_and_a_part_payment_moves_only_money() {
    let mut item = raw(
        "P",
        "2026-11-01",
        &[("due_today#email", "2026-11-01T09:00:00Z")],
    );
    let mut rollup = Rollup::default();
    rollup.apply(&pay(&item, "2026-11-02T10:00:00Z"));
    // Paid: as the webhook writes it; then 40.00 goes back.
    item.insert("paid_at", RawValue::Text("2026-11-02T10:00:00Z".into()));
    rollup.apply(&on_payment(
        &item,
        &movement("-40.00", "2026-11-03T10:00:00Z", false, true),
    ));
    let left: Vec<(&str, &str, String)> = rollup
        .days
        .iter()
        .flat_map(|(sk, a)| {
            a.iter()
                .filter(|(_, v)| !v.is_zero())
                .map(move |(k, v)| (sk.as_str(), k.as_str(), v.to_string()))
        })
        .collect();
    assert_eq!(
        left,
        [
            ("money#2026-11-02", "received#USD", "100.00".to_owned()),
            ("money#2026-11-03", "received#USD", "-40.00".to_owned()),
        ],
        "only the money that moved stays"
    );
    // 60 owed, 30 more paid: money only.
    let adds = on_payment(
        &item,
        &movement("30.00", "2026-11-04T10:00:00Z", false, false),
    );
    assert_eq!(adds.len(), 1);
    assert_eq!(
        adds["money#2026-11-04"]["received#USD"].to_string(),
        "30.00"
    );
}

#[test]
fn the_effectiveness_table_of_a_hand_checked_example() {
    let now = at("2026-12-20T12:00:00Z");
    let due = "2026-11-01";
    let mut rollup = Rollup::default();
    // P1: due-day e-mail, paid 11 hours later.
    let p1 = raw("P1", due, &[("due_today#email", "2026-11-01T09:00:00Z")]);
    rollup.apply(&pay(&p1, "2026-11-01T20:00:00Z"));
    // P2: due-day e-mail and SMS, then the overdue_3 e-mail; paid on the 6th.
    let p2 = raw(
        "P2",
        due,
        &[
            ("due_today#email", "2026-11-01T09:00:00Z"),
            ("due_today#sms", "2026-11-01T09:00:00Z"),
            ("overdue_3#email", "2026-11-04T09:00:00Z"),
        ],
    );
    rollup.apply(&pay(&p2, "2026-11-06T10:00:00Z"));
    // P3: nothing sent (paused), paid two days after its due date.
    rollup.apply(&pay(&raw("P3", due, &[]), "2026-11-03T10:00:00Z"));
    // Still open: O1 got both e-mails, O2 nothing.
    let open: Vec<(Invoice, Vec<Sent>)> = [
        raw(
            "O1",
            due,
            &[
                ("due_today#email", "2026-11-01T09:00:00Z"),
                ("overdue_3#email", "2026-11-04T09:00:00Z"),
            ],
        ),
        raw("O2", due, &[]),
    ]
    .iter()
    .map(|r| (Invoice::parse(r).unwrap(), sends(r)))
    .collect();
    let steps = [("due_today".to_owned(), 0), ("overdue_3".to_owned(), 3)];
    let table = effectiveness(&open, &rollup, &steps, now);
    let pct = |v: &str| Some(v.parse::<Decimal>().unwrap());
    let row =
        |step: &str, channel: Option<&str>, invoices, paid_within, share, median_days| Effect {
            step: step.into(),
            channel: channel.map(Into::into),
            invoices,
            // Every day here is weeks before the report's.
            followed: [invoices; 3],
            paid_within,
            share,
            median_days,
        };
    assert_eq!(
        table.rows,
        [
            // P1 (day 0), P2 (day 5), O1 (unpaid): 1 of 3 within a day; half by day 5.
            row(
                "due_today",
                Some("email"),
                3,
                [1, 1, 2],
                [pct("33.3"), pct("33.3"), pct("66.7")],
                Some(5)
            ),
            row(
                "due_today",
                Some("sms"),
                1,
                [0, 0, 1],
                [pct("0"), pct("0"), pct("100")],
                Some(5)
            ),
            // Without it: P3 (day 2) and O2 (unpaid).
            row(
                "due_today",
                None,
                2,
                [0, 1, 1],
                [pct("0"), pct("50"), pct("50")],
                Some(2)
            ),
            // P2 (day 2) and O1.
            row(
                "overdue_3",
                Some("email"),
                2,
                [0, 1, 1],
                [pct("0"), pct("50"), pct("50")],
                Some(2)
            ),
            // Reached the 4th without it: O2 only (P1 and P3 paid before).
            row(
                "overdue_3",
                None,
                1,
                [0, 0, 0],
                [pct("0"), pct("0"), pct("0")],
                None
            ),
        ]
    );
    assert_eq!(
        (table.from.to_string(), table.to.to_string()),
        ("2026-09-22".to_owned(), "2026-12-20".to_owned())
    );
}

#[test]
fn a_share_counts_only_the_invoices_followed_that_long() {
    // Sent on the 1st, 2nd and 5th; the report is on the 6th: the first two
    // are followed for 3 days, none for 7.
    let mut rollup = Rollup::default();
    for (day, paid) in [("01", "02"), ("02", "06")] {
        let r = raw(
            &format!("P{day}"),
            &format!("2026-11-{day}"),
            &[("due_today#email", &format!("2026-11-{day}T09:00:00Z"))],
        );
        rollup.apply(&pay(&r, &format!("2026-11-{paid}T10:00:00Z")));
    }
    let open_one = raw(
        "O",
        "2026-11-05",
        &[("due_today#email", "2026-11-05T09:00:00Z")],
    );
    let open = [(Invoice::parse(&open_one).unwrap(), sends(&open_one))];
    let steps = [("due_today".to_owned(), 0)];
    let table = effectiveness(&open, &rollup, &steps, at("2026-11-06T12:00:00Z"));
    let row = &table.rows[0];
    assert_eq!(
        (row.step.as_str(), row.channel.as_deref()),
        ("due_today", Some("email"))
    );
    assert_eq!(row.invoices, 3);
    // 1 day: the 1st (paid on day 1) and the 2nd (paid on day 4); not the 5th.
    assert_eq!(row.followed, [2, 2, 0]);
    assert_eq!(row.paid_within, [0, 1, 0]);
    assert_eq!(row.share[1], Some("50.0".parse().unwrap()));
    assert_eq!(row.share[2], None, "nobody followed for a week yet");
    // Two of three paid (days 1 and 4): half by day 4.
    assert_eq!(row.median_days, Some(4));
    assert_eq!(
        table.rows.len(),
        1,
        "no baseline row without invoices in it"
    );
}

#[test]
fn an_invoice_marked_paid_counts_as_a_payment_of_what_it_owed_and_reopened_takes_it_back() {
    let before = raw(
        "S1",
        "2026-11-01",
        &[("due_today#email", "2026-11-01T09:00:00Z")],
    );
    let mut part = before.clone();
    part.insert("amount_paid", RawValue::Text("30.00".into()));
    let mut paid = part.clone();
    paid.insert("status", RawValue::Text("paid".into()));
    paid.insert("paid_at", RawValue::Text("2026-11-04T10:00:00.000Z".into()));
    // As the edit's plan writes it: the money counted up to the total.
    paid.insert(COUNTED_TO, RawValue::Text("100.00".into()));
    let when = at("2026-11-04T10:00:00Z");
    let adds = on_status_change(&part, &paid, when);
    // What was still owed came in that day; the invoice's whole total is a sale paid.
    let d = |s: &str| s.parse::<Decimal>().unwrap();
    assert_eq!(adds["money#2026-11-04"]["received#USD"], d("70.00"));
    assert_eq!(adds["money#2026-11-01"]["sales_paid#USD"], d("100.00"));
    assert_eq!(adds["sent#2026-11-01"]["due_today#email#3"], Decimal::ONE);
    assert_eq!(adds["due#2026-11-01"]["ALL#3"], Decimal::ONE);
    // Made open again: every count comes back out, the money too.
    let mut rollup = Rollup::default();
    rollup.apply(&adds);
    rollup.apply(&on_status_change(&paid, &part, at("2026-11-05T10:00:00Z")));
    for (sk, attrs) in &rollup.days {
        if sk.starts_with("money#2026-11-0") && attrs.contains_key("received#USD") {
            continue;
        }
        assert!(attrs.values().all(Decimal::is_zero), "{sk}: {attrs:?}");
    }
    let november = (
        at("2026-11-01T00:00:00Z").date_naive(),
        at("2026-11-30T00:00:00Z").date_naive(),
    );
    assert_eq!(
        rollup.sum(MONEY, "received#USD", november.0, november.1),
        Decimal::ZERO,
        "the money in and back out"
    );
    // Paid by payments and opened again: its counts come out, its money stays.
    let mut by_payments = paid.clone();
    by_payments.0.remove(COUNTED_TO);
    by_payments.insert("amount_paid", RawValue::Text("100.00".into()));
    let mut open_again = by_payments.clone();
    open_again.insert("status", RawValue::Text("open".into()));
    let back = on_status_change(&by_payments, &open_again, when);
    assert!(!back.contains_key("money#2026-11-04"), "{back:?}");
    assert_eq!(back["money#2026-11-01"]["sales_paid#USD"], d("-100.00"));
    assert_eq!(back["due#2026-11-01"]["ALL#3"], Decimal::NEGATIVE_ONE);
    // Other changes add nothing: a void, an amount, a status already paid.
    let mut void = part.clone();
    void.insert("status", RawValue::Text("void".into()));
    assert!(on_status_change(&part, &void, when).is_empty());
    let mut more = part.clone();
    more.insert("amount", RawValue::Text("150.00".into()));
    assert!(on_status_change(&part, &more, when).is_empty());
    assert!(on_status_change(&paid, &paid, when).is_empty());
}
