//! SMTP capability probes: whether each MX host offers STARTTLS on port 25
//! (RFC 3207), and whether the submission server offers REQUIRETLS after
//! STARTTLS (RFC 8689 section 4.1).
//!
//! A probe sends EHLO, and STARTTLS when offered, then QUIT; it never
//! sends MAIL FROM. Many desktop networks block outgoing port 25, so a
//! probe that gets no connection or no reply within its timeout reports
//! "could not probe", never "no TLS".

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::TcpStream;

use super::unix_now;
use crate::account::{Security, Server};
use crate::dns::Resolver;
use crate::net::{self, NetError, TlsContext};

/// The longest reply line accepted; RFC 5321 section 4.5.3.1.5 sets 512
/// octets, and the limit leaves room for servers that exceed it.
const MAX_LINE_BYTES: usize = 4096;

/// The maximum number of lines in one multi-line reply.
const MAX_REPLY_LINES: usize = 100;

/// The result of probing one MX host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ProbeResult {
    /// The host offers STARTTLS and the handshake was attempted.
    Offered {
        /// Whether the certificate is valid for the host name under the
        /// system roots and the configured CA files.
        certificate_trusted: bool,
        /// The negotiated TLS version, when the handshake completed.
        tls_version: Option<String>,
    },
    /// The host replied to EHLO without STARTTLS.
    NotOffered,
    /// No connection or no reply in time, so port 25 may be blocked here.
    CouldNotProbe,
}

/// The probe finding for one MX host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeFinding {
    /// The MX host.
    pub host: String,
    /// The result.
    pub result: ProbeResult,
    /// One sentence on what was found.
    pub reason: String,
    /// When the probe ran, Unix seconds.
    pub seen_at: i64,
    /// How long the probe took, in milliseconds.
    pub elapsed_ms: u64,
    /// The certificate chain the host presented (DER, end entity first),
    /// for the DANE comparison.
    #[serde(skip)]
    pub chain: Vec<Vec<u8>>,
}

/// Probes every host on `port`, in parallel, each within `timeout`.
pub async fn probe_all(
    resolver: &Resolver,
    tls: &TlsContext,
    hosts: &[String],
    port: u16,
    timeout: Duration,
) -> Vec<ProbeFinding> {
    let probes = hosts
        .iter()
        .map(|host| probe(resolver, tls, host, port, timeout));
    futures::future::join_all(probes).await
}

async fn probe(
    resolver: &Resolver,
    tls: &TlsContext,
    host: &str,
    port: u16,
    timeout: Duration,
) -> ProbeFinding {
    let started = Instant::now();
    let seen_at = unix_now();
    let outcome = tokio::time::timeout(timeout, starttls_dialog(resolver, tls, host, port)).await;
    let (result, reason, chain) = match outcome {
        Ok(Ok(found)) => found,
        Ok(Err(problem)) => (
            ProbeResult::CouldNotProbe,
            format!("could not probe {host}:{port}: {problem}"),
            Vec::new(),
        ),
        Err(_) => (
            ProbeResult::CouldNotProbe,
            format!(
                "could not probe {host}:{port}: no answer within {} s (port {port} may be \
                 blocked on this network)",
                timeout.as_secs_f32()
            ),
            Vec::new(),
        ),
    };
    tracing::debug!(%host, port, ?result, "MX probe done");
    ProbeFinding {
        host: host.to_owned(),
        result,
        reason,
        seen_at,
        elapsed_ms: started.elapsed().as_millis() as u64,
        chain,
    }
}

async fn starttls_dialog(
    resolver: &Resolver,
    tls: &TlsContext,
    host: &str,
    port: u16,
) -> Result<(ProbeResult, String, Vec<Vec<u8>>), String> {
    let addresses = resolver
        .addresses(host)
        .await
        .map_err(|error| error.to_string())?;
    let sockets: Vec<SocketAddr> = addresses
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    let tcp = net::connect_addresses(host, port, &sockets)
        .await
        .map_err(|error| error.to_string())?;
    let helo = helo_name(&tcp);
    let mut stream = BufReader::new(tcp);

    expect(&mut stream, 220, "greeting").await?;
    let capabilities = ehlo(&mut stream, &helo).await?;
    if !has_keyword(&capabilities, "STARTTLS") {
        let _ = quit(&mut stream).await;
        let reason = format!("{host} answered EHLO without offering STARTTLS");
        return Ok((ProbeResult::NotOffered, reason, Vec::new()));
    }
    command(&mut stream, "STARTTLS").await?;
    expect(&mut stream, 220, "STARTTLS").await?;

    let inspected = tls.handshake_inspect(stream.into_inner(), host, port).await;
    let (trusted, version, reason) = match inspected.result {
        Ok(mut secured) => {
            let version = secured
                .get_ref()
                .1
                .protocol_version()
                .and_then(|version| version.as_str())
                .map(str::to_owned);
            let mut secured_reader = BufReader::new(&mut secured);
            let _ = quit(&mut secured_reader).await;
            let reason = format!(
                "{host} offers STARTTLS with a trusted certificate ({})",
                version.as_deref().unwrap_or("TLS")
            );
            (true, version, reason)
        }
        Err(NetError::Untrusted { reason, .. }) => {
            let reason = format!("{host} offers STARTTLS, but its certificate is {reason}");
            (false, None, reason)
        }
        Err(error) => {
            let reason = format!("{host} offers STARTTLS, but the handshake failed: {error}");
            (false, None, reason)
        }
    };
    let result = ProbeResult::Offered {
        certificate_trusted: trusted,
        tls_version: version,
    };
    Ok((result, reason, inspected.chain))
}

/// Returns whether the submission server offers REQUIRETLS once the
/// connection is protected (RFC 8689 section 4.1 lets a server offer it
/// only over TLS).
pub async fn submission_requiretls(
    server: &Server,
    tls: &TlsContext,
    timeout: Duration,
) -> Result<bool, String> {
    let dialog = async {
        let tcp = net::connect_tcp(&server.host, server.port)
            .await
            .map_err(|error| error.to_string())?;
        let helo = helo_name(&tcp);
        let tcp = match server.security {
            Security::Tls => tcp,
            Security::StartTls => {
                let mut plain = BufReader::new(tcp);
                expect(&mut plain, 220, "greeting").await?;
                let capabilities = ehlo(&mut plain, &helo).await?;
                if !has_keyword(&capabilities, "STARTTLS") {
                    return Err(format!("{} does not offer STARTTLS", server.host));
                }
                command(&mut plain, "STARTTLS").await?;
                expect(&mut plain, 220, "STARTTLS").await?;
                plain.into_inner()
            }
        };
        let mut secured = tls
            .handshake(tcp, &server.host, server.port)
            .await
            .map_err(|error| error.to_string())?;
        let mut reader = BufReader::new(&mut secured);
        if server.security == Security::Tls {
            expect(&mut reader, 220, "greeting").await?;
        }
        let capabilities = ehlo(&mut reader, &helo).await?;
        let _ = quit(&mut reader).await;
        Ok(has_keyword(&capabilities, "REQUIRETLS"))
    };
    tokio::time::timeout(timeout, dialog)
        .await
        .map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
}

/// Returns an address literal of the local end for EHLO (RFC 5321 section
/// 4.1.4), since a desktop has no host name that others can resolve.
fn helo_name(tcp: &TcpStream) -> String {
    match tcp.local_addr() {
        Ok(SocketAddr::V4(address)) => format!("[{}]", address.ip()),
        Ok(SocketAddr::V6(address)) => format!("[IPv6:{}]", address.ip()),
        Err(_) => "[127.0.0.1]".to_owned(),
    }
}

async fn ehlo<S>(stream: &mut BufReader<S>, helo: &str) -> Result<Vec<String>, String>
where
    S: tokio::io::AsyncRead + AsyncWrite + Unpin,
{
    command(stream, &format!("EHLO {helo}")).await?;
    expect(stream, 250, "EHLO").await
}

async fn quit<S>(stream: &mut BufReader<S>) -> Result<(), String>
where
    S: tokio::io::AsyncRead + AsyncWrite + Unpin,
{
    command(stream, "QUIT").await?;
    expect(stream, 221, "QUIT").await.map(|_| ())
}

async fn command<S>(stream: &mut BufReader<S>, line: &str) -> Result<(), String>
where
    S: tokio::io::AsyncRead + AsyncWrite + Unpin,
{
    let inner = stream.get_mut();
    inner
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .map_err(|error| format!("cannot send a command: {error}"))?;
    inner
        .flush()
        .await
        .map_err(|error| format!("cannot send a command: {error}"))
}

/// Reads one reply and returns its text lines when the code is `code`.
async fn expect<S>(stream: &mut S, code: u16, step: &str) -> Result<Vec<String>, String>
where
    S: AsyncBufRead + Unpin,
{
    let (received, lines) = read_reply(stream).await?;
    if received != code {
        return Err(format!(
            "the server replied {received} to {step} instead of {code}"
        ));
    }
    Ok(lines)
}

/// Reads a possibly multi-line reply (RFC 5321 section 4.2.1).
async fn read_reply<S>(stream: &mut S) -> Result<(u16, Vec<String>), String>
where
    S: AsyncBufRead + Unpin,
{
    let mut lines = Vec::new();
    loop {
        let mut buffer = Vec::new();
        let read = (&mut *stream)
            .take(MAX_LINE_BYTES as u64)
            .read_until(b'\n', &mut buffer)
            .await
            .map_err(|error| format!("cannot read the reply: {error}"))?;
        if read == 0 {
            return Err("the server closed the connection".to_owned());
        }
        let line = String::from_utf8_lossy(&buffer);
        let line = line.trim_end_matches(['\r', '\n']);
        let code: u16 = line
            .get(..3)
            .and_then(|digits| digits.parse().ok())
            .ok_or_else(|| "the server sent a line that is not an SMTP reply".to_owned())?;
        lines.push(line.get(4..).unwrap_or("").to_owned());
        let last = line.as_bytes().get(3) != Some(&b'-');
        if last {
            return Ok((code, lines));
        }
        if lines.len() >= MAX_REPLY_LINES {
            return Err(format!("the reply has more than {MAX_REPLY_LINES} lines"));
        }
    }
}

fn has_keyword(capabilities: &[String], keyword: &str) -> bool {
    capabilities.iter().any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|word| word.eq_ignore_ascii_case(keyword))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reply_multiline_parsed() {
        let input: &[u8] = b"250-mx.example.org\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
        let mut reader = BufReader::new(input);
        let (code, lines) = read_reply(&mut reader).await.unwrap();
        assert_eq!(code, 250);
        assert_eq!(lines.len(), 3);
        assert!(has_keyword(&lines, "starttls"));
        assert!(!has_keyword(&lines, "REQUIRETLS"));
    }

    #[tokio::test]
    async fn reply_garbage_rejected() {
        let input: &[u8] = b"HTTP/1.1 400 Bad Request\r\n";
        let mut reader = BufReader::new(input);
        assert!(read_reply(&mut reader).await.is_err());
    }
}
