//! `dunning-admin`: operate the dunning table from a terminal, on the same
//! library code as the Lambdas. AWS access comes from the usual environment
//! (profile, region, `AWS_ENDPOINT_URL` for the local emulator).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use dunning::aws::{DynamoStore, SesMailer};
use dunning::config::Config;
use dunning::import::{parse_csv, parse_json_lines};
use dunning::run::{run, Deps, RunRequest};
use dunning::summary::RunSummary;

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
    /// Import invoices from CSV (header row) or JSON lines; bad rows are reported and skipped,
    /// invoices that already exist are left untouched.
    Import {
        file: PathBuf,
        #[arg(long, env = "TABLE_NAME")]
        table: String,
        /// File format; by default taken from the extension (.csv, .jsonl/.ndjson).
        #[arg(long)]
        format: Option<Format>,
    },
    /// Run the reminders once, as the scheduled function does (configuration from the environment).
    Run {
        /// The instant that decides "today" (RFC 3339); default now.
        #[arg(long)]
        as_of: Option<DateTime<Utc>>,
        /// Decide and render, send nothing, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the summary as JSON (as the Lambda returns it) instead of a table.
        #[arg(long)]
        json: bool,
        /// Print one line: what was sent and why the rest waits.
        #[arg(long, conflicts_with = "json")]
        brief: bool,
        /// Treat this many seconds from now as the run's deadline, as a Lambda
        /// run does: it stops taking new work when DEADLINE_MARGIN_SECONDS (at
        /// most a third of the budget) is left, and finishes what it claimed.
        #[arg(long, value_name = "SECONDS")]
        time_budget: Option<u64>,
    },
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
    /// from the table (`--invoice-id`) or a JSON file (`--file`), for any step,
    /// locale and channel. Needs the same environment as `run`.
    Preview {
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        invoice_id: Option<String>,
        /// A JSON object in the invoice item contract.
        #[arg(long)]
        file: Option<PathBuf>,
        /// The step to render (default: the step due at --as-of).
        #[arg(long)]
        step: Option<String>,
        /// en, zh-Hans or zh-Hant (default: the invoice's locale, else DEFAULT_LOCALE).
        #[arg(long)]
        locale: Option<String>,
        /// email or sms (default: both).
        #[arg(long)]
        channel: Option<String>,
        #[arg(long)]
        as_of: Option<DateTime<Utc>>,
        /// Write subject.txt, body.txt, body.html and sms.txt here instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
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

async fn execute(command: Command) -> Result<()> {
    let sdk = dunning::aws::sdk::load().await;
    match command {
        Command::CreateTable { table } => {
            DynamoStore::new(&sdk, &table).create_table().await?;
            println!(
                "created table {table} with index {}",
                dunning::aws::store::DUE_INDEX
            );
        }
        Command::SignWebhook { file, secrets } => {
            let body =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let secret = secrets
                .split(',')
                .map(str::trim)
                .find(|s| !s.is_empty())
                .context("WEBHOOK_SECRETS is empty")?;
            println!(
                "{}",
                dunning::webhook::signature::sign(secret.as_bytes(), Utc::now().timestamp(), &body)
            );
        }
        Command::VerifyWebhook {
            file,
            header,
            secrets,
            tolerance,
        } => {
            let body =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let secrets: Vec<Vec<u8>> = secrets
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.as_bytes().to_vec())
                .collect();
            dunning::webhook::signature::verify(
                Some(&header),
                &body,
                &secrets,
                Utc::now().timestamp(),
                tolerance,
            )?;
            println!("signature valid");
        }
        Command::Preview {
            invoice_id,
            file,
            step,
            locale,
            channel,
            as_of,
            out,
        } => {
            let mut config = Config::from_env()?;
            config.load_secrets(&sdk).await?;
            let deps = Deps::new(&sdk, config)?;
            let raw = match (invoice_id, file) {
                (Some(id), _) => {
                    let item = deps
                        .store
                        .get_invoice(&id)
                        .await?
                        .with_context(|| format!("no invoice {id}"))?;
                    dunning::aws::store::raw_invoice(&item)
                }
                (None, Some(path)) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    match serde_json::from_str(&text)? {
                        serde_json::Value::Object(map) => dunning::import::raw_from_json(map),
                        _ => bail!("{} is not a JSON object", path.display()),
                    }
                }
                (None, None) => bail!("give --invoice-id or --file"),
            };
            let invoice = dunning::invoice::Invoice::parse(&raw)?;
            let preview = dunning::preview::Preview {
                step: step.as_deref(),
                locale: locale.as_deref(),
                channel: channel.as_deref(),
                as_of: as_of.unwrap_or_else(Utc::now),
            };
            let rendered = dunning::preview::render(&deps, &invoice, &preview)?;
            match out {
                None => {
                    for (name, text) in &rendered {
                        println!("===== {name} =====\n{text}\n");
                    }
                }
                Some(dir) => {
                    std::fs::create_dir_all(&dir)?;
                    for (name, text) in &rendered {
                        std::fs::write(dir.join(name), text)?;
                    }
                    println!("wrote {} files to {}", rendered.len(), dir.display());
                }
            }
        }
        Command::Audit {
            table,
            segments,
            json,
        } => {
            let report = dunning::audit::audit(&DynamoStore::new(&sdk, &table), segments).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "scanned {} items, {} invoices, {} unusable",
                    report.scanned,
                    report.invoices,
                    report.unusable.len()
                );
                for (id, reason) in &report.unusable {
                    println!("  {id}: {reason}");
                }
            }
        }
        Command::CreateTopic { name } => {
            let arn = dunning::aws::SnsPublisher::new(&sdk)
                .create_topic(&name)
                .await?;
            println!("{arn}");
        }
        Command::VerifySender { sender } => {
            let from = dunning::contact::EmailAddress::parse(&sender)
                .context("SENDER_EMAIL is not an email address")?;
            SesMailer::new(&sdk, from, None)
                .create_sender_identity()
                .await?;
            println!("registered sender identity {sender}");
        }
        Command::Import {
            file,
            table,
            format,
        } => import(&DynamoStore::new(&sdk, &table), &file, format).await?,
        Command::Run {
            as_of,
            dry_run,
            json,
            brief,
            time_budget,
        } => {
            let mut config = Config::from_env()?;
            config.load_secrets(&sdk).await?;
            let deps = Deps::new(&sdk, config)?;
            let run_id = format!(
                "cli-{}-{}",
                Utc::now().timestamp_nanos_opt().unwrap_or_default(),
                std::process::id()
            );
            let mut request = RunRequest::new(as_of.unwrap_or_else(Utc::now), run_id);
            request.dry_run = dry_run;
            request.deadline =
                time_budget.map(|s| std::time::Instant::now() + std::time::Duration::from_secs(s));
            // A rehearsal for another instant leaves the scheduled runs' read state alone.
            request.record_reads = as_of.is_none();
            let summary = run(&deps, &request).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else if brief {
                print_brief(&summary);
            } else {
                print_summary(&summary);
            }
        }
        Command::History {
            invoice_id,
            table,
            json,
        } => history(&DynamoStore::new(&sdk, &table), &invoice_id, json).await?,
    }
    Ok(())
}

fn print_brief(s: &RunSummary) {
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
    println!(
        "{as_of}: sent {}{}{}{}",
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
    );
}

fn print_summary(s: &RunSummary) {
    let as_of = s.as_of.map(|t| t.to_rfc3339()).unwrap_or_default();
    let mode = if s.dry_run { " (dry run)" } else { "" };
    println!("run {} as of {as_of}{mode}", s.run_id);
    println!(
        "read {} open invoices in the window ({} scanned, {} pages); {} due a reminder",
        s.items_read, s.scanned_count, s.pages, s.eligible
    );
    println!(
        "  {:<14} {:<8} {:>6} {:>7} {:>8} {:>8}",
        "step", "channel", "sent", "failed", "skipped", "planned"
    );
    for (step, channels) in &s.steps {
        for (channel, o) in channels {
            println!(
                "  {step:<14} {channel:<8} {:>6} {:>7} {:>8} {:>8}",
                o.sent, o.failed, o.skipped, o.planned
            );
        }
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

async fn import(store: &DynamoStore, file: &Path, format: Option<Format>) -> Result<()> {
    let format = match format {
        Some(f) => f,
        None => match file.extension().and_then(|e| e.to_str()) {
            Some("csv") => Format::Csv,
            Some("jsonl" | "ndjson" | "json") => Format::Jsonl,
            _ => bail!(
                "cannot tell the format of {}: pass --format csv or --format jsonl",
                file.display()
            ),
        },
    };
    let input = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let rows = match format {
        Format::Csv => parse_csv(input),
        Format::Jsonl => parse_json_lines(BufReader::new(input)),
    };
    let (mut imported, mut existing, mut rejected) = (0, 0, 0);
    for row in rows {
        match row {
            Ok((line, invoice)) => {
                let created = store
                    .insert_invoice(&invoice)
                    .await
                    .with_context(|| format!("line {line} ({}): write failed", invoice.id))?;
                if created {
                    imported += 1;
                } else {
                    existing += 1;
                    eprintln!(
                        "line {line} ({}): already in the table, left unchanged",
                        invoice.id
                    );
                }
            }
            Err(err) => {
                rejected += 1;
                eprintln!("rejected {err}");
            }
        }
    }
    println!("imported {imported}, already present {existing}, rejected {rejected}");
    Ok(())
}

async fn history(store: &DynamoStore, invoice_id: &str, json: bool) -> Result<()> {
    let mut records = store.history(invoice_id).await?;
    if records.is_empty() {
        bail!("no invoice {invoice_id} in table {}", store.table());
    }
    let field =
        |r: &serde_json::Value, k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    // The invoice first, then ledger and payments by time.
    let when = |r: &serde_json::Value| {
        [
            "claimed_at",
            "skipped_at",
            "deferred_at",
            "paid_at",
            "recorded_at",
        ]
        .iter()
        .map(|k| field(r, k))
        .find(|v| !v.is_empty())
        .unwrap_or_default()
    };
    records.sort_by_key(|r| (field(r, "sk") != "invoice", when(r)));
    if json {
        for r in &records {
            println!("{r}");
        }
        return Ok(());
    }
    for r in &records {
        let sk = field(r, "sk");
        if sk == "invoice" {
            println!(
                "invoice {} {} {} {} due {} amount_paid {}",
                field(r, "invoice_id"),
                field(r, "status"),
                field(r, "amount"),
                field(r, "currency"),
                field(r, "due_date"),
                if field(r, "amount_paid").is_empty() {
                    "0".into()
                } else {
                    field(r, "amount_paid")
                },
            );
        } else if let Some(key) = sk.strip_prefix(dunning::ledger::REMINDER_PREFIX) {
            println!(
                "{}  reminder {key:<20} {:<8} {} {}{}",
                when(r),
                field(r, "state"),
                field(r, "amount"),
                field(r, "message_id"),
                [
                    ("error_code", "error"),
                    ("skip_reason", "reason:"),
                    ("defer_reason", "deferred:")
                ]
                .iter()
                .filter(|(k, _)| !field(r, k).is_empty())
                .map(|(k, label)| format!(" {label} {}", field(r, k)))
                .collect::<String>(),
            );
        } else {
            println!("{}  {sk} {}", when(r), r);
        }
    }
    Ok(())
}
