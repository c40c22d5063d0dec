//! Dialogs drawn over the dashboard: help, create a VM, confirmations.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

use super::app::{
    App, Confirm, CreateForm, Field, InstallForm, InstallProgress, KindChoice, Overlay, Prompt,
};
use super::effect::Target;
use bioxen_proto::SshQuestion;

pub fn draw(frame: &mut Frame, app: &App) {
    if let Some(p) = app.prompts.front() {
        return prompt(frame, p);
    }
    match &app.overlay {
        None => {}
        Some(Overlay::Help { scroll }) => help(frame, app, *scroll),
        Some(Overlay::Create(form)) => create(frame, app, form),
        Some(Overlay::Install(form)) => install(frame, form),
        Some(Overlay::Progress(p)) => progress(frame, p),
        Some(Overlay::Confirm(c)) => confirm(frame, c),
        Some(Overlay::Chooser(c)) => chooser(frame, app, c),
        Some(Overlay::Rename(form)) => rename(frame, form),
        Some(Overlay::GoToTab { number }) => go_to_tab(frame, app, number),
        Some(Overlay::Load(form)) => load(frame, form),
        Some(Overlay::SearchAll(found)) => crate::search_dialog::draw(frame, found),
    }
}

fn go_to_tab(frame: &mut Frame, app: &App, number: &str) {
    let area = centered(frame.area(), 44, 6);
    frame.render_widget(Clear, area);
    let tabs = app.rows.len() + app.grids.len();
    let lines = vec![
        Line::from(""),
        Line::from(vec![
            Span::styled("  Tab  ", Style::new().fg(Color::Black).bg(Color::Green)),
            Span::raw(format!(" {number}▏")),
        ]),
        Line::from(""),
        Line::from(Span::styled(
            format!(
                "  0 to {}   Enter goes · Esc cancels",
                tabs.saturating_sub(1)
            ),
            Style::new().fg(Color::DarkGray),
        )),
    ];
    frame.render_widget(
        Paragraph::new(lines).block(dialog("Go to tab", Color::Cyan)),
        area,
    );
}

fn rename(frame: &mut Frame, form: &super::app::RenameForm) {
    let area = centered(frame.area(), 60, 8);
    frame.render_widget(Clear, area);
    let status = match (&form.error, form.pending) {
        (Some(e), _) => Line::from(Span::styled(
            format!("  {e}"),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        )),
        (None, true) => Line::from(Span::styled("  renaming…", Style::new().fg(Color::Yellow))),
        (None, false) => Line::from(""),
    };
    let lines = vec![
        Line::from(""),
        Line::from(vec![
            Span::styled(
                "  New name  ",
                Style::new().fg(Color::Black).bg(Color::Green),
            ),
            Span::raw(format!(" {}▏", form.name)),
        ]),
        status,
        Line::from(Span::styled(
            "  letters, digits, - _ .   Enter rename · C-u clear · Esc cancel",
            Style::new().fg(Color::DarkGray),
        )),
    ];
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(dialog(&format!("Rename {}", form.target.name), Color::Cyan)),
        area,
    );
}

/// The `u` prompt: a path, what Tab found, and why the last file was refused.
fn load(frame: &mut Frame, form: &super::app::LoadForm) {
    let dim = Style::new().fg(Color::DarkGray);
    let mut lines = vec![
        Line::from(""),
        Line::from(vec![
            Span::styled("  File  ", Style::new().fg(Color::Black).bg(Color::Green)),
            Span::raw(format!(" {}▏", form.path)),
        ]),
    ];
    match (&form.error, form.pending) {
        (Some(e), _) => lines.extend(e.lines().map(|l| {
            Line::from(Span::styled(
                format!("  {l}"),
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            ))
        })),
        (None, true) => lines.push(Line::from(Span::styled(
            "  starting…",
            Style::new().fg(Color::Yellow),
        ))),
        (None, false) => lines.push(Line::from("")),
    }
    const SHOWN: usize = 8;
    for choice in form.choices.iter().take(SHOWN) {
        let name = choice.rsplit_once('/').map_or(choice.as_str(), |(_, n)| n);
        let name = if name.is_empty() {
            choice.as_str()
        } else {
            name
        };
        lines.push(Line::from(Span::styled(format!("    {name}"), dim)));
    }
    if form.choices.len() > SHOWN {
        let more = form.choices.len() - SHOWN;
        lines.push(Line::from(Span::styled(format!("    … {more} more"), dim)));
    }
    lines.push(Line::from(Span::styled(
        "  an experiment file ([[vm]] tables)   Tab completes · Enter starts · Esc cancels",
        dim,
    )));
    let area = centered(frame.area(), 90, lines.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(dialog("Start an experiment (bioxen up)", Color::Cyan)),
        area,
    );
}

/// Every VM and grid, filtered by what was typed, the selected one highlighted.
fn chooser(frame: &mut Frame, app: &App, c: &super::app::Chooser) {
    let items = app.chooser_items(&c.filter);
    let area = centered(frame.area(), 90, (items.len() as u16 + 4).clamp(6, 30));
    frame.render_widget(Clear, area);
    let block = dialog("Choose a VM or grid", Color::Cyan).title_bottom(Line::from(format!(
        " /{}▏  ↑/↓ move  Enter show  Esc close ",
        c.filter
    )));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = inner.height as usize;
    let first = c.selected.saturating_sub(rows.saturating_sub(1));
    let lines: Vec<Line> = items
        .iter()
        .enumerate()
        .skip(first)
        .take(rows)
        .map(|(i, (_, label))| {
            let text = format!(" {label}");
            match i == c.selected {
                true => Line::from(Span::styled(
                    text,
                    Style::new()
                        .bg(Color::Indexed(238))
                        .add_modifier(Modifier::BOLD),
                )),
                false => Line::from(text),
            }
        })
        .collect();
    let lines = if lines.is_empty() {
        vec![Line::from(Span::styled(
            " nothing matches",
            Style::new().fg(Color::DarkGray),
        ))]
    } else {
        lines
    };
    frame.render_widget(Paragraph::new(lines), inner);
}

pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

pub(crate) fn dialog(title: &str, color: Color) -> Block<'_> {
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
        super::app::HELP_HINT,
        Style::new().fg(Color::DarkGray),
    )));
    let area = centered(
        frame.area(),
        super::app::HELP_WIDTH,
        app.help_lines() as u16 + 2,
    );
    let max = app.help_max_scroll();
    let title = match max {
        0 => "Help".to_string(),
        max => format!("Help ({}/{} · Esc closes)", scroll.min(max), max),
    };
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(dialog(&title, Color::Cyan))
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        area,
    );
}

fn create(frame: &mut Frame, app: &App, form: &CreateForm) {
    let label = Style::new().fg(Color::Gray);
    let focus = Style::new().fg(Color::Black).bg(Color::Green);
    let choice = form.choice();
    let arrows = if form.kinds.len() > 1 {
        ("◂ ", " ▸")
    } else {
        ("", "")
    };
    let row = |field: Field, name: &str, value: Span<'static>| {
        let cursor = if form.field == field && field != Field::Kind {
            "▏"
        } else {
            ""
        };
        let name_style = if form.field == field { focus } else { label };
        Line::from(vec![
            Span::raw("  "),
            Span::styled(format!("{name:<9}"), name_style),
            Span::raw(" "),
            value,
            Span::raw(cursor),
        ])
    };
    let text = |t: &str| Span::raw(t.to_string());
    let name = if form.name.is_empty() {
        Span::styled(form.placeholder.clone(), Style::new().fg(Color::DarkGray))
    } else {
        text(&form.name)
    };
    let runs = match choice {
        KindChoice::Local if app.config.local.command.trim().is_empty() => {
            "embedded Lua 5.4 (bioxen lua)".to_string()
        }
        KindChoice::Local => app.config.local.command.clone(),
        KindChoice::Ssh(host) => app
            .config
            .ssh_hosts
            .iter()
            .find(|h| &h.name == host)
            .map(|h| format!("{} on {}:{}", h.command, h.host, h.port))
            .unwrap_or_default(),
        KindChoice::Xcpng(pool) => app
            .config
            .pool(Some(pool))
            .map(|x| format!("{} over SSH, on {}", x.ssh.command, x.url))
            .unwrap_or_default(),
    };
    let mut lines = vec![
        Line::from(""),
        row(
            Field::Kind,
            "Kind",
            Span::styled(
                format!("{}{}{}", arrows.0, choice.label(), arrows.1),
                Style::new().add_modifier(Modifier::BOLD),
            ),
        ),
        row(Field::Name, "Name", name),
    ];
    if matches!(choice, KindChoice::Xcpng(_)) {
        lines.push(row(Field::Template, "Template", text(&form.template)));
        lines.push(row(
            Field::Memory,
            "Memory",
            text(&format!("{} MiB", form.memory)),
        ));
        lines.push(row(Field::Vcpus, "vCPUs", text(&form.vcpus)));
    }
    lines.push(Line::from(vec![
        Span::styled("  Runs      ", label),
        Span::raw(runs),
    ]));
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "  Enter create · ↑/↓ field · ←/→ kind · Esc cancel",
        Style::new().fg(Color::DarkGray),
    )));
    let area = centered(frame.area(), 70, lines.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(dialog("Create a VM", Color::Green)),
        area,
    );
}

fn install(frame: &mut Frame, form: &InstallForm) {
    let focus = Style::new().fg(Color::Black).bg(Color::Green);
    let label = Style::new().fg(Color::Gray);
    let field = |i: usize, name: &str, value: &str, hint: &str| {
        let mut spans = vec![
            Span::raw("  "),
            Span::styled(
                format!("{name:<8}"),
                if form.field == i { focus } else { label },
            ),
            Span::raw(" "),
            Span::raw(value.to_string()),
        ];
        if form.field == i {
            spans.push(Span::raw("▏"));
        }
        if value.is_empty() {
            spans.push(Span::styled(
                hint.to_string(),
                Style::new().fg(Color::DarkGray),
            ));
        }
        Line::from(spans)
    };
    let mut lines = vec![
        Line::from(""),
        Line::from(format!("  Into {} (luarocks, Lua 5.4)", form.target.name)),
        Line::from(""),
        field(0, "Package", &form.name, "e.g. penlight"),
        field(1, "Version", &form.version, "latest"),
        Line::from(""),
    ];
    if let Some(e) = &form.error {
        lines.push(Line::from(Span::styled(
            format!("  {e}"),
            Style::new().fg(Color::Red),
        )));
        lines.push(Line::from(""));
    }
    lines.push(Line::from(Span::styled(
        "  Enter install · Tab next field · Esc cancel",
        Style::new().fg(Color::DarkGray),
    )));
    let area = centered(frame.area(), 80, lines.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(dialog("Install a package", Color::Green))
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn progress(frame: &mut Frame, p: &InstallProgress) {
    let area = centered(
        frame.area(),
        96,
        frame.area().height.saturating_sub(6).max(8),
    );
    // The newest lines that fit, each wrapped at the dialog's width: luarocks' long
    // URLs and compiler lines are read whole, not cut at the border.
    let room = area.height.saturating_sub(5) as usize;
    let width = usize::from(area.width.saturating_sub(2)).max(1);
    let rows_of = |text: &str| {
        unicode_width::UnicodeWidthStr::width(text)
            .div_ceil(width)
            .max(1)
    };
    let mut used = 0;
    let mut shown: Vec<String> = Vec::new();
    for l in p.output.lines().rev() {
        let text = format!(" {l}");
        used += rows_of(&text);
        if used > room {
            break;
        }
        shown.push(text);
    }
    let mut lines: Vec<Line> = shown.into_iter().rev().map(Line::from).collect();
    lines.push(Line::from(""));
    lines.push(match &p.done {
        None => Line::from(Span::styled(
            " installing… (Esc hides this; a message says how it ends)",
            Style::new().fg(Color::Yellow),
        )),
        Some((true, s)) => Line::from(Span::styled(
            format!(" ✓ {s} · any key closes"),
            Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        )),
        Some((false, s)) => Line::from(Span::styled(
            format!(" ✗ {s} · any key closes"),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        )),
    });
    let title = format!("Installing {} into {}", p.package, p.vm);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(dialog(&title, Color::Cyan)),
        area,
    );
}

/// An SSH question: an unknown host key, or a key's passphrase.
pub fn prompt(frame: &mut Frame, prompt: &Prompt) {
    let (title, mut lines) = match &prompt.question {
        SshQuestion::UnknownHostKey {
            host,
            port,
            algorithm,
            fingerprint,
            known_hosts,
        } => (
            "Unknown host key",
            vec![
                Line::from(""),
                Line::from(format!(
                    "  {host}:{port} is not in {}.",
                    known_hosts.display()
                )),
                Line::from(format!("  Its {algorithm} key fingerprint is:")),
                Line::from(""),
                Line::from(Span::styled(
                    format!("    {fingerprint}"),
                    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                )),
                Line::from(""),
                Line::from(
                    "  Compare it with the host's own (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub).",
                ),
                Line::from(""),
                Line::from(vec![
                    Span::styled(
                        "  y",
                        Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
                    ),
                    Span::raw(" accept once   "),
                    Span::styled(
                        "a",
                        Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
                    ),
                    Span::raw(" accept and remember   "),
                    Span::styled(
                        "n",
                        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                    ),
                    Span::raw(" refuse"),
                ]),
            ],
        ),
        SshQuestion::Passphrase { key } => (
            "Passphrase",
            vec![
                Line::from(""),
                Line::from(format!("  The key {} is encrypted.", key.display())),
                Line::from(""),
                Line::from(format!(
                    "  Passphrase: {}▏",
                    "•".repeat(prompt.input.chars().count())
                )),
                Line::from(""),
                Line::from(Span::styled(
                    "  Enter unlock · Esc cancel",
                    Style::new().fg(Color::DarkGray),
                )),
            ],
        ),
    };
    lines.push(Line::from(""));
    let area = centered(frame.area(), 86, lines.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(dialog(title, Color::Yellow)),
        area,
    );
}

/// What running again or ending costs the VMs still running.
fn lost(running: usize) -> String {
    match running {
        0 => String::new(),
        1 => " 1 is running: its interpreter state is lost.".into(),
        n => format!(" {n} are running: their interpreter state is lost."),
    }
}

fn them(n: usize) -> &'static str {
    if n == 1 { "it" } else { "them" }
}

fn confirm(frame: &mut Frame, c: &Confirm) {
    let (title, question, yes) = match c {
        Confirm::Kill {
            target: Target { name: id, .. },
            pid,
        } => (
            "Kill",
            match pid {
                Some(pid) => format!("Kill VM {id} (pid {pid})? Its interpreter state is lost."),
                None => format!("Kill VM {id}? Its interpreter state is lost."),
            },
            "kill",
        ),
        Confirm::KillPool {
            target: Target { name: id, .. },
            alive,
        } => {
            let close = if *alive {
                "close the session"
            } else {
                "forget the session"
            };
            let lines = vec![
                Line::from(""),
                Line::from(format!(
                    "  {id} runs on a pool VM. What should happen to the VM?"
                )),
                Line::from(""),
                Line::from(vec![
                    Span::styled(
                        "  d",
                        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                    ),
                    Span::raw(" destroy the VM and its disks   "),
                    Span::styled(
                        "c",
                        Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                    ),
                    Span::raw(format!(" {close}, keep the VM   ")),
                    Span::styled("Esc", Style::new().fg(Color::Gray)),
                    Span::raw(" cancel"),
                ]),
            ];
            let area = centered(frame.area(), 90, lines.len() as u16 + 2);
            frame.render_widget(Clear, area);
            frame.render_widget(
                Paragraph::new(lines).block(dialog("Kill", Color::Red)),
                area,
            );
            return;
        }
        Confirm::Restart {
            target: Target { name: id, .. },
        } => (
            "Restart",
            format!("Restart VM {id}? It is running: its interpreter state is lost."),
            "restart",
        ),
        Confirm::Remove {
            target: Target { name: id, .. },
        } => (
            "Remove",
            format!("Remove {id} and its last screen from the list?"),
            "remove",
        ),
        Confirm::RestartExperiment { name, vms, running } => (
            "Run again",
            format!(
                "Run {name} again from the start ({vms} VMs, in dependency order)?{}",
                lost(*running)
            ),
            "run again",
        ),
        Confirm::EndExperiment { name, vms, running } => (
            "End experiment",
            format!(
                "End {name}: its {vms} VMs and their last screens go (bioxen down)?{}",
                lost(*running)
            ),
            "end",
        ),
        Confirm::UpChanged { name, changed, .. } => (
            "Changed spec",
            format!(
                "{name}: the file changed {}. Restart {} with the new spec? n leaves {} as {}.",
                changed.join(", "),
                them(changed.len()),
                them(changed.len()),
                if changed.len() == 1 {
                    "it is"
                } else {
                    "they are"
                },
            ),
            "restart",
        ),
        Confirm::Quit {
            running,
            remote,
            elsewhere,
        } => {
            let n = running + remote;
            let (vms, they, them) = if n == 1 {
                ("VM is", "It", "it")
            } else {
                ("VMs are", "They", "them")
            };
            let mut lines = vec![
                Line::from(""),
                Line::from(format!(
                    "  {n} {vms} running. {they} can keep running in the bioxen server:"
                )),
                Line::from(format!(
                    "  `bioxen` or `bioxen attach` shows {them} again, as {} {}.",
                    if n == 1 { "it" } else { "they" },
                    if n == 1 { "is" } else { "are" },
                )),
                Line::from(""),
            ];
            if *elsewhere > 0 {
                let which = match (*elsewhere, n) {
                    (1, 1) => "it".to_string(),
                    (e, _) if e == n => format!("all {e}"),
                    (e, _) => format!("{e} of them"),
                };
                lines.push(Line::from(Span::styled(
                    format!(
                        "  ⚠ another dashboard is attached to {which}: ending ends it there too"
                    ),
                    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                )));
                lines.push(Line::from(""));
            }
            lines.extend([Line::from(vec![
                Span::styled(
                    "  Enter",
                    Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
                ),
                Span::raw(" leave them running   "),
                Span::styled(
                    "e",
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!(" end {them}   ")),
                Span::styled("Esc", Style::new().fg(Color::Gray)),
                Span::raw(" cancel"),
            ])]);
            let area = centered(frame.area(), 76, lines.len() as u16 + 2);
            frame.render_widget(Clear, area);
            frame.render_widget(
                Paragraph::new(lines).block(dialog("Quit", Color::Yellow)),
                area,
            );
            return;
        }
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
