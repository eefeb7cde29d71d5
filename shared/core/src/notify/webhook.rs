//! Generic webhook: the alert as JSON, signed so the receiver can prove it came from us
//! and is fresh. The signature is `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`
//! in `X-Tripline-Signature`, with the Unix timestamp in `X-Tripline-Timestamp`; signing
//! the timestamp too stops replays of an old body (Stripe's and Slack's scheme).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::alert::Alert;

/// The header carrying the signing time (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Tripline-Timestamp";
/// The header carrying `sha256=<hex HMAC>`.
pub const SIGNATURE_HEADER: &str = "X-Tripline-Signature";

const PREFIX: &str = "sha256=";

/// The request body: the alert as JSON.
pub fn body(alert: &Alert) -> Vec<u8> {
    serde_json::to_vec(alert).unwrap_or_default()
}

/// The signature header value: HMAC-SHA256 over `<timestamp>.<body>` with `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    let mut out = String::with_capacity(PREFIX.len() + 2 * tag.len());
    out.push_str(PREFIX);
    out.push_str(&hex::encode(tag));
    out
}

/// Constant-time check of a received signature, for receivers (and our tests). Any
/// string is a valid input: only `sha256=` followed by exactly 64 hex digits (either
/// case) can match, and nothing else panics or is read leniently.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], signature: &str) -> bool {
    let Some(digits) = signature.strip_prefix(PREFIX) else {
        return false;
    };
    let mut expected = [0u8; 32];
    if hex::decode_to_slice(digits, &mut expected).is_err() {
        return false;
    }
    mac(secret, timestamp, body).verify_slice(&expected).is_ok()
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
        assert_eq!(
            sign(b"s3cret", 1_700_000_000, br#"{"a":1}"#),
            format!("sha256={}", KNOWN)
        );
    }
    const KNOWN: &str = "1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940";

    #[test]
    fn verify_round_trip_and_tamper() {
        let sig = sign(b"k", 5, b"body");
        assert!(verify(b"k", 5, b"body", &sig));
        assert!(!verify(b"k", 6, b"body", &sig));
        assert!(!verify(b"k", 5, b"bodY", &sig));
        assert!(!verify(b"other", 5, b"body", &sig));
        assert!(!verify(b"k", 5, b"body", "sha256=zz"));
        assert!(!verify(b"k", 5, b"body", &sig.replace("sha256=", "sha1=")));
        assert!(verify(
            b"k",
            5,
            b"body",
            &sig.to_uppercase().replace("SHA256=", "sha256=")
        ));
    }

    #[test]
    fn verify_rejects_non_ascii_of_hex_length() {
        // 64 bytes, but "é" is two of them: slicing by byte pairs would cut it in half.
        let sig = format!("sha256=a{}", "é".repeat(31) + "b");
        assert_eq!(sig.len() - PREFIX.len(), 64);
        assert!(!verify(b"k", 5, b"body", &sig));
    }

    #[test]
    fn verify_rejects_signs_in_hex() {
        // `u8::from_str_radix("+f", 16)` is Ok(15): a sign is not a hex digit. Find a tag
        // whose first byte is below 0x10, so "+" in place of its leading "0" would have
        // decoded to the right byte.
        let (timestamp, real) = (0..)
            .map(|t| (t, sign(b"k", t, b"body")))
            .find(|(_, sig)| sig[PREFIX.len()..].starts_with('0'))
            .unwrap();
        assert!(verify(b"k", timestamp, b"body", &real));
        let plus = format!("{PREFIX}+{}", &real[PREFIX.len() + 1..]);
        assert!(!verify(b"k", timestamp, b"body", &plus));
    }

    proptest::proptest! {
        #[test]
        fn verify_never_panics(signature in "\\PC*", tail in "(\\PC|[0-9a-fA-F+-]){0,70}") {
            let _ = verify(b"k", 5, b"body", &signature);
            let _ = verify(b"k", 5, b"body", &format!("{PREFIX}{tail}"));
        }
    }
}
