//! Test harness for end-to-end tests: a private moto server per test (started
//! on a free port, stopped by its PID on drop), SDK clients pointed at it, and
//! readers for what it "sent".

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::AttributeValue;
use dunning::aws::sdk::SdkSettings;
use dunning::config::Config;
use dunning::run::Deps;
use dunning::summary::RunSummary;

pub mod memory;
pub mod scenarios;
pub mod ses_events;
pub mod stream;
pub use memory::MemEnv;

/// The instant most tests run at: 14:00 UTC, Monday 23 November 2026
/// (inside every send window of a UTC business).
pub const MONDAY_2PM: &str = "2026-11-23T14:00:00Z";

/// What a provider accepted, as moto records it or the in-memory recorder
/// saw it ([`memory::Sent`]), and the views tests take of it.
pub trait Outbox {
    fn sent_emails(&self) -> Result<Vec<SentEmail>>;
    fn sent_sms(&self) -> Result<Vec<SentSms>>;

    /// Every recipient of every message (emails, then phones), sorted.
    fn recipients(&self) -> Result<Vec<String>> {
        let mut to: Vec<String> = self.sent_emails()?.into_iter().flat_map(|e| e.to).collect();
        to.extend(self.sent_sms()?.into_iter().map(|m| m.phone));
        to.sort();
        Ok(to)
    }

    /// Every message: (recipient, subject or SMS text, email body), sorted;
    /// each pay link's random token reads `<token>`, so that two runs that
    /// send the same messages compare equal.
    fn messages(&self) -> Result<Vec<(String, String, String)>> {
        let mut out: Vec<_> = self
            .sent_emails()?
            .into_iter()
            .map(|m| (m.to.join(","), m.subject, mask_tokens(&m.body)))
            .chain(
                self.sent_sms()?
                    .into_iter()
                    .map(|m| (m.phone, mask_tokens(&m.message), String::new())),
            )
            .collect();
        out.sort();
        Ok(out)
    }

    /// The provider's message ids, by recipient.
    fn ids_by_recipient(&self) -> Result<HashMap<String, Vec<String>>> {
        let mut by: HashMap<String, Vec<String>> = HashMap::new();
        for email in self.sent_emails()? {
            for to in email.to {
                by.entry(to).or_default().push(email.id.clone());
            }
        }
        for sms in self.sent_sms()? {
            by.entry(sms.phone).or_default().push(sms.id);
        }
        Ok(by)
    }
}

/// Delivers a webhook request with one signature header (`header`, its
/// value `signature`) to the webhook's handler over `store`, receipts off.
pub async fn deliver_webhook(
    store: &impl dunning::ports::EditStore,
    config: &dunning::config::WebhookConfig,
    header: &str,
    signature: String,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> dunning::webhook::Answer {
    let lookup = |name: &str| (name == header).then(|| signature.clone());
    dunning::webhook::handle(
        store,
        &dunning::webhook::Outbound {
            mailer: None::<&dunning::aws::SesMailer>,
            publisher: None::<&dunning::aws::SnsPublisher>,
        },
        config,
        "POST",
        lookup,
        body,
        now,
    )
    .await
}

/// The Python that has moto (`$MOTO_PYTHON`, else the project's virtualenv,
/// installed by `scripts/moto.sh install`) and our launcher script.
fn moto_command() -> (PathBuf, PathBuf) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = std::env::var_os("MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    (python, root.join("scripts/moto_server.py"))
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A moto server owned by one test.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// Starts moto on a free loopback port and waits until it answers.
    pub fn start() -> Result<Self> {
        // The runs and webhook calls this test makes in-process: their logs
        // go to the suite's capture (scripts/check-logs.py), when it is on.
        dunning::telemetry::init_capture_only();
        let (python, script) = moto_command();
        if !python.exists() {
            bail!(
                "{} not found: run `scripts/moto.sh install` (scripts/test.sh does)",
                python.display()
            );
        }
        // A port found free can be taken before moto binds it: try a few.
        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port()?;
            let child = Command::new(&python)
                .arg(&script)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {}", python.display()))?;
            let mut moto = Self {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
            };
            match moto.wait_ready(Duration::from_secs(30)) {
                Ok(()) => return Ok(moto),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("moto did not start")))
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("moto exited early: {status}");
            }
            if ureq::get(format!("{}/moto-api/data.json", self.endpoint))
                .call()
                .is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("moto did not answer within {limit:?}")
    }

    /// SDK configuration for this server: endpoint, region and dummy credentials,
    /// set on the config itself so parallel tests never share process environment.
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config_at(&self.endpoint, SdkSettings::default()).await
    }

    /// Environment for a process that talks to this server as the Lambda
    /// would: endpoint, region and dummy credentials.
    pub fn process_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The base URL of this server (e.g. to put a proxy in front of it).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn data(&self) -> Result<serde_json::Value> {
        let text = ureq::get(format!("{}/moto-api/data.json", self.endpoint))
            .call()?
            .body_mut()
            .read_to_string()?;
        Ok(serde_json::from_str(&text)?)
    }
}

impl Outbox for Moto {
    /// Every email SES accepted, in order. moto keeps only the HTML part when
    /// a message has both parts.
    fn sent_emails(&self) -> Result<Vec<SentEmail>> {
        let data = self.data()?;
        let list = data["ses"]["Message"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(list
            .iter()
            .map(|m| SentEmail {
                id: m["id"].as_str().unwrap_or_default().to_owned(),
                to: m["destinations"]["ToAddresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                cc: m["destinations"]["CcAddresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                subject: m["subject"].as_str().unwrap_or_default().to_owned(),
                body: m["body"].as_str().unwrap_or_default().to_owned(),
                text: m["text"].as_str().unwrap_or_default().to_owned(),
                source: m["source"].as_str().unwrap_or_default().to_owned(),
                tags: serde_json::from_value(m["tags"].clone()).unwrap_or_default(),
                headers: m["headers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|h| {
                        (
                            h["Name"].as_str().unwrap_or_default().to_owned(),
                            h["Value"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect(),
                reply_to: serde_json::from_value(m["reply_to"].clone()).unwrap_or_default(),
            })
            .collect())
    }

    /// Every SMS SNS accepted, in order.
    fn sent_sms(&self) -> Result<Vec<SentSms>> {
        let data = self.data()?;
        let list = data["sns"]["SMS"].as_array().cloned().unwrap_or_default();
        Ok(list
            .iter()
            .map(|m| SentSms {
                id: m["message_id"].as_str().unwrap_or_default().to_owned(),
                phone: m["phone_number"].as_str().unwrap_or_default().to_owned(),
                message: m["message"].as_str().unwrap_or_default().to_owned(),
            })
            .collect())
    }
}

impl Moto {
    /// Every raw (MIME) e-mail SES accepted: (destinations, the message).
    pub fn sent_raw(&self) -> Result<Vec<(Vec<String>, String)>> {
        let data = self.data()?;
        let list = data["ses"]["RawMessage"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(list
            .iter()
            .map(|m| {
                (
                    serde_json::from_value(m["destinations"].clone()).unwrap_or_default(),
                    m["raw_data"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }

    /// Every message published to `topic_arn`: (message id, body).
    pub fn published(&self, topic_arn: &str) -> Result<Vec<(String, String)>> {
        let data = self.data()?;
        let topics = data["sns"]["Topic"].as_array().cloned().unwrap_or_default();
        Ok(topics
            .iter()
            .filter(|t| t["arn"] == topic_arn)
            .flat_map(|t| {
                t["sent_notifications"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|n| {
                (
                    n[0].as_str().unwrap_or_default().to_owned(),
                    n[1].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// localstripe (scripts/localstripe_server.py) owned by one test, on a free loopback port.
pub struct LocalStripe {
    child: Child,
    pub base: String,
}

impl LocalStripe {
    pub fn start() -> Result<Self> {
        dunning::telemetry::init_capture_only();
        let (python, _) = moto_command();
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/localstripe_server.py");
        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port()?;
            let mut child = Command::new(&python)
                .arg(&script)
                .arg(port.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {}", python.display()))?;
            let base = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut ready = false;
            while Instant::now() < deadline {
                if child.try_wait()?.is_some() {
                    break;
                }
                if ureq::get(format!("{base}/js.stripe.com/v3/"))
                    .call()
                    .is_ok()
                {
                    ready = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if ready {
                return Ok(Self { child, base });
            }
            let _ = child.kill();
            last_error = Some(anyhow::anyhow!("localstripe did not start on {port}"));
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("localstripe did not start")))
    }

    /// A PaymentIntent as localstripe holds it.
    pub fn intent(&self, id: &str) -> Result<serde_json::Value> {
        let text = ureq::get(format!("{}/v1/payment_intents/{id}", self.base))
            .header("authorization", "Bearer sk_test_localstripe")
            .call()?
            .body_mut()
            .read_to_string()?;
        Ok(serde_json::from_str(&text)?)
    }
}

impl LocalStripe {
    /// Every PaymentIntent localstripe holds.
    pub fn intents(&self) -> Result<Vec<serde_json::Value>> {
        let text = ureq::get(format!("{}/v1/payment_intents?limit=100", self.base))
            .header("authorization", "Bearer sk_test_localstripe")
            .call()?
            .body_mut()
            .read_to_string()?;
        let list: serde_json::Value = serde_json::from_str(&text)?;
        Ok(list["data"].as_array().cloned().unwrap_or_default())
    }

    /// What Stripe.js does with a card: a PaymentMethod from the test card
    /// 4242 4242 4242 4242, then the intent confirmed with it (localstripe's
    /// gap, filled by scripts/localstripe_server.py).
    pub fn pay_with_test_card(&self, client_secret: &str) -> Result<serde_json::Value> {
        let id = client_secret.split("_secret_").next().unwrap_or_default();
        let body = serde_json::json!({
            "key": "pk_test_localstripe",
            "client_secret": client_secret,
            "card": {"number": "4242424242424242", "exp_month": "12", "exp_year": "2034", "cvc": "123"},
        });
        let text = ureq::post(format!(
            "{}/v1/payment_intents/{id}/_confirm_with_card",
            self.base
        ))
        .send(body.to_string())?
        .body_mut()
        .read_to_string()?;
        Ok(serde_json::from_str(&text)?)
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SDK configuration for an emulator (or a proxy in front of one) at
/// `endpoint`: region and dummy credentials on the config itself, and the
/// production retry and timeout settings.
pub async fn sdk_config_at(endpoint: &str, settings: SdkSettings) -> SdkConfig {
    settings
        .apply(aws_config::defaults(BehaviorVersion::latest()))
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await
}

#[derive(Debug, Clone)]
pub struct SentEmail {
    pub id: String,
    pub to: Vec<String>,
    /// Copies (Cc), as sent.
    pub cc: Vec<String>,
    pub subject: String,
    /// The HTML part (moto keeps only it when both are sent).
    pub body: String,
    /// The plain-text part (kept by `scripts/moto_server.py`).
    pub text: String,
    pub source: String,
    /// The SES message tags, name -> values, as sent.
    pub tags: std::collections::BTreeMap<String, Vec<String>>,
    /// The message's own headers (`List-Unsubscribe`, ...), as sent.
    pub headers: Vec<(String, String)>,
    pub reply_to: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SentSms {
    pub id: String,
    pub phone: String,
    pub message: String,
}

pub const SENDER: &str = "billing@acme.example";
pub const PAY_BASE: &str = "https://pay.acme.example";

/// `text` with every `PAY_BASE/<token>` link's token replaced by `<token>`.
pub fn mask_tokens(text: &str) -> String {
    let prefix = format!("{PAY_BASE}/");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(&prefix) {
        let after = &rest[i + prefix.len()..];
        let token = after
            .get(..dunning::link::TOKEN_LEN)
            .filter(|t| dunning::link::LinkToken::parse(t).is_some());
        out.push_str(&rest[..i + prefix.len()]);
        match token {
            Some(_) => {
                out.push_str("<token>");
                rest = &after[dunning::link::TOKEN_LEN..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    out
}
pub const TOPIC_NAME: &str = "dunning-escalations";
/// moto's account and region make the ARN predictable.
pub const TOPIC_ARN: &str = "arn:aws:sns:us-east-1:123456789012:dunning-escalations";

/// The configuration tests use, with `overrides` on top.
pub fn config(overrides: &[(&str, &str)]) -> Config {
    let env = config_env(overrides);
    Config::from_lookup(|k| env.get(k).cloned()).expect("test configuration is valid")
}

/// The environment behind [`config`], for a run in another process.
pub fn config_env(overrides: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("TABLE_NAME", "invoices"),
        ("SENDER_EMAIL", SENDER),
        ("BUSINESS_NAME", "Acme Ltd"),
        ("BUSINESS_TIMEZONE", "UTC"),
        ("PAY_LINK_BASE_URL", PAY_BASE),
        ("ESCALATION_TOPIC_ARN", TOPIC_ARN),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in overrides {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

/// Path of a test fixture (`tests/fixtures/<name>`).
pub fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A moto server with the table created and the sender identity registered.
pub struct TestEnv {
    pub moto: Moto,
    pub deps: Deps,
}

impl TestEnv {
    pub async fn start() -> Result<Self> {
        Self::with_config(config(&[]), true).await
    }

    /// `register_sender: false` leaves the sender unverified, so SES rejects every email.
    pub async fn with_config(config: Config, register_sender: bool) -> Result<Self> {
        let moto = Moto::start()?;
        let sdk = moto.sdk_config().await;
        let deps = Deps::new(&sdk, config)?;
        deps.store.create_table().await?;
        let arn = deps
            .events
            .create_topic(TOPIC_NAME)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        anyhow::ensure!(arn == TOPIC_ARN, "moto gave the topic ARN {arn}");
        if register_sender {
            deps.mail
                .create_sender_identity()
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
        }
        Ok(Self { moto, deps })
    }

    /// Writes an item exactly as given, as an outside billing system would.
    pub async fn put_raw(&self, attrs: &[(&str, AttributeValue)]) -> Result<()> {
        let mut item: HashMap<String, AttributeValue> = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        item.entry("sk".into())
            .or_insert_with(|| AttributeValue::S("invoice".into()));
        self.deps
            .store
            .client()
            .put_item()
            .table_name(self.deps.store.table())
            .set_item(Some(item))
            .send()
            .await?;
        Ok(())
    }

    /// Writes an invoice item from text attributes.
    pub async fn put_invoice(&self, attrs: &[(&str, &str)]) -> Result<()> {
        let attrs: Vec<(&str, AttributeValue)> = attrs
            .iter()
            .map(|(k, v)| (*k, AttributeValue::S(v.to_string())))
            .collect();
        self.put_raw(&attrs).await
    }

    /// Stores `value` as a Secrets Manager secret in this test's moto; returns its ARN.
    pub async fn create_secret(&self, name: &str, value: &str) -> Result<String> {
        let sdk = self.moto.sdk_config().await;
        let out = aws_sdk_secretsmanager::Client::new(&sdk)
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await?;
        out.arn.context("no ARN")
    }

    /// Every record under an invoice as JSON.
    pub async fn history(&self, invoice_id: &str) -> Result<Vec<serde_json::Value>> {
        Ok(self.deps.store.history(invoice_id).await?)
    }

    /// An invoice's ledger and payment records (everything but the invoice item).
    pub async fn ledger(&self, invoice_id: &str) -> Result<Vec<serde_json::Value>> {
        let records = self.deps.store.history(invoice_id).await?;
        Ok(records
            .into_iter()
            .filter(|r| r["sk"] != "invoice")
            .collect())
    }
}

/// (sent, failed, skipped) of one step on one channel (`email`, `sms`, `escalation`).
pub fn outcome(summary: &RunSummary, step: &str, channel: &str) -> (u64, u64, u64) {
    summary
        .steps
        .get(step)
        .and_then(|c| c.iter().find(|(t, _)| t.as_str() == channel))
        .map_or((0, 0, 0), |(_, o)| (o.sent, o.failed, o.skipped))
}

/// A request for the instant `as_of` (RFC 3339), as a scheduled run makes it.
pub fn at(as_of: &str, run_id: &str) -> dunning::run::RunRequest {
    dunning::run::RunRequest::new(as_of.parse().expect("an RFC 3339 instant"), run_id)
}

/// Text attributes of a valid open invoice for `id` due on `due`, with `extra` on top.
pub fn invoice<'a>(
    id: &'a str,
    due: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut attrs = vec![
        ("invoice_id", id),
        ("customer_id", id),
        ("customer_name", "Ana Lima"),
        ("amount", "120.00"),
        ("currency", "USD"),
        ("due_date", due),
        ("status", "open"),
    ];
    for (k, v) in extra {
        attrs.retain(|(name, _)| name != k);
        attrs.push((k, v));
    }
    attrs
}

/// The log capture's variable, when the suite runs with it (scripts/test.sh):
/// a child process started with an emptied environment keeps it, so that its
/// logs are searched for personal data too.
pub fn capture_env() -> Vec<(String, String)> {
    let name = dunning::telemetry::CAPTURE_VAR;
    std::env::var(name)
        .map(|v| vec![(name.to_owned(), v)])
        .unwrap_or_default()
}

/// `scripts/fault_proxy.py` in front of a moto server: forwards requests, or
/// with probability `rate` answers with throttling, a 5xx, a timeout or a
/// connection reset instead (and always rejects `bounce*` addresses and
/// phone numbers ending in 0000). Stopped by its PID on drop.
pub struct FaultProxy {
    child: Child,
    pub endpoint: String,
}

impl FaultProxy {
    pub fn start(upstream: &str, rate: f64, seed: u64, hold: Duration) -> Result<Self> {
        use std::io::BufRead;
        let (python, _) = moto_command();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/fault_proxy.py");
        let mut child = Command::new(python)
            .arg(script)
            .args(["--upstream", upstream, "--port", "0"])
            .args(["--rate", &rate.to_string(), "--seed", &seed.to_string()])
            .args(["--hold", &hold.as_secs_f64().to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start scripts/fault_proxy.py")?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("no stdout")?;
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let port: u16 = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("fault proxy said {line:?}"))?;
        Ok(Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }

    /// Requests seen and faults injected, by service (and kind).
    pub fn stats(&self) -> Result<serde_json::Value> {
        let text = ureq::get(format!("{}/_faults/stats", self.endpoint))
            .call()?
            .body_mut()
            .read_to_string()?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Changes the fault rate from now on.
    pub fn set_rate(&self, rate: f64) -> Result<()> {
        self.configure(serde_json::json!({ "rate": rate }))
    }

    /// Changes the proxy's settings from now on (`rate`, `services`, `kinds`, `hold`).
    pub fn configure(&self, settings: serde_json::Value) -> Result<()> {
        ureq::post(format!("{}/_faults/config", self.endpoint)).send(settings.to_string())?;
        Ok(())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
