//! The account's OpenPGP keys as the Keys screen and `wardmail keys` use
//! them: listing, generating, exporting, revoking, marking verified,
//! unlocking with a passphrase for a limited time, Autocrypt state from
//! incoming mail, and writing protected messages.
//!
//! A key that arrives without the user choosing it (Autocrypt, WKD) and
//! would replace another key for the same address is stored but not used.
//! It waits until the user accepts it on the Keys screen, so a changed key
//! is never trusted silently.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use sequoia_openpgp as pgp;

use pgp::packet::Key;
use pgp::packet::key::{SecretParts, UnspecifiedRole};

use super::{Session, SessionError, unblock};
use crate::account::Account;
use crate::autocrypt;
use crate::compose::Draft;
use crate::openpgp::{self, KeyInfo, Keyring, OpenpgpError, Suite};
use crate::protected::{self, OpenpgpSealer, Protection, SealError};
use crate::secret::Secret;
use crate::smime::SmimeError;
use crate::store::{AutocryptPeer, OpenpgpState, Store};

/// Secret keys unlocked with their passphrase, by primary fingerprint,
/// kept in memory only and forgotten after the configured time.
#[derive(Default)]
pub(super) struct UnlockCache {
    entries: HashMap<String, (Expiry, Vec<Key<SecretParts, UnspecifiedRole>>)>,
}

impl UnlockCache {
    /// Drops the expired entries and returns copies of the remaining keys.
    fn live(&mut self) -> Vec<Key<SecretParts, UnspecifiedRole>> {
        self.entries.retain(|_, (expiry, _)| !expiry.passed());
        self.entries
            .values()
            .flat_map(|(_, keys)| keys.iter().cloned())
            .collect()
    }

    /// Drops the expired entries and returns the primary fingerprints of
    /// the remaining ones.
    fn live_fingerprints(&mut self) -> Vec<String> {
        self.entries.retain(|_, (expiry, _)| !expiry.passed());
        self.entries.keys().cloned().collect()
    }
}

/// The end of an unlock period, on two clocks.
///
/// `Instant` on Linux does not advance while the machine is suspended, so
/// alone it would keep a key unlocked for the whole suspension. The wall
/// clock does advance but can be set back, so the period ends at whichever
/// deadline comes first.
struct Expiry {
    monotonic: Instant,
    wall: SystemTime,
}

impl Expiry {
    fn after(period: Duration) -> Self {
        Self {
            monotonic: Instant::now() + period,
            wall: SystemTime::now() + period,
        }
    }

    fn passed(&self) -> bool {
        Instant::now() >= self.monotonic || SystemTime::now() >= self.wall
    }
}

/// One OpenPGP certificate with what the user decided about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OpenpgpKey {
    /// The certificate's description.
    #[serde(flatten)]
    pub info: KeyInfo,
    /// The origin: "imported", "generated", "wkd" or "autocrypt".
    pub source: String,
    /// True when the user marked the fingerprint as verified.
    pub verified: bool,
    /// While set, this key would replace the named one for the same
    /// address and is not used until the user accepts the change.
    pub replaces: Option<String>,
    /// True while the unlocked secret key is cached.
    pub unlocked: bool,
}

/// The technology of a protected message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// PGP/MIME (RFC 3156).
    Openpgp,
    /// S/MIME (RFC 8551).
    Smime,
}

impl Session {
    /// Loads the account's OpenPGP keyring with the keys unlocked within
    /// the configured time.
    pub(super) fn openpgp_keyring_now(&self) -> Result<Keyring, SessionError> {
        let mut keyring = super::openpgp_keyring(&self.store, &self.account.id)?;
        keyring.add_unlocked(self.unlocked_now()?);
        Ok(keyring)
    }

    /// Returns copies of the secret keys unlocked within the configured
    /// time, dropping the ones whose time ran out.
    pub(super) fn unlocked_now(
        &self,
    ) -> Result<Vec<Key<SecretParts, UnspecifiedRole>>, SessionError> {
        Ok(self
            .unlocked
            .lock()
            .map_err(|_| SessionError::Task("the key cache is poisoned".into()))?
            .live())
    }

    /// Lists every OpenPGP certificate with its state, own keys first.
    pub async fn openpgp_keys(
        self: &std::sync::Arc<Self>,
    ) -> Result<Vec<OpenpgpKey>, SessionError> {
        let session = self.clone();
        unblock(move || session.openpgp_keys_now()).await
    }

    /// Lists the certificates as [`Session::openpgp_keys`] does, on the
    /// calling thread.
    pub fn openpgp_keys_now(&self) -> Result<Vec<OpenpgpKey>, SessionError> {
        let keyring = self.openpgp_keyring_now()?;
        let states: HashMap<String, OpenpgpState> = self
            .store
            .openpgp_states(&self.account.id)?
            .into_iter()
            .map(|state| (state.fingerprint.clone(), state))
            .collect();
        let cached = self
            .unlocked
            .lock()
            .map_err(|_| SessionError::Task("the key cache is poisoned".into()))?
            .live_fingerprints();
        let mut keys: Vec<OpenpgpKey> = keyring
            .certificates()
            .iter()
            .map(|cert| {
                let info = openpgp::describe(cert);
                let state = states.get(&info.fingerprint);
                OpenpgpKey {
                    source: state.map_or_else(|| "imported".into(), |s| s.source.clone()),
                    verified: state.is_some_and(|s| s.verified),
                    replaces: state.and_then(|s| s.replaces.clone()),
                    unlocked: cached.contains(&info.fingerprint),
                    info,
                }
            })
            .collect();
        keys.sort_by(|a, b| {
            (!a.info.secret, &a.info.addresses).cmp(&(!b.info.secret, &b.info.addresses))
        });
        Ok(keys)
    }

    /// Generates an OpenPGP key for the account's address and keeps it in
    /// the encrypted store. `validity` of `None` means it never expires.
    pub async fn generate_openpgp(
        &self,
        suite: Suite,
        validity: Option<Duration>,
    ) -> Result<KeyInfo, SessionError> {
        let store = self.store.clone();
        let account = self.account.clone();
        unblock(move || {
            let name = Some(account.display_name.as_str());
            let cert = openpgp::generate(name, &account.address, suite, validity)?;
            let info = openpgp::describe(&cert);
            let bytes = openpgp::to_tsk_bytes(&cert)?;
            store.save_openpgp(&account.id, std::slice::from_ref(&info.fingerprint), &bytes)?;
            store.add_openpgp_state(&account.id, &info.fingerprint, "generated", None)?;
            // The user made this key, so it needs no fingerprint check.
            store.verify_openpgp(&account.id, &info.fingerprint)?;
            tracing::info!(account = %account.id, "OpenPGP key generated");
            Ok(info)
        })
        .await
    }

    /// Returns a certificate's public parts, armored, for sharing.
    pub async fn export_openpgp(&self, fingerprint: String) -> Result<Vec<u8>, SessionError> {
        let store = self.store.clone();
        let account = self.account.id.clone();
        unblock(move || {
            let keyring = super::openpgp_keyring(&store, &account)?;
            let cert = keyring.require(&fingerprint)?;
            Ok(openpgp::export_public(cert)?)
        })
        .await
    }

    /// Revokes one of the user's own keys ("key retired") and keeps the
    /// revocation, so exports carry it. The key no longer signs or
    /// receives encrypted mail.
    pub async fn revoke_openpgp(&self, fingerprint: String) -> Result<KeyInfo, SessionError> {
        let store = self.store.clone();
        let account = self.account.id.clone();
        let unlocked = self.unlocked_now()?;
        unblock(move || {
            let mut keyring = super::openpgp_keyring(&store, &account)?;
            keyring.add_unlocked(unlocked);
            let cert = with_unlocked_primary(keyring.require(&fingerprint)?, &keyring);
            let revoked = openpgp::revoke(&cert, "revoked in Wardmail")?;
            let bytes = openpgp::to_tsk_bytes(&revoked)?;
            store.save_openpgp(&account, std::slice::from_ref(&fingerprint), &bytes)?;
            tracing::info!(account = %account, "OpenPGP key revoked");
            Ok(openpgp::describe(&revoked))
        })
        .await
    }

    /// Marks a certificate's fingerprint as verified, which also accepts
    /// it when it was held back as a key change.
    pub async fn verify_openpgp(&self, fingerprint: String) -> Result<(), SessionError> {
        self.set_openpgp_state(fingerprint, true).await
    }

    /// Accepts a changed key without marking it verified.
    pub async fn accept_openpgp(&self, fingerprint: String) -> Result<(), SessionError> {
        self.set_openpgp_state(fingerprint, false).await
    }

    async fn set_openpgp_state(
        &self,
        fingerprint: String,
        verify: bool,
    ) -> Result<(), SessionError> {
        let store = self.store.clone();
        let account = self.account.id.clone();
        unblock(move || {
            let keyring = super::openpgp_keyring(&store, &account)?;
            let cert = keyring.require(&fingerprint)?;
            let fingerprint = cert.fingerprint().to_hex();
            store.add_openpgp_state(&account, &fingerprint, "imported", None)?;
            if verify {
                store.verify_openpgp(&account, &fingerprint)?;
            } else {
                store.accept_openpgp(&account, &fingerprint)?;
            }
            Ok(())
        })
        .await
    }

    /// Unlocks a passphrase-protected key for the configured time
    /// (`[crypto] unlock_minutes`). The passphrase itself is not kept.
    /// Returns how many secret keys were unlocked.
    pub async fn unlock_openpgp(
        self: &std::sync::Arc<Self>,
        fingerprint: String,
        passphrase: Secret,
    ) -> Result<usize, SessionError> {
        let session = self.clone();
        unblock(move || {
            let keyring = super::openpgp_keyring(&session.store, &session.account.id)?;
            let handle: pgp::Fingerprint =
                fingerprint.parse().map_err(|_| OpenpgpError::KeyNotFound {
                    fingerprint: fingerprint.clone(),
                })?;
            let keys = keyring.unlocked_keys(&handle, passphrase.expose())?;
            let count = keys.len();
            let minutes = u64::from(session.config.crypto.unlock_minutes);
            if minutes > 0 {
                let expiry = Expiry::after(Duration::from_secs(minutes * 60));
                let primary = keyring
                    .certificate(&fingerprint)
                    .map_or(fingerprint.clone(), |cert| cert.fingerprint().to_hex());
                session
                    .unlocked
                    .lock()
                    .map_err(|_| SessionError::Task("the key cache is poisoned".into()))?
                    .entries
                    .insert(primary, (expiry, keys));
            }
            Ok(count)
        })
        .await
    }

    /// Forgets every unlocked key now.
    pub fn lock_openpgp(&self) {
        // A panic elsewhere while the lock was held must not keep the keys
        // in memory, so a poisoned cache is cleared too.
        let mut cache = self
            .unlocked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.entries.clear();
    }

    /// Stores certificates found by a WKD lookup for `address`. A key that
    /// would replace another one in use for the address is held back
    /// until the user accepts it. Returns each fingerprint with the key it
    /// would replace, if any.
    pub async fn import_wkd(
        &self,
        certificates: Vec<u8>,
        address: String,
    ) -> Result<Vec<(String, Option<String>)>, SessionError> {
        let store = self.store.clone();
        let account = self.account.id.clone();
        unblock(move || {
            let mut probe = Keyring::new();
            let fingerprints = probe.import(&certificates)?;
            let mut stored = Vec::new();
            for fingerprint in fingerprints {
                let fingerprint = fingerprint.to_hex();
                let cert = probe.require(&fingerprint)?;
                let bytes = openpgp::to_tsk_bytes(cert)?;
                store_correspondent_key(&store, &account, &bytes, &fingerprint, &address, "wkd")?;
                let replaces = store
                    .openpgp_states(&account)?
                    .into_iter()
                    .find(|state| state.fingerprint == fingerprint)
                    .and_then(|state| state.replaces);
                stored.push((fingerprint, replaces));
            }
            Ok(stored)
        })
        .await
    }

    /// Returns what is known about each recipient for the route plan: a
    /// usable OpenPGP certificate or S/MIME certificate held, with its
    /// fingerprint as evidence. Reads only the store, never the network,
    /// so the composer can ask on every change; TLS is left unknown here.
    pub async fn recipient_capabilities(
        self: &std::sync::Arc<Self>,
        addresses: Vec<String>,
    ) -> Result<Vec<crate::route::Capabilities>, SessionError> {
        let session = self.clone();
        let lookups = addresses.clone();
        let openpgp: Vec<Option<String>> = unblock(move || {
            let keyring = session.openpgp_keyring_now()?;
            Ok(lookups
                .iter()
                .map(|address| {
                    session
                        .encryption_cert(&keyring, address)
                        .ok()
                        .map(|cert| format!("OpenPGP key {}", cert.fingerprint().to_hex()))
                })
                .collect())
        })
        .await?;
        let mut found = Vec::with_capacity(addresses.len());
        for (address, openpgp) in addresses.iter().zip(openpgp) {
            let mut capabilities = crate::route::Capabilities::unknown(address);
            capabilities.openpgp = openpgp;
            capabilities.portal = self.portal_enrolled();
            capabilities.smime =
                self.smime_recipient_certificate(address)
                    .await
                    .ok()
                    .map(|certificate| {
                        format!(
                            "S/MIME certificate {}",
                            crate::smime::fingerprint(&certificate.certificate)
                        )
                    });
            found.push(capabilities);
        }
        Ok(found)
    }

    /// Returns every correspondent's Autocrypt state.
    pub async fn autocrypt_peers(&self) -> Result<Vec<AutocryptPeer>, SessionError> {
        let store = self.store.clone();
        let account = self.account.id.clone();
        unblock(move || Ok(store.autocrypt_peers(&account)?)).await
    }

    /// Writes `draft` as a protected message, for [`Session::send`].
    ///
    /// Every recipient needs a usable key or certificate for `method`
    /// when encrypting, and so does the sender, whose copy in Sent must
    /// stay readable. Bcc recipients are rejected when encrypting, because
    /// their keys would be visible to every other recipient.
    pub async fn build_protected(
        self: &std::sync::Arc<Self>,
        draft: Draft,
        message_id: String,
        date_unix: i64,
        method: Method,
        protection: Protection,
    ) -> Result<Vec<u8>, SessionError> {
        if protection.encrypt && !draft.bcc.is_empty() {
            return Err(SealError::Crypto(
                "an encrypted message cannot have Bcc recipients: their keys would be \
                 visible to the others; send them a separate message"
                    .into(),
            )
            .into());
        }
        let recipients = draft.envelope_recipients();
        self.build_sealed(draft, message_id, date_unix, method, protection, recipients)
            .await
    }

    /// Writes `draft` encrypted to the sender alone, for the Drafts folder,
    /// so that a draft of a reply to protected mail is never stored in
    /// clear, on the server or in the local copy of the folder.
    pub async fn build_private_draft(
        self: &std::sync::Arc<Self>,
        draft: Draft,
        message_id: String,
        date_unix: i64,
        method: Method,
    ) -> Result<Vec<u8>, SessionError> {
        let protection = Protection {
            sign: false,
            encrypt: true,
        };
        self.build_sealed(draft, message_id, date_unix, method, protection, Vec::new())
            .await
    }

    /// Writes `draft` protected with `method`, encrypted (when requested)
    /// to `recipients` and the sender only, whoever else the visible To
    /// and Cc name. Sending per method group uses this so that each copy
    /// is readable by its own group alone.
    pub(super) async fn build_sealed(
        self: &std::sync::Arc<Self>,
        draft: Draft,
        message_id: String,
        date_unix: i64,
        method: Method,
        protection: Protection,
        recipients: Vec<String>,
    ) -> Result<Vec<u8>, SessionError> {
        if method == Method::Smime {
            return self
                .build_smime(draft, message_id, date_unix, protection, recipients)
                .await;
        }
        let session = self.clone();
        unblock(move || {
            session.build_openpgp(&draft, &message_id, date_unix, protection, &recipients)
        })
        .await
    }

    fn build_openpgp(
        &self,
        draft: &Draft,
        message_id: &str,
        date_unix: i64,
        protection: Protection,
        addresses: &[String],
    ) -> Result<Vec<u8>, SessionError> {
        let keyring = self.openpgp_keyring_now()?;
        let me = self.account.address.to_lowercase();
        let signer = if protection.sign {
            Some(keyring.signer_for(&me)?)
        } else {
            None
        };
        let mut recipients = Vec::new();
        if protection.encrypt {
            for address in addresses.iter().chain([&me]) {
                let cert = self.encryption_cert(&keyring, address)?;
                if !recipients.contains(&cert) {
                    recipients.push(cert);
                }
            }
        }
        let mut extra = Vec::new();
        let own = keyring.certificates().iter().find(|cert| {
            cert.is_tsk()
                && openpgp::describe(cert).can_encrypt
                && openpgp::addresses(cert).contains(&me)
        });
        if let Some(own) = own.filter(|_| protection.sign && self.config.crypto.autocrypt) {
            let public = openpgp::minimal_public(own, &me)?;
            extra.push(autocrypt::header_field(&me, true, &public));
        }
        let mut sealer = OpenpgpSealer { recipients, signer };
        protected::write(
            draft,
            message_id,
            date_unix,
            protection,
            &mut sealer,
            &extra,
        )
        .map_err(SessionError::from)
    }

    /// Returns the certificate to encrypt to for `address`: the newest
    /// usable one that is not held back as an unaccepted key change.
    fn encryption_cert(&self, keyring: &Keyring, address: &str) -> Result<pgp::Cert, SessionError> {
        let states = self.store.openpgp_states(&self.account.id)?;
        let held_back = |cert: &pgp::Cert| {
            let fingerprint = cert.fingerprint().to_hex();
            states
                .iter()
                .any(|s| s.fingerprint == fingerprint && s.replaces.is_some())
        };
        let candidates = keyring.encryption_candidates(address);
        if let Some(cert) = candidates.iter().find(|cert| !held_back(cert)) {
            return Ok((*cert).clone());
        }
        let reason = if candidates.is_empty() {
            "no usable OpenPGP key: import theirs (Keys screen, or `wardmail keys import`), or \
             look it up with `wardmail keys wkd`"
        } else {
            "their key changed and the new one is not accepted yet: compare its fingerprint \
             with them and accept it on the Keys screen"
        };
        Err(SealError::Crypto(format!("cannot encrypt to {address}: {reason}")).into())
    }

    /// Writes an S/MIME message. The user's identity signs and receives a
    /// copy, and each recipient needs a usable certificate when encrypting.
    async fn build_smime(
        &self,
        draft: Draft,
        message_id: String,
        date_unix: i64,
        protection: Protection,
        addresses: Vec<String>,
    ) -> Result<Vec<u8>, SessionError> {
        let (identity, warning) = self.smime_sign_identity().await?;
        if let Some(warning) = warning {
            tracing::warn!(account = %self.account.id, code = %warning.code(), "signing with an identity whose chain is incomplete");
        }
        let mut recipients = Vec::new();
        if protection.encrypt {
            for address in addresses {
                let certificate = self.smime_recipient_certificate(&address).await.map_err(
                    |error| match error {
                        // Its text names the address already: wrapping it
                        // would repeat "cannot encrypt to".
                        SessionError::Smime(SmimeError::NoUsableCertificate { .. }) => error,
                        other => SealError::Crypto(format!("cannot encrypt to {address}: {other}"))
                            .into(),
                    },
                )?;
                recipients.push(certificate);
            }
        }
        unblock(move || {
            let mut sealer = protected::SmimeSealer {
                identity,
                recipients,
            };
            protected::write(&draft, &message_id, date_unix, protection, &mut sealer, &[])
                .map_err(SessionError::from)
        })
        .await
    }
}

/// Records the Autocrypt header of an incoming message (Autocrypt
/// Level 1 section 2.3) and stores its key. Blocking.
pub(super) fn note_autocrypt(store: &Store, me: &Account, raw: &[u8]) -> Result<(), SessionError> {
    let now = now();
    let (found, from, date) = autocrypt::read(raw, now);
    let (Some(from), autocrypt::Found::Header(header)) = (from, found) else {
        return Ok(());
    };
    if from == me.address.to_lowercase() {
        return Ok(());
    }

    let account = &me.id;
    let previous = store.autocrypt_peer(account, &from)?;
    if previous
        .as_ref()
        .is_some_and(|peer| date <= peer.autocrypt_timestamp)
    {
        return Ok(());
    }

    let mut probe = Keyring::new();
    let Ok(fingerprints) = probe.import(&header.keydata) else {
        tracing::warn!(account = %account, "Autocrypt header with an unreadable key ignored");
        return Ok(());
    };
    let [fingerprint] = fingerprints.as_slice() else {
        return Ok(());
    };
    let fingerprint = fingerprint.to_hex();

    store_correspondent_key(
        store,
        account,
        &header.keydata,
        &fingerprint,
        &from,
        "autocrypt",
    )?;
    store.save_autocrypt_peer(
        account,
        &AutocryptPeer {
            address: from,
            last_seen: date,
            autocrypt_timestamp: date,
            fingerprint,
            prefer_encrypt: header.prefer_encrypt,
        },
    )?;
    Ok(())
}

/// Stores a correspondent's certificate that arrived without the user
/// choosing it. When another key is in use for the address, the new
/// one is held back as a key change until the user accepts it.
pub(super) fn store_correspondent_key(
    store: &Store,
    account: &str,
    bytes: &[u8],
    fingerprint: &str,
    address: &str,
    source: &str,
) -> Result<(), SessionError> {
    let keyring = super::openpgp_keyring(store, account)?;
    if keyring.certificate(fingerprint).is_some() {
        // Known already: merging refreshes it (new subkeys, expiry).
        store.save_openpgp(account, &[fingerprint.to_string()], bytes)?;
        return Ok(());
    }
    let states = store.openpgp_states(account)?;
    let held_back = |fpr: &str| {
        states
            .iter()
            .any(|s| s.fingerprint == fpr && s.replaces.is_some())
    };
    let replaces = keyring
        .encryption_candidates(address)
        .into_iter()
        .map(|cert| cert.fingerprint().to_hex())
        .find(|fpr| !held_back(fpr));
    store.save_openpgp(account, &[fingerprint.to_string()], bytes)?;
    store.add_openpgp_state(account, fingerprint, source, replaces.as_deref())?;
    if replaces.is_some() {
        tracing::warn!(account = %account, source, "a correspondent's OpenPGP key changed");
    }
    Ok(())
}

/// Returns `cert` with the primary secret key replaced by its unlocked
/// copy from `unlocked`, when the user unlocked it.
fn with_unlocked_primary(cert: &pgp::Cert, unlocked: &Keyring) -> pgp::Cert {
    let primary = cert.primary_key().key().fingerprint();
    unlocked
        .secret_key(&primary)
        .and_then(|key| {
            let key = key.clone().role_into_primary();
            cert.clone().insert_packets(key).ok().map(|(cert, _)| cert)
        })
        .unwrap_or_else(|| cert.clone())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

impl From<SealError> for SessionError {
    fn from(error: SealError) -> Self {
        SessionError::Seal(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlock_expires_after_suspend() {
        // After a suspend, the monotonic deadline is still ahead while the
        // wall clock has moved past its deadline.
        let expiry = Expiry {
            monotonic: Instant::now() + Duration::from_secs(3600),
            wall: SystemTime::now() - Duration::from_secs(1),
        };
        assert!(expiry.passed());
    }

    #[test]
    fn unlock_lasts_its_period() {
        assert!(!Expiry::after(Duration::from_secs(3600)).passed());
        assert!(Expiry::after(Duration::ZERO).passed());
    }
}
