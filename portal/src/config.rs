//! The portal's TOML configuration file.
//!
//! Only `public_url`, `database` and `contact` are required; everything else
//! has a default. Unknown keys are rejected, so a misspelt key is reported
//! instead of silently falling back to its default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Address the server listens on when the file sets no `listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

/// Wrong codes a message allows when the file sets no `max_attempts`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// Days a message stays readable when neither the upload nor the file sets
/// an expiry.
pub const DEFAULT_EXPIRY_DAYS: u32 = 14;

/// Seconds between two runs of the expiry sweeper by default.
pub const DEFAULT_SWEEP_INTERVAL_SECONDS: u64 = 60;

/// The upper bound on `max_attempts`, so a typo cannot make guessing cheap.
const MAX_ATTEMPTS_LIMIT: u32 = 20;

/// The upper bound on `expiry_days` and on an upload's `expires_at`, in
/// days from now: about a year.
pub const MAX_EXPIRY_DAYS: u32 = 366;

/// The validated configuration of one portal server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Socket address to bind.
    pub listen: SocketAddr,
    /// The URL recipients and desktops use, without a trailing slash, for
    /// example `https://portal.clinic.example`. Signed requests are checked
    /// against it, so it must match what the desktops call.
    pub public_url: String,
    /// Path of the SQLite database file.
    pub database: PathBuf,
    /// Certificate chain and private key (PEM) for HTTPS; `None` serves
    /// plain HTTP, for use behind a reverse proxy that terminates TLS.
    pub tls: Option<TlsFiles>,
    /// Clinic contact text, shown on the page and on the "gone" page when
    /// a message has expired or was revoked.
    pub contact: String,
    /// Maximum number of wrong codes a message allows before it locks. An
    /// upload may ask for fewer.
    pub max_attempts: u32,
    /// Days until a message expires when its upload sets no `expires_at`.
    pub expiry_days: u32,
    /// Seconds between runs of the expiry sweeper.
    pub sweep_interval_seconds: u64,
    /// Format of the log lines on standard error.
    pub log_format: LogFormat,
}

/// PEM files for the server's TLS identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Format of the log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Reason a configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a wrong, missing or unknown key.
    #[error("cannot parse the config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's description, with line and column.
        message: String,
    },
    /// A key has a value the portal cannot use.
    #[error("invalid `{key}` in {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// Description of the problem and its fix.
        reason: String,
    },
}

/// The file as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    public_url: String,
    database: PathBuf,
    tls: Option<TlsFiles>,
    contact: String,
    max_attempts: Option<u32>,
    expiry_days: Option<u32>,
    sweep_interval_seconds: Option<u64>,
    log_format: Option<LogFormat>,
}

impl Config {
    /// Reads and validates the configuration file at `path`. A relative
    /// `database` or TLS path is taken relative to the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Validates configuration text; `path` names the file in errors and
    /// anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.to_owned(),
            message: error.to_string().trim_end().to_owned(),
        })?;
        let invalid = |key, reason: String| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            reason,
        };

        let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = listen_text.parse().map_err(|_| {
            invalid(
                "listen",
                format!("{listen_text:?} is not an IP address and port; write for example \"{DEFAULT_LISTEN}\""),
            )
        })?;

        let public_url =
            parse_public_url(&raw.public_url).map_err(|reason| invalid("public_url", reason))?;

        let contact = raw.contact.trim().to_owned();
        if contact.is_empty() {
            return Err(invalid(
                "contact",
                "it is empty; write how recipients reach the clinic, for example \"Riverside Clinic, 0123 456 789\"".into(),
            ));
        }

        let max_attempts = raw.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&max_attempts) {
            return Err(invalid(
                "max_attempts",
                format!(
                    "{max_attempts} is outside 1 to {MAX_ATTEMPTS_LIMIT}; the default is {DEFAULT_MAX_ATTEMPTS}"
                ),
            ));
        }

        let expiry_days = raw.expiry_days.unwrap_or(DEFAULT_EXPIRY_DAYS);
        if !(1..=MAX_EXPIRY_DAYS).contains(&expiry_days) {
            return Err(invalid(
                "expiry_days",
                format!(
                    "{expiry_days} is outside 1 to {MAX_EXPIRY_DAYS}; the default is {DEFAULT_EXPIRY_DAYS}"
                ),
            ));
        }

        let sweep_interval_seconds = raw
            .sweep_interval_seconds
            .unwrap_or(DEFAULT_SWEEP_INTERVAL_SECONDS);
        if !(1..=3600).contains(&sweep_interval_seconds) {
            return Err(invalid(
                "sweep_interval_seconds",
                format!(
                    "{sweep_interval_seconds} is outside 1 to 3600; the default is {DEFAULT_SWEEP_INTERVAL_SECONDS}"
                ),
            ));
        }

        let base = path.parent().unwrap_or(Path::new("."));
        let tls = raw.tls.map(|files| TlsFiles {
            cert: base.join(files.cert),
            key: base.join(files.key),
        });

        Ok(Self {
            listen,
            public_url,
            database: base.join(raw.database),
            tls,
            contact,
            max_attempts,
            expiry_days,
            sweep_interval_seconds,
            log_format: raw.log_format.unwrap_or(LogFormat::Text),
        })
    }

    /// Whether recipients reach the portal over HTTPS, directly or through
    /// a proxy.
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// Checks `public_url` and returns it without a trailing slash.
fn parse_public_url(text: &str) -> Result<String, String> {
    let trimmed = text.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| {
            format!("{text:?} does not start with https:// (or http:// for a local test); write for example \"https://portal.clinic.example\"")
        })?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{text:?} has no host name"));
    }
    if trimmed.contains(['?', '#', ' ']) {
        return Err(format!(
            "{text:?} contains a query, a fragment or a space; give only the scheme, host and an optional path prefix"
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
public_url = "https://portal.clinic.example/"
database = "portal.sqlite3"
contact = "Riverside Clinic, 0123 456 789"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/wardmail-portal/portal.toml"))
    }

    #[test]
    fn config_minimal_defaults() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(config.public_url, "https://portal.clinic.example");
        assert_eq!(
            config.database,
            PathBuf::from("/etc/wardmail-portal/portal.sqlite3")
        );
        assert_eq!(config.max_attempts, 5);
        assert_eq!(config.expiry_days, 14);
        assert_eq!(config.log_format, LogFormat::Text);
        assert!(config.tls.is_none());
    }

    #[test]
    fn config_unknown_key() {
        let error = parse(&format!("{MINIMAL}max_atempts = 3\n")).unwrap_err();
        assert!(error.to_string().contains("max_atempts"), "{error}");
    }

    #[test]
    fn config_bad_values_named() {
        let cases = [
            ("listen = \"localhost\"\n", "`listen`"),
            ("max_attempts = 0\n", "`max_attempts`"),
            ("expiry_days = 1000\n", "`expiry_days`"),
            ("log_format = \"xml\"\n", "log_format"),
        ];
        for (line, expected) in cases {
            let error = parse(&format!("{MINIMAL}{line}")).unwrap_err();
            assert!(error.to_string().contains(expected), "{line}: {error}");
        }
        let error = parse(&MINIMAL.replace("https://", "ftp://")).unwrap_err();
        assert!(error.to_string().contains("`public_url`"), "{error}");
    }
}
