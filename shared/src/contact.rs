//! Contact details that validate on construction: a raw string never reaches
//! SES or SNS. Logs see only the masked forms.

use std::fmt;

/// An email address fit to put in a `To:` header: one `@`, a dotted domain, no
/// whitespace or control characters (so no header injection), at most 254 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(text: &str) -> Option<Self> {
        if text.is_empty() || text.len() > 254 {
            return None;
        }
        if text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"()[]\\".contains(c))
        {
            return None;
        }
        let (local, domain) = text.split_once('@')?;
        let labels_ok = domain
            .split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-') && !l.contains('@'));
        let valid = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && domain.contains('.')
            && labels_ok;
        valid.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `j***@e***.com`: enough to tell addresses apart in a log, no more
    /// (a full domain can name a small business, or a person).
    pub fn masked(&self) -> String {
        mask_email(&self.0)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form: `+`, a non-zero country digit, 7 to 15 digits in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(text: &str) -> Option<Self> {
        let digits = text.strip_prefix('+')?;
        let valid = (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        valid.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `+1*******0100`: country prefix and last four digits.
    pub fn masked(&self) -> String {
        let n = self.0.len();
        format!(
            "{}{}{}",
            &self.0[..2],
            "*".repeat(n.saturating_sub(6)),
            &self.0[n - 4..]
        )
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `j***@e***.com` for an address-like text (its local part's and domain's
/// first characters, and the domain's last label).
fn mask_email(text: &str) -> String {
    let (local, domain) = text.split_once('@').unwrap_or((text, ""));
    let first: String = local.chars().take(1).collect();
    let domain_first: String = domain.chars().take(1).collect();
    let tld = domain.rsplit_once('.').map_or("", |(_, t)| t);
    format!("{first}***@{domain_first}***.{tld}")
}

/// `text` with every e-mail address and phone number in it masked, for a
/// provider's error message that may name the recipient ("Email address is
/// not verified. The following identities failed the check: ana@...").
pub fn redact(text: &str) -> String {
    let breaks = |c: char| c.is_whitespace() || "<>()[]{}\"',;:".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let trimmed = word.trim_end_matches(['.', '!', '?']);
        let tail = &word[trimmed.len()..];
        let digits = trimmed.trim_start_matches('+');
        if trimmed.contains('@') && trimmed.len() > 2 {
            out.push_str(&mask_email(trimmed));
            out.push_str(tail);
        } else if digits.len() >= 7 && digits.chars().all(|c| c.is_ascii_digit()) {
            let n = trimmed.len();
            out.push_str(&"*".repeat(n.saturating_sub(4)));
            out.push_str(&trimmed[n.saturating_sub(4)..]);
            out.push_str(tail);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if breaks(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Most e-mail addresses a customer has (a primary and copies), and phone numbers.
pub const MAX_EMAILS: usize = 5;
pub const MAX_PHONES: usize = 2;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ordinary_addresses_are_accepted() {
        for ok in [
            "ana@example.com",
            "a.b+tag@mail.example.co.uk",
            "x@sub-domain.example.org",
        ] {
            assert!(EmailAddress::parse(ok).is_some(), "{ok}");
        }
    }

    #[test]
    fn addresses_that_could_break_a_header_or_bounce_are_refused() {
        for bad in [
            "",
            "no-at.example.com",
            "a@b",
            "a@@b.com",
            "a@b..com",
            ".a@b.com",
            "a b@c.com",
            "a@b.com\r\nBcc: x@y.com",
            "a@b.com,c@d.com",
            "<a@b.com>",
            "a@-b.com",
        ] {
            assert!(EmailAddress::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn phone_numbers_must_be_e164() {
        assert!(PhoneNumber::parse("+15555550100").is_some());
        assert!(PhoneNumber::parse("+447700900123").is_some());
        for bad in [
            "15555550100",
            "+0123456789",
            "+1 555 555",
            "+1555abc0100",
            "+",
            "+123456",
            "+1234567890123456",
        ] {
            assert!(PhoneNumber::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_provider_message_loses_its_addresses_and_numbers() {
        let message = "Email address is not verified. The following identities failed the check in region US-EAST-1: ana.lima@acme-widgets.example, <bo@x.org>; phone +15555550100.";
        let clean = redact(message);
        for secret in ["ana.lima", "acme-widgets", "bo@x.org", "5555550"] {
            assert!(!clean.contains(secret), "{secret} in {clean}");
        }
        assert!(
            clean.contains("a***@a***.example") && clean.contains("<b***@x***.org>"),
            "{clean}"
        );
        assert!(
            clean.contains("region US-EAST-1") && clean.ends_with("0100."),
            "{clean}"
        );
        // Nothing personal: unchanged.
        assert_eq!(
            redact("Throttling: rate exceeded 14/s"),
            "Throttling: rate exceeded 14/s"
        );
    }

    #[test]
    fn masks_hide_most_of_the_contact() {
        assert_eq!(
            EmailAddress::parse("jane@example.com").unwrap().masked(),
            "j***@e***.com"
        );
        assert_eq!(
            PhoneNumber::parse("+15555550100").unwrap().masked(),
            "+1******0100"
        );
    }

    proptest! {
        #[test]
        fn parsed_contacts_never_contain_control_characters(s in "\\PC*") {
            if let Some(e) = EmailAddress::parse(&s) {
                prop_assert!(!e.as_str().chars().any(|c| c.is_control() || c.is_whitespace()));
            }
            if let Some(p) = PhoneNumber::parse(&s) {
                prop_assert!(p.as_str()[1..].bytes().all(|b| b.is_ascii_digit()));
                prop_assert!(!p.masked().is_empty());
            }
        }
    }
}
