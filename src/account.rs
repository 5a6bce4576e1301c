//! Accounts and the profile that holds them.
//!
//! A profile is one directory for configuration and one for data. The
//! configuration is `accounts.toml` (no secrets: passwords live in the OS
//! keyring, see [`crate::secret`]); the data directory holds the encrypted
//! store. Tests and administrators select an isolated profile with
//! `--profile DIR` or the `WARDMAIL_PROFILE` environment variable; otherwise
//! the platform directories from the `directories` crate are used.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dns::NetworkSettings;

/// Name of the environment variable that selects a profile directory.
pub const PROFILE_ENV: &str = "WARDMAIL_PROFILE";

/// Errors from loading or saving the profile.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No platform configuration directory could be determined.
    #[error("cannot find a home directory: set {PROFILE_ENV} to a writable directory")]
    NoHome,
    /// Reading or writing a profile file failed.
    #[error("cannot {operation} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "create").
        operation: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML for this version.
    #[error("cannot read {path}: {message}; fix or remove the file and set the account up again")]
    Parse {
        /// The configuration file.
        path: PathBuf,
        /// The parser's description of the problem.
        message: String,
    },
    /// A field of an account is invalid.
    #[error("invalid {field} {value:?}: {fix}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// The rejected value.
        value: String,
        /// What the user can do.
        fix: &'static str,
    },
    /// The profile has no account yet.
    #[error("no account in this profile yet: add one with `wardmail account add` or in the window")]
    NoAccounts,
    /// The requested account does not exist in this profile.
    #[error("no account {0:?} in this profile: add one with `wardmail account add`")]
    NotFound(String),
}

/// How a connection is protected. Plain text is deliberately not a choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (IMAP port 993, SMTP port 465).
    Tls,
    /// A plain-text greeting upgraded with STARTTLS before anything else is
    /// sent (IMAP port 143, SMTP submission port 587).
    StartTls,
}

impl Security {
    /// All choices, for pickers.
    pub const ALL: [Security; 2] = [Security::Tls, Security::StartTls];
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Security::Tls => "TLS",
            Security::StartTls => "STARTTLS",
        })
    }
}

impl std::str::FromStr for Security {
    type Err = AccountError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.to_ascii_lowercase().as_str() {
            "tls" | "ssl" | "implicit" => Ok(Security::Tls),
            "starttls" => Ok(Security::StartTls),
            _ => Err(AccountError::Invalid {
                field: "security",
                value: value.to_owned(),
                fix: "use \"tls\" (implicit TLS) or \"starttls\"",
            }),
        }
    }
}

/// A server endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// How the connection is protected.
    pub security: Security,
}

/// One mail account. The password is not part of it: see [`crate::secret`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Stable identifier, used in keyring entry names and the store.
    pub id: String,
    /// The name shown in From.
    pub display_name: String,
    /// The e-mail address.
    pub address: String,
    /// The login name for both servers.
    pub username: String,
    /// IMAP server.
    pub imap: Server,
    /// SMTP submission server.
    pub smtp: Server,
    /// A PEM file with the clinic's own CA certificates, trusted in addition
    /// to the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl Account {
    /// Checks every field and returns the first problem in words the user
    /// can act on.
    pub fn validate(&self) -> Result<(), AccountError> {
        let Some((local, domain)) = self.address.rsplit_once('@') else {
            return Err(invalid(
                "address",
                &self.address,
                "enter an address like name@clinic.example",
            ));
        };
        if local.is_empty() || domain.is_empty() || domain.contains(char::is_whitespace) {
            return Err(invalid(
                "address",
                &self.address,
                "enter an address like name@clinic.example",
            ));
        }
        if self.username.trim().is_empty() {
            return Err(invalid(
                "user name",
                &self.username,
                "enter the login name your provider gave you",
            ));
        }
        for (field, server) in [("IMAP host", &self.imap), ("SMTP host", &self.smtp)] {
            if server.host.trim().is_empty() || server.host.contains(char::is_whitespace) {
                return Err(invalid(
                    field,
                    &server.host,
                    "enter a host name such as mail.clinic.example",
                ));
            }
            if server.port == 0 {
                return Err(invalid(
                    field,
                    "port 0",
                    "enter the port your provider gave you",
                ));
            }
        }
        if let Some(path) = &self.ca_file
            && !path.is_file()
        {
            return Err(invalid(
                "CA file",
                &path.display().to_string(),
                "choose an existing PEM file or clear the field",
            ));
        }
        Ok(())
    }

    /// Returns the domain part of the address, lower-cased.
    pub fn domain(&self) -> String {
        self.address
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default()
    }
}

fn invalid(field: &'static str, value: &str, fix: &'static str) -> AccountError {
    AccountError::Invalid {
        field,
        value: value.to_owned(),
        fix,
    }
}

/// The persisted configuration file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Config {
    /// Random identifier of this profile, so that two profiles on one
    /// machine never share keyring entries.
    pub profile_id: String,
    /// The accounts, in the order they were added.
    #[serde(default, rename = "account")]
    pub accounts: Vec<Account>,
    /// DNS and HTTPS trust settings shared by every account of the profile.
    #[serde(default, skip_serializing_if = "NetworkSettings::is_empty")]
    pub network: NetworkSettings,
    /// Signing, encryption and key settings.
    #[serde(default)]
    pub crypto: CryptoSettings,
    /// The clinic's secure portal, once this device is enrolled.
    #[serde(default, skip_serializing_if = "PortalSettings::is_empty")]
    pub portal: PortalSettings,
}

/// The clinic's secure portal, in the `[portal]` table. The device's
/// signing key is in the OS keyring, never in this file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortalSettings {
    /// The portal's address, such as `https://portal.clinic.example`.
    pub url: Option<String>,
    /// The id the portal gave this device at enrolment.
    pub device_id: Option<String>,
    /// How patients reach the clinic, shown on the portal's pages and in
    /// the notice, such as "Riverside Clinic, 0123 456 789".
    pub contact: String,
    /// Days a message stays on the portal; 14 when 0.
    pub expiry_days: u32,
    /// A text file with the clinic's own wording of the notice e-mail; see
    /// `Session::prepare_portal` for the placeholders. The built-in text
    /// when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice_template: Option<std::path::PathBuf>,
}

impl PortalSettings {
    /// Returns whether nothing is set, so the table is left out of the
    /// file.
    pub fn is_empty(&self) -> bool {
        *self == PortalSettings::default()
    }

    /// Returns whether this device is enrolled with a portal.
    pub fn is_enrolled(&self) -> bool {
        self.url.is_some() && self.device_id.is_some()
    }
}

/// Settings for signing, encryption and keys, in the `[crypto]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CryptoSettings {
    /// Minutes an OpenPGP key unlocked with its passphrase stays usable
    /// before Wardmail requests it again. 0 requests it every time.
    pub unlock_minutes: u32,
    /// Whether signed OpenPGP mail carries an Autocrypt header with the
    /// user's public key, so that correspondents' programs learn it.
    pub autocrypt: bool,
}

impl Default for CryptoSettings {
    fn default() -> Self {
        Self {
            unlock_minutes: 10,
            autocrypt: false,
        }
    }
}

/// Where one profile keeps its files.
#[derive(Clone, Debug)]
pub struct Profile {
    config_dir: PathBuf,
    data_dir: PathBuf,
}

impl Profile {
    /// Resolves the profile: an explicit directory wins, then
    /// `WARDMAIL_PROFILE`, then the platform directories.
    pub fn locate(explicit: Option<&Path>) -> Result<Profile, AccountError> {
        let from_env = std::env::var_os(PROFILE_ENV).map(PathBuf::from);
        if let Some(dir) = explicit.map(Path::to_path_buf).or(from_env) {
            return Ok(Profile {
                config_dir: dir.clone(),
                data_dir: dir,
            });
        }
        let dirs = directories::ProjectDirs::from("org", "Wardmail", "Wardmail")
            .ok_or(AccountError::NoHome)?;
        Ok(Profile {
            config_dir: dirs.config_dir().to_path_buf(),
            data_dir: dirs.data_dir().to_path_buf(),
        })
    }

    /// Returns the configuration file's path.
    pub fn config_path(&self) -> PathBuf {
        self.config_dir.join("accounts.toml")
    }

    /// Returns the encrypted store's path.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("store.db")
    }

    /// Returns the data directory (created on demand).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Loads the configuration, creating an empty one with a fresh profile
    /// id when none exists yet.
    pub fn load(&self) -> Result<Config, AccountError> {
        let path = self.config_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let config = Config {
                    profile_id: random_id(),
                    ..Config::default()
                };
                self.save(&config)?;
                return Ok(config);
            }
            Err(source) => {
                return Err(AccountError::Io {
                    operation: "read",
                    path,
                    source,
                });
            }
        };
        toml::from_str(&text).map_err(|e| AccountError::Parse {
            path,
            message: e.to_string(),
        })
    }

    /// Writes the configuration atomically (temporary file, then rename),
    /// so a crash never leaves half a file.
    pub fn save(&self, config: &Config) -> Result<(), AccountError> {
        let io = |operation, path: &Path| {
            let path = path.to_path_buf();
            move |source| AccountError::Io {
                operation,
                path,
                source,
            }
        };
        std::fs::create_dir_all(&self.config_dir).map_err(io("create", &self.config_dir))?;
        std::fs::create_dir_all(&self.data_dir).map_err(io("create", &self.data_dir))?;
        let text = toml::to_string_pretty(config).map_err(|e| AccountError::Parse {
            path: self.config_path(),
            message: e.to_string(),
        })?;
        let path = self.config_path();
        let temporary = path.with_extension("toml.tmp");
        std::fs::write(&temporary, text).map_err(io("write", &temporary))?;
        std::fs::rename(&temporary, &path).map_err(io("write", &path))
    }
}

impl Config {
    /// Finds an account by id, or the first account when `id` is `None`.
    pub fn account(&self, id: Option<&str>) -> Result<&Account, AccountError> {
        match id {
            Some(id) => self
                .accounts
                .iter()
                .find(|a| a.id == id || a.address.eq_ignore_ascii_case(id))
                .ok_or_else(|| AccountError::NotFound(id.to_owned())),
            None => self.accounts.first().ok_or(AccountError::NoAccounts),
        }
    }

    /// Adds an account or replaces the one with the same id.
    pub fn upsert(&mut self, account: Account) {
        match self.accounts.iter_mut().find(|a| a.id == account.id) {
            Some(existing) => *existing = account,
            None => self.accounts.push(account),
        }
    }
}

/// Derives an account id from an address: the first 12 hex digits of the
/// SHA-256 of the lower-cased address. It is stable, so keyring entries are
/// found again, and logs that name the account do not show the address.
/// NOTE: it is unsalted, so someone holding a list of candidate addresses
/// can still match an id to one of them.
pub fn account_id(address: &str) -> String {
    let digest = openssl::sha::sha256(address.trim().to_lowercase().as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("acct-{hex}")
}

/// Generates a random 128-bit identifier in hex.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    // NOTE: openssl's CSPRNG fails only when the OS entropy source is broken;
    // a time-based id is then still unique enough for naming a profile.
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Account {
        Account {
            id: account_id("ann@example.org"),
            display_name: "Ann".into(),
            address: "ann@example.org".into(),
            username: "ann@example.org".into(),
            imap: Server {
                host: "imap.example.org".into(),
                port: 993,
                security: Security::Tls,
            },
            smtp: Server {
                host: "smtp.example.org".into(),
                port: 587,
                security: Security::StartTls,
            },
            ca_file: None,
        }
    }

    #[test]
    fn config_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile::locate(Some(dir.path())).unwrap();
        let mut config = profile.load().unwrap();
        assert_eq!(config.profile_id.len(), 32);
        config.upsert(sample());
        profile.save(&config).unwrap();
        let again = profile.load().unwrap();
        assert_eq!(again.accounts, vec![sample()]);
        assert_eq!(again.profile_id, config.profile_id);
    }

    #[test]
    fn config_file_has_no_password_field() {
        let text = toml::to_string(&Config {
            profile_id: "p".into(),
            accounts: vec![sample()],
            ..Config::default()
        })
        .unwrap();
        assert!(!text.to_lowercase().contains("password"));
    }

    #[test]
    fn config_network_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile::locate(Some(dir.path())).unwrap();
        let mut config = profile.load().unwrap();
        config.network.dns_nameserver = Some("192.0.2.53:5353".into());
        config.network.https_ca_file = Some(PathBuf::from("/etc/wardmail/web-ca.pem"));
        profile.save(&config).unwrap();
        let again = profile.load().unwrap();
        assert_eq!(again.network, config.network);
    }

    #[test]
    fn config_without_network_table_loads() {
        // A file written before the [network] table existed.
        let text = "profile_id = \"p\"\n";
        let config: Config = toml::from_str(text).unwrap();
        assert!(config.network.is_empty());
        let written = toml::to_string(&config).unwrap();
        assert!(!written.contains("network"), "{written}");
    }

    #[test]
    fn validate_rejects_bad_address() {
        let mut account = sample();
        account.address = "ann.example.org".into();
        let message = account.validate().unwrap_err().to_string();
        assert!(message.contains("ann.example.org"), "{message}");
    }

    #[test]
    fn security_parses_words() {
        assert_eq!("STARTTLS".parse::<Security>().unwrap(), Security::StartTls);
        assert_eq!("tls".parse::<Security>().unwrap(), Security::Tls);
        assert!("none".parse::<Security>().is_err());
    }

    #[test]
    fn account_id_is_opaque_and_stable() {
        let id = account_id("Ann+x@Example.org");
        assert_eq!(id, account_id("ann+x@example.org"));
        assert_eq!(id.len(), 17);
        assert!(!id.contains("ann"), "{id}");
        assert_ne!(id, account_id("bob@example.org"));
    }
}
