//! The second factor: its kinds, the generated codes, normalisation and the
//! derivation of the wrap key and the verifier.
//!
//! ```text
//! m        = PBKDF2-HMAC-SHA256(normalised C, "wardmail-portal-v1" || id || S, N, 32)
//! wrap_key = HKDF-SHA256(ikm = S || m, salt = id, info = "wardmail-portal-v1 wrap",   L = 32)
//! verifier = HKDF-SHA256(ikm = S || m, salt = id, info = "wardmail-portal-v1 verify", L = 32)
//! ```

use std::fmt;
use std::num::NonZeroU32;

use ring::hkdf;
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::{Key32, MessageId, PortalError};
use crate::secret::Secret;

/// The PBKDF2 iteration count N of new messages.
pub const DEFAULT_ITERATIONS: u32 = 600_000;

const PBKDF2_LABEL: &[u8] = b"wardmail-portal-v1";
const WRAP_INFO: &[u8] = b"wardmail-portal-v1 wrap";
const VERIFY_INFO: &[u8] = b"wardmail-portal-v1 verify";

/// The kind of second factor, as named in the upload and in `/meta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FactorKind {
    /// 8 digits read to the patient by phone or sent by SMS.
    Code,
    /// A passphrase agreed with the patient once and reused.
    Passphrase,
    /// 8 digits sent by a separate e-mail; the page labels it low assurance.
    EmailCode,
}

impl FactorKind {
    /// The name the scheme uses on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            FactorKind::Code => "code",
            FactorKind::Passphrase => "passphrase",
            FactorKind::EmailCode => "email-code",
        }
    }
}

impl fmt::Display for FactorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The second factor chosen when sealing or re-issuing.
#[derive(Clone, Debug)]
pub enum Factor {
    /// Generate an 8-digit code for the staff member to read out.
    Code,
    /// Use the passphrase agreed with the patient.
    Passphrase(Secret),
    /// Generate an 8-digit code to send by a separate e-mail.
    EmailCode,
}

impl Factor {
    /// The factor's kind.
    pub fn kind(&self) -> FactorKind {
        match self {
            Factor::Code => FactorKind::Code,
            Factor::Passphrase(_) => FactorKind::Passphrase,
            Factor::EmailCode => FactorKind::EmailCode,
        }
    }
}

/// A generated 8-digit code. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct FactorCode(String);

impl FactorCode {
    /// Draws 8 decimal digits from the system's random source.
    ///
    /// Each draw is a 32-bit integer; draws of 4,200,000,000 or more are
    /// discarded, because 4,200,000,000 is the largest multiple of 10^8
    /// below 2^32, so the remainder modulo 10^8 is uniform.
    pub fn generate() -> Result<FactorCode, PortalError> {
        const LIMIT: u32 = 42 * 100_000_000;
        let random = SystemRandom::new();
        loop {
            let mut bytes = [0u8; 4];
            random.fill(&mut bytes).map_err(|_| PortalError::Random)?;
            let draw = u32::from_le_bytes(bytes);
            if draw < LIMIT {
                return Ok(FactorCode(format!("{:08}", draw % 100_000_000)));
            }
        }
    }

    /// Returns the 8 digits, leading zeros kept.
    pub fn expose_digits(&self) -> &str {
        &self.0
    }

    /// Returns the code grouped for reading out, as `1234 5678`.
    pub fn expose_grouped(&self) -> String {
        let (first, second) = self.0.split_at(4);
        format!("{first} {second}")
    }
}

impl fmt::Debug for FactorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FactorCode(<redacted>)")
    }
}

/// Normalises a factor as typed.
///
/// A code or e-mailed code keeps only its ASCII digits. A passphrase loses
/// leading and trailing whitespace and has each run of whitespace replaced
/// by one space, keeping case. Whitespace is Unicode's White_Space property
/// (`char::is_whitespace`), which scheme.js matches with `\p{White_Space}`.
/// An empty result is an error.
pub fn normalise(kind: FactorKind, text: &str) -> Result<Secret, PortalError> {
    let normalised = match kind {
        FactorKind::Code | FactorKind::EmailCode => text
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>(),
        FactorKind::Passphrase => text.split_whitespace().collect::<Vec<_>>().join(" "),
    };
    if normalised.is_empty() {
        return Err(PortalError::EmptyFactor { kind });
    }
    Ok(Secret::new(normalised))
}

/// The two values derived from S, the id and the factor.
pub(super) struct DerivedKeys {
    /// The AES-256-GCM key that wraps K.
    pub wrap_key: Key32,
    /// The value the browser shows the server to unlock; the server stores
    /// its SHA-256.
    pub verifier: Key32,
}

/// Derives the wrap key and the verifier from an already normalised factor.
pub(super) fn derive_keys(
    id: &MessageId,
    link_secret: &Key32,
    normalised: &Secret,
    iterations: u32,
) -> Result<DerivedKeys, PortalError> {
    let iterations = NonZeroU32::new(iterations).ok_or(PortalError::ZeroIterations)?;

    let mut salt = Vec::with_capacity(PBKDF2_LABEL.len() + 16 + 32);
    salt.extend_from_slice(PBKDF2_LABEL);
    salt.extend_from_slice(id.as_bytes());
    salt.extend_from_slice(link_secret.expose());
    let mut stretched = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        normalised.expose().as_bytes(),
        &mut stretched,
    );

    let mut ikm = [0u8; 64];
    ikm[..32].copy_from_slice(link_secret.expose());
    ikm[32..].copy_from_slice(&stretched);
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, id.as_bytes()).extract(&ikm);
    Ok(DerivedKeys {
        wrap_key: Key32(expand(&prk, WRAP_INFO)),
        verifier: Key32(expand(&prk, VERIFY_INFO)),
    })
}

fn expand(prk: &hkdf::Prk, info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let info = [info];
    // HKDF_SHA256 as a length requests 32 bytes, far below HKDF's limit of
    // 255 * 32, so neither expand nor fill can fail.
    if let Ok(okm) = prk.expand(&info, hkdf::HKDF_SHA256) {
        let _ = okm.fill(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn normalise_code_keeps_digits() {
        let cases = [
            ("1234 5678", "12345678"),
            (" 0012-3456 ", "00123456"),
            ("１２34", "34"),
            ("12a34b", "1234"),
        ];
        for (input, expected) in cases {
            let normalised = normalise(FactorKind::Code, input).unwrap();
            assert_eq!(normalised.expose(), expected, "input {input:?}");
        }
    }

    #[test]
    fn normalise_passphrase_collapses_whitespace() {
        let cases = [
            ("  Blue  Heron\tRiver \n", "Blue Heron River"),
            ("a\u{00a0}\u{2003}b", "a b"),
            ("a\u{0085}b", "a b"),
            ("Case Kept", "Case Kept"),
        ];
        for (input, expected) in cases {
            let normalised = normalise(FactorKind::Passphrase, input).unwrap();
            assert_eq!(normalised.expose(), expected, "input {input:?}");
        }
    }

    #[test]
    fn normalise_rejects_empty() {
        let code = normalise(FactorKind::EmailCode, "abc - ");
        assert!(matches!(code, Err(PortalError::EmptyFactor { .. })));
        let passphrase = normalise(FactorKind::Passphrase, " \t\n");
        assert!(matches!(passphrase, Err(PortalError::EmptyFactor { .. })));
    }

    #[test]
    fn code_has_eight_digits() {
        for _ in 0..200 {
            let code = FactorCode::generate().unwrap();
            assert_eq!(code.expose_digits().len(), 8);
            assert!(code.expose_digits().chars().all(|c| c.is_ascii_digit()));
            assert_eq!(code.expose_grouped().len(), 9);
        }
    }

    #[test]
    fn code_digits_are_spread() {
        // 20,000 codes give 20,000 draws for each of the 8 positions, so each
        // digit is expected 2,000 times per position. A uniform source stays
        // within 1,700..2,300 (more than 7 standard deviations of about 42)
        // in all but a negligible fraction of runs.
        let mut counts = [[0u32; 10]; 8];
        let mut leading_zero = 0;
        for _ in 0..20_000 {
            let code = FactorCode::generate().unwrap();
            let digits = code.expose_digits().as_bytes();
            assert_eq!(digits.len(), 8);
            if digits[0] == b'0' {
                leading_zero += 1;
            }
            for (position, digit) in digits.iter().enumerate() {
                counts[position][usize::from(digit - b'0')] += 1;
            }
        }
        for (position, row) in counts.iter().enumerate() {
            for (digit, count) in row.iter().enumerate() {
                assert!(
                    (1_700..=2_300).contains(count),
                    "digit {digit} at position {position} appeared {count} times"
                );
            }
        }
        assert!(leading_zero > 0, "no code kept a leading zero");
    }

    #[test]
    fn derive_depends_on_every_input() {
        let id = MessageId::from_bytes([1; 16]);
        let other_id = MessageId::from_bytes([2; 16]);
        let s = Key32::from_bytes([3; 32]);
        let other_s = Key32::from_bytes([4; 32]);
        let code = Secret::new("12345678");
        let other_code = Secret::new("12345679");

        let base = derive_keys(&id, &s, &code, 10).unwrap();
        assert_ne!(base.wrap_key, base.verifier);
        let variants = [
            derive_keys(&other_id, &s, &code, 10).unwrap(),
            derive_keys(&id, &other_s, &code, 10).unwrap(),
            derive_keys(&id, &s, &other_code, 10).unwrap(),
            derive_keys(&id, &s, &code, 11).unwrap(),
        ];
        for variant in variants {
            assert_ne!(variant.wrap_key, base.wrap_key);
            assert_ne!(variant.verifier, base.verifier);
        }
    }

    #[test]
    fn derive_known_answer() {
        // Expected values from Python's hashlib.pbkdf2_hmac and hmac, written
        // out from the formulas at the top of this file.
        let id = MessageId::from_bytes([1; 16]);
        let s = Key32::from_bytes([3; 32]);
        let keys = derive_keys(&id, &s, &Secret::new("12345678"), 1_000).unwrap();
        let wrap_key = hex("3b49c7b4fec0119dd77424db0f495ffe323bedaf75c63bf2d18bf0ac106cd79f");
        let verifier = hex("4167b5213251059dbe9bbeaf2e9db1e232347fed5e46595ddb1687b40191bfa6");
        assert_eq!(keys.wrap_key.expose().as_slice(), wrap_key.as_slice());
        assert_eq!(keys.verifier.expose().as_slice(), verifier.as_slice());
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn derive_rejects_zero_iterations() {
        let id = MessageId::from_bytes([1; 16]);
        let s = Key32::from_bytes([3; 32]);
        let result = derive_keys(&id, &s, &Secret::new("1"), 0);
        assert!(matches!(result, Err(PortalError::ZeroIterations)));
    }
}
