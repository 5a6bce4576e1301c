//! DANE for SMTP (RFC 7672): TLSA records at `_25._tcp.MX` that a sending
//! server must match against the MX host's certificate.
//!
//! The records count only when DNSSEC validation succeeds for both the MX
//! answer and the TLSA answer (RFC 7672 section 2.2); records from an
//! unsigned zone are reported but never trusted. Usages DANE-EE (3) and
//! DANE-TA (2) apply to SMTP; PKIX-TA (0) and PKIX-EE (1) do not (section
//! 3.1.3). When a probe saw the certificate chain, it is compared with the
//! records.

use openssl::hash::{MessageDigest, hash};
use openssl::x509::X509;
use serde::Serialize;

use super::probe::ProbeFinding;
use crate::dns::{DnsError, Resolver, TlsaRecord, Validation};

/// The DANE result for one MX host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DaneResult {
    /// Signed TLSA records, and the probed certificate matches one.
    Valid,
    /// Signed TLSA records; no certificate was seen to compare.
    Published,
    /// Signed TLSA records, but the probed certificate matches none.
    Mismatch,
    /// TLSA records exist, but the MX or TLSA answer is not DNSSEC-signed,
    /// so they are not trusted.
    Unsigned,
    /// Signed TLSA records, but none with a usage that SMTP uses.
    Unusable,
    /// No TLSA records.
    None,
    /// The lookup failed, and the reason gives the error.
    Failed,
}

/// The DANE finding for one MX host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DaneFinding {
    /// The MX host.
    pub host: String,
    /// The result.
    pub result: DaneResult,
    /// How many TLSA records were found.
    pub records: usize,
    /// One sentence on what was found.
    pub reason: String,
}

/// Signed, usable TLSA records per host, kept only until the probes ran.
#[derive(Clone, Debug, Default)]
pub struct DaneLookups {
    /// The findings, in the order of the hosts.
    pub findings: Vec<DaneFinding>,
    records: Vec<Vec<TlsaRecord>>,
}

/// Looks up the TLSA records of every MX host. `mx_secure` is true when
/// the MX answer itself was DNSSEC-signed.
pub async fn lookup_all(resolver: &Resolver, hosts: &[String], mx_secure: bool) -> DaneLookups {
    let lookups = hosts.iter().map(|host| lookup(resolver, host, mx_secure));
    let results = futures::future::join_all(lookups).await;
    let (findings, records) = results.into_iter().unzip();
    DaneLookups { findings, records }
}

async fn lookup(
    resolver: &Resolver,
    host: &str,
    mx_secure: bool,
) -> (DaneFinding, Vec<TlsaRecord>) {
    let name = format!("_25._tcp.{host}");
    let finding = |result, records, reason| DaneFinding {
        host: host.to_owned(),
        result,
        records,
        reason,
    };
    let answer = match resolver.tlsa(&name).await {
        Ok(answer) => answer,
        Err(DnsError::NotFound { .. }) => {
            let reason = format!("no TLSA records at {name}");
            return (finding(DaneResult::None, 0, reason), Vec::new());
        }
        Err(error) => {
            return (
                finding(DaneResult::Failed, 0, error.to_string()),
                Vec::new(),
            );
        }
    };
    let count = answer.value.len();
    if answer.validation != Validation::Secure || !mx_secure {
        let unsigned = if mx_secure { "TLSA" } else { "MX" };
        let reason = format!(
            "{count} TLSA records at {name}, not trusted because the {unsigned} answer is not \
             DNSSEC-signed"
        );
        return (finding(DaneResult::Unsigned, count, reason), Vec::new());
    }
    let usable: Vec<TlsaRecord> = answer
        .value
        .into_iter()
        .filter(|record| matches!(record.usage, 2 | 3))
        .collect();
    if usable.is_empty() {
        let reason = format!("{count} signed TLSA records at {name}, none with usage 2 or 3");
        return (finding(DaneResult::Unusable, count, reason), Vec::new());
    }
    let reason = format!("{count} DNSSEC-signed TLSA records at {name}");
    (finding(DaneResult::Published, count, reason), usable)
}

/// Compares each host's signed records with the chain its probe saw, and
/// returns the findings.
pub fn check_against_probes(lookups: DaneLookups, probes: &[ProbeFinding]) -> Vec<DaneFinding> {
    let mut findings = lookups.findings;
    for (finding, records) in findings.iter_mut().zip(&lookups.records) {
        if finding.result != DaneResult::Published {
            continue;
        }
        let Some(chain) = probes
            .iter()
            .find(|probe| probe.host == finding.host && !probe.chain.is_empty())
            .map(|probe| &probe.chain)
        else {
            continue;
        };
        if records.iter().any(|record| chain_matches(record, chain)) {
            finding.result = DaneResult::Valid;
            finding.reason = format!("{}; the MX certificate matches", finding.reason);
        } else {
            finding.result = DaneResult::Mismatch;
            finding.reason = format!(
                "{}, but the certificate {} presents matches none of them",
                finding.reason, finding.host
            );
        }
    }
    findings
}

/// Returns whether `record` matches the presented chain: the end entity
/// for DANE-EE, any certificate of the chain for DANE-TA.
// NOTE: for DANE-TA this checks only that the chain contains the trust
// anchor, not that the end entity's signatures chain up to it; a server
// could present an unrelated anchor. A sending server verifies the chain.
pub fn chain_matches(record: &TlsaRecord, chain: &[Vec<u8>]) -> bool {
    let candidates: &[Vec<u8>] = match record.usage {
        3 => &chain[..chain.len().min(1)],
        2 => chain,
        _ => &[],
    };
    candidates.iter().any(|der| {
        association(record.selector, record.matching, der).as_deref() == Some(&record.data)
    })
}

/// Computes the certificate association data of a DER certificate.
fn association(selector: u8, matching: u8, der: &[u8]) -> Option<Vec<u8>> {
    let selected = match selector {
        0 => der.to_vec(),
        1 => X509::from_der(der)
            .ok()?
            .public_key()
            .ok()?
            .public_key_to_der()
            .ok()?,
        _ => return None,
    };
    match matching {
        0 => Some(selected),
        1 => hash(MessageDigest::sha256(), &selected)
            .ok()
            .map(|d| d.to_vec()),
        2 => hash(MessageDigest::sha512(), &selected)
            .ok()
            .map(|d| d.to_vec()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::X509Builder;

    fn certificate() -> (Vec<u8>, Vec<u8>) {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let mut builder = X509Builder::new().unwrap();
        builder.set_pubkey(&key).unwrap();
        builder
            .set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        builder
            .set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        builder.sign(&key, MessageDigest::sha256()).unwrap();
        let der = builder.build().to_der().unwrap();
        (der, key.public_key_to_der().unwrap())
    }

    #[test]
    fn dane_ee_spki_sha256_matches() {
        let (der, spki) = certificate();
        let record = TlsaRecord {
            usage: 3,
            selector: 1,
            matching: 1,
            data: hash(MessageDigest::sha256(), &spki).unwrap().to_vec(),
        };
        assert!(chain_matches(&record, std::slice::from_ref(&der)));
        let (other, _) = certificate();
        assert!(!chain_matches(&record, &[other]));
    }

    #[test]
    fn dane_ee_full_certificate_exact() {
        let (der, _) = certificate();
        let record = TlsaRecord {
            usage: 3,
            selector: 0,
            matching: 0,
            data: der.clone(),
        };
        assert!(chain_matches(&record, &[der]));
    }

    #[test]
    fn pkix_usage_never_matches() {
        let (der, spki) = certificate();
        let record = TlsaRecord {
            usage: 1,
            selector: 1,
            matching: 1,
            data: hash(MessageDigest::sha256(), &spki).unwrap().to_vec(),
        };
        assert!(!chain_matches(&record, &[der]));
    }
}
