//! A connection to `bioxen server`, with the manager's API: scripts and tests use the
//! server as they used the in-process manager, and their VMs outlive them. It speaks
//! only the contract in `bioxen-proto`; nothing of the server is linked in.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use bioxen_proto::{
    self as protocol, Call, CreateOptions, Event, ExecResult, Hello, Incoming, InstallOutcome,
    Request, Response, ServerMsg, SshAnswer, UpReport, VmId, VmInfo, VmKind, VmRef, VmState,
    Welcome,
};

mod error;
use error::ClientError as Error;
pub use error::{ClientError, Result};

/// A connection to the server. Cheap to clone; clones share the connection, and calls
/// from several tasks run at once (each reply finds its caller by tag).
#[derive(Clone)]
pub struct Client {
    /// Calls for the writer task; when the last clone is dropped, the writer ends,
    /// which closes the connection.
    calls: mpsc::UnboundedSender<Call>,
    shared: Arc<Shared>,
    /// The server's process id, from its welcome.
    pub server_pid: u32,
}

/// What the reader task shares with the clients.
struct Shared {
    waiting: Mutex<HashMap<u64, Waiter>>,
    next_tag: AtomicU64,
    /// Where events go once someone asked for them ([`Client::updates`]).
    updates: Mutex<Option<mpsc::Sender<Update>>>,
}

enum Waiter {
    Caller(oneshot::Sender<Response>),
    /// A call nobody waits for: a failure becomes an [`Update::Failed`].
    Report,
}

/// What the server pushes to a client that subscribed or watches sessions.
#[derive(Debug)]
pub enum Update {
    Event(Event),
    /// Output of a watched session.
    Output {
        vm: VmId,
        bytes: Vec<u8>,
    },
    /// A call made with [`Client::notify`] failed.
    Failed(String),
    /// The connection ended: the server exited, was killed, or dropped this client.
    Gone(String),
}

/// Events that may wait for the client to take them; beyond this the connection stops
/// reading, and the server, seeing a slow client, catches it up with snapshots later.
const UPDATE_QUEUE: usize = 256;

/// How long `kill-server` waits for the server to let go: ending its VMs comes first.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(15);

/// Refuses a server that runs as another user (SO_PEERCRED), naming the socket.
fn check_peer_is_me(stream: &UnixStream, socket: &Path) -> Result<()> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let me = unsafe { libc::getuid() };
    let peer = stream.peer_cred().map_err(|e| {
        Error::Untrusted(format!(
            "not connecting to {}: cannot tell who serves it ({e})",
            socket.display()
        ))
    })?;
    if peer.uid() != me {
        return Err(Error::Untrusted(format!(
            "not connecting to {}: it is served by uid {}, not by you (uid {me}); \
             someone else may have put it there",
            socket.display(),
            peer.uid()
        )));
    }
    Ok(())
}

/// What a connection starts with (see [`Client::connect_with`]).
#[derive(Debug, Default, Clone)]
pub struct Opening {
    /// Only look (`bioxen attach -r`): the server refuses anything that changes.
    pub read_only: bool,
    /// Requests sent with the hello, as [`Client::notify`] sends them.
    pub first: Vec<Request>,
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
    ///
    /// Before a word is sent, the socket's directory must be this user's and closed to
    /// others, and the process listening must run as this user: a socket squatted in a
    /// shared fallback directory (`/tmp/bioxen-UID`, made first by someone else) would
    /// otherwise receive every key typed into the dashboard.
    pub async fn connect(socket: &Path, what: &str) -> Result<Client> {
        Client::connect_as(socket, what, false).await
    }

    /// Connects as a client that only looks (`bioxen attach -r`): the server refuses
    /// it anything that would change a VM or the server.
    pub async fn connect_read_only(socket: &Path, what: &str) -> Result<Client> {
        Client::connect_as(socket, what, true).await
    }

    async fn connect_as(socket: &Path, what: &str, read_only: bool) -> Result<Client> {
        let opening = Opening {
            read_only,
            ..Opening::default()
        };
        Ok(Client::open(socket, what, opening).await?.0)
    }

    /// Connects (starting a server first, with `start`, if none answers), sending
    /// `opening.first` in the same write as the hello, and takes the updates before
    /// anything is read: the answers to those requests are not lost, and they do not
    /// wait a round trip for the server's welcome. A server that refuses the hello
    /// reads none of them.
    pub async fn connect_with(
        socket: &Path,
        what: &str,
        start: Option<&StartOptions>,
        opening: Opening,
    ) -> Result<(Client, mpsc::Receiver<Update>)> {
        match start {
            Some(start) => Client::open_or_start(socket, what, start, opening).await,
            None => Client::open(socket, what, opening).await,
        }
    }

    /// Connects, and takes the updates before anything is read (a caller that
    /// drops them, and takes them later with [`Client::updates`], misses what came
    /// before, as it always has).
    async fn open(
        socket: &Path,
        what: &str,
        opening: Opening,
    ) -> Result<(Client, mpsc::Receiver<Update>)> {
        let Opening { read_only, first } = opening;
        if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
            match bioxen_config::private_fs::check_owned_and_closed(dir) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Untrusted(format!(
                        "not connecting to {}: {e}",
                        socket.display()
                    )));
                }
                Ok(()) => {}
            }
        }
        let mut stream = UnixStream::connect(socket).await.map_err(|e| {
            Error::Connect(format!(
                "no bioxen server on {} ({e}); `bioxen` starts one",
                socket.display()
            ))
        })?;
        check_peer_is_me(&stream, socket)?;
        let hello = Hello {
            version: protocol::VERSION,
            client: what.to_string(),
            read_only,
        };
        let (calls, outgoing) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            waiting: Mutex::new(HashMap::new()),
            next_tag: AtomicU64::new(1),
            updates: Mutex::new(None),
        });
        let client = Client {
            calls,
            shared,
            server_pid: 0,
        };
        let updates = client.updates();
        let opening = client.opening_frames(&hello, first)?;
        // A server that refuses this user answers before reading: the hello may meet a
        // closed connection, and the refusal is still there to read.
        let sent = {
            use tokio::io::AsyncWriteExt;
            stream.write_all(&opening).await
        };
        let welcome =
            protocol::read_message_within::<_, Welcome>(&mut stream, protocol::HELLO_LIMIT).await;
        if let (Err(e), Err(_) | Ok(None)) = (&sent, &welcome) {
            return Err(Error::Io(std::io::Error::new(e.kind(), e.to_string())));
        }
        let server_pid = match welcome {
            Ok(Some(Welcome::Ok { server_pid, .. })) => server_pid,
            Ok(Some(Welcome::Refused { reason })) => {
                return Err(Error::Connect(format!(
                    "the server on {} refused: {}",
                    socket.display(),
                    bioxen_text::sanitize::line(&reason)
                )));
            }
            Ok(None) => {
                return Err(Error::Lost(format!(
                    "the server on {} closed the connection",
                    socket.display()
                )));
            }
            Err(e) => {
                return Err(Error::Protocol(format!(
                    "the server on {} answered in a way this bioxen does not understand ({e}); \
                     it may be another version: bioxen kill-server, then try again",
                    socket.display()
                )));
            }
        };
        let (reader, writer) = stream.into_split();
        tokio::spawn(write_calls(writer, outgoing));
        tokio::spawn(read_replies(reader, client.shared.clone()));
        Ok((
            Client {
                server_pid,
                ..client
            },
            updates,
        ))
    }

    /// The hello and `first` framed for one write; the requests' answers are handled
    /// as [`Client::notify`]'s are.
    fn opening_frames(&self, hello: &Hello, first: Vec<Request>) -> Result<Vec<u8>> {
        let mut frames = Vec::new();
        protocol::encode_message(&mut frames, hello)?;
        for request in first {
            let tag = self.register(Waiter::Report);
            protocol::encode_message(&mut frames, &Call { tag, request })?;
        }
        Ok(frames)
    }

    /// Connects, starting a server first if none answers: detached in its own session,
    /// its output in `start.log`.
    pub async fn connect_or_start(
        socket: &Path,
        what: &str,
        start: &StartOptions,
    ) -> Result<Client> {
        let opening = Opening::default();
        Ok(Client::open_or_start(socket, what, start, opening).await?.0)
    }

    async fn open_or_start(
        socket: &Path,
        what: &str,
        start: &StartOptions,
        opening: Opening,
    ) -> Result<(Client, mpsc::Receiver<Update>)> {
        match Client::open(socket, what, opening.clone()).await {
            Ok(c) => return Ok(c),
            Err(e @ Error::Untrusted(_)) => return Err(e),
            Err(_) => {}
        }
        spawn_server(socket, start)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match Client::open(socket, what, opening.clone()).await {
                Ok(c) => return Ok(c),
                Err(e @ Error::Untrusted(_)) => return Err(e),
                Err(e) if Instant::now() > deadline => {
                    return Err(Error::Connect(format!(
                        "started a server, but it does not answer: {e} (its log: {})",
                        start.log.display()
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// The events the server pushes (after [`Client::subscribe`] or
    /// [`Client::watch`]). Taken once; events that arrive before are dropped.
    pub fn updates(&self) -> mpsc::Receiver<Update> {
        let (tx, rx) = mpsc::channel(UPDATE_QUEUE);
        *lock(&self.shared.updates) = Some(tx);
        rx
    }

    /// A fresh tag for a call, with who hears its answer.
    fn register(&self, waiter: Waiter) -> u64 {
        let tag = self.shared.next_tag.fetch_add(1, Ordering::Relaxed);
        lock(&self.shared.waiting).insert(tag, waiter);
        tag
    }

    fn submit(&self, request: Request, waiter: Waiter) -> Result<()> {
        let tag = self.register(waiter);
        self.calls
            .send(Call { tag, request })
            .map_err(|_| Error::Lost("the connection to the server is closed".into()))
    }

    /// Sends a call without waiting for its answer; a failure arrives as
    /// [`Update::Failed`]. For keystrokes and resizes, which must not wait.
    pub fn notify(&self, request: Request) {
        let _ = self.submit(request, Waiter::Report);
    }

    async fn call(&self, request: Request) -> Result<Response> {
        let patience = request.patience();
        let (tx, rx) = oneshot::channel();
        self.submit(request, Waiter::Caller(tx))?;
        match tokio::time::timeout(patience, rx).await {
            Err(_) => Err(Error::NoAnswer(format!(
                "the server did not answer within {}s",
                patience.as_secs()
            ))),
            Ok(Err(_)) => Err(Error::Lost("the server closed the connection".into())),
            Ok(Ok(Response::Failed(e))) => Err(e.into()),
            Ok(Ok(r)) => Ok(r),
        }
    }

    fn unexpected(r: Response) -> Error {
        Error::Protocol(format!("unexpected answer from the server: {r:?}"))
    }

    /// Creates a VM named `name` (or a free name) and starts its interpreter; its
    /// number comes back.
    pub async fn create_interactive_vm(
        &self,
        name: Option<&str>,
        kind: VmKind,
        options: CreateOptions,
    ) -> Result<VmId> {
        Ok(self.create_vm(name, kind, options).await?.0)
    }

    /// As [`Client::create_interactive_vm`], with the name the VM was given.
    pub async fn create_vm(
        &self,
        name: Option<&str>,
        kind: VmKind,
        options: CreateOptions,
    ) -> Result<(VmId, String)> {
        match self
            .call(Request::Create {
                name: name.map(str::to_string),
                kind,
                options,
            })
            .await?
        {
            Response::Created { vm, name } => Ok((vm, name)),
            r => Err(Client::unexpected(r)),
        }
    }

    pub async fn send_input(&self, vm: impl Into<VmRef>, input: impl AsRef<[u8]>) -> Result<()> {
        self.done(Request::SendInput {
            vm: vm.into(),
            data: input.as_ref().to_vec(),
        })
        .await
    }

    pub async fn read_output(&self, vm: impl Into<VmRef>) -> Result<String> {
        self.text(Request::ReadOutput { vm: vm.into() }).await
    }

    pub async fn read_until(
        &self,
        vm: impl Into<VmRef>,
        needle: &str,
        timeout: Duration,
    ) -> Result<String> {
        self.text(Request::ReadUntil {
            vm: vm.into(),
            needle: needle.into(),
            timeout_ms: timeout.as_millis() as u64,
        })
        .await
    }

    pub async fn wait_ready(&self, vm: impl Into<VmRef>, timeout: Duration) -> Result<()> {
        self.done(Request::WaitReady {
            vm: vm.into(),
            timeout_ms: timeout.as_millis() as u64,
        })
        .await
    }

    pub async fn execute_string(
        &self,
        vm: impl Into<VmRef>,
        code: &str,
        timeout: Duration,
    ) -> Result<ExecResult> {
        match self
            .call(Request::Execute {
                vm: vm.into(),
                code: code.into(),
                timeout_ms: timeout.as_millis() as u64,
            })
            .await?
        {
            Response::Executed { output, error } => Ok(ExecResult { output, error }),
            r => Err(Client::unexpected(r)),
        }
    }

    /// The VM's screen, and its history from `start` lines back (`-N`), as text; with
    /// `escapes` its colours are kept (`tmux capture-pane -p [-S -N] [-e]`).
    pub async fn capture(
        &self,
        vm: impl Into<VmRef>,
        start: Option<i64>,
        escapes: bool,
    ) -> Result<String> {
        let request = Request::Capture {
            vm: vm.into(),
            start,
            escapes,
        };
        match self.call(request).await? {
            Response::Output { text } => Ok(text),
            r => Err(Client::unexpected(r)),
        }
    }

    /// Waits until the VM is at its prompt, has exited, or shows a match; returns its
    /// state then.
    pub async fn wait_until(
        &self,
        vm: impl Into<VmRef>,
        until: protocol::WaitFor,
        timeout: Duration,
    ) -> Result<VmState> {
        let request = Request::Wait {
            vm: vm.into(),
            until,
            timeout_ms: timeout.as_millis() as u64,
        };
        match self.call(request).await? {
            Response::State { state } => Ok(state),
            r => Err(Client::unexpected(r)),
        }
    }

    /// Searches every VM's screen and history.
    pub async fn search(&self, query: protocol::SearchQuery) -> Result<Vec<protocol::SearchMatch>> {
        match self.call(Request::Search { query }).await? {
            Response::Found { matches } => Ok(matches),
            r => Err(Client::unexpected(r)),
        }
    }

    /// What the server kept of a VM's (or pool VM's) figures over `window`.
    pub async fn history(
        &self,
        of: protocol::HistoryOf,
        window: protocol::Window,
    ) -> Result<protocol::Series> {
        match self.call(Request::History { of, window }).await? {
            Response::History { series } => Ok(series),
            r => Err(Client::unexpected(r)),
        }
    }

    pub async fn resize(&self, vm: impl Into<VmRef>, rows: u16, cols: u16) -> Result<()> {
        self.done(Request::Resize {
            vm: vm.into(),
            rows,
            cols,
        })
        .await
    }

    /// Ends the VM's process; the session stays with its last screen.
    pub async fn kill(&self, vm: impl Into<VmRef>) -> Result<VmState> {
        self.state(Request::Kill { vm: vm.into() }).await
    }

    /// Ends the VM and forgets it.
    pub async fn terminate_vm_session(&self, vm: impl Into<VmRef>) -> Result<VmState> {
        self.state(Request::Terminate { vm: vm.into() }).await
    }

    pub async fn restart(&self, vm: impl Into<VmRef>) -> Result<()> {
        self.done(Request::Restart { vm: vm.into() }).await
    }

    pub async fn list(&self) -> Result<Vec<VmInfo>> {
        match self.call(Request::List).await? {
            Response::Vms { vms } => Ok(vms),
            r => Err(Client::unexpected(r)),
        }
    }

    pub async fn screen_text(&self, vm: impl Into<VmRef>) -> Result<String> {
        self.text(Request::ScreenText { vm: vm.into() }).await
    }

    /// Ends every VM and the server.
    ///
    /// Returns once the server has let go of its socket and its journal (its process
    /// ends, and this connection with it), so that a server started next finds them
    /// free; or after [`SHUTDOWN_WAIT`], the server still ending.
    pub async fn shutdown_server(self) -> Result<()> {
        let mut updates = self.updates();
        self.done(Request::Shutdown).await?;
        let gone = async {
            while let Some(update) = updates.recv().await {
                if matches!(update, Update::Gone(_)) {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(SHUTDOWN_WAIT, gone).await;
        Ok(())
    }

    /// Starts the event stream: the VM list, states, notices, the pool and questions.
    pub async fn subscribe(&self) -> Result<()> {
        self.done(Request::Subscribe).await
    }

    /// Asks for the session's screen and then its output as [`Update`]s.
    pub async fn watch(&self, vm: impl Into<VmRef>) -> Result<()> {
        self.done(Request::Watch { vm: vm.into() }).await
    }

    pub async fn unwatch(&self, vm: impl Into<VmRef>) -> Result<()> {
        self.done(Request::Unwatch { vm: vm.into() }).await
    }

    /// Marks the session as typed into (its output is read first).
    pub async fn attach(&self, vm: impl Into<VmRef>) -> Result<()> {
        self.done(Request::Attach { vm: vm.into() }).await
    }

    pub async fn detach(&self, vm: impl Into<VmRef>) -> Result<()> {
        self.done(Request::Detach { vm: vm.into() }).await
    }

    pub async fn answer(&self, question: u64, answer: SshAnswer) -> Result<()> {
        self.done(Request::Answer { question, answer }).await
    }

    /// Gives a VM a new name.
    pub async fn rename(&self, vm: impl Into<VmRef>, name: &str) -> Result<()> {
        self.call(Request::Rename {
            vm: vm.into(),
            name: name.into(),
        })
        .await
        .map(|_| ())
    }

    /// Sets the seconds of silence after which a VM raises an alert; 0 is off.
    pub async fn set_silence(&self, vm: impl Into<VmRef>, secs: u64) -> Result<()> {
        self.call(Request::SetSilence {
            vm: vm.into(),
            secs,
        })
        .await
        .map(|_| ())
    }

    /// Starts or stops the session's output log; the log's path when it is now on.
    pub async fn toggle_output_log(&self, vm: impl Into<VmRef>) -> Result<Option<PathBuf>> {
        match self.call(Request::ToggleLog { vm: vm.into() }).await? {
            Response::LogPath { path } => Ok(path),
            r => Err(Client::unexpected(r)),
        }
    }

    /// Forgets a session whose interpreter has ended.
    pub async fn remove(&self, vm: impl Into<VmRef>) -> Result<()> {
        self.done(Request::Remove { vm: vm.into() }).await
    }

    /// Closes an `xcpng` session, leaving its pool VM running.
    pub async fn release(&self, vm: impl Into<VmRef>) -> Result<VmState> {
        self.state(Request::Release { vm: vm.into() }).await
    }

    /// Ends an `xcpng` session and destroys its pool VM.
    pub async fn kill_and_destroy(&self, vm: impl Into<VmRef>) -> Result<VmState> {
        self.state(Request::Destroy { vm: vm.into() }).await
    }

    /// Installs a package with luarocks into the VM; luarocks' output arrives as
    /// [`Event::InstallOutput`] updates meanwhile.
    pub async fn install_package(
        &self,
        vm: impl Into<VmRef>,
        spec: &bioxen_proto::package::PackageSpec,
    ) -> Result<InstallOutcome> {
        let request = Request::Install {
            vm: vm.into(),
            name: spec.name().to_string(),
            version: spec.version().map(str::to_string),
        };
        match self.call(request).await? {
            Response::Installed(outcome) => Ok(outcome),
            r => Err(Client::unexpected(r)),
        }
    }

    /// Ends and forgets every VM.
    pub async fn end_all(&self) -> Result<()> {
        self.done(Request::EndAll).await
    }

    /// Starts the experiment's VMs that are not running yet; see `Manager::up`.
    pub async fn up(&self, experiment: bioxen_proto::Experiment, force: bool) -> Result<UpReport> {
        match self.call(Request::Up { experiment, force }).await? {
            Response::Up(report) => Ok(report),
            r => Err(Client::unexpected(r)),
        }
    }

    /// Ends and forgets the experiment's VMs; returns their names.
    pub async fn down(&self, experiment: &str) -> Result<Vec<String>> {
        let experiment = experiment.to_string();
        match self.call(Request::Down { experiment }).await? {
            Response::Ended { vms } => Ok(vms),
            r => Err(Client::unexpected(r)),
        }
    }

    async fn done(&self, request: Request) -> Result<()> {
        match self.call(request).await? {
            Response::Done => Ok(()),
            r => Err(Client::unexpected(r)),
        }
    }

    async fn text(&self, request: Request) -> Result<String> {
        match self.call(request).await? {
            Response::Output { text } => Ok(text),
            r => Err(Client::unexpected(r)),
        }
    }

    async fn state(&self, request: Request) -> Result<VmState> {
        match self.call(request).await? {
            Response::State { state } => Ok(state),
            r => Err(Client::unexpected(r)),
        }
    }
}

/// Writes calls in the order they were made.
async fn write_calls(
    mut writer: tokio::net::unix::OwnedWriteHalf,
    mut calls: mpsc::UnboundedReceiver<Call>,
) {
    while let Some(call) = calls.recv().await {
        if protocol::write_message(&mut writer, &call).await.is_err() {
            return;
        }
    }
}

/// Hands each reply to its caller and each event to [`Client::updates`]; when the
/// connection ends, every waiting caller is told and the updates end with
/// [`Update::Gone`].
async fn read_replies(mut reader: tokio::net::unix::OwnedReadHalf, shared: Arc<Shared>) {
    let reason = loop {
        let update = match protocol::read_incoming(&mut reader).await {
            Ok(Some(Incoming::Msg(ServerMsg::Reply { tag, response }))) => {
                let waiter = lock(&shared.waiting).remove(&tag);
                match (waiter, response) {
                    (Some(Waiter::Caller(tx)), r) => {
                        let _ = tx.send(r);
                        continue;
                    }
                    (Some(Waiter::Report), Response::Failed(e)) => Update::Failed(e.to_string()),
                    _ => continue,
                }
            }
            Ok(Some(Incoming::Msg(ServerMsg::Event(e)))) => Update::Event(e),
            Ok(Some(Incoming::Output { vm, bytes })) => Update::Output { vm, bytes },
            Ok(None) => break "the bioxen server closed the connection".to_string(),
            Err(e) => break format!("the connection to the bioxen server broke: {e}"),
        };
        let updates = lock(&shared.updates).clone();
        if let Some(tx) = updates {
            // Waiting here is the back-pressure that tells the server this client is
            // slow.
            let _ = tx.send(update).await;
        }
    };
    lock(&shared.waiting).clear();
    let updates = lock(&shared.updates).take();
    if let Some(tx) = updates {
        let _ = tx.send(Update::Gone(reason)).await;
    }
}

/// Starts `bioxen server --foreground` detached: its own session (no controlling
/// terminal, so closing this one does not end it), stdin from /dev/null, output to its
/// log.
fn spawn_server(socket: &Path, start: &StartOptions) -> Result<()> {
    use std::os::unix::process::CommandExt;
    // A log directory that cannot be used must not stop the server from starting:
    // its output then goes beside its socket.
    let log = bioxen_config::private_fs::open_append(&start.log).or_else(|e| {
        let fallback = socket.with_extension("log");
        tracing::warn!(
            "{}: {e}; the server logs to {}",
            start.log.display(),
            fallback.display()
        );
        bioxen_config::private_fs::open_append(&fallback)
    })?;
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
        .map_err(|e| Error::Connect(format!("cannot start {}: {e}", start.exe.display())))?;
    // Reap it in the background if it fails early; a running server outlives us.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

/// Locks a mutex, carrying on if a panicking thread poisoned it: the maps behind these
/// locks stay consistent between statements.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The async runtime every bioxen command runs on: two worker threads, as many cores as
/// the machines it is measured on have; more would only add wake-ups.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
