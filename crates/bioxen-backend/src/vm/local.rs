//! Local VMs: a Lua interpreter in a pseudo-terminal.
//!
//! The child is the leader of its own session and process group (pty-process calls
//! `setsid`), so signals go to the whole group: a Lua script's `os.execute("sleep 100 &")`
//! dies with its VM instead of surviving as an orphan.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;

use super::{Control, Sink, Size, VmState};
use crate::error::{Error, Result};
use crate::lock;

/// Everything needed to start one local interpreter.
#[derive(Debug, Clone)]
pub struct LocalSpec {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Variables of bioxen's environment the VM must not inherit (secrets).
    pub env_remove: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub size: Size,
}

/// A started local interpreter.
pub struct LocalVm {
    pub reader: pty_process::OwnedReadPty,
    pub sink: LocalSink,
    pub control: LocalControl,
    pub child: tokio::process::Child,
}

pub fn spawn(spec: &LocalSpec) -> Result<LocalVm> {
    let program = spec
        .argv
        .first()
        .ok_or_else(|| Error::Manager("empty command line for a local VM".into()))?;
    let (pty, pts) = pty_process::open().map_err(pty_error)?;
    pty.resize(pty_size(spec.size)).map_err(pty_error)?;
    let mut cmd = pty_process::Command::new(program)
        .args(&spec.argv[1..])
        .env("TERM", "xterm-256color")
        .env("COLORTERM", "truecolor")
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    for name in &spec.env_remove {
        cmd = cmd.env_remove(name);
    }
    if let Some(dir) = &spec.cwd {
        if !dir.is_dir() {
            return Err(Error::Manager(format!(
                "the working directory {} ([local] cwd) does not exist or is not a directory",
                dir.display()
            )));
        }
        cmd = cmd.current_dir(dir);
    }
    let child = cmd.spawn(pts).map_err(|e| {
        Error::Manager(format!(
            "cannot start '{program}': {}",
            match e {
                pty_process::Error::Io(io) => io.to_string(),
                other => other.to_string(),
            }
        ))
    })?;
    let pid = child
        .id()
        .ok_or_else(|| Error::Manager(format!("'{program}' exited before it started")))?;
    let (reader, writer) = pty.into_split();
    Ok(LocalVm {
        reader,
        sink: LocalSink(writer),
        control: LocalControl {
            pid,
            group: Arc::default(),
        },
        child,
    })
}

/// Waits for the child and turns its status into a [`VmState`].
///
/// The child is reaped under the group lock, and the time is noted, so that
/// [`LocalControl`] never signals a process group whose id may have been handed to
/// someone else: see [`Group`].
pub async fn wait(mut child: tokio::process::Child, control: &LocalControl) -> VmState {
    use std::os::unix::process::ExitStatusExt;
    // The pidfd turns readable when the child exits, without reaping it.
    let exited = match pidfd(control.pid) {
        // SAFETY: the fd is owned by the AsyncFd and closed only when it is dropped.
        Some(fd) => match unsafe { tokio::io::unix::AsyncFd::register(fd) } {
            Ok(fd) => fd.readable().await.map(|mut g| g.clear_ready()).is_ok(),
            Err(_) => false,
        },
        None => false,
    };
    let status = {
        let mut group = lock(&control.group);
        let status = if exited {
            child.try_wait().transpose()
        } else {
            None
        };
        if status.is_some() {
            group.reaped_at = Some(super::proc_stats::boot_ticks());
        }
        status
    };
    let status = match status {
        Some(s) => s,
        // No pidfd (an old kernel): reap the ordinary way and note the time at once.
        None => {
            let s = child.wait().await;
            lock(&control.group).reaped_at = Some(super::proc_stats::boot_ticks());
            s
        }
    };
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => VmState::Exited(code),
            (None, Some(sig)) => VmState::Killed(sig),
            (None, None) => VmState::Failed("unknown exit status".into()),
        },
        Err(e) => VmState::Failed(format!("wait failed: {e}")),
    }
}

fn pidfd(pid: u32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a non-negative result is a fresh fd that nothing else owns.
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

pub struct LocalSink(pty_process::OwnedWritePty);

impl Sink for LocalSink {
    async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.0.write_all(data).await?;
        self.0.flush().await
    }

    async fn resize(&mut self, size: Size) -> std::io::Result<()> {
        self.0.resize(pty_size(size)).map_err(|e| match e {
            pty_process::Error::Io(io) => io,
            other => std::io::Error::other(other.to_string()),
        })
    }
}

/// Signals for a VM's process group.
///
/// The interpreter leads its own session, so its pid is also the id of its process
/// group. While the leader is unreaped (alive or a zombie) that id is held and cannot
/// name anyone else's group. Once it is reaped, the id is still held only while some
/// process of the group lives; after that the kernel may hand it to an unrelated
/// process, and a late `kill(-pid)` would hit a stranger. So after the reap the group
/// is signalled only if it still has a member that started before the reap: such a
/// member has kept the group, and so its id, ours all along.
pub struct LocalControl {
    pid: u32,
    group: Arc<Mutex<Group>>,
}

#[derive(Default)]
struct Group {
    /// When the leader was reaped, in clock ticks since boot (as `/proc/PID/stat`).
    reaped_at: Option<u64>,
}

impl LocalControl {
    fn signal_group(&self, sig: i32) {
        let group = lock(&self.group);
        if let Some(reaped_at) = group.reaped_at
            && !super::proc_stats::group_has_member_started_before(self.pid, reaped_at)
        {
            return;
        }
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is touched.
        unsafe {
            libc::kill(-(self.pid as libc::pid_t), sig);
        }
    }
}

impl Control for LocalControl {
    fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }

    fn terminate(&self) {
        self.signal_group(libc::SIGTERM);
    }

    fn kill(&self) {
        self.signal_group(libc::SIGKILL);
    }
}

fn pty_size(size: Size) -> pty_process::Size {
    pty_process::Size::new(size.rows.clamp(1, Size::MAX), size.cols.clamp(1, Size::MAX))
}

fn pty_error(e: pty_process::Error) -> Error {
    Error::Manager(format!("cannot open a pseudo-terminal: {e}"))
}
