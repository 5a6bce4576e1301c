//! The desktop's device key and its signed requests to the portal's
//! `/api/v1/` endpoints.
//!
//! Requests are signed under HTTP Message Signatures (RFC 9421) with the
//! label `sig1`, covering `"@method" "@target-uri" "content-digest"`, with
//! the parameters `created`, `keyid`, `alg="ed25519"` and `nonce` in that
//! order. The signature base is built as RFC 9421 section 2.5 lays it out.
//! `Content-Digest` (RFC 9530) is `sha-256=:…:` over the body, the empty
//! body included.

use std::fmt;

use ring::digest;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};

use super::{PortalError, encode, encode_standard, random_array};

const LABEL: &str = "sig1";
const COVERED: &str = r#"("@method" "@target-uri" "content-digest")"#;

/// The device's Ed25519 signing key.
pub struct DeviceKey {
    pair: Ed25519KeyPair,
}

/// The PKCS#8 v2 document of a device key, for the OS keyring. `Debug`
/// never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceKeyDocument(Vec<u8>);

impl DeviceKeyDocument {
    /// Returns the DER bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Returns the DER bytes as base64url, for a keyring that stores text.
    pub fn expose_text(&self) -> String {
        encode(&self.0)
    }
}

impl fmt::Debug for DeviceKeyDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKeyDocument(<redacted>)")
    }
}

/// The three headers of a signed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    /// The `Content-Digest` value.
    pub content_digest: String,
    /// The `Signature-Input` value.
    pub signature_input: String,
    /// The `Signature` value.
    pub signature: String,
}

impl SignedHeaders {
    /// Returns the headers as (name, value) pairs.
    pub fn all(&self) -> [(&'static str, &str); 3] {
        [
            ("Content-Digest", &self.content_digest),
            ("Signature-Input", &self.signature_input),
            ("Signature", &self.signature),
        ]
    }
}

impl DeviceKey {
    /// Generates a key; the caller keeps the returned document in the OS
    /// keyring and sends [`DeviceKey::public_key`] when enrolling.
    pub fn generate() -> Result<(DeviceKey, DeviceKeyDocument), PortalError> {
        let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| PortalError::Random)?;
        let document = DeviceKeyDocument(document.as_ref().to_vec());
        let key = DeviceKey::from_pkcs8(document.expose())?;
        Ok((key, document))
    }

    /// Loads a key from its PKCS#8 v2 document.
    pub fn from_pkcs8(document: &[u8]) -> Result<DeviceKey, PortalError> {
        let pair =
            Ed25519KeyPair::from_pkcs8(document).map_err(|rejected| PortalError::DeviceKey {
                reason: rejected.to_string(),
            })?;
        Ok(DeviceKey { pair })
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.pair.public_key().as_ref());
        key
    }

    /// Signs a request.
    ///
    /// `method` is the request method as sent (`POST`), `target_uri` the
    /// full URI the portal rebuilds from its `public_url`, path and query,
    /// `keyid` the device id from enrolment, `created` the time in seconds
    /// since the Unix epoch, and `nonce` a value never used before (see
    /// [`DeviceKey::new_nonce`]).
    pub fn sign_request(
        &self,
        method: &str,
        target_uri: &str,
        body: &[u8],
        keyid: &str,
        created: u64,
        nonce: &str,
    ) -> Result<SignedHeaders, PortalError> {
        let params = signature_params(keyid, created, nonce)?;
        let content_digest = content_digest(body);
        let base = signature_base(method, target_uri, &content_digest, &params);
        let signature = self.pair.sign(base.as_bytes());
        Ok(SignedHeaders {
            content_digest,
            signature_input: format!("{LABEL}={params}"),
            signature: format!("{LABEL}=:{}:", encode_standard(signature.as_ref())),
        })
    }

    /// Draws a fresh nonce: 16 random bytes as base64url.
    pub fn new_nonce() -> Result<String, PortalError> {
        let bytes: [u8; 16] = random_array()?;
        Ok(encode(&bytes))
    }
}

/// Returns the `Content-Digest` value of a body (RFC 9530 section 2).
pub fn content_digest(body: &[u8]) -> String {
    let hash = digest::digest(&digest::SHA256, body);
    format!("sha-256=:{}:", encode_standard(hash.as_ref()))
}

/// Returns the signature base (RFC 9421 section 2.5): one line per covered
/// component and the `@signature-params` line, joined by LF, with no final
/// newline. `params` is the inner list with its parameters, as in
/// `Signature-Input` after `sig1=`.
pub fn signature_base(
    method: &str,
    target_uri: &str,
    content_digest: &str,
    params: &str,
) -> String {
    format!(
        "\"@method\": {method}\n\
         \"@target-uri\": {target_uri}\n\
         \"content-digest\": {content_digest}\n\
         \"@signature-params\": {params}"
    )
}

fn signature_params(keyid: &str, created: u64, nonce: &str) -> Result<String, PortalError> {
    check_sf_string("keyid", keyid)?;
    check_sf_string("nonce", nonce)?;
    Ok(format!(
        "{COVERED};created={created};keyid=\"{keyid}\";alg=\"ed25519\";nonce=\"{nonce}\""
    ))
}

/// Accepts the characters a structured-field string holds without escapes.
fn check_sf_string(field: &'static str, value: &str) -> Result<(), PortalError> {
    let valid = value
        .bytes()
        .all(|byte| (0x20..=0x7e).contains(&byte) && byte != b'"' && byte != b'\\');
    if valid {
        Ok(())
    } else {
        Err(PortalError::SignatureParameter { field })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ring::signature::{ED25519, UnparsedPublicKey};

    use super::*;

    #[test]
    fn content_digest_of_empty_body() {
        // SHA-256 of the empty string is e3b0c442...b855.
        assert_eq!(
            content_digest(b""),
            "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
        );
    }

    #[test]
    fn content_digest_of_json_body() {
        // The expected value was computed with Python's hashlib and base64.
        assert_eq!(
            content_digest(b"{\"hello\": \"world\"}"),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
    }

    #[test]
    fn signature_base_layout() {
        let params = signature_params("dev-42", 1_765_000_000, "bm9uY2U").unwrap();
        let base = signature_base(
            "POST",
            "https://portal.example.org/api/v1/messages",
            "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:",
            &params,
        );
        let expected = "\"@method\": POST\n\
\"@target-uri\": https://portal.example.org/api/v1/messages\n\
\"content-digest\": sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:\n\
\"@signature-params\": (\"@method\" \"@target-uri\" \"content-digest\");created=1765000000;keyid=\"dev-42\";alg=\"ed25519\";nonce=\"bm9uY2U\"";
        assert_eq!(base, expected);
    }

    #[test]
    fn signature_verifies_over_base() {
        let (key, document) = DeviceKey::generate().unwrap();
        let body = br#"{"id":"AAAA"}"#;
        let uri = "https://portal.example.org/api/v1/messages?x=1";
        let headers = key
            .sign_request("POST", uri, body, "dev-42", 1_765_000_000, "bm9uY2U")
            .unwrap();

        assert_eq!(headers.content_digest, content_digest(body));
        let params = headers.signature_input.strip_prefix("sig1=").unwrap();
        assert_eq!(
            params,
            "(\"@method\" \"@target-uri\" \"content-digest\");created=1765000000;\
             keyid=\"dev-42\";alg=\"ed25519\";nonce=\"bm9uY2U\""
        );
        let encoded = headers
            .signature
            .strip_prefix("sig1=:")
            .and_then(|rest| rest.strip_suffix(':'))
            .unwrap();
        let signature =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).unwrap();
        assert_eq!(signature.len(), 64);

        let base = signature_base("POST", uri, &headers.content_digest, params);
        let public_key = UnparsedPublicKey::new(&ED25519, key.public_key());
        public_key.verify(base.as_bytes(), &signature).unwrap();
        let other_base = signature_base("PUT", uri, &headers.content_digest, params);
        assert!(
            public_key
                .verify(other_base.as_bytes(), &signature)
                .is_err()
        );

        let reloaded = DeviceKey::from_pkcs8(document.expose()).unwrap();
        assert_eq!(reloaded.public_key(), key.public_key());
    }

    #[test]
    fn sign_rejects_quote_in_keyid() {
        let (key, _) = DeviceKey::generate().unwrap();
        let result = key.sign_request("GET", "https://p.example.org/", b"", "a\"b", 1, "n");
        assert!(matches!(
            result,
            Err(PortalError::SignatureParameter { field: "keyid" })
        ));
    }

    #[test]
    fn from_pkcs8_rejects_garbage() {
        let result = DeviceKey::from_pkcs8(b"not a key");
        assert!(matches!(result, Err(PortalError::DeviceKey { .. })));
    }

    #[test]
    fn debug_hides_document() {
        let (_, document) = DeviceKey::generate().unwrap();
        assert_eq!(format!("{document:?}"), "DeviceKeyDocument(<redacted>)");
    }
}
