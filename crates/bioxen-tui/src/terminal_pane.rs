//! The terminal pane: the current VM's screen, cell by cell, in a frame titled with
//! its name and the window title its program set.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use super::app::{App, Focus};
use super::draw::{Screens, state_color};
use bioxen_config::keymap::{Action, Mode};
use bioxen_text::columns::truncate;

pub fn draw(frame: &mut Frame, app: &App, screens: &dyn Screens, outer: Rect, pane: Rect) {
    let focused = app.focus == Focus::Terminal && app.overlay.is_none();
    let border = if focused {
        Style::new().fg(Color::Green)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    if let Some(super::app::RowId::Group(name)) = &app.current {
        return super::experiment_pane::draw(frame, app, name, border, outer);
    }
    let Some(info) = app.current_info() else {
        return draw_empty(frame, app, border, outer, pane);
    };
    let mut shown = None;
    screens.with_screen(info.vm, &mut |screen| {
        shown = Some(draw_screen(frame, app, screen, pane, focused));
    });
    let Some(shown) = shown else {
        return;
    };
    frame.render_widget(pane_block(app, info, &shown, border, outer), outer);
    if !info.state.is_alive() && pane.height > 0 {
        draw_ended(frame, app, info, pane);
    }
    if let Some(pos) = shown.cursor {
        frame.set_cursor_position(pos);
    }
}

/// What drawing a screen leaves for the frame around it.
struct Shown {
    /// The title the program set.
    title: Option<String>,
    /// Scrolled back: how far, of how much.
    scrolled: Option<(usize, usize)>,
    cursor: Option<Position>,
}

/// No VM yet: what to press to make one.
fn draw_empty(frame: &mut Frame, app: &App, border: Style, outer: Rect, pane: Rect) {
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(border);
    frame.render_widget(block, outer);
    let key = app
        .keymap
        .key_for(Mode::List, Action::Create)
        .unwrap_or_default();
    let help = app
        .keymap
        .key_for(Mode::List, Action::Help)
        .unwrap_or_default();
    let text = vec![
        Line::from(""),
        Line::from(Span::styled(
            "No VMs yet.",
            Style::new().add_modifier(Modifier::BOLD),
        )),
        Line::from(""),
        Line::from(format!(
            "Press {key} to create a local Lua VM, {help} for all keys."
        )),
    ];
    let mid = Rect::new(
        pane.x,
        pane.y + pane.height / 3,
        pane.width,
        pane.height.saturating_sub(pane.height / 3),
    );
    frame.render_widget(Paragraph::new(text).alignment(Alignment::Center), mid);
}

/// The screen's cells, scrolled back if the user is, with the selection and the
/// search match marked; the cursor is placed only on a live, focused screen.
fn draw_screen(
    frame: &mut Frame,
    app: &App,
    screen: &bioxen_term::Screen,
    pane: Rect,
    focused: bool,
) -> Shown {
    let offset = app.scroll.unwrap_or(0).min(screen.scrollback_len());
    let scrolled = app.scroll.map(|_| (offset, screen.scrollback_len()));
    let view = screen.view(offset);
    let vt = view.screen();
    render_cells(vt, pane, frame.buffer_mut());
    let mut cursor = None;
    if app.scroll.is_some() {
        let top = screen.top_line(offset);
        mark_selection(frame, app, top, pane);
        mark_match(frame, app, top, pane, vt.size().1.get());
    } else if focused && !vt.hide_cursor() && pane.height > 0 && pane.width > 0 {
        // Shown around the cursor when the pane is smaller than the screen.
        let (row, col) = vt.cursor_position();
        let (row, col) = (row.min(pane.height - 1), col.min(pane.width - 1));
        cursor = Some(Position::new(pane.x + col, pane.y + row));
    }
    Shown {
        title: screen.title().map(str::to_string),
        scrolled,
        cursor,
    }
}

/// The text selected for copying, from line `top` of the history down, and its
/// cursor.
fn mark_selection(frame: &mut Frame, app: &App, top: u64, pane: Rect) {
    let Some(sel) = app.selection else {
        return;
    };
    let width = usize::from(pane.width);
    for row in 0..pane.height {
        let line = top + u64::from(row);
        let Some((from, to)) = sel.columns(line) else {
            continue;
        };
        let (from, to) = (from.min(width), to.min(width));
        let cells = Rect::new(pane.x + from as u16, pane.y + row, (to - from) as u16, 1);
        frame
            .buffer_mut()
            .set_style(cells, Style::new().bg(Color::Indexed(24)));
        if line == sel.cursor.line && sel.cursor.col < width {
            let at = (pane.x + sel.cursor.col as u16, pane.y + row);
            if let Some(cell) = frame.buffer_mut().cell_mut(at) {
                cell.set_style(Style::new().add_modifier(Modifier::REVERSED));
            }
        }
    }
}

/// The search's match, where it is on screen: a match past the screen's width goes on
/// in the rows its line wrapped onto.
fn mark_match(frame: &mut Frame, app: &App, top: u64, pane: Rect, cols: u16) {
    let Some((line, col)) = app.search.as_ref().and_then(|s| s.found) else {
        return;
    };
    let len = app.search.as_ref().map_or(0, |s| s.query.chars().count());
    let Some(first) = line.checked_sub(top) else {
        return;
    };
    let cols = usize::from(cols.max(1));
    for x in col..col + len {
        let (row, x) = (first + (x / cols) as u64, x % cols);
        if row >= u64::from(pane.height) || x >= usize::from(pane.width) {
            continue;
        }
        let at = (pane.x + x as u16, pane.y + row as u16);
        if let Some(cell) = frame.buffer_mut().cell_mut(at) {
            cell.set_style(Style::new().fg(Color::Black).bg(Color::Yellow));
        }
    }
}

/// The pane's frame: the VM's name and its program's title on the left; on the right,
/// how far back the user scrolled, or the VM's progress and status, or how it ended.
fn pane_block<'a>(
    app: &App,
    info: &bioxen_proto::VmInfo,
    shown: &Shown,
    border: Style,
    outer: Rect,
) -> Block<'a> {
    let name = match &shown.title {
        Some(t) => format!(
            " {} — {} ",
            info.name,
            truncate(t, (outer.width as usize).saturating_sub(30))
        ),
        None => format!(" {} ", info.name),
    };
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(border)
        .title(Span::styled(name, border.add_modifier(Modifier::BOLD)));
    let right = if let Some((at, len)) = shown.scrolled {
        Span::styled(
            format!(" [{at}/{len}] "),
            Style::new().fg(Color::Black).bg(Color::Yellow),
        )
    } else if info.state.is_alive()
        && let Some(p) = app.progress(info)
    {
        // How far along, and what the VM last said about itself.
        let mut text = format!(" {} ", super::format::progress(p, 8));
        if let Some(status) = &info.status {
            text.push_str(&truncate(
                status,
                (outer.width as usize / 2).saturating_sub(16),
            ));
            text.push(' ');
        }
        Span::styled(text, super::list_pane::progress_style(p))
    } else if !info.state.is_alive() {
        // Short: a long reason is read whole at the bottom of the pane.
        let label = truncate(&info.state.label(), (outer.width as usize / 3).max(8));
        Span::styled(
            format!(" {label} "),
            Style::new()
                .fg(state_color(&info.state))
                .add_modifier(Modifier::BOLD),
        )
    } else {
        return block;
    };
    block.title(Line::from(right).right_aligned())
}

/// An ended VM: its last screen stays readable, and one line at the bottom says what
/// happened and what to do, wrapped so a long reason (an SSH failure and what to
/// check) is read whole, on at most half the pane.
fn draw_ended(frame: &mut Frame, app: &App, info: &bioxen_proto::VmInfo, pane: Rect) {
    let restart = app
        .keymap
        .key_for(Mode::List, Action::Restart)
        .unwrap_or_default();
    let kill = app
        .keymap
        .key_for(Mode::List, Action::Kill)
        .unwrap_or_default();
    let text = format!(
        "{} — in the list: {restart} restarts, {kill} removes",
        info.state.label()
    );
    let lines = bioxen_text::columns::wrap(&text, (pane.width as usize).saturating_sub(2));
    let height = (lines.len() as u16).min((pane.height / 2).max(1));
    let area = Rect::new(pane.x, pane.y + pane.height - height, pane.width, height);
    let lines: Vec<Line> = lines
        .into_iter()
        .take(height as usize)
        .map(|l| Line::from(format!(" {l}")))
        .collect();
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).style(Style::new().fg(Color::Black).bg(state_color(&info.state))),
        area,
    );
}

/// Copies the VT screen's cells into the frame buffer.
/// Draws `vt` into `area`. A screen larger than the area (a window below the smallest
/// session size) is shown around its cursor.
pub fn render_cells(vt: &vt100::Screen, area: Rect, buf: &mut Buffer) {
    let (cur_row, cur_col) = vt.cursor_position();
    let top = (cur_row + 1).saturating_sub(area.height);
    let left = (cur_col + 1).saturating_sub(area.width);
    for row in 0..area.height {
        let mut col = 0;
        while col < area.width {
            let Some(cell) = vt.cell(row + top, col + left) else {
                col += 1;
                continue;
            };
            let x = area.x + col;
            let y = area.y + row;
            let style = cell_style(cell);
            let contents = cell.contents();
            let drawn: String;
            let contents = if contents.is_ascii()
                || contents
                    .chars()
                    .all(bioxen_text::sanitize::is_drawn_in_cell)
            {
                contents
            } else {
                drawn = contents
                    .chars()
                    .filter(|&c| bioxen_text::sanitize::is_drawn_in_cell(c))
                    .collect();
                &drawn
            };
            let symbol = if contents.is_empty() { " " } else { contents };
            if cell.is_wide() && col + 1 < area.width {
                buf.set_stringn(x, y, symbol, 2, style);
                col += 2;
                continue;
            }
            if cell.is_wide() || cell.is_wide_continuation() {
                buf[(x, y)].set_symbol(" ").set_style(style);
            } else {
                buf[(x, y)].set_symbol(symbol).set_style(style);
            }
            col += 1;
        }
    }
}

fn cell_style(cell: &vt100::Cell) -> Style {
    let mut style = Style::new()
        .fg(color(cell.fgcolor()))
        .bg(color(cell.bgcolor()));
    let mut m = Modifier::empty();
    if cell.bold() {
        m |= Modifier::BOLD;
    }
    if cell.dim() {
        m |= Modifier::DIM;
    }
    if cell.italic() {
        m |= Modifier::ITALIC;
    }
    if cell.underline() {
        m |= Modifier::UNDERLINED;
    }
    if cell.inverse() {
        m |= Modifier::REVERSED;
    }
    style = style.add_modifier(m);
    style
}

fn color(c: vt100::Color) -> Color {
    match c {
        vt100::Color::Default => Color::Reset,
        vt100::Color::Idx(i) => Color::Indexed(i),
        vt100::Color::Rgb(r, g, b) => Color::Rgb(r, g, b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VM's bidi overrides, isolates, zero-width spaces and tag characters never
    /// reach the user's terminal; the text around them, emoji joined by ZWJ and
    /// combining accents do.
    #[test]
    fn bidi_and_invisible_characters_in_vm_output_are_not_drawn() {
        let mut screen = bioxen_term::Screen::new(bioxen_proto::Size::new(4, 40), 10);
        let printed = "a\u{202E}b\u{2066}c\u{2069}d\u{200B}e\u{E0041}\u{E0042}f\u{FEFF}g\r\n\
                       e\u{0301} \u{1F469}\u{200D}\u{1F52C}";
        screen.feed(printed.as_bytes());
        let area = Rect::new(0, 0, 40, 4);
        let mut buf = Buffer::empty(area);
        render_cells(screen.vt(), area, &mut buf);
        let drawn: String = (0..area.height)
            .map(|y| {
                (0..area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n");
        for c in [
            '\u{202E}',
            '\u{2066}',
            '\u{2069}',
            '\u{200B}',
            '\u{E0041}',
            '\u{FEFF}',
        ] {
            assert!(!drawn.contains(c), "{:?} was drawn: {drawn:?}", c);
        }
        assert!(drawn.starts_with("abcdefg"), "{drawn:?}");
        assert!(drawn.contains("e\u{0301}"), "the accent is kept: {drawn:?}");
        // The parser gives each emoji of the sequence a cell, the joiner with the
        // first: kept.
        assert!(drawn.contains("\u{1F469}\u{200D}"), "the joiner: {drawn:?}");
        assert!(drawn.contains('\u{1F52C}'), "{drawn:?}");
        // The VM's own screen keeps what it printed.
        assert!(screen.text().contains('\u{202E}'));
    }
}
