//! The dashboard's state and how input changes it.
//!
//! Everything here is synchronous and touches nothing outside: [`App::update`] takes a
//! [`Msg`] (a key, an update from the server, a finished call, a timer), changes the
//! state, marks it dirty, and returns the [`Effect`]s the change calls for. The loop in
//! `ui/mod.rs` carries those out, so the UI never waits on the server and tests drive
//! the app, and read what it asks for, without one.
//!
//! The dashboard holds no VM. It keeps the list the server last sent and a mirror of
//! each screen it shows (a snapshot, then the live bytes), and its own scroll position,
//! so several dashboards on one server each scroll and select on their own.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::effect::{Call, Done, Effect};
use super::grid::Grid;
use super::layout::Areas;
use crate::client::Update;
use crate::config::AlertKind;
use crate::keymap::{Action, Keymap, Mode};
use crate::protocol::{
    Alert, CreateOptions, Event, PoolStatus, PoolVm, Progress, ProgressState, Request, Size,
    SshAnswer, SshQuestion, VmInfo, VmKind, VmState,
};
use crate::term::{Screen, encode};
use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};

/// How long an armed prefix waits for its key.
pub const PREFIX_TIMEOUT: Duration = Duration::from_secs(1);
/// Lines one mouse-wheel step scrolls.
const WHEEL_LINES: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    List,
    Terminal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    Help {
        scroll: u16,
    },
    /// Asking for a package to install into the current VM.
    Install(InstallForm),
    /// luarocks' output while it installs, and how it ended.
    Progress(InstallProgress),
    Create(CreateForm),
    Confirm(Confirm),
    /// Every tab in a list to pick from, as tmux's choose-tree.
    Chooser(Chooser),
    /// A new name for a VM.
    Rename {
        id: String,
        name: String,
    },
}

/// A search in the scrollback of the VM shown (`/` down, `?` up, `n` and `N` again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    pub query: String,
    /// The query is being typed.
    pub editing: bool,
    pub backward: bool,
    /// The line (see [`Screen::line_numbers`]) and column of the last match.
    pub found: Option<(u64, usize)>,
    /// The last search found nothing.
    pub missed: bool,
}

/// The tab chooser: typing filters, the arrows move, Enter shows the choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chooser {
    pub filter: String,
    /// Index into [`App::chooser_items`].
    pub selected: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallForm {
    pub vm: String,
    pub name: String,
    pub version: String,
    /// 0: name, 1: version.
    pub field: usize,
    /// Why the last Enter was refused (an invalid name).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallProgress {
    pub vm: String,
    pub package: String,
    /// luarocks' output so far.
    pub output: String,
    /// `(success, summary)` once it finished.
    pub done: Option<(bool, String)>,
}

/// A kind of VM the create dialog offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindChoice {
    Local,
    /// An `[[ssh_hosts]]` entry, by name.
    Ssh(String),
    Xcpng,
}

impl KindChoice {
    pub fn label(&self) -> String {
        match self {
            KindChoice::Local => "local".into(),
            KindChoice::Ssh(name) => format!("ssh: {name}"),
            KindChoice::Xcpng => "xcpng (new pool VM)".into(),
        }
    }
}

/// The fields of the create dialog, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Kind,
    Name,
    Template,
    Memory,
    Vcpus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateForm {
    pub kinds: Vec<KindChoice>,
    pub kind: usize,
    pub name: String,
    /// The generated name used when `name` is left empty.
    pub placeholder: String,
    pub field: Field,
    pub template: String,
    pub memory: String,
    pub vcpus: String,
}

impl CreateForm {
    pub fn choice(&self) -> &KindChoice {
        self.kinds.get(self.kind).unwrap_or(&KindChoice::Local)
    }

    /// The fields shown for the chosen kind.
    pub fn fields(&self) -> Vec<Field> {
        match self.choice() {
            KindChoice::Xcpng => vec![
                Field::Kind,
                Field::Name,
                Field::Template,
                Field::Memory,
                Field::Vcpus,
            ],
            _ => vec![Field::Kind, Field::Name],
        }
    }

    fn text_mut(&mut self) -> Option<&mut String> {
        match self.field {
            Field::Kind => None,
            Field::Name => Some(&mut self.name),
            Field::Template => Some(&mut self.template),
            Field::Memory => Some(&mut self.memory),
            Field::Vcpus => Some(&mut self.vcpus),
        }
    }

    /// Whether `c` may be typed into the current field.
    fn accepts(&self, c: char) -> bool {
        match self.field {
            Field::Kind => false,
            Field::Name => c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'),
            Field::Template => !c.is_control(),
            Field::Memory | Field::Vcpus => c.is_ascii_digit(),
        }
    }
}

/// An SSH question waiting for the user (asked by the server, answered by whichever
/// dashboard answers first).
pub struct Prompt {
    pub id: u64,
    pub question: SshQuestion,
    /// What has been typed (a passphrase; never drawn in clear).
    pub input: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    Kill {
        id: String,
        pid: Option<u32>,
    },
    /// Kill or remove an `xcpng` session: destroy its pool VM, or only close the session.
    KillPool {
        id: String,
        alive: bool,
    },
    Remove {
        id: String,
    },
    /// Restart a VM that is still running: end it first.
    Restart {
        id: String,
    },
    /// Leaving the dashboard with VMs running: leave them in the server (the default)
    /// or end them. Counts local VMs and remote sessions.
    Quit {
        running: usize,
        remote: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

/// A row of the VM list: a session, or a pool VM without one.
#[derive(Debug, Clone, Copy)]
pub enum Row<'a> {
    Session(&'a VmInfo),
    Pool(&'a PoolVm),
}

impl Row<'_> {
    pub fn id(&self) -> &str {
        match self {
            Row::Session(i) => &i.id,
            Row::Pool(vm) => vm.bioxen_id.as_deref().unwrap_or(&vm.name),
        }
    }

    pub fn kind(&self) -> VmKind {
        match self {
            Row::Session(i) => i.kind,
            Row::Pool(_) => VmKind::Xcpng,
        }
    }

    pub fn state_label(&self) -> String {
        match self {
            Row::Session(i) => i.state.label(),
            Row::Pool(vm) => format!("detached {}", vm.power_state.to_lowercase()),
        }
    }
}

/// What the tab bar says about the pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolView {
    pub status: PoolStatus,
    pub vms: usize,
}

/// How long a VM's progress shows after its last report: terminals time progress
/// out likewise, so a VM that stopped reporting does not look stuck at 42 %.
pub const PROGRESS_STALE: Duration = Duration::from_secs(15);

/// Alerts a VM raised that the user has not looked at yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    pub bell: bool,
    pub silence: bool,
    /// Back at its prompt after running something.
    pub idle: bool,
    pub exit: bool,
}

impl Marks {
    /// Flags as tmux shows them beside window names (`!` bell, `~` silence), with `✓`
    /// for back at the prompt and `✖` for ended.
    pub fn flags(&self) -> String {
        [
            (self.bell, '!'),
            (self.silence, '~'),
            (self.idle, '✓'),
            (self.exit, '✖'),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, c)| *c)
        .collect()
    }
}

/// A tab: one VM, or a grid of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TabId {
    Vm(String),
    Grid(usize),
}

/// What can change the dashboard's state.
#[derive(Debug)]
pub enum Msg {
    /// A key, a paste, a mouse event or a resize from the user's terminal.
    Terminal(TermEvent),
    /// What the server pushed.
    Server(Update),
    /// A call the dashboard made has ended.
    Done(Done),
    /// The time [`App::next_tick`] named has come.
    Tick,
    /// The time [`App::prefix_deadline`] named has come.
    PrefixTimeout,
}

pub struct App {
    pub keymap: Keymap,
    /// The configuration, for what the create dialog says each kind runs.
    pub config: crate::config::Config,
    /// The sessions, as the server last listed them (uptimes advanced locally).
    pub rows: Vec<VmInfo>,
    /// The list as received, and when: uptimes count on from there.
    received: (Vec<VmInfo>, Instant),
    /// Mirrors of the screens this dashboard shows, by session.
    pub mirrors: HashMap<String, Screen>,
    /// Sessions whose screens the server sends this dashboard.
    /// With whether the server sends every byte (the VM keys go to) or, for the other
    /// tiles of a grid, a glance at the screen each frame.
    watching: HashMap<String, bool>,
    /// The size this dashboard last gave each session.
    sizes: HashMap<String, Size>,
    /// Grid tabs, after the VMs' tabs.
    pub grids: Vec<Grid>,
    /// The grid shown, if a grid tab is selected; its focused tile is `current`.
    pub grid: Option<usize>,
    /// VMs marked in the list for the next grid.
    pub marked: HashSet<String>,
    /// Alerts of VMs the user has not looked at since.
    pub marks: HashMap<String, Marks>,
    /// When each VM's progress last came (its report count, and when it changed): a
    /// report older than [`PROGRESS_STALE`] is no longer shown.
    progress_seen: HashMap<String, (u64, Instant)>,
    /// The overall progress last sent to the user's terminal.
    outer_progress: Option<Progress>,
    /// Each row's progress as last drawn, to redraw when one goes stale.
    drawn_progress: Vec<Option<Progress>>,
    /// The VM selected in the list and shown in the terminal pane.
    pub current: Option<String>,
    pub focus: Focus,
    pub prefix_since: Option<Instant>,
    /// Lines scrolled back in the terminal pane; `None` is the live view.
    pub scroll: Option<usize>,
    /// A search in scrollback: what, which way, and the line last found.
    pub search: Option<Search>,
    /// Lines being selected in scrollback for copying: where the selection started and
    /// the line it reaches now (numbered as [`Screen::line_numbers`] says).
    pub selection: Option<(u64, u64)>,
    /// The shown screen's [`Screen::rows_scrolled`] when `scroll` was last set: rows
    /// arriving later move the offset with them, so the view stays put.
    scroll_base: u64,
    pub overlay: Option<Overlay>,
    pub filter: String,
    pub filter_editing: bool,
    pub zoom: bool,
    pub mouse: bool,
    pub message: Option<(String, Level)>,
    /// VMs with output the user has not looked at.
    pub unseen: HashSet<String>,
    /// The whole terminal.
    pub area: Rect,
    /// The size every session's PTY currently has.
    pub pane_size: Size,
    pub dirty: bool,
    /// The next frame should not wait out the frame interval: a VM's screen has just
    /// arrived where the pane showed none. Frames are paced to coalesce streams of
    /// output; a first screen is a one-off, and reattaching is timed by it.
    pub urgent: bool,
    pub quit: bool,
    /// Set while VMs are being ended before quitting.
    pub quitting: bool,
    /// Why the dashboard had to stop (the server went away), said after the terminal
    /// is restored.
    pub exit_error: Option<String>,
    /// The pool's state for the tab bar, when `[xcpng]` is configured.
    pub pool: Option<PoolView>,
    /// A warning that stays on screen while it holds (unverified TLS).
    pub warning: Option<String>,
    /// The pool's VMs, from the event cache.
    pub pool_vms: Vec<PoolVm>,
    /// Questions from SSH connections (host keys, passphrases), oldest first.
    pub prompts: std::collections::VecDeque<Prompt>,
    /// Kinds the create dialog offers.
    pub kinds: Vec<KindChoice>,
    /// Defaults for new `xcpng` VMs: template, memory MiB, vCPUs.
    pub xcpng_defaults: Option<(String, u64, u32)>,
    /// Labels of the uptime column as last drawn, to redraw only when one changes.
    drawn_uptimes: Vec<String>,
    /// What the changes since the last [`App::update`] call for.
    effects: Vec<Effect>,
}

impl App {
    pub fn new(keymap: Keymap, area: Rect, mouse: bool) -> App {
        let mut app = App {
            keymap,
            config: crate::config::Config::default(),
            rows: Vec::new(),
            received: (Vec::new(), Instant::now()),
            mirrors: HashMap::new(),
            watching: HashMap::new(),
            sizes: HashMap::new(),
            grids: Vec::new(),
            grid: None,
            marked: HashSet::new(),
            marks: HashMap::new(),
            progress_seen: HashMap::new(),
            outer_progress: None,
            drawn_progress: Vec::new(),
            current: None,
            focus: Focus::List,
            prefix_since: None,
            scroll: None,
            scroll_base: 0,
            search: None,
            selection: None,
            overlay: None,
            filter: String::new(),
            filter_editing: false,
            zoom: false,
            mouse,
            message: None,
            unseen: HashSet::new(),
            area,
            pane_size: Size::default(),
            dirty: true,
            urgent: false,
            quit: false,
            quitting: false,
            exit_error: None,
            pool: None,
            warning: None,
            pool_vms: Vec::new(),
            prompts: std::collections::VecDeque::new(),
            kinds: vec![KindChoice::Local],
            xcpng_defaults: None,
            drawn_uptimes: Vec::new(),
            effects: Vec::new(),
        };
        app.pane_size = app.areas().pane_size();
        app.refresh();
        app
    }

    /// Takes one message, and returns what it calls for.
    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Terminal(event) => self.on_terminal_event(event),
            Msg::Server(update) => self.on_update(update),
            Msg::Done(done) => self.on_done(done),
            Msg::Tick => self.on_tick(),
            Msg::PrefixTimeout => self.expire_prefix(),
        }
        self.take_effects()
    }

    /// What the changes made so far call for: those made outside [`App::update`], by
    /// the setters start-up uses.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    fn notify(&mut self, request: Request) {
        self.effects.push(Effect::Notify(request));
    }

    fn call(&mut self, call: Call) {
        self.effects.push(Effect::Call(call));
    }

    pub fn areas(&self) -> Areas {
        match self.grid {
            Some(_) => Areas::grid(self.area),
            None => Areas::new(self.area, self.zoom),
        }
    }

    /// The grid shown, if any.
    pub fn shown_grid(&self) -> Option<&Grid> {
        self.grids.get(self.grid?)
    }

    /// The tiles of the grid shown, where they are drawn.
    pub fn tiles(&self) -> Vec<super::grid::Tile> {
        self.shown_grid()
            .map(|g| g.tiles(self.areas().pane))
            .unwrap_or_default()
    }

    /// Takes a new VM list from the server.
    pub fn set_rows(&mut self, rows: Vec<VmInfo>) {
        self.received = (rows.clone(), Instant::now());
        for row in &rows {
            match row.progress {
                Some(_) => {
                    let seen = self.progress_seen.get(&row.id).map(|s| s.0);
                    if seen != Some(row.progress_seq) {
                        self.progress_seen
                            .insert(row.id.clone(), (row.progress_seq, Instant::now()));
                    }
                }
                None => {
                    self.progress_seen.remove(&row.id);
                }
            }
        }
        self.rows = rows;
        self.refresh();
        self.report_progress();
    }

    /// A VM's progress as the dashboard shows it: its last report, unless stale.
    pub fn progress(&self, info: &VmInfo) -> Option<Progress> {
        let (_, at) = self.progress_seen.get(&info.id)?;
        info.progress.filter(|_| at.elapsed() < PROGRESS_STALE)
    }

    /// The running VMs' progress taken together, for the user's terminal tab: the mean
    /// of their percentages, in error if one is, paused if one is.
    pub fn overall_progress(&self) -> Option<Progress> {
        let all: Vec<Progress> = self
            .rows
            .iter()
            .filter(|r| r.state.is_alive())
            .filter_map(|r| self.progress(r))
            .collect();
        let has = |s: ProgressState| all.iter().any(|p| p.state == s);
        let counted: Vec<u32> = all
            .iter()
            .filter(|p| p.state != ProgressState::Indeterminate)
            .map(|p| u32::from(p.percent))
            .collect();
        let state = if all.is_empty() {
            return None;
        } else if has(ProgressState::Error) {
            ProgressState::Error
        } else if has(ProgressState::Paused) {
            ProgressState::Paused
        } else if counted.is_empty() {
            ProgressState::Indeterminate
        } else {
            ProgressState::Normal
        };
        let percent = match counted.len() {
            0 => 0,
            n => (counted.iter().sum::<u32>() / n as u32) as u8,
        };
        Some(Progress { state, percent })
    }

    /// Sends the overall progress to the user's terminal when it changed.
    fn report_progress(&mut self) {
        if !self.config.ui.progress {
            return;
        }
        let now = self.overall_progress();
        if now != self.outer_progress {
            self.outer_progress = now;
            self.effects.push(Effect::OuterProgress(now));
        }
    }

    /// An alert from a VM: marked unless it is the one in front of the user, said in
    /// the status bar when it carries words, and forwarded to the user's terminal if
    /// `[ui] notify` asks for it.
    fn on_alert(&mut self, id: String, alert: Alert) {
        let (kind, text) = match &alert {
            Alert::Bell => (AlertKind::Bell, format!("{id}: bell")),
            Alert::Note(note) => (AlertKind::Note, format!("{id}: {note}")),
            Alert::Idle => (AlertKind::Idle, format!("{id}: back at its prompt")),
            Alert::Silence(secs) => (AlertKind::Silence, format!("{id}: no output for {secs} s")),
        };
        if self.current.as_ref() != Some(&id) {
            let marks = self.marks.entry(id.clone()).or_default();
            match alert {
                Alert::Bell => marks.bell = true,
                Alert::Idle => marks.idle = true,
                Alert::Silence(_) => marks.silence = true,
                Alert::Note(_) => {}
            }
        }
        if matches!(kind, AlertKind::Note | AlertKind::Silence) {
            self.set_message(text.clone(), Level::Info);
        }
        self.forward(kind, text);
        self.dirty = true;
    }

    fn forward(&mut self, kind: AlertKind, text: String) {
        if self.config.ui.notify.includes(kind) {
            self.effects.push(Effect::Desktop(text));
        }
    }

    /// Keeps the selection, the grids, the marks and the mirrors in step with the list.
    pub fn refresh(&mut self) {
        self.prune_grids();
        if self.grid.is_none()
            && let Some(id) = &self.current
            && !self.visible().iter().any(|r| r.id() == id)
            && !self.rows.iter().any(|r| &r.id == id)
        {
            self.current = None;
        }
        if self.current.is_none() {
            self.current = self.visible().first().map(|r| r.id().to_string());
            if self.current.is_none() {
                self.focus = Focus::List;
            }
        }
        let rows = &self.rows;
        self.unseen.retain(|id| rows.iter().any(|r| &r.id == id));
        self.marks.retain(|id, _| rows.iter().any(|r| &r.id == id));
        self.marked.retain(|id| rows.iter().any(|r| &r.id == id));
        self.sync_view(false);
        self.dirty = true;
    }

    /// Grids keep only VMs that still exist, and a grid left empty closes.
    fn prune_grids(&mut self) {
        let rows = &self.rows;
        let exists = |id: &String| rows.iter().any(|r| &r.id == id);
        for g in &mut self.grids {
            let focused = g.focused().map(str::to_string);
            g.vms.retain(exists);
            g.excluded.retain(exists);
            g.focus = focused
                .and_then(|f| g.vms.iter().position(|v| *v == f))
                .unwrap_or(g.focus.min(g.vms.len().saturating_sub(1)));
        }
        let shown = self.grid.take();
        let mut kept = 0;
        for (i, g) in std::mem::take(&mut self.grids).into_iter().enumerate() {
            if g.vms.is_empty() {
                continue;
            }
            if shown == Some(i) {
                self.grid = Some(kept);
            }
            self.grids.push(g);
            kept += 1;
        }
        if shown.is_some() && self.grid.is_none() {
            self.focus = Focus::List;
        }
        if let Some(id) = self.shown_grid().and_then(Grid::focused) {
            self.current = Some(id.to_string());
        }
    }

    /// Watches exactly the sessions this dashboard shows (the selected one, or the
    /// tiles of the grid shown) and sizes them: the server sends their screens, and
    /// only theirs. A session newly shown takes its pane's or tile's size: the latest
    /// dashboard to look at a VM sizes it (tmux's `window-size latest`). A session this
    /// dashboard sized for a tile goes back to the pane's size when the tile goes; with
    /// `all` (the window or the list changed size), every session does.
    fn sync_view(&mut self, all: bool) {
        let pane = Areas::new(self.area, self.zoom).pane_size();
        self.pane_size = pane;
        let mut shown: HashMap<String, Size> = HashMap::new();
        match self.shown_grid() {
            Some(g) => {
                for t in g.tiles(self.areas().pane) {
                    shown.insert(g.vms[t.index].clone(), t.size());
                }
            }
            None => {
                if let Some(id) = &self.current {
                    shown.insert(id.clone(), pane);
                }
            }
        }
        shown.retain(|id, _| self.rows.iter().any(|r| &r.id == id));
        let gone: Vec<String> = self
            .watching
            .keys()
            .filter(|id| !shown.contains_key(*id))
            .cloned()
            .collect();
        for id in gone {
            self.watching.remove(&id);
            self.mirrors.remove(&id);
            if self.rows.iter().any(|r| r.id == id) {
                self.notify(Request::Unwatch { id });
            }
        }
        // A session newly shown is sized by this dashboard again (`latest`).
        let new: Vec<String> = shown
            .keys()
            .filter(|id| !self.watching.contains_key(*id))
            .cloned()
            .collect();
        for id in &new {
            self.sizes.remove(id);
        }
        for row in &self.rows {
            let want = shown.get(&row.id).copied().unwrap_or(pane);
            let sent = self.sizes.get(&row.id).copied();
            let due = all || sent.is_some() || shown.contains_key(&row.id);
            if due && sent != Some(want) {
                self.effects.push(Effect::Notify(Request::Resize {
                    id: row.id.clone(),
                    rows: want.rows,
                    cols: want.cols,
                }));
                self.sizes.insert(row.id.clone(), want);
            }
        }
        let rows = &self.rows;
        self.sizes.retain(|id, _| rows.iter().any(|r| &r.id == id));
        // Every byte for the VM keys go to (its screen must be exact for typing and
        // scrollback); the other tiles of a grid a glance each frame.
        let (in_grid, current) = (self.grid.is_some(), self.current.clone());
        let mut ids: Vec<String> = shown.keys().cloned().collect();
        ids.sort();
        for id in ids {
            let want = !in_grid || current.as_ref() == Some(&id);
            if self.watching.insert(id.clone(), want) != Some(want) {
                self.notify(match want {
                    true => Request::Watch { id },
                    false => Request::Glance { id },
                });
            }
        }
    }

    /// Whether the pane shows a VM whose screen the server has not sent yet.
    pub fn awaiting_screen(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|id| self.watching.contains_key(id) && !self.mirrors.contains_key(id))
    }

    /// List rows that pass the filter: sessions first, then the pool's bioxen VMs that
    /// have no session here (detached).
    pub fn visible(&self) -> Vec<Row<'_>> {
        let f = self.filter.to_lowercase();
        let sessions = self.rows.iter().map(Row::Session);
        let detached = self.detached_pool_vms().into_iter().map(Row::Pool);
        sessions
            .chain(detached)
            .filter(|r| {
                f.is_empty()
                    || r.id().to_lowercase().contains(&f)
                    || r.kind().as_str().contains(&f)
                    || r.state_label().contains(&f)
            })
            .collect()
    }

    /// Pool VMs tagged by bioxen with no session in this dashboard.
    pub fn detached_pool_vms(&self) -> Vec<&PoolVm> {
        self.pool_vms
            .iter()
            .filter(|vm| vm.bioxen_id.is_some())
            .filter(|vm| {
                !self
                    .rows
                    .iter()
                    .any(|r| r.pool_vm.as_deref() == Some(vm.reference.as_str()))
            })
            .filter(|vm| {
                !self
                    .rows
                    .iter()
                    .any(|r| Some(&r.id) == vm.bioxen_id.as_ref())
            })
            .collect()
    }

    /// The pool's view of an `xcpng` session's VM.
    pub fn pool_vm_of(&self, info: &VmInfo) -> Option<&PoolVm> {
        let reference = info.pool_vm.as_ref()?;
        self.pool_vms.iter().find(|vm| &vm.reference == reference)
    }

    /// The selected row, whatever it is.
    pub fn current_row(&self) -> Option<Row<'_>> {
        let id = self.current.as_ref()?;
        self.visible().into_iter().find(|r| r.id() == id)
    }

    pub fn current_info(&self) -> Option<&VmInfo> {
        let id = self.current.as_ref()?;
        self.rows.iter().find(|r| &r.id == id)
    }

    /// Shows a message in the status bar. It may quote a pool's or a VM's words, so it
    /// is made safe for the terminal first.
    pub fn set_message(&mut self, text: impl Into<String>, level: Level) {
        self.message = Some((crate::sanitize::line(&text.into()), level));
        self.dirty = true;
    }

    // ----- events from the terminal ---------------------------------------------------

    fn on_terminal_event(&mut self, event: TermEvent) {
        match event {
            TermEvent::Key(key) if key.kind != KeyEventKind::Release => self.on_key(key),
            TermEvent::Paste(text) => self.on_paste(&text),
            TermEvent::Mouse(m) => self.on_mouse(m),
            TermEvent::Resize(w, h) => self.on_resize(w, h),
            TermEvent::FocusGained | TermEvent::FocusLost | TermEvent::Key(_) => {}
        }
    }

    pub fn on_resize(&mut self, width: u16, height: u16) {
        self.area = Rect::new(0, 0, width, height);
        self.apply_pane_size();
    }

    /// Gives every session the terminal pane's size, so switching tabs never shows a
    /// screen laid out for another size.
    fn apply_pane_size(&mut self) {
        self.sync_view(true);
        self.dirty = true;
    }

    pub fn on_key(&mut self, key: KeyEvent) {
        self.dirty = true;
        if !self.prompts.is_empty() {
            return self.on_prompt_key(key);
        }
        if self.overlay.is_some() {
            return self.on_overlay_key(key);
        }
        if self.filter_editing {
            return self.on_filter_key(key);
        }
        match self.focus {
            Focus::List => self.on_list_key(key),
            Focus::Terminal => self.on_terminal_key(key),
        }
    }

    fn on_list_key(&mut self, key: KeyEvent) {
        if key.code == KeyCode::Esc {
            self.message = None;
            if !self.filter.is_empty() {
                self.filter.clear();
            }
            return;
        }
        match self.keymap.action(Mode::List, &key) {
            Some(Action::Up) => self.move_selection(-1),
            Some(Action::Down) => self.move_selection(1),
            Some(Action::Attach) => self.attach_current(),
            Some(Action::Create) => self.open_create(),
            Some(Action::Kill) => self.ask_kill(),
            Some(Action::Restart) => self.restart_current(),
            Some(Action::Filter) => {
                self.filter_editing = true;
            }
            Some(Action::ToggleLog) => self.toggle_log(),
            Some(Action::Install) => self.open_install(),
            Some(Action::Zoom) => self.toggle_zoom(),
            Some(Action::Help) => self.overlay = Some(Overlay::Help { scroll: 0 }),
            Some(Action::Quit) => self.ask_quit(),
            Some(Action::Mark) => self.toggle_mark(),
            Some(Action::Rename) => self.open_rename(),
            Some(Action::MarkAll) => self.mark_all(),
            Some(Action::Grid) => self.open_grid(),
            _ => {
                if let Some(d) = Keymap::digit(&key) {
                    self.select_tab(d);
                }
            }
        }
    }

    fn on_terminal_key(&mut self, key: KeyEvent) {
        if let Some(since) = self.prefix_since.take() {
            if since.elapsed() <= PREFIX_TIMEOUT {
                return self.on_prefix_key(key);
            }
        }
        if self.keymap.prefix.matches(&key) {
            self.prefix_since = Some(Instant::now());
            return;
        }
        if self.scroll.is_some() && self.on_scroll_key(&key) {
            return;
        }
        self.scroll = None;
        let modes = self.current_modes();
        if let Some(bytes) = encode::key(&key, modes) {
            self.send(&bytes);
        }
    }

    fn on_prefix_key(&mut self, key: KeyEvent) {
        if key.code == KeyCode::Esc {
            return;
        }
        if let Some(d) = Keymap::digit(&key) {
            return self.select_tab(d);
        }
        match self.keymap.action(Mode::Prefix, &key) {
            Some(Action::Detach) => self.detach(),
            Some(Action::Create) => self.open_create(),
            Some(Action::Kill) => self.ask_kill(),
            Some(Action::NextTab) => self.cycle_tab(1),
            Some(Action::PrevTab) => self.cycle_tab(-1),
            Some(Action::Scrollback) => self.enter_scroll(0),
            Some(Action::Zoom) if self.grid.is_some() => {
                self.with_grid(|g, _| g.zoomed = !g.zoomed);
            }
            Some(Action::Zoom) => self.toggle_zoom(),
            Some(Action::Grid) => self.open_grid(),
            Some(Action::FocusLeft) => self.step_tile(-1, 0),
            Some(Action::FocusRight) => self.step_tile(1, 0),
            Some(Action::FocusUp) => self.step_tile(0, -1),
            Some(Action::FocusDown) => self.step_tile(0, 1),
            Some(Action::Layout) => self.with_grid(|g, _| g.layout = g.layout.next()),
            Some(Action::Broadcast) => self.with_grid(|g, _| g.broadcast = !g.broadcast),
            Some(Action::Exclude) => self.with_grid(|g, id| {
                if !g.excluded.remove(id) {
                    g.excluded.insert(id.to_string());
                }
            }),
            Some(Action::CloseGrid) => self.close_grid(),
            Some(Action::Silence) => self.cycle_silence(),
            Some(Action::Rename) => self.open_rename(),
            Some(Action::Choose) => {
                let selected = self
                    .current_tab()
                    .and_then(|tab| self.chooser_items("").iter().position(|(t, _)| *t == tab));
                self.overlay = Some(Overlay::Chooser(Chooser {
                    filter: String::new(),
                    selected: selected.unwrap_or(0),
                }));
            }
            Some(Action::ToggleLog) => self.toggle_log(),
            Some(Action::Install) => self.open_install(),
            Some(Action::Help) => self.overlay = Some(Overlay::Help { scroll: 0 }),
            Some(Action::SendPrefix) => {
                let modes = self.current_modes();
                let prefix = KeyEvent::new(self.keymap.prefix.code, self.keymap.prefix.mods);
                if let Some(bytes) = encode::key(&prefix, modes) {
                    self.send(&bytes);
                }
            }
            _ => {}
        }
    }

    /// Keys in scrollback mode. Only q and Esc leave it; other keys do nothing, and
    /// never reach the VM.
    fn on_scroll_key(&mut self, key: &KeyEvent) -> bool {
        if let Some(search) = self.search.as_mut().filter(|s| s.editing) {
            match key.code {
                KeyCode::Esc => self.search = None,
                KeyCode::Enter => {
                    search.editing = false;
                    let backward = search.backward;
                    self.search_again(backward);
                }
                KeyCode::Backspace => {
                    search.query.pop();
                }
                KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                    search.query.push(c)
                }
                _ => {}
            }
            return true;
        }
        if self.selection.is_some() {
            self.on_selection_key(key);
            return true;
        }
        match key.code {
            KeyCode::Char('v' | 'V') => {
                self.start_selection();
                return true;
            }
            KeyCode::Char(c @ ('/' | '?')) => {
                self.search = Some(Search {
                    editing: true,
                    backward: c == '?',
                    ..Search::default()
                });
                return true;
            }
            KeyCode::Char(c @ ('n' | 'N')) => {
                if let Some(backward) = self.search.as_ref().map(|s| s.backward) {
                    self.search_again(backward == (c == 'n'));
                }
                return true;
            }
            _ => {}
        }
        let page = self.pane_size.rows.saturating_sub(1).max(1) as isize;
        let delta = match key.code {
            KeyCode::PageUp => page,
            KeyCode::PageDown => -page,
            KeyCode::Up | KeyCode::Char('k') => 1,
            KeyCode::Down | KeyCode::Char('j') => -1,
            KeyCode::Home | KeyCode::Char('g') => isize::MAX / 2,
            KeyCode::End | KeyCode::Char('G') => isize::MIN / 2,
            KeyCode::Char('q') | KeyCode::Esc => {
                self.scroll = None;
                self.search = None;
                self.selection = None;
                return true;
            }
            _ => return true,
        };
        self.scroll_by(delta);
        true
    }

    /// Starts selecting lines at the last match of a search, or at the view's last line
    /// with text.
    fn start_selection(&mut self) {
        let Some(screen) = self.current.as_ref().and_then(|id| self.mirrors.get(id)) else {
            return;
        };
        let (_, live) = screen.line_numbers();
        let offset = self.scroll.unwrap_or(0).min(screen.scrollback_len()) as u64;
        let top = live - offset;
        let rows = u64::from(screen.size().rows);
        let bottom = (top..top + rows)
            .rev()
            .find(|line| !screen.text_of_lines(*line, *line).is_empty())
            .unwrap_or(top);
        let at = match self.search.as_ref().and_then(|s| s.found) {
            Some((line, _)) if (top..top + rows).contains(&line) => line,
            _ => bottom,
        };
        self.selection = Some((at, at));
        self.dirty = true;
    }

    /// Keys while selecting: up and down extend the selection (scrolling as it leaves
    /// the view), y or Enter copies it to the clipboard, Esc drops it.
    fn on_selection_key(&mut self, key: &KeyEvent) {
        let Some((anchor, at)) = self.selection else {
            return;
        };
        let Some(id) = self.current.clone() else {
            return;
        };
        let Some(screen) = self.mirrors.get(&id) else {
            return;
        };
        let (first, live) = screen.line_numbers();
        let last = live + u64::from(screen.size().rows) - 1;
        let step = |n: i64| (at as i64 + n).clamp(first as i64, last as i64) as u64;
        let page = i64::from(self.pane_size.rows.saturating_sub(1).max(1));
        let to = match key.code {
            KeyCode::Up | KeyCode::Char('k') => step(-1),
            KeyCode::Down | KeyCode::Char('j') => step(1),
            KeyCode::PageUp => step(-page),
            KeyCode::PageDown => step(page),
            KeyCode::Char('y') | KeyCode::Enter => {
                let text = screen.text_of_lines(anchor, at);
                let lines = anchor.abs_diff(at) + 1;
                self.effects.push(Effect::Clipboard(text));
                self.selection = None;
                let s = if lines == 1 { "" } else { "s" };
                return self.set_message(
                    format!("copied {lines} line{s} to the clipboard (through your terminal)"),
                    Level::Info,
                );
            }
            KeyCode::Esc | KeyCode::Char('q') => {
                self.selection = None;
                self.dirty = true;
                return;
            }
            _ => return,
        };
        // Keep the line reached in view.
        let offset = self.scroll.unwrap_or(0) as u64;
        let top = live - offset.min(live - first);
        let rows = u64::from(self.pane_size.rows);
        let offset = if to < top {
            live - to
        } else if to >= top + rows {
            (live + rows).saturating_sub(to + 1)
        } else {
            offset
        };
        self.scroll = Some(offset as usize);
        self.scroll_base = screen.rows_scrolled();
        self.selection = Some((anchor, to));
        self.dirty = true;
    }

    /// Finds the query again, from the last match or from the top of the view, and
    /// scrolls so the line found is at the top (or on the live screen).
    fn search_again(&mut self, backward: bool) {
        let (Some(id), Some(search)) = (self.current.clone(), self.search.clone()) else {
            return;
        };
        let Some(screen) = self.mirrors.get(&id) else {
            return;
        };
        let (first, live) = screen.line_numbers();
        let offset = self.scroll.unwrap_or(0).min(screen.scrollback_len()) as u64;
        let top = live - offset;
        let from = search.found.map(|(line, _)| line).unwrap_or(top);
        let found = screen.find(&search.query, Some(from.max(first)), backward);
        let scroll = found.map(|(line, _)| live.saturating_sub(line) as usize);
        let base = screen.rows_scrolled();
        if let Some(s) = self.search.as_mut() {
            s.backward = search.backward;
            s.missed = found.is_none();
            if found.is_some() {
                s.found = found;
            }
        }
        if let Some(scroll) = scroll {
            self.scroll = Some(scroll);
            self.scroll_base = base;
        }
        self.dirty = true;
    }

    fn enter_scroll(&mut self, by: isize) {
        self.scroll = Some(0);
        self.scroll_by(by);
    }

    fn scroll_by(&mut self, delta: isize) {
        let Some(id) = self.current.clone() else {
            return;
        };
        let max = self.mirrors.get(&id).map_or(0, |s| s.scrollback_len());
        self.scroll_base = self.mirrors.get(&id).map_or(0, |s| s.rows_scrolled());
        let now = self.scroll.unwrap_or(0) as isize;
        let next = (now.saturating_add(delta)).clamp(0, max as isize) as usize;
        self.scroll = Some(next);
        self.dirty = true;
    }

    fn on_filter_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Esc => {
                self.filter.clear();
                self.filter_editing = false;
            }
            KeyCode::Enter => self.filter_editing = false,
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.filter.push(c)
            }
            _ => {}
        }
        // Keep the selection on a visible row.
        let visible: Vec<String> = self.visible().iter().map(|r| r.id().to_string()).collect();
        if self.current.as_ref().is_none_or(|c| !visible.contains(c)) {
            self.current = visible.first().cloned();
        }
    }

    fn on_overlay_key(&mut self, key: KeyEvent) {
        let Some(overlay) = self.overlay.take() else {
            return;
        };
        match overlay {
            Overlay::Help { scroll } => match key.code {
                KeyCode::Down | KeyCode::Char('j') => {
                    self.overlay = Some(Overlay::Help { scroll: scroll + 1 })
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    self.overlay = Some(Overlay::Help {
                        scroll: scroll.saturating_sub(1),
                    })
                }
                KeyCode::PageDown => {
                    self.overlay = Some(Overlay::Help {
                        scroll: scroll + 10,
                    })
                }
                KeyCode::PageUp => {
                    self.overlay = Some(Overlay::Help {
                        scroll: scroll.saturating_sub(10),
                    })
                }
                _ => {}
            },
            Overlay::Create(mut form) => {
                let fields = form.fields();
                let pos = fields.iter().position(|f| *f == form.field).unwrap_or(0);
                match key.code {
                    KeyCode::Esc => return,
                    KeyCode::Enter => return self.create(form),
                    KeyCode::Up | KeyCode::BackTab => {
                        form.field = fields[(pos + fields.len() - 1) % fields.len()]
                    }
                    KeyCode::Down | KeyCode::Tab => form.field = fields[(pos + 1) % fields.len()],
                    KeyCode::Left | KeyCode::Right
                        if form.field == Field::Kind && !form.kinds.is_empty() =>
                    {
                        let n = form.kinds.len();
                        form.kind = if key.code == KeyCode::Left {
                            (form.kind + n - 1) % n
                        } else {
                            (form.kind + 1) % n
                        };
                    }
                    KeyCode::Backspace => {
                        if let Some(text) = form.text_mut() {
                            text.pop();
                        }
                    }
                    KeyCode::Char(c)
                        if !key.modifiers.contains(KeyModifiers::CONTROL) && form.accepts(c) =>
                    {
                        if let Some(text) = form.text_mut()
                            && text.len() < 64
                        {
                            text.push(c);
                        }
                    }
                    _ => {}
                }
                self.overlay = Some(Overlay::Create(form));
            }
            Overlay::Install(mut form) => {
                match key.code {
                    KeyCode::Esc => return,
                    KeyCode::Enter => return self.install(form),
                    KeyCode::Tab | KeyCode::Down | KeyCode::Up | KeyCode::BackTab => {
                        form.field = 1 - form.field
                    }
                    KeyCode::Backspace => {
                        let text = if form.field == 0 {
                            &mut form.name
                        } else {
                            &mut form.version
                        };
                        text.pop();
                    }
                    KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                        let text = if form.field == 0 {
                            &mut form.name
                        } else {
                            &mut form.version
                        };
                        if text.len() < 100 {
                            text.push(c);
                        }
                    }
                    _ => {}
                }
                self.overlay = Some(Overlay::Install(form));
            }
            Overlay::Chooser(chooser) => self.on_chooser_key(chooser, key),
            Overlay::Rename { id, mut name } => match key.code {
                KeyCode::Esc => {}
                KeyCode::Enter if !name.is_empty() && name != id => {
                    self.call(Call::Rename { id, new: name });
                }
                KeyCode::Enter => {}
                KeyCode::Backspace => {
                    name.pop();
                    self.overlay = Some(Overlay::Rename { id, name });
                }
                KeyCode::Char(c)
                    if !key.modifiers.contains(KeyModifiers::CONTROL)
                        && (c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                        && name.len() < 64 =>
                {
                    name.push(c);
                    self.overlay = Some(Overlay::Rename { id, name });
                }
                _ => self.overlay = Some(Overlay::Rename { id, name }),
            },
            Overlay::Progress(p) => {
                // Esc hides a running install (it goes on, a message says how it ended);
                // any key closes a finished one.
                if p.done.is_none() && key.code != KeyCode::Esc {
                    self.overlay = Some(Overlay::Progress(p));
                }
            }
            Overlay::Confirm(Confirm::KillPool { id, alive }) => match key.code {
                KeyCode::Char('d') | KeyCode::Char('D') => self.stop_pool_session(id, true),
                KeyCode::Char('c') | KeyCode::Char('C') => self.stop_pool_session(id, false),
                KeyCode::Esc | KeyCode::Char('n') => {}
                _ => self.overlay = Some(Overlay::Confirm(Confirm::KillPool { id, alive })),
            },
            Overlay::Confirm(Confirm::Quit { running, remote }) => match key.code {
                KeyCode::Enter | KeyCode::Char('l') | KeyCode::Char('L') => self.quit = true,
                KeyCode::Char('e') | KeyCode::Char('E') => self.end_all_and_quit(),
                KeyCode::Esc | KeyCode::Char('n') => {}
                _ => self.overlay = Some(Overlay::Confirm(Confirm::Quit { running, remote })),
            },
            Overlay::Confirm(confirm) => {
                let yes = matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y'));
                let no = matches!(
                    key.code,
                    KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc
                );
                if yes {
                    self.confirmed(confirm);
                } else if !no {
                    self.overlay = Some(Overlay::Confirm(confirm));
                }
            }
        }
    }

    fn on_paste(&mut self, text: &str) {
        self.dirty = true;
        if let Some(Overlay::Create(form)) = &mut self.overlay {
            form.name.extend(
                text.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
            );
            form.name.truncate(64);
            return;
        }
        if self.filter_editing {
            self.filter.push_str(text.lines().next().unwrap_or(""));
            return;
        }
        if self.focus == Focus::Terminal && self.overlay.is_none() {
            self.scroll = None;
            let bytes = encode::paste(text, self.current_modes());
            self.send(&bytes);
        }
    }

    fn on_mouse(&mut self, m: MouseEvent) {
        let areas = self.areas();
        let at = Position::new(m.column, m.row);
        if self.overlay.is_some() {
            return;
        }
        // In a grid, a click on another tile moves the keys there; the focused tile
        // takes the mouse as a single pane does.
        let mut pane = areas.pane;
        if self.grid.is_some() && areas.pane.contains(at) {
            let focus = self.shown_grid().map_or(0, |g| g.focus);
            match self.tiles().into_iter().find(|t| t.area().contains(at)) {
                Some(t) if t.index != focus => {
                    if let MouseEventKind::Down(_) = m.kind {
                        self.focus_tile(t.index);
                    }
                    return;
                }
                Some(t) if t.body.contains(at) => pane = t.body,
                _ => return,
            }
        }
        if pane.contains(at) {
            let col = m.column - pane.x;
            let row = m.row - pane.y;
            let (mode, sgr) = self
                .current
                .as_ref()
                .and_then(|id| self.mirrors.get(id))
                .map(|s| {
                    (
                        s.vt().mouse_protocol_mode(),
                        s.vt().mouse_protocol_encoding() == vt100::MouseProtocolEncoding::Sgr,
                    )
                })
                .unwrap_or((vt100::MouseProtocolMode::None, false));
            let program_wants_mouse =
                mode != vt100::MouseProtocolMode::None && self.focus == Focus::Terminal;
            if program_wants_mouse && self.scroll.is_none() {
                if let Some(bytes) = encode::mouse(&m, col, row, sgr) {
                    self.send_to_current(&bytes);
                }
                return;
            }
            match m.kind {
                MouseEventKind::ScrollUp => {
                    if self.scroll.is_none() {
                        self.enter_scroll(WHEEL_LINES as isize);
                    } else {
                        self.scroll_by(WHEEL_LINES as isize);
                    }
                }
                MouseEventKind::ScrollDown if self.scroll.is_some() => {
                    self.scroll_by(-(WHEEL_LINES as isize));
                    if self.scroll == Some(0) {
                        self.scroll = None;
                    }
                }
                MouseEventKind::Down(_) if self.focus == Focus::List => self.attach_current(),
                _ => {}
            }
            return;
        }
        if let MouseEventKind::Down(_) = m.kind {
            if let Some(list) = areas.list
                && list.contains(at)
            {
                // Row 0 is the border, row 1 the header.
                let index = (m.row - list.y).checked_sub(2).map(usize::from);
                let id = index.and_then(|i| self.visible().get(i).map(|r| r.id().to_string()));
                if let Some(id) = id {
                    self.select(id);
                    self.focus = Focus::List;
                }
                self.dirty = true;
            } else if areas.tabs.contains(at) {
                let hit = super::draw::tab_at(self, areas.tabs.width, m.column - areas.tabs.x);
                if let Some(tab) = hit {
                    self.select_tab_id(tab);
                    self.dirty = true;
                }
            }
        }
    }

    // ----- events from the manager and from background work ---------------------------

    /// What the server pushed: the list, screens and their output, states, notices,
    /// the pool and questions.
    fn on_update(&mut self, update: Update) {
        match update {
            Update::Output { id, bytes } => {
                if let Some(screen) = self.mirrors.get_mut(&id) {
                    // Queries are the server's to answer; the mirror only shows. Only
                    // shown screens are mirrored, so any output changes the frame.
                    let _ = screen.feed(&bytes);
                    if self.current.as_ref() == Some(&id)
                        && let Some(offset) = self.scroll
                    {
                        // Scrolled back: the view stays on the same lines while new
                        // ones arrive below.
                        let now = screen.rows_scrolled();
                        let arrived = now.saturating_sub(self.scroll_base) as usize;
                        self.scroll = Some((offset + arrived).min(screen.scrollback_len()));
                        self.scroll_base = now;
                    }
                    self.dirty = true;
                }
            }
            Update::Event(event) => self.on_event(event),
            Update::Failed(text) => self.set_message(text, Level::Error),
            Update::Gone(reason) => {
                if !self.quit {
                    self.exit_error = Some(reason);
                    self.quit = true;
                }
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Vms(rows) => self.set_rows(rows),
            Event::Screen { id, snapshot } => {
                if self.watching.contains_key(&id) {
                    let ui = &self.config.ui;
                    let mirror =
                        Screen::from_snapshot(&snapshot, ui.scrollback, ui.scrollback_bytes);
                    let first = self.mirrors.insert(id.clone(), mirror).is_none();
                    self.urgent |= first && self.current.as_ref() == Some(&id);
                    self.dirty = true;
                }
            }
            Event::Resized { id, rows, cols } => {
                if let Some(screen) = self.mirrors.get_mut(&id) {
                    screen.resize(Size::new(rows, cols));
                    self.dirty = true;
                }
            }
            Event::Activity { id } => {
                if !self.watching.contains_key(&id) && self.unseen.insert(id) {
                    self.dirty = true;
                }
            }
            Event::State { id, state } => match state {
                VmState::Exited(_) | VmState::Killed(_) | VmState::Failed(_) => {
                    let text = format!("{id}: {}", state.label());
                    self.set_message(text.clone(), Level::Info);
                    if self.current.as_ref() != Some(&id) {
                        self.marks.entry(id).or_default().exit = true;
                    }
                    self.forward(AlertKind::Exit, text);
                }
                _ => {}
            },
            Event::Alert { id, alert } => self.on_alert(id, alert),
            Event::Renamed { old, new } => self.on_renamed(old, new),
            Event::Notice { id, text } => {
                let text = match id {
                    Some(id) => format!("{id}: {text}"),
                    None => text,
                };
                self.set_message(text, Level::Error);
            }
            Event::Pool(info) => {
                self.warning = info.warning.clone();
                if let Some(failed) = info.failed {
                    self.pool = None;
                    self.set_message(failed, Level::Error);
                } else {
                    let view = PoolView {
                        status: info.status,
                        vms: info.vms.len(),
                    };
                    self.on_pool(view, info.vms);
                }
                self.dirty = true;
            }
            Event::Question { id, question } => {
                if !self.prompts.iter().any(|p| p.id == id) {
                    self.prompts.push_back(Prompt {
                        id,
                        question,
                        input: String::new(),
                    });
                }
                self.dirty = true;
            }
            Event::QuestionClosed { id } => {
                self.prompts.retain(|p| p.id != id);
                self.dirty = true;
            }
            Event::InstallOutput { vm, bytes } => {
                if let Some(Overlay::Progress(p)) = &mut self.overlay
                    && p.vm == vm
                {
                    p.output.push_str(&String::from_utf8_lossy(&bytes));
                    self.dirty = true;
                }
            }
            Event::Closing { reason } => self.set_message(reason, Level::Error),
        }
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Created(Ok(id)) => {
                self.select(id.clone());
                self.attach_current();
                self.set_message(format!("created {id}"), Level::Info);
            }
            Done::Created(Err(e)) | Done::Failed(e) => self.set_message(e, Level::Error),
            Done::Info(text) => self.set_message(text, Level::Info),
            Done::EndedAll => self.quit = true,
            // A bug in a task: shown, and if it was the quit itself, bioxen quits
            // anyway rather than hang.
            Done::Panicked { what, text } => {
                self.set_message(
                    format!("internal error in the {what} task: {text} (see bioxen.log)"),
                    Level::Error,
                );
                if what == Call::EndAll.what() {
                    self.quit = true;
                }
            }
            Done::InstallDone(result) => {
                let (ok, summary) = match &result {
                    Ok(r) if r.success => (
                        true,
                        format!("installed {}: require it in the VM now", r.package),
                    ),
                    Ok(r) => (
                        false,
                        format!(
                            "luarocks failed (exit {}): {}",
                            r.exit_code
                                .map(|c| c.to_string())
                                .unwrap_or_else(|| "?".into()),
                            crate::rocks::last_lines(&r.output, 1)
                        ),
                    ),
                    Err(e) => (false, e.clone()),
                };
                if let Some(Overlay::Progress(p)) = &mut self.overlay {
                    p.done = Some((ok, summary.clone()));
                }
                self.set_message(summary, if ok { Level::Info } else { Level::Error });
            }
        }
    }

    /// When the next uptime label on screen changes (a label of seconds each second,
    /// of minutes each minute, ...), if the list shows any running VM: the dashboard
    /// wakes only then, so an idle dashboard with VMs up for an hour wakes once a
    /// minute per VM at most.
    pub fn next_tick(&self) -> Option<Instant> {
        // A progress report going stale changes the frame and the user's tab.
        let stale = self
            .progress_seen
            .values()
            .map(|(_, at)| *at + PROGRESS_STALE)
            .filter(|at| *at > Instant::now())
            .min();
        if self.zoom || self.grid.is_some() {
            return stale;
        }
        let (base, received) = (&self.received.0, self.received.1);
        let elapsed = received.elapsed().as_secs();
        self.rows
            .iter()
            .zip(base)
            .filter(|(row, _)| row.state.is_alive() && row.pid.is_some())
            .map(|(_, b)| {
                let next = super::format::uptime_changes_at(b.uptime_secs + elapsed);
                received + Duration::from_secs(next - b.uptime_secs)
            })
            .chain(stale)
            .min()
    }

    /// Uptimes count on from the last list, and the dashboard redraws only if an uptime
    /// label changed.
    fn on_tick(&mut self) {
        let elapsed = self.received.1.elapsed().as_secs();
        for (row, base) in self.rows.iter_mut().zip(&self.received.0) {
            if row.state.is_alive() && row.pid.is_some() {
                row.uptime_secs = base.uptime_secs + elapsed;
            }
        }
        let uptimes: Vec<String> = self
            .rows
            .iter()
            .map(|r| super::format::uptime(r.uptime_secs))
            .collect();
        if uptimes != self.drawn_uptimes {
            self.drawn_uptimes = uptimes;
            self.dirty = true;
        }
        let progress: Vec<Option<Progress>> = self.rows.iter().map(|r| self.progress(r)).collect();
        if progress != self.drawn_progress {
            self.drawn_progress = progress;
            self.dirty = true;
        }
        self.report_progress();
    }

    /// The pool's cache changed: redraw only if what the tab bar shows changed.
    pub fn on_pool(&mut self, view: PoolView, vms: Vec<PoolVm>) {
        let vms: Vec<PoolVm> = vms.iter().map(PoolVm::for_display).collect();
        if self.pool_vms != vms {
            self.pool_vms = vms;
            self.dirty = true;
            // Pool VMs arrive after start-up: select one if nothing is selected yet.
            if self.current.is_none() {
                self.current = self.visible().first().map(|r| r.id().to_string());
            }
        }
        if self.pool.as_ref() != Some(&view) {
            if let PoolStatus::Retrying { error, .. } = &view.status {
                self.set_message(format!("pool: {error} (retrying)"), Level::Error);
            }
            self.pool = Some(view);
            self.dirty = true;
        }
    }

    /// Cancels an armed prefix whose second has passed.
    fn expire_prefix(&mut self) {
        if self
            .prefix_since
            .is_some_and(|t| t.elapsed() >= PREFIX_TIMEOUT)
        {
            self.prefix_since = None;
            self.dirty = true;
        }
    }

    pub fn prefix_deadline(&self) -> Option<Instant> {
        self.prefix_since.map(|t| t + PREFIX_TIMEOUT)
    }

    // ----- actions ---------------------------------------------------------------------

    fn move_selection(&mut self, delta: isize) {
        let visible: Vec<String> = self.visible().iter().map(|r| r.id().to_string()).collect();
        if visible.is_empty() {
            return;
        }
        let pos = self
            .current
            .as_ref()
            .and_then(|c| visible.iter().position(|v| v == c))
            .unwrap_or(0) as isize;
        let next = (pos + delta).clamp(0, visible.len() as isize - 1) as usize;
        self.select(visible[next].clone());
    }

    fn select(&mut self, id: String) {
        let from_grid = self.grid.take().is_some();
        if self.current.as_ref() != Some(&id) || from_grid {
            if self.focus == Focus::Terminal
                && let Some(old) = self.current.clone()
            {
                self.notify(Request::Detach { id: old });
            }
            self.scroll = None;
        }
        self.unseen.remove(&id);
        self.marks.remove(&id);
        if self.focus == Focus::Terminal && self.rows.iter().any(|r| r.id == id) {
            self.notify(Request::Attach { id: id.clone() });
        }
        self.current = Some(id);
        self.sync_view(false);
        self.dirty = true;
    }

    /// Selects a VM and attaches to it, as `bioxen attach VM` opens.
    pub fn open(&mut self, id: &str) {
        self.select(id.to_string());
        self.attach_current();
    }

    /// Tabs are the VMs, then the grids.
    fn select_tab(&mut self, index: usize) {
        match self.rows.get(index).map(|r| r.id.clone()) {
            Some(id) => self.select(id),
            None => self.show_grid(index - self.rows.len()),
        }
    }

    /// The tab shown.
    pub fn current_tab(&self) -> Option<TabId> {
        match self.grid {
            Some(g) => Some(TabId::Grid(g)),
            None => self.current.clone().map(TabId::Vm),
        }
    }

    pub fn select_tab_id(&mut self, tab: TabId) {
        match tab {
            TabId::Vm(id) => self.select(id),
            TabId::Grid(i) => self.show_grid(i),
        }
    }

    fn cycle_tab(&mut self, delta: isize) {
        let n = (self.rows.len() + self.grids.len()) as isize;
        if n == 0 {
            return;
        }
        let pos = match self.grid {
            Some(g) => self.rows.len() + g,
            None => self
                .current
                .as_ref()
                .and_then(|c| self.rows.iter().position(|r| &r.id == c))
                .unwrap_or(0),
        } as isize;
        self.select_tab(((pos + delta).rem_euclid(n)) as usize);
    }

    // ----- grids -----------------------------------------------------------------------

    fn toggle_mark(&mut self) {
        if let Some(info) = self.current_info() {
            let id = info.id.clone();
            if !self.marked.remove(&id) {
                self.marked.insert(id);
            }
        }
        self.move_selection(1);
    }

    /// Marks every session the list shows; if all are marked already, unmarks them.
    fn mark_all(&mut self) {
        let shown: Vec<String> = self
            .visible()
            .iter()
            .filter_map(|r| match r {
                Row::Session(info) => Some(info.id.clone()),
                Row::Pool(_) => None,
            })
            .collect();
        if shown.iter().all(|id| self.marked.contains(id)) {
            for id in &shown {
                self.marked.remove(id);
            }
        } else {
            self.marked.extend(shown);
        }
    }

    /// Opens a grid of the marked VMs, or of the running ones when none is marked;
    /// the same VMs again select the grid that shows them.
    fn open_grid(&mut self) {
        let marked: Vec<String> = self
            .rows
            .iter()
            .filter(|r| self.marked.contains(&r.id))
            .map(|r| r.id.clone())
            .collect();
        let vms = if marked.is_empty() {
            self.rows
                .iter()
                .filter(|r| r.state.is_alive())
                .map(|r| r.id.clone())
                .collect()
        } else {
            marked
        };
        if vms.is_empty() {
            let mark = self
                .keymap
                .key_for(Mode::List, Action::Mark)
                .unwrap_or_default();
            self.set_message(
                format!("no running VM for a grid: mark VMs with {mark} in the list"),
                Level::Info,
            );
            return;
        }
        self.marked.clear();
        let index = match self.grids.iter().position(|g| g.vms == vms) {
            Some(i) => i,
            None => {
                let mut grid = Grid::new(vms);
                if let Some(at) = self
                    .current
                    .as_ref()
                    .and_then(|c| grid.vms.iter().position(|v| v == c))
                {
                    grid.focus = at;
                }
                self.grids.push(grid);
                self.grids.len() - 1
            }
        };
        self.show_grid(index);
    }

    fn show_grid(&mut self, index: usize) {
        let Some(id) = self
            .grids
            .get(index)
            .and_then(Grid::focused)
            .map(str::to_string)
        else {
            return;
        };
        if self.focus == Focus::Terminal
            && let Some(old) = self.current.clone()
            && old != id
            && self.rows.iter().any(|r| r.id == old)
        {
            self.notify(Request::Detach { id: old });
        }
        self.grid = Some(index);
        self.current = Some(id.clone());
        self.scroll = None;
        self.focus = Focus::Terminal;
        self.filter_editing = false;
        self.unseen.remove(&id);
        self.marks.remove(&id);
        self.notify(Request::Attach { id });
        self.sync_view(false);
        self.dirty = true;
    }

    /// Moves the keys to another tile of the grid shown.
    pub fn focus_tile(&mut self, index: usize) {
        let Some(g) = self.grid.and_then(|g| self.grids.get_mut(g)) else {
            return;
        };
        if index >= g.vms.len() || index == g.focus {
            return;
        }
        let old = g.vms[g.focus].clone();
        g.focus = index;
        let id = g.vms[index].clone();
        self.notify(Request::Detach { id: old });
        self.notify(Request::Attach { id: id.clone() });
        self.current = Some(id.clone());
        self.scroll = None;
        self.unseen.remove(&id);
        self.marks.remove(&id);
        self.sync_view(false);
        self.dirty = true;
    }

    fn step_tile(&mut self, dx: i32, dy: i32) {
        if let Some(g) = self.shown_grid() {
            let to = g.step(self.areas().pane, dx, dy);
            self.focus_tile(to);
        }
    }

    /// Changes the grid shown, given its focused VM; outside a grid, says how to open one.
    fn with_grid(&mut self, change: impl FnOnce(&mut Grid, &str)) {
        let Some(g) = self.grid.and_then(|g| self.grids.get_mut(g)) else {
            let key = self
                .keymap
                .key_for(Mode::List, Action::Grid)
                .unwrap_or_default();
            return self.set_message(
                format!("not in a grid: {key} in the list opens one"),
                Level::Info,
            );
        };
        let id = g.focused().unwrap_or_default().to_string();
        change(g, &id);
        self.sync_view(false);
        self.dirty = true;
    }

    /// Closes the grid shown; its VMs keep running, and the focused one stays shown.
    fn close_grid(&mut self) {
        let Some(index) = self.grid.take() else {
            return self.with_grid(|_, _| {});
        };
        self.grids.remove(index);
        self.sync_view(false);
        self.dirty = true;
    }

    fn attach_current(&mut self) {
        if let Some(Row::Pool(vm)) = self.current_row() {
            let vm = vm.clone();
            return self.attach_pool_vm(vm);
        }
        let Some(id) = self.current.clone() else {
            self.set_message(
                format!(
                    "no VM yet: {} creates one",
                    self.keymap
                        .key_for(Mode::List, Action::Create)
                        .unwrap_or_default()
                ),
                Level::Info,
            );
            return;
        };
        if self.rows.iter().any(|r| r.id == id) {
            self.notify(Request::Attach { id: id.clone() });
        }
        self.unseen.remove(&id);
        self.marks.remove(&id);
        self.focus = Focus::Terminal;
        self.filter_editing = false;
        self.dirty = true;
    }

    fn detach(&mut self) {
        if let Some(id) = self.current.clone()
            && self.rows.iter().any(|r| r.id == id)
        {
            self.notify(Request::Detach { id });
        }
        self.focus = Focus::List;
        self.scroll = None;
        if self.grid.take().is_some() {
            self.sync_view(false);
        }
    }

    fn toggle_zoom(&mut self) {
        self.zoom = !self.zoom;
        self.apply_pane_size();
    }

    fn toggle_log(&mut self) {
        let Some(id) = self.current.clone() else {
            return;
        };
        self.call(Call::ToggleLog { id });
    }

    fn open_create(&mut self) {
        let (template, memory, vcpus) = self.xcpng_defaults.clone().unwrap_or_default();
        self.overlay = Some(Overlay::Create(CreateForm {
            kinds: self.kinds.clone(),
            kind: 0,
            name: String::new(),
            placeholder: self.free_name(),
            field: Field::Kind,
            template,
            memory: memory.to_string(),
            vcpus: vcpus.to_string(),
        }));
    }

    /// The first `lua-N` no session is called: the name a VM created without one
    /// gets in the create dialog.
    fn free_name(&self) -> String {
        (1..)
            .map(|n| format!("lua-{n}"))
            .find(|name| !self.rows.iter().any(|r| &r.id == name))
            .unwrap_or_default()
    }

    fn create(&mut self, form: CreateForm) {
        let name = if form.name.is_empty() {
            form.placeholder.clone()
        } else {
            form.name.clone()
        };
        let mut options = CreateOptions {
            rows: Some(self.pane_size.rows),
            cols: Some(self.pane_size.cols),
            ..CreateOptions::default()
        };
        let kind = match form.choice() {
            KindChoice::Local => VmKind::Local,
            KindChoice::Ssh(host) => {
                options.host = Some(host.clone());
                VmKind::Ssh
            }
            KindChoice::Xcpng => {
                options.template = Some(form.template.clone()).filter(|t| !t.is_empty());
                options.memory_mib = form.memory.parse().ok().filter(|m| *m > 0);
                options.vcpus = form.vcpus.parse().ok().filter(|v| *v > 0);
                VmKind::Xcpng
            }
        };
        self.spawn_create(name, kind, options);
    }

    /// Creates a session in the background; the pane shows its progress meanwhile.
    fn spawn_create(&mut self, name: String, kind: VmKind, options: CreateOptions) {
        self.set_message(format!("creating {name}..."), Level::Info);
        // Show the new session (and its progress) as soon as it exists.
        self.current = Some(name.clone());
        self.focus = Focus::Terminal;
        self.call(Call::Create {
            name,
            kind,
            options,
        });
    }

    /// Opens a Lua session on a pool VM bioxen created earlier.
    fn attach_pool_vm(&mut self, vm: PoolVm) {
        let name = vm.bioxen_id.clone().unwrap_or_else(|| vm.name.clone());
        let Some(ip) = vm.ip.clone() else {
            self.set_message(
                format!(
                    "{name} is {} with no IP address yet; start it on the pool first",
                    vm.power_state.to_lowercase()
                ),
                Level::Error,
            );
            return;
        };
        let options = CreateOptions {
            rows: Some(self.pane_size.rows),
            cols: Some(self.pane_size.cols),
            pool_vm: Some((vm.reference.clone(), ip)),
            ..CreateOptions::default()
        };
        self.spawn_create(name, VmKind::Xcpng, options);
    }

    /// Ends an `xcpng` session, destroying its pool VM or leaving it running.
    fn stop_pool_session(&mut self, id: String, destroy: bool) {
        self.call(match destroy {
            true => Call::Destroy { id },
            false => Call::Release { id },
        });
        self.focus = Focus::List;
    }

    fn open_install(&mut self) {
        match self.current_info() {
            Some(info) if info.state.is_alive() => {
                self.overlay = Some(Overlay::Install(InstallForm {
                    vm: info.id.clone(),
                    ..InstallForm::default()
                }));
            }
            Some(info) => {
                let text = format!(
                    "{} is {}: packages go into running VMs",
                    info.id,
                    info.state.label()
                );
                self.set_message(text, Level::Error);
            }
            None => self.set_message("select a VM to install into", Level::Error),
        }
    }

    /// Checks the name and starts luarocks; its output streams into a progress view.
    fn install(&mut self, mut form: InstallForm) {
        let spec = match crate::rocks::PackageSpec::new(form.name.trim(), Some(&form.version)) {
            Ok(spec) => spec,
            Err(e) => {
                form.error = Some(e);
                self.overlay = Some(Overlay::Install(form));
                return;
            }
        };
        self.overlay = Some(Overlay::Progress(InstallProgress {
            vm: form.vm.clone(),
            package: spec.label(),
            output: String::new(),
            done: None,
        }));
        self.call(Call::Install { vm: form.vm, spec });
    }

    // ----- SSH prompts -------------------------------------------------------------

    fn on_prompt_key(&mut self, key: KeyEvent) {
        let Some(prompt) = self.prompts.front_mut() else {
            return;
        };
        let answer = match (&prompt.question, key.code) {
            (SshQuestion::UnknownHostKey { .. }, KeyCode::Char('y')) => Some(SshAnswer::AcceptOnce),
            (SshQuestion::UnknownHostKey { .. }, KeyCode::Char('a')) => {
                Some(SshAnswer::AcceptAndRemember)
            }
            (SshQuestion::UnknownHostKey { .. }, KeyCode::Char('n') | KeyCode::Esc) => {
                Some(SshAnswer::Refuse)
            }
            (SshQuestion::Passphrase { .. }, KeyCode::Enter) => {
                Some(SshAnswer::Passphrase(std::mem::take(&mut prompt.input)))
            }
            (SshQuestion::Passphrase { .. }, KeyCode::Esc) => Some(SshAnswer::Refuse),
            (SshQuestion::Passphrase { .. }, KeyCode::Backspace) => {
                prompt.input.pop();
                None
            }
            (SshQuestion::Passphrase { .. }, KeyCode::Char(c))
                if !key.modifiers.contains(KeyModifiers::CONTROL) =>
            {
                prompt.input.push(c);
                None
            }
            _ => None,
        };
        if let Some(answer) = answer
            && let Some(prompt) = self.prompts.pop_front()
        {
            self.notify(Request::Answer {
                question: prompt.id,
                answer,
            });
        }
    }

    fn ask_kill(&mut self) {
        let Some(info) = self.current_info() else {
            return;
        };
        let confirm = if info.pool_vm.is_some() {
            Confirm::KillPool {
                id: info.id.clone(),
                alive: info.state.is_alive(),
            }
        } else if info.state.is_alive() {
            Confirm::Kill {
                id: info.id.clone(),
                pid: info.pid,
            }
        } else {
            Confirm::Remove {
                id: info.id.clone(),
            }
        };
        self.overlay = Some(Overlay::Confirm(confirm));
    }

    fn restart_current(&mut self) {
        let Some(info) = self.current_info() else {
            return;
        };
        let id = info.id.clone();
        match (info.state.is_alive(), info.kind) {
            (false, _) => self.call(Call::Restart { id, running: false }),
            // A pool VM's session ends through the pool dialog, which asks about the VM.
            (true, VmKind::Xcpng) => self.set_message(
                format!("{id} is running on the pool; kill it first to restart"),
                Level::Info,
            ),
            (true, _) => self.overlay = Some(Overlay::Confirm(Confirm::Restart { id })),
        }
    }

    fn ask_quit(&mut self) {
        let alive = |kind: Option<VmKind>| {
            self.rows
                .iter()
                .filter(|r| {
                    r.state.is_alive()
                        && kind.is_none_or(|k| (r.kind == VmKind::Local) == (k == VmKind::Local))
                })
                .count()
        };
        let (running, remote) = (alive(Some(VmKind::Local)), alive(Some(VmKind::Ssh)));
        if running + remote == 0 {
            self.quit = true;
        } else {
            self.overlay = Some(Overlay::Confirm(Confirm::Quit { running, remote }));
        }
    }

    /// Ends every VM in the server, then quits.
    fn end_all_and_quit(&mut self) {
        if self.quitting {
            return;
        }
        self.quitting = true;
        self.set_message("ending VMs...", Level::Info);
        self.call(Call::EndAll);
    }

    fn confirmed(&mut self, confirm: Confirm) {
        match confirm {
            Confirm::Kill { id, .. } => {
                self.call(Call::Kill { id });
                self.focus = Focus::List;
            }
            // Answered with d or c in the dialog itself.
            Confirm::KillPool { .. } => {}
            Confirm::Remove { id } => self.call(Call::Remove { id }),
            Confirm::Restart { id } => self.call(Call::Restart { id, running: true }),
            // Answered with Enter, l or e in the dialog itself.
            Confirm::Quit { .. } => {}
        }
    }

    /// Where typing goes while the grid shown broadcasts: every running tile but the
    /// excluded ones. Typing in an excluded tile goes to it alone.
    pub fn broadcast_targets(&self) -> Option<Vec<String>> {
        let g = self.shown_grid().filter(|g| g.broadcast)?;
        if g.focused().is_some_and(|id| g.excluded.contains(id)) {
            return None;
        }
        Some(
            g.vms
                .iter()
                .filter(|id| !g.excluded.contains(*id))
                .filter(|id| self.rows.iter().any(|r| &r.id == *id && r.state.is_alive()))
                .cloned()
                .collect(),
        )
    }

    /// The tabs the chooser lists for `filter` (case-insensitive, on the label), with
    /// their labels.
    pub fn chooser_items(&self, filter: &str) -> Vec<(TabId, String)> {
        let filter = filter.to_lowercase();
        let vms = self.rows.iter().map(|r| {
            let mut label = format!(
                "{:<16} {:<6} {:<12}",
                r.id,
                r.kind.as_str(),
                super::format::state(r)
            );
            if let Some(p) = self.progress(r) {
                label.push_str(&format!(" {}", super::format::progress(p, 5)));
            }
            if let Some(status) = &r.status {
                label.push_str(&format!("  {status}"));
            }
            (TabId::Vm(r.id.clone()), label)
        });
        let grids = self.grids.iter().enumerate().map(|(i, g)| {
            (
                TabId::Grid(i),
                format!("grid({:<2})         {}", g.vms.len(), g.vms.join(" ")),
            )
        });
        vms.chain(grids)
            .filter(|(_, label)| filter.is_empty() || label.to_lowercase().contains(&filter))
            .collect()
    }

    fn on_chooser_key(&mut self, mut chooser: Chooser, key: KeyEvent) {
        let items = self.chooser_items(&chooser.filter);
        match key.code {
            KeyCode::Esc => return,
            KeyCode::Enter => {
                match items.get(chooser.selected).cloned() {
                    Some((TabId::Vm(id), _)) if self.focus == Focus::Terminal => self.select(id),
                    Some((TabId::Vm(id), _)) => self.open(&id),
                    Some((TabId::Grid(i), _)) => self.show_grid(i),
                    None => {}
                }
                return;
            }
            KeyCode::Up => chooser.selected = chooser.selected.saturating_sub(1),
            KeyCode::Down => {
                chooser.selected = (chooser.selected + 1).min(items.len().saturating_sub(1))
            }
            KeyCode::Backspace => {
                chooser.filter.pop();
                chooser.selected = 0;
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                chooser.filter.push(c);
                chooser.selected = 0;
            }
            _ => {}
        }
        self.overlay = Some(Overlay::Chooser(chooser));
    }

    fn open_rename(&mut self) {
        if let Some(info) = self.current_info() {
            self.overlay = Some(Overlay::Rename {
                id: info.id.clone(),
                name: info.id.clone(),
            });
        }
    }

    /// A VM has a new name: everything this dashboard keeps by name follows it.
    fn on_renamed(&mut self, old: String, new: String) {
        let swap = |id: &mut String| {
            if *id == old {
                *id = new.clone();
            }
        };
        if let Some(id) = self.current.as_mut() {
            swap(id);
        }
        for g in &mut self.grids {
            g.vms.iter_mut().for_each(swap);
            if g.excluded.remove(&old) {
                g.excluded.insert(new.clone());
            }
        }
        if let Some(full) = self.watching.remove(&old) {
            self.watching.insert(new.clone(), full);
        }
        for set in [&mut self.marked, &mut self.unseen] {
            if set.remove(&old) {
                set.insert(new.clone());
            }
        }
        if let Some(m) = self.mirrors.remove(&old) {
            self.mirrors.insert(new.clone(), m);
        }
        if let Some(s) = self.sizes.remove(&old) {
            self.sizes.insert(new.clone(), s);
        }
        if let Some(m) = self.marks.remove(&old) {
            self.marks.insert(new.clone(), m);
        }
        if let Some(p) = self.progress_seen.remove(&old) {
            self.progress_seen.insert(new, p);
        }
        self.dirty = true;
    }

    /// Steps the shown VM's silence alert through off, 10 s, 30 s, 1 min and 5 min.
    fn cycle_silence(&mut self) {
        const STEPS: [u64; 5] = [0, 10, 30, 60, 300];
        let Some(info) = self.current_info() else {
            return;
        };
        let id = info.id.clone();
        let at = STEPS.iter().position(|s| *s == info.silence_secs);
        let secs = STEPS[at.map_or(1, |i| (i + 1) % STEPS.len())];
        self.notify(Request::SetSilence {
            id: id.clone(),
            secs,
        });
        let text = match secs {
            0 => format!("{id}: no silence alert"),
            s => format!("{id}: alert after {s} s without output (while not at its prompt)"),
        };
        self.set_message(text, Level::Info);
    }

    fn current_modes(&self) -> encode::Modes {
        self.current
            .as_ref()
            .and_then(|id| self.mirrors.get(id))
            .map(|s| encode::Modes::of(s.vt()))
            .unwrap_or_default()
    }

    /// Sends typing (keys, pastes) to the VM shown, or to every tile of a grid that
    /// broadcasts.
    fn send(&mut self, bytes: &[u8]) {
        match self.broadcast_targets() {
            Some(targets) => {
                for id in targets {
                    self.notify(Request::SendInput {
                        id,
                        data: bytes.to_vec(),
                    });
                }
            }
            None => self.send_to_current(bytes),
        }
    }

    fn send_to_current(&mut self, bytes: &[u8]) {
        let Some(id) = self.current.clone() else {
            return;
        };
        let hint = match self.current_info() {
            Some(info) if !info.state.is_alive() => Some(format!(
                "{id} is {}: {} {} for the list, then {} restarts it",
                info.state.label(),
                self.keymap.prefix,
                self.keymap
                    .key_for(Mode::Prefix, Action::Detach)
                    .unwrap_or_default()
                    .rsplit(' ')
                    .next()
                    .unwrap_or("d"),
                self.keymap
                    .key_for(Mode::List, Action::Restart)
                    .unwrap_or_default()
            )),
            Some(_) => None,
            None => return,
        };
        match hint {
            Some(hint) => self.set_message(hint, Level::Error),
            // A failure (a session reconnecting) comes back as an update.
            None => self.notify(Request::SendInput {
                id,
                data: bytes.to_vec(),
            }),
        }
    }
}
