//! OpenPGP key management: generating the user's key, describing a
//! certificate for the Keys screen, revoking, exporting, and choosing the
//! certificate to encrypt to and the key to sign with.
//!
//! Keys are generated as version 4 (RFC 9580 section 5.5.2.3) because
//! GnuPG 2.2, still the most common peer, cannot read version 6 keys.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sequoia_openpgp as pgp;

use pgp::cert::{CertBuilder, CipherSuite};
use pgp::crypto::KeyPair;
use pgp::packet::UserID;
use pgp::policy::StandardPolicy;
use pgp::serialize::SerializeInto;
use pgp::types::{ReasonForRevocation, RevocationStatus};
use pgp::{Cert, Profile};
use serde::Serialize;

use super::{Keyring, OpenpgpError};

/// The public-key algorithm of a generated key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Suite {
    /// Ed25519 signing and X25519 encryption: small and fast.
    #[default]
    Cv25519,
    /// RSA with 4096-bit keys, for peers that support nothing newer.
    Rsa4096,
}

impl std::str::FromStr for Suite {
    type Err = OpenpgpError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "cv25519" | "25519" | "ed25519" => Ok(Self::Cv25519),
            "rsa4096" | "rsa-4096" | "rsa" => Ok(Self::Rsa4096),
            _ => Err(OpenpgpError::UnknownSuite {
                name: text.to_string(),
            }),
        }
    }
}

/// Generates a key for `address`: a certification primary key with a
/// signing subkey and an encryption subkey, valid for `validity` (none
/// means no expiry). The secret parts are not encrypted, so the caller
/// must keep them in the encrypted store.
pub fn generate(
    name: Option<&str>,
    address: &str,
    suite: Suite,
    validity: Option<Duration>,
) -> Result<Cert, OpenpgpError> {
    let user_id = match name.map(str::trim).filter(|name| !name.is_empty()) {
        Some(name) => UserID::from_address(Some(name), None, address),
        None => UserID::from_address(None, None, address),
    }
    .map_err(|error| OpenpgpError::InvalidKey {
        reason: format!("cannot make a user ID of {address:?}: {error}"),
    })?;
    let cipher_suite = match suite {
        Suite::Cv25519 => CipherSuite::Cv25519,
        Suite::Rsa4096 => CipherSuite::RSA4k,
    };
    let (cert, _revocation) = CertBuilder::new()
        .set_profile(Profile::RFC4880)
        .map_err(generate_failed)?
        .set_cipher_suite(cipher_suite)
        .add_userid(user_id)
        .add_signing_subkey()
        .add_transport_encryption_subkey()
        .set_validity_period(validity)
        .generate()
        .map_err(generate_failed)?;
    Ok(cert)
}

fn generate_failed(error: anyhow::Error) -> OpenpgpError {
    OpenpgpError::Write {
        reason: format!("cannot generate key: {error}"),
    }
}

/// Returns `cert` with a revocation of its primary key added, signed by
/// its own unencrypted primary secret key.
pub fn revoke(cert: &Cert, reason: &str) -> Result<Cert, OpenpgpError> {
    let fingerprint = cert.fingerprint().to_hex();
    let primary = cert.primary_key().key().clone();
    let secret = primary
        .parts_into_secret()
        .map_err(|_| OpenpgpError::NoSecretKey {
            fingerprint: fingerprint.clone(),
        })?;
    if secret.secret().is_encrypted() {
        return Err(OpenpgpError::KeyLocked { fingerprint });
    }
    let mut signer = secret.into_keypair().map_err(|error| OpenpgpError::Write {
        reason: error.to_string(),
    })?;
    let revocation = cert
        .revoke(
            &mut signer,
            ReasonForRevocation::KeyRetired,
            reason.as_bytes(),
        )
        .map_err(|error| OpenpgpError::Write {
            reason: error.to_string(),
        })?;
    let (revoked, _) =
        cert.clone()
            .insert_packets(revocation)
            .map_err(|error| OpenpgpError::Write {
                reason: error.to_string(),
            })?;
    Ok(revoked)
}

/// Returns the certificate's public parts, ASCII-armored, for sharing.
pub fn export_public(cert: &Cert) -> Result<Vec<u8>, OpenpgpError> {
    cert.armored()
        .to_vec()
        .map_err(|error| OpenpgpError::Write {
            reason: error.to_string(),
        })
}

/// Returns the binary public certificate reduced to the user ID for
/// `address`, as an Autocrypt header carries it (Autocrypt Level 1 section
/// 2.1.1: one user ID, the subkeys, no other user IDs).
pub fn minimal_public(cert: &Cert, address: &str) -> Result<Vec<u8>, OpenpgpError> {
    let address = address.to_lowercase();
    let reduced = cert
        .clone()
        .strip_secret_key_material()
        .retain_userids(|user_id| {
            user_id
                .userid()
                .email()
                .ok()
                .flatten()
                .is_some_and(|email| email.to_lowercase() == address)
        });
    reduced.to_vec().map_err(|error| OpenpgpError::Write {
        reason: error.to_string(),
    })
}

/// Returns the certificate with its secret parts, binary, for the store.
pub fn to_tsk_bytes(cert: &Cert) -> Result<Vec<u8>, OpenpgpError> {
    cert.as_tsk().to_vec().map_err(|error| OpenpgpError::Write {
        reason: error.to_string(),
    })
}

/// A certificate as the Keys screen and `wardmail keys list` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The primary key fingerprint, upper-case hex.
    pub fingerprint: String,
    /// The e-mail addresses of its valid user IDs, lower-case.
    pub addresses: Vec<String>,
    /// The primary key algorithm, such as "EdDSA" or "RSA 4096".
    pub algorithm: String,
    /// Creation time in Unix seconds.
    pub created: i64,
    /// Expiry in Unix seconds, if the key expires.
    pub expires: Option<i64>,
    /// Whether the key is revoked.
    pub revoked: bool,
    /// Whether the key expired.
    pub expired: bool,
    /// Whether a secret key is held (the user's own key).
    pub secret: bool,
    /// Whether a secret key is held but protected by a passphrase.
    pub locked: bool,
    /// Whether it can encrypt now.
    pub can_encrypt: bool,
    /// Whether it can sign now (with a secret key held).
    pub can_sign: bool,
}

/// Describes `cert` as of now.
pub fn describe(cert: &Cert) -> KeyInfo {
    let policy = StandardPolicy::new();
    let now = SystemTime::now();
    let valid = cert.with_policy(&policy, now).ok();
    let revoked = matches!(
        cert.revocation_status(&policy, now),
        RevocationStatus::Revoked(_)
    );
    let expires = valid
        .as_ref()
        .and_then(|valid| valid.primary_key().key_expiration_time())
        .map(unix);
    let expired = expires.is_some_and(|at| at <= unix(now));
    let key = cert.primary_key().key();
    let bits = key.mpis().bits().map(|bits| format!(" {bits}"));
    let algorithm = format!("{}{}", key.pk_algo(), bits.unwrap_or_default());
    let usable = |flags: &dyn Fn(&pgp::cert::ValidCert<'_>) -> bool| {
        !revoked && !expired && valid.as_ref().is_some_and(flags)
    };
    let can_encrypt = usable(&|valid| {
        valid
            .keys()
            .supported()
            .alive()
            .revoked(false)
            .for_transport_encryption()
            .next()
            .is_some()
    });
    let can_sign = usable(&|valid| {
        valid
            .keys()
            .secret()
            .supported()
            .alive()
            .revoked(false)
            .for_signing()
            .next()
            .is_some()
    });
    let secret = cert.is_tsk();
    let locked = secret
        && cert
            .keys()
            .secret()
            .all(|key| key.key().secret().is_encrypted());
    KeyInfo {
        fingerprint: cert.fingerprint().to_hex(),
        addresses: addresses(cert),
        algorithm,
        created: unix(key.creation_time()),
        expires,
        revoked,
        expired,
        secret,
        locked,
        can_encrypt,
        can_sign,
    }
}

/// Returns the lower-cased e-mail addresses of the user IDs that the
/// standard policy accepts now.
pub fn addresses(cert: &Cert) -> Vec<String> {
    let policy = StandardPolicy::new();
    let Ok(valid) = cert.with_policy(&policy, None) else {
        return Vec::new();
    };
    let mut addresses: Vec<String> = valid
        .userids()
        .filter_map(|user_id| user_id.userid().email().ok().flatten())
        .map(|email| email.to_lowercase())
        .collect();
    // `dedup` removes only adjacent repeats, so sort first.
    addresses.sort_unstable();
    addresses.dedup();
    addresses
}

fn unix(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Keyring {
    /// Returns the certificate with this primary fingerprint.
    pub fn certificate(&self, fingerprint: &str) -> Option<&Cert> {
        self.certificates().iter().find(|cert| {
            cert.fingerprint()
                .to_hex()
                .eq_ignore_ascii_case(fingerprint)
        })
    }

    /// Returns the certificate with this primary fingerprint, or
    /// [`OpenpgpError::KeyNotFound`] naming it.
    pub fn require(&self, fingerprint: &str) -> Result<&Cert, OpenpgpError> {
        self.certificate(fingerprint)
            .ok_or_else(|| OpenpgpError::KeyNotFound {
                fingerprint: fingerprint.to_owned(),
            })
    }

    /// Returns the certificates that name `address` in a valid user ID and
    /// can encrypt now, newest first.
    pub fn encryption_candidates(&self, address: &str) -> Vec<&Cert> {
        let address = address.to_lowercase();
        let mut candidates: Vec<&Cert> = self
            .certificates()
            .iter()
            .filter(|cert| addresses(cert).contains(&address) && describe(cert).can_encrypt)
            .collect();
        candidates.sort_by_key(|cert| std::cmp::Reverse(cert.primary_key().key().creation_time()));
        candidates
    }

    /// Returns a key pair to sign as `address`: the signing subkey of the
    /// newest usable certificate of the user's with that address whose
    /// secret key is unencrypted or unlocked.
    ///
    /// Fails with [`OpenpgpError::KeyLocked`] when the only signing keys
    /// are protected by a passphrase and not unlocked, and with
    /// [`OpenpgpError::NoOwnKey`] when no own key names the address.
    pub fn signer_for(&self, address: &str) -> Result<KeyPair, OpenpgpError> {
        let policy = StandardPolicy::new();
        let address = address.to_lowercase();
        let mut locked = None;
        let mut own: Vec<&Cert> = self
            .certificates()
            .iter()
            .filter(|cert| cert.is_tsk() && addresses(cert).contains(&address))
            .collect();
        own.sort_by_key(|cert| std::cmp::Reverse(cert.primary_key().key().creation_time()));
        for cert in own {
            let Ok(valid) = cert.with_policy(&policy, None) else {
                continue;
            };
            let revoked = matches!(valid.revocation_status(), RevocationStatus::Revoked(_));
            if revoked || valid.alive().is_err() {
                continue;
            }
            for key in valid
                .keys()
                .supported()
                .alive()
                .revoked(false)
                .for_signing()
            {
                let fingerprint = key.key().fingerprint();
                let unlocked = self
                    .secret_keys()
                    .iter()
                    .find(|secret| secret.fingerprint() == fingerprint);
                match unlocked {
                    Some(secret) => {
                        return secret.clone().into_keypair().map_err(|error| {
                            OpenpgpError::Write {
                                reason: error.to_string(),
                            }
                        });
                    }
                    None if key.key().has_secret() => {
                        locked.get_or_insert_with(|| cert.fingerprint().to_hex());
                    }
                    None => {}
                }
            }
        }
        match locked {
            Some(fingerprint) => Err(OpenpgpError::KeyLocked { fingerprint }),
            None => Err(OpenpgpError::NoOwnKey { address }),
        }
    }
}
