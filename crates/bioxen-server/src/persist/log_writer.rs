//! A session's output log: the raw bytes in `<vm>.log`, and beside them `<vm>.idx`,
//! when each part arrived (see [`super::log_files`] for the layout).
//!
//! The reader task only appends to a buffer; a thread of the log's own writes it out.
//! Writing and flushing each chunk on the reader's path cost a system call or two per
//! chunk under a lock, and a slow disk stalled the VM's screen. Under a flood the
//! thread writes what piled up in one call; when output stops it has written
//! everything within one wake-up, so the file is current whenever the VM is quiet.
//! When a write fails (a full disk), the log stops and the next append says why, so
//! the session can tell the user instead of logging into the void.

use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use bioxen_backend::lock;
use bioxen_proto::VmId;

use super::log_files::{LogFiles, Mark, unix_ms};

/// How much unwritten output may wait for a disk that cannot keep up; beyond it the
/// oldest is dropped and the file says how much.
const BACKLOG_LIMIT: usize = 64 << 20;

/// Where logs go and how large they grow: `[logs]` in `bioxen.toml`.
#[derive(Debug, Clone)]
pub struct LogPolicy {
    /// This server's folder of logs.
    pub dir: std::path::PathBuf,
    /// Log every session from its start.
    pub enabled: bool,
    /// A log is rotated when it reaches this size.
    pub max_bytes: u64,
    /// Rotated files kept besides the one being written.
    pub keep: u32,
}

/// The log stopped: a write failed with this error, and nothing is written any more.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LogStopped(pub Arc<std::io::Error>);

pub struct OutputLog {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<Backlog>,
    wake: Condvar,
}

#[derive(Default)]
struct Backlog {
    data: Vec<u8>,
    /// When parts of `data` arrived: offsets into `data`.
    marks: Vec<Mark>,
    /// The time of the newest mark, so a flood within one millisecond marks once.
    last_ms: u64,
    dropped: u64,
    closed: bool,
    /// Why the file can no longer be written.
    failed: Option<Arc<std::io::Error>>,
}

impl OutputLog {
    /// Opens (appending) or creates the session's log, private to the user; refuses a
    /// symlink or anything but a regular file at those names.
    pub fn open(policy: &LogPolicy, vm: VmId) -> std::io::Result<OutputLog> {
        let files = LogFiles::new(&policy.dir, vm);
        let segment = Segment::open(&files)?;
        let shared = Arc::new(Shared::default());
        let writer = {
            let shared = shared.clone();
            let rotation = Rotation {
                files,
                max_bytes: policy.max_bytes.max(1),
                keep: policy.keep,
            };
            std::thread::Builder::new()
                .name("bioxen-log".into())
                .spawn(move || write_loop(&shared, segment, &rotation))?
        };
        Ok(OutputLog {
            shared,
            writer: Some(writer),
        })
    }

    /// Queues a chunk; never blocks on the disk. Fails once writing has failed.
    pub fn append(&self, chunk: &[u8]) -> Result<(), LogStopped> {
        let now = unix_ms();
        let mut backlog = lock(&self.shared.state);
        if let Some(why) = &backlog.failed {
            return Err(LogStopped(why.clone()));
        }
        let was_empty = backlog.data.is_empty();
        if backlog.data.len() + chunk.len() > BACKLOG_LIMIT {
            backlog.dropped += backlog.data.len() as u64;
            backlog.data.clear();
            backlog.marks.clear();
            backlog.last_ms = 0;
        }
        if now != backlog.last_ms {
            let offset = backlog.data.len() as u64;
            backlog.marks.push(Mark { offset, ms: now });
            backlog.last_ms = now;
        }
        backlog.data.extend_from_slice(chunk);
        drop(backlog);
        if was_empty {
            self.shared.wake.notify_one();
        }
        Ok(())
    }
}

impl Drop for OutputLog {
    /// Writes out everything queued before the file is closed.
    fn drop(&mut self) {
        lock(&self.shared.state).closed = true;
        self.shared.wake.notify_one();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// The files being written now.
struct Segment {
    log: File,
    idx: File,
    len: u64,
    /// The time of the last mark written, which a new segment starts with.
    last_ms: u64,
}

impl Segment {
    fn open(files: &LogFiles) -> std::io::Result<Segment> {
        let log = bioxen_config::private_fs::open_append(&files.log(0))?;
        let idx = bioxen_config::private_fs::open_append(&files.idx(0))?;
        let len = log.metadata()?.len();
        Ok(Segment {
            log,
            idx,
            len,
            last_ms: 0,
        })
    }
}

struct Rotation {
    files: LogFiles,
    max_bytes: u64,
    keep: u32,
}

impl Rotation {
    /// Moves the full segment aside (`.1`, the older ones one further, the oldest
    /// past `keep` gone) and starts a new one at the same time as the old one ended.
    fn rotate(&self, old: Segment) -> std::io::Result<Segment> {
        drop((old.log, old.idx));
        let f = &self.files;
        if self.keep == 0 {
            let _ = std::fs::remove_file(f.log(0));
            let _ = std::fs::remove_file(f.idx(0));
        } else {
            for n in (1..self.keep).rev() {
                rename_if_there(&f.log(n), &f.log(n + 1))?;
                rename_if_there(&f.idx(n), &f.idx(n + 1))?;
            }
            rename_if_there(&f.log(0), &f.log(1))?;
            rename_if_there(&f.idx(0), &f.idx(1))?;
        }
        let mut new = Segment::open(f)?;
        if old.last_ms != 0 {
            new.idx.write_all(
                &Mark {
                    offset: 0,
                    ms: old.last_ms,
                }
                .to_bytes(),
            )?;
            new.last_ms = old.last_ms;
        }
        Ok(new)
    }

    /// Writes a batch, rotating where it would pass the size limit.
    fn write(&self, mut seg: Segment, data: &[u8], marks: &[Mark]) -> std::io::Result<Segment> {
        let mut pos = 0usize;
        let mut next_mark = 0usize;
        while pos < data.len() {
            if seg.len >= self.max_bytes {
                seg = self.rotate(seg)?;
            }
            let room = (self.max_bytes - seg.len) as usize;
            let end = data.len().min(pos + room);
            let mut index = Vec::new();
            while let Some(m) = marks.get(next_mark).filter(|m| (m.offset as usize) < end) {
                let offset = seg.len + (m.offset as usize).saturating_sub(pos) as u64;
                index.extend_from_slice(&Mark { offset, ms: m.ms }.to_bytes());
                seg.last_ms = m.ms;
                next_mark += 1;
            }
            seg.idx.write_all(&index)?;
            seg.log.write_all(&data[pos..end])?;
            seg.len += (end - pos) as u64;
            pos = end;
        }
        Ok(seg)
    }
}

fn rename_if_there(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// How long the writer lets output gather after it is woken: a flood is written in a
/// few large writes a second instead of one per read, and a quiet VM's output is on
/// disk this soon after it came.
const GATHER: std::time::Duration = std::time::Duration::from_millis(10);

fn write_loop(shared: &Shared, segment: Segment, rotation: &Rotation) {
    let mut batch = Vec::new();
    let mut marks = Vec::new();
    let mut segment = Some(segment);
    loop {
        let (dropped, closed) = {
            let mut backlog = lock(&shared.state);
            while backlog.data.is_empty() && !backlog.closed {
                backlog = shared.wake.wait(backlog).unwrap_or_else(|p| p.into_inner());
            }
            if !backlog.closed {
                drop(backlog);
                std::thread::sleep(GATHER);
                backlog = lock(&shared.state);
            }
            std::mem::swap(&mut batch, &mut backlog.data);
            std::mem::swap(&mut marks, &mut backlog.marks);
            backlog.last_ms = 0;
            (std::mem::take(&mut backlog.dropped), backlog.closed)
        };
        if dropped > 0 {
            let note = format!(
                "\r\n[bioxen: {dropped} bytes of output not logged: the disk fell behind]\r\n"
            );
            batch.splice(0..0, note.bytes());
            marks.iter_mut().for_each(|m| m.offset += note.len() as u64);
        }
        let seg = segment.take().expect("a segment between batches");
        match rotation.write(seg, &batch, &marks) {
            Ok(seg) => segment = Some(seg),
            Err(e) => {
                tracing::warn!("output log: write failed ({e}); logging stops");
                lock(&shared.state).failed = Some(Arc::new(e));
                return;
            }
        }
        batch.clear();
        marks.clear();
        if closed && lock(&shared.state).data.is_empty() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, max_bytes: u64, keep: u32) -> LogPolicy {
        let dir = std::env::temp_dir().join(format!("bioxen-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        bioxen_config::private_fs::create_private_dir(&dir).unwrap();
        LogPolicy {
            dir,
            enabled: true,
            max_bytes,
            keep,
        }
    }

    #[test]
    fn everything_appended_reaches_the_file_in_order() {
        let policy = policy("outlog", 1 << 30, 3);
        let mut expected = Vec::new();
        {
            let log = OutputLog::open(&policy, VmId(1)).unwrap();
            for i in 0..20_000 {
                let line = format!("line {i}\n");
                log.append(line.as_bytes()).unwrap();
                expected.extend_from_slice(line.as_bytes());
            }
        }
        let read = LogFiles::new(&policy.dir, VmId(1)).read().unwrap();
        assert_eq!(read.bytes, expected);
        assert!(!read.marks.is_empty(), "the arrival times are indexed");
        let _ = std::fs::remove_dir_all(&policy.dir);
    }

    #[test]
    fn a_log_rotates_at_its_limit_and_reads_back_across_the_rotation() {
        let policy = policy("rotate", 10_000, 2);
        let mut expected = Vec::new();
        {
            let log = OutputLog::open(&policy, VmId(7)).unwrap();
            for i in 0..3_000 {
                let line = format!("line {i:05}\n");
                log.append(line.as_bytes()).unwrap();
                expected.extend_from_slice(line.as_bytes());
            }
        }
        let files = LogFiles::new(&policy.dir, VmId(7));
        // 33,000 bytes in 10,000-byte files: the current one and two rotated ones are
        // kept, so the oldest 10,000 bytes are gone.
        assert!(files.log(1).exists() && files.log(2).exists());
        assert!(!files.log(3).exists(), "keep = 2 keeps two rotated files");
        for n in 0..=2 {
            let len = std::fs::metadata(files.log(n)).unwrap().len();
            assert!(len <= 10_000, "file {n} is {len} bytes");
        }
        let read = files.read().unwrap();
        assert_eq!(read.bytes, expected[expected.len() - read.bytes.len()..]);
        assert_eq!(read.bytes.len(), 23_000);
        assert!(read.bytes.ends_with(b"line 02999\n"));
        // Every segment's index starts at or before its first byte, so each byte has
        // a time.
        assert_eq!(read.marks.first().map(|m| m.offset), Some(0));
        let _ = std::fs::remove_dir_all(&policy.dir);
    }
}
