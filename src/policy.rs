//! The clinic policy: one TOML file that the clinic's IT places at a fixed
//! system-wide path, read once at start-up.
//!
//! The paths are, per operating system:
//!
//! - Linux and other Unix systems: `/etc/wardmail/policy.toml`
//! - macOS: `/Library/Application Support/Wardmail/policy.toml`
//! - Windows: `%ProgramData%\Wardmail\policy.toml`
//!
//! The `WARDMAIL_POLICY` environment variable names another file instead,
//! for tests and for trying a policy before deploying it. Because any user
//! can set it, the policy guides staff and does not bind a local user who
//! wants to get around it.
//!
//! A missing file means "no clinic policy" and is not an error. A file that
//! exists but cannot be read or parsed is an error, which the window shows
//! and `wardmail policy` prints: it is never ignored silently.
//!
//! Format version 1 names the clinic's domains. Version 2 adds the routing
//! rules per sensitivity (see [`crate::route`]); a table left out keeps the
//! built-in rule:
//!
//! ```toml
//! version = 2
//! internal_domains = ["clinic.example", "lab.clinic.example"]
//! default_sensitivity = "phi"
//!
//! [routing.phi]
//! methods = ["smime", "openpgp", "internal", "tls"]
//! accept_tls_offered = false
//! otherwise = "portal"
//!
//! [reply]
//! allow_override = false
//! ```
//!
//! `[portal] allow_email_code = true` lets a portal message be unlocked
//! with a code sent by a second e-mail, which the portal's page labels low
//! assurance; without it only a code by phone or a passphrase is offered.
//!
//! `[reply] allow_override = false` stops staff from sending a reply below
//! its thread's floor (see [`crate::guard`]) even after typing a reason.
//!
//! Unknown keys are rejected, not skipped: a misspelt key in a security
//! policy must not pass for a rule that is in force. A file that needs keys
//! from a newer format declares a higher `version`, which this build
//! rejects with a message asking for a newer Wardmail.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::route::{Routing, Rule, Sensitivity};

/// Name of the environment variable that names a policy file in place of
/// the system-wide one.
pub const POLICY_ENV: &str = "WARDMAIL_POLICY";

/// The newest policy format version this build reads; it reads 1 as well.
pub const FORMAT_VERSION: i64 = 2;

/// The policy file to read, and whether the environment chose it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The policy file.
    pub path: PathBuf,
    /// Whether `WARDMAIL_POLICY` chose the path.
    pub from_env: bool,
}

/// A loaded clinic policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The file it was read from.
    pub path: PathBuf,
    /// Domains that belong to the clinic, in lower case, without
    /// duplicates, in file order.
    pub internal_domains: Vec<String>,
    /// The format version the file declares.
    pub version: i64,
    /// The routing rules per sensitivity.
    pub routing: Routing,
    /// Whether staff may send a reply below its thread's floor after
    /// typing a reason (the `[reply]` table; allowed when left out).
    pub allow_reply_override: bool,
    /// Whether a portal message may be unlocked with a code sent by a
    /// second e-mail, which the page labels low assurance (the `[portal]`
    /// table; refused when left out).
    pub allow_email_code: bool,
}

/// Errors from loading the clinic policy. Each names the file and what to
/// change.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file exists but cannot be read, or the file that
    /// `WARDMAIL_POLICY` names does not exist.
    #[error("cannot read the clinic policy {path}: {source}; {fix}")]
    Io {
        /// The policy file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
        /// The change that fixes the error.
        fix: &'static str,
    },
    /// The file is not valid TOML, misses `version`, or has unknown keys or
    /// values of the wrong type.
    #[error(
        "cannot load the clinic policy {path}: {message}; correct the file \
         (format version {FORMAT_VERSION} allows `version`, `internal_domains`, \
         `default_sensitivity` and `[routing.routine]`, `[routing.phi]`, \
         `[routing.restricted]` with `methods`, `accept_tls_offered` and `otherwise`)"
    )]
    Parse {
        /// The policy file.
        path: PathBuf,
        /// The parser's description, with the line and column.
        message: String,
    },
    /// The file declares a format version this build does not read.
    #[error(
        "cannot load the clinic policy {path}: it declares format version {found}, \
         and this Wardmail reads versions 1 and {FORMAT_VERSION}; install the Wardmail \
         release that the policy was written for, or write a version {FORMAT_VERSION} policy"
    )]
    UnsupportedVersion {
        /// The policy file.
        path: PathBuf,
        /// The `version` value in the file.
        found: i64,
    },
    /// An entry of `internal_domains` is not a domain name.
    #[error(
        "cannot load the clinic policy {path}: internal_domains entry {value:?} is not a \
         domain name ({reason}); write it like \"clinic.example\""
    )]
    InvalidDomain {
        /// The policy file.
        path: PathBuf,
        /// The rejected entry.
        value: String,
        /// The reason it is rejected.
        reason: &'static str,
    },
}

/// Returns the system-wide policy path of the platform this was built for.
pub fn system_path() -> PathBuf {
    #[cfg(target_os = "windows")]
    {
        // NOTE: a user can change ProgramData for a process. The Known
        // Folders API (SHGetKnownFolderPath) cannot be redirected that way,
        // but calling it needs the windows crate.
        let program_data = std::env::var_os("ProgramData")
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| r"C:\ProgramData".into());
        PathBuf::from(program_data)
            .join("Wardmail")
            .join("policy.toml")
    }
    #[cfg(target_os = "macos")]
    {
        PathBuf::from("/Library/Application Support/Wardmail/policy.toml")
    }
    #[cfg(not(any(target_os = "windows", target_os = "macos")))]
    {
        PathBuf::from("/etc/wardmail/policy.toml")
    }
}

impl Location {
    /// Returns the file named by `WARDMAIL_POLICY` when it is set and not
    /// empty, otherwise the system-wide path.
    pub fn from_env() -> Location {
        match std::env::var_os(POLICY_ENV).filter(|value| !value.is_empty()) {
            Some(path) => Location {
                path: PathBuf::from(path),
                from_env: true,
            },
            None => Location {
                path: system_path(),
                from_env: false,
            },
        }
    }

    /// Reads and checks the policy file. Returns `None` when the
    /// system-wide file does not exist. Blocks on the file system.
    pub fn load(&self) -> Result<Option<Policy>, PolicyError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !self.from_env => {
                return Ok(None);
            }
            Err(source) => {
                let fix = match source.kind() {
                    std::io::ErrorKind::NotFound => {
                        "correct WARDMAIL_POLICY or unset it to use the system-wide policy"
                    }
                    std::io::ErrorKind::PermissionDenied => {
                        "make the file readable by every user (for example mode 644)"
                    }
                    std::io::ErrorKind::InvalidData => "save the file as UTF-8 text",
                    _ => "check that the path is a readable text file",
                };
                return Err(PolicyError::Io {
                    path: self.path.clone(),
                    source,
                    fix,
                });
            }
        };
        parse(&self.path, &text).map(Some)
    }
}

/// The keys of format version 1. `version` is checked before this is
/// deserialized, so that a newer file reports its version rather than its
/// new keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(rename = "version")]
    _version: i64,
    #[serde(default)]
    internal_domains: Vec<String>,
}

/// The keys of format version 2: version 1's and the routing rules.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFileV2 {
    #[serde(rename = "version")]
    _version: i64,
    #[serde(default)]
    internal_domains: Vec<String>,
    default_sensitivity: Option<Sensitivity>,
    #[serde(default)]
    routing: RoutingFile,
    #[serde(default)]
    reply: ReplyFile,
    #[serde(default)]
    portal: PortalFile,
}

/// The `[portal]` table: which second factors the clinic accepts.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PortalFile {
    #[serde(default)]
    allow_email_code: bool,
}

/// The `[reply]` table: what staff may do about a reply below its
/// thread's floor.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyFile {
    #[serde(default = "allowed")]
    allow_override: bool,
}

impl Default for ReplyFile {
    fn default() -> Self {
        ReplyFile {
            allow_override: allowed(),
        }
    }
}

fn allowed() -> bool {
    true
}

/// The `[routing]` table: one optional rule per sensitivity.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RoutingFile {
    routine: Option<Rule>,
    phi: Option<Rule>,
    restricted: Option<Rule>,
}

/// Parses policy text that was read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Policy, PolicyError> {
    let parse_error = |message: String| PolicyError::Parse {
        path: path.to_owned(),
        message,
    };
    let table: toml::Table =
        toml::from_str(text).map_err(|error| parse_error(one_line(&error.to_string())))?;
    let version = match table.get("version") {
        Some(toml::Value::Integer(version)) => *version,
        Some(other) => {
            return Err(parse_error(format!(
                "`version` must be an integer, not a {}",
                other.type_str()
            )));
        }
        None => return Err(parse_error("the `version` key is missing".to_owned())),
    };
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(PolicyError::UnsupportedVersion {
            path: path.to_owned(),
            found: version,
        });
    }

    let deserialize_error = |error: toml::de::Error| parse_error(one_line(&error.to_string()));
    let (domains, routing, allow_reply_override, allow_email_code) = if version == 1 {
        let file: PolicyFile = toml::Value::Table(table)
            .try_into()
            .map_err(deserialize_error)?;
        (file.internal_domains, Routing::default(), true, false)
    } else {
        let file: PolicyFileV2 = toml::Value::Table(table)
            .try_into()
            .map_err(deserialize_error)?;
        let defaults = Routing::default();
        let routing = Routing {
            routine: file.routing.routine.unwrap_or(defaults.routine),
            phi: file.routing.phi.unwrap_or(defaults.phi),
            restricted: file.routing.restricted.unwrap_or(defaults.restricted),
            default_sensitivity: file
                .default_sensitivity
                .unwrap_or(defaults.default_sensitivity),
        };
        for sensitivity in Sensitivity::ALL {
            if routing.rule(sensitivity).methods.is_empty() {
                return Err(parse_error(format!(
                    "[routing.{}] lists no methods; list at least one, such as \"smime\"",
                    serde_json::to_value(sensitivity)
                        .ok()
                        .and_then(|value| value.as_str().map(str::to_owned))
                        .unwrap_or_default()
                )));
            }
        }
        (
            file.internal_domains,
            routing,
            file.reply.allow_override,
            file.portal.allow_email_code,
        )
    };
    let mut internal_domains: Vec<String> = Vec::with_capacity(domains.len());
    for entry in &domains {
        let domain = check_domain(entry).map_err(|reason| PolicyError::InvalidDomain {
            path: path.to_owned(),
            value: entry.clone(),
            reason,
        })?;
        if !internal_domains.contains(&domain) {
            internal_domains.push(domain);
        }
    }
    Ok(Policy {
        path: path.to_owned(),
        internal_domains,
        version,
        routing,
        allow_reply_override,
        allow_email_code,
    })
}

/// Returns the domain in lower case, or why it is not a domain name. Only
/// the ASCII form is accepted (RFC 5890 A-labels, `xn--...`), because
/// comparing Unicode domains would need IDNA mapping.
fn check_domain(entry: &str) -> Result<String, &'static str> {
    let domain = entry.trim().to_ascii_lowercase();
    if domain.is_empty() {
        return Err("it is empty");
    }
    if domain.contains('@') {
        return Err("it contains @; give only the part after the @");
    }
    if !domain
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.')
    {
        return Err(
            "only letters, digits, hyphens and dots are allowed; write Unicode names in their xn-- form",
        );
    }
    if domain.len() > 253 {
        return Err("it is longer than 253 characters");
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err("it has an empty label: a leading, trailing or double dot");
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with a hyphen");
        }
    }
    Ok(domain)
}

/// Joins the lines of a multi-line parser message (toml prints the source
/// line and a caret under it), so that it fits a log line and a UI note.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("policy.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn system(path: PathBuf) -> Location {
        Location {
            path,
            from_env: false,
        }
    }

    #[test]
    fn policy_version_two_routing() {
        let policy = parse(
            Path::new("p.toml"),
            "version = 2\ndefault_sensitivity = \"restricted\"\n\
             [routing.phi]\nmethods = [\"openpgp\", \"tls\"]\naccept_tls_offered = true\n\
             otherwise = \"block\"\n",
        )
        .unwrap();
        assert_eq!(policy.routing.default_sensitivity, Sensitivity::Restricted);
        assert_eq!(
            policy.routing.phi.methods,
            vec![crate::route::Method::Openpgp, crate::route::Method::Tls]
        );
        assert!(policy.routing.phi.accept_tls_offered);
        assert_eq!(policy.routing.restricted, Routing::default().restricted);
    }

    #[test]
    fn policy_reply_override() {
        let parse_text = |text: &str| parse(Path::new("p.toml"), text);
        assert!(parse_text("version = 2\n").unwrap().allow_reply_override);
        assert!(parse_text("version = 1\n").unwrap().allow_reply_override);
        let strict = parse_text("version = 2\n[reply]\nallow_override = false\n").unwrap();
        assert!(!strict.allow_reply_override);
        let typo = parse_text("version = 2\n[reply]\nallow_overide = false\n")
            .unwrap_err()
            .to_string();
        assert!(typo.contains("allow_overide"), "{typo}");
        let shipped = include_str!("../packaging/policy.example.toml");
        assert!(parse_text(shipped).unwrap().allow_reply_override);
        assert!(!parse_text(shipped).unwrap().allow_email_code);
        let email = parse_text("version = 2\n[portal]\nallow_email_code = true\n").unwrap();
        assert!(email.allow_email_code);
        assert!(!parse_text("version = 2\n").unwrap().allow_email_code);
    }

    #[test]
    fn policy_routing_typo_rejected() {
        let error = parse(
            Path::new("p.toml"),
            "version = 2\n[routing.phi]\nmethods = [\"smime\", \"tsl\"]\notherwise = \"block\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("tsl"), "{error}");

        let empty = parse(
            Path::new("p.toml"),
            "version = 2\n[routing.restricted]\nmethods = []\notherwise = \"block\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            empty.contains("[routing.restricted] lists no methods"),
            "{empty}"
        );
    }

    #[test]
    fn policy_minimal_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "version = 1\n");
        let policy = system(path.clone()).load().unwrap().unwrap();
        assert_eq!(policy.path, path);
        assert!(policy.internal_domains.is_empty());
    }

    #[test]
    fn policy_internal_domains_normalized() {
        let policy = parse(
            Path::new("p.toml"),
            "version = 1\ninternal_domains = [\"Clinic.Example\", \" lab.clinic.example \", \"clinic.example\"]\n",
        )
        .unwrap();
        assert_eq!(
            policy.internal_domains,
            vec!["clinic.example", "lab.clinic.example"]
        );
    }

    #[test]
    fn policy_missing_system_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let location = system(dir.path().join("policy.toml"));
        assert!(location.load().unwrap().is_none());
    }

    #[test]
    fn policy_missing_env_file_is_error() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location {
            path: dir.path().join("policy.toml"),
            from_env: true,
        };
        let error = location.load().unwrap_err();
        assert!(matches!(error, PolicyError::Io { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("policy.toml"), "{message}");
        assert!(message.contains("WARDMAIL_POLICY"), "{message}");
    }

    #[test]
    fn policy_directory_is_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = system(dir.path().to_owned()).load().unwrap_err();
        assert!(matches!(error, PolicyError::Io { .. }), "{error:?}");
    }

    #[test]
    fn policy_unknown_key_rejected() {
        let error = parse(
            Path::new("/etc/wardmail/policy.toml"),
            "version = 1\ninternal_domain = [\"clinic.example\"]\n",
        )
        .unwrap_err();
        assert!(matches!(error, PolicyError::Parse { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("/etc/wardmail/policy.toml"), "{message}");
        assert!(message.contains("internal_domain"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn policy_version_missing() {
        let error = parse(Path::new("p.toml"), "internal_domains = []\n").unwrap_err();
        assert!(
            error.to_string().contains("`version` key is missing"),
            "{error}"
        );
    }

    #[test]
    fn policy_version_wrong_type() {
        let error = parse(Path::new("p.toml"), "version = \"1\"\n").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("must be an integer, not a string"),
            "{error}"
        );
    }

    #[test]
    fn policy_newer_version_rejected_before_keys() {
        let error = parse(Path::new("p.toml"), "version = 3\nroutes = []\n").unwrap_err();
        assert!(
            matches!(error, PolicyError::UnsupportedVersion { found: 3, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn policy_invalid_toml() {
        let error = parse(Path::new("p.toml"), "version = \n").unwrap_err();
        assert!(matches!(error, PolicyError::Parse { .. }), "{error:?}");
        assert!(!error.to_string().contains('\n'), "{error}");
    }

    #[test]
    fn policy_wrong_domain_list_type() {
        let error = parse(
            Path::new("p.toml"),
            "version = 1\ninternal_domains = \"clinic.example\"\n",
        )
        .unwrap_err();
        assert!(matches!(error, PolicyError::Parse { .. }), "{error:?}");
    }

    #[test]
    fn policy_invalid_domains() {
        for (entry, reason) in [
            ("", "empty"),
            ("staff@clinic.example", "contains @"),
            ("klinik-müller.example", "xn--"),
            ("clinic..example", "empty label"),
            (".clinic.example", "empty label"),
            ("-clinic.example", "hyphen"),
            ("clinic example", "only letters"),
        ] {
            let text = format!("version = 1\ninternal_domains = [{entry:?}]\n");
            let error = parse(Path::new("p.toml"), &text).unwrap_err();
            let message = error.to_string();
            assert!(
                matches!(error, PolicyError::InvalidDomain { .. }),
                "{entry:?}: {message}"
            );
            assert!(message.contains(reason), "{entry:?}: {message}");
        }
    }

    #[test]
    fn policy_accepts_a_labels() {
        let policy = parse(
            Path::new("p.toml"),
            "version = 1\ninternal_domains = [\"xn--klinik-mller-klb.example\"]\n",
        )
        .unwrap();
        assert_eq!(
            policy.internal_domains,
            vec!["xn--klinik-mller-klb.example"]
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn policy_system_path_linux() {
        assert_eq!(system_path(), Path::new("/etc/wardmail/policy.toml"));
    }
}
