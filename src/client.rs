//! A connection to `bioxen server`, with the manager's API: scripts and tests use the
//! server as they used the in-process manager, and their VMs outlive them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::net::UnixStream;

use crate::error::{Error, Result};
use crate::manager::{ExecResult, VmInfo};
use crate::protocol::{self, CreateOptions, Hello, Request, Response, Welcome};
use crate::vm::{VmKind, VmState};

pub struct Client {
    stream: UnixStream,
    /// The server's process id, from its welcome.
    pub server_pid: u32,
}

/// How to start a server when none is running.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The bioxen binary to run (`bioxen server --foreground`).
    pub exe: PathBuf,
    /// The configuration file it reads, if not its default.
    pub config: Option<PathBuf>,
    /// Where its output goes.
    pub log: PathBuf,
}

impl Client {
    /// Connects to the server on `socket`.
    pub async fn connect(socket: &Path, what: &str) -> Result<Client> {
        let mut stream = UnixStream::connect(socket).await.map_err(|e| {
            Error::Manager(format!(
                "no bioxen server on {} ({e}); `bioxen server` starts one",
                socket.display()
            ))
        })?;
        let hello = Hello {
            version: protocol::VERSION,
            client: what.to_string(),
        };
        protocol::write_message(&mut stream, &hello).await?;
        match protocol::read_message::<_, Welcome>(&mut stream).await? {
            Some(Welcome::Ok { server_pid, .. }) => Ok(Client { stream, server_pid }),
            Some(Welcome::Refused { reason }) => Err(Error::Manager(format!(
                "the server on {} refused: {}",
                socket.display(),
                crate::sanitize::line(&reason)
            ))),
            None => Err(Error::Manager(format!(
                "the server on {} closed the connection",
                socket.display()
            ))),
        }
    }

    /// Connects, starting a server first if none answers: detached in its own session,
    /// its output in `start.log`.
    pub async fn connect_or_start(
        socket: &Path,
        what: &str,
        start: &StartOptions,
    ) -> Result<Client> {
        if let Ok(c) = Client::connect(socket, what).await {
            return Ok(c);
        }
        spawn_server(socket, start)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match Client::connect(socket, what).await {
                Ok(c) => return Ok(c),
                Err(e) if Instant::now() > deadline => {
                    return Err(Error::Manager(format!(
                        "started a server, but it does not answer: {e} (its log: {})",
                        start.log.display()
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    async fn call(&mut self, request: Request) -> Result<Response> {
        let patience = request.patience();
        let exchange = async {
            protocol::write_message(&mut self.stream, &request).await?;
            protocol::read_message::<_, Response>(&mut self.stream).await
        };
        match tokio::time::timeout(patience, exchange).await {
            Err(_) => Err(Error::Manager(format!(
                "the server did not answer within {}s",
                patience.as_secs()
            ))),
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(None)) => Err(Error::Manager("the server closed the connection".into())),
            Ok(Ok(Some(Response::Failed(e)))) => Err(e.into()),
            Ok(Ok(Some(r))) => Ok(r),
        }
    }

    fn unexpected(r: Response) -> Error {
        Error::Manager(format!("unexpected answer from the server: {r:?}"))
    }

    pub async fn create_interactive_vm(
        &mut self,
        id: Option<&str>,
        kind: VmKind,
        options: CreateOptions,
    ) -> Result<String> {
        match self
            .call(Request::Create {
                id: id.map(str::to_string),
                kind,
                options,
            })
            .await?
        {
            Response::Created { id } => Ok(id),
            r => Err(Client::unexpected(r)),
        }
    }

    pub async fn send_input(&mut self, id: &str, input: impl AsRef<[u8]>) -> Result<()> {
        self.done(Request::SendInput {
            id: id.into(),
            data: input.as_ref().to_vec(),
        })
        .await
    }

    pub async fn read_output(&mut self, id: &str) -> Result<String> {
        self.text(Request::ReadOutput { id: id.into() }).await
    }

    pub async fn read_until(
        &mut self,
        id: &str,
        needle: &str,
        timeout: Duration,
    ) -> Result<String> {
        self.text(Request::ReadUntil {
            id: id.into(),
            needle: needle.into(),
            timeout_ms: timeout.as_millis() as u64,
        })
        .await
    }

    pub async fn wait_ready(&mut self, id: &str, timeout: Duration) -> Result<()> {
        self.done(Request::WaitReady {
            id: id.into(),
            timeout_ms: timeout.as_millis() as u64,
        })
        .await
    }

    pub async fn execute_string(
        &mut self,
        id: &str,
        code: &str,
        timeout: Duration,
    ) -> Result<ExecResult> {
        match self
            .call(Request::Execute {
                id: id.into(),
                code: code.into(),
                timeout_ms: timeout.as_millis() as u64,
            })
            .await?
        {
            Response::Executed { output, error } => Ok(ExecResult { output, error }),
            r => Err(Client::unexpected(r)),
        }
    }

    pub async fn resize(&mut self, id: &str, rows: u16, cols: u16) -> Result<()> {
        self.done(Request::Resize {
            id: id.into(),
            rows,
            cols,
        })
        .await
    }

    /// Ends the VM's process; the session stays with its last screen.
    pub async fn kill(&mut self, id: &str) -> Result<VmState> {
        self.state(Request::Kill { id: id.into() }).await
    }

    /// Ends the VM and forgets it.
    pub async fn terminate_vm_session(&mut self, id: &str) -> Result<VmState> {
        self.state(Request::Terminate { id: id.into() }).await
    }

    pub async fn restart(&mut self, id: &str) -> Result<()> {
        self.done(Request::Restart { id: id.into() }).await
    }

    pub async fn list(&mut self) -> Result<Vec<VmInfo>> {
        match self.call(Request::List).await? {
            Response::Vms { vms } => Ok(vms),
            r => Err(Client::unexpected(r)),
        }
    }

    pub async fn screen_text(&mut self, id: &str) -> Result<String> {
        self.text(Request::ScreenText { id: id.into() }).await
    }

    /// Ends every VM and the server.
    pub async fn shutdown_server(mut self) -> Result<()> {
        self.done(Request::Shutdown).await
    }

    async fn done(&mut self, request: Request) -> Result<()> {
        match self.call(request).await? {
            Response::Done => Ok(()),
            r => Err(Client::unexpected(r)),
        }
    }

    async fn text(&mut self, request: Request) -> Result<String> {
        match self.call(request).await? {
            Response::Output { text } => Ok(text),
            r => Err(Client::unexpected(r)),
        }
    }

    async fn state(&mut self, request: Request) -> Result<VmState> {
        match self.call(request).await? {
            Response::State { state } => Ok(state),
            r => Err(Client::unexpected(r)),
        }
    }
}

/// Starts `bioxen server --foreground` detached: its own session (no controlling
/// terminal, so closing this one does not end it), stdin from /dev/null, output to its
/// log.
fn spawn_server(socket: &Path, start: &StartOptions) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let log = crate::private_fs::open_append(&start.log)?;
    let mut cmd = std::process::Command::new(&start.exe);
    if let Some(config) = &start.config {
        cmd.arg("--config").arg(config);
    }
    cmd.arg("--socket")
        .arg(socket)
        .args(["server", "--foreground"])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Manager(format!("cannot start {}: {e}", start.exe.display())))?;
    // Reap it in the background if it fails early; a running server outlives us.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}
