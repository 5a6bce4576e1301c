//! OpenPGP Web Key Directory lookup (draft-koch-openpgp-webkey-service-19,
//! section 3.1): find a correspondent's certificate over HTTPS at their
//! mail domain.
//!
//! The advanced method comes first:
//! `https://openpgpkey.DOMAIN/.well-known/openpgpkey/DOMAIN/hu/HASH?l=LOCAL`.
//! The direct method, `https://DOMAIN/.well-known/openpgpkey/hu/HASH?l=LOCAL`,
//! is tried only when `openpgpkey.DOMAIN` does not exist in DNS; a server
//! that fails to answer is an error, never a reason to try the other method.
//! HASH is the z-base-32 encoding of the SHA-1 of the local part with ASCII
//! letters lower-cased (section 3.1).
//!
//! Only HTTPS is used, with the trust anchors of a [`TlsContext`], over
//! addresses from the profile's [`Resolver`]. The response is capped at
//! [`MAX_RESPONSE_BYTES`] and the whole exchange at [`LOOKUP_TIMEOUT`].
//! Certificates without a self-signed User ID for the requested address are
//! dropped, because anyone who can write to the directory could otherwise
//! plant a key for a different person.
//!
//! The z-base-32 encoder is written here: the crate on crates.io for it
//! (zbase32 0.1.2) is licensed LGPL-3.0-or-later, unlike the rest of the
//! dependency tree, and the encoder is a few lines that the integration
//! tests check against `gpg-wks-client --print-wkd-hash`.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use sequoia_openpgp as pgp;

use pgp::cert::{Cert, CertParser};
use pgp::parse::Parse;
use pgp::policy::StandardPolicy;
use pgp::serialize::Serialize;

use crate::dns::{DnsError, Resolver};
use crate::net::{self, NetError, TlsContext};

/// The largest response accepted. One certificate with a few subkeys and
/// signatures is a few KiB; the limit leaves room for revoked certificates
/// that a directory may publish next to the current one.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// How long one method (TCP, TLS, request and response) may take.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(20);

const HTTPS_PORT: u16 = 443;

/// The WKD method that found a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `openpgpkey.DOMAIN` with the domain in the path.
    Advanced,
    /// The mail domain itself.
    Direct,
}

impl std::fmt::Display for Method {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Method::Advanced => "advanced",
            Method::Direct => "direct",
        })
    }
}

/// Certificates published for an address.
#[derive(Clone, Debug)]
pub struct Found {
    /// The matching certificates, binary and concatenated, public parts only.
    pub certificates: Vec<u8>,
    /// Fingerprints of the matching certificates, in hex.
    pub fingerprints: Vec<String>,
    /// How many published certificates were dropped for lacking a User ID
    /// with the address.
    pub dropped: usize,
    /// The method that found them.
    pub method: Method,
    /// The host that served them.
    pub host: String,
}

/// The reason no usable certificate is published for an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Absence {
    /// The server responded 404 Not Found.
    NotFound,
    /// Certificates were published, but none has a self-signed User ID with
    /// the address.
    NoMatchingUserId {
        /// How many certificates were dropped.
        dropped: usize,
    },
}

/// The result of a lookup that reached a WKD server.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// At least one matching certificate.
    Found(Found),
    /// The directory has no usable certificate for the address.
    NotPublished {
        /// Why.
        absence: Absence,
        /// The method whose server responded.
        method: Method,
        /// That server's host name.
        host: String,
    },
}

/// Errors that keep a lookup from telling whether a certificate is published.
#[derive(Debug, thiserror::Error)]
pub enum WkdError {
    /// The address is not `local@domain`.
    #[error(
        "cannot look up a key for this address: {reason}; enter an address like name@clinic.example"
    )]
    InvalidAddress {
        /// The problem, described without the local part.
        reason: &'static str,
    },
    /// The domain, or the WKD host, could not be resolved.
    #[error("WKD lookup at {host} failed: {source}")]
    Dns {
        /// The host being resolved.
        host: String,
        /// The resolver's error.
        source: DnsError,
    },
    /// TCP to the WKD host failed.
    #[error("WKD lookup at {host} failed: {source}")]
    Connect {
        /// The WKD host.
        host: String,
        /// The connection error.
        source: NetError,
    },
    /// The TLS handshake failed, for example on an untrusted certificate.
    #[error(
        "WKD lookup at {host} failed: {source}; a CA for HTTPS lookups can also be set with \
         [network] https_ca_file"
    )]
    Tls {
        /// The WKD host.
        host: String,
        /// The handshake error, with the certificate's subject and issuer
        /// when it was not trusted.
        source: NetError,
    },
    /// The whole exchange took too long.
    #[error(
        "WKD lookup at {host} timed out after {seconds} s: check the network connection, \
         or try again later"
    )]
    TimedOut {
        /// The WKD host.
        host: String,
        /// The timeout that expired.
        seconds: u64,
    },
    /// The server responded with a status other than 200 or 404.
    #[error(
        "WKD server {host} responded with HTTP {status}: try again later, or ask the domain's \
         administrator"
    )]
    Status {
        /// The WKD host.
        host: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The response exceeded [`MAX_RESPONSE_BYTES`].
    #[error(
        "WKD server {host} sent more than {limit} bytes, more than any certificate needs: \
         ask the domain's administrator"
    )]
    TooLarge {
        /// The WKD host.
        host: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// HTTP itself failed (connection closed, malformed response).
    #[error("WKD request to {host} failed: {reason}")]
    Http {
        /// The WKD host.
        host: String,
        /// hyper's description.
        reason: String,
    },
    /// The response is not OpenPGP data.
    #[error(
        "WKD server {host} sent data that is not an OpenPGP certificate ({reason}): ask the \
         domain's administrator"
    )]
    Unreadable {
        /// The WKD host.
        host: String,
        /// sequoia's description.
        reason: String,
    },
}

/// A WKD client with a resolver and HTTPS trust anchors.
#[derive(Clone, Debug)]
pub struct WkdClient {
    resolver: Resolver,
    tls: TlsContext,
    timeout: Duration,
}

/// An address split for WKD.
struct Address {
    local: String,
    domain: String,
}

impl WkdClient {
    /// Creates a client that resolves with `resolver` and trusts `tls`.
    pub fn new(resolver: Resolver, tls: TlsContext) -> WkdClient {
        WkdClient {
            resolver,
            tls,
            timeout: LOOKUP_TIMEOUT,
        }
    }

    /// Replaces [`LOOKUP_TIMEOUT`] for each method.
    pub fn with_timeout(mut self, timeout: Duration) -> WkdClient {
        self.timeout = timeout;
        self
    }

    /// Looks up the certificates published for `address`: the advanced
    /// method, or the direct method when `openpgpkey.DOMAIN` does not exist.
    pub async fn lookup(&self, address: &str) -> Result<Outcome, WkdError> {
        let address = split_address(address)?;
        let hash = wkd_hash(&address.local);
        let local = percent_encode(&address.local);

        let advanced_host = format!("openpgpkey.{}", address.domain);
        let (method, host, addresses, path) = match self.resolver.addresses(&advanced_host).await {
            Ok(addresses) => {
                let path = format!(
                    "/.well-known/openpgpkey/{}/hu/{hash}?l={local}",
                    address.domain
                );
                (Method::Advanced, advanced_host, addresses, path)
            }
            Err(DnsError::NotFound { .. }) => {
                let host = address.domain.clone();
                let addresses =
                    self.resolver
                        .addresses(&host)
                        .await
                        .map_err(|source| WkdError::Dns {
                            host: host.clone(),
                            source,
                        })?;
                let path = format!("/.well-known/openpgpkey/hu/{hash}?l={local}");
                (Method::Direct, host, addresses, path)
            }
            Err(source) => {
                return Err(WkdError::Dns {
                    host: advanced_host,
                    source,
                });
            }
        };
        tracing::debug!(domain = %address.domain, %method, "WKD lookup");

        let sockets: Vec<SocketAddr> = addresses
            .into_iter()
            .map(|ip| SocketAddr::new(ip, HTTPS_PORT))
            .collect();
        let fetched = tokio::time::timeout(self.timeout, self.fetch(&host, &sockets, &path))
            .await
            .map_err(|_| WkdError::TimedOut {
                host: host.clone(),
                seconds: self.timeout.as_secs(),
            })??;
        let Some(body) = fetched else {
            return Ok(Outcome::NotPublished {
                absence: Absence::NotFound,
                method,
                host,
            });
        };

        let expected = format!("{}@{}", address.local, address.domain);
        let filter_host = host.clone();
        let filtered = tokio::task::spawn_blocking(move || matching_certificates(&body, &expected))
            .await
            .map_err(|error| WkdError::Unreadable {
                host: filter_host,
                reason: error.to_string(),
            })?
            .map_err(|reason| WkdError::Unreadable {
                host: host.clone(),
                reason,
            })?;
        tracing::info!(
            domain = %address.domain,
            %method,
            matching = filtered.fingerprints.len(),
            dropped = filtered.dropped,
            "WKD lookup done"
        );
        if filtered.fingerprints.is_empty() {
            return Ok(Outcome::NotPublished {
                absence: Absence::NoMatchingUserId {
                    dropped: filtered.dropped,
                },
                method,
                host,
            });
        }
        Ok(Outcome::Found(Found {
            certificates: filtered.certificates,
            fingerprints: filtered.fingerprints,
            dropped: filtered.dropped,
            method,
            host,
        }))
    }

    /// Sends one GET over HTTPS. Returns the body for 200 and `None` for
    /// 404.
    async fn fetch(
        &self,
        host: &str,
        sockets: &[SocketAddr],
        path: &str,
    ) -> Result<Option<Vec<u8>>, WkdError> {
        let http_error = |error: hyper::Error| WkdError::Http {
            host: host.to_owned(),
            reason: error.to_string(),
        };
        let tcp = net::connect_addresses(host, HTTPS_PORT, sockets)
            .await
            .map_err(|source| WkdError::Connect {
                host: host.to_owned(),
                source,
            })?;
        let tls = self
            .tls
            .handshake(tcp, host, HTTPS_PORT)
            .await
            .map_err(|source| WkdError::Tls {
                host: host.to_owned(),
                source,
            })?;

        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(http_error)?;
        // hyper needs the connection future polled for the request to make
        // progress; it ends when the response has been read and the sender
        // dropped.
        let driver = tokio::spawn(connection);

        // NOTE: redirects are not followed, so a directory that redirects
        // gets an HTTP status error that names the host instead of a key.
        let request = Request::get(path)
            .header(header::HOST, host)
            .header(
                header::USER_AGENT,
                concat!("Wardmail/", env!("CARGO_PKG_VERSION")),
            )
            .header(header::ACCEPT, "application/octet-stream")
            .body(Empty::<Bytes>::new())
            .map_err(|error| WkdError::Http {
                host: host.to_owned(),
                reason: error.to_string(),
            })?;
        let response = sender.send_request(request).await.map_err(http_error)?;

        let result = match response.status() {
            StatusCode::OK => read_limited(host, response.into_body()).await.map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            status => Err(WkdError::Status {
                host: host.to_owned(),
                status: status.as_u16(),
            }),
        };
        drop(sender);
        driver.abort();
        result
    }
}

async fn read_limited(host: &str, body: hyper::body::Incoming) -> Result<Vec<u8>, WkdError> {
    match Limited::new(body, MAX_RESPONSE_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(error) if error.is::<LengthLimitError>() => Err(WkdError::TooLarge {
            host: host.to_owned(),
            limit: MAX_RESPONSE_BYTES,
        }),
        Err(error) => Err(WkdError::Http {
            host: host.to_owned(),
            reason: error.to_string(),
        }),
    }
}

/// Certificates that passed the User ID filter.
struct Filtered {
    certificates: Vec<u8>,
    fingerprints: Vec<String>,
    dropped: usize,
}

/// Keeps the certificates with a User ID whose address is `expected` (compared
/// without regard to case) and that is bound by a self-signature valid
/// under sequoia's standard policy now. Revoked or expired certificates are
/// kept: what to do with them is the caller's decision (section 3.1).
fn matching_certificates(bytes: &[u8], expected: &str) -> Result<Filtered, String> {
    let policy = StandardPolicy::new();
    let certs = CertParser::from_bytes(bytes)
        .map_err(|error| error.to_string())?
        .collect::<Result<Vec<Cert>, _>>()
        .map_err(|error| error.to_string())?;
    if certs.is_empty() {
        return Err("the response contains no certificate".to_owned());
    }

    let mut filtered = Filtered {
        certificates: Vec::new(),
        fingerprints: Vec::new(),
        dropped: 0,
    };
    for cert in certs {
        let matches = cert.with_policy(&policy, None).is_ok_and(|valid| {
            valid.userids().any(|user_id| {
                user_id
                    .userid()
                    .email()
                    .ok()
                    .flatten()
                    .is_some_and(|email| email.eq_ignore_ascii_case(expected))
            })
        });
        if !matches {
            filtered.dropped += 1;
            continue;
        }
        cert.serialize(&mut filtered.certificates)
            .map_err(|error| error.to_string())?;
        filtered.fingerprints.push(cert.fingerprint().to_hex());
    }
    Ok(filtered)
}

fn split_address(address: &str) -> Result<Address, WkdError> {
    let invalid = |reason| WkdError::InvalidAddress { reason };
    let (local, domain) = address
        .trim()
        .rsplit_once('@')
        .ok_or(invalid("it has no @"))?;
    if local.is_empty() {
        return Err(invalid("the part before @ is empty"));
    }
    if domain.is_empty() || domain.contains(['/', '\\', '?', '#', ' ', '@']) {
        return Err(invalid(
            "the domain after @ is empty or contains invalid characters",
        ));
    }
    // NOTE: internationalized domains would need IDNA (punycode) for DNS
    // and the URL path; until then they are rejected with this message.
    if !domain.is_ascii() {
        return Err(invalid(
            "internationalized domain names are not supported yet",
        ));
    }
    Ok(Address {
        local: local.to_owned(),
        domain: domain.trim_end_matches('.').to_ascii_lowercase(),
    })
}

/// Returns the WKD hash of a local part: z-base-32 of the SHA-1 of the
/// local part with ASCII letters lower-cased (non-ASCII stays as it is).
pub fn wkd_hash(local_part: &str) -> String {
    let digest = openssl::sha::sha1(local_part.to_ascii_lowercase().as_bytes());
    zbase32(&digest)
}

/// Encodes bytes as z-base-32 (the alphabet of the "human-oriented base-32
/// encoding" that WKD uses), five bits per character, most significant bit
/// first, without padding.
pub fn zbase32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
    let mut output = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            output.push(char::from(ALPHABET[((buffer >> bits) & 0x1f) as usize]));
        }
    }
    if bits > 0 {
        output.push(char::from(
            ALPHABET[((buffer << (5 - bits)) & 0x1f) as usize],
        ));
    }
    output
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for the
/// `l=` query parameter.
fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wkd_hash_draft_example() {
        // The example of section 3.1: Joe.Doe@Example.ORG.
        assert_eq!(wkd_hash("Joe.Doe"), "iy9q119eutrkn8s1mk4r39qejnbu3n5q");
    }

    #[test]
    fn zbase32_partial_group() {
        assert_eq!(zbase32(&[]), "");
        // 0xff is 11111 111(00): the last group is padded with zero bits.
        assert_eq!(zbase32(&[0xff]), "9h");
        assert_eq!(zbase32(&[0x00]), "yy");
    }

    #[test]
    fn percent_encode_keeps_unreserved() {
        assert_eq!(percent_encode("Joe.Doe"), "Joe.Doe");
        assert_eq!(percent_encode("a+b c"), "a%2Bb%20c");
        assert_eq!(percent_encode("ü"), "%C3%BC");
    }

    #[test]
    fn split_address_rejects_bad_input() {
        assert!(split_address("no-at-sign").is_err());
        assert!(split_address("@example.org").is_err());
        assert!(split_address("ann@").is_err());
        assert!(split_address("ann@exa/mple.org").is_err());
        let address = split_address("Ann@Example.ORG").unwrap();
        assert_eq!(address.local, "Ann");
        assert_eq!(address.domain, "example.org");
    }

    #[test]
    fn invalid_address_hides_local_part() {
        let Err(error) = split_address("secret-patient") else {
            panic!("an address without @ must be rejected");
        };
        let message = error.to_string();
        assert!(!message.contains("secret-patient"), "{message}");
    }
}
