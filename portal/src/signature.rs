//! Verification of device requests: HTTP Message Signatures (RFC 9421)
//! with Ed25519 over `"@method" "@target-uri" "content-digest"`, and the
//! body's `Content-Digest` (RFC 9530, `sha-256`).
//!
//! Only the profile in docs/portal-scheme.md is accepted: label `sig1`,
//! exactly those three components in that order, and exactly the
//! parameters `created`, `keyid`, `alg="ed25519"` and `nonce`. The header
//! fields are Structured Fields (RFC 9651); [`structured`] parses the
//! subset that these three fields use.

mod structured;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use structured::{BareItem, Member};

/// The signature label devices use.
pub const LABEL: &str = "sig1";

/// The covered components, in order.
pub const COMPONENTS: [&str; 3] = ["@method", "@target-uri", "content-digest"];

/// Seconds `created` may differ from the server's clock.
pub const CLOCK_SKEW_SECONDS: i64 = 300;

/// Longest accepted nonce, in characters.
const MAX_NONCE_CHARS: usize = 128;

/// Reason a signed request is rejected. The text goes to the client, so it
/// names the problem and never echoes a signature.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// A header field is absent.
    #[error("missing {0} header; sign the request as docs/portal-scheme.md describes")]
    Missing(&'static str),
    /// A header field is not a valid Structured Field of the expected shape.
    #[error("invalid {field} header: {reason}")]
    Malformed {
        /// The header field.
        field: &'static str,
        /// Description of the problem.
        reason: String,
    },
    /// The body does not match `Content-Digest`.
    #[error("Content-Digest does not match the body; compute sha-256 over the exact bytes sent")]
    Digest,
    /// `created` is too far from the server's clock.
    #[error(
        "signature created at {created} is more than {CLOCK_SKEW_SECONDS} s from the server's time {now}; check the desktop's clock"
    )]
    Stale {
        /// The signature's `created`.
        created: i64,
        /// The server's time.
        now: i64,
    },
    /// No enrolled device has the `keyid`.
    #[error("unknown device; enrol the desktop again")]
    UnknownDevice,
    /// The Ed25519 signature does not verify.
    #[error(
        "signature does not verify; check that @target-uri is built from the portal's public URL"
    )]
    Invalid,
    /// The nonce was used within the replay window.
    #[error("nonce already used; send a fresh nonce with every request")]
    Replayed,
}

/// The parsed `sig1` signature, ready to verify.
#[derive(Debug)]
pub struct SignedRequest {
    /// The device id from `keyid`.
    pub key_id: String,
    /// The nonce.
    pub nonce: String,
    /// Unix time the signature was created.
    pub created: i64,
    /// The Ed25519 signature.
    signature: Vec<u8>,
    /// The signature base (RFC 9421 section 2.5).
    base: String,
}

/// The header fields of a request that matter to its signature, each as
/// received (several lines of one field joined with ", ").
pub struct SignatureHeaders<'a> {
    /// `Signature-Input`.
    pub signature_input: Option<&'a str>,
    /// `Signature`.
    pub signature: Option<&'a str>,
    /// `Content-Digest`.
    pub content_digest: Option<&'a str>,
}

/// Parses the signature headers and checks the body's digest and the
/// clock, returning what remains to check against the device's key.
/// `target_uri` is the portal's public URL plus the request's path and
/// query.
pub fn parse_request(
    method: &str,
    target_uri: &str,
    headers: &SignatureHeaders<'_>,
    body: &[u8],
    now: i64,
) -> Result<SignedRequest, SignatureError> {
    let input = headers
        .signature_input
        .ok_or(SignatureError::Missing("Signature-Input"))?;
    let signature_field = headers
        .signature
        .ok_or(SignatureError::Missing("Signature"))?;
    let digest_field = headers
        .content_digest
        .ok_or(SignatureError::Missing("Content-Digest"))?;

    check_digest(digest_field, body)?;
    let params = parse_signature_input(input)?;
    let signature = parse_signature(signature_field)?;

    if (now - params.created).abs() > CLOCK_SKEW_SECONDS {
        return Err(SignatureError::Stale {
            created: params.created,
            now,
        });
    }

    let base = format!(
        "\"@method\": {method}\n\"@target-uri\": {target_uri}\n\"content-digest\": {}\n\"@signature-params\": {}",
        digest_field.trim(),
        params.serialized
    );
    Ok(SignedRequest {
        key_id: params.key_id,
        nonce: params.nonce,
        created: params.created,
        signature,
        base,
    })
}

impl SignedRequest {
    /// Verifies the Ed25519 signature with the device's public key.
    pub fn verify(&self, public_key: &[u8; 32]) -> Result<(), SignatureError> {
        let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key);
        key.verify(self.base.as_bytes(), &self.signature)
            .map_err(|_| SignatureError::Invalid)
    }

    /// Returns the signature base, for tests and for debugging a client.
    pub fn base(&self) -> &str {
        &self.base
    }
}

/// The signature parameters of `sig1`, and their canonical serialization
/// for the `@signature-params` line.
struct Params {
    key_id: String,
    nonce: String,
    created: i64,
    serialized: String,
}

fn malformed(field: &'static str, reason: impl Into<String>) -> SignatureError {
    SignatureError::Malformed {
        field,
        reason: reason.into(),
    }
}

fn parse_signature_input(text: &str) -> Result<Params, SignatureError> {
    const FIELD: &str = "Signature-Input";
    let members = structured::parse_dictionary(text).map_err(|reason| malformed(FIELD, reason))?;
    let member = find_member(members, FIELD)?;
    let Member::InnerList(items, params) = member else {
        return Err(malformed(FIELD, "sig1 is not an inner list"));
    };

    let components: Vec<&str> = items
        .iter()
        .map(|(item, item_params)| match item {
            BareItem::String(name) if item_params.is_empty() => Ok(name.as_str()),
            _ => Err(malformed(
                FIELD,
                "each covered component must be a string without parameters",
            )),
        })
        .collect::<Result<_, _>>()?;
    if components != COMPONENTS {
        return Err(malformed(
            FIELD,
            "covered components must be exactly (\"@method\" \"@target-uri\" \"content-digest\")",
        ));
    }

    let mut created = None;
    let mut key_id = None;
    let mut alg = None;
    let mut nonce = None;
    for (key, value) in &params {
        match (key.as_str(), value) {
            ("created", BareItem::Integer(value)) => created = Some(*value),
            ("keyid", BareItem::String(value)) => key_id = Some(value.clone()),
            ("alg", BareItem::String(value)) => alg = Some(value.clone()),
            ("nonce", BareItem::String(value)) => nonce = Some(value.clone()),
            _ => {
                return Err(malformed(
                    FIELD,
                    format!(
                        "unexpected parameter {key:?}; only created (an integer), keyid, alg and nonce (strings) are accepted"
                    ),
                ));
            }
        }
    }
    if params.len() != 4 {
        return Err(malformed(FIELD, "each parameter must appear once"));
    }
    let created = created.ok_or_else(|| malformed(FIELD, "created is missing"))?;
    let key_id = key_id.ok_or_else(|| malformed(FIELD, "keyid is missing"))?;
    let nonce = nonce.ok_or_else(|| malformed(FIELD, "nonce is missing"))?;
    if alg.as_deref() != Some("ed25519") {
        return Err(malformed(FIELD, "alg must be \"ed25519\""));
    }
    if nonce.is_empty() || nonce.len() > MAX_NONCE_CHARS {
        return Err(malformed(
            FIELD,
            format!("nonce must have 1 to {MAX_NONCE_CHARS} characters"),
        ));
    }

    Ok(Params {
        key_id,
        nonce,
        created,
        serialized: structured::serialize_inner_list(&items, &params),
    })
}

fn parse_signature(text: &str) -> Result<Vec<u8>, SignatureError> {
    const FIELD: &str = "Signature";
    let members = structured::parse_dictionary(text).map_err(|reason| malformed(FIELD, reason))?;
    match find_member(members, FIELD)? {
        Member::Item(BareItem::Bytes(bytes), _) if bytes.len() == 64 => Ok(bytes),
        _ => Err(malformed(FIELD, "sig1 must be a 64-byte Ed25519 signature")),
    }
}

fn find_member(
    members: Vec<(String, Member)>,
    field: &'static str,
) -> Result<Member, SignatureError> {
    // RFC 9651 section 4.2.2: a later member with the same key replaces an
    // earlier one.
    members
        .into_iter()
        .rev()
        .find(|(key, _)| key == LABEL)
        .map(|(_, member)| member)
        .ok_or_else(|| malformed(field, format!("no {LABEL} member")))
}

/// Checks the `sha-256` member of `Content-Digest` against the body.
fn check_digest(text: &str, body: &[u8]) -> Result<(), SignatureError> {
    const FIELD: &str = "Content-Digest";
    let members = structured::parse_dictionary(text).map_err(|reason| malformed(FIELD, reason))?;
    let digest = members
        .into_iter()
        .rev()
        .find(|(key, _)| key == "sha-256")
        .ok_or_else(|| malformed(FIELD, "no sha-256 member"))?;
    let Member::Item(BareItem::Bytes(expected), _) = digest.1 else {
        return Err(malformed(FIELD, "sha-256 is not a byte sequence"));
    };
    if expected != crate::wire::sha256(body) {
        return Err(SignatureError::Digest);
    }
    Ok(())
}

/// Formats the `Content-Digest` field value for `body`.
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(crate::wire::sha256(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &str = r#"sig1=("@method" "@target-uri" "content-digest");created=1800000000;keyid="dev";alg="ed25519";nonce="n1""#;

    fn headers<'a>(input: &'a str, digest: &'a str) -> SignatureHeaders<'a> {
        SignatureHeaders {
            signature_input: Some(input),
            signature: Some(
                "sig1=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==:",
            ),
            content_digest: Some(digest),
        }
    }

    #[test]
    fn signature_base_layout() {
        let digest = content_digest(b"{}");
        let request = parse_request(
            "POST",
            "https://portal.example/api/v1/messages",
            &headers(INPUT, &digest),
            b"{}",
            1_800_000_010,
        )
        .unwrap();
        let expected = format!(
            "\"@method\": POST\n\"@target-uri\": https://portal.example/api/v1/messages\n\"content-digest\": {digest}\n\"@signature-params\": (\"@method\" \"@target-uri\" \"content-digest\");created=1800000000;keyid=\"dev\";alg=\"ed25519\";nonce=\"n1\""
        );
        assert_eq!(request.base(), expected);
        assert_eq!(request.key_id, "dev");
    }

    #[test]
    fn signature_input_rejections() {
        let digest = content_digest(b"");
        let cases = [
            INPUT.replace(r#" "content-digest""#, ""),
            INPUT.replace(r#""@method" "@target-uri""#, r#""@target-uri" "@method""#),
            INPUT.replace("ed25519", "rsa-pss-sha512"),
            INPUT.replace(r#";nonce="n1""#, ""),
            format!("{INPUT};expires=1800000300"),
            INPUT.replace("created=1800000000", "created=\"1800000000\""),
            INPUT.replace("sig1=", "sig2="),
        ];
        for input in cases {
            let result = parse_request(
                "GET",
                "https://p/x",
                &headers(&input, &digest),
                b"",
                1_800_000_000,
            );
            assert!(
                matches!(result, Err(SignatureError::Malformed { .. })),
                "{input}: {result:?}"
            );
        }
    }

    #[test]
    fn signature_digest_and_clock() {
        let digest = content_digest(b"one");
        let result = parse_request(
            "POST",
            "https://p/x",
            &headers(INPUT, &digest),
            b"two",
            1_800_000_000,
        );
        assert_eq!(result.unwrap_err(), SignatureError::Digest);

        let digest = content_digest(b"");
        let result = parse_request(
            "GET",
            "https://p/x",
            &headers(INPUT, &digest),
            b"",
            1_800_000_301,
        );
        assert!(matches!(result, Err(SignatureError::Stale { .. })));
        let result = parse_request(
            "GET",
            "https://p/x",
            &headers(INPUT, &digest),
            b"",
            1_799_999_699,
        );
        assert!(matches!(result, Err(SignatureError::Stale { .. })));
        let result = parse_request(
            "GET",
            "https://p/x",
            &headers(INPUT, &digest),
            b"",
            1_800_000_300,
        );
        assert!(result.is_ok());
    }
}
