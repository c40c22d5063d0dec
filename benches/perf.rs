//! bioxen's performance, each figure measured in the same run as a peer's: tmux for
//! terminal work, Debian's lua5.4 for interpreter start-up and echo, polling for XAPI.
//!
//! Run with `cargo bench --bench perf` (a few minutes on 2 cores). Needs tmux and
//! lua5.4. Prints a table of bioxen's figure, the peer's and the ratio.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bioxen::config::Config;
use bioxen::term::Screen;
use bioxen::{Manager, ManagerConfig, Size, VmKind, VmOptions};

#[path = "perf/fleet.rs"]
mod fleet;
#[path = "perf/pty_client.rs"]
mod pty_client;

use pty_client::PtyClient;

const BIOXEN: &str = env!("CARGO_BIN_EXE_bioxen");

struct Row {
    what: String,
    bioxen: String,
    peer: String,
    ratio: String,
    note: String,
}

fn row(what: &str, bioxen: f64, peer: f64, unit: &str, note: &str) -> Row {
    Row {
        what: what.into(),
        bioxen: format!("{bioxen:.3} {unit}"),
        peer: format!("{peer:.3} {unit}"),
        ratio: if peer > 0.0 {
            format!("{:.2}", bioxen / peer)
        } else {
            "-".into()
        },
        note: note.into(),
    }
}

fn text_row(what: &str, bioxen: String, peer: String, note: &str) -> Row {
    Row {
        what: what.into(),
        bioxen,
        peer,
        ratio: "-".into(),
        note: note.into(),
    }
}

/// The runtime a section drives the manager or a client with: two workers, as the
/// machine has two cores.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

// ----- a private tmux server --------------------------------------------------------

struct Tmux {
    socket: String,
    dir: PathBuf,
}

impl Tmux {
    fn start(tag: &str, cols: u16, rows: u16, command: &str, config: Option<&str>) -> Tmux {
        let socket = format!("bioxen-bench-{tag}-{}", std::process::id());
        let dir = std::env::temp_dir().join(&socket);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(c) = config {
            std::fs::write(dir.join("bioxen.toml"), c).unwrap();
        }
        let t = Tmux { socket, dir };
        let env = t.env();
        t.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
            &format!("{env}{command}; sleep 600"),
        ]);
        t.run(&["set-option", "-g", "history-limit", "10000"]);
        t
    }

    /// The shell prefix that gives a program the terminal's private directories.
    fn env(&self) -> String {
        format!(
            "cd {d} && XDG_STATE_HOME={d} XDG_RUNTIME_DIR={d} XDG_CONFIG_HOME={d} ",
            d = self.dir.display()
        )
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut a = vec!["send-keys", "-t", "0"];
        a.extend_from_slice(keys);
        self.run(&a);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "0"])
    }

    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool, poll: Duration) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{s}"
            );
            std::thread::sleep(poll);
        }
    }

    fn server_pid(&self) -> u32 {
        tmux_server_pid(&self.socket)
    }
}

impl Tmux {
    /// The bioxen server the dashboards in this terminal started (their runtime
    /// directory is the terminal's).
    fn bioxen_server_pid(&self) -> Option<u32> {
        let socket = self.dir.join("bioxen/server.sock");
        let out = Command::new("pgrep")
            .args(["-f", &format!("{} server --foreground", socket.display())])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
        // The VMs live in the bioxen server, which outlives the terminal.
        if let Some(pid) = self.bioxen_server_pid() {
            // SAFETY: kill(2) of the server this benchmark's dashboard started.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while !gone(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether process `pid` has ended: gone, or a zombie (the bench's own child, when
/// a section failed before reaping it).
fn gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit(") ").next().is_some_and(|r| r.starts_with('Z'))
    })
}

/// The process of the tmux server on socket `socket` (`tmux -L`).
fn tmux_server_pid(socket: &str) -> u32 {
    let out = Command::new("tmux")
        .args(["-L", socket, "display-message", "-p", "#{pid}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Ends a peer tmux server of a section's own and waits until it has. After a
/// `kill-server` answered with success, the fleet's server ran on for minutes with
/// its twenty windows printing, and took both cores from the sections after it; so
/// it is asked again each second, and killed after ten.
fn end_tmux_server(socket: &str, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut asked: Option<Instant> = None;
    while !gone(pid) {
        if Instant::now() > deadline {
            // SAFETY: kill(2) of the tmux server this section started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        } else if asked.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            let _ = Command::new("tmux")
                .args(["-L", socket, "kill-server"])
                .output();
            asked = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The terminal pane's lines in the dashboard (right of the list), or a plain pane's.
fn pane(screen: &str) -> Vec<String> {
    let dashboard = screen.contains("││");
    screen
        .lines()
        .map(|l| match l.find("││") {
            Some(i) => l[i + "││".len()..]
                .trim_end_matches('│')
                .trim_end()
                .to_string(),
            None if dashboard => String::new(),
            None => l.trim_end().to_string(),
        })
        .collect()
}

fn prompt_after(lines: &[String], last: &str) -> bool {
    let non_empty: Vec<&String> = lines.iter().filter(|l| !l.is_empty()).collect();
    non_empty.len() >= 2
        && non_empty[non_empty.len() - 1] == ">"
        && non_empty[non_empty.len() - 2] == last
}

fn dashboard_pane_size() -> Size {
    bioxen::ui::layout::Areas::new(ratatui::layout::Rect::new(0, 0, 120, 40), false).pane_size()
}

// ----- 1. floods ----------------------------------------------------------------------

const FLOOD: &str = "for i = 1, 2e6 do print(i) end";

/// `tag` names the tmux server: runs back to back need different names, or the next
/// one can start inside the server the last one is still shutting down.
fn flood_bioxen(tag: &str, config: Option<&str>) -> (f64, bool, i64) {
    let t = Tmux::start(tag, 120, 40, "true", config);
    let rt = runtime();
    let mut dashboard = PtyClient::start(&rt, &t, BIOXEN, &[]);
    dashboard.wait(&rt, "the dashboard", |s| s.contains("No VMs yet"));
    dashboard.send(&rt, b"c");
    dashboard.wait(&rt, "the dialog", |s| s.contains("Create a VM"));
    dashboard.send(&rt, b"\r");
    dashboard.wait(&rt, "a prompt", |s| pane(s).iter().any(|l| l == ">"));
    let start = Instant::now();
    dashboard.send(&rt, format!("{FLOOD}\r").as_bytes());
    let s = dashboard.wait(&rt, "the prompt after the flood", |s| {
        prompt_after(&pane(s), "2000000")
    });
    let secs = start.elapsed().as_secs_f64();
    // The final screen: consecutive numbers up to 2000000.
    let numbers: Vec<i64> = pane(&s).iter().filter_map(|l| l.parse().ok()).collect();
    let correct = numbers.len() > 20
        && numbers.windows(2).all(|w| w[1] == w[0] + 1)
        && *numbers.last().unwrap() == 2_000_000;
    // The scrollback: the top of the history.
    let first_number = |s: &str| {
        pane(s)
            .iter()
            .filter_map(|l| l.parse::<i64>().ok())
            .next()
            .unwrap_or(-1)
    };
    dashboard.send(&rt, b"\x02[");
    let bottom = first_number(&dashboard.wait(&rt, "scroll mode", |s| s.contains(" SCROLL ")));
    dashboard.send(&rt, b"g");
    let top = first_number(&dashboard.wait(&rt, "the scrollback top", |s| {
        s.contains(" SCROLL ") && first_number(s) != bottom
    }));
    dashboard.close(&rt);
    (secs, correct, top)
}

fn flood_tmux() -> f64 {
    flood_in_tmux(&format!("{BIOXEN} lua"))
}

/// The flood typed into `interpreter` in a tmux window the size of the dashboard's
/// pane, shown by `tmux attach` in a terminal of that size.
fn flood_in_tmux(interpreter: &str) -> f64 {
    let size = dashboard_pane_size();
    let (t, rt) = (Tmux::start("floodpeer", 64, 36, "true", None), runtime());
    let inner = PeerTmux::start(&t, "flood", size, interpreter);
    let mut client = inner.attach(&rt, &t, size);
    client.wait(&rt, "a prompt", |s| pane(s).iter().any(|l| l == ">"));
    let start = Instant::now();
    client.send(&rt, format!("{FLOOD}\r").as_bytes());
    client.wait(&rt, "the prompt after the flood", |s| {
        prompt_after(&pane(s), "2000000")
    });
    let secs = start.elapsed().as_secs_f64();
    client.close(&rt);
    inner.end();
    secs
}

fn seq_bioxen() -> f64 {
    let config = "[local]\ncommand = \"seq 1 2000000\"\n";
    let t = Tmux::start("seq", 120, 40, "true", Some(config));
    let rt = runtime();
    let mut dashboard = PtyClient::start(&rt, &t, BIOXEN, &[]);
    dashboard.wait(&rt, "the dashboard", |s| s.contains("No VMs yet"));
    dashboard.send(&rt, b"c");
    dashboard.wait(&rt, "the dialog", |s| s.contains("Create a VM"));
    let start = Instant::now();
    dashboard.send(&rt, b"\r");
    dashboard.wait(&rt, "seq to end", |s| {
        s.contains("exited(0)") && s.contains("2000000")
    });
    let secs = start.elapsed().as_secs_f64();
    dashboard.close(&rt);
    secs
}

fn seq_tmux() -> f64 {
    let size = dashboard_pane_size();
    let (t, rt) = (Tmux::start("seqpeer", 64, 36, "true", None), runtime());
    let start = Instant::now();
    let inner = PeerTmux::start(&t, "seq", size, "seq 1 2000000; echo SEQ-DONE; sleep 600");
    let client = inner.attach(&rt, &t, size);
    client.wait(&rt, "seq to end", |s| s.contains("SEQ-DONE"));
    let secs = start.elapsed().as_secs_f64();
    client.close(&rt);
    inner.end();
    secs
}

/// A tmux server of a section's own, one window the size of the dashboard's pane,
/// no status line: the peer a client attaches to.
struct PeerTmux {
    socket: String,
    pid: u32,
}

impl PeerTmux {
    fn start(t: &Tmux, tag: &str, size: Size, command: &str) -> PeerTmux {
        let socket = format!("bioxen-bench-{tag}-inner-{}", std::process::id());
        let conf = t.dir.join(format!("{tag}-inner.conf"));
        std::fs::write(&conf, "set -g status off\nset -g history-limit 10000\n").unwrap();
        let (w, h) = (size.cols.to_string(), size.rows.to_string());
        let out = Command::new("tmux")
            .args(["-L", &socket, "-f"])
            .arg(&conf)
            .args(["new-session", "-d", "-x", &w, "-y", &h, command])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pid = tmux_server_pid(&socket);
        PeerTmux { socket, pid }
    }

    /// `tmux attach` in a terminal the size of the window.
    fn attach(&self, rt: &tokio::runtime::Runtime, t: &Tmux, size: Size) -> PtyClient {
        let args = ["-L", &self.socket, "attach"];
        PtyClient::start_sized(rt, t, "tmux", &args, (size.rows, size.cols))
    }

    fn end(self) {
        end_tmux_server(&self.socket, self.pid);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// `min–max` of a set of seconds, to show how noisy the runs were.
fn spread(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(0.0, f64::max);
    format!("{min:.2}–{max:.2} s")
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Output logs are on by default and written off the reader's path: a flood costs
/// about what it costs with them off.
fn flood_logs(rows: &mut Vec<Row>) {
    let (mut logged, mut unlogged, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..9 {
        let on = flood_bioxen("flood-logged", None).0;
        let off = flood_bioxen("flood-unlogged", Some("[logs]\nenabled = false\n")).0;
        logged.push(on);
        unlogged.push(off);
        ratios.push(on / off);
    }
    rows.push(row(
        "flood with output logs (the default; peer: bioxen with [logs] enabled = false)",
        median(logged.clone()),
        median(unlogged.clone()),
        "s",
        &format!(
            "median of 9, in turns (on {}, off {}); median of the 9 ratios in turn {:.2}; \
             target ratio <= 1.05",
            spread(&logged),
            spread(&unlogged),
            median(ratios)
        ),
    ));
}

fn floods(rows: &mut Vec<Row>) {
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    let mut checks = Vec::new();
    for _ in 0..3 {
        let (s, correct, top) = flood_bioxen("flood", None);
        ours.push(s);
        checks.push((correct, top));
        peer.push(flood_tmux());
    }
    let (correct, top) = checks[0];
    rows.push(row(
        "flood: for i=1,2e6 print(i), until the prompt",
        median(ours),
        median(peer),
        "s",
        &format!(
            "median of 3; final screen correct: {correct}; scrollback top line {top} (10,000 lines kept: expect ~{})",
            2_000_000 - 10_000 - dashboard_pane_size().rows as i64 + 1
        ),
    ));
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        ours.push(seq_bioxen());
        peer.push(seq_tmux());
    }
    rows.push(row(
        "flood: seq 1 2000000 as the VM command",
        median(ours),
        median(peer),
        "s",
        "median of 3",
    ));
}

/// The dashboard against Debian's `lua5.4 -i` in a plain tmux pane: what a researcher
/// had before bioxen, whose interpreter writes each line as it prints it.
fn flood_vs_lua(rows: &mut Vec<Row>) {
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        ours.push(flood_bioxen("luaflood", None).0);
        peer.push(flood_in_tmux("lua5.4 -i"));
    }
    rows.push(row(
        "flood: the dashboard against lua5.4 -i in a tmux pane",
        median(ours),
        median(peer),
        "s",
        "median of 3; target ratio <= 0.3 (issue 16)",
    ));
}

// ----- 2. parser ------------------------------------------------------------------

fn parser(rows: &mut Vec<Row>) {
    let mut scrolling = Vec::new();
    for i in 1..=2_000_000u32 {
        scrolling.extend_from_slice(format!("{i}\r\n").as_bytes());
    }
    let mut colour = Vec::new();
    for i in 0..200_000u32 {
        for j in 0..8u32 {
            colour.extend_from_slice(
                format!(
                    "\x1b[38;5;{}m\x1b[48;2;{};{};40m{:>6}",
                    (i + j) % 256,
                    j * 30,
                    i % 200,
                    i
                )
                .as_bytes(),
            );
        }
        colour.extend_from_slice(b"\x1b[0m\r\n");
    }
    let mut repl = Vec::new();
    for i in 0..300_000u32 {
        repl.extend_from_slice(
            format!("> x = {i} * 2\r\n> print('x is', x)\r\nx is\t{}\r\n", i * 2).as_bytes(),
        );
    }
    let size = dashboard_pane_size();
    let drain = pty_drain(&scrolling);
    for (name, data) in [
        ("scrolling", &scrolling),
        ("dense colour", &colour),
        ("REPL-like", &repl),
    ] {
        let mut screen = Screen::new(size, 10_000);
        let start = Instant::now();
        for chunk in data.chunks(64 * 1024) {
            screen.feed(chunk);
        }
        let mbs = data.len() as f64 / start.elapsed().as_secs_f64() / 1e6;
        rows.push(row(
            &format!("parser: {name} ({} MB)", data.len() / 1_000_000),
            mbs,
            drain,
            "MB/s",
            "peer: raw PTY drain rate of `cat` (higher is better for both)",
        ));
    }
}

/// How fast a PTY delivers a file that `cat` writes into it.
fn pty_drain(data: &[u8]) -> f64 {
    let file = std::env::temp_dir().join(format!("bioxen-bench-drain-{}", std::process::id()));
    std::fs::write(&file, data).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mbs = rt.block_on(async {
        use tokio::io::AsyncReadExt;
        let (pty, pts) = pty_process::open().unwrap();
        pty.resize(pty_process::Size::new(36, 64)).unwrap();
        let start = Instant::now();
        let mut child = pty_process::Command::new("cat")
            .arg(&file)
            .spawn(pts)
            .unwrap();
        let (mut r, _w) = pty.into_split();
        let mut buf = vec![0u8; 64 * 1024];
        let mut n = 0usize;
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
        }
        let _ = child.wait().await;
        n as f64 / start.elapsed().as_secs_f64() / 1e6
    });
    let _ = std::fs::remove_file(file);
    mbs
}

// ----- 3. idle --------------------------------------------------------------------

fn cpu_ns(pid: u32) -> u64 {
    thread_cpu_ns(pid).values().sum()
}

fn switches(pid: u32) -> u64 {
    thread_switches(pid).values().sum()
}

/// A figure of each thread of `pid`, by thread id, read from one file of its task.
fn per_thread(
    pid: u32,
    file: &str,
    figure: impl Fn(&str) -> Option<u64>,
) -> std::collections::HashMap<String, u64> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Default::default();
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let text = std::fs::read_to_string(t.path().join(file)).ok()?;
            Some((t.file_name().to_string_lossy().into_owned(), figure(&text)?))
        })
        .collect()
}

fn thread_cpu_ns(pid: u32) -> std::collections::HashMap<String, u64> {
    per_thread(pid, "schedstat", |s| {
        s.split_whitespace().next()?.parse().ok()
    })
}

fn thread_switches(pid: u32) -> std::collections::HashMap<String, u64> {
    per_thread(pid, "status", |s| {
        let counts = s.lines().filter(|l| l.contains("ctxt_switches"));
        Some(
            counts
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum(),
        )
    })
}

/// What the threads alive at the end did since `before`: a thread that ended in
/// between (an idle worker of a blocking pool) takes its count along, and a sum over
/// the threads alive at each end would go down.
fn grown(
    before: &std::collections::HashMap<String, u64>,
    after: &std::collections::HashMap<String, u64>,
) -> u64 {
    after
        .iter()
        .map(|(tid, n)| n.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum()
}

/// The dashboard that runs in `t`'s pane.
fn pid_of_dashboard(t: &Tmux) -> u32 {
    let name = Path::new(BIOXEN)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let pane_pid = t
        .run(&["display-message", "-p", "-t", "0", "#{pane_pid}"])
        .trim()
        .to_string();
    let out = Command::new("pgrep")
        .args(["-P", &pane_pid, "-x", &name])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    assert!(pid > 0, "no dashboard in the terminal");
    pid
}

fn idle(rows: &mut Vec<Row>) {
    let t = Tmux::start("idle", 120, 40, BIOXEN, None);
    t.wait(
        "the dashboard",
        |s| s.contains("No VMs yet"),
        Duration::from_millis(20),
    );
    for _ in 0..20 {
        t.keys(&["c"]);
        t.wait(
            "the dialog",
            |s| s.contains("Create a VM"),
            Duration::from_millis(10),
        );
        t.keys(&["Enter"]);
        t.wait(
            "a prompt",
            |s| s.contains(" TERM ") && pane(s).iter().any(|l| l == ">"),
            Duration::from_millis(10),
        );
        t.keys(&["C-b", "d"]);
        t.wait(
            "the list",
            |s| s.contains(" LIST "),
            Duration::from_millis(10),
        );
    }
    // The dashboard and the server it talks to, together.
    let pids = [
        pid_of_dashboard(&t),
        t.bioxen_server_pid().expect("the bioxen server"),
    ];
    let cpu = || pids.map(thread_cpu_ns);
    let wakes = || pids.map(thread_switches);
    let sum = |before: &[_; 2], after: &[_; 2]| {
        grown(&before[0], &after[0]) + grown(&before[1], &after[1])
    };
    // CPU in % of a core and wake-ups per second over the next `secs` seconds.
    let measure = |secs: u64| {
        let (c0, s0) = (cpu(), wakes());
        std::thread::sleep(Duration::from_secs(secs));
        let (c1, s1) = (cpu(), wakes());
        let secs = secs as f64;
        (
            sum(&c0, &c1) as f64 / 1e9 / secs * 100.0,
            sum(&s0, &s1) as f64 / secs,
        )
    };
    std::thread::sleep(Duration::from_secs(3));
    let (ours_pct, ours_wake) = measure(10);
    // Settled: past a minute, uptime labels change once a minute and the process
    // sampler has backed off. A whole minute: every uptime label flips once in it, and
    // the sampler looks twice.
    std::thread::sleep(Duration::from_secs(50));
    let (settled_pct, settled_wake) = measure(60);

    let peer = Tmux::start("idlepeer", 64, 36, &format!("{BIOXEN} lua"), None);
    for _ in 1..20 {
        peer.run(&["new-window", &format!("{BIOXEN} lua")]);
    }
    std::thread::sleep(Duration::from_secs(3));
    let ppid = peer.server_pid();
    let (c0, s0) = (cpu_ns(ppid), switches(ppid));
    std::thread::sleep(Duration::from_secs(10));
    let (c1, s1) = (cpu_ns(ppid), switches(ppid));
    let peer_pct = (c1 - c0) as f64 / 1e9 / 10.0 * 100.0;
    let peer_wake = (s1 - s0) as f64 / 10.0;
    rows.push(row(
        "idle: 20 sessions, CPU over 10 s",
        ours_pct,
        peer_pct,
        "% of a core",
        "target < 0.5%; bioxen: server + dashboard; peer: tmux server with 20 windows",
    ));
    rows.push(row(
        "idle: wake-ups (context switches), the first 10 s",
        ours_wake,
        peer_wake,
        "/s",
        "all threads of the process; uptime labels still count seconds",
    ));
    rows.push(row(
        "idle: CPU over 60 s, a minute after the last VM started",
        settled_pct,
        peer_pct,
        "% of a core",
        "target < 0.5%",
    ));
    rows.push(row(
        "idle: wake-ups, a minute after the last VM started",
        settled_wake,
        peer_wake,
        "/s",
        "target <= 0.5/s (issue 16); all threads of server and dashboard",
    ));
}

// ----- 4. memory --------------------------------------------------------------------

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// The anonymous part of the RSS: what the process holds, without the pages of its
/// program and libraries read in from their files.
fn anon_kib(pid: u32) -> u64 {
    status_kib(pid, "RssAnon:")
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn manager_config() -> ManagerConfig {
    let mut mc = ManagerConfig::from_config(&Config::default()).unwrap();
    mc.self_exe = PathBuf::from(BIOXEN);
    mc.logs.dir = std::env::temp_dir().join("bioxen-bench-logs");
    mc
}

/// Runs in a child process (a fresh heap): n VMs that each printed 10,000 lines;
/// prints this process's RSS growth in KiB.
fn memory_child(n: usize) {
    let rt = runtime();
    rt.block_on(async {
        let m = Manager::new(manager_config());
        let size = dashboard_pane_size();
        // A VM made and ended first, as the tmux server's first window is there before
        // its base is read: the growth is then what the sessions hold, not the
        // program's own code read in on its first use (several MiB, shared by every
        // bioxen process).
        let warm = "warm-up";
        let options = VmOptions {
            size,
            ..VmOptions::default()
        };
        m.create_interactive_vm(Some(warm), VmKind::Local, options)
            .await
            .unwrap();
        m.wait_ready(warm, Duration::from_secs(60)).await.unwrap();
        m.send_input(warm, "print(1)\r").unwrap();
        m.wait_screen(warm, Duration::from_secs(60), |s| {
            s.text().contains("1\n> ")
        })
        .await
        .unwrap();
        m.kill_and_destroy(warm).await.unwrap();
        let pid = std::process::id();
        let (base, base_anon) = (rss_kib(pid), anon_kib(pid));
        let mut ids = Vec::new();
        for i in 0..n {
            let id = format!("m{i}");
            m.create_interactive_vm(
                Some(&id),
                VmKind::Local,
                VmOptions {
                    size,
                    ..VmOptions::default()
                },
            )
            .await
            .unwrap();
            ids.push(id);
        }
        for id in &ids {
            m.wait_ready(id, Duration::from_secs(60)).await.unwrap();
            m.send_input(id, "for i = 1, 10000 do print(i) end\r")
                .unwrap();
        }
        for id in &ids {
            m.wait_screen(id, Duration::from_secs(120), |s| {
                s.text().contains("10000\n> ")
            })
            .await
            .unwrap();
        }
        // The VMs' own output buffers are read, as a dashboard would never do: this is
        // the worst case (each keeps up to 1 MiB until read).
        let grown = rss_kib(pid).saturating_sub(base);
        let grown_anon = anon_kib(pid).saturating_sub(base_anon);
        println!("{grown} {grown_anon}");
        m.shutdown().await;
    });
}

fn memory(rows: &mut Vec<Row>) {
    let exe = std::env::current_exe().unwrap();
    for n in [1usize, 20, 100] {
        let out = Command::new(&exe)
            .env("BIOXEN_BENCH_MEMORY", n.to_string())
            .output()
            .unwrap();
        let figures: Vec<f64> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(f64::NAN))
            .collect();
        let (grown, grown_anon) = (figures[0], figures[1]);
        let (peer, peer_anon) = tmux_memory(n);
        let per = |kib: f64| kib / 1024.0 / n as f64;
        rows.push(row(
            &format!("memory: {n} VM(s) x 10,000 lines printed"),
            per(grown),
            per(peer),
            "MiB per session",
            &format!(
                "target <= 4 and <= tmux; bioxen: manager's RSS growth after a first VM came and went; peer: tmux server RSS growth after its first window (history-limit 10000); anonymous memory alone {:.3} vs {:.3}",
                per(grown_anon),
                per(peer_anon)
            ),
        ));
    }
}

/// The tmux server's RSS growth over `n` windows that printed 10,000 lines, and its
/// anonymous part, in KiB.
fn tmux_memory(n: usize) -> (f64, f64) {
    let t = Tmux::start("mempeer", 64, 36, "sleep 1", None);
    let pid = t.server_pid();
    let (base, base_anon) = (rss_kib(pid), anon_kib(pid));
    for _ in 0..n {
        t.run(&["new-window", "seq 1 10000; sleep 600"]);
    }
    std::thread::sleep(Duration::from_secs(3));
    (
        rss_kib(pid).saturating_sub(base) as f64,
        anon_kib(pid).saturating_sub(base_anon) as f64,
    )
}

// ----- 5. latency -------------------------------------------------------------------

/// Time from a keystroke to its echo: each sample types one more letter and waits until
/// the prompt line shows exactly the text typed so far.
async fn echo_latencies(m: &Manager, id: &str, samples: usize) -> Vec<f64> {
    m.wait_ready(id, Duration::from_secs(10)).await.unwrap();
    let mut out = Vec::new();
    let mut typed = String::new();
    for i in 0..samples {
        if typed.len() == 30 {
            // Clear the line (not measured) and start again.
            m.send_input(id, "\x15").unwrap();
            typed.clear();
            m.wait_screen(id, Duration::from_secs(5), |s| {
                s.text_before_cursor() == "> "
            })
            .await
            .unwrap();
        }
        let c = (b'a' + (i % 26) as u8) as char;
        typed.push(c);
        let expected = format!("> {typed}");
        let start = Instant::now();
        m.send_input(id, c.to_string()).unwrap();
        m.wait_screen(id, Duration::from_secs(5), |s| {
            s.text_before_cursor() == expected
        })
        .await
        .unwrap();
        out.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    m.send_input(id, "\x15").unwrap();
    out
}

fn latency(rows: &mut Vec<Row>) {
    let rt = runtime();
    rt.block_on(async {
        let m = Manager::new(manager_config());
        let lua54 = VmOptions {
            command: Some(vec!["lua5.4".into(), "-i".into()]),
            ..VmOptions::default()
        };
        let (mut ours, mut peer) = (Vec::new(), Vec::new());
        for i in 0..20 {
            let start = Instant::now();
            let id = m.create_interactive_vm(Some(&format!("e{i}")), VmKind::Local, VmOptions::default()).await.unwrap();
            m.wait_ready(&id, Duration::from_secs(10)).await.unwrap();
            ours.push(start.elapsed().as_secs_f64() * 1000.0);
            let start = Instant::now();
            let pid = m.create_interactive_vm(Some(&format!("p{i}")), VmKind::Local, lua54.clone()).await.unwrap();
            m.wait_ready(&pid, Duration::from_secs(10)).await.unwrap();
            peer.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        rows.push(row("create-to-prompt, local VM", median(ours), median(peer), "ms", "median of 20; target < 50 ms; peer: lua5.4 -i in the same PTY path"));
        let ours = echo_latencies(&m, "e0", 200).await;
        let peer = echo_latencies(&m, "p0", 200).await;
        rows.push(row(
            "keystroke to echo on screen",
            median(ours.clone()),
            median(peer.clone()),
            "ms",
            &format!(
                "median of 200 (p95 {:.2} vs {:.2}); target < 16 ms; the dashboard draws within one frame of the echo",
                percentile(ours, 0.95),
                percentile(peer, 0.95)
            ),
        ));
        m.shutdown().await;
    });
}

// ----- 6. XAPI ------------------------------------------------------------------------

fn xapi(rows: &mut Vec<Row>) {
    let rt = runtime();
    rt.block_on(async {
        let server = bioxen::sim::SimServer::start("127.0.0.1:0".parse().unwrap(), Default::default(), false)
            .await
            .unwrap();
        server.sim.add_bulk_vms(500);
        let client = Arc::new(
            bioxen::xapi::XapiClient::new(bioxen::xapi::Login {
                url: server.url.clone(),
                username: "root".into(),
                password: "password".into(),
                tls: bioxen::xapi::tls::TlsMode::Verify,
            })
            .unwrap(),
        );
        let cache = bioxen::xapi::EventCache::start(client);
        cache
            .wait_for(Duration::from_secs(30), |c| c.vms().len() == 500)
            .await;
        let mut lat = Vec::new();
        for i in 0..20 {
            let name = format!("bulk-{}", i * 25);
            let state = if i % 2 == 0 { "Running" } else { "Paused" };
            let start = Instant::now();
            server.sim.set_power_state(&name, state);
            let seen = cache
                .wait_for(Duration::from_secs(5), |c| c.vms().iter().any(|v| v.name == name && v.power_state == state))
                .await;
            assert!(seen);
            lat.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        // Longer than one long-poll (30 s), so at least one renewal is counted.
        let before = cache.requests();
        tokio::time::sleep(Duration::from_secs(35)).await;
        let idle_per_min = (cache.requests() - before) as f64 * 60.0 / 35.0;
        rows.push(row(
            "XAPI: power change to cache, 500 VMs",
            median(lat.clone()),
            1000.0,
            "ms",
            &format!("median of 20 (max {:.1} ms); target < 1 s; peer: polling once a second (up to 1000 ms)", percentile(lat, 1.0)),
        ));
        rows.push(row(
            "XAPI: requests per minute while idle",
            idle_per_min,
            500.0 * 60.0,
            "req/min",
            "one event.from long-poll (30 s) at a time; peer: VM.get_record per VM per second",
        ));
    });
}

// ----- 8. reattach ------------------------------------------------------------------

const REATTACH_VMS: usize = 100;

/// Whether some line reads `last` and the next non-empty one is the Lua prompt.
fn prompt_follows(lines: &[String], last: &str) -> bool {
    let non_empty: Vec<&String> = lines.iter().filter(|l| !l.is_empty()).collect();
    non_empty.windows(2).any(|w| w[0] == last && w[1] == ">")
}

/// Reattaching to a server that holds 100 VMs with 10,000 lines of scrollback each,
/// against `tmux attach` to a tmux server with 100 such windows; and what each session
/// costs in memory, server plus the dashboard's mirror.
/// Attaches timed of each: the two differ by a millisecond, and one attach by as much.
const REATTACH_RUNS: usize = 15;

fn reattach(rows: &mut Vec<Row>) {
    let t = Tmux::start("reattach", 120, 40, "true", None);
    let rt = runtime();
    let (mut server, client) = fleet::bench_server(&t, &rt);
    // Memory here is anonymous memory: RSS would also count the program's own pages,
    // read in from its file on their first use and shared by every bioxen process.
    let server_base = anon_kib(server.id());
    // A dashboard on an empty server: what it costs without any session.
    let empty = |s: &str| s.contains("No VMs yet");
    let (_, dashboard) = PtyClient::time_to_frame(&rt, &t, BIOXEN, &["attach"], empty);
    let dashboard_base = anon_kib(dashboard.pid());
    dashboard.close(&rt);

    let size = dashboard_pane_size();
    rt.block_on(async {
        let ids: Vec<String> = (0..REATTACH_VMS).map(|i| format!("vm{i:03}")).collect();
        for id in &ids {
            let options = bioxen::protocol::CreateOptions {
                rows: Some(size.rows),
                cols: Some(size.cols),
                ..Default::default()
            };
            client
                .create_interactive_vm(Some(id), VmKind::Local, options)
                .await
                .unwrap();
        }
        for id in &ids {
            client
                .wait_ready(id, Duration::from_secs(120))
                .await
                .unwrap();
            client
                .send_input(id, "for i = 1, 10000 do print(i) end\r")
                .await
                .unwrap();
        }
        for id in &ids {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !client.screen_text(id).await.unwrap().contains("10000\n> ") {
                assert!(Instant::now() < deadline, "{id} never finished printing");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let server_grown = anon_kib(server.id()).saturating_sub(server_base);

    // The peer: 100 windows of lua5.4 that printed the same, in a tmux server of its own.
    let inner = format!("bioxen-bench-inner-{}", std::process::id());
    let conf = t.dir.join("inner.conf");
    std::fs::write(&conf, "set -g history-limit 10000\nset -g status off\n").unwrap();
    let lua = "lua5.4 -e 'for i = 1, 10000 do print(i) end' -i";
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-L", &inner, "-f"])
            .arg(&conf)
            .args(args)
            .output()
            .unwrap()
    };
    let (w, h) = (size.cols.to_string(), size.rows.to_string());
    tmux(&["new-session", "-d", "-x", &w, "-y", &h, lua]);
    for _ in 1..REATTACH_VMS {
        tmux(&["new-window", "-t", "0:", lua]);
    }
    let inner_pid = tmux_server_pid(&inner);
    let peer_base_probe = Tmux::start("reattach-empty", 64, 36, "sleep 600", None);
    let peer_base = anon_kib(peer_base_probe.server_pid());
    drop(peer_base_probe);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let all = (0..REATTACH_VMS).all(|i| {
            let out = tmux(&["capture-pane", "-p", "-t", &format!("0:{i}")]);
            let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.trim_end().to_string())
                .collect();
            prompt_follows(&lines, "10000")
        });
        if all {
            break;
        }
        assert!(Instant::now() < deadline, "the tmux windows never finished");
        std::thread::sleep(Duration::from_millis(100));
    }
    let peer_grown = anon_kib(inner_pid).saturating_sub(peer_base);

    // The first VM's last screen next to the list: the first complete frame. The two
    // take turns, so that whatever else the machine does falls on both alike.
    let ours_ready = |s: &str| s.contains("vm000") && prompt_follows(&pane(s), "10000");
    let peer_ready = |s: &str| prompt_follows(&pane(s), "10000");
    let peer_attach = ["-L", &inner, "attach", "-t", "0:0"];
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    let mut mirror_kib = 0;
    for _ in 0..REATTACH_RUNS {
        let (secs, dashboard) =
            PtyClient::time_to_frame(&rt, &t, BIOXEN, &["attach", "vm000"], ours_ready);
        ours.push(secs);
        mirror_kib = anon_kib(dashboard.pid()).saturating_sub(dashboard_base);
        dashboard.close(&rt);
        let (secs, client) = PtyClient::time_to_frame(&rt, &t, "tmux", &peer_attach, peer_ready);
        peer.push(secs);
        client.close(&rt);
    }
    end_tmux_server(&inner, inner_pid);
    drop(client);
    let _ = server.kill();
    let _ = server.wait();

    rows.push(row(
        &format!("reattach: first complete frame, {REATTACH_VMS} VMs x 10,000 lines"),
        median(ours.clone()) * 1000.0,
        median(peer.clone()) * 1000.0,
        "ms",
        &format!(
            "median of {REATTACH_RUNS}, taking turns (bioxen max {:.0} ms, tmux max {:.0} ms); target <= 100 ms and <= tmux attach; from starting the client to the frame, read from its own terminal as it is written",
            percentile(ours, 1.0) * 1000.0,
            percentile(peer, 1.0) * 1000.0
        ),
    ));
    rows.push(row(
        "memory: per session, server + mirror",
        (server_grown as f64 / REATTACH_VMS as f64 + mirror_kib as f64) / 1024.0,
        peer_grown as f64 / REATTACH_VMS as f64 / 1024.0,
        "MiB",
        &format!(
            "target <= 2 and <= tmux; anonymous memory; bioxen: server growth / {REATTACH_VMS} + the dashboard's growth over an empty one (its one mirror, counted whole, {mirror_kib} KiB); peer: tmux server growth / {REATTACH_VMS}"
        ),
    ));
}

// ----- grid ---------------------------------------------------------------------------

const GRID_VMS: usize = 16;
const GRID_FLOODS: usize = 4;
/// Each flooding VM prints for this long: the measurement window, the echo test and
/// the ramp fit inside it.
const GRID_FLOOD: &str =
    "local t0 = os.time() while os.time() - t0 < 14 do print('flood', os.clock()) end";

/// Write system calls of a process so far: a frame is one write, so their rate over a
/// window is the frame rate (bioxen sends each frame in one write; tmux's client
/// writes what its server sends it).
fn writes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| {
            io.lines().find_map(|l| {
                l.strip_prefix("syscw: ")
                    .and_then(|v| v.trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// Frames a dashboard logged so far (it logs each at trace level).
fn frames_logged(log: &Path) -> u64 {
    std::fs::read_to_string(log)
        .map(|l| l.lines().filter(|l| l.ends_with(" frame")).count() as u64)
        .unwrap_or(0)
}

/// What one run of the grid measurement found.
struct GridRun {
    /// CPU of the client (dashboard or tmux client) and of the server, in % of a core.
    client_cpu: f64,
    server_cpu: f64,
    /// Frames per second (bioxen), or writes to the terminal per second (tmux, whose
    /// server writes as it parses rather than in frames).
    fps: f64,
    echo_ms: Vec<f64>,
    /// CPU of the four flooding interpreters together, in % of a core: a terminal
    /// that read their output slower would make them wait, and use less.
    floods_cpu: f64,
}

/// Measures a terminal showing 16 panes with 4 floods: CPU and frame rate over 5 s,
/// then keystroke-to-screen time in the quiet focused pane, typed into and read from
/// the terminal of `shown` (the dashboard, or the tmux client). `flood(i)` starts a
/// flood in pane `i` (1 to 4).
fn measure_grid(
    rt: &tokio::runtime::Runtime,
    shown: &mut PtyClient,
    server: u32,
    floods: &[u32],
    frames: impl Fn() -> u64,
    flood: impl Fn(usize),
) -> GridRun {
    for i in 1..=GRID_FLOODS {
        flood(i);
    }
    std::thread::sleep(Duration::from_secs(1));
    let window = Duration::from_secs(5);
    let client = shown.pid();
    let floods_ns = || floods.iter().map(|&p| cpu_ns(p)).sum::<u64>();
    let (c0, s0, w0, f0) = (cpu_ns(client), cpu_ns(server), frames(), floods_ns());
    std::thread::sleep(window);
    let (c1, s1, w1, f1) = (cpu_ns(client), cpu_ns(server), frames(), floods_ns());
    let pct = |ns: u64| ns as f64 / window.as_nanos() as f64 * 100.0;
    let mut echo_ms = Vec::new();
    let mut typed = String::new();
    for i in 0..30 {
        let c = char::from(b'a' + (i % 26) as u8);
        typed.push(c);
        let want = format!("> {typed}");
        let start = Instant::now();
        shown.send(rt, c.to_string().as_bytes());
        shown.wait(rt, "the echo", |s| s.contains(&want));
        echo_ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    GridRun {
        client_cpu: pct(c1 - c0),
        server_cpu: pct(s1 - s0),
        fps: (w1 - w0) as f64 / window.as_secs_f64(),
        echo_ms,
        floods_cpu: pct(f1 - f0),
    }
}

/// The grid's terminal: rows by columns.
const GRID_TERMINAL: (u16, u16) = (60, 200);

/// A dashboard showing a grid of 16 VMs, 4 of them flooding, against a tmux client
/// showing 16 panes (tiled) of the same interpreter with the same 4 floods.
fn grid(rows: &mut Vec<Row>) {
    let t = Tmux::start("grid", 120, 40, "true", None);
    let log = t.dir.join("bioxen/bioxen.log");
    let rt = runtime();
    // Frames are counted in the trace log.
    let args = ["BIOXEN_LOG=trace", BIOXEN];
    let mut dashboard = PtyClient::start_sized(&rt, &t, "env", &args, GRID_TERMINAL);
    dashboard.wait(&rt, "the dashboard", |s| s.contains("No VMs yet"));
    let socket = t.dir.join("bioxen/server.sock");
    let client = rt.block_on(async {
        let client = bioxen::client::Client::connect(&socket, "bench")
            .await
            .unwrap();
        for i in 0..GRID_VMS {
            let id = format!("g{i:02}");
            client
                .create_interactive_vm(Some(&id), VmKind::Local, Default::default())
                .await
                .unwrap();
            client
                .wait_ready(&id, Duration::from_secs(60))
                .await
                .unwrap();
        }
        client
    });
    dashboard.wait(&rt, "16 VMs", |s| s.contains("VMs (16)"));
    dashboard.send(&rt, b"*");
    dashboard.send(&rt, b"g");
    dashboard.wait(&rt, "the grid", |s| {
        s.contains("grid(16)") && (0..GRID_VMS).all(|i| s.contains(&format!(" g{i:02} ")))
    });
    let server = t.bioxen_server_pid().expect("the bioxen server");
    let listed = rt.block_on(client.list()).unwrap();
    let flood_pids: Vec<u32> = (1..=GRID_FLOODS)
        .map(|i| {
            let id = format!("g{i:02}");
            let vm = listed.iter().find(|v| v.name == id).expect("a flooding VM");
            vm.pid.expect("a flooding VM's pid")
        })
        .collect();
    let ours = measure_grid(
        &rt,
        &mut dashboard,
        server,
        &flood_pids,
        || frames_logged(&log),
        |i| {
            let id = format!("g{i:02}");
            rt.block_on(client.send_input(&id, format!("{GRID_FLOOD}\r")))
                .unwrap();
        },
    );
    dashboard.close(&rt);
    drop(client);
    drop(t);

    // The peer: 16 panes of the same interpreter in one tmux window, tiled.
    let t = Tmux::start("grid-peer", 120, 40, "true", None);
    let inner = format!("bioxen-bench-grid-inner-{}", std::process::id());
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-L", &inner, "-f", "/dev/null"])
            .args(args)
            .output()
            .unwrap()
    };
    let repl = format!("{BIOXEN} lua");
    let (h, w) = (GRID_TERMINAL.0.to_string(), GRID_TERMINAL.1.to_string());
    tmux(&["new-session", "-d", "-x", &w, "-y", &h, &repl]);
    tmux(&["set-option", "-g", "status", "off"]);
    for _ in 1..GRID_VMS {
        tmux(&["split-window", "-t", "0:0", &repl]);
        tmux(&["select-layout", "-t", "0:0", "tiled"]);
    }
    tmux(&["select-pane", "-t", "0:0.0"]);
    let inner_pid = tmux_server_pid(&inner);
    let attach = ["-L", &inner, "attach"];
    let mut shown = PtyClient::start_sized(&rt, &t, "tmux", &attach, GRID_TERMINAL);
    shown.wait(&rt, "16 prompts", |s| s.matches("> ").count() >= GRID_VMS);
    let panes = String::from_utf8_lossy(
        &tmux(&["list-panes", "-t", "0:0", "-F", "#{pane_index} #{pane_pid}"]).stdout,
    )
    .into_owned();
    let flood_pids: Vec<u32> = (1..=GRID_FLOODS)
        .map(|i| {
            panes
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{i} ")))
                .and_then(|p| p.trim().parse().ok())
                .expect("a flooding pane's pid")
        })
        .collect();
    // tmux's server writes to the client's terminal itself.
    let peer = measure_grid(
        &rt,
        &mut shown,
        inner_pid,
        &flood_pids,
        || writes(inner_pid),
        |i| {
            tmux(&["send-keys", "-t", &format!("0:0.{i}"), "-l", GRID_FLOOD]);
            tmux(&["send-keys", "-t", &format!("0:0.{i}"), "Enter"]);
        },
    );
    shown.close(&rt);
    end_tmux_server(&inner, inner_pid);
    drop(t);

    let note = "16 VMs of the embedded REPL, 4 printing flat out for the window; 200x60";
    rows.push(row(
        "grid, 4 of 16 flooding: CPU, server + client",
        ours.client_cpu + ours.server_cpu,
        peer.client_cpu + peer.server_cpu,
        "% of a core",
        &format!(
            "{note}; bioxen: dashboard {:.0} (target < 100) + server {:.0}; tmux: client {:.0} + server {:.0} (its server draws)",
            ours.client_cpu, ours.server_cpu, peer.client_cpu, peer.server_cpu
        ),
    ));
    rows.push(row(
        "grid, 4 of 16 flooding: CPU of the 4 flooding interpreters",
        ours.floods_cpu,
        peer.floods_cpu,
        "% of a core",
        "the same programs, printing flat out: a terminal that took their output slower would leave them waiting, and this lower",
    ));
    rows.push(row(
        "grid, 4 of 16 flooding: frames",
        ours.fps,
        peer.fps,
        "per s",
        "target <= 60; bioxen: frames drawn over 5 s (counted in its trace log); tmux: its server's writes to the terminal, made as it parses rather than in frames",
    ));
    rows.push(row(
        "grid, 4 of 16 flooding: echo in a quiet tile",
        median(ours.echo_ms.clone()),
        median(peer.echo_ms.clone()),
        "ms",
        &format!(
            "median of 30 (p95 {:.1} vs {:.1}); target < 16; from the key written to the terminal to the screen showing it, read from the terminal as it is written",
            percentile(ours.echo_ms, 0.95),
            percentile(peer.echo_ms, 0.95)
        ),
    ));
}

// ----- 7. scale -----------------------------------------------------------------------

fn scale(rows: &mut Vec<Row>) {
    let rt = runtime();
    rt.block_on(async {
        let m = Manager::new(manager_config());
        let start = Instant::now();
        let creates = (0..100).map(|i| {
            let m = m.clone();
            async move {
                let id = format!("s{i:03}");
                m.create_interactive_vm(Some(&id), VmKind::Local, VmOptions::default())
                    .await
                    .unwrap();
                m.wait_ready(&id, Duration::from_secs(120)).await.unwrap();
            }
        });
        futures_util::future::join_all(creates).await;
        let all_ready = start.elapsed().as_secs_f64();
        rows.push(text_row(
            "scale: 100 local VMs to a prompt",
            format!("{all_ready:.2} s"),
            "-".into(),
            "created concurrently",
        ));
        for i in 1..=10 {
            m.send_input(
                format!("s{i:03}"),
                "while true do print(string.rep('x', 60)) end\r",
            )
            .unwrap();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let lat = echo_latencies(&m, "s000", 100).await;
        rows.push(text_row(
            "scale: echo while 10 VMs flood",
            format!(
                "{:.2} ms median, {:.2} ms p95, {:.2} ms max",
                median(lat.clone()),
                percentile(lat.clone(), 0.95),
                percentile(lat, 1.0)
            ),
            "-".into(),
            "target < 50 ms",
        ));
        m.shutdown().await;
    });
}

/// A 50-VM matrix experiment from `up` until every VM has run its script and is back
/// at its prompt, against tmux opening the same 50 `lua5.4 -i script` windows in one
/// command; then the dashboard's list with the group open, a key and a frame, against
/// the same 50 VMs listed without an experiment.
fn experiment(rows: &mut Vec<Row>) {
    const N: usize = 50;
    let dir = std::env::temp_dir().join(format!("bioxen-bench-exp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("cell.lua");
    std::fs::write(&script, "print('seed', os.getenv('SEED'), ...)\n").unwrap();
    let seeds: Vec<String> = (1..=N).map(|i| format!("\"{i}\"")).collect();
    let file = dir.join("bench50.toml");
    std::fs::write(
        &file,
        format!(
            "[[vm]]\nname = \"cell\"\nscript = \"cell.lua\"\nargs = [\"{{seed}}\"]\n\
             matrix = {{ seed = [{}] }}\n",
            seeds.join(", ")
        ),
    )
    .unwrap();
    let plan = bioxen::config::experiment::load(&file, &Config::default()).unwrap();
    assert_eq!(plan.vms.len(), N);
    let rt = runtime();
    let (up_secs, listed) = rt.block_on(async {
        let m = Manager::new(manager_config());
        let start = Instant::now();
        m.up(plan, false).await.unwrap();
        let deadline = start + Duration::from_secs(120);
        let idle = |v: &bioxen::VmInfo| v.busy == Some(bioxen::protocol::Busy::Idle);
        while m.list().iter().filter(|v| idle(v)).count() < N {
            assert!(
                Instant::now() < deadline,
                "the 50 VMs never all came to a prompt"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let secs = start.elapsed().as_secs_f64();
        let listed = m.list();
        m.shutdown().await;
        (secs, listed)
    });
    let tmux_secs = experiment_in_tmux(&script, N);
    rows.push(row(
        "experiment: 50-VM matrix from up to every script run and at its prompt",
        up_secs,
        tmux_secs,
        "s",
        "tmux: 50 windows of `lua5.4 -i script` in one command; target < 2 s",
    ));
    let loose: Vec<bioxen::VmInfo> = listed
        .iter()
        .cloned()
        .map(|v| bioxen::VmInfo {
            experiment: None,
            ..v
        })
        .collect();
    rows.push(row(
        "experiment: list key + frame, 50-VM group open",
        key_and_frame_ms(listed),
        key_and_frame_ms(loose),
        "ms",
        "peer: the same 50 VMs listed loose; 120x40",
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Seconds for tmux to open `n` windows of `lua5.4 -i script` and show each prompt.
/// Searching every VM (`C-b /`): 10 VMs of 10,000 lines each, one line matching.
/// tmux cannot search across panes; the peer is grep over the same text in 10 files.
/// Cold start: `bioxen --version` against `tmux -V`, each run 60 times in turns, as a
/// shell runs them; the median of each, and how many symbols the binary exports for
/// the dynamic linker to place (`nm -D`).
fn startup(rows: &mut Vec<Row>) {
    let time = |cmd: &mut Command| {
        let start = Instant::now();
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        start.elapsed().as_secs_f64()
    };
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for _ in 0..60 {
        ours.push(time(Command::new(BIOXEN).arg("--version")));
        peer.push(time(Command::new("tmux").arg("-V")));
    }
    let exported = Command::new("nm")
        .args(["-D", "--defined-only", BIOXEN])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0);
    rows.push(row(
        "cold start: `bioxen --version`, median of 60",
        median(ours) * 1e3,
        median(peer) * 1e3,
        "ms",
        &format!("peer: `tmux -V`; the binary exports {exported} dynamic symbols"),
    ));
}

/// VMs the history section keeps rings for.
const HISTORY_VMS: usize = 100;

/// What keeping a day of figures costs for 100 VMs: the memory of their full rings,
/// and the CPU of recording one second for all of them (with the two sparkline sums
/// each record makes), beside the sampler's own work for that second, one read of
/// `/proc` for every process group on the machine.
fn history(rows: &mut Vec<Row>) {
    use bioxen::history::{History, Sample};
    let mut rings: Vec<History> = (0..HISTORY_VMS).map(|_| History::default()).collect();
    let sample = |i: usize, t: u64| Sample {
        cpu_percent: Some(((t as usize * 7 + i) % 100) as f32),
        rss_bytes: Some((20 << 20) + t * 1024),
        progress: Some((t % 100) as u8),
        busy: Some(t % 3 == 0),
    };
    let start = 1_700_000_000;
    // A full day first: the rings at their largest.
    for t in 0..86_400u64 {
        for (i, h) in rings.iter_mut().enumerate() {
            h.record(start + t, sample(i, t));
        }
    }
    let bytes: usize = rings.iter().map(History::bytes).sum();
    // Then one more minute, timed, as the sampler records: sparkline before and after.
    let seconds = 60u64;
    let began = Instant::now();
    for t in 86_400..86_400 + seconds {
        for (i, h) in rings.iter_mut().enumerate() {
            let before = h.recent_cpu();
            h.record(start + t, sample(i, t));
            std::hint::black_box(h.recent_cpu() != before);
        }
    }
    let per_second = began.elapsed().as_secs_f64() / seconds as f64;
    let reads = 20;
    let began = Instant::now();
    for _ in 0..reads {
        std::hint::black_box(bioxen::vm::proc_stats::Groups::read());
    }
    let proc_read = began.elapsed().as_secs_f64() / reads as f64;
    rows.push(row(
        "history: CPU to record one second of 100 VMs",
        per_second * 1e3,
        proc_read * 1e3,
        "ms",
        "peer: the sampler's one read of /proc for that second; both once a second at most",
    ));
    rows.push(row(
        "history: memory of 100 VMs' full rings (a day)",
        bytes as f64 / (1 << 20) as f64,
        (HISTORY_VMS * 100 * 1024) as f64 / (1 << 20) as f64,
        "MiB",
        "peer: the bound, 100 KiB a VM",
    ));
}

fn search(rows: &mut Vec<Row>) {
    const VMS: usize = 10;
    const LINES: usize = 10_000;
    let rt = runtime();
    let (ours, found, texts) = rt.block_on(async {
        let m = Manager::new(manager_config());
        let long = Duration::from_secs(120);
        let mut ids = Vec::new();
        for i in 0..VMS {
            let id = m
                .create_interactive_vm(Some(&format!("s{i}")), VmKind::Local, VmOptions::default())
                .await
                .unwrap();
            m.wait_ready(id, long).await.unwrap();
            let flood = format!(
                "for j = 1, {LINES} do print(string.format('vm {i} step %d loss %.6f', j, 1 / j)) end"
            );
            m.execute_string(id, &flood, long).await.unwrap();
            ids.push(id);
        }
        // Split in the code, so only the output holds the needle whole.
        m.execute_string(ids[7], "print('NaN' .. ' at step 4242')", long)
            .await
            .unwrap();
        let query = bioxen::protocol::SearchQuery {
            text: "nan at".into(),
            regex: false,
            limit: 2000,
        };
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..17 {
            let start = Instant::now();
            found = m.search(&query).unwrap().len();
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        let texts: Vec<String> = ids
            .iter()
            .map(|id| {
                m.with_screen(*id, |s| {
                    let lines: Vec<String> = s.logical_lines().into_iter().map(|(_, l)| l).collect();
                    lines.join("\n")
                })
                .unwrap()
            })
            .collect();
        m.shutdown().await;
        (median(times[2..].to_vec()), found, texts)
    });
    assert_eq!(found, 1, "one line matches");
    let dir = std::env::temp_dir().join(format!("bioxen-bench-search-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<PathBuf> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let f = dir.join(format!("s{i}.txt"));
            std::fs::write(&f, t).unwrap();
            f
        })
        .collect();
    let mut peer = Vec::new();
    for _ in 0..17 {
        let start = Instant::now();
        let out = Command::new("grep")
            .args(["-i", "-n", "nan at"])
            .args(&files)
            .output()
            .unwrap();
        peer.push(start.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let lines: usize = texts.iter().map(|t| t.lines().count()).sum();
    rows.push(row(
        "search: every VM, 10 VMs x 10,000 lines (peer: grep -in over the same text in 10 files)",
        ours,
        median(peer[2..].to_vec()),
        "ms",
        &format!("median of 15 after 2; {lines} lines searched; target < 50 ms"),
    ));
}

fn experiment_in_tmux(script: &Path, n: usize) -> f64 {
    let t = Tmux::start("exp50", 120, 40, "sleep 600", None);
    let command = format!("lua5.4 -i {} 1", script.display());
    let mut args: Vec<&str> = Vec::new();
    for _ in 0..n {
        args.extend(["new-window", "-d", &command, ";"]);
    }
    args.pop();
    let start = Instant::now();
    t.run(&args);
    let deadline = start + Duration::from_secs(120);
    let mut waiting: Vec<usize> = (1..=n).collect();
    while !waiting.is_empty() {
        waiting.retain(|w| {
            let s = t.run(&["capture-pane", "-p", "-t", &w.to_string()]);
            !s.lines().any(|l| l.trim_end() == ">")
        });
        assert!(Instant::now() < deadline, "tmux windows never all prompted");
        std::thread::sleep(Duration::from_millis(5));
    }
    start.elapsed().as_secs_f64()
}

/// The median milliseconds of a Down key and the frame it calls for, over the list.
fn key_and_frame_ms(vms: Vec<bioxen::VmInfo>) -> f64 {
    use bioxen::ui::app::{App, Msg};
    use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
    let area = ratatui::layout::Rect::new(0, 0, 120, 40);
    let mut app = App::new(bioxen::keymap::Keymap::default(), area);
    let n = vms.len();
    app.set_rows(vms);
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
    let screens = std::collections::HashMap::new();
    let mut times = Vec::new();
    for i in 0..200 {
        let code = if (i / n) % 2 == 0 {
            KeyCode::Down
        } else {
            KeyCode::Up
        };
        let start = Instant::now();
        app.update(Msg::Terminal(Event::Key(KeyEvent::new(
            code,
            KeyModifiers::NONE,
        ))));
        terminal
            .draw(|f| bioxen::ui::draw::draw(f, &app, &screens))
            .unwrap();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    median(times)
}

/// One part of the suite: adds its rows.
type Section = fn(&mut Vec<Row>);

fn require(program: &str, package: &str) {
    let ok = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        ok,
        "the benchmarks need {program}: apt-get install -y {package}"
    );
}

fn main() {
    if let Ok(n) = std::env::var("BIOXEN_BENCH_MEMORY") {
        return memory_child(n.parse().unwrap());
    }
    // `cargo bench` passes --bench; any other argument picks sections by name.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |s: &str| only.is_empty() || only.iter().any(|o| s.contains(o.as_str()));
    require("tmux", "tmux");
    require("lua5.4", "lua5.4");
    assert!(Path::new(BIOXEN).exists());
    let mut rows = Vec::new();
    let sections: [(&str, Section); 17] = [
        ("flood", floods),
        ("logs", flood_logs),
        ("luaflood", flood_vs_lua),
        ("parser", parser),
        ("idle", idle),
        ("memory", memory),
        ("latency", latency),
        ("xapi", xapi),
        ("scale", scale),
        ("reattach", reattach),
        ("grid", grid),
        ("experiment", experiment),
        ("search", search),
        ("history", history),
        ("startup", startup),
        ("fleet", fleet::fleet),
        ("pool", fleet::pool),
    ];
    for (name, f) in sections {
        if want(name) {
            eprintln!("bench: {name}...");
            let start = Instant::now();
            f(&mut rows);
            eprintln!("bench: {name} took {:.0} s", start.elapsed().as_secs_f64());
        }
    }
    println!("| measurement | bioxen | peer | ratio | notes |");
    println!("| --- | --- | --- | --- | --- |");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.what, r.bioxen, r.peer, r.ratio, r.note
        );
    }
}
