//! A client in a terminal of the bench's own: a PTY whose output goes through a VT
//! parser as it arrives, and whose screen a section waits on. Waiting this way looks
//! at the screen after each read and starts nothing meanwhile; polling `tmux
//! capture-pane` started a process every millisecond or two on the cores the timed
//! client needed, and added up to a poll interval to each figure.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

use super::Tmux;

/// The dashboard's terminal in every section.
const ROWS: u16 = 40;
const COLS: u16 = 120;

pub struct PtyClient {
    child: tokio::process::Child,
    input: pty_process::OwnedWritePty,
    screen: Arc<Mutex<vt100::Parser>>,
    /// Told after each read has gone through the parser.
    read: Arc<Notify>,
    program: String,
}

impl PtyClient {
    /// Starts `program args` in a 120x40 terminal with `t`'s private directories.
    pub fn start(rt: &Runtime, t: &Tmux, program: &str, args: &[&str]) -> PtyClient {
        PtyClient::start_sized(rt, t, program, args, (ROWS, COLS))
    }

    /// Starts `program args` in a terminal of `rows` by `cols`.
    pub fn start_sized(
        rt: &Runtime,
        t: &Tmux,
        program: &str,
        args: &[&str],
        (rows, cols): (u16, u16),
    ) -> PtyClient {
        let _entered = rt.enter();
        let (pty, pts) = pty_process::open().unwrap();
        pty.resize(pty_process::Size::new(rows, cols)).unwrap();
        let child = pty_process::Command::new(program)
            .args(args)
            .current_dir(&t.dir)
            .env("TERM", "xterm-256color")
            .env_remove("TMUX")
            .env("XDG_STATE_HOME", &t.dir)
            .env("XDG_RUNTIME_DIR", &t.dir)
            .env("XDG_CONFIG_HOME", &t.dir)
            .spawn(pts)
            .unwrap();
        let (mut output, input) = pty.into_split();
        let size = (rows.try_into().unwrap(), cols.try_into().unwrap());
        let screen = Arc::new(Mutex::new(vt100::Parser::new(size.0, size.1, 0)));
        let read = Arc::new(Notify::new());
        let (into, told) = (screen.clone(), read.clone());
        rt.spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n @ 1..) = output.read(&mut buf).await {
                into.lock().unwrap().process(&buf[..n]);
                told.notify_waiters();
            }
            told.notify_waiters();
        });
        PtyClient {
            child,
            input,
            screen,
            read,
            program: program.to_string(),
        }
    }

    /// Starts the client and returns the seconds to its first screen that shows
    /// `ready`, and the client.
    pub fn time_to_frame(
        rt: &Runtime,
        t: &Tmux,
        program: &str,
        args: &[&str],
        ready: impl Fn(&str) -> bool,
    ) -> (f64, PtyClient) {
        let start = Instant::now();
        let client = PtyClient::start(rt, t, program, args);
        client.wait(rt, "the first frame", ready);
        (start.elapsed().as_secs_f64(), client)
    }

    /// Waits until the screen shows `ready`, looking after each read; returns that
    /// screen's text.
    pub fn wait(&self, rt: &Runtime, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        rt.block_on(async {
            loop {
                let read = self.read.notified();
                tokio::pin!(read);
                read.as_mut().enable();
                let text = self.text();
                if ready(&text) {
                    return text;
                }
                if tokio::time::timeout_at(deadline, read).await.is_err() {
                    panic!("{} never showed {what}:\n{}", self.program, self.text());
                }
            }
        })
    }

    /// Types `bytes` into the client's terminal.
    pub fn send(&mut self, rt: &Runtime, bytes: &[u8]) {
        rt.block_on(async {
            self.input.write_all(bytes).await.unwrap();
            self.input.flush().await.unwrap();
        })
    }

    /// The screen's text, rows joined by newlines.
    pub fn text(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// Closes the client as a terminal window would (SIGHUP), and waits for it to go.
    pub fn close(mut self, rt: &Runtime) {
        // SAFETY: kill(2) of this bench's own child.
        unsafe { libc::kill(self.pid() as i32, libc::SIGHUP) };
        rt.block_on(self.child.wait()).unwrap();
    }
}
