//! Short pay links. A link is `PAY_LINK_BASE_URL/<token>`:
//! a token of 16 URL-safe characters, 96 random bits from the operating
//! system's CSPRNG, that names a stored [`PayLink`] record.
//!
//! Why a stored record and not a MAC with a key id: 16 characters hold 96
//! bits, and an unforgeable MAC needs all of them, so the token has no room
//! left to say which invoice (or customer) it is for, nor until when. A
//! record keyed by a random token carries both, makes a link revocable (mark
//! the record) without a deny list, and has no key to rotate: a token is
//! unguessable by itself, so old links keep working through any rotation of
//! the signing keys. The cost is one read per page view, which a bad token
//! also costs at most (its format is checked first, for free).

use chrono::{DateTime, Utc};

/// The characters of a token: base64url without padding.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Random bytes in a token (12 bytes = 96 bits = 16 characters).
const TOKEN_BYTES: usize = 12;
/// Characters in a token.
pub const TOKEN_LEN: usize = 16;

/// A link's token: 16 URL-safe characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkToken(String);

/// The operating system gave no randomness: no link can be made safely.
#[derive(Debug, thiserror::Error)]
#[error("no randomness from the operating system: {0}")]
pub struct RandomnessError(String);

impl LinkToken {
    /// A new token from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, RandomnessError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| RandomnessError(e.to_string()))?;
        Ok(Self::from_bytes(bytes))
    }

    /// The token of 12 bytes (base64url, 6 bits a character).
    fn from_bytes(bytes: [u8; TOKEN_BYTES]) -> Self {
        let mut text = String::with_capacity(TOKEN_LEN);
        for chunk in bytes.chunks(3) {
            let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
            for shift in [18, 12, 6, 0] {
                text.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            }
        }
        Self(text)
    }

    /// A token as found in a URL path: exactly 16 characters of the
    /// alphabet, else `None` (refused without a lookup).
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == TOKEN_LEN && text.bytes().all(|b| ALPHABET.contains(&b)))
            .then(|| Self(text.to_owned()))
    }

    /// The token a preview shows: the length of a real one, and plainly not one.
    pub fn placeholder() -> Self {
        Self("PreviewOnly00000".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The link a message carries: `base/<token>` (one slash between).
    pub fn url(&self, base: &str) -> String {
        format!("{}/{}", base.trim_end_matches('/'), self.0)
    }
}

/// What a link opens: one invoice, or a customer's page of the invoices a
/// message covered (each payable while it is open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTarget {
    Invoice(String),
    Customer {
        customer_id: String,
        /// The invoices the message named, in its order (at most
        /// [`crate::claim::MAX_COMBINED`]).
        invoices: Vec<String>,
    },
}

impl LinkTarget {
    /// The invoices the page shows.
    pub fn invoice_ids(&self) -> Vec<&str> {
        match self {
            Self::Invoice(id) => vec![id.as_str()],
            Self::Customer { invoices, .. } => invoices.iter().map(String::as_str).collect(),
        }
    }
}

/// Separates the invoice ids of a customer link in its record (an invoice id
/// never holds `#`: [`crate::invoice::Invoice::parse`] refuses it).
const ID_SEPARATOR: char = '#';

/// A stored link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayLink {
    pub token: LinkToken,
    pub target: LinkTarget,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Whether a link opens its page at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Active,
    Expired,
    Revoked,
}

/// How long a link's record outlives its expiry, so that an expired link
/// still finds its record (and its "expired" page) for a while.
pub const RECORD_GRACE_DAYS: i64 = 30;

impl PayLink {
    /// The record's text attributes, as every store writes them (and
    /// `link_ttl`, a number: [`PayLink::record_ends`]).
    pub fn text_fields(&self) -> Vec<(&'static str, String)> {
        let rfc3339 = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut fields = match &self.target {
            LinkTarget::Invoice(id) => vec![
                ("target_kind", "invoice".to_owned()),
                ("target_id", id.clone()),
            ],
            LinkTarget::Customer {
                customer_id,
                invoices,
            } => vec![
                ("target_kind", "customer".to_owned()),
                ("target_id", customer_id.clone()),
                ("invoice_ids", invoices.join(&ID_SEPARATOR.to_string())),
            ],
        };
        fields.push(("created_at", rfc3339(self.created_at)));
        fields.push(("expires_at", rfc3339(self.expires_at)));
        if let Some(at) = self.revoked_at {
            fields.push(("revoked_at", rfc3339(at)));
        }
        fields
    }

    /// The link a record holds, from its text attributes (`text`); `None`
    /// when the record is not a well-formed link.
    pub fn from_text_fields<'r>(
        token: &LinkToken,
        text: impl Fn(&str) -> Option<&'r str>,
    ) -> Option<Self> {
        let instant = |name: &str| {
            text(name)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let id = text("target_id")?.to_owned();
        let target = match text("target_kind")? {
            "invoice" => LinkTarget::Invoice(id),
            "customer" => LinkTarget::Customer {
                customer_id: id,
                invoices: text("invoice_ids")?
                    .split(ID_SEPARATOR)
                    .filter(|i| !i.is_empty())
                    .map(str::to_owned)
                    .collect(),
            },
            _ => return None,
        };
        Some(Self {
            token: token.clone(),
            target,
            created_at: instant("created_at")?,
            expires_at: instant("expires_at")?,
            revoked_at: match text("revoked_at") {
                None => None,
                Some(_) => Some(instant("revoked_at")?),
            },
        })
    }

    /// A new link to `target`, open for `days` from `now`.
    pub fn create(
        target: LinkTarget,
        now: DateTime<Utc>,
        days: u64,
    ) -> Result<Self, RandomnessError> {
        Ok(Self {
            token: LinkToken::generate()?,
            target,
            created_at: now,
            expires_at: now + chrono::Duration::days(i64::try_from(days).unwrap_or(365)),
            revoked_at: None,
        })
    }

    /// When the store may delete the record (DynamoDB's TTL, `link_ttl`).
    pub fn record_ends(&self) -> DateTime<Utc> {
        self.expires_at + chrono::Duration::days(RECORD_GRACE_DAYS)
    }

    pub fn state(&self, now: DateTime<Utc>) -> LinkState {
        match self.revoked_at {
            Some(at) if at <= now => LinkState::Revoked,
            _ if now >= self.expires_at => LinkState::Expired,
            _ => LinkState::Active,
        }
    }
}

/// The intent the pay page made last for an invoice, kept in its own item
/// (partition `intent#<invoice_id>`, sort key `intent`, deleted by TTL), so
/// that every tap, even days later, finds it: the same intent while the
/// amount and the payments are unchanged; none while it is being paid; a
/// new one (the old one canceled) once the amount changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIntent {
    pub intent_id: String,
    /// The idempotency key it was created with.
    pub key: String,
    /// What it charges, in Stripe's minor units and currency.
    pub amount_minor: i64,
    pub currency: String,
    /// The invoice's `amount_paid` when it was made: a succeeded intent
    /// with the same `amount_paid` has not been applied yet.
    pub amount_paid: rust_decimal::Decimal,
    pub created_at: DateTime<Utc>,
}

impl StoredIntent {
    /// How long the record is kept (the table's TTL, `link_ttl`): longer
    /// than any link opens (`PAY_LINK_DAYS` is at most 365), so that no tap
    /// finds an intent's record gone while the intent may still be paid.
    pub const KEEP_DAYS: i64 = 400;
    pub const SORT_KEY: &'static str = "intent";

    /// The item's partition: apart from the invoice's, so that the pay
    /// page's role may write only these (IAM `dynamodb:LeadingKeys`).
    pub fn partition(invoice_id: &str) -> String {
        format!("intent#{invoice_id}")
    }

    /// The record's text attributes, as every store writes them (and
    /// `link_ttl`, a number: [`StoredIntent::record_ends`]).
    pub fn text_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("intent_id", self.intent_id.clone()),
            ("key", self.key.clone()),
            ("amount_minor", self.amount_minor.to_string()),
            ("currency", self.currency.clone()),
            ("amount_paid", self.amount_paid.to_string()),
            (
                "created_at",
                self.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ),
        ]
    }

    pub fn from_text_fields<'r>(text: impl Fn(&str) -> Option<&'r str>) -> Option<Self> {
        Some(Self {
            intent_id: text("intent_id")?.to_owned(),
            key: text("key")?.to_owned(),
            amount_minor: text("amount_minor")?.parse().ok()?,
            currency: text("currency")?.to_owned(),
            amount_paid: text("amount_paid")?.parse().ok()?,
            created_at: DateTime::parse_from_rfc3339(text("created_at")?)
                .ok()?
                .with_timezone(&Utc),
        })
    }

    pub fn record_ends(&self) -> DateTime<Utc> {
        self.created_at + chrono::Duration::days(Self::KEEP_DAYS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_token_is_sixteen_url_safe_characters_and_parses_back() {
        let t = LinkToken::generate().unwrap();
        assert_eq!(t.as_str().len(), TOKEN_LEN);
        assert_eq!(LinkToken::parse(t.as_str()), Some(t.clone()));
        assert_eq!(
            t.url("https://pay.example.com/p/"),
            format!("https://pay.example.com/p/{}", t.as_str())
        );
        // Known bytes give the base64url text (RFC 4648 test vector shape).
        assert_eq!(LinkToken::from_bytes([0; 12]).as_str(), "AAAAAAAAAAAAAAAA");
        assert_eq!(
            LinkToken::from_bytes([0xff; 12]).as_str(),
            "________________"
        );
        assert_eq!(
            LinkToken::from_bytes(*b"foobarfoobar").as_str(),
            "Zm9vYmFyZm9vYmFy"
        );
    }

    #[test]
    fn anything_else_in_the_path_is_refused_without_a_lookup() {
        for bad in [
            "",
            "short",
            "AAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAA=",
            "AAAAAAAAAAAAAAA/",
            "AAAAAAAAAAAAAAA é",
        ] {
            assert_eq!(LinkToken::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn tokens_do_not_repeat() {
        let tokens: std::collections::HashSet<LinkToken> = (0..10_000)
            .map(|_| LinkToken::generate().unwrap())
            .collect();
        assert_eq!(tokens.len(), 10_000);
    }

    #[test]
    fn a_link_opens_until_it_expires_or_is_revoked() {
        let link = PayLink {
            token: LinkToken::from_bytes([1; 12]),
            target: LinkTarget::Invoice("INV-1".into()),
            created_at: at("2026-11-23T14:00:00Z"),
            expires_at: at("2027-01-07T14:00:00Z"),
            revoked_at: None,
        };
        assert_eq!(link.state(at("2026-12-01T00:00:00Z")), LinkState::Active);
        assert_eq!(link.state(at("2027-01-07T14:00:00Z")), LinkState::Expired);
        let revoked = PayLink {
            revoked_at: Some(at("2026-11-30T00:00:00Z")),
            ..link.clone()
        };
        assert_eq!(revoked.state(at("2026-11-29T23:59:59Z")), LinkState::Active);
        assert_eq!(
            revoked.state(at("2026-11-30T00:00:00Z")),
            LinkState::Revoked
        );
        assert_eq!(
            revoked.state(at("2027-02-01T00:00:00Z")),
            LinkState::Revoked
        );
    }

    #[test]
    fn a_link_reads_back_from_the_fields_it_writes() {
        let link = PayLink {
            token: LinkToken::from_bytes([7; 12]),
            target: LinkTarget::Customer {
                customer_id: "C-1".into(),
                invoices: vec!["INV-1".into(), "INV 2".into()],
            },
            created_at: at("2026-11-23T14:00:00Z"),
            expires_at: at("2027-01-07T14:00:00Z"),
            revoked_at: Some(at("2026-12-01T09:30:00.250Z")),
        };
        let fields = link.text_fields();
        let text = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            PayLink::from_text_fields(&link.token, text),
            Some(link.clone())
        );
        let broken = |name: &str| {
            if name == "target_kind" {
                Some("other")
            } else {
                text(name)
            }
        };
        assert_eq!(PayLink::from_text_fields(&link.token, broken), None);
    }

    proptest! {
        /// Every 12 bytes make a distinct token that parses back: 96 bits, no loss.
        #[test]
        fn every_twelve_bytes_make_a_distinct_parsable_token(a in any::<[u8; 12]>(), b in any::<[u8; 12]>()) {
            let (ta, tb) = (LinkToken::from_bytes(a), LinkToken::from_bytes(b));
            prop_assert_eq!(LinkToken::parse(ta.as_str()), Some(ta.clone()));
            prop_assert_eq!(a == b, ta == tb);
        }
    }
}
