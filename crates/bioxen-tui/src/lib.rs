//! The full-screen dashboard: a client of `bioxen server`.
//!
//! One task owns the terminal. It waits for input, the server's updates, background
//! results, the next change of an uptime label on screen, and signals; updates the
//! [`app::App`]; and draws only when something changed, at most once per frame
//! (~16 ms; a VM's first screen is drawn at once), each frame inside synchronized
//! output so the terminal never shows half a frame. An idle dashboard draws nothing.
//!
//! The VMs live in the server. Leaving the dashboard (q, closing the window, SIGHUP,
//! SIGTERM) leaves them running there; `bioxen` or `bioxen attach` shows them again.

pub mod app;
pub mod dialogs;
pub mod draw;
pub mod effect;
pub mod encode;
pub mod experiment_pane;
pub mod format;
pub mod grid;
pub mod grid_pane;
pub mod history_chart;
pub mod input;
pub mod layout;
pub mod list_pane;
pub mod path_complete;
pub mod search_dialog;
pub mod table;
pub mod terminal_pane;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossterm::event::EventStream;
use crossterm::{event as ct_event, execute, queue, terminal as ct_terminal};
use futures_util::StreamExt;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use tokio::signal::unix::{SignalKind, signal};

use app::{App, Msg};
use bioxen_client::{Client, Opening, StartOptions, Update};
use bioxen_config::Config;
use bioxen_config::keymap::Keymap;
use bioxen_proto::{Event, Request, VmInfo, VmRef};
use effect::Runner;

/// Writes a line to stderr if there is one: once the terminal window is closed,
/// stderr is gone, and `eprintln!` would panic on the way out.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// What the server pushes to the dashboard.
type Updates = tokio::sync::mpsc::Receiver<bioxen_client::Update>;

/// How long the first frame waits for the screen of the VM it shows.
const FIRST_SCREEN_WAIT: Duration = Duration::from_millis(100);

/// Which server the dashboard shows, and what it opens on.
#[derive(Debug, Clone)]
pub struct Launch {
    pub socket: PathBuf,
    /// How to start a server when none runs; `None` when one must already run
    /// (`bioxen attach`).
    pub start: Option<StartOptions>,
    /// The VM to select and attach to at once.
    pub attach: Option<String>,
    /// Quitting ends the VMs without asking (`bioxen demo`, whose pool ends with it).
    pub vms_end_on_quit: bool,
    /// Shows everything and changes nothing (`bioxen attach -r`).
    pub read_only: bool,
}

/// Runs the dashboard until the user leaves; restores the terminal in every case.
pub fn run(config: Config, launch: Launch) -> ExitCode {
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
    // Whether the user's terminal shows this dashboard's progress, to clear on the
    // way out: shared by the effects that set it and every path that restores the
    // terminal, the panic hook among them.
    let progress_shown = Arc::new(AtomicBool::new(false));
    install_panic_hook(log_path.clone(), progress_shown.clone());
    let runtime = match bioxen_client::runtime() {
        Ok(r) => r,
        Err(e) => {
            say!("bioxen: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let (server, updates) = connect(&launch).await?;
        let how = How {
            vms_end_on_quit: launch.vms_end_on_quit,
            read_only: launch.read_only,
        };
        dashboard(
            config,
            keymap,
            server,
            updates,
            launch.attach,
            how,
            progress_shown,
        )
        .await
    });
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("bioxen: {}", bioxen_text::sanitize::lines(&e));
            if let Some(p) = log_path {
                say!("(details in {})", p.display());
            }
            ExitCode::FAILURE
        }
    }
}

/// Connects to the server, starting one if allowed and none runs, and subscribes to
/// its events; with a VM to attach to, asks for its screen at once, so that it comes
/// with the list. Nothing waits for the answers here: they are on their way while
/// the dashboard is made.
async fn connect(launch: &Launch) -> Result<(Client, Updates), String> {
    let watch = launch.attach.as_deref().map(watch_on_attach);
    let opening = Opening {
        read_only: launch.read_only,
        first: std::iter::once(Request::Subscribe).chain(watch).collect(),
    };
    let start = launch.start.as_ref();
    Client::connect_with(&launch.socket, "dashboard", start, opening)
        .await
        .map_err(|e| e.to_string())
}

/// The server's updates, with those that came before the first list (the VM's
/// screen) first, in order.
struct Inbox {
    early: std::collections::VecDeque<Update>,
    updates: Updates,
}

impl Inbox {
    async fn recv(&mut self) -> Option<Update> {
        match self.early.pop_front() {
            Some(update) => Some(update),
            None => self.updates.recv().await,
        }
    }

    fn try_recv(&mut self) -> Option<Update> {
        self.early
            .pop_front()
            .or_else(|| self.updates.try_recv().ok())
    }
}

/// Waits for the list the subscription starts with, and checks the VM to attach to
/// is in it. That list, rather than a `List` call beside it, says so: the server
/// sends and the dashboard reads one list of every VM, not two.
async fn first_list(inbox: &mut Inbox, id: &str) -> Result<Vec<VmInfo>, String> {
    let listed = loop {
        match inbox.updates.recv().await {
            Some(Update::Event(Event::Vms(vms))) => break vms,
            Some(Update::Gone(why)) => return Err(why),
            None => return Err("the connection to the bioxen server ended".into()),
            Some(update) => inbox.early.push_back(update),
        }
    };
    if !listed.iter().any(|v| v.name == id) {
        let names: Vec<&str> = listed.iter().map(|v| v.name.as_str()).collect();
        return Err(match names.is_empty() {
            true => format!("no VM named '{id}': the server has none"),
            false => format!("no VM named '{id}'; there are: {}", names.join(", ")),
        });
    }
    Ok(listed)
}

/// What `bioxen attach NAME` asks for with the subscription: the VM's screen, by
/// name. Asked for after the list, it came a round trip and the list's handling
/// later, before the first frame could show it.
pub fn watch_on_attach(name: &str) -> Request {
    Request::Watch {
        vm: VmRef::Name(name.to_string()),
    }
}

/// The dashboard's state before the server's first word: made while that word is
/// on its way.
fn new_app(config: Config, keymap: Keymap, size: Rect, how: &How) -> App {
    let mut app = App::new(keymap, size);
    app.vms_end_on_quit = how.vms_end_on_quit;
    app.read_only = how.read_only;
    app.kinds = std::iter::once(app::KindChoice::Local)
        .chain(
            config
                .ssh_hosts
                .iter()
                .map(|h| app::KindChoice::Ssh(h.name.clone())),
        )
        .chain(
            config
                .xcpng
                .iter()
                .map(|x| app::KindChoice::Xcpng(x.name.clone())),
        )
        .collect();
    app.xcpng_defaults = config
        .xcpng
        .iter()
        .map(|x| (x.name.clone(), (x.template.clone(), x.memory_mib, x.vcpus)))
        .collect();
    if let Some(w) = config.warnings.first() {
        app.set_message(format!("warning: {w}"), app::Level::Error);
    }
    app.config = config;
    app
}

/// How this dashboard was launched, beyond where.
struct How {
    vms_end_on_quit: bool,
    read_only: bool,
}

async fn dashboard(
    config: Config,
    keymap: Keymap,
    server: Client,
    updates: Updates,
    attach: Option<String>,
    how: How,
    progress_shown: Arc<AtomicBool>,
) -> Result<(), String> {
    let (width, height) = ct_terminal::size().map_err(|e| e.to_string())?;
    let size = Rect::new(0, 0, width, height);
    let mouse = config.ui.mouse;
    let mut app = new_app(config, keymap, size, &how);
    let mut inbox = Inbox {
        early: Default::default(),
        updates,
    };
    // A fixed viewport: the dashboard learns its size from resize events, so no frame
    // opens /dev/tty to ask it.
    let frames = FrameWriter::default();
    let mut terminal = Terminal::with_options(
        CrosstermBackend::new(frames.clone()),
        TerminalOptions {
            viewport: Viewport::Fixed(size),
        },
    )
    .map_err(|e| e.to_string())?;
    let listed = match &attach {
        Some(id) => Some(first_list(&mut inbox, id).await?),
        None => None,
    };
    let _guard = TerminalGuard::enter(mouse, progress_shown.clone()).map_err(|e| e.to_string())?;
    let mut runner = Runner::new(server, Arc::new(app.config.clone()), progress_shown);
    if let (Some(id), Some(listed)) = (attach, listed) {
        app.open_on_attach(&id, listed);
    }
    runner.run(app.take_effects());

    // When the terminal closes, crossterm's reader can spin on the hung-up tty inside
    // one poll and never yield back to this loop, and a log on a full disk must not
    // hold it either. The dashboard holds nothing that needs saving (the VMs are the
    // server's), so a watchdog on another thread ends the process if the loop has not
    // ended by itself shortly after SIGHUP or SIGTERM. It logs nothing first: the log
    // may be what is stuck.
    for kind in [SignalKind::hangup(), SignalKind::terminate()] {
        tokio::spawn(async move {
            if let Ok(mut sig) = signal(kind) {
                sig.recv().await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                std::process::exit(0);
            }
        });
    }
    // Made once the first frame is out: its reader thread took a sixth of the time
    // to that frame, and keys typed meanwhile wait in the terminal.
    let mut input: Option<EventStream> = None;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sighup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut last_draw = Instant::now() - app::FRAME;
    // The first frame waits (a little) for the shown VM's screen, so the pane opens
    // with it instead of flashing empty first.
    let mut first_frame = Some(Instant::now() + FIRST_SCREEN_WAIT);

    let mut log_failure_told = false;
    while !app.quit {
        if !log_failure_told && let Some(why) = bioxen_log::failure() {
            log_failure_told = true;
            app.set_message(format!("warning: {why}"), app::Level::Error);
        }
        let draw_at = app.frame_at(last_draw).map(|mut at| {
            if let Some(wait) = first_frame
                && app.awaiting_screen()
            {
                at = at.max(wait);
            }
            tokio::time::Instant::from_std(at)
        });
        // Nothing to draw, so no first frame to wait for: keys now.
        if draw_at.is_none() {
            start_input(&mut input, &mut app, &mut runner);
        }
        let prefix_at = app.prefix_deadline().map(tokio::time::Instant::from_std);
        let tick_at = app.next_tick().map(tokio::time::Instant::from_std);
        tokio::select! {
            biased;
            _ = sleep_until(draw_at), if draw_at.is_some() => {
                if let Err(e) = render(&mut terminal, &frames, &app) {
                    tracing::info!("the terminal cannot be written to ({e}); leaving the VMs running");
                    break;
                }
                app.drawn();
                first_frame = None;
                start_input(&mut input, &mut app, &mut runner);
                // Counted by the grid benchmark (BIOXEN_LOG=trace).
                tracing::trace!("frame");
                last_draw = Instant::now();
                // Test hook: the test of terminal restoration on panic sets this.
                if std::env::var("BIOXEN_TEST_PANIC").as_deref() == Ok("1") {
                    panic!("BIOXEN_TEST_PANIC is set: a deliberate panic after the first frame");
                }
            }
            event = next_input(&mut input), if input.is_some() => match event {
                Some(Ok(ev)) => runner.run(app.update(Msg::Terminal(ev))),
                Some(Err(e)) => {
                    tracing::info!("the terminal cannot be read ({e}); leaving the VMs running");
                    break;
                }
                None => break,
            },
            Some(done) = runner.next(), if !runner.is_idle() => {
                runner.run(app.update(Msg::Done(done)));
            }
            update = inbox.recv() => match update {
                Some(u) => {
                    runner.run(app.update(Msg::Server(u)));
                    // Take what else has arrived before drawing: under a flood, one
                    // pass through the loop for many frames. A frame the user waits
                    // on (an echo, the screen just switched to) goes out first.
                    for _ in 0..64 {
                        if app.urgent {
                            break;
                        }
                        match inbox.try_recv() {
                            Some(u) => runner.run(app.update(Msg::Server(u))),
                            None => break,
                        }
                    }
                }
                None => {
                    app.exit_error = Some("the connection to the bioxen server ended".into());
                    break;
                }
            },
            _ = sleep_until(prefix_at), if prefix_at.is_some() => {
                runner.run(app.update(Msg::PrefixTimeout));
            }
            _ = sleep_until(tick_at), if tick_at.is_some() => runner.run(app.update(Msg::Tick)),
            _ = sigterm.recv() => {
                tracing::info!("SIGTERM: leaving the VMs running in the server");
                break;
            }
            _ = sighup.recv() => {
                tracing::info!("SIGHUP (the terminal closed): leaving the VMs running in the server");
                break;
            }
        }
    }
    match app.exit_error.take() {
        Some(e) => Err(format!(
            "{e}. Its VMs ended with it if it was killed; see `bioxen ls`."
        )),
        None => Ok(()),
    }
}

async fn next_input(input: &mut Option<EventStream>) -> Option<std::io::Result<ct_event::Event>> {
    match input {
        Some(input) => input.next().await,
        None => std::future::pending().await,
    }
}

/// Starts reading the terminal, once. A resize between reading the terminal's size
/// and now came as a signal nothing heard: the size is compared, and a change handled
/// as the reader would have.
fn start_input(input: &mut Option<EventStream>, app: &mut App, runner: &mut Runner) {
    if input.is_some() {
        return;
    }
    *input = Some(EventStream::new());
    if let Ok((width, height)) = ct_terminal::size()
        && (width, height) != (app.area.width, app.area.height)
    {
        let resize = ct_event::Event::Resize(width, height);
        runner.run(app.update(Msg::Terminal(resize)));
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Draws a frame and sends it to the terminal in one write, inside synchronized output.
fn render(
    terminal: &mut Terminal<CrosstermBackend<FrameWriter>>,
    frames: &FrameWriter,
    app: &App,
) -> std::io::Result<()> {
    if terminal.get_frame().area() != app.area {
        terminal.resize(app.area)?;
    }
    queue!(terminal.backend_mut(), ct_terminal::BeginSynchronizedUpdate)?;
    terminal.draw(|frame| draw::draw(frame, app, &app.mirrors))?;
    queue!(terminal.backend_mut(), ct_terminal::EndSynchronizedUpdate)?;
    frames.send()
}

/// Collects a frame's bytes, which ratatui and crossterm write in many small pieces
/// and flush more than once, and sends them at the end in one write: one wake-up of
/// the terminal per frame, not one per kilobyte.
/// The backend holds one handle and the loop another, to send.
#[derive(Default, Clone)]
struct FrameWriter {
    frame: std::rc::Rc<std::cell::RefCell<Vec<u8>>>,
}

impl FrameWriter {
    fn send(&self) -> std::io::Result<()> {
        let mut frame = self.frame.borrow_mut();
        let mut out = std::io::stdout().lock();
        let sent = out.write_all(&frame).and_then(|()| out.flush());
        frame.clear();
        sent
    }
}

impl Write for FrameWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.frame.borrow_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    /// The frame goes out whole, in [`FrameWriter::send`].
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Raw mode and the alternate screen for as long as it lives.
struct TerminalGuard {
    progress_shown: Arc<AtomicBool>,
}

impl TerminalGuard {
    fn enter(mouse: bool, progress_shown: Arc<AtomicBool>) -> std::io::Result<TerminalGuard> {
        ct_terminal::enable_raw_mode()?;
        let guard = TerminalGuard { progress_shown };
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
        restore_terminal(&self.progress_shown);
    }
}

/// Puts the terminal back as it was: safe to call more than once, and from a panic.
fn restore_terminal(progress_shown: &AtomicBool) {
    let mut out = std::io::stdout();
    if progress_shown.swap(false, Ordering::Relaxed) {
        let _ = out.write_all(effect::progress_report(None).as_bytes());
    }
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
fn install_panic_hook(log_path: Option<std::path::PathBuf>, progress_shown: Arc<AtomicBool>) {
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
        restore_terminal(&progress_shown);
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
    let file = bioxen_config::private_fs::open_append(&path).map_err(|e| {
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
    let what = format!("the dashboard's log {}", path.display());
    bioxen_log::install(bioxen_log::LogSink::new(file, what), level).map_err(|e| e.to_string())?;
    // Each dashboard's lines start with the build and pid that wrote them; a log that
    // cannot be written shows so from the first frame.
    tracing::info!(
        "bioxen {} dashboard started (pid {})",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    );
    Ok(path)
}
