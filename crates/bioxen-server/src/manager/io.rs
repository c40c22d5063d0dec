//! A session's two I/O tasks: the reader, which takes output into the screen, the
//! history and live watchers, and the writer, which sends keystrokes, pastes, terminal
//! replies and resizes in order.

use super::*;
use futures_util::FutureExt;

/// What the reader of a session someone types into gathers into one message to the
/// parser, from the PTY's 4 KiB reads.
const GATHER: usize = 16 * 1024;
/// Messages read ahead of the parser at most, each of up to [`GATHER`]: the 128 KiB a
/// program may print while its output is parsed, before it waits.
const READ_AHEAD: usize = 8;
/// What the parser takes in one go, from chunks read meanwhile: a session someone
/// types into, and one nobody does, whose turn must stay short so that its flood
/// does not delay the echo of keys typed into another.
const BATCH_ATTACHED: usize = 64 * 1024;
const BATCH_UNATTACHED: usize = 16 * 1024;
/// Less than one full read of a PTY: nothing was waiting behind it.
const SMALL: usize = 4095;
/// A read of a session nobody types into that brought this much, and less than a full
/// read, means a program printing in bulk a little slower than it is read: its next
/// read waits [`PACE`] and takes in what several of its writes made, instead of the
/// reader waking for each one or two lines. A full read is not paced (more waits
/// behind it), nor is a read smaller than this (an echo, a prompt, a line now and
/// then), so only output nobody could read as it passes waits.
const BULK: usize = 256;
const PACE: Duration = Duration::from_millis(2);

/// Reads a session's output until the process closes it, and returns the parser,
/// which ends once all of it is taken in.
///
/// Reading and parsing are two tasks when a session someone types into floods: a
/// PTY gives at most 4 KiB a read, and a reader that parsed each chunk before the
/// next read left the program waiting on a full PTY for every parse. Read ahead, the
/// program prints while the parser works, and the parser takes what piled up
/// meanwhile as one batch: one lock, one log append and one message to watchers for
/// many reads. A small chunk with nothing queued before it (an echo, a prompt) is
/// parsed at once by the reader, without the hand-off. So is every read of a session
/// nobody types into, one read and one yield at a time: with fifty of them flooding,
/// the read-ahead's second task each made a key's echo elsewhere wait four times as
/// long (21 ms against 5.5, `cargo test --release --test faults -- fifty_floods`).
/// Such a session printing in bulk is read at most once a [`PACE`], all that waits
/// each time: a grid's glanced floods had their reader woken for every line or two
/// (1 KiB a read, 11,500 reads a second for four), and the wake-ups, not the
/// parsing, were most of the server's time.
pub(super) async fn run_reader(
    session: Arc<Session>,
    mut reader: impl tokio::io::AsyncRead + Unpin,
    events: broadcast::Sender<Event>,
) -> tokio::task::JoinHandle<()> {
    let (chunks, read) = mpsc::channel::<Vec<u8>>(READ_AHEAD);
    // Chunks sent and not yet taken in: only the reader adds, so at zero nothing it
    // read before is still on its way, and parsing here keeps the order.
    let queued = Arc::new(AtomicUsize::new(0));
    let parser = tokio::spawn(take_in(
        session.clone(),
        read,
        events.clone(),
        queued.clone(),
    ));
    let mut buf = vec![0u8; 16 * 1024];
    // Parsed here, the chunk keeps its allocation for the next read; only a chunk
    // handed to the parser takes it along.
    let mut chunk = Vec::new();
    let mut open = true;
    while open {
        let attached = session.attached.load(Ordering::Relaxed) > 0;
        let paced = !attached && (BULK..SMALL).contains(&chunk.len());
        if paced {
            tokio::time::sleep(PACE).await;
        } else if !attached {
            tokio::task::yield_now().await;
        }
        chunk.clear();
        let most = if attached || paced { GATHER } else { 1 };
        open = read_some(&mut reader, &mut buf, &mut chunk, most, &session, &events).await;
        if chunk.is_empty() {
            continue;
        }
        if (chunk.len() < SMALL || !attached) && queued.load(Ordering::Acquire) == 0 {
            session.on_output(&chunk, &events);
            continue;
        }
        queued.fetch_add(1, Ordering::AcqRel);
        if chunks.send(std::mem::take(&mut chunk)).await.is_err() {
            break;
        }
    }
    parser
}

/// Waits for output, then takes what else is there without waiting, into `chunk`,
/// until it holds `most` bytes: one message to the parser for several of the PTY's
/// small reads. False once the output has ended.
async fn read_some(
    reader: &mut (impl tokio::io::AsyncRead + Unpin),
    buf: &mut [u8],
    chunk: &mut Vec<u8>,
    most: usize,
    session: &Session,
    events: &broadcast::Sender<Event>,
) -> bool {
    let mut waited = false;
    while chunk.len() < most {
        let read = match waited {
            false => reader.read(buf).await,
            true => match reader.read(buf).now_or_never() {
                Some(read) => read,
                None => return true,
            },
        };
        waited = true;
        match read {
            Ok(0) => return false,
            Ok(n) => chunk.extend_from_slice(&buf[..n]),
            // Linux reports EIO on the PTY master once the last slave fd is closed.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => return false,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = events.send(Event::Error(Some(session.vm), format!("output: {e}")));
                return false;
            }
        }
    }
    true
}

/// Takes a session's output in as it was read, in batches of what piled up.
async fn take_in(
    session: Arc<Session>,
    mut read: mpsc::Receiver<Vec<u8>>,
    events: broadcast::Sender<Event>,
    queued: Arc<AtomicUsize>,
) {
    let mut batch = Vec::new();
    while let Some(first) = read.recv().await {
        let limit = match session.attached.load(Ordering::Relaxed) {
            0 => BATCH_UNATTACHED,
            _ => BATCH_ATTACHED,
        };
        batch.clear();
        batch.extend_from_slice(&first);
        let mut taken = 1;
        while batch.len() < limit {
            match read.try_recv() {
                Ok(chunk) => batch.extend_from_slice(&chunk),
                Err(_) => break,
            }
            taken += 1;
        }
        session.on_output(&batch, &events);
        queued.fetch_sub(taken, Ordering::AcqRel);
        if limit == BATCH_UNATTACHED {
            tokio::task::yield_now().await;
        }
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
