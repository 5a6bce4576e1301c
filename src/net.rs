//! TCP and TLS connections shared by IMAP and SMTP, and the plain-words
//! diagnosis of why one failed.
//!
//! TLS is rustls with the ring provider. Trust comes from the system roots
//! (rustls-native-certs) plus an optional clinic CA file. The certificate
//! verifier records the server's certificate so that an untrusted one can
//! be described to the user by subject and issuer. Before TLS is up, only
//! the commands that start it are sent: STARTTLS for IMAP, EHLO and
//! STARTTLS for SMTP; never a login.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::account::Security;

/// How long to wait for a TCP connection or a server greeting.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for a plain-text greeting before concluding that the
/// port expects implicit TLS (such a server waits silently for our
/// ClientHello).
pub const GREETING_TIMEOUT: Duration = Duration::from_secs(4);

/// Why a connection could not be made, in terms the user can act on.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// DNS has no address for the host.
    #[error("host {host:?} not found: check the spelling of the server name")]
    HostNotFound {
        /// The host that was looked up.
        host: String,
    },
    /// Nothing listens on the port.
    #[error(
        "connection to {host} port {port} refused: check the port number, or whether the server is running"
    )]
    Refused {
        /// Host.
        host: String,
        /// Port.
        port: u16,
    },
    /// No reply in time.
    #[error(
        "no answer from {host} port {port} within {seconds} s: check the host, the port and any firewall"
    )]
    TimedOut {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The timeout that expired.
        seconds: u64,
    },
    /// STARTTLS was chosen but the port speaks TLS from the first byte.
    #[error("port {port} expects implicit TLS, not STARTTLS: choose TLS for this server")]
    ExpectsImplicitTls {
        /// Port.
        port: u16,
    },
    /// Implicit TLS was chosen but the port greets in plain text.
    #[error("port {port} expects STARTTLS, not implicit TLS: choose STARTTLS for this server")]
    ExpectsStartTls {
        /// Port.
        port: u16,
    },
    /// The server does not offer STARTTLS, so it cannot be used at all.
    #[error(
        "{host} port {port} does not offer STARTTLS, and Wardmail never sends a password \
         in plain text: use the provider's TLS port (IMAP 993, SMTP 465) or ask them to enable STARTTLS"
    )]
    StartTlsMissing {
        /// Host.
        host: String,
        /// Port.
        port: u16,
    },
    /// The certificate does not chain to a trusted root or does not fit.
    #[error(
        "certificate of {host} not trusted ({reason}); subject: {subject}; issuer: {issuer}; \
         if your clinic runs its own CA, add its certificate (PEM file) in the account settings"
    )]
    Untrusted {
        /// Host.
        host: String,
        /// The verifier's reason.
        reason: String,
        /// The certificate's subject, or "unknown".
        subject: String,
        /// The certificate's issuer, or "unknown".
        issuer: String,
    },
    /// Some other TLS failure.
    #[error("TLS with {host} port {port} failed: {reason}")]
    Tls {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// rustls's description.
        reason: String,
    },
    /// The clinic CA file is unusable.
    #[error("cannot use CA file {path}: {reason}; choose a PEM file with one or more certificates")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Any other I/O failure.
    #[error("connection to {host} port {port} failed: {source}")]
    Io {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The error.
        source: std::io::Error,
    },
}

/// Trust anchors for one account: system roots plus the clinic CA.
#[derive(Clone, Debug)]
pub struct TlsContext {
    roots: Arc<RootCertStore>,
}

impl TlsContext {
    /// Loads the system roots and, when given, the clinic's CA file. This
    /// reads files: call it off the UI thread.
    pub fn load(ca_file: Option<&Path>) -> Result<TlsContext, NetError> {
        TlsContext::load_all(ca_file.into_iter())
    }

    /// Loads the system roots and every given CA file. This reads files:
    /// call it off the UI thread.
    pub fn load_all<'a>(ca_files: impl Iterator<Item = &'a Path>) -> Result<TlsContext, NetError> {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        for path in ca_files {
            add_ca_file(&mut roots, path)?;
        }
        Ok(TlsContext {
            roots: Arc::new(roots),
        })
    }

    /// Runs the TLS handshake over `tcp`, diagnosing failures.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        host: &str,
        port: u16,
    ) -> Result<TlsStream<TcpStream>, NetError> {
        self.handshake_inspect(tcp, host, port).await.result
    }

    /// Runs the TLS handshake over `tcp` like [`TlsContext::handshake`], and
    /// also returns the certificate chain the server presented, even when
    /// the chain was not trusted. DANE (RFC 6698) compares that chain with
    /// TLSA records, independently of the trust anchors.
    pub async fn handshake_inspect(
        &self,
        tcp: TcpStream,
        host: &str,
        port: u16,
    ) -> InspectedHandshake {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls_error = |reason: String| NetError::Tls {
            host: host.to_owned(),
            port,
            reason,
        };
        let failed = |error: NetError| InspectedHandshake {
            chain: Vec::new(),
            result: Err(error),
        };
        let inner =
            match WebPkiServerVerifier::builder_with_provider(self.roots.clone(), provider.clone())
                .build()
            {
                Ok(inner) => inner,
                Err(error) => return failed(tls_error(error.to_string())),
            };
        let verifier = Arc::new(RecordingVerifier {
            inner,
            seen: Mutex::new(None),
            chain: Mutex::new(Vec::new()),
        });
        let config = match rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
        {
            Ok(builder) => builder
                .dangerous()
                .with_custom_certificate_verifier(verifier.clone())
                .with_no_client_auth(),
            Err(error) => return failed(tls_error(error.to_string())),
        };
        let Ok(name) = ServerName::try_from(host.to_owned()) else {
            return failed(NetError::HostNotFound {
                host: host.to_owned(),
            });
        };
        let result = match TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
        {
            Ok(stream) => Ok(stream),
            Err(error) => Err(diagnose_handshake(error, host, port, &verifier)),
        };
        let chain = verifier
            .chain
            .lock()
            .map(|chain| chain.clone())
            .unwrap_or_default();
        InspectedHandshake { chain, result }
    }
}

/// A TLS handshake's result together with the certificates the server
/// presented.
#[derive(Debug)]
pub struct InspectedHandshake {
    /// The presented chain in DER, end entity first; empty when the server
    /// sent no certificate before the handshake failed.
    pub chain: Vec<Vec<u8>>,
    /// The stream, or why the handshake or the certificate check failed.
    pub result: Result<TlsStream<TcpStream>, NetError>,
}

fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), NetError> {
    let ca_error = |reason: String| NetError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| ca_error(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| ca_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(ca_error("it contains no certificate".to_owned()));
    }
    for cert in certs {
        roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
    }
    Ok(())
}

/// Opens a TCP connection with a timeout, classifying the failure.
pub async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, NetError> {
    let addresses: Vec<_> = match tokio::net::lookup_host((host, port)).await {
        Ok(found) => found.collect(),
        Err(_) => {
            return Err(NetError::HostNotFound {
                host: host.to_owned(),
            });
        }
    };
    connect_addresses(host, port, &addresses).await
}

/// Opens a TCP connection to the first of `addresses` that accepts one,
/// each with a timeout. `host` and `port` name the server in errors.
pub async fn connect_addresses(
    host: &str,
    port: u16,
    addresses: &[SocketAddr],
) -> Result<TcpStream, NetError> {
    if addresses.is_empty() {
        return Err(NetError::HostNotFound {
            host: host.to_owned(),
        });
    }
    let mut last = None;
    for &address in addresses {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                // Small protocol commands must not wait for Nagle's timer.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = Some(NetError::Refused {
                    host: host.to_owned(),
                    port,
                });
            }
            Ok(Err(source)) => {
                last = Some(NetError::Io {
                    host: host.to_owned(),
                    port,
                    source,
                })
            }
            Err(_) => {
                last = Some(NetError::TimedOut {
                    host: host.to_owned(),
                    port,
                    seconds: CONNECT_TIMEOUT.as_secs(),
                })
            }
        }
    }
    Err(last.unwrap_or(NetError::HostNotFound {
        host: host.to_owned(),
    }))
}

/// Returns the conventional port for a protocol and security mode.
pub fn default_port(imap: bool, security: Security) -> u16 {
    match (imap, security) {
        (true, Security::Tls) => 993,
        (true, Security::StartTls) => 143,
        (false, Security::Tls) => 465,
        (false, Security::StartTls) => 587,
    }
}

fn diagnose_handshake(
    error: std::io::Error,
    host: &str,
    port: u16,
    verifier: &RecordingVerifier,
) -> NetError {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(reason)) => {
            let seen = verifier
                .seen
                .lock()
                .map(|seen| seen.clone())
                .unwrap_or(None);
            let (subject, issuer) = seen
                .as_deref()
                .map(describe_certificate)
                .unwrap_or_else(|| ("unknown".to_owned(), "unknown".to_owned()));
            NetError::Untrusted {
                host: host.to_owned(),
                reason: describe_certificate_error(reason),
                subject,
                issuer,
            }
        }
        // A plain-text greeting ("* OK", "220 ...") parsed as a TLS record.
        Some(rustls::Error::InvalidMessage(_)) => NetError::ExpectsStartTls { port },
        Some(other) => NetError::Tls {
            host: host.to_owned(),
            port,
            reason: other.to_string(),
        },
        None if error.kind() == std::io::ErrorKind::UnexpectedEof => NetError::Tls {
            host: host.to_owned(),
            port,
            reason: "the server closed the connection during the handshake".to_owned(),
        },
        None => NetError::Io {
            host: host.to_owned(),
            port,
            source: error,
        },
    }
}

fn describe_certificate_error(error: &rustls::CertificateError) -> String {
    use rustls::CertificateError as E;
    match error {
        E::UnknownIssuer => "issued by a CA that is not trusted".to_owned(),
        E::Expired | E::ExpiredContext { .. } => "expired".to_owned(),
        E::NotValidYet | E::NotValidYetContext { .. } => "not valid yet".to_owned(),
        E::NotValidForName | E::NotValidForNameContext { .. } => {
            "issued for a different host name".to_owned()
        }
        E::Revoked => "revoked".to_owned(),
        other => format!("{other:?}"),
    }
}

/// Returns the subject and issuer of a DER certificate as
/// "CN=..., O=..." strings.
pub fn describe_certificate(der: &[u8]) -> (String, String) {
    let Ok(cert) = openssl::x509::X509::from_der(der) else {
        return ("unreadable".to_owned(), "unreadable".to_owned());
    };
    (
        describe_name(cert.subject_name()),
        describe_name(cert.issuer_name()),
    )
}

fn describe_name(name: &openssl::x509::X509NameRef) -> String {
    let parts: Vec<String> = name
        .entries()
        .map(|entry| {
            let key = entry.object().nid().short_name().unwrap_or("?");
            let value = entry.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect();
    if parts.is_empty() {
        "(empty)".to_owned()
    } else {
        parts.join(", ")
    }
}

/// Delegates to webpki and keeps the presented certificate for diagnosis.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Option<Vec<u8>>>,
    /// The end entity and the intermediates, for DANE.
    chain: Mutex<Vec<Vec<u8>>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.to_vec());
        }
        if let Ok(mut chain) = self.chain.lock() {
            *chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|certificate| certificate.to_vec())
                .collect();
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
