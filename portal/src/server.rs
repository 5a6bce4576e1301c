//! Running the portal: binding the listener (plain HTTP, or HTTPS with
//! rustls), the expiry sweeper task, and enrolment tokens for the
//! `enrol-token` command.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::app::{self, App};
use crate::config::{Config, TlsFiles};
use crate::store::{Store, StoreError};
use crate::wire;

/// Seconds an enrolment token stays valid.
pub const ENROL_TOKEN_SECONDS: i64 = 24 * 60 * 60;

/// Seconds a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Failure to start or run the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address cannot be bound.
    #[error("cannot listen on {address}: {source}; change `listen` in the config file")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A TLS file cannot be read or used.
    #[error("cannot use the TLS file {path}: {reason}")]
    Tls {
        /// The file.
        path: std::path::PathBuf,
        /// Description of the problem.
        reason: String,
    },
    /// Serving failed.
    #[error("cannot serve HTTP: {0}")]
    Serve(std::io::Error),
    /// The system random number generator failed.
    #[error("cannot create a random token: the system random number generator failed")]
    Random,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A bound listener that has not started serving yet, so a caller (a test)
/// can learn the port first.
pub struct Bound {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl Bound {
    /// Binds the configured address and loads the TLS identity if one is
    /// configured.
    pub async fn bind(config: &Config) -> Result<Self, ServerError> {
        let tls = config.tls.as_ref().map(tls_acceptor).transpose()?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    address: config.listen,
                    source,
                })?;
        Ok(Self { listener, tls })
    }

    /// Returns the bound address, with the port the system chose for port 0.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `app` and runs the sweeper until `shutdown` completes.
    pub async fn serve<S: Store>(
        self,
        app: Arc<App<S>>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let address = self.local_addr().map_err(ServerError::Serve)?;
        let sweeper = tokio::spawn(run_sweeper(
            Arc::clone(&app),
            Duration::from_secs(app.config.sweep_interval_seconds),
        ));
        let router = app::router(app);
        let result = match self.tls {
            None => {
                tracing::info!(%address, "serving HTTP");
                axum::serve(self.listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            Some(acceptor) => {
                tracing::info!(%address, "serving HTTPS");
                let listener = TlsListener::start(self.listener, acceptor, address);
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        };
        sweeper.abort();
        result.map_err(ServerError::Serve)
    }
}

fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ServerError> {
    let tls_error = |path: &std::path::Path, reason: String| ServerError::Tls {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| {
            tls_error(
                &files.cert,
                format!("{error}; give a PEM certificate chain"),
            )
        })?;
    if certs.is_empty() {
        return Err(tls_error(&files.cert, "it holds no PEM certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|error| tls_error(&files.key, format!("{error}; give a PEM private key")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|error| {
            tls_error(
                &files.key,
                format!("{error}; check that the key belongs to the certificate"),
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TCP connections and runs each TLS handshake in its own task,
/// so a slow or silent client cannot hold up the others.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    address: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    /// Stops accepting, which closes the listening socket.
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl TlsListener {
    fn start(listener: TcpListener, acceptor: TlsAcceptor, address: SocketAddr) -> Self {
        let (sender, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = sender.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                });
            }
        });
        Self {
            ready,
            address,
            accepting,
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task ends only when this listener is dropped, so
            // the channel stays open; should it close, wait for shutdown
            // rather than spin.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.address)
    }
}

/// Runs [`Store::sweep`] every `interval`, logging counts and failures.
async fn run_sweeper<S: Store>(app: Arc<App<S>>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        match app.store.sweep(wire::now()).await {
            Ok(sweep) if sweep.expired > 0 => {
                tracing::info!(
                    expired = sweep.expired,
                    pruned = sweep.pruned,
                    "expiry sweep"
                );
            }
            Ok(sweep) => tracing::debug!(pruned = sweep.pruned, "expiry sweep"),
            Err(error) => tracing::error!(%error, "expiry sweep failed; retrying next interval"),
        }
    }
}

/// Creates a one-time enrolment token, stores its hash and returns the
/// token with its expiry (Unix time).
pub async fn create_enrol_token<S: Store>(
    store: &S,
    label: &str,
) -> Result<(String, i64), ServerError> {
    let bytes: [u8; 32] = wire::random_bytes().map_err(|_| ServerError::Random)?;
    let token = wire::encode(&bytes);
    let expires_at = wire::now() + ENROL_TOKEN_SECONDS;
    store
        .add_enrol_token(wire::sha256(token.as_bytes()), label.to_owned(), expires_at)
        .await?;
    Ok((token, expires_at))
}
