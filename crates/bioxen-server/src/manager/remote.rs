//! Remote sessions: Lua over SSH on a configured host (`ssh`) or on a VM bioxen creates
//! on the pool (`xcpng`).
//!
//! A supervisor task owns each remote session. When the link drops without the remote
//! interpreter having exited (keepalive timeout, EOF, sshd gone), the session shows
//! `reconnecting (n)`, reconnects with backoff, starts a new interpreter and says in
//! the pane that the previous interpreter state was lost. Killing the session stops the
//! retries. Host-key and authentication failures are never retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::{Manager, Process, Session, WriterMsg, run_writer};
use bioxen_backend::error::{Error, Result};
use bioxen_backend::lock;
use bioxen_backend::vm::holder::{Found, Held};
use bioxen_backend::vm::ssh::{
    self, ChannelEnd, Connection, PtyReader, PtyWriter, SshError, SshTarget,
};
use bioxen_backend::vm::{Control, VmKind, VmSpec, VmState, signal_number};
use bioxen_backend::xapi::lifecycle::{self, CreateSpec};

/// The SSH side of a remote session.
pub(super) struct Remote {
    pub target: SshTarget,
    /// The pool VM of an `xcpng` session.
    pub pool_vm: Option<String>,
    /// The live connection, for exec channels.
    pub conn: Option<Connection>,
    /// The session holder the interpreter runs under, if the host has one.
    pub held: Option<Held>,
}

/// What the PTY channel runs: the interpreter, under its holder if it has one.
fn pty_command(target: &SshTarget, held: Option<&Held>) -> String {
    match held {
        Some(h) => h.command(&target.command),
        None => target.command.clone(),
    }
}

/// Raised when the user ends a session; wakes a supervisor waiting to reconnect.
#[derive(Default)]
pub(super) struct StopSignal {
    flag: AtomicBool,
    notify: Notify,
}

impl StopSignal {
    pub fn raise(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    pub fn reset(&self) {
        self.flag.store(false, Ordering::SeqCst);
    }

    pub fn is_raised(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Completes once the stop is raised.
    pub async fn raised(&self) {
        while !self.is_raised() {
            self.notify.notified().await;
        }
    }

    /// Sleeps `delay`; returns true if the stop was raised meanwhile.
    async fn sleep(&self, delay: Duration) -> bool {
        if self.is_raised() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => self.is_raised(),
            _ = self.notify.notified() => true,
        }
    }
}

/// Closes the SSH connection, which ends the remote interpreter (the server hangs it
/// up), after ending its held session, which would outlive the link.
struct RemoteControl {
    conn: Connection,
    held: Option<Held>,
    /// Set by the first `terminate`: a second (a kill after the grace) would close
    /// the link under the first's command that ends the holder.
    ending: AtomicBool,
}

/// How long ending a held interpreter may take: a new channel on a loaded host can
/// take seconds, and closing the link before it ran would leave the interpreter on
/// the host.
const END_HELD: Duration = Duration::from_secs(30);

impl Control for RemoteControl {
    fn pid(&self) -> Option<u32> {
        None
    }

    fn terminate(&self) {
        if self.ending.swap(true, Ordering::SeqCst) {
            return;
        }
        let conn = self.conn.clone();
        let held = self.held.clone();
        tokio::spawn(async move {
            if let Some(h) = held {
                let end = h.end_command();
                let ended =
                    tokio::time::timeout(END_HELD, conn.exec(&["sh", "-c", &end], b"")).await;
                match ended {
                    Ok(Ok(out)) if out.status == Some(0) => {}
                    Ok(Ok(out)) => tracing::warn!(
                        "ending the held session {} found nothing to end (status {:?})",
                        h.name,
                        out.status
                    ),
                    Ok(Err(e)) => tracing::warn!("could not end the held session {}: {e}", h.name),
                    Err(_) => tracing::warn!(
                        "could not end the held session {}: no answer in {} s",
                        h.name,
                        END_HELD.as_secs()
                    ),
                }
            }
            conn.control().disconnect().await
        });
    }

    fn kill(&self) {
        self.terminate();
    }

    fn detach(&self) -> bool {
        if self.held.is_none() {
            return false;
        }
        let conn = self.conn.clone();
        tokio::spawn(async move { conn.control().disconnect().await });
        true
    }
}

/// Connects a remote session and starts its supervisor. Returns once the interpreter
/// runs, or with the reason it cannot (creation, host key, authentication).
pub(super) async fn start(manager: &Manager, session: &Arc<Session>) -> Result<()> {
    let (mut target, conn) = connect_link(manager, session).await?;
    // Only this start's: the next start copies the script afresh.
    if let Some(command) = script_command(session, &conn, &target.command).await? {
        target.command = command;
    }
    let events = manager.inner.events.clone();
    let held = if target.hold {
        // A pool VM kept with its session closed may hold that session's interpreter.
        let resume = lock(&session.remote)
            .as_ref()
            .is_some_and(|r| r.pool_vm.is_some());
        let before = lock(&session.held_before).clone();
        let found = Held::find(&conn, &session.name(), resume, before.as_deref()).await;
        session.notice(
            &match &found {
                Some(Found::New(h)) => format!(
                    "the interpreter runs under {} on {}: it lives on if the link drops, \
                     the server goes, or the session is closed with its VM kept",
                    h.holder.label(),
                    target.host
                ),
                Some(Found::Resumed(h)) => format!(
                    "attached to the interpreter {} kept on {}: its state is as it was left",
                    h.holder.label(),
                    target.host
                ),
                None => format!(
                    "neither dtach nor python3 on {}: a dropped link or a closed session \
                     loses the interpreter's state",
                    target.host
                ),
            },
            &events,
        );
        found.map(|f| f.held().clone())
    } else {
        None
    };
    if let Some(r) = lock(&session.remote).as_mut() {
        r.held = held.clone();
    }
    let size = lock(&session.screen).size();
    let pty = conn
        .open_pty(
            size,
            &interactive_env(&target.command),
            &pty_command(&target, held.as_ref()),
        )
        .await
        .map_err(|source| Error::Ssh {
            id: session.name(),
            source,
        })?;
    install(manager, session, &conn, pty.1);
    tokio::spawn(supervise(
        manager.clone(),
        session.clone(),
        target,
        held,
        pty.0,
    ));
    Ok(())
}

/// An experiment VM's script, copied to the host into a private directory: the
/// interpreter's command with the script, its arguments and its matrix's variables,
/// as `SEED=1 lua5.4 -i /tmp/bioxen-run.X/train.lua 0.1`. The configured command
/// is interactive (`-i`), so the prompt stays once the script has run. None for a VM
/// without a script.
async fn script_command(
    session: &Session,
    conn: &Connection,
    command: &str,
) -> Result<Option<String>> {
    let Some(spec) = lock(&session.membership).as_ref().map(|m| m.spec.clone()) else {
        return Ok(None);
    };
    let Some(script) = &spec.script else {
        return Ok(None);
    };
    let failed = |why: String| Error::session(session.name(), why);
    let text = tokio::fs::read(script)
        .await
        .map_err(|e| failed(format!("cannot read the script {script}: {e}")))?;
    let name = std::path::Path::new(script)
        .file_name()
        .map_or("script.lua".into(), |n| n.to_string_lossy().into_owned());
    let argv = ["sh", "-c", ssh::PRIVATE_COPY, "sh", name.as_str()];
    let out = conn.exec(&argv, &text).await.map_err(|source| Error::Ssh {
        id: session.name(),
        source,
    })?;
    if out.status != Some(0) {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(failed(format!(
            "cannot copy the script to the host: {}",
            bioxen_text::sanitize::line(&why)
        )));
    }
    let dir = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words: Vec<String> = spec
        .env
        .iter()
        .map(|(k, v)| format!("{k}={}", shell_words::quote(v)))
        .collect();
    words.push(command.to_string());
    words.push(shell_words::quote(&format!("{dir}/{name}")).into_owned());
    words.extend(spec.args.iter().map(|a| shell_words::quote(a).into_owned()));
    Ok(Some(words.join(" ")))
}

/// Connects a session for programs run on exec channels (`bioxen run`): the pool VM
/// made and the link up, and no interpreter started. The session runs until it is
/// ended, which closes the link.
pub(super) async fn start_link_only(manager: &Manager, session: &Arc<Session>) -> Result<()> {
    let (_, conn) = connect_link(manager, session).await?;
    // Nothing types into such a session: its input goes nowhere.
    let (tx, _) = tokio::sync::mpsc::unbounded_channel::<WriterMsg>();
    *lock(&session.process) = Some(Process {
        writer: tx,
        control: Arc::new(LinkControl {
            conn: conn.clone(),
            session: Arc::downgrade(session),
            events: manager.inner.events.clone(),
        }),
        started: Instant::now(),
        command: format!("programs run on {}", conn.target().label()),
    });
    if let Some(r) = lock(&session.remote).as_mut() {
        r.conn = Some(conn);
    }
    session.set_state(&manager.inner.events, VmState::Running);
    Ok(())
}

/// Ends a link-only session: closing the link ends whatever runs on its channels.
struct LinkControl {
    conn: Connection,
    session: std::sync::Weak<Session>,
    events: tokio::sync::broadcast::Sender<super::Event>,
}

impl Control for LinkControl {
    fn pid(&self) -> Option<u32> {
        None
    }

    fn terminate(&self) {
        let conn = self.conn.clone();
        tokio::spawn(async move { conn.control().disconnect().await });
        if let Some(session) = self.session.upgrade()
            && session.state().is_alive()
        {
            session.set_state(&self.events, VmState::Exited(0));
        }
    }

    fn kill(&self) {
        self.terminate();
    }
}

/// The first half of starting a remote session: the pool VM (for xcpng) and a
/// connection to its sshd, recorded in the session so ending it cleans up.
async fn connect_link(
    manager: &Manager,
    session: &Arc<Session>,
) -> Result<(SshTarget, Connection)> {
    let events = manager.inner.events.clone();
    session.set_state(&events, VmState::Starting);
    let (target, pool_vm) = match session.kind() {
        VmKind::Xcpng => {
            let (target, vm) = xcpng_target(manager, session).await?;
            (target, Some(vm))
        }
        _ => (ssh_target(manager, session)?, None),
    };
    // Recorded before connecting: a pool VM whose SSH never comes up is still destroyed
    // when the session is terminated.
    *lock(&session.remote) = Some(Remote {
        target: target.clone(),
        pool_vm,
        conn: None,
        held: None,
    });
    session.notice(&format!("connecting to {}", target.label()), &events);
    // A freshly booted VM's sshd may need a moment after its IP appears.
    let patience = match session.kind() {
        VmKind::Xcpng => manager
            .inner
            .config
            .pool(session.pool_name().as_deref())
            .map_or(Duration::ZERO, |x| Duration::from_secs(x.ssh.wait_secs)),
        _ => Duration::ZERO,
    };
    let waiting = |attempt: u32, left: Duration, why: &str| {
        session.progress(
            &format!(
                "waiting for sshd: attempt {attempt}, {} s left ({why})",
                left.as_secs()
            ),
            &events,
        );
    };
    let trust = &manager.inner.config.trust;
    let conn = tokio::select! {
        conn = connect_patiently(&target, trust, patience, waiting) => conn
            .map_err(|source| Error::Ssh { id: session.name(), source })?,
        () = session.stop.raised() => {
            return Err(Error::session(session.name(), "killed while connecting"));
        }
    };
    Ok((target, conn))
}

/// Connects, retrying for `patience` while nothing answers (a guest's sshd starts a
/// little after its IP shows), and telling `waiting` about each failed attempt. When
/// the patience runs out the error says what to check.
async fn connect_patiently(
    target: &SshTarget,
    trust: &ssh::Trust,
    patience: Duration,
    waiting: impl Fn(u32, Duration, &str),
) -> Result<Connection, SshError> {
    let start = Instant::now();
    let deadline = start + patience;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match ssh::connect(target, trust).await {
            Err(SshError::Connect(m)) if Instant::now() < deadline => {
                tracing::debug!("waiting for sshd on {}: {m}", target.label());
                // The reason alone: the line before names the target.
                let reason = m.rsplit(": ").next().unwrap_or(&m);
                waiting(attempt, deadline - Instant::now(), reason);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(SshError::Connect(m)) if attempt > 1 => {
                return Err(SshError::Connect(format!(
                    "{m}; no SSH after {attempt} attempts in {} s. Check that [xcpng.ssh] \
                     port ({}) is the port the guest's sshd listens on, that sshd runs on \
                     the guest, and that no firewall blocks the port",
                    start.elapsed().as_secs(),
                    target.port
                )));
            }
            other => return other,
        }
    }
}

/// Assignments for an interactive interpreter on a remote host: the rocks paths, and
/// for a reference `lua` its prompts marked (so the list says busy or idle) and
/// `require "bioxen"` answered without the module installed there. The host user's
/// own `LUA_INIT` still runs.
fn interactive_env(command: &str) -> String {
    let mut env = ssh::rocks_env();
    let program = shell_words::split(command)
        .ok()
        .and_then(|words| words.into_iter().find(|w| !w.contains('=')))
        .unwrap_or_default();
    if super::is_reference_lua(&program) {
        env.push_str(&format!(
            "BIOXEN_LUA_INIT=\"${{LUA_INIT_5_4-${{LUA_INIT-}}}}\" LUA_INIT_5_4={} ",
            shell_words::quote(&super::lua_init(true))
        ));
    }
    env
}

/// Makes `writer` the session's input and the connection its control.
fn install(manager: &Manager, session: &Arc<Session>, conn: &Connection, writer: PtyWriter) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<WriterMsg>();
    *lock(&session.process) = Some(Process {
        writer: tx,
        control: Arc::new(RemoteControl {
            conn: conn.clone(),
            held: lock(&session.remote).as_ref().and_then(|r| r.held.clone()),
            ending: AtomicBool::new(false),
        }),
        started: Instant::now(),
        command: format!("{} on {}", conn.target().command, conn.target().label()),
    });
    if let Some(r) = lock(&session.remote).as_mut() {
        r.conn = Some(conn.clone());
    }
    session.queued_input.store(0, Ordering::Relaxed);
    tokio::spawn(run_writer(session.clone(), writer, rx));
    session.set_state(&manager.inner.events, VmState::Running);
}

async fn supervise(
    manager: Manager,
    session: Arc<Session>,
    target: SshTarget,
    held: Option<Held>,
    reader: PtyReader,
) {
    let events = manager.inner.events.clone();
    let trust = manager.inner.config.trust.clone();
    let mut reader = Some(reader);
    let mut attempt = 0u32;
    loop {
        if let Some(mut r) = reader.take() {
            // dtach clears the screen when it attaches (what the pane showed stays
            // instead), says when it ends, and hides the interpreter's exit status.
            let mut first = true;
            let mut held_exit = None;
            while let Some(chunk) = r.next().await {
                if held.is_some() {
                    let (chunk, code) = Held::take_exit(&chunk, first);
                    held_exit = held_exit.or(code);
                    session.on_output(&chunk, &events);
                } else {
                    session.on_output(&chunk, &events);
                }
                first = false;
            }
            match r.end() {
                ChannelEnd::Exited(code) => {
                    let code = held_exit.unwrap_or(code as i32);
                    return session.set_state(&events, VmState::Exited(code));
                }
                ChannelEnd::Signal(name) => {
                    return session.set_state(&events, VmState::Killed(signal_number(&name)));
                }
                ChannelEnd::Lost if session.stop.is_raised() => {
                    session.notice(
                        &format!("closed the session on {}", target.label()),
                        &events,
                    );
                    return session.set_state(&events, VmState::Killed(libc::SIGHUP));
                }
                ChannelEnd::Lost => {
                    session.notice(
                        &format!(
                            "the connection to {} was lost; reconnecting",
                            target.label()
                        ),
                        &events,
                    );
                    tracing::warn!(vm = %session.name(), "connection to {} lost", target.label());
                }
            }
        }
        // Reconnect with backoff until it works, the user stops it, or trust fails.
        let conn = loop {
            attempt += 1;
            session.set_state(&events, VmState::Reconnecting(attempt));
            let delay =
                Duration::from_millis(500 * (1u64 << attempt.min(5))).min(Duration::from_secs(15));
            if session.stop.sleep(delay).await {
                session.notice("stopped reconnecting", &events);
                return session.set_state(&events, VmState::Killed(libc::SIGHUP));
            }
            match ssh::connect(&target, &trust).await {
                Ok(c) => break c,
                Err(e @ (SshError::HostKey(_) | SshError::Auth(_))) => {
                    session.notice(&e.to_string(), &events);
                    return session.set_state(&events, VmState::Failed(e.to_string()));
                }
                Err(e) => tracing::info!(vm = %session.name(), "reconnect {attempt} failed: {e}"),
            }
        };
        let size = lock(&session.screen).size();
        let command = pty_command(&target, held.as_ref());
        match conn
            .open_pty(size, &interactive_env(&target.command), &command)
            .await
        {
            Ok((r, w)) => {
                install(&manager, &session, &conn, w);
                let what = match &held {
                    Some(h) => format!(
                        "the same Lua session goes on (held by {})",
                        h.holder.label()
                    ),
                    None => "this is a NEW Lua session, the previous interpreter state was lost"
                        .to_string(),
                };
                session.notice(
                    &format!(
                        "reconnected to {} after {attempt} attempt(s): {what}",
                        target.label()
                    ),
                    &events,
                );
                attempt = 0;
                reader = Some(r);
            }
            Err(e) => tracing::info!(vm = %session.name(), "reconnected but cannot start Lua: {e}"),
        }
    }
}

/// The target of an `ssh` VM: its `[[ssh_hosts]]` entry.
fn ssh_target(manager: &Manager, session: &Session) -> Result<SshTarget> {
    if let Some(r) = lock(&session.remote).as_ref() {
        return Ok(r.target.clone());
    }
    let config = &manager.inner.config;
    let VmSpec::Ssh { host: name } = &session.spec else {
        return Err(Error::Manager(format!(
            "{} is not an ssh VM",
            session.name()
        )));
    };
    let host = config
        .ssh_hosts
        .iter()
        .find(|h| h.name == *name)
        .ok_or_else(|| Error::Manager(format!("no [[ssh_hosts]] entry is named '{name}'")))?;
    let section = format!("[[ssh_hosts]] '{name}'");
    let password = bioxen_config::secret::PasswordSource {
        section: &section,
        env: host.password_env.as_deref(),
        command: host.password_command.as_deref(),
        literal: None,
        timeout: Duration::from_secs(bioxen_config::secret::DEFAULT_TIMEOUT_SECS),
    }
    .resolve()
    .map_err(Error::Manager)?;
    Ok(SshTarget {
        host: host.host.clone(),
        port: host.port,
        user: host.user.clone().unwrap_or_else(current_user),
        identity: host.identity.as_deref().map(bioxen_config::expand_home),
        known_hosts: known_hosts(host.known_hosts.as_deref()),
        password,
        command: host.command.clone(),
        hold: host.hold,
    })
}

fn known_hosts(configured: Option<&str>) -> std::path::PathBuf {
    configured
        .map(bioxen_config::expand_home)
        .unwrap_or_else(|| bioxen_config::home_dir().join(".ssh").join("known_hosts"))
}

fn current_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".into())
}

/// The target of an `xcpng` VM and the VM's ref: a pool VM created now (or the one
/// given, or the session's own on restart), reached at the IPv4 its guest agent reports.
async fn xcpng_target(manager: &Manager, session: &Arc<Session>) -> Result<(SshTarget, String)> {
    let config = &manager.inner.config;
    let pool = session.pool_name();
    let x = config.pool(pool.as_deref())?;
    let events = manager.inner.events.clone();
    let client = manager.xapi(pool.as_deref()).await?;
    let existing = lock(&session.remote)
        .as_ref()
        .and_then(|r| r.pool_vm.clone());
    // A session that already has a pool VM (attached, restarted, reconnecting) asks the
    // pool where that VM is now: an address remembered from before may since belong to
    // someone else's machine, and the VM may be gone.
    let VmSpec::Xcpng {
        template,
        memory_mib,
        vcpus,
        pool_vm,
        ..
    } = &session.spec
    else {
        return Err(Error::Manager(format!(
            "{} is not an xcpng VM",
            session.name()
        )));
    };
    let known = existing.or_else(|| pool_vm.clone().map(|(r, _)| r));
    let (reference, ip) = if let Some(reference) = known {
        session.notice("asking the pool for the VM's address", &events);
        let ip = lifecycle::wait_for_ip(&client, &reference, config.xcpng_ip_timeout)
            .await
            .map_err(|e| match &e {
                bioxen_backend::xapi::XapiError::Api { code, .. } if code == "HANDLE_INVALID" => {
                    Error::session(
                        session.name(),
                        format!(
                            "its pool VM {reference} no longer exists on the pool; \
                             create a new VM instead"
                        ),
                    )
                }
                bioxen_backend::xapi::XapiError::Api { code, params }
                    if code == "VM_BAD_POWER_STATE" =>
                {
                    Error::session(
                        session.name(),
                        format!(
                            "its pool VM is {}; start it on the pool, or create a new VM",
                            params.get(2).map(String::as_str).unwrap_or("not running")
                        ),
                    )
                }
                _ => Error::Xapi(e.clone()),
            })?;
        (reference, ip)
    } else {
        let spec = CreateSpec {
            template: template.clone().unwrap_or_else(|| x.template.clone()),
            name: session.name(),
            memory_mib: memory_mib.unwrap_or(x.memory_mib),
            vcpus: vcpus.unwrap_or(x.vcpus),
            bioxen_id: session.name(),
            ip_timeout: config.xcpng_ip_timeout,
        };
        session.notice(
            &format!(
                "creating a VM from template '{}' on {}",
                spec.template,
                client.url()
            ),
            &events,
        );
        // The creation runs as its own task, so that killing the session answers at
        // once: the task then stops at its next step and removes what it made, even on
        // a slow or hanging pool.
        let task = {
            let (client, spec, s, ev) = (
                client.clone(),
                spec.clone(),
                session.clone(),
                events.clone(),
            );
            let job = manager.pool_job();
            tokio::spawn(async move {
                let _job = job;
                let progress = |step: lifecycle::Step| s.notice(&format!("{step}…"), &ev);
                let cancelled = || s.stop.is_raised();
                let result =
                    lifecycle::create_cancellable(&client, &spec, &progress, &cancelled).await;
                if let Err(e) = &result
                    && matches!(e.error, bioxen_backend::xapi::XapiError::Cancelled)
                {
                    tracing::info!(vm = %s.name(), "creation cancelled at {}; removed what was made", e.step);
                }
                result
            })
        };
        // The finished creation first: a VM made just before the kill is recorded
        // (below) and destroyed with the session, rather than dropped and left on the
        // pool. One the kill catches in time removes itself.
        let created = tokio::select! {
            biased;
            joined = task => joined
                .map_err(|e| Error::session(session.name(), format!("creating the VM: {e}")))?
                .map_err(|source| {
                    session.notice(&source.to_string(), &events);
                    Error::PoolStep { id: session.name(), source: Box::new(source) }
                })?,
            () = session.stop.raised() => {
                session.notice("killed: the creation stops and what it made is removed", &events);
                return Err(Error::session(session.name(), "killed while its pool VM was being created; the half-made VM is removed"));
            }
        };
        session.notice(
            &format!("VM {} is up at {}", created.uuid, created.ip),
            &events,
        );
        (created.reference, created.ip)
    };
    let target = SshTarget {
        host: ip,
        port: x.ssh.port,
        user: x.ssh.user.clone(),
        identity: x.ssh.identity.as_deref().map(bioxen_config::expand_home),
        known_hosts: known_hosts(x.ssh.known_hosts.as_deref()),
        password: None,
        command: x.ssh.command.clone(),
        hold: x.ssh.hold,
    };
    Ok((target, reference))
}

/// Shuts down and destroys the pool VM of an `xcpng` session, with its own disks.
pub(super) async fn destroy_pool_vm(manager: &Manager, session: &Session) -> Result<()> {
    let Some(vm) = lock(&session.remote)
        .as_ref()
        .and_then(|r| r.pool_vm.clone())
    else {
        return Ok(());
    };
    let client = manager.xapi(session.pool_name().as_deref()).await?;
    let fail = |e: bioxen_backend::xapi::XapiError| {
        Error::session(session.name(), format!("destroying its pool VM: {e}"))
    };
    lifecycle::stop(&client, &vm, Duration::from_secs(30))
        .await
        .map_err(fail)?;
    let disks = lifecycle::destroy(&client, &vm).await.map_err(fail)?;
    if let Some(r) = lock(&session.remote).as_mut() {
        r.pool_vm = None;
    }
    session.notice(
        &format!("destroyed the pool VM and {disks} disk(s)"),
        &manager.inner.events,
    );
    Ok(())
}

impl Manager {
    /// The pool named `name` (the first configured when `None`), connected on first
    /// use: each pool's client logs in once, and its event cache follows it from then
    /// on.
    pub fn pool(&self, name: Option<&str>) -> Result<Arc<super::Pool>> {
        let x = self.inner.config.pool(name)?;
        let connected = || lock(&self.inner.pools).get(&x.name).cloned();
        if let Some(p) = connected() {
            return Ok(p);
        }
        let gate = lock(&self.inner.connecting)
            .entry(x.name.clone())
            .or_default()
            .clone();
        let _connecting = lock(&gate);
        // Another caller may have connected it while this one waited.
        if let Some(p) = connected() {
            return Ok(p);
        }
        let client = Arc::new(bioxen_backend::xapi::XapiClient::from_config(x)?);
        let cache = bioxen_backend::xapi::EventCache::start(client.clone());
        let p = Arc::new(super::Pool {
            name: x.name.clone(),
            client: client.clone(),
            cache,
            metrics: Default::default(),
        });
        tokio::spawn(super::pool_metrics::PoolMetrics::follow(
            Arc::downgrade(&p),
            client,
            self.inner.events.clone(),
        ));
        lock(&self.inner.pools).insert(x.name.clone(), p.clone());
        Ok(p)
    }

    /// The pools connected so far.
    pub(crate) fn connected_pools(&self) -> Vec<Arc<super::Pool>> {
        lock(&self.inner.pools).values().cloned().collect()
    }

    /// The client of the pool `name`. Connecting may run `password_command`, so it
    /// happens off the async workers.
    pub(crate) async fn xapi(
        &self,
        name: Option<&str>,
    ) -> Result<Arc<bioxen_backend::xapi::XapiClient>> {
        let manager = self.clone();
        let name = name.map(str::to_string);
        let pool = tokio::task::spawn_blocking(move || manager.pool(name.as_deref()))
            .await
            .map_err(|e| Error::Manager(format!("connecting to the pool: {e}")))??;
        Ok(pool.client.clone())
    }
}
