//! A session's two I/O tasks: the reader, which takes output into the screen, the
//! history and live watchers, and the writer, which sends keystrokes, pastes, terminal
//! replies and resizes in order.

use super::*;

/// Reads a session's output until the process closes it.
pub(super) async fn run_reader(
    session: Arc<Session>,
    mut reader: impl tokio::io::AsyncRead + Unpin,
    events: broadcast::Sender<Event>,
) {
    // Small reads and a yield after each one for sessions nobody looks at: one VM's
    // flood must not delay the echo of keys typed into another.
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if session.attached.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        let n = match reader.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            // Linux reports EIO on the PTY master once the last slave fd is closed.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = events.send(Event::Error(Some(session.vm), format!("output: {e}")));
                break;
            }
        };
        session.on_output(&buf[..n], &events);
    }
}

/// Writes queued input and resizes to the session, in order.
pub(super) async fn run_writer(
    session: Arc<Session>,
    mut sink: impl Sink,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
) {
    while let Some(msg) = rx.recv().await {
        match msg {
            WriterMsg::Data(data) => {
                let len = data.len();
                let result = sink.write_all(&data).await;
                session.queued_input.fetch_sub(len, Ordering::Relaxed);
                if result.is_err() {
                    break;
                }
            }
            WriterMsg::Resize(size) => {
                let _ = sink.resize(size).await;
            }
        }
    }
    // Anything still queued will never be written.
    session.queued_input.store(0, Ordering::Relaxed);
}

impl Session {
    /// Takes in output: parses it into the screen, keeps it for `read_output` and the
    /// log, hands it to live readers, and wakes whoever waits for it.
    ///
    /// The log and `read_output` take the chunk before live readers see it: whoever
    /// acts on a live chunk (as `execute_string` does on its end marker) then finds it
    /// already logged.
    pub(super) fn on_output(&self, chunk: &[u8], events: &broadcast::Sender<Event>) {
        lock(&self.pending).push(chunk);
        let log_failed = {
            let mut log = lock(&self.log);
            match log.as_ref().map(|l| l.append(chunk)) {
                Some(Err(why)) => {
                    *log = None;
                    Some(why)
                }
                _ => None,
            }
        };
        if let Some(why) = log_failed {
            let _ = events.send(Event::Error(
                Some(self.vm),
                format!("the output log stopped: {why}; the VM goes on (L starts a new log)"),
            ));
        }
        let (replies, said) = {
            let mut screen = lock(&self.screen);
            let replies = screen.feed(chunk);
            if self.live.receiver_count() > 0 {
                let _ = self.live.send(Live::Output(Arc::from(chunk)));
            }
            (replies, screen.take_said())
        };
        if !said.is_empty() {
            self.take_signals(said, events);
        }
        if !replies.is_empty() {
            self.send_reply(replies, events);
        }
        self.seq.send_modify(|n| *n += 1);
        self.activity.notify_one();
        if !self.dirty.swap(true, Ordering::AcqRel) {
            let _ = events.send(Event::Output(self.vm));
        }
    }

    /// Queues an answer to a terminal query. Answers count against the input bound
    /// like typed input: a program that asks (`ESC [ c`) without ever reading would
    /// otherwise pile its answers up in the server without end. Past the bound they are
    /// dropped, and the user is told once until the program reads again.
    pub(super) fn send_reply(&self, reply: Vec<u8>, events: &broadcast::Sender<Event>) {
        let process = lock(&self.process);
        let Some(writer) = process.as_ref().map(|p| &p.writer) else {
            return;
        };
        let queued = self.queued_input.load(Ordering::Relaxed);
        if queued + reply.len() > REPLY_LIMIT {
            if !self.replies_dropped.swap(true, Ordering::Relaxed) {
                let _ = events.send(Event::Error(
                    Some(self.vm),
                    format!(
                        "does not read its input ({} waiting): answers to its terminal \
                         queries are dropped until it does",
                        bioxen_text::figures::bytes(queued as u64)
                    ),
                ));
            }
            return;
        }
        if queued == 0 {
            self.replies_dropped.store(false, Ordering::Relaxed);
        }
        self.queued_input.fetch_add(reply.len(), Ordering::Relaxed);
        let _ = writer.send(WriterMsg::Data(reply));
    }
}
