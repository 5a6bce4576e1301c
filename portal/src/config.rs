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
    /// Where messages are stored.
    pub database: Database,
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

/// The storage `database` names: a file path or a PostgreSQL URL.
#[derive(Debug, Clone)]
pub enum Database {
    /// Path of the SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres {
        /// The parsed `postgres://` or `postgresql://` connection string.
        /// Its `Debug` output hides the password; log it only through
        /// [`crate::store::describe_postgres`].
        url: Box<tokio_postgres::Config>,
        /// The CA certificates (PEM) that the database server's certificate
        /// must chain to; connections use TLS exactly when this is set.
        ca: Option<PathBuf>,
    },
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
    database: String,
    database_ca: Option<PathBuf>,
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
        let database_ca = raw.database_ca.map(|ca| base.join(ca));
        let database = parse_database(&raw.database, database_ca, base)
            .map_err(|(key, reason)| invalid(key, reason))?;
        let tls = raw.tls.map(|files| TlsFiles {
            cert: base.join(files.cert),
            key: base.join(files.key),
        });

        Ok(Self {
            listen,
            public_url,
            database,
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

/// An example PostgreSQL URL for error messages.
const EXAMPLE_POSTGRES_URL: &str = "postgres://wardmail:PASSWORD@127.0.0.1:5432/wardmail_portal";

/// Reads `database` and `database_ca`. Returns the key at fault and the
/// reason on failure.
fn parse_database(
    text: &str,
    ca: Option<PathBuf>,
    base: &Path,
) -> Result<Database, (&'static str, String)> {
    parse_database_url(text, ca.is_some(), base)
        .map_err(|reason| ("database", reason))
        .and_then(|database| match database {
            Database::Postgres { url, .. } => Ok(Database::Postgres { url, ca }),
            Database::Sqlite(_) if ca.is_some() => Err((
                "database_ca",
                "it applies only to a PostgreSQL URL in `database`; remove it for a SQLite file"
                    .into(),
            )),
            sqlite => Ok(sqlite),
        })
}

/// Reads `database`: a `postgres://` or `postgresql://` URL, or else a
/// file path, taken relative to `base` when relative. With `tls`, a host on
/// another machine is accepted.
fn parse_database_url(text: &str, tls: bool, base: &Path) -> Result<Database, String> {
    let lower = text.trim().to_ascii_lowercase();
    let is_postgres = lower.starts_with("postgres://") || lower.starts_with("postgresql://");
    if !is_postgres {
        if let Some((scheme, _)) = lower.split_once("://") {
            return Err(format!(
                "the scheme {scheme:?} is not supported; give a SQLite file path, or a PostgreSQL URL such as \"{EXAMPLE_POSTGRES_URL}\""
            ));
        }
        if text.trim().is_empty() {
            return Err(format!(
                "it is empty; give a SQLite file path such as \"portal.sqlite3\", or a PostgreSQL URL such as \"{EXAMPLE_POSTGRES_URL}\""
            ));
        }
        return Ok(Database::Sqlite(base.join(text)));
    }

    let redacted = redact_password(text.trim());
    let config: tokio_postgres::Config = text.trim().parse().map_err(|error| {
        format!(
            "{redacted:?} is not a valid PostgreSQL URL ({error}); write for example \"{EXAMPLE_POSTGRES_URL}\""
        )
    })?;
    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        return Err(format!(
            "{redacted:?} names no host; write for example \"{EXAMPLE_POSTGRES_URL}\""
        ));
    }
    // Without `database_ca` there is no TLS, so a database on another
    // machine is refused rather than reached in the clear.
    let remote_host = crate::store::first_remote_host(&config).filter(|_| !tls);
    if let Some(host) = remote_host {
        return Err(format!(
            "{redacted:?} names the host {host:?}, which is not on this machine; set `database_ca` to the CA certificate of the database server so the portal connects with TLS, or give 127.0.0.1, ::1, localhost or a Unix socket directory"
        ));
    }
    Ok(Database::Postgres {
        url: Box::new(config),
        ca: None,
    })
}

/// Replaces the password in a connection URL (after `user:` or in a
/// `password=` parameter) with `***`, for error messages.
fn redact_password(url: &str) -> String {
    let mut shown = url.to_owned();
    if let Some(scheme_end) = shown.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = shown[authority_start..]
            .find(['/', '?'])
            .map_or(shown.len(), |offset| authority_start + offset);
        if let Some(at) = shown[authority_start..authority_end].rfind('@') {
            let userinfo = authority_start..authority_start + at;
            if let Some(colon) = shown[userinfo.clone()].find(':') {
                shown.replace_range(userinfo.start + colon + 1..userinfo.end, "***");
            }
        }
    }
    if let Some(query_start) = shown.find('?') {
        let query = shown[query_start + 1..]
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        shown.replace_range(query_start + 1.., &query);
    }
    shown
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
        assert!(
            matches!(&config.database, Database::Sqlite(path) if path == Path::new("/etc/wardmail-portal/portal.sqlite3")),
            "{:?}",
            config.database
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

    fn with_database(value: &str) -> Result<Config, ConfigError> {
        parse(&MINIMAL.replace("portal.sqlite3", value))
    }

    #[test]
    fn config_postgres_url() {
        let config = with_database("postgresql://portal:s3cret@127.0.0.1:5433/portal_db").unwrap();
        let Database::Postgres { url: postgres, ca } = &config.database else {
            panic!("not PostgreSQL: {:?}", config.database);
        };
        assert_eq!(*ca, None);
        assert_eq!(postgres.get_dbname(), Some("portal_db"));
        assert_eq!(postgres.get_ports(), [5433]);
        assert_eq!(
            crate::store::describe_postgres(postgres),
            "database portal_db on 127.0.0.1:5433"
        );
        assert!(!format!("{config:?}").contains("s3cret"), "{config:?}");
    }

    #[test]
    fn config_postgres_errors_hide_password() {
        let cases = [
            (
                "postgres://u:s3cret@db.example.org/portal",
                "not on this machine",
            ),
            (
                "postgres://u:s3cret@127.0.0.1:notaport/portal",
                "not a valid",
            ),
            (
                "postgres://127.0.0.1/portal?password=s3cret&sslmode=bogus",
                "not a valid",
            ),
            ("mysql://u:s3cret@127.0.0.1/portal", "not supported"),
        ];
        for (url, expected) in cases {
            let error = with_database(url).unwrap_err().to_string();
            assert!(error.contains("`database`"), "{url}: {error}");
            assert!(error.contains(expected), "{url}: {error}");
            assert!(!error.contains("s3cret"), "{url}: {error}");
        }
        assert!(with_database("postgres://u@[::1]:5432/portal").is_ok());

        let remote = "postgres://u:s3cret@db.example.org/portal";
        let with_ca = parse(&format!(
            "{}database_ca = \"db-ca.pem\"\n",
            MINIMAL.replace("portal.sqlite3", remote)
        ))
        .unwrap();
        let Database::Postgres { ca, .. } = &with_ca.database else {
            panic!("not PostgreSQL: {:?}", with_ca.database);
        };
        assert_eq!(
            ca.as_deref(),
            Some(Path::new("/etc/wardmail-portal/db-ca.pem"))
        );
        let error = parse(&format!("{MINIMAL}database_ca = \"db-ca.pem\"\n")).unwrap_err();
        assert!(error.to_string().contains("`database_ca`"), "{error}");
        assert!(with_database("postgres://u@localhost/portal").is_ok());
    }
}
