//! The details box's chart of a VM's recent past: CPU, memory and progress over the
//! window `[` and `]` choose, on one time axis ending now.
//!
//! One vertical scale serves all three: CPU in percent of one core (the scale grows
//! in whole cores past 100), progress in percent, and memory as a share of its peak
//! in the window (its peak drawn at 85% of the height), which the legend names. A researcher reads shapes here (climbing,
//! flat, a step down); the exact figures are in the table above.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph};

use bioxen_proto::{Series, Window};

/// Rows the chart takes, its legend included: the least that shows a shape.
pub const HEIGHT: u16 = 8;

const CPU: Color = Color::Cyan;
const MEM: Color = Color::Magenta;
const PROGRESS: Color = Color::Green;
/// Where memory's peak is drawn, as a share of the chart's height.
const MEM_TOP: f64 = 0.85;

/// Points of one series: seconds before the end, and the value on the chart's scale.
fn points<T: Copy>(
    series: &Series,
    values: &[Option<T>],
    scale: impl Fn(T) -> f64,
) -> Vec<(f64, f64)> {
    let n = values.len();
    let step = series.step_secs as f64;
    values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| Some((-((n - 1 - i) as f64) * step, scale((*v)?))))
        .collect()
}

/// The chart's top: a whole number of cores, at least one. A core's worth measured a
/// little over (100.4%, the sampler's timing) stays one core.
fn cpu_top(series: &Series) -> f64 {
    let peak = series
        .cpu_percent
        .iter()
        .flatten()
        .fold(0.0f32, |a, &b| a.max(b));
    (f64::from(peak) / 100.0 - 0.05).ceil().max(1.0) * 100.0
}

fn ago(secs: u64) -> String {
    match secs {
        s if s >= 3600 && s % 3600 == 0 => format!("-{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("-{}m", s / 60),
        s if s >= 60 => format!("-{}m{}s", s / 60, s % 60),
        s => format!("-{s}s"),
    }
}

/// The time the chart spans: the window, or for a VM younger than it the shortest of
/// a few round spans that holds its whole life, so a minute-old VM is not a sliver at
/// the right edge of ten minutes.
fn span(window: Window, series: &Series) -> u64 {
    const SPANS: [u64; 9] = [60, 120, 300, 600, 1800, 3600, 7200, 21_600, 43_200];
    let lived = series.len() as u64 * series.step_secs;
    SPANS
        .into_iter()
        .find(|s| *s >= lived)
        .unwrap_or(u64::MAX)
        .min(window.secs())
}

pub fn draw(frame: &mut Frame, area: Rect, window: Window, series: &Series) {
    if area.height < 3 || area.width < 12 {
        return;
    }
    let top = cpu_top(series);
    let peak_mem = series
        .rss_bytes
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(0);
    let cpu = points(series, &series.cpu_percent, |c| f64::from(c).min(top));
    // Memory's peak sits a little under the top, so a VM at a full core and steady
    // memory shows two lines, not one.
    let mem = points(series, &series.rss_bytes, |b| match peak_mem {
        0 => 0.0,
        peak => b as f64 / peak as f64 * top * MEM_TOP,
    });
    let progress = points(series, &series.progress, |p| f64::from(p) / 100.0 * top);
    let last = |v: &[Option<f32>]| v.iter().rev().flatten().next().copied();

    let mut legend = vec![Span::styled(
        format!(
            " CPU {}",
            last(&series.cpu_percent).map_or("-".into(), |c| format!("{c:.0}%"))
        ),
        Style::new().fg(CPU),
    )];
    if peak_mem > 0 {
        legend.push(Span::styled(
            format!(" MEM ≤{}", bioxen_text::figures::bytes(peak_mem)),
            Style::new().fg(MEM),
        ));
    }
    if !progress.is_empty() {
        legend.push(Span::styled(" progress", Style::new().fg(PROGRESS)));
    }
    // The keys that change the window and the windows, the one shown brighter, where
    // they fit.
    let used: usize = legend.iter().map(Span::width).sum();
    let dim = Style::new().fg(Color::DarkGray);
    let mut hint = vec![Span::styled("  [ ]", dim)];
    for (i, w) in Window::ALL.into_iter().enumerate() {
        let sep = if i == 0 { " " } else { " · " };
        hint.push(Span::styled(sep, dim));
        let style = if w == window {
            Style::new().fg(Color::White)
        } else {
            dim
        };
        hint.push(Span::styled(w.label(), style));
    }
    if used + hint.iter().map(Span::width).sum::<usize>() <= usize::from(area.width) {
        legend.extend(hint);
    }
    frame.render_widget(
        Paragraph::new(Line::from(legend)),
        Rect::new(area.x, area.y, area.width, 1),
    );

    let line = |name: &'static str, color, data| {
        Dataset::default()
            .name(name)
            .marker(Marker::HalfBlock)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(color))
            .data(data)
    };
    // Drawn in this order, so CPU, what the chart is mostly read for, is on top.
    let mut sets = Vec::new();
    if !mem.is_empty() && peak_mem > 0 {
        sets.push(line("MEM", MEM, &mem));
    }
    if !progress.is_empty() {
        sets.push(line("progress", PROGRESS, &progress));
    }
    sets.push(line("CPU", CPU, &cpu));
    let span = span(window, series);
    let chart = Chart::new(sets)
        .x_axis(
            Axis::default()
                .style(dim)
                .bounds([-(span as f64), 0.0])
                .labels([ago(span), ago(span / 2), "now".into()]),
        )
        .y_axis(
            Axis::default()
                .style(dim)
                .bounds([0.0, top])
                .labels(["0".to_string(), format!("{top:.0}%")]),
        )
        .hidden_legend_constraints((
            ratatui::layout::Constraint::Length(0),
            ratatui::layout::Constraint::Length(0),
        ));
    let body = Rect::new(area.x, area.y + 1, area.width, area.height - 1);
    frame.render_widget(chart, body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_grows_in_whole_cores() {
        let series = |c: f32| Series {
            step_secs: 1,
            cpu_percent: vec![Some(c)],
            ..Series::default()
        };
        assert_eq!(cpu_top(&series(3.0)), 100.0);
        assert_eq!(cpu_top(&series(100.4)), 100.0);
        assert_eq!(cpu_top(&series(250.0)), 300.0);
    }

    #[test]
    fn a_young_vm_fills_a_short_span_and_an_old_one_the_window() {
        let series = |n: usize, step| Series {
            step_secs: step,
            cpu_percent: vec![Some(1.0); n],
            ..Series::default()
        };
        assert_eq!(span(Window::TenMinutes, &series(45, 1)), 60);
        assert_eq!(span(Window::TenMinutes, &series(200, 1)), 300);
        assert_eq!(span(Window::TenMinutes, &series(600, 1)), 600);
        assert_eq!(span(Window::Day, &series(30, 10)), 300);
        assert_eq!(span(Window::Day, &series(8640, 10)), 86_400);
        assert_eq!(ago(90), "-1m30s");
        assert_eq!(ago(30), "-30s");
    }

    #[test]
    fn the_newest_point_is_now() {
        let s = Series {
            step_secs: 10,
            cpu_percent: vec![Some(1.0), None, Some(3.0)],
            ..Series::default()
        };
        assert_eq!(
            points(&s, &s.cpu_percent, f64::from),
            vec![(-20.0, 1.0), (0.0, 3.0)]
        );
    }
}
