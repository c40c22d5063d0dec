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

mod config;
mod execute;
mod experiment;
mod install;
mod interpreter;
mod io;
mod output;
mod pool_metrics;
mod program;
mod remote;
mod restore;
mod search;
mod session;
mod signals;
mod stats;
mod waits;

pub use config::ManagerConfig;
use interpreter::*;
use io::*;
pub use session::Session;
use session::*;
use signals::*;
use stats::*;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

pub use bioxen_proto::{VmId, VmRef};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::AsyncReadExt;
use tokio::sync::{Notify, broadcast, mpsc, watch};

use crate::persist::log_files::{LogFiles, LogMeta};
use crate::persist::log_writer::OutputLog;
use crate::persist::unix_secs;
pub use bioxen_proto::ExecResult;
use output::OutputBuffer;

use bioxen_backend::error::{Error, Result};
use bioxen_backend::lock;
use bioxen_backend::vm::proc_stats::{CpuMeter, Groups, ProcStats};
use bioxen_backend::vm::{self, Control, Sink, Size, VmKind, VmOptions, VmSpec, VmState};
use bioxen_config::Config;
pub use bioxen_proto::{Alert, Busy, PROGRESS_STALE, Progress, ProgressState, VmInfo};
use bioxen_proto::{HistoryOf, PoolVm, Series, Window};
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
    Created(VmId),
    /// New output arrived. Sent once until the receiver calls [`Manager::take_dirty`],
    /// so a flooding session costs one event per frame, not one per read.
    Output(VmId),
    State(VmId, VmState),
    /// CPU, memory or process state of some session changed.
    Stats,
    Removed(VmId),
    /// Something went wrong that the user should see (in the status bar).
    Error(Option<VmId>, String),
    /// A session asks for attention: see [`Alert`].
    Alert(VmId, Alert),
    /// A session was renamed; this is its new name.
    Renamed(VmId, String),
}

/// What a watcher of one session receives, in the order it happened: output bytes,
/// and size changes (which a mirror of the screen must follow to stay the same).
#[derive(Debug, Clone)]
pub enum Live {
    Output(Arc<[u8]>),
    Resized(Size),
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
    /// The number the next session gets: counts up, never reused.
    next_vm: AtomicU64,
    next_name: AtomicU64,
    /// The pools by name: each one client, one login and one event cache, made on
    /// first use and shared by everything that talks to it (sessions, the dashboard,
    /// `ls`).
    pools: Mutex<BTreeMap<String, Arc<Pool>>>,
    /// Held by whoever connects each pool, so a pool logs in once. Apart from `pools`:
    /// a login may wait on a `password_command`, and listing must not.
    connecting: Mutex<BTreeMap<String, Arc<Mutex<()>>>>,
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

/// A configured XCP-ng pool as bioxen follows it.
pub struct Pool {
    /// Its name in `bioxen.toml`.
    pub name: String,
    pub client: Arc<bioxen_backend::xapi::XapiClient>,
    pub cache: bioxen_backend::xapi::EventCache,
    pub metrics: pool_metrics::PoolMetrics,
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
                next_vm: AtomicU64::new(1),
                next_name: AtomicU64::new(1),
                pools: Mutex::new(BTreeMap::new()),
                connecting: Mutex::new(BTreeMap::new()),
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
        self.connected_pools().into_iter().find_map(|pool| {
            pool.cache
                .vms()
                .into_iter()
                .find(|vm| vm.bioxen_id.as_deref() == Some(name))
                .map(|vm| vm.reference)
        })
    }

    /// Creates a VM and starts its interpreter. `name` must be free; `None` picks one.
    /// The session's number comes back: see [`VmId`].
    pub async fn create_interactive_vm(
        &self,
        name: Option<&str>,
        kind: VmKind,
        options: VmOptions,
    ) -> Result<VmId> {
        self.create(name, kind, options, false).await
    }

    /// Creates a session; with `link_only` (remote kinds) it is connected but runs no
    /// interpreter, for programs on exec channels ([`Manager::run_program`]).
    async fn create(
        &self,
        id: Option<&str>,
        kind: VmKind,
        options: VmOptions,
        link_only: bool,
    ) -> Result<VmId> {
        let session = self.register(id, kind, &options)?;
        self.start_session(&session, link_only).await?;
        Ok(session.vm)
    }

    /// Adds a session to the list, not started yet: its name checked and taken, its
    /// number given.
    fn register(
        &self,
        id: Option<&str>,
        kind: VmKind,
        options: &VmOptions,
    ) -> Result<Arc<Session>> {
        let id = match id {
            Some(id) => {
                validate_id(id)?;
                id.to_string()
            }
            None => self.generate_name(),
        };
        // Attaching to a kept pool VM takes its own name; nothing else may.
        let attaching_to = options.pool_vm.as_ref().map(|(r, _)| r.as_str());
        if let Some(taken) = self.pool_vm_named(&id)
            && attaching_to != Some(taken.as_str())
        {
            return Err(Error::Manager(format!(
                "a VM named '{id}' is kept on the pool; attach to it, or choose another name"
            )));
        }
        let spec = VmSpec::new(kind, options).map_err(|e| Error::Manager(e.to_string()))?;
        self.add_session(None, &id, spec, options.size)
    }

    /// Adds a session with this name (which must be free) to the list: numbered `vm`
    /// (one a restored server gave it) or the next number.
    fn add_session(
        &self,
        vm: Option<VmId>,
        id: &str,
        spec: VmSpec,
        size: Size,
    ) -> Result<Arc<Session>> {
        let session = {
            let mut sessions = lock(&self.inner.sessions);
            if sessions.iter().any(|s| s.is_named(id)) {
                return Err(Error::Manager(format!("a VM named '{id}' already exists")));
            }
            let vm = match vm {
                Some(vm) => {
                    self.inner.next_vm.fetch_max(vm.0 + 1, Ordering::Relaxed);
                    vm
                }
                None => VmId(self.inner.next_vm.fetch_add(1, Ordering::Relaxed)),
            };
            let session = Arc::new(Session::new(
                vm,
                id.to_string(),
                spec,
                size,
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
        let _ = self.inner.events.send(Event::Created(session.vm));
        Ok(session)
    }

    /// Starts a registered session's interpreter, or its link alone; a session that
    /// cannot start shows why.
    async fn start_session(&self, session: &Arc<Session>, link_only: bool) -> Result<()> {
        let started = match session.kind() {
            VmKind::Local if link_only => Err(Error::Manager(
                "a local VM has no link to run programs on".into(),
            )),
            VmKind::Local => self.start_process(session),
            VmKind::Ssh | VmKind::Xcpng if link_only => {
                remote::start_link_only(self, session).await
            }
            VmKind::Ssh | VmKind::Xcpng => remote::start(self, session).await,
        };
        started.inspect_err(|e| {
            session.set_state(&self.inner.events, VmState::Failed(e.to_string()));
        })
    }

    /// Starts (or restarts) the interpreter of a session.
    fn start_process(&self, session: &Arc<Session>) -> Result<()> {
        let config = &self.inner.config;
        let (command, extra_env, cwd) = match &session.spec {
            VmSpec::Local { command, env, cwd } => {
                (command.as_deref(), env.as_slice(), cwd.as_ref())
            }
            _ => (None, &[][..], None),
        };
        let argv = config.local_argv(command);
        let mut env = config.local_vm_env(extra_env, &session.name());
        if !config.is_embedded(&argv) {
            env.extend(marked_prompts(&argv, &env));
            install_lua_module(&config.rocks_tree);
        }
        let size = lock(&session.screen).size();
        let spec = vm::local::LocalSpec {
            argv: argv.clone(),
            env,
            env_remove: config.secret_env(),
            cwd: cwd.or(config.local_cwd.as_ref()).cloned(),
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
            // read_output are complete when the state change is seen. Reading ends
            // within moments unless another process holds the PTY open; what was read
            // is then parsed, however long that takes.
            if let Ok(Ok(parser)) = tokio::time::timeout(Duration::from_millis(500), reader).await {
                let _ = parser.await;
            }
            s.set_state(&events, state);
        });
        Ok(())
    }

    /// Restarts the interpreter of a VM that is no longer running, keeping its screen
    /// history (a line marks where the new process starts).
    pub async fn restart(&self, vm: impl Into<VmRef>) -> Result<()> {
        let session = self.get(vm)?;
        if session.state().is_alive() {
            return Err(Error::session(
                session.name(),
                "is still running; kill it first",
            ));
        }
        if matches!(session.state(), VmState::Lost(_)) && lock(&session.membership).is_some() {
            self.rerun_member(&session);
            return Ok(());
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
    pub fn send_input(&self, vm: impl Into<VmRef>, input: impl AsRef<[u8]>) -> Result<()> {
        let session = self.get(vm)?;
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
    pub fn read_output(&self, vm: impl Into<VmRef>) -> Result<String> {
        let session = self.get(vm)?;
        let bytes = lock(&session.pending).take();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Waits until the output since the last `read_output` contains `needle`, then
    /// returns it (consuming it like `read_output`).
    pub async fn read_until(
        &self,
        vm: impl Into<VmRef>,
        needle: &str,
        timeout: Duration,
    ) -> Result<String> {
        let session = self.get(vm)?;
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
                id: session.name(),
                what: format!("waiting for {needle:?} in the output"),
                seconds: timeout.as_secs_f64(),
            });
        }
        self.read_output(session.vm)
    }

    /// Marks the session attached by one more client: someone types into it, so its
    /// output is read without yielding to other sessions first. Each [`attach`] is
    /// given back by one [`detach`](Manager::detach).
    ///
    /// [`attach`]: Manager::attach
    pub fn attach(&self, vm: impl Into<VmRef>) -> Result<()> {
        let session = self.get(vm)?;
        session.attached.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The session's screen now, and from then on everything that changes it: a
    /// viewer that replays the snapshot and then the stream sees the same screen.
    /// A receiver that falls behind gets `Lagged` and should watch again.
    pub fn watch(
        &self,
        vm: impl Into<VmRef>,
    ) -> Result<(bioxen_term::Snapshot, broadcast::Receiver<Live>)> {
        let session = self.get(vm)?;
        let screen = lock(&session.screen);
        Ok((screen.snapshot(), session.live.subscribe()))
    }

    /// The session's visible screen, with its history if `history`, and a counter of
    /// its output to wait on for the next change.
    pub fn glance(
        &self,
        vm: impl Into<VmRef>,
        history: bool,
    ) -> Result<(bioxen_term::Snapshot, watch::Receiver<u64>)> {
        let session = self.get(vm)?;
        let mut seq = session.seq.subscribe();
        seq.borrow_and_update();
        let screen = lock(&session.screen);
        let snapshot = match history {
            true => screen.snapshot(),
            false => screen.snapshot_without_history(),
        };
        Ok((snapshot, seq))
    }

    /// Gives back one client's [`Manager::attach`].
    pub fn detach(&self, vm: impl Into<VmRef>) -> Result<()> {
        let session = self.get(vm)?;
        let _ = session
            .attached
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        Ok(())
    }

    /// Resizes a session's terminal: its parser now, its PTY through the writer queue.
    pub fn resize(&self, vm: impl Into<VmRef>, size: Size) -> Result<()> {
        let session = self.get(vm)?;
        session.resize(size);
        Ok(())
    }

    /// Ends a session's interpreter (SIGTERM, then SIGKILL after a grace period) and
    /// waits until it is gone. The session stays in the list with its final state.
    pub async fn kill(&self, vm: impl Into<VmRef>) -> Result<VmState> {
        let session = self.get(vm)?;
        Ok(session.stop().await)
    }

    /// Ends a session and forgets it (the original API's `terminate_vm_session`); the
    /// pool VM of an `xcpng` session is shut down and destroyed with its disks.
    pub async fn terminate_vm_session(&self, vm: impl Into<VmRef>) -> Result<VmState> {
        let session = self.get(vm)?;
        let state = session.stop().await;
        remote::destroy_pool_vm(self, &session).await?;
        self.remove(session.vm)?;
        Ok(state)
    }

    /// Ends an `xcpng` session and destroys its pool VM, keeping the session (and its
    /// last screen) in the list.
    pub async fn kill_and_destroy(&self, vm: impl Into<VmRef>) -> Result<VmState> {
        let session = self.get(vm)?;
        let state = session.stop().await;
        remote::destroy_pool_vm(self, &session).await?;
        Ok(state)
    }

    /// Forgets a session whose interpreter is no longer running.
    pub fn remove(&self, vm: impl Into<VmRef>) -> Result<()> {
        let mut sessions = lock(&self.inner.sessions);
        let vm = vm.into();
        let pos = sessions
            .iter()
            .position(|s| s.is(&vm))
            .ok_or_else(|| Error::NotFound(vm.to_string()))?;
        if sessions[pos].state().is_alive() {
            return Err(Error::session(
                sessions[pos].name(),
                "is still running; kill it first",
            ));
        }
        let gone = sessions.remove(pos);
        drop(sessions);
        // An experiment VM still waiting to start never will.
        gone.stop.raise();
        let _ = self.inner.events.send(Event::Removed(gone.vm));
        Ok(())
    }

    /// Closes a pool VM's session and forgets it, keeping the VM running on the pool:
    /// it is then one of the pool's detached VMs, to attach to again later. An
    /// interpreter dtach holds there goes on, and the next attach takes it up again
    /// (the state returned is then `Running`); any other ends with the session.
    pub async fn release(&self, vm: impl Into<VmRef>) -> Result<VmState> {
        let session = self.get(vm)?;
        let state = match session.detach().await {
            true => VmState::Running,
            false => session.stop().await,
        };
        self.remove(session.vm)?;
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

    /// Ends every session but the remote interpreters a holder keeps, whose links are
    /// closed instead: what a server stopped by a signal does, so that the next one
    /// attaches to them again (pool VMs keep running either way).
    pub async fn suspend(&self) {
        let sessions: Vec<_> = lock(&self.inner.sessions).clone();
        let ends = sessions.iter().map(|s| async move {
            if !s.detach().await {
                s.stop().await;
            }
        });
        futures_util::future::join_all(ends).await;
    }

    /// Ends every session and forgets it (pool VMs keep running, detached, as after
    /// `release`).
    pub async fn end_all(&self) {
        self.shutdown().await;
        for vm in self.ids() {
            if let Err(e) = self.remove(vm) {
                tracing::warn!(%vm, "not removed: {e}");
            }
        }
    }

    /// Runs Lua `code` in the VM's interpreter, the one the user types into, and
    /// returns its output; see [`execute`]. On every kind, so state set by one call
    /// (or typed by the user) is there for the next.
    pub async fn execute_string(
        &self,
        vm: impl Into<VmRef>,
        code: &str,
        timeout: Duration,
    ) -> Result<ExecResult> {
        self.execute_chunk(vm, code, "=(execute)", timeout).await
    }

    /// Like [`Manager::execute_string`], naming the chunk (`=(command line)`, `@file.lua`).
    pub async fn execute_chunk(
        &self,
        vm: impl Into<VmRef>,
        code: &str,
        chunk_name: &str,
        timeout: Duration,
    ) -> Result<ExecResult> {
        let session = self.get(vm)?;
        execute::run(&session, code, chunk_name, timeout).await
    }

    /// Waits until the VM shows a Lua prompt (`> ` before the cursor); an experiment VM
    /// waiting for its dependencies is waited for too, and so is one lost with the
    /// server before, which its policy or the user may start again.
    pub async fn wait_ready(&self, vm: impl Into<VmRef>, timeout: Duration) -> Result<()> {
        let session = self.get(vm)?;
        let ready = session
            .wait_for(timeout, |s| match s.state() {
                VmState::Waiting(_) | VmState::Lost(_) => false,
                state if !state.is_alive() => true,
                _ => lock(&s.screen).text_before_cursor().ends_with("> "),
            })
            .await;
        match session.state() {
            VmState::Starting | VmState::Running if ready => Ok(()),
            VmState::Starting | VmState::Running | VmState::Waiting(_) | VmState::Lost(_) => {
                Err(Error::Timeout {
                    id: session.name(),
                    what: match session.state() {
                        VmState::Waiting(what) => format!("waiting for {what}, then a Lua prompt"),
                        VmState::Lost(why) => {
                            format!("lost ({why}); waiting for it to start again")
                        }
                        _ => "waiting for a Lua prompt".into(),
                    },
                    seconds: timeout.as_secs_f64(),
                })
            }
            dead => Err(Error::session(
                session.name(),
                format!("ended before its prompt: {}", dead.label()),
            )),
        }
    }

    /// Waits until `predicate` holds for the session's screen, re-checking on every
    /// output; returns whether it held before the timeout.
    pub async fn wait_screen(
        &self,
        vm: impl Into<VmRef>,
        timeout: Duration,
        predicate: impl Fn(&Screen) -> bool,
    ) -> Result<bool> {
        let session = self.get(vm)?;
        Ok(session
            .wait_for(timeout, |s| predicate(&lock(&s.screen)))
            .await)
    }

    /// Waits until the session's state is no longer starting or running.
    pub async fn wait_exit(&self, vm: impl Into<VmRef>, timeout: Duration) -> Result<VmState> {
        let session = self.get(vm)?;
        let mut rx = session.state.subscribe();
        let done = tokio::time::timeout(timeout, rx.wait_for(|s| !s.is_alive())).await;
        match done {
            Ok(Ok(state)) => Ok(state.clone()),
            _ => Err(Error::Timeout {
                id: session.name(),
                what: "waiting for the VM to exit".into(),
                seconds: timeout.as_secs_f64(),
            }),
        }
    }

    /// All sessions with their status, in creation order.
    pub fn list(&self) -> Vec<VmInfo> {
        let mut infos: Vec<VmInfo> = lock(&self.inner.sessions)
            .iter()
            .map(|s| s.info())
            .collect();
        self.with_pool_figures_on_sessions(&mut infos);
        infos
    }

    /// Every session's number, in creation order.
    pub fn ids(&self) -> Vec<VmId> {
        lock(&self.inner.sessions).iter().map(|s| s.vm).collect()
    }

    /// Gives a session a new name, as tmux's rename-window: commands, tabs and grids
    /// follow it. An `xcpng` session keeps its name, which its pool VM is tagged with.
    /// Its output log goes on in the same file, which is named by number.
    pub fn rename(&self, vm: impl Into<VmRef>, new: &str) -> Result<()> {
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
            let vm = vm.into();
            let session = sessions
                .iter()
                .find(|s| s.is(&vm))
                .ok_or_else(|| Error::NotFound(vm.to_string()))?;
            if session.kind() == VmKind::Xcpng {
                return Err(Error::session(
                    session.name(),
                    "runs on a pool VM tagged with its name; it keeps it",
                ));
            }
            *session.name.write().unwrap_or_else(|e| e.into_inner()) = new.to_string();
            if lock(&session.log).is_some() {
                let size = lock(&session.screen).size();
                let config = &self.inner.config;
                let (vm, kind, created) = (session.vm, session.kind(), session.created);
                write_log_meta(config, vm, new, kind, size, created);
            }
            let _ = self
                .inner
                .events
                .send(Event::Renamed(session.vm, new.to_string()));
        }
        Ok(())
    }

    /// Sets the seconds of silence after which a session raises an alert; 0 is off.
    pub fn set_silence(&self, vm: impl Into<VmRef>, secs: u64) -> Result<()> {
        self.get(vm)?.silence.send_replace(secs);
        let _ = self.inner.events.send(Event::Stats);
        Ok(())
    }

    /// The number of the session `vm` names; an error when none does.
    pub fn resolve(&self, vm: impl Into<VmRef>) -> Result<VmId> {
        Ok(self.get(vm)?.vm)
    }

    pub fn info(&self, vm: impl Into<VmRef>) -> Result<VmInfo> {
        Ok(self.get(vm)?.info())
    }

    /// Runs `f` with the session's screen locked; for rendering and inspection.
    pub fn with_screen<T>(
        &self,
        vm: impl Into<VmRef>,
        f: impl FnOnce(&mut Screen) -> T,
    ) -> Result<T> {
        let session = self.get(vm)?;
        let mut screen = lock(&session.screen);
        Ok(f(&mut screen))
    }

    /// Returns and clears whether the session printed since the last call, and re-arms
    /// its [`Event::Output`].
    pub fn take_dirty(&self, vm: impl Into<VmRef>) -> bool {
        self.find(vm)
            .map(|s| s.dirty.swap(false, Ordering::AcqRel))
            .unwrap_or(false)
    }

    /// Starts or stops writing the session's raw output to its log (`<vm>.log` in the
    /// logs folder); returns the log path when logging is now on.
    pub fn toggle_output_log(&self, vm: impl Into<VmRef>) -> Result<Option<PathBuf>> {
        let session = self.get(vm)?;
        let mut log = lock(&session.log);
        if log.take().is_some() {
            return Ok(None);
        }
        let config = &self.inner.config;
        let size = lock(&session.screen).size();
        let (vm, kind, created) = (session.vm, session.kind(), session.created);
        *log = Some(open_log(config, vm, &session.name(), kind, size, created)?);
        Ok(Some(LogFiles::new(&config.logs.dir, vm).log(0)))
    }

    fn find(&self, vm: impl Into<VmRef>) -> Option<Arc<Session>> {
        let vm = vm.into();
        lock(&self.inner.sessions)
            .iter()
            .find(|s| s.is(&vm))
            .cloned()
    }

    fn get(&self, vm: impl Into<VmRef>) -> Result<Arc<Session>> {
        let vm = vm.into();
        self.find(&vm)
            .ok_or_else(|| Error::NotFound(vm.to_string()))
    }
}

/// Session ids name log files and appear in commands: keep them plain.
fn validate_id(id: &str) -> Result<()> {
    bioxen_proto::check_name(id).map_err(|e| Error::Manager(e.to_string()))
}

/// Opens a session's log, with a note beside it of whose it is.
fn open_log(
    config: &ManagerConfig,
    vm: VmId,
    name: &str,
    kind: VmKind,
    size: Size,
    created: SystemTime,
) -> Result<OutputLog> {
    let log = OutputLog::open(&config.logs, vm)?;
    write_log_meta(config, vm, name, kind, size, created);
    Ok(log)
}

/// Says whose a log is, so `bioxen logs NAME` finds it after the session is gone.
fn write_log_meta(
    config: &ManagerConfig,
    vm: VmId,
    name: &str,
    kind: VmKind,
    size: Size,
    created: SystemTime,
) {
    let meta = LogMeta {
        vm,
        name: name.to_string(),
        kind,
        rows: size.rows,
        cols: size.cols,
        created_unix: unix_secs(created),
    };
    if let Err(e) = LogFiles::new(&config.logs.dir, vm).write_meta(&meta) {
        tracing::warn!(%vm, "cannot say whose the log is: {e}");
    }
}
