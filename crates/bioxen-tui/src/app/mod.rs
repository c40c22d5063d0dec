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
//!
//! This file holds the state, the dispatch of keys and updates, and the list; the
//! parts with state of their own are beside it: `grids`, `scrollback` (scroll, search,
//! copy), `alerts` (progress and marks), `tabs` (the tab order, chooser, rename) and
//! `dialogs` (the forms and confirmations).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::effect::{Call, Done, Effect, Target};
use super::grid::Grid;
use super::layout::Areas;
use crate::{encode, input};
use bioxen_client::Update;
use bioxen_config::AlertKind;
use bioxen_config::keymap::{Action, Keymap, Mode};
use bioxen_proto::{
    Alert, CreateOptions, Event, PoolStatus, PoolVm, Progress, ProgressState, Request, Size,
    SshAnswer, SshQuestion, VmId, VmInfo, VmKind, VmState,
};
use bioxen_term::Screen;
use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};

mod alerts;
mod chart;
mod dialogs;
mod found;
mod grids;
mod groups;
mod scrollback;
mod selection;
mod sort;
mod tabs;
mod text_field;

pub use alerts::{Marks, PROGRESS_STALE};
pub use dialogs::{Confirm, CreateForm, Field, InstallForm, InstallProgress, KindChoice, Prompt};
pub use found::{FoundAll, query_of};
pub use grids::Broadcast;
pub use groups::GroupBy;
pub use groups::{FOLD_ABOVE, GroupSummary, LoadForm};
pub use scrollback::Search;
pub use selection::{Point, Selection, Shape};
pub use sort::{Sort, SortBy};
pub use tabs::Chooser;

/// How long an armed prefix waits for its key.
pub const PREFIX_TIMEOUT: Duration = Duration::from_secs(1);

/// The shortest time between two frames.
pub const FRAME: Duration = Duration::from_millis(16);
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
    Rename(RenameForm),
    /// The path of an experiment file to start (`u`).
    Load(LoadForm),
    /// A tab's number being typed (tmux's `C-b '`).
    GoToTab {
        number: String,
    },
    /// A search of every VM: its query, then its matches.
    SearchAll(FoundAll),
}

/// The rename dialog: it stays open, with what was typed, until the server took the
/// name, and says why when it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenameForm {
    pub target: Target,
    pub name: String,
    pub error: Option<String>,
    /// Asked of the server; the answer closes the dialog or says why not.
    pub pending: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

/// A row of the VM list: a session, a pool VM without one, or the header of an
/// experiment's VMs.
#[derive(Debug, Clone, Copy)]
pub enum Row<'a> {
    Session(&'a VmInfo),
    Pool(&'a PoolVm),
    Group(&'a str),
}

/// Who a list row is: a session by its number, a pool VM without one by its
/// reference, an experiment by its name (the server keeps one experiment a name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RowId {
    Vm(VmId),
    Pool(String),
    Group(String),
}

impl Row<'_> {
    pub fn id(&self) -> RowId {
        match self {
            Row::Session(i) => RowId::Vm(i.vm),
            Row::Pool(vm) => RowId::Pool(vm.reference.clone()),
            Row::Group(name) => RowId::Group(name.to_string()),
        }
    }

    /// What the row is called.
    pub fn name(&self) -> &str {
        match self {
            Row::Session(i) => &i.name,
            Row::Pool(vm) => vm.bioxen_id.as_deref().unwrap_or(&vm.name),
            Row::Group(name) => name,
        }
    }

    /// Whether the list filter `f` (lower case) keeps the row: by name, kind, state,
    /// or the experiment it belongs to.
    /// Whether the filter `f` (lower case) keeps the row: its name, kind, state, or
    /// the header it is under.
    fn matches(&self, f: &str, app: &App) -> bool {
        if f.is_empty() {
            return true;
        }
        let (kind, state, experiment) = match self {
            Row::Session(i) => (i.kind, i.state.label(), groups::experiment_of(i)),
            Row::Pool(vm) => (
                VmKind::Xcpng,
                format!("detached {}", vm.power_state.to_lowercase()),
                None,
            ),
            Row::Group(name) => return name.to_lowercase().contains(f),
        };
        let group = app.group_of(self);
        self.name().to_lowercase().contains(f)
            || kind.as_str().contains(f)
            || state.contains(f)
            || experiment.is_some_and(|e| e.to_lowercase().contains(f))
            || group.is_some_and(|g| g.to_lowercase().contains(f))
    }
}

/// What the tab bar says about the pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolView {
    pub status: PoolStatus,
    pub vms: usize,
}

/// A tab: one VM, or a grid of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TabId {
    Vm(VmId),
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

/// How long a message stays in the status bar; errors stay longer, to be read.
pub const MESSAGE_SHOWS: Duration = Duration::from_secs(6);
pub const ERROR_SHOWS: Duration = Duration::from_secs(15);

/// The help box's width, and its last line.
pub const HELP_WIDTH: u16 = 84;
pub const HELP_HINT: &str = "Keys are set in bioxen.toml ([ui] prefix, [keys.list], [keys.prefix]).  ↑/↓ PgUp/PgDn scroll · Esc closes";

pub struct App {
    pub(crate) keymap: Keymap,
    /// The configuration, for what the create dialog says each kind runs.
    pub config: bioxen_config::Config,
    /// The sessions, as the server last listed them (uptimes advanced locally).
    pub rows: Vec<VmInfo>,
    /// Each row's uptime as received, and when: uptimes count on from there.
    received: (Vec<u64>, Instant),
    /// When the message being handled arrived: every timer of the app reads this, never
    /// the clock.
    now: Instant,
    /// Mirrors of the screens this dashboard shows, by session.
    pub mirrors: HashMap<VmId, Screen>,
    /// Sessions whose screens the server sends this dashboard.
    /// With whether the server sends every byte (the VM keys go to) or, for the other
    /// tiles of a grid, a glance at the screen each frame.
    watching: HashMap<VmId, bool>,
    /// The size this dashboard last gave each session.
    sizes: HashMap<VmId, Size>,
    /// Watched VMs another client resized away from [`App::sizes`]: the next key typed
    /// here sizes them back (tmux's `window-size latest`). Kept apart from `sizes`,
    /// which list updates re-sync, so two dashboards never take turns on every tick.
    outsized: HashSet<VmId>,
    /// Grid tabs, after the VMs' tabs.
    pub grids: Vec<Grid>,
    /// The grid shown, if a grid tab is selected; its focused tile is `current`.
    pub grid: Option<usize>,
    /// VMs marked in the list for the next grid.
    pub marked: HashSet<VmId>,
    /// Each experiment the list has shown, by name, and whether its group is folded.
    pub(crate) folded: HashMap<String, bool>,
    /// The experiment file `u` last started, offered again.
    last_load: String,
    /// Alerts of VMs the user has not looked at since.
    pub marks: HashMap<VmId, Marks>,
    /// When each VM's progress last came (its report count, and when it changed): a
    /// report older than [`PROGRESS_STALE`] is no longer shown.
    progress_seen: HashMap<VmId, (u64, Instant)>,
    /// The overall progress last sent to the user's terminal.
    outer_progress: Option<Progress>,
    /// Each row's progress as last drawn, to redraw when one goes stale.
    drawn_progress: Vec<Option<Progress>>,
    /// The row selected in the list, whose VM the terminal pane shows.
    pub current: Option<RowId>,
    /// A VM this dashboard is creating, by name: selected as soon as it is listed,
    /// so the pane shows its start (a pool VM's takes minutes) before it has a number
    /// here.
    creating: Option<String>,
    pub focus: Focus,
    pub(crate) prefix_since: Option<Instant>,
    /// Lines scrolled back in the terminal pane; `None` is the live view.
    pub scroll: Option<usize>,
    /// A search in scrollback: what, which way, and the line last found.
    pub search: Option<Search>,
    /// The list's order, when the user sorted it.
    pub sort: Option<Sort>,
    /// The last search of every VM, which `n` and `N` go on with after a jump.
    pub found_all: Option<FoundAll>,
    /// A jump to a match whose VM's screen has not arrived yet.
    pub(crate) jump: Option<found::Jump>,
    /// Text being selected in scrollback for copying.
    pub selection: Option<Selection>,
    /// Where a drag of the mouse in the pane began.
    drag_from: Option<Point>,
    /// The shown screen's [`Screen::rows_scrolled`] when `scroll` was last set: rows
    /// arriving later move the offset with them, so the view stays put.
    scroll_base: u64,
    pub overlay: Option<Overlay>,
    pub(crate) filter: String,
    pub(crate) filter_editing: bool,
    pub zoom: bool,
    pub message: Option<(String, Level)>,
    /// When the message goes: a status bar that keeps an old line for minutes says
    /// nothing about now.
    message_until: Option<Instant>,
    /// VMs with output the user has not looked at.
    pub unseen: HashSet<VmId>,
    /// The whole terminal.
    pub(crate) area: Rect,
    /// The size every session's PTY currently has.
    pub pane_size: Size,
    pub(crate) dirty: bool,
    /// The next frame should not wait out the frame interval: a VM's screen has just
    /// arrived where the pane showed none, or the echo of what was typed. Frames are
    /// paced to coalesce streams of output; these are one-offs that a user waits on.
    pub(crate) urgent: bool,
    /// VMs typed into whose next output (the echo) has not come yet: it is drawn
    /// without waiting out the frame interval, so typing never lags by a frame while
    /// other tiles keep the dashboard drawing. One such frame per keystroke at most.
    echo_awaited: HashSet<VmId>,
    pub quit: bool,
    /// Set while VMs are being ended before quitting.
    pub(crate) quitting: bool,
    /// Quitting ends the VMs without asking whether to leave them running.
    pub(crate) vms_end_on_quit: bool,
    /// Attached with `-r`: this dashboard shows everything and changes nothing (no
    /// keys to VMs, no sizes, no calls), as `tmux attach -r`.
    pub read_only: bool,
    /// Why the dashboard had to stop (the server went away), said after the terminal
    /// is restored.
    pub(crate) exit_error: Option<String>,
    /// The pool's state for the tab bar, when `[xcpng]` is configured.
    pub pools: std::collections::BTreeMap<String, PoolView>,
    /// A warning that stays on screen while it holds (unverified TLS).
    pub(crate) warning: Option<String>,
    /// The pool's VMs, from the event cache.
    pub pool_vms: Vec<PoolVm>,
    /// Questions from SSH connections (host keys, passphrases), oldest first.
    pub prompts: std::collections::VecDeque<Prompt>,
    /// Kinds the create dialog offers.
    pub(crate) kinds: Vec<KindChoice>,
    /// Defaults for new `xcpng` VMs: template, memory MiB, vCPUs.
    pub(crate) xcpng_defaults: HashMap<String, (String, u64, u32)>,
    /// Labels of the uptime column as last drawn, to redraw only when one changes.
    drawn_uptimes: Vec<String>,
    /// Whether the last frame had room for the uptime column: when the list gave it up
    /// (to the sparkline, on a narrow list), its labels wake nobody.
    pub(crate) uptime_drawn: std::cell::Cell<bool>,
    /// The index in [`App::visible`] of the list's first row drawn, set by the list
    /// pane: a click on a scrolled list picks the row under it.
    pub(crate) list_first: std::cell::Cell<usize>,
    /// The details box's chart: its window and the series the server sent.
    pub chart: chart::Chart,
    /// What the list gathers VMs under.
    pub group_by: GroupBy,
    /// Running VMs this dashboard is restarting: the end of their old interpreter is
    /// the restart's doing, not news, though its event may come after the answer.
    restarting: HashSet<VmId>,
    /// What the changes since the last [`App::update`] call for.
    effects: Vec<Effect>,
}

impl App {
    pub fn new(keymap: Keymap, area: Rect) -> App {
        let now = Instant::now();
        let mut app = App {
            keymap,
            config: bioxen_config::Config::default(),
            rows: Vec::new(),
            received: (Vec::new(), now),
            now,
            mirrors: HashMap::new(),
            watching: HashMap::new(),
            sizes: HashMap::new(),
            outsized: HashSet::new(),
            grids: Vec::new(),
            grid: None,
            marked: HashSet::new(),
            folded: HashMap::new(),
            last_load: String::new(),
            marks: HashMap::new(),
            progress_seen: HashMap::new(),
            outer_progress: None,
            drawn_progress: Vec::new(),
            current: None,
            creating: None,
            focus: Focus::List,
            prefix_since: None,
            scroll: None,
            scroll_base: 0,
            search: None,
            found_all: None,
            sort: None,
            jump: None,
            selection: None,
            drag_from: None,
            overlay: None,
            filter: String::new(),
            filter_editing: false,
            zoom: false,
            message: None,
            message_until: None,
            unseen: HashSet::new(),
            area,
            pane_size: Size::default(),
            dirty: true,
            urgent: false,
            echo_awaited: HashSet::new(),
            quit: false,
            quitting: false,
            vms_end_on_quit: false,
            read_only: false,
            exit_error: None,
            pools: Default::default(),
            warning: None,
            pool_vms: Vec::new(),
            prompts: std::collections::VecDeque::new(),
            kinds: vec![KindChoice::Local],
            xcpng_defaults: HashMap::new(),
            uptime_drawn: std::cell::Cell::new(true),
            list_first: std::cell::Cell::new(0),
            drawn_uptimes: Vec::new(),
            chart: chart::Chart::default(),
            group_by: GroupBy::default(),
            restarting: HashSet::new(),
            effects: Vec::new(),
        };
        app.pane_size = Areas::new(app.area, app.zoom).pane_size();
        app.refresh();
        app
    }

    /// Takes one message, and returns what it calls for.
    /// [`App::update_at`] at the present moment, for callers to whom time does not
    /// matter.
    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        self.update_at(msg, Instant::now())
    }

    /// What `msg`, arriving at `now`, does to the state, and the effects it calls for.
    /// A function of the state, the message and the time alone: the app reads no clock,
    /// so a test can hand it any time it likes.
    pub fn update_at(&mut self, msg: Msg, now: Instant) -> Vec<Effect> {
        self.now = self.now.max(now);
        match msg {
            Msg::Terminal(event) => self.on_terminal_event(event),
            Msg::Server(update) => self.on_update(update),
            Msg::Done(done) => self.on_done(done),
            Msg::Tick => self.on_tick(),
            Msg::PrefixTimeout => self.expire_prefix(),
        }
        self.ask_history();
        self.take_effects()
    }

    /// What the changes made so far call for: those made outside [`App::update`], by
    /// the setters start-up uses.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    fn notify(&mut self, request: Request) {
        // Sizes, attaching and typing change a VM: a read-only dashboard only looks.
        if self.read_only && request.serving().changes {
            return;
        }
        self.effects.push(Effect::Notify(request));
    }

    fn call(&mut self, call: Call) {
        let looks = matches!(
            call,
            Call::Complete(_) | Call::Search(_) | Call::History { .. }
        );
        if self.read_only && !looks {
            let what = call.what();
            return self.set_message(
                format!("read-only: this dashboard cannot {what} (attached with -r)"),
                Level::Error,
            );
        }
        if let Call::Restart {
            target,
            running: true,
        } = &call
        {
            self.restarting.insert(target.vm);
        }
        self.effects.push(Effect::Call(call));
    }

    /// Where things are drawn now. A terminal too narrow for the list beside the pane
    /// shows the list alone while it has the keys: LIST mode with no list would leave
    /// the user choosing blind. Sessions keep the pane's size whatever is drawn.
    pub fn areas(&self) -> Areas {
        match self.grid {
            Some(_) => Areas::grid(self.area),
            None => {
                let areas = Areas::new(self.area, self.zoom);
                match areas.list.is_none() && !self.zoom && self.focus == Focus::List {
                    true => areas.list_only(),
                    false => areas,
                }
            }
        }
    }

    /// Takes a new VM list from the server.
    pub fn set_rows(&mut self, rows: Vec<VmInfo>) {
        self.received = (rows.iter().map(|r| r.uptime_secs).collect(), self.now);
        for row in &rows {
            match row.progress {
                Some(_) => {
                    let seen = self.progress_seen.get(&row.vm).map(|s| s.0);
                    if seen != Some(row.progress_seq) {
                        // As old as the server says: a report from before this
                        // dashboard opened has already used up part of its time.
                        let age = Duration::from_millis(row.progress_age_ms);
                        let at = self.now.checked_sub(age).unwrap_or(self.now);
                        self.progress_seen.insert(row.vm, (row.progress_seq, at));
                    }
                }
                None => {
                    self.progress_seen.remove(&row.vm);
                }
            }
        }
        let before = self.shown_figures();
        self.rows = rows;
        self.figures_arrived(before);
        self.note_groups();
        if let Some(name) = &self.creating
            && self.follows_create()
            && let Some(vm) = self.rows.iter().find(|r| &r.name == name).map(|r| r.vm)
        {
            self.creating = None;
            self.current = Some(RowId::Vm(vm));
        }
        self.refresh();
        self.report_progress();
    }

    /// Keeps the selection, the grids, the marks and the mirrors in step with the list.
    pub fn refresh(&mut self) {
        self.prune_grids();
        if self.grid.is_none()
            && let Some(id) = &self.current
            && !self.visible().iter().any(|r| r.id() == *id)
            && self.current_info().is_none()
        {
            self.current = None;
        }
        if self.current.is_none() {
            self.current = self.visible().first().map(Row::id);
            if self.current.is_none() {
                self.focus = Focus::List;
            }
        }
        let rows = &self.rows;
        let listed = |vm: &VmId| rows.iter().any(|r| r.vm == *vm);
        self.unseen.retain(listed);
        self.marks.retain(|vm, _| listed(vm));
        self.marked.retain(listed);
        self.echo_awaited.retain(listed);
        self.sync_view(false);
        self.dirty = true;
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
        let mut shown: HashMap<VmId, Size> = HashMap::new();
        match self.shown_grid() {
            Some(g) => {
                for t in g.tiles(self.areas().pane) {
                    shown.insert(g.vms[t.index], t.size());
                }
            }
            None => {
                if let Some(vm) = self.current_vm() {
                    shown.insert(vm, pane);
                }
            }
        }
        shown.retain(|vm, _| self.rows.iter().any(|r| r.vm == *vm));
        let gone: Vec<VmId> = self
            .watching
            .keys()
            .filter(|vm| !shown.contains_key(*vm))
            .copied()
            .collect();
        for vm in gone {
            self.watching.remove(&vm);
            self.mirrors.remove(&vm);
            if self.rows.iter().any(|r| r.vm == vm) {
                self.notify(Request::Unwatch { vm: vm.into() });
            }
        }
        // A session newly shown is sized by this dashboard again (`latest`).
        let new: Vec<VmId> = shown
            .keys()
            .filter(|vm| !self.watching.contains_key(*vm))
            .copied()
            .collect();
        for vm in &new {
            self.sizes.remove(vm);
        }
        for row in &self.rows {
            let want = shown.get(&row.vm).copied().unwrap_or(pane);
            let sent = self.sizes.get(&row.vm).copied();
            let due = all || sent.is_some() || shown.contains_key(&row.vm);
            if due && sent != Some(want) && !self.read_only {
                self.effects.push(Effect::Notify(Request::Resize {
                    vm: row.vm.into(),
                    rows: want.rows,
                    cols: want.cols,
                }));
                self.sizes.insert(row.vm, want);
                self.outsized.remove(&row.vm);
            }
        }
        let rows = &self.rows;
        self.sizes.retain(|vm, _| rows.iter().any(|r| r.vm == *vm));
        // Every byte for the VM keys go to (its screen must be exact for typing and
        // scrollback); the other tiles of a grid a glance each frame.
        let (in_grid, current) = (self.grid.is_some(), self.current_vm());
        let mut vms: Vec<VmId> = shown.keys().copied().collect();
        vms.sort();
        for vm in vms {
            let want = !in_grid || current == Some(vm);
            if self.watching.insert(vm, want) != Some(want) {
                self.notify(match want {
                    true => Request::Watch { vm: vm.into() },
                    false => Request::Glance { vm: vm.into() },
                });
            }
        }
    }

    /// The help's rows as drawn: the keymap's sections, each with a blank line after,
    /// and the closing hint, wrapped at the help box's width.
    pub fn help_lines(&self) -> usize {
        use unicode_width::UnicodeWidthStr;
        let width = usize::from(self.area.width.min(HELP_WIDTH).saturating_sub(2)).max(1);
        let rows = |text: &str| text.width().div_ceil(width).max(1);
        let mut n = rows(HELP_HINT);
        for (_, entries) in self.keymap.help() {
            n += 2;
            for (keys, what) in entries {
                n += rows(&format!("  {keys:<22}{what}"));
            }
        }
        n
    }

    /// How far the help scrolls: its last line at the bottom of its box, no further.
    pub fn help_max_scroll(&self) -> u16 {
        let lines = self.help_lines();
        let shown = usize::from(self.area.height)
            .min(lines + 2)
            .saturating_sub(2);
        lines.saturating_sub(shown) as u16
    }

    /// When the next frame is drawn, given when the last one was: never while nothing
    /// changed; at once for a one-off the user waits on (see `urgent`); otherwise one
    /// [`FRAME`] after the last, so a stream of output costs one frame per interval.
    pub fn frame_at(&self, last_draw: Instant) -> Option<Instant> {
        let paced = if self.urgent { Duration::ZERO } else { FRAME };
        self.dirty.then_some(last_draw + paced)
    }

    /// A frame went out: nothing waits to be drawn.
    pub fn drawn(&mut self) {
        self.dirty = false;
        self.urgent = false;
    }

    /// Whether the pane shows a VM whose screen the server has not sent yet.
    pub fn awaiting_screen(&self) -> bool {
        self.current_vm()
            .is_some_and(|vm| self.watching.contains_key(&vm) && !self.mirrors.contains_key(&vm))
    }

    /// List rows that pass the filter, in the server's order, except that an
    /// experiment's VMs follow its header where its first VM would be (folded, the
    /// header alone; a filter shows what it matches, folded or not); then the pool's
    /// bioxen VMs that have no session here (detached).
    pub fn visible(&self) -> Vec<Row<'_>> {
        let f = self.filter.to_lowercase();
        // Sessions in the list's order, then pool VMs with no session.
        let rows: Vec<Row> = self
            .in_order()
            .into_iter()
            .map(Row::Session)
            .chain(self.detached_pool_vms().into_iter().map(Row::Pool))
            .collect();
        let mut members: HashMap<&str, Vec<Row>> = HashMap::new();
        for row in &rows {
            if let Some(name) = self.group_of(row)
                && row.matches(&f, self)
            {
                members.entry(name).or_default().push(*row);
            }
        }
        let mut out = Vec::new();
        for row in rows.iter().copied() {
            match self.group_of(&row) {
                None if row.matches(&f, self) => out.push(row),
                None => {}
                // The group goes where its first VM would be.
                Some(name) => {
                    if let Some(shown) = members.remove(name) {
                        out.push(Row::Group(name));
                        if !f.is_empty() || !self.is_folded(name) {
                            out.extend(shown);
                        }
                    }
                }
            }
        }
        out
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
                    .any(|r| Some(&r.name) == vm.bioxen_id.as_ref())
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
        self.visible().into_iter().find(|r| r.id() == *id)
    }

    /// The session selected, if the selected row is one.
    pub fn current_vm(&self) -> Option<VmId> {
        match self.current {
            Some(RowId::Vm(vm)) => Some(vm),
            _ => None,
        }
    }

    pub fn current_info(&self) -> Option<&VmInfo> {
        self.info(self.current_vm()?)
    }

    /// The session numbered `vm`, as the server last listed it.
    pub fn info(&self, vm: VmId) -> Option<&VmInfo> {
        self.rows.iter().find(|r| r.vm == vm)
    }

    /// What the session numbered `vm` is called, for messages; its number once it is
    /// gone from the list.
    pub fn name_of(&self, vm: VmId) -> String {
        self.info(vm)
            .map(|i| i.name.clone())
            .unwrap_or_else(|| vm.to_string())
    }

    /// The session numbered `vm` as calls name it.
    fn target(&self, vm: VmId) -> Target {
        Target {
            vm,
            name: self.name_of(vm),
        }
    }

    /// Shows a message in the status bar. It may quote a pool's or a VM's words, so it
    /// is made safe for the terminal first.
    pub fn set_message(&mut self, text: impl Into<String>, level: Level) {
        self.message = Some((bioxen_text::sanitize::line(&text.into()), level));
        let shows = match level {
            Level::Info => MESSAGE_SHOWS,
            Level::Error => ERROR_SHOWS,
        };
        self.message_until = Some(self.now + shows);
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
        let action = self.keymap.action(Mode::List, &input::key(&key));
        if self.on_group_key(action) {
            return;
        }
        match action {
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
            Some(Action::Fold) => self.fold_here(true),
            Some(Action::Unfold) => self.fold_here(false),
            Some(Action::LoadExperiment) => self.open_load(),
            Some(Action::SearchAll) => self.open_search_all(),
            Some(Action::SortName) => self.sort_by(SortBy::Name),
            Some(Action::SortState) => self.sort_by(SortBy::State),
            Some(Action::SortCpu) => self.sort_by(SortBy::Cpu),
            Some(Action::SortMem) => self.sort_by(SortBy::Mem),
            Some(Action::SortUptime) => self.sort_by(SortBy::Uptime),
            Some(Action::SortProgress) => self.sort_by(SortBy::Progress),
            Some(Action::GroupBy) => self.next_grouping(),
            Some(Action::ChartShorter) => self.chart_window(false),
            Some(Action::ChartLonger) => self.chart_window(true),
            _ => {
                if let Some(d) = Keymap::digit(&input::key(&key)) {
                    self.select_tab(d);
                }
            }
        }
    }

    fn on_terminal_key(&mut self, key: KeyEvent) {
        if let Some(since) = self.prefix_since.take() {
            if self.now.saturating_duration_since(since) <= PREFIX_TIMEOUT {
                return self.on_prefix_key(key);
            }
        }
        if self.keymap.prefix.matches(&input::key(&key)) {
            self.prefix_since = Some(self.now);
            return;
        }
        if self.scroll.is_some() && self.on_scroll_key(&key) {
            return;
        }
        self.scroll = None;
        // An ended VM's pane keeps its last screen; `r` there starts it again, as
        // tmux's respawn-pane does for a dead pane.
        if key.code == KeyCode::Char('r')
            && key.modifiers.difference(KeyModifiers::SHIFT).is_empty()
            && self.broadcast_targets().is_none()
            && self.current_info().is_some_and(|i| !i.state.is_alive())
        {
            return self.restart_current();
        }
        let modes = self.current_modes();
        if let Some(bytes) = encode::key(&key, modes) {
            self.send(&bytes);
        }
    }

    fn on_prefix_key(&mut self, key: KeyEvent) {
        if key.code == KeyCode::Esc {
            return;
        }
        if let Some(d) = Keymap::digit(&input::key(&key)) {
            return self.select_tab(d);
        }
        match self.keymap.action(Mode::Prefix, &input::key(&key)) {
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
            Some(Action::Layout) => {
                self.with_grid(|g, _| g.layout = g.layout.next());
                if let Some(g) = self.shown_grid() {
                    let text = format!("layout: {}", g.layout.label());
                    self.set_message(text, Level::Info);
                }
            }
            Some(Action::Broadcast) => self.with_grid(|g, _| g.broadcast = !g.broadcast),
            Some(Action::Exclude) => self.with_grid(|g, vm| {
                if !g.excluded.remove(&vm) {
                    g.excluded.insert(vm);
                }
            }),
            Some(Action::CloseGrid) => self.close_grid(),
            Some(Action::Silence) => self.cycle_silence(),
            Some(Action::Rename) => self.open_rename(),
            Some(Action::GoToTab) => {
                self.overlay = Some(Overlay::GoToTab {
                    number: String::new(),
                })
            }
            Some(Action::SearchAll) => self.open_search_all(),
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
                let prefix = input::event(self.keymap.prefix);
                if let Some(bytes) = encode::key(&prefix, modes) {
                    self.send(&bytes);
                }
            }
            _ => {}
        }
    }

    fn on_filter_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Esc => {
                self.filter.clear();
                self.filter_editing = false;
            }
            KeyCode::Enter => self.filter_editing = false,
            _ => {
                text_field::edit(&mut self.filter, &key, |_| true, 100);
            }
        }
        // Keep the selection on a visible row, selected as moving onto it selects it:
        // watched, so the pane shows its screen, and not flagged as unseen.
        let visible: Vec<RowId> = self.visible().iter().map(Row::id).collect();
        if self.current.as_ref().is_none_or(|c| !visible.contains(c)) {
            match visible.first() {
                Some(first) => self.select(first.clone()),
                None => {
                    self.current = None;
                    self.sync_view(false);
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
                .current_vm()
                .and_then(|vm| self.mirrors.get(&vm))
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
            if self.grid.is_none() && self.on_pane_drag(m.kind, row, col) {
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
                let index = (m.row - list.y)
                    .checked_sub(2)
                    .map(|i| usize::from(i) + self.list_first.get());
                let id = index.and_then(|i| self.visible().get(i).map(Row::id));
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
            Update::Output { vm, bytes } => {
                let current = self.current_vm() == Some(vm);
                if let Some(screen) = self.mirrors.get_mut(&vm) {
                    // Queries are the server's to answer; the mirror only shows. Only
                    // shown screens are mirrored, so any output changes the frame.
                    let _ = screen.feed(&bytes);
                    if current {
                        let (now, kept) = (screen.rows_scrolled(), screen.scrollback_len());
                        self.keep_scrolled_view(now, kept);
                    }
                    self.dirty = true;
                    self.urgent |= self.echo_awaited.remove(&vm);
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

    /// Whether a VM being made is shown when it is listed and when it is made: only
    /// to a user still in the pane the create opened. One who went back to the list
    /// meanwhile stays there, and the keys they type next are the list's, not the
    /// new VM's.
    fn follows_create(&self) -> bool {
        self.focus == Focus::Terminal
    }

    /// Scrolled back: the view stays on the same lines while new ones arrive below,
    /// whether parsed here or in a newer screen from the server (a flood's).
    /// `now`: rows ever scrolled into the screen's history; `kept`: those it holds.
    fn keep_scrolled_view(&mut self, now: u64, kept: usize) {
        if let Some(offset) = self.scroll {
            let arrived = now.saturating_sub(self.scroll_base) as usize;
            self.scroll = Some((offset + arrived).min(kept));
            self.scroll_base = now;
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Vms(rows) => self.set_rows(rows),
            Event::Screen { vm, snapshot } => {
                if self.watching.contains_key(&vm) {
                    let ui = &self.config.ui;
                    let mirror =
                        Screen::from_snapshot(&snapshot, ui.scrollback, ui.scrollback_bytes);
                    let current = self.current_vm() == Some(vm);
                    // A screen sent ahead of its history is shown, but a scrolled-back
                    // view or a jump to a found line waits for the rows it needs.
                    let whole = !snapshot.history_follows;
                    if current && whole {
                        self.keep_scrolled_view(mirror.rows_scrolled(), mirror.scrollback_len());
                    }
                    let first = self.mirrors.insert(vm, mirror).is_none();
                    self.urgent |= first && current;
                    // A glanced tile's echo comes as its screen.
                    self.urgent |= self.echo_awaited.remove(&vm);
                    self.dirty = true;
                    if whole {
                        self.apply_jump();
                    }
                }
            }
            Event::Resized { vm, rows, cols } => {
                let size = Size::new(rows, cols);
                // Another client sized it (a second dashboard, smaller or larger): this
                // one sizes it back when the user next types into it, as tmux's
                // `window-size latest` does, so closing the other window does not
                // leave this one's VM at the other's size.
                match self.sizes.get(&vm) {
                    Some(sent) if *sent != size => self.outsized.insert(vm),
                    _ => self.outsized.remove(&vm),
                };
                if let Some(screen) = self.mirrors.get_mut(&vm) {
                    screen.resize(size);
                    self.dirty = true;
                }
            }
            Event::Activity { vm } => {
                if !self.watching.contains_key(&vm) && self.unseen.insert(vm) {
                    self.dirty = true;
                }
            }
            Event::State { vm, state } => match state {
                VmState::Starting | VmState::Running => {
                    self.restarting.remove(&vm);
                }
                VmState::Exited(_) | VmState::Killed(_) | VmState::Failed(_)
                    if self.restarting.contains(&vm) => {}
                VmState::Exited(_) | VmState::Killed(_) | VmState::Failed(_) => {
                    let text = format!("{}: {}", self.name_of(vm), state.label());
                    self.set_message(text.clone(), Level::Info);
                    if !self.in_view(vm) {
                        self.marks.entry(vm).or_default().exit = true;
                    }
                    self.forward(AlertKind::Exit, text);
                }
                _ => {}
            },
            Event::Alert { vm, alert } => self.on_alert(vm, alert),
            // Everything here keys on the number; the list that follows has the name.
            Event::Renamed { .. } => self.dirty = true,
            Event::Notice { vm, text } => {
                let text = match vm {
                    Some(vm) => format!("{}: {text}", self.name_of(vm)),
                    None => text,
                };
                self.set_message(text, Level::Error);
            }
            Event::Pool(info) => {
                self.warning = info.warning.clone();
                if let Some(failed) = info.failed {
                    self.pools.remove(&info.name);
                    self.set_message(failed, Level::Error);
                } else {
                    let view = PoolView {
                        status: info.status,
                        vms: info.vms.len(),
                    };
                    let mut vms = info.vms;
                    for vm in &mut vms {
                        vm.pool = info.name.clone();
                    }
                    self.on_pool(&info.name, view, vms);
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
                // Once done, the view holds the outcome's whole output already.
                if let Some(Overlay::Progress(p)) = &mut self.overlay
                    && p.vm == vm
                    && p.done.is_none()
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
            Done::Created(Ok((vm, name))) => {
                self.creating = None;
                if self.follows_create() {
                    self.select(RowId::Vm(vm));
                    self.attach_current();
                }
                self.set_message(format!("created {name}"), Level::Info);
            }
            Done::Created(Err(e)) => {
                self.creating = None;
                self.set_message(e, Level::Error);
            }
            Done::Failed(e) => self.set_message(e, Level::Error),
            Done::Up {
                path,
                forced,
                result,
            } => self.on_up_done(path, forced, result),
            Done::Completed { typed, found } => self.on_completed(typed, found),
            Done::Found(result) => self.on_found(result),
            Done::History { of, window, result } => self.on_history(of, window, result),
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
            Done::Renamed {
                target,
                new,
                result,
            } => {
                let open = match &mut self.overlay {
                    Some(Overlay::Rename(form)) if form.target.vm == target.vm && form.pending => {
                        Some(form)
                    }
                    _ => None,
                };
                let id = target.name;
                match (result, open) {
                    (Ok(()), Some(_)) => {
                        self.overlay = None;
                        self.set_message(format!("renamed {id} to {new}"), Level::Info);
                    }
                    (Ok(()), None) => {
                        self.set_message(format!("renamed {id} to {new}"), Level::Info)
                    }
                    (Err(e), Some(form)) => {
                        form.pending = false;
                        form.error = Some(e);
                        self.dirty = true;
                    }
                    (Err(e), None) => {
                        self.set_message(format!("cannot rename {id}: {e}"), Level::Error)
                    }
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
                            bioxen_proto::package::failure_cause(&r.output)
                        ),
                    ),
                    Err(e) => (false, e.clone()),
                };
                if let Some(Overlay::Progress(p)) = &mut self.overlay {
                    // The outcome carries everything luarocks printed. The lines streamed
                    // as events come through another channel than this reply and may
                    // still be on their way: the view shows the whole output with its end.
                    if let Ok(r) = &result {
                        p.output = r.output.clone();
                    }
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
            .filter(|at| *at > self.now)
            .min();
        let stale = stale.into_iter().chain(self.message_until).min();
        if self.zoom || self.grid.is_some() || !self.uptime_drawn.get() {
            return stale;
        }
        let (base, received) = (&self.received.0, self.received.1);
        let elapsed = self.now.saturating_duration_since(received).as_secs();
        self.rows
            .iter()
            .zip(base)
            .filter(|(row, _)| row.state == VmState::Running)
            .map(|(_, &base)| {
                let next = bioxen_text::figures::uptime_changes_at(base + elapsed);
                received + Duration::from_secs(next - base)
            })
            .chain(stale)
            .min()
    }

    /// Uptimes count on from the last list, and the dashboard redraws only if an uptime
    /// label changed.
    fn on_tick(&mut self) {
        if self.message_until.is_some_and(|at| at <= self.now) {
            self.message = None;
            self.message_until = None;
            self.dirty = true;
        }
        let elapsed = self
            .now
            .saturating_duration_since(self.received.1)
            .as_secs();
        for (row, base) in self.rows.iter_mut().zip(&self.received.0) {
            if row.state == VmState::Running {
                row.uptime_secs = base + elapsed;
            }
        }
        let uptimes: Vec<String> = self
            .rows
            .iter()
            .map(|r| bioxen_text::figures::uptime(r.uptime_secs))
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

    /// A pool's cache changed: redraw only if what the list or tab bar shows changed.
    pub fn on_pool(&mut self, name: &str, view: PoolView, vms: Vec<PoolVm>) {
        let mut all: Vec<PoolVm> = self
            .pool_vms
            .iter()
            .filter(|vm| vm.pool != name)
            .cloned()
            .collect();
        all.extend(vms.iter().map(PoolVm::for_display));
        if self.pool_vms != all {
            let before = self.shown_figures();
            self.pool_vms = all;
            self.figures_arrived(before);
            self.dirty = true;
            // Pool VMs arrive after start-up: select one if nothing is selected yet.
            if self.current.is_none() {
                self.current = self.visible().first().map(Row::id);
            }
        }
        if self.pools.get(name) != Some(&view) {
            if let PoolStatus::Retrying { error, .. } = &view.status {
                self.set_message(format!("pool {name}: {error} (retrying)"), Level::Error);
            }
            self.pools.insert(name.to_string(), view);
            self.dirty = true;
        }
    }

    /// Cancels an armed prefix whose second has passed.
    fn expire_prefix(&mut self) {
        if self
            .prefix_since
            .is_some_and(|t| self.now.saturating_duration_since(t) >= PREFIX_TIMEOUT)
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
        let visible: Vec<RowId> = self.visible().iter().map(Row::id).collect();
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

    fn select(&mut self, id: RowId) {
        let from_grid = self.grid.take().is_some();
        if self.current.as_ref() != Some(&id) || from_grid {
            if self.focus == Focus::Terminal
                && let Some(old) = self.current_vm()
            {
                self.notify(Request::Detach { vm: old.into() });
            }
            self.scroll = None;
        }
        self.current = Some(id);
        if let Some(vm) = self.current_vm() {
            self.unfold_for(vm);
            self.unseen.remove(&vm);
            self.marks.remove(&vm);
            if self.focus == Focus::Terminal && self.info(vm).is_some() {
                self.notify(Request::Attach { vm: vm.into() });
            }
        }
        self.sync_view(false);
        self.dirty = true;
    }

    /// Selects a row and attaches to its VM, as `bioxen attach VM` opens.
    pub fn open(&mut self, id: RowId) {
        self.select(id);
        self.attach_current();
    }

    /// Opens the row called `name`, for `bioxen attach NAME`; false when none is. A
    /// session is found wherever it sits (a folded experiment's too, which unfolds);
    /// pool VMs are found among the rows shown.
    pub fn open_named(&mut self, name: &str) -> bool {
        let found = self
            .rows
            .iter()
            .find(|info| info.name == name)
            .map(|info| RowId::Vm(info.vm))
            .or_else(|| {
                self.visible()
                    .iter()
                    .find(|r| !matches!(r, Row::Group(_)) && r.name() == name)
                    .map(Row::id)
            });
        found.map(|id| self.open(id)).is_some()
    }

    /// Opens the session called `name` as `bioxen attach NAME` starts, with the list
    /// that says it exists. Its screen was asked for with that list (see
    /// [`crate::watch_on_attach`]), so it is not asked for again.
    /// It is selected before the list arrives, so the list's first VM is not watched
    /// on the way.
    pub fn open_on_attach(&mut self, name: &str, listed: Vec<VmInfo>) -> bool {
        if let Some(vm) = listed.iter().find(|i| i.name == name).map(|i| i.vm) {
            self.current = Some(RowId::Vm(vm));
            self.watching.insert(vm, true);
        }
        self.set_rows(listed);
        self.open_named(name)
    }

    fn attach_current(&mut self) {
        if let Some(Row::Pool(vm)) = self.current_row() {
            let vm = vm.clone();
            return self.attach_pool_vm(vm);
        }
        let Some(vm) = self.current_vm() else {
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
        // By number, whether or not the list has it yet: the server had it first (a
        // create is answered before the list that shows the new VM may come).
        self.notify(Request::Attach { vm: vm.into() });
        self.unseen.remove(&vm);
        self.marks.remove(&vm);
        self.focus = Focus::Terminal;
        self.filter_editing = false;
        self.dirty = true;
    }

    fn detach(&mut self) {
        if let Some(vm) = self.current_vm()
            && self.info(vm).is_some()
        {
            self.notify(Request::Detach { vm: vm.into() });
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
        let Some(vm) = self.current_vm() else {
            return;
        };
        self.call(Call::ToggleLog(self.target(vm)));
    }

    // ----- typing into VMs ----------------------------------------------------------------

    fn current_modes(&self) -> encode::Modes {
        self.current_vm()
            .and_then(|vm| self.mirrors.get(&vm))
            .map(|s| encode::Modes::of(s.vt()))
            .unwrap_or_default()
    }

    /// Sends typing (keys, pastes) to the VM shown, or to every tile of a grid that
    /// broadcasts.
    fn send(&mut self, bytes: &[u8]) {
        if self.read_only {
            return self.set_message(
                "read-only: keys go to no VM (attached with -r)",
                Level::Info,
            );
        }
        for vm in std::mem::take(&mut self.outsized) {
            if let Some(&size) = self.sizes.get(&vm)
                && self.watching.contains_key(&vm)
            {
                self.notify(Request::Resize {
                    vm: vm.into(),
                    rows: size.rows,
                    cols: size.cols,
                });
            }
        }
        match self.broadcast_targets() {
            Some(targets) => {
                for vm in targets {
                    self.echo_awaited.insert(vm);
                    self.notify(Request::SendInput {
                        vm: vm.into(),
                        data: bytes.to_vec(),
                    });
                }
            }
            None => self.send_to_current(bytes),
        }
    }

    fn send_to_current(&mut self, bytes: &[u8]) {
        let Some(vm) = self.current_vm() else {
            return;
        };
        let hint = match self.current_info() {
            Some(info) if !info.state.is_alive() => Some(format!(
                "{} is {}: r restarts it, {} goes back to the list",
                info.name,
                info.state.label(),
                self.keymap
                    .key_for(Mode::Prefix, Action::Detach)
                    .unwrap_or_default(),
            )),
            Some(_) => None,
            None => return,
        };
        match hint {
            Some(hint) => self.set_message(hint, Level::Error),
            // A failure (a session reconnecting) comes back as an update.
            None => {
                self.echo_awaited.insert(vm);
                self.notify(Request::SendInput {
                    vm: vm.into(),
                    data: bytes.to_vec(),
                });
            }
        }
    }
}
