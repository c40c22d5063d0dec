//! The search of every VM as the user sees it: the query being typed, then one entry
//! per match, its VM and line with the match marked, and the line before it dimmed.

use ratatui::Frame;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use crate::app::FoundAll;
use crate::dialogs::{centered, dialog};
use bioxen_proto::SearchMatch;
use bioxen_text::columns::truncate;

pub fn draw(frame: &mut Frame, found: &FoundAll) {
    let area = centered(
        frame.area(),
        110,
        frame.area().height.saturating_sub(4).max(8),
    );
    frame.render_widget(Clear, area);
    let hints = match found.editing {
        true => " Enter search  Esc close  (/regex/ for a regular expression) ",
        false => " ↑/↓ move  Enter show it  / new search  Esc close · then n/N: next match ",
    };
    let block = dialog("Search every VM", Color::Yellow).title_bottom(Line::from(hints));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width);
    let mut lines = vec![Line::from(vec![
        Span::styled(" / ", Style::new().fg(Color::Black).bg(Color::Yellow)),
        Span::raw(format!(" {}", found.query)),
        Span::raw(if found.editing { "▏" } else { "" }),
    ])];
    let status = match (&found.error, found.pending, found.results.len()) {
        (Some(e), _, _) => Span::styled(format!(" {e}"), Style::new().fg(Color::Red)),
        (None, true, _) => Span::styled(" searching…", Style::new().fg(Color::Gray)),
        (None, false, 0) if !found.editing => {
            Span::styled(" no VM printed that", Style::new().fg(Color::Gray))
        }
        (None, false, n) if !found.editing => Span::styled(
            format!(" {n} match{}", if n == 1 { "" } else { "es" }),
            Style::new().fg(Color::Gray),
        ),
        _ => Span::raw(""),
    };
    lines.push(Line::from(status));
    // Two lines an entry: the line before, dimmed, then the match's line.
    let room = usize::from(inner.height).saturating_sub(lines.len()) / 2;
    let first = found.selected.saturating_sub(room.saturating_sub(1));
    for (i, m) in found.results.iter().enumerate().skip(first).take(room) {
        let context = m.context.as_deref().unwrap_or("");
        lines.push(Line::from(Span::styled(
            format!(
                "{:>14}  {}",
                "",
                truncate(context, width.saturating_sub(17))
            ),
            Style::new().fg(Color::DarkGray),
        )));
        lines.push(entry(m, i == found.selected, width));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// A match's VM and line, the match marked, the line cut to fit around it.
fn entry(m: &SearchMatch, selected: bool, width: usize) -> Line<'static> {
    let base = match selected {
        true => Style::new()
            .bg(Color::Indexed(238))
            .add_modifier(Modifier::BOLD),
        false => Style::new(),
    };
    let text: Vec<char> = m.text.chars().collect();
    let room = width.saturating_sub(17).max(10);
    // Some of what comes before the match, so a long line shows where it matched.
    let from = m.start.saturating_sub(room / 3).min(text.len());
    let piece = |a: usize, b: usize| -> String {
        text[a.min(text.len())..b.min(text.len())].iter().collect()
    };
    let end = (from + room).min(text.len());
    let (a, b) = (m.start.max(from), (m.start + m.len).min(end));
    // A match older than the VM's scrollback comes from its log.
    let (name, colour) = match m.logged_ms {
        Some(_) => (format!("{} log", truncate(&m.name, 10)), Color::Magenta),
        None => (truncate(&m.name, 14), Color::Cyan),
    };
    Line::from(vec![
        Span::styled(format!("{name:>14}  "), base.fg(colour)),
        Span::styled(piece(from, a), base),
        Span::styled(piece(a, b), base.fg(Color::Black).bg(Color::Yellow)),
        Span::styled(piece(b, end), base),
    ])
}
