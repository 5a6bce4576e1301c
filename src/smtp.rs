//! SMTP submission (RFC 6409) through lettre, TLS only.
//!
//! The transaction is driven step by step (connect, STARTTLS or implicit
//! TLS, AUTH, MAIL, RCPT, DATA) instead of through lettre's one-call
//! `send`, because the outbox must know whether a failure came before the
//! message text was handed over (safe to retry) or after (the server may
//! have accepted it, and a blind retry could deliver it twice).
//!
//! The connection up to TLS is hand-written ([`secure_stream`]): the
//! greeting, EHLO and STARTTLS, read one byte at a time so that nothing a
//! server (or an attacker on the path) sends after the STARTTLS reply can be
//! taken for a reply inside TLS; such bytes break the TLS handshake instead.
//! lettre's own STARTTLS keeps its read buffer across the upgrade. The same
//! code tells a TLS mode mismatch, a missing STARTTLS and an untrusted
//! certificate apart for "Test connection", and trust is the account's
//! [`TlsContext`], as for IMAP. lettre takes over on the TLS stream.

use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

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
    /// Returns whether the message certainly was not accepted, so that a
    /// retry cannot send it twice.
    pub fn certainly_not_sent(&self) -> bool {
        !matches!(self, SmtpError::Uncertain { .. })
    }
}

fn hello() -> ClientId {
    ClientId::Domain("localhost".to_owned())
}

/// A TLS stream handed to lettre. `connect_with_transport` reads a
/// greeting first, but after STARTTLS the server sends none (RFC 3207
/// section 4.2), so for that case this wrapper replays the greeting that
/// was read before TLS.
#[derive(Debug)]
struct Handover {
    greeting: Vec<u8>,
    position: usize,
    inner: TlsStream<TcpStream>,
}

impl AsyncRead for Handover {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.position < this.greeting.len() {
            let count = buffer.remaining().min(this.greeting.len() - this.position);
            buffer.put_slice(&this.greeting[this.position..this.position + count]);
            this.position += count;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(context, buffer)
    }
}

impl AsyncWrite for Handover {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(context, data)
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(context)
    }
}

impl AsyncTokioStream for Handover {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.get_ref().0.peer_addr()
    }
}

/// Connects and secures the submission connection: implicit TLS, or the
/// greeting, EHLO and STARTTLS in clear and then TLS. Returns the TLS
/// stream and, for STARTTLS, the greeting to replay to lettre.
async fn secure_stream(
    account: &Account,
    tls: &TlsContext,
) -> Result<(TlsStream<TcpStream>, Vec<u8>), SmtpError> {
    let server = &account.smtp;
    let (host, port) = (server.host.as_str(), server.port);
    let mut tcp = net::connect_tcp(host, port).await?;
    let mut greeting = Vec::new();
    if server.security == Security::StartTls {
        greeting = read_reply(&mut tcp, port, true)
            .await?
            .join("\r\n")
            .into_bytes();
        greeting.extend_from_slice(b"\r\n");
        tcp.write_all(b"EHLO localhost\r\n")
            .await
            .map_err(|e| io(host, port, e))?;
        let capabilities = read_reply(&mut tcp, port, false).await?;
        if !capabilities.iter().any(|line| {
            line.get(4..)
                .unwrap_or_default()
                .eq_ignore_ascii_case("STARTTLS")
        }) {
            return Err(NetError::StartTlsMissing {
                host: host.to_owned(),
                port,
            }
            .into());
        }
        tcp.write_all(b"STARTTLS\r\n")
            .await
            .map_err(|e| io(host, port, e))?;
        read_reply(&mut tcp, port, false).await?;
    }
    let stream = tls.handshake(tcp, host, port).await?;
    Ok((stream, greeting))
}

/// Opens an authenticated submission connection.
async fn open(
    account: &Account,
    password: &Secret,
    tls: &TlsContext,
) -> Result<AsyncSmtpConnection, SmtpError> {
    let (stream, greeting) = secure_stream(account, tls).await?;
    let handover = Handover {
        greeting,
        position: 0,
        inner: stream,
    };
    let client_id = hello();
    let connect = AsyncSmtpConnection::connect_with_transport(Box::new(handover), &client_id);
    let mut connection = step(connect, "the connection").await?;
    let credentials = Credentials::new(account.username.clone(), password.expose().to_owned());
    let auth = connection.auth(&[Mechanism::Plain, Mechanism::Login], &credentials);
    let Ok(auth) = tokio::time::timeout(COMMAND_TIMEOUT, auth).await else {
        connection.abort().await;
        return Err(SmtpError::Refused {
            stage: "login".to_owned(),
            reason: format!("no reply within {} s", COMMAND_TIMEOUT.as_secs()),
        });
    };
    if let Err(e) = auth {
        connection.abort().await;
        if e.is_client() {
            return Err(SmtpError::Refused {
                stage: "login".to_owned(),
                reason: format!("{e}; the server offers no PLAIN or LOGIN authentication over TLS"),
            });
        }
        return Err(SmtpError::LoginFailed {
            username: account.username.clone(),
            reason: e.to_string(),
        });
    }
    Ok(connection)
}

/// Runs one SMTP command before the message text with [`COMMAND_TIMEOUT`];
/// any failure means the message was not accepted.
async fn step<T>(
    command: impl std::future::Future<Output = Result<T, lettre::transport::smtp::Error>>,
    stage: &str,
) -> Result<T, SmtpError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, command).await {
        Ok(result) => result.map_err(|e| SmtpError::Refused {
            stage: stage.to_owned(),
            reason: e.to_string(),
        }),
        Err(_) => Err(SmtpError::Refused {
            stage: stage.to_owned(),
            reason: format!("no reply within {} s", COMMAND_TIMEOUT.as_secs()),
        }),
    }
}

/// Checks that the submission server accepts the login.
pub async fn check_login(
    account: &Account,
    password: &Secret,
    tls: &TlsContext,
) -> Result<(), SmtpError> {
    let mut connection = open(account, password, tls).await?;
    let _ = connection.quit().await;
    Ok(())
}

/// Submits one message. With `require_tls`, MAIL FROM carries the
/// REQUIRETLS parameter (RFC 8689 section 4.1): every relay must then use
/// verified TLS or return the message. A server that does not support it
/// rejects MAIL FROM, so the message is never sent without it. On error,
/// [`SmtpError::certainly_not_sent`] returns whether a retry is safe.
pub async fn submit(
    account: &Account,
    password: &Secret,
    tls: &TlsContext,
    envelope_from: &str,
    recipients: &[String],
    raw: &[u8],
    require_tls: bool,
) -> Result<(), SmtpError> {
    let envelope = envelope(envelope_from, recipients)?;
    let mut connection = open(account, password, tls).await?;

    let mut parameters = Vec::new();
    if !raw.is_ascii() {
        // RFC 6152: 8-bit text may only be sent with BODY=8BITMIME.
        if !connection
            .server_info()
            .supports_feature(Extension::EightBitMime)
        {
            connection.abort().await;
            return Err(SmtpError::Refused {
                stage: "the message".to_owned(),
                reason: "it contains 8-bit text and the server does not accept 8BITMIME; \
                         encode the body as quoted-printable or base64"
                    .to_owned(),
            });
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    if require_tls {
        parameters.push(MailParameter::Other {
            keyword: "REQUIRETLS".to_owned(),
            value: None,
        });
    }
    let outcome = async {
        let mail = Mail::new(envelope.from().cloned(), parameters);
        step(connection.command(mail), "the sender").await?;
        for recipient in envelope.to() {
            let rcpt = Rcpt::new(recipient.clone(), Vec::new());
            step(
                connection.command(rcpt),
                &format!("recipient at {}", recipient.domain()),
            )
            .await?;
        }
        step(connection.command(Data), "DATA").await?;
        // From here on the server may have the message, so a lost
        // connection or a missing reply is "uncertain", not "refused".
        match tokio::time::timeout(COMMAND_TIMEOUT, connection.message(raw)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.is_permanent() || e.is_transient() => Err(SmtpError::Refused {
                stage: "the message".to_owned(),
                reason: e.to_string(),
            }),
            Ok(Err(e)) => Err(SmtpError::Uncertain {
                reason: e.to_string(),
            }),
            Err(_) => Err(SmtpError::Uncertain {
                reason: format!(
                    "no reply within {} s after the message",
                    COMMAND_TIMEOUT.as_secs()
                ),
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
    let (mut stream, _) = secure_stream(account, tls).await?;
    if account.smtp.security == Security::Tls {
        read_reply(&mut stream, account.smtp.port, true).await?;
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

/// Reads one (possibly multi-line) reply, one byte at a time so that
/// nothing after it is consumed; returns its lines. A greeting that does
/// not arrive in time on a plain connection means the port waits for a TLS
/// ClientHello.
async fn read_reply<R>(reader: &mut R, port: u16, greeting: bool) -> Result<Vec<String>, SmtpError>
where
    R: AsyncRead + Unpin,
{
    let mut lines = Vec::new();
    loop {
        let line = match tokio::time::timeout(net::GREETING_TIMEOUT, read_line(reader)).await {
            Err(_) if greeting => return Err(NetError::ExpectsImplicitTls { port }.into()),
            Err(_) => return Err(refused_reply(port, "no reply in time")),
            Ok(Err(e)) => return Err(refused_reply(port, &e.to_string())),
            Ok(Ok(line)) => line,
        };
        if line.len() < 3 || !line.starts_with(['2', '3']) {
            return Err(refused_reply(port, &line));
        }
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line);
        if last {
            return Ok(lines);
        }
    }
}

/// Reads up to and including LF, without reading ahead; at most 1,000
/// bytes (RFC 5321 section 4.5.3.1.5).
async fn read_line<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<String> {
    let mut line = Vec::new();
    loop {
        let mut byte = [0u8; 1];
        if reader.read(&mut byte).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
        if line.len() > 1_000 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "reply line too long",
            ));
        }
    }
    Ok(String::from_utf8_lossy(&line)
        .trim_end_matches('\r')
        .to_owned())
}

fn refused_reply(port: u16, reason: &str) -> SmtpError {
    SmtpError::Refused {
        stage: format!("the connection on port {port}"),
        reason: reason.to_owned(),
    }
}
