//! The pay page's configuration: its table, the business it speaks for, its
//! own address (for the `Origin` check and the links it renders) and Stripe.

use chrono_tz::Tz;

use super::{ConfigError, Env};
use crate::render::Locale;

/// Every variable [`PayPageConfig::from_lookup`] reads (and the ARN that
/// `aws::secrets::resolve` reads the Stripe key from).
pub const PAY_PAGE_ENV_VARS: &[&str] = &[
    "TABLE_NAME",
    "BUSINESS_NAME",
    "BUSINESS_TIMEZONE",
    "DEFAULT_LOCALE",
    "PAY_LINK_BASE_URL",
    "STRIPE_SECRET_KEY",
    "STRIPE_SECRET_ARN",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_API_BASE",
    "STRIPE_JS_URL",
];

#[derive(Clone)]
pub struct PayPageConfig {
    pub table_name: String,
    pub business_name: String,
    /// The calendar of invoices without their own time zone (overdue days).
    pub business_timezone: Tz,
    /// The language when neither the invoice nor the browser names one we write.
    pub default_locale: Locale,
    /// `PAY_LINK_BASE_URL` without a trailing slash: the page's links are `<base>/<token>`.
    pub base_url: String,
    /// `scheme://host[:port]` of the base: the only `Origin` a payment may come from.
    pub origin: String,
    /// `STRIPE_SECRET_KEY`, read from `STRIPE_SECRET_ARN` in a deployment.
    pub stripe_secret_key: String,
    pub stripe_publishable_key: String,
    /// Stripe's API (`https://api.stripe.com`; an emulator in tests).
    pub stripe_api_base: String,
    /// Stripe.js (`https://js.stripe.com/v3/`; an emulator's in tests).
    pub stripe_js_url: String,
}

/// Never prints the secret key.
impl std::fmt::Debug for PayPageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayPageConfig")
            .field("table_name", &self.table_name)
            .field("base_url", &self.base_url)
            .field("stripe_api_base", &self.stripe_api_base)
            .finish_non_exhaustive()
    }
}

/// `scheme://authority` of an https URL (http only on loopback, for local
/// runs), lower-cased and without a default port, as browsers send `Origin`;
/// else `None`.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = match scheme.as_str() {
        "https" => authority
            .strip_suffix(":443")
            .unwrap_or(&authority)
            .to_owned(),
        "http" => {
            let authority = authority
                .strip_suffix(":80")
                .unwrap_or(&authority)
                .to_owned();
            let host = if authority.starts_with("[::1]") {
                "[::1]"
            } else {
                authority.split(':').next().unwrap_or_default()
            };
            if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
                return None;
            }
            authority
        }
        _ => return None,
    };
    Some(format!("{scheme}://{authority}"))
}

impl PayPageConfig {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(get);
        let base_url = env.required("PAY_LINK_BASE_URL")?;
        let origin = origin_of(&base_url).ok_or_else(|| {
            ConfigError::invalid(
                "PAY_LINK_BASE_URL",
                "must be an https:// URL (http:// only on loopback)",
            )
        })?;
        let url = |name: &'static str, default: &str| -> Result<String, ConfigError> {
            let value = env.optional(name).unwrap_or_else(|| default.to_owned());
            origin_of(&value).map(|_| value.clone()).ok_or_else(|| {
                ConfigError::invalid(name, "must be an https:// URL (http:// only on loopback)")
            })
        };
        let stripe_secret_key = match env.optional("STRIPE_SECRET_KEY") {
            Some(key) => key,
            None if env.optional("STRIPE_SECRET_ARN").is_some() => {
                return Err(ConfigError::invalid(
                    "STRIPE_SECRET_ARN",
                    "is read from Secrets Manager at start-up (aws::secrets::resolve), not here",
                ))
            }
            None => return Err(ConfigError::Missing("STRIPE_SECRET_KEY")),
        };
        if !(stripe_secret_key.starts_with("sk_") || stripe_secret_key.starts_with("rk_")) {
            return Err(ConfigError::invalid(
                "STRIPE_SECRET_KEY",
                "must be a Stripe secret or restricted key (sk_... or rk_...)",
            ));
        }
        let stripe_publishable_key = env.required("STRIPE_PUBLISHABLE_KEY")?;
        if !stripe_publishable_key.starts_with("pk_") {
            return Err(ConfigError::invalid(
                "STRIPE_PUBLISHABLE_KEY",
                "must be a publishable key (pk_...)",
            ));
        }
        // A test key with a live one (or the reverse) would take no payment.
        if stripe_secret_key.contains("_live_") != stripe_publishable_key.contains("_live_") {
            return Err(ConfigError::invalid(
                "STRIPE_PUBLISHABLE_KEY",
                "is not in the same mode (test or live) as the secret key",
            ));
        }
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            business_name: env.required("BUSINESS_NAME")?,
            business_timezone: env
                .required("BUSINESS_TIMEZONE")?
                .parse()
                .map_err(|_| ConfigError::invalid("BUSINESS_TIMEZONE", "not an IANA time zone"))?,
            default_locale: env.locale("DEFAULT_LOCALE")?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            origin,
            stripe_secret_key,
            stripe_publishable_key,
            stripe_api_base: url("STRIPE_API_BASE", "https://api.stripe.com")?,
            stripe_js_url: url("STRIPE_JS_URL", "https://js.stripe.com/v3/")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &[(&str, &str)] = &[
        ("TABLE_NAME", "invoices"),
        ("BUSINESS_NAME", "Acme"),
        ("BUSINESS_TIMEZONE", "Europe/London"),
        ("PAY_LINK_BASE_URL", "https://pay.acme.example/"),
        ("STRIPE_SECRET_KEY", "sk_test_123"),
        ("STRIPE_PUBLISHABLE_KEY", "pk_test_123"),
    ];

    fn parse(pairs: &[(&str, &str)]) -> Result<PayPageConfig, ConfigError> {
        PayPageConfig::from_lookup(|k| {
            pairs
                .iter()
                .rev()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_to_stripe_and_derives_the_origin() {
        let c = parse(BASE).unwrap();
        assert_eq!(c.origin, "https://pay.acme.example");
        assert_eq!(c.base_url, "https://pay.acme.example");
        assert_eq!(c.stripe_api_base, "https://api.stripe.com");
        assert_eq!(c.stripe_js_url, "https://js.stripe.com/v3/");
        assert!(!format!("{c:?}").contains("sk_test_123"));
        let local = [
            BASE,
            &[(
                "PAY_LINK_BASE_URL",
                "http://127.0.0.1:9000/lambda-url/pay-page",
            )],
        ]
        .concat();
        assert_eq!(parse(&local).unwrap().origin, "http://127.0.0.1:9000");
    }

    #[test]
    fn each_missing_or_bad_variable_is_named() {
        for (i, (name, _)) in BASE.iter().enumerate() {
            let mut pairs = BASE.to_vec();
            pairs.remove(i);
            let err = parse(&pairs).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        for (name, bad) in [
            ("STRIPE_SECRET_KEY", "pk_test_1"),
            ("STRIPE_PUBLISHABLE_KEY", "sk_test_1"),
            ("STRIPE_PUBLISHABLE_KEY", "pk_live_1"),
            ("PAY_LINK_BASE_URL", "pay.acme.example"),
            ("STRIPE_API_BASE", "ftp://x"),
        ] {
            let pairs = [BASE, &[(name, bad)]].concat();
            let err = parse(&pairs).unwrap_err();
            assert!(err.to_string().contains(name), "{name}={bad}: {err}");
        }
        let arn_only: Vec<_> = BASE
            .iter()
            .filter(|(k, _)| *k != "STRIPE_SECRET_KEY")
            .copied()
            .chain([("STRIPE_SECRET_ARN", "arn:aws:secretsmanager:x")])
            .collect();
        assert!(parse(&arn_only)
            .unwrap_err()
            .to_string()
            .contains("STRIPE_SECRET_ARN"));
    }

    #[test]
    fn an_origin_is_scheme_and_authority() {
        assert_eq!(
            origin_of("https://a.example/x?y").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8/").as_deref(),
            Some("http://127.0.0.1:8")
        );
        assert_eq!(origin_of("https://user@a.example/"), None);
        assert_eq!(origin_of("javascript:alert(1)"), None);
        // As a browser sends it: lower case, no default port.
        assert_eq!(
            origin_of("HTTPS://Pay.Example.COM:443/x").as_deref(),
            Some("https://pay.example.com")
        );
        assert_eq!(
            origin_of("https://pay.example.com:8443").as_deref(),
            Some("https://pay.example.com:8443")
        );
        // Plain http only on loopback.
        assert_eq!(origin_of("http://pay.example.com/"), None);
        assert_eq!(
            origin_of("http://localhost:9000/x").as_deref(),
            Some("http://localhost:9000")
        );
        assert_eq!(
            origin_of("http://[::1]:9000/").as_deref(),
            Some("http://[::1]:9000")
        );
    }
}
