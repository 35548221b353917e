//! The pay page's handler over the in-memory store and localstripe: what
//! each request gets back, and what it makes at Stripe. (The same pages in a
//! real browser: scripts/pay-page-e2e.sh.)

use chrono::{DateTime, Duration, Utc};
use dunning::config::PayPageConfig;
use dunning::link::{LinkTarget, LinkToken, PayLink};
use dunning::pay_page::{PageAnswer, PageDeps, PageRequest};
use dunning::ports::Links;
use dunning::stripe::http::StripeClient;
use dunning::testing::MemoryStore;
use dunning_e2e::LocalStripe;

const ORIGIN: &str = "https://pay.acme.example";

fn now() -> DateTime<Utc> {
    "2026-11-23T15:00:00Z".parse().unwrap()
}

fn config(stripe: &str) -> PayPageConfig {
    PayPageConfig::from_lookup(|k| {
        Some(
            match k {
                "TABLE_NAME" => "invoices",
                "BUSINESS_NAME" => "Acme Ltd",
                "BUSINESS_TIMEZONE" => "Europe/London",
                "PAY_LINK_BASE_URL" => ORIGIN,
                "STRIPE_SECRET_KEY" => "sk_test_localstripe",
                "STRIPE_PUBLISHABLE_KEY" => "pk_test_localstripe",
                "STRIPE_API_BASE" => stripe,
                "STRIPE_JS_URL" => "https://js.stripe.com/v3/",
                _ => return None,
            }
            .to_owned(),
        )
    })
    .unwrap()
}

struct Page {
    deps: PageDeps<MemoryStore>,
    store: MemoryStore,
    _stripe: Option<LocalStripe>,
}

impl Page {
    fn new(stripe: Option<LocalStripe>) -> Self {
        let base = stripe
            .as_ref()
            .map_or("http://127.0.0.1:9".to_owned(), |s| s.base.clone());
        let store = MemoryStore::new();
        let client = StripeClient::new(&base, "sk_test_localstripe").unwrap();
        Self {
            deps: PageDeps::new(store.clone(), client, config(&base)),
            store,
            _stripe: stripe,
        }
    }

    fn invoice(&self, id: &str, extra: &[(&str, &str)]) {
        let mut attrs = vec![
            ("invoice_id", id),
            ("sk", "invoice"),
            ("customer_id", "C-1"),
            ("customer_name", "Ana Lima"),
            ("email", "ana@example.com"),
            ("phone", "+15555550101"),
            ("amount", "1250.00"),
            ("currency", "USD"),
            ("due_date", "2026-11-20"),
            ("status", "open"),
        ];
        for (k, v) in extra {
            attrs.retain(|(n, _)| n != k);
            attrs.push((k, v));
        }
        self.store.put_text(&attrs);
    }

    async fn link(&self, target: LinkTarget) -> LinkToken {
        let link = PayLink::create(target, now() - Duration::days(1), 45).unwrap();
        assert!(self.store.put_link(&link).await.unwrap());
        link.token
    }

    async fn get(&self, path: &str, accept: Option<&str>) -> PageAnswer {
        self.request("GET", path, None, accept, b"").await
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        origin: Option<&str>,
        accept: Option<&str>,
        body: &[u8],
    ) -> PageAnswer {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        self.deps
            .handle(PageRequest {
                method,
                path,
                query,
                origin,
                accept_language: accept,
                body,
                now: now(),
            })
            .await
    }

    /// A tap on Pay for `invoice` showing `amount`.
    async fn pay(&self, token: &LinkToken, invoice: &str, amount: &str) -> PageAnswer {
        let body = format!("invoice={invoice}&amount={amount}");
        self.request(
            "POST",
            &format!("/{}/pay", token.as_str()),
            Some(ORIGIN),
            None,
            body.as_bytes(),
        )
        .await
    }
}

fn json(answer: &PageAnswer) -> serde_json::Value {
    serde_json::from_str(&answer.body).unwrap_or_else(|_| panic!("not JSON: {}", answer.body))
}

#[tokio::test]
async fn an_invoice_page_shows_what_is_owed_with_its_security_headers() {
    let page = Page::new(None);
    page.invoice(
        "INV-1",
        &[("late_fee#overdue", "25.00"), ("amount_paid", "250.00")],
    );
    let token = page.link(LinkTarget::Invoice("INV-1".into())).await;
    let answer = page
        .get(&format!("/{}", token.as_str()), Some("zh-CN"))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // The invoice has no locale: the browser's language.
    assert!(answer.body.contains("lang=\"zh-Hans\""));
    assert!(answer.body.contains("USD 1,025.00") && answer.body.contains("USD 25.00"));
    assert!(answer.body.contains("已逾期 3 天"));
    assert!(
        !answer.body.contains("ana@example.com")
            && !answer.body.contains("+1555")
            && !answer.body.contains("Ana Lima")
    );
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let csp = answer.header("content-security-policy").unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(
        csp.contains("script-src 'sha256-") && csp.contains("https://js.stripe.com"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    // Page weight before Stripe.js (the figure is in docs/benchmarks.md).
    assert!(answer.body.len() < 20 * 1024, "{} bytes", answer.body.len());
    // HEAD: the same answer without a body.
    let head = page
        .request("HEAD", &format!("/{}", token.as_str()), None, None, b"")
        .await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
}

#[tokio::test]
async fn links_that_do_not_open_get_one_neutral_page() {
    let page = Page::new(None);
    page.invoice("INV-1", &[]);
    let unknown = LinkToken::generate().unwrap();
    let revoked = page.link(LinkTarget::Invoice("INV-1".into())).await;
    page.store
        .revoke_link(&revoked, now() - Duration::hours(1))
        .await
        .unwrap();
    let mut expired = PayLink::create(
        LinkTarget::Invoice("INV-1".into()),
        now() - Duration::days(50),
        45,
    )
    .unwrap();
    expired.expires_at = now() - Duration::days(5);
    page.store.put_link(&expired).await.unwrap();
    let gone = page.link(LinkTarget::Invoice("NO-SUCH".into())).await;
    let cases = [
        (format!("/{}", unknown.as_str()), 404),
        (format!("/{}", revoked.as_str()), 410),
        (format!("/{}", expired.token.as_str()), 410),
        (format!("/{}", gone.as_str()), 404),
        ("/not-a-token".to_owned(), 404),
        ("/".to_owned(), 404),
    ];
    let mut bodies = Vec::new();
    for (path, status) in &cases {
        let a = page.get(path, None).await;
        assert_eq!(a.status, *status, "{path}");
        assert_eq!(a.header("cache-control"), Some("no-store"));
        bodies.push(a.body);
    }
    // The same words whatever the reason: nothing says whether an invoice exists.
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert!(bodies[0].contains("This link is not valid") && !bodies[0].contains("INV-1"));
    // Wrong methods are 405.
    let token = page.link(LinkTarget::Invoice("INV-1".into())).await;
    let put = page
        .request(
            "PUT",
            &format!("/{}", token.as_str()),
            Some(ORIGIN),
            None,
            b"",
        )
        .await;
    assert_eq!(put.status, 405);
}

#[tokio::test]
async fn an_invoice_with_its_own_hosted_page_is_sent_there() {
    let page = Page::new(None);
    page.invoice(
        "INV-1",
        &[("pay_url", "https://invoice.stripe.com/i/acct_1/test_1")],
    );
    let token = page.link(LinkTarget::Invoice("INV-1".into())).await;
    let answer = page.get(&format!("/{}", token.as_str()), None).await;
    assert_eq!(
        (answer.status, answer.header("location")),
        (303, Some("https://invoice.stripe.com/i/acct_1/test_1"))
    );
    // The page never makes an intent for it.
    let pay = page.pay(&token, "INV-1", "1250.00").await;
    assert_eq!(
        (pay.status, json(&pay)["error"].as_str()),
        (409, Some("pay_elsewhere"))
    );
}

#[tokio::test]
async fn a_payment_starts_only_from_the_page_and_only_for_its_invoices() {
    let page = Page::new(None);
    page.invoice("INV-1", &[]);
    page.invoice("INV-2", &[("status", "paid"), ("amount_paid", "1250.00")]);
    let token = page.link(LinkTarget::Invoice("INV-1".into())).await;
    let path = format!("/{}/pay", token.as_str());
    for origin in [
        None,
        Some("https://evil.example"),
        Some("https://pay.acme.example.evil.example"),
    ] {
        let a = page
            .request("POST", &path, origin, None, b"invoice=INV-1")
            .await;
        assert_eq!(a.status, 403, "{origin:?}");
    }
    let other = page.pay(&token, "INV-2", "0").await;
    assert_eq!(
        (other.status, json(&other)["error"].as_str()),
        (404, Some("not_on_this_link"))
    );
    let paid = page.link(LinkTarget::Invoice("INV-2".into())).await;
    let a = page.pay(&paid, "INV-2", "0").await;
    assert_eq!(
        (a.status, json(&a)["error"].as_str()),
        (409, Some("nothing_to_pay"))
    );
    // An amount other than the one owed (the page was stale): look again.
    for shown in ["1000.00", "", "abc"] {
        let a = page.pay(&token, "INV-1", shown).await;
        assert_eq!(
            (a.status, json(&a)["error"].as_str()),
            (409, Some("amount_changed")),
            "{shown:?}"
        );
    }
}

#[tokio::test]
async fn taps_make_one_intent_for_exactly_the_outstanding_amount() -> anyhow::Result<()> {
    let page = Page::new(Some(LocalStripe::start()?));
    let stripe = page._stripe.as_ref().unwrap();
    page.invoice(
        "INV-1",
        &[("late_fee#overdue", "25.00"), ("amount_paid", "250.00")],
    );
    page.invoice("INV-K", &[("amount", "125.505"), ("currency", "KWD")]);
    let token = page
        .link(LinkTarget::Customer {
            customer_id: "C-1".into(),
            invoices: vec!["INV-1".into(), "INV-K".into()],
        })
        .await;
    // Two first taps at once: localstripe has no idempotency keys, so each
    // makes an intent; the create-only record keeps one, and both answers are it.
    let (a, b) = tokio::join!(
        page.pay(&token, "INV-1", "1025.00"),
        page.pay(&token, "INV-1", "1025.00")
    );
    assert_eq!((a.status, b.status), (200, 200), "{} {}", a.body, b.body);
    let secret = json(&a)["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(
        json(&b)["client_secret"].as_str(),
        Some(secret.as_str()),
        "the same intent"
    );
    let id = |secret: &str| secret.split("_secret_").next().unwrap().to_owned();
    let stored = page.store.get_intent("INV-1").await?.expect("stored");
    assert_eq!(stored.intent_id, id(&secret));
    // The race happened: two intents were made, and the one never handed out is canceled.
    let made: Vec<(String, String)> = stripe
        .intents()?
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap_or("").to_owned(),
                i["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(made.len(), 2, "{made:?}");
    assert!(
        made.iter()
            .any(|(i, st)| *i != id(&secret) && st == "canceled"),
        "{made:?}"
    );
    let intent = stripe.intent(&id(&secret))?;
    assert_eq!(
        intent["amount"], 102_500,
        "USD 1,250.00 - 250.00 + 25.00 in cents"
    );
    assert_eq!(intent["currency"], "usd");
    assert_eq!(intent["metadata"]["invoice_id"], "INV-1");
    // A later tap: the same intent again.
    let again = page.pay(&token, "INV-1", "1025.00").await;
    assert_eq!(
        json(&again)["client_secret"].as_str(),
        Some(secret.as_str())
    );
    // Three decimals: rounded up to Stripe's step of 0.010.
    let kwd = page.pay(&token, "INV-K", "125.505").await;
    let kwd = id(json(&kwd)["client_secret"].as_str().unwrap());
    assert_eq!(stripe.intent(&kwd)?["amount"], 125_510);
    // A late fee since: a new intent for the new amount, the old one canceled.
    page.store.set(
        "INV-1",
        "late_fee#overdue_7",
        Some(dunning::invoice::RawValue::Text("10.00".into())),
    );
    let stale = page.pay(&token, "INV-1", "1025.00").await;
    assert_eq!(json(&stale)["error"], "amount_changed");
    let fresh = page.pay(&token, "INV-1", "1035.00").await;
    let new_secret = json(&fresh)["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(stripe.intent(&id(&new_secret))?["amount"], 103_500);
    assert_eq!(
        stripe.intent(&id(&secret))?["status"],
        "canceled",
        "the old amount can never be paid"
    );
    // The status the page polls.
    let status = page
        .get(&format!("/{}/status?invoice=INV-1", token.as_str()), None)
        .await;
    assert_eq!(json(&status)["state"], "open");
    Ok(())
}

#[tokio::test]
async fn an_intent_being_paid_is_never_followed_by_a_second_one() -> anyhow::Result<()> {
    let page = Page::new(Some(LocalStripe::start()?));
    let stripe = page._stripe.as_ref().unwrap();
    page.invoice("INV-1", &[]);
    let token = page.link(LinkTarget::Invoice("INV-1".into())).await;
    let first = page.pay(&token, "INV-1", "1250.00").await;
    let secret = json(&first)["client_secret"].as_str().unwrap().to_owned();
    stripe.pay_with_test_card(&secret)?;
    // Paid at Stripe, not yet applied by the webhook: a tap, even for
    // another amount now, gets no intent to pay.
    let tap = page.pay(&token, "INV-1", "1250.00").await;
    assert_eq!(json(&tap)["state"], "confirming", "{}", tap.body);
    page.store.set(
        "INV-1",
        "late_fee#overdue",
        Some(dunning::invoice::RawValue::Text("25.00".into())),
    );
    let tap = page.pay(&token, "INV-1", "1275.00").await;
    assert_eq!(json(&tap)["state"], "confirming", "{}", tap.body);
    // Another payment (a bank transfer) moved amount_paid, but not by this
    // intent's amount: it is still not applied, so still nothing new.
    page.store.set(
        "INV-1",
        "amount_paid",
        Some(dunning::invoice::RawValue::Text("100.00".into())),
    );
    let tap = page.pay(&token, "INV-1", "1175.00").await;
    assert_eq!(json(&tap)["state"], "confirming", "{}", tap.body);
    // Once the payment is applied (amount_paid grew by its amount), what is left is a new intent.
    page.store.set(
        "INV-1",
        "amount_paid",
        Some(dunning::invoice::RawValue::Text("1250.00".into())),
    );
    let rest = page.pay(&token, "INV-1", "25.00").await;
    let rest = json(&rest)["client_secret"]
        .as_str()
        .unwrap()
        .split("_secret_")
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(stripe.intent(&rest)?["amount"], 2500);
    Ok(())
}

#[tokio::test]
async fn stripe_unreachable_is_a_clear_try_again() {
    // Nothing listens on port 9 of loopback.
    let page = Page::new(None);
    page.invoice("INV-1", &[]);
    let token = page.link(LinkTarget::Invoice("INV-1".into())).await;
    let a = page.pay(&token, "INV-1", "1250.00").await;
    assert_eq!(
        (a.status, json(&a)["error"].as_str()),
        (503, Some("unavailable"))
    );
    assert!(json(&a)["message"].as_str().unwrap().contains("try again"));
}

#[tokio::test]
async fn the_unsubscribe_page_asks_then_its_button_or_a_one_click_post_opts_out_of_email() {
    use dunning::ports::Store;
    let page = Page::new(None);
    page.invoice("INV-1", &[("locale", "zh-Hant")]);
    let token = page.link(LinkTarget::Invoice("INV-1".into())).await;
    let path = format!("/{}/unsubscribe", token.as_str());
    let record = || async {
        page.store
            .customers(&["C-1".to_owned()])
            .await
            .unwrap()
            .remove("C-1")
    };

    // Opening it asks, in the customer's language, and changes nothing.
    let asked = page.get(&path, Some("en-US")).await;
    assert_eq!(asked.status, 200);
    assert_eq!(asked.header("content-language"), Some("zh-Hant"));
    assert!(asked.body.contains("停止接收電子郵件提醒？"));
    assert!(asked.body.contains(r#"<form method="post">"#));
    assert!(asked
        .header("content-security-policy")
        .unwrap()
        .contains("form-action 'self'"));
    assert_eq!(record().await, None);

    // A mail client's one-click POST (RFC 8058), from its own servers: no Origin.
    let one_click = page
        .request("POST", &path, None, None, b"List-Unsubscribe=One-Click")
        .await;
    assert_eq!(one_click.status, 200);
    assert!(one_click.body.contains("已停止電子郵件提醒"));
    let after = record().await.unwrap();
    let mark = &after.opt_outs["email"];
    assert_eq!(
        (mark.source.as_str(), mark.reason.as_deref(), mark.at),
        ("unsubscribe", Some("one-click"), now())
    );
    assert!(
        after.accepts(dunning::channel::Channel::Sms),
        "SMS still go"
    );

    // The page's own button again: idempotent, the first mark stays.
    let again = page
        .request("POST", &path, Some(ORIGIN), None, b"confirm=1")
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(record().await.unwrap(), after);

    // A revoked link still unsubscribes; an unknown token does not; other methods are refused.
    page.store.revoke_link(&token, now()).await.unwrap();
    page.invoice("INV-2", &[("customer_id", "C-2")]);
    let other = page.link(LinkTarget::Invoice("INV-2".into())).await;
    page.store.revoke_link(&other, now()).await.unwrap();
    let revoked = format!("/{}/unsubscribe", other.as_str());
    assert_eq!(
        page.request("POST", &revoked, None, None, b"List-Unsubscribe=One-Click")
            .await
            .status,
        200
    );
    let c2 = page.store.customers(&["C-2".to_owned()]).await.unwrap();
    assert_eq!(c2["C-2"].opt_outs["email"].source, "unsubscribe");
    let unknown = format!("/{}/unsubscribe", "A".repeat(16));
    assert_eq!(
        page.request("POST", &unknown, None, None, b"").await.status,
        404
    );
    let put = page.request("PUT", &path, None, None, b"").await;
    assert_eq!(
        (put.status, put.header("allow")),
        (405, Some("GET, HEAD, POST"))
    );
}

#[tokio::test]
async fn a_customer_link_s_statement_lists_all_their_open_invoices_each_payable_here() {
    let page = Page::new(None);
    page.invoice("A", &[("due_date", "2026-11-20")]);
    page.invoice("B", &[("due_date", "2026-12-05"), ("amount", "300.00")]);
    // Open, but on no message: the statement shows it all the same.
    page.invoice("C", &[("due_date", "2026-08-01"), ("amount", "80.00")]);
    page.invoice(
        "D",
        &[
            ("status", "paid"),
            ("amount_paid", "1250.00"),
            ("paid_at", "2026-11-22T10:00:00.000Z"),
        ],
    );
    page.store.put_text(&[
        ("invoice_id", "D"),
        ("sk", "payment#stripe:pi_d"),
        ("paid_at", "2026-11-22T10:00:00.000Z"),
        ("amount", "1250.00"),
        ("currency", "USD"),
    ]);
    // Paid long ago, and another customer's: on no statement of C-1.
    page.invoice(
        "OLD",
        &[
            ("status", "paid"),
            ("amount_paid", "1250.00"),
            ("paid_at", "2026-03-01T10:00:00.000Z"),
        ],
    );
    page.invoice("THEIRS", &[("customer_id", "C-2")]);
    let token = page
        .link(LinkTarget::Customer {
            customer_id: "C-1".into(),
            invoices: vec!["A".into(), "B".into()],
        })
        .await;
    let customer_page = page.get(&format!("/{}", token.as_str()), None).await;
    // minijinja writes `/` in attributes as `&#x2f;`.
    let href = format!("{ORIGIN}/{}/statement", token.as_str()).replace('/', "&#x2f;");
    assert!(
        customer_page.body.contains(&format!("href=\"{href}\"")),
        "the customer page links to its statement: {}",
        customer_page.body
    );

    let a = page
        .get(&format!("/{}/statement", token.as_str()), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert!(a
        .header("content-security-policy")
        .is_some_and(|csp| csp.contains("script-src") && csp.contains("frame-ancestors 'none'")));
    let lines: Vec<&str> = a
        .body
        .match_indices("<li class=\"line\" data-invoice-id=\"")
        .map(|(i, m)| {
            let rest = &a.body[i + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(
        lines,
        ["C", "A", "B"],
        "every open invoice of theirs, oldest due first"
    );
    for text in [
        "Statement for Ana Lima, 23 November 2026",
        "USD 1,630.00",
        "91–120 days overdue",
        "data-invoice=\"C\" data-amount=\"80.00\"",
        "Payments received in the last 90 days",
        "<td>22 November 2026</td><td>D</td>",
    ] {
        assert!(a.body.contains(text), "the statement shows {text:?}");
    }
    assert!(!a.body.contains("THEIRS") && !a.body.contains("OLD"));
    assert!(!a.body.contains("ana@example.com") && !a.body.contains("+1555"));

    // Its invoices are payable through the link, another customer's are not.
    let stale = page.pay(&token, "C", "1.00").await;
    assert_eq!(
        (stale.status, json(&stale)["error"].as_str()),
        (409, Some("amount_changed")),
        "C is the link's to pay (it only showed another amount)"
    );
    let status = page
        .get(&format!("/{}/status?invoice=C", token.as_str()), None)
        .await;
    assert_eq!(json(&status)["state"], "open");
    let long = "X".repeat(3000);
    for other in ["THEIRS", "NOPE", "C%23invoice", "", long.as_str()] {
        let a = page.pay(&token, other, "1250.00").await;
        assert_eq!(
            (a.status, json(&a)["error"].as_str()),
            (404, Some("not_on_this_link")),
            "{other}"
        );
    }

    // An invoice's link has no statement; a revoked link's is gone.
    let one = page.link(LinkTarget::Invoice("A".into())).await;
    let a = page
        .get(&format!("/{}/statement", one.as_str()), None)
        .await;
    assert_eq!(a.status, 404);
    assert!(!a.body.contains("USD"));
    let pay_other = page.pay(&one, "C", "80.00").await;
    assert_eq!(json(&pay_other)["error"], "not_on_this_link");
    page.store.revoke_link(&token, now()).await.unwrap();
    let a = page
        .get(&format!("/{}/statement", token.as_str()), None)
        .await;
    assert_eq!(a.status, 410);
    assert!(!a.body.contains("Ana Lima"));
    let a = page
        .request(
            "POST",
            &format!("/{}/statement", token.as_str()),
            Some(ORIGIN),
            None,
            b"",
        )
        .await;
    assert_eq!((a.status, a.header("allow")), (405, Some("GET, HEAD")));
}
