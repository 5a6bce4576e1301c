//! SMTP submission (RFC 6409) through lettre, TLS only.
//!
//! The transaction is driven step by step (connect, STARTTLS or implicit
//! TLS, AUTH, MAIL, RCPT, DATA) instead of through lettre's one-call
//! `send`, because the outbox must know whether a failure came before the
//! message text was handed over (safe to retry) or after (the server may
//! have accepted it, and a blind retry could deliver it twice).
//!
//! [`probe`] is a separate hand-written check used by "Test connection": it
//! speaks just enough SMTP (greeting, EHLO, STARTTLS) to tell a TLS mode
//! mismatch, a missing STARTTLS and an untrusted certificate apart, which
//! lettre's errors do not distinguish.

use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::account::{Account, Security};
use crate::net::{self, NetError, TlsContext};
use crate::secret::Secret;

/// Timeout for each SMTP command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors from SMTP submission.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// The connection could not be made or secured.
    #[error("SMTP: {0}")]
    Net(#[from] NetError),
    /// Authentication was rejected.
    #[error("SMTP login as {username:?} failed: check the user name and password ({reason})")]
    LoginFailed {
        /// The login name.
        username: String,
        /// The server's reply.
        reason: String,
    },
    /// A value cannot be used as an SMTP address.
    #[error("invalid address {address:?}: {reason}")]
    Address {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// The server refused a step before the message text was sent; nothing
    /// was delivered.
    #[error("SMTP server refused {stage}: {reason}")]
    Refused {
        /// Which step ("connection", "the sender", "recipient x@example.org").
        stage: String,
        /// The server's reply or the error.
        reason: String,
    },
    /// The connection failed after the message text was sent: the server
    /// may or may not have accepted the message.
    #[error(
        "the connection failed after the message was handed over; it may have been sent: {reason}"
    )]
    Uncertain {
        /// What failed.
        reason: String,
    },
}

impl SmtpError {
    /// Whether the message certainly was not accepted, so that retrying
    /// cannot send it twice.
    pub fn certainly_not_sent(&self) -> bool {
        !matches!(self, SmtpError::Uncertain { .. })
    }
}

fn hello() -> ClientId {
    ClientId::Domain("localhost".to_owned())
}

fn tls_parameters(account: &Account) -> Result<TlsParameters, SmtpError> {
    let host = &account.smtp.host;
    let mut builder =
        TlsParameters::builder(host.clone()).certificate_store(CertificateStore::Default);
    if let Some(path) = &account.ca_file {
        let pem = std::fs::read(path).map_err(|e| NetError::CaFile {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let certificate = Certificate::from_pem(&pem).map_err(|e| NetError::CaFile {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build_rustls().map_err(|e| {
        NetError::Tls {
            host: host.clone(),
            port: account.smtp.port,
            reason: e.to_string(),
        }
        .into()
    })
}

/// Opens an authenticated submission connection.
async fn open(account: &Account, password: &Secret) -> Result<AsyncSmtpConnection, SmtpError> {
    let server = &account.smtp;
    let params = tls_parameters(account)?;
    let refused = |stage: &str| {
        let stage = stage.to_owned();
        move |e: lettre::transport::smtp::Error| SmtpError::Refused {
            stage,
            reason: e.to_string(),
        }
    };
    let implicit = (server.security == Security::Tls).then(|| params.clone());
    let mut connection = AsyncSmtpConnection::connect_tokio1(
        (server.host.as_str(), server.port),
        Some(COMMAND_TIMEOUT),
        &hello(),
        implicit,
        None,
    )
    .await
    .map_err(refused("the connection"))?;
    if server.security == Security::StartTls {
        if !connection.can_starttls() {
            connection.abort().await;
            return Err(NetError::StartTlsMissing {
                host: server.host.clone(),
                port: server.port,
            }
            .into());
        }
        connection
            .starttls(params, &hello())
            .await
            .map_err(refused("STARTTLS"))?;
    }
    let credentials = Credentials::new(account.username.clone(), password.expose().to_owned());
    if let Err(e) = connection
        .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
        .await
    {
        connection.abort().await;
        return Err(SmtpError::LoginFailed {
            username: account.username.clone(),
            reason: e.to_string(),
        });
    }
    Ok(connection)
}

/// Checks that the submission server accepts the login.
pub async fn check_login(account: &Account, password: &Secret) -> Result<(), SmtpError> {
    let mut connection = open(account, password).await?;
    let _ = connection.quit().await;
    Ok(())
}

/// Submits one message. On error, [`SmtpError::certainly_not_sent`] says
/// whether a retry is safe.
pub async fn submit(
    account: &Account,
    password: &Secret,
    envelope_from: &str,
    recipients: &[String],
    raw: &[u8],
) -> Result<(), SmtpError> {
    let envelope = envelope(envelope_from, recipients)?;
    let mut connection = open(account, password).await?;
    let refused = |stage: String| {
        move |e: lettre::transport::smtp::Error| SmtpError::Refused {
            stage,
            reason: e.to_string(),
        }
    };

    let mut parameters = Vec::new();
    if !raw.is_ascii()
        && connection
            .server_info()
            .supports_feature(Extension::EightBitMime)
    {
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let outcome = async {
        connection
            .command(Mail::new(envelope.from().cloned(), parameters))
            .await
            .map_err(refused("the sender".to_owned()))?;
        for recipient in envelope.to() {
            connection
                .command(Rcpt::new(recipient.clone(), Vec::new()))
                .await
                .map_err(refused(format!("recipient at {}", recipient.domain())))?;
        }
        connection
            .command(Data)
            .await
            .map_err(refused("DATA".to_owned()))?;
        match connection.message(raw).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() || e.is_transient() => Err(SmtpError::Refused {
                stage: "the message".to_owned(),
                reason: e.to_string(),
            }),
            Err(e) => Err(SmtpError::Uncertain {
                reason: e.to_string(),
            }),
        }
    }
    .await;
    match &outcome {
        Ok(()) => {
            let _ = connection.quit().await;
        }
        Err(_) => connection.abort().await,
    }
    outcome
}

fn envelope(from: &str, recipients: &[String]) -> Result<Envelope, SmtpError> {
    let parse = |address: &str| {
        address
            .parse::<lettre::Address>()
            .map_err(|e| SmtpError::Address {
                address: address.to_owned(),
                reason: e.to_string(),
            })
    };
    let to = recipients
        .iter()
        .map(|r| parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    Envelope::new(Some(parse(from)?), to).map_err(|e| SmtpError::Address {
        address: recipients.join(", "),
        reason: format!("{e}; add at least one recipient"),
    })
}

/// Checks TLS on the submission port without logging in: the greeting, the
/// STARTTLS offer and the certificate.
pub async fn probe(account: &Account, tls: &TlsContext) -> Result<(), SmtpError> {
    let server = &account.smtp;
    let (host, port) = (server.host.as_str(), server.port);
    let tcp = net::connect_tcp(host, port).await?;
    let tcp = match server.security {
        Security::Tls => tcp,
        Security::StartTls => {
            let mut reader = BufReader::new(tcp);
            read_reply(&mut reader, port, true).await?;
            reader
                .get_mut()
                .write_all(b"EHLO localhost\r\n")
                .await
                .map_err(|e| io(host, port, e))?;
            let capabilities = read_reply(&mut reader, port, false).await?;
            if !capabilities
                .iter()
                .any(|line| line.to_ascii_uppercase().starts_with("STARTTLS"))
            {
                return Err(NetError::StartTlsMissing {
                    host: host.to_owned(),
                    port,
                }
                .into());
            }
            reader
                .get_mut()
                .write_all(b"STARTTLS\r\n")
                .await
                .map_err(|e| io(host, port, e))?;
            read_reply(&mut reader, port, false).await?;
            reader.into_inner()
        }
    };
    let mut stream = tls.handshake(tcp, host, port).await?;
    if server.security == Security::Tls {
        let mut reader = BufReader::new(&mut stream);
        read_reply(&mut reader, port, true).await?;
    }
    let _ = stream.write_all(b"QUIT\r\n").await;
    Ok(())
}

fn io(host: &str, port: u16, source: std::io::Error) -> SmtpError {
    NetError::Io {
        host: host.to_owned(),
        port,
        source,
    }
    .into()
}

/// Reads one (possibly multi-line) reply; returns the text of each line
/// after the code. A greeting that does not arrive in time means the port
/// waits for a TLS ClientHello.
async fn read_reply<R>(reader: &mut R, port: u16, greeting: bool) -> Result<Vec<String>, SmtpError>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let read = tokio::time::timeout(net::GREETING_TIMEOUT, reader.read_line(&mut line)).await;
        let count = match read {
            Err(_) if greeting => return Err(NetError::ExpectsImplicitTls { port }.into()),
            Err(_) => return Err(refused_reply(port, "no reply in time")),
            Ok(Err(e)) => return Err(refused_reply(port, &e.to_string())),
            Ok(Ok(count)) => count,
        };
        if count == 0 {
            return Err(refused_reply(port, "the server closed the connection"));
        }
        let line = line.trim_end();
        if line.len() < 3 || !line.starts_with(['2', '3']) {
            return Err(refused_reply(port, line));
        }
        lines.push(line.get(4..).unwrap_or_default().to_owned());
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(lines);
        }
    }
}

fn refused_reply(port: u16, reason: &str) -> SmtpError {
    SmtpError::Refused {
        stage: format!("the connection on port {port}"),
        reason: reason.to_owned(),
    }
}
