//! Dialogs drawn over the dashboard: help, create a VM, confirmations.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

use super::app::{App, Confirm, CreateForm, Overlay};
use crate::vm::VmKind;

pub fn draw(frame: &mut Frame, app: &App) {
    match &app.overlay {
        None => {}
        Some(Overlay::Help { scroll }) => help(frame, app, *scroll),
        Some(Overlay::Create(form)) => create(frame, app, form),
        Some(Overlay::Confirm(c)) => confirm(frame, c),
    }
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn dialog(title: &str, color: Color) -> Block<'_> {
    Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(Style::new().fg(color))
        .title(Span::styled(
            format!(" {title} "),
            Style::new().fg(color).add_modifier(Modifier::BOLD),
        ))
}

fn help(frame: &mut Frame, app: &App, scroll: u16) {
    let key_style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
    let mut lines = Vec::new();
    for (section, entries) in app.keymap.help() {
        lines.push(Line::from(Span::styled(
            section,
            Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        )));
        for (keys, what) in entries {
            lines.push(Line::from(vec![
                Span::styled(format!("  {keys:<22}"), key_style),
                Span::raw(what),
            ]));
        }
        lines.push(Line::from(""));
    }
    lines.push(Line::from(Span::styled(
        "Keys are set in bioxen.toml ([ui] prefix, [keys.list], [keys.prefix]).  ↑/↓ scroll · any other key closes",
        Style::new().fg(Color::DarkGray),
    )));
    let area = centered(frame.area(), 84, lines.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(dialog("Help", Color::Cyan))
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        area,
    );
}

fn create(frame: &mut Frame, app: &App, form: &CreateForm) {
    let label = Style::new().fg(Color::Gray);
    let kind = form.kinds.get(form.kind).copied().unwrap_or(VmKind::Local);
    let arrows = if form.kinds.len() > 1 {
        ("◂ ", " ▸")
    } else {
        ("", "")
    };
    let name = if form.name.is_empty() {
        Span::styled(form.placeholder.clone(), Style::new().fg(Color::DarkGray))
    } else {
        Span::raw(form.name.clone())
    };
    let runs = match kind {
        VmKind::Local if app.manager.config().local_command.is_empty() => {
            "embedded Lua 5.4 (bioxen lua)".to_string()
        }
        VmKind::Local => shell_words::join(&app.manager.config().local_command),
        other => other.to_string(),
    };
    let lines = vec![
        Line::from(""),
        Line::from(vec![
            Span::styled("  Kind   ", label),
            Span::styled(
                format!("{}{kind}{}", arrows.0, arrows.1),
                Style::new().add_modifier(Modifier::BOLD),
            ),
        ]),
        Line::from(vec![Span::styled("  Name   ", label), name, Span::raw("▏")]),
        Line::from(vec![Span::styled("  Runs   ", label), Span::raw(runs)]),
        Line::from(""),
        Line::from(Span::styled(
            "  Enter create · type a name · Esc cancel",
            Style::new().fg(Color::DarkGray),
        )),
    ];
    let area = centered(frame.area(), 56, lines.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(dialog("Create a VM", Color::Green)),
        area,
    );
}

fn confirm(frame: &mut Frame, c: &Confirm) {
    let (title, question, yes) = match c {
        Confirm::Kill { id, pid } => (
            "Kill",
            match pid {
                Some(pid) => format!("Kill VM {id} (pid {pid})? Its interpreter state is lost."),
                None => format!("Kill VM {id}? Its interpreter state is lost."),
            },
            "kill",
        ),
        Confirm::Remove { id } => (
            "Remove",
            format!("Remove {id} and its last screen from the list?"),
            "remove",
        ),
        Confirm::Quit { running } => (
            "Quit",
            format!(
                "Quit bioxen? {running} running local VM{} will be terminated.",
                if *running == 1 { "" } else { "s" }
            ),
            "quit",
        ),
    };
    let lines = vec![
        Line::from(""),
        Line::from(format!("  {question}")),
        Line::from(""),
        Line::from(vec![
            Span::styled(
                format!("  y {yes}"),
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            ),
            Span::styled("  ·  n / Esc cancel", Style::new().fg(Color::Gray)),
        ]),
    ];
    let width = (question.chars().count() as u16 + 6).clamp(40, 90);
    let area = centered(frame.area(), width, lines.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(dialog(title, Color::Red))
            .wrap(Wrap { trim: false }),
        area,
    );
}
