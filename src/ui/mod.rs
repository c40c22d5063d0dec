//! The full-screen dashboard.
//!
//! One task owns the terminal. It waits for input, manager events, background results,
//! a once-a-second tick and signals; updates the [`app::App`]; and draws only when
//! something changed, at most once per frame (~16 ms), each frame inside synchronized
//! output so the terminal never shows half a frame. An idle dashboard draws nothing.

pub mod app;
pub mod dialogs;
pub mod draw;
pub mod format;
pub mod keymap;
pub mod layout;
pub mod list_pane;
pub mod terminal_pane;
pub mod warnings;

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crossterm::event::EventStream;
use crossterm::{event as ct_event, execute, terminal as ct_terminal};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::broadcast::error::RecvError;

use crate::config::Config;
use crate::manager::{Manager, ManagerConfig};
use app::App;
use keymap::Keymap;

/// Writes a line to stderr if there is one: once the terminal window is closed,
/// stderr is gone, and `eprintln!` would panic on the way out.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// The shortest time between two frames.
const FRAME: Duration = Duration::from_millis(16);

/// Runs the dashboard until the user quits; restores the terminal in every case.
pub fn run(config: Config) -> ExitCode {
    let keymap = match Keymap::from_config(&config) {
        Ok(k) => k,
        Err(e) => {
            say!("bioxen: {e}");
            return ExitCode::from(2);
        }
    };
    let mut config = config;
    let log_path = match init_logging(&config) {
        Ok(p) => Some(p),
        Err(e) => {
            config.warnings.insert(0, e);
            None
        }
    };
    install_panic_hook(log_path.clone());
    let runtime = match crate::runtime() {
        Ok(r) => r,
        Err(e) => {
            say!("bioxen: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dashboard(config, keymap));
    crate::registry::withdraw();
    crate::secret::kill_running();
    // Tasks still reading PTYs of dead VMs must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("bioxen: {e}");
            if let Some(p) = log_path {
                say!("(details in {})", p.display());
            }
            ExitCode::FAILURE
        }
    }
}

async fn dashboard(config: Config, keymap: Keymap) -> std::io::Result<()> {
    let mut manager_config = ManagerConfig::from_config(&config).map_err(std::io::Error::other)?;
    // SSH questions (unknown host keys, passphrases) come to the dashboard's dialogs.
    let (prompt_tx, mut prompts) = tokio::sync::mpsc::unbounded_channel();
    manager_config.trust.prompt = Some(prompt_tx);
    let manager = Manager::new(manager_config);
    let mouse = config.ui.mouse;
    let _guard = TerminalGuard::enter(mouse)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    let size = terminal.size()?;
    let (tx, mut ui_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut app = App::new(
        manager.clone(),
        keymap,
        Rect::new(0, 0, size.width, size.height),
        mouse,
        tx,
    );

    app.kinds = std::iter::once(app::KindChoice::Local)
        .chain(
            config
                .ssh_hosts
                .iter()
                .map(|h| app::KindChoice::Ssh(h.name.clone())),
        )
        .chain(config.xcpng.iter().map(|_| app::KindChoice::Xcpng))
        .collect();
    app.xcpng_defaults = config
        .xcpng
        .as_ref()
        .map(|x| (x.template.clone(), x.memory_mib, x.vcpus));
    if let Some(w) = config.warnings.first() {
        app.set_message(format!("warning: {w}"), app::Level::Error);
    }
    let mut pool_ready = start_pool(&config, &manager, &mut app);
    let mut pool: Option<std::sync::Arc<crate::manager::Pool>> = None;
    let mut pool_changes = tokio::sync::watch::channel(0).1;

    let mut input = EventStream::new();
    let mut events = manager.subscribe();
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_draw = Instant::now() - FRAME;
    // Set when the terminal went away (its window closed): nothing more is drawn, and
    // the VMs are still shut down properly before bioxen exits.
    let mut terminal_gone = false;

    while !app.quit {
        let draw_at = (app.dirty && !terminal_gone)
            .then(|| tokio::time::Instant::from_std(last_draw + FRAME));
        let prefix_at = app.prefix_deadline().map(tokio::time::Instant::from_std);
        tokio::select! {
            biased;
            _ = sleep_until(draw_at), if draw_at.is_some() => {
                app.rearm_output();
                if let Err(e) = render(&mut terminal, &app) {
                    tracing::warn!("the terminal cannot be written to ({e}); terminating VMs and quitting");
                    terminal_gone = true;
                    app.begin_quit();
                }
                app.dirty = false;
                last_draw = Instant::now();
                // Test hook: the test of terminal restoration on panic sets this.
                if std::env::var("BIOXEN_TEST_PANIC").as_deref() == Ok("1") {
                    panic!("BIOXEN_TEST_PANIC is set: a deliberate panic after the first frame");
                }
            }
            event = input.next(), if !terminal_gone => match event {
                Some(Ok(ev)) => app.on_terminal_event(ev),
                Some(Err(e)) => {
                    tracing::warn!("the terminal cannot be read ({e}); terminating VMs and quitting");
                    terminal_gone = true;
                    app.begin_quit();
                }
                None => {
                    terminal_gone = true;
                    app.begin_quit();
                }
            },
            msg = ui_rx.recv() => if let Some(msg) = msg { app.on_ui_msg(msg) },
            Some(done) = app.tasks.join_next_with_id(), if !app.tasks.is_empty() => {
                app.on_task_done(done.map(|(id, ())| id));
            }
            prompt = prompts.recv() => if let Some(p) = prompt { app.on_prompt(p) },
            event = events.recv() => match event {
                Ok(ev) => app.on_manager_event(ev),
                Err(RecvError::Lagged(_)) => app.refresh(),
                Err(RecvError::Closed) => {}
            },
            ready = async { pool_ready.as_mut().expect("guarded").await }, if pool_ready.is_some() => {
                pool_ready = None;
                match ready {
                    Ok(Ok(p)) => {
                        pool_changes = p.cache.subscribe();
                        pool_changes.mark_changed();
                        pool = Some(p);
                    }
                    Ok(Err(e)) => {
                        app.pool = None;
                        app.set_message(format!("pool: {e}"), app::Level::Error);
                    }
                    // The task panicked; its supervisor has said so.
                    Err(_) => app.pool = None,
                }
            }
            Ok(()) = pool_changes.changed(), if pool.is_some() => {
                if let Some(cache) = pool.as_ref().map(|p| &p.cache) {
                    let vms = cache.vms();
                    app.on_pool(app::PoolView { status: cache.status(), vms: vms.len() }, vms);
                }
            }
            _ = sleep_until(prefix_at), if prefix_at.is_some() => app.expire_prefix(),
            _ = tick.tick() => app.on_tick(),
            _ = sigterm.recv() => {
                tracing::info!("SIGTERM: terminating VMs and quitting");
                app.begin_quit();
            }
            _ = sighup.recv() => {
                tracing::info!("SIGHUP: terminating VMs and quitting");
                app.begin_quit();
            }
        }
    }
    // Quitting always goes through begin_quit, which has already shut the VMs down.
    Ok(())
}

/// Connects to the configured pool, if any, through the manager's one connection to
/// it, in the background: a `password_command` may take a while (it has a timeout),
/// and the dashboard stays usable meanwhile. A pool that cannot be used is a message,
/// not a reason to stop the dashboard.
fn start_pool(config: &Config, manager: &Manager, app: &mut App) -> Option<PoolReady> {
    let xcpng = config.xcpng.as_ref()?;
    if let Ok(tls) =
        crate::xapi::tls::TlsMode::from_config(xcpng.tls_verify, &xcpng.tls_fingerprint)
    {
        app.warning = warnings::tls_warning(&tls);
    }
    app.pool = Some(app::PoolView {
        status: crate::xapi::PoolStatus::Connecting,
        vms: 0,
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    let manager = manager.clone();
    app.spawn("pool", async move {
        let pool = tokio::task::spawn_blocking(move || manager.pool())
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        let _ = tx.send(pool);
    });
    Some(rx)
}

/// The pool connection on its way, see [`start_pool`].
type PoolReady =
    tokio::sync::oneshot::Receiver<Result<std::sync::Arc<crate::manager::Pool>, String>>;

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn render(
    terminal: &mut Terminal<CrosstermBackend<std::io::Stdout>>,
    app: &App,
) -> std::io::Result<()> {
    execute!(std::io::stdout(), ct_terminal::BeginSynchronizedUpdate)?;
    let result = terminal
        .draw(|frame| draw::draw(frame, app, &app.manager))
        .map(|_| ());
    execute!(std::io::stdout(), ct_terminal::EndSynchronizedUpdate)?;
    result
}

/// Raw mode and the alternate screen for as long as it lives.
struct TerminalGuard;

impl TerminalGuard {
    fn enter(mouse: bool) -> std::io::Result<TerminalGuard> {
        ct_terminal::enable_raw_mode()?;
        let guard = TerminalGuard;
        let mut out = std::io::stdout();
        execute!(
            out,
            ct_terminal::EnterAlternateScreen,
            ct_event::EnableBracketedPaste
        )?;
        if mouse {
            execute!(out, ct_event::EnableMouseCapture)?;
        }
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Puts the terminal back as it was: safe to call more than once, and from a panic.
pub fn restore_terminal() {
    let mut out = std::io::stdout();
    let _ = execute!(
        out,
        ct_event::DisableMouseCapture,
        ct_event::DisableBracketedPaste,
        ct_terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = ct_terminal::disable_raw_mode();
    let _ = out.flush();
}

/// A panic restores the terminal first, so the message is readable, and records the
/// panic in the log file.
fn install_panic_hook(log_path: Option<std::path::PathBuf>) {
    let (panic_hook, eyre_hook) = color_eyre::config::HookBuilder::default()
        .display_env_section(false)
        .into_hooks();
    let _ = eyre_hook.install();
    let panic_hook = panic_hook.into_panic_hook();
    std::panic::set_hook(Box::new(move |info| {
        // The dashboard runs on the main thread. A panic elsewhere is a background task
        // the dashboard supervises and reports: the screen stays as it is.
        if std::thread::current().name() != Some("main") {
            tracing::error!("panic in a background task: {info}");
            return;
        }
        restore_terminal();
        tracing::error!("panic: {info}");
        panic_hook(info);
        if let Some(p) = &log_path {
            say!("bioxen's log: {}", p.display());
        }
    }));
}

/// Logs go to `<log_dir>/bioxen.log`, never to the screen. The file is private to the
/// user (0600 in a 0700 directory) and never opened through a symlink.
fn init_logging(config: &Config) -> Result<std::path::PathBuf, String> {
    let dir = config.log_dir();
    let path = dir.join("bioxen.log");
    let file = crate::private_fs::open_append(&path).map_err(|e| {
        format!(
            "no log file, and no output logs: {e} (ui.log_dir is {})",
            dir.display()
        )
    })?;
    let level = match std::env::var("BIOXEN_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("trace") => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_max_level(level)
        .try_init()
        .map_err(|e| format!("cannot start logging: {e}"))?;
    Ok(path)
}
