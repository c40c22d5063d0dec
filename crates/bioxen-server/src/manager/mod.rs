//! The manager: the only owner of VM sessions.
//!
//! It runs inside `bioxen server` (see [`crate::server`]), which puts this API on a
//! socket; tests and `bioxen run` also use it in-process. Watchers of a session get a
//! snapshot of its screen and then every change, in order ([`Manager::watch`]).
//!
//! Per session there is one reader task (reads up to 64 KiB, feeds the parser, keeps
//! the bytes for `read_output`, wakes waiters) and one writer task (keystrokes, pastes,
//! terminal replies and resizes, in order). The reader never writes to the PTY itself:
//! a paste blocked on a full PTY must not stop output from being drained.

mod execute;
mod install;
mod output;
mod output_log;
mod program;
mod remote;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::AsyncReadExt;
use tokio::sync::{Notify, broadcast, mpsc, watch};

pub use bioxen_proto::ExecResult;
use output::OutputBuffer;
use output_log::OutputLog;

use bioxen_backend::error::{Error, Result};
use bioxen_backend::lock;
use bioxen_backend::vm::proc_stats::{CpuMeter, ProcStats};
use bioxen_backend::vm::{self, Control, Sink, Size, VmKind, VmOptions, VmSpec, VmState};
use bioxen_config::Config;
pub use bioxen_proto::{Alert, Busy, PROGRESS_STALE, Progress, ProgressState, VmInfo};
use bioxen_term::Screen;
use bioxen_term::signals::Said;

/// How long a terminated VM gets to exit after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(1500);
/// Bytes of output kept for `read_output` between two reads.
const PENDING_LIMIT: usize = 1024 * 1024;
/// Bytes of input that may wait for a session that is not reading.
const INPUT_LIMIT: usize = 16 * 1024 * 1024;
/// Answers to terminal queries are queued only while less than this waits in all: a
/// program that asks without reading fills at most this share of [`INPUT_LIMIT`], and
/// what the user types still fits.
const REPLY_LIMIT: usize = 1024 * 1024;
/// Input is written in pieces of at most this size, so a large paste never holds the
/// writer for long and interleaves fairly with resizes.
const INPUT_PIECE: usize = 4096;

/// What happened to sessions; the dashboard redraws from these.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Created(String),
    /// New output arrived. Sent once until the receiver calls [`Manager::take_dirty`],
    /// so a flooding session costs one event per frame, not one per read.
    Output(String),
    State(String, VmState),
    /// CPU, memory or process state of some session changed.
    Stats,
    Removed(String),
    /// Something went wrong that the user should see (in the status bar).
    Error(Option<String>, String),
    /// A session asks for attention: see [`Alert`].
    Alert(String, Alert),
    /// A session was renamed: the old name, the new one.
    Renamed(String, String),
}

/// What a watcher of one session receives, in the order it happened: output bytes,
/// and size changes (which a mirror of the screen must follow to stay the same).
#[derive(Debug, Clone)]
pub enum Live {
    Output(Arc<[u8]>),
    Resized(Size),
}

/// Defaults the manager applies to new sessions, taken from `bioxen.toml`.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// Hosts `ssh` VMs connect to.
    pub ssh_hosts: Vec<bioxen_config::SshHost>,
    /// The pool `xcpng` VMs are created on.
    pub xcpng: Option<bioxen_config::XcpngConfig>,
    /// Who decides about unknown SSH host keys and key passphrases.
    pub trust: bioxen_backend::vm::ssh::Trust,
    /// How long a new pool VM may take to report its IP.
    pub xcpng_ip_timeout: Duration,
    /// The luarocks tree local VMs share.
    pub rocks_tree: PathBuf,
    /// Where luarocks looks for rocks (URLs or directories), tried in order.
    pub rocks_servers: Vec<String>,
    /// The local interpreter's command line; empty runs `self_exe lua`.
    pub local_command: Vec<String>,
    /// The bioxen binary, whose `lua` subcommand is the default interpreter.
    pub self_exe: PathBuf,
    pub local_env: Vec<(String, String)>,
    pub local_cwd: Option<PathBuf>,
    pub scrollback: usize,
    pub scrollback_bytes: usize,
    /// Write each session's raw output to `<log_dir>/<id>.log`.
    pub output_log: bool,
    pub log_dir: PathBuf,
    /// Seconds of silence (while not at the prompt) before a silence alert; 0 is off.
    pub silence_secs: u64,
}

impl ManagerConfig {
    pub fn from_config(config: &Config) -> Result<Self> {
        let local_command = if config.local.command.trim().is_empty() {
            Vec::new()
        } else {
            shell_words::split(&config.local.command)
                .map_err(|e| Error::Manager(format!("local.command: {e}")))?
        };
        Ok(ManagerConfig {
            ssh_hosts: config.ssh_hosts.clone(),
            xcpng: config.xcpng.clone(),
            trust: bioxen_backend::vm::ssh::Trust::default(),
            xcpng_ip_timeout: Duration::from_secs(180),
            rocks_tree: bioxen_backend::rocks::local_tree(config.local.rocks_tree.as_deref()),
            rocks_servers: config.rocks_servers.clone(),
            local_command,
            self_exe: std::env::current_exe()?,
            local_env: config
                .local
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            local_cwd: config.local.cwd.as_deref().map(bioxen_config::expand_home),
            scrollback: config.ui.scrollback,
            scrollback_bytes: config.ui.scrollback_bytes,
            output_log: config.ui.output_log,
            log_dir: config.log_dir(),
            silence_secs: config.ui.silence,
        })
    }

    /// The argv a new local VM runs, honouring an override from the caller.
    pub fn local_argv(&self, command: Option<&[String]>) -> Vec<String> {
        if let Some(cmd) = command.filter(|c| !c.is_empty()) {
            return cmd.to_vec();
        }
        if !self.local_command.is_empty() {
            return self.local_command.clone();
        }
        vec![self.self_exe.to_string_lossy().into_owned(), "lua".into()]
    }

    /// What a local VM's interpreter gets on top of bioxen's environment: the
    /// configured variables, the caller's, and the luarocks paths (so `require` finds
    /// installed packages at once, even while it runs).
    pub fn local_vm_env(&self, extra: &[(String, String)], id: &str) -> Vec<(String, String)> {
        let mut env = self.local_env.clone();
        env.extend(extra.iter().cloned());
        let rocks = bioxen_backend::rocks::local_env(&self.rocks_tree, &env);
        env.retain(|(k, _)| !rocks.iter().any(|(r, _)| r == k));
        env.extend(rocks);
        env.push(("BIOXEN_VM".into(), id.to_string()));
        env
    }

    /// Whether `argv` runs bioxen's own REPL, which marks its prompts itself and has
    /// the `bioxen` module built in.
    pub fn is_embedded(&self, argv: &[String]) -> bool {
        argv.len() >= 2 && Path::new(&argv[0]) == self.self_exe && argv[1] == "lua"
    }

    /// Variables of bioxen's own environment that a VM does not get: the ones that hold
    /// pool and host passwords, and bioxen's own settings. Everything else a VM
    /// inherits, as a shell in a tmux pane does: PATH, HOME, LANG, LUA_PATH and the like
    /// are what a researcher's Lua expects to find.
    pub fn secret_env(&self) -> Vec<String> {
        self.xcpng
            .iter()
            .filter_map(|x| x.password_env.clone())
            .chain(self.ssh_hosts.iter().filter_map(|h| h.password_env.clone()))
            .chain(["BIOXEN_LOG", "BIOXEN_TEST_PANIC"].map(String::from))
            .collect()
    }
}

/// The owner of all sessions. Cheap to clone; clones share the sessions.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

struct Inner {
    config: ManagerConfig,
    /// Sessions in creation order.
    sessions: Mutex<Vec<Arc<Session>>>,
    events: broadcast::Sender<Event>,
    next_name: AtomicU64,
    /// The pool: one client, one login and one event cache, made on first use and
    /// shared by everything that talks to the pool (sessions, the dashboard, `ls`).
    pool: Mutex<Option<Arc<Pool>>>,
    /// Woken by any session's output: the process sampler, backed off while nothing
    /// happens, looks again soon.
    activity: Arc<Notify>,
    /// Pool VM creations still running, a killed session's among them: each goes on
    /// until it has finished or removed what it made.
    pool_jobs: watch::Sender<usize>,
}

/// A pool VM creation in flight, counted for [`Manager::pool_jobs_done`].
pub(crate) struct PoolJob(watch::Sender<usize>);

impl Drop for PoolJob {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The configured XCP-ng pool as bioxen follows it.
pub struct Pool {
    pub client: Arc<bioxen_backend::xapi::XapiClient>,
    pub cache: bioxen_backend::xapi::EventCache,
}

/// One VM session. Its screen, output buffer and history outlive its process, so a dead
/// VM still shows its last screen and can be restarted in place.
pub struct Session {
    /// The session's name; changed only by [`Manager::rename`].
    id: std::sync::RwLock<String>,
    spec: VmSpec,
    created: SystemTime,
    screen: Mutex<Screen>,
    pending: Mutex<OutputBuffer>,
    /// Live output for watchers (`watch`, `execute_string`). Sent while the screen
    /// is locked, so a snapshot taken under that lock is followed by exactly the
    /// output it does not contain.
    live: broadcast::Sender<Live>,
    /// Counts output chunks; waiters watch it instead of sleeping.
    seq: watch::Sender<u64>,
    state: watch::Sender<VmState>,
    process: Mutex<Option<Process>>,
    stats: Mutex<Option<ProcStats>>,
    /// How many clients are attached (typing into it): each attaches once and gives
    /// it back when it detaches or its connection ends.
    attached: AtomicUsize,
    dirty: AtomicBool,
    queued_input: AtomicUsize,
    /// Set while answers to the program's terminal queries are being dropped because
    /// it does not read its input; the user is told once per such spell.
    replies_dropped: AtomicBool,
    log: Mutex<Option<OutputLog>>,
    /// The SSH side of a remote session.
    remote: Mutex<Option<remote::Remote>>,
    /// Set when the user ends the session: a remote session stops reconnecting.
    stop: remote::StopSignal,
    /// The manager's, for the sampler: see [`Inner`].
    activity: Arc<Notify>,
    /// What the program said about itself.
    signals: Mutex<SessionSignals>,
    /// Seconds without output before a silence alert; 0 is off.
    silence: watch::Sender<u64>,
}

/// What a session's program said about itself, and when the list last told clients.
#[derive(Default)]
struct SessionSignals {
    busy: Option<Busy>,
    /// The command running now (or the one that just ended) failed.
    failed: bool,
    progress: Option<Progress>,
    progress_seq: u64,
    /// When the last progress report came.
    progress_at: Option<Instant>,
    status: Option<String>,
    /// When a change was last published.
    published: Option<Instant>,
    /// A change not yet published: the sampler publishes it.
    pending: bool,
}

/// Progress and status reports are published at most this often per session: a loop
/// reporting on every step costs one list per 100 ms, not one per step.
const SIGNALS_EVERY: Duration = Duration::from_millis(100);

/// The running part of a session; replaced on restart.
struct Process {
    writer: mpsc::UnboundedSender<WriterMsg>,
    control: Arc<dyn Control>,
    started: Instant,
    command: String,
}

enum WriterMsg {
    Data(Vec<u8>),
    Resize(Size),
}

impl Manager {
    /// Creates a manager. Must be called inside a tokio runtime: it starts the
    /// process sampler.
    pub fn new(config: ManagerConfig) -> Self {
        let (events, _) = broadcast::channel(1024);
        let manager = Manager {
            inner: Arc::new(Inner {
                config,
                sessions: Mutex::new(Vec::new()),
                events,
                next_name: AtomicU64::new(1),
                pool: Mutex::new(None),
                activity: Arc::new(Notify::new()),
                pool_jobs: watch::channel(0).0,
            }),
        };
        tokio::spawn(sample_stats(Arc::downgrade(&manager.inner)));
        manager
    }

    pub fn config(&self) -> &ManagerConfig {
        &self.inner.config
    }

    /// Subscribes to session events. A receiver that lags gets `Lagged` and should
    /// re-read everything it shows.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// A free name like `lua-3` for a VM created without one.
    pub fn generate_name(&self) -> String {
        loop {
            let n = self.inner.next_name.fetch_add(1, Ordering::Relaxed);
            let name = format!("lua-{n}");
            if self.find(&name).is_none() && self.pool_vm_named(&name).is_none() {
                return name;
            }
        }
    }

    /// The reference of the pool VM tagged with bioxen name `name`, as far as the pool
    /// is known already (this never logs in): a VM kept on the pool keeps its name,
    /// and a new session must not take it, or two would answer to it.
    fn pool_vm_named(&self, name: &str) -> Option<String> {
        let pool = lock(&self.inner.pool).clone()?;
        pool.cache
            .vms()
            .into_iter()
            .find(|vm| vm.bioxen_id.as_deref() == Some(name))
            .map(|vm| vm.reference)
    }

    /// Creates a VM and starts its interpreter. `id` must be unique; `None` picks a name.
    pub async fn create_interactive_vm(
        &self,
        id: Option<&str>,
        kind: VmKind,
        options: VmOptions,
    ) -> Result<String> {
        self.create(id, kind, options, false).await
    }

    /// Creates a session; with `link_only` (remote kinds) it is connected but runs no
    /// interpreter, for programs on exec channels ([`Manager::run_program`]).
    async fn create(
        &self,
        id: Option<&str>,
        kind: VmKind,
        options: VmOptions,
        link_only: bool,
    ) -> Result<String> {
        let id = match id {
            Some(id) => {
                validate_id(id)?;
                id.to_string()
            }
            None => self.generate_name(),
        };
        let session = {
            // Attaching to a kept pool VM takes its own name; nothing else may.
            let attaching_to = options.pool_vm.as_ref().map(|(r, _)| r.as_str());
            if let Some(taken) = self.pool_vm_named(&id)
                && attaching_to != Some(taken.as_str())
            {
                return Err(Error::Manager(format!(
                    "a VM named '{id}' is kept on the pool; attach to it, or choose another name"
                )));
            }
            let mut sessions = lock(&self.inner.sessions);
            if sessions.iter().any(|s| s.is_named(&id)) {
                return Err(Error::Manager(format!("a VM named '{id}' already exists")));
            }
            let spec = VmSpec::new(kind, &options).map_err(Error::Manager)?;
            let session = Arc::new(Session::new(
                id.clone(),
                spec,
                options.size,
                &self.inner.config,
                self.inner.activity.clone(),
            ));
            sessions.push(session.clone());
            session
        };
        tokio::spawn(watch_silence(
            Arc::downgrade(&session),
            self.inner.events.clone(),
        ));
        let _ = self.inner.events.send(Event::Created(id.clone()));
        let started = match kind {
            VmKind::Local if link_only => Err(Error::Manager(
                "a local VM has no link to run programs on".into(),
            )),
            VmKind::Local => self.start_process(&session),
            VmKind::Ssh | VmKind::Xcpng if link_only => {
                remote::start_link_only(self, &session).await
            }
            VmKind::Ssh | VmKind::Xcpng => remote::start(self, &session).await,
        };
        if let Err(e) = started {
            session.set_state(&self.inner.events, VmState::Failed(e.to_string()));
            return Err(e);
        }
        Ok(id)
    }

    /// Starts (or restarts) the interpreter of a session.
    fn start_process(&self, session: &Arc<Session>) -> Result<()> {
        let config = &self.inner.config;
        let (command, extra_env) = match &session.spec {
            VmSpec::Local { command, env } => (command.as_deref(), env.as_slice()),
            _ => (None, &[][..]),
        };
        let argv = config.local_argv(command);
        let mut env = config.local_vm_env(extra_env, &session.id());
        if !config.is_embedded(&argv) {
            env.extend(marked_prompts(&argv, &env));
            install_lua_module(&config.rocks_tree);
        }
        let size = lock(&session.screen).size();
        let spec = vm::local::LocalSpec {
            argv: argv.clone(),
            env,
            env_remove: config.secret_env(),
            cwd: config.local_cwd.clone(),
            size,
        };
        session.set_state(&self.inner.events, VmState::Starting);
        let local = vm::local::spawn(&spec)?;
        let control = Arc::new(local.control);
        let (writer_tx, writer_rx) = mpsc::unbounded_channel();
        *lock(&session.process) = Some(Process {
            writer: writer_tx,
            control: control.clone(),
            started: Instant::now(),
            command: shell_words::join(&argv),
        });
        *lock(&session.stats) = None;
        session.set_state(&self.inner.events, VmState::Running);

        let events = self.inner.events.clone();
        tokio::spawn(run_writer(session.clone(), local.sink, writer_rx));
        let reader = tokio::spawn(run_reader(session.clone(), local.reader, events.clone()));
        let s = session.clone();
        tokio::spawn(async move {
            let state = vm::local::wait(local.child, &control).await;
            // Let the reader drain what the process wrote last, so the final screen and
            // read_output are complete when the state change is seen.
            let _ = tokio::time::timeout(Duration::from_millis(500), reader).await;
            s.set_state(&events, state);
        });
        Ok(())
    }

    /// Restarts the interpreter of a VM that is no longer running, keeping its screen
    /// history (a line marks where the new process starts).
    pub async fn restart(&self, id: &str) -> Result<()> {
        let session = self.get(id)?;
        if session.state().is_alive() {
            return Err(Error::session(id, "is still running; kill it first"));
        }
        if session.kind() != VmKind::Local {
            session.stop.reset();
            // As output, so the dashboards' mirrors show it as the server's screen does.
            let marker = b"\r\n\x1b[0;2m-- reconnecting --\x1b[0m\r\n";
            session.on_output(marker, &self.inner.events);
            return remote::start(self, &session).await.inspect_err(|e| {
                session.set_state(&self.inner.events, VmState::Failed(e.to_string()));
            });
        }
        let marker = b"\r\n\x1b[0;2m-- restarted --\x1b[0m\r\n";
        session.on_output(marker, &self.inner.events);
        self.start_process(&session).inspect_err(|e| {
            session.set_state(&self.inner.events, VmState::Failed(e.to_string()));
        })
    }

    /// Sends text (or any bytes) to a session's input, as if typed.
    pub fn send_input(&self, id: &str, input: impl AsRef<[u8]>) -> Result<()> {
        let session = self.get(id)?;
        let input = input.as_ref();
        session.send(input)?;
        // Enter at the prompt starts something: busy until the prompt comes back. An
        // interpreter that marks only its prompts (`lua -i` through `_PROMPT`) says
        // no more than that.
        if input.iter().any(|b| matches!(b, b'\r' | b'\n')) {
            let mut sig = lock(&session.signals);
            if sig.busy == Some(Busy::Idle) {
                sig.busy = Some(Busy::Busy);
                sig.published = Some(Instant::now());
                drop(sig);
                let _ = self.inner.events.send(Event::Stats);
            }
        }
        Ok(())
    }

    /// Everything the session printed since the last call (at most 1 MiB; older bytes
    /// are dropped and a note says how many).
    pub fn read_output(&self, id: &str) -> Result<String> {
        let session = self.get(id)?;
        let bytes = lock(&session.pending).take();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Waits until the output since the last `read_output` contains `needle`, then
    /// returns it (consuming it like `read_output`).
    pub async fn read_until(&self, id: &str, needle: &str, timeout: Duration) -> Result<String> {
        let session = self.get(id)?;
        // Each look starts where the last ended: the bytes are searched about once.
        let since = std::sync::atomic::AtomicU64::new(0);
        let found = session
            .wait_for(timeout, |s| {
                let (found, next) = lock(&s.pending)
                    .contains_since(needle.as_bytes(), since.load(Ordering::Relaxed));
                since.store(next, Ordering::Relaxed);
                found
            })
            .await;
        if !found {
            return Err(Error::Timeout {
                id: id.into(),
                what: format!("waiting for {needle:?} in the output"),
                seconds: timeout.as_secs_f64(),
            });
        }
        self.read_output(id)
    }

    /// Marks the session attached by one more client: someone types into it, so its
    /// output is read without yielding to other sessions first. Each [`attach`] is
    /// given back by one [`detach`](Manager::detach).
    ///
    /// [`attach`]: Manager::attach
    pub fn attach(&self, id: &str) -> Result<()> {
        let session = self.get(id)?;
        session.attached.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The session's screen now, and from then on everything that changes it: a
    /// viewer that replays the snapshot and then the stream sees the same screen.
    /// A receiver that falls behind gets `Lagged` and should watch again.
    pub fn watch(&self, id: &str) -> Result<(bioxen_term::Snapshot, broadcast::Receiver<Live>)> {
        let session = self.get(id)?;
        let screen = lock(&session.screen);
        Ok((screen.snapshot(), session.live.subscribe()))
    }

    /// The session's visible screen without its history, and a counter of its output
    /// to wait on for the next change.
    pub fn glance(&self, id: &str) -> Result<(bioxen_term::Snapshot, watch::Receiver<u64>)> {
        let session = self.get(id)?;
        let mut seq = session.seq.subscribe();
        seq.borrow_and_update();
        let snapshot = lock(&session.screen).snapshot_without_history();
        Ok((snapshot, seq))
    }

    /// Gives back one client's [`Manager::attach`].
    pub fn detach(&self, id: &str) -> Result<()> {
        let session = self.get(id)?;
        let _ = session
            .attached
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        Ok(())
    }

    /// Resizes a session's terminal: its parser now, its PTY through the writer queue.
    pub fn resize(&self, id: &str, size: Size) -> Result<()> {
        let session = self.get(id)?;
        session.resize(size);
        Ok(())
    }

    /// Ends a session's interpreter (SIGTERM, then SIGKILL after a grace period) and
    /// waits until it is gone. The session stays in the list with its final state.
    pub async fn kill(&self, id: &str) -> Result<VmState> {
        let session = self.get(id)?;
        Ok(session.stop().await)
    }

    /// Ends a session and forgets it (the original API's `terminate_vm_session`); the
    /// pool VM of an `xcpng` session is shut down and destroyed with its disks.
    pub async fn terminate_vm_session(&self, id: &str) -> Result<VmState> {
        let session = self.get(id)?;
        let state = session.stop().await;
        remote::destroy_pool_vm(self, &session).await?;
        self.remove(id)?;
        Ok(state)
    }

    /// Ends an `xcpng` session and destroys its pool VM, keeping the session (and its
    /// last screen) in the list.
    pub async fn kill_and_destroy(&self, id: &str) -> Result<VmState> {
        let session = self.get(id)?;
        let state = session.stop().await;
        remote::destroy_pool_vm(self, &session).await?;
        Ok(state)
    }

    /// Forgets a session whose interpreter is no longer running.
    pub fn remove(&self, id: &str) -> Result<()> {
        let mut sessions = lock(&self.inner.sessions);
        let pos = sessions
            .iter()
            .position(|s| s.is_named(id))
            .ok_or_else(|| Error::NotFound(id.into()))?;
        if sessions[pos].state().is_alive() {
            return Err(Error::session(id, "is still running; kill it first"));
        }
        sessions.remove(pos);
        drop(sessions);
        let _ = self.inner.events.send(Event::Removed(id.into()));
        Ok(())
    }

    /// Closes a pool VM's session and forgets it, keeping the VM running on the pool:
    /// it is then one of the pool's detached VMs, to attach to again later. An
    /// interpreter dtach holds there goes on, and the next attach takes it up again
    /// (the state returned is then `Running`); any other ends with the session.
    pub async fn release(&self, id: &str) -> Result<VmState> {
        let session = self.get(id)?;
        let state = match session.detach().await {
            true => VmState::Running,
            false => session.stop().await,
        };
        self.remove(id)?;
        Ok(state)
    }

    /// Waits, at most `within`, until no pool VM creation runs: one a kill stopped
    /// goes on in the background until it has removed what it made, and a process
    /// about to exit (`bioxen run`) must let it. Returns whether none is left.
    pub async fn pool_jobs_done(&self, within: Duration) -> bool {
        let mut jobs = self.inner.pool_jobs.subscribe();
        tokio::time::timeout(within, jobs.wait_for(|n| *n == 0))
            .await
            .is_ok()
    }

    /// Counts a pool VM creation as running until the guard is dropped.
    pub(crate) fn pool_job(&self) -> PoolJob {
        self.inner.pool_jobs.send_modify(|n| *n += 1);
        PoolJob(self.inner.pool_jobs.clone())
    }

    /// Ends every session; used when the dashboard quits or receives SIGTERM/SIGHUP.
    pub async fn shutdown(&self) {
        let sessions: Vec<_> = lock(&self.inner.sessions).clone();
        let stops = sessions.iter().map(|s| s.stop());
        futures_util::future::join_all(stops).await;
    }

    /// Ends every session and forgets it (pool VMs keep running, detached, as after
    /// `release`).
    pub async fn end_all(&self) {
        self.shutdown().await;
        for id in self.ids() {
            if let Err(e) = self.remove(&id) {
                tracing::warn!(vm = %id, "not removed: {e}");
            }
        }
    }

    /// Runs Lua `code` in the VM's interpreter, the one the user types into, and
    /// returns its output; see [`execute`]. On every kind, so state set by one call
    /// (or typed by the user) is there for the next.
    pub async fn execute_string(
        &self,
        id: &str,
        code: &str,
        timeout: Duration,
    ) -> Result<ExecResult> {
        self.execute_chunk(id, code, "=(execute)", timeout).await
    }

    /// Like [`Manager::execute_string`], naming the chunk (`=(command line)`, `@file.lua`).
    pub async fn execute_chunk(
        &self,
        id: &str,
        code: &str,
        chunk_name: &str,
        timeout: Duration,
    ) -> Result<ExecResult> {
        let session = self.get(id)?;
        execute::run(&session, code, chunk_name, timeout).await
    }

    /// Waits until the VM shows a Lua prompt (`> ` before the cursor).
    pub async fn wait_ready(&self, id: &str, timeout: Duration) -> Result<()> {
        let session = self.get(id)?;
        let ready = session
            .wait_for(timeout, |s| {
                let state = s.state();
                !state.is_alive() || lock(&s.screen).text_before_cursor().ends_with("> ")
            })
            .await;
        match session.state() {
            VmState::Starting | VmState::Running if ready => Ok(()),
            VmState::Starting | VmState::Running => Err(Error::Timeout {
                id: id.into(),
                what: "waiting for a Lua prompt".into(),
                seconds: timeout.as_secs_f64(),
            }),
            dead => Err(Error::session(
                id,
                format!("ended before its prompt: {}", dead.label()),
            )),
        }
    }

    /// Waits until `predicate` holds for the session's screen, re-checking on every
    /// output; returns whether it held before the timeout.
    pub async fn wait_screen(
        &self,
        id: &str,
        timeout: Duration,
        predicate: impl Fn(&Screen) -> bool,
    ) -> Result<bool> {
        let session = self.get(id)?;
        Ok(session
            .wait_for(timeout, |s| predicate(&lock(&s.screen)))
            .await)
    }

    /// Waits until the session's state is no longer starting or running.
    pub async fn wait_exit(&self, id: &str, timeout: Duration) -> Result<VmState> {
        let session = self.get(id)?;
        let mut rx = session.state.subscribe();
        let done = tokio::time::timeout(timeout, rx.wait_for(|s| !s.is_alive())).await;
        match done {
            Ok(Ok(state)) => Ok(state.clone()),
            _ => Err(Error::Timeout {
                id: id.into(),
                what: "waiting for the VM to exit".into(),
                seconds: timeout.as_secs_f64(),
            }),
        }
    }

    /// All sessions with their status, in creation order.
    pub fn list(&self) -> Vec<VmInfo> {
        lock(&self.inner.sessions)
            .iter()
            .map(|s| s.info())
            .collect()
    }

    pub fn ids(&self) -> Vec<String> {
        lock(&self.inner.sessions).iter().map(|s| s.id()).collect()
    }

    /// Gives a session a new name, as tmux's rename-window: commands, tabs and grids
    /// follow it. An `xcpng` session keeps its name, which its pool VM is tagged with.
    /// Its output log, if on, goes on in the file named after the old name.
    pub fn rename(&self, id: &str, new: &str) -> Result<()> {
        validate_id(new)?;
        if self.pool_vm_named(new).is_some() {
            return Err(Error::Manager(format!(
                "a VM named '{new}' is kept on the pool; choose another name"
            )));
        }
        {
            let sessions = lock(&self.inner.sessions);
            if sessions.iter().any(|s| s.is_named(new)) {
                return Err(Error::Manager(format!("a VM named '{new}' already exists")));
            }
            let session = sessions
                .iter()
                .find(|s| s.is_named(id))
                .ok_or_else(|| Error::NotFound(id.into()))?;
            if session.kind() == VmKind::Xcpng {
                return Err(Error::session(
                    id,
                    "runs on a pool VM tagged with its name; it keeps it",
                ));
            }
            *session.id.write().unwrap_or_else(|e| e.into_inner()) = new.to_string();
        }
        let _ = self
            .inner
            .events
            .send(Event::Renamed(id.to_string(), new.to_string()));
        Ok(())
    }

    /// Sets the seconds of silence after which a session raises an alert; 0 is off.
    pub fn set_silence(&self, id: &str, secs: u64) -> Result<()> {
        self.get(id)?.silence.send_replace(secs);
        let _ = self.inner.events.send(Event::Stats);
        Ok(())
    }

    pub fn info(&self, id: &str) -> Result<VmInfo> {
        Ok(self.get(id)?.info())
    }

    /// Runs `f` with the session's screen locked; for rendering and inspection.
    pub fn with_screen<T>(&self, id: &str, f: impl FnOnce(&mut Screen) -> T) -> Result<T> {
        let session = self.get(id)?;
        let mut screen = lock(&session.screen);
        Ok(f(&mut screen))
    }

    /// Returns and clears whether the session printed since the last call, and re-arms
    /// its [`Event::Output`].
    pub fn take_dirty(&self, id: &str) -> bool {
        self.find(id)
            .map(|s| s.dirty.swap(false, Ordering::AcqRel))
            .unwrap_or(false)
    }

    /// Starts or stops writing the session's raw output to `<log_dir>/<id>.log`;
    /// returns the log path when logging is now on.
    pub fn toggle_output_log(&self, id: &str) -> Result<Option<PathBuf>> {
        let session = self.get(id)?;
        let mut log = lock(&session.log);
        if log.take().is_some() {
            return Ok(None);
        }
        let path = log_path(&self.inner.config, id);
        *log = Some(open_log(&path)?);
        Ok(Some(path))
    }

    fn find(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.inner.sessions)
            .iter()
            .find(|s| s.is_named(id))
            .cloned()
    }

    fn get(&self, id: &str) -> Result<Arc<Session>> {
        self.find(id).ok_or_else(|| Error::NotFound(id.into()))
    }
}

impl Session {
    fn new(
        id: String,
        spec: VmSpec,
        size: Size,
        config: &ManagerConfig,
        activity: Arc<Notify>,
    ) -> Self {
        let log = if config.output_log {
            match open_log(&log_path(config, &id)) {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::warn!(vm = %id, "cannot open output log: {e}");
                    None
                }
            }
        } else {
            None
        };
        Session {
            screen: Mutex::new(
                Screen::new(size, config.scrollback).with_byte_limit(config.scrollback_bytes),
            ),
            id: std::sync::RwLock::new(id),
            spec,
            created: SystemTime::now(),
            pending: Mutex::new(OutputBuffer::new(PENDING_LIMIT)),
            live: broadcast::channel(256).0,
            seq: watch::channel(0).0,
            state: watch::channel(VmState::Starting).0,
            process: Mutex::new(None),
            stats: Mutex::new(None),
            attached: AtomicUsize::new(0),
            dirty: AtomicBool::new(false),
            queued_input: AtomicUsize::new(0),
            replies_dropped: AtomicBool::new(false),
            log: Mutex::new(log),
            remote: Mutex::new(None),
            stop: remote::StopSignal::default(),
            activity,
            signals: Mutex::new(SessionSignals::default()),
            silence: watch::channel(config.silence_secs).0,
        }
    }

    pub fn state(&self) -> VmState {
        self.state.borrow().clone()
    }

    pub fn id(&self) -> String {
        self.id.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the session is called `name`: the lookup every call by name makes,
    /// without copying the name.
    fn is_named(&self, name: &str) -> bool {
        *self.id.read().unwrap_or_else(|e| e.into_inner()) == name
    }

    fn kind(&self) -> VmKind {
        self.spec.kind()
    }

    fn set_state(&self, events: &broadcast::Sender<Event>, state: VmState) {
        let changed = self.state.send_if_modified(|s| {
            if *s != state {
                *s = state.clone();
                true
            } else {
                false
            }
        });
        if changed {
            tracing::info!(vm = %self.id(), state = %state.label(), "state");
            let _ = events.send(Event::State(self.id(), state));
            // Wake anyone waiting on output too: a dead session answers no prompt.
            self.seq.send_modify(|n| *n += 1);
        }
    }

    fn send(&self, input: &[u8]) -> Result<()> {
        if let VmState::Reconnecting(n) = self.state() {
            return Err(Error::session(
                self.id(),
                format!("is reconnecting (attempt {n}); input waits until it is back"),
            ));
        }
        if !self.state().is_alive() {
            return Err(Error::session(
                self.id(),
                format!("is not running ({})", self.state().label()),
            ));
        }
        let writer = lock(&self.process)
            .as_ref()
            .map(|p| p.writer.clone())
            .ok_or_else(|| Error::session(self.id(), "has no process"))?;
        let queued = self.queued_input.load(Ordering::Relaxed);
        if queued + input.len() > INPUT_LIMIT {
            let size = bioxen_text::figures::bytes;
            let why = if queued == 0 {
                format!(
                    "cannot take {} of input at once (the limit is {}); input dropped",
                    size(input.len() as u64),
                    size(INPUT_LIMIT as u64)
                )
            } else {
                format!(
                    "is not reading its input ({} already waiting, {} more would pass the \
                     {} limit); input dropped",
                    size(queued as u64),
                    size(input.len() as u64),
                    size(INPUT_LIMIT as u64)
                )
            };
            return Err(Error::session(self.id(), why));
        }
        for piece in input.chunks(INPUT_PIECE) {
            self.queued_input.fetch_add(piece.len(), Ordering::Relaxed);
            writer
                .send(WriterMsg::Data(piece.to_vec()))
                .map_err(|_| Error::session(self.id(), "input is closed"))?;
        }
        Ok(())
    }

    fn resize(&self, size: Size) {
        {
            let mut screen = lock(&self.screen);
            if screen.size() != size {
                screen.resize(size);
                let _ = self.live.send(Live::Resized(screen.size()));
            }
        }
        if let Some(p) = lock(&self.process).as_ref() {
            let _ = p.writer.send(WriterMsg::Resize(size));
        }
    }

    /// Terminates the process group and waits until the process is gone.
    async fn stop(&self) -> VmState {
        self.stop.raise();
        let control = lock(&self.process).as_ref().map(|p| p.control.clone());
        let Some(control) = control else {
            return self.state();
        };
        let mut rx = self.state.subscribe();
        if self.state().is_alive() {
            control.terminate();
            let graceful = tokio::time::timeout(TERM_GRACE, rx.wait_for(|s| !s.is_alive()))
                .await
                .is_ok();
            if !graceful {
                control.kill();
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|s| !s.is_alive()))
                        .await;
            }
        }
        // Whatever the interpreter left behind in its process group goes too.
        control.kill();
        self.state()
    }

    /// Closes the link to a held interpreter and leaves it running; false, with
    /// nothing done, when nothing holds it. The session ends as if its link dropped,
    /// without reconnecting.
    async fn detach(&self) -> bool {
        let control = lock(&self.process).as_ref().map(|p| p.control.clone());
        let Some(control) = control.filter(|_| self.state().is_alive()) else {
            return false;
        };
        self.stop.raise();
        if !control.detach() {
            return false;
        }
        let mut rx = self.state.subscribe();
        let _ = tokio::time::timeout(TERM_GRACE, rx.wait_for(|s| !s.is_alive())).await;
        true
    }

    /// Waits until `ready(self)` holds, re-checking whenever output or state changes.
    async fn wait_for(&self, timeout: Duration, ready: impl Fn(&Session) -> bool) -> bool {
        let mut rx = self.seq.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            if ready(self) {
                return true;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => return ready(self),
            }
        }
    }

    fn info(&self) -> VmInfo {
        let (remote, pool_vm) = match lock(&self.remote).as_ref() {
            Some(r) => (Some(r.target.label()), r.pool_vm.clone()),
            None => (None, None),
        };
        let process = lock(&self.process);
        let state = self.state();
        let stats = *lock(&self.stats);
        let alive = state.is_alive();
        let signals = lock(&self.signals);
        let progress_age = signals
            .progress_at
            .map(|at| at.elapsed())
            .unwrap_or_default();
        VmInfo {
            id: self.id(),
            kind: self.kind(),
            command: process
                .as_ref()
                .map(|p| p.command.clone())
                .unwrap_or_default(),
            // A dead VM's pid may be someone else's by now.
            pid: process
                .as_ref()
                .filter(|_| alive)
                .and_then(|p| p.control.pid()),
            cpu_percent: stats.filter(|_| alive).map(|s| s.cpu_percent),
            rss_bytes: stats.filter(|_| alive).map(|s| s.rss_bytes),
            uptime_secs: process
                .as_ref()
                .filter(|_| alive)
                .map(|p| p.started.elapsed().as_secs())
                .unwrap_or(0),
            attached: self.attached.load(Ordering::Relaxed) > 0,
            created_unix: self
                .created
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            remote,
            pool_vm,
            busy: signals.busy.filter(|_| alive),
            progress: signals
                .progress
                .filter(|_| alive && progress_age < PROGRESS_STALE),
            progress_seq: signals.progress_seq,
            progress_age_ms: progress_age.as_millis() as u64,
            status: signals.status.clone(),
            silence_secs: *self.silence.borrow(),
            state,
        }
    }
}

/// Reads a session's output until the process closes it.
async fn run_reader(
    session: Arc<Session>,
    mut reader: impl tokio::io::AsyncRead + Unpin,
    events: broadcast::Sender<Event>,
) {
    // Small reads and a yield after each one for sessions nobody looks at: one VM's
    // flood must not delay the echo of keys typed into another.
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if session.attached.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        let n = match reader.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            // Linux reports EIO on the PTY master once the last slave fd is closed.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = events.send(Event::Error(Some(session.id()), format!("output: {e}")));
                break;
            }
        };
        session.on_output(&buf[..n], &events);
    }
}

impl Session {
    /// Takes in output: parses it into the screen, keeps it for `read_output` and the
    /// log, hands it to live readers, and wakes whoever waits for it.
    ///
    /// The log and `read_output` take the chunk before live readers see it: whoever
    /// acts on a live chunk (as `execute_string` does on its end marker) then finds it
    /// already logged.
    fn on_output(&self, chunk: &[u8], events: &broadcast::Sender<Event>) {
        lock(&self.pending).push(chunk);
        let log_failed = {
            let mut log = lock(&self.log);
            match log.as_ref().map(|l| l.append(chunk)) {
                Some(Err(why)) => {
                    *log = None;
                    Some(why)
                }
                _ => None,
            }
        };
        if let Some(why) = log_failed {
            let _ = events.send(Event::Error(
                Some(self.id()),
                format!("the output log stopped: {why}; the VM goes on (L starts a new log)"),
            ));
        }
        let (replies, said) = {
            let mut screen = lock(&self.screen);
            let replies = screen.feed(chunk);
            if self.live.receiver_count() > 0 {
                let _ = self.live.send(Live::Output(Arc::from(chunk)));
            }
            (replies, screen.take_said())
        };
        if !said.is_empty() {
            self.take_signals(said, events);
        }
        if !replies.is_empty() {
            self.send_reply(replies, events);
        }
        self.seq.send_modify(|n| *n += 1);
        self.activity.notify_one();
        if !self.dirty.swap(true, Ordering::AcqRel) {
            let _ = events.send(Event::Output(self.id()));
        }
    }

    /// Follows what the program said: a prompt (busy or idle) is published at once,
    /// progress and status at most every [`SIGNALS_EVERY`]; bells and notifications
    /// become alerts.
    fn take_signals(&self, said: Said, events: &broadcast::Sender<Event>) {
        let mut alerts: Vec<Alert> = Vec::new();
        if said.bell {
            alerts.push(Alert::Bell);
        }
        alerts.extend(said.notes.into_iter().map(Alert::Note));
        let publish = {
            let mut sig = lock(&self.signals);
            let mut now = false;
            let mut later = false;
            match said.failed {
                Some(failed) => sig.failed = failed,
                None if said.busy == Some(Busy::Busy) => sig.failed = false,
                None => {}
            }
            if let Some(busy) = said.busy
                && sig.busy != Some(busy)
            {
                if busy == Busy::Idle && sig.busy == Some(Busy::Busy) {
                    alerts.push(match std::mem::take(&mut sig.failed) {
                        true => Alert::Failed,
                        false => Alert::Idle,
                    });
                }
                sig.busy = Some(busy);
                now = true;
            }
            if let Some(progress) = said.progress {
                sig.progress = progress;
                sig.progress_seq += 1;
                sig.progress_at = Some(Instant::now());
                later = true;
            }
            if let Some(status) = said.status {
                let status = (!status.is_empty()).then_some(status);
                later |= sig.status != status;
                sig.status = status;
            }
            if later && !now {
                match sig.published {
                    Some(t) if t.elapsed() < SIGNALS_EVERY => sig.pending = true,
                    _ => now = true,
                }
            }
            if now {
                sig.published = Some(Instant::now());
                sig.pending = false;
            }
            now
        };
        for alert in alerts {
            let _ = events.send(Event::Alert(self.id(), alert));
        }
        if publish {
            let _ = events.send(Event::Stats);
        }
    }

    /// Publishes a throttled change of progress or status, if one waits.
    fn flush_signals(&self) -> bool {
        let mut sig = lock(&self.signals);
        let due = sig.pending && sig.published.is_none_or(|t| t.elapsed() >= SIGNALS_EVERY);
        if due {
            sig.pending = false;
            sig.published = Some(Instant::now());
        }
        due
    }

    /// A line from bioxen itself in the session's pane (dimmed), for progress and for
    /// what happened to the connection.
    /// A line from bioxen in the session's pane, on a line of its own: one line
    /// down only when the cursor is not already at a line's start, so notices in a
    /// row are single-spaced.
    fn notice(&self, text: &str, events: &broadcast::Sender<Event>) {
        let fresh_line = lock(&self.screen).vt().cursor_position().1 == 0;
        let line = format!(
            "{}\x1b[0;2m[bioxen] {text}\x1b[0m\r\n",
            if fresh_line { "" } else { "\r\n" }
        );
        self.on_output(line.as_bytes(), events);
    }

    /// A line from bioxen that the next one replaces (a count going up), until a
    /// notice follows it. Cut to the pane's width: a wrapped line could not be
    /// replaced.
    fn progress(&self, text: &str, events: &broadcast::Sender<Event>) {
        let cols = lock(&self.screen).size().cols as usize;
        let text =
            bioxen_text::columns::truncate(&format!("[bioxen] {text}"), cols.saturating_sub(1));
        let line = format!("\r\x1b[0;2m{text}\x1b[0m\x1b[K");
        self.on_output(line.as_bytes(), events);
    }

    /// Queues an answer to a terminal query. Answers count against the input bound
    /// like typed input: a program that asks (`ESC [ c`) without ever reading would
    /// otherwise pile its answers up in the server without end. Past the bound they are
    /// dropped, and the user is told once until the program reads again.
    fn send_reply(&self, reply: Vec<u8>, events: &broadcast::Sender<Event>) {
        let process = lock(&self.process);
        let Some(writer) = process.as_ref().map(|p| &p.writer) else {
            return;
        };
        let queued = self.queued_input.load(Ordering::Relaxed);
        if queued + reply.len() > REPLY_LIMIT {
            if !self.replies_dropped.swap(true, Ordering::Relaxed) {
                let _ = events.send(Event::Error(
                    Some(self.id()),
                    format!(
                        "does not read its input ({} waiting): answers to its terminal \
                         queries are dropped until it does",
                        bioxen_text::figures::bytes(queued as u64)
                    ),
                ));
            }
            return;
        }
        if queued == 0 {
            self.replies_dropped.store(false, Ordering::Relaxed);
        }
        self.queued_input.fetch_add(reply.len(), Ordering::Relaxed);
        let _ = writer.send(WriterMsg::Data(reply));
    }
}

/// Writes queued input and resizes to the session, in order.
async fn run_writer(
    session: Arc<Session>,
    mut sink: impl Sink,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
) {
    while let Some(msg) = rx.recv().await {
        match msg {
            WriterMsg::Data(data) => {
                let len = data.len();
                let result = sink.write_all(&data).await;
                session.queued_input.fetch_sub(len, Ordering::Relaxed);
                if result.is_err() {
                    break;
                }
            }
            WriterMsg::Resize(size) => {
                let _ = sink.resize(size).await;
            }
        }
    }
    // Anything still queued will never be written.
    session.queued_input.store(0, Ordering::Relaxed);
}

/// How often the sampler looks while VMs work, and at most how long it waits while
/// nothing changes.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
const SAMPLE_IDLE_MAX: Duration = Duration::from_secs(30);

/// Samples CPU and memory of live local VMs: once a second while any VM uses CPU or
/// its figures change, backing off to every 30 s while all are idle (idle VMs then
/// wake the server about never). Output from any VM brings it back to once a second
/// at once; a new process is sampled on the next look. Stops with the manager.
/// For a Lua interpreter other than bioxen's (`lua5.4`, `lua`): a `LUA_INIT_5_4` that
/// makes its prompts carry the OSC 133 prompt mark, so the list can say busy or idle.
/// A `LUA_INIT_5_4` or `LUA_INIT` of the user's still runs, after.
fn marked_prompts(argv: &[String], env: &[(String, String)]) -> Vec<(String, String)> {
    let program = argv.first().map(String::as_str).unwrap_or_default();
    if !is_reference_lua(program) {
        return Vec::new();
    }
    let theirs = ["LUA_INIT_5_4", "LUA_INIT"].iter().find_map(|var| {
        env.iter()
            .rev()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(var).ok())
    });
    let mut vars = Vec::new();
    if let Some(theirs) = theirs {
        vars.push(("BIOXEN_LUA_INIT".to_string(), theirs));
    }
    vars.push(("LUA_INIT_5_4".to_string(), lua_init(false)));
    vars
}

/// Whether `program` is a reference `lua` (not bioxen's, not luarocks or luajit).
fn is_reference_lua(program: &str) -> bool {
    let name = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.starts_with("lua") && !name.starts_with("luarocks") && !name.starts_with("luajit")
}

/// The Lua a reference interpreter runs first (as `LUA_INIT_5_4`): prompts with the
/// OSC 133 mark, which `lua.c` prints through readline (`\1`..`\2` keep it out of the
/// prompt's width); with `module`, `require "bioxen"` served from the module itself,
/// for hosts it is not installed on; then the user's own init: the `LUA_INIT_5_4` or
/// `LUA_INIT` kept in `BIOXEN_LUA_INIT`, else a `LUA_INIT` set on the command line.
fn lua_init(module: bool) -> String {
    let mark = r"'\1\27]133;A\7\2'";
    let mut init = format!("_PROMPT = {mark} .. '> ' _PROMPT2 = {mark} .. '>> '");
    if module {
        init.push_str(&format!(
            " package.preload.bioxen = package.preload.bioxen or load({}, '=bioxen')",
            bioxen_text::lua_literal::quote(bioxen_repl::BIOXEN_MODULE)
        ));
    }
    init.push_str(
        " local i = os.getenv('BIOXEN_LUA_INIT') \
         if not i or i == '' then i = os.getenv('LUA_INIT') end \
         if i and i ~= '' then \
         if i:sub(1, 1) == '@' then dofile(i:sub(2)) else assert(load(i, '=LUA_INIT'))() end end",
    );
    init
}

/// Puts the `bioxen` Lua module in the rocks tree that local VMs' `LUA_PATH` holds,
/// so `require "bioxen"` works in `lua5.4` as in the embedded REPL.
fn install_lua_module(tree: &Path) {
    let path = tree.join("share/lua/5.4/bioxen.lua");
    let module = bioxen_repl::BIOXEN_MODULE;
    if std::fs::read_to_string(&path).is_ok_and(|m| m == module) {
        return;
    }
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, module));
    if let Err(e) = written {
        tracing::warn!(
            "cannot put the bioxen Lua module at {}: {e}",
            path.display()
        );
    }
}

/// Raises a silence alert when the session, running and not at its prompt, prints
/// nothing for its silence time; once, until it prints again (tmux's
/// `monitor-silence`). Sleeps while the alert is off.
async fn watch_silence(session: std::sync::Weak<Session>, events: broadcast::Sender<Event>) {
    let Some((mut output, mut setting)) = session
        .upgrade()
        .map(|s| (s.seq.subscribe(), s.silence.subscribe()))
    else {
        return;
    };
    loop {
        let secs = *setting.borrow_and_update();
        if secs == 0 {
            if setting.changed().await.is_err() {
                return;
            }
            continue;
        }
        output.borrow_and_update();
        tokio::select! {
            changed = output.changed() => if changed.is_err() { return },
            changed = setting.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(Duration::from_secs(secs)) => {
                let Some(s) = session.upgrade() else { return };
                let idle = lock(&s.signals).busy == Some(Busy::Idle);
                if s.state().is_alive() && !idle {
                    let _ = events.send(Event::Alert(s.id(), Alert::Silence(secs)));
                }
                drop(s);
                // Once per silence: wait for output (or a new setting) first.
                tokio::select! {
                    changed = output.changed() => if changed.is_err() { return },
                    changed = setting.changed() => if changed.is_err() { return },
                }
            }
        }
    }
}

async fn sample_stats(inner: std::sync::Weak<Inner>) {
    let mut meters: HashMap<String, (u32, CpuMeter)> = HashMap::new();
    let Some(activity) = inner.upgrade().map(|i| i.activity.clone()) else {
        return;
    };
    let mut every = SAMPLE_EVERY;
    loop {
        let next = tokio::time::Instant::now() + every;
        let backed_off = every > SAMPLE_EVERY;
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            // Only while backed off: during a flood this would wake once per chunk.
            () = activity.notified(), if backed_off => {
                tokio::time::sleep_until(next.min(tokio::time::Instant::now() + SAMPLE_EVERY)).await;
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        let sessions: Vec<_> = lock(&inner.sessions).clone();
        let mut changed = false;
        let mut busy = false;
        let mut seen = Vec::with_capacity(sessions.len());
        for s in &sessions {
            let pid = lock(&s.process).as_ref().and_then(|p| p.control.pid());
            let Some(pid) = pid.filter(|_| s.state().is_alive()) else {
                continue;
            };
            seen.push(s.id());
            let entry = meters.entry(s.id()).or_default();
            if entry.0 != pid {
                *entry = (pid, CpuMeter::default());
                // A first sample has no CPU figure yet: look again soon.
                busy = true;
            }
            let sample = entry.1.sample(pid);
            busy |= sample.is_some_and(|s| s.cpu_percent > 0.0);
            let mut stats = lock(&s.stats);
            if display_differs(*stats, sample) {
                changed = true;
            }
            *stats = sample;
        }
        meters.retain(|id, _| seen.contains(id));
        for s in &sessions {
            changed |= s.flush_signals();
        }
        if changed {
            let _ = inner.events.send(Event::Stats);
        }
        every = if changed || busy {
            SAMPLE_EVERY
        } else {
            (every * 2).min(SAMPLE_IDLE_MAX)
        };
    }
}

/// Whether two samples would look different in the list (0.1% CPU, 0.1 MiB).
fn display_differs(a: Option<ProcStats>, b: Option<ProcStats>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            (a.cpu_percent * 10.0).round() != (b.cpu_percent * 10.0).round()
                || a.rss_bytes / (100 * 1024) != b.rss_bytes / (100 * 1024)
                || a.state != b.state
        }
        (None, None) => false,
        _ => true,
    }
}

/// Session ids name log files and appear in commands: keep them plain.
fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::Manager(format!(
            "invalid VM name '{id}': use 1-64 letters, digits, '-', '_' or '.'"
        )))
    }
}

fn log_path(config: &ManagerConfig, id: &str) -> PathBuf {
    config.log_dir.join(format!("{id}.log"))
}

fn open_log(path: &std::path::Path) -> Result<OutputLog> {
    Ok(OutputLog::open(path)?)
}
