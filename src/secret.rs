//! Secrets in the OS keyring: account passwords and the store key.
//!
//! Entries live under the service name `wardmail` in the platform store
//! (Secret Service on Linux, Keychain on macOS, Credential Manager on
//! Windows) through the `keyring` crate. Entry names include the profile id,
//! so two profiles never read each other's secrets. The names are part of
//! the on-disk format: changing them loses every stored password.
//!
//! Every call here blocks (D-Bus, Keychain, Win32): call it from a blocking
//! thread, never from the UI thread.

use std::fmt;

/// The keyring service name shared by all entries.
pub const SERVICE: &str = "wardmail";

/// Errors from the OS keyring.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The entry does not exist.
    #[error("no {what} in the OS keyring: enter it again in the account settings")]
    Missing {
        /// What was looked up ("password for ann@example.org").
        what: String,
    },
    /// The keyring could not be reached or refused the operation.
    #[error(
        "cannot {operation} the {what} in the OS keyring: {reason}; make sure a keyring \
         (Secret Service, Keychain or Credential Manager) is running and unlocked"
    )]
    Unavailable {
        /// "read", "store" or "delete".
        operation: &'static str,
        /// What was involved.
        what: String,
        /// The keyring's own description.
        reason: String,
    },
}

/// A secret value whose `Debug` output never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// Returns the secret itself, for handing to a protocol library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One named keyring entry of a profile.
#[derive(Clone, Debug)]
pub struct KeyringEntry {
    user: String,
    what: String,
}

impl KeyringEntry {
    /// Names the password entry of an account.
    pub fn password(profile_id: &str, account_id: &str) -> KeyringEntry {
        KeyringEntry {
            user: format!("{profile_id}/account/{account_id}/password"),
            what: format!("password for account {account_id}"),
        }
    }

    /// Names the entry of the encrypted local store's key.
    pub fn store_key(profile_id: &str) -> KeyringEntry {
        KeyringEntry {
            user: format!("{profile_id}/store-key"),
            what: "key of the local mail store".to_owned(),
        }
    }

    /// Names the entry of the device key that signs the profile's requests
    /// to the clinic's secure portal.
    pub fn portal_device(profile_id: &str) -> KeyringEntry {
        KeyringEntry {
            user: format!("{profile_id}/portal-device-key"),
            what: "device key for the secure portal".to_owned(),
        }
    }

    /// Returns the entry name as stored in the keyring (the "user"
    /// attribute).
    pub fn name(&self) -> &str {
        &self.user
    }

    /// Reads the secret.
    pub fn read(&self) -> Result<Secret, SecretError> {
        let entry = self.open("read")?;
        match entry.get_password() {
            Ok(value) => Ok(Secret(value)),
            Err(keyring::Error::NoEntry) => Err(SecretError::Missing {
                what: self.what.clone(),
            }),
            Err(e) => Err(self.unavailable("read", e)),
        }
    }

    /// Stores or replaces the secret.
    pub fn store(&self, secret: &Secret) -> Result<(), SecretError> {
        let entry = self.open("store")?;
        entry
            .set_password(secret.expose())
            .map_err(|e| self.unavailable("store", e))
    }

    /// Deletes the secret; a missing entry is not an error.
    pub fn delete(&self) -> Result<(), SecretError> {
        let entry = self.open("delete")?;
        match entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(self.unavailable("delete", e)),
        }
    }

    fn open(&self, operation: &'static str) -> Result<keyring::Entry, SecretError> {
        keyring::Entry::new(SERVICE, &self.user).map_err(|e| self.unavailable(operation, e))
    }

    fn unavailable(&self, operation: &'static str, error: keyring::Error) -> SecretError {
        SecretError::Unavailable {
            operation,
            what: self.what.clone(),
            reason: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
    }

    /// The entry names are an on-disk format: existing users' passwords are
    /// found by these exact strings.
    #[test]
    fn entry_names_are_pinned() {
        assert_eq!(
            KeyringEntry::password("p1", "acct-0123456789ab").name(),
            "p1/account/acct-0123456789ab/password"
        );
        assert_eq!(KeyringEntry::store_key("p1").name(), "p1/store-key");
    }
}
