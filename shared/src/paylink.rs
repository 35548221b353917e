//! Signed pay links: `BASE/<invoice_id>?exp=<unix>&sig=<mac>` where `mac` is
//! HMAC-SHA256 over the invoice id and expiry, truncated to 128 bits and
//! base64url-encoded (short enough for an SMS). Links cannot be forged or
//! enumerated without the secret; [`PayLinkSigner::verify`] checks them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::Sha256;

/// Bytes of the MAC kept in the link.
const MAC_LEN: usize = 16;

/// Everything but the RFC 3986 unreserved characters is escaped in the id.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is not one of ours")]
    Malformed,
    #[error("the link's signature does not match")]
    BadSignature,
    #[error("the link has expired")]
    Expired,
}

/// Signs and verifies pay links under one secret.
#[derive(Clone)]
pub struct PayLinkSigner {
    base_url: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for PayLinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayLinkSigner")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl PayLinkSigner {
    /// `base_url` without a trailing slash is fine either way.
    pub fn new(base_url: &str, secret: impl Into<Vec<u8>>) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            secret: secret.into(),
        }
    }

    fn mac(&self, invoice_id: &str, exp: i64) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC accepts keys of any length");
        mac.update(invoice_id.as_bytes());
        mac.update(b"\n");
        mac.update(exp.to_string().as_bytes());
        mac
    }

    /// The link for `invoice_id`, valid until `expires`.
    pub fn sign(&self, invoice_id: &str, expires: DateTime<Utc>) -> String {
        let exp = expires.timestamp();
        let tag = self.mac(invoice_id, exp).finalize().into_bytes();
        let sig = URL_SAFE_NO_PAD.encode(&tag[..MAC_LEN]);
        let id = utf8_percent_encode(invoice_id, PATH_SEGMENT);
        format!("{}/{id}?exp={exp}&sig={sig}", self.base_url)
    }

    /// Checks a link produced by [`sign`](Self::sign) at instant `now` and
    /// returns its invoice id. The comparison is constant-time.
    pub fn verify(&self, link: &str, now: DateTime<Utc>) -> Result<String, LinkError> {
        let rest = link
            .strip_prefix(&self.base_url)
            .and_then(|r| r.strip_prefix('/'));
        let (id, query) = rest
            .and_then(|r| r.split_once('?'))
            .ok_or(LinkError::Malformed)?;
        let invoice_id = percent_decode_str(id)
            .decode_utf8()
            .map_err(|_| LinkError::Malformed)?;
        let (mut exp, mut sig): (Option<i64>, Option<Vec<u8>>) = (None, None);
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("exp", v)) if exp.is_none() => exp = v.parse::<i64>().ok(),
                Some(("sig", v)) if sig.is_none() => sig = URL_SAFE_NO_PAD.decode(v).ok(),
                _ => return Err(LinkError::Malformed),
            }
        }
        let (exp, sig) = exp.zip(sig).ok_or(LinkError::Malformed)?;
        if sig.len() != MAC_LEN {
            return Err(LinkError::BadSignature);
        }
        self.mac(&invoice_id, exp)
            .verify_truncated_left(&sig)
            .map_err(|_| LinkError::BadSignature)?;
        if now.timestamp() >= exp {
            return Err(LinkError::Expired);
        }
        Ok(invoice_id.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn signer() -> PayLinkSigner {
        PayLinkSigner::new("https://pay.example.com/i/", b"test-secret".to_vec())
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let link = signer().sign("INV-1001", at("2026-12-31T00:00:00Z"));
        assert!(link.starts_with("https://pay.example.com/i/INV-1001?exp=1798675200&sig="));
        assert_eq!(
            signer().verify(&link, at("2026-12-30T23:59:59Z")),
            Ok("INV-1001".into())
        );
        assert_eq!(
            signer().verify(&link, at("2026-12-31T00:00:00Z")),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn tampering_with_id_expiry_or_signature_fails() {
        let link = signer().sign("INV-1001", at("2026-12-31T00:00:00Z"));
        let other_id = link.replace("INV-1001", "INV-1002");
        let later = link.replace("exp=1798675200", "exp=1898675200");
        let mut bad_sig = link.clone();
        let last = bad_sig.pop().unwrap();
        bad_sig.push(if last == 'A' { 'B' } else { 'A' });
        for forged in [other_id, later, bad_sig] {
            assert_eq!(
                signer().verify(&forged, at("2026-12-01T00:00:00Z")),
                Err(LinkError::BadSignature)
            );
        }
        let other_secret = PayLinkSigner::new("https://pay.example.com/i", b"another".to_vec());
        assert_eq!(
            other_secret.verify(&link, at("2026-12-01T00:00:00Z")),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            signer().verify(
                "https://evil.example/i/X?exp=1&sig=AA",
                at("2026-12-01T00:00:00Z")
            ),
            Err(LinkError::Malformed)
        );
    }

    #[test]
    fn ids_with_reserved_characters_are_escaped_and_recovered() {
        let link = signer().sign("A/B ?&=é", at("2026-12-31T00:00:00Z"));
        assert!(link.contains("/i/A%2FB%20%3F%26%3D%C3%A9?"));
        assert_eq!(
            signer().verify(&link, at("2026-12-01T00:00:00Z")),
            Ok("A/B ?&=é".into())
        );
    }

    proptest! {
        #[test]
        fn any_id_round_trips_and_any_single_character_change_is_refused(
            id in "\\PC{1,40}", pos in any::<prop::sample::Index>(), secs in 1_800_000_000i64..1_900_000_000,
        ) {
            let exp = DateTime::from_timestamp(secs, 0).unwrap();
            let now = at("2026-11-23T00:00:00Z");
            let link = signer().sign(&id, exp);
            prop_assert_eq!(signer().verify(&link, now), Ok(id.clone()));
            let mut bytes = link.clone().into_bytes();
            let i = pos.index(bytes.len());
            bytes[i] = if bytes[i] == b'x' { b'y' } else { b'x' };
            if let Ok(mutated) = String::from_utf8(bytes) {
                if mutated != link {
                    prop_assert!(signer().verify(&mutated, now).is_err());
                }
            }
        }
    }
}
