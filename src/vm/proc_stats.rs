//! CPU and memory of the processes bioxen owns, read from `/proc`.
//!
//! Only the PIDs of live local VMs are read, once a second: a handful of small file
//! reads instead of a scan of every process on the machine.

use std::time::Instant;

/// One sample of a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcStats {
    /// Percent of one core over the last interval.
    pub cpu_percent: f32,
    /// Resident memory in bytes.
    pub rss_bytes: u64,
    /// The kernel's one-letter state: R running, S sleeping, T stopped, Z zombie...
    pub state: char,
}

/// Keeps the previous CPU time of a process to turn totals into a rate.
#[derive(Debug, Default)]
pub struct CpuMeter {
    last: Option<(u64, Instant)>,
}

impl CpuMeter {
    /// Samples `pid`; `None` when it is gone.
    pub fn sample(&mut self, pid: u32) -> Option<ProcStats> {
        let raw = read_stat(pid)?;
        let now = Instant::now();
        let cpu_percent = match self.last {
            Some((ticks, at)) => {
                let secs = now.duration_since(at).as_secs_f64();
                if secs > 0.0 {
                    let used = raw.cpu_ticks.saturating_sub(ticks) as f64 / clock_ticks();
                    (100.0 * used / secs) as f32
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last = Some((raw.cpu_ticks, now));
        Some(ProcStats {
            cpu_percent,
            rss_bytes: raw.rss_pages * page_size(),
            state: raw.state,
        })
    }
}

struct RawStat {
    state: char,
    cpu_ticks: u64,
    rss_pages: u64,
}

fn read_stat(pid: u32) -> Option<RawStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses `/proc/PID/stat`. The command name (field 2) may contain spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<RawStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); utime is field 14, stime 15, rss 24.
    let state = fields.first()?.chars().next()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let rss_pages: u64 = fields.get(21)?.parse().ok()?;
    Some(RawStat {
        state,
        cpu_ticks: utime + stime,
        rss_pages,
    })
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parens() {
        let line = "1234 (lua (x) y) S 1 1234 1234 34816 1234 4194560 100 0 0 0 7 3 0 0 20 0 1 0 100 5000000 321 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.cpu_ticks, 10);
        assert_eq!(s.rss_pages, 321);
    }

    #[test]
    fn samples_this_process() {
        let mut m = CpuMeter::default();
        let s = m.sample(std::process::id()).unwrap();
        assert!(s.rss_bytes > 1024 * 1024, "rss {}", s.rss_bytes);
        assert!(m.sample(u32::MAX - 1).is_none());
    }
}
