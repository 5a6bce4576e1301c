//! The portal's endpoints over real HTTP on loopback, each test run twice:
//! against a SQLite file in a temporary directory (`sqlite::*`) and against
//! a fresh database in a throwaway PostgreSQL cluster (`postgres::*`, see
//! support/postgres.rs). The test plays both the desktop (Ed25519
//! signatures, PBKDF2 and HKDF key derivation, AES-256-GCM sealing) and the
//! recipient's browser (the same derivation, then opening the seals), so
//! the derivation in docs/portal-scheme.md is exercised for real.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wardmail_portal::app::{App, MAX_BODY_BYTES, MAX_SEALED_BYTES};
use wardmail_portal::config::{Config, Database};
use wardmail_portal::server::{self, Bound};
use wardmail_portal::store::{AnyStore, PgStore, SqliteStore, Store as _};

#[path = "support/postgres.rs"]
mod cluster;

const PUBLIC_URL: &str = "https://portal.example.org";
const CONTACT: &str = "Riverside Clinic, 0123 456 789";
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// Small, so the tests run fast; the real default is 600000.
const ITERATIONS: u32 = 1000;

// ---------------------------------------------------------------------
// Log capture: every test's logs go to one buffer, so a test can check
// that its own secrets never reached the log.

#[derive(Clone)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer(Arc::new(Mutex::new(Vec::new())));
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_env_filter(server::log_filter(tracing_subscriber::EnvFilter::new(
                "trace",
            )))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        buffer
    })
}

fn captured_logs() -> String {
    String::from_utf8_lossy(&logs().0.lock().unwrap()).into_owned()
}

// ---------------------------------------------------------------------
// The server under test.

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Portal {
    address: SocketAddr,
    database: Database,
    store: AnyStore,
    _directory: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Portal {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Answer {
    status: u16,
    headers: hyper::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }
}

/// Writes the config file for `database` and loads it.
fn portal_config(directory: &Path, database: &str, extra_config: &str) -> Config {
    let config_path = directory.join("portal.toml");
    let text = format!(
        "listen = \"127.0.0.1:0\"\npublic_url = \"{PUBLIC_URL}\"\ndatabase = \"{database}\"\ncontact = \"{CONTACT}\"\n{extra_config}"
    );
    std::fs::write(&config_path, text).unwrap();
    Config::load(&config_path).unwrap()
}

/// Opens the store the config names, as the server's start-up does.
async fn open_store(config: &Config) -> AnyStore {
    match &config.database {
        Database::Sqlite(path) => SqliteStore::open(path).unwrap().into(),
        Database::Postgres { url, ca } => {
            PgStore::connect(url, ca.as_deref()).await.unwrap().into()
        }
    }
}

async fn start_portal(backend: Backend, extra_config: &str) -> Portal {
    logs();
    let directory = tempfile::tempdir().unwrap();
    let database = match backend {
        Backend::Sqlite => "portal.sqlite3".to_owned(),
        Backend::Postgres => cluster::Cluster::get().new_database().await,
    };
    let config = portal_config(directory.path(), &database, extra_config);
    let store = open_store(&config).await;
    start_with_store(config, store, directory).await
}

/// Serves `store` with `config` until the returned [`Portal`] is dropped.
async fn start_with_store(config: Config, store: AnyStore, directory: tempfile::TempDir) -> Portal {
    let database = config.database.clone();
    let bound = Bound::bind(&config).await.unwrap();
    let address = bound.local_addr().unwrap();
    let app = Arc::new(App {
        store: store.clone(),
        config,
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(bound.serve(app, async move {
        let _ = stopped.await;
    }));
    Portal {
        address,
        database,
        store,
        _directory: directory,
        stop: Some(stop),
    }
}

impl Portal {
    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Answer {
        let stream = tokio::net::TcpStream::connect(self.address).await.unwrap();
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(connection);
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "portal.example.org");
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder.body(Full::new(Bytes::from(body))).unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.request("GET", path, &[], Vec::new()).await
    }

    async fn post_json(&self, path: &str, body: &Value) -> Answer {
        let headers = [("content-type".to_owned(), "application/json".to_owned())];
        self.request("POST", path, &headers, body.to_string().into_bytes())
            .await
    }

    async fn signed(
        &self,
        device: &Device,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Answer {
        let body = body
            .map(|body| body.to_string().into_bytes())
            .unwrap_or_default();
        let headers = device.sign(method, path, &body, unix_now(), &fresh_nonce());
        self.request(method, path, &headers, body).await
    }

    async fn enrol(&self, label: &str) -> Device {
        let (token, _) = server::create_enrol_token(&self.store, label)
            .await
            .unwrap();
        let key = Ed25519KeyPair::from_pkcs8(
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .unwrap()
                .as_ref(),
        )
        .unwrap();
        let answer = self
            .post_json(
                "/api/v1/devices",
                &json!({"token": token, "public_key": b64(key.public_key().as_ref()), "label": label}),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.text());
        Device {
            id: answer.json()["device_id"].as_str().unwrap().to_owned(),
            key,
        }
    }

    async fn events(&self, device: &Device) -> Vec<(String, String)> {
        let answer = self
            .signed(device, "GET", "/api/v1/events?after=0", None)
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|event| {
                (
                    event["id"].as_str().unwrap().to_owned(),
                    event["type"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    async fn attempts_left(&self, id: &str) -> u64 {
        let answer = self.get(&format!("/m/{id}/meta")).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()["attempts_left"].as_u64().unwrap()
    }

    /// Reads a message's state, envelope and wrapped key from the database
    /// directly.
    async fn stored_message(&self, id: &str) -> (String, Option<Vec<u8>>, Option<Vec<u8>>) {
        let query = "SELECT state, envelope, wrapped_key FROM messages WHERE id = ";
        match &self.database {
            Database::Sqlite(path) => rusqlite::Connection::open(path)
                .unwrap()
                .query_row(&format!("{query}?1"), [id], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .unwrap(),
            Database::Postgres { url, .. } => {
                let (client, connection) = url.connect(tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                let row = client
                    .query_one(&format!("{query}$1"), &[&id])
                    .await
                    .unwrap();
                (row.get(0), row.get(1), row.get(2))
            }
        }
    }
}

// ---------------------------------------------------------------------
// The desktop: its signing key and the message it seals.

struct Device {
    id: String,
    key: Ed25519KeyPair,
}

impl Device {
    /// Builds the RFC 9421 headers for a request, independently of the
    /// server's code.
    fn sign(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        created: u64,
        nonce: &str,
    ) -> Vec<(String, String)> {
        self.sign_for(PUBLIC_URL, method, path, body, created, nonce)
    }

    fn sign_for(
        &self,
        public_url: &str,
        method: &str,
        path: &str,
        body: &[u8],
        created: u64,
        nonce: &str,
    ) -> Vec<(String, String)> {
        let digest = format!("sha-256=:{}:", STANDARD.encode(sha256(body)));
        let params = format!(
            "(\"@method\" \"@target-uri\" \"content-digest\");created={created};keyid=\"{}\";alg=\"ed25519\";nonce=\"{nonce}\"",
            self.id
        );
        let base = format!(
            "\"@method\": {method}\n\"@target-uri\": {public_url}{path}\n\"content-digest\": {digest}\n\"@signature-params\": {params}"
        );
        let signature = STANDARD.encode(self.key.sign(base.as_bytes()).as_ref());
        vec![
            ("content-type".into(), "application/json".into()),
            ("content-digest".into(), digest),
            ("signature-input".into(), format!("sig1={params}")),
            ("signature".into(), format!("sig1=:{signature}:")),
        ]
    }
}

/// A message as the desktop makes it, with the secrets the recipient has.
struct Sealed {
    id: String,
    link_secret: [u8; 32],
    code: String,
    plaintext: Vec<u8>,
    wrapped_key: Vec<u8>,
    envelope: Vec<u8>,
}

impl Sealed {
    fn new(code: &str) -> Self {
        let id: [u8; 16] = random();
        let id = b64(&id);
        let link_secret: [u8; 32] = random();
        let content_key: [u8; 32] = random();
        let plaintext = json!({
            "v": 1,
            "from": "Nurse Example <nurse@clinic.example.org>",
            "to": "patient@mail.example.org",
            "subject": "Your results",
            "date": "2026-12-04T10:00:00Z",
            "text": format!("Synthetic test body {}", b64(&random::<12>())),
            "attachments": [],
            "reply": {"public_key": b64(&random::<32>()), "proof": b64(&random::<32>())},
            "contact": CONTACT,
        })
        .to_string()
        .into_bytes();

        let (wrap_key, _) = derive(&id, &link_secret, code);
        let wrapped_key = seal(&wrap_key, b"wardmail-portal-v1 key", &id, &content_key);
        let envelope = seal(&content_key, b"wardmail-portal-v1 message", &id, &plaintext);
        Self {
            id,
            link_secret,
            code: code.to_owned(),
            plaintext,
            wrapped_key,
            envelope,
        }
    }

    fn verifier(&self) -> [u8; 32] {
        derive(&self.id, &self.link_secret, &self.code).1
    }

    fn verifier_for(&self, code: &str) -> String {
        b64(&derive(&self.id, &self.link_secret, code).1)
    }

    fn upload_body(&self, max_attempts: u32) -> Value {
        json!({
            "id": self.id,
            "factor": "code",
            "iterations": ITERATIONS,
            "wrapped_key": b64(&self.wrapped_key),
            "verifier_hash": b64(&sha256(&self.verifier())),
            "envelope": b64(&self.envelope),
            "expires_at": unix_now() + 3600,
            "max_attempts": max_attempts,
            "contact": CONTACT,
        })
    }

    /// Opens the unlock response as the browser does: derive `wrap_key`
    /// from the code and link secret, open the content key, then the
    /// envelope.
    fn open(&self, wrapped_key: &[u8], envelope: &[u8]) -> Vec<u8> {
        let (wrap_key, _) = derive(&self.id, &self.link_secret, &self.code);
        let content_key = open(&wrap_key, b"wardmail-portal-v1 key", &self.id, wrapped_key);
        let content_key: [u8; 32] = content_key.try_into().unwrap();
        open(
            &content_key,
            b"wardmail-portal-v1 message",
            &self.id,
            envelope,
        )
    }
}

async fn upload(portal: &Portal, device: &Device, message: &Sealed, max_attempts: u32) {
    let body = message.upload_body(max_attempts);
    let answer = portal
        .signed(device, "POST", "/api/v1/messages", Some(&body))
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text());
}

// ---------------------------------------------------------------------
// The scheme's primitives, from ring.

struct Length(usize);

impl ring::hkdf::KeyType for Length {
    fn len(&self) -> usize {
        self.0
    }
}

fn hkdf(ikm: &[u8], salt: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt)
        .extract(ikm)
        .expand(&[info], Length(32))
        .unwrap()
        .fill(&mut out)
        .unwrap();
    out
}

/// Returns `(wrap_key, verifier)` for a message id, link secret and code.
fn derive(id: &str, link_secret: &[u8; 32], code: &str) -> ([u8; 32], [u8; 32]) {
    let id_bytes = URL_SAFE_NO_PAD.decode(id).unwrap();
    let normalised: String = code.chars().filter(char::is_ascii_digit).collect();
    let mut salt = b"wardmail-portal-v1".to_vec();
    salt.extend_from_slice(&id_bytes);
    salt.extend_from_slice(link_secret);
    let mut m = [0; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(ITERATIONS).unwrap(),
        &salt,
        normalised.as_bytes(),
        &mut m,
    );
    let mut ikm = link_secret.to_vec();
    ikm.extend_from_slice(&m);
    (
        hkdf(&ikm, &id_bytes, b"wardmail-portal-v1 wrap"),
        hkdf(&ikm, &id_bytes, b"wardmail-portal-v1 verify"),
    )
}

fn aad(label: &[u8], id: &str) -> Vec<u8> {
    let mut aad = label.to_vec();
    aad.extend_from_slice(&URL_SAFE_NO_PAD.decode(id).unwrap());
    aad
}

fn seal(key: &[u8; 32], label: &[u8], id: &str, plaintext: &[u8]) -> Vec<u8> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap());
    let nonce: [u8; 12] = random();
    let mut buffer = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad(label, id)),
        &mut buffer,
    )
    .unwrap();
    [nonce.as_slice(), &buffer].concat()
}

fn open(key: &[u8; 32], label: &[u8], id: &str, sealed: &[u8]) -> Vec<u8> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap());
    let (nonce, ciphertext) = sealed.split_at(12);
    let mut buffer = ciphertext.to_vec();
    let plaintext = key
        .open_in_place(
            Nonce::try_assume_unique_for_key(nonce).unwrap(),
            Aad::from(aad(label, id)),
            &mut buffer,
        )
        .unwrap();
    plaintext.to_vec()
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    SystemRandom::new().fill(&mut bytes).unwrap();
    bytes
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn fresh_nonce() -> String {
    b64(&random::<16>())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Checks whether `needle` occurs anywhere in the database file or its WAL.
fn database_contains(database: &Path, needle: &[u8]) -> bool {
    let mut wal = database.as_os_str().to_owned();
    wal.push("-wal");
    [database.to_owned(), PathBuf::from(wal)]
        .iter()
        .filter_map(|path| std::fs::read(path).ok())
        .any(|bytes| bytes.windows(needle.len()).any(|window| window == needle))
}

// ---------------------------------------------------------------------
// Enrolment.

async fn enrol_token_single_use(backend: Backend) {
    let portal = start_portal(backend, "").await;
    let (token, expires_at) = server::create_enrol_token(&portal.store, "front desk")
        .await
        .unwrap();
    assert!(expires_at >= i64::try_from(unix_now()).unwrap() + 24 * 3600 - 5);
    let key = b64(&[9; 32]);

    let short_key = portal
        .post_json(
            "/api/v1/devices",
            &json!({"token": token, "public_key": b64(&[9; 31])}),
        )
        .await;
    assert_eq!(short_key.status, 400, "{}", short_key.text());
    let not_base64 = portal
        .post_json(
            "/api/v1/devices",
            &json!({"token": token, "public_key": "not base64!"}),
        )
        .await;
    assert_eq!(not_base64.status, 400);

    // A rejected key leaves the token usable; the first use spends it.
    let first = portal
        .post_json(
            "/api/v1/devices",
            &json!({"token": token, "public_key": key}),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text());
    assert_eq!(first.json()["device_id"].as_str().unwrap().len(), 22);
    let second = portal
        .post_json(
            "/api/v1/devices",
            &json!({"token": token, "public_key": key}),
        )
        .await;
    assert_eq!(second.status, 401, "{}", second.text());
    assert!(second.text().contains("enrol-token"), "{}", second.text());
}

async fn enrol_token_expired(backend: Backend) {
    let portal = start_portal(backend, "").await;
    let token = "expired-token-for-the-test";
    let hash: [u8; 32] = sha256(token.as_bytes()).try_into().unwrap();
    let past = i64::try_from(unix_now()).unwrap() - 1;
    portal
        .store
        .add_enrol_token(hash, "old".into(), past)
        .await
        .unwrap();
    let answer = portal
        .post_json(
            "/api/v1/devices",
            &json!({"token": token, "public_key": b64(&[9; 32])}),
        )
        .await;
    assert_eq!(answer.status, 401, "{}", answer.text());

    let unknown = portal
        .post_json(
            "/api/v1/devices",
            &json!({"token": "never-issued", "public_key": b64(&[9; 32])}),
        )
        .await;
    assert_eq!(unknown.status, 401);
}

// ---------------------------------------------------------------------
// Signatures.

async fn signed_requests_rejected(backend: Backend) {
    let portal = start_portal(backend, "").await;
    let device = portal.enrol("desk 1").await;
    let path = "/api/v1/events?after=0";
    let now = unix_now();

    let unsigned = portal.get(path).await;
    assert_eq!(unsigned.status, 401, "{}", unsigned.text());
    assert!(
        unsigned.text().contains("Signature-Input"),
        "{}",
        unsigned.text()
    );

    let impostor = Device {
        id: device.id.clone(),
        key: Ed25519KeyPair::from_pkcs8(
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .unwrap()
                .as_ref(),
        )
        .unwrap(),
    };
    let wrong_key = impostor.sign("GET", path, b"", now, &fresh_nonce());
    let answer = portal.request("GET", path, &wrong_key, Vec::new()).await;
    assert_eq!(answer.status, 401, "wrongly signed: {}", answer.text());

    let stale = device.sign("GET", path, b"", now - 400, &fresh_nonce());
    let answer = portal.request("GET", path, &stale, Vec::new()).await;
    assert_eq!(answer.status, 401, "stale: {}", answer.text());
    let future = device.sign("GET", path, b"", now + 400, &fresh_nonce());
    let answer = portal.request("GET", path, &future, Vec::new()).await;
    assert_eq!(answer.status, 401, "from the future: {}", answer.text());

    let other_host = device.sign_for(
        "https://evil.example.org",
        "GET",
        path,
        b"",
        now,
        &fresh_nonce(),
    );
    let answer = portal.request("GET", path, &other_host, Vec::new()).await;
    assert_eq!(answer.status, 401, "other target URI: {}", answer.text());

    let other_path = device.sign("GET", "/api/v1/replies?after=0", b"", now, &fresh_nonce());
    let answer = portal.request("GET", path, &other_path, Vec::new()).await;
    assert_eq!(answer.status, 401, "other path: {}", answer.text());

    let body = json!({"expires_at": now + 60}).to_string().into_bytes();
    let extend = "/api/v1/messages/AAAAAAAAAAAAAAAAAAAAAA/extend";
    let signed_other_body = device.sign("POST", extend, b"{}", now, &fresh_nonce());
    let answer = portal
        .request("POST", extend, &signed_other_body, body.clone())
        .await;
    assert_eq!(answer.status, 401, "wrong digest: {}", answer.text());
    assert!(
        answer.text().contains("Content-Digest"),
        "{}",
        answer.text()
    );

    let unknown_device = Device {
        id: b64(&[1; 16]),
        key: impostor.key,
    };
    let headers = unknown_device.sign("GET", path, b"", now, &fresh_nonce());
    let answer = portal.request("GET", path, &headers, Vec::new()).await;
    assert_eq!(answer.status, 401, "unknown device: {}", answer.text());

    let headers = device.sign("GET", path, b"", now, &fresh_nonce());
    let first = portal.request("GET", path, &headers, Vec::new()).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let replayed = portal.request("GET", path, &headers, Vec::new()).await;
    assert_eq!(replayed.status, 401, "replayed: {}", replayed.text());
    assert!(replayed.text().contains("nonce"), "{}", replayed.text());
}

async fn other_device_message_refused(backend: Backend) {
    let portal = start_portal(backend, "").await;
    let owner = portal.enrol("desk 1").await;
    let other = portal.enrol("desk 2").await;
    let message = Sealed::new("1234 5678");
    upload(&portal, &owner, &message, 5).await;

    let id = &message.id;
    let later = json!({"expires_at": unix_now() + 7200});
    let factor = json!({
        "factor": "code",
        "iterations": ITERATIONS,
        "wrapped_key": b64(&message.wrapped_key),
        "verifier_hash": b64(&[0; 32]),
    });
    let requests = [
        ("POST", format!("/api/v1/messages/{id}/revoke"), None),
        (
            "POST",
            format!("/api/v1/messages/{id}/extend"),
            Some(&later),
        ),
        (
            "PUT",
            format!("/api/v1/messages/{id}/factor"),
            Some(&factor),
        ),
    ];
    for (method, path, body) in requests {
        let answer = portal.signed(&other, method, &path, body).await;
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.text());
    }
    let _ = portal.attempts_left(id).await;
    assert!(portal.events(&other).await.is_empty());
    assert_eq!(
        portal.events(&owner).await,
        [(id.clone(), "opened".to_owned())]
    );

    // The other device cannot take over the id either.
    let again = portal
        .signed(
            &other,
            "POST",
            "/api/v1/messages",
            Some(&message.upload_body(5)),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.text());
}

// ---------------------------------------------------------------------
// The recipient's side.

async fn upload_unlock_roundtrip(backend: Backend) {
    let portal = start_portal(backend, "").await;
    let device = portal.enrol("desk 1").await;
    let message = Sealed::new("1234 5678");
    upload(&portal, &device, &message, 5).await;

    let meta = portal.get(&format!("/m/{}/meta", message.id)).await;
    assert_eq!(meta.status, 200, "{}", meta.text());
    assert_eq!(
        meta.json(),
        json!({"factor": "code", "iterations": ITERATIONS, "contact": CONTACT, "attempts_left": 5})
    );

    // The patient types the code with other grouping; normalising keeps
    // only the digits.
    let verifier = message.verifier_for("1234-5678");
    let answer = portal
        .post_json(
            &format!("/m/{}/unlock", message.id),
            &json!({"verifier": verifier}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    let wrapped_key = URL_SAFE_NO_PAD
        .decode(body["wrapped_key"].as_str().unwrap())
        .unwrap();
    let envelope = URL_SAFE_NO_PAD
        .decode(body["envelope"].as_str().unwrap())
        .unwrap();
    assert_eq!(wrapped_key, message.wrapped_key);
    assert_eq!(envelope, message.envelope);
    assert_eq!(message.open(&wrapped_key, &envelope), message.plaintext);

    let events: Vec<String> = portal
        .events(&device)
        .await
        .into_iter()
        .map(|(_, kind)| kind)
        .collect();
    assert_eq!(events, ["opened", "unlocked"]);
}

async fn page_get_keeps_attempts(backend: Backend) {
    let portal = start_portal(backend, "").await;
    let device = portal.enrol("desk 1").await;
    let message = Sealed::new("11112222");
    upload(&portal, &device, &message, 5).await;

    for _ in 0..7 {
        let page = portal.get(&format!("/m/{}", message.id)).await;
        assert_eq!(page.status, 200);
        assert!(
            page.text().contains("id=\"unlock-form\""),
            "{}",
            page.text()
        );
    }
    assert_eq!(portal.attempts_left(&message.id).await, 5);
    assert_eq!(portal.attempts_left(&message.id).await, 5);
    // Only meta records `opened`, and at most once a minute.
    assert_eq!(portal.events(&device).await.len(), 1);

    let unknown = portal.get(&format!("/m/{}", b64(&[3; 16]))).await;
    assert_eq!(unknown.status, 404);
    let garbage = portal.get("/m/..%2F..%2Fetc").await;
    assert_eq!(garbage.status, 404);
}

async fn wrong_codes_lock_then_reissue(backend: Backend) {
    let portal = start_portal(backend, "").await;
    let device = portal.enrol("desk 1").await;
    let message = Sealed::new("12345678");
    upload(&portal, &device, &message, 3).await;
    let unlock = format!("/m/{}/unlock", message.id);

    for expected_left in [2, 1, 0] {
        let answer = portal
            .post_json(
                &unlock,
                &json!({"verifier": message.verifier_for("87654321")}),
            )
            .await;
        assert_eq!(answer.status, 403, "{}", answer.text());
        assert_eq!(answer.json()["attempts_left"], expected_left);
    }
    let right = json!({"verifier": b64(&message.verifier())});
    let locked = portal.post_json(&unlock, &right).await;
    assert_eq!(locked.status, 423, "{}", locked.text());
    let meta = portal.get(&format!("/m/{}/meta", message.id)).await;
    assert_eq!(meta.status, 423);
    assert_eq!(meta.json()["contact"], CONTACT);

    let kinds: Vec<String> = portal
        .events(&device)
        .await
        .into_iter()
        .map(|(_, kind)| kind)
        .collect();
    assert_eq!(kinds, ["wrong-code", "wrong-code", "wrong-code", "locked"]);

    // The desktop re-issues a new code: the message unlocks, and only the
    // new code opens it.
    let (wrap_key, verifier) = derive(&message.id, &message.link_secret, "2468 2468");
    let content_key = message.open_content_key();
    let factor = json!({
        "factor": "code",
        "iterations": ITERATIONS,
        "wrapped_key": b64(&seal(&wrap_key, b"wardmail-portal-v1 key", &message.id, &content_key)),
        "verifier_hash": b64(&sha256(&verifier)),
    });
    let path = format!("/api/v1/messages/{}/factor", message.id);
    let answer = portal.signed(&device, "PUT", &path, Some(&factor)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(portal.attempts_left(&message.id).await, 3);

    let old = portal.post_json(&unlock, &right).await;
    assert_eq!(old.status, 403, "{}", old.text());
    let new = portal
        .post_json(&unlock, &json!({"verifier": b64(&verifier)}))
        .await;
    assert_eq!(new.status, 200, "{}", new.text());
    let body = new.json();
    let wrapped_key = URL_SAFE_NO_PAD
        .decode(body["wrapped_key"].as_str().unwrap())
        .unwrap();
    let opened = open(
        &wrap_key,
        b"wardmail-portal-v1 key",
        &message.id,
        &wrapped_key,
    );
    assert_eq!(opened, content_key);
    // A correct code resets the count of wrong ones.
    assert_eq!(portal.attempts_left(&message.id).await, 3);
}

impl Sealed {
    /// Recovers the content key the way the browser does.
    fn open_content_key(&self) -> Vec<u8> {
        let (wrap_key, _) = derive(&self.id, &self.link_secret, &self.code);
        open(
            &wrap_key,
            b"wardmail-portal-v1 key",
            &self.id,
            &self.wrapped_key,
        )
    }
}

async fn reply_stored_and_listed(backend: Backend) {
    let portal = start_portal(backend, "").await;
    let device = portal.enrol("desk 1").await;
    let message = Sealed::new("12345678");
    upload(&portal, &device, &message, 5).await;
    let path = format!("/m/{}/reply", message.id);
    let enc: [u8; 32] = random();
    let ciphertext = random::<200>().to_vec();

    let wrong = portal
        .post_json(
            &path,
            &json!({"verifier": message.verifier_for("0"), "enc": b64(&enc), "ciphertext": b64(&ciphertext)}),
        )
        .await;
    assert_eq!(wrong.status, 403, "{}", wrong.text());
    assert_eq!(wrong.json()["attempts_left"], 4);

    let stored = portal
        .post_json(
            &path,
            &json!({"verifier": b64(&message.verifier()), "enc": b64(&enc), "ciphertext": b64(&ciphertext)}),
        )
        .await;
    assert_eq!(stored.status, 201, "{}", stored.text());

    let replies = portal
        .signed(&device, "GET", "/api/v1/replies?after=0", None)
        .await;
    assert_eq!(replies.status, 200, "{}", replies.text());
    let replies = replies.json();
    let replies = replies.as_array().unwrap();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["id"], message.id.as_str());
    assert_eq!(replies[0]["enc"], b64(&enc).as_str());
    assert_eq!(replies[0]["ciphertext"], b64(&ciphertext).as_str());
    let seq = replies[0]["seq"].as_i64().unwrap();

    let after = portal
        .signed(
            &device,
            "GET",
            &format!("/api/v1/replies?after={seq}"),
            None,
        )
        .await;
    assert_eq!(after.json(), json!([]));
    let kinds: Vec<String> = portal
        .events(&device)
        .await
        .into_iter()
        .map(|(_, kind)| kind)
        .collect();
    assert_eq!(kinds, ["wrong-code", "replied"]);
}

async fn revoke_gone_and_erased(backend: Backend) {
    let portal = start_portal(backend, "").await;
    let device = portal.enrol("desk 1").await;
    // Large enough to need overflow pages in SQLite (and TOAST in
    // PostgreSQL).
    let mut message = Sealed::new("12345678");
    let content_key = message.open_content_key();
    message.plaintext = random::<20_000>().to_vec();
    let content_key: [u8; 32] = content_key.try_into().unwrap();
    message.envelope = seal(
        &content_key,
        b"wardmail-portal-v1 message",
        &message.id,
        &message.plaintext,
    );
    upload(&portal, &device, &message, 5).await;
    let needle = &message.envelope[5_000..5_064];
    let (_, stored, _) = portal.stored_message(&message.id).await;
    assert_eq!(stored.as_ref(), Some(&message.envelope));
    if let Database::Sqlite(path) = &portal.database {
        assert!(
            database_contains(path, needle),
            "the envelope was not stored"
        );
    }

    let path = format!("/api/v1/messages/{}/revoke", message.id);
    let answer = portal.signed(&device, "POST", &path, None).await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    let meta = portal.get(&format!("/m/{}/meta", message.id)).await;
    assert_eq!(meta.status, 410);
    assert_eq!(meta.json()["contact"], CONTACT);
    let unlock = portal
        .post_json(
            &format!("/m/{}/unlock", message.id),
            &json!({"verifier": b64(&message.verifier())}),
        )
        .await;
    assert_eq!(unlock.status, 410);
    let page = portal.get(&format!("/m/{}", message.id)).await;
    assert_eq!(page.status, 410);
    assert!(page.text().contains(CONTACT), "{}", page.text());
    assert!(page.header("content-type").starts_with("text/html"));

    let (state, envelope, wrapped_key) = portal.stored_message(&message.id).await;
    assert_eq!(state, "revoked");
    assert_eq!(envelope, None);
    assert_eq!(wrapped_key, None);
    // PostgreSQL keeps the old row version until VACUUM (see
    // store/postgres.rs), so only SQLite's file is checked byte for byte.
    if let Database::Sqlite(path) = &portal.database {
        assert!(
            !database_contains(path, needle),
            "the envelope's bytes are still in the database file"
        );
    }

    let kinds: Vec<String> = portal
        .events(&device)
        .await
        .into_iter()
        .map(|(_, kind)| kind)
        .collect();
    assert_eq!(kinds, ["revoked"]);
}

async fn sweeper_expires_message(backend: Backend) {
    let portal = start_portal(backend, "sweep_interval_seconds = 1\n").await;
    let device = portal.enrol("desk 1").await;
    let message = Sealed::new("12345678");
    let mut body = message.upload_body(5);
    body["expires_at"] = json!(unix_now() + 2);
    let answer = portal
        .signed(&device, "POST", "/api/v1/messages", Some(&body))
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text());

    // Nothing visits the message, so only the sweeper can expire it.
    let mut state = String::new();
    let mut envelope = None;
    for _ in 0..50 {
        (state, envelope, _) = portal.stored_message(&message.id).await;
        if state == "expired" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(state, "expired");
    assert_eq!(envelope, None);

    let kinds: Vec<String> = portal
        .events(&device)
        .await
        .into_iter()
        .map(|(_, kind)| kind)
        .collect();
    assert_eq!(kinds, ["expired"]);
    let meta = portal.get(&format!("/m/{}/meta", message.id)).await;
    assert_eq!(meta.status, 410);
}

// ---------------------------------------------------------------------
// Headers, limits and logs.

async fn security_headers_present(backend: Backend) {
    let portal = start_portal(backend, "").await;
    let device = portal.enrol("desk 1").await;
    let message = Sealed::new("12345678");
    upload(&portal, &device, &message, 5).await;

    let cases = [
        (format!("/m/{}", message.id), 200, "text/html"),
        (format!("/m/{}", b64(&[4; 16])), 404, "text/html"),
        (format!("/m/{}/meta", message.id), 200, "application/json"),
        ("/assets/app.css".to_owned(), 200, "text/css"),
        ("/assets/app.js".to_owned(), 200, "text/javascript"),
        ("/assets/scheme.js".to_owned(), 200, "text/javascript"),
    ];
    for (path, status, content_type) in cases {
        let answer = portal.get(&path).await;
        assert_eq!(answer.status, status, "{path}");
        assert!(
            answer.header("content-type").starts_with(content_type),
            "{path}"
        );
        assert_eq!(answer.header("content-security-policy"), CSP, "{path}");
        assert_eq!(answer.header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(answer.header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(answer.header("cache-control"), "no-store", "{path}");
    }
    let missing = portal.get("/assets/other.js").await;
    assert_eq!(missing.status, 404);
}

async fn oversized_bodies_rejected(backend: Backend) {
    let portal = start_portal(backend, "").await;
    let device = portal.enrol("desk 1").await;

    // A declared length over the limit is rejected before the body is sent.
    let mut stream = tokio::net::TcpStream::connect(portal.address)
        .await
        .unwrap();
    let head = format!(
        "POST /m/{}/unlock HTTP/1.1\r\nhost: portal.example.org\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        b64(&[5; 16]),
        MAX_BODY_BYTES + 1
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // An envelope over 25 MiB in a body under the limit.
    let message = Sealed::new("12345678");
    let mut body = message.upload_body(5);
    body["envelope"] = json!(b64(&vec![0; MAX_SEALED_BYTES + 29]));
    let answer = portal
        .signed(&device, "POST", "/api/v1/messages", Some(&body))
        .await;
    assert_eq!(answer.status, 413, "{}", answer.text());

    // A 25 MiB envelope fits.
    body["envelope"] = json!(b64(&vec![0; MAX_SEALED_BYTES + 28]));
    let answer = portal
        .signed(&device, "POST", "/api/v1/messages", Some(&body))
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text());
}

async fn logs_hold_no_secrets(backend: Backend) {
    let portal = start_portal(backend, "").await;
    let (token, _) = server::create_enrol_token(&portal.store, "desk 1")
        .await
        .unwrap();
    let key = Ed25519KeyPair::from_pkcs8(
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    let answer = portal
        .post_json(
            "/api/v1/devices",
            &json!({"token": token, "public_key": b64(key.public_key().as_ref())}),
        )
        .await;
    let device = Device {
        id: answer.json()["device_id"].as_str().unwrap().to_owned(),
        key,
    };
    let message = Sealed::new("12345678");
    let upload_body = message.upload_body(5);
    let upload_headers = device.sign(
        "POST",
        "/api/v1/messages",
        upload_body.to_string().as_bytes(),
        unix_now(),
        &fresh_nonce(),
    );
    let answer = portal
        .request(
            "POST",
            "/api/v1/messages",
            &upload_headers,
            upload_body.to_string().into_bytes(),
        )
        .await;
    assert_eq!(answer.status, 201);
    // A replay is logged as rejected; its signature must not be.
    let _ = portal
        .request(
            "POST",
            "/api/v1/messages",
            &upload_headers,
            upload_body.to_string().into_bytes(),
        )
        .await;

    let verifier = b64(&message.verifier());
    let wrong = message.verifier_for("99999999");
    let ciphertext = b64(&random::<64>());
    let _ = portal
        .post_json(
            &format!("/m/{}/unlock", message.id),
            &json!({"verifier": wrong}),
        )
        .await;
    let _ = portal
        .post_json(
            &format!("/m/{}/unlock", message.id),
            &json!({"verifier": verifier}),
        )
        .await;
    let _ = portal
        .post_json(
            &format!("/m/{}/reply", message.id),
            &json!({"verifier": verifier, "enc": b64(&[7; 32]), "ciphertext": ciphertext}),
        )
        .await;
    let _ = portal
        .post_json(
            "/api/v1/devices",
            &json!({"token": token, "public_key": b64(&[9; 32])}),
        )
        .await;

    let logs = captured_logs();
    assert!(
        logs.contains(&message.id[..8]),
        "the log should name the message by its first 8 characters"
    );
    let signature = upload_headers
        .iter()
        .find(|(name, _)| name == "signature")
        .map(|(_, value)| {
            value
                .trim_start_matches("sig1=:")
                .trim_end_matches(':')
                .to_owned()
        })
        .unwrap();
    let secrets = [
        ("full message id", message.id.clone()),
        ("verifier", verifier),
        ("wrong verifier", wrong),
        (
            "verifier hash",
            upload_body["verifier_hash"].as_str().unwrap().to_owned(),
        ),
        ("wrapped key", b64(&message.wrapped_key)),
        ("envelope", b64(&message.envelope)[..40].to_owned()),
        ("reply ciphertext", ciphertext),
        ("enrolment token", token),
        ("signature", signature),
    ];
    for (name, secret) in secrets {
        assert!(!logs.contains(&secret), "the log contains the {name}");
    }
    if backend == Backend::Postgres {
        let password = cluster::Cluster::get().password();
        assert!(logs.contains("using PostgreSQL"), "no start-up line");
        assert!(
            !logs.contains(password),
            "the log contains the database password"
        );
    }
}

// ---------------------------------------------------------------------
// Several instances on one PostgreSQL database.

/// Two servers, each with its own pool, share one database: concurrent
/// wrong codes split across both lock the message after exactly
/// `max_attempts`, and a nonce used on one is refused by the other.
#[tokio::test]
async fn postgres_two_instances_share_counts() {
    logs();
    let url = cluster::Cluster::get().new_database().await;
    let mut portals = Vec::new();
    for _ in 0..2 {
        let directory = tempfile::tempdir().unwrap();
        let config = portal_config(directory.path(), &url, "");
        let store = open_store(&config).await;
        assert!(matches!(store, AnyStore::Postgres(_)));
        portals.push(Arc::new(start_with_store(config, store, directory).await));
    }
    let device = portals[0].enrol("desk 1").await;
    let message = Arc::new(Sealed::new("12345678"));
    let max_attempts = 5;
    upload(&portals[1], &device, &message, max_attempts).await;

    let tries = 40;
    let mut tasks = tokio::task::JoinSet::new();
    for attempt in 0..tries {
        let portal = Arc::clone(&portals[attempt % 2]);
        let message = Arc::clone(&message);
        tasks.spawn(async move {
            let answer = portal
                .post_json(
                    &format!("/m/{}/unlock", message.id),
                    &json!({"verifier": message.verifier_for(&format!("{attempt:08}"))}),
                )
                .await;
            let left = (answer.status == 403).then(|| answer.json()["attempts_left"].as_u64());
            (answer.status, left.flatten())
        });
    }
    let mut wrong = Vec::new();
    let mut locked = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            (403, Some(left)) => wrong.push(left),
            (423, None) => locked += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    wrong.sort_unstable();
    assert_eq!(wrong, [0, 1, 2, 3, 4], "each count was given out once");
    assert_eq!(locked, tries - 5);

    let right = json!({"verifier": b64(&message.verifier())});
    for portal in &portals {
        let answer = portal
            .post_json(&format!("/m/{}/unlock", message.id), &right)
            .await;
        assert_eq!(answer.status, 423, "{}", answer.text());
    }
    let kinds: Vec<String> = portals[1]
        .events(&device)
        .await
        .into_iter()
        .map(|(_, kind)| kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "wrong-code",
            "wrong-code",
            "wrong-code",
            "wrong-code",
            "wrong-code",
            "locked"
        ]
    );

    let path = "/api/v1/events?after=0";
    let headers = device.sign("GET", path, b"", unix_now(), &fresh_nonce());
    let first = portals[0].request("GET", path, &headers, Vec::new()).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let replayed = portals[1].request("GET", path, &headers, Vec::new()).await;
    assert_eq!(
        replayed.status,
        401,
        "replayed on the other instance: {}",
        replayed.text()
    );
}

/// A server whose PostgreSQL connections were all ended (as by a database
/// restart) connects again on the next requests.
#[tokio::test]
async fn postgres_reconnects_after_disconnect() {
    let portal = start_portal(Backend::Postgres, "").await;
    let device = portal.enrol("desk 1").await;
    let Database::Postgres { url: postgres, .. } = &portal.database else {
        panic!("not PostgreSQL");
    };
    let database = postgres.get_dbname().unwrap().to_owned();

    let admin = cluster::connect(&url_for_database(postgres, "postgres")).await;
    let ended = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&database],
        )
        .await
        .unwrap();
    assert!(!ended.is_empty(), "the server had no connection to end");
    // Give each connection task time to see its connection end.
    tokio::time::sleep(Duration::from_millis(500)).await;

    for _ in 0..10 {
        let message = Sealed::new("12345678");
        upload(&portal, &device, &message, 5).await;
        assert_eq!(portal.attempts_left(&message.id).await, 5);
    }
}

/// The URL of another database in the same cluster.
fn url_for_database(postgres: &tokio_postgres::Config, database: &str) -> String {
    let password = String::from_utf8(postgres.get_password().unwrap().to_vec()).unwrap();
    format!(
        "postgres://{}:{password}@127.0.0.1:{}/{database}",
        postgres.get_user().unwrap(),
        postgres.get_ports()[0]
    )
}

/// With `database_ca` the portal reaches PostgreSQL over TLS and checks
/// the server's certificate: a database that rejects plain connections
/// works, and a CA that did not issue the certificate fails start-up.
#[tokio::test]
async fn postgres_tls_verified() {
    logs();
    let cluster = cluster::Cluster::get();
    let url = cluster.create_database(cluster::TLS_ONLY).await;

    let directory = tempfile::tempdir().unwrap();
    let plain = portal_config(directory.path(), &url, "");
    let Database::Postgres { url: plain, .. } = &plain.database else {
        panic!("not PostgreSQL");
    };
    let error = PgStore::connect(plain, None).await.err().unwrap();
    assert!(error.to_string().contains("no encryption"), "{error}");

    let other_ca = format!("database_ca = {:?}\n", cluster.other_ca_file());
    let config = portal_config(directory.path(), &url, &other_ca);
    let Database::Postgres { url: postgres, ca } = &config.database else {
        panic!("not PostgreSQL");
    };
    let error = PgStore::connect(postgres, ca.as_deref())
        .await
        .err()
        .unwrap();
    let text = error.to_string();
    assert!(text.contains("certificate"), "{text}");
    assert!(!text.contains(cluster.password()), "{text}");

    let ca = format!("database_ca = {:?}\n", cluster.ca_file());
    let config = portal_config(directory.path(), &url, &ca);
    let store = open_store(&config).await;
    let portal = start_with_store(config, store, directory).await;
    let device = portal.enrol("desk 1").await;
    let message = Sealed::new("12345678");
    upload(&portal, &device, &message, 5).await;
    assert_eq!(portal.attempts_left(&message.id).await, 5);
}

/// Runs the server binary's `enrol-token` with the most verbose logging,
/// tokio-postgres's included.
fn enrol_token_command(config_path: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_wardmail-portal"))
        .args(["enrol-token", "--label", "desk 9", "--config"])
        .arg(config_path)
        .env("RUST_LOG", "trace,tokio_postgres=trace")
        .output()
        .unwrap()
}

/// `enrol-token` writes to the PostgreSQL database that the servers use,
/// and neither it nor a failed connection prints the password or the
/// query parameters.
#[tokio::test]
async fn postgres_enrol_token_command() {
    logs();
    let cluster = cluster::Cluster::get();
    let url = cluster.new_database().await;
    let directory = tempfile::tempdir().unwrap();
    let config = portal_config(directory.path(), &url, "");
    let config_path = directory.path().join("portal.toml");
    let store = open_store(&config).await;
    let portal = start_with_store(config, store, directory).await;

    let output = enrol_token_command(&config_path);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let database = url.rsplit('/').next().unwrap();
    assert!(stderr.contains("using PostgreSQL"), "{stderr}");
    assert!(
        stderr.contains(&format!("database {database} on 127.0.0.1:")),
        "{stderr}"
    );
    assert!(!stderr.contains(cluster.password()), "{stderr}");
    assert!(!stderr.contains("executing statement"), "{stderr}");
    let token = String::from_utf8(output.stdout).unwrap();
    let token = token.lines().next().unwrap();
    assert!(!stderr.contains(token), "{stderr}");

    let answer = portal
        .post_json(
            "/api/v1/devices",
            &json!({"token": token, "public_key": b64(&[9; 32])}),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text());

    let wrong_password = "wrong-password-for-the-test";
    let wrong_url = url.replacen(cluster.password(), wrong_password, 1);
    let directory = tempfile::tempdir().unwrap();
    portal_config(directory.path(), &wrong_url, "");
    let output = enrol_token_command(&directory.path().join("portal.toml"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot connect to the PostgreSQL database {database} on 127.0.0.1:"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains(wrong_password), "{stderr}");
}

// ---------------------------------------------------------------------
// Every test above, once per store.

macro_rules! for_each_store {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Backend::Sqlite).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

for_each_store!(
    enrol_token_single_use,
    enrol_token_expired,
    signed_requests_rejected,
    other_device_message_refused,
    upload_unlock_roundtrip,
    page_get_keeps_attempts,
    wrong_codes_lock_then_reissue,
    reply_stored_and_listed,
    revoke_gone_and_erased,
    sweeper_expires_message,
    security_headers_present,
    oversized_bodies_rejected,
    logs_hold_no_secrets,
);
