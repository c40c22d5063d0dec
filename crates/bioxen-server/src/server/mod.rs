//! `bioxen server`: one process per user (per socket) that owns the sessions, so VMs
//! outlive the window, the SSH link or the command that created them.
//!
//! The server listens on a Unix socket in a private directory (0700, socket 0600) and
//! serves only its own user: the peer's uid is checked on every connection, so loosened
//! permissions still let no one else in. A lock file beside the socket is held for the
//! server's whole life; whoever holds it owns the socket, which is how a stale socket
//! of a dead server is told from a live one and why two servers never share a socket.

mod connection;
mod hub;
mod keeper;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

use crate::manager::{Event as ManagerEvent, Manager, ManagerConfig};
use bioxen_backend::error::{Error, Result};
use bioxen_proto::Event;
use hub::Hub;

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
        bioxen_config::private_fs::create_private_dir(dir)?;
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

/// How the server behaves beyond what the manager does.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Exit once no VM and no client is left, as tmux's `exit-empty` does.
    pub exit_empty: bool,
    /// Where it keeps its journal and its VMs' logs; `None` keeps nothing (a server
    /// that forgets everything when it ends).
    pub persist: Option<Persist>,
}

/// What a server keeps on disk.
#[derive(Debug, Clone)]
pub struct Persist {
    pub places: crate::persist::Places,
    /// Log every VM's output from its start (`[logs] enabled`).
    pub log_every_vm: bool,
    /// How long the logs of VMs it no longer has are kept (`[logs] keep_days`).
    pub keep_days: u32,
}

/// Why the server ends: asked to (its VMs end and are forgotten), or on a signal (a
/// shutdown: its VMs are kept in the journal for the next server).
enum Ending {
    Asked(String),
    Signal(String),
}

/// Serves until asked to shut down (a client's `kill-server`, SIGTERM or SIGINT) or,
/// with `exit_empty`, until no VM and no client is left; then ends every VM and
/// removes the socket.
pub async fn serve(mut config: ManagerConfig, options: ServerOptions, socket: &Path) -> Result<()> {
    let (listener, _lock) = bind(socket)?;
    tracing::info!(socket = %socket.display(), pid = std::process::id(), "serving");
    // SSH questions (unknown host keys, passphrases) go to whichever client answers.
    let (prompt_tx, prompts) = tokio::sync::mpsc::unbounded_channel();
    config.trust.prompt = Some(prompt_tx);
    if let Some(p) = &options.persist {
        config.logs.dir = p.places.logs.clone();
        config.logs.enabled = p.log_every_vm;
    }
    let manager = Manager::new(config);
    if let Some(p) = &options.persist
        && let Some(n) = crate::persist::log_files::highest_number_in(&p.places.logs)
    {
        manager.number_past(n);
    }
    let journal = options
        .persist
        .as_ref()
        .and_then(|p| keeper::open(&manager, &p.places.journal));
    let pruned = (options.persist.as_ref())
        .filter(|p| p.keep_days > 0)
        .map(|p| (p.places.logs.clone(), p.keep_days));
    let hub = Hub::new(manager, options);
    let registry = socket.parent().unwrap_or(Path::new(".")).to_path_buf();
    tokio::spawn(publish_for_ls(
        hub.manager.clone(),
        registry.clone(),
        socket.to_path_buf(),
    ));
    tokio::spawn(hub::relay_questions(hub.clone(), prompts));
    tokio::spawn(hub::follow_pools(hub.clone()));
    tokio::spawn(hub::exit_when_empty(hub.clone()));
    if let Some(journal) = &journal {
        tokio::spawn(keeper::keep(hub.manager.clone(), journal.clone()));
    }
    if let Some((dir, keep_days)) = pruned {
        tokio::spawn(prune_logs(hub.manager.clone(), dir, keep_days));
    }
    tokio::spawn({
        let hub = hub.clone();
        async move {
            let why = bioxen_log::stopped().await;
            hub.announce(Event::Notice {
                vm: None,
                text: why.to_string(),
            });
        }
    });
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    // The terminal that started the server may close: that is no reason to stop.
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let ending = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let hub = hub.clone();
                    tokio::spawn(async move {
                        if let Err(e) = connection::serve(stream, hub).await {
                            tracing::info!("client dropped: {e}");
                        }
                    });
                }
                Err(e) => tracing::warn!("accept: {e}"),
            },
            reason = hub.stopped() => break Ending::Asked(reason),
            _ = sigterm.recv() => break Ending::Signal("it received SIGTERM".to_string()),
            _ = sigint.recv() => break Ending::Signal("it received SIGINT".to_string()),
            _ = sighup.recv() => {}
        }
    };
    let (Ending::Asked(reason) | Ending::Signal(reason)) = &ending;
    tracing::info!("shutting down ({reason}): ending every VM");
    let _ = std::fs::remove_file(socket);
    hub.announce(Event::Closing {
        reason: format!("the bioxen server is ending: {reason}"),
    });
    match &ending {
        Ending::Signal(why) => {
            // A shutdown or `systemctl stop`: the next server makes the VMs again, and
            // attaches to the remote interpreters left held.
            if let Some(journal) = &journal {
                keeper::write_last(&hub.manager, journal, Some(why));
            }
            hub.manager.suspend().await;
        }
        Ending::Asked(_) => {
            if let Some(journal) = &journal {
                keeper::write_last(&hub.manager, journal, None);
            }
            hub.manager.shutdown().await;
        }
    }
    crate::registry::withdraw_from(&registry);
    Ok(())
}

/// Removes the logs of sessions this server no longer has once nothing was written to
/// them for `keep_days`: at start (after the journal's sessions are back) and daily.
async fn prune_logs(manager: Manager, dir: PathBuf, keep_days: u32) {
    const DAY: u64 = 86_400;
    loop {
        let live: std::collections::HashSet<_> = manager.ids().into_iter().collect();
        let now = crate::persist::unix_secs(std::time::SystemTime::now());
        let before = now.saturating_sub(u64::from(keep_days) * DAY);
        let folder = dir.clone();
        let pruned = tokio::task::spawn_blocking(move || {
            crate::persist::log_files::prune(&folder, |vm| live.contains(&vm), before)
        })
        .await;
        match pruned {
            Ok(Ok(p)) if p.logs > 0 => tracing::info!(
                "removed the logs of {} VMs gone and untouched for {keep_days} days ({} KiB)",
                p.logs,
                p.bytes / 1024
            ),
            Ok(Err(e)) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!("cannot remove old logs in {}: {e}", dir.display())
            }
            _ => {}
        }
        tokio::time::sleep(std::time::Duration::from_secs(DAY)).await;
    }
}

/// Keeps the registry `bioxen ls` reads current with the server's sessions.
/// The server publishes beside its socket: `bioxen ls` finds the default server's VMs
/// where it finds dashboards', and `-L NAME` / `--socket` point it at another.
async fn publish_for_ls(manager: Manager, dir: PathBuf, socket: PathBuf) {
    let mut events = manager.subscribe();
    let _ = crate::registry::publish_in(&dir, &socket, &manager.list());
    loop {
        match events.recv().await {
            Ok(
                ManagerEvent::Created(_)
                | ManagerEvent::State(..)
                | ManagerEvent::Removed(_)
                | ManagerEvent::Renamed(..),
            )
            | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                if let Err(e) = crate::registry::publish_in(&dir, &socket, &manager.list()) {
                    tracing::warn!("cannot publish the VM list for `bioxen ls`: {e}");
                }
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
