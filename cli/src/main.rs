//! `dunning-admin`: operate the dunning table from a terminal, on the same
//! library code as the Lambdas. AWS access comes from the usual environment
//! (profile, region, `AWS_ENDPOINT_URL` for the local emulator), and only the
//! commands that talk to AWS load it: `sign-webhook`, `verify-webhook` and
//! `preview --file` run offline. One module per command; `output` prints
//! a run's summary.

mod audit;
mod customer;
mod edit;
mod history;
mod import;
mod links;
mod output;
mod payments;
mod preview;
mod report;
mod retry;
mod run;
mod setup;
mod unapplied;
mod webhook;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use dunning::aws::DynamoStore;

#[derive(Parser)]
#[command(
    name = "dunning-admin",
    version,
    about = "Operate the invoice dunning table"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the invoice table with its due index (on-demand billing).
    CreateTable {
        #[arg(long, env = "TABLE_NAME")]
        table: String,
    },
    /// Create the SNS topic escalation events go to; prints its ARN (for ESCALATION_TOPIC_ARN).
    CreateTopic {
        #[arg(default_value = "dunning-escalations")]
        name: String,
    },
    /// Register SENDER_EMAIL as an SES identity (on AWS this sends a verification email).
    VerifySender {
        #[arg(long, env = "SENDER_EMAIL")]
        sender: String,
    },
    /// Import invoices from CSV (header row) or JSON lines: new ones are
    /// created, existing ones updated with what the file changes (amount, due
    /// date, contacts, status, locale, timezone, pay_url, ...; after any
    /// reminder in flight, in history); bad rows are reported and skipped.
    Import {
        file: PathBuf,
        /// Show what would be created and changed, writing nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, env = "TABLE_NAME")]
        table: String,
        /// File format; by default taken from the extension (.csv, .jsonl/.ndjson).
        #[arg(long)]
        format: Option<Format>,
    },
    /// Run the reminders once, as the scheduled function does (configuration from the environment).
    Run(run::Args),
    /// Print a `Dunning-Signature` header for a webhook body, signed with the
    /// first secret in WEBHOOK_SECRETS: for testing a deployed or local webhook.
    SignWebhook {
        /// The exact body that will be sent.
        file: PathBuf,
        #[arg(long, env = "WEBHOOK_SECRETS", hide_env_values = true)]
        secrets: String,
    },
    /// Check a `Dunning-Signature`/`Stripe-Signature` header over a body with
    /// WEBHOOK_SECRETS, as the webhook does; exits non-zero when it fails.
    VerifyWebhook {
        file: PathBuf,
        #[arg(long)]
        header: String,
        #[arg(long, env = "WEBHOOK_SECRETS", hide_env_values = true)]
        secrets: String,
        #[arg(long, default_value_t = 300)]
        tolerance: i64,
    },
    /// Render the reminder an invoice would get, without sending anything:
    /// from the table (`--invoice-id`, with the same environment as `run`) or
    /// a JSON file (`--file`, offline: BUSINESS_NAME, BUSINESS_TIMEZONE and the
    /// PAY_LINK_* variables), for any step, locale and channel.
    Preview(preview::Args),
    /// With the next-at index (NEXT_AT_INDEX): make the next run read every
    /// open invoice and write each one's next_at again (after the next-at
    /// function's dead-letter alarm, or a change the policy's fingerprint
    /// does not see, such as a template directory).
    Reschedule {
        #[arg(long, env = "TABLE_NAME")]
        table: String,
    },
    /// List every invoice item a run cannot use (malformed, or without a usable
    /// due date), by a parallel Scan of the whole table. On demand, not daily.
    Audit {
        #[arg(long, env = "TABLE_NAME")]
        table: String,
        #[arg(long, default_value_t = 4)]
        segments: i32,
        #[arg(long)]
        json: bool,
    },
    /// Record money received outside any provider (a bank transfer, a cheque):
    /// applied as the webhook applies payments, once per --reference.
    RecordPayment {
        invoice_id: String,
        #[arg(long, required_unless_present = "reverse")]
        amount: Option<String>,
        #[arg(long, required_unless_present = "reverse")]
        currency: Option<String>,
        /// Your reference for the money (e.g. the bank's); recording it again changes nothing.
        #[arg(long)]
        reference: String,
        /// Take back the payment recorded with this reference (recorded by
        /// mistake): its amount comes off `amount_paid`, once.
        #[arg(long)]
        reverse: bool,
        /// When the money arrived (RFC 3339; default now).
        #[arg(long)]
        paid_at: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long, env = "TABLE_NAME")]
        table: String,
    },
    /// List the payments the webhook kept aside instead of applying them (an
    /// unknown or void invoice, another currency, an invalid invoice item, an
    /// overpayment's excess), oldest first.
    Unapplied {
        /// Also those applied since.
        #[arg(long)]
        all: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[arg(long, env = "TABLE_NAME")]
        table: String,
    },
    /// Apply an unapplied payment (its id from `unapplied`) to an invoice,
    /// once; an overpayment's excess is moved off the invoice it overpaid.
    ApplyUnapplied {
        id: String,
        #[arg(long)]
        invoice: String,
        #[arg(long, env = "TABLE_NAME")]
        table: String,
    },
    /// Dismiss an unapplied payment (refunded outside, not ours): no longer
    /// open, never applied.
    DismissUnapplied {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long, env = "TABLE_NAME")]
        table: String,
    },
    /// Claim the event id of every payment recorded before event claims
    /// existed, so that such an id sent again for another invoice is refused
    /// (run once after upgrading; claims already there are left alone).
    BackfillClaims {
        /// Count what would be claimed, writing nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, env = "TABLE_NAME")]
        table: String,
    },
    /// After a fix (a permission, the SES account, a template): put the failed
    /// ledger records of one step and channel back to be sent by the next
    /// run, printing each; records put back are no longer failed, so running
    /// it again changes nothing.
    Retry {
        /// The policy's step name (e.g. due_today).
        #[arg(long)]
        step: String,
        /// email or sms.
        #[arg(long)]
        channel: String,
        /// Only records that failed at or after this instant (RFC 3339).
        #[arg(long)]
        since: chrono::DateTime<chrono::Utc>,
        /// Only records that failed with this error code (e.g. AccessDeniedException).
        #[arg(long)]
        reason: Option<String>,
        /// Print what would be put back, writing nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, env = "TABLE_NAME")]
        table: String,
    },
    /// Show or change a customer's record: channel opt-outs, suppressed
    /// addresses and a pause, each with its source and instant.
    Customer {
        #[command(subcommand)]
        action: CustomerAction,
    },
    /// Revoke a pay link (as the customer received it, or its token): its
    /// page answers 410 from now on. A second revocation keeps the first instant.
    RevokeLink {
        link: String,
        #[arg(long, env = "TABLE_NAME")]
        table: String,
    },
    /// Pause an invoice's reminders (or, with --customer, every invoice of a
    /// customer's) until a date (through that day) or an RFC 3339 instant.
    Pause {
        #[arg(required_unless_present = "customer", conflicts_with = "customer")]
        invoice_id: Option<String>,
        #[arg(long)]
        customer: Option<String>,
        #[arg(long)]
        until: String,
        #[command(flatten)]
        who: edit::Who,
    },
    /// End a pause (of an invoice, or with --customer of a customer).
    Resume {
        #[arg(required_unless_present = "customer", conflicts_with = "customer")]
        invoice_id: Option<String>,
        #[arg(long)]
        customer: Option<String>,
        #[command(flatten)]
        who: edit::Who,
    },
    /// Mark an invoice disputed (--reason required): no reminders until resolved.
    Dispute {
        invoice_id: String,
        #[command(flatten)]
        who: edit::Who,
    },
    /// Resolve a dispute: the ladder goes on where it was.
    Resolve {
        invoice_id: String,
        #[command(flatten)]
        who: edit::Who,
    },
    /// Void an invoice: nothing more is sent for it.
    Void {
        invoice_id: String,
        #[command(flatten)]
        who: edit::Who,
    },
    /// Give an invoice a later due date: the ladder starts again for it
    /// (its pre-due, due-day and overdue steps); what was sent stays in history.
    Extend {
        invoice_id: String,
        #[arg(long)]
        due: chrono::NaiveDate,
        #[command(flatten)]
        who: edit::Who,
    },
    /// Record a promise to pay by a date: no reminders until then; if it is
    /// not paid by the next business day after it, a "you promised to pay
    /// by ..." message goes out, then the ladder resumes.
    Promise {
        invoice_id: String,
        /// The date the customer promised to pay by.
        #[arg(long = "by", value_name = "DATE")]
        date: chrono::NaiveDate,
        /// Who records the promise (kept as `cli:<who>`; default admin).
        #[arg(long)]
        who: Option<String>,
        /// Why (kept with the change).
        #[arg(long)]
        reason: Option<String>,
        #[arg(long, env = "TABLE_NAME")]
        table: String,
    },
    /// Put an invoice on a payment plan: instalments (DATE:AMOUNT, repeatable)
    /// summing to what is outstanding; the ladder runs on the next unpaid one.
    Plan {
        invoice_id: String,
        #[arg(long = "instalment", required = true, value_name = "DATE:AMOUNT")]
        instalments: Vec<String>,
        #[command(flatten)]
        who: edit::Who,
    },
    /// Correct an invoice's fields; an empty value removes an optional one.
    Edit {
        invoice_id: String,
        #[command(flatten)]
        fields: edit::Fields,
        #[command(flatten)]
        who: edit::Who,
    },
    /// Receivables by days overdue per currency (not yet due, 1-30, 31-60,
    /// 61-90, 91-120, over 120), the most overdue customers and what is in
    /// flight, from the open invoices of the due index.
    Report(report::Args),
    /// A customer's statement: their open invoices with their aging, the
    /// total due per currency, and the payments of the last 90 days on them.
    Statement(report::StatementArgs),
    /// Show an invoice, its reminder ledger and its payments, oldest first.
    History {
        invoice_id: String,
        #[arg(long, env = "TABLE_NAME")]
        table: String,
        /// Print JSON records instead of a table.
        #[arg(long)]
        json: bool,
    },
}

// Parsed once per process: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum CustomerAction {
    /// The customer's record (nothing set: takes email and SMS).
    Show {
        customer_id: String,
        /// The record as JSON.
        #[arg(long)]
        json: bool,
        #[arg(long, env = "TABLE_NAME")]
        table: String,
    },
    /// Change it; each change is idempotent and keeps its first source and instant.
    Set {
        customer_id: String,
        /// Opt the customer out of a channel (email or sms); repeatable.
        #[arg(long)]
        opt_out: Vec<String>,
        /// Reverse an opt-out.
        #[arg(long)]
        opt_in: Vec<String>,
        /// Never use this e-mail address for the customer again.
        #[arg(long)]
        suppress: Vec<String>,
        /// Reverse a suppression.
        #[arg(long)]
        unsuppress: Vec<String>,
        /// No reminders before this instant (RFC 3339).
        #[arg(long)]
        pause_until: Option<chrono::DateTime<chrono::Utc>>,
        /// End a pause.
        #[arg(long)]
        resume: bool,
        /// Why (kept with the marks set now).
        #[arg(long)]
        reason: Option<String>,
        /// Who makes the change (source `cli:<who>`; default admin).
        #[arg(long)]
        by: Option<String>,
        /// The language invoices without a `locale` get ("" clears).
        #[arg(long)]
        locale: Option<String>,
        /// The time zone invoices without a `timezone` get ("" clears).
        #[arg(long)]
        timezone: Option<String>,
        /// The customer's e-mail addresses, primary first (repeat, up to 5;
        /// the others get copies): invoices without an `email` use them.
        /// `--email ""` clears them.
        #[arg(long = "email")]
        emails: Option<Vec<String>>,
        /// The customer's phone numbers, primary first (up to 2).
        #[arg(long = "phone")]
        phones: Option<Vec<String>>,
        #[arg(long, env = "TABLE_NAME")]
        table: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Csv,
    Jsonl,
}

#[tokio::main]
async fn main() -> ExitCode {
    dunning::telemetry::init_text();
    match execute(Cli::parse().command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The policy the run uses (`POLICY_FILE`, else the compiled-in default).
fn policy() -> Result<dunning::policy::Policy> {
    use anyhow::Context;
    dunning::policy::Policy::load(std::env::var("POLICY_FILE").ok().as_deref(), |_| true)
        .context("cannot load the policy (POLICY_FILE)")
}

/// The SDK configuration, for the commands that talk to AWS.
async fn aws() -> Result<aws_config::SdkConfig> {
    Ok(dunning::aws::sdk::load().await?)
}

async fn execute(command: Command) -> Result<()> {
    match command {
        Command::CreateTable { table } => setup::create_table(&table).await,
        Command::CreateTopic { name } => setup::create_topic(&name).await,
        Command::VerifySender { sender } => setup::verify_sender(&sender).await,
        Command::SignWebhook { file, secrets } => webhook::sign(&file, &secrets),
        Command::VerifyWebhook {
            file,
            header,
            secrets,
            tolerance,
        } => webhook::verify(&file, &header, &secrets, tolerance),
        Command::Preview(args) => preview::preview(args).await,
        Command::Audit {
            table,
            segments,
            json,
        } => audit::audit(&table, segments, json).await,
        Command::Reschedule { table } => setup::reschedule(&table).await,
        Command::Import {
            file,
            dry_run,
            table,
            format,
        } => {
            let store = DynamoStore::new(&aws().await?, &table);
            import::import(&store, &file, format, dry_run).await
        }
        Command::Run(args) => run::run_once(args).await,
        Command::RecordPayment {
            invoice_id,
            amount,
            currency,
            reference,
            reverse,
            paid_at,
            table,
        } => {
            let store = DynamoStore::new(&aws().await?, &table);
            let at = paid_at.unwrap_or_else(chrono::Utc::now);
            if reverse {
                let payment = payments::reversal(
                    &store,
                    &invoice_id,
                    &reference,
                    amount.as_deref(),
                    currency.as_deref(),
                    at,
                )
                .await?;
                return payments::record(&store, &payment).await;
            }
            let (Some(amount), Some(currency)) = (amount, currency) else {
                anyhow::bail!("--amount and --currency are required to record a payment");
            };
            let payment =
                payments::offline_payment(&invoice_id, &amount, &currency, &reference, at)?;
            payments::record(&store, &payment).await
        }
        Command::Unapplied { all, json, table } => {
            unapplied::list(&DynamoStore::new(&aws().await?, &table), all, json).await
        }
        Command::ApplyUnapplied { id, invoice, table } => {
            let store = DynamoStore::new(&aws().await?, &table);
            unapplied::apply(&store, &id, &invoice, chrono::Utc::now()).await
        }
        Command::DismissUnapplied { id, reason, table } => {
            let store = DynamoStore::new(&aws().await?, &table);
            unapplied::dismiss(&store, &id, &reason, chrono::Utc::now()).await
        }
        Command::BackfillClaims { dry_run, table } => {
            let store = DynamoStore::new(&aws().await?, &table);
            let done = store.backfill_event_claims(dry_run).await?;
            println!(
                "{} payment records: {} {}, {} claimed before, {} unreadable, {} payment references",
                done.payments,
                if dry_run {
                    done.payments - done.unreadable
                } else {
                    done.claimed
                },
                if dry_run {
                    "to check (dry run)"
                } else {
                    "claimed"
                },
                done.claimed_before,
                done.unreadable,
                done.references
            );
            Ok(())
        }
        Command::Retry {
            step,
            channel,
            since,
            reason,
            dry_run,
            table,
        } => {
            let args = retry::RetryArgs {
                step,
                channel,
                since,
                reason,
                dry_run,
            };
            retry::retry(&DynamoStore::new(&aws().await?, &table), args).await
        }
        Command::Customer { action } => match action {
            CustomerAction::Show {
                customer_id,
                json,
                table,
            } => customer::show(&DynamoStore::new(&aws().await?, &table), &customer_id, json).await,
            CustomerAction::Set {
                customer_id,
                opt_out,
                opt_in,
                suppress,
                unsuppress,
                pause_until,
                resume,
                reason,
                by,
                locale,
                timezone,
                emails,
                phones,
                table,
            } => {
                let args = customer::SetArgs {
                    locale,
                    timezone,
                    emails,
                    phones,
                    opt_out,
                    opt_in,
                    suppress,
                    unsuppress,
                    pause_until,
                    resume,
                    reason,
                    by,
                };
                customer::set(&DynamoStore::new(&aws().await?, &table), &customer_id, args).await
            }
        },
        Command::Pause {
            invoice_id,
            customer,
            until,
            who,
        } => {
            let store = DynamoStore::new(&aws().await?, &who.table);
            match (invoice_id, customer) {
                (Some(id), _) => edit::apply(&store, &id, edit::Edit::Pause { until }, &who).await,
                (None, Some(customer)) => {
                    edit::pause_customer(&store, &customer, Some(&until), &who).await
                }
                (None, None) => unreachable!("clap requires one"),
            }
        }
        Command::Resume {
            invoice_id,
            customer,
            who,
        } => {
            let store = DynamoStore::new(&aws().await?, &who.table);
            match (invoice_id, customer) {
                (Some(id), _) => edit::apply(&store, &id, edit::Edit::Resume, &who).await,
                (None, Some(customer)) => edit::pause_customer(&store, &customer, None, &who).await,
                (None, None) => unreachable!("clap requires one"),
            }
        }
        Command::Dispute { invoice_id, who } => {
            let store = DynamoStore::new(&aws().await?, &who.table);
            edit::apply(&store, &invoice_id, edit::Edit::Dispute, &who).await
        }
        Command::Resolve { invoice_id, who } => {
            let store = DynamoStore::new(&aws().await?, &who.table);
            edit::apply(&store, &invoice_id, edit::Edit::Resolve, &who).await
        }
        Command::Void { invoice_id, who } => {
            let store = DynamoStore::new(&aws().await?, &who.table);
            edit::apply(&store, &invoice_id, edit::Edit::Void, &who).await
        }
        Command::Extend {
            invoice_id,
            due,
            who,
        } => {
            let store = DynamoStore::new(&aws().await?, &who.table);
            edit::apply(&store, &invoice_id, edit::Edit::Extend { due }, &who).await
        }
        Command::Promise {
            invoice_id,
            date,
            who,
            reason,
            table,
        } => {
            let who = edit::Who {
                by: who,
                reason,
                table,
            };
            let store = DynamoStore::new(&aws().await?, &who.table);
            edit::apply(&store, &invoice_id, edit::Edit::Promise { by: date }, &who).await
        }
        Command::Plan {
            invoice_id,
            instalments,
            who,
        } => {
            let store = DynamoStore::new(&aws().await?, &who.table);
            edit::apply(&store, &invoice_id, edit::Edit::Plan { instalments }, &who).await
        }
        Command::Edit {
            invoice_id,
            fields,
            who,
        } => {
            let store = DynamoStore::new(&aws().await?, &who.table);
            edit::apply(&store, &invoice_id, fields.edit()?, &who).await
        }
        Command::Report(args) => report::report(args).await,
        Command::Statement(args) => report::statement(args).await,
        Command::RevokeLink { link, table } => {
            links::revoke(&DynamoStore::new(&aws().await?, &table), &link).await
        }
        Command::History {
            invoice_id,
            table,
            json,
        } => history::history(&DynamoStore::new(&aws().await?, &table), &invoice_id, json).await,
    }
}
