//! The deployment template agrees with the code: each function's environment
//! names only variables its configuration reads, sets every one it requires,
//! and the table has the keys and index the store uses.

use std::collections::{BTreeMap, BTreeSet};

fn template() -> String {
    std::fs::read_to_string(format!(
        "{}/../infra/template.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Resource name -> environment variable names, read from the YAML by indentation.
fn environments(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let (mut resource, mut in_vars, mut vars_indent) = (String::new(), false, 0);
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if indent == 2 && trimmed.ends_with(':') {
            resource = trimmed.trim_end_matches(':').to_owned();
            in_vars = false;
        } else if trimmed == "Variables:" {
            in_vars = true;
            vars_indent = indent;
        } else if in_vars && indent > vars_indent {
            if let Some((key, _)) = trimmed.split_once(':') {
                out.entry(resource.clone())
                    .or_default()
                    .insert(key.to_owned());
            }
        } else {
            in_vars = false;
        }
    }
    out
}

#[test]
fn each_function_sets_only_variables_its_config_reads_and_all_it_requires() {
    let envs = environments(&template());
    let cases: [(&str, &[&str], &[&str]); 3] = [
        (
            "DunningRunFunction",
            dunning::config::ENV_VARS,
            &[
                "TABLE_NAME",
                "SENDER_EMAIL",
                "BUSINESS_NAME",
                "BUSINESS_TIMEZONE",
                "PAY_LINK_BASE_URL",
                "ESCALATION_TOPIC_ARN",
            ],
        ),
        (
            "PayPageFunction",
            dunning::config::PAY_PAGE_ENV_VARS,
            &[
                "TABLE_NAME",
                "BUSINESS_NAME",
                "BUSINESS_TIMEZONE",
                "PAY_LINK_BASE_URL",
                "STRIPE_SECRET_ARN",
                "STRIPE_PUBLISHABLE_KEY",
            ],
        ),
        (
            "PaymentWebhookFunction",
            dunning::config::WEBHOOK_ENV_VARS,
            &["TABLE_NAME", "WEBHOOK_SECRETS_ARN"],
        ),
    ];
    for (function, reads, required) in cases {
        let set = envs
            .get(function)
            .unwrap_or_else(|| panic!("{function} has no environment in the template"));
        for var in set {
            assert!(
                reads.contains(&var.as_str()),
                "{function} sets {var}, which its configuration never reads"
            );
        }
        for var in required {
            assert!(set.contains(*var), "{function} does not set {var}");
        }
        for plaintext in [
            "STRIPE_SECRET_KEY",
            "WEBHOOK_SECRETS",
            "STRIPE_WEBHOOK_SECRETS",
        ] {
            assert!(
                !set.contains(plaintext),
                "{function}: {plaintext} must come from Secrets Manager, not the environment"
            );
        }
    }
}

#[test]
fn the_template_table_has_the_keys_and_index_the_store_uses() {
    let text = template();
    use dunning::aws::store::{DUE_INDEX, PARTITION_KEY, SORT_KEY};
    for (attr, kind) in [
        (PARTITION_KEY, "HASH"),
        (SORT_KEY, "RANGE"),
        ("status", "HASH"),
        ("due_date", "RANGE"),
    ] {
        let key = format!("- AttributeName: {attr}\n");
        assert!(
            text.contains(&key),
            "the template lacks key attribute {attr}"
        );
        let pos = text
            .find(&format!(
                "AttributeName: {attr}\n              KeyType: {kind}"
            ))
            .or_else(|| text.find(&format!("AttributeName: {attr}\n          KeyType: {kind}")));
        assert!(pos.is_some(), "{attr} is not a {kind} key in the template");
    }
    assert!(text.contains(&format!("IndexName: {DUE_INDEX}")));
    assert!(text.contains("ProjectionType: ALL"));
}

/// The metric names one Embedded Metric Format record carries.
fn emitted(record: &serde_json::Value) -> BTreeSet<String> {
    record["_aws"]["CloudWatchMetrics"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["Metrics"].as_array().unwrap())
        .filter_map(|m| m["Name"].as_str().map(str::to_owned))
        .collect()
}

/// The metrics the template's alarms watch under dimension value `function`.
fn watched(text: &str, function: &str) -> BTreeSet<String> {
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    for line in text.lines() {
        let resource_start = line.starts_with("  ") && !line[2..].starts_with(' ');
        if resource_start || blocks.is_empty() {
            blocks.push(Vec::new());
        }
        blocks.last_mut().unwrap().push(line);
    }
    blocks
        .iter()
        .filter(|b| b.iter().any(|l| l.trim() == format!("Value: {function}")))
        .filter_map(|block| {
            block
                .iter()
                .find_map(|l| l.trim().strip_prefix("MetricName: "))
                .map(|n| n.trim().to_owned())
        })
        .collect()
}

/// The alarms on the webhook's and the run's own metrics watch names their
/// Embedded Metric Format records really carry.
#[test]
fn the_alarms_watch_metrics_the_functions_emit() {
    let text = template();
    let answer = dunning::webhook::Answer {
        status: 200,
        body: serde_json::json!({"result": "applied"}),
    };
    let now = chrono::Utc::now();
    let webhook = emitted(&dunning::webhook::answer_metrics(&answer, "Dunning", now));
    let run = emitted(&dunning::summary::RunSummary::default().emf("Dunning", now));
    for (function, emitted, must) in [
        (
            "payment-webhook",
            webhook,
            ["WebhookServerErrors", "UnappliedPayments"],
        ),
        ("dunning-run", run, ["RunFailures", "SystemicFailures"]),
    ] {
        let watched = watched(&text, function);
        assert!(
            must.iter().all(|m| watched.contains(*m)),
            "{function}: {watched:?}"
        );
        for name in &watched {
            assert!(
                emitted.contains(name),
                "{name} is alarmed on but never emitted"
            );
        }
    }
}
