//! Synchronisation of an IMAP account into the local store.
//!
//! Per folder (RFC 3501 section 2.3.1.1, RFC 4549): a changed UIDVALIDITY
//! discards the cached folder; otherwise only UIDs at or above the stored
//! UIDNEXT are fetched. Flag changes come from CONDSTORE's CHANGEDSINCE
//! when the server has it (RFC 7162 section 3.1.4), or from a re-fetch of
//! every flag; expunged messages from QRESYNC's VANISHED (RFC 7162 section
//! 3.2.10), or from comparing UID sets when the counts differ.
//!
//! Envelopes are written by a separate thread in batches while the fetch
//! is still streaming, so a 50,000-message folder costs about one FETCH.

use std::sync::Arc;
use std::sync::mpsc;

use crate::imap::{Connection, ImapError, RemoteEnvelope, Selected};
use crate::store::{Folder, Store, StoreError};

/// Envelopes written per store transaction.
const BATCH: usize = 2_000;

/// Errors from a sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The server failed.
    #[error(transparent)]
    Imap(#[from] ImapError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The folder's UIDVALIDITY changed since the last sync, so cached
    /// UIDs may name other messages now.
    #[error(
        "folder {name:?} was rebuilt on the server; its messages are fetched again at the next sync, then try again"
    )]
    FolderChanged {
        /// The folder's display name.
        name: String,
    },
    /// A store worker thread died.
    #[error("cannot write to the local mail store: its worker stopped ({0})")]
    Worker(String),
}

/// What a sync is doing, for progress displays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The folder list was read.
    Folders {
        /// How many folders.
        count: usize,
    },
    /// A folder is being synced.
    Folder {
        /// Display name.
        name: String,
        /// Position in the folder list, from 1.
        position: usize,
        /// Number of folders.
        of: usize,
    },
    /// Envelopes stored so far in the current folder.
    Envelopes {
        /// Stored so far.
        done: usize,
    },
}

/// The outcome of syncing one folder.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FolderReport {
    /// Display name.
    pub name: String,
    /// Envelopes added.
    pub added: usize,
    /// Messages whose flags changed.
    pub flags_changed: usize,
    /// Messages removed because the server expunged them.
    pub removed: usize,
    /// Messages in the folder after the sync.
    pub total: u32,
}

/// Runs a blocking store call on tokio's blocking pool.
pub async fn blocking<T, F>(store: &Arc<Store>, call: F) -> Result<T, SyncError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
{
    let store = store.clone();
    tokio::task::spawn_blocking(move || call(&store))
        .await
        .map_err(|e| SyncError::Worker(e.to_string()))?
        .map_err(SyncError::from)
}

/// Syncs the folder list and every selectable folder of an account.
pub async fn sync_account(
    connection: &mut Connection,
    store: &Arc<Store>,
    account: &str,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Vec<FolderReport>, SyncError> {
    let folders = sync_folder_list(connection, store, account, progress).await?;
    let mut reports = Vec::with_capacity(folders.len());
    for (index, folder) in folders.iter().enumerate() {
        progress(Progress::Folder {
            name: folder.name.clone(),
            position: index + 1,
            of: folders.len(),
        });
        reports.push(sync_folder(connection, store, folder, progress).await?);
    }
    tracing::info!(account, folders = reports.len(), "sync done");
    Ok(reports)
}

/// Saves the server's folder list and returns the selectable folders in
/// display order.
pub async fn sync_folder_list(
    connection: &mut Connection,
    store: &Arc<Store>,
    account: &str,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Vec<Folder>, SyncError> {
    let remote = connection.folders().await?;
    progress(Progress::Folders {
        count: remote.len(),
    });
    let account_id = account.to_owned();
    blocking(store, move |s| s.save_folders(&account_id, &remote)).await?;
    let account_id = account.to_owned();
    let folders = blocking(store, move |s| s.folders(&account_id)).await?;
    Ok(folders.into_iter().filter(|f| f.selectable).collect())
}

/// Syncs one folder: new messages, flag changes and expunges.
pub async fn sync_folder(
    connection: &mut Connection,
    store: &Arc<Store>,
    folder: &Folder,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<FolderReport, SyncError> {
    let id = folder.id;
    let lock = store.folder_lock(id);
    let _sync_guard = lock.lock().await;
    let selected = connection.select(&folder.raw_name).await?;
    let mut state = blocking(store, move |s| s.folder_state(id)).await?;
    if state.uid_validity != 0 && state.uid_validity != selected.uid_validity {
        tracing::info!(folder = id, "UIDVALIDITY changed; refetching the folder");
        blocking(store, move |s| s.clear_folder(id)).await?;
        state = Default::default();
    }
    let mut report = FolderReport {
        name: folder.name.clone(),
        ..FolderReport::default()
    };
    let first_sync = state.uid_validity == 0;

    if first_sync || selected.uid_next > state.uid_next {
        let set = if first_sync {
            "1:*".to_owned()
        } else {
            format!("{}:*", state.uid_next)
        };
        let floor = if first_sync { 0 } else { state.uid_next };
        if selected.exists > 0 {
            report.added = fetch_into_store(connection, store, id, &set, floor, progress).await?;
        }
    }

    if !first_sync {
        let (changed, removed) = reconcile(connection, store, id, &state, &selected).await?;
        report.flags_changed = changed;
        report.removed = removed;
    }

    blocking(store, move |s| s.set_folder_state(id, &selected)).await?;
    report.total = blocking(store, move |s| s.count(id)).await?;
    tracing::debug!(
        folder = id,
        added = report.added,
        removed = report.removed,
        "folder synced"
    );
    Ok(report)
}

/// Applies flag changes and expunges since the last sync, and fetches any
/// message the server has that the store lacks. Returns how many flag
/// updates were applied and how many messages were removed.
async fn reconcile(
    connection: &mut Connection,
    store: &Arc<Store>,
    id: i64,
    state: &crate::store::FolderState,
    selected: &Selected,
) -> Result<(usize, usize), SyncError> {
    // `None`: nothing changed; `Some(None)`: fetch every flag (no
    // CONDSTORE); `Some(Some(m))`: fetch flags changed since MODSEQ m.
    let since = match (connection.condstore(), state.highest_modseq) {
        (true, Some(modseq)) if selected.highest_modseq == Some(modseq) => None,
        (true, stored) => Some(Some(stored.unwrap_or(1))),
        (false, _) => Some(None),
    };
    let mut changed = 0;
    let mut vanished_ranges = Vec::new();
    if let Some(modseq) = since {
        let changes = connection.fetch_flags(modseq).await?;
        changed = changes.flags.len();
        vanished_ranges = changes.vanished;
        let flags = changes.flags;
        blocking(store, move |s| s.save_flags(id, &flags)).await?;
    }

    let local = blocking(store, move |s| s.uids(id)).await?;
    let mut vanished: Vec<u32> = local
        .iter()
        .copied()
        .filter(|uid| {
            vanished_ranges
                .iter()
                .any(|(low, high)| (low..=high).contains(&uid))
        })
        .collect();
    let local_count = local.len() - vanished.len();
    if local_count != selected.exists as usize {
        let remote = connection.all_uids().await?;
        vanished = local.difference(&remote).copied().collect();
        let mut missing: Vec<u32> = remote.difference(&local).copied().collect();
        if !missing.is_empty() {
            missing.sort_unstable();
            tracing::info!(
                folder = id,
                count = missing.len(),
                "fetching messages missing locally"
            );
            fetch_into_store(connection, store, id, &uid_set(&missing), 0, &|_| {}).await?;
        }
    }
    let removed = vanished.len();
    if removed > 0 {
        blocking(store, move |s| s.delete_messages(id, &vanished)).await?;
    }
    Ok((changed, removed))
}

/// Writes sorted UIDs as an IMAP sequence set, joining runs ("1,5:9").
fn uid_set(uids: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut index = 0;
    while index < uids.len() {
        let start = uids[index];
        let mut end = start;
        while index + 1 < uids.len() && uids[index + 1] == end + 1 {
            index += 1;
            end = uids[index];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        index += 1;
    }
    parts.join(",")
}

/// Streams envelopes for `set` into the store through a writer thread.
async fn fetch_into_store(
    connection: &mut Connection,
    store: &Arc<Store>,
    folder: i64,
    set: &str,
    min_uid: u32,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<usize, SyncError> {
    let (sender, receiver) = mpsc::channel::<Vec<RemoteEnvelope>>();
    let writer_store = store.clone();
    let writer = tokio::task::spawn_blocking(move || -> Result<usize, StoreError> {
        let mut written = 0;
        for batch in receiver {
            writer_store.save_envelopes(folder, &batch)?;
            written += batch.len();
        }
        Ok(written)
    });

    let mut batch = Vec::with_capacity(BATCH);
    let mut seen = 0usize;
    let mut writer_gone = false;
    let fetched = connection
        .fetch_envelopes(set, |envelope| {
            // "N:*" also returns the highest existing UID when it is below
            // N (RFC 3501 section 6.4.8), which is a message already stored.
            if envelope.uid < min_uid {
                return;
            }
            batch.push(envelope);
            if batch.len() == BATCH {
                seen += BATCH;
                progress(Progress::Envelopes { done: seen });
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                writer_gone |= sender.send(full).is_err();
            }
        })
        .await;
    if !batch.is_empty() {
        writer_gone |= sender.send(batch).is_err();
    }
    drop(sender);
    let written = writer
        .await
        .map_err(|e| SyncError::Worker(e.to_string()))??;
    fetched?;
    if writer_gone {
        return Err(SyncError::Worker(
            "the envelope writer stopped early".into(),
        ));
    }
    progress(Progress::Envelopes { done: written });
    Ok(written)
}

/// Selects a folder for acting on cached UIDs. When the server's
/// UIDVALIDITY differs from the stored one, the cache is discarded and an
/// error returned, so that no action reaches a different message.
pub async fn select_verified(
    connection: &mut Connection,
    store: &Arc<Store>,
    folder: &Folder,
) -> Result<Selected, SyncError> {
    let id = folder.id;
    let selected = connection.select(&folder.raw_name).await?;
    let state = blocking(store, move |s| s.folder_state(id)).await?;
    if state.uid_validity != 0 && state.uid_validity != selected.uid_validity {
        tracing::warn!(
            folder = id,
            "UIDVALIDITY changed; discarding the cached folder"
        );
        blocking(store, move |s| s.clear_folder(id)).await?;
        return Err(SyncError::FolderChanged {
            name: folder.name.clone(),
        });
    }
    Ok(selected)
}

/// Returns a message's raw bytes from the cache, fetching and caching them
/// on first use.
pub async fn message_body(
    connection: &mut Connection,
    store: &Arc<Store>,
    folder: &Folder,
    uid: u32,
) -> Result<Option<Vec<u8>>, SyncError> {
    let id = folder.id;
    if let Some(raw) = blocking(store, move |s| s.body(id, uid)).await? {
        return Ok(Some(raw));
    }
    connection.select(&folder.raw_name).await?;
    let Some(raw) = connection.fetch_raw(uid).await? else {
        return Ok(None);
    };
    let copy = raw.clone();
    blocking(store, move |s| s.save_body(id, uid, &copy)).await?;
    Ok(Some(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_set_joins_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[]), "");
    }
}
