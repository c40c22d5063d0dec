//! How numbers and names look in the list pane and `bioxen ls`.

use crate::protocol::{Busy, Progress, ProgressState, VmInfo, VmState};

/// `812K`, `23.4M`, `1.2G`.
pub fn bytes(n: u64) -> String {
    const K: f64 = 1024.0;
    let n = n as f64;
    if n < K * K {
        format!("{:.0}K", n / K)
    } else if n < K * K * K {
        format!("{:.1}M", n / (K * K))
    } else {
        format!("{:.1}G", n / (K * K * K))
    }
}

/// Uptime, exact to the second for the first minute and coarser after, so an idle
/// list does not redraw every second forever.
pub fn uptime(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60),
        _ => format!("{}d{:02}h", secs / 86400, (secs % 86400) / 3600),
    }
}

/// The uptime at which [`uptime`]'s label for `secs` next changes: the dashboard
/// sleeps until then.
pub fn uptime_changes_at(secs: u64) -> u64 {
    let step = match secs {
        0..60 => 1,
        60..86400 => 60,
        _ => 3600,
    };
    (secs / step + 1) * step
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(512 * 1024), "512K");
        assert_eq!(bytes(3 * 1024 * 1024 + 512 * 1024), "3.5M");
        assert_eq!(uptime(59), "59s");
        assert_eq!(uptime(61), "1m");
        assert_eq!(uptime(3661), "1h01m");
        assert_eq!(uptime(90000), "1d01h");
    }

    /// The label stays the same up to the change and differs at it.
    #[test]
    fn uptime_changes_where_its_label_does() {
        for secs in (0..200_000).step_by(7) {
            let at = uptime_changes_at(secs);
            assert!(at > secs);
            assert_eq!(uptime(at - 1), uptime(secs), "{secs}");
            assert_ne!(uptime(at), uptime(secs), "{secs}");
        }
    }
}

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

/// `text` in at most `width` columns: whole if it fits, else its start and its end
/// around a `…`, so that `protein-folding-run-A` and `-B` stay apart where cutting
/// the end would make both `protein-f`.
pub fn middle_ellipsis(text: &str, width: usize) -> String {
    use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
    if text.width() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    // The end says more (run numbers, suffixes): it gets the larger half.
    let room = width - 1;
    let head_room = room / 2;
    let tail_room = room - head_room;
    let mut head = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > head_room {
            break;
        }
        used += w;
        head.push(c);
    }
    let mut tail = Vec::new();
    let mut used = 0;
    for c in text.chars().rev() {
        let w = c.width().unwrap_or(0);
        if used + w > tail_room {
            break;
        }
        used += w;
        tail.push(c);
    }
    head.push('…');
    head.extend(tail.into_iter().rev());
    head
}

#[cfg(test)]
mod name_tests {
    use super::middle_ellipsis;
    use unicode_width::UnicodeWidthStr;

    #[test]
    fn long_names_keep_both_ends() {
        assert_eq!(middle_ellipsis("lua-1", 8), "lua-1");
        let a = middle_ellipsis("protein-folding-run-A", 12);
        let b = middle_ellipsis("protein-folding-run-B", 12);
        assert_eq!(a, "prote…-run-A");
        assert_ne!(a, b);
        // Wide characters are never split: the text may come out a cell short.
        let wide = middle_ellipsis("日本語の名前です", 7);
        assert!(
            wide.width() <= 7 && wide.starts_with('日') && wide.ends_with('す'),
            "{wide}"
        );
        assert_eq!(middle_ellipsis("abc", 0), "");
        assert_eq!(middle_ellipsis("abcdef", 1), "…");
    }
}
