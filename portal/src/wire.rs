//! Encodings and primitives shared by the endpoints: base64url without
//! padding (RFC 4648 section 5), random ids, SHA-256 and the clock.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

/// Bytes in a message id and a device id.
pub const ID_BYTES: usize = 16;

/// Characters of a base64url id of [`ID_BYTES`] bytes.
pub const ID_CHARS: usize = 22;

/// Encodes bytes as base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `None` for any other text.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Decodes base64url text that must hold exactly `N` bytes.
pub fn decode_exact<const N: usize>(text: &str) -> Option<[u8; N]> {
    decode(text)?.try_into().ok()
}

/// Whether `text` is the base64url form of a 16-byte id, so it can be used
/// as a key without further checks.
pub fn is_id(text: &str) -> bool {
    text.len() == ID_CHARS && decode_exact::<ID_BYTES>(text).is_some()
}

/// The first 8 characters of an id: how logs name a message or device.
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Returns `N` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], ring::error::Unspecified> {
    let mut bytes = [0; N];
    SystemRandom::new().fill(&mut bytes)?;
    Ok(bytes)
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Compares two SHA-256 values in time that does not depend on where they
/// differ. The inputs are hashes of attacker-chosen verifiers, so an early
/// exit would leak little, but the scheme requires a constant-time check.
pub fn hashes_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    difference == 0
}

/// Seconds since the Unix epoch, UTC.
pub fn now() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_equal_cases() {
        let a = sha256(b"one");
        let mut b = a;
        assert!(hashes_equal(&a, &b));
        b[31] ^= 1;
        assert!(!hashes_equal(&a, &b));
    }

    #[test]
    fn id_format() {
        let id = encode(&[7; ID_BYTES]);
        assert!(is_id(&id));
        assert!(!is_id(&format!("{id}=")));
        assert!(!is_id(&id[..21]));
        assert!(!is_id("../../../../etc/passwd!"));
        assert_eq!(short_id(&id).len(), 8);
    }
}
