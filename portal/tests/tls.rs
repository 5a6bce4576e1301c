//! The portal serving HTTPS itself: a certificate made with the openssl
//! tool for 127.0.0.1, and a rustls client that trusts only it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use wardmail_portal::app::App;
use wardmail_portal::config::{Config, Database};
use wardmail_portal::server::Bound;
use wardmail_portal::store::SqliteStore;

/// A self-signed end-entity certificate (CA:FALSE, as rustls requires of a
/// server certificate) for 127.0.0.1.
const OPENSSL_CONFIG: &str = "[req]
distinguished_name = name
x509_extensions = leaf
prompt = no
[name]
CN = portal test
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
";

fn make_certificate(directory: &Path) {
    let config = directory.join("openssl.cnf");
    std::fs::write(&config, OPENSSL_CONFIG).unwrap();
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-config"])
        .arg(&config)
        .arg("-keyout")
        .arg(directory.join("key.pem"))
        .arg("-out")
        .arg(directory.join("cert.pem"))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the openssl tool is needed to make a test certificate");
    assert!(status.success(), "openssl req failed");
}

#[tokio::test]
async fn tls_serves_page_with_headers() {
    let directory = tempfile::tempdir().unwrap();
    make_certificate(directory.path());
    let config_path = directory.path().join("portal.toml");
    std::fs::write(
        &config_path,
        "listen = \"127.0.0.1:0\"\npublic_url = \"https://127.0.0.1\"\ndatabase = \"portal.sqlite3\"\ncontact = \"Clinic\"\n[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
    )
    .unwrap();
    let config = Config::load(&config_path).unwrap();
    let Database::Sqlite(path) = &config.database else {
        panic!("the config names a SQLite file");
    };
    let store = SqliteStore::open(path).unwrap();
    let bound = Bound::bind(&config).await.unwrap();
    let address = bound.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve(Arc::new(App { store, config }), async move {
        let _ = stopped.await;
    }));

    // A client that connects and never sends its ClientHello must not
    // block the next one: handshakes run in their own tasks.
    let _silent = tokio::net::TcpStream::connect(address).await.unwrap();

    let mut roots = rustls::RootCertStore::empty();
    let cert = CertificateDer::from_pem_file(directory.path().join("cert.pem")).unwrap();
    roots.add(cert).unwrap();
    let client_config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let server_name = ServerName::IpAddress(address.ip().into());
    let tls = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        connector.connect(server_name, tcp),
    )
    .await
    .expect("the TLS handshake timed out")
    .unwrap();

    let io = hyper_util::rt::TokioIo::new(tls);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get("/assets/app.css")
        .header("host", "127.0.0.1")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["strict-transport-security"], "max-age=31536000");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(!body.is_empty());

    stop.send(()).unwrap();
    drop(sender);
    tokio::time::timeout(std::time::Duration::from_secs(5), server)
        .await
        .expect("the server did not stop")
        .unwrap()
        .unwrap();
}
