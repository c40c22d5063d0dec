//! How numbers and names look in the list pane and `bioxen ls`.

use bioxen_proto::{Busy, Progress, ProgressState, VmInfo, VmState};

/// A progress bar `width` cells wide, in eighths of a cell, and the percentage:
/// `██▌   42%`. Indeterminate progress has no figure: `·····  ?`.
pub fn progress(p: Progress, width: usize) -> String {
    let figure = match p.state {
        ProgressState::Indeterminate => return format!("{}   ?", "·".repeat(width)),
        _ => format!("{:>3}%", p.percent),
    };
    let eighths = usize::from(p.percent.min(100)) * width * 8 / 100;
    let mut bar = "█".repeat(eighths / 8);
    if eighths % 8 > 0 {
        bar.push([' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'][eighths % 8]);
    }
    let pad = width - bar.chars().count();
    format!("{bar}{} {figure}", " ".repeat(pad))
}

/// One cell for a tab: a block as high as the progress (`▁` to `█`), `·` when
/// indeterminate.
pub fn progress_cell(p: Progress) -> char {
    match p.state {
        ProgressState::Indeterminate => '·',
        _ => ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'][usize::from(p.percent.min(100)) * 7 / 100],
    }
}

/// CPU figures (percent of one core) as a line of blocks, the newest on the right,
/// `width` cells wide: `▁` is idle, `█` one core or more. Steps not measured yet are
/// blank, so a young VM's line starts part way across.
pub fn sparkline(recent: &[u16], width: usize) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let shown = &recent[recent.len().saturating_sub(width)..];
    let mut out = " ".repeat(width - shown.len());
    out.extend(
        shown
            .iter()
            .map(|&c| BLOCKS[usize::from(bioxen_proto::spark_level(c))]),
    );
    out
}

/// How a running VM's state reads in the list: `busy` or `idle` when its interpreter
/// marks its prompts, else the state itself.
pub fn state(info: &VmInfo) -> String {
    match (&info.state, info.busy) {
        (VmState::Running, Some(Busy::Busy)) => "busy".into(),
        (VmState::Running, Some(Busy::Idle)) => "idle".into(),
        (state, _) => super::list_pane::short_state(state),
    }
}

#[cfg(test)]
mod progress_tests {
    use super::*;

    #[test]
    fn a_sparkline_rises_with_the_cpu_and_keeps_its_width() {
        assert_eq!(sparkline(&[0, 5, 50, 100, 250], 5), "▁▂▅██");
        assert_eq!(sparkline(&[100], 4), "   █");
        assert_eq!(sparkline(&[0, 0, 0, 0, 0, 100], 3), "▁▁█");
    }

    #[test]
    fn bars_fill_in_eighths() {
        let p = |percent| Progress {
            state: ProgressState::Normal,
            percent,
        };
        assert_eq!(progress(p(0), 4), "       0%");
        assert_eq!(progress(p(42), 4), "█▋    42%");
        assert_eq!(progress(p(100), 4), "████ 100%");
        let unknown = Progress {
            state: ProgressState::Indeterminate,
            percent: 0,
        };
        assert_eq!(progress(unknown, 3), "···   ?");
        assert_eq!(progress_cell(p(0)), '▁');
        assert_eq!(progress_cell(p(100)), '█');
    }
}
