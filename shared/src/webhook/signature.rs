//! Webhook signatures in Stripe's scheme, used for both `Stripe-Signature` and
//! our `Dunning-Signature`: `t=<unix>,v1=<hex>[,v1=<hex>...]` where each v1 is
//! HMAC-SHA256(secret, "<t>.<raw body>"). Any v1 matching any configured
//! secret passes (secret rotation); comparison is constant-time; the
//! timestamp must be within the tolerance of now, in either direction.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Why a signature was refused. None of these says which part was wrong
/// beyond what the sender already knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no signature header")]
    Missing,
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` signed with `secret` at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// At most this many `v1=` candidates of a header are considered (Stripe
/// sends one per active endpoint secret: one, or two during a roll).
pub const MAX_CANDIDATES: usize = 8;

/// Equal bytes, compared in time that depends only on the length.
fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Verifies `header` over the raw `body` at unix time `now`. A request costs
/// one HMAC over the body per secret, however many candidates it carries.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[Vec<u8>],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" if timestamp.is_none() => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                )
            }
            "t" => return Err(SignatureError::Malformed),
            "v1" if candidates.len() < MAX_CANDIDATES => {
                // A v1 that is not 32 bytes of hex can never match; skip it like Stripe does.
                if let Ok(bytes) = hex::decode(value) {
                    if bytes.len() == 32 {
                        candidates.push(bytes);
                    }
                }
            }
            // Other schemes (v0 test signatures) are ignored.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Mismatch);
    }
    if now.abs_diff(timestamp) > tolerance_secs.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let matched = secrets.iter().any(|secret| {
        let tag = mac(secret, timestamp, body).finalize().into_bytes();
        candidates
            .iter()
            .any(|c| equal_in_constant_time(c, tag.as_slice()))
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_795_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;

    fn secrets(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn matches_the_published_scheme_vector() {
        // Computed independently from Stripe's documented scheme:
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec_test",b"1700000000.{}",hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(b"whsec_test", 1_700_000_000, b"{}"),
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }

    #[test]
    fn valid_tampered_expired_future_missing_and_malformed() {
        let s = secrets(&["whsec_current"]);
        let good = sign(b"whsec_current", NOW, BODY);
        assert_eq!(verify(Some(&good), BODY, &s, NOW, 300), Ok(()));
        assert_eq!(verify(Some(&good), BODY, &s, NOW + 300, 300), Ok(()));
        let tampered = br#"{"id":"evt_1","type":"invoice.paid "}"#;
        assert_eq!(
            verify(Some(&good), tampered, &s, NOW, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&good), BODY, &s, NOW + 301, 300),
            Err(SignatureError::Stale)
        );
        let future = sign(b"whsec_current", NOW + 301, BODY);
        assert_eq!(
            verify(Some(&future), BODY, &s, NOW, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(None, BODY, &s, NOW, 300),
            Err(SignatureError::Missing)
        );
        for bad in [
            "",
            "garbage",
            "t=abc,v1=00",
            "v1=00",
            &format!("t={NOW},t={NOW},v1=00"),
        ] {
            assert_eq!(
                verify(Some(bad), BODY, &s, NOW, 300),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            verify(Some(&format!("t={NOW},v1=zz")), BODY, &s, NOW, 300),
            Err(SignatureError::Mismatch)
        );
        let extreme = format!("t={},v1={}", i64::MIN, "0".repeat(64));
        assert_eq!(
            verify(Some(&extreme), BODY, &s, NOW, 300),
            Err(SignatureError::Stale),
            "no overflow on absurd timestamps"
        );
    }

    #[test]
    fn any_v1_and_any_secret_pass_for_rotation() {
        let old = sign(b"whsec_old", NOW, BODY);
        let new = sign(b"whsec_new", NOW, BODY);
        let new_v1 = new.split_once(",v1=").unwrap().1;
        // Stripe sends one v1 per active secret during a roll.
        let both = format!("{old},v1={new_v1}");
        assert_eq!(
            verify(Some(&both), BODY, &secrets(&["whsec_new"]), NOW, 300),
            Ok(())
        );
        assert_eq!(
            verify(
                Some(&old),
                BODY,
                &secrets(&["whsec_new", "whsec_old"]),
                NOW,
                300
            ),
            Ok(())
        );
        assert_eq!(
            verify(Some(&old), BODY, &secrets(&["whsec_new"]), NOW, 300),
            Err(SignatureError::Mismatch)
        );
        // Extra schemes (Stripe's v0 in test mode) are ignored.
        let with_v0 = format!("{new},v0=deadbeef");
        assert_eq!(
            verify(Some(&with_v0), BODY, &secrets(&["whsec_new"]), NOW, 300),
            Ok(())
        );
    }

    #[test]
    fn only_the_first_eight_candidates_are_considered() {
        let s = secrets(&["whsec_current"]);
        let good = sign(b"whsec_current", NOW, BODY);
        let good_v1 = good.split_once(",v1=").unwrap().1;
        let junk = |n: usize| {
            (0..n)
                .map(|i| format!(",v1={:064x}", i + 1))
                .collect::<String>()
        };
        // The right one among the first eight passes; as the ninth it is not looked at.
        let seventh = format!("t={NOW}{},v1={good_v1}", junk(7));
        assert_eq!(verify(Some(&seventh), BODY, &s, NOW, 300), Ok(()));
        let ninth = format!("t={NOW}{},v1={good_v1}", junk(8));
        assert_eq!(
            verify(Some(&ninth), BODY, &s, NOW, 300),
            Err(SignatureError::Mismatch)
        );
        // Thousands of candidates cost the same as eight.
        let flood = format!("t={NOW}{}", junk(5_000));
        assert_eq!(
            verify(Some(&flood), BODY, &s, NOW, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn constant_time_equality_is_equality() {
        assert!(equal_in_constant_time(b"abc", b"abc"));
        assert!(!equal_in_constant_time(b"abc", b"abd"));
        assert!(!equal_in_constant_time(b"abc", b"ab"));
        assert!(equal_in_constant_time(b"", b""));
    }

    proptest! {
        #[test]
        fn every_single_character_change_of_a_valid_header_is_refused(pos in any::<prop::sample::Index>(), c in "[0-9a-f=,tv]") {
            let s = secrets(&["whsec_current"]);
            let good = sign(b"whsec_current", NOW, BODY);
            let mut bytes = good.clone().into_bytes();
            let i = pos.index(bytes.len());
            bytes[i] = c.as_bytes()[0];
            let mutated = String::from_utf8(bytes).unwrap();
            prop_assume!(mutated != good);
            prop_assert!(verify(Some(&mutated), BODY, &s, NOW, 300).is_err());
        }
    }
}
