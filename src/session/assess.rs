//! Per-recipient assessments for the composer and `wardmail assess`: the
//! keys held for each recipient (OpenPGP, S/MIME, Autocrypt state), a WKD
//! lookup when no OpenPGP key is held, and the TLS findings of the
//! recipient's domain from [`crate::assess`].
//!
//! Results are cached in memory for the session ([`DOMAIN_TTL`],
//! [`KEY_TTL`]); MTA-STS policies are also stored in the profile's store so
//! their max_age survives a restart. [`Session::assess_cached`] returns
//! cached results at once and refreshes stale ones in the background.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::{Session, SessionError, unblock};
use crate::assess::probe::submission_requiretls;
use crate::assess::{AssessOptions, Assessor, DOMAIN_TTL, DomainTls, KEY_TTL, TlsLevel, unix_now};
use crate::dns::Resolver;
use crate::net::TlsContext;
use crate::smime::fingerprint as smime_fingerprint;
use crate::wkd;

/// The assessment of one recipient.
#[derive(Clone, Debug, Serialize)]
pub struct RecipientAssessment {
    /// The address, lower-case.
    pub address: String,
    /// OpenPGP keys and Autocrypt state.
    pub openpgp: OpenpgpFinding,
    /// S/MIME certificates.
    pub smime: SmimeFinding,
    /// The TLS findings for the recipient's domain.
    pub tls: DomainTls,
    /// The clinic's message portal.
    pub portal: PortalFinding,
    /// When the key findings were gathered, Unix seconds.
    pub seen_at: i64,
}

/// The result of a WKD lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum WkdFinding {
    /// No lookup: a key is held, or lookups were off.
    NotChecked,
    /// The directory publishes matching certificates (not imported).
    Found {
        /// Their fingerprints.
        fingerprints: Vec<String>,
        /// The host that served them.
        host: String,
    },
    /// The directory has no usable certificate for the address.
    NotPublished {
        /// The host that responded.
        host: String,
    },
    /// The lookup failed.
    Failed {
        /// Why, without the local part.
        reason: String,
    },
}

/// The recipient's Autocrypt state (Autocrypt Level 1 section 2.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AutocryptFinding {
    /// The fingerprint of the key from their last Autocrypt header.
    pub fingerprint: String,
    /// Whether they asked for encryption by default.
    pub prefer_encrypt: bool,
    /// The date of the newest message seen from them, Unix seconds.
    pub last_seen: i64,
}

/// OpenPGP findings for one recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpenpgpFinding {
    /// Whether a held certificate can encrypt to the recipient now.
    pub usable: bool,
    /// The certificate Wardmail would encrypt to.
    pub fingerprint: Option<String>,
    /// The origin of that certificate: "imported", "generated", "wkd" or
    /// "autocrypt".
    pub source: Option<String>,
    /// A newer key for the address that waits for the user's acceptance.
    pub held_back: Option<String>,
    /// The WKD lookup.
    pub wkd: WkdFinding,
    /// The Autocrypt state, if their mail carried the header.
    pub autocrypt: Option<AutocryptFinding>,
    /// One sentence on what was found.
    pub reason: String,
}

/// S/MIME findings for one recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SmimeFinding {
    /// Whether a held certificate is valid for encryption now
    /// (emailProtection, within its dates, a trusted chain).
    pub usable: bool,
    /// Its SHA-256 fingerprint.
    pub fingerprint: Option<String>,
    /// Its notAfter date as OpenSSL prints it.
    pub not_after: Option<String>,
    /// One sentence on what was found.
    pub reason: String,
}

/// Whether the clinic's message portal can deliver to the recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortalFinding {
    /// Whether a portal is available.
    pub available: bool,
    /// One sentence on what was found.
    pub reason: String,
}

/// The session's assessment cache.
#[derive(Default)]
pub(super) struct AssessCache {
    recipients: Mutex<HashMap<String, RecipientAssessment>>,
    domains: Mutex<HashMap<String, DomainTls>>,
    requiretls: Mutex<Option<(Option<bool>, i64)>>,
    wkd: Mutex<HashMap<String, (WkdFinding, i64)>>,
    refreshing: Mutex<HashSet<String>>,
}

fn is_fresh(seen_at: i64, ttl: std::time::Duration, now: i64) -> bool {
    now.saturating_sub(seen_at) < ttl.as_secs() as i64
}

/// Splits off the domain, lower-case; `None` unless the address is
/// `local@domain` with both parts non-empty.
fn domain_of(address: &str) -> Option<String> {
    let (local, domain) = address.trim().rsplit_once('@')?;
    let domain = domain.trim_end_matches('.');
    if local.is_empty() || domain.is_empty() || domain.contains(char::is_whitespace) {
        return None;
    }
    Some(domain.to_lowercase())
}

impl Session {
    /// Assesses each recipient with the default options: probes port 25
    /// and looks up WKD. See [`Session::assess_with`].
    pub async fn assess(
        &self,
        addresses: Vec<String>,
    ) -> Result<Vec<RecipientAssessment>, SessionError> {
        self.assess_with(addresses, AssessOptions::default()).await
    }

    /// Assesses each recipient: keys from the store, WKD when no OpenPGP
    /// key is held, and the TLS findings of its domain. Domains and
    /// recipients run in parallel; fresh cached results are reused. The
    /// results are in the order of `addresses`.
    pub async fn assess_with(
        &self,
        addresses: Vec<String>,
        options: AssessOptions,
    ) -> Result<Vec<RecipientAssessment>, SessionError> {
        let mut targets = Vec::new();
        for address in &addresses {
            let domain = domain_of(address).ok_or_else(|| {
                // The message names only the domain part, never a local part.
                let domain = address.rsplit_once('@').map(|(_, domain)| domain);
                SessionError::InvalidRecipient(domain.unwrap_or("").to_owned())
            })?;
            targets.push((address.trim().to_lowercase(), domain));
        }
        let (resolver, https) = self.network_context().await?;
        let assessor = Assessor::new(resolver.clone(), https.clone(), options.clone());

        let mut domains: Vec<String> = targets.iter().map(|(_, domain)| domain.clone()).collect();
        domains.sort();
        domains.dedup();
        let domain_checks = domains
            .iter()
            .map(|domain| self.domain_tls(&assessor, domain));
        let (requiretls, domain_results) =
            tokio::join!(self.requiretls(), futures::future::join_all(domain_checks));
        let mut by_domain = HashMap::new();
        for (domain, tls) in domains.into_iter().zip(domain_results) {
            by_domain.insert(domain, tls?.with_requiretls(requiretls));
        }

        let wkd_client = options
            .wkd
            .then(|| wkd::WkdClient::new(resolver.clone(), https.clone()));
        let key_checks = targets
            .iter()
            .map(|(address, _)| self.recipient_keys(address, wkd_client.as_ref()));
        let keys = futures::future::join_all(key_checks).await;

        let mut results = Vec::new();
        for ((address, domain), keys) in targets.into_iter().zip(keys) {
            let (openpgp, smime) = keys?;
            let Some(tls) = by_domain.get(&domain).cloned() else {
                continue;
            };
            results.push(RecipientAssessment {
                address,
                openpgp,
                smime,
                tls,
                portal: self.portal_finding(),
                seen_at: unix_now(),
            });
        }
        if let Ok(mut cache) = self.assess_cache.recipients.lock() {
            for result in &results {
                cache.insert(result.address.clone(), result.clone());
            }
        }
        Ok(results)
    }

    /// Returns whether the clinic's secure portal can carry a copy.
    fn portal_finding(&self) -> PortalFinding {
        match &self.config.portal.url {
            Some(url) if self.portal_enrolled() => PortalFinding {
                available: true,
                reason: format!("the clinic's secure portal at {url}"),
            },
            Some(_) => PortalFinding {
                available: false,
                reason: "this device is not enrolled with the portal".to_owned(),
            },
            None => PortalFinding {
                available: false,
                reason: "not configured".to_owned(),
            },
        }
    }

    /// Returns the cached assessments of `addresses` without touching the
    /// network, fresh or stale, skipping addresses never assessed. Stale
    /// ones are refreshed in the background with the default options; a
    /// later call returns the refreshed result.
    pub fn assess_cached(self: &Arc<Self>, addresses: &[String]) -> Vec<RecipientAssessment> {
        let now = unix_now();
        let mut found = Vec::new();
        let mut stale = Vec::new();
        if let Ok(cache) = self.assess_cache.recipients.lock() {
            for address in addresses {
                let key = address.trim().to_lowercase();
                if let Some(cached) = cache.get(&key) {
                    let fresh = is_fresh(cached.seen_at, KEY_TTL, now)
                        && is_fresh(cached.tls.seen_at, DOMAIN_TTL, now);
                    if !fresh {
                        stale.push(key);
                    }
                    found.push(cached.clone());
                }
            }
        }
        if let Ok(mut refreshing) = self.assess_cache.refreshing.lock() {
            stale.retain(|address| refreshing.insert(address.clone()));
        }
        if !stale.is_empty() && tokio::runtime::Handle::try_current().is_ok() {
            let session = self.clone();
            tokio::spawn(async move {
                if session.assess(stale.clone()).await.is_err() {
                    // The error text can name an address, so it is not logged.
                    tracing::warn!(account = %session.account.id, "background assessment failed");
                }
                if let Ok(mut refreshing) = session.assess_cache.refreshing.lock() {
                    for address in &stale {
                        refreshing.remove(address);
                    }
                }
            });
        }
        found
    }

    /// Drops every cached assessment held in memory, so the next
    /// assessment looks everything up again. Stored MTA-STS policies stay.
    pub fn forget_assessments(&self) {
        if let Ok(mut cache) = self.assess_cache.recipients.lock() {
            cache.clear();
        }
        if let Ok(mut cache) = self.assess_cache.domains.lock() {
            cache.clear();
        }
        if let Ok(mut cached) = self.assess_cache.requiretls.lock() {
            *cached = None;
        }
        if let Ok(mut cache) = self.assess_cache.wkd.lock() {
            cache.clear();
        }
    }

    /// Builds the resolver and the HTTPS trust anchors from the profile's
    /// `[network]` settings (with their environment overrides), the
    /// account's CA file and the profile's HTTPS CA file. Reads files, so
    /// it runs on the blocking pool.
    pub(super) async fn network_context(&self) -> Result<(Resolver, TlsContext), SessionError> {
        let settings = self.config.network.clone().with_env_overrides();
        let account_ca = self.account.ca_file.clone();
        unblock(move || {
            let resolver = Resolver::new(&settings)?;
            let ca_files = account_ca.iter().chain(settings.https_ca_file.iter());
            let tls = TlsContext::load_all(ca_files.map(PathBuf::as_path))?;
            Ok((resolver, tls))
        })
        .await
    }

    async fn domain_tls(
        &self,
        assessor: &Assessor,
        domain: &str,
    ) -> Result<DomainTls, SessionError> {
        let now = unix_now();
        if let Ok(cache) = self.assess_cache.domains.lock()
            && let Some(cached) = cache.get(domain)
            && is_fresh(cached.seen_at, DOMAIN_TTL, now)
        {
            return Ok(cached.clone());
        }

        let store = self.store.clone();
        let key = domain.to_owned();
        let stored = unblock(move || Ok(store.mta_sts_policy(&key)?)).await?;
        let (tls, new_policy) = assessor.domain(domain, stored).await;
        if let Some(policy) = new_policy {
            let store = self.store.clone();
            unblock(move || Ok(store.save_mta_sts_policy(&policy)?)).await?;
        }
        if let Ok(mut cache) = self.assess_cache.domains.lock() {
            cache.insert(domain.to_owned(), tls.clone());
        }
        Ok(tls)
    }

    /// Checks once per [`DOMAIN_TTL`] whether the submission server offers
    /// REQUIRETLS; `None` when it could not be reached.
    pub(super) async fn requiretls(&self) -> Option<bool> {
        let now = unix_now();
        if let Ok(cached) = self.assess_cache.requiretls.lock()
            && let Some((value, seen_at)) = *cached
            && is_fresh(seen_at, DOMAIN_TTL, now)
        {
            return value;
        }
        let timeout = crate::assess::PROBE_TIMEOUT * 2;
        let value = match submission_requiretls(&self.account.smtp, &self.tls, timeout).await {
            Ok(offered) => Some(offered),
            Err(problem) => {
                tracing::warn!(account = %self.account.id, %problem, "REQUIRETLS check failed");
                None
            }
        };
        if let Ok(mut cached) = self.assess_cache.requiretls.lock() {
            *cached = Some((value, now));
        }
        value
    }

    async fn recipient_keys(
        &self,
        address: &str,
        wkd_client: Option<&wkd::WkdClient>,
    ) -> Result<(OpenpgpFinding, SmimeFinding), SessionError> {
        let mut openpgp = self.openpgp_finding(address.to_owned()).await?;
        let smime = match self.smime_recipient_certificate(address).await {
            Ok(held) => SmimeFinding {
                usable: true,
                fingerprint: Some(smime_fingerprint(&held.certificate)),
                not_after: Some(held.certificate.not_after().to_string()),
                reason: "a valid S/MIME certificate is held".to_owned(),
            },
            Err(SessionError::Smime(error)) => SmimeFinding {
                usable: false,
                fingerprint: None,
                not_after: None,
                reason: error.to_string(),
            },
            Err(error) => return Err(error),
        };

        if let Some(client) = wkd_client.filter(|_| !openpgp.usable) {
            openpgp.wkd = self.wkd_finding(client, address).await;
            if let WkdFinding::Found { host, .. } = &openpgp.wkd {
                openpgp.reason = format!(
                    "no key held; {host} publishes one in its Web Key Directory: import it to \
                     encrypt"
                );
            }
        }
        Ok((openpgp, smime))
    }

    /// Looks up `address` in WKD, or returns the finding cached within
    /// [`KEY_TTL`].
    async fn wkd_finding(&self, client: &wkd::WkdClient, address: &str) -> WkdFinding {
        let now = unix_now();
        if let Ok(cache) = self.assess_cache.wkd.lock()
            && let Some((finding, seen_at)) = cache.get(address)
            && is_fresh(*seen_at, KEY_TTL, now)
        {
            return finding.clone();
        }
        let finding = match client.lookup(address).await {
            Ok(wkd::Outcome::Found(found)) => WkdFinding::Found {
                fingerprints: found.fingerprints,
                host: found.host,
            },
            Ok(wkd::Outcome::NotPublished { host, .. }) => WkdFinding::NotPublished { host },
            Err(error) => WkdFinding::Failed {
                reason: error.to_string(),
            },
        };
        if let Ok(mut cache) = self.assess_cache.wkd.lock() {
            cache.insert(address.to_owned(), (finding.clone(), now));
        }
        finding
    }

    /// Reads the held OpenPGP keys and the Autocrypt state. Blocking work
    /// runs on the blocking pool.
    async fn openpgp_finding(&self, address: String) -> Result<OpenpgpFinding, SessionError> {
        let store = self.store.clone();
        let account = self.account.id.clone();
        unblock(move || {
            let keyring = super::openpgp_keyring(&store, &account)?;
            let states = store.openpgp_states(&account)?;
            let state = |fingerprint: &str| states.iter().find(|s| s.fingerprint == fingerprint);
            let candidates = keyring.encryption_candidates(&address);
            let mut held_back = None;
            let mut chosen = None;
            for cert in candidates {
                let fingerprint = cert.fingerprint().to_hex();
                match state(&fingerprint) {
                    Some(s) if s.replaces.is_some() => {
                        held_back.get_or_insert(fingerprint);
                    }
                    _ => {
                        chosen.get_or_insert(fingerprint);
                    }
                }
            }
            let autocrypt =
                store
                    .autocrypt_peer(&account, &address)?
                    .map(|peer| AutocryptFinding {
                        fingerprint: peer.fingerprint,
                        prefer_encrypt: peer.prefer_encrypt,
                        last_seen: peer.last_seen,
                    });
            let source = chosen.as_deref().and_then(state).map(|s| s.source.clone());
            let reason = match (&chosen, &held_back) {
                (Some(_), None) => "a usable OpenPGP key is held".to_owned(),
                (Some(_), Some(_)) => "a usable OpenPGP key is held; a newer key waits for \
                                      acceptance on the Keys screen"
                    .to_owned(),
                (None, Some(_)) => "their key changed and the new one is not accepted yet: \
                                   compare its fingerprint with them and accept it"
                    .to_owned(),
                (None, None) => "no usable OpenPGP key is held".to_owned(),
            };
            Ok(OpenpgpFinding {
                usable: chosen.is_some(),
                fingerprint: chosen,
                source,
                held_back,
                wkd: WkdFinding::NotChecked,
                autocrypt,
                reason,
            })
        })
        .await
    }
}

impl DomainTls {
    /// Returns these findings with the submission server's REQUIRETLS
    /// finding, which decides whether the next hop is enforced.
    pub fn with_requiretls(mut self, requiretls: Option<bool>) -> DomainTls {
        self.requiretls_at_submission = requiretls;
        self.next_hop_enforced = self.level == TlsLevel::Enforced && requiretls == Some(true);
        self
    }
}

impl From<&RecipientAssessment> for crate::route::Capabilities {
    /// Reduces an assessment to what the route plan needs: which methods
    /// are usable, each with its evidence in one sentence.
    fn from(assessment: &RecipientAssessment) -> Self {
        let openpgp = &assessment.openpgp;
        let smime = &assessment.smime;
        let tls = match assessment.tls.level {
            TlsLevel::Enforced => crate::route::TlsClass::Enforced,
            TlsLevel::Offered => crate::route::TlsClass::Offered,
            TlsLevel::NotOffered => crate::route::TlsClass::NotOffered,
            TlsLevel::Unknown => crate::route::TlsClass::Unknown,
        };
        Self {
            address: assessment.address.clone(),
            openpgp: openpgp.usable.then(|| {
                format!(
                    "OpenPGP key {} ({})",
                    openpgp.fingerprint.as_deref().unwrap_or("unknown"),
                    openpgp.source.as_deref().unwrap_or("held")
                )
            }),
            smime: smime.usable.then(|| {
                format!(
                    "S/MIME certificate {}",
                    smime.fingerprint.as_deref().unwrap_or("unknown")
                )
            }),
            tls,
            tls_evidence: format!(
                "{}; {}",
                assessment.tls.reason,
                if assessment.tls.next_hop_enforced {
                    "the next hop is enforced with REQUIRETLS"
                } else {
                    "the next hop is predicted, not enforced"
                }
            ),
            portal: assessment.portal.available,
            details: evidence_lines(assessment),
            assessed: true,
        }
    }
}

/// Lists the evidence of an assessment line by line, as the composer's
/// details panel shows it.
fn evidence_lines(assessment: &RecipientAssessment) -> Vec<String> {
    let tls = &assessment.tls;
    let clock = |unix: i64| {
        let time = crate::calendar::civil(unix);
        format!("{:02}:{:02}:{:02} UTC", time.hour, time.minute, time.second)
    };
    let mut lines = vec![
        format!("OpenPGP: {}", assessment.openpgp.reason),
        format!("S/MIME: {}", assessment.smime.reason),
    ];
    let hosts: Vec<&str> = tls.mx.iter().map(|mx| mx.host.as_str()).collect();
    let signed = match tls.mx_dnssec {
        Some(true) => ", DNSSEC-signed",
        Some(false) => ", not DNSSEC-signed",
        None => "",
    };
    lines.push(match &tls.mx_error {
        Some(error) => format!("MX: unknown ({error})"),
        None => format!("MX: {}{signed}", hosts.join(", ")),
    });
    let sts = &tls.mta_sts;
    lines.push(match (&sts.mode, &sts.id) {
        (Some(mode), id) => format!(
            "MTA-STS: {} mode, policy id {}{}",
            serde_json::to_value(mode)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default(),
            id.as_deref().unwrap_or("unknown"),
            sts.fetched_at
                .map(|at| format!(", fetched {}", clock(at)))
                .unwrap_or_default()
        ),
        (None, _) => "MTA-STS: no policy".to_owned(),
    });
    for dane in &tls.dane {
        lines.push(format!("DANE {}: {}", dane.host, dane.reason));
    }
    for probe in &tls.probes {
        lines.push(format!(
            "STARTTLS probe of {} at {} ({} ms): {}",
            probe.host,
            clock(probe.seen_at),
            probe.elapsed_ms,
            probe.reason
        ));
    }
    lines.push(match tls.requiretls_at_submission {
        Some(true) => "REQUIRETLS: offered by the submission server".to_owned(),
        Some(false) => "REQUIRETLS: not offered by the submission server".to_owned(),
        None => "REQUIRETLS: not checked".to_owned(),
    });
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_of_splits_last_at() {
        assert_eq!(domain_of("A@Example.ORG").as_deref(), Some("example.org"));
        assert_eq!(
            domain_of("\"a@b\"@example.org").as_deref(),
            Some("example.org")
        );
        assert_eq!(domain_of("example.org"), None);
        assert_eq!(domain_of("@example.org"), None);
        assert_eq!(domain_of("a@"), None);
    }
}
