//! The simulated pool's guests, reachable over SSH as real guests are.
//!
//! A started VM gets its own loopback address (127.0.0.2, 127.0.0.3, …), reports it
//! through its guest metrics, and answers SSH there on a common port, with a host key
//! of its own, so known_hosts behaves as with real machines. It accepts the public keys
//! the simulator was told to trust, runs each session's command through `sh -c` (in a
//! PTY when one was asked for, with pipes otherwise, as sshd does), and stops when its
//! VM halts. A guest without the command's interpreter (`lua5.4`) runs bioxen's
//! embedded REPL in its place, so a fresh machine needs nothing installed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, Msg, Server as _, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use bioxen_backend::vm::{Control as _, Sink as _, Size};

/// What every guest of a simulator shares.
#[derive(Debug, Clone)]
pub struct GuestConfig {
    /// The port guests listen on, at their own addresses.
    pub port: u16,
    /// The keys a guest lets in.
    pub authorized: Vec<PublicKey>,
    /// A directory of stand-ins (`lua5.4`, `lua`) that run bioxen's embedded REPL, put
    /// last on the guests' `PATH`: an interpreter installed here wins.
    pub fallback_path: Option<PathBuf>,
    /// A known_hosts file each guest's key is written to as it starts, for a client
    /// that trusts this simulator's guests (`bioxen demo`).
    pub known_hosts: Option<PathBuf>,
    /// The guests' `PATH` instead of the simulator's own: a guest without dtach, say.
    pub path: Option<String>,
}

impl GuestConfig {
    /// Reads the keys to trust from `authorized_keys`-style files (`~/.ssh/*.pub`).
    pub fn with_keys_from(port: u16, files: &[PathBuf]) -> std::io::Result<GuestConfig> {
        let mut authorized = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(file)?;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                match PublicKey::from_openssh(line.trim()) {
                    Ok(key) => authorized.push(key),
                    Err(e) => tracing::warn!("{}: skipped a key: {e}", file.display()),
                }
            }
        }
        Ok(GuestConfig {
            port,
            authorized,
            fallback_path: None,
            known_hosts: None,
            path: None,
        })
    }

    /// Writes stand-ins for `lua5.4` and `lua` into `dir` that run `exe lua`, and puts
    /// them on the guests' `PATH`.
    pub fn with_fallback_lua(
        mut self,
        dir: &std::path::Path,
        exe: &std::path::Path,
    ) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir)?;
        let quoted = shell_words::quote(&exe.to_string_lossy()).into_owned();
        for name in ["lua5.4", "lua"] {
            let path = dir.join(name);
            std::fs::write(&path, format!("#!/bin/sh\nexec {quoted} lua \"$@\"\n"))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
        self.fallback_path = Some(dir.to_path_buf());
        Ok(self)
    }
}

/// One guest's SSH server; it stops when dropped.
pub struct Guest {
    pub addr: SocketAddr,
    /// The host key, as a known_hosts line would hold it.
    pub host_key: PublicKey,
    shutdown: russh::server::RunningServerHandle,
    /// The value of [`GUEST_MARK`] in the environment of everything this guest runs.
    mark: String,
}

/// An environment variable every program a guest runs carries, with a value of that
/// guest's own. A halted VM's programs end with it, as on a real VM; and programs that
/// leave their process group (dtach daemonizes) are still found by it.
pub const GUEST_MARK: &str = "BIOXEN_SIM_GUEST";

impl Drop for Guest {
    fn drop(&mut self) {
        self.shutdown.shutdown("the VM halted".into());
        end_marked(&self.mark);
    }
}

/// Kills every process of this user whose environment holds `GUEST_MARK=mark`, scanning
/// again until none is left: one may fork while a scan goes by.
fn end_marked(mark: &str) {
    let wanted = format!("{GUEST_MARK}={mark}");
    for _ in 0..50 {
        if kill_marked(&wanted) == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Sends SIGKILL to each process whose environment holds `wanted`; returns how many.
fn kill_marked(wanted: &str) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|&b| b == 0)
            .any(|var| var == wanted.as_bytes())
        {
            // SAFETY: kill(2) of a process this simulator's guest started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed += 1;
        }
    }
    killed
}

impl Guest {
    /// Starts a guest's SSH server at `ip`.
    pub async fn start(ip: IpAddr, config: Arc<GuestConfig>) -> std::io::Result<Guest> {
        let key = random_key("guest")?;
        let host_key = key.public_key().clone();
        let server_config = Arc::new(russh::server::Config {
            keys: vec![key],
            auth_rejection_time: std::time::Duration::from_millis(100),
            auth_rejection_time_initial: Some(std::time::Duration::ZERO),
            inactivity_timeout: None,
            ..Default::default()
        });
        let listener = tokio::net::TcpListener::bind((ip, config.port)).await?;
        let addr = listener.local_addr()?;
        if let Some(path) = &config.known_hosts {
            russh::keys::known_hosts::learn_known_hosts_path(
                &ip.to_string(),
                addr.port(),
                &host_key,
                path,
            )
            .map_err(std::io::Error::other)?;
        }
        // Unique among every simulator of this process too (tests run several).
        static GUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = GUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mark = format!("{}-{n}-{ip}", std::process::id());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let server_mark = mark.clone();
        tokio::spawn(async move {
            let mut server = GuestServer {
                config,
                mark: server_mark,
            };
            let running = server.run_on_socket(server_config, &listener);
            let _ = tx.send(running.handle());
            let _ = running.await;
        });
        let shutdown = rx
            .await
            .map_err(|_| std::io::Error::other("the guest's SSH server did not start"))?;
        Ok(Guest {
            addr,
            host_key,
            shutdown,
            mark,
        })
    }
}

/// A fresh Ed25519 key, from the system's random source: a guest's host key, or
/// the demo's own.
pub fn random_key(comment: &str) -> std::io::Result<PrivateKey> {
    use ring::rand::SecureRandom;
    use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
    let mut seed = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| std::io::Error::other("no random numbers"))?;
    PrivateKey::new(KeypairData::from(Ed25519Keypair::from_seed(&seed)), comment)
        .map_err(std::io::Error::other)
}

#[derive(Clone)]
struct GuestServer {
    config: Arc<GuestConfig>,
    mark: String,
}

impl russh::server::Server for GuestServer {
    type Handler = Connection;
    fn new_client(&mut self, _: Option<SocketAddr>) -> Connection {
        Connection {
            config: self.config.clone(),
            mark: self.mark.clone(),
            channels: HashMap::new(),
        }
    }
}

/// One client connection: its channels and the programs running in them.
struct Connection {
    config: Arc<GuestConfig>,
    mark: String,
    channels: HashMap<ChannelId, Chan>,
}

#[derive(Default)]
struct Chan {
    /// The terminal asked for, if any.
    pty: Option<Size>,
    /// Input and resizes for the running program.
    input: Option<mpsc::UnboundedSender<Input>>,
    /// The running program's process group, killed when the connection goes.
    group: Option<u32>,
}

enum Input {
    Data(Vec<u8>),
    Resize(Size),
    Eof,
}

impl Drop for Connection {
    fn drop(&mut self) {
        for chan in self.channels.values() {
            if let Some(pgid) = chan.group {
                // SAFETY: kill(2) with a negative pid signals that process group.
                unsafe {
                    libc::kill(-(pgid as i32), libc::SIGHUP);
                }
            }
        }
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let known = self
            .config
            .authorized
            .iter()
            .any(|k| k.key_data() == key.public_key.key_data());
        Ok(if known { Auth::Accept } else { Auth::reject() })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), Chan::default());
        reply.accept().await;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.entry(channel).or_default().pty = Some(size(cols, rows));
        session.channel_success(channel)?;
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(input) = self.channels.get(&channel).and_then(|c| c.input.as_ref()) {
            let _ = input.send(Input::Resize(size(cols, rows)));
        }
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        command: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(command).into_owned();
        self.run(channel, &command, session)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.run(channel, "exec sh -i", session)
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(input) = self.channels.get(&channel).and_then(|c| c.input.as_ref()) {
            let _ = input.send(Input::Data(data.to_vec()));
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(input) = self.channels.get(&channel).and_then(|c| c.input.as_ref()) {
            let _ = input.send(Input::Eof);
        }
        Ok(())
    }
}

/// A terminal size as SSH gives it, in u32 columns and rows.
fn size(cols: u32, rows: u32) -> Size {
    let clamp = |n: u32| n.min(u32::from(u16::MAX)) as u16;
    Size::new(clamp(rows), clamp(cols))
}

impl Connection {
    /// Starts `command` for `channel` and streams it both ways until it exits.
    fn run(
        &mut self,
        channel: ChannelId,
        command: &str,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let chan = self.channels.entry(channel).or_default();
        let mut path =
            self.config.path.clone().unwrap_or_else(|| {
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
            });
        if let Some(dir) = &self.config.fallback_path {
            path = format!("{path}:{}", dir.display());
        }
        let argv = ["sh".to_string(), "-c".to_string(), command.to_string()];
        let env = vec![
            ("PATH".to_string(), path),
            (GUEST_MARK.to_string(), self.mark.clone()),
        ];
        let handle = session.handle();
        let (tx, rx) = mpsc::unbounded_channel();
        let started = match chan.pty {
            Some(size) => {
                let spec = bioxen_backend::vm::local::LocalSpec {
                    argv: argv.to_vec(),
                    env,
                    env_remove: Vec::new(),
                    cwd: std::env::var_os("HOME")
                        .map(PathBuf::from)
                        .filter(|home| home.is_dir()),
                    size,
                };
                bioxen_backend::vm::local::spawn(&spec)
                    .map_err(|e| e.to_string())
                    .and_then(|vm| {
                        let pid = vm.control.pid();
                        tokio::spawn(serve_pty(vm, rx, handle, channel));
                        pid.ok_or_else(|| "exited at once".to_string())
                    })
            }
            None => {
                let mut cmd = tokio::process::Command::new(&argv[0]);
                cmd.args(&argv[1..])
                    .envs(env)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .process_group(0)
                    .kill_on_drop(true);
                match cmd.spawn() {
                    Ok(child) => {
                        let pid = child.id();
                        tokio::spawn(serve_pipes(child, rx, handle, channel));
                        pid.ok_or_else(|| "exited at once".to_string())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        match started {
            Ok(pid) => {
                chan.group = Some(pid);
                chan.input = Some(tx);
                session.channel_success(channel)?;
            }
            Err(e) => {
                tracing::warn!("guest: cannot start {command:?}: {e}");
                session.channel_failure(channel)?;
            }
        }
        Ok(())
    }
}

/// A program in a PTY: its output to the channel, the channel's input and resizes to
/// it, then its exit status.
async fn serve_pty(
    vm: bioxen_backend::vm::local::LocalVm,
    mut rx: mpsc::UnboundedReceiver<Input>,
    handle: russh::server::Handle,
    channel: ChannelId,
) {
    let bioxen_backend::vm::local::LocalVm {
        reader,
        mut sink,
        control: _control,
        child,
    } = vm;
    let writer = tokio::spawn(async move {
        while let Some(input) = rx.recv().await {
            let ok = match input {
                Input::Data(d) => sink.write_all(&d).await.is_ok(),
                Input::Resize(size) => sink.resize(size).await.is_ok(),
                Input::Eof => true,
            };
            if !ok {
                break;
            }
        }
    });
    // Until the terminal closes (EIO once the program and its children are gone).
    let _ = forward(reader, handle.clone(), channel, None).await;
    finish(&handle, channel, child, writer).await;
}

/// A program on pipes: stdout as data, stderr as extended data, the channel's input
/// to stdin until EOF, then the exit status.
async fn serve_pipes(
    mut child: tokio::process::Child,
    mut rx: mpsc::UnboundedReceiver<Input>,
    handle: russh::server::Handle,
    channel: ChannelId,
) {
    let mut stdin = child.stdin.take();
    let writer = tokio::spawn(async move {
        while let Some(input) = rx.recv().await {
            match input {
                Input::Data(d) => {
                    if let Some(s) = stdin.as_mut()
                        && s.write_all(&d).await.is_err()
                    {
                        stdin = None;
                    }
                }
                Input::Eof => stdin = None,
                Input::Resize(_) => {}
            }
        }
    });
    let out = child
        .stdout
        .take()
        .map(|s| forward(s, handle.clone(), channel, None));
    let err = child
        .stderr
        .take()
        .map(|s| forward(s, handle.clone(), channel, Some(1)));
    for pump in [out, err].into_iter().flatten() {
        let _ = pump.await;
    }
    finish(&handle, channel, child, writer).await;
}

/// Sends what `stream` gives to the channel, as data or as extended data `ext`
/// (1: stderr), until it ends or the channel does.
fn forward(
    mut stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    handle: russh::server::Handle,
    channel: ChannelId,
    ext: Option<u32>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let data = buf[..n].to_vec();
            let sent = match ext {
                None => handle.data(channel, data).await.is_ok(),
                Some(code) => handle.extended_data(channel, code, data).await.is_ok(),
            };
            if !sent {
                break;
            }
        }
    })
}

/// Once its output is all sent: the program's exit status, then the channel's end.
async fn finish(
    handle: &russh::server::Handle,
    channel: ChannelId,
    mut child: tokio::process::Child,
    writer: tokio::task::JoinHandle<()>,
) {
    let code = child
        .wait()
        .await
        .ok()
        .and_then(|s| s.code())
        .unwrap_or(255);
    writer.abort();
    let _ = handle.exit_status_request(channel, code as u32).await;
    let _ = handle.eof(channel).await;
    let _ = handle.close(channel).await;
}
