//! Running the portal: binding the listener (plain HTTP, or HTTPS with
//! rustls), the expiry sweeper task, and enrolment tokens for the
//! `enrol-token` command.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tracing_subscriber::EnvFilter;

use crate::app::{self, App};
use crate::config::{Config, TlsFiles};
use crate::store::{Store, StoreError};
use crate::wire;

/// Log filter directives applied after the operator's, so that no
/// `RUST_LOG` setting can turn them up: at debug, tokio-postgres logs every
/// query parameter, which here are message ids, hashes and ciphertext.
const CAPPED_LOG_TARGETS: [&str; 1] = ["tokio_postgres=info"];

/// Returns `filter` with the portal's caps on dependencies' logging added;
/// both the server and the tests log through it.
pub fn log_filter(filter: EnvFilter) -> EnvFilter {
    CAPPED_LOG_TARGETS.iter().fold(filter, |filter, directive| {
        match directive.parse() {
            Ok(directive) => filter.add_directive(directive),
            // The directives are constants that parse; a typo would show
            // up in the log tests, which check for leaked parameters.
            Err(_) => filter,
        }
    })
}

/// Seconds an enrolment token stays valid.
pub const ENROL_TOKEN_SECONDS: i64 = 24 * 60 * 60;

/// Time a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a client has to send a request's header section, so that idle or
/// trickling connections (slowloris) are closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// The listening socket failed.
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

    /// Serves `app` and runs the sweeper until `shutdown` completes. Each
    /// connection (and its TLS handshake) runs in its own task, so a slow
    /// client holds up no other. Connections open at shutdown are not
    /// waited for.
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
        let scheme = if self.tls.is_some() { "HTTPS" } else { "HTTP" };
        tracing::info!(%address, scheme, "serving");

        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Typically too many open files; pausing lets
                    // connections close instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            tokio::spawn(handle_connection(stream, self.tls.clone(), router.clone()));
        }
        sweeper.abort();
        Ok(())
    }
}

/// Runs the TLS handshake if configured, then serves HTTP/1.1 on the
/// connection.
async fn handle_connection(stream: TcpStream, tls: Option<TlsAcceptor>, router: Router) {
    let Some(acceptor) = tls else {
        serve_connection(stream, router).await;
        return;
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => serve_connection(stream, router).await,
        Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
        Err(_) => tracing::debug!("TLS handshake timed out"),
    }
}

// NOTE: only the request header has a deadline. A client that trickles a
// body keeps its connection and task until it finishes; a reverse proxy
// with a body timeout, or a per-request timeout here, would bound that.
async fn serve_connection<I>(io: I, router: Router)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let result = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(router))
        .await;
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
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
