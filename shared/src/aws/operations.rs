//! Every AWS operation each function's code can call, in one place: the
//! template's IAM statements must grant exactly these, on these resources
//! (`tests/tests/infra.rs` checks both ways, and that every SDK call in
//! `aws/` is declared here). A new SDK call is a new line here and a new
//! grant, or the tests fail.

/// What an operation is allowed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    /// The invoice table (its items: invoices, ledger, payments, links, run state).
    Table,
    /// The due index (`by_status_due`).
    DueIndex,
    /// The customer index (`by_customer_due`).
    CustomerIndex,
    /// The next-at index (`by_next_at`).
    NextAtIndex,
    /// The `next-at` function's dead-letter queue: Lambda's event source
    /// mapping sends a batch that keeps failing there, with the role's grant.
    NextAtDeadLetters,
    /// The account's SES identities (the sender's).
    SenderIdentities,
    /// The template's SES configuration set (`ReminderConfigurationSet`).
    ConfigurationSet,
    /// The escalation topic.
    EscalationTopic,
    /// Phone numbers: SMS to a number, and the account's opted-out list,
    /// have no ARN, so IAM can only say `*`.
    PhoneNumbers,
    /// The worker queue.
    WorkQueue,
    /// The webhook's signing secrets (and Stripe's, when set).
    WebhookSecrets,
    /// The pay page's Stripe key.
    StripeSecret,
}

/// One IAM action on one resource, and the SDK call (snake case, as in the
/// code) that needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    pub action: &'static str,
    pub resource: Resource,
    pub sdk_calls: &'static [&'static str],
}

const fn op(
    action: &'static str,
    resource: Resource,
    sdk_calls: &'static [&'static str],
) -> Operation {
    Operation {
        action,
        resource,
        sdk_calls,
    }
}

/// `dunning-run` (scheduled runs and workers): reads the due index, the
/// run state and the customer records of each page (batched), claims (a transaction of updates), records outcomes, stores
/// pay links, sends email and SMS, publishes escalations, queues workers.
pub const DUNNING_RUN: &[Operation] = &[
    op("dynamodb:Query", Resource::DueIndex, &["query"]),
    op("dynamodb:Query", Resource::NextAtIndex, &["query"]),
    // The wake records of plans and promises (`#wake` only, by a condition).
    op("dynamodb:Query", Resource::Table, &["query"]),
    op("dynamodb:GetItem", Resource::Table, &["get_item"]),
    op(
        "dynamodb:BatchGetItem",
        Resource::Table,
        &["batch_get_item"],
    ),
    op(
        "dynamodb:PutItem",
        Resource::Table,
        &["put_item", "transact_write_items"],
    ),
    op(
        "dynamodb:UpdateItem",
        Resource::Table,
        &["update_item", "transact_write_items"],
    ),
    op("ses:SendEmail", Resource::SenderIdentities, &["send_email"]),
    op("ses:SendEmail", Resource::ConfigurationSet, &["send_email"]),
    op("sns:Publish", Resource::EscalationTopic, &["publish"]),
    op("sns:Publish", Resource::PhoneNumbers, &["publish"]),
    // A full read syncs SNS's opted-out numbers into customer records.
    op(
        "sns:ListPhoneNumbersOptedOut",
        Resource::PhoneNumbers,
        &["list_phone_numbers_opted_out"],
    ),
    op(
        "sqs:SendMessage",
        Resource::WorkQueue,
        &["send_message_batch"],
    ),
];

/// `payment-webhook`: reads the invoice and the provider references, commits
/// payments (a transaction of puts and updates), keeps unapplied money,
/// publishes opened disputes, reads its secrets, sends receipts.
pub const PAYMENT_WEBHOOK: &[Operation] = &[
    op("dynamodb:GetItem", Resource::Table, &["get_item"]),
    op(
        "dynamodb:PutItem",
        Resource::Table,
        &["put_item", "transact_write_items"],
    ),
    op(
        "dynamodb:UpdateItem",
        Resource::Table,
        &["update_item", "transact_write_items"],
    ),
    op(
        "secretsmanager:GetSecretValue",
        Resource::WebhookSecrets,
        &["get_secret_value"],
    ),
    op("sns:Publish", Resource::EscalationTopic, &["publish"]),
    op("ses:SendEmail", Resource::SenderIdentities, &["send_email"]),
];

/// `pay-page`: reads links and invoices, a customer's invoices and their
/// payment records for a statement, writes its intent records and an
/// unsubscribe's customer record, reads the Stripe key.
pub const PAY_PAGE: &[Operation] = &[
    op("dynamodb:GetItem", Resource::Table, &["get_item"]),
    op("dynamodb:Query", Resource::CustomerIndex, &["query"]),
    op("dynamodb:Query", Resource::Table, &["query"]),
    op(
        "dynamodb:BatchGetItem",
        Resource::Table,
        &["batch_get_item"],
    ),
    op("dynamodb:PutItem", Resource::Table, &["put_item"]),
    op(
        "secretsmanager:GetSecretValue",
        Resource::StripeSecret,
        &["get_secret_value"],
    ),
];

/// `mail-events`: notes SES events on ledger records and settles a claimed
/// one (updates), reads and changes customer records (get, conditional
/// put), releases and marks the invoice, tells people of a bounce; for a
/// reply, reads its link and invoice (batched) and forwards it (SES).
pub const MAIL_EVENTS: &[Operation] = &[
    op("dynamodb:GetItem", Resource::Table, &["get_item"]),
    op(
        "dynamodb:BatchGetItem",
        Resource::Table,
        &["batch_get_item"],
    ),
    op("dynamodb:PutItem", Resource::Table, &["put_item"]),
    op("dynamodb:UpdateItem", Resource::Table, &["update_item"]),
    op("sns:Publish", Resource::EscalationTopic, &["publish"]),
    op("ses:SendEmail", Resource::SenderIdentities, &["send_email"]),
];

/// `next-at` (the table's stream): reads the run state and the records of
/// customers whose invoices inherit their settings (batched), a changed
/// customer's open invoices (the customer index, then batched), and writes
/// each invoice's `next_at` (a conditional update).
pub const NEXT_AT: &[Operation] = &[
    op("dynamodb:GetItem", Resource::Table, &["get_item"]),
    op(
        "dynamodb:BatchGetItem",
        Resource::Table,
        &["batch_get_item"],
    ),
    op("dynamodb:UpdateItem", Resource::Table, &["update_item"]),
    op("dynamodb:Query", Resource::CustomerIndex, &["query"]),
    op("sqs:SendMessage", Resource::NextAtDeadLetters, &[]),
];

/// SDK calls only `dunning-admin` makes, with the operator's own
/// credentials (no role in the template): table and identity set-up, the
/// audit's and the retry's Scans, the topic for local runs.
pub const ADMIN_ONLY: &[&str] = &[
    "create_table",
    "scan",
    "create_email_identity",
    "create_topic",
];
