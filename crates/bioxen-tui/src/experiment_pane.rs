//! The terminal pane while a group's header is selected (an experiment, a kind, a
//! host, a pool): what each of its VMs runs and how it is doing, so the record of what
//! ran is one key away.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph};

use super::app::App;
use super::draw::state_color;
use super::format;
use bioxen_proto::{PlannedVm, VmInfo};

/// Busy or idle while it runs; otherwise the state with its reason or code.
fn state(info: &VmInfo) -> String {
    match info.state.is_alive() {
        true => format::state(info),
        false => info.state.label(),
    }
}

pub fn draw(frame: &mut Frame, app: &App, name: &str, border: Style, outer: Rect) {
    let title = Span::styled(
        format!(" {} {name} ", app.group_by.label()),
        border.add_modifier(Modifier::BOLD),
    );
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(border)
        .title(title);
    let dim = Style::new().fg(Color::DarkGray);
    let members: Vec<&VmInfo> = app.group_members(name).collect();
    let width = members.iter().map(|i| i.name.len()).max().unwrap_or(4);
    // Two lines a VM: how it is doing, then what it runs, which is often long.
    let mut lines = Vec::new();
    for info in members {
        let mut head = vec![
            Span::styled(
                format!(" {:<width$}  ", info.name),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::styled(state(info), Style::new().fg(state_color(&info.state))),
        ];
        let restarts = info.experiment.as_ref().map_or(0, |m| m.restarts);
        if restarts > 0 {
            head.push(Span::raw(format!("  ↻{restarts}")));
        }
        lines.push(Line::from(head));
        // An experiment's VM by its spec; any other by its command and where.
        let what = match (&info.experiment, &info.remote) {
            (Some(m), _) => runs(&m.spec),
            (None, Some(remote)) => {
                bioxen_text::sanitize::line(&format!("{} on {remote}", info.command))
            }
            (None, None) => bioxen_text::sanitize::line(&info.command),
        };
        lines.push(Line::from(Span::styled(format!("   {what}"), dim)));
    }
    frame.render_widget(Paragraph::new(lines).block(block), outer);
}

/// What a VM runs, as one line: its script and arguments, then the variables its
/// matrix cell set (`train.lua data.csv  LR=0.1 SEED=1`), safe for the terminal.
pub fn runs(spec: &PlannedVm) -> String {
    bioxen_text::sanitize::line(&words(spec))
}

fn words(spec: &PlannedVm) -> String {
    let mut words: Vec<String> = Vec::new();
    if let Some(script) = &spec.script {
        let file = script.rsplit('/').next().unwrap_or(script);
        words.push(file.to_string());
        words.extend(spec.args.iter().cloned());
    } else {
        words.push("(prompt)".into());
    }
    if let Some(host) = &spec.host {
        words.push(format!("on {host}"));
    }
    let env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    match env.is_empty() {
        true => words.join(" "),
        false => format!("{}  {}", words.join(" "), env.join(" ")),
    }
}
