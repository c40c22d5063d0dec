//! Local VMs: a Lua interpreter in a pseudo-terminal.
//!
//! The child is the leader of its own session and process group (pty-process calls
//! `setsid`), so signals go to the whole group: a Lua script's `os.execute("sleep 100 &")`
//! dies with its VM instead of surviving as an orphan.

use std::path::PathBuf;

use tokio::io::AsyncWriteExt;

use super::{Control, Sink, Size, VmState};
use crate::error::{Error, Result};

/// Everything needed to start one local interpreter.
#[derive(Debug, Clone)]
pub struct LocalSpec {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
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
    if let Some(dir) = &spec.cwd {
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
        control: LocalControl { pid },
        child,
    })
}

/// Waits for the child and turns its status into a [`VmState`].
pub async fn wait(mut child: tokio::process::Child) -> VmState {
    use std::os::unix::process::ExitStatusExt;
    match child.wait().await {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => VmState::Exited(code),
            (None, Some(sig)) => VmState::Killed(sig),
            (None, None) => VmState::Failed("unknown exit status".into()),
        },
        Err(e) => VmState::Failed(format!("wait failed: {e}")),
    }
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

pub struct LocalControl {
    pid: u32,
}

impl LocalControl {
    fn signal_group(&self, sig: i32) {
        // The child is a session leader, so its pid is its process group id.
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
    pty_process::Size::new(size.rows.max(1), size.cols.max(1))
}

fn pty_error(e: pty_process::Error) -> Error {
    Error::Manager(format!("cannot open a pseudo-terminal: {e}"))
}
