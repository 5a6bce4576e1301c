//! Unlock-plus-download throughput of the portal on loopback.
//!
//! The server runs in this process with HTTPS (a throwaway CA and server
//! certificate that openssl makes) and a SQLite file in a temporary directory.
//! It holds 16 messages with a 1 MiB envelope each. For each concurrency
//! level, that many clients each keep one TLS connection and repeat what
//! the recipient's page does after the code is typed: `GET /m/{id}/meta`,
//! then `POST /m/{id}/unlock` with the right verifier, reading the whole
//! answer. The browser's PBKDF2 is not part of it: it costs the client,
//! not the server.
//!
//! Run with `cargo bench -p wardmail-portal --bench load`; the figures go
//! to standard output.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use ring::rand::{SecureRandom, SystemRandom};
use wardmail_portal::app::App;
use wardmail_portal::config::{Config, Database};
use wardmail_portal::server::Bound;
use wardmail_portal::store::{Factor, Lock, NewMessage, SqliteStore, Store as _};

const MESSAGES: usize = 16;
const ENVELOPE_BYTES: usize = 1024 * 1024;
const LEVELS: [usize; 5] = [1, 2, 4, 8, 16];
const RUN: Duration = Duration::from_secs(5);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let directory = tempfile::tempdir().unwrap();
    make_certificate(directory.path());
    let config_path = directory.path().join("portal.toml");
    std::fs::write(
        &config_path,
        "listen = \"127.0.0.1:0\"\npublic_url = \"https://127.0.0.1\"\n\
         database = \"portal.sqlite3\"\ncontact = \"Bench Clinic\"\nmax_attempts = 20\n\
         [tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
    )
    .unwrap();
    let config = Config::load(&config_path).unwrap();
    let Database::Sqlite(path) = &config.database else {
        panic!("the config names a SQLite file");
    };
    let store = SqliteStore::open(path).unwrap();
    let bound = Bound::bind(&config).await.unwrap();
    let address = bound.local_addr().unwrap();
    let app = Arc::new(App {
        store: store.clone(),
        config,
    });
    tokio::spawn(bound.serve(app, std::future::pending()));

    let messages = insert_messages(&store).await;
    let tls = client_config(directory.path());

    println!(
        "portal unlock+download, {MESSAGES} messages of {} KiB envelope, HTTPS on loopback, {} s per level",
        ENVELOPE_BYTES / 1024,
        RUN.as_secs()
    );
    println!("clients\tunlocks/s\tMiB/s\tp50 ms\tp95 ms");
    for clients in LEVELS {
        let deadline = Instant::now() + RUN;
        let mut tasks = Vec::new();
        for client in 0..clients {
            let (id, verifier) = messages[client % MESSAGES].clone();
            let tls = tls.clone();
            tasks.push(tokio::spawn(client_loop(
                address, tls, id, verifier, deadline,
            )));
        }
        let mut latencies = Vec::new();
        let mut bytes = 0usize;
        for task in tasks {
            let (mine, read) = task.await.unwrap();
            latencies.extend(mine);
            bytes += read;
        }
        latencies.sort();
        let count = latencies.len();
        let seconds = RUN.as_secs_f64();
        println!(
            "{clients}\t{:.1}\t{:.1}\t{:.1}\t{:.1}",
            count as f64 / seconds,
            bytes as f64 / seconds / (1024.0 * 1024.0),
            millis(latencies[count / 2]),
            millis(latencies[count * 95 / 100])
        );
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Makes a throwaway CA (`ca.pem`) and a P-256 server certificate for
/// 127.0.0.1 that it issued (`cert.pem`, `key.pem`) with openssl.
fn make_certificate(directory: &Path) {
    let openssl = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .current_dir(directory)
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?} failed");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=Bench CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        directory.join("server.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "1",
        "-extfile",
        "server.cnf",
    ]);
}

fn client_config(directory: &Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(directory.join("ca.pem")).unwrap();
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        roots.add(certificate.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Stores the messages straight in the store, with random envelopes and
/// verifiers; returns each id with its verifier, base64url.
async fn insert_messages(store: &SqliteStore) -> Vec<(String, String)> {
    let random = SystemRandom::new();
    let device_id = URL_SAFE_NO_PAD.encode(bytes::<16>(&random));
    let token = bytes::<32>(&random);
    let token_hash = sha256(&token);
    store
        .add_enrol_token(token_hash, "bench".to_owned(), now() + 3600)
        .await
        .unwrap();
    assert!(
        store
            .enrol_device(
                token_hash,
                device_id.clone(),
                bytes::<32>(&random),
                "bench".to_owned(),
                now()
            )
            .await
            .unwrap()
    );
    let mut messages = Vec::new();
    for _ in 0..MESSAGES {
        let id = URL_SAFE_NO_PAD.encode(bytes::<16>(&random));
        let verifier = bytes::<32>(&random);
        let mut envelope = vec![0u8; ENVELOPE_BYTES];
        random.fill(&mut envelope).unwrap();
        let stored = store
            .insert_message(
                NewMessage {
                    id: id.clone(),
                    device_id: device_id.clone(),
                    lock: Lock {
                        factor: Factor::Code,
                        iterations: 600_000,
                        wrapped_key: bytes::<60>(&random).to_vec(),
                        verifier_hash: sha256(&verifier),
                    },
                    envelope,
                    expires_at: now() + 86_400,
                    max_attempts: 5,
                    contact: "Bench Clinic".to_owned(),
                },
                now(),
            )
            .await
            .unwrap();
        assert!(stored);
        messages.push((id, URL_SAFE_NO_PAD.encode(verifier)));
    }
    messages
}

/// Runs one client: a TLS connection, then meta and unlock until
/// `deadline`. Returns each round's latency and the bytes read.
async fn client_loop(
    address: std::net::SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    id: String,
    verifier: String,
    deadline: Instant,
) -> (Vec<Duration>, usize) {
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let unlock_body = format!("{{\"verifier\":\"{verifier}\"}}");
    let mut latencies = Vec::new();
    let mut read = 0;
    while Instant::now() < deadline {
        let started = Instant::now();
        for (method, path, body) in [
            ("GET", format!("/m/{id}/meta"), String::new()),
            ("POST", format!("/m/{id}/unlock"), unlock_body.clone()),
        ] {
            let request = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header("host", "127.0.0.1")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.status(), 200, "{method} answered");
            read += response
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .len();
        }
        latencies.push(started.elapsed());
    }
    (latencies, read)
}

fn bytes<const N: usize>(random: &SystemRandom) -> [u8; N] {
    let mut value = [0u8; N];
    random.fill(&mut value).unwrap();
    value
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut value = [0u8; 32];
    value.copy_from_slice(digest.as_ref());
    value
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
