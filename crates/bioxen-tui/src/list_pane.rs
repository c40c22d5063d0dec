//! The VM list: name, kind, state, pid, CPU, memory and uptime of every VM.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, BorderType};

use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::app::{App, Focus, GroupBy, Row as ListRow};
use super::draw::state_color;
use super::format;
use super::history_chart;
use super::table::Table;
use bioxen_config::keymap::{Action, Mode};
use bioxen_proto::{PoolVm, VmInfo, VmState, signal_name};

/// Columns, dropped from the right end of this order when the pane is narrow.
#[derive(Clone, Copy, PartialEq)]
enum Col {
    Index,
    Name,
    Kind,
    State,
    Progress,
    Pid,
    Cpu,
    Trend,
    Mem,
    Up,
}

const COLUMNS: [(Col, &str, u16); 10] = [
    (Col::Index, "#", 2),
    (Col::Name, "NAME", 8),
    (Col::Kind, "KIND", 5),
    (Col::State, "STATE", 12),
    (Col::Progress, "PROGRESS", 9),
    (Col::Pid, "PID", 7),
    (Col::Cpu, "CPU%", 5),
    (Col::Trend, "CPU 2 MIN", TREND_WIDTH),
    (Col::Mem, "MEM", 6),
    (Col::Up, "UP", 5),
];

/// The sparkline's cells: one per [`bioxen_proto::SPARK_STEP_SECS`].
const TREND_WIDTH: u16 = bioxen_proto::SPARK_STEPS as u16;

/// The widest NAME asks for before it takes its share of what is left: a matrix
/// cell's name (`train-lr0.01-seed2`) under its header, whole.
const NAME_WANTED: u16 = 20;

/// A row's name and flags (`+` unseen output, alert marks), and the columns the whole
/// takes with the grid mark.
fn name_text(row: &ListRow, app: &App) -> (String, String, usize) {
    use unicode_width::UnicodeWidthStr;
    let (name, flags) = match row {
        ListRow::Session(info) => {
            let mut flags = String::new();
            if app.unseen.contains(&info.vm) {
                flags.push('+');
            }
            if let Some(marks) = app.marks.get(&info.vm) {
                flags.push_str(&marks.flags());
            }
            let restarts = info.experiment.as_ref().map_or(0, |m| m.restarts);
            if restarts > 0 {
                flags.push_str(&format!(" ↻{restarts}"));
            }
            // A group's VMs sit under its header.
            let grouped = app.group_of(&ListRow::Session(info)).is_some();
            let indent = if grouped { "  " } else { "" };
            (format!("{indent}{}", info.name), flags)
        }
        ListRow::Group(name) => {
            let fold = if app.is_folded(name) { "▸" } else { "▾" };
            // Filtered, a header says how many of its VMs the filter lets through.
            let n = app.group_summary(name).vms;
            let count = match app.filter.is_empty() {
                true => format!(" ({n})"),
                false => format!(" ({} of {n})", app.group_shown(name)),
            };
            (format!("{fold} {name}"), count)
        }
        ListRow::Pool(vm) => {
            let indent = if app.group_of(row).is_some() {
                "  "
            } else {
                ""
            };
            let name = vm.bioxen_id.as_deref().unwrap_or(&vm.name);
            (format!("{indent}{name}"), String::new())
        }
    };
    let marked = usize::from(is_marked(row, app)) * 2;
    let width = name.width() + flags.width() + marked;
    (name, flags, width)
}

/// Whether the row is a session marked for the next grid.
fn is_marked(row: &ListRow, app: &App) -> bool {
    matches!(row, ListRow::Session(info) if app.marked.contains(&info.vm))
}

/// The NAME cell in `width` columns: the flags whole, the name cut in its middle.
fn name_cell<'a>(row: &ListRow, app: &App, width: usize) -> Line<'a> {
    use unicode_width::UnicodeWidthStr;
    let (name, flags, _) = name_text(row, app);
    let marked = is_marked(row, app);
    let room = width
        .saturating_sub(flags.width())
        .saturating_sub(usize::from(marked) * 2);
    let text = format!(
        "{}{flags}",
        bioxen_text::columns::middle_ellipsis(&name, room)
    );
    // Marked for the next grid.
    match marked {
        true => Line::from(vec![
            Span::styled("● ", Style::new().fg(Color::Yellow)),
            Span::raw(text),
        ]),
        false if matches!(row, ListRow::Group(_)) => {
            Line::from(text).style(Style::new().add_modifier(Modifier::BOLD))
        }
        false => Line::from(text),
    }
}

/// Which columns to drop first when space runs out (KIND goes first anyway when every
/// VM is of the same kind: then it says nothing).
const DROP_ORDER: [Col; 7] = [
    Col::Up,
    Col::Kind,
    Col::Pid,
    Col::Trend,
    Col::Mem,
    Col::Cpu,
    Col::Progress,
];

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let focused = app.focus == Focus::List && app.overlay.is_none();
    let border = if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    let mut title = match app.detached_pool_vms().len() {
        0 => format!(" VMs ({}) ", app.rows.len()),
        detached => format!(" VMs ({} + {detached} detached) ", app.rows.len()),
    };
    if !app.filter.is_empty() || app.filter_editing {
        title = format!(
            " VMs /{}{} ",
            app.filter,
            if app.filter_editing { "▏" } else { "" }
        );
    }
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(border)
        .title(Span::styled(title, border.add_modifier(Modifier::BOLD)));

    let inner_width = area.width.saturating_sub(2);
    let mut cols: Vec<(Col, &str, u16)> = COLUMNS.to_vec();
    let one_kind = app.rows.windows(2).all(|w| w[0].kind == w[1].kind);
    // PROGRESS only while some VM reports progress.
    if !app.rows.iter().any(|r| app.progress(r).is_some()) {
        cols.retain(|c| c.0 != Col::Progress);
    }
    // The sparkline once the server has measured some VM.
    let measured = app.rows.iter().any(|r| !r.recent_cpu.is_empty())
        || app.pool_vms.iter().any(|vm| !vm.recent_cpu.is_empty());
    if !measured {
        cols.retain(|c| c.0 != Col::Trend);
    }
    let order = std::iter::once(Col::Kind)
        .filter(|_| one_kind)
        .chain(DROP_ORDER);
    let visible = app.visible();
    // NAME asks for its longest name, up to NAME_WANTED: columns go before names are
    // cut, and what is still too long loses its middle.
    let longest = visible
        .iter()
        .map(|row| name_text(row, app).2)
        .max()
        .unwrap_or(0);
    let wanted = (longest as u16).clamp(COLUMNS[1].2, NAME_WANTED);
    let need = |cols: &[(Col, &str, u16)]| {
        cols.iter().map(|c| c.2 + 1).sum::<u16>() - COLUMNS[1].2 + wanted
    };
    let mut dropped = Vec::new();
    for drop in order {
        if need(&cols) <= inner_width {
            break;
        }
        if let Some(at) = cols.iter().position(|c| c.0 == drop) {
            dropped.push(cols.remove(at));
        }
    }
    // A column dropped early may fit again once a wider one went after it; KIND,
    // which says nothing when every VM is of one kind, stays out then.
    for col in dropped.into_iter().rev() {
        if col.0 == Col::Kind && one_kind {
            continue;
        }
        let mut with = cols.clone();
        with.push(col);
        with.sort_by_key(|c| COLUMNS.iter().position(|k| k.0 == c.0));
        if need(&with) <= inner_width {
            cols = with;
        }
    }
    app.uptime_drawn.set(cols.iter().any(|c| c.0 == Col::Up));
    let others: u16 = cols
        .iter()
        .filter(|c| c.0 != Col::Name)
        .map(|c| c.2 + 1)
        .sum();
    // Less the spare cell at the right end (see `table_area`).
    let name_width = usize::from(inner_width.saturating_sub(others + 1).max(1));
    let widths: Vec<u16> = cols
        .iter()
        .map(|&(c, _, w)| if c == Col::Name { name_width as u16 } else { w })
        .collect();
    let header = cols
        .iter()
        .map(|(c, h, _)| match app.sort {
            Some(sort) if sorted_column(sort.by) == *c => {
                Line::from(format!("{h}{}", sort.arrow()))
            }
            _ => Line::from(*h),
        })
        .collect();
    let highlight = if focused {
        Style::new()
            .bg(Color::Indexed(238))
            .add_modifier(Modifier::BOLD)
    } else {
        Style::new().bg(Color::Indexed(236))
    };
    let selected = app
        .current
        .as_ref()
        .and_then(|id| visible.iter().position(|r| r.id() == *id));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let details = details(app);
    let chart = app
        .chart_subject()
        .and_then(|of| app.chart.series_for(&of))
        .filter(|(_, series)| !series.is_empty());
    // The chart when the table keeps a header and three rows beside it.
    let chart_height = match chart {
        Some(_) if inner.height >= history_chart::HEIGHT + details.len() as u16 + 5 => {
            history_chart::HEIGHT
        }
        _ => 0,
    };
    // The details box takes its lines plus a separator, when there is room for both.
    let text_height = (details.len() as u16 + 1).min(inner.height.saturating_sub(3));
    let text_height = if details.is_empty() || text_height < 2 {
        u16::from(chart_height > 0)
    } else {
        text_height
    };
    let details_height = text_height + chart_height;
    // The cell the widths leave spare goes at the right end: the last column's figure
    // never touches the border.
    let table_area = Rect::new(
        inner.x,
        inner.y,
        inner.width.saturating_sub(1),
        inner.height - details_height,
    );
    // Cells are made for the rows in view only: a pool of thousands costs a screenful.
    // The first row in view is where the table would scroll to from the top to show
    // the selection, as it does with a fresh state each frame.
    let body = usize::from(table_area.height.saturating_sub(1)).max(1);
    let first = selected.map_or(0, |s| s.saturating_sub(body - 1));
    app.list_first.set(first);
    let in_view = &visible[first.min(visible.len())..(first + body).min(visible.len())];
    let rows = in_view
        .iter()
        .map(|row| {
            let index = match row {
                ListRow::Session(info) => app.rows.iter().position(|r| r.vm == info.vm),
                ListRow::Pool(_) | ListRow::Group(_) => None,
            };
            cols.iter()
                .map(|(c, _, _)| match (c, row) {
                    (Col::Name, _) => name_cell(row, app, name_width),
                    (_, ListRow::Session(info)) => cell(*c, info, index.unwrap_or(0), app),
                    (_, ListRow::Pool(vm)) => pool_cell(*c, vm),
                    (_, ListRow::Group(name)) => group_cell(*c, name, app),
                })
                .collect()
        })
        .collect();
    let table = Table {
        widths,
        header,
        header_style: Style::new().fg(Color::Gray).add_modifier(Modifier::BOLD),
        rows,
        selected: selected.map(|s| s - first),
        highlight,
    };
    frame.render_widget(table, table_area);
    if details_height > 0 {
        let box_area = Rect::new(
            inner.x,
            inner.y + table_area.height,
            inner.width,
            text_height,
        );
        let mut lines = vec![Line::from(Span::styled(
            "─".repeat(inner.width as usize),
            border,
        ))];
        lines.extend(details);
        frame.render_widget(Paragraph::new(lines), box_area);
    }
    if let Some((window, series)) = chart.filter(|_| chart_height > 0) {
        let chart_area = Rect::new(
            inner.x,
            inner.y + inner.height - chart_height,
            inner.width,
            chart_height,
        );
        history_chart::draw(frame, chart_area, window, series);
    }
}

/// Facts about the selected VM that do not fit the table: where it runs and, for pool
/// VMs, what the pool reports.
fn details(app: &App) -> Vec<Line<'static>> {
    let key = Style::new().fg(Color::DarkGray);
    let kv = |k: &str, v: String| vec![Span::styled(format!(" {k} "), key), Span::raw(v)];
    // Where it is, then what it is: two lines, so a narrow list cuts neither.
    let pool_lines = |vm: &PoolVm| {
        let mut place = kv("pool", vm.pool.clone());
        place.extend(kv("host", vm.host.clone().unwrap_or_else(|| "-".into())));
        place.extend(kv("ip", vm.ip.clone().unwrap_or_else(|| "-".into())));
        let mut state = kv("power", vm.power_state.clone());
        state.extend(kv(
            "mem",
            bioxen_text::figures::bytes(vm.memory_bytes.max(0) as u64),
        ));
        state.extend(kv("vCPUs", vm.vcpus.to_string()));
        [Line::from(place), Line::from(state)]
    };
    match app.current_row() {
        Some(ListRow::Session(info)) => {
            let mut out = Vec::new();
            match &info.remote {
                Some(remote) => out.push(Line::from(kv("on", remote.clone()))),
                None if !info.command.is_empty() => {
                    out.push(Line::from(kv("runs", info.command.clone())))
                }
                None => {}
            }
            if let Some(vm) = app.pool_vm_of(info) {
                out.extend(pool_lines(vm));
            }
            if let Some(status) = &info.status {
                out.push(Line::from(kv("status", status.clone())));
            }
            out
        }
        Some(ListRow::Group(name)) if app.group_by != GroupBy::Experiment => {
            let s = app.group_summary(name);
            let keys = |a| app.keymap.key_for(Mode::List, a).unwrap_or_default();
            vec![
                Line::from(kv(app.group_by.label(), format!("{name}, {} VMs", s.vms))),
                Line::from(Span::styled(
                    format!(
                        " {} folds · {} grid · {} groups by {}",
                        keys(Action::Attach),
                        keys(Action::Grid),
                        keys(Action::GroupBy),
                        app.group_by.next().label(),
                    ),
                    key,
                )),
            ]
        }
        Some(ListRow::Group(name)) => {
            let s = app.group_summary(name);
            let keys = |a| app.keymap.key_for(Mode::List, a).unwrap_or_default();
            let mut line = kv("experiment", format!("{name}, {} VMs", s.vms));
            if s.restarts > 0 {
                line.extend(kv("restarts", s.restarts.to_string()));
            }
            vec![
                Line::from(line),
                Line::from(Span::styled(
                    format!(
                        " {} folds · {} reruns · {} ends · {} grid",
                        keys(Action::Attach),
                        keys(Action::Restart),
                        keys(Action::Kill),
                        keys(Action::Grid),
                    ),
                    key,
                )),
            ]
        }
        Some(ListRow::Pool(vm)) => {
            let mut out = vec![Line::from(kv(
                "pool VM",
                format!("{} (no session: Enter opens one)", vm.name),
            ))];
            out.extend(pool_lines(vm));
            out
        }
        None => Vec::new(),
    }
}

/// Progress in colour: red in error, yellow paused.
pub fn progress_style(p: bioxen_proto::Progress) -> Style {
    use bioxen_proto::ProgressState;
    Style::new().fg(match p.state {
        ProgressState::Error => Color::Red,
        ProgressState::Paused => Color::Yellow,
        _ => Color::Cyan,
    })
}

/// The column a sort is by.
fn sorted_column(by: crate::app::SortBy) -> Col {
    use crate::app::SortBy;
    match by {
        SortBy::Name => Col::Name,
        SortBy::State => Col::State,
        SortBy::Cpu => Col::Cpu,
        SortBy::Mem => Col::Mem,
        SortBy::Uptime => Col::Up,
        SortBy::Progress => Col::Progress,
    }
}

/// An experiment's header: how many of its VMs run (`▶`), wait at the prompt (`◦`),
/// wait for a dependency (`…`), were lost with the server before (`⌁`) and failed
/// (`✖`); their mean progress, and the CPU and memory of all of them.
fn group_cell(col: Col, name: &str, app: &App) -> Line<'static> {
    let s = app.group_summary(name);
    let members = || app.group_members(name);
    match col {
        Col::State => {
            let parts = [
                (s.running, "▶"),
                (s.idle, "◦"),
                (s.waiting, "…"),
                (s.lost, "⌁"),
                (s.failed, "✖"),
            ];
            let text: Vec<String> = parts
                .iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, mark)| format!("{n}{mark}"))
                .collect();
            let color = if s.failed > 0 {
                Color::Red
            } else {
                Color::Gray
            };
            Line::from(text.join(" ")).style(Style::new().fg(color))
        }
        Col::Progress => match s.progress {
            Some(percent) => {
                let p = bioxen_proto::Progress {
                    state: bioxen_proto::ProgressState::Normal,
                    percent,
                };
                Line::from(format::progress(p, 4)).style(progress_style(p))
            }
            None => Line::from(""),
        },
        Col::Cpu => {
            let cpu: Vec<f32> = members().filter_map(|i| i.cpu_percent).collect();
            match cpu.is_empty() {
                true => Line::from("-"),
                false => Line::from(format!("{:.1}", cpu.iter().fold(0.0, |a, b| a + b))),
            }
        }
        Col::Mem => {
            let mem: Vec<u64> = members().filter_map(|i| i.rss_bytes).collect();
            match mem.is_empty() {
                true => Line::from("-"),
                false => Line::from(bioxen_text::figures::bytes(mem.iter().sum())),
            }
        }
        Col::Index | Col::Name | Col::Kind | Col::Pid | Col::Trend | Col::Up => Line::from(""),
    }
}

fn pool_cell(col: Col, vm: &PoolVm) -> Line<'static> {
    let dim = Style::new().fg(Color::DarkGray);
    match col {
        Col::Index => Line::from("-").style(dim),
        // Drawn by name_cell, which fits it to its column.
        Col::Name => Line::from(""),
        Col::Kind => Line::from("xcpng"),
        Col::State => Line::from("detached").style(Style::new().fg(Color::Blue)),
        Col::Progress => Line::from(""),
        Col::Pid => Line::from("-"),
        Col::Cpu => Line::from(
            vm.cpu_percent
                .map(|c| format!("{c:.1}"))
                .unwrap_or_else(|| "-".into()),
        ),
        Col::Trend => trend_cell(&vm.recent_cpu),
        Col::Mem => Line::from(bioxen_text::figures::bytes(
            vm.memory_used.unwrap_or(vm.memory_bytes.max(0) as u64),
        )),
        Col::Up => Line::from("-"),
    }
}

fn cell<'a>(col: Col, info: &'a VmInfo, index: usize, app: &App) -> Line<'a> {
    let dim = Style::new().fg(Color::DarkGray);
    let alive = info.state.is_alive();
    match col {
        Col::Index => Line::from(index.to_string()).style(dim),
        // Drawn by name_cell, which fits it to its column.
        Col::Name => Line::from(""),
        Col::Kind => Line::from(info.kind.as_str()),
        Col::State => {
            Line::from(format::state(info)).style(Style::new().fg(state_color(&info.state)))
        }
        Col::Progress => match app.progress(info) {
            Some(p) => Line::from(format::progress(p, 4)).style(progress_style(p)),
            None => Line::from(""),
        },
        Col::Pid => Line::from(
            info.pid
                .filter(|_| alive)
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        Col::Cpu => Line::from(
            info.cpu_percent
                .map(|c| format!("{c:.1}"))
                .unwrap_or_else(|| "-".into()),
        ),
        Col::Trend => trend_cell(&info.recent_cpu),
        Col::Mem => Line::from(
            info.rss_bytes
                .map(bioxen_text::figures::bytes)
                .unwrap_or_else(|| "-".into()),
        ),
        Col::Up => Line::from(if alive {
            bioxen_text::figures::uptime(info.uptime_secs)
        } else {
            "-".into()
        }),
    }
}

/// CPU over the last two minutes, green while it rests and yellow once it works.
fn trend_cell(recent: &[u16]) -> Line<'static> {
    let color = match recent.last() {
        Some(&c) if c >= 50 => Color::Yellow,
        _ => Color::Green,
    };
    Line::from(format::sparkline(recent, usize::from(TREND_WIDTH))).style(Style::new().fg(color))
}

/// The state as it fits the list: `killed(KILL)` rather than `killed(SIGKILL)`.
pub fn short_state(state: &VmState) -> String {
    match state {
        VmState::Killed(sig) => {
            let name = signal_name(*sig);
            format!("killed({})", name.trim_start_matches("SIG"))
        }
        VmState::Failed(_) => "failed".into(),
        VmState::Waiting(_) => "waiting".into(),
        VmState::Blocked(_) => "blocked".into(),
        VmState::Lost(_) => "lost".into(),
        VmState::Reconnecting(n) => format!("reconnect({n})"),
        other => other.label(),
    }
}
