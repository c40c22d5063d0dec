//! The dashboard's state and how input changes it.
//!
//! Everything here is synchronous: keys and manager events update the state and mark
//! it dirty; slow work (creating, killing a VM) runs in tasks that report back through
//! [`UiMsg`], so the UI never waits on a VM.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};
use tokio::sync::mpsc::UnboundedSender;

use super::keymap::{Action, Keymap, Mode};
use super::layout::Areas;
use crate::manager::{Event, Manager, VmInfo};
use crate::term::encode;
use crate::vm::{Size, VmKind, VmOptions, VmState};
use crate::xapi::PoolStatus;

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
    Help { scroll: u16 },
    Create(CreateForm),
    Confirm(Confirm),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateForm {
    pub kinds: Vec<VmKind>,
    pub kind: usize,
    pub name: String,
    /// The generated name used when `name` is left empty.
    pub placeholder: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    Kill { id: String, pid: Option<u32> },
    Remove { id: String },
    Quit { running: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

/// What the tab bar says about the pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolView {
    pub status: PoolStatus,
    pub vms: usize,
}

/// Results of background work.
#[derive(Debug)]
pub enum UiMsg {
    Created(Result<String, String>),
    Info(String),
    Failed(String),
    ShutdownDone,
}

pub struct App {
    pub manager: Manager,
    pub keymap: Keymap,
    pub rows: Vec<VmInfo>,
    /// The VM selected in the list and shown in the terminal pane.
    pub current: Option<String>,
    pub focus: Focus,
    pub prefix_since: Option<Instant>,
    /// Lines scrolled back in the terminal pane; `None` is the live view.
    pub scroll: Option<usize>,
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
    pub quit: bool,
    /// Set while VMs are being shut down before quitting.
    pub quitting: bool,
    /// The pool's state for the tab bar, when `[xcpng]` is configured.
    pub pool: Option<PoolView>,
    /// A warning that stays on screen while it holds (unverified TLS).
    pub warning: Option<String>,
    /// Labels of the uptime column as last drawn, to redraw only when one changes.
    drawn_uptimes: Vec<String>,
    tx: UnboundedSender<UiMsg>,
}

impl App {
    pub fn new(
        manager: Manager,
        keymap: Keymap,
        area: Rect,
        mouse: bool,
        tx: UnboundedSender<UiMsg>,
    ) -> App {
        let mut app = App {
            manager,
            keymap,
            rows: Vec::new(),
            current: None,
            focus: Focus::List,
            prefix_since: None,
            scroll: None,
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
            quit: false,
            quitting: false,
            pool: None,
            warning: None,
            drawn_uptimes: Vec::new(),
            tx,
        };
        app.pane_size = app.areas().pane_size();
        app.refresh();
        app
    }

    pub fn areas(&self) -> Areas {
        Areas::new(self.area, self.zoom)
    }

    /// Re-reads the VM list from the manager.
    pub fn refresh(&mut self) {
        self.rows = self.manager.list();
        if let Some(id) = &self.current
            && !self.rows.iter().any(|r| &r.id == id)
        {
            self.current = None;
        }
        if self.current.is_none() {
            self.current = self.visible().first().map(|r| r.id.clone());
            if self.current.is_none() {
                self.focus = Focus::List;
            }
        }
        self.unseen
            .retain(|id| self.rows.iter().any(|r| &r.id == id));
        self.dirty = true;
    }

    /// Rows that pass the filter.
    pub fn visible(&self) -> Vec<&VmInfo> {
        let f = self.filter.to_lowercase();
        self.rows
            .iter()
            .filter(|r| {
                f.is_empty()
                    || r.id.to_lowercase().contains(&f)
                    || r.kind.as_str().contains(&f)
                    || r.state.label().contains(&f)
            })
            .collect()
    }

    pub fn current_info(&self) -> Option<&VmInfo> {
        let id = self.current.as_ref()?;
        self.rows.iter().find(|r| &r.id == id)
    }

    pub fn set_message(&mut self, text: impl Into<String>, level: Level) {
        self.message = Some((text.into(), level));
        self.dirty = true;
    }

    // ----- events from the terminal ---------------------------------------------------

    pub fn on_terminal_event(&mut self, event: TermEvent) {
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
        let size = self.areas().pane_size();
        if size != self.pane_size {
            self.pane_size = size;
            for row in &self.rows {
                let _ = self.manager.resize(&row.id, size);
            }
        }
        self.dirty = true;
    }

    pub fn on_key(&mut self, key: KeyEvent) {
        self.dirty = true;
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
            Some(Action::Zoom) => self.toggle_zoom(),
            Some(Action::Help) => self.overlay = Some(Overlay::Help { scroll: 0 }),
            Some(Action::Quit) => self.ask_quit(),
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
        if self.scroll.is_some() && self.on_scroll_key(&key) {
            return;
        }
        if self.keymap.prefix.matches(&key) {
            self.prefix_since = Some(Instant::now());
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
            Some(Action::Zoom) => self.toggle_zoom(),
            Some(Action::ToggleLog) => self.toggle_log(),
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

    /// Keys in scrollback mode; returns false for keys that leave it and go to the VM.
    fn on_scroll_key(&mut self, key: &KeyEvent) -> bool {
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
                return true;
            }
            _ => return false,
        };
        self.scroll_by(delta);
        true
    }

    fn enter_scroll(&mut self, by: isize) {
        self.scroll = Some(0);
        self.scroll_by(by);
    }

    fn scroll_by(&mut self, delta: isize) {
        let Some(id) = self.current.clone() else {
            return;
        };
        let max = self
            .manager
            .with_screen(&id, |s| s.scrollback_len())
            .unwrap_or(0);
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
        let visible: Vec<String> = self.visible().iter().map(|r| r.id.clone()).collect();
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
            Overlay::Create(mut form) => match key.code {
                KeyCode::Esc => {}
                KeyCode::Enter => self.create(form),
                KeyCode::Left | KeyCode::Up if !form.kinds.is_empty() => {
                    form.kind = (form.kind + form.kinds.len() - 1) % form.kinds.len();
                    self.overlay = Some(Overlay::Create(form));
                }
                KeyCode::Right | KeyCode::Down | KeyCode::Tab if !form.kinds.is_empty() => {
                    form.kind = (form.kind + 1) % form.kinds.len();
                    self.overlay = Some(Overlay::Create(form));
                }
                KeyCode::Backspace => {
                    form.name.pop();
                    self.overlay = Some(Overlay::Create(form));
                }
                KeyCode::Char(c)
                    if !key.modifiers.contains(KeyModifiers::CONTROL)
                        && (c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                        && form.name.len() < 64 =>
                {
                    form.name.push(c);
                    self.overlay = Some(Overlay::Create(form));
                }
                _ => self.overlay = Some(Overlay::Create(form)),
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
        if areas.pane.contains(at) {
            let col = m.column - areas.pane.x;
            let row = m.row - areas.pane.y;
            let (mode, sgr) = self
                .current
                .as_ref()
                .and_then(|id| {
                    self.manager
                        .with_screen(id, |s| {
                            (
                                s.vt().mouse_protocol_mode(),
                                s.vt().mouse_protocol_encoding()
                                    == vt100::MouseProtocolEncoding::Sgr,
                            )
                        })
                        .ok()
                })
                .unwrap_or((vt100::MouseProtocolMode::None, false));
            let program_wants_mouse =
                mode != vt100::MouseProtocolMode::None && self.focus == Focus::Terminal;
            if program_wants_mouse && self.scroll.is_none() {
                if let Some(bytes) = encode::mouse(&m, col, row, sgr) {
                    self.send(&bytes);
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
                let id = index.and_then(|i| self.visible().get(i).map(|r| r.id.clone()));
                if let Some(id) = id {
                    self.select(id);
                    self.focus = Focus::List;
                }
                self.dirty = true;
            } else if areas.tabs.contains(at) {
                let hit = super::draw::tab_at(self, m.column - areas.tabs.x);
                if let Some(id) = hit {
                    self.select(id);
                    self.dirty = true;
                }
            }
        }
    }

    // ----- events from the manager and from background work ---------------------------

    pub fn on_manager_event(&mut self, event: Event) {
        match event {
            Event::Output(id) => {
                self.manager.take_dirty(&id);
                // Redraw for the shown VM, or when a tab first gets its unseen marker.
                if self.current.as_ref() == Some(&id) || self.unseen.insert(id) {
                    self.dirty = true;
                }
            }
            Event::Stats => self.refresh(),
            Event::Created(_) | Event::Removed(_) => {
                self.refresh();
                self.publish();
            }
            Event::State(id, state) => {
                self.refresh();
                self.publish();
                match state {
                    VmState::Exited(_) | VmState::Killed(_) | VmState::Failed(_) => {
                        self.set_message(format!("{id}: {}", state.label()), Level::Info);
                    }
                    _ => {}
                }
            }
            Event::Error(id, msg) => {
                let text = match id {
                    Some(id) => format!("{id}: {msg}"),
                    None => msg,
                };
                self.set_message(text, Level::Error);
            }
        }
    }

    pub fn on_ui_msg(&mut self, msg: UiMsg) {
        match msg {
            UiMsg::Created(Ok(id)) => {
                self.refresh();
                self.select(id.clone());
                self.attach_current();
                self.set_message(format!("created {id}"), Level::Info);
            }
            UiMsg::Created(Err(e)) | UiMsg::Failed(e) => self.set_message(e, Level::Error),
            UiMsg::Info(text) => self.set_message(text, Level::Info),
            UiMsg::ShutdownDone => self.quit = true,
        }
        self.refresh();
    }

    /// Called once a second: redraws only if an uptime label changed.
    pub fn on_tick(&mut self) {
        self.rows = self.manager.list();
        let uptimes: Vec<String> = self
            .rows
            .iter()
            .map(|r| super::format::uptime(r.uptime_secs))
            .collect();
        if uptimes != self.drawn_uptimes {
            self.drawn_uptimes = uptimes;
            self.dirty = true;
        }
    }

    /// The pool's cache changed: redraw only if what the tab bar shows changed.
    pub fn on_pool(&mut self, view: PoolView) {
        if self.pool.as_ref() != Some(&view) {
            if let PoolStatus::Retrying { error, .. } = &view.status {
                self.set_message(format!("pool: {error} (retrying)"), Level::Error);
            }
            self.pool = Some(view);
            self.dirty = true;
        }
    }

    /// Cancels an armed prefix whose second has passed.
    pub fn expire_prefix(&mut self) {
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

    fn publish(&self) {
        if let Err(e) = crate::registry::publish(&self.rows) {
            tracing::warn!("cannot publish the VM list for `bioxen ls`: {e}");
        }
    }

    fn move_selection(&mut self, delta: isize) {
        let visible: Vec<String> = self.visible().iter().map(|r| r.id.clone()).collect();
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
        if self.current.as_ref() != Some(&id) {
            if self.focus == Focus::Terminal
                && let Some(old) = &self.current
            {
                let _ = self.manager.detach(old);
            }
            self.scroll = None;
        }
        self.unseen.remove(&id);
        if self.focus == Focus::Terminal {
            let _ = self.manager.attach(&id);
        }
        self.current = Some(id);
        self.dirty = true;
    }

    fn select_tab(&mut self, index: usize) {
        if let Some(id) = self.rows.get(index).map(|r| r.id.clone()) {
            self.select(id);
        }
    }

    fn cycle_tab(&mut self, delta: isize) {
        if self.rows.is_empty() {
            return;
        }
        let pos = self
            .current
            .as_ref()
            .and_then(|c| self.rows.iter().position(|r| &r.id == c))
            .unwrap_or(0) as isize;
        let n = self.rows.len() as isize;
        self.select_tab(((pos + delta).rem_euclid(n)) as usize);
    }

    fn attach_current(&mut self) {
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
        let _ = self.manager.attach(&id);
        self.unseen.remove(&id);
        self.focus = Focus::Terminal;
        self.filter_editing = false;
        self.dirty = true;
    }

    fn detach(&mut self) {
        if let Some(id) = &self.current {
            let _ = self.manager.detach(id);
        }
        self.focus = Focus::List;
        self.scroll = None;
    }

    fn toggle_zoom(&mut self) {
        self.zoom = !self.zoom;
        self.apply_pane_size();
    }

    fn toggle_log(&mut self) {
        let Some(id) = self.current.clone() else {
            return;
        };
        match self.manager.toggle_output_log(&id) {
            Ok(Some(path)) => self.set_message(
                format!("{id}: logging output to {}", path.display()),
                Level::Info,
            ),
            Ok(None) => self.set_message(format!("{id}: output log off"), Level::Info),
            Err(e) => self.set_message(format!("{id}: cannot log output: {e}"), Level::Error),
        }
    }

    fn open_create(&mut self) {
        self.overlay = Some(Overlay::Create(CreateForm {
            kinds: vec![VmKind::Local],
            kind: 0,
            name: String::new(),
            placeholder: self.manager.generate_name(),
        }));
    }

    fn create(&mut self, form: CreateForm) {
        let name = if form.name.is_empty() {
            form.placeholder
        } else {
            form.name
        };
        let kind = form.kinds.get(form.kind).copied().unwrap_or(VmKind::Local);
        let options = VmOptions {
            size: self.pane_size,
            ..VmOptions::default()
        };
        let manager = self.manager.clone();
        let tx = self.tx.clone();
        self.set_message(format!("creating {name}..."), Level::Info);
        tokio::spawn(async move {
            let result = manager
                .create_interactive_vm(Some(&name), kind, options)
                .await
                .map_err(|e| format!("cannot create {name}: {e}"));
            let _ = tx.send(UiMsg::Created(result));
        });
    }

    fn ask_kill(&mut self) {
        let Some(info) = self.current_info() else {
            return;
        };
        let confirm = if info.state.is_alive() {
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
        if info.state.is_alive() {
            let id = info.id.clone();
            self.set_message(
                format!("{id} is running; kill it first to restart"),
                Level::Info,
            );
            return;
        }
        let id = info.id.clone();
        let manager = self.manager.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let msg = match manager.restart(&id).await {
                Ok(()) => UiMsg::Info(format!("{id} restarted")),
                Err(e) => UiMsg::Failed(format!("cannot restart {id}: {e}")),
            };
            let _ = tx.send(msg);
        });
    }

    fn ask_quit(&mut self) {
        let running = self.rows.iter().filter(|r| r.state.is_alive()).count();
        if running == 0 {
            self.begin_quit();
        } else {
            self.overlay = Some(Overlay::Confirm(Confirm::Quit { running }));
        }
    }

    /// Terminates every VM in the background, then quits.
    pub fn begin_quit(&mut self) {
        if self.quitting {
            return;
        }
        self.quitting = true;
        self.set_message("terminating VMs...", Level::Info);
        let manager = self.manager.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            manager.shutdown().await;
            let _ = tx.send(UiMsg::ShutdownDone);
        });
    }

    fn confirmed(&mut self, confirm: Confirm) {
        match confirm {
            Confirm::Kill { id, .. } => {
                let manager = self.manager.clone();
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let msg = match manager.kill(&id).await {
                        Ok(state) => UiMsg::Info(format!("{id}: {}", state.label())),
                        Err(e) => UiMsg::Failed(format!("cannot kill {id}: {e}")),
                    };
                    let _ = tx.send(msg);
                });
                self.focus = Focus::List;
            }
            Confirm::Remove { id } => match self.manager.remove(&id) {
                Ok(()) => self.set_message(format!("removed {id}"), Level::Info),
                Err(e) => self.set_message(e.to_string(), Level::Error),
            },
            Confirm::Quit { .. } => self.begin_quit(),
        }
    }

    fn current_modes(&self) -> encode::Modes {
        self.current
            .as_ref()
            .and_then(|id| {
                self.manager
                    .with_screen(id, |s| encode::Modes::of(s.vt()))
                    .ok()
            })
            .unwrap_or_default()
    }

    fn send(&mut self, bytes: &[u8]) {
        let Some(id) = self.current.clone() else {
            return;
        };
        if let Err(e) = self.manager.send_input(&id, bytes) {
            let hint = match self.current_info() {
                Some(info) if !info.state.is_alive() => format!(
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
                ),
                _ => e.to_string(),
            };
            self.set_message(hint, Level::Error);
        }
    }
}
