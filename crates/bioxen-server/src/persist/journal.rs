//! The server's journal: what it must remember to make its VMs again after it is
//! killed or the machine reboots.
//!
//! One JSON file per server (`<state dir>/<server>/journal.json`), replaced whole and
//! atomically after each change, so a crash at any moment leaves the last state or
//! the one before, never half of one. It holds each VM's spec, number, name, size,
//! state, restore policy, experiment (with its restart count), and for remote VMs
//! where they ran: the pool VM's reference, the SSH target and the held interpreter's
//! name. A lock beside it is held for the server's life: a journal whose lock is free
//! belongs to a server that is gone.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use bioxen_backend::vm::VmSpec;
use bioxen_proto::{Membership, Restore, VmId, VmState};
use serde::{Deserialize, Serialize};

const FILE: &str = "journal.json";
const LOCK: &str = "journal.lock";
/// A thousand VMs with long experiment specs are well under a MiB.
const LIMIT: u64 = 64 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    pub pid: u32,
    /// The kernel's boot id when the server wrote this: another one now means the
    /// machine rebooted since.
    pub boot_id: String,
    pub updated_unix: u64,
    /// The number the server would have given next: a new server goes on from it, so
    /// a number (and the log file named after it) is never given twice.
    pub next_vm: u64,
    /// Set when the server stopped on a signal (a shutdown, `systemctl stop`), with
    /// its VMs kept for the next one.
    #[serde(default)]
    pub stopped: Option<Stopped>,
    pub vms: Vec<VmRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stopped {
    pub at_unix: u64,
    pub why: String,
}

/// One VM as the journal keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmRecord {
    pub vm: VmId,
    pub name: String,
    pub spec: VmSpec,
    pub created_unix: u64,
    pub rows: u16,
    pub cols: u16,
    pub state: VmState,
    pub restore: Restore,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<Membership>,
    /// The pool VM an `xcpng` session ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_vm: Option<String>,
    /// Where a remote session's link went (`user@host:port`), for the record: a pool
    /// VM's address is always asked of the pool again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The name the remote interpreter is held under, to attach to it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

/// A server's journal, held for its life.
pub struct JournalFile {
    path: PathBuf,
    _lock: File,
    /// Set once the server's last word is written: the VMs it ends while it stops
    /// change nothing the next server should see. Behind a lock taken for the whole
    /// of each write: a write that had checked it before the last word, and finished
    /// after, would put back the VMs the last word had cleared.
    frozen: std::sync::Mutex<bool>,
}

/// The journal could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("another bioxen server keeps its journal in {0}")]
    Held(PathBuf),
}

impl JournalFile {
    /// Takes the journal in `dir` (made private if new) and reads what the server
    /// before left there.
    pub fn open(dir: &Path) -> Result<(JournalFile, Option<Journal>), JournalError> {
        let io = |e| JournalError::Io(dir.to_path_buf(), e);
        bioxen_config::private_fs::create_private_dir(dir).map_err(io)?;
        let lock = bioxen_config::private_fs::open_append(&dir.join(LOCK)).map_err(io)?;
        // SAFETY: flock on an fd we own; no memory is touched.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(JournalError::Held(dir.to_path_buf()));
        }
        let previous = read_file(&dir.join(FILE));
        Ok((
            JournalFile {
                path: dir.join(FILE),
                _lock: lock,
                frozen: std::sync::Mutex::new(false),
            },
            previous,
        ))
    }

    /// Replaces the journal with `journal`, unless it was frozen.
    pub fn write(&self, journal: &Journal) -> std::io::Result<()> {
        let frozen = bioxen_backend::lock(&self.frozen);
        if *frozen {
            return Ok(());
        }
        self.replace(journal)
    }

    /// Writes `journal` as the last word; nothing after it is written.
    pub fn write_last(&self, journal: &Journal) -> std::io::Result<()> {
        let mut frozen = bioxen_backend::lock(&self.frozen);
        *frozen = true;
        self.replace(journal)
    }

    fn replace(&self, journal: &Journal) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(journal).map_err(std::io::Error::other)?;
        bioxen_config::private_fs::write_atomic(&self.path, &json)
    }
}

/// The journal in `dir` when no server holds it: what `ls` shows of a server that is
/// gone.
pub fn read_orphaned(dir: &Path) -> Option<Journal> {
    let lock = File::open(dir.join(LOCK)).ok()?;
    // SAFETY: flock on an fd we own; no memory is touched.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } != 0 {
        return None;
    }
    read_file(&dir.join(FILE))
}

fn read_file(path: &Path) -> Option<Journal> {
    let text = bioxen_config::private_fs::read_own(path, LIMIT).ok()?;
    match serde_json::from_slice(&text) {
        Ok(j) => Some(j),
        Err(e) => {
            tracing::warn!(
                "{}: not a journal bioxen can read ({e}); starting afresh",
                path.display()
            );
            None
        }
    }
}

/// This boot of the machine, as the kernel names it.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl VmRecord {
    /// Whether it was running, or waiting to run, when its server wrote this.
    pub fn was_running(&self) -> bool {
        self.state.is_alive() || matches!(self.state, VmState::Waiting(_))
    }
}

impl Journal {
    /// The state of a VM it lists now that its server is gone: `lost`, when it was
    /// running, with why; `logs` is the server's folder of logs, whose newest write
    /// is the last sign of the VM.
    pub fn state_now(&self, record: &VmRecord, logs: &Path) -> VmState {
        if !record.was_running() {
            return record.state.clone();
        }
        let files = super::log_files::LogFiles::new(logs, record.vm);
        VmState::Lost(self.why_lost(files.modified_unix().unwrap_or(0)))
    }

    /// Why the VMs it lists are lost, now that a new server reads it: stopped on a
    /// signal, killed, or gone with the machine; `last_heard` is the newest sign of
    /// the VM (its log, or the journal itself).
    pub fn why_lost(&self, last_heard: u64) -> String {
        let heard = last_heard.max(self.updated_unix);
        match &self.stopped {
            Some(s) => format!("server stopped at {}: {}", clock(s.at_unix), s.why),
            None if self.boot_id != boot_id() => {
                format!("the machine rebooted; last heard {}", clock(heard))
            }
            None => format!("server killed; last heard {}", clock(heard)),
        }
    }
}

/// A Unix time as local wall-clock time: `12:03`, with the date when not today.
pub fn clock(unix: u64) -> String {
    let now = super::unix_secs(std::time::SystemTime::now());
    let (then, today) = (super::local_time(unix), super::local_time(now));
    let time = format!("{:02}:{:02}", then.tm_hour, then.tm_min);
    if (then.tm_year, then.tm_yday) == (today.tm_year, today.tm_yday) {
        time
    } else {
        format!(
            "{}-{:02}-{:02} {time}",
            then.tm_year + 1900,
            then.tm_mon + 1,
            then.tm_mday
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(boot_id: String, stopped: Option<Stopped>) -> Journal {
        Journal {
            pid: 1,
            boot_id,
            updated_unix: 0,
            next_vm: 1,
            stopped,
            vms: Vec::new(),
        }
    }

    #[test]
    fn a_lost_vm_says_whether_the_server_was_killed_stopped_or_the_machine_rebooted() {
        let killed = journal(boot_id(), None).why_lost(0);
        assert!(killed.starts_with("server killed; last heard "), "{killed}");
        let rebooted = journal("another-boot".into(), None).why_lost(0);
        assert!(rebooted.starts_with("the machine rebooted"), "{rebooted}");
        let stopped = Stopped {
            at_unix: 0,
            why: "it received SIGTERM".into(),
        };
        let stopped = journal(boot_id(), Some(stopped)).why_lost(0);
        assert!(stopped.ends_with(": it received SIGTERM"), "{stopped}");
    }

    /// The last word stays the last, even while other writes are under way: the
    /// server's journal keeper may be writing the list as the server ends.
    #[test]
    fn no_write_lands_after_the_last_word() {
        let dir = std::env::temp_dir().join(format!("bioxen-journal-last-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (file, _) = JournalFile::open(&dir).unwrap();
        let file = std::sync::Arc::new(file);
        let busy = journal(boot_id(), None);
        let mut last = busy.clone();
        last.next_vm = 99;
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let (file, busy) = (file.clone(), busy.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        file.write(&busy).unwrap();
                    }
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(2));
        file.write_last(&last).unwrap();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(read_file(&dir.join(FILE)).map(|j| j.next_vm), Some(99));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_server_holds_a_journal_and_a_gone_one_leaves_it_readable() {
        let dir = std::env::temp_dir().join(format!("bioxen-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (file, previous) = JournalFile::open(&dir).unwrap();
        assert!(previous.is_none());
        file.write(&journal(boot_id(), None)).unwrap();
        assert!(matches!(
            JournalFile::open(&dir),
            Err(JournalError::Held(_))
        ));
        assert!(
            read_orphaned(&dir).is_none(),
            "a live server's journal is its own"
        );
        drop(file);
        assert_eq!(read_orphaned(&dir).map(|j| j.pid), Some(1));
        let (_again, previous) = JournalFile::open(&dir).unwrap();
        assert_eq!(previous.map(|j| j.next_vm), Some(1));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
