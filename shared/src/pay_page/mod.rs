//! The customer's pay page (`functions/pay-page`): a reminder's link opens
//! it, it shows what is owed in the customer's language, and it takes the
//! payment through Stripe. The webhook then applies the payment, and the
//! page turns to "paid". See `docs/pay-page.md`.
//!
//! Routes, under `PAY_LINK_BASE_URL` (any path prefix in front is ignored,
//! so the same code serves a Function URL, a custom domain or
//! `cargo lambda watch`):
//! - `GET <token>`: the page (or the neutral "not valid" page: 404 for an
//!   unknown token, 410 for an expired or revoked one; a token that is not
//!   16 characters of the alphabet costs no lookup at all);
//! - `POST <token>/pay` with `invoice=<id>`: a PaymentIntent for exactly the
//!   outstanding amount, as `{"client_secret": ..}`; only from the page's own
//!   origin;
//! - `GET <token>/status?invoice=<id>`: `{"state": "open" | "paid" | ..}`,
//!   which the page polls after paying until the webhook has applied it;
//! - `GET <token>/statement`: a customer link's "all invoices" view, the
//!   customer's statement ([`statement`]): every open invoice of theirs,
//!   each payable through the same `pay` route, the totals by age and the
//!   payments of the last 90 days; printable;
//! - `GET <token>/unsubscribe`: a page to confirm stopping e-mail
//!   reminders; `POST` there (its button, or a mail client's one-click
//!   unsubscribe from the `List-Unsubscribe` header) opts the customer out.
//!
//! Every answer is `Cache-Control: no-store`. Nothing here logs a token, a
//! path or anything personal: only outcomes and invoice ids.

pub mod statement;
mod strings;
pub mod view;

use chrono::{DateTime, Utc};
use minijinja::Environment;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::channel::Channel;
use crate::config::{origin_of, PayPageConfig};
use crate::customer::{Change, Mark, UNSUBSCRIBE_SOURCE};
use crate::link::{LinkState, LinkTarget, LinkToken, PayLink, StoredIntent};
use crate::ports::Links;
use crate::stripe::http::StripeClient;
use crate::stripe::{stripe_amount, IntentRequest, PaymentIntent, StripeError};
pub use strings::Strings;
use view::{build, page_locale, payability, Page, PageContext, PageInvoice, Payability};

const CSS: &str = include_str!("../../pages/page.css");
const SCRIPT: &str = include_str!("../../pages/pay.js");
const PAGE: &str = include_str!("../../pages/page.html");
const GONE: &str = include_str!("../../pages/gone.html");
const UNSUBSCRIBE: &str = include_str!("../../pages/unsubscribe.html");
const STATEMENT: &str = include_str!("../../pages/statement.html");
const PAY_PANEL: &str = include_str!("../../pages/pay_panel.html");
const BASE: &str = include_str!("../../pages/base.html");

/// The templates and the CSP hashes of the inline style and script, built once.
struct Assets {
    env: Environment<'static>,
    style_hash: String,
    script_hash: String,
}

fn csp_hash(text: &str) -> String {
    use base64::Engine;
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

impl Assets {
    fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        // Compiled in and rendered by the tests below.
        env.add_template("base.html", BASE)
            .expect("base.html compiles");
        env.add_template("page.html", PAGE)
            .expect("page.html compiles");
        env.add_template("gone.html", GONE)
            .expect("gone.html compiles");
        env.add_template("unsubscribe.html", UNSUBSCRIBE)
            .expect("unsubscribe.html compiles");
        env.add_template("statement.html", STATEMENT)
            .expect("statement.html compiles");
        env.add_template("pay_panel.html", PAY_PANEL)
            .expect("pay_panel.html compiles");
        Self {
            env,
            style_hash: csp_hash(CSS),
            script_hash: csp_hash(SCRIPT),
        }
    }
}

/// What the pay page needs, built once per process.
pub struct PageDeps<S> {
    pub store: S,
    pub stripe: StripeClient,
    pub config: PayPageConfig,
    assets: Assets,
}

impl<S: Links> PageDeps<S> {
    pub fn new(store: S, stripe: StripeClient, config: PayPageConfig) -> Self {
        Self {
            store,
            stripe,
            config,
            assets: Assets::new(),
        }
    }
}

/// One HTTP request, as the function received it.
pub struct PageRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub accept_language: Option<&'a str>,
    pub body: &'a [u8],
    pub now: DateTime<Utc>,
}

/// The answer: status, headers, body.
#[derive(Debug, Clone)]
pub struct PageAnswer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl PageAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Headers on every answer.
fn base_headers(content_type: &str) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", content_type.to_owned()),
        ("cache-control", "no-store".into()),
        ("x-content-type-options", "nosniff".into()),
        ("referrer-policy", "no-referrer".into()),
        ("x-frame-options", "DENY".into()),
        ("strict-transport-security", "max-age=31536000".into()),
    ]
}

fn json_answer(status: u16, body: serde_json::Value) -> PageAnswer {
    PageAnswer {
        status,
        headers: base_headers("application/json"),
        body: body.to_string(),
    }
}

/// JSON to put inside a `<script type="application/json">`: `<`, `>` and `&`
/// escaped, so that no value can close the element.
fn script_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// What [`PageDeps::pay_page`] renders.
struct Shown<'a> {
    lang: &'static str,
    title: &'a str,
    t: &'static Strings,
    many: bool,
    payable: bool,
    page: serde_json::Value,
}

/// Which route a path names.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Page(LinkToken),
    Pay(LinkToken),
    Status(LinkToken),
    Statement(LinkToken),
    Unsubscribe(LinkToken),
    Unknown,
}

fn route(path: &str) -> Route {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [.., token, "pay"] => LinkToken::parse(token).map_or(Route::Unknown, Route::Pay),
        [.., token, "status"] => LinkToken::parse(token).map_or(Route::Unknown, Route::Status),
        [.., token, "statement"] => {
            LinkToken::parse(token).map_or(Route::Unknown, Route::Statement)
        }
        [.., token, "unsubscribe"] => {
            LinkToken::parse(token).map_or(Route::Unknown, Route::Unsubscribe)
        }
        [.., token] => LinkToken::parse(token).map_or(Route::Unknown, Route::Page),
        [] => Route::Unknown,
    }
}

/// The value of `name` in a form or query string.
fn form_value(text: &str, name: &str) -> Option<String> {
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

impl<S: Links> PageDeps<S> {
    /// Answers one request; never fails (a store or Stripe error is an
    /// answer that says to try again, and a log line).
    pub async fn handle(&self, req: PageRequest<'_>) -> PageAnswer {
        let route = route(req.path);
        match (req.method, route) {
            ("GET" | "HEAD", Route::Page(token)) => {
                let mut answer = self.page(&token, &req).await;
                if req.method == "HEAD" {
                    answer.body.clear();
                }
                answer
            }
            ("POST", Route::Pay(token)) => self.pay(&token, &req).await,
            ("GET" | "HEAD", Route::Statement(token)) => {
                let mut answer = self.statement(&token, &req).await;
                if req.method == "HEAD" {
                    answer.body.clear();
                }
                answer
            }
            ("GET", Route::Status(token)) => self.status(&token, &req).await,
            ("GET" | "HEAD", Route::Unsubscribe(token)) => {
                let mut answer = self.unsubscribe(&token, &req, false).await;
                if req.method == "HEAD" {
                    answer.body.clear();
                }
                answer
            }
            ("POST", Route::Unsubscribe(token)) => self.unsubscribe(&token, &req, true).await,
            (
                _,
                route @ (Route::Page(_)
                | Route::Pay(_)
                | Route::Status(_)
                | Route::Statement(_)
                | Route::Unsubscribe(_)),
            ) => {
                let allow = match route {
                    Route::Page(_) | Route::Statement(_) => "GET, HEAD",
                    Route::Pay(_) => "POST",
                    Route::Unsubscribe(_) => "GET, HEAD, POST",
                    _ => "GET",
                };
                let mut answer = json_answer(405, json!({"error": "method_not_allowed"}));
                answer.headers.push(("allow", allow.into()));
                answer
            }
            (_, Route::Unknown) => self.gone(404, &req),
        }
    }

    fn context<'a>(&'a self, req: &'a PageRequest<'_>) -> PageContext<'a> {
        PageContext {
            business_name: &self.config.business_name,
            business_timezone: self.config.business_timezone,
            default_locale: self.config.default_locale,
            accept_language: req.accept_language,
            now: req.now,
        }
    }

    /// The link and the invoices it opens (in the link's order).
    async fn open(&self, token: &LinkToken) -> Result<(Option<PayLink>, Vec<PageInvoice>), ()> {
        let link = self.store.get_link(token).await.map_err(|e| {
            tracing::error!(error = %e, "pay page: could not read a link");
        })?;
        let Some(link) = link else {
            return Ok((None, Vec::new()));
        };
        let ids = link.target.invoice_ids();
        let raws = self.store.page_invoices(&ids).await.map_err(|e| {
            tracing::error!(error = %e, "pay page: could not read invoices");
        })?;
        let mut invoices: Vec<(usize, PageInvoice)> = Vec::new();
        for raw in &raws {
            match PageInvoice::parse(raw) {
                Some(p) => {
                    if let Some(i) = ids.iter().position(|id| *id == p.invoice.id) {
                        invoices.push((i, p));
                    }
                }
                None => tracing::warn!(
                    invoice_id = raw.id_hint().unwrap_or("?"),
                    "pay page: an invoice item is not valid; not shown"
                ),
            }
        }
        invoices.sort_by_key(|(i, _)| *i);
        Ok((Some(link), invoices.into_iter().map(|(_, p)| p).collect()))
    }

    async fn page(&self, token: &LinkToken, req: &PageRequest<'_>) -> PageAnswer {
        let Ok((link, invoices)) = self.open(token).await else {
            return self.unavailable(req);
        };
        match build(link.as_ref(), &invoices, &self.context(req)) {
            Page::Gone { status, .. } => {
                tracing::info!(status, "pay page: link not valid");
                self.gone(status, req)
            }
            Page::Redirect(url) => {
                tracing::info!(invoice_id = %invoices[0].invoice.id, "pay page: sent to the invoice's hosted page");
                let mut headers = base_headers("text/plain; charset=utf-8");
                headers.push(("location", url));
                PageAnswer {
                    status: 303,
                    headers,
                    body: String::new(),
                }
            }
            Page::Show(view) => {
                let shown = self.pay_page(
                    "page.html",
                    token,
                    req,
                    Shown {
                        lang: view.lang,
                        title: &view.title,
                        t: view.t,
                        many: view.many,
                        payable: view.payable,
                        page: json!(view),
                    },
                );
                if shown.status == 200 {
                    tracing::info!(
                        invoices = view.invoices.len(),
                        payable = view.payable,
                        "pay page shown"
                    );
                }
                shown
            }
        }
    }

    /// A page of invoices to pay, rendered from `template`: the script's
    /// configuration, the page's policy (Stripe's origins when something is
    /// payable here) and its language.
    fn pay_page(
        &self,
        template: &str,
        token: &LinkToken,
        req: &PageRequest<'_>,
        shown: Shown<'_>,
    ) -> PageAnswer {
        let base = format!("{}/{}", self.config.base_url, token.as_str());
        let t = shown.t;
        let config = json!({
            "publishable_key": self.config.stripe_publishable_key,
            "pay_url": format!("{base}/pay"),
            "status_url": format!("{base}/status"),
            "many": shown.many,
            "t": { "working": t.working, "confirming": t.confirming,
                   "paid_now": t.paid_now, "failed": t.failed },
        });
        let html = self.assets.env.get_template(template).and_then(|tpl| {
            tpl.render(minijinja::value::Serde(json!({
                "lang": shown.lang, "title": shown.title,
                "page": shown.page, "css": CSS, "script": SCRIPT,
                "config": script_json(&config),
                "stripe_js": self.config.stripe_js_url,
                "statement_url": format!("{base}/statement"),
            })))
        });
        match html {
            Ok(body) => {
                let mut headers = base_headers("text/html; charset=utf-8");
                headers.push(("content-security-policy", self.page_csp(shown.payable)));
                headers.push(("content-language", shown.lang.to_owned()));
                PageAnswer {
                    status: 200,
                    headers,
                    body,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, template, "pay page: render failed");
                self.unavailable(req)
            }
        }
    }

    /// `GET <token>/statement`: the statement of a customer link's
    /// customer. An invoice's link has none (it opens one invoice only).
    async fn statement(&self, token: &LinkToken, req: &PageRequest<'_>) -> PageAnswer {
        let link = match self.store.get_link(token).await {
            Ok(link) => link,
            Err(e) => {
                tracing::error!(error = %e, "pay page: could not read a link");
                return self.unavailable(req);
            }
        };
        let Some(link) = link else {
            return self.gone(404, req);
        };
        if link.state(req.now) != LinkState::Active {
            return self.gone(410, req);
        }
        let LinkTarget::Customer { customer_id, .. } = &link.target else {
            return self.gone(404, req);
        };
        let Ok((invoices, more, payments)) = self.statement_reads(customer_id, req.now).await
        else {
            return self.unavailable(req);
        };
        let view =
            statement::statement_view(customer_id, &invoices, &payments, more, &self.context(req));
        let shown = self.pay_page(
            "statement.html",
            token,
            req,
            Shown {
                lang: view.lang,
                title: &view.title,
                t: view.t,
                many: true,
                payable: view.payable,
                page: json!(view),
            },
        );
        if shown.status == 200 {
            tracing::info!(
                invoices = view.lines.len(),
                payments = view.payments.len(),
                more,
                "statement shown"
            );
        }
        shown
    }

    /// The customer's invoices for a statement (valid ones; the others are
    /// logged with their ids), whether some were left out, and the money
    /// received on those that have any.
    async fn statement_reads(
        &self,
        customer_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(Vec<PageInvoice>, bool, Vec<crate::report::Received>), ()> {
        let (raws, more) = self
            .store
            .statement_invoices(customer_id, statement::paid_since(now))
            .await
            .map_err(|e| tracing::error!(error = %e, "pay page: could not read a statement"))?;
        let invoices: Vec<PageInvoice> = raws
            .iter()
            .filter_map(|raw| {
                let parsed = PageInvoice::parse(raw);
                if parsed.is_none() {
                    tracing::warn!(
                        invoice_id = raw.id_hint().unwrap_or("?"),
                        "pay page: an invoice item is not valid; not on the statement"
                    );
                }
                parsed
            })
            .collect();
        let reads = invoices
            .iter()
            .filter(|p| !p.invoice.amount_paid.is_zero())
            .map(|p| self.store.payments_received(&p.invoice.id));
        let payments = futures::future::try_join_all(reads)
            .await
            .map_err(|e| tracing::error!(error = %e, "pay page: could not read payments"))?
            .into_iter()
            .flatten()
            .collect();
        Ok((invoices, more, payments))
    }

    /// The policy: our inline style and script by hash, Stripe.js from
    /// Stripe only, requests to ourselves and Stripe, Stripe's frames.
    fn page_csp(&self, stripe: bool) -> String {
        let mut csp = format!(
            "default-src 'none'; style-src {}; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            self.assets.style_hash
        );
        if stripe {
            let js = origin_of(&self.config.stripe_js_url).unwrap_or_default();
            let api = origin_of(&self.config.stripe_api_base).unwrap_or_default();
            let stripe_frames = if js == "https://js.stripe.com" {
                " https://*.js.stripe.com https://hooks.stripe.com"
            } else {
                ""
            };
            csp.push_str(&format!(
                "; script-src {} {js}{stripe_frames}; connect-src 'self' {api} {js}; frame-src {js}{stripe_frames}",
                self.assets.script_hash
            ));
        }
        csp
    }

    fn gone(&self, status: u16, req: &PageRequest<'_>) -> PageAnswer {
        let locale = page_locale(None, req.accept_language, self.config.default_locale);
        self.plain_page(status, Strings::of(locale))
    }

    fn unavailable(&self, req: &PageRequest<'_>) -> PageAnswer {
        let locale = page_locale(None, req.accept_language, self.config.default_locale);
        let mut answer = self.plain_page(503, Strings::of(locale));
        answer.headers.push(("retry-after", "30".into()));
        answer
    }

    /// The neutral page: the same words for every link that does not open.
    fn plain_page(&self, status: u16, t: &'static Strings) -> PageAnswer {
        let body = self
            .assets
            .env
            .get_template("gone.html")
            .and_then(|tpl| {
                tpl.render(minijinja::value::Serde(
                    json!({"t": t, "css": CSS, "lang": t.lang, "title": t.gone_title}),
                ))
            })
            .unwrap_or_else(|_| t.gone_title.to_owned());
        PageAnswer {
            status,
            headers: self.style_only_headers("'none'"),
            body,
        }
    }

    /// Headers of a page with our style and no script; forms may post to
    /// `form_action` (`'none'`, or `'self'` for the unsubscribe button).
    fn style_only_headers(&self, form_action: &str) -> Vec<(&'static str, String)> {
        let mut headers = base_headers("text/html; charset=utf-8");
        headers.push((
            "content-security-policy",
            format!(
                "default-src 'none'; style-src {}; base-uri 'none'; form-action {form_action}; frame-ancestors 'none'",
                self.assets.style_hash
            ),
        ));
        headers
    }

    /// `GET <token>/unsubscribe`: a page asking to confirm, with a button;
    /// `POST` (that button, or a mail client's one-click unsubscribe, RFC
    /// 8058: `List-Unsubscribe=One-Click`): the customer is opted out of
    /// e-mail reminders, and the page says so. The link's token is the
    /// capability (96 random bits, stored): an expired or revoked link still
    /// unsubscribes while its record exists, since a reminder's footer must
    /// keep working after the invoice is paid.
    async fn unsubscribe(
        &self,
        token: &LinkToken,
        req: &PageRequest<'_>,
        confirm: bool,
    ) -> PageAnswer {
        let Ok((link, invoices)) = self.open(token).await else {
            return self.unavailable(req);
        };
        let Some(link) = link else {
            return self.gone(404, req);
        };
        let first = invoices.first().map(|p| &p.invoice);
        let customer_id = match &link.target {
            LinkTarget::Customer { customer_id, .. } => Some(customer_id.clone()),
            LinkTarget::Invoice(_) => first.map(|i| i.customer_id.clone()),
        };
        let Some(customer_id) = customer_id else {
            return self.gone(404, req);
        };
        let locale = page_locale(
            first.and_then(|i| i.locale.as_deref()),
            req.accept_language,
            self.config.default_locale,
        );
        let t = Strings::of(locale);
        if confirm {
            let body = String::from_utf8_lossy(req.body);
            let how = if form_value(&body, "List-Unsubscribe").as_deref() == Some("One-Click") {
                "one-click"
            } else {
                "page"
            };
            let change = Change::OptOut {
                channel: Channel::Email,
                mark: Mark {
                    source: UNSUBSCRIBE_SOURCE.into(),
                    at: req.now,
                    reason: Some(how.into()),
                },
            };
            match self
                .store
                .change_customer_record(&customer_id, &change)
                .await
            {
                Ok(changed) => tracing::info!(changed, how, "pay page: e-mail reminders stopped"),
                Err(e) => {
                    tracing::error!(error = %e, "pay page: could not record an unsubscribe");
                    return self.unavailable(req);
                }
            }
        }
        let body = self
            .assets
            .env
            .get_template("unsubscribe.html")
            .and_then(|tpl| {
                tpl.render(minijinja::value::Serde(json!({
                    "t": t, "css": CSS, "lang": t.lang, "done": confirm,
                    "business_name": self.config.business_name,
                    "title": if confirm { t.unsubscribed_title } else { t.unsubscribe_title },
                })))
            });
        let Ok(body) = body else {
            return self.unavailable(req);
        };
        let mut headers = self.style_only_headers("'self'");
        headers.push(("content-language", t.lang.to_owned()));
        PageAnswer {
            status: 200,
            headers,
            body,
        }
    }

    /// The active link and the one invoice of it the request names: one
    /// the link opens, or for a customer link any invoice of that customer
    /// (their statement's).
    async fn invoice_on_link(
        &self,
        token: &LinkToken,
        invoice_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<PageInvoice, PageAnswer> {
        let (link, invoices) = self
            .open(token)
            .await
            .map_err(|()| json_answer(503, json!({"error": "unavailable"})))?;
        let link = link.ok_or_else(|| json_answer(404, json!({"error": "link_not_valid"})))?;
        if link.state(now) != LinkState::Active {
            return Err(json_answer(410, json!({"error": "link_not_valid"})));
        }
        let id =
            invoice_id.ok_or_else(|| json_answer(400, json!({"error": "invoice_required"})))?;
        let not_on_link = || json_answer(404, json!({"error": "not_on_this_link"}));
        if let Some(p) = invoices.into_iter().find(|p| p.invoice.id == id) {
            return Ok(p);
        }
        let LinkTarget::Customer { customer_id, .. } = &link.target else {
            return Err(not_on_link());
        };
        // What could never be an invoice id costs no read.
        if !crate::invoice::Invoice::is_valid_id(id) {
            return Err(not_on_link());
        }
        let raws = self.store.page_invoices(&[id]).await.map_err(|e| {
            tracing::error!(error = %e, "pay page: could not read an invoice");
            json_answer(503, json!({"error": "unavailable"}))
        })?;
        raws.iter()
            .filter_map(PageInvoice::parse)
            .find(|p| p.invoice.id == id && p.invoice.customer_id == *customer_id)
            .ok_or_else(not_on_link)
    }

    async fn status(&self, token: &LinkToken, req: &PageRequest<'_>) -> PageAnswer {
        let id = req.query.and_then(|q| form_value(q, "invoice"));
        match self.invoice_on_link(token, id.as_deref(), req.now).await {
            Err(answer) => answer,
            Ok(p) => {
                let state = match payability(&p.invoice, p.paid_at) {
                    Payability::Pay(_) => "open",
                    Payability::Elsewhere { .. } => "elsewhere",
                    Payability::Settled { .. } => "paid",
                    Payability::Void => "void",
                };
                json_answer(
                    200,
                    json!({"state": state, "outstanding": p.invoice.outstanding().to_string()}),
                )
            }
        }
    }

    async fn pay(&self, token: &LinkToken, req: &PageRequest<'_>) -> PageAnswer {
        // A payment starts only from the page itself: a cross-site form or
        // script cannot make intents (and a bad request costs no lookup).
        if req.origin.and_then(origin_of).as_deref() != Some(self.config.origin.as_str()) {
            tracing::warn!("pay page: a payment request from another origin refused");
            return json_answer(403, json!({"error": "origin_not_allowed"}));
        }
        let body = std::str::from_utf8(req.body).unwrap_or("");
        let id = form_value(body, "invoice");
        let p = match self.invoice_on_link(token, id.as_deref(), req.now).await {
            Ok(p) => p,
            Err(answer) => return answer,
        };
        let invoice_id = p.invoice.id.clone();
        let locale = page_locale(
            p.invoice.locale.as_deref(),
            req.accept_language,
            self.config.default_locale,
        );
        let t = Strings::of(locale);
        let owed = match payability(&p.invoice, p.paid_at) {
            Payability::Pay(owed) => owed,
            Payability::Settled { .. } | Payability::Void => {
                return json_answer(
                    409,
                    json!({"error": "nothing_to_pay", "message": t.nothing_to_pay}),
                )
            }
            Payability::Elsewhere { .. } => {
                return json_answer(
                    409,
                    json!({"error": "pay_elsewhere", "message": t.pay_elsewhere}),
                )
            }
        };
        // The customer pays what the page showed them, or nothing: a late fee
        // or a payment since the page loaded makes them look again.
        let shown =
            form_value(body, "amount").and_then(|a| a.parse::<rust_decimal::Decimal>().ok());
        if shown != Some(owed.amount) {
            return json_answer(
                409,
                json!({"error": "amount_changed", "message": t.amount_changed}),
            );
        }
        let amount = match stripe_amount(owed) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(%invoice_id, error = %e, "pay page: the amount cannot be charged through Stripe");
                return json_answer(
                    422,
                    json!({"error": "unsupported_amount", "message": t.unavailable}),
                );
            }
        };
        let request = IntentRequest {
            invoice_id: invoice_id.clone(),
            amount,
            amount_paid: p.invoice.amount_paid,
            replaces: None,
        };
        // Within the function's 15 s, whatever Stripe does.
        let intent = tokio::time::timeout(
            std::time::Duration::from_secs(11),
            self.intent_for(request, req.now),
        )
        .await
        .unwrap_or_else(|_| Err(StripeError::network("the payment took too long to start")));
        match intent {
            Ok(Intent::Pay(secret)) => {
                tracing::info!(%invoice_id, "pay page: payment intent ready");
                json_answer(
                    200,
                    json!({"client_secret": secret, "amount": owed.to_string()}),
                )
            }
            Ok(Intent::BeingPaid) => json_answer(200, json!({"state": "confirming"})),
            Ok(Intent::Changed) => json_answer(
                409,
                json!({"error": "amount_changed", "message": t.amount_changed}),
            ),
            Err(e) if e.transient => {
                tracing::warn!(%invoice_id, code = %e.code, status = e.status, "pay page: Stripe unavailable");
                json_answer(503, json!({"error": "unavailable", "message": t.busy}))
            }
            Err(e) => {
                tracing::error!(%invoice_id, code = %e.code, status = e.status, message = %e.message, "pay page: Stripe refused the intent");
                json_answer(
                    502,
                    json!({"error": "payment_unavailable", "message": t.unavailable}),
                )
            }
        }
    }

    /// The one intent the customer may pay for this invoice now:
    /// - the stored one, while the amount and the payments so far are as it
    ///   was made for and it can still be paid;
    /// - none while one is being paid: `processing`, `requires_capture`, or
    ///   `succeeded` and not yet applied (the invoice's payments have not
    ///   grown by its amount since it was made), whatever the amount now, so
    ///   that the same invoice is never paid twice through the page;
    /// - else a new one (the old one canceled if it could still be paid),
    ///   made with an idempotency key that names what it replaces, and stored
    ///   in its place only if nobody replaced it first.
    ///
    /// Two concurrent first taps make one intent: Stripe's idempotency key,
    /// and the create-only record, whose loser answers with the winner's if
    /// it is for the same amount.
    async fn intent_for(
        &self,
        mut request: IntentRequest,
        now: DateTime<Utc>,
    ) -> Result<Intent, StripeError> {
        let invoice_id = request.invoice_id.clone();
        let stored = self
            .store
            .get_intent(&invoice_id)
            .await
            .map_err(store_failed)?;
        if let Some(s) = &stored {
            let current = match self.stripe.retrieve_payment_intent(&s.intent_id).await {
                Ok(pi) => Some(pi),
                // Unknown to this Stripe account (keys changed): replaced below.
                Err(e) if e.status == 404 => None,
                Err(e) => return Err(e),
            };
            if let Some(pi) = current {
                match stage(&pi, s, &request) {
                    Stage::Same => return Ok(Intent::Pay(pi.client_secret)),
                    Stage::BeingPaid => return Ok(Intent::BeingPaid),
                    Stage::Gone => {}
                    Stage::Stale => {
                        // Another amount now: the old one must never be paid.
                        if let Err(e) = self.stripe.cancel_payment_intent(&pi.id).await {
                            // Paid, or being paid, since we looked?
                            let again = self.stripe.retrieve_payment_intent(&pi.id).await?;
                            match again.status.as_str() {
                                "canceled" => {}
                                s if is_payable(s) => return Err(e),
                                _ => return Ok(Intent::BeingPaid),
                            }
                        }
                    }
                }
            }
            request.replaces = Some(s.intent_id.clone());
        }
        let created = self.stripe.create_payment_intent(&request, now).await?;
        let record = StoredIntent {
            intent_id: created.id.clone(),
            key: request.idempotency_key(now),
            amount_minor: request.amount.minor,
            currency: request.amount.currency.clone(),
            amount_paid: request.amount_paid,
            created_at: now,
        };
        let replacing = stored.as_ref().map(|s| s.intent_id.as_str());
        if self
            .store
            .put_intent(&invoice_id, &record, replacing)
            .await
            .map_err(store_failed)?
        {
            return Ok(Intent::Pay(created.client_secret));
        }
        // Another tap stored its intent first (with Stripe's idempotency key
        // it is the same intent): answer with it if it is for this amount.
        let first = self
            .store
            .get_intent(&invoice_id)
            .await
            .map_err(store_failed)?
            .ok_or_else(|| {
                store_failed(crate::ports::StoreError::local(
                    "GetItem",
                    "intent vanished",
                ))
            })?;
        if first.intent_id == created.id {
            return Ok(Intent::Pay(created.client_secret));
        }
        // Ours was never handed out: make sure it is never paid.
        if let Err(e) = self.stripe.cancel_payment_intent(&created.id).await {
            tracing::warn!(%invoice_id, code = %e.code, "pay page: an unused intent could not be canceled");
        }
        if !made_for(&first, &request) {
            return Ok(Intent::Changed);
        }
        let pi = self
            .stripe
            .retrieve_payment_intent(&first.intent_id)
            .await?;
        Ok(match stage(&pi, &first, &request) {
            Stage::Same => Intent::Pay(pi.client_secret),
            Stage::BeingPaid => Intent::BeingPaid,
            Stage::Gone | Stage::Stale => Intent::Changed,
        })
    }
}

/// What a tap on Pay gets.
enum Intent {
    /// Confirm this client secret.
    Pay(String),
    /// An intent for this invoice is being paid: nothing new.
    BeingPaid,
    /// Another tap made an intent for another amount meanwhile: look again.
    Changed,
}

/// Where the stored intent stands for this request.
enum Stage {
    /// Payable, for this amount and these payments so far: hand it out.
    Same,
    /// Being paid, or paid and not yet applied: nothing new.
    BeingPaid,
    /// Payable, but for another amount or other payments so far: cancel it.
    Stale,
    /// Canceled: make a new one.
    Gone,
}

/// The stored intent was made for this amount, currency and payments so far.
fn made_for(stored: &StoredIntent, request: &IntentRequest) -> bool {
    stored.amount_minor == request.amount.minor
        && stored.currency == request.amount.currency
        && stored.amount_paid == request.amount_paid
}

/// A status in which the customer can still pay an intent.
fn is_payable(status: &str) -> bool {
    matches!(
        status,
        "requires_payment_method" | "requires_confirmation" | "requires_action"
    )
}

fn stage(pi: &PaymentIntent, stored: &StoredIntent, request: &IntentRequest) -> Stage {
    match pi.status.as_str() {
        "processing" | "requires_capture" => Stage::BeingPaid,
        "succeeded" => {
            // Applied once the invoice's payments grew by at least this intent
            // since it was made; until then a new intent could pay twice.
            let paid = crate::money::Currency::parse(&pi.currency.to_ascii_uppercase())
                .map(|c| crate::stripe::from_minor(pi.amount, c));
            match paid {
                Some(paid) if request.amount_paid >= stored.amount_paid + paid => Stage::Gone,
                _ => Stage::BeingPaid,
            }
        }
        s if is_payable(s) && made_for(stored, request) => Stage::Same,
        s if is_payable(s) => Stage::Stale,
        _ => Stage::Gone,
    }
}

fn store_failed(e: crate::ports::StoreError) -> StripeError {
    StripeError {
        status: 0,
        code: "store".into(),
        message: e.to_string(),
        transient: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Locale;

    #[test]
    fn routes_take_the_last_segments_whatever_the_prefix() {
        let t = "Zm9vYmFyZm9vYmFy";
        let tok = LinkToken::parse(t).unwrap();
        assert_eq!(route(&format!("/{t}")), Route::Page(tok.clone()));
        assert_eq!(
            route(&format!("/lambda-url/pay-page/{t}/")),
            Route::Page(tok.clone())
        );
        assert_eq!(route(&format!("/{t}/pay")), Route::Pay(tok.clone()));
        assert_eq!(route(&format!("/p/{t}/status")), Route::Status(tok));
        for bad in [
            "/",
            "",
            "/short",
            "/Zm9vYmFyZm9vYmF=",
            "/pay",
            "/Zm9vYmFyZm9vYmFy/other",
        ] {
            assert_eq!(route(bad), Route::Unknown, "{bad}");
        }
    }

    #[test]
    fn json_in_a_script_element_cannot_close_it() {
        let text = script_json(&json!({"t": "</script><script>alert(1)</script> & more"}));
        assert!(
            !text.contains('<') && !text.contains('>') && !text.contains('&'),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["t"], "</script><script>alert(1)</script> & more");
    }

    #[test]
    fn form_values_are_decoded() {
        assert_eq!(
            form_value("a=1&invoice=INV%201%2B2", "invoice").as_deref(),
            Some("INV 1+2")
        );
        assert_eq!(form_value("invoice=A+B", "invoice").as_deref(), Some("A B"));
        assert_eq!(form_value("x=1", "invoice"), None);
    }

    #[test]
    fn the_inline_assets_are_allowed_by_their_hashes_and_the_templates_render() {
        let assets = Assets::new();
        assert!(assets.script_hash.starts_with("'sha256-") && assets.script_hash.ends_with("='"));
        assert_ne!(assets.script_hash, assets.style_hash);
        let t = Strings::of(Locale::ZhHant);
        let html = assets
            .env
            .get_template("gone.html")
            .unwrap()
            .render(minijinja::value::Serde(
                json!({"t": t, "css": CSS, "lang": t.lang, "title": t.gone_title}),
            ))
            .unwrap();
        assert!(html.contains("此連結無效") && html.contains("lang=\"zh-Hant\""));
        // The style block is exactly the hashed text.
        assert!(html.contains(&format!("<style>{CSS}</style>")));
    }
}
