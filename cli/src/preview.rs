//! `preview`: the reminder an invoice would get, sending nothing. From the
//! table (`--invoice-id`: the run's whole configuration and AWS access) or
//! from a file (`--file`: offline, only what composing a message reads).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use dunning::compose::Standalone;
use dunning::config::{Config, MessageConfig};
use dunning::preview::Preview;
use dunning::run::Deps;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, conflicts_with = "file", required_unless_present = "file")]
    pub invoice_id: Option<String>,
    /// A JSON object in the invoice item contract.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The step to render (default: the step due at --as-of).
    #[arg(long)]
    pub step: Option<String>,
    /// en, zh-Hans or zh-Hant (default: the invoice's locale, else DEFAULT_LOCALE).
    #[arg(long)]
    pub locale: Option<String>,
    /// email or sms (default: both).
    #[arg(long)]
    pub channel: Option<String>,
    #[arg(long)]
    pub as_of: Option<DateTime<Utc>>,
    /// Write subject.txt, body.txt, body.html and sms.txt here instead of printing.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub async fn preview(args: Args) -> Result<()> {
    let preview = Preview {
        step: args.step.as_deref(),
        locale: args.locale.as_deref(),
        channel: args.channel.as_deref(),
        as_of: args.as_of.unwrap_or_else(Utc::now),
    };
    let rendered = match (&args.invoice_id, &args.file) {
        (Some(id), _) => {
            let sdk = crate::aws().await?;
            let env = dunning::aws::secrets::resolve(&sdk, |k| std::env::var(k).ok()).await?;
            let deps = Deps::new(&sdk, Config::from_lookup(|k| env.get(k))?)?;
            let item = deps
                .store
                .get_invoice(id)
                .await?
                .with_context(|| format!("no invoice {id}"))?;
            let invoice =
                dunning::invoice::Invoice::parse(&dunning::aws::store::raw_invoice(&item))?;
            dunning::preview::render(&deps.composer(), &invoice, &preview)?
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let raw = match serde_json::from_str(&text)? {
                serde_json::Value::Object(map) => dunning::import::raw_from_json(map),
                _ => bail!("{} is not a JSON object", path.display()),
            };
            let invoice = dunning::invoice::Invoice::parse(&raw)?;
            let alone = Standalone::load(MessageConfig::from_env()?)?;
            dunning::preview::render(&alone.composer(), &invoice, &preview)?
        }
        (None, None) => bail!("give --invoice-id or --file"),
    };
    match args.out {
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
    Ok(())
}
