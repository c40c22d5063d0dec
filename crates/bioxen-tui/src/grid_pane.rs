//! A grid tab: every tile a live terminal under a header that names its VM, its state
//! and its marks (output unseen, left out of a broadcast).

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::App;
use super::draw::{Screens, state_color};
use super::grid::{Grid, Tile};
use super::terminal_pane::render_cells;
use bioxen_text::columns::truncate;

/// Cells of a tile header's CPU sparkline: the last minute.
const TILE_SPARK: usize = 6;

pub fn draw(frame: &mut Frame, app: &App, grid: &Grid, screens: &dyn Screens, area: Rect) {
    let (page, pages) = grid.page(area);
    let tiles = grid.tiles(area);
    for (n, tile) in tiles.iter().enumerate() {
        let corner = if grid.zoomed {
            // A zoomed tile says so, and how many it hides, as tmux's `Z` flag does.
            Some(format!(" ⤢ zoomed, 1 of {} ", grid.vms.len()))
        } else {
            (n == 0 && pages > 1).then(|| format!(" {}/{pages} ", page + 1))
        };
        draw_tile(frame, app, grid, screens, tile, corner);
    }
}

fn draw_tile(
    frame: &mut Frame,
    app: &App,
    grid: &Grid,
    screens: &dyn Screens,
    tile: &Tile,
    corner: Option<String>,
) {
    let vm = grid.vms[tile.index];
    let info = app.info(vm);
    let id = app.name_of(vm);
    let focused = tile.index == grid.focus && app.overlay.is_none();

    let name_style = if focused {
        Style::new()
            .fg(Color::Black)
            .bg(Color::Green)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::new().fg(Color::White).add_modifier(Modifier::BOLD)
    };
    let mut spans = vec![Span::styled(format!(" {id} "), name_style)];
    if let Some(info) = info {
        spans.push(Span::styled(
            format!(" {}", super::format::state(info)),
            Style::new().fg(state_color(&info.state)),
        ));
    }
    let mut flags = String::new();
    if app.unseen.contains(&vm) {
        flags.push('+');
    }
    if let Some(marks) = app.marks.get(&vm) {
        flags.push_str(&marks.flags());
    }
    if !flags.is_empty() {
        spans.push(Span::styled(
            format!(" {flags}"),
            Style::new().fg(Color::Yellow),
        ));
    }
    if let Some(p) = info.and_then(|i| app.progress(i)) {
        spans.push(Span::styled(
            format!(" {}", super::format::progress(p, 5)),
            super::list_pane::progress_style(p),
        ));
    }
    // The last minute's CPU: which tile works is seen across the grid.
    if let Some(recent) = info.map(|i| &i.recent_cpu).filter(|r| !r.is_empty()) {
        spans.push(Span::styled(
            format!(" {}", super::format::sparkline(recent, TILE_SPARK)),
            Style::new().fg(Color::Cyan),
        ));
    }
    if let Some(status) = info.and_then(|i| i.status.as_ref()) {
        spans.push(Span::styled(
            format!(" {status}"),
            Style::new().fg(Color::Gray),
        ));
    }
    if grid.broadcast {
        let (mark, color) = match grid.excluded.contains(&vm) {
            true => (" ⊘ not broadcast", Color::DarkGray),
            false => (" » broadcast", Color::Red),
        };
        spans.push(Span::styled(mark, Style::new().fg(color)));
    }
    let mut title = None;
    let mut cursor = None;
    let mut have_screen = false;
    screens.with_screen(vm, &mut |screen| {
        have_screen = true;
        title = screen.title().map(str::to_string);
        let offset = match (focused, app.scroll) {
            (true, Some(at)) => at.min(screen.scrollback_len()),
            _ => 0,
        };
        let view = screen.view(offset);
        let vt = view.screen();
        render_cells(vt, tile.body, frame.buffer_mut());
        if focused && app.scroll.is_none() && !vt.hide_cursor() {
            let (row, col) = vt.cursor_position();
            if tile.body.height > 0 && tile.body.width > 0 {
                let (row, col) = (row.min(tile.body.height - 1), col.min(tile.body.width - 1));
                cursor = Some(Position::new(tile.body.x + col, tile.body.y + row));
            }
        }
    });
    if let Some(t) = title {
        spans.push(Span::styled(format!("  {t}"), Style::new().fg(Color::Gray)));
    }
    let used: usize = spans.iter().map(|s| s.width()).sum();
    let room = usize::from(tile.header.width);
    let corner = corner.unwrap_or_default();
    let mut header: Vec<Span> = Vec::new();
    let mut left = room.saturating_sub(corner.chars().count());
    for s in spans {
        if left == 0 {
            break;
        }
        let text = truncate(&s.content, left);
        left -= text.chars().count();
        header.push(Span::styled(text, s.style));
    }
    let pad = room.saturating_sub(used.min(room) + corner.chars().count());
    header.push(Span::raw(" ".repeat(pad)));
    header.push(Span::styled(corner, Style::new().fg(Color::Yellow)));
    frame.render_widget(
        Paragraph::new(Line::from(header)).style(Style::new().bg(Color::Indexed(236))),
        tile.header,
    );

    if !have_screen && tile.body.height > 0 {
        let text = truncate("waiting for its screen…", tile.body.width as usize);
        frame.render_widget(
            Paragraph::new(text).style(Style::new().fg(Color::DarkGray)),
            Rect::new(tile.body.x, tile.body.y, tile.body.width, 1),
        );
    }
    if let Some(info) = info
        && !info.state.is_alive()
        && tile.body.height > 0
    {
        // The last screen stays readable; one line says how the VM ended.
        let line = Rect::new(
            tile.body.x,
            tile.body.y + tile.body.height - 1,
            tile.body.width,
            1,
        );
        frame.render_widget(
            Paragraph::new(truncate(
                &format!(" {} ", info.state.label()),
                tile.body.width as usize,
            ))
            .style(Style::new().fg(Color::Black).bg(state_color(&info.state))),
            line,
        );
    }
    if let Some(sep) = tile.separator {
        let bar = vec![Line::from("│"); usize::from(sep.height)];
        frame.render_widget(
            Paragraph::new(bar).style(Style::new().fg(Color::DarkGray)),
            sep,
        );
    }
    if let Some(pos) = cursor {
        frame.set_cursor_position(pos);
    }
}
