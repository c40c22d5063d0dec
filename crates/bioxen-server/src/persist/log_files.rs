//! Where a session's output log lives and how it is read back, by the server (a lost
//! VM's last screen) and by `bioxen logs` (with or without a server).
//!
//! In a server's folder of logs, a session numbered 7 has:
//! - `7.log`: its raw output, as the VM wrote it;
//! - `7.idx`: when it arrived, 16 bytes per mark (the offset in `7.log` and the Unix
//!   time in milliseconds, both little-endian), one mark per read that came in a new
//!   millisecond: a byte's time is that of the last mark at or before it;
//! - `7.log.1`, `7.idx.1`, ...: the rotated parts, `.1` the newest;
//! - `7.json`: who the session was (name, kind, size), so a log outlives its session
//!   and its server.
//!
//! Files are named by number, not name: a rename does not move them, and two VMs that
//! bore one name at different times have logs of their own.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bioxen_proto::{VmId, VmKind};
use serde::{Deserialize, Serialize};

/// When a part of a log arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Where the part starts.
    pub offset: u64,
    /// Unix time in milliseconds.
    pub ms: u64,
}

impl Mark {
    pub const LEN: usize = 16;

    pub fn to_bytes(self) -> [u8; Mark::LEN] {
        let mut b = [0; Mark::LEN];
        b[..8].copy_from_slice(&self.offset.to_le_bytes());
        b[8..].copy_from_slice(&self.ms.to_le_bytes());
        b
    }

    fn from_bytes(b: &[u8]) -> Mark {
        let word =
            |r: std::ops::Range<usize>| u64::from_le_bytes(b[r].try_into().unwrap_or([0; 8]));
        Mark {
            offset: word(0..8),
            ms: word(8..16),
        }
    }
}

/// Now, in Unix milliseconds.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Who a log belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogMeta {
    pub vm: VmId,
    pub name: String,
    pub kind: VmKind,
    pub rows: u16,
    pub cols: u16,
    pub created_unix: u64,
}

/// A whole log read back: every kept part, oldest first, as one run of bytes.
#[derive(Debug, Default)]
pub struct LogText {
    pub bytes: Vec<u8>,
    /// Offsets into `bytes`, in order.
    pub marks: Vec<Mark>,
}

impl LogText {
    /// Its lines as plain text, with where each begins, read straight from the bytes:
    /// escape sequences dropped, a carriage return starting its line over, a backspace
    /// taking a character back. Close to what a screen shows for line-by-line output,
    /// at a fraction of a screen's cost: for searching logs too long to parse.
    pub fn plain_lines(&self) -> Vec<(u64, String)> {
        let b = &self.bytes;
        let mut lines = Vec::new();
        let mut line: Vec<u8> = Vec::new();
        let mut start = 0usize;
        let mut i = 0usize;
        while i < b.len() {
            match b[i] {
                b'\n' => {
                    lines.push((start as u64, String::from_utf8_lossy(&line).into_owned()));
                    line.clear();
                    start = i + 1;
                }
                b'\r' if b.get(i + 1) != Some(&b'\n') => line.clear(),
                0x08 => {
                    line.pop();
                }
                0x1b => {
                    i = skip_escape(b, i);
                    continue;
                }
                c if c < 0x20 || c == 0x7f => {}
                c => line.push(c),
            }
            i += 1;
        }
        if !line.is_empty() {
            lines.push((start as u64, String::from_utf8_lossy(&line).into_owned()));
        }
        lines
    }

    /// The arrival time of the byte at `offset` (0 when nothing says).
    pub fn time_of(&self, offset: u64) -> u64 {
        match self.marks.partition_point(|m| m.offset <= offset) {
            0 => self.marks.first().map_or(0, |m| m.ms),
            n => self.marks[n - 1].ms,
        }
    }
}

/// Where the escape sequence at `at` (an ESC) ends: CSI up to its final byte, OSC and
/// the other strings up to BEL or ST, anything else after one more byte.
fn skip_escape(b: &[u8], at: usize) -> usize {
    let Some(&kind) = b.get(at + 1) else {
        return b.len();
    };
    match kind {
        b'[' => (at + 2..b.len())
            .find(|&j| (0x40..=0x7e).contains(&b[j]))
            .map_or(b.len(), |j| j + 1),
        b']' | b'P' | b'_' | b'^' | b'X' => (at + 2..b.len())
            .find(|&j| b[j] == 0x07 || (b[j] == 0x1b && b.get(j + 1) == Some(&b'\\')))
            .map_or(b.len(), |j| j + if b[j] == 0x07 { 1 } else { 2 }),
        _ => at + 2,
    }
}

/// The files of one session's log.
#[derive(Debug, Clone)]
pub struct LogFiles {
    dir: PathBuf,
    vm: VmId,
}

/// Reading a log is bounded: a file larger than this is read from its end.
const READ_LIMIT: u64 = 1 << 30;

impl LogFiles {
    pub fn new(dir: &Path, vm: VmId) -> LogFiles {
        LogFiles {
            dir: dir.to_path_buf(),
            vm,
        }
    }

    /// The raw output: part `n` (0 is the one being written).
    pub fn log(&self, n: u32) -> PathBuf {
        self.part(n, "log")
    }

    /// The arrival times of part `n`.
    pub fn idx(&self, n: u32) -> PathBuf {
        self.part(n, "idx")
    }

    pub fn meta(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.vm.0))
    }

    fn part(&self, n: u32, ext: &str) -> PathBuf {
        match n {
            0 => self.dir.join(format!("{}.{ext}", self.vm.0)),
            n => self.dir.join(format!("{}.{ext}.{n}", self.vm.0)),
        }
    }

    /// The parts there are, oldest first.
    pub fn parts(&self) -> Vec<u32> {
        let mut n = 1;
        while self.log(n).exists() {
            n += 1;
        }
        (0..n).rev().filter(|&n| self.log(n).exists()).collect()
    }

    /// Every kept part, oldest first, with the arrival times.
    pub fn read(&self) -> std::io::Result<LogText> {
        let mut text = LogText::default();
        for n in self.parts() {
            let base = text.bytes.len() as u64;
            let (bytes, skipped) = read_tail(&self.log(n), READ_LIMIT)?;
            let len = bytes.len() as u64;
            text.bytes.extend_from_slice(&bytes);
            let (idx, _) = read_tail(&self.idx(n), READ_LIMIT).unwrap_or_default();
            let marks: Vec<Mark> = idx.chunks_exact(Mark::LEN).map(Mark::from_bytes).collect();
            // The last mark before what was read still dates its first bytes.
            let first = marks
                .partition_point(|m| m.offset <= skipped)
                .saturating_sub(1);
            text.marks.extend(
                marks[first.min(marks.len())..]
                    .iter()
                    .map(|m| Mark {
                        offset: base + m.offset.saturating_sub(skipped),
                        ms: m.ms,
                    })
                    .filter(|m| m.offset <= base + len),
            );
        }
        Ok(text)
    }

    /// At most the last `max` bytes of output, across parts, starting at a line: what
    /// a lost VM's screen and scrollback are made again from.
    pub fn tail(&self, max: u64) -> std::io::Result<Vec<u8>> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut have = 0u64;
        for n in self.parts().into_iter().rev() {
            if have >= max {
                break;
            }
            let (part, _) = read_tail(&self.log(n), max - have)?;
            have += part.len() as u64;
            parts.push(part);
        }
        parts.reverse();
        let bytes = parts.concat();
        if have < max {
            return Ok(bytes);
        }
        // Cut at a line: the part before may be the middle of an escape sequence.
        let start = memchr::memchr(b'\n', &bytes).map_or(0, |i| i + 1);
        Ok(bytes[start..].to_vec())
    }

    /// When the log was last written to, in Unix seconds.
    pub fn modified_unix(&self) -> Option<u64> {
        std::fs::metadata(self.log(0))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    }

    pub fn write_meta(&self, meta: &LogMeta) -> std::io::Result<()> {
        let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
        bioxen_config::private_fs::write_atomic(&self.meta(), &json)
    }

    pub fn read_meta(&self) -> Option<LogMeta> {
        let text = bioxen_config::private_fs::read_own(&self.meta(), 1 << 16).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

/// Every log in `dir` with who it belongs to, oldest session first.
pub fn all_in(dir: &Path) -> Vec<LogMeta> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut metas: Vec<LogMeta> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let vm = name.to_str()?.strip_suffix(".json")?.parse().ok()?;
            LogFiles::new(dir, VmId(vm)).read_meta()
        })
        .collect();
    metas.sort_by_key(|m| m.vm);
    metas
}

/// The session a file of a folder of logs belongs to, if it is one of ours
/// (`7.log`, `7.log.2`, `7.idx`, `7.idx.2`, `7.json`); other files are never touched.
fn owner_of(file_name: &str) -> Option<VmId> {
    let (number, rest) = file_name.split_once('.')?;
    let ours = match rest.split_once('.') {
        None => matches!(rest, "log" | "idx" | "json"),
        Some((ext, n)) => matches!(ext, "log" | "idx") && n.parse::<u32>().is_ok(),
    };
    if !ours {
        return None;
    }
    number.parse().ok().map(VmId)
}

/// The highest session number a folder of logs holds: a server whose journal is gone
/// numbers its sessions past it, so that no new session appends to an old one's log.
pub fn highest_number_in(dir: &Path) -> Option<u64> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| owner_of(e.file_name().to_str()?))
        .map(|vm| vm.0)
        .max()
}

/// What [`prune`] removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub logs: usize,
    pub bytes: u64,
}

/// Removes the logs of sessions that `live` says are gone and that nothing was written
/// to since `before` (Unix seconds): every part, its index and its note of who the
/// session was. A log is kept whole or removed whole, judged by its newest file.
pub fn prune(dir: &Path, live: impl Fn(VmId) -> bool, before: u64) -> std::io::Result<Pruned> {
    let mut sets: std::collections::HashMap<VmId, (u64, Vec<(PathBuf, u64)>)> = Default::default();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let Some(vm) = entry.file_name().to_str().and_then(owner_of) else {
            continue;
        };
        // Not followed: a symlink's own time, and only the link is removed.
        let Ok(meta) = entry.metadata() else { continue };
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(u64::MAX, |d| d.as_secs());
        let set = sets.entry(vm).or_default();
        set.0 = set.0.max(modified);
        set.1.push((entry.path(), meta.len()));
    }
    let mut pruned = Pruned::default();
    for (vm, (newest, files)) in sets {
        if live(vm) || newest >= before {
            continue;
        }
        for (path, len) in files {
            std::fs::remove_file(&path)?;
            pruned.bytes += len;
        }
        pruned.logs += 1;
    }
    Ok(pruned)
}

/// The last `limit` bytes of a file (all of it when smaller), never through a
/// symlink, and how many bytes came before them; a missing file is empty.
fn read_tail(path: &Path, limit: u64) -> std::io::Result<(Vec<u8>, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let skipped = len.saturating_sub(limit);
    file.seek(SeekFrom::Start(skipped))?;
    let mut data = Vec::with_capacity(len.min(limit) as usize);
    file.take(limit).read_to_end(&mut data)?;
    Ok((data, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logs of sessions that are gone and were last written before the cut go whole;
    /// a live session's old log, a recent log and files not ours stay.
    #[test]
    fn pruning_removes_whole_logs_of_gone_sessions_last_written_before_the_cut() {
        let dir = std::env::temp_dir().join(format!("bioxen-prune-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let day = 86_400;
        let now = unix_ms() / 1000;
        let file = |name: &str, age_days: u64| {
            let path = dir.join(name);
            std::fs::write(&path, b"0123456789").unwrap();
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now - age_days * day);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(when)
                .unwrap();
        };
        // 7: gone, all old. 8: gone, old parts but written yesterday. 9: live, old.
        for name in ["7.log", "7.log.1", "7.idx", "7.idx.1", "7.json"] {
            file(name, 40);
        }
        for name in ["8.log.1", "8.idx.1", "8.json"] {
            file(name, 40);
        }
        file("8.log", 1);
        file("9.log", 40);
        file("9.json", 40);
        file("notes.txt", 40);
        file("7.log.bak", 40);
        assert_eq!(highest_number_in(&dir), Some(9));

        let pruned = prune(&dir, |vm| vm == VmId(9), now - 30 * day).unwrap();
        assert_eq!(pruned, Pruned { logs: 1, bytes: 50 });
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "7.log.bak",
                "8.idx.1",
                "8.json",
                "8.log",
                "8.log.1",
                "9.json",
                "9.log",
                "notes.txt"
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn plain_lines_are_what_line_output_shows() {
        let text = LogText {
            bytes: b"\x1b]133;A\x07> \x1b[31mred\x1b[0m\r\n10%\r100%\r\nab\x08c\nlast".to_vec(),
            marks: Vec::new(),
        };
        let lines: Vec<String> = text.plain_lines().into_iter().map(|(_, l)| l).collect();
        assert_eq!(lines, ["> red", "100%", "ac", "last"]);
    }

    #[test]
    fn a_byte_takes_the_time_of_the_last_mark_before_it() {
        let text = LogText {
            bytes: vec![0; 30],
            marks: vec![Mark { offset: 0, ms: 5 }, Mark { offset: 10, ms: 9 }],
        };
        assert_eq!(
            [0, 9, 10, 29].map(|o| text.time_of(o)),
            [5, 5, 9, 9],
            "marks apply forward"
        );
    }
}
