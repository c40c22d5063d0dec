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
use std::time::SystemTime;

use bioxen_config::Config;

/// `t` in whole seconds since the Unix epoch, as the journal and log notes keep times.
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A Unix time broken down in local time: for the `12:03` a lost VM gives and the
/// stamps `bioxen logs -t` prints.
pub fn local_time(unix: u64) -> libc::tm {
    let t = unix as libc::time_t;
    // SAFETY: localtime_r writes only into the struct we pass it.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        tm
    }
}

/// Where one server keeps its journal and its VMs' logs: folders named after its
/// socket, as `server-1a2b3c4d` (the socket's name, then a hash of its whole path), so
/// two servers never share either, even with runtime directories of their own, and
/// the same socket finds them again after a reboot.
#[derive(Debug, Clone)]
pub struct Places {
    pub journal: PathBuf,
    pub logs: PathBuf,
}

impl Places {
    pub fn of(config: &Config, socket: &Path) -> Places {
        use std::os::unix::ffi::OsStrExt;
        let stem = socket
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "server".into());
        // FNV-1a: stable across builds and machines, unlike the std hasher.
        let hash = socket
            .as_os_str()
            .as_bytes()
            .iter()
            .fold(0x811c_9dc5_u32, |h, &b| {
                (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
            });
        let name = format!("{stem}-{hash:08x}");
        Places {
            journal: config.state_dir().join(&name),
            logs: config.output_log_dir().join(&name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_socket_has_places_of_its_own_and_keeps_them() {
        let config = Config::default();
        let a = Places::of(&config, Path::new("/run/user/1000/bioxen/server.sock"));
        let again = Places::of(&config, Path::new("/run/user/1000/bioxen/server.sock"));
        let b = Places::of(&config, Path::new("/tmp/test-1/bioxen/server.sock"));
        assert_eq!(a.journal, again.journal);
        assert_ne!(a.journal, b.journal);
        assert_ne!(a.logs, b.logs);
        let name = a
            .journal
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("server-") && name.len() == 15, "{name}");
    }
}
