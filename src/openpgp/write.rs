//! OpenPGP writing: the encrypted, signed data of PGP/MIME (RFC 3156
//! sections 4 to 6). MIME assembly is left to [`crate::protected`]; this
//! module turns bytes into an armored OpenPGP message or a detached
//! signature.
//!
//! Encryption uses every encryption-capable subkey of each recipient that
//! the standard policy accepts now (RFC 9580 section 5.2.3.29), and sequoia
//! picks the container the recipients' features allow: SEIPD version 1
//! with its modification detection code for keys that do not announce
//! version 2 support, as GnuPG 2.2 keys do not. Signatures inside the
//! encryption use SHA-256 or better (RFC 3156 section 6.2, the combined
//! method).

use std::io::Write;

use sequoia_openpgp as pgp;

use pgp::Cert;
use pgp::crypto::KeyPair;
use pgp::policy::StandardPolicy;
use pgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Signer};
use pgp::types::HashAlgorithm;

use super::OpenpgpError;

/// Encrypts `plaintext` to every certificate in `recipients`, signing it
/// inside the encryption with `signer` when one is given. Returns the
/// ASCII-armored OpenPGP message.
///
/// The caller includes the sender's own certificate among the recipients,
/// so that the copy kept in Sent stays readable.
pub fn encrypt(
    plaintext: &[u8],
    recipients: &[Cert],
    signer: Option<KeyPair>,
) -> Result<Vec<u8>, OpenpgpError> {
    let policy = StandardPolicy::new();
    let mut keys = Vec::new();
    for cert in recipients {
        let before = keys.len();
        keys.extend(
            cert.keys()
                .with_policy(&policy, None)
                .supported()
                .alive()
                .revoked(false)
                .for_transport_encryption()
                .for_storage_encryption(),
        );
        if keys.len() == before {
            return Err(OpenpgpError::NoEncryptionKey {
                fingerprint: cert.fingerprint().to_hex(),
            });
        }
    }

    let mut sink = Vec::new();
    let message = Message::new(&mut sink);
    let message = Armorer::new(message).build().map_err(write_failed)?;
    let message = Encryptor::for_recipients(message, keys)
        .build()
        .map_err(write_failed)?;
    let message = match signer {
        Some(signer) => Signer::new(message, signer)
            .and_then(|builder| builder.hash_algo(HashAlgorithm::SHA256))
            .and_then(Signer::build)
            .map_err(write_failed)?,
        None => message,
    };
    let mut message = LiteralWriter::new(message).build().map_err(write_failed)?;
    message
        .write_all(plaintext)
        .map_err(|e| write_failed(e.into()))?;
    message.finalize().map_err(write_failed)?;
    Ok(sink)
}

/// Makes an ASCII-armored detached signature over `data`, for
/// multipart/signed (RFC 3156 section 5). `data` must already be in the
/// canonical CRLF form that the recipient verifies.
pub fn sign_detached(data: &[u8], signer: KeyPair) -> Result<Vec<u8>, OpenpgpError> {
    let mut sink = Vec::new();
    let message = Message::new(&mut sink);
    let message = Armorer::new(message)
        .kind(pgp::armor::Kind::Signature)
        .build()
        .map_err(write_failed)?;
    let mut message = Signer::new(message, signer)
        .and_then(|builder| builder.hash_algo(HashAlgorithm::SHA256))
        .map_err(write_failed)?
        .detached()
        .build()
        .map_err(write_failed)?;
    message
        .write_all(data)
        .map_err(|e| write_failed(e.into()))?;
    message.finalize().map_err(write_failed)?;
    Ok(sink)
}

fn write_failed(error: anyhow::Error) -> OpenpgpError {
    OpenpgpError::Write {
        reason: error.to_string(),
    }
}
