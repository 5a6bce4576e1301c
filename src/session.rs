//! One open account: its configuration, password, trust anchors, store and
//! a reusable IMAP connection. The window and the command line both work
//! through this type, so they behave the same.

use std::path::PathBuf;
use std::sync::Arc;

use openssl::x509::X509;

use crate::account::{Account, AccountError, Config, Profile};
use crate::arrival::{self, ArrivalSecurity};
use crate::audit::AuditDraft;
use crate::dns::DnsError;
use crate::imap::{self, ImapError, Role};
use crate::net::{NetError, TlsContext};
use crate::outbox::{self, OutboxError};
use crate::protection::ProtectionReport;
use crate::secret::{KeyringEntry, Secret, SecretError};
use crate::smime::{
    self as smime_reader, Capabilities, CertificateProblem, ChainWarning, Identity,
    RecipientCertificate, SignerCertificate, SmimeError, TrustStore,
};
use crate::smtp::{self, SmtpError};
use crate::store::{CertificateSource, Folder, Store, StoreError};
use crate::sync::{self, FolderReport, Progress, SyncError, blocking};
use crate::wkd::{self, WkdClient, WkdError};

mod assess;
mod keys;
mod portal;
mod split;

pub use assess::{
    AutocryptFinding, OpenpgpFinding, PortalFinding, RecipientAssessment, SmimeFinding, WkdFinding,
};
pub use keys::{Method, OpenpgpKey};
pub use portal::{
    DEFAULT_EXPIRY_DAYS, PortalDelivery, PortalFactor, PortalMessage, PortalSendError, PortalSync,
    PreparedPortal, rfc3339,
};
pub use split::GroupOutcome;

/// Errors from any account operation, for callers that only report them.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Configuration.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// Keyring.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// Local store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Trust anchors.
    #[error(transparent)]
    Net(#[from] NetError),
    /// IMAP.
    #[error(transparent)]
    Imap(#[from] ImapError),
    /// SMTP.
    #[error(transparent)]
    Smtp(#[from] SmtpError),
    /// Sync.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// Outbox.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// A folder name that does not exist.
    #[error("no folder {0:?}: run `wardmail folders` to see the names")]
    NoFolder(String),
    /// A folder role the server does not have.
    #[error("the server has no {0} folder")]
    NoRole(&'static str),
    /// S/MIME keys and certificates.
    #[error(transparent)]
    Smime(#[from] SmimeError),
    /// OpenPGP keys and certificates.
    #[error(transparent)]
    Openpgp(#[from] crate::openpgp::OpenpgpError),
    /// DNS settings.
    #[error(transparent)]
    Dns(#[from] DnsError),
    /// Web Key Directory lookup, boxed because its TLS variant is large.
    #[error(transparent)]
    Wkd(#[from] Box<WkdError>),
    /// An outbox entry that does not exist (any more).
    #[error("no message {0} in the outbox: it was sent or discarded meanwhile")]
    NoOutboxEntry(i64),
    /// Writing a signed or encrypted message.
    #[error(transparent)]
    Seal(crate::protected::SealError),
    /// A recipient address without a local part or a domain.
    #[error(
        "invalid recipient address with domain part {0:?}: enter an address like \
         name@clinic.example"
    )]
    InvalidRecipient(String),
    /// A background task failed.
    #[error("a background task failed: {0}")]
    Task(String),
    /// The secure portal failed.
    #[error(transparent)]
    Portal(#[from] PortalSendError),
}

/// Runs a blocking closure on tokio's blocking pool.
async fn unblock<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, SessionError> + Send + 'static,
) -> Result<T, SessionError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| SessionError::Task(e.to_string()))?
}

/// An open account.
pub struct Session {
    /// The profile's configuration.
    pub config: Config,
    /// The account in use.
    pub account: Account,
    /// The local store.
    pub store: Arc<Store>,
    password: Secret,
    tls: TlsContext,
    connection: tokio::sync::Mutex<Option<imap::Connection>>,
    unlocked: std::sync::Mutex<keys::UnlockCache>,
    /// The parsed S/MIME identities and trust store, with the store
    /// generation they were read at.
    smime_material: Arc<SmimeCache>,
    assess_cache: assess::AssessCache,
}

/// The cached S/MIME material with the store generation it was read at.
type SmimeCache = std::sync::Mutex<Option<([i64; 5], Arc<SmimeMaterial>)>>;

/// The account's S/MIME identities and trust store, parsed once: parsing
/// the private keys alone takes about 2 ms per message otherwise.
struct SmimeMaterial {
    identities: Vec<Identity>,
    trust: TrustStore,
}

/// Returns the parsed S/MIME material, reusing the cached copy while the
/// store's S/MIME generation is unchanged. Blocking.
fn smime_material(
    cache: &SmimeCache,
    store: &Store,
    account: &str,
) -> Result<Arc<SmimeMaterial>, SessionError> {
    let generation = store.smime_generation(account)?;
    if let Ok(cached) = cache.lock()
        && let Some((seen, material)) = cached.as_ref()
        && *seen == generation
    {
        return Ok(material.clone());
    }
    let material = Arc::new(SmimeMaterial {
        identities: load_identities(store, account)?,
        trust: trust_store(store)?,
    });
    if let Ok(mut cached) = cache.lock() {
        *cached = Some((generation, material.clone()));
    }
    Ok(material)
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("account", &self.account.id)
            .finish()
    }
}

impl Session {
    /// Opens an account of a profile (the first one when `account` is
    /// `None`): reads the keyring, unlocks the store, loads trust anchors.
    ///
    /// Outbox entries left in `Sending` by a crash become "may have been
    /// sent" here, so nothing resends them unless the user confirms.
    pub async fn open(profile: Profile, account: Option<String>) -> Result<Session, SessionError> {
        let session = unblock(move || {
            let config = profile.load()?;
            let account = config.account(account.as_deref())?.clone();
            let password = KeyringEntry::password(&config.profile_id, &account.id).read()?;
            let store = Arc::new(Store::open_profile(&profile, &config)?);
            let tls = TlsContext::load(account.ca_file.as_deref())?;
            Ok(Session {
                config,
                account,
                store,
                password,
                tls,
                connection: tokio::sync::Mutex::new(None),
                unlocked: std::sync::Mutex::new(keys::UnlockCache::default()),
                smime_material: Arc::new(std::sync::Mutex::new(None)),
                assess_cache: assess::AssessCache::default(),
            })
        })
        .await?;
        let stuck = outbox::recover(&session.store, &session.account.id).await?;
        if stuck > 0 {
            tracing::warn!(account = %session.account.id, count = stuck, "sends interrupted by a stop");
        }
        Ok(session)
    }

    /// Returns the TLS trust anchors in use.
    pub fn tls(&self) -> &TlsContext {
        &self.tls
    }

    /// Opens a new IMAP connection (for IDLE, which needs its own).
    pub async fn connect(&self) -> Result<imap::Connection, ImapError> {
        imap::connect(&self.account, &self.password, &self.tls).await
    }

    /// Locks the shared IMAP connection, connecting if needed.
    async fn shared(
        &self,
    ) -> Result<tokio::sync::MappedMutexGuard<'_, imap::Connection>, SessionError> {
        let mut guard = self.connection.lock().await;
        if guard.is_none() {
            *guard = Some(self.connect().await?);
        }
        tokio::sync::MutexGuard::try_map(guard, Option::as_mut)
            .map_err(|_| SessionError::Task("IMAP connection lost".into()))
    }

    /// Drops the shared connection after an error so the next call
    /// reconnects.
    async fn forget_connection(&self) {
        *self.connection.lock().await = None;
    }

    async fn with_reset<T>(&self, result: Result<T, SessionError>) -> Result<T, SessionError> {
        if result.is_err() {
            self.forget_connection().await;
        }
        result
    }

    /// Syncs every folder. The shared connection is released between
    /// folders, so that flag changes and moves made meanwhile do not wait
    /// for the whole account.
    pub async fn sync(
        &self,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Vec<FolderReport>, SessionError> {
        let listed = async {
            let mut connection = self.shared().await?;
            let account = &self.account.id;
            Ok(sync::sync_folder_list(&mut connection, &self.store, account, progress).await?)
        }
        .await;
        let folders = self.with_reset(listed).await?;
        let mut reports = Vec::with_capacity(folders.len());
        for (index, folder) in folders.iter().enumerate() {
            let name = folder.name.clone();
            progress(Progress::Folder {
                name,
                position: index + 1,
                of: folders.len(),
            });
            let result = async {
                let mut connection = self.shared().await?;
                Ok(sync::sync_folder(&mut connection, &self.store, folder, progress).await?)
            }
            .await;
            reports.push(self.with_reset(result).await?);
        }
        tracing::info!(account = %self.account.id, folders = reports.len(), "sync done");
        Ok(reports)
    }

    /// Syncs one folder.
    pub async fn sync_folder(&self, folder: &Folder) -> Result<FolderReport, SessionError> {
        let result = async {
            let mut connection = self.shared().await?;
            Ok(sync::sync_folder(&mut connection, &self.store, folder, &|_| {}).await?)
        }
        .await;
        self.with_reset(result).await
    }

    /// Lists the folders from the store.
    pub async fn folders(&self) -> Result<Vec<Folder>, SessionError> {
        let id = self.account.id.clone();
        Ok(blocking(&self.store, move |s| s.folders(&id)).await?)
    }

    /// Finds a folder by decoded name, raw name or role name ("inbox").
    pub async fn folder(&self, name: &str) -> Result<Folder, SessionError> {
        let folders = self.folders().await?;
        folders
            .iter()
            .find(|f| f.name == name || f.raw_name == name)
            .or_else(|| {
                folders
                    .iter()
                    .find(|f| f.role.map(Role::as_str) == Some(&name.to_lowercase()))
            })
            .cloned()
            .ok_or_else(|| SessionError::NoFolder(name.to_owned()))
    }

    async fn folder_with_role(&self, role: Role) -> Result<Folder, SessionError> {
        self.folders()
            .await?
            .into_iter()
            .find(|f| f.role == Some(role))
            .ok_or(SessionError::NoRole(role.as_str()))
    }

    /// Returns a message's raw bytes, from the cache or the server.
    pub async fn body(&self, folder: &Folder, uid: u32) -> Result<Option<Vec<u8>>, SessionError> {
        let result = async {
            let mut connection = self.shared().await?;
            Ok(sync::message_body(&mut connection, &self.store, folder, uid).await?)
        }
        .await;
        self.with_reset(result).await
    }

    /// Sets or clears a flag, locally at once and then on the server.
    pub async fn set_flag(
        &self,
        folder: &Folder,
        uid: u32,
        flag: &str,
        on: bool,
    ) -> Result<(), SessionError> {
        let (id, name) = (folder.id, flag.to_owned());
        blocking(&self.store, move |s| s.set_flag(id, uid, &name, on)).await?;
        let result = async {
            let mut connection = self.shared().await?;
            sync::select_verified(&mut connection, &self.store, folder).await?;
            Ok(connection.set_flag(uid, flag, on).await?)
        }
        .await;
        self.with_reset(result).await
    }

    /// Moves a message to another folder.
    pub async fn move_message(
        &self,
        folder: &Folder,
        uid: u32,
        target: &Folder,
    ) -> Result<(), SessionError> {
        let result = async {
            let mut connection = self.shared().await?;
            sync::select_verified(&mut connection, &self.store, folder).await?;
            Ok(connection.move_to(uid, &target.raw_name).await?)
        }
        .await;
        self.with_reset(result).await?;
        let id = folder.id;
        blocking(&self.store, move |s| s.delete_messages(id, &[uid])).await?;
        Ok(())
    }

    /// Moves a message to Trash.
    pub async fn delete_message(&self, folder: &Folder, uid: u32) -> Result<(), SessionError> {
        let trash = self.folder_with_role(Role::Trash).await?;
        self.move_message(folder, uid, &trash).await
    }

    /// Saves a draft to the Drafts folder.
    pub async fn save_draft(&self, raw: &[u8]) -> Result<(), SessionError> {
        let drafts = self.folder_with_role(Role::Drafts).await?;
        let result = async {
            let mut connection = self.shared().await?;
            Ok(connection
                .append(&drafts.raw_name, Some("(\\Draft \\Seen)"), raw)
                .await?)
        }
        .await;
        self.with_reset(result).await
    }

    /// Puts a message in the outbox and tries to send it at once. The
    /// entry stays in the outbox, with its error, if sending fails. The
    /// audit log records every recipient as plain submission over TLS; see
    /// [`Session::send_with_audit`] to record a route plan.
    pub async fn send(
        &self,
        message_id: String,
        raw: Vec<u8>,
        recipients: Vec<String>,
    ) -> Result<i64, SessionError> {
        let draft = AuditDraft::submission_only(&recipients);
        self.send_with_audit(message_id, raw, recipients, draft)
            .await
    }

    /// Sends as [`Session::send`] does, and keeps `audit` (each recipient's
    /// method and evidence, the policy decision, any override) with the
    /// outbox entry, so that every attempt's audit log entry, including
    /// retries after a restart, records that plan.
    pub async fn send_with_audit(
        &self,
        message_id: String,
        raw: Vec<u8>,
        recipients: Vec<String>,
        audit: AuditDraft,
    ) -> Result<i64, SessionError> {
        let id = outbox::enqueue(&self.store, &self.account, message_id, raw, recipients).await?;
        blocking(&self.store, move |s| crate::audit::save_plan(s, id, &audit)).await?;
        let account = self.account.id.clone();
        let entry = blocking(&self.store, move |s| s.outbox(&account))
            .await?
            .into_iter()
            .find(|e| e.id == id);
        if let Some(entry) = entry {
            outbox::send(
                &self.store,
                &self.account,
                &self.password,
                &self.tls,
                &entry,
                false,
                override_allowed(),
            )
            .await?;
        }
        Ok(id)
    }

    /// Retries every queued or failed outbox entry.
    pub async fn flush_outbox(&self) -> Result<Vec<(i64, Result<(), OutboxError>)>, SessionError> {
        Ok(outbox::flush(
            &self.store,
            &self.account,
            &self.password,
            &self.tls,
            override_allowed(),
        )
        .await?)
    }

    /// Discards an outbox entry without sending it.
    pub async fn discard_outbox(&self, id: i64) -> Result<(), SessionError> {
        tracing::info!(account = %self.account.id, outbox = id, "outbox entry discarded");
        Ok(blocking(&self.store, move |s| s.outbox_remove(id)).await?)
    }

    /// Resends one entry, including an uncertain one when `confirmed`.
    pub async fn resend(&self, id: i64, confirmed: bool) -> Result<(), SessionError> {
        let account = self.account.id.clone();
        let entry = blocking(&self.store, move |s| s.outbox(&account))
            .await?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or(SessionError::NoOutboxEntry(id))?;
        Ok(outbox::send(
            &self.store,
            &self.account,
            &self.password,
            &self.tls,
            &entry,
            confirmed,
            override_allowed(),
        )
        .await?)
    }
}

/// Returns whether the clinic policy lets a portal message be unlocked with
/// a code sent by a second e-mail. A policy file that cannot be read
/// refuses it.
pub fn email_code_allowed() -> bool {
    match crate::policy::Location::from_env().load() {
        Ok(Some(policy)) => policy.allow_email_code,
        Ok(None) => false,
        Err(error) => {
            tracing::warn!(%error, "the clinic policy cannot be read; codes by e-mail are refused");
            false
        }
    }
}

/// Returns whether the clinic policy lets staff send a reply below its
/// thread's floor after typing a reason. A policy file that cannot be read
/// forbids it, so a broken policy never loosens the guard.
pub fn override_allowed() -> bool {
    match crate::policy::Location::from_env().load() {
        Ok(Some(policy)) => policy.allow_reply_override,
        Ok(None) => true,
        Err(error) => {
            tracing::warn!(%error, "the clinic policy cannot be read; reply overrides are refused");
            false
        }
    }
}

/// Loads every OpenPGP key imported for an account.
fn openpgp_keyring(store: &Store, account: &str) -> Result<crate::openpgp::Keyring, SessionError> {
    let mut keyring = crate::openpgp::Keyring::new();
    for data in store.openpgp_data(account)? {
        keyring.import(&data)?;
    }
    Ok(keyring)
}

/// Returns whether a message carries OpenPGP: PGP/MIME (RFC 3156) or an
/// armored block in its text.
fn looks_like_openpgp(raw: &[u8]) -> bool {
    const MARKERS: [&[u8]; 4] = [
        b"application/pgp-encrypted",
        b"application/pgp-signature",
        b"-----BEGIN PGP MESSAGE-----",
        b"-----BEGIN PGP SIGNED MESSAGE-----",
    ];
    MARKERS.iter().any(|marker| {
        raw.windows(marker.len())
            .any(|window| window.eq_ignore_ascii_case(marker))
    })
}

/// An S/MIME identity (certificate with its private key) as shown to the
/// user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityInfo {
    /// SHA-256 fingerprint of the certificate.
    pub fingerprint: String,
    /// E-mail addresses in the certificate.
    pub addresses: Vec<String>,
}

impl Session {
    /// Imports the user's .p12/.pfx file into the encrypted store. The
    /// password is used once, to open the file, and not kept. See
    /// [`Session::import_pkcs12_checked`] for the chain warning.
    pub async fn import_pkcs12(
        &self,
        bytes: Vec<u8>,
        password: Secret,
    ) -> Result<IdentityInfo, SessionError> {
        Ok(self.import_pkcs12_checked(bytes, password).await?.identity)
    }

    /// Imports the user's .p12/.pfx file with the chain certificates it
    /// holds, and checks that chain against the system roots and the
    /// trusted CAs. The warning is set when recipients may not be able to
    /// verify signatures made with it, and the identity is imported anyway.
    pub async fn import_pkcs12_checked(
        &self,
        bytes: Vec<u8>,
        password: Secret,
    ) -> Result<Pkcs12Import, SessionError> {
        let store = self.store.clone();
        let account = self.account.id.clone();
        unblock(move || {
            let identity = Identity::from_pkcs12(&bytes, password.expose())?;
            let (key, certificate) = identity.to_der()?;
            let info = IdentityInfo {
                fingerprint: identity.fingerprint(),
                addresses: identity.addresses(),
            };
            store.save_smime_identity(
                &account,
                &info.fingerprint,
                &info.addresses,
                &key,
                &certificate,
            )?;
            store.save_smime_chain(&info.fingerprint, &identity.chain_ders()?)?;

            let trust = trust_store(&store)?;
            let warning =
                smime_reader::check_identity_chain(&identity, &trust, smime_reader::unix_now());
            tracing::info!(
                account = %account,
                chain = identity.chain().len(),
                warning = warning.map(|warning| warning.code()),
                "S/MIME identity imported"
            );
            Ok(Pkcs12Import {
                identity: info,
                warning,
            })
        })
        .await
    }

    /// Trusts the CA certificates in a PEM or DER file for S/MIME. Returns
    /// how many were added.
    pub async fn import_ca(&self, bytes: Vec<u8>) -> Result<usize, SessionError> {
        let store = self.store.clone();
        unblock(move || {
            let mut parsed = TrustStore::empty();
            let count = parsed.add_certificates(&bytes)?;
            for der in parsed.certificate_ders() {
                store.save_trust_anchor(&der)?;
            }
            Ok(count)
        })
        .await
    }

    /// Lists the account's S/MIME identities.
    pub async fn smime_identities(&self) -> Result<Vec<IdentityInfo>, SessionError> {
        let store = self.store.clone();
        let account = self.account.id.clone();
        unblock(move || {
            let mut infos = Vec::new();
            for (key, certificate) in store.smime_identities(&account)? {
                let identity = Identity::from_der(&key, &certificate)?;
                infos.push(IdentityInfo {
                    fingerprint: identity.fingerprint(),
                    addresses: identity.addresses(),
                });
            }
            Ok(infos)
        })
        .await
    }

    /// Imports OpenPGP certificates or secret keys (armored or binary) into
    /// the encrypted store. Returns the fingerprints found.
    pub async fn import_openpgp(&self, bytes: Vec<u8>) -> Result<Vec<String>, SessionError> {
        let store = self.store.clone();
        let account = self.account.id.clone();
        unblock(move || {
            let mut keyring = crate::openpgp::Keyring::new();
            let fingerprints: Vec<String> =
                keyring.import(&bytes)?.iter().map(|f| f.to_hex()).collect();
            store.save_openpgp(&account, &fingerprints, &bytes)?;
            for fingerprint in &fingerprints {
                store.add_openpgp_state(&account, fingerprint, "imported", None)?;
            }
            tracing::info!(account = %account, keys = fingerprints.len(), "OpenPGP keys imported");
            Ok(fingerprints)
        })
        .await
    }

    /// Looks up the OpenPGP certificates that `address`'s domain publishes
    /// in its Web Key Directory. Uses the profile's `[network]` settings
    /// (with their environment overrides) and trusts the system roots, the
    /// account's CA file and the profile's HTTPS CA file. Nothing is
    /// imported: pass the certificates to [`Session::import_openpgp`].
    pub async fn wkd_lookup(&self, address: &str) -> Result<wkd::Outcome, SessionError> {
        let client = self.wkd_client().await?;
        Ok(client.lookup(address).await.map_err(Box::new)?)
    }

    /// Builds a WKD client from the profile's settings. Reads the trust
    /// anchor and CA files, so it runs on the blocking pool.
    async fn wkd_client(&self) -> Result<WkdClient, SessionError> {
        let (resolver, tls) = self.network_context().await?;
        Ok(WkdClient::new(resolver, tls))
    }

    /// Lists the fingerprints of every imported OpenPGP certificate.
    pub async fn openpgp_fingerprints(&self) -> Result<Vec<String>, SessionError> {
        let store = self.store.clone();
        let account = self.account.id.clone();
        unblock(move || {
            let keyring = openpgp_keyring(&store, &account)?;
            Ok(keyring
                .certificates()
                .iter()
                .map(|c| c.fingerprint().to_hex())
                .collect())
        })
        .await
    }

    /// Works out how a message is protected, decrypting and verifying it
    /// with the account's keys, identities and trusted CAs: OpenPGP for
    /// PGP/MIME and inline PGP, S/MIME otherwise. Blocks on crypto, so it
    /// runs on the blocking pool.
    ///
    /// The certificate of every good or chain-incomplete S/MIME signature
    /// is stored for each address it names, with the SMIMECapabilities of
    /// the signature, so that mail can be encrypted to the signer later.
    pub async fn inspect(&self, raw: Vec<u8>) -> Result<ProtectionReport, SessionError> {
        let store = self.store.clone();
        let me = self.account.clone();
        let account = self.account.id.clone();
        let unlocked = self.unlocked_now()?;
        let cache = self.smime_material.clone();
        let own_hosts = self.own_hosts();
        let portal_url = self.config.portal.url.clone();
        unblock(move || {
            if let Err(error) = keys::note_autocrypt(&store, &me, &raw) {
                tracing::warn!(account = %account, %error, "Autocrypt state not updated");
            }
            let report = if looks_like_openpgp(&raw) {
                let mut keyring = openpgp_keyring(&store, &account)?;
                keyring.add_unlocked(unlocked);
                crate::openpgp::inspect(&raw, &keyring)
            } else {
                let material = smime_material(&cache, &store, &account)?;
                let (report, signers) =
                    smime_reader::inspect_with_signers(&raw, &material.identities, &material.trust);
                harvest(&store, &signers)?;
                report
            };
            remember_arrival(
                &store,
                &account,
                &own_hosts,
                portal_url.as_deref(),
                &raw,
                &report,
            );
            Ok(report)
        })
        .await
    }

    /// Lists the host names of the account's own provider, whose Received
    /// fields are trusted for TLS (see [`arrival::own_hosts`]).
    pub fn own_hosts(&self) -> Vec<String> {
        arrival::own_hosts(&[&self.account.imap.host, &self.account.smtp.host])
    }

    /// Works out how `raw` arrived, from its protection report, keeping
    /// the mark of a reply that the portal sync added. Reads the store, so
    /// call it off the window's thread.
    pub fn arrival(&self, report: &ProtectionReport, raw: &[u8]) -> ArrivalSecurity {
        let mut security = arrival::arrival(
            report,
            raw,
            &self.own_hosts(),
            self.config.portal.url.as_deref(),
        );
        let stored = crate::message::parse_envelope(raw)
            .message_id
            .and_then(|id| self.store.arrival(&self.account.id, &id).ok().flatten());
        if let Some(stored) = stored {
            security.portal_reply |= stored.portal_reply;
        }
        security
    }

    /// Reads the stored arrival security of the message with `message_id`,
    /// recorded when the message was last inspected.
    pub async fn stored_arrival(
        &self,
        message_id: String,
    ) -> Result<Option<ArrivalSecurity>, SessionError> {
        let store = self.store.clone();
        let account = self.account.id.clone();
        unblock(move || Ok(store.arrival(&account, &message_id)?)).await
    }
}

/// Stores how `raw` arrived, keyed by its Message-ID. A message without a
/// Message-ID is not stored, and a failure only logs, because the inspection
/// itself succeeded.
fn remember_arrival(
    store: &Store,
    account: &str,
    own_hosts: &[String],
    portal_url: Option<&str>,
    raw: &[u8],
    report: &ProtectionReport,
) {
    let Some(message_id) = crate::message::parse_envelope(raw).message_id else {
        return;
    };
    let mut security = arrival::arrival(report, raw, own_hosts, portal_url);
    // The portal sync marks the replies it adds; reading one keeps the mark.
    if let Ok(Some(stored)) = store.arrival(account, &message_id) {
        security.portal_reply |= stored.portal_reply;
    }
    if let Err(error) = store.save_arrival(account, &message_id, &security) {
        tracing::warn!(account = %account, %error, "arrival security not stored");
    }
}

/// The result of importing a .p12/.pfx file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pkcs12Import {
    /// The identity as listed.
    pub identity: IdentityInfo,
    /// Set when the chain held does not reach a trusted root, is expired,
    /// or is not for e-mail, so recipients may not be able to verify.
    pub warning: Option<ChainWarning>,
}

/// A correspondent's S/MIME certificate as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The address it is held for, in lower case.
    pub address: String,
    /// SHA-256 fingerprint of the certificate.
    pub fingerprint: String,
    /// Its origin: imported from a file or harvested from signed mail.
    pub source: CertificateSource,
    /// The SMIMECapabilities last seen, as dotted OIDs; None when none
    /// were seen.
    pub capabilities: Option<Vec<String>>,
}

impl Session {
    /// Imports correspondents' certificates from a .cer/.der (DER), .pem
    /// (one or more certificates) or .p7b file (PKCS#7 certs-only, PEM or
    /// DER). Certificates that name an e-mail address and are not CAs are
    /// stored for each address they name. The CA certificates in the file
    /// are kept as their chain, but not trusted. Returns one entry per
    /// address stored.
    pub async fn import_smime_certificates(
        &self,
        bytes: Vec<u8>,
    ) -> Result<Vec<CertificateInfo>, SessionError> {
        let store = self.store.clone();
        unblock(move || {
            let certificates = smime_reader::read_certificates(&bytes)?;
            let (leaves, cas): (Vec<_>, Vec<_>) = certificates
                .into_iter()
                .partition(|certificate| smime_reader::is_end_entity(certificate));
            if leaves.is_empty() {
                return Err(SmimeError::NoEndEntityCertificate.into());
            }
            let signer = |certificate| SignerCertificate {
                certificate,
                chain: cas.clone(),
                capabilities: None,
            };
            let mut imported = Vec::new();
            for leaf in leaves {
                imported.extend(save_certificate(
                    &store,
                    &signer(leaf),
                    CertificateSource::Imported,
                )?);
            }
            tracing::info!(addresses = imported.len(), "S/MIME certificates imported");
            Ok(imported)
        })
        .await
    }

    /// Lists correspondents' certificates, most recently seen first.
    pub async fn smime_certificates(&self) -> Result<Vec<CertificateInfo>, SessionError> {
        let store = self.store.clone();
        unblock(move || {
            Ok(store
                .smime_certificates(None)?
                .into_iter()
                .map(|row| CertificateInfo {
                    address: row.address,
                    fingerprint: row.fingerprint,
                    source: row.source,
                    capabilities: row
                        .capabilities
                        .map(|text| Capabilities::from_text(&text).oids().to_vec()),
                })
                .collect())
        })
        .await
    }

    /// Returns the certificate to encrypt to `address`: the most recently
    /// seen one that passes [`smime_reader::recipient_problem`] now, with
    /// its capabilities. That check requires the S/MIME encryption purpose
    /// (emailProtection or no extended key usage), validity dates, and a
    /// chain to a trusted root through the chain certificates kept with
    /// it. When the issuer is unknown, a certificate that the user imported
    /// from a file is accepted, and one harvested from mail is not.
    ///
    /// Fails with [`SmimeError::NoUsableCertificate`], naming the problem
    /// of the most recently seen certificate, when none qualifies.
    pub async fn smime_recipient_certificate(
        &self,
        address: &str,
    ) -> Result<RecipientCertificate, SessionError> {
        let store = self.store.clone();
        let address = address.to_lowercase();
        unblock(move || {
            let trust = trust_store(&store)?;
            let now = smime_reader::unix_now();
            let mut first_problem = None;
            for row in store.smime_certificates(Some(&address))? {
                let certificate = X509::from_der(&row.certificate).map_err(invalid_certificate)?;
                let chain = store
                    .smime_chain(&row.fingerprint)?
                    .iter()
                    .map(|der| X509::from_der(der))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(invalid_certificate)?;
                let imported = row.source == CertificateSource::Imported;
                match smime_reader::recipient_problem(&certificate, &chain, &trust, now, imported) {
                    None => {
                        return Ok(RecipientCertificate {
                            certificate,
                            capabilities: row
                                .capabilities
                                .map(|text| Capabilities::from_text(&text)),
                        });
                    }
                    Some(problem) => {
                        first_problem.get_or_insert(problem);
                    }
                }
            }
            Err(SmimeError::NoUsableCertificate {
                address,
                problem: first_problem.unwrap_or(CertificateProblem::Missing),
            }
            .into())
        })
        .await
    }

    /// Returns the identity to sign with: the most recently imported one
    /// whose certificate names the account address and is valid now for
    /// S/MIME signing, with its chain certificates. An identity whose chain
    /// does not reach a trusted root is still returned, with the warning
    /// that recipients may not be able to verify it. Expired identities
    /// and ones not issued for e-mail are skipped.
    pub async fn smime_sign_identity(
        &self,
    ) -> Result<(Identity, Option<ChainWarning>), SessionError> {
        let store = self.store.clone();
        let account = self.account.id.clone();
        let address = self.account.address.clone();
        unblock(move || {
            let trust = trust_store(&store)?;
            let now = smime_reader::unix_now();
            let mut problem = CertificateProblem::Missing;
            let mut fallback = None;
            for identity in load_identities(&store, &account)?.into_iter().rev() {
                let names_account = identity
                    .addresses()
                    .iter()
                    .any(|name| name.eq_ignore_ascii_case(&address));
                if !names_account {
                    continue;
                }
                match smime_reader::check_identity_chain(&identity, &trust, now) {
                    None => return Ok((identity, None)),
                    Some(ChainWarning {
                        problem: found @ (CertificateProblem::Expired
                        | CertificateProblem::WrongPurpose),
                    }) => {
                        if problem == CertificateProblem::Missing {
                            problem = found;
                        }
                    }
                    Some(warning) => {
                        fallback.get_or_insert((identity, Some(warning)));
                    }
                }
            }
            fallback.ok_or_else(|| SmimeError::NoSigningIdentity { address, problem }.into())
        })
        .await
    }
}

/// Loads the account's S/MIME identities with their chain certificates,
/// oldest first.
fn load_identities(store: &Store, account: &str) -> Result<Vec<Identity>, SessionError> {
    let mut identities = Vec::new();
    for (key, certificate) in store.smime_identities(account)? {
        let identity = Identity::from_der(&key, &certificate)?;
        let chain = store.smime_chain(&identity.fingerprint())?;
        identities.push(identity.with_chain(&chain)?);
    }
    Ok(identities)
}

/// Builds the S/MIME trust store: the system roots and the user's CAs.
fn trust_store(store: &Store) -> Result<TrustStore, SessionError> {
    let mut trust = TrustStore::with_system_roots();
    for der in store.trust_anchors()? {
        trust.add_certificates(&der)?;
    }
    Ok(trust)
}

/// Stores the certificates of verified signatures for their addresses.
fn harvest(store: &Store, signers: &[SignerCertificate]) -> Result<(), SessionError> {
    let mut stored = 0;
    for signer in signers {
        stored += save_certificate(store, signer, CertificateSource::Harvested)?.len();
    }
    if stored > 0 {
        tracing::debug!(addresses = stored, "S/MIME signer certificates stored");
    }
    Ok(())
}

/// Stores one certificate, with its chain and capabilities, for every
/// address it names.
fn save_certificate(
    store: &Store,
    signer: &SignerCertificate,
    source: CertificateSource,
) -> Result<Vec<CertificateInfo>, SessionError> {
    let fingerprint = smime_reader::fingerprint(&signer.certificate);
    let der = signer.certificate.to_der().map_err(invalid_certificate)?;
    let chain = signer
        .chain
        .iter()
        .map(|certificate| certificate.to_der())
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid_certificate)?;
    // A signature that carries no other certificates leaves the kept chain
    // alone, so that a later message without intermediates loses nothing.
    if !chain.is_empty() {
        store.save_smime_chain(&fingerprint, &chain)?;
    }

    let capabilities = signer.capabilities.as_ref().map(Capabilities::to_text);
    let mut saved = Vec::new();
    for address in smime_reader::certificate_addresses(&signer.certificate) {
        let address = address.to_lowercase();
        store.save_smime_certificate(
            &address,
            &fingerprint,
            &der,
            capabilities.as_deref(),
            source,
        )?;
        saved.push(CertificateInfo {
            address,
            fingerprint: fingerprint.clone(),
            source,
            capabilities: signer
                .capabilities
                .as_ref()
                .map(|capabilities| capabilities.oids().to_vec()),
        });
    }
    Ok(saved)
}

fn invalid_certificate(errors: openssl::error::ErrorStack) -> SessionError {
    SmimeError::InvalidCertificate {
        reason: errors.to_string(),
    }
    .into()
}

/// One part of a message whose parts are not equally protected, read on
/// its own (see [`crate::protection::segments`]).
#[derive(Debug)]
pub struct ShownSegment {
    /// The part's protection; `None` for an unprotected part.
    pub report: Option<ProtectionReport>,
    /// The content to show: decrypted or verified, or the part itself.
    pub parsed: crate::message::ParsedMessage,
}

impl Session {
    /// Reads each direct part of a message on its own, when unprotected
    /// text sits next to a protected part, so the reader can show them
    /// apart. Returns nothing for a uniformly protected message.
    pub async fn inspect_segments(&self, raw: Vec<u8>) -> Result<Vec<ShownSegment>, SessionError> {
        let segments = unblock(move || Ok(crate::protection::segments(&raw))).await?;
        let mut shown = Vec::with_capacity(segments.len());
        for segment in segments {
            if !segment.protected {
                let parsed = unblock(move || Ok(crate::message::parse(&segment.message))).await?;
                shown.push(ShownSegment {
                    report: None,
                    parsed,
                });
                continue;
            }
            let report = self.inspect(segment.message.clone()).await?;
            let inner = report.inner_mime.clone();
            let parsed = unblock(move || {
                let outer = crate::message::parse(&segment.message);
                Ok(match inner {
                    Some(inner) => crate::message::parse_inner(&outer, &inner),
                    None => outer,
                })
            })
            .await?;
            shown.push(ShownSegment {
                report: Some(report),
                parsed,
            });
        }
        Ok(shown)
    }
}

/// The result of "Test connection", per server.
#[derive(Debug)]
pub struct ConnectionCheck {
    /// IMAP outcome.
    pub imap: Result<(), SessionError>,
    /// SMTP outcome.
    pub smtp: Result<(), SessionError>,
}

/// Tests IMAP and SMTP with the given settings without saving anything.
pub async fn test_connection(account: &Account, password: &Secret) -> ConnectionCheck {
    let ca_file: Option<PathBuf> = account.ca_file.clone();
    let tls = match unblock(move || Ok(TlsContext::load(ca_file.as_deref())?)).await {
        Ok(tls) => tls,
        Err(e) => {
            let text = e.to_string();
            return ConnectionCheck {
                imap: Err(e),
                smtp: Err(SessionError::Task(text)),
            };
        }
    };
    let imap = async {
        let connection = imap::connect(account, password, &tls).await?;
        connection.logout().await;
        Ok(())
    };
    let smtp = async {
        smtp::probe(account, &tls).await?;
        smtp::check_login(account, password, &tls).await?;
        Ok(())
    };
    let (imap, smtp) = tokio::join!(imap, smtp);
    ConnectionCheck { imap, smtp }
}

/// Validates an account and saves it: the password to the keyring, the
/// rest to the configuration file. Blocks on both; runs on the blocking
/// pool.
pub async fn save_account(
    profile: Profile,
    account: Account,
    password: Secret,
) -> Result<Config, SessionError> {
    replace_account(profile, None, account, password).await
}

/// Saves an edited account. When its id changed (the address was edited),
/// the old entry and its keyring password are removed, so the profile does
/// not keep a stale copy.
pub async fn replace_account(
    profile: Profile,
    previous_id: Option<String>,
    account: Account,
    password: Secret,
) -> Result<Config, SessionError> {
    unblock(move || {
        account.validate()?;
        let mut config = profile.load()?;
        KeyringEntry::password(&config.profile_id, &account.id).store(&password)?;
        if let Some(previous) = previous_id.filter(|previous| *previous != account.id) {
            config.accounts.retain(|a| a.id != previous);
            KeyringEntry::password(&config.profile_id, &previous).delete()?;
        }
        config.upsert(account);
        profile.save(&config)?;
        Ok(config)
    })
    .await
}
