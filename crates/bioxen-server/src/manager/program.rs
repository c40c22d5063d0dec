//! Programs run on a remote VM's link, as `ssh HOST lua …` runs them: for `bioxen run
//! --kind ssh|xcpng`, which must behave as `lua` does (stdin to EOF, stdout and stderr
//! apart, the exit status kept), something a REPL in a PTY cannot give.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Manager, VmId, VmRef};
use bioxen_backend::error::{Error, Result};
use bioxen_backend::lock;
use bioxen_backend::vm::ssh::{Connection, ExecOutput, ProgramEnd};
use bioxen_backend::vm::{VmKind, VmOptions};

impl Manager {
    /// Creates a remote VM (a pool VM made and booted, or a configured host) and
    /// connects to it, starting no interpreter; ending it closes the link and, for a
    /// pool VM, destroys it as any session's end does.
    pub async fn create_link_vm(
        &self,
        name: &str,
        kind: VmKind,
        options: VmOptions,
    ) -> Result<VmId> {
        self.create(Some(name), kind, options, true).await
    }

    /// The interpreter's command line configured for a remote VM (`[[ssh_hosts]]` or
    /// `[xcpng.ssh]` `command`), as the remote shell reads it.
    pub fn remote_command(&self, vm: impl Into<VmRef>) -> Result<String> {
        let session = self.get(vm)?;
        let remote = lock(&session.remote);
        remote
            .as_ref()
            .map(|r| r.target.command.clone())
            .ok_or_else(|| Error::session(session.name(), "is not a remote VM"))
    }

    /// Runs `command` (read by the remote shell: every word of user text in it must be
    /// quoted) on the VM's link, with `stdin` as its input and its output passed on as
    /// it comes.
    pub async fn run_program(
        &self,
        vm: impl Into<VmRef>,
        command: &str,
        stdin: impl AsyncRead + Unpin + Send + 'static,
        stdout: &mut (impl AsyncWrite + Unpin),
        stderr: &mut (impl AsyncWrite + Unpin),
    ) -> Result<ProgramEnd> {
        let (name, link) = self.link(vm)?;
        link.run_piped(command, stdin, stdout, stderr)
            .await
            .map_err(|source| Error::Ssh { id: name, source })
    }

    /// Runs `argv` (each word quoted) on the VM's link with `stdin`, collecting output.
    pub async fn exec(
        &self,
        vm: impl Into<VmRef>,
        argv: &[&str],
        stdin: &[u8],
    ) -> Result<ExecOutput> {
        let (name, link) = self.link(vm)?;
        link.exec(argv, stdin)
            .await
            .map_err(|source| Error::Ssh { id: name, source })
    }

    /// The session's name, for errors, and its SSH link.
    fn link(&self, vm: impl Into<VmRef>) -> Result<(String, Connection)> {
        let session = self.get(vm)?;
        let remote = lock(&session.remote);
        let link = remote.as_ref().and_then(|r| r.conn.clone());
        link.map(|link| (session.name(), link))
            .ok_or_else(|| Error::session(session.name(), "is not connected"))
    }
}
