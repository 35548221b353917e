//! The report as plain text: the terminal's table (at most 100 columns)
//! and the weekly e-mail's text part.

use rust_decimal::Decimal;

use super::{Effect, Report, BUCKETS, WITHIN};
use crate::money::{Currency, Money};

/// The widest line [`table`] writes.
pub const WIDTH: usize = 100;

/// An amount with its currency's digits and grouping, without its code.
pub fn amount(value: Decimal, code: &str) -> String {
    let Some(currency) = Currency::parse(code) else {
        return value.to_string();
    };
    let shown = Money::new(value, currency).to_string();
    shown
        .strip_prefix(code)
        .map_or(shown.clone(), |s| s.trim().to_owned())
}

/// A share as `33.3%`, or `-` when there is nothing to share.
pub fn share(v: Option<Decimal>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v}%"))
}

/// The median days as `5 d`, or `-` when under half paid.
pub fn median(e: &Effect) -> String {
    e.median_days
        .map_or_else(|| "-".to_owned(), |d| format!("{d} d"))
}

/// A step's row label: the channel, or "no reminder" for the baseline.
pub fn channel(e: &Effect) -> &str {
    e.channel.as_deref().unwrap_or("none")
}

fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

pub fn table(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Receivables by days overdue, as of {}\n",
        report.as_of.to_rfc3339()
    ));
    out.push_str(&format!(
        "{:<4}{:>12}{:>12}{:>12}{:>12}{:>12}{:>12}{:>14}\n",
        "", "not due", "1-30", "31-60", "61-90", "91-120", "over 120", "open"
    ));
    for (code, aging) in &report.by_currency {
        let mut line = format!("{code:<4}");
        for total in &aging.buckets {
            line.push_str(&format!("{:>12}", amount(total.amount, code)));
        }
        line.push_str(&format!("{:>14}\n", amount(aging.open.amount, code)));
        out.push_str(&line);
        let mut counts = format!("{:<4}", "");
        for total in &aging.buckets {
            counts.push_str(&format!("{:>12}", format!("({})", total.count)));
        }
        counts.push_str(&format!("{:>14}\n", format!("({})", aging.open.count)));
        out.push_str(&counts);
    }
    for (code, aging) in &report.by_currency {
        if aging.top_overdue.is_empty() {
            continue;
        }
        out.push_str(&format!("\nMost overdue, {code}\n"));
        for c in &aging.top_overdue {
            out.push_str(&format!(
                "  {:<30} {:>16}  {:>3} invoice(s), oldest {} days\n",
                clip(&c.customer_id, 30),
                amount(c.overdue, code),
                c.invoices,
                c.oldest_days
            ));
        }
    }
    if !report.collection.is_empty() {
        out.push_str(&format!(
            "\nCollection{:>8}{:>16}{:>16}{:>16}{:>10}{:>10}\n",
            "window", "sales", "received", "owed at end", "DSO", "CEI"
        ));
        for (code, windows) in &report.collection {
            for c in windows {
                out.push_str(&format!(
                    "{code:<10}{:>8}{:>16}{:>16}{:>16}{:>10}{:>10}\n",
                    format!("{} d", c.days),
                    amount(c.sales, code),
                    amount(c.received, code),
                    amount(c.receivables_end, code),
                    c.dso.map_or_else(|| "-".to_owned(), |d| format!("{d} d")),
                    share(c.cei),
                ));
            }
        }
    }
    let e = &report.effectiveness;
    out.push_str(&format!(
        "\nWhich reminder gets paid: reminders sent {} to {}\n",
        e.from, e.to
    ));
    out.push_str(&format!(
        "  {:<24} {:<8}{:>10}{:>12}{:>12}{:>12}{:>10}\n",
        "step",
        "channel",
        "invoices",
        format!("paid <{}d", WITHIN[0]),
        format!("paid <{}d", WITHIN[1]),
        format!("paid <{}d", WITHIN[2]),
        "median"
    ));
    if e.rows.is_empty() {
        out.push_str("  (no reminders in these days yet)\n");
    }
    for row in &e.rows {
        out.push_str(&format!(
            "  {:<24} {:<8}{:>10}{:>12}{:>12}{:>12}{:>10}\n",
            clip(&row.step, 24),
            channel(row),
            row.invoices,
            share(row.share[0]),
            share(row.share[1]),
            share(row.share[2]),
            median(row),
        ));
    }
    let f = &report.in_flight;
    out.push_str(&format!(
        "\nIn flight: paused {}, disputed {}, on a plan {}, promised {}, in collections {}\n",
        f.paused, f.disputed, f.on_plan, f.promised, f.in_collections
    ));
    let unapplied: Vec<String> = report
        .unapplied
        .iter()
        .map(|(code, t)| format!("{code} {} ({})", amount(t.amount, code), t.count))
        .collect();
    out.push_str(&format!(
        "Unapplied payments: {}\n",
        if unapplied.is_empty() {
            "none".to_owned()
        } else {
            unapplied.join(", ")
        }
    ));
    let c = &report.contacts;
    out.push_str(&format!(
        "Contacts: {} customer(s) with a suppressed address, {} opted out of e-mail, {} of SMS\n",
        c.suppressed, c.email_opt_outs, c.sms_opt_outs
    ));
    if report.invalid_items > 0 {
        out.push_str(&format!(
            "{} open item(s) are not valid invoices and are left out (dunning-admin audit lists them)\n",
            report.invalid_items
        ));
    }
    out
}

/// The report as CSV, one section after another, each row naming its
/// section: `section,currency,key,amount,count,value`.
pub fn csv(report: &Report) -> Result<String, ::csv::Error> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(["section", "currency", "key", "amount", "count", "value"])?;
    for (code, aging) in &report.by_currency {
        for (name, total) in BUCKETS.iter().zip(&aging.buckets) {
            let (amount, count) = (total.amount.to_string(), total.count.to_string());
            w.write_record(["aging", code, name, &amount, &count, ""])?;
        }
        let (amount, count) = (aging.open.amount.to_string(), aging.open.count.to_string());
        w.write_record(["aging", code, "open", &amount, &count, ""])?;
        for c in &aging.top_overdue {
            let (amount, count) = (c.overdue.to_string(), c.invoices.to_string());
            let oldest = c.oldest_days.to_string();
            w.write_record([
                "top_overdue",
                code,
                &c.customer_id,
                &amount,
                &count,
                &oldest,
            ])?;
        }
    }
    let opt = |v: Option<Decimal>| v.map(|v| v.to_string()).unwrap_or_default();
    for (code, windows) in &report.collection {
        for c in windows {
            let days = format!("{}d", c.days);
            for (key, amount, value) in [
                ("sales", c.sales.to_string(), String::new()),
                ("received", c.received.to_string(), String::new()),
                (
                    "receivables_end",
                    c.receivables_end.to_string(),
                    String::new(),
                ),
                ("current_end", c.current_end.to_string(), String::new()),
                ("dso", String::new(), opt(c.dso)),
                ("cei", String::new(), opt(c.cei)),
            ] {
                let key = format!("{days}_{key}");
                w.write_record(["collection", code, &key, &amount, "", &value])?;
            }
        }
    }
    for e in &report.effectiveness.rows {
        let key = format!("{}#{}", e.step, channel(e));
        w.write_record(["effectiveness", "", &key, "", &e.invoices.to_string(), ""])?;
        for (k, (paid, s)) in WITHIN.iter().zip(e.paid_within.iter().zip(&e.share)) {
            let key = format!("{}#{}#paid_within_{k}d", e.step, channel(e));
            w.write_record(["effectiveness", "", &key, "", &paid.to_string(), &opt(*s)])?;
        }
        let key = format!("{}#{}#median_days", e.step, channel(e));
        let m = e.median_days.map(|d| d.to_string()).unwrap_or_default();
        w.write_record(["effectiveness", "", &key, "", "", &m])?;
    }
    let f = &report.in_flight;
    let c = &report.contacts;
    for (name, n) in [
        ("paused", f.paused),
        ("disputed", f.disputed),
        ("on_plan", f.on_plan),
        ("promised", f.promised),
        ("in_collections", f.in_collections),
        ("suppressed", c.suppressed),
        ("email_opt_outs", c.email_opt_outs),
        ("sms_opt_outs", c.sms_opt_outs),
        ("invalid_items", report.invalid_items),
    ] {
        w.write_record(["in_flight", "", name, "", &n.to_string(), ""])?;
    }
    for (code, t) in &report.unapplied {
        let (amount, count) = (t.amount.to_string(), t.count.to_string());
        w.write_record(["in_flight", code, "unapplied", &amount, &count, ""])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes).expect("CSV of UTF-8 text"))
}
