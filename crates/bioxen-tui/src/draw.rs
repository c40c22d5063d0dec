//! Drawing one frame: the tab bar, the VM list, the terminal pane, the status bar and
//! any dialog on top. Drawing only reads state; it never changes what the app does.

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::{App, Focus, Level, TabId};
use super::{dialogs, grid_pane, list_pane, terminal_pane};
use bioxen_config::keymap::{Action, Mode};
use bioxen_proto::{PoolStatus, VmId, VmState};
use bioxen_term::Screen;
use bioxen_text::columns::truncate;

/// Where drawing gets a session's screen from: the dashboard's mirrors, or recorded
/// screens in tests. Drawing only reads them.
pub trait Screens {
    fn with_screen(&self, vm: VmId, f: &mut dyn FnMut(&Screen));
}

impl Screens for HashMap<VmId, Screen> {
    fn with_screen(&self, vm: VmId, f: &mut dyn FnMut(&Screen)) {
        if let Some(s) = self.get(&vm) {
            f(s);
        }
    }
}

pub fn draw(frame: &mut Frame, app: &App, screens: &dyn Screens) {
    let areas = app.areas();
    draw_tabs(frame, app, screens, areas.tabs);
    if let Some(list) = areas.list {
        list_pane::draw(frame, app, list);
    }
    match app.shown_grid() {
        Some(grid) => grid_pane::draw(frame, app, grid, screens, areas.pane),
        None => terminal_pane::draw(frame, app, screens, areas.frame, areas.pane),
    }
    draw_status(frame, app, areas.status);
    dialogs::draw(frame, app);
}

pub fn state_color(state: &VmState) -> Color {
    match state {
        VmState::Starting | VmState::Reconnecting(_) | VmState::Waiting(_) => Color::Yellow,
        VmState::Running => Color::Green,
        VmState::Exited(0) => Color::DarkGray,
        VmState::Exited(_) | VmState::Lost(_) => Color::Magenta,
        VmState::Killed(_) | VmState::Failed(_) | VmState::Blocked(_) => Color::Red,
    }
}

/// The tab labels in order, with the VM or grid each one selects.
pub fn tab_labels(app: &App, screens: &dyn Screens) -> Vec<(String, TabId)> {
    let vms = app.rows.iter().enumerate().map(|(i, row)| {
        let mut title = None;
        screens.with_screen(row.vm, &mut |s| title = s.title().map(str::to_string));
        let mut unseen = if app.unseen.contains(&row.vm) {
            "+".to_string()
        } else {
            String::new()
        };
        if let Some(marks) = app.marks.get(&row.vm) {
            unseen.push_str(&marks.flags());
        }
        if let Some(p) = app.progress(row) {
            unseen.push(super::format::progress_cell(p));
        }
        let label = match title {
            Some(t) => format!(" {i}:{}{unseen} [{}] ", row.name, truncate(&t, 24)),
            None => format!(" {i}:{}{unseen} ", row.name),
        };
        (label, TabId::Vm(row.vm))
    });
    let grids = app.grids.iter().enumerate().map(|(g, grid)| {
        let i = app.rows.len() + g;
        let unseen = if grid.vms.iter().any(|id| app.unseen.contains(id)) {
            "+"
        } else {
            ""
        };
        let cast = if grid.broadcast { " »" } else { "" };
        (
            format!(" {i}:grid({}){unseen}{cast} ", grid.vms.len()),
            TabId::Grid(g),
        )
    });
    vms.chain(grids).collect()
}

/// One piece of the tab bar after scrolling: a tab, or a marker for tabs that did not
/// fit on that side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TabPiece {
    Tab {
        label: String,
        id: TabId,
    },
    /// `«3 ` or ` 2»`: how many tabs are hidden on that side.
    Hidden {
        text: String,
    },
}

/// The tabs that fit in `width` columns, scrolled so that the current tab is always
/// shown, with markers counting the hidden tabs on either side. Drawing and mouse
/// clicks both use this, so a click lands on the tab that is drawn there.
pub fn tab_strip(app: &App, screens: &dyn Screens, width: u16) -> Vec<TabPiece> {
    let tabs = tab_labels(app, screens);
    let widths: Vec<usize> = tabs.iter().map(|(l, _)| l.chars().count()).collect();
    let width = usize::from(width);
    let n = tabs.len();
    let shown = app.current_tab();
    let current = tabs
        .iter()
        .position(|(_, id)| shown.as_ref() == Some(id))
        .unwrap_or(0);
    // A hidden tab's marks are counted in its side's marker (`«3 +2`): an alert must
    // not be lost because its tab scrolled away.
    let flagged: Vec<bool> = tabs
        .iter()
        .map(|(_, id)| wants_attention(app, id))
        .collect();
    let marker = |start: usize, end: usize, left: bool| {
        let hidden = end - start;
        let flags = flagged[start..end].iter().filter(|f| **f).count();
        let flags = match flags {
            0 => String::new(),
            f => format!(" +{f}"),
        };
        if hidden == 0 {
            String::new()
        } else if left {
            format!("«{hidden}{flags} ")
        } else {
            format!(" {hidden}{flags}»")
        }
    };
    let cost = |start: usize, end: usize| {
        widths[start..end].iter().sum::<usize>()
            + marker(0, start, true).chars().count()
            + marker(end, n, false).chars().count()
    };
    let (mut start, mut end) = (current.min(n), (current + 1).min(n));
    if cost(0, n) <= width {
        (start, end) = (0, n);
    } else {
        // Grow the window around the current tab, rightwards first, while it fits.
        loop {
            let mut grew = false;
            if end < n && cost(start, end + 1) <= width {
                end += 1;
                grew = true;
            }
            if start > 0 && cost(start - 1, end) <= width {
                start -= 1;
                grew = true;
            }
            if !grew {
                break;
            }
        }
    }
    let mut pieces = Vec::new();
    if start > 0 {
        pieces.push(TabPiece::Hidden {
            text: marker(0, start, true),
        });
    }
    for (label, id) in tabs.into_iter().take(end).skip(start) {
        pieces.push(TabPiece::Tab { label, id });
    }
    if end < n {
        pieces.push(TabPiece::Hidden {
            text: marker(end, n, false),
        });
    }
    pieces
}

/// Whether a tab carries a mark: output not seen, or an alert.
fn wants_attention(app: &App, tab: &TabId) -> bool {
    let vm = |vm: &VmId| {
        app.unseen.contains(vm) || app.marks.get(vm).is_some_and(|m| !m.flags().is_empty())
    };
    match tab {
        TabId::Vm(id) => vm(id),
        TabId::Grid(g) => app.grids.get(*g).is_some_and(|g| g.vms.iter().any(vm)),
    }
}

impl TabPiece {
    fn width(&self) -> u16 {
        let text = match self {
            TabPiece::Tab { label, .. } => label,
            TabPiece::Hidden { text } => text,
        };
        text.chars().count() as u16
    }
}

/// The tab at column `x` of the tab bar.
pub fn tab_at(app: &App, bar_width: u16, x: u16) -> Option<TabId> {
    let (_, tabs_width) = tab_bar_split(app, bar_width);
    let mut pos = BRAND.len() as u16;
    for piece in tab_strip(app, &app.mirrors, tabs_width) {
        let w = piece.width();
        if x >= pos && x < pos + w {
            return match piece {
                TabPiece::Tab { id, .. } => Some(id),
                TabPiece::Hidden { .. } => None,
            };
        }
        pos += w;
    }
    None
}

const BRAND: &str = " bioxen ";

/// The right side of the tab bar (the pool's state and any standing warning), and the
/// columns left between it and the brand for the tabs.
fn tab_bar_split(app: &App, bar_width: u16) -> (Line<'static>, u16) {
    let bar = Style::new().bg(Color::Indexed(236)).fg(Color::Gray);
    let mut right = Vec::new();
    // One pool is "pool"; several are each named.
    for (name, pool) in &app.pools {
        let label = if app.pools.len() == 1 { "pool" } else { name };
        let (text, color) = match &pool.status {
            PoolStatus::Connecting => (format!("{label}: connecting"), Color::Yellow),
            PoolStatus::Connected => (format!("{label}: {} VMs", pool.vms), Color::Green),
            PoolStatus::Retrying { attempt, .. } => (
                format!("{label}: unreachable (retry {attempt})"),
                Color::Red,
            ),
        };
        right.push(Span::styled(format!(" {text} "), bar.fg(color)));
    }
    if let Some(w) = &app.warning {
        right.push(Span::styled(
            format!(" ⚠ {w} "),
            Style::new()
                .fg(Color::Black)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ));
    }
    let line = Line::from(right).right_aligned();
    let used = BRAND.len() as u16 + line.width() as u16;
    (line, bar_width.saturating_sub(used))
}

fn draw_tabs(frame: &mut Frame, app: &App, screens: &dyn Screens, area: Rect) {
    let bar = Style::new().bg(Color::Indexed(236)).fg(Color::Gray);
    let mut spans = vec![Span::styled(
        BRAND,
        bar.fg(Color::Black)
            .bg(Color::Cyan)
            .add_modifier(Modifier::BOLD),
    )];
    let (right, tabs_width) = tab_bar_split(app, area.width);
    let shown = app.current_tab();
    for piece in tab_strip(app, screens, tabs_width) {
        match piece {
            TabPiece::Tab { label, id } => {
                let mut style = match &id {
                    TabId::Vm(vm) => {
                        let state = app.info(*vm).map(|r| &r.state);
                        let style = bar.fg(state.map(state_color).unwrap_or(Color::Gray));
                        match app.unseen.contains(vm) {
                            true => style.add_modifier(Modifier::BOLD),
                            false => style,
                        }
                    }
                    TabId::Grid(_) => bar.fg(Color::Cyan),
                };
                if shown.as_ref() == Some(&id) {
                    style = style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
                }
                spans.push(Span::styled(label, style));
            }
            TabPiece::Hidden { text } => {
                spans.push(Span::styled(text, bar.fg(Color::Yellow)));
            }
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(bar), area);
    if right.width() > 0 {
        let width = (right.width() as u16).min(area.width);
        let r = Rect::new(area.x + area.width - width, area.y, width, area.height);
        frame.render_widget(Paragraph::new(right), r);
    }
}

fn draw_status(frame: &mut Frame, app: &App, area: Rect) {
    // While a grid broadcasts, the status bar says so, whatever else is going on.
    if let Some(broadcast) = app.broadcast() {
        let key = |action| app.keymap.key_for(Mode::Prefix, action).unwrap_or_default();
        let text = match broadcast {
            super::app::Broadcast::To { targets, off_page } => {
                let others = match off_page {
                    0 => String::new(),
                    n => format!(" on screen ({n} not shown are not typed into)"),
                };
                format!(
                    " BROADCAST  typing goes to {}{others}  ·  {} stops  ·  {} leaves this tile out ",
                    plural(targets.len(), "VM", "VMs"),
                    key(Action::Broadcast),
                    key(Action::Exclude),
                )
            }
            super::app::Broadcast::Paused => format!(
                " BROADCAST  this tile is left out: typing goes to it alone  ·  {} puts it back  ·  {} stops ",
                key(Action::Exclude),
                key(Action::Broadcast),
            ),
        };
        frame.render_widget(
            Paragraph::new(truncate(&text, area.width as usize)).style(
                Style::new()
                    .fg(Color::White)
                    .bg(Color::Red)
                    .add_modifier(Modifier::BOLD),
            ),
            area,
        );
        return;
    }
    let (tag, tag_style) = mode_tag(app);
    let hints = hints(app);
    let mut spans = vec![
        Span::styled(format!(" {tag} "), tag_style),
        Span::raw(" "),
        Span::styled(hints.clone(), Style::new().fg(Color::Gray)),
    ];
    // What the message leaves room for counts the READ-ONLY badge, added last.
    let tag = match app.read_only {
        true => format!("{tag} READ-ONLY "),
        false => tag.to_string(),
    };
    if let Some((text, level)) = &app.message {
        let style = match level {
            Level::Info => Style::new().fg(Color::Cyan),
            Level::Error => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        };
        let used = tag.chars().count() + 3;
        let room = (area.width as usize).saturating_sub(used);
        let msg = truncate(text, room);
        let hints_room = room.saturating_sub(msg.chars().count() + 2);
        spans[2] = Span::styled(truncate(&hints, hints_room), Style::new().fg(Color::Gray));
        let pad = room.saturating_sub(msg.chars().count() + spans[2].content.chars().count());
        spans.push(Span::raw(" ".repeat(pad)));
        spans.push(Span::styled(msg, style));
    }
    if app.read_only {
        let badge = Style::new()
            .fg(Color::Black)
            .bg(Color::Red)
            .add_modifier(Modifier::BOLD);
        spans.insert(1, Span::styled(" READ-ONLY ", badge));
    }
    frame.render_widget(
        Paragraph::new(Line::from(spans)).style(Style::new().bg(Color::Indexed(235))),
        area,
    );
}

fn mode_tag(app: &App) -> (&'static str, Style) {
    let base = Style::new().fg(Color::Black).add_modifier(Modifier::BOLD);
    if app.prefix_since.is_some() {
        ("PREFIX", base.bg(Color::Yellow))
    } else if app.filter_editing {
        ("FILTER", base.bg(Color::Magenta))
    } else if app.scroll.is_some() {
        ("SCROLL", base.bg(Color::Blue))
    } else {
        match app.focus {
            Focus::List => ("LIST", base.bg(Color::Cyan)),
            Focus::Terminal => ("TERM", base.bg(Color::Green)),
        }
    }
}

/// Key hints for the current mode, from the keymap.
fn hints(app: &App) -> String {
    let km = &app.keymap;
    let hint = |mode: Mode, action: Action, label: &str| {
        km.key_for(mode, action).map(|k| format!("{k} {label}"))
    };
    let parts: Vec<Option<String>> = if app.prefix_since.is_some() {
        let mut v: Vec<Option<String>> = km
            .bindings
            .iter()
            .filter(|b| b.mode == Mode::Prefix)
            .map(|b| {
                b.keys
                    .first()
                    .map(|k| format!("{k} {}", b.name.replace('_', " ")))
            })
            .collect();
        v.push(Some("0-9 tab".into()));
        v.push(Some("Esc cancel".into()));
        v
    } else if app.filter_editing {
        vec![
            Some(format!("/{}", app.filter)),
            Some("Enter keep".into()),
            Some("Esc clear".into()),
        ]
    } else if let Some(search) = app.search.as_ref().filter(|s| s.editing) {
        let mark = if search.backward { '?' } else { '/' };
        vec![
            Some(format!("{mark}{}▏", search.query)),
            Some("Enter find".into()),
            Some("Esc cancel".into()),
        ]
    } else if let Some(sel) = app.selection {
        let shape = match sel.shape {
            crate::app::Shape::Chars => "characters",
            crate::app::Shape::Lines => "lines",
            crate::app::Shape::Block => "rectangle",
        };
        vec![
            Some(format!("selecting {shape}")),
            Some("hjkl w b e 0 $ g G / n move".into()),
            Some("v V C-v shape".into()),
            Some("y copy".into()),
            Some("Esc cancel".into()),
        ]
    } else if app.scroll.is_some() {
        let found = app.search.as_ref().map(|s| match s.missed {
            true => format!("not found: {}", s.query),
            false => format!("found: {}", s.query),
        });
        vec![
            found,
            Some("PgUp/PgDn/↑/↓ scroll".into()),
            Some("/ ? search".into()),
            Some("n/N again".into()),
            Some("v select".into()),
            Some("g/G top/bottom".into()),
            Some("q leave".into()),
        ]
    } else {
        match app.focus {
            Focus::List => vec![
                hint(Mode::List, Action::Create, "create"),
                hint(Mode::List, Action::Attach, "attach"),
                hint(Mode::List, Action::Kill, "kill"),
                hint(Mode::List, Action::Restart, "restart"),
                hint(Mode::List, Action::Filter, "filter"),
                hint(Mode::List, Action::Help, "help"),
                hint(Mode::List, Action::Quit, "quit"),
            ],
            Focus::Terminal if app.grid.is_some() => vec![
                hint(Mode::Prefix, Action::Detach, "detach"),
                Some(format!("{} ←↑↓→ tiles", km.prefix)),
                hint(Mode::Prefix, Action::Zoom, "zoom"),
                hint(Mode::Prefix, Action::Layout, "layout"),
                hint(Mode::Prefix, Action::Broadcast, "broadcast"),
                hint(Mode::Prefix, Action::Help, "help"),
            ],
            Focus::Terminal => vec![
                hint(Mode::Prefix, Action::Detach, "detach"),
                km.key_for(Mode::Prefix, Action::NextTab)
                    .map(|k| format!("{k}/p tabs")),
                hint(Mode::Prefix, Action::Scrollback, "scroll"),
                hint(Mode::Prefix, Action::Help, "help"),
            ],
        }
    };
    parts.into_iter().flatten().collect::<Vec<_>>().join("  ")
}

/// `1 VM`, `3 VMs`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}
