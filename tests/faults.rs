//! Faults a real server will not produce on demand, from scripted
//! in-process servers on loopback: STARTTLS advertised then refused, a
//! connection cut in the middle of a FETCH, a garbled response, and an SMTP
//! connection cut after the message text was sent. The scripted servers use
//! the test CA's server certificate, so the client's TLS checks stay on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use wardmail::account::Security;
use wardmail::imap::ImapError;
use wardmail::net::NetError;
use wardmail::session::SessionError;
use wardmail::store::OutboxState;
use wardmail::sync::blocking;

fn acceptor() -> tokio_rustls::TlsAcceptor {
    let dir = PathBuf::from(support::env("DIR"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// What a scripted server does with one command line.
enum Reply {
    /// Send these bytes and keep reading.
    Send(String),
    /// Send these bytes, then close the connection.
    SendAndClose(String),
}

/// Serves one connection: a greeting, then one reply per line.
async fn script<S>(stream: S, greeting: &str, reply: impl Fn(&str) -> Reply)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut stream = BufReader::new(stream);
    stream
        .get_mut()
        .write_all(greeting.as_bytes())
        .await
        .unwrap();
    let mut line = String::new();
    while stream.read_line(&mut line).await.unwrap_or(0) > 0 {
        match reply(line.trim_end()) {
            Reply::Send(text) => stream.get_mut().write_all(text.as_bytes()).await.unwrap(),
            Reply::SendAndClose(text) => {
                let _ = stream.get_mut().write_all(text.as_bytes()).await;
                let _ = stream.get_mut().shutdown().await;
                return;
            }
        }
        line.clear();
    }
}

/// Replies to an IMAP session up to SELECT. FETCH gets `fetch_reply`.
fn imap_reply(line: &str, fetch_reply: &str) -> Reply {
    let (tag, command) = line.split_once(' ').unwrap_or((line, ""));
    let upper = command.to_ascii_uppercase();
    let ok = |extra: &str| Reply::Send(format!("{extra}{tag} OK done\r\n"));
    if upper.starts_with("LOGIN") {
        ok("")
    } else if upper.starts_with("CAPABILITY") {
        ok("* CAPABILITY IMAP4rev1\r\n")
    } else if upper.starts_with("LIST") {
        ok("* LIST () \"/\" INBOX\r\n")
    } else if upper.starts_with("SELECT") {
        ok("* 2 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n* OK [UIDNEXT 3] x\r\n")
    } else if upper.starts_with("UID FETCH") {
        Reply::SendAndClose(fetch_reply.to_owned())
    } else if upper.starts_with("LOGOUT") {
        Reply::SendAndClose(format!("* BYE\r\n{tag} OK bye\r\n"))
    } else {
        Reply::Send(format!("{tag} BAD unknown\r\n"))
    }
}

/// Starts a scripted implicit-TLS IMAP server; returns its port.
async fn imap_fault_server(fetch_reply: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = acceptor();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    script(tls, "* OK fault server ready\r\n", |line| {
                        imap_reply(line, fetch_reply)
                    })
                    .await;
                }
            });
        }
    });
    port
}

fn fault_account(user: &str, port: u16) -> wardmail::account::Account {
    let mut account = support::account(user);
    account.imap.port = port;
    account.imap.security = Security::Tls;
    account
}

/// Replies to a complete IMAP session of a server with no extensions beyond
/// IMAP4rev1 (no CONDSTORE, QRESYNC, MOVE or UIDPLUS), holding two
/// messages.
fn plain_imap_reply(line: &str) -> Reply {
    let (tag, command) = line.split_once(' ').unwrap_or((line, ""));
    let upper = command.to_ascii_uppercase();
    if upper.starts_with("UID FETCH") && upper.contains("HEADER.FIELDS") {
        let mut text = String::new();
        for uid in 1..=2 {
            let header = format!("From: lab{uid}@example.org\r\nSubject: result {uid}\r\n\r\n");
            text.push_str(&format!(
                "* {uid} FETCH (UID {uid} FLAGS () RFC822.SIZE 99 BODY[HEADER.FIELDS (FROM SUBJECT)] {{{}}}\r\n{header})\r\n",
                header.len()
            ));
        }
        return Reply::Send(format!("{text}{tag} OK done\r\n"));
    }
    if upper.starts_with("UID FETCH") {
        assert!(
            !upper.contains("CHANGEDSINCE"),
            "CHANGEDSINCE sent to a server without CONDSTORE: {line}"
        );
        return Reply::Send(format!(
            "* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n* 2 FETCH (UID 2 FLAGS ())\r\n{tag} OK done\r\n"
        ));
    }
    if upper.starts_with("UID SEARCH") {
        return Reply::Send(format!("* SEARCH 1 2\r\n{tag} OK done\r\n"));
    }
    imap_reply(line, "")
}

#[tokio::test(flavor = "multi_thread")]
async fn resync_without_condstore() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = acceptor();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    script(tls, "* OK plain server ready\r\n", plain_imap_reply).await;
                }
            });
        }
    });
    let (_dir, session) = support::session(fault_account("fault-plain", port)).await;
    let first = session.sync(&|_| {}).await.unwrap();
    assert_eq!(first[0].added, 2);
    let second = session.sync(&|_| {}).await.unwrap();
    assert_eq!(second[0].added, 0);
    assert_eq!(second[0].total, 2);
    let inbox = session.folder("INBOX").await.unwrap();
    let id = inbox.id;
    let rows = blocking(&session.store, move |s| s.list(id, 0, 10))
        .await
        .unwrap();
    let seen: Vec<(u32, bool)> = rows.iter().map(|r| (r.uid, r.seen)).collect();
    assert!(seen.contains(&(1, true)), "{seen:?}");
    assert!(seen.contains(&(2, false)), "{seen:?}");
}

const HEADER_1: &str = "From: lab@example.org\r\nSubject: one\r\n\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn fetch_cut_midway_fails_cleanly() {
    let reply: &'static str = Box::leak(
        format!(
            "* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 10 BODY[HEADER.FIELDS (FROM)] {{{}}}\r\n{HEADER_1})\r\n\
             * 2 FETCH (UID 2 FLAGS () RFC822.SIZE 10 BODY[HEADER.FIELDS (FROM)] {{400}}\r\nFrom: cut",
            HEADER_1.len()
        )
        .into_boxed_str(),
    );
    let port = imap_fault_server(reply).await;
    let (_dir, session) = support::session(fault_account("fault-cut", port)).await;
    let error = session.sync(&|_| {}).await.unwrap_err();
    assert!(matches!(error, SessionError::Sync(_)), "{error}");

    // The store is still usable and the folder is not marked as synced, so
    // the next sync fetches it again.
    let inbox = session.folder("INBOX").await.unwrap();
    let id = inbox.id;
    let state = blocking(&session.store, move |s| s.folder_state(id))
        .await
        .unwrap();
    assert_eq!(state.uid_validity, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn garbled_response_is_an_error() {
    let port = imap_fault_server("* 1 FETCH (((( garbage \u{1}\r\n").await;
    let (_dir, session) = support::session(fault_account("fault-garbled", port)).await;
    let error = session.sync(&|_| {}).await.unwrap_err();
    assert!(matches!(error, SessionError::Sync(_)), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn imap_starttls_refused_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let logins = Arc::new(AtomicUsize::new(0));
    let seen = logins.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                script(
                    tcp,
                    "* OK [CAPABILITY IMAP4rev1 STARTTLS] plain greeting\r\n",
                    |line| {
                        let (tag, command) = line.split_once(' ').unwrap_or((line, ""));
                        if command.to_ascii_uppercase().starts_with("LOGIN") {
                            seen.fetch_add(1, Ordering::SeqCst);
                        }
                        Reply::Send(format!("{tag} NO TLS is not available now\r\n"))
                    },
                )
                .await;
            });
        }
    });
    let mut account = support::account("fault-starttls");
    account.imap.port = port;
    let check = wardmail::session::test_connection(&account, &support::password()).await;
    let error = check.imap.unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::Imap(ImapError::Net(NetError::StartTlsMissing { .. }))
        ),
        "{error}"
    );
    assert_eq!(
        logins.load(Ordering::SeqCst),
        0,
        "a password was sent in clear"
    );
}

/// Starts a scripted implicit-TLS SMTP server that accepts everything but
/// drops the connection right after the message text; returns its port and
/// the number of messages it received.
async fn smtp_cut_after_data() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let acceptor = acceptor();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, counter) = (acceptor.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let in_data = std::sync::atomic::AtomicBool::new(false);
                script(tls, "220 fault ESMTP\r\n", |line| {
                    if in_data.load(Ordering::SeqCst) {
                        if line == "." {
                            counter.fetch_add(1, Ordering::SeqCst);
                            return Reply::SendAndClose(String::new());
                        }
                        return Reply::Send(String::new());
                    }
                    let upper = line.to_ascii_uppercase();
                    if upper.starts_with("EHLO") {
                        Reply::Send("250-fault\r\n250 AUTH PLAIN LOGIN\r\n".into())
                    } else if upper.starts_with("AUTH") {
                        Reply::Send("235 ok\r\n".into())
                    } else if upper.starts_with("DATA") {
                        in_data.store(true, Ordering::SeqCst);
                        Reply::Send("354 go on\r\n".into())
                    } else if upper.starts_with("QUIT") {
                        Reply::SendAndClose("221 bye\r\n".into())
                    } else {
                        Reply::Send("250 ok\r\n".into())
                    }
                })
                .await;
            });
        }
    });
    (port, received)
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_cut_after_data_is_not_resent_blindly() {
    let (port, received) = smtp_cut_after_data().await;
    let mut account = support::account("fault-smtp");
    account.smtp.port = port;
    account.smtp.security = Security::Tls;
    let (_dir, session) = support::session(account).await;
    let me = session.account.address.clone();
    let raw = support::message(&me, &me, "cut", "cut1@example.org");
    let error = session
        .send("<cut1@example.org>".into(), raw, vec![me])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("may have been sent"), "{error}");
    assert_eq!(received.load(Ordering::SeqCst), 1);

    let id = session.account.id.clone();
    let pending = blocking(&session.store, move |s| s.outbox(&id))
        .await
        .unwrap();
    assert_eq!(pending[0].state, OutboxState::Uncertain);

    // A plain retry leaves it alone; only a confirmed resend submits again.
    assert!(session.flush_outbox().await.unwrap().is_empty());
    assert_eq!(received.load(Ordering::SeqCst), 1);
    let entry = pending[0].id;
    let _ = session.resend(entry, true).await;
    assert_eq!(received.load(Ordering::SeqCst), 2);
}
