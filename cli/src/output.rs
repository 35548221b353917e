//! How a run's summary is printed: a table, or one line (`--brief`).

use dunning::summary::RunSummary;

pub fn print_brief(s: &RunSummary) {
    let as_of = s
        .as_of
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    let sent: Vec<String> = s
        .steps
        .iter()
        .flat_map(|(step, channels)| channels.iter().map(move |(c, o)| (step, c, o.sent)))
        .filter(|(_, _, n)| *n > 0)
        .map(|(step, c, n)| format!("{step}/{c} {n}"))
        .collect();
    let waiting: Vec<String> = s.skipped.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let stopped: Vec<String> = s
        .systemic
        .iter()
        .map(|(scope, stop)| format!("{scope} after {} ({} waiting)", stop.code, stop.messages))
        .collect();
    println!(
        "{as_of}: sent {}{}{}{}{}",
        s.total_sent(),
        if sent.is_empty() {
            String::new()
        } else {
            format!(" ({})", sent.join(", "))
        },
        if s.escalated > 0 {
            format!(", escalated {}", s.escalated)
        } else {
            String::new()
        },
        if waiting.is_empty() {
            String::new()
        } else {
            format!("; not sent: {}", waiting.join(", "))
        },
        if stopped.is_empty() {
            String::new()
        } else {
            format!("; STOPPED: {}", stopped.join(", "))
        },
    );
}

pub fn print_summary(s: &RunSummary) {
    let as_of = s.as_of.map(|t| t.to_rfc3339()).unwrap_or_default();
    let mode = if s.dry_run { " (dry run)" } else { "" };
    println!("run {} as of {as_of}{mode}", s.run_id);
    println!(
        "read {} open invoices in the window ({} scanned, {} pages); {} due a reminder",
        s.items_read, s.scanned_count, s.pages, s.eligible
    );
    println!(
        "  {:<14} {:<8} {:>6} {:>7} {:>6} {:>8} {:>8}",
        "step", "channel", "sent", "failed", "retry", "skipped", "planned"
    );
    for (step, channels) in &s.steps {
        for (channel, o) in channels {
            println!(
                "  {step:<14} {channel:<8} {:>6} {:>7} {:>6} {:>8} {:>8}",
                o.sent, o.failed, o.retry, o.skipped, o.planned
            );
        }
    }
    for (scope, stop) in &s.systemic {
        println!(
            "STOPPED {scope} for this run after {} (systemic): {} messages wait in retry for the next run",
            stop.code, stop.messages
        );
    }
    fn line<K: std::fmt::Display>(label: &str, map: &std::collections::BTreeMap<K, u64>) {
        if !map.is_empty() {
            let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k} {v}")).collect();
            println!("{label}: {}", parts.join(", "));
        }
    }
    line("held", &s.held);
    line("skipped", &s.skipped);
    line("failed", &s.failed);
    line("invalid", &s.invalid);
    for item in &s.invalid_items {
        println!(
            "  invalid item {}: {}",
            item.invoice_id.as_deref().unwrap_or("<no id>"),
            item.reason
        );
    }
}
