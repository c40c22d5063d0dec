//! CPU and memory of the processes bioxen owns, read from `/proc`.
//!
//! A VM is its whole process group: what its interpreter starts (`os.execute`, a
//! pipeline, a solver in the background) counts with it, as users of process managers
//! expect. So each sampling round reads `/proc` once and adds the processes up by
//! group, whatever the number of VMs.

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

/// The CPU time and memory of each process group on the machine, with its leader's
/// state: one read of `/proc` for every VM of a sampling round.
#[derive(Debug, Default)]
pub struct Groups {
    totals: std::collections::HashMap<u32, GroupTotal>,
}

#[derive(Debug, Default, Clone, Copy)]
struct GroupTotal {
    /// Of the live members, and of the children they waited for: a child that ends
    /// moves its time to its parent's children's time, so the total never drops.
    cpu_ticks: u64,
    rss_pages: u64,
    leader_state: Option<char>,
}

impl Groups {
    /// Reads every process of this user's once.
    pub fn read() -> Groups {
        let mut totals: std::collections::HashMap<u32, GroupTotal> = Default::default();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Groups { totals };
        };
        for pid in dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        {
            let Some(raw) = read_stat(pid) else { continue };
            let t = totals.entry(raw.pgrp).or_default();
            t.cpu_ticks += raw.cpu_ticks + raw.children_ticks;
            t.rss_pages += raw.rss_pages;
            if pid == raw.pgrp {
                t.leader_state = Some(raw.state);
            }
        }
        Groups { totals }
    }
}

impl CpuMeter {
    /// Samples process group `pgid` (a VM: its interpreter leads the group), children
    /// and all; `None` when its leader is gone.
    pub fn sample_group(&mut self, pgid: u32, groups: &Groups) -> Option<ProcStats> {
        let total = groups.totals.get(&pgid)?;
        let state = total.leader_state?;
        Some(self.rate(total.cpu_ticks, total.rss_pages, state))
    }

    /// Samples `pid` alone; `None` when it is gone.
    pub fn sample(&mut self, pid: u32) -> Option<ProcStats> {
        let raw = read_stat(pid)?;
        Some(self.rate(raw.cpu_ticks, raw.rss_pages, raw.state))
    }

    /// The rate of `cpu_ticks` since the last sample.
    fn rate(&mut self, cpu_ticks: u64, rss_pages: u64, state: char) -> ProcStats {
        let now = Instant::now();
        let cpu_percent = match self.last {
            Some((ticks, at)) => {
                let secs = now.duration_since(at).as_secs_f64();
                if secs > 0.0 {
                    let used = cpu_ticks.saturating_sub(ticks) as f64 / clock_ticks();
                    (100.0 * used / secs) as f32
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last = Some((cpu_ticks, now));
        ProcStats {
            cpu_percent,
            rss_bytes: rss_pages * page_size(),
            state,
        }
    }
}

/// Clock ticks since boot: the clock of `/proc/PID/stat`'s start time.
pub fn boot_ticks() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    let hz = clock_ticks() as u64;
    ts.tv_sec as u64 * hz + ts.tv_nsec as u64 * hz / 1_000_000_000
}

/// How long a VM's process has been running, if `pid` is still a session leader of
/// this user's (a VM, not a stranger that was given the same pid).
pub fn vm_uptime_secs(pid: u32) -> Option<u64> {
    if !is_mine(pid) {
        return None;
    }
    let raw = read_stat(pid)?;
    if raw.session != pid || raw.state == 'Z' {
        return None;
    }
    let hz = clock_ticks() as u64;
    Some(boot_ticks().saturating_sub(raw.start_ticks) / hz.max(1))
}

/// Whether `pid` is a live process of this user's.
pub fn is_mine(pid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getuid has no preconditions and cannot fail.
    let ours = std::fs::metadata(format!("/proc/{pid}"))
        .is_ok_and(|m| m.uid() == unsafe { libc::getuid() });
    // A zombie has ended; only its exit status waits to be collected.
    ours && read_stat(pid).is_some_and(|s| s.state != 'Z')
}

/// Whether process group `pgid` has a live member that started before `before`
/// (clock ticks since boot).
pub fn group_has_member_started_before(pgid: u32, before: u64) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_stat)
        .any(|s| s.pgrp == pgid && s.start_ticks < before)
}

struct RawStat {
    state: char,
    cpu_ticks: u64,
    /// Of the children it waited for.
    children_ticks: u64,
    rss_pages: u64,
    pgrp: u32,
    session: u32,
    start_ticks: u64,
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
    let cutime: u64 = fields.get(13)?.parse().ok()?;
    let cstime: u64 = fields.get(14)?.parse().ok()?;
    let rss_pages: u64 = fields.get(21)?.parse().ok()?;
    Some(RawStat {
        state,
        cpu_ticks: utime + stime,
        children_ticks: cutime + cstime,
        rss_pages,
        pgrp: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
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
        assert_eq!(s.pgrp, 1234);
        assert_eq!(s.session, 1234);
        assert_eq!(s.start_ticks, 100);
    }

    #[test]
    fn samples_this_process() {
        let mut m = CpuMeter::default();
        let s = m.sample(std::process::id()).unwrap();
        assert!(s.rss_bytes > 1024 * 1024, "rss {}", s.rss_bytes);
        assert!(m.sample(u32::MAX - 1).is_none());
    }
}
