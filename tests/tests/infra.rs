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
    let cases: [(&str, &[&str], &[&str]); 5] = [
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
        (
            "MailEventsFunction",
            dunning::config::MAIL_EVENTS_ENV_VARS,
            &["TABLE_NAME", "ESCALATION_TOPIC_ARN"],
        ),
        (
            "NextAtFunction",
            dunning::config::NEXT_AT_ENV_VARS,
            &["TABLE_NAME", "BUSINESS_TIMEZONE", "POLICY_FILE"],
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
    use dunning::aws::store::{
        CUSTOMER_INDEX, CUSTOMER_INDEX_PROJECTS, DUE_INDEX, PARTITION_KEY, SORT_KEY,
    };
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
    // The customer index: its keys and exactly what it projects.
    let at = text
        .find(&format!("IndexName: {CUSTOMER_INDEX}"))
        .expect("the template has the customer index");
    let block: String = text[at..].lines().take(9).collect::<Vec<_>>().join("\n");
    for line in [
        "AttributeName: customer_id\n              KeyType: HASH",
        "AttributeName: due_date\n              KeyType: RANGE",
        "ProjectionType: INCLUDE",
        &format!("NonKeyAttributes: [{}]", CUSTOMER_INDEX_PROJECTS.join(", ")),
    ] {
        assert!(
            block.contains(line),
            "the customer index lacks {line:?}: {block}"
        );
    }
    assert!(text.contains("- AttributeName: customer_id\n          AttributeType: S"));
    // The next-at index: sparse on (next_shard, next_at), the whole item;
    // and the stream that keeps it current, with the function it feeds.
    use dunning::aws::store::NEXT_AT_INDEX;
    use dunning::next_at::{ATTRIBUTE, SHARD_ATTRIBUTE};
    let at = text
        .find(&format!("IndexName: {NEXT_AT_INDEX}"))
        .expect("the template has the next-at index");
    let block: String = text[at..].lines().take(8).collect::<Vec<_>>().join("\n");
    for line in [
        format!("AttributeName: {SHARD_ATTRIBUTE}\n              KeyType: HASH"),
        format!("AttributeName: {ATTRIBUTE}\n              KeyType: RANGE"),
        "ProjectionType: ALL".to_owned(),
    ] {
        assert!(
            block.contains(&line),
            "the next-at index lacks {line:?}: {block}"
        );
    }
    for attr in [SHARD_ATTRIBUTE, ATTRIBUTE] {
        assert!(text.contains(&format!(
            "- AttributeName: {attr}\n          AttributeType: S"
        )));
    }
    assert!(text.contains("StreamSpecification:\n        StreamViewType: NEW_IMAGE"));
    for line in [
        "Stream: !GetAtt InvoiceTable.StreamArn",
        "BisectBatchOnFunctionError: true",
        "Destination: !GetAtt NextAtDeadLetterQueue.Arn",
        "Value: !GetAtt NextAtDeadLetterQueue.QueueName",
        "NEXT_AT_INDEX: \"true\"",
    ] {
        assert!(text.contains(line), "the template lacks {line:?}");
    }
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

/// Secrets are stored as their parameters are: no `!Sub` or `!Join` builds a
/// JSON (or any) text around a value, which a `"` or `\` in it would break.
#[test]
fn every_secret_string_is_a_parameter_as_it_is() {
    let text = template();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("SecretString:"))
        .collect();
    assert!(lines.len() >= 3, "{lines:?}");
    for line in lines {
        let value = line.trim_start().trim_start_matches("SecretString:").trim();
        assert!(
            value.starts_with("!Ref ") && value.split_whitespace().count() == 2,
            "{line}"
        );
    }
}

/// Each function's granted (action, resource) pairs, read from its
/// `Policies:` by indentation: a statement's `Action:` list and its
/// `Resource:` (a multi-line `!If` joined into one expression).
fn grants(text: &str) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let mut out: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let (mut resource, mut in_policies, mut actions) = (String::new(), false, Vec::<String>::new());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        i += 1;
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if indent(line) == 2 && trimmed.ends_with(':') {
            resource = trimmed.trim_end_matches(':').to_owned();
            in_policies = false;
        } else if indent(line) == 6 {
            in_policies = trimmed == "Policies:";
        } else if in_policies {
            let body = trimmed.trim_start_matches("- ");
            if let Some(list) = body.strip_prefix("Action:") {
                actions = list
                    .trim()
                    .trim_matches(|c| c == '[' || c == ']')
                    .split(',')
                    .map(|a| a.trim().to_owned())
                    .collect();
            } else if let Some(value) = body.strip_prefix("Resource:") {
                let mut value = value.trim().to_owned();
                if value == "!If" {
                    // The branches, one per deeper line.
                    let at = indent(line);
                    while i < lines.len() && indent(lines[i]) > at {
                        value.push(' ');
                        value.push_str(lines[i].trim());
                        i += 1;
                    }
                }
                for action in &actions {
                    out.entry(resource.clone())
                        .or_default()
                        .insert((action.clone(), value.clone()));
                }
            }
        }
    }
    out
}

/// The template's expression for each resource an operation is declared on.
fn expression(resource: dunning::aws::operations::Resource) -> &'static str {
    use dunning::aws::operations::Resource::*;
    match resource {
        Table => "!GetAtt InvoiceTable.Arn",
        DueIndex => r#"!Sub "${InvoiceTable.Arn}/index/by_status_due""#,
        CustomerIndex => r#"!Sub "${InvoiceTable.Arn}/index/by_customer_due""#,
        NextAtIndex => r#"!Sub "${InvoiceTable.Arn}/index/by_next_at""#,
        NextAtDeadLetters => "!GetAtt NextAtDeadLetterQueue.Arn",
        SenderIdentities => {
            r#"!Sub "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*""#
        }
        ConfigurationSet => {
            r#"!Sub "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/${ReminderConfigurationSet}""#
        }
        EscalationTopic => "!Ref EscalationTopic",
        PhoneNumbers => r#""*""#,
        WorkQueue => "!GetAtt WorkQueue.Arn",
        WebhookSecrets => {
            "!If - HasStripeWebhookSecrets - [!Ref WebhookSecretStore, !Ref StripeWebhookSecretStore] - [!Ref WebhookSecretStore]"
        }
        StripeSecret => "!Ref StripeSecretStore",
    }
}

/// IAM matches the code: each function's role grants exactly the operations
/// `aws::operations` declares for it, on those resources, and nothing else
/// (the roles SAM adds itself, logs, X-Ray and the SQS poller, aside); and
/// every SDK call in `shared/src/aws/` is declared for a function or as the
/// admin CLI's own.
#[test]
fn each_role_grants_exactly_what_its_function_calls() {
    use dunning::aws::operations::{
        ADMIN_ONLY, DUNNING_RUN, MAIL_EVENTS, NEXT_AT, PAYMENT_WEBHOOK, PAY_PAGE,
    };
    let granted = grants(&template());
    for (function, declared) in [
        ("DunningRunFunction", DUNNING_RUN),
        ("PaymentWebhookFunction", PAYMENT_WEBHOOK),
        ("PayPageFunction", PAY_PAGE),
        ("MailEventsFunction", MAIL_EVENTS),
        ("NextAtFunction", NEXT_AT),
    ] {
        let want: BTreeSet<(String, String)> = declared
            .iter()
            .map(|o| (o.action.to_owned(), expression(o.resource).to_owned()))
            .collect();
        let have = granted.get(function).cloned().unwrap_or_default();
        let extra: Vec<_> = have.difference(&want).collect();
        let missing: Vec<_> = want.difference(&have).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "{function}: granted but not called {extra:?}; called but not granted {missing:?}"
        );
        // "*" only for SMS to phone numbers.
        for (action, resource) in &have {
            assert!(
                resource != r#""*""#
                    || action == "sns:Publish"
                    || action == "sns:ListPhoneNumbersOptedOut",
                "{function}: {action} on *"
            );
        }
    }
    // Every SDK call the adapters make is declared.
    let declared: BTreeSet<&str> = [DUNNING_RUN, PAYMENT_WEBHOOK, PAY_PAGE, MAIL_EVENTS, NEXT_AT]
        .iter()
        .flat_map(|ops| ops.iter().flat_map(|o| o.sdk_calls.iter().copied()))
        .chain(ADMIN_ONLY.iter().copied())
        .collect();
    let dir = format!("{}/../shared/src/aws", env!("CARGO_MANIFEST_DIR"));
    let mut called = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text: String = std::fs::read_to_string(&path)
            .unwrap()
            .split_whitespace()
            .collect();
        for marker in [".client.", ".client().", "Client::new(sdk)."] {
            for (at, _) in text.match_indices(marker) {
                let rest = &text[at + marker.len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if rest[name.len()..].starts_with("()") && !name.is_empty() && name != "clone" {
                    called.insert(name);
                }
            }
        }
    }
    for needed in [
        "query",
        "send_email",
        "publish",
        "transact_write_items",
        "get_secret_value",
    ] {
        assert!(
            called.contains(needed),
            "the scan found no {needed}: {called:?}"
        );
    }
    let undeclared: Vec<_> = called
        .iter()
        .filter(|c| !declared.contains(c.as_str()))
        .collect();
    assert!(
        undeclared.is_empty(),
        "SDK calls no function declares: {undeclared:?}"
    );
}
