//! Where bioxen's own log lines go: a file or stderr that may stop taking them.
//!
//! A log on a full disk, or a stderr whose terminal has closed, must cost the program
//! nothing. tracing's formatter reports a failed write by printing to stderr, and
//! printing to a stderr that cannot be written panics ("failed printing to stderr"):
//! that ended the server on a full disk. Here the first failure stops the log for
//! good, is remembered so it can be told once, and every later line is dropped.

use std::io::Write;
use std::sync::OnceLock;

static FAILED: OnceLock<String> = OnceLock::new();
static TOLD: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// A writer that never fails: past its first error it writes nothing.
pub struct LogSink<W> {
    inner: Option<W>,
    what: String,
}

impl<W: Write> LogSink<W> {
    /// `what` names the log in the notice ("the server's log (stderr)").
    pub fn new(inner: W, what: impl Into<String>) -> Self {
        LogSink {
            inner: Some(inner),
            what: what.into(),
        }
    }
}

impl<W: Write> Write for LogSink<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(inner) = &mut self.inner
            && let Err(e) = inner.write_all(buf).and_then(|()| inner.flush())
        {
            self.inner = None;
            let _ = FAILED.set(format!(
                "{} cannot be written ({e}); logging stopped, everything else goes on",
                self.what
            ));
            TOLD.notify_waiters();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why this process's log stopped, if it did.
pub fn failure() -> Option<&'static str> {
    FAILED.get().map(String::as_str)
}

/// Waits until this process's log stops, and says why.
pub async fn stopped() -> &'static str {
    loop {
        let told = TOLD.notified();
        if let Some(why) = failure() {
            return why;
        }
        told.await;
    }
}

/// The process already has a log subscriber.
#[derive(Debug, thiserror::Error)]
#[error("cannot start logging: {0}")]
pub struct InstallError(Box<dyn std::error::Error + Send + Sync>);

/// Installs the process's log subscriber on `sink`, at `level`.
pub fn install<W: Write + Send + 'static>(
    sink: LogSink<W>,
    level: tracing::Level,
) -> Result<(), InstallError> {
    tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(sink))
        .with_ansi(false)
        .with_max_level(level)
        .log_internal_errors(false)
        .try_init()
        .map_err(InstallError)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_stops_the_log_and_says_why_once() {
        let mut sink = LogSink::new(Full, "the test log");
        assert_eq!(sink.write(b"one\n").unwrap(), 4);
        assert_eq!(sink.write(b"two\n").unwrap(), 4);
        let why = failure().unwrap();
        assert!(why.starts_with("the test log cannot be written"), "{why}");
        assert!(why.contains("No space left"), "{why}");
    }
}
