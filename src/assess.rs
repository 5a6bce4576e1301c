//! The per-recipient security assessment: how a copy to each recipient
//! would travel, with the evidence for each finding.
//!
//! For the recipient's domain, [`Assessor::domain`] gathers the MX hosts
//! (RFC 5321 section 5.1), the MTA-STS policy (RFC 8461, [`mta_sts`]),
//! DANE TLSA records per MX (RFC 7672, [`dane`]) and an optional STARTTLS
//! probe of each MX on port 25 ([`probe`]). The session adds whether the
//! submission server offers REQUIRETLS (RFC 8689). [`tls_level`] turns these into the
//! [`TlsLevel`] shown to the user. Keys (OpenPGP, S/MIME, Autocrypt) are
//! assessed by `Session::assess`, which owns the key store.
//!
//! Every finding is plain data with a short reason sentence and the time
//! it was seen, so the window, the command line and the audit log render
//! the same facts. Nothing here logs a local part of an address.

pub mod dane;
pub mod mta_sts;
pub mod probe;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::dns::{DnsError, Resolver, Validation};
use crate::net::TlsContext;

pub use dane::{DaneFinding, DaneResult};
pub use mta_sts::{MtaStsFinding, MtaStsMode, PolicySource, StoredPolicy};
pub use probe::{ProbeFinding, ProbeResult};

/// How long a domain's TLS findings stay fresh before a new assessment
/// looks them up again. DNS TTLs of MX and TLSA records are commonly one
/// hour; MTA-STS policies have their own max_age and are cached apart.
pub const DOMAIN_TTL: Duration = Duration::from_secs(3600);

/// How long a key finding that needed the network (a WKD lookup) stays
/// fresh.
pub const KEY_TTL: Duration = Duration::from_secs(3600);

/// How long a STARTTLS probe of one MX may take: port 25 is often blocked
/// from desktop networks, so a silent port must not hold up the composer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The TLS level of the hop from the provider to the recipient's domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsLevel {
    /// The domain publishes MTA-STS in enforce mode that lists its MX hosts,
    /// or valid DANE records for every MX: a sending server that honours
    /// them does not deliver without authenticated TLS.
    Enforced,
    /// Every MX offers STARTTLS, but nothing requires a sender to use it.
    Offered,
    /// At least one MX does not offer STARTTLS.
    NotOffered,
    /// Not enough evidence, for example because port 25 could not be probed.
    Unknown,
}

impl TlsLevel {
    /// Returns the words shown to the user.
    pub fn label(self) -> &'static str {
        match self {
            TlsLevel::Enforced => "TLS enforced",
            TlsLevel::Offered => "TLS offered",
            TlsLevel::NotOffered => "TLS not offered",
            TlsLevel::Unknown => "unknown",
        }
    }
}

/// One MX host of a domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MxHost {
    /// The host name, lower-case, without the final dot.
    pub host: String,
    /// The MX preference; `None` for the implicit MX of a domain without MX
    /// records (RFC 5321 section 5.1).
    pub preference: Option<u16>,
}

/// The TLS findings for one recipient domain.
#[derive(Clone, Debug, Serialize)]
pub struct DomainTls {
    /// The domain, lower-case.
    pub domain: String,
    /// The MX hosts, most preferred first.
    pub mx: Vec<MxHost>,
    /// Whether the MX answer was DNSSEC-signed; `None` when it failed.
    pub mx_dnssec: Option<bool>,
    /// The reason the MX hosts are unknown, when they are.
    pub mx_error: Option<String>,
    /// The MTA-STS policy.
    pub mta_sts: MtaStsFinding,
    /// DANE per MX host.
    pub dane: Vec<DaneFinding>,
    /// The STARTTLS probe per MX host; empty when probing was off.
    pub probes: Vec<ProbeFinding>,
    /// Whether the submission server offers REQUIRETLS after STARTTLS;
    /// `None` when it was not checked or could not be reached.
    pub requiretls_at_submission: Option<bool>,
    /// The level shown to the user.
    pub level: TlsLevel,
    /// True when Wardmail can require TLS for the next hop, because the
    /// submission server offers REQUIRETLS and the level is enforced. False
    /// means the level only predicts what the provider's server will do.
    pub next_hop_enforced: bool,
    /// One sentence that explains the level.
    pub reason: String,
    /// When these findings were gathered, Unix seconds.
    pub seen_at: i64,
}

/// Returns the current time in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// Decides the level and explains it. Enforcement comes first: a domain
/// with MTA-STS enforce or valid DANE is protected from downgrade even if
/// a probe from this network failed.
pub fn tls_level(
    mta_sts: &MtaStsFinding,
    dane: &[DaneFinding],
    probes: &[ProbeFinding],
    mx_count: usize,
) -> (TlsLevel, String) {
    if mta_sts.enforces() {
        return (
            TlsLevel::Enforced,
            format!(
                "MTA-STS policy {} in enforce mode lists the MX hosts",
                mta_sts.id.as_deref().unwrap_or("?")
            ),
        );
    }
    if mx_count > 0
        && dane.len() == mx_count
        && dane
            .iter()
            .all(|finding| matches!(finding.result, DaneResult::Valid | DaneResult::Published))
    {
        return (
            TlsLevel::Enforced,
            "every MX host has DNSSEC-signed DANE records".to_owned(),
        );
    }

    let lacking: Vec<&str> = probes
        .iter()
        .filter(|probe| probe.result == ProbeResult::NotOffered)
        .map(|probe| probe.host.as_str())
        .collect();
    if !lacking.is_empty() {
        return (
            TlsLevel::NotOffered,
            format!("{} does not offer STARTTLS", lacking.join(", ")),
        );
    }
    if mx_count > 0
        && probes.len() == mx_count
        && probes
            .iter()
            .all(|probe| matches!(probe.result, ProbeResult::Offered { .. }))
    {
        return (
            TlsLevel::Offered,
            "every MX host offers STARTTLS, but no MTA-STS enforce policy or DANE record \
             requires it"
                .to_owned(),
        );
    }
    let reason = if mx_count == 0 {
        "the domain's mail servers are unknown".to_owned()
    } else if probes.is_empty() {
        "no MTA-STS enforce policy or DANE record, and the MX hosts were not probed".to_owned()
    } else {
        "no MTA-STS enforce policy or DANE record, and some MX hosts could not be probed \
         (port 25 may be blocked on this network)"
            .to_owned()
    };
    (TlsLevel::Unknown, reason)
}

/// Network checks of an assessment besides DNS.
#[derive(Clone, Debug)]
pub struct AssessOptions {
    /// Whether to probe each MX for STARTTLS on port 25.
    pub probe: bool,
    /// The time limit of each probe.
    pub probe_timeout: Duration,
    /// The port of the probes; 25 except in tests.
    pub probe_port: u16,
    /// Whether to look up OpenPGP keys in the Web Key Directory.
    pub wkd: bool,
}

impl Default for AssessOptions {
    fn default() -> AssessOptions {
        AssessOptions {
            probe: true,
            probe_timeout: PROBE_TIMEOUT,
            probe_port: 25,
            wkd: true,
        }
    }
}

/// Gathers the TLS findings of domains.
#[derive(Clone, Debug)]
pub struct Assessor {
    resolver: Resolver,
    https: TlsContext,
    options: AssessOptions,
}

impl Assessor {
    /// Creates an assessor that resolves with `resolver` and fetches
    /// MTA-STS policies trusting `https`.
    pub fn new(resolver: Resolver, https: TlsContext, options: AssessOptions) -> Assessor {
        Assessor {
            resolver,
            https,
            options,
        }
    }

    /// Assesses `domain`. `cached` is the stored MTA-STS policy, if any;
    /// the returned policy, when one was fetched, is the one to store. The
    /// submission server's REQUIRETLS finding is the caller's to add with
    /// [`DomainTls::with_requiretls`]; until then it is `None`.
    pub async fn domain(
        &self,
        domain: &str,
        cached: Option<StoredPolicy>,
    ) -> (DomainTls, Option<StoredPolicy>) {
        let domain = domain.trim_end_matches('.').to_lowercase();
        let (mx, mx_dnssec, mx_error) = self.mx_hosts(&domain).await;
        let hosts: Vec<String> = mx.iter().map(|record| record.host.clone()).collect();

        let policy_lookup = mta_sts::assess(&self.resolver, &self.https, &domain, cached, &hosts);
        let dane_lookup = dane::lookup_all(&self.resolver, &hosts, mx_dnssec == Some(true));
        let probe_lookup = async {
            if self.options.probe {
                probe::probe_all(
                    &self.resolver,
                    &self.https,
                    &hosts,
                    self.options.probe_port,
                    self.options.probe_timeout,
                )
                .await
            } else {
                Vec::new()
            }
        };
        let ((mta_sts, new_policy), dane_lookups, probes) =
            tokio::join!(policy_lookup, dane_lookup, probe_lookup);
        let dane = dane::check_against_probes(dane_lookups, &probes);

        let (level, reason) = tls_level(&mta_sts, &dane, &probes, hosts.len());
        tracing::debug!(%domain, level = level.label(), mx = hosts.len(), "domain assessed");
        let tls = DomainTls {
            domain,
            mx,
            mx_dnssec,
            mx_error,
            mta_sts,
            dane,
            probes,
            requiretls_at_submission: None,
            level,
            next_hop_enforced: false,
            reason,
            seen_at: unix_now(),
        };
        (tls, new_policy)
    }

    /// Looks up the MX hosts; a domain without MX records but with an
    /// address is its own implicit MX (RFC 5321 section 5.1). A null MX
    /// (RFC 7505) yields no hosts.
    async fn mx_hosts(&self, domain: &str) -> (Vec<MxHost>, Option<bool>, Option<String>) {
        match self.resolver.mx(domain).await {
            Ok(answer) => {
                let secure = answer.validation == Validation::Secure;
                let hosts: Vec<MxHost> = answer
                    .value
                    .into_iter()
                    .filter(|record| !record.exchange.is_empty())
                    .map(|record| MxHost {
                        host: record.exchange,
                        preference: Some(record.preference),
                    })
                    .collect();
                let error = hosts
                    .is_empty()
                    .then(|| format!("{domain} publishes a null MX: it accepts no mail"));
                (hosts, Some(secure), error)
            }
            // NOTE: the implicit MX gets no DNSSEC status, so its DANE records
            // are reported as unsigned even in a signed zone. Validating its
            // address records would let RFC 7672 section 2.2.2 apply.
            Err(DnsError::NotFound { .. }) => match self.resolver.addresses(domain).await {
                Ok(_) => {
                    let implicit = MxHost {
                        host: domain.to_owned(),
                        preference: None,
                    };
                    (vec![implicit], None, None)
                }
                Err(error) => (Vec::new(), None, Some(error.to_string())),
            },
            Err(error) => (Vec::new(), None, Some(error.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(host: &str, result: ProbeResult) -> ProbeFinding {
        ProbeFinding {
            host: host.to_owned(),
            result,
            reason: String::new(),
            seen_at: 0,
            elapsed_ms: 0,
            chain: Vec::new(),
        }
    }

    fn offered() -> ProbeResult {
        ProbeResult::Offered {
            certificate_trusted: true,
            tls_version: Some("TLSv1.3".to_owned()),
        }
    }

    #[test]
    fn level_enforced_by_mta_sts() {
        let mut policy = MtaStsFinding::absent("none published".to_owned());
        policy.mode = Some(MtaStsMode::Enforce);
        policy.id = Some("1".to_owned());
        policy.mx_matched = vec!["mx.example.org".to_owned()];
        let probes = [probe("mx.example.org", ProbeResult::NotOffered)];
        let (level, _) = tls_level(&policy, &[], &probes, 1);
        assert_eq!(level, TlsLevel::Enforced);
    }

    #[test]
    fn level_enforce_without_matching_mx() {
        let mut policy = MtaStsFinding::absent("none published".to_owned());
        policy.mode = Some(MtaStsMode::Enforce);
        policy.mx_unmatched = vec!["mx.example.org".to_owned()];
        let probes = [probe("mx.example.org", offered())];
        let (level, _) = tls_level(&policy, &[], &probes, 1);
        assert_eq!(level, TlsLevel::Offered);
    }

    #[test]
    fn level_one_mx_without_starttls() {
        let policy = MtaStsFinding::absent("none published".to_owned());
        let probes = [
            probe("a.example.org", offered()),
            probe("b.example.org", ProbeResult::NotOffered),
        ];
        let (level, reason) = tls_level(&policy, &[], &probes, 2);
        assert_eq!(level, TlsLevel::NotOffered);
        assert!(reason.contains("b.example.org"), "{reason}");
    }

    #[test]
    fn level_blocked_probe_unknown() {
        let policy = MtaStsFinding::absent("none published".to_owned());
        let blocked = ProbeResult::CouldNotProbe;
        let probes = [
            probe("a.example.org", offered()),
            probe("b.example.org", blocked),
        ];
        let (level, reason) = tls_level(&policy, &[], &probes, 2);
        assert_eq!(level, TlsLevel::Unknown);
        assert!(reason.contains("could not be probed"), "{reason}");
    }

    #[test]
    fn level_dane_needs_every_mx() {
        let policy = MtaStsFinding::absent("none published".to_owned());
        let valid = DaneFinding {
            host: "a.example.org".to_owned(),
            result: DaneResult::Valid,
            records: 1,
            reason: String::new(),
        };
        let unsigned = DaneFinding {
            host: "b.example.org".to_owned(),
            result: DaneResult::Unsigned,
            records: 1,
            reason: String::new(),
        };
        let (level, _) = tls_level(&policy, std::slice::from_ref(&valid), &[], 1);
        assert_eq!(level, TlsLevel::Enforced);
        let (level, _) = tls_level(&policy, &[valid, unsigned], &[], 2);
        assert_eq!(level, TlsLevel::Unknown);
    }
}
