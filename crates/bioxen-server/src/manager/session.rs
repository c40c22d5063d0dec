//! One VM session: its spec, state, screen, output and process, and the lifecycle
//! the manager drives (start, send, resize, stop, detach, wait).

use super::*;

/// One VM session. Its screen, output buffer and history outlive its process, so a dead
/// VM still shows its last screen and can be restarted in place.
pub struct Session {
    /// Who the session is, for good: see [`VmId`].
    pub vm: VmId,
    /// What it is called; changed only by [`Manager::rename`].
    pub(super) name: std::sync::RwLock<String>,
    pub(super) spec: VmSpec,
    pub(super) created: SystemTime,
    pub(super) screen: Mutex<Screen>,
    pub(super) pending: Mutex<OutputBuffer>,
    /// Live output for watchers (`watch`, `execute_string`). Sent while the screen
    /// is locked, so a snapshot taken under that lock is followed by exactly the
    /// output it does not contain.
    pub(super) live: broadcast::Sender<Live>,
    /// Counts output chunks; waiters watch it instead of sleeping.
    pub(super) seq: watch::Sender<u64>,
    pub(super) state: watch::Sender<VmState>,
    pub(super) process: Mutex<Option<Process>>,
    pub(super) stats: Mutex<Option<ProcStats>>,
    /// CPU, memory, progress and work over the last day, as the sampler saw them.
    pub(super) history: Mutex<crate::history::History>,
    /// How many clients are attached (typing into it): each attaches once and gives
    /// it back when it detaches or its connection ends.
    pub(super) attached: AtomicUsize,
    pub(super) dirty: AtomicBool,
    pub(super) queued_input: AtomicUsize,
    /// Set while answers to the program's terminal queries are being dropped because
    /// it does not read its input; the user is told once per such spell.
    pub(super) replies_dropped: AtomicBool,
    pub(super) log: Mutex<Option<OutputLog>>,
    /// The SSH side of a remote session.
    pub(super) remote: Mutex<Option<remote::Remote>>,
    /// The name a remote interpreter was held under by a server before this one: the
    /// next start attaches to it if it still runs.
    pub(super) held_before: Mutex<Option<String>>,
    /// Set when the user ends the session: a remote session stops reconnecting.
    pub(super) stop: remote::StopSignal,
    /// The manager's, for the sampler: see [`Inner`].
    pub(super) activity: Arc<Notify>,
    /// What the program said about itself.
    pub(super) signals: Mutex<SessionSignals>,
    /// Seconds without output before a silence alert; 0 is off.
    pub(super) silence: watch::Sender<u64>,
    /// The experiment the VM belongs to, its spec and restarts; see `experiment.rs`.
    pub(super) membership: Mutex<Option<bioxen_proto::Membership>>,
    /// Set while the experiment's supervisor of this VM may still start it (it waits
    /// for dependencies, runs it, or backs off to restart it): a dependant waiting for
    /// it gives up only once this is clear.
    pub(super) supervised: watch::Sender<bool>,
    /// Held by a supervisor while it starts the VM, and taken by [`Session::stop`]
    /// once the stop is raised: a stop never misses a process started beside it.
    pub(super) start_gate: tokio::sync::Mutex<()>,
}

/// What a session's program said about itself, and when the list last told clients.
#[derive(Default)]
pub(super) struct SessionSignals {
    pub(super) busy: Option<Busy>,
    /// The command running now (or the one that just ended) failed.
    pub(super) failed: bool,
    pub(super) progress: Option<Progress>,
    pub(super) progress_seq: u64,
    /// When the last progress report came.
    pub(super) progress_at: Option<Instant>,
    pub(super) status: Option<String>,
    /// When a change was last published.
    pub(super) published: Option<Instant>,
    /// A change not yet published: the sampler publishes it.
    pub(super) pending: bool,
}

impl SessionSignals {
    /// How long ago the last progress report came (none: just now).
    pub(super) fn progress_age(&self) -> Duration {
        self.progress_at.map(|at| at.elapsed()).unwrap_or_default()
    }

    /// The last progress report, unless it has gone stale.
    pub(super) fn fresh_progress(&self) -> Option<Progress> {
        self.progress
            .filter(|_| self.progress_age() < PROGRESS_STALE)
    }
}

/// Progress and status reports are published at most this often per session: a loop
/// reporting on every step costs one list per 100 ms, not one per step.
pub(super) const SIGNALS_EVERY: Duration = Duration::from_millis(100);

/// The running part of a session; replaced on restart.
pub(super) struct Process {
    pub(super) writer: mpsc::UnboundedSender<WriterMsg>,
    pub(super) control: Arc<dyn Control>,
    pub(super) started: Instant,
    pub(super) command: String,
}

pub(super) enum WriterMsg {
    Data(Vec<u8>),
    Resize(Size),
}

impl Session {
    pub(super) fn new(
        vm: VmId,
        id: String,
        spec: VmSpec,
        size: Size,
        config: &ManagerConfig,
        activity: Arc<Notify>,
    ) -> Self {
        let created = SystemTime::now();
        let log = if config.logs.enabled {
            match open_log(config, vm, &id, spec.kind(), size, created) {
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
            vm,
            name: std::sync::RwLock::new(id),
            spec,
            created,
            pending: Mutex::new(OutputBuffer::new(PENDING_LIMIT)),
            live: broadcast::channel(256).0,
            seq: watch::channel(0).0,
            state: watch::channel(VmState::Starting).0,
            process: Mutex::new(None),
            stats: Mutex::new(None),
            history: Mutex::default(),
            attached: AtomicUsize::new(0),
            dirty: AtomicBool::new(false),
            queued_input: AtomicUsize::new(0),
            replies_dropped: AtomicBool::new(false),
            log: Mutex::new(log),
            remote: Mutex::new(None),
            held_before: Mutex::new(None),
            stop: remote::StopSignal::default(),
            activity,
            signals: Mutex::new(SessionSignals::default()),
            silence: watch::channel(config.silence_secs).0,
            membership: Mutex::new(None),
            supervised: watch::channel(false).0,
            start_gate: tokio::sync::Mutex::new(()),
        }
    }

    pub fn state(&self) -> VmState {
        self.state.borrow().clone()
    }

    pub fn name(&self) -> String {
        self.name.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the session is called `name`: the lookup every call by name makes,
    /// without copying the name.
    pub(super) fn is_named(&self, name: &str) -> bool {
        *self.name.read().unwrap_or_else(|e| e.into_inner()) == name
    }

    /// Whether `r` names this session, by number or by name.
    pub(super) fn is(&self, r: &VmRef) -> bool {
        match r {
            VmRef::Id(vm) => *vm == self.vm,
            VmRef::Name(name) => self.is_named(name),
        }
    }

    pub(super) fn kind(&self) -> VmKind {
        self.spec.kind()
    }

    /// The pool an `xcpng` session was made on, when it named one; `None` is the
    /// first configured pool (see [`ManagerConfig::pool`]).
    pub(super) fn pool_name(&self) -> Option<String> {
        match &self.spec {
            VmSpec::Xcpng { pool, .. } => pool.clone(),
            _ => None,
        }
    }

    pub(super) fn set_state(&self, events: &broadcast::Sender<Event>, state: VmState) {
        let changed = self.state.send_if_modified(|s| {
            if *s != state {
                *s = state.clone();
                true
            } else {
                false
            }
        });
        if changed {
            tracing::info!(vm = %self.name(), state = %state.label(), "state");
            let _ = events.send(Event::State(self.vm, state));
            // Wake anyone waiting on output too: a dead session answers no prompt.
            self.seq.send_modify(|n| *n += 1);
        }
    }

    pub(super) fn send(&self, input: &[u8]) -> Result<()> {
        if let VmState::Reconnecting(n) = self.state() {
            return Err(Error::session(
                self.name(),
                format!("is reconnecting (attempt {n}); input waits until it is back"),
            ));
        }
        if !self.state().is_alive() {
            return Err(Error::session(
                self.name(),
                format!("is not running ({})", self.state().label()),
            ));
        }
        let writer = lock(&self.process)
            .as_ref()
            .map(|p| p.writer.clone())
            .ok_or_else(|| Error::session(self.name(), "has no process"))?;
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
            return Err(Error::session(self.name(), why));
        }
        for piece in input.chunks(INPUT_PIECE) {
            self.queued_input.fetch_add(piece.len(), Ordering::Relaxed);
            writer
                .send(WriterMsg::Data(piece.to_vec()))
                .map_err(|_| Error::session(self.name(), "input is closed"))?;
        }
        Ok(())
    }

    pub(super) fn resize(&self, size: Size) {
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
    pub(super) async fn stop(&self) -> VmState {
        self.stop.raise();
        // A supervisor starting the process now finishes first; none starts after.
        drop(self.start_gate.lock().await);
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
    pub(super) async fn detach(&self) -> bool {
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
    pub(super) async fn wait_for(
        &self,
        timeout: Duration,
        ready: impl Fn(&Session) -> bool,
    ) -> bool {
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

    pub(super) fn info(&self) -> VmInfo {
        let (remote, pool_vm) = match lock(&self.remote).as_ref() {
            Some(r) => (Some(r.target.label()), r.pool_vm.clone()),
            None => (None, None),
        };
        let process = lock(&self.process);
        let state = self.state();
        let stats = *lock(&self.stats);
        let alive = state.is_alive();
        let signals = lock(&self.signals);
        let progress_age = signals.progress_age();
        VmInfo {
            vm: self.vm,
            name: self.name(),
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
            pool: self.pool_name(),
            busy: signals.busy.filter(|_| alive),
            progress: signals.fresh_progress().filter(|_| alive),
            progress_seq: signals.progress_seq,
            progress_age_ms: progress_age.as_millis() as u64,
            status: signals.status.clone(),
            silence_secs: *self.silence.borrow(),
            experiment: lock(&self.membership).clone(),
            recent_cpu: lock(&self.history).recent_cpu(),
            state,
        }
    }
}
