//! The OpenPGP keyring: public certificates (RFC 9580 section 10.1) and
//! transferable secret keys (section 10.2), with passphrase-protected
//! secret key material unlocked on request (section 3.7, S2K).

use sequoia_openpgp as pgp;

use pgp::cert::{Cert, CertParser};
use pgp::crypto::Password;
use pgp::packet::key::{SecretParts, UnspecifiedRole};
use pgp::packet::{Key, Signature};
use pgp::parse::Parse;
use pgp::{Fingerprint, KeyHandle, Packet, PacketPile};

use mail_parser::decoders::base64::base64_decode;

use super::OpenpgpError;

/// The certificates and secret keys that [`super::inspect`] uses.
///
/// Certificates verify signatures. Secret keys whose material is not
/// encrypted, or was unlocked with [`Keyring::unlock`], decrypt messages.
#[derive(Default)]
pub struct Keyring {
    certificates: Vec<Cert>,
    secret_keys: Vec<Key<SecretParts, UnspecifiedRole>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material never appears in debug output, only counts.
        formatter
            .debug_struct("Keyring")
            .field("certificates", &self.certificates.len())
            .field("usable_secret_keys", &self.secret_keys.len())
            .finish()
    }
}

impl Keyring {
    /// Creates an empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Imports every certificate or transferable secret key in `bytes`,
    /// ASCII-armored or binary, or a revocation certificate for a key in the
    /// keyring. A certificate that is already in the keyring is merged with
    /// the new copy, so added revocations and subkeys apply.
    ///
    /// Returns the primary key fingerprints imported or revoked, in input
    /// order. Nothing is imported when any part of the input is invalid.
    pub fn import(&mut self, bytes: &[u8]) -> Result<Vec<Fingerprint>, OpenpgpError> {
        let certs = match parse_certs(bytes) {
            Ok(certs) => certs,
            Err(error) => match parse_signatures(bytes) {
                Some(signatures) => return self.apply_revocations(signatures),
                None => return Err(error),
            },
        };

        let mut imported = Vec::new();
        for cert in certs {
            imported.push(cert.fingerprint());
            self.add_unencrypted_secrets(&cert);
            self.merge(cert)?;
        }
        Ok(imported)
    }

    /// Decrypts the secret key material of the certificate whose primary
    /// key or subkey has `fingerprint`, so it can decrypt messages.
    ///
    /// Returns how many keys were unlocked. Fails with
    /// [`OpenpgpError::WrongPassphrase`] when no encrypted key of the
    /// certificate accepts `passphrase`.
    pub fn unlock(
        &mut self,
        fingerprint: &Fingerprint,
        passphrase: &str,
    ) -> Result<usize, OpenpgpError> {
        let unlocked = self.unlocked_keys(fingerprint, passphrase)?;
        let count = unlocked.len();
        self.add_unlocked(unlocked);
        Ok(count)
    }

    /// Returns the primary fingerprints of certificates with a key that
    /// matches one of `handles`, holds encrypted secret material, and is not
    /// unlocked.
    pub(super) fn locked_for(&self, handles: &[KeyHandle]) -> Vec<String> {
        let mut locked = Vec::new();
        for cert in &self.certificates {
            let matching_locked = cert.keys().secret().any(|key| {
                let own = key.key().key_handle();
                let named = handles.iter().any(|handle| handle.aliases(&own));
                let unlocked = self
                    .secret_keys
                    .iter()
                    .any(|secret| secret.fingerprint() == key.key().fingerprint());
                named && key.key().secret().is_encrypted() && !unlocked
            });
            if matching_locked {
                locked.push(cert.fingerprint().to_hex());
            }
        }
        locked
    }

    /// Decrypts and returns the secret keys of the certificate whose
    /// primary key or subkey has `fingerprint`, without adding them; see
    /// [`Keyring::unlock`].
    pub fn unlocked_keys(
        &self,
        fingerprint: &Fingerprint,
        passphrase: &str,
    ) -> Result<Vec<Key<SecretParts, UnspecifiedRole>>, OpenpgpError> {
        let handle = KeyHandle::from(fingerprint.clone());
        let cert = self
            .certificates
            .iter()
            .find(|cert| {
                cert.keys()
                    .any(|key| key.key().key_handle().aliases(&handle))
            })
            .ok_or_else(|| OpenpgpError::KeyNotFound {
                fingerprint: fingerprint.to_hex(),
            })?;

        let password = Password::from(passphrase);
        let mut locked = 0;
        let mut unlocked = Vec::new();
        for key in cert.keys().secret() {
            let key = key.key().clone().role_into_unspecified();
            if !key.secret().is_encrypted() {
                continue;
            }
            locked += 1;
            if let Ok(key) = key.decrypt_secret(&password) {
                unlocked.push(key);
            }
        }

        if locked == 0 {
            return Err(OpenpgpError::NoLockedSecretKey {
                fingerprint: fingerprint.to_hex(),
            });
        }
        if unlocked.is_empty() {
            return Err(OpenpgpError::WrongPassphrase {
                fingerprint: fingerprint.to_hex(),
            });
        }
        Ok(unlocked)
    }

    /// Adds secret keys unlocked earlier by [`Keyring::unlocked_keys`].
    pub fn add_unlocked(
        &mut self,
        keys: impl IntoIterator<Item = Key<SecretParts, UnspecifiedRole>>,
    ) {
        for key in keys {
            self.add_secret_key(key);
        }
    }

    /// Returns every certificate in the keyring. They keep any secret key material
    /// that was imported, so callers must not write them out unencrypted.
    pub fn certificates(&self) -> &[Cert] {
        &self.certificates
    }

    /// Returns the certificates that contain a key matching one of
    /// `handles`.
    pub(super) fn certificates_for(&self, handles: &[KeyHandle]) -> Vec<Cert> {
        self.certificates
            .iter()
            .filter(|cert| {
                cert.keys().any(|key| {
                    let own = key.key().key_handle();
                    handles.iter().any(|handle| handle.aliases(&own))
                })
            })
            .cloned()
            .collect()
    }

    /// Returns the usable (unencrypted or unlocked) secret key with this
    /// fingerprint.
    pub fn secret_key(
        &self,
        fingerprint: &Fingerprint,
    ) -> Option<&Key<SecretParts, UnspecifiedRole>> {
        self.secret_keys
            .iter()
            .find(|key| key.fingerprint() == *fingerprint)
    }

    /// Returns the secret keys that can decrypt now.
    pub(super) fn secret_keys(&self) -> &[Key<SecretParts, UnspecifiedRole>] {
        &self.secret_keys
    }

    fn merge(&mut self, cert: Cert) -> Result<(), OpenpgpError> {
        let fingerprint = cert.fingerprint();
        let Some(index) = self
            .certificates
            .iter()
            .position(|existing| existing.fingerprint() == fingerprint)
        else {
            self.certificates.push(cert);
            return Ok(());
        };

        let existing = self.certificates.remove(index);
        let merged =
            existing
                .merge_public_and_secret(cert)
                .map_err(|error| OpenpgpError::InvalidKey {
                    reason: error.to_string(),
                })?;
        self.certificates.push(merged);
        Ok(())
    }

    /// Adds revocation signatures (RFC 9580 section 5.2.1.13) to the
    /// certificates they were issued for.
    fn apply_revocations(
        &mut self,
        signatures: Vec<Signature>,
    ) -> Result<Vec<Fingerprint>, OpenpgpError> {
        let mut revoked = Vec::new();
        for signature in signatures {
            let issuers = signature.get_issuers();
            let index = self.certificates.iter().position(|cert| {
                cert.keys().any(|key| {
                    let own = key.key().key_handle();
                    issuers.iter().any(|issuer| issuer.aliases(&own))
                })
            });
            let Some(index) = index else {
                return Err(OpenpgpError::InvalidKey {
                    reason: "the revocation certificate is for a key not in the keyring"
                        .to_string(),
                });
            };

            let cert = self.certificates.remove(index);
            let (cert, _) =
                cert.insert_packets(signature)
                    .map_err(|error| OpenpgpError::InvalidKey {
                        reason: error.to_string(),
                    })?;
            revoked.push(cert.fingerprint());
            self.certificates.push(cert);
        }
        Ok(revoked)
    }

    fn add_unencrypted_secrets(&mut self, cert: &Cert) {
        for key in cert.keys().secret() {
            let key = key.key().clone().role_into_unspecified();
            if key.has_unencrypted_secret() {
                self.add_secret_key(key);
            }
        }
    }

    fn add_secret_key(&mut self, key: Key<SecretParts, UnspecifiedRole>) {
        let fingerprint = key.fingerprint();
        if !self
            .secret_keys
            .iter()
            .any(|existing| existing.fingerprint() == fingerprint)
        {
            self.secret_keys.push(key);
        }
    }
}

/// Parses every certificate in `bytes`. When that fails, the armor is read
/// again leniently, because real keys carry blank lines or extra headers
/// that the strict armor reader rejects.
fn parse_certs(bytes: &[u8]) -> Result<Vec<Cert>, OpenpgpError> {
    let strict = collect_certs(bytes);
    if strict.is_ok() {
        return strict;
    }
    match dearmor_leniently(bytes) {
        Some(binary) => collect_certs(&binary).or(strict),
        None => strict,
    }
}

fn collect_certs(bytes: &[u8]) -> Result<Vec<Cert>, OpenpgpError> {
    let invalid = |error: anyhow::Error| OpenpgpError::InvalidKey {
        reason: error.to_string(),
    };
    let certs = CertParser::from_bytes(bytes)
        .map_err(invalid)?
        .collect::<Result<Vec<Cert>, _>>()
        .map_err(invalid)?;
    if certs.is_empty() {
        return Err(OpenpgpError::InvalidKey {
            reason: "the input contains no certificate or key".to_string(),
        });
    }
    Ok(certs)
}

/// Returns the binary content of the first armored block, ignoring blank
/// lines, armor header lines and the checksum wherever they appear.
fn dearmor_leniently(bytes: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.lines().map(str::trim);
    lines.find(|line| line.starts_with("-----BEGIN PGP "))?;

    let mut base64 = String::new();
    for line in lines {
        if line.starts_with("-----END PGP ") {
            return base64_decode(base64.as_bytes());
        }
        let is_header = line.contains(": ");
        let is_checksum = line.starts_with('=') && line.len() == 5;
        if !line.is_empty() && !is_header && !is_checksum {
            base64.push_str(line);
        }
    }
    None
}

/// Returns the packets of `bytes` when all of them are signatures, as in a
/// revocation certificate.
fn parse_signatures(bytes: &[u8]) -> Option<Vec<Signature>> {
    let pile = PacketPile::from_bytes(bytes).ok()?;
    let mut signatures = Vec::new();
    for packet in pile.into_children() {
        match packet {
            Packet::Signature(signature) => signatures.push(signature),
            _ => return None,
        }
    }
    (!signatures.is_empty()).then_some(signatures)
}
