//! The SES message tags a reminder carries: its claim, its customer, its
//! step and the invoices it covers, so an event SES publishes about the
//! message names the ledger records it concerns without a lookup.
//!
//! SES allows only ASCII letters, digits, `_` and `-` in a tag's value, at
//! most 256 of them. A value is therefore escaped (letters and digits stay,
//! every other byte becomes `_` and two hex digits) and, when longer than
//! 256, continued in `<name>-1`, `<name>-2`, ... The invoices are one value,
//! escaped ids joined by `-` (never left raw by the escape).

use std::collections::BTreeMap;

/// The longest value SES takes.
const MAX_VALUE: usize = 256;
/// Tags we may use on one message (SES takes 50; a few stay free for the
/// configuration set's own).
const MAX_TAGS: usize = 45;

pub const CLAIM: &str = "dunning-claim";
pub const CUSTOMER: &str = "dunning-customer";
pub const STEP: &str = "dunning-step";
pub const INVOICES: &str = "dunning-invoices";
/// A hash of the customer's address the message went to ([`address_hash`]):
/// an event about another recipient (the `BCC_EMAIL` archive) never
/// changes the customer.
pub const TO: &str = "dunning-to";
/// The [`address_hash`]es of the copies (Cc), `.`-separated.
pub const CC: &str = "dunning-cc";

/// The first 16 hex digits of SHA-256 of the address, trimmed and lower
/// case: names the recipient in a tag without the address.
pub fn address_hash(address: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(address.trim().to_lowercase().as_bytes());
    hex::encode(&digest[..8])
}

/// What a reminder's tags say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTags {
    /// The claim's token (`crate::claim::Claim::token`).
    pub claim: String,
    pub customer_id: String,
    pub step: String,
    /// The invoices the message covers; empty when they did not fit in the
    /// tags (the customer-level effects of an event still apply).
    pub invoices: Vec<String>,
    /// [`address_hash`] of the customer's address; `None` on messages sent
    /// before it was tagged.
    pub to_hash: Option<String>,
    /// [`address_hash`] of each copy's address (Cc).
    pub cc_hashes: Vec<String>,
}

impl MessageTags {
    /// The tags to send with the message, as (name, value) pairs.
    pub fn to_tags(&self) -> Vec<(String, String)> {
        let mut tags = Vec::new();
        for (name, value) in [
            (CLAIM, escape(&self.claim)),
            (CUSTOMER, escape(&self.customer_id)),
            (STEP, escape(&self.step)),
        ] {
            push_chunks(&mut tags, name, &value);
        }
        if let Some(h) = &self.to_hash {
            tags.push((TO.to_owned(), h.clone()));
        }
        if !self.cc_hashes.is_empty() {
            tags.push((CC.to_owned(), self.cc_hashes.join(".")));
        }
        let invoices: Vec<String> = self.invoices.iter().map(|id| escape(id)).collect();
        let mut with_invoices = tags.clone();
        push_chunks(&mut with_invoices, INVOICES, &invoices.join("-"));
        if with_invoices.len() <= MAX_TAGS {
            with_invoices
        } else {
            tags
        }
    }

    /// Reads the tags of an SES event (`mail.tags`: name -> values); `None`
    /// when the message was not a reminder of ours (or its tags are damaged).
    pub fn from_event(tags: &BTreeMap<String, Vec<String>>) -> Option<Self> {
        let read = |name: &str| -> Option<String> {
            let mut value = String::new();
            let mut i = 0;
            loop {
                let key = if i == 0 {
                    name.to_owned()
                } else {
                    format!("{name}-{i}")
                };
                match tags.get(&key).and_then(|v| v.first()) {
                    Some(part) => value.push_str(part),
                    None if i == 0 => return None,
                    None => return Some(value),
                }
                i += 1;
            }
        };
        let invoices = match read(INVOICES) {
            None => Vec::new(),
            Some(joined) if joined.is_empty() => Vec::new(),
            Some(joined) => joined
                .split('-')
                .map(unescape)
                .collect::<Option<Vec<_>>>()?,
        };
        Some(Self {
            claim: unescape(&read(CLAIM)?)?,
            customer_id: unescape(&read(CUSTOMER)?)?,
            step: unescape(&read(STEP)?)?,
            invoices,
            to_hash: tags
                .get(TO)
                .and_then(|v| v.first())
                .filter(|h| is_hash(h))
                .cloned(),
            cc_hashes: tags
                .get(CC)
                .and_then(|v| v.first())
                .map(|joined| {
                    joined
                        .split('.')
                        .filter(|h| is_hash(h))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

fn is_hash(h: &str) -> bool {
    h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

fn push_chunks(tags: &mut Vec<(String, String)>, name: &str, value: &str) {
    if value.is_empty() {
        tags.push((name.to_owned(), String::new()));
        return;
    }
    for (i, chunk) in value.as_bytes().chunks(MAX_VALUE).enumerate() {
        let key = if i == 0 {
            name.to_owned()
        } else {
            format!("{name}-{i}")
        };
        // Escaped values are ASCII: any byte boundary is a char boundary.
        tags.push((key, String::from_utf8_lossy(chunk).into_owned()));
    }
}

/// Letters and digits as they are; every other byte `_XX` (upper-case hex).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("_{b:02X}"));
        }
    }
    out
}

/// The inverse of [`escape`]; `None` for text it never makes.
pub fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if b.is_ascii_alphanumeric() => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn as_event(tags: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
        tags.iter()
            .map(|(k, v)| (k.clone(), vec![v.clone()]))
            .collect()
    }

    fn allowed(s: &str) -> bool {
        s.len() <= MAX_VALUE
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    #[test]
    fn a_reminder_s_tags_name_its_claim_customer_step_and_invoices() {
        let t = MessageTags {
            claim: "9f1c2e7a-0b3d-4c55-8e21-6a7f00d1c0de:12".into(),
            customer_id: "ACME GmbH".into(),
            step: "overdue_7".into(),
            invoices: vec!["INV-1001".into(), "INV/2026/7".into()],
            to_hash: Some(address_hash(" Ana@Example.com")),
            cc_hashes: vec![address_hash("cfo@example.com")],
        };
        let tags = t.to_tags();
        assert_eq!(
            tags.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            [CLAIM, CUSTOMER, STEP, TO, CC, INVOICES]
        );
        assert_eq!(tags[3].1, address_hash("ana@example.com"));
        assert_eq!(tags[1].1, "ACME_20GmbH");
        assert_eq!(tags[4].1, address_hash("cfo@example.com"));
        assert_eq!(tags[5].1, "INV_2D1001-INV_2F2026_2F7");
        assert_eq!(MessageTags::from_event(&as_event(&tags)), Some(t));
        // Not ours: no claim tag.
        assert_eq!(MessageTags::from_event(&BTreeMap::new()), None);
    }

    #[test]
    fn invoices_that_do_not_fit_are_left_out_not_cut() {
        let t = MessageTags {
            claim: "run:1".into(),
            customer_id: "c".into(),
            step: "due".into(),
            invoices: (0..40).map(|i| format!("{i:0>300}")).collect(),
            to_hash: None,
            cc_hashes: Vec::new(),
        };
        let tags = t.to_tags();
        assert!(tags.len() <= MAX_TAGS);
        let back = MessageTags::from_event(&as_event(&tags)).unwrap();
        assert!(back.invoices.is_empty());
        assert_eq!(back.claim, "run:1");
    }

    proptest! {
        #[test]
        fn tags_round_trip_and_are_what_ses_accepts(
            claim in ".{0,40}",
            customer in "\\PC{0,300}",
            step in "[a-z_0-9]{1,20}",
            invoices in prop::collection::vec("\\PC{1,30}", 0..40),
        ) {
            let t = MessageTags { claim, customer_id: customer, step, invoices, to_hash: Some(address_hash("a@b.example")), cc_hashes: vec![address_hash("c@d.example")] };
            let tags = t.to_tags();
            prop_assert!(tags.len() <= MAX_TAGS);
            for (k, v) in &tags {
                prop_assert!(allowed(k) && allowed(v), "{k}={v}");
            }
            let back = MessageTags::from_event(&as_event(&tags)).unwrap();
            if tags.iter().any(|(k, _)| k == INVOICES) {
                // They fit: everything comes back exactly.
                prop_assert_eq!(&back, &t);
            } else {
                prop_assert!(back.invoices.is_empty() && !t.invoices.is_empty());
                prop_assert_eq!(&back.claim, &t.claim);
                prop_assert_eq!(&back.customer_id, &t.customer_id);
                prop_assert_eq!(&back.step, &t.step);
            }
        }
    }
}
