//! Background streams: live updates of the open folder over IMAP IDLE
//! (RFC 2177), and the full sync with its progress reports.
//!
//! The watcher owns its own IMAP connection, because IDLE occupies a
//! connection for as long as it waits and the session's shared connection
//! must stay free for opening messages and changing flags.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::SinkExt;
use futures::channel::mpsc;
use iced::Subscription;
use iced::futures::Stream;

use wardmail::imap::Connection;
use wardmail::session::{Session, SessionError};
use wardmail::store::Folder;
use wardmail::sync::{FolderReport, Progress};

/// How long one IDLE command waits before it is renewed. RFC 2177 advises
/// re-issuing IDLE at least every 29 minutes, and five minutes also
/// notices a silently dropped connection sooner.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Polling interval for servers without IDLE.
const POLL_INTERVAL: Duration = Duration::from_secs(120);

/// First and maximum wait before reconnecting after an error. The wait
/// doubles after each failed attempt.
const FIRST_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY: Duration = Duration::from_secs(300);

/// What the watcher reports.
#[derive(Clone, Debug)]
pub enum Event {
    /// Connected and watching the folder.
    Watching {
        /// The folder's local id.
        folder: i64,
    },
    /// The folder was synced after the server reported a change.
    Changed {
        /// The folder's local id.
        folder: i64,
        /// What the sync found.
        report: FolderReport,
    },
    /// The connection failed; the watcher tries again after `retry_in`.
    Lost {
        /// What failed.
        error: Arc<SessionError>,
        /// The wait before the next attempt.
        retry_in: Duration,
    },
}

/// The data a watcher subscription is built from. Two watchers are the
/// same subscription when they watch the same folder of the same account.
#[derive(Clone, Debug)]
struct Watch {
    session: Arc<Session>,
    folder: Folder,
}

impl Hash for Watch {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.session.account.id.hash(state);
        self.folder.id.hash(state);
        self.folder.raw_name.hash(state);
    }
}

/// Watches `folder` for changes until the subscription is dropped (when
/// another folder is opened or the window closes).
pub fn watch(session: Arc<Session>, folder: Folder) -> Subscription<Event> {
    Subscription::run_with(Watch { session, folder }, watcher)
}

fn watcher(watch: &Watch) -> impl Stream<Item = Event> + use<> {
    let watch = watch.clone();
    iced::stream::channel(8, async move |mut output: mpsc::Sender<Event>| {
        let mut retry = FIRST_RETRY;
        loop {
            let error = match connect(&watch).await {
                Ok(connection) => {
                    retry = FIRST_RETRY;
                    let _ = output
                        .send(Event::Watching {
                            folder: watch.folder.id,
                        })
                        .await;
                    watch_until_error(&watch, connection, &mut output).await
                }
                Err(error) => error,
            };
            tracing::warn!(
                folder = watch.folder.id,
                retry_in = retry.as_secs(),
                "live updates lost"
            );
            let lost = Event::Lost {
                error: Arc::new(error),
                retry_in: retry,
            };
            if output.send(lost).await.is_err() {
                return;
            }
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(MAX_RETRY);
        }
    })
}

async fn connect(watch: &Watch) -> Result<Connection, SessionError> {
    Ok(watch.session.connect().await?)
}

/// Syncs the folder once, then waits in IDLE and syncs again after each
/// change. Returns the error that ended the connection.
async fn watch_until_error(
    watch: &Watch,
    mut connection: Connection,
    output: &mut mpsc::Sender<Event>,
) -> SessionError {
    let store = &watch.session.store;
    let folder = &watch.folder;
    loop {
        let report =
            match wardmail::sync::sync_folder(&mut connection, store, folder, &|_| {}).await {
                Ok(report) => report,
                Err(error) => return error.into(),
            };
        if output
            .send(Event::Changed {
                folder: folder.id,
                report,
            })
            .await
            .is_err()
        {
            connection.logout().await;
            return SessionError::Task("the window stopped listening".into());
        }

        // Wait until the server reports a change; a timeout renews IDLE.
        loop {
            if !connection.has("IDLE") {
                tokio::time::sleep(POLL_INTERVAL).await;
                break;
            }
            match connection.idle(IDLE_TIMEOUT).await {
                Ok((renewed, true)) => {
                    connection = renewed;
                    break;
                }
                Ok((renewed, false)) => connection = renewed,
                Err(error) => return error.into(),
            }
        }
    }
}

/// What the full sync reports.
#[derive(Clone, Debug)]
pub enum SyncEvent {
    /// Progress of the running sync.
    Progress(Progress),
    /// The sync ended.
    Finished(Result<Vec<FolderReport>, Arc<SessionError>>),
}

/// Syncs every folder of the account, reporting progress as it goes.
pub fn full_sync(session: Arc<Session>) -> impl Stream<Item = SyncEvent> {
    iced::stream::channel(32, async move |mut output: mpsc::Sender<SyncEvent>| {
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let work = async move {
            let report = move |progress: Progress| {
                let _ = sender.send(progress);
            };
            session.sync(&report).await
            // `report`, and with it the sender, is dropped here, which ends
            // the forwarding loop below.
        };
        let mut forward = output.clone();
        let forwarding = async move {
            while let Some(progress) = receiver.recv().await {
                let _ = forward.send(SyncEvent::Progress(progress)).await;
            }
        };
        let (result, ()) = futures::join!(work, forwarding);
        let _ = output
            .send(SyncEvent::Finished(result.map_err(Arc::new)))
            .await;
    })
}
