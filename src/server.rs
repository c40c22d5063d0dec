//! `bioxen server`: one process per user (per socket) that owns the sessions, so VMs
//! outlive the window, the SSH link or the command that created them.
//!
//! The server listens on a Unix socket in a private directory (0700, socket 0600) and
//! serves only its own user: the peer's uid is checked on every connection, so loosened
//! permissions still let no one else in. A lock file beside the socket is held for the
//! server's whole life; whoever holds it owns the socket, which is how a stale socket
//! of a dead server is told from a live one and why two servers never share a socket.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::manager::{Event, Manager, ManagerConfig};
use crate::protocol::{self, Hello, Request, Response, Welcome};

/// The socket: `--socket PATH`, else `<runtime dir>/NAME.sock` for `-L NAME`, else
/// `<runtime dir>/server.sock` (`$XDG_RUNTIME_DIR/bioxen`, or `/tmp/bioxen-UID`).
pub fn socket_path(name: Option<&str>, explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    crate::registry::dir().join(format!("{}.sock", name.unwrap_or("server")))
}

fn lock_path(socket: &Path) -> PathBuf {
    let mut p = socket.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Holds the socket's lock for as long as it lives.
struct SocketLock {
    _held: std::fs::File,
}

impl SocketLock {
    /// Takes the lock, or says which server holds it.
    fn take(socket: &Path) -> Result<SocketLock> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = lock_path(socket);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| Error::Manager(format!("{}: {e}", path.display())))?;
        // SAFETY: flock on an fd we own; no memory is touched.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(Error::Manager(format!(
                "a bioxen server is already running on {}",
                socket.display()
            )));
        }
        Ok(SocketLock { _held: file })
    }
}

/// Binds the socket: private directory, the lock taken, any stale socket replaced,
/// mode 0600.
fn bind(socket: &Path) -> Result<(UnixListener, SocketLock)> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Some(dir) = socket.parent() {
        crate::private_fs::create_private_dir(dir)?;
    }
    let lock = SocketLock::take(socket)?;
    // Holding the lock, no live server owns a socket here: whatever is left is stale.
    match std::fs::symlink_metadata(socket) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(socket)?,
        Ok(_) => {
            return Err(Error::Manager(format!(
                "{} exists and is not a socket; remove it or choose another --socket",
                socket.display()
            )));
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(socket)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok((listener, lock))
}

/// Serves until asked to shut down (a client's `kill-server`, SIGTERM or SIGINT); then
/// ends every VM and removes the socket.
pub async fn serve(config: ManagerConfig, socket: &Path) -> Result<()> {
    let (listener, _lock) = bind(socket)?;
    tracing::info!(socket = %socket.display(), pid = std::process::id(), "serving");
    let manager = Manager::new(config);
    let stop = Arc::new(Notify::new());
    let registry = socket.parent().unwrap_or(Path::new(".")).to_path_buf();
    tokio::spawn(publish_for_ls(manager.clone(), registry.clone()));
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    // The terminal that started the server may close: that is no reason to stop.
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (manager, stop) = (manager.clone(), stop.clone());
                    tokio::spawn(async move {
                        if let Err(e) = serve_client(stream, manager, stop).await {
                            tracing::info!("client: {e}");
                        }
                    });
                }
                Err(e) => tracing::warn!("accept: {e}"),
            },
            () = stop.notified() => break,
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => {}
        }
    }
    tracing::info!("shutting down: ending every VM");
    let _ = std::fs::remove_file(socket);
    manager.shutdown().await;
    crate::registry::withdraw_from(&registry);
    Ok(())
}

/// Keeps the registry `bioxen ls` reads current with the server's sessions.
/// The server publishes beside its socket: `bioxen ls` finds the default server's VMs
/// where it finds dashboards', and `-L NAME` / `--socket` point it at another.
async fn publish_for_ls(manager: Manager, dir: PathBuf) {
    let mut events = manager.subscribe();
    let _ = crate::registry::publish_in(&dir, &manager.list());
    loop {
        match events.recv().await {
            Ok(Event::Created(_) | Event::State(..) | Event::Removed(_))
            | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                if let Err(e) = crate::registry::publish_in(&dir, &manager.list()) {
                    tracing::warn!("cannot publish the VM list for `bioxen ls`: {e}");
                }
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn serve_client(mut stream: UnixStream, manager: Manager, stop: Arc<Notify>) -> Result<()> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let me = unsafe { libc::getuid() };
    let peer = stream.peer_cred()?;
    // The client speaks first; its hello is read before any refusal, so the refusal
    // reaches it instead of a broken pipe.
    let hello = tokio::time::timeout(
        Duration::from_secs(10),
        protocol::read_message::<_, Hello>(&mut stream),
    )
    .await;
    let Ok(hello) = hello else {
        return Ok(());
    };
    if peer.uid() != me {
        let reason = format!(
            "this bioxen server belongs to uid {me} and serves no one else (you are uid {})",
            peer.uid()
        );
        tracing::warn!("refused a client of uid {}", peer.uid());
        protocol::write_message(&mut stream, &Welcome::Refused { reason }).await?;
        return Ok(());
    }
    let Some(hello) = hello? else {
        return Ok(());
    };
    if hello.version != protocol::VERSION {
        let reason = format!(
            "the server speaks protocol {} and the client {}: restart the server (bioxen kill-server) after upgrading",
            protocol::VERSION,
            hello.version
        );
        protocol::write_message(&mut stream, &Welcome::Refused { reason }).await?;
        return Ok(());
    }
    protocol::write_message(
        &mut stream,
        &Welcome::Ok {
            version: protocol::VERSION,
            server_pid: std::process::id(),
        },
    )
    .await?;
    while let Some(request) = protocol::read_message::<_, Request>(&mut stream).await? {
        let shutdown = matches!(request, Request::Shutdown);
        let response = handle(&manager, request).await;
        protocol::write_message(&mut stream, &response).await?;
        if shutdown {
            stop.notify_one();
            return Ok(());
        }
    }
    Ok(())
}

async fn handle(m: &Manager, request: Request) -> Response {
    let ms = Duration::from_millis;
    let result: Result<Response> = async {
        Ok(match request {
            Request::Create { id, kind, options } => Response::Created {
                id: m
                    .create_interactive_vm(id.as_deref(), kind, options.into_vm_options())
                    .await?,
            },
            Request::SendInput { id, data } => {
                m.send_input(&id, data)?;
                Response::Done
            }
            Request::ReadOutput { id } => Response::Output {
                text: m.read_output(&id)?,
            },
            Request::ReadUntil {
                id,
                needle,
                timeout_ms,
            } => Response::Output {
                text: m.read_until(&id, &needle, ms(timeout_ms)).await?,
            },
            Request::WaitReady { id, timeout_ms } => {
                m.wait_ready(&id, ms(timeout_ms)).await?;
                Response::Done
            }
            Request::Execute {
                id,
                code,
                timeout_ms,
            } => {
                let r = m.execute_string(&id, &code, ms(timeout_ms)).await?;
                Response::Executed {
                    output: r.output,
                    error: r.error,
                }
            }
            Request::Resize { id, rows, cols } => {
                m.resize(&id, crate::vm::Size::new(rows, cols))?;
                Response::Done
            }
            Request::Kill { id } => Response::State {
                state: m.kill(&id).await?,
            },
            Request::Terminate { id } => Response::State {
                state: m.terminate_vm_session(&id).await?,
            },
            Request::Restart { id } => {
                m.restart(&id).await?;
                Response::Done
            }
            Request::List => Response::Vms { vms: m.list() },
            Request::ScreenText { id } => Response::Output {
                text: m.with_screen(&id, |s| s.text())?,
            },
            Request::Shutdown => Response::Done,
        })
    }
    .await;
    result.unwrap_or_else(|e| Response::Failed(e.into()))
}
