//! Which bioxen processes are running and what VMs they own, for `bioxen ls`.
//!
//! Each dashboard writes its session list to `<runtime dir>/<pid>.json` when it changes
//! and removes the file when it exits. `ls` reads the files of live processes and
//! ignores (and cleans up) the ones whose process is gone.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::manager::VmInfo;

#[derive(Debug, Serialize, Deserialize)]
pub struct Entry {
    pub pid: u32,
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

/// Publishes this process's VMs.
pub fn publish(vms: &[VmInfo]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let entry = Entry {
        pid: std::process::id(),
        vms: vms
            .iter()
            .filter_map(|v| serde_json::to_value(v).ok())
            .collect(),
    };
    let path = dir.join(format!("{}.json", entry.pid));
    let tmp = dir.join(format!(".{}.json.tmp", entry.pid));
    std::fs::write(&tmp, serde_json::to_vec(&entry)?)?;
    std::fs::rename(tmp, path)
}

/// Removes this process's entry.
pub fn withdraw() {
    let _ = std::fs::remove_file(dir().join(format!("{}.json", std::process::id())));
}

/// The entries of all live bioxen processes.
pub fn read_all() -> Vec<Entry> {
    let Ok(files) = std::fs::read_dir(dir()) else {
        return Vec::new();
    };
    let mut entries = Vec::new();
    for file in files.flatten() {
        let path = file.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Ok(text) = std::fs::read(&path) else {
            continue;
        };
        let Ok(entry) = serde_json::from_slice::<Entry>(&text) else {
            continue;
        };
        if process_alive(entry.pid) {
            entries.push(entry);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    entries.sort_by_key(|e| e.pid);
    entries
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
