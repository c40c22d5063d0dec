//! A real terminal for end-to-end tests: a private tmux server running one command,
//! typed into with send-keys and read with capture-pane. The server is killed when
//! the value is dropped, whatever happens in the test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
    pub dir: PathBuf,
    size: (u16, u16),
}

impl Tmux {
    /// Starts `command` (run by sh) in a `cols`x`rows` terminal, in a fresh directory
    /// that is also its XDG state, config and runtime home.
    pub fn start(name: &str, cols: u16, rows: u16, command: &str) -> Tmux {
        Tmux::start_with_config(name, cols, rows, command, None)
    }

    /// Like [`Tmux::start`], with `bioxen.toml` written into the directory first.
    pub fn start_with_config(
        name: &str,
        cols: u16,
        rows: u16,
        command: &str,
        config: Option<&str>,
    ) -> Tmux {
        super::require_program("tmux", "tmux");
        let socket = format!("bioxen-test-{name}-{}", std::process::id());
        let dir = std::env::temp_dir().join(&socket);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(text) = config {
            std::fs::write(dir.join("bioxen.toml"), text).unwrap();
        }
        let tmux = Tmux {
            socket,
            dir,
            size: (cols, rows),
        };
        tmux.restart(command);
        tmux
    }

    /// Closes the terminal, as closing its window does: the tmux server and everything
    /// attached to it get SIGHUP. The directory (and any bioxen server) stays.
    pub fn kill_terminal(&self) {
        self.run(&["kill-server"]);
    }

    /// Opens the terminal (again), running `command` in the directory.
    pub fn restart(&self, command: &str) {
        let env = format!(
            "cd {dir} && XDG_STATE_HOME={dir}/state XDG_CONFIG_HOME={dir}/config XDG_RUNTIME_DIR={dir}/run ",
            dir = self.dir.display()
        );
        let (cols, rows) = self.size;
        self.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
            &format!("{env}{command}; echo EXITED-$?; sleep 600"),
        ]);
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Keys by tmux name (`Enter`, `C-b`, `q`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Literal text, not key names.
    pub fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "0", "-l", text]);
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "0"])
    }

    /// The screen as the pane draws it: like [`Tmux::screen`], with the cells a
    /// program wrote in DEC line drawing shown as the lines they are (tmux keeps them
    /// as the ASCII letters and translates only when it draws).
    pub fn screen_drawn(&self) -> String {
        let raw = self.run(&["capture-pane", "-p", "-e", "-t", "0"]);
        let mut out = String::new();
        let mut graphics = false;
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            match c {
                '\x0e' => graphics = true,
                '\x0f' => graphics = false,
                // Colours and attributes: not part of the text.
                '\x1b' => {
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                c if graphics && c.is_ascii() => {
                    out.push(bioxen::term::dec_special_graphics(c as u8).unwrap_or(c))
                }
                c => out.push(c),
            }
        }
        out
    }

    /// The cursor in the pane: (row, column), from 0.
    pub fn cursor(&self) -> (u16, u16) {
        let out = self.run(&[
            "display-message",
            "-p",
            "-t",
            "0",
            "#{cursor_y} #{cursor_x}",
        ]);
        let mut n = out.split_whitespace().map(|n| n.parse().expect("a number"));
        (n.next().expect("a row"), n.next().expect("a column"))
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        self.run(&[
            "resize-window",
            "-t",
            "0",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
        ]);
    }

    /// Waits until the screen satisfies `pred`; panics with the screen if it never does.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(40));
        }
    }

    /// Waits until the screen shows `text`.
    pub fn wait_text(&self, text: &str) -> String {
        self.wait_for(&format!("{text:?}"), |s| s.contains(text))
    }

    /// Waits until the screen has not changed for a while, then returns it.
    pub fn settle(&self) -> String {
        let mut last = self.screen();
        let mut stable_since = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            let now = self.screen();
            if now != last {
                last = now;
                stable_since = Instant::now();
            } else if stable_since.elapsed() > Duration::from_millis(300) {
                break;
            }
        }
        last
    }

    /// The pid of the program running in the pane (the shell's child).
    pub fn program_pid(&self, name: &str) -> u32 {
        let shell = self.run(&["display-message", "-p", "-t", "0", "#{pane_pid}"]);
        let out = Command::new("pgrep")
            .args(["-P", shell.trim(), "-x", name])
            .output()
            .expect("run pgrep");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in the pane"))
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Lets programs here set tmux's paste buffer with OSC 52, as a terminal lets them
    /// set the clipboard (`set-clipboard on`).
    pub fn accept_clipboard(&self) {
        self.run(&["set-option", "-s", "set-clipboard", "on"]);
    }

    /// What the last OSC 52 set (tmux's newest paste buffer).
    pub fn clipboard(&self) -> String {
        self.run(&["show-buffer"])
    }
}

impl Tmux {
    /// The socket of the bioxen server the dashboards in this terminal use.
    pub fn server_socket(&self) -> PathBuf {
        self.dir.join("run/bioxen/server.sock")
    }

    /// Runs a bioxen command as the dashboards here would (same directories), and
    /// returns its output.
    pub fn bioxen(&self, args: &[&str]) -> std::process::Output {
        Command::new(super::bioxen_exe())
            .args(args)
            .current_dir(&self.dir)
            .env("XDG_STATE_HOME", self.dir.join("state"))
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .output()
            .expect("run bioxen")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
        // VMs outlive the dashboard: the server they live in ends with the test.
        if self.server_socket().exists() {
            let _ = self.bioxen(&["kill-server"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
