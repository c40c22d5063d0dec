//! Which bioxen processes are running and what VMs they own, for `bioxen ls`.
//!
//! Each server writes its session list to `<pid>.json` beside its socket when it
//! changes and removes the file when it exits. `ls` reads the files of live processes and
//! ignores (and cleans up) the ones whose process is gone.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::manager::VmInfo;

#[derive(Debug, Serialize, Deserialize)]
pub struct Entry {
    pub pid: u32,
    /// The server's socket: `ls` asks it for the list as it is now, and falls back on
    /// `vms`, the list as of its last change, only when it does not answer.
    #[serde(default)]
    pub socket: Option<PathBuf>,
    pub vms: Vec<serde_json::Value>,
}

/// `$XDG_RUNTIME_DIR/bioxen`, else `/tmp/bioxen-<uid>`.
pub fn dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("bioxen"),
        // SAFETY: getuid has no preconditions and cannot fail.
        _ => std::env::temp_dir().join(format!("bioxen-{}", unsafe { libc::getuid() })),
    }
}

/// Publishes this process's VMs in `dir` (a server's socket directory).
pub fn publish_in(
    dir: &std::path::Path,
    socket: &std::path::Path,
    vms: &[VmInfo],
) -> std::io::Result<()> {
    let entry = Entry {
        pid: std::process::id(),
        socket: Some(socket.to_path_buf()),
        vms: vms
            .iter()
            .filter_map(|v| serde_json::to_value(v).ok())
            .collect(),
    };
    let path = dir.join(format!("{}.json", entry.pid));
    bioxen_config::private_fs::write_atomic(&path, &serde_json::to_vec(&entry)?)
}

/// Removes this process's entry from `dir`.
pub fn withdraw_from(dir: &std::path::Path) {
    let _ = std::fs::remove_file(dir.join(format!("{}.json", std::process::id())));
}

/// The entries of all live bioxen processes.
///
/// Only entries this user wrote count: the directory must be private and each file a
/// regular file of this user's, named for the pid it describes.
pub fn read_all() -> Vec<Entry> {
    read_all_in(&dir())
}

/// Like [`read_all`], in `dir`.
pub fn read_all_in(dir: &std::path::Path) -> Vec<Entry> {
    let dir = dir.to_path_buf();
    if let Err(e) = bioxen_config::private_fs::check_private_dir(&dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            eprintln!("bioxen: {e}");
        }
        return Vec::new();
    }
    let Ok(files) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut entries = Vec::new();
    for file in files.flatten() {
        let path = file.path();
        let Some(pid) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(text) = bioxen_config::private_fs::read_own(&path, ENTRY_LIMIT) else {
            continue;
        };
        let Ok(entry) = serde_json::from_slice::<Entry>(&text) else {
            continue;
        };
        if entry.pid != pid {
            continue;
        }
        if bioxen_backend::vm::proc_stats::is_mine(entry.pid) {
            entries.push(entry);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    entries.sort_by_key(|e| e.pid);
    entries
}

/// More than any real entry: a thousand VMs are about 400 KiB.
const ENTRY_LIMIT: u64 = 16 << 20;
