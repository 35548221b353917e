use super::*;
use crate::invoice::{RawInvoice, RawValue};
use proptest::prelude::*;

fn invoice(
    id: &str,
    customer: &str,
    amount: &str,
    currency: &str,
    due: &str,
    extra: &[(&str, &str)],
) -> Invoice {
    let mut raw = RawInvoice::default();
    for (k, v) in [
        ("invoice_id", id),
        ("customer_id", customer),
        ("customer_name", customer),
        ("email", "x@example.com"),
        ("amount", amount),
        ("currency", currency),
        ("due_date", due),
        ("status", "open"),
    ]
    .iter()
    .chain(extra)
    {
        raw.insert(*k, RawValue::Text((*v).into()));
    }
    Invoice::parse(&raw).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[test]
fn buckets_are_the_days_overdue_in_the_customers_calendar() {
    for (days, b) in [
        (-5, 0),
        (0, 0),
        (1, 1),
        (30, 1),
        (31, 2),
        (60, 2),
        (61, 3),
        (90, 3),
        (91, 4),
        (120, 4),
        (121, 5),
    ] {
        assert_eq!(bucket(days), b, "{days}");
    }
    // 1 December 02:00 UTC is still 30 November in New York: 0 days, not 1.
    let ny = invoice(
        "A",
        "C",
        "10.00",
        "USD",
        "2026-11-30",
        &[("timezone", "America/New_York")],
    );
    assert_eq!(days_overdue(&ny, at("2026-12-01T02:00:00Z"), Tz::UTC), 0);
    assert_eq!(days_overdue(&ny, at("2026-12-01T06:00:00Z"), Tz::UTC), 1);
}

#[test]
fn a_hand_checked_aging_per_currency_with_its_top_customers() {
    let now = at("2026-12-01T12:00:00Z");
    let invoices = [
        invoice("N", "C-1", "100.00", "USD", "2026-12-10", &[]),
        invoice(
            "T",
            "C-1",
            "50.00",
            "USD",
            "2026-11-21",
            &[("amount_paid", "20.00")],
        ),
        invoice(
            "F",
            "C-2",
            "200.00",
            "USD",
            "2026-10-17",
            &[("late_fee#overdue_7", "10.00")],
        ),
        invoice(
            "P",
            "C-3",
            "75.00",
            "USD",
            "2026-09-01",
            &[("status", "paid"), ("amount_paid", "75.00")],
        ),
        invoice(
            "E",
            "C-4",
            "500.00",
            "EUR",
            "2026-07-01",
            &[("disputed", "true")],
        ),
        invoice(
            "Z",
            "C-5",
            "30.00",
            "USD",
            "2026-11-01",
            &[("amount_paid", "30.00")],
        ),
    ];
    let report = aging(&invoices, now, Tz::UTC);
    let usd = &report.by_currency["USD"];
    let amounts: Vec<String> = usd.buckets.iter().map(|t| t.amount.to_string()).collect();
    // N not due; T 10 days, 30 owed; F 45 days, 210 with its fee; P paid and Z
    // paid in full: not in it.
    assert_eq!(amounts, ["100.00", "30.00", "210.00", "0", "0", "0"]);
    assert_eq!((usd.open.amount, usd.open.count), (d("340.00"), 3));
    let top: Vec<(&str, String, i64)> = usd
        .top_overdue
        .iter()
        .map(|c| (c.customer_id.as_str(), c.overdue.to_string(), c.oldest_days))
        .collect();
    assert_eq!(
        top,
        [("C-2", "210.00".into(), 45), ("C-1", "30.00".into(), 10)]
    );
    let eur = &report.by_currency["EUR"];
    assert_eq!(
        eur.buckets[5],
        Total {
            amount: d("500.00"),
            count: 1
        }
    );
    assert_eq!(report.in_flight.disputed, 1);
}

#[test]
fn dso_and_cei_of_a_hand_checked_window() {
    let now = at("2026-12-01T12:00:00Z");
    // A: 100 invoiced 40 days ago, 60 of it paid 20 days ago.
    // B: 200 invoiced 10 days ago, due in 20 days, unpaid.
    let a = invoice(
        "A",
        "C",
        "100.00",
        "USD",
        "2026-11-01",
        &[("issued_at", "2026-10-22"), ("amount_paid", "60.00")],
    );
    let b = invoice(
        "B",
        "C",
        "200.00",
        "USD",
        "2026-12-21",
        &[("issued_at", "2026-11-21")],
    );
    let usd = Currency::parse("USD").unwrap();
    // C: 50 invoiced 15 days ago and paid in full 5 days ago; as paid, only
    // the rollup knows it. A's 60 came in 20 days ago.
    let mut rollup = Rollup::default();
    let mut day = |sk: &str, attr: &str, v: &str| {
        rollup
            .days
            .entry(sk.to_owned())
            .or_default()
            .insert(attr.to_owned(), d(v));
    };
    day("money#2026-11-11", "received#USD", "60.00");
    day("money#2026-11-16", "sales_paid#USD", "50.00");
    day("money#2026-11-26", "received#USD", "50.00");
    // Outside the window, or another currency: not counted.
    day("money#2026-10-31", "received#USD", "999.00");
    day("money#2026-11-26", "received#EUR", "999.00");
    let c = collection(&[a, b], &rollup, usd, now, 30, Tz::UTC);
    assert_eq!(
        (c.sales, c.received, c.receivables_end, c.current_end),
        (d("250.00"), d("110.00"), d("240.00"), d("200.00"))
    );
    // DSO = 240 / 250 * 30. CEI = 110 / (110 + 240 - 200) * 100, the same
    // as the textbook (start + sales - end) / (start + sales - current_end)
    // with A's 100 owed at the start: (100 + 250 - 240) / (100 + 250 - 200).
    assert_eq!(c.dso, Some(d("28.8")));
    assert_eq!(c.cei, Some(d("73.3")));
    let none = collection(&[], &Rollup::default(), usd, now, 30, Tz::UTC);
    assert_eq!((none.dso, none.cei), (None, None));
}

proptest! {
    /// Whatever the invoices, each currency's buckets sum to its open total,
    /// which is exactly what the open invoices still owe; an invoice paid in
    /// full (or void) is never in it.
    #[test]
    fn the_buckets_always_sum_to_the_open_total(
        rows in prop::collection::vec((0usize..3, 1i64..100_000, 0i64..100_000, -200i64..400, 0u8..4), 0..40)
    ) {
        let now = at("2026-12-01T12:00:00Z");
        let currencies = ["USD", "EUR", "JPY"];
        let invoices: Vec<Invoice> = rows
            .iter()
            .enumerate()
            .map(|(i, (c, amount, paid, days, status))| {
                let currency = currencies[*c];
                let scale = if currency == "JPY" { 0 } else { 2 };
                let amount = Decimal::new(*amount, scale);
                let paid = Decimal::new(*paid, scale).min(amount);
                let due = (now.date_naive() - chrono::Duration::days(*days)).to_string();
                let status = ["open", "open", "paid", "void"][*status as usize];
                invoice(&format!("I{i}"), &format!("C{}", i % 5), &amount.to_string(), currency, &due,
                    &[("amount_paid", &paid.to_string()), ("status", status)])
            })
            .collect();
        let report = aging(&invoices, now, Tz::UTC);
        for (code, aging) in &report.by_currency {
            let sum: Decimal = aging.buckets.iter().map(|t| t.amount).sum();
            let count: u64 = aging.buckets.iter().map(|t| t.count).sum();
            prop_assert_eq!(sum, aging.open.amount);
            prop_assert_eq!(count, aging.open.count);
            let expected: Decimal = invoices
                .iter()
                .filter(|i| i.amount.currency.code() == code && i.status == InvoiceStatus::Open)
                .map(|i| i.balance().amount)
                .sum();
            prop_assert_eq!(aging.open.amount, expected);
        }
        let counted: u64 = report.by_currency.values().map(|a| a.open.count).sum();
        let owing = invoices
            .iter()
            .filter(|i| i.status == InvoiceStatus::Open && !i.balance().amount.is_zero())
            .count() as u64;
        prop_assert_eq!(counted, owing, "paid in full and void never appear");
    }
}

#[test]
fn a_statement_lists_the_customer_s_open_invoices_oldest_first_with_totals_per_currency() {
    let now = at("2026-12-01T12:00:00Z");
    let usd = Currency::parse("USD").unwrap();
    let invoices = [
        invoice(
            "B",
            "C-1",
            "50.00",
            "USD",
            "2026-11-21",
            &[("amount_paid", "20.00")],
        ),
        invoice("A", "C-1", "100.00", "USD", "2026-12-10", &[]),
        invoice("E", "C-1", "80.00", "EUR", "2026-08-15", &[]),
        invoice(
            "P",
            "C-1",
            "75.00",
            "USD",
            "2026-09-01",
            &[("status", "paid"), ("amount_paid", "75.00")],
        ),
        invoice("X", "C-2", "999.00", "USD", "2026-11-01", &[]),
    ];
    let paid = [
        Received {
            invoice_id: "B".into(),
            at: at("2026-11-25T10:00:00Z"),
            amount: d("20.00"),
            currency: usd,
        },
        Received {
            invoice_id: "P".into(),
            at: at("2026-06-01T10:00:00Z"),
            amount: d("75.00"),
            currency: usd,
        },
    ];
    let s = statement("C-1", &invoices, &paid, now, Tz::UTC);
    let lines: Vec<(&str, &str, String)> = s
        .lines
        .iter()
        .map(|l| (l.invoice_id.as_str(), l.bucket, l.owed.to_string()))
        .collect();
    assert_eq!(
        lines,
        [
            ("E", "91-120", "80.00".into()),
            ("B", "1-30", "30.00".into()),
            ("A", "not_due", "100.00".into())
        ]
    );
    assert_eq!(s.total_due["USD"], d("130.00"));
    assert_eq!(s.total_due["EUR"], d("80.00"));
    assert_eq!(s.recent_payments.len(), 1, "only the last 90 days");
    assert_eq!(s.customer_name, "C-1");
    let usd_aging = s.aging["USD"];
    assert_eq!((usd_aging[0], usd_aging[1]), (d("100.00"), d("30.00")));
    assert_eq!(s.aging["EUR"][4], d("80.00"));
    for (code, buckets) in &s.aging {
        let sum: Decimal = buckets.iter().copied().sum();
        assert_eq!(
            sum, s.total_due[code],
            "{code}: the buckets sum to the total due"
        );
    }
}

#[test]
fn a_payment_record_is_money_received_and_other_records_are_not() {
    let record = |extra: &[(&str, &str)]| {
        let mut r = RawInvoice::default();
        for (k, v) in [
            ("paid_at", "2026-11-25T10:00:00.000Z"),
            ("amount", "20.50"),
            ("currency", "EUR"),
        ]
        .iter()
        .chain(extra)
        {
            r.0.insert((*k).to_owned(), RawValue::Text((*v).to_owned()));
        }
        r
    };
    let got = Received::from_record("INV-1", "payment#stripe:pi_1", &record(&[])).unwrap();
    assert_eq!(got.invoice_id, "INV-1");
    assert_eq!(got.at, at("2026-11-25T10:00:00Z"));
    assert_eq!(got.amount, d("20.50"));
    assert_eq!(got.currency.code(), "EUR");
    assert!(Received::from_record("INV-1", "refund#stripe:re_1", &record(&[])).is_none());
    assert!(Received::from_record("INV-1", "reminder#-3#email", &record(&[])).is_none());
    assert!(Received::from_record("INV-1", "payment#k", &record(&[("amount", "lots")])).is_none());
    assert!(
        Received::from_record("INV-1", "payment#k", &record(&[("paid_at", "yesterday")])).is_none()
    );
}

/// A small report: two currencies, one overdue customer, one baseline row.
fn sample_report() -> Report {
    let now = at("2026-12-01T12:00:00Z");
    let open = vec![
        (
            invoice("A", "ACME <Ltd>", "1250.00", "USD", "2026-10-01", &[]),
            vec![],
        ),
        (
            invoice("B", "Beta", "300.00", "USD", "2026-12-20", &[]),
            vec![],
        ),
        (
            invoice("C", "Gamma", "54000", "JPY", "2026-11-25", &[]),
            vec![],
        ),
    ];
    let input = ReportInput {
        open,
        invalid: 1,
        unapplied: vec![(Currency::parse("USD").unwrap(), d("25.00"))],
        ..ReportInput::default()
    };
    build(&input, &[("overdue_3".into(), 3)], now, Tz::UTC)
}

#[test]
fn the_terminal_table_fits_100_columns_and_says_everything_once() {
    let report = sample_report();
    let table = text::table(&report);
    for line in table.lines() {
        assert!(line.chars().count() <= text::WIDTH, "too wide: {line:?}");
    }
    assert!(table.contains("USD"));
    assert!(table.contains("1,550.00"), "the USD open total: {table}");
    assert!(table.contains("Unapplied payments: USD 25.00 (1)"));
    assert!(table.contains("1 open item(s) are not valid invoices"));
    // A and C reached overdue_3's day without it: the baseline row.
    assert!(table.contains("overdue_3"), "{table}");
}

#[test]
fn the_html_report_is_self_contained_and_carries_its_figures() {
    let report = sample_report();
    let html = html::html(&report, "Receivables");
    assert!(html.starts_with("<!doctype html>"));
    for outside in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(outside), "{outside} in the report");
    }
    assert!(html.contains(r#"data-total="USD" data-amount="1550.00""#));
    assert!(html.contains(r#"data-bucket="USD-61-90" data-amount="1250.00""#));
    assert!(html.contains(r#"data-total="JPY" data-amount="54000""#));
    assert!(html.contains("<svg"), "charts are inline SVG");
    // Names are escaped, in the page and in the charts.
    assert!(html.contains("ACME &lt;Ltd&gt;"));
    assert!(!html.contains("<Ltd>"));
}

#[test]
fn a_statement_reads_open_invoices_first_and_at_most_its_limit() {
    let found: Vec<(String, bool)> = (0..STATEMENT_MAX_INVOICES + 5)
        .map(|i| (format!("I-{i:03}"), i % 3 != 0))
        .collect();
    let (ids, more) = statement_picks(&found);
    assert!(more);
    assert_eq!(ids.len(), STATEMENT_MAX_INVOICES);
    let open = found.iter().filter(|(_, o)| *o).count();
    assert!(
        ids[..open]
            .iter()
            .all(|id| found.iter().any(|(f, o)| f == id && *o)),
        "every open invoice comes before any paid one"
    );
    assert_eq!(ids[0], "I-001", "in the index's (due date) order");
    let few = &found[..4];
    let (ids, more) = statement_picks(few);
    assert!(!more);
    assert_eq!(ids, ["I-001", "I-002", "I-000", "I-003"]);
}
