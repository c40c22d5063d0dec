//! The server's journal kept current: restored from at start, written after every
//! change of the VM list, and given a last word when the server ends.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::manager::{Event, Manager};
use crate::persist::journal::{Journal, JournalFile, Stopped, boot_id};

/// Takes the journal in `dir` and makes again the VMs the server before left in it.
/// `None` (with a warning) when it cannot be taken: the server then keeps nothing.
pub fn open(manager: &Manager, dir: &Path) -> Option<Arc<JournalFile>> {
    let (file, previous) = match JournalFile::open(dir) {
        Ok(opened) => opened,
        Err(e) => {
            tracing::warn!("no journal, so nothing survives this server: {e}");
            return None;
        }
    };
    if let Some(previous) = previous {
        let rerun = manager.restore(&previous);
        tracing::info!(
            vms = previous.vms.len(),
            rerun = rerun.len(),
            "restored the VMs of the server before"
        );
        manager.rerun_restored(rerun);
    }
    Some(Arc::new(file))
}

/// Writes the journal now, and again after each change to the list; a burst of
/// changes (an experiment starting) is one write.
pub async fn keep(manager: Manager, file: Arc<JournalFile>) {
    let mut events = manager.subscribe();
    loop {
        // Off the async workers: a list of hundreds of VMs is a few hundred KiB.
        let (m, f) = (manager.clone(), file.clone());
        let _ = tokio::task::spawn_blocking(move || write(&m, &f)).await;
        loop {
            match events.recv().await {
                Ok(e) if changes_the_journal(&e) => break,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return,
            }
        }
        loop {
            match events.try_recv() {
                Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return,
            }
        }
    }
}

fn changes_the_journal(event: &Event) -> bool {
    matches!(
        event,
        Event::Created(_) | Event::State(..) | Event::Removed(_) | Event::Renamed(..)
    )
}

/// The last word of a server that ends: its VMs as they are now, for the next server
/// (`stopped` on a signal), or none (it was asked to end them).
pub fn write_last(manager: &Manager, file: &JournalFile, stopped: Option<&str>) {
    let mut journal = journal(manager);
    match stopped {
        Some(why) => {
            journal.stopped = Some(Stopped {
                at_unix: journal.updated_unix,
                why: why.to_string(),
            });
        }
        None => journal.vms.clear(),
    }
    if let Err(e) = file.write_last(&journal) {
        tracing::warn!("the journal could not be written: {e}");
    }
}

fn write(manager: &Manager, file: &JournalFile) {
    if let Err(e) = file.write(&journal(manager)) {
        tracing::warn!("the journal could not be written: {e}");
    }
}

fn journal(manager: &Manager) -> Journal {
    Journal {
        pid: std::process::id(),
        boot_id: boot_id(),
        updated_unix: crate::persist::unix_secs(std::time::SystemTime::now()),
        next_vm: manager.next_vm(),
        stopped: None,
        vms: manager.records(),
    }
}
