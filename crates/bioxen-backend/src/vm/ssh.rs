//! Lua over SSH: connecting with verified host keys, authenticating, and the two kinds
//! of channel a remote VM uses.
//!
//! Host keys are checked against `known_hosts` (hashed and `[host]:port` entries too).
//! A changed key is refused, naming the known_hosts line. An unknown key is put to the
//! user with its SHA256 fingerprint (accept once, accept and remember, refuse); without
//! a user to ask it is refused, with the fingerprint in the error.
//!
//! The interactive REPL runs in a PTY channel, and `execute_string` types its chunk
//! there as on a local VM, so both share one interpreter's state. Installing a package
//! runs in its own exec channel with each argument quoted as one word, so no user text
//! passes through the remote shell.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};
use tokio::sync::{mpsc, oneshot};

pub use bioxen_proto::{SshAnswer, SshError, SshQuestion};

use super::Size;
use super::known_hosts::Verdict;

/// Where and how to reach a remote Lua.
#[derive(Clone)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// A private key file; when `None`, `~/.ssh/id_ed25519` and `~/.ssh/id_rsa` are tried.
    pub identity: Option<PathBuf>,
    pub known_hosts: PathBuf,
    pub password: Option<String>,
    /// The interpreter's command line, run by the remote user's shell.
    pub command: String,
    /// Run the interpreter under a session holder (tmux, dtach, abduco) when the host
    /// has one, so it survives a dropped link.
    pub hold: bool,
}

impl std::fmt::Debug for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("identity", &self.identity)
            .field("known_hosts", &self.known_hosts)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("command", &self.command)
            .finish()
    }
}

impl SshTarget {
    /// `user@host:port` for messages.
    pub fn label(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}

/// A question and where its answer goes.
pub struct SshPrompt {
    pub question: SshQuestion,
    pub reply: oneshot::Sender<SshAnswer>,
}

/// Who decides about unknown host keys and encrypted keys.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// The dashboard's dialog, when there is one.
    pub prompt: Option<mpsc::UnboundedSender<SshPrompt>>,
    /// Without a prompt: accept unknown host keys and remember them (explicit opt-in).
    pub accept_new: bool,
}

/// The handler's error: russh's own, or our refusal of the host key.
#[derive(Debug)]
pub enum HandlerError {
    Ssh(russh::Error),
    Refused(String),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Ssh(e)
    }
}

struct Client {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    trust: Trust,
    refusal: Arc<Mutex<Option<HostKeyRefusal>>>,
}

impl client::Handler for Client {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key: PublicKey = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => PublicKey::from(cert.public_key().clone()),
        };
        let verdict =
            check_host_key(&self.host, self.port, &key, &self.known_hosts, &self.trust).await;
        match verdict {
            Ok(()) => Ok(true),
            Err(reason) => {
                *crate::lock(&self.refusal) = Some(reason);
                Ok(false)
            }
        }
    }
}

/// `SHA256:…` of a host key, as `ssh-keygen -lf` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Why a host key was not trusted: each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyRefusal {
    #[error(
        "the host key of {host}:{port} has CHANGED (now {fp}); {} line {line} records another. \
         Someone may be intercepting the connection. If the host was reinstalled, remove that line.",
        file.display()
    )]
    Changed {
        host: String,
        port: u16,
        fp: String,
        file: PathBuf,
        line: usize,
    },
    #[error(
        "the host key {fp} of {host}:{port} is REVOKED ({} line {line}); refusing to connect",
        file.display()
    )]
    Revoked {
        host: String,
        port: u16,
        fp: String,
        file: PathBuf,
        line: usize,
    },
    #[error(
        "{host}:{port} is trusted through a certificate authority ({} line {line}), and \
         bioxen does not check host certificates; refusing to connect. Add the host's own \
         key ({fp}) to use it from bioxen",
        file.display()
    )]
    CertAuthorityOnly {
        host: String,
        port: u16,
        fp: String,
        file: PathBuf,
        line: usize,
    },
    #[error(
        "{host}:{port} is not in {} (its {algorithm} key is {fp}); refusing to connect. Connect \
         once from the dashboard to accept it, or add it with: ssh-keyscan -p {port} {host} >> {}",
        file.display(),
        file.display()
    )]
    Unknown {
        host: String,
        port: u16,
        algorithm: String,
        fp: String,
        file: PathBuf,
    },
    #[error("the host key {fp} of {host}:{port} was refused")]
    RefusedByUser { host: String, port: u16, fp: String },
    #[error("cannot read {}: {source}", file.display())]
    Unreadable {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", file.display())]
    Unwritable {
        file: PathBuf,
        source: russh::keys::Error,
    },
}

async fn check_host_key(
    host: &str,
    port: u16,
    key: &PublicKey,
    known_hosts: &Path,
    trust: &Trust,
) -> Result<(), HostKeyRefusal> {
    use HostKeyRefusal::*;
    let fp = fingerprint(key);
    let (h, file) = (host.to_string(), known_hosts.to_path_buf());
    match super::known_hosts::check(known_hosts, host, port, key) {
        Ok(Verdict::Known) => return Ok(()),
        Ok(Verdict::Unknown) => {}
        Ok(Verdict::Changed { line }) => {
            return Err(Changed {
                host: h,
                port,
                fp,
                file,
                line,
            });
        }
        Ok(Verdict::Revoked { line }) => {
            return Err(Revoked {
                host: h,
                port,
                fp,
                file,
                line,
            });
        }
        Ok(Verdict::CertAuthorityOnly { line }) => {
            return Err(CertAuthorityOnly {
                host: h,
                port,
                fp,
                file,
                line,
            });
        }
        Err(source) => return Err(Unreadable { file, source }),
    }
    let remember = |key: &PublicKey| {
        russh::keys::known_hosts::learn_known_hosts_path(host, port, key, known_hosts).map_err(
            |source| Unwritable {
                file: known_hosts.to_path_buf(),
                source,
            },
        )
    };
    if let Some(prompt) = &trust.prompt {
        let (reply, answer) = oneshot::channel();
        let question = SshQuestion::UnknownHostKey {
            host: host.to_string(),
            port,
            algorithm: key.algorithm().to_string(),
            fingerprint: fp.clone(),
            known_hosts: known_hosts.to_path_buf(),
        };
        if prompt.send(SshPrompt { question, reply }).is_ok() {
            return match answer.await {
                Ok(SshAnswer::AcceptOnce) => Ok(()),
                Ok(SshAnswer::AcceptAndRemember) => remember(key),
                _ => Err(RefusedByUser { host: h, port, fp }),
            };
        }
    }
    if trust.accept_new {
        return remember(key);
    }
    Err(Unknown {
        host: h,
        port,
        algorithm: key.algorithm().to_string(),
        fp,
        file,
    })
}

/// An authenticated SSH connection. Clones share it.
#[derive(Clone)]
pub struct Connection {
    handle: Arc<Handle<Client>>,
    target: SshTarget,
}

/// Keepalives find a dead link within about 15 s.
fn config() -> Arc<client::Config> {
    Arc::new(client::Config {
        nodelay: true,
        keepalive_interval: Some(Duration::from_secs(5)),
        keepalive_max: 3,
        inactivity_timeout: None,
        ..Default::default()
    })
}

pub async fn connect(target: &SshTarget, trust: &Trust) -> Result<Connection, SshError> {
    let refusal = Arc::new(Mutex::new(None));
    let handler = Client {
        host: target.host.clone(),
        port: target.port,
        known_hosts: target.known_hosts.clone(),
        trust: trust.clone(),
        refusal: refusal.clone(),
    };
    let connecting = client::connect(config(), (target.host.as_str(), target.port), handler);
    let mut handle = match tokio::time::timeout(Duration::from_secs(20), connecting).await {
        Err(_) => {
            return Err(SshError::Connect(format!(
                "{}: no answer within 20 s",
                target.label()
            )));
        }
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            if let Some(reason) = crate::lock(&refusal).take() {
                return Err(SshError::HostKey(reason.to_string()));
            }
            return Err(SshError::Connect(format!(
                "{}: {}",
                target.label(),
                describe(&e)
            )));
        }
    };
    authenticate(&mut handle, target, trust).await?;
    Ok(Connection {
        handle: Arc::new(handle),
        target: target.clone(),
    })
}

fn describe(e: &HandlerError) -> String {
    match e {
        HandlerError::Ssh(russh::Error::IO(io)) => io.to_string(),
        HandlerError::Ssh(e) => e.to_string(),
        HandlerError::Refused(r) => r.clone(),
    }
}

/// Key file, then the agent, then a password — as OpenSSH tries them.
async fn authenticate(
    handle: &mut Handle<Client>,
    target: &SshTarget,
    trust: &Trust,
) -> Result<(), SshError> {
    let user = target.user.clone();
    let mut tried = Vec::new();
    let home = bioxen_config::home_dir();
    let keys: Vec<PathBuf> = match &target.identity {
        Some(p) => vec![p.clone()],
        None => ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|n| home.join(".ssh").join(n))
            .filter(|p| p.exists())
            .collect(),
    };
    let rsa_hash = handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten();
    for path in keys {
        let key = match load_key(&path, trust).await {
            Ok(k) => k,
            Err(e) => {
                tried.push(e.to_string());
                continue;
            }
        };
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), rsa_hash);
        match handle.authenticate_publickey(user.clone(), key).await {
            Ok(r) if r.success() => return Ok(()),
            Ok(_) => tried.push(format!("key {} was not accepted", path.display())),
            Err(e) => tried.push(format!("key {}: {e}", path.display())),
        }
    }
    if let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await
        && let Ok(identities) = agent.request_identities().await
    {
        for id in identities {
            let key = id.public_key().into_owned();
            if let Ok(r) = handle
                .authenticate_publickey_with(user.clone(), key, rsa_hash, &mut agent)
                .await
                && r.success()
            {
                return Ok(());
            }
        }
        tried.push("no ssh-agent key was accepted".into());
    }
    if let Some(password) = &target.password {
        match handle
            .authenticate_password(user.clone(), password.clone())
            .await
        {
            Ok(r) if r.success() => return Ok(()),
            _ => tried.push("the password was not accepted".into()),
        }
    }
    if tried.is_empty() {
        tried.push("no key file, ssh-agent or password to try".into());
    }
    Err(SshError::Auth(format!(
        "{}: authentication failed ({})",
        target.label(),
        tried.join("; ")
    )))
}

/// Why a private key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyLoad {
    #[error("key {} is encrypted: load it into ssh-agent", path.display())]
    Encrypted { path: PathBuf },
    #[error("no one to ask for the passphrase of {}", path.display())]
    NoOneToAsk { path: PathBuf },
    #[error("no passphrase for {}", path.display())]
    NoPassphrase { path: PathBuf },
    #[error("key {}: {source}", path.display())]
    Unusable {
        path: PathBuf,
        source: russh::keys::Error,
    },
}

async fn load_key(path: &Path, trust: &Trust) -> Result<russh::keys::PrivateKey, KeyLoad> {
    let unusable = |source| KeyLoad::Unusable {
        path: path.to_path_buf(),
        source,
    };
    match russh::keys::load_secret_key(path, None) {
        Ok(k) => Ok(k),
        Err(russh::keys::Error::KeyIsEncrypted) => {
            let path = path.to_path_buf();
            let Some(prompt) = &trust.prompt else {
                return Err(KeyLoad::Encrypted { path });
            };
            let (reply, answer) = oneshot::channel();
            let question = SshQuestion::Passphrase { key: path.clone() };
            if prompt.send(SshPrompt { question, reply }).is_err() {
                return Err(KeyLoad::NoOneToAsk { path });
            }
            match answer.await {
                Ok(SshAnswer::Passphrase(p)) => {
                    russh::keys::load_secret_key(&path, Some(&p)).map_err(unusable)
                }
                _ => Err(KeyLoad::NoPassphrase { path }),
            }
        }
        Err(e) => Err(unusable(e)),
    }
}

/// Assignments that make a remote interpreter find packages installed in bioxen's
/// tree under the remote user's home (`$HOME` is expanded by the remote shell).
pub fn rocks_env() -> String {
    let (path, cpath) = crate::rocks::lua_paths(&format!("$HOME/{}", crate::rocks::REMOTE_TREE));
    format!("LUA_PATH_5_4=\"{path}\" LUA_CPATH_5_4=\"{cpath}\" ")
}

/// How an interactive channel ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEnd {
    Exited(u32),
    Signal(String),
    /// Closed without an exit status: the link or the server went away.
    Lost,
}

/// The output half of an interactive channel.
pub struct PtyReader {
    read: russh::ChannelReadHalf,
    end: Option<ChannelEnd>,
}

impl PtyReader {
    /// The next piece of output; `None` once the channel ended (see [`PtyReader::end`]).
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            match self.read.wait().await {
                Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                    return Some(data.to_vec());
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    self.end = Some(ChannelEnd::Exited(exit_status))
                }
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    self.end = Some(ChannelEnd::Signal(format!("{signal_name:?}")))
                }
                Some(ChannelMsg::Close) | None => return None,
                Some(_) => {}
            }
        }
    }

    pub fn end(&self) -> ChannelEnd {
        self.end.clone().unwrap_or(ChannelEnd::Lost)
    }
}

/// The input half of an interactive channel.
pub struct PtyWriter {
    write: russh::ChannelWriteHalf<client::Msg>,
}

impl super::Sink for PtyWriter {
    async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.write
            .data_bytes(data.to_vec())
            .await
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::BrokenPipe, e.to_string()))
    }

    async fn resize(&mut self, size: Size) -> std::io::Result<()> {
        self.write
            .window_change(u32::from(size.cols), u32::from(size.rows), 0, 0)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// How a program run with [`Connection::run_piped`] ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgramEnd {
    /// Its exit status, when it exited.
    pub status: Option<u32>,
    /// The signal that ended it (`INT`, `KILL`, ...), when one did.
    pub signal: Option<String>,
    /// Our own stdout or stderr stopped taking its output (a closed pipe): the channel
    /// was closed, ending the program, as SIGPIPE would end a local one.
    pub output_closed: bool,
}

/// A shell step that copies its stdin to `$1` inside a fresh directory only the user
/// can read (`mktemp -d` under a 0077 umask), and prints that directory: how a script
/// reaches a host for `bioxen run` and for an experiment's remote VMs. Run it as
/// `sh -c PRIVATE_COPY sh NAME`, so the name is an argument, never shell text.
pub const PRIVATE_COPY: &str = r#"umask 077 && d=$(mktemp -d "${TMPDIR:-/tmp}/bioxen-run.XXXXXX") && cd "$d" && mkdir -p -- "$(dirname -- "$1")" && cat > "$1" && printf %s "$d""#;

/// The output of a non-interactive command.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: Option<u32>,
}

impl Connection {
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// Starts the configured interpreter in a PTY of `size`, with `env` (bioxen's own
    /// assignments, see [`rocks_env`]) before it.
    /// Runs `command` (by the remote shell, after `env`) in a PTY channel.
    pub async fn open_pty(
        &self,
        size: Size,
        env: &str,
        command: &str,
    ) -> Result<(PtyReader, PtyWriter), SshError> {
        let err = |e: russh::Error| SshError::Channel(format!("{}: {e}", self.target.label()));
        let channel = self.handle.channel_open_session().await.map_err(err)?;
        channel
            .request_pty(
                true,
                "xterm-256color",
                u32::from(size.cols),
                u32::from(size.rows),
                0,
                0,
                &[],
            )
            .await
            .map_err(err)?;
        let command = format!("{env}{command}");
        channel.exec(true, command.as_bytes()).await.map_err(err)?;
        let (read, write) = channel.split();
        Ok((PtyReader { read, end: None }, PtyWriter { write }))
    }

    /// Runs `argv` (each word quoted, so the remote shell sees them literally) with
    /// `stdin` as its input, and collects its output.
    pub async fn exec(&self, argv: &[&str], stdin: &[u8]) -> Result<ExecOutput, SshError> {
        self.exec_streaming("", argv, stdin, &mut |_| {}).await
    }

    /// Like [`Connection::exec`], with `env` (bioxen's own `NAME="value"` assignments,
    /// never user text) before the command and each piece of output passed to
    /// `on_output` as it arrives.
    pub async fn exec_streaming(
        &self,
        env: &str,
        argv: &[&str],
        stdin: &[u8],
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<ExecOutput, SshError> {
        let err = |e: russh::Error| SshError::Channel(format!("{}: {e}", self.target.label()));
        let mut channel = self.handle.channel_open_session().await.map_err(err)?;
        let command = format!("{env}{}", shell_words::join(argv));
        channel.exec(true, command.as_bytes()).await.map_err(err)?;
        if !stdin.is_empty() {
            channel.data_bytes(stdin.to_vec()).await.map_err(err)?;
        }
        channel.eof().await.map_err(err)?;
        let mut out = ExecOutput {
            stdout: Vec::new(),
            stderr: Vec::new(),
            status: None,
        };
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    on_output(&data);
                    out.stdout.extend_from_slice(&data);
                }
                ChannelMsg::ExtendedData { data, .. } => {
                    on_output(&data);
                    out.stderr.extend_from_slice(&data);
                }
                ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        Ok(out)
    }

    /// Runs `command` (by the remote shell, so its words must be quoted already) on an
    /// exec channel, as a local program runs: `stdin` is its input until EOF, and its
    /// stdout and stderr go to `stdout` and `stderr` as they come, apart.
    pub async fn run_piped(
        &self,
        command: &str,
        mut stdin: impl tokio::io::AsyncRead + Unpin + Send + 'static,
        stdout: &mut (impl tokio::io::AsyncWrite + Unpin),
        stderr: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<ProgramEnd, SshError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let err = |e: russh::Error| SshError::Channel(format!("{}: {e}", self.target.label()));
        let channel = self.handle.channel_open_session().await.map_err(err)?;
        channel.exec(true, command.as_bytes()).await.map_err(err)?;
        let (mut read, write) = channel.split();
        // Input is fed beside the output: a program may print long before it reads.
        let feeding = tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if write.data_bytes(buf[..n].to_vec()).await.is_err() {
                            return write;
                        }
                    }
                }
            }
            let _ = write.eof().await;
            write
        });
        let mut end = ProgramEnd::default();
        while let Some(msg) = read.wait().await {
            let written = match msg {
                ChannelMsg::Data { data } => {
                    stdout.write_all(&data).await.and(stdout.flush().await)
                }
                ChannelMsg::ExtendedData { data, .. } => {
                    stderr.write_all(&data).await.and(stderr.flush().await)
                }
                ChannelMsg::ExitStatus { exit_status } => {
                    end.status = Some(exit_status);
                    Ok(())
                }
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    end.signal = Some(signal_name_text(&signal_name));
                    Ok(())
                }
                ChannelMsg::Close => break,
                _ => Ok(()),
            };
            if written.is_err() {
                end.output_closed = true;
                break;
            }
        }
        feeding.abort();
        if end.output_closed
            && let Ok(write) = feeding.await
        {
            let _ = write.close().await;
        }
        Ok(end)
    }

    /// A handle to stop the connection from elsewhere.
    pub fn control(&self) -> SshControl {
        SshControl {
            handle: self.handle.clone(),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }
}

/// A signal's name as OpenSSH sends it (`INT`, not `SIGINT`).
fn signal_name_text(sig: &russh::Sig) -> String {
    use russh::Sig;
    match sig {
        Sig::ABRT => "ABRT".into(),
        Sig::ALRM => "ALRM".into(),
        Sig::FPE => "FPE".into(),
        Sig::HUP => "HUP".into(),
        Sig::ILL => "ILL".into(),
        Sig::INT => "INT".into(),
        Sig::KILL => "KILL".into(),
        Sig::PIPE => "PIPE".into(),
        Sig::QUIT => "QUIT".into(),
        Sig::SEGV => "SEGV".into(),
        Sig::TERM => "TERM".into(),
        Sig::USR1 => "USR1".into(),
        Sig::Custom(name) => name.clone(),
    }
}

/// Ends a remote session: the channel's program gets the whole connection closed under
/// it (the server sends it SIGHUP), as when a terminal window is closed.
#[derive(Clone)]
pub struct SshControl {
    handle: Arc<Handle<Client>>,
}

impl SshControl {
    pub async fn disconnect(&self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "bioxen closed the session", "en")
            .await;
    }
}
