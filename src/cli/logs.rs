//! `bioxen logs VM`: what a VM printed, read from its output log, with or without a
//! server (a VM that has ended, or whose server is gone, included).
//!
//! The log holds raw bytes; what is printed is the text the screen showed, one line per
//! line: the bytes go through the same terminal code the pane uses, so a progress bar
//! redrawn with `\r` is its last state and colours are not escape soup. The screen is
//! as wide as a terminal may be, so lines wrap only past that and are joined again
//! where they did. `--raw` gives the bytes as they are.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::args::LogsCli;
use crate::Size;
use crate::config::Config;
use crate::persist::Places;
use crate::persist::log_files::{self, LogFiles, LogMeta, LogText, unix_ms};
use crate::term::Screen;

/// How often `-f` looks for more output.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);

/// Reads the log of the VM `request` names, among those of the server on `socket`.
pub fn command(config: &Config, socket: &Path, request: &LogsCli) -> ExitCode {
    let dir = &Places::of(config, socket).logs;
    let since_ms = match request.since.as_deref().map(parse_age) {
        None => None,
        Some(Ok(age)) => Some(unix_ms().saturating_sub(age.as_millis() as u64)),
        Some(Err(e)) => {
            eprintln!("bioxen logs: --since {e}");
            return ExitCode::from(2);
        }
    };
    let meta = match find(dir, &request.vm) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("bioxen logs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let files = LogFiles::new(dir, meta.vm);
    let text = match files.read() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bioxen logs: {}: {e}", files.log(0).display());
            return ExitCode::FAILURE;
        }
    };
    super::die_quietly_on_closed_pipe();
    let mut out = std::io::stdout().lock();
    if request.raw {
        let from = since_ms.map_or(0, |ms| first_at(&text, ms));
        let _ = out.write_all(&text.bytes[from..]);
        let _ = out.flush();
        if request.follow {
            follow_raw(&files, &mut out);
        }
        return ExitCode::SUCCESS;
    }
    let mut page = Page::new(meta.rows);
    page.read(&text);
    let lines = page.lines(since_ms, request.lines);
    for (ms, line) in &lines {
        print_line(&mut out, *ms, line, request.timestamps);
    }
    let _ = out.flush();
    if request.follow {
        page.printed = page.finished();
        follow(&files, &mut page, &mut out, request.timestamps);
    }
    ExitCode::SUCCESS
}

/// The VM `what` names: a number (`7` or `#7`), or a name, the newest VM to bear it.
fn find(dir: &Path, what: &str) -> Result<LogMeta, String> {
    let all = log_files::all_in(dir);
    let number = what.trim_start_matches('#').parse::<u64>().ok();
    let found = all
        .iter()
        .rev()
        .find(|m| Some(m.vm.0) == number || m.name == what);
    if let Some(meta) = found {
        return Ok(meta.clone());
    }
    let mut names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
    names.dedup();
    Err(match names.is_empty() {
        true => format!("no VM has a log in {} yet", dir.display()),
        false => format!(
            "no VM named '{}' has a log in {} (VMs with logs: {})",
            crate::sanitize::line(what),
            dir.display(),
            crate::sanitize::line(&names.join(", "))
        ),
    })
}

/// `10m`, `90s`, `2h`, `1d`, or plain seconds.
fn parse_age(text: &str) -> Result<Duration, String> {
    let (number, unit) =
        text.split_at(text.find(|c: char| c.is_alphabetic()).unwrap_or(text.len()));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not an age like 90s, 10m, 2h or 1d"))?;
    let secs = match unit {
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(format!("'{unit}' is not a unit: s, m, h or d")),
    };
    if !(n.is_finite() && n >= 0.0) {
        return Err(format!("'{text}' is not an age"));
    }
    Ok(Duration::from_secs_f64(n * secs))
}

/// The first byte that arrived at or after `ms`.
fn first_at(text: &LogText, ms: u64) -> usize {
    text.marks
        .iter()
        .find(|m| m.ms >= ms)
        .map_or(text.bytes.len(), |m| m.offset as usize)
}

fn print_line(out: &mut impl Write, ms: u64, line: &str, timestamps: bool) {
    let line = crate::sanitize::line(line);
    let _ = match timestamps {
        true => writeln!(out, "{} {line}", stamp(ms)),
        false => writeln!(out, "{line}"),
    };
}

/// A time as `2026-12-07T12:03:04.123` in local time.
fn stamp(ms: u64) -> String {
    let tm = crate::persist::local_time(ms / 1000);
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        ms % 1000
    )
}

/// The log's bytes through a screen, with the time each line arrived: when the
/// cursor left it, as a line of output is complete at its newline.
struct Page {
    screen: Screen,
    /// The arrival time of each finished line by number (as the screen numbers
    /// lines); the line the cursor is on has the newest time.
    arrived: Vec<u64>,
    newest: u64,
    /// Lines below this number are printed (for `-f`).
    printed: u64,
}

impl Page {
    fn new(rows: u16) -> Page {
        let size = Size::new(rows.max(2), Size::MAX);
        Page {
            screen: Screen::new(size, usize::MAX).with_byte_limit(usize::MAX),
            arrived: Vec::new(),
            newest: 0,
            printed: 0,
        }
    }

    /// Feeds the whole log, part by part as it arrived.
    fn read(&mut self, text: &LogText) {
        let mut at = 0usize;
        let mut ms = text.marks.first().map_or(0, |m| m.ms);
        for mark in &text.marks {
            let to = (mark.offset as usize).min(text.bytes.len());
            if to > at {
                self.feed(&text.bytes[at..to], ms);
                at = to;
            }
            ms = mark.ms;
        }
        self.feed(&text.bytes[at..], ms);
    }

    /// Feeds output that arrived at `ms`. A screen cleared (`ESC [ 2 J`, as a
    /// redraw or Ctrl-L does) keeps its lines: they scroll into the history first, as
    /// a terminal that keeps its scrollback on clear does, since a log loses nothing.
    fn feed(&mut self, bytes: &[u8], ms: u64) {
        const CLEAR: &[u8] = b"\x1b[2J";
        let mut rest = bytes;
        while let Some(at) = rest.windows(CLEAR.len()).position(|w| w == CLEAR) {
            self.feed_part(&rest[..at], ms);
            self.keep_screen();
            self.feed_part(CLEAR, ms);
            rest = &rest[at + CLEAR.len()..];
        }
        self.feed_part(rest, ms);
    }

    /// Scrolls the screen's lines, down to the last one with text, into the history,
    /// leaving the cursor where it was.
    fn keep_screen(&mut self) {
        let vt = self.screen.vt();
        if vt.alternate_screen() {
            return;
        }
        let (rows, cols) = vt.size();
        let texts: Vec<String> = vt.rows(0, cols.get()).collect();
        let Some(last) = texts.iter().rposition(|t| !t.trim().is_empty()) else {
            return;
        };
        let scroll = format!("\x1b7\x1b[{rows};1H{}\x1b8", "\n".repeat(last + 1));
        self.screen.feed(scroll.as_bytes());
    }

    fn feed_part(&mut self, bytes: &[u8], ms: u64) {
        self.screen.feed(bytes);
        let done = self.finished();
        while (self.arrived.len() as u64) < done {
            self.arrived.push(ms);
        }
        self.newest = ms;
    }

    fn time_of(&self, line: u64) -> u64 {
        self.arrived
            .get(line as usize)
            .copied()
            .unwrap_or(self.newest)
    }

    /// Lines that arrived at or after `since`, the last `count` of them.
    fn lines(&self, since: Option<u64>, count: Option<usize>) -> Vec<(u64, String)> {
        let mut lines: Vec<(u64, String)> = self
            .screen
            .logical_lines()
            .into_iter()
            .map(|(n, text)| (self.time_of(n), text))
            .filter(|(ms, _)| since.is_none_or(|s| *ms >= s))
            .collect();
        if let Some(n) = count {
            lines.drain(..lines.len().saturating_sub(n));
        }
        lines
    }

    /// The number of the line the cursor is on: lines before it are done.
    fn finished(&self) -> u64 {
        let (_, live) = self.screen.line_numbers();
        live + u64::from(self.screen.vt().cursor_position().0)
    }

    /// Lines finished since the last call, to print as `-f` goes.
    fn newly_finished(&mut self) -> Vec<(u64, String)> {
        let done = self.finished();
        let new: Vec<(u64, String)> = self
            .screen
            .logical_lines()
            .into_iter()
            .filter(|(n, _)| *n >= self.printed && *n < done)
            .map(|(n, text)| (self.time_of(n), text))
            .collect();
        self.printed = self.printed.max(done);
        new
    }
}

/// Reads the log as it grows, across rotations: the file being written is held open,
/// and when a new one takes its name the rest of the old one is read first.
struct Tail {
    path: PathBuf,
    file: std::fs::File,
    ino: u64,
}

impl Tail {
    fn open(files: &LogFiles) -> Option<Tail> {
        use std::io::{Seek, SeekFrom};
        use std::os::unix::fs::MetadataExt;
        let path = files.log(0);
        let mut file = std::fs::File::open(&path).ok()?;
        file.seek(SeekFrom::End(0)).ok()?;
        let ino = file.metadata().ok()?.ino();
        Some(Tail { path, file, ino })
    }

    /// What was written since the last call.
    fn more(&mut self) -> Vec<u8> {
        use std::io::Read;
        use std::os::unix::fs::MetadataExt;
        let mut data = Vec::new();
        let _ = self.file.read_to_end(&mut data);
        let now = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
        if now.is_some_and(|ino| ino != self.ino)
            && let Ok(mut file) = std::fs::File::open(&self.path)
        {
            let _ = self.file.read_to_end(&mut data);
            let _ = file.read_to_end(&mut data);
            self.ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
            self.file = file;
        }
        data
    }
}

fn follow(files: &LogFiles, page: &mut Page, out: &mut impl Write, timestamps: bool) {
    let Some(mut tail) = Tail::open(files) else {
        return;
    };
    loop {
        std::thread::sleep(FOLLOW_EVERY);
        let data = tail.more();
        if data.is_empty() {
            continue;
        }
        page.feed(&data, unix_ms());
        for (ms, line) in page.newly_finished() {
            print_line(out, ms, &line, timestamps);
        }
        if out.flush().is_err() {
            return;
        }
    }
}

fn follow_raw(files: &LogFiles, out: &mut impl Write) {
    let Some(mut tail) = Tail::open(files) else {
        return;
    };
    loop {
        std::thread::sleep(FOLLOW_EVERY);
        let data = tail.more();
        if !data.is_empty() && (out.write_all(&data).is_err() || out.flush().is_err()) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::log_files::Mark;

    #[test]
    fn lines_are_the_screen_text_with_the_time_they_began() {
        let text = LogText {
            bytes: b"> print(1)\r\n1\r\n> \x1b[31mred\x1b[0m\r\nbar 10%\rbar 100%\r\n> ".to_vec(),
            marks: vec![
                Mark {
                    offset: 0,
                    ms: 1000,
                },
                Mark {
                    offset: 15,
                    ms: 2000,
                },
            ],
        };
        let mut page = Page::new(24);
        page.read(&text);
        let lines = page.lines(None, None);
        let texts: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(texts, ["> print(1)", "1", "> red", "bar 100%", ">"]);
        assert_eq!(lines[1].0, 1000);
        assert_eq!(lines[2].0, 2000);
        let recent = page.lines(Some(2000), Some(2));
        assert_eq!(
            recent.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>(),
            ["bar 100%", ">"]
        );
    }

    #[test]
    fn a_cleared_screen_keeps_its_lines_in_the_log() {
        let text = LogText {
            bytes: b"notice\r\n> \x1b[H\x1b[2J> print(1)\r\n1\r\n> ".to_vec(),
            marks: vec![Mark { offset: 0, ms: 1 }],
        };
        let mut page = Page::new(24);
        page.read(&text);
        let lines = page.lines(None, None);
        let texts: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(texts, ["notice", ">", "> print(1)", "1", ">"]);
    }

    #[test]
    fn ages_read_as_people_write_them() {
        assert_eq!(parse_age("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_age("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_age("10 minutes").is_err());
        assert!(parse_age("soon").is_err());
    }
}
