//! What the server keeps on disk so that nothing is lost with it: every VM's output
//! (rotated logs with the time each part arrived) and a journal of its VMs, from
//! which a server started after a crash or a reboot makes them again.
//!
//! The formats live here, on their own, because three readers share them: the server
//! that writes them, the next server that restores from them, and `bioxen logs` and
//! `bioxen ls`, which read them with no server running.

pub mod journal;
pub mod log_files;
pub mod log_writer;

use std::path::{Path, PathBuf};

use bioxen_config::Config;

/// Where one server keeps its journal and its VMs' logs: folders named as its socket
/// is (`server`, or the `NAME` of `-L NAME`), so two servers never share either.
#[derive(Debug, Clone)]
pub struct Places {
    pub journal: PathBuf,
    pub logs: PathBuf,
}

impl Places {
    pub fn of(config: &Config, socket: &Path) -> Places {
        let name = socket
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "server".into());
        Places {
            journal: config.state_dir().join(&name),
            logs: config.output_log_dir().join(&name),
        }
    }
}
