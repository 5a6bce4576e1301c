//! DNS lookups through hickory-resolver, with DNSSEC validation (RFC 4033
//! to 4035) where a caller needs to know whether an answer is signed.
//!
//! The nameserver and the DNSSEC trust anchor come from the profile's
//! `[network]` settings ([`NetworkSettings`]), which environment variables
//! override. Without either, the system configuration applies
//! (`/etc/resolv.conf` on Unix, the registry on Windows) and validation
//! starts from the public root keys built into hickory-resolver 0.26.
//!
//! A [`Resolver`] contains two hickory resolvers over the same nameserver.
//! [`Resolver::addresses`] does not validate, because the connections it
//! serves are authenticated by TLS, and a local resolver that strips DNSSEC
//! records must not make HTTPS fail. [`Resolver::validated_addresses`]
//! validates and reports whether the answer was signed (RFC 4035 section
//! 4.3: secure or insecure); a bogus answer is an error.
//!
//! hickory-resolver 0.26 turns validation on with `ResolverOpts::trust_anchor`
//! but then silently uses the public root keys, so a private trust anchor
//! is passed to `ResolverBuilder::with_trust_anchor` instead.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError as HickoryNetError};
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::rr::{RData, RecordType};
use serde::{Deserialize, Serialize};

/// Environment variable that overrides the DNS nameserver ("IP" or
/// "IP:PORT").
pub const NAMESERVER_ENV: &str = "WARDMAIL_DNS_NAMESERVER";
/// Environment variable that overrides the DNSSEC trust anchor file.
pub const TRUST_ANCHOR_ENV: &str = "WARDMAIL_DNS_TRUST_ANCHOR";
/// Environment variable that adds a PEM file of CA certificates trusted for
/// HTTPS (WKD, MTA-STS) besides the system roots.
pub const HTTPS_CA_ENV: &str = "WARDMAIL_HTTPS_CA_FILE";

/// How long one DNS query may take before the nameserver counts as not
/// answering.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors from DNS lookups, in terms the user can act on.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The name does not exist, or has no address records.
    #[error("host {host} not found in DNS: check the spelling of the domain")]
    NotFound {
        /// The name that was looked up.
        host: String,
    },
    /// The nameserver did not answer in time.
    #[error(
        "no DNS answer for {host} from {nameserver} within {seconds} s: check the network \
         connection, or set a reachable nameserver ({NAMESERVER_ENV} or [network] dns_nameserver)"
    )]
    TimedOut {
        /// The name that was looked up.
        host: String,
        /// The nameserver in use, or "the system nameserver".
        nameserver: String,
        /// The timeout that expired.
        seconds: u64,
    },
    /// DNSSEC validation failed: the answer is forged, or the zone is broken.
    #[error(
        "DNSSEC validation failed for {host}: the answer may be forged or the domain's DNS is \
         misconfigured; ask the domain's administrator, or check the trust anchor in use"
    )]
    Bogus {
        /// The name that was looked up.
        host: String,
    },
    /// Any other resolver failure.
    #[error("cannot look up {host} through {nameserver}: {reason}")]
    Failed {
        /// The name that was looked up.
        host: String,
        /// The nameserver in use.
        nameserver: String,
        /// hickory-resolver's description.
        reason: String,
    },
    /// The configured nameserver is not an IP address with an optional port.
    #[error(
        "invalid DNS nameserver {value:?}: enter an IP address, optionally with a port, \
         such as 192.0.2.53 or 192.0.2.53:5353"
    )]
    InvalidNameserver {
        /// The rejected value.
        value: String,
    },
    /// The trust anchor file is missing or contains no root DNSKEY record.
    #[error(
        "cannot use DNSSEC trust anchor file {path}: {reason}; choose a file of root DNSKEY \
         records in zone-file format with TTL and class (\". 3600 IN DNSKEY 257 3 ...\")"
    )]
    TrustAnchor {
        /// The file.
        path: PathBuf,
        /// The problem.
        reason: String,
    },
    /// The system resolver configuration could not be read.
    #[error(
        "cannot read the system DNS configuration: {reason}; set a nameserver with \
         {NAMESERVER_ENV} or [network] dns_nameserver"
    )]
    SystemConfig {
        /// hickory-resolver's description.
        reason: String,
    },
}

/// Network settings of a profile, stored as `[network]` in `accounts.toml`.
/// Every field is optional; an empty table means the system configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSettings {
    /// DNS nameserver as "IP" or "IP:PORT" (port 53 when omitted), for
    /// clinics whose internal names only their own DNS server resolves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_nameserver: Option<String>,
    /// A file of DNSKEY records (zone-file format) that replaces the public
    /// root keys as the DNSSEC trust anchor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_trust_anchor: Option<PathBuf>,
    /// A PEM file of CA certificates trusted for HTTPS lookups (WKD,
    /// MTA-STS) besides the system roots and the account's CA file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_ca_file: Option<PathBuf>,
}

impl NetworkSettings {
    /// Returns whether nothing is set, so the table can be left out of the
    /// configuration file.
    pub fn is_empty(&self) -> bool {
        *self == NetworkSettings::default()
    }

    /// Returns these settings with each environment variable that is set
    /// ([`NAMESERVER_ENV`], [`TRUST_ANCHOR_ENV`], [`HTTPS_CA_ENV`]) in place
    /// of the stored value.
    pub fn with_env_overrides(mut self) -> NetworkSettings {
        if let Some(value) = std::env::var_os(NAMESERVER_ENV) {
            self.dns_nameserver = Some(value.to_string_lossy().into_owned());
        }
        if let Some(value) = std::env::var_os(TRUST_ANCHOR_ENV) {
            self.dns_trust_anchor = Some(PathBuf::from(value));
        }
        if let Some(value) = std::env::var_os(HTTPS_CA_ENV) {
            self.https_ca_file = Some(PathBuf::from(value));
        }
        self
    }

    /// Parses the nameserver setting, if any.
    pub fn nameserver(&self) -> Result<Option<SocketAddr>, DnsError> {
        self.dns_nameserver
            .as_deref()
            .map(parse_nameserver)
            .transpose()
    }
}

/// Parses "IP", "IP:PORT" or "[IPv6]:PORT".
fn parse_nameserver(value: &str) -> Result<SocketAddr, DnsError> {
    let trimmed = value.trim();
    if let Ok(address) = trimmed.parse::<SocketAddr>() {
        return Ok(address);
    }
    trimmed
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| DnsError::InvalidNameserver {
            value: value.to_owned(),
        })
}

/// Whether a validated answer was signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    /// A chain of signatures leads from the trust anchor to the answer.
    Secure,
    /// The answer comes from a zone that is provably unsigned.
    Insecure,
}

/// Addresses of a name together with their DNSSEC status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedAddresses {
    /// The IPv4 and IPv6 addresses.
    pub addresses: Vec<IpAddr>,
    /// Whether every address record was signed.
    pub validation: Validation,
}

/// An answer together with its DNSSEC status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validated<T> {
    /// The records.
    pub value: T,
    /// Whether every record was signed.
    pub validation: Validation,
}

/// One MX record (RFC 5321 section 5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MxRecord {
    /// Lower values are tried first.
    pub preference: u16,
    /// The mail server's host name, lower-case, without the final dot.
    pub exchange: String,
}

/// One TLSA record (RFC 6698 section 2.1), with its fields as numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsaRecord {
    /// Certificate usage: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
    pub usage: u8,
    /// Selector: 0 the whole certificate, 1 its SubjectPublicKeyInfo.
    pub selector: u8,
    /// Matching type: 0 exact, 1 SHA-256, 2 SHA-512.
    pub matching: u8,
    /// The certificate association data.
    pub data: Vec<u8>,
}

/// A DNS resolver with the profile's nameserver and trust anchor.
#[derive(Clone)]
pub struct Resolver {
    plain: TokioResolver,
    validating: TokioResolver,
    nameserver: String,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Resolver")
            .field("nameserver", &self.nameserver)
            .finish()
    }
}

impl Resolver {
    /// Builds the resolvers from `settings`. Reads the trust anchor file and
    /// the system configuration: call it off the UI thread.
    pub fn new(settings: &NetworkSettings) -> Result<Resolver, DnsError> {
        let nameserver = settings.nameserver()?;
        let trust_anchor = match &settings.dns_trust_anchor {
            Some(path) => Arc::new(load_trust_anchor(path)?),
            None => Arc::new(TrustAnchors::default()),
        };

        let plain = build(nameserver, None)?;
        let validating = build(nameserver, Some(trust_anchor))?;
        let nameserver = match nameserver {
            Some(address) => address.to_string(),
            None => "the system nameserver".to_owned(),
        };
        Ok(Resolver {
            plain,
            validating,
            nameserver,
        })
    }

    /// Returns the nameserver in use, for messages.
    pub fn nameserver(&self) -> &str {
        &self.nameserver
    }

    /// Looks up the IPv4 and IPv6 addresses of `host` without DNSSEC
    /// validation.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let lookup = self
            .plain
            .lookup_ip(absolute(host))
            .await
            .map_err(|error| self.classify(host, error))?;
        let addresses: Vec<IpAddr> = lookup.iter().collect();
        if addresses.is_empty() {
            return Err(DnsError::NotFound {
                host: host.to_owned(),
            });
        }
        Ok(addresses)
    }

    /// Looks up the addresses of `host` with DNSSEC validation. A bogus
    /// answer, or one whose status cannot be determined, is an error.
    pub async fn validated_addresses(&self, host: &str) -> Result<ValidatedAddresses, DnsError> {
        let lookup = self
            .validating
            .lookup_ip(absolute(host))
            .await
            .map_err(|error| self.classify(host, error))?;

        let mut validation = Validation::Secure;
        let mut addresses = Vec::new();
        for record in lookup.as_lookup().answers() {
            match record.proof {
                Proof::Secure => {}
                Proof::Insecure => validation = Validation::Insecure,
                Proof::Bogus | Proof::Indeterminate => {
                    return Err(DnsError::Bogus {
                        host: host.to_owned(),
                    });
                }
            }
            if let Some(ip) = record.data.ip_addr() {
                addresses.push(ip);
            }
        }
        if addresses.is_empty() {
            return Err(DnsError::NotFound {
                host: host.to_owned(),
            });
        }
        Ok(ValidatedAddresses {
            addresses,
            validation,
        })
    }

    /// Looks up the MX records of `domain` with DNSSEC validation, sorted by
    /// preference. A domain without MX records is [`DnsError::NotFound`].
    pub async fn mx(&self, domain: &str) -> Result<Validated<Vec<MxRecord>>, DnsError> {
        let (records, validation) = self.validated_records(domain, RecordType::MX).await?;
        let mut mx: Vec<MxRecord> = records
            .into_iter()
            .filter_map(|data| match data {
                RData::MX(record) => Some(MxRecord {
                    preference: record.preference,
                    exchange: relative(&record.exchange.to_ascii()),
                }),
                _ => None,
            })
            .collect();
        mx.sort_by_key(|record| record.preference);
        Ok(Validated {
            value: mx,
            validation,
        })
    }

    /// Looks up the TLSA records at `name` (such as `_25._tcp.mx.example.org`)
    /// with DNSSEC validation.
    pub async fn tlsa(&self, name: &str) -> Result<Validated<Vec<TlsaRecord>>, DnsError> {
        let (records, validation) = self.validated_records(name, RecordType::TLSA).await?;
        let tlsa = records
            .into_iter()
            .filter_map(|data| match data {
                RData::TLSA(record) => Some(TlsaRecord {
                    usage: record.cert_usage.into(),
                    selector: record.selector.into(),
                    matching: record.matching.into(),
                    data: record.cert_data,
                }),
                _ => None,
            })
            .collect();
        Ok(Validated {
            value: tlsa,
            validation,
        })
    }

    /// Looks up the TXT records at `name` without DNSSEC validation, each
    /// record's strings joined as RFC 7208 section 3.3 and RFC 8461 section
    /// 3.1 join them.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let lookup = self
            .plain
            .lookup(absolute(name), RecordType::TXT)
            .await
            .map_err(|error| self.classify(name, error))?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect())
    }

    /// Looks up records of one type with DNSSEC validation. A bogus answer,
    /// or one whose status cannot be determined, is an error.
    async fn validated_records(
        &self,
        name: &str,
        record_type: RecordType,
    ) -> Result<(Vec<RData>, Validation), DnsError> {
        let lookup = self
            .validating
            .lookup(absolute(name), record_type)
            .await
            .map_err(|error| self.classify(name, error))?;
        let mut validation = Validation::Secure;
        let mut records = Vec::new();
        for record in lookup.answers() {
            match record.proof {
                Proof::Secure => {}
                Proof::Insecure => validation = Validation::Insecure,
                Proof::Bogus | Proof::Indeterminate => {
                    return Err(DnsError::Bogus {
                        host: name.to_owned(),
                    });
                }
            }
            if record.data.record_type() == record_type {
                records.push(record.data.clone());
            }
        }
        if records.is_empty() {
            return Err(DnsError::NotFound {
                host: name.to_owned(),
            });
        }
        Ok((records, validation))
    }

    fn classify(&self, host: &str, error: HickoryNetError) -> DnsError {
        match &error {
            HickoryNetError::Dns(HickoryDnsError::NoRecordsFound(_)) => DnsError::NotFound {
                host: host.to_owned(),
            },
            HickoryNetError::Dns(HickoryDnsError::DnssecBogus) => DnsError::Bogus {
                host: host.to_owned(),
            },
            HickoryNetError::Timeout => DnsError::TimedOut {
                host: host.to_owned(),
                nameserver: self.nameserver.clone(),
                seconds: QUERY_TIMEOUT.as_secs(),
            },
            _ => DnsError::Failed {
                host: host.to_owned(),
                nameserver: self.nameserver.clone(),
                reason: error.to_string(),
            },
        }
    }
}

/// Removes the root label of a name as hickory prints it.
fn relative(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_lowercase()
}

/// Appends the root label, so that the system's search domains are never
/// tried: a mail domain is always fully qualified.
fn absolute(host: &str) -> String {
    if host.ends_with('.') {
        host.to_owned()
    } else {
        format!("{host}.")
    }
}

fn load_trust_anchor(path: &Path) -> Result<TrustAnchors, DnsError> {
    let anchors = TrustAnchors::from_file(path).map_err(|error| DnsError::TrustAnchor {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    // A file with keys only below the root is accepted by hickory, but then
    // nothing validates, which would look like an unsigned Internet.
    if anchors.is_empty() {
        return Err(DnsError::TrustAnchor {
            path: path.to_path_buf(),
            reason: "it contains no DNSKEY record for the root zone".to_owned(),
        });
    }
    Ok(anchors)
}

fn build(
    nameserver: Option<SocketAddr>,
    trust_anchor: Option<Arc<TrustAnchors>>,
) -> Result<TokioResolver, DnsError> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = match nameserver {
        Some(address) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = address.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = address.port();
            let server = NameServerConfig::new(address.ip(), true, vec![udp, tcp]);
            let config = ResolverConfig::from_name_servers(vec![server]);
            TokioResolver::builder_with_config(config, provider)
        }
        None => TokioResolver::builder(provider).map_err(|error| DnsError::SystemConfig {
            reason: error.to_string(),
        })?,
    };

    let options = builder.options_mut();
    options.timeout = QUERY_TIMEOUT;
    if let Some(anchor) = trust_anchor {
        options.validate = true;
        // DNSSEC records need more than the 512 bytes of plain DNS.
        options.edns0 = true;
        builder = builder.with_trust_anchor(anchor);
    }
    builder.build().map_err(|error| DnsError::SystemConfig {
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameserver_parses_ip_and_port() {
        let with_port = parse_nameserver("192.0.2.53:5353").unwrap();
        assert_eq!(with_port, "192.0.2.53:5353".parse().unwrap());
        let bare = parse_nameserver("192.0.2.53").unwrap();
        assert_eq!(bare.port(), 53);
        let v6 = parse_nameserver("[2001:db8::53]:10053").unwrap();
        assert_eq!(v6.port(), 10053);
    }

    #[test]
    fn nameserver_rejects_host_name() {
        let error = parse_nameserver("dns.clinic.example").unwrap_err();
        assert!(error.to_string().contains("dns.clinic.example"), "{error}");
    }

    #[test]
    fn trust_anchor_missing_file_names_path() {
        let settings = NetworkSettings {
            dns_trust_anchor: Some(PathBuf::from("/nonexistent/root.key")),
            dns_nameserver: Some("127.0.0.1".to_owned()),
            ..NetworkSettings::default()
        };
        let error = Resolver::new(&settings).unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/root.key"),
            "{error}"
        );
    }

    #[test]
    fn settings_empty_table_round_trip() {
        let settings: NetworkSettings = toml::from_str("").unwrap();
        assert!(settings.is_empty());
        let text = "dns_nameserver = \"192.0.2.53\"\n";
        let parsed: NetworkSettings = toml::from_str(text).unwrap();
        assert_eq!(parsed.dns_nameserver.as_deref(), Some("192.0.2.53"));
        assert!(toml::from_str::<NetworkSettings>("dns_server = \"x\"").is_err());
    }
}
