//! SMTP MTA Strict Transport Security (RFC 8461): the `_mta-sts` TXT
//! record (section 3.1), the policy file over HTTPS (sections 3.2 and
//! 3.3), caching by policy id and max_age (section 5.1), and MX host
//! pattern matching (section 4.1).
//!
//! The policy is fetched from `https://mta-sts.DOMAIN/.well-known/mta-sts.txt`
//! with the trust anchors of a [`TlsContext`], without following
//! redirects (section 3.3 forbids them). A policy whose id matches the TXT
//! record and whose max_age has not run out is taken from the cache
//! without a fetch. When the TXT record is missing or the fetch fails, an
//! unexpired cached policy still applies, as section 5.1 requires, so an
//! attacker who blocks DNS or HTTPS cannot remove a known policy.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::Serialize;

use super::unix_now;
use crate::dns::{DnsError, Resolver};
use crate::net::{self, TlsContext};

/// The largest policy file accepted (section 3.2 suggests 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// The largest max_age a policy may set, in seconds (section 3.2: one
/// year).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

/// How long the policy fetch (TCP, TLS, request and response) may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(15);

/// A policy mode (section 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MtaStsMode {
    /// Senders must not deliver to an MX that fails the policy.
    Enforce,
    /// Senders deliver anyway and report failures.
    Testing,
    /// The domain withdrew its policy.
    None,
}

impl MtaStsMode {
    /// Returns the mode as the policy file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            MtaStsMode::Enforce => "enforce",
            MtaStsMode::Testing => "testing",
            MtaStsMode::None => "none",
        }
    }

    fn parse(value: &str) -> Option<MtaStsMode> {
        match value {
            "enforce" => Some(MtaStsMode::Enforce),
            "testing" => Some(MtaStsMode::Testing),
            "none" => Some(MtaStsMode::None),
            _ => None,
        }
    }
}

/// The origin of the policy in a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicySource {
    /// Fetched over HTTPS during this assessment.
    Fetched,
    /// The cache, because its id matches the TXT record or because the TXT
    /// record or the fetch failed while the cached policy was unexpired.
    Cache,
}

/// A policy as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPolicy {
    /// The policy domain, lower-case.
    pub domain: String,
    /// The id from the TXT record that announced this policy.
    pub id: String,
    /// The mode.
    pub mode: MtaStsMode,
    /// The `mx` patterns.
    pub mx: Vec<String>,
    /// How long the policy may be cached, in seconds.
    pub max_age: u64,
    /// When it was fetched, Unix seconds.
    pub fetched_at: i64,
}

impl StoredPolicy {
    /// Returns whether max_age has not run out at `now`.
    pub fn is_fresh(&self, now: i64) -> bool {
        now < self.fetched_at.saturating_add(self.max_age as i64)
    }
}

/// The MTA-STS finding for a domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MtaStsFinding {
    /// The id in the `_mta-sts` TXT record, if one valid record exists.
    pub txt_id: Option<String>,
    /// The id of the policy in use.
    pub id: Option<String>,
    /// The policy's mode; `None` when no policy applies.
    pub mode: Option<MtaStsMode>,
    /// The policy's `mx` patterns.
    pub mx_patterns: Vec<String>,
    /// The policy's max_age in seconds.
    pub max_age: Option<u64>,
    /// The origin of the policy.
    pub source: Option<PolicySource>,
    /// When the policy in use was fetched, Unix seconds.
    pub fetched_at: Option<i64>,
    /// MX hosts that match a pattern.
    pub mx_matched: Vec<String>,
    /// MX hosts that match no pattern: an enforcing sender skips them.
    pub mx_unmatched: Vec<String>,
    /// One sentence on what was found.
    pub reason: String,
}

impl MtaStsFinding {
    /// Returns a finding without a policy.
    pub fn absent(reason: String) -> MtaStsFinding {
        MtaStsFinding {
            txt_id: None,
            id: None,
            mode: None,
            mx_patterns: Vec::new(),
            max_age: None,
            source: None,
            fetched_at: None,
            mx_matched: Vec::new(),
            mx_unmatched: Vec::new(),
            reason,
        }
    }

    /// Returns whether the policy is in enforce mode and at least one MX
    /// host matches it, so an enforcing sender has a host to deliver to
    /// over authenticated TLS.
    pub fn enforces(&self) -> bool {
        self.mode == Some(MtaStsMode::Enforce) && !self.mx_matched.is_empty()
    }
}

/// Finds the policy for `domain` and matches `hosts` against it. Returns
/// the finding and, when a policy was fetched, the policy to store.
pub async fn assess(
    resolver: &Resolver,
    https: &TlsContext,
    domain: &str,
    cached: Option<StoredPolicy>,
    hosts: &[String],
) -> (MtaStsFinding, Option<StoredPolicy>) {
    let now = unix_now();
    let cached = cached.filter(|policy| policy.is_fresh(now));
    let txt_name = format!("_mta-sts.{domain}");

    let txt_id = match resolver.txt(&txt_name).await {
        Ok(records) => match policy_id(&records) {
            Ok(id) => id,
            Err(problem) => {
                return fallback(cached, None, hosts, format!("{txt_name} {problem}"));
            }
        },
        Err(DnsError::NotFound { .. }) => {
            return fallback(cached, None, hosts, "no MTA-STS TXT record".to_owned());
        }
        Err(error) => return fallback(cached, None, hosts, error.to_string()),
    };

    if let Some(policy) = cached.as_ref().filter(|policy| policy.id == txt_id) {
        let mut finding = finding_from(policy, PolicySource::Cache, hosts);
        finding.txt_id = Some(txt_id);
        return (finding, None);
    }

    match fetch(resolver, https, domain).await {
        Ok(text) => match parse_policy(&text) {
            Ok(parsed) => {
                let policy = StoredPolicy {
                    domain: domain.to_owned(),
                    id: txt_id.clone(),
                    mode: parsed.mode,
                    mx: parsed.mx,
                    max_age: parsed.max_age,
                    fetched_at: now,
                };
                tracing::info!(%domain, mode = policy.mode.as_str(), "MTA-STS policy fetched");
                let mut finding = finding_from(&policy, PolicySource::Fetched, hosts);
                finding.txt_id = Some(txt_id);
                (finding, Some(policy))
            }
            Err(problem) => {
                let reason = format!("the MTA-STS policy of {domain} is invalid: {problem}");
                fallback(cached, Some(txt_id), hosts, reason)
            }
        },
        Err(problem) => {
            tracing::warn!(%domain, "MTA-STS policy fetch failed");
            fallback(cached, Some(txt_id), hosts, problem)
        }
    }
}

/// Uses the unexpired cached policy when the TXT record or the fetch
/// failed (section 5.1), or reports that no policy applies.
fn fallback(
    cached: Option<StoredPolicy>,
    txt_id: Option<String>,
    hosts: &[String],
    problem: String,
) -> (MtaStsFinding, Option<StoredPolicy>) {
    let mut finding = match cached {
        Some(policy) => {
            let mut finding = finding_from(&policy, PolicySource::Cache, hosts);
            finding.reason = format!("{problem}; the cached policy still applies");
            finding
        }
        None => MtaStsFinding::absent(problem),
    };
    finding.txt_id = txt_id;
    (finding, None)
}

fn finding_from(policy: &StoredPolicy, source: PolicySource, hosts: &[String]) -> MtaStsFinding {
    let (matched, unmatched): (Vec<String>, Vec<String>) = hosts
        .iter()
        .cloned()
        .partition(|host| policy.mx.iter().any(|pattern| mx_matches(pattern, host)));
    let mode = policy.mode.as_str();
    let reason = match (policy.mode, matched.is_empty(), unmatched.is_empty()) {
        (MtaStsMode::Enforce, false, true) => {
            format!("policy {} in enforce mode lists every MX host", policy.id)
        }
        (MtaStsMode::Enforce, false, false) => format!(
            "policy {} in enforce mode; {} not listed, so enforcing senders skip it",
            policy.id,
            unmatched.join(", ")
        ),
        (MtaStsMode::None, _, _) => format!("policy {} in mode none: no policy", policy.id),
        (_, true, _) if !hosts.is_empty() => format!(
            "policy {} in {mode} mode lists none of the MX hosts ({})",
            policy.id,
            unmatched.join(", ")
        ),
        _ => format!(
            "policy {} in {mode} mode: senders only report failures",
            policy.id
        ),
    };
    MtaStsFinding {
        txt_id: None,
        id: Some(policy.id.clone()),
        mode: Some(policy.mode),
        mx_patterns: policy.mx.clone(),
        max_age: Some(policy.max_age),
        source: Some(source),
        fetched_at: Some(policy.fetched_at),
        mx_matched: matched,
        mx_unmatched: unmatched,
        reason,
    }
}

/// Reads the policy id from the TXT records at `_mta-sts.DOMAIN` (section
/// 3.1). Records that do not start with `v=STSv1` are ignored; more than
/// one that does means no policy.
pub fn policy_id(records: &[String]) -> Result<String, &'static str> {
    let candidates: Vec<&String> = records
        .iter()
        .filter(|record| record.starts_with("v=STSv1"))
        .collect();
    let record = match candidates.as_slice() {
        [] => return Err("has no v=STSv1 record"),
        [record] => record,
        _ => return Err("has more than one v=STSv1 record, which means no policy"),
    };
    let mut fields = record.split(';').map(str::trim).filter(|f| !f.is_empty());
    if fields.next() != Some("v=STSv1") {
        return Err("does not start with the field v=STSv1");
    }
    for field in fields {
        if let Some(id) = field.strip_prefix("id=") {
            let valid =
                (1..=32).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric());
            return if valid {
                Ok(id.to_owned())
            } else {
                Err("has an id that is not 1 to 32 letters and digits")
            };
        }
    }
    Err("has no id field")
}

/// A policy file's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedPolicy {
    /// The mode.
    pub mode: MtaStsMode,
    /// The `mx` patterns, lower-case.
    pub mx: Vec<String>,
    /// max_age in seconds.
    pub max_age: u64,
}

/// Parses a policy file (section 3.2): `key: value` lines ending in LF or
/// CRLF. Unknown keys are ignored, as the section requires.
pub fn parse_policy(text: &str) -> Result<ParsedPolicy, String> {
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!("line {line:?} is not \"key: value\""));
        };
        let value = value.trim();
        match key.trim() {
            "version" => version = Some(value.to_owned()),
            "mode" => {
                mode = Some(
                    MtaStsMode::parse(value).ok_or_else(|| format!("unknown mode {value:?}"))?,
                )
            }
            "max_age" => {
                let seconds: u64 = value
                    .parse()
                    .map_err(|_| format!("max_age {value:?} is not a number of seconds"))?;
                if seconds > MAX_AGE_LIMIT {
                    return Err(format!("max_age {seconds} exceeds {MAX_AGE_LIMIT}"));
                }
                max_age = Some(seconds);
            }
            "mx" => mx.push(value.to_lowercase()),
            _ => {}
        }
    }
    if version.as_deref() != Some("STSv1") {
        return Err("the version field is missing or not STSv1".to_owned());
    }
    let mode = mode.ok_or("the mode field is missing")?;
    let max_age = max_age.ok_or("the max_age field is missing")?;
    if mx.is_empty() && mode != MtaStsMode::None {
        return Err("no mx field".to_owned());
    }
    Ok(ParsedPolicy { mode, mx, max_age })
}

/// Returns whether MX host `host` matches policy pattern `pattern`
/// (section 4.1): equal without regard to case, or `*.` followed by the
/// host with its leftmost label removed.
pub fn mx_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_lowercase();
    let host = host.trim_end_matches('.').to_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == host,
    }
}

/// Fetches the policy file. Any status but 200, a redirect, a media type
/// other than text/plain, or more than [`MAX_POLICY_BYTES`] is a failure.
async fn fetch(resolver: &Resolver, https: &TlsContext, domain: &str) -> Result<String, String> {
    let host = format!("mta-sts.{domain}");
    let request = fetch_once(resolver, https, &host);
    match tokio::time::timeout(FETCH_TIMEOUT, request).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "the MTA-STS policy fetch from {host} timed out after {} s",
            FETCH_TIMEOUT.as_secs()
        )),
    }
}

async fn fetch_once(resolver: &Resolver, https: &TlsContext, host: &str) -> Result<String, String> {
    const PORT: u16 = 443;
    let failed = |what: String| format!("cannot fetch the MTA-STS policy from {host}: {what}");
    let addresses = resolver
        .addresses(host)
        .await
        .map_err(|error| failed(error.to_string()))?;
    let sockets: Vec<SocketAddr> = addresses
        .into_iter()
        .map(|ip| SocketAddr::new(ip, PORT))
        .collect();
    let tcp = net::connect_addresses(host, PORT, &sockets)
        .await
        .map_err(|error| failed(error.to_string()))?;
    let tls = https
        .handshake(tcp, host, PORT)
        .await
        .map_err(|error| failed(error.to_string()))?;

    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|error| failed(error.to_string()))?;
    // hyper makes progress only while the connection future is polled.
    let driver = tokio::spawn(connection);
    let request = Request::get("/.well-known/mta-sts.txt")
        .header(header::HOST, host)
        .header(
            header::USER_AGENT,
            concat!("Wardmail/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|error| failed(error.to_string()))?;
    let result = read_response(sender.send_request(request).await, host).await;
    drop(sender);
    driver.abort();
    result.map_err(failed)
}

async fn read_response(
    response: Result<hyper::Response<hyper::body::Incoming>, hyper::Error>,
    host: &str,
) -> Result<String, String> {
    let response = response.map_err(|error| error.to_string())?;
    if response.status() != StatusCode::OK {
        return Err(format!(
            "{host} responded with HTTP {} (redirects are not followed)",
            response.status().as_u16()
        ));
    }
    let media_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_lowercase();
    if media_type != "text/plain" {
        return Err(format!(
            "the policy has media type {media_type:?} instead of text/plain"
        ));
    }
    let body = Limited::new(response.into_body(), MAX_POLICY_BYTES)
        .collect()
        .await
        .map_err(|_| format!("the policy is unreadable or larger than {MAX_POLICY_BYTES} bytes"))?
        .to_bytes();
    String::from_utf8(body.to_vec()).map_err(|_| "the policy is not UTF-8 text".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_id_parsed() {
        let records = vec![
            "v=spf1 -all".to_owned(),
            "v=STSv1; id=20240101T000000;".to_owned(),
        ];
        assert_eq!(policy_id(&records).unwrap(), "20240101T000000");
    }

    #[test]
    fn txt_two_records_no_policy() {
        let records = vec!["v=STSv1; id=a".to_owned(), "v=STSv1; id=b".to_owned()];
        assert!(policy_id(&records).is_err());
    }

    #[test]
    fn txt_id_rejects_punctuation() {
        let records = vec!["v=STSv1; id=a-b".to_owned()];
        assert!(policy_id(&records).is_err());
    }

    #[test]
    fn policy_parses_crlf() {
        let text = "version: STSv1\r\nmode: enforce\r\nmx: MX1.example.org\r\n\
                    mx: *.example.net\r\nmax_age: 86400\r\n";
        let policy = parse_policy(text).unwrap();
        assert_eq!(policy.mode, MtaStsMode::Enforce);
        assert_eq!(policy.mx, vec!["mx1.example.org", "*.example.net"]);
        assert_eq!(policy.max_age, 86400);
    }

    #[test]
    fn policy_rejects_missing_mx() {
        let text = "version: STSv1\nmode: enforce\nmax_age: 60\n";
        assert!(parse_policy(text).is_err());
        let none = "version: STSv1\nmode: none\nmax_age: 60\n";
        assert_eq!(parse_policy(none).unwrap().mode, MtaStsMode::None);
    }

    #[test]
    fn policy_rejects_long_max_age() {
        let text = "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 99999999\n";
        let error = parse_policy(text).unwrap_err();
        assert!(error.contains("99999999"), "{error}");
    }

    #[test]
    fn mx_wildcard_one_label() {
        assert!(mx_matches("*.example.net", "mx1.example.net"));
        assert!(mx_matches("*.example.net", "MX1.Example.NET."));
        assert!(!mx_matches("*.example.net", "a.b.example.net"));
        assert!(!mx_matches("*.example.net", "example.net"));
        assert!(mx_matches("mx.example.org", "mx.example.org"));
        assert!(!mx_matches("mx.example.org", "mx2.example.org"));
    }

    #[test]
    fn cached_policy_expires() {
        let policy = StoredPolicy {
            domain: "example.org".to_owned(),
            id: "1".to_owned(),
            mode: MtaStsMode::Enforce,
            mx: vec!["mx.example.org".to_owned()],
            max_age: 100,
            fetched_at: 1000,
        };
        assert!(policy.is_fresh(1099));
        assert!(!policy.is_fresh(1100));
    }
}
