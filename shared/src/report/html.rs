//! The report as one self-contained HTML file: inline CSS, charts as
//! inline SVG drawn here (integer geometry from the decimal figures), no
//! script, font or image from anywhere. It prints on A4 (`@page`). Every
//! figure a reader checks carries its exact value in a `data-` attribute,
//! which the browser test compares with the JSON report.

use minijinja::Environment;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::text::{amount, channel, median, share};
use super::{Report, BUCKETS};

const CSS: &str = include_str!("../../pages/report.css");
const PAGE: &str = include_str!("../../pages/report.html");

/// The buckets as a reader reads them.
const BUCKET_LABELS: [&str; 6] = [
    "Not yet due",
    "1-30 days",
    "31-60 days",
    "61-90 days",
    "91-120 days",
    "Over 120 days",
];
const BUCKET_COLOURS: [&str; 6] = [
    "#2e7d32", "#f9a825", "#ef6c00", "#d84315", "#b71c1c", "#6d1010",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `value / max * span`, rounded to whole pixels (0 when `max` is 0).
fn scale(value: Decimal, max: Decimal, span: i64) -> i64 {
    if max <= Decimal::ZERO {
        return 0;
    }
    (value.max(Decimal::ZERO) * Decimal::from(span) / max)
        .round()
        .try_into()
        .unwrap_or(0)
}

/// Bucket names under the bars.
const BAR_LABELS: [&str; 6] = ["not due", "1-30", "31-60", "61-90", "91-120", ">120"];

/// One currency's buckets as vertical bars.
fn aging_chart(code: &str, buckets: &[super::Total; 6]) -> String {
    let (w, h, top, bar, gap) = (310, 130, 16, 40, 9);
    let max = buckets.iter().map(|b| b.amount).max().unwrap_or_default();
    let mut svg = format!(
        r#"<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{code} receivables by days overdue">"#
    );
    let base = h - 20;
    for (i, b) in buckets.iter().enumerate() {
        let x = 8 + i64::try_from(i).unwrap_or(0) * (bar + gap);
        let height = scale(b.amount, max, base - top).max(i64::from(!b.amount.is_zero()));
        let y = base - height;
        svg.push_str(&format!(
            r#"<rect x="{x}" y="{y}" width="{bar}" height="{height}" fill="{}"/>"#,
            BUCKET_COLOURS[i]
        ));
        if !b.amount.is_zero() {
            svg.push_str(&format!(
                r#"<text x="{}" y="{}" text-anchor="middle" font-size="9">{}</text>"#,
                x + bar / 2,
                y - 3,
                escape(&amount(b.amount, code))
            ));
        }
        svg.push_str(&format!(
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            x + bar / 2,
            base + 14,
            BAR_LABELS[i]
        ));
    }
    svg.push_str(&format!(
        r##"<line x1="4" y1="{base}" x2="{}" y2="{base}" stroke="#999"/></svg>"##,
        w - 4
    ));
    svg
}

/// The share paid within 7 days of each row, as horizontal bars.
fn effect_chart(report: &Report) -> String {
    let rows = &report.effectiveness.rows;
    if rows.is_empty() {
        return String::new();
    }
    let (label, span, line) = (230, 300, 20);
    let h = 10 + line * i64::try_from(rows.len()).unwrap_or(0);
    let mut svg = format!(
        r#"<svg viewBox="0 0 600 {h}" width="600" height="{h}" role="img" aria-label="Share paid within 7 days">"#
    );
    for (i, e) in rows.iter().enumerate() {
        let y = 5 + line * i64::try_from(i).unwrap_or(0);
        let value = e.share[2].unwrap_or_default();
        let width = scale(value, Decimal::ONE_HUNDRED, span);
        let colour = if e.channel.is_some() {
            "#1565c0"
        } else {
            "#9e9e9e"
        };
        svg.push_str(&format!(
            r#"<text x="{}" y="{}" text-anchor="end">{} · {}</text>"#,
            label - 6,
            y + 13,
            escape(&e.step),
            escape(channel(e))
        ));
        svg.push_str(&format!(
            r#"<rect x="{label}" y="{}" width="{width}" height="{}" fill="{colour}"/>"#,
            y + 2,
            line - 6
        ));
        svg.push_str(&format!(
            r#"<text x="{}" y="{}">{}</text>"#,
            label + width + 4,
            y + 13,
            escape(&share(e.share[2]))
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn raw(v: Option<Decimal>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Most overdue customers the HTML shows per currency (the JSON has all ten).
const TOP_SHOWN: usize = 5;

/// The view the template renders.
fn view(report: &Report, title: &str) -> Value {
    let currencies: Vec<Value> = report
        .by_currency
        .iter()
        .map(|(code, aging)| {
            let overdue: Decimal = aging.buckets[1..].iter().map(|b| b.amount).sum();
            json!({
                "code": code,
                "open": amount(aging.open.amount, code),
                "open_raw": aging.open.amount.to_string(),
                "open_count": aging.open.count,
                "overdue": amount(overdue, code),
                "overdue_raw": overdue.to_string(),
                "chart": aging_chart(code, &aging.buckets),
                "buckets": BUCKETS.iter().zip(&aging.buckets).map(|(name, b)| json!({
                    "name": name,
                    "count": b.count,
                    "amount": amount(b.amount, code),
                    "raw": b.amount.to_string(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let collection: Vec<Value> = report
        .collection
        .iter()
        .flat_map(|(code, windows)| {
            windows.iter().map(move |c| {
                json!({
                    "code": code,
                    "days": c.days,
                    "sales": amount(c.sales, code),
                    "received": amount(c.received, code),
                    "end": amount(c.receivables_end, code),
                    "dso": c.dso.map_or_else(|| "-".to_owned(), |d| format!("{d} days")),
                    "dso_raw": raw(c.dso),
                    "cei": share(c.cei),
                    "cei_raw": raw(c.cei),
                })
            })
        })
        .collect();
    let top: Vec<Value> = report
        .by_currency
        .iter()
        .flat_map(|(code, aging)| {
            aging.top_overdue.iter().take(TOP_SHOWN).map(move |t| {
                json!({
                    "name": t.customer_name,
                    "code": code,
                    "invoices": t.invoices,
                    "oldest": t.oldest_days,
                    "overdue": amount(t.overdue, code),
                })
            })
        })
        .collect();
    let effects: Vec<Value> = report
        .effectiveness
        .rows
        .iter()
        .map(|e| {
            json!({
                "step": e.step,
                "channel": channel(e),
                "channel_label": e.channel.as_deref().unwrap_or("no reminder"),
                "base": e.channel.is_none(),
                "invoices": e.invoices,
                "shares": e.share.iter().map(|s| json!({"raw": raw(*s), "shown": share(*s)})).collect::<Vec<_>>(),
                "median": median(e),
            })
        })
        .collect();
    let f = &report.in_flight;
    let mut flight: Vec<Value> = [
        ("Paused", "paused", f.paused),
        ("Disputed", "disputed", f.disputed),
        ("On a payment plan", "on_plan", f.on_plan),
        ("Promised to pay", "promised", f.promised),
        ("In collections", "in_collections", f.in_collections),
        (
            "Customers with a suppressed address",
            "suppressed",
            report.contacts.suppressed,
        ),
        (
            "Customers opted out of e-mail",
            "email_opt_outs",
            report.contacts.email_opt_outs,
        ),
        (
            "Customers opted out of SMS",
            "sms_opt_outs",
            report.contacts.sms_opt_outs,
        ),
    ]
    .iter()
    .map(|(label, key, n)| json!([label, key, n.to_string()]))
    .collect();
    for (code, t) in &report.unapplied {
        flight.push(json!([
            format!("Unapplied payments, {code}"),
            format!("unapplied-{code}"),
            format!("{code} {} ({})", amount(t.amount, code), t.count)
        ]));
    }
    json!({
        "title": title,
        "as_of": report.as_of.to_rfc3339(),
        "as_of_shown": report.as_of.format("%Y-%m-%d %H:%M UTC").to_string(),
        "currencies": currencies,
        "bucket_labels": BUCKET_LABELS,
        "collection": collection,
        "top": top,
        "effect_from": report.effectiveness.from.to_string(),
        "effect_to": report.effectiveness.to.to_string(),
        "effect_chart": effect_chart(report),
        "effects": effects,
        "flight": flight,
        "invalid": report.invalid_items,
    })
}

/// The report as one HTML document titled `title`.
pub fn html(report: &Report, title: &str) -> String {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("report.html", PAGE)
        .expect("report.html compiles (rendered by the tests)");
    env.get_template("report.html")
        .and_then(|t| {
            t.render(minijinja::value::Serde(
                json!({ "r": view(report, title), "css": CSS }),
            ))
        })
        .expect("the report's view has every name the template uses")
}
