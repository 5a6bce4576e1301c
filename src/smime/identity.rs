//! The user's own S/MIME identity: a private key, its certificate and the
//! chain certificates that came with it in the PKCS#12 file (RFC 7292).

use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509, X509Ref};

use super::{
    SmimeError, certificate_addresses, classify_pkcs12, describe_errors, load_providers, pkcs12_der,
};

/// A private key with its certificate, used to decrypt and sign messages,
/// and the chain certificates that a signature carries.
pub struct Identity {
    pub(super) key: PKey<Private>,
    pub(super) certificate: X509,
    chain: Vec<X509>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key never appears in debug output.
        formatter
            .debug_struct("Identity")
            .field("addresses", &certificate_addresses(&self.certificate))
            .field("chain", &self.chain.len())
            .field("key", &"<private key>")
            .finish()
    }
}

impl Identity {
    /// Reads a PKCS#12 file, DER or PEM-armored ("-----BEGIN PKCS12-----"),
    /// and decrypts its private key with `password`.
    ///
    /// Files from older tools use RC2-40 or other legacy algorithms, so the
    /// OpenSSL legacy provider is loaded when it is installed.
    pub fn from_pkcs12(bytes: &[u8], password: &str) -> Result<Self, SmimeError> {
        load_providers();
        let der = pkcs12_der(bytes)?;
        let pkcs12 = Pkcs12::from_der(&der).map_err(|errors| SmimeError::InvalidPkcs12 {
            reason: describe_errors(&errors),
        })?;
        let parsed = pkcs12
            .parse2(password)
            .map_err(|errors| classify_pkcs12(&errors))?;

        let chain = parsed
            .ca
            .map(|stack| stack.into_iter().collect())
            .unwrap_or_default();
        match (parsed.pkey, parsed.cert) {
            (Some(key), Some(certificate)) => Ok(Self {
                key,
                certificate,
                chain,
            }),
            _ => Err(SmimeError::IncompleteIdentity),
        }
    }

    /// Returns the certificate of this identity.
    pub fn certificate(&self) -> &X509Ref {
        &self.certificate
    }

    /// Returns the chain certificates held with the identity (intermediates
    /// and possibly the root), in the order of the PKCS#12 file.
    pub fn chain(&self) -> &[X509] {
        &self.chain
    }

    /// Replaces the chain certificates with DER certificates read from the
    /// store.
    pub fn with_chain(mut self, ders: &[Vec<u8>]) -> Result<Self, SmimeError> {
        self.chain = ders
            .iter()
            .map(|der| X509::from_der(der))
            .collect::<Result<_, _>>()
            .map_err(|errors| SmimeError::InvalidCertificate {
                reason: describe_errors(&errors),
            })?;
        Ok(self)
    }

    /// Returns the chain certificates as DER, for the store.
    pub fn chain_ders(&self) -> Result<Vec<Vec<u8>>, SmimeError> {
        self.chain
            .iter()
            .map(|certificate| certificate.to_der())
            .collect::<Result<_, _>>()
            .map_err(|errors| SmimeError::InvalidCertificate {
                reason: describe_errors(&errors),
            })
    }

    /// Returns the e-mail addresses that the certificate names.
    pub fn addresses(&self) -> Vec<String> {
        certificate_addresses(&self.certificate)
    }

    /// Serialises the identity for the encrypted store: the private key as
    /// unencrypted PKCS#8 DER and the certificate as DER. The caller must
    /// keep the key bytes out of any unencrypted file.
    pub fn to_der(&self) -> Result<(Vec<u8>, Vec<u8>), SmimeError> {
        let key = self
            .key
            .private_key_to_pkcs8()
            .map_err(|errors| SmimeError::InvalidPkcs12 {
                reason: describe_errors(&errors),
            })?;
        let certificate =
            self.certificate
                .to_der()
                .map_err(|errors| SmimeError::InvalidCertificate {
                    reason: describe_errors(&errors),
                })?;
        Ok((key, certificate))
    }

    /// Rebuilds an identity from [`Identity::to_der`] output, without chain
    /// certificates (see [`Identity::with_chain`]).
    pub fn from_der(key: &[u8], certificate: &[u8]) -> Result<Self, SmimeError> {
        let key =
            PKey::private_key_from_pkcs8(key).map_err(|errors| SmimeError::InvalidPkcs12 {
                reason: describe_errors(&errors),
            })?;
        let certificate =
            X509::from_der(certificate).map_err(|errors| SmimeError::InvalidCertificate {
                reason: describe_errors(&errors),
            })?;
        Ok(Self {
            key,
            certificate,
            chain: Vec::new(),
        })
    }

    /// Returns the SHA-256 fingerprint of the certificate, as upper-case
    /// hex pairs separated by colons.
    pub fn fingerprint(&self) -> String {
        super::fingerprint(&self.certificate)
    }
}
