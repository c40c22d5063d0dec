//! A session's raw output written to `<log_dir>/<id>.log`.
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
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use bioxen_backend::lock;

/// How much unwritten output may wait for a disk that cannot keep up; beyond it the
/// oldest is dropped and the file says how much.
const BACKLOG_LIMIT: usize = 64 << 20;

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
    dropped: u64,
    closed: bool,
    /// Why the file can no longer be written.
    failed: Option<Arc<std::io::Error>>,
}

impl OutputLog {
    /// Opens (appending) or creates the log file, private to the user; refuses a
    /// symlink or anything but a regular file at that name.
    pub fn open(path: &Path) -> std::io::Result<OutputLog> {
        let file = bioxen_config::private_fs::open_append(path)?;
        let shared = Arc::new(Shared::default());
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("bioxen-log".into())
                .spawn(move || write_loop(&shared, file))?
        };
        Ok(OutputLog {
            shared,
            writer: Some(writer),
        })
    }

    /// Queues a chunk; never blocks on the disk. Fails once writing has failed.
    pub fn append(&self, chunk: &[u8]) -> Result<(), LogStopped> {
        let mut backlog = lock(&self.shared.state);
        if let Some(why) = &backlog.failed {
            return Err(LogStopped(why.clone()));
        }
        let was_empty = backlog.data.is_empty();
        if backlog.data.len() + chunk.len() > BACKLOG_LIMIT {
            backlog.dropped += backlog.data.len() as u64;
            backlog.data.clear();
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

fn write_loop(shared: &Shared, mut file: File) {
    let mut batch = Vec::new();
    loop {
        let (dropped, closed) = {
            let mut backlog = lock(&shared.state);
            while backlog.data.is_empty() && !backlog.closed {
                backlog = shared.wake.wait(backlog).unwrap_or_else(|p| p.into_inner());
            }
            std::mem::swap(&mut batch, &mut backlog.data);
            (std::mem::take(&mut backlog.dropped), backlog.closed)
        };
        if dropped > 0 {
            let note = format!(
                "\r\n[bioxen: {dropped} bytes of output not logged: the disk fell behind]\r\n"
            );
            let _ = file.write_all(note.as_bytes());
        }
        if let Err(e) = file.write_all(&batch) {
            tracing::warn!("output log: write failed ({e}); logging stops");
            lock(&shared.state).failed = Some(Arc::new(e));
            return;
        }
        batch.clear();
        if closed && lock(&shared.state).data.is_empty() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_appended_reaches_the_file_in_order() {
        let dir = std::env::temp_dir().join(format!("bioxen-outlog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        bioxen_config::private_fs::create_private_dir(&dir).unwrap();
        let path = dir.join("vm.log");
        let mut expected = Vec::new();
        {
            let log = OutputLog::open(&path).unwrap();
            for i in 0..20_000 {
                let line = format!("line {i}\n");
                log.append(line.as_bytes()).unwrap();
                expected.extend_from_slice(line.as_bytes());
            }
        }
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
