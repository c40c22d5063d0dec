//! The real `bioxen` binary in a real terminal (tmux), driven by keystrokes as a
//! researcher would drive it.

use crate::common;

use bioxen::ui::layout::Areas;
use common::bioxen_exe;
use common::tmux::Tmux;
use ratatui::layout::Rect;

fn start(name: &str, cols: u16, rows: u16) -> Tmux {
    let t = Tmux::start(name, cols, rows, &bioxen_exe().display().to_string());
    t.wait_text("No VMs yet");
    t
}

/// Lines of the terminal pane only (right of the list's border).
fn pane_text(screen: &str) -> String {
    screen
        .lines()
        .map(|l| match l.find("││") {
            Some(i) => {
                let inner = &l[i + "││".len()..];
                inner
                    .strip_suffix('│')
                    .unwrap_or(inner)
                    .trim_end()
                    .to_string()
            }
            None => String::new(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Creates a local VM from the list and waits for its Lua prompt in the pane.
fn create_local_vm(t: &Tmux) {
    // The new VM's prompt, not the last one's: the pane may show the VM before it
    // while the new one is being made.
    let listed = format!("VMs ({})", vms_listed(&t.screen()) + 1);
    t.keys(&["c"]);
    t.wait_text("Create a VM");
    t.keys(&["Enter"]);
    t.wait_for("a prompt", |s| {
        s.contains(" TERM ") && s.contains(&listed) && shows_last_tab(s) && has_prompt(s)
    });
}

/// Whether the terminal pane shows the VM of the last tab (the newest VM).
fn shows_last_tab(screen: &str) -> bool {
    let last_tab = screen
        .lines()
        .next()
        .and_then(|tabs| {
            tabs.split_whitespace()
                .filter_map(|tab| tab.split_once(':'))
                .rfind(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
        .map(|(_, name)| name.to_string());
    let pane_title = screen.lines().nth(1).and_then(|l| {
        let (_, title) = l.split_once("╭ ").and_then(|(_, r)| r.split_once("╭ "))?;
        title.split_whitespace().next().map(str::to_string)
    });
    last_tab.is_some() && last_tab == pane_title
}

/// How many VMs the list's title counts.
fn vms_listed(screen: &str) -> usize {
    screen
        .split_once("VMs (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0)
}

/// Detaches from the VM, quits choosing to end the running VMs, and waits for exit 0.
fn detach_and_quit(t: &Tmux) {
    t.keys(&["C-b", "d"]);
    quit_ending_vms(t, "");
}

/// Quits from the list, ending the VMs: the dialog first offers to leave them running.
/// `count` is what the dialog must say ("3 VMs are running"), if anything.
fn quit_ending_vms(t: &Tmux, count: &str) {
    t.wait_text(" LIST ");
    t.keys(&["q"]);
    let s = t.wait_text("can keep running in the bioxen server");
    assert!(s.contains(count), "{s}");
    t.keys(&["e"]);
    t.wait_text("EXITED-0");
}

/// Whether the pane shows an empty Lua prompt line.
fn has_prompt(screen: &str) -> bool {
    pane_text(screen).lines().any(|l| l == ">")
}

#[test]
fn create_type_detach_kill_quit() {
    let t = start("single", 120, 40);
    t.keys(&["c"]);
    t.wait_text("Create a VM");
    t.keys(&["Enter"]);
    t.wait_for("a prompt in the attached VM", |s| {
        s.contains(" TERM ") && has_prompt(s)
    });
    t.type_text("x = 42");
    t.keys(&["Enter"]);
    t.type_text("print('Value:', x)");
    t.keys(&["Enter"]);
    let s = t.wait_for("the printed value", |s| {
        pane_text(s)
            .lines()
            .any(|l| l.starts_with("Value:") && l.contains("42"))
    });
    assert!(s.contains("lua-1"), "{s}");

    t.keys(&["C-b", "d"]);
    let s = t.wait_for("the list with a running VM and its pid", |s| {
        s.contains(" LIST ")
            && s.lines().any(|l| {
                l.contains("lua-1")
                    && alive(l)
                    && l.split_whitespace()
                        .any(|w| w.parse::<u32>().is_ok_and(|n| n > 1))
            })
    });
    assert!(s.contains("PID"), "{s}");

    t.keys(&["x"]);
    t.wait_text("Kill VM lua-1");
    t.keys(&["y"]);
    t.wait_for("the VM to be killed", |s| {
        s.contains("killed(TERM)") || s.contains("exited(")
    });
    // Its last screen stays readable.
    let s = t.screen();
    assert!(pane_text(&s).contains("Value:"), "{s}");

    t.keys(&["q"]);
    let s = t.wait_text("EXITED-0");
    assert!(
        !s.contains("VMs ("),
        "the alternate screen must be gone:\n{s}"
    );
}

#[test]
fn three_vms_keep_their_own_history() {
    let t = start("three", 120, 40);
    let names = ["alpha", "beta", "gamma"];
    for (i, name) in names.iter().enumerate() {
        if i == 0 {
            t.keys(&["c"]);
        } else {
            t.keys(&["C-b", "c"]);
        }
        t.wait_text("Create a VM");
        t.keys(&["Enter"]);
        let tab = format!("{i}:lua-{}", i + 1);
        t.wait_for("the new VM's prompt", |s| {
            s.contains(&tab) && s.contains(" TERM ") && has_prompt(s)
        });
        // Printed text differs from the typed text, so only output matches.
        let half = name.len() / 2;
        t.type_text(&format!(
            "print('{}' .. '{}')",
            &name[..half],
            &name[half..]
        ));
        t.keys(&["Enter"]);
        t.wait_for("the VM's output", |s| {
            pane_text(s).lines().any(|l| l.trim_end() == *name)
        });
    }
    let shows_only = |s: &str, name: &str| {
        let pane = pane_text(s);
        names
            .iter()
            .all(|n| pane.lines().any(|l| l.trim_end() == *n) == (*n == name))
    };
    t.keys(&["C-b", "0"]);
    t.wait_for("tab 0", |s| shows_only(s, "alpha"));
    t.keys(&["C-b", "n"]);
    t.wait_for("tab 1 after next", |s| shows_only(s, "beta"));
    t.keys(&["C-b", "n"]);
    t.wait_for("tab 2 after next", |s| shows_only(s, "gamma"));
    t.keys(&["C-b", "n"]);
    t.wait_for("tab 0 after wrapping", |s| shows_only(s, "alpha"));
    t.keys(&["C-b", "p"]);
    t.wait_for("tab 2 after previous", |s| shows_only(s, "gamma"));
    t.keys(&["C-b", "1"]);
    t.wait_for("tab 1", |s| shows_only(s, "beta"));
    // Typing goes to the shown VM only.
    t.type_text("print('in' .. 'beta')");
    t.keys(&["Enter"]);
    t.wait_for("typed into beta", |s| {
        pane_text(s).lines().any(|l| l.trim_end() == "inbeta")
    });
    t.keys(&["C-b", "0"]);
    let s = t.wait_for("tab 0 again", |s| shows_only(s, "alpha"));
    assert!(!pane_text(&s).contains("inbeta"), "{s}");

    t.keys(&["C-b", "d"]);
    quit_ending_vms(&t, "3 VMs are running");
}

#[test]
fn resizing_the_terminal_resizes_the_vm() {
    let t = start("resize", 120, 40);
    create_local_vm(&t);
    t.resize(80, 24);
    let expected = Areas::new(Rect::new(0, 0, 80, 24), false).pane_size();
    t.wait_for("the smaller layout", |s| {
        s.lines().count() <= 24 && s.contains(" TERM ")
    });
    t.type_text("print('size=' .. io.popen('stty size'):read('l'))");
    t.keys(&["Enter"]);
    let want = format!("size={} {}", expected.rows, expected.cols);
    let s = t.wait_for(&want, |s| s.lines().any(|l| l.contains(&want)));
    assert!(s.contains(&want));
    // Zooming gives the VM the whole width.
    t.keys(&["C-b", "z"]);
    let zoomed = Areas::new(Rect::new(0, 0, 80, 24), true).pane_size();
    t.settle();
    t.type_text("print('size=' .. io.popen('stty size'):read('l'))");
    t.keys(&["Enter"]);
    let want = format!("size={} {}", zoomed.rows, zoomed.cols);
    t.wait_for(&want, |s| s.lines().any(|l| l.contains(&want)));
    t.keys(&["C-b", "d"]);
    quit_ending_vms(&t, "1 VM is running");
}

#[test]
fn help_and_prefix_indicator() {
    let t = start("help", 120, 40);
    t.keys(&["?"]);
    let s = t.wait_text("Terminal (after the prefix)");
    assert!(s.contains("C-b d") && s.contains("detach"), "{s}");
    t.keys(&["Escape"]);
    t.wait_for("help closed", |s| {
        !s.contains("Terminal (after the prefix)")
    });
    create_local_vm(&t);
    t.keys(&["C-b"]);
    t.wait_text(" PREFIX ");
    // An armed prefix gives up by itself after a second.
    t.wait_for("the prefix to expire", |s| {
        !s.contains(" PREFIX ") && s.contains(" TERM ")
    });
    // Ctrl-C reaches the VM: it interrupts a loop instead of doing anything to bioxen.
    t.type_text("while true do end");
    t.keys(&["Enter"]);
    t.settle();
    t.keys(&["C-c"]);
    t.wait_text("interrupted!");
    detach_and_quit(&t);
}

#[test]
fn scrollback_mode_shows_earlier_output() {
    let t = start("scroll", 120, 40);
    create_local_vm(&t);
    t.type_text("for i = 1, 300 do print('row ' .. i) end");
    t.keys(&["Enter"]);
    t.wait_for("the last row", |s| {
        pane_text(s).lines().any(|l| l == "row 300")
    });
    assert!(!pane_text(&t.screen()).lines().any(|l| l == "row 1"));
    t.keys(&["C-b", "["]);
    t.wait_text(" SCROLL ");
    t.keys(&["g"]);
    let s = t.wait_for("the first rows", |s| {
        pane_text(s).lines().any(|l| l == "row 1")
    });
    assert!(s.contains("/"), "a position indicator shows: {s}");
    t.keys(&["q"]);
    t.wait_for("the live view", |s| {
        !s.contains(" SCROLL ") && pane_text(s).lines().any(|l| l == "row 300")
    });
    // `bioxen ls` in another shell sees the dashboard's VM.
    let out = t.bioxen(&["ls", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["name"], "lua-1", "{rows}");
    assert_eq!(rows[0]["state"], "running", "{rows}");
    assert!(rows[0]["pid"].as_u64().unwrap() > 1, "{rows}");
    // Its figures are live, not those of the VM's last change of state: uptime grows,
    // memory is known, and a busy VM shows its CPU.
    let ls = || -> serde_json::Value {
        let out = t.bioxen(&["ls", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    t.type_text("while true do end");
    t.keys(&["Enter"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let rows = ls();
        let busy = rows[0]["cpu_percent"].as_f64().is_some_and(|c| c > 20.0);
        let up = rows[0]["uptime_secs"].as_u64().is_some_and(|u| u >= 2);
        let rss = rows[0]["rss_bytes"].as_u64().is_some_and(|r| r > 1 << 20);
        if busy && up && rss {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ls never showed live figures: {rows}"
        );
        // The server's sampler looks once a second.
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    t.keys(&["C-c"]);
    t.wait_text("interrupted!");
    detach_and_quit(&t);
    // A dashboard that has quit is no longer listed.
    let out = t.bioxen(&["ls", "--json"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

#[test]
fn pool_state_and_tls_warning_show_in_the_tab_bar() {
    // A pool that does not answer: the dashboard says so and keeps working.
    let free_port = common::free_port();
    let config = format!(
        "[xcpng]\nurl = \"https://127.0.0.1:{free_port}\"\npassword_env = \"BIOXEN_XAPI_PASSWORD\"\ntls_verify = false\n"
    );
    let t = Tmux::start_with_config(
        "pool",
        120,
        40,
        &format!("BIOXEN_XAPI_PASSWORD=not-shown {}", bioxen_exe().display()),
        Some(&config),
    );
    let s = t.wait_text("pool: unreachable");
    assert!(s.contains("TLS verification of the pool is OFF"), "{s}");
    assert!(!s.contains("not-shown"), "the password never shows: {s}");
    // The server talks to the pool, and logs what went wrong.
    let log = std::fs::read_to_string(t.path().join("state/bioxen/server.log")).unwrap();
    assert!(log.contains("pool events"), "the failure is logged: {log}");
    assert!(
        !log.contains("not-shown"),
        "the password is never logged: {log}"
    );
    // Still usable.
    t.keys(&["c"]);
    t.wait_text("Create a VM");
    t.keys(&["Escape"]);
    t.wait_for("the dialog to close", |s| !s.contains("Create a VM"));
    t.keys(&["q"]);
    t.wait_text("EXITED-0");
}

#[test]
fn install_a_package_from_the_dashboard() {
    let repo = common::rocks::build("dash");
    let tree = std::env::temp_dir().join(format!("bioxen-dash-tree-{}", std::process::id()));
    let config = format!(
        "rocks_servers = [\"{}\"]\n[local]\nrocks_tree = \"{}\"\n",
        repo.dir.display(),
        tree.display()
    );
    let t = Tmux::start_with_config(
        "install",
        120,
        40,
        &bioxen_exe().display().to_string(),
        Some(&config),
    );
    t.wait_text("No VMs yet");
    create_local_vm(&t);
    t.type_text("x = 42");
    t.keys(&["Enter"]);
    t.keys(&["C-b", "i"]);
    t.wait_text("Install a package");
    // A name luarocks would not accept is refused before anything runs.
    t.type_text("foo; rm -rf ~");
    t.keys(&["Enter"]);
    t.wait_text("invalid package name");
    for _ in 0.."foo; rm -rf ~".len() {
        t.keys(&["BSpace"]);
    }
    t.type_text(&repo.package);
    t.keys(&["Enter"]);
    let s = t.wait_text("any key closes");
    assert!(
        s.contains("is now installed"),
        "luarocks' output streamed into the view: {s}"
    );
    assert!(s.contains("✓ installed"), "{s}");
    t.keys(&["q"]);
    t.wait_for("the progress view to close", |s| {
        !s.contains("any key closes")
    });
    t.type_text(&format!(
        "print(require('{}').hello('dashboard'), x)",
        repo.module
    ));
    t.keys(&["Enter"]);
    t.wait_for("the module's answer", |s| {
        pane_text(s)
            .lines()
            .any(|l| l.starts_with("hello, dashboard") && l.ends_with("42"))
    });
    detach_and_quit(&t);
    let _ = std::fs::remove_dir_all(&tree);
}

/// Whether a list line shows a running VM: `running`, or `busy`/`idle` when its
/// interpreter marks its prompts.
fn alive(line: &str) -> bool {
    [" running ", " busy ", " idle "]
        .iter()
        .any(|state| line.contains(state))
}

/// How many running VMs the list shows.
fn live_in_list(s: &str) -> usize {
    s.lines().filter(|l| alive(l)).count()
}

/// The pids of the running VMs, as `bioxen ls --json` reports them: the list gives
/// its PID column up to the CPU sparkline when it is narrow.
fn vm_pids(t: &Tmux) -> Vec<u32> {
    let out = t.bioxen(&["ls", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "running")
        .filter_map(|r| r["pid"].as_u64().map(|p| p as u32))
        .collect()
}

/// SIGTERM and SIGHUP (the terminal closing) end the dashboard, never the VMs: they
/// keep running in the server, and the terminal is restored.
#[test]
fn sigterm_and_sighup_leave_vms_running_and_restore_the_terminal() {
    for signal in [libc::SIGTERM, libc::SIGHUP] {
        let t = start(&format!("sig{signal}"), 120, 40);
        for _ in 0..2 {
            create_local_vm(&t);
            t.keys(&["C-b", "d"]);
            t.wait_text(" LIST ");
        }
        t.wait_for("two running VMs", |s| live_in_list(s) == 2);
        let pids = vm_pids(&t);
        assert_eq!(pids.len(), 2, "{pids:?}");
        let pid = t.program_pid("bioxen");
        // SAFETY: kill(2) of the dashboard this test started.
        unsafe { libc::kill(pid as i32, signal) };
        let s = t.wait_text("EXITED-0");
        assert!(
            !s.contains("VMs ("),
            "the terminal is back on its normal screen:\n{s}"
        );
        for p in &pids {
            assert!(
                std::path::Path::new(&format!("/proc/{p}")).exists(),
                "VM process {p} outlives the dashboard (signal {signal})"
            );
        }
        let ls = String::from_utf8(t.bioxen(&["ls"]).stdout).unwrap();
        assert_eq!(live_rows(&ls), 2, "{ls}");
        // `bioxen kill-server` ends them.
        let out = t.bioxen(&["kill-server"]);
        assert!(out.status.success(), "{out:?}");
        for p in pids {
            let gone = (0..250).any(|_| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                !std::path::Path::new(&format!("/proc/{p}")).exists()
            });
            assert!(gone, "VM process {p} ended with the server");
        }
    }
}

#[test]
fn a_panic_restores_the_terminal_and_is_logged() {
    let t = Tmux::start(
        "panic",
        120,
        40,
        &format!(
            "RUST_BACKTRACE=0 BIOXEN_TEST_PANIC=1 {}",
            bioxen_exe().display()
        ),
    );
    let s = t.wait_text("EXITED-101");
    assert!(!s.contains("VMs ("), "the dashboard's screen is gone:\n{s}");
    assert!(
        s.contains("deliberate panic"),
        "the panic message is readable:\n{s}"
    );
    let log = std::fs::read_to_string(t.path().join("state/bioxen/bioxen.log")).unwrap();
    assert!(
        log.contains("panic") && log.contains("deliberate panic"),
        "{log}"
    );
}

#[test]
fn rapid_resizes_and_a_one_cell_terminal() {
    let t = start("resizes", 120, 40);
    create_local_vm(&t);
    for (i, (w, h)) in [
        (80, 24),
        (1, 1),
        (200, 60),
        (2, 2),
        (40, 10),
        (1, 50),
        (300, 1),
        (120, 40),
    ]
    .iter()
    .cycle()
    .take(40)
    .enumerate()
    {
        t.resize(*w, *h);
        if i % 8 == 1 {
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
    }
    // Typed while the window is two cells wide: the VM's terminal keeps a usable size,
    // so the answer is still on its screen when the window grows back.
    t.resize(2, 2);
    t.wait_for("the 2x2 frame", |s| {
        s.lines().collect::<Vec<_>>() == [" b", " T"]
    });
    t.type_text("print('still' .. 'here') io.open('answered', 'w'):close()");
    t.keys(&["Enter"]);
    let marker = t.path().join("answered");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the VM never answered"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    t.resize(120, 40);
    t.wait_for("the VM's answer", |s| {
        pane_text(s).lines().any(|l| l == "stillhere")
    });
    t.keys(&["C-b", "?"]);
    t.wait_text("Terminal (after the prefix)");
    t.keys(&["Escape"]);
    // An Escape read together with the prefix's byte is Alt+C-b, as in any terminal
    // program: the help must be gone before the prefix is typed.
    t.wait_for("the help closed", |s| {
        !s.contains("Terminal (after the prefix)")
    });
    detach_and_quit(&t);
}

/// A background task that panics is reported, and when it is the quit itself bioxen
/// still quits instead of hanging.
#[test]
fn a_panicking_quit_task_still_quits() {
    let t = Tmux::start(
        "quitpanic",
        120,
        40,
        &format!(
            "RUST_BACKTRACE=0 BIOXEN_TEST_PANIC=quit {}",
            bioxen_exe().display()
        ),
    );
    t.wait_text("No VMs yet");
    create_local_vm(&t);
    t.keys(&["C-b", "d"]);
    t.wait_text(" LIST ");
    t.keys(&["q"]);
    t.wait_text("can keep running");
    t.keys(&["e"]);
    t.wait_text("EXITED-");
    let log = std::fs::read_to_string(t.path().join("state/bioxen/bioxen.log")).unwrap();
    assert!(
        log.contains("background task panicked") && log.contains("deliberate panic while quitting"),
        "{log}"
    );
}

/// While a slow password_command runs, the dashboard draws, answers keys and quits.
#[test]
fn a_slow_password_command_leaves_the_dashboard_usable() {
    // A sleep of its own: tests run in parallel, and this one looks for its process.
    let sleep = format!("sleep 1000.{}2", std::process::id());
    let t = Tmux::start_with_config(
        "slowpw",
        120,
        40,
        &bioxen_exe().display().to_string(),
        Some(&format!(
            "[xcpng]\nurl = \"http://127.0.0.1:9\"\npassword_command = \"{sleep}\"\n"
        )),
    );
    t.wait_text("pool: connecting");
    t.keys(&["?"]);
    t.wait_text("VM list");
    t.keys(&["Escape"]);
    // An Escape read in one go with the q would be Alt+q: the help closes first.
    t.wait_for("help closed", |s| !s.contains("VM list"));
    t.keys(&["q"]);
    t.wait_text("EXITED-0");
    let gone = || {
        std::process::Command::new("pgrep")
            .args(["-f", &format!("^{sleep}$")])
            .output()
            .unwrap()
            .stdout
            .is_empty()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !gone() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(gone(), "the password command outlived the dashboard");
}

/// The dashboard's own log is private; a log_dir that cannot be used is said on screen;
/// a VM in a PTY does not see the pool's password variable.
#[test]
fn logs_are_private_and_a_broken_log_dir_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let t = Tmux::start_with_config(
        "privlog",
        120,
        40,
        &format!("BIOXEN_T_SECRET=hunter2 {}", bioxen_exe().display()),
        Some("[xcpng]\nurl = \"http://127.0.0.1:9\"\npassword_env = \"BIOXEN_T_SECRET\"\n"),
    );
    t.wait_text("No VMs yet");
    create_local_vm(&t);
    t.type_text("print('secret=' .. tostring(os.getenv('BIOXEN_T_SECRET')))");
    t.keys(&["Enter"]);
    t.wait_for("the answer", |s| {
        pane_text(s).lines().any(|l| l == "secret=nil")
    });
    let mode = |p: std::path::PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(t.path().join("state/bioxen/bioxen.log")), 0o600);
    assert_eq!(mode(t.path().join("state/bioxen")), 0o700);
    detach_and_quit(&t);
    drop(t);

    let t = Tmux::start_with_config(
        "badlogdir",
        120,
        40,
        &bioxen_exe().display().to_string(),
        Some("[ui]\nlog_dir = \"bioxen.toml\"\n"),
    );
    t.wait_text("no log file, and no output logs");
    t.keys(&["q"]);
    t.wait_text("EXITED-0");
}

/// A tmpfs of 1 MiB, filled to the last byte, that is unmounted when dropped.
struct FullDisk(std::path::PathBuf);

impl FullDisk {
    fn mount(at: std::path::PathBuf) -> FullDisk {
        use std::io::Write;
        std::fs::create_dir_all(&at).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
            .arg(&at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root (scripts/test runs the suite as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let disk = FullDisk(at);
        let mut filler = std::fs::File::create(disk.0.join("filler")).unwrap();
        let block = [b'x'; 4096];
        let full = loop {
            if let Err(e) = filler.write_all(&block).and_then(|()| filler.sync_all()) {
                break e;
            }
        };
        assert_eq!(full.raw_os_error(), Some(libc::ENOSPC), "{full}");
        disk
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        // Lazy: a server of this test may still hold its log open here.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// With its logs on a full disk, the dashboard says once that its log stopped, and the
/// server it starts still serves. Closing the terminal then ends the dashboard: it
/// neither blocks on the log nor spins on the hung-up terminal.
#[test]
fn a_full_log_disk_is_said_once_and_a_closed_terminal_still_ends_the_dashboard() {
    // The dashboard waits for its full disk and its configuration to be in place.
    let t = Tmux::start(
        "fulllog",
        200,
        40,
        &format!(
            "sh -c 'until [ -e ready ]; do sleep 0.05; done; exec {}'",
            bioxen_exe().display()
        ),
    );
    let logs = t.path().join("logs");
    let disk = FullDisk::mount(logs.clone());
    std::fs::write(
        t.path().join("bioxen.toml"),
        format!("[ui]\nlog_dir = \"{}\"\n", logs.display()),
    )
    .unwrap();
    std::fs::write(t.path().join("ready"), "").unwrap();
    let s = t.wait_text("cannot be written");
    assert!(
        s.contains("bioxen.log") && s.contains("logging stopped"),
        "{s}"
    );
    create_local_vm(&t);
    t.type_text("print(6 * 7)");
    t.keys(&["Enter"]);
    t.wait_for("the answer", |s| pane_text(s).lines().any(|l| l == "42"));

    let pid = t.program_pid("bioxen");
    t.kill_terminal();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let alive = || std::path::Path::new(&format!("/proc/{pid}")).exists();
    while alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        !alive(),
        "the dashboard (pid {pid}) outlived its closed terminal"
    );

    // The server, whose log is on the same full disk, still answers, with the VM.
    let ls = String::from_utf8(t.bioxen(&["ls"]).stdout).unwrap();
    assert_eq!(live_rows(&ls), 1, "{ls}");
    let out = t.bioxen(&["kill-server"]);
    assert!(out.status.success(), "{out:?}");
    drop(disk);
}

/// Closing the terminal window under a flooding VM ends the dashboard, not the VMs:
/// three VMs keep running, a new dashboard shows them with their scrollback and Lua
/// state, and `bioxen kill-server` later ends every process of theirs, a child that
/// ignores SIGHUP included.
#[test]
fn vms_outlive_a_closed_terminal_and_come_back_intact() {
    let t = start("closed", 120, 40);
    for _ in 0..3 {
        create_local_vm(&t);
        t.keys(&["C-b", "d"]);
        t.wait_text(" LIST ");
    }
    t.keys(&["Enter"]);
    t.keys(&["C-b", "0"]);
    t.wait_for("the first VM", |s| s.contains("╭ lua-1 "));
    t.type_text("x = 42");
    t.keys(&["Enter"]);
    t.type_text("for i = 1, 200 do print('history ' .. i) end");
    t.keys(&["Enter"]);
    t.wait_for("the loop's end", |s| {
        pane_text(s).lines().any(|l| l == "history 200")
    });
    t.type_text("os.execute(\"sh -c 'trap \\\"\\\" HUP; exec sleep 300' &\")");
    t.keys(&["Enter"]);
    t.wait_for("a prompt again", |s| {
        pane_text(s).lines().filter(|l| *l == ">").count() >= 1
    });
    let dashboard = t.program_pid("bioxen");
    // A second VM floods while the window closes.
    t.keys(&["C-b", "1"]);
    t.wait_for("the second VM", |s| s.contains("╭ lua-2 "));
    t.type_text("for i = 1, 1e9 do print(i) end");
    t.keys(&["Enter"]);
    t.wait_for("three running VMs", |s| live_in_list(s) == 3);
    let pids = vm_pids(&t);
    assert_eq!(pids.len(), 3, "{pids:?}");
    let vm = pids[0];

    // The window closes: its tmux goes away with the terminal.
    t.kill_terminal();
    let gone = |pid: u32| !std::path::Path::new(&format!("/proc/{pid}")).exists();
    assert!(
        (0..1500).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            gone(dashboard)
        }),
        "the dashboard did not exit"
    );
    let ls = String::from_utf8(t.bioxen(&["ls"]).stdout).unwrap();
    assert_eq!(live_rows(&ls), 3, "{ls}");
    for p in &pids {
        assert!(!gone(*p), "VM {p} outlived the closed terminal");
    }

    // A new dashboard shows them as they were.
    t.restart(&bioxen_exe().display().to_string());
    let s = t.wait_for("three running VMs", |s| live_in_list(s) == 3);
    assert_eq!(vm_pids(&t), pids, "the same VMs: {s}");
    t.keys(&["Enter"]);
    t.type_text("print(x)");
    t.keys(&["Enter"]);
    t.wait_for("x is still 42", |s| pane_text(s).lines().any(|l| l == "42"));
    t.keys(&["C-b", "["]);
    t.keys(&["g"]);
    t.wait_for("the scrollback from before", |s| {
        pane_text(s).lines().any(|l| l == "history 1")
    });
    t.keys(&["q"]);

    let log = std::fs::read_to_string(t.path().join("state/bioxen/bioxen.log")).unwrap_or_default();
    assert!(!log.contains("panic"), "{log}");
    let out = t.bioxen(&["kill-server"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        (0..500).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            common::group_members(vm) == 0
        }),
        "processes of the VM survived kill-server"
    );
}

/// A second terminal whose dashboard uses the server of `first`.
fn start_beside(first: &Tmux, name: &str, cols: u16, rows: u16) -> Tmux {
    let command = format!(
        "XDG_RUNTIME_DIR={dir}/run XDG_STATE_HOME={dir}/state {exe}",
        dir = first.path().display(),
        exe = bioxen_exe().display()
    );
    Tmux::start(name, cols, rows, &command)
}

fn server_pid(t: &Tmux) -> i32 {
    let out = std::process::Command::new("pgrep")
        .args([
            "-f",
            &format!("{} server --foreground", t.server_socket().display()),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no server for {}", t.server_socket().display()))
}

/// Two dashboards on one server: both see the VM, typing in one shows in the other; a
/// suspended dashboard stalls neither the other nor the VM, and catches up when it
/// resumes; a dashboard killed with SIGKILL leaves the VM and the other dashboard be.
#[test]
fn two_dashboards_mirror_each_other_and_a_stopped_one_stalls_nothing() {
    let one = start("mirror1", 120, 40);
    create_local_vm(&one);
    one.type_text("print('from' .. 'one')");
    one.keys(&["Enter"]);
    one.wait_for("the first answer", |s| {
        pane_text(s).lines().any(|l| l == "fromone")
    });
    let two = start_beside(&one, "mirror2", 120, 40);
    two.wait_text("VMs (1)");
    two.keys(&["Enter"]);
    two.wait_for("the screen typed in the other dashboard", |s| {
        pane_text(s).lines().any(|l| l == "fromone")
    });
    two.type_text("print('from' .. 'two')");
    two.keys(&["Enter"]);
    for t in [&one, &two] {
        t.wait_for("the second answer in both", |s| {
            pane_text(s).lines().any(|l| l == "fromtwo")
        });
    }

    // Suspended (as C-z does), the second dashboard reads nothing.
    let stopped = two.program_pid("bioxen") as i32;
    // SAFETY: signals to the dashboard this test started.
    unsafe { libc::kill(stopped, libc::SIGSTOP) };
    one.type_text("for i = 1, 1000000 do print('flood ' .. i) end print('flood' .. 'done')");
    one.keys(&["Enter"]);
    one.wait_for("the flood's end in the running dashboard", |s| {
        pane_text(s).lines().any(|l| l == "flooddone")
    });
    // SAFETY: as above.
    unsafe { libc::kill(stopped, libc::SIGCONT) };
    two.wait_for("the resumed dashboard caught up", |s| {
        pane_text(s).lines().any(|l| l == "flooddone")
    });

    // Killed outright, the second dashboard takes nothing with it.
    // SAFETY: as above.
    unsafe { libc::kill(stopped, libc::SIGKILL) };
    two.wait_text("EXITED-");
    one.type_text("print('still' .. 'here')");
    one.keys(&["Enter"]);
    one.wait_for("the VM answers", |s| {
        pane_text(s).lines().any(|l| l == "stillhere")
    });
    detach_and_quit(&one);
}

/// `bioxen attach NAME` of a VM the server does not have says which VMs it has and
/// exits with an error, the terminal as it was (no dashboard drawn first).
#[test]
fn attaching_to_a_vm_that_is_not_there_names_those_that_are() {
    let one = start("attach-missing", 100, 30);
    create_local_vm(&one);
    let command = format!(
        "XDG_RUNTIME_DIR={dir}/run XDG_STATE_HOME={dir}/state {exe} attach nosuch",
        dir = one.path().display(),
        exe = bioxen_exe().display()
    );
    let two = Tmux::start("attach-missing2", 100, 30, &command);
    let screen = two.wait_text("EXITED-");
    assert!(screen.contains("EXITED-1"), "{screen}");
    assert!(
        screen.contains("bioxen: no VM named 'nosuch'; there are: lua-1"),
        "{screen}"
    );
    assert!(
        !screen.contains("VMs ("),
        "no dashboard was drawn: {screen}"
    );
    detach_and_quit(&one);
}

/// The server killed with SIGKILL: every dashboard says so, restores the terminal and
/// exits with an error.
#[test]
fn a_killed_server_ends_every_dashboard_cleanly() {
    let one = start("srvkill1", 100, 30);
    create_local_vm(&one);
    let two = start_beside(&one, "srvkill2", 100, 30);
    two.wait_text("VMs (1)");
    // SAFETY: kill(2) of the server this test's dashboards started.
    unsafe { libc::kill(server_pid(&one), libc::SIGKILL) };
    for t in [&one, &two] {
        let s = t.wait_text("EXITED-1");
        assert!(!s.contains("VMs ("), "the terminal is restored:\n{s}");
        assert!(s.contains("bioxen server"), "it says what happened:\n{s}");
    }
}

/// Lines of the screen that are exactly `text` in one of the grid's tiles, counted
/// across the whole capture (tiles are separated by `│`).
fn tile_lines(screen: &str, text: &str) -> usize {
    screen
        .lines()
        .flat_map(|l| l.split('│'))
        .filter(|cell| cell.trim_end() == text)
        .count()
}

/// The tiles of a 2x2 grid that show `text` as a whole line: 0 1 / 2 3.
fn tiles_showing(screen: &str, text: &str) -> Vec<usize> {
    let lines: Vec<&str> = screen.lines().collect();
    // The second row of tiles starts at the last line of tile headers.
    let bottom = lines
        .iter()
        .rposition(|l| l.starts_with(" lua-"))
        .unwrap_or(0);
    let mut tiles = Vec::new();
    for (row, line) in lines.iter().enumerate() {
        for (column, cell) in line.split('│').enumerate() {
            if cell.trim_end() == text {
                tiles.push(usize::from(row >= bottom) * 2 + column);
            }
        }
    }
    tiles
}

#[test]
fn a_grid_shows_four_vms_at_once_and_broadcast_types_into_them() {
    let t = start("grid", 160, 48);
    create_local_vm(&t);
    for i in 1..4 {
        t.keys(&["C-b", "c"]);
        t.wait_text("Create a VM");
        t.keys(&["Enter"]);
        let tab = format!("{i}:lua-{}", i + 1);
        t.wait_for("the new VM's prompt", |s| s.contains(&tab) && has_prompt(s));
    }
    t.keys(&["C-b", "d"]);
    t.wait_text(" LIST ");
    t.keys(&["*", "g"]);
    t.wait_for("a grid of 4 tiles", |s| {
        s.contains("4:grid(4)") && (1..=4).all(|i| s.contains(&format!(" lua-{i}  idle")))
    });
    // The grid opens on the VM the list was on (the last made, tile 3). Into each
    // tile in turn from tile 0: 0 1 / 2 3, moved between with the prefix and arrows.
    t.keys(&["C-b", "Up", "C-b", "Left"]);
    for (i, arrow) in [
        (0, None),
        (1, Some("Right")),
        (3, Some("Down")),
        (2, Some("Left")),
    ] {
        if let Some(arrow) = arrow {
            t.keys(&["C-b", arrow]);
        }
        t.type_text(&format!("print('mark' .. {i})"));
        t.keys(&["Enter"]);
        t.wait_for("the tile's output", |s| {
            tiles_showing(s, &format!("mark{i}")) == vec![i]
        });
    }
    let s = t.screen();
    for i in 0..4 {
        assert_eq!(tile_lines(&s, &format!("mark{i}")), 1, "mark{i} once:\n{s}");
    }

    // Progress shows in the tile's header. The CPU sparkline goes between the figure
    // and the status once the VM has a few seconds of history, as on a slow machine.
    t.type_text("bioxen.progress(42, 'epoch ' .. 3)");
    t.keys(&["Enter"]);
    t.wait_for("42 % in tile 2's header", |s| {
        s.lines().any(|l| {
            let header = l.split('│').next().unwrap_or(l);
            header.contains(" lua-3  idle") && header.contains("42%") && header.contains("epoch 3")
        })
    });

    t.keys(&["C-b", "b"]);
    t.wait_text("BROADCAST  typing goes to 4 VMs");
    t.type_text("x = 7 print('x=' .. x)");
    t.keys(&["Enter"]);
    t.wait_for("x = 7 in every tile", |s| tile_lines(s, "x=7") == 4);

    // The focused tile (2) leaves the broadcast; typing from tile 0 reaches 3 VMs.
    t.keys(&["C-b", "e"]);
    t.keys(&["C-b", "Up"]);
    t.wait_text("typing goes to 3 VMs");
    t.type_text("print('y' .. 'y')");
    t.keys(&["Enter"]);
    let s = t.wait_for("yy in three tiles", |s| tile_lines(s, "yy") == 3);
    assert!(s.contains("⊘ not broadcast"), "{s}");

    t.keys(&["C-b", "b"]);
    t.wait_for("the banner gone", |s| !s.contains("BROADCAST"));
    t.keys(&["C-b", "d"]);
    quit_ending_vms(&t, "4 VMs are running");
}

/// The list's line for a VM (left of the terminal pane).
fn list_line(screen: &str, vm: &str) -> String {
    // The name may carry marks: `lua-1+~`.
    let names = |l: &str| {
        l.split_whitespace().any(|w| {
            w.strip_prefix(vm)
                .is_some_and(|marks| marks.chars().all(|c| !c.is_alphanumeric() && c != '-'))
        })
    };
    screen
        .lines()
        .filter(|l| l.starts_with('│'))
        .map(|l| l.split("││").next().unwrap_or(l))
        .find(|l| names(l))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn progress_busy_idle_and_silence_show_in_the_list() {
    let t = Tmux::start_with_config(
        "alerts",
        160,
        40,
        &bioxen_exe().display().to_string(),
        Some("[ui]\nsilence = 2\n"),
    );
    t.wait_text("No VMs yet");
    create_local_vm(&t);
    t.keys(&["C-b", "c"]);
    t.wait_text("Create a VM");
    t.keys(&["Enter"]);
    t.wait_for("lua-2's prompt", |s| s.contains("1:lua-2") && has_prompt(s));

    // Progress with a label: a bar and 42 % in the list, the label as its status.
    t.type_text("bioxen.progress(42, 'epoch ' .. 3)");
    t.keys(&["Enter"]);
    let s = t.wait_for("42 % in lua-2's row", |s| {
        list_line(s, "lua-2").contains("42%")
    });
    assert!(s.contains("PROGRESS"), "{s}");
    t.wait_text("status epoch 3");

    // Busy while a chunk runs, idle once the prompt is back.
    t.type_text("local t0 = os.time() repeat until os.time() - t0 >= 2");
    t.keys(&["Enter"]);
    t.wait_for("lua-2 busy", |s| list_line(s, "lua-2").contains(" busy "));
    t.wait_for("lua-2 idle", |s| list_line(s, "lua-2").contains(" idle "));

    // Silence: lua-1 sleeps without output while another VM is shown; after 2 s it
    // is marked `~` and the status bar says so.
    t.keys(&["C-b", "0"]);
    t.wait_for("lua-1 shown", |s| s.contains("╭ lua-1"));
    t.type_text("os.execute('sleep 5')");
    t.keys(&["Enter"]);
    t.wait_for("lua-1 busy", |s| list_line(s, "lua-1").contains(" busy "));
    t.keys(&["C-b", "1"]);
    let s = t.wait_for("a silence alert for lua-1", |s| {
        list_line(s, "lua-1").contains('~')
    });
    assert!(
        s.contains("lua-1: no output for 2 s"),
        "{}",
        s.lines().last().unwrap_or("")
    );
    assert!(!list_line(&s, "lua-2").contains('~'), "{s}");
    // Back at its prompt after the sleep, unseen: marked done.
    t.wait_for("lua-1 done", |s| list_line(s, "lua-1").contains('✓'));
    t.keys(&["C-b", "0"]);
    t.wait_for("marks cleared once seen", |s| {
        let l = list_line(s, "lua-1");
        !l.contains('~') && !l.contains('✓')
    });
    // A chunk that ends in an error is marked apart from one that succeeded.
    t.type_text("os.execute('sleep 2') error('boom')");
    t.keys(&["Enter"]);
    t.wait_for("lua-1 busy", |s| list_line(s, "lua-1").contains(" busy "));
    t.keys(&["C-b", "1"]);
    let s = t.wait_for("lua-1 back after an error", |s| {
        list_line(s, "lua-1").contains('✖')
    });
    assert!(!list_line(&s, "lua-1").contains('✓'), "{s}");
    t.keys(&["C-b", "d"]);
    quit_ending_vms(&t, "2 VMs are running");
}

#[test]
fn lua5_4_vms_say_busy_and_idle_and_load_the_bioxen_module() {
    common::require_program("lua5.4", "lua5.4");
    let t = Tmux::start_with_config(
        "lua54",
        140,
        40,
        &bioxen_exe().display().to_string(),
        Some("[local]\ncommand = \"lua5.4\"\n"),
    );
    t.wait_text("No VMs yet");
    create_local_vm(&t);
    t.wait_for("lua5.4's banner", |s| {
        s.contains("Lua 5.4") && !s.contains("(bioxen)")
    });
    t.wait_for("idle at the prompt", |s| {
        list_line(s, "lua-1").contains(" idle ")
    });
    t.type_text("local t0 = os.time() repeat until os.time() - t0 >= 2");
    t.keys(&["Enter"]);
    t.wait_for("busy while it runs", |s| {
        list_line(s, "lua-1").contains(" busy ")
    });
    t.wait_for("idle again", |s| list_line(s, "lua-1").contains(" idle "));
    t.type_text("require('bioxen').progress(7)");
    t.keys(&["Enter"]);
    t.wait_for("7 % in the list", |s| {
        list_line(s, "lua-1").contains("  7%")
    });
    // The prompt mark takes no room on the line: typing lines up as without it.
    t.type_text("x = 1");
    let s = t.wait_text("> x = 1");
    assert!(pane_text(&s).lines().any(|l| l == "> x = 1"), "{s}");
    t.keys(&["Enter"]);
    detach_and_quit(&t);
}

#[test]
fn restarting_a_running_vm_asks_then_starts_a_fresh_interpreter() {
    let t = start("restart", 140, 40);
    create_local_vm(&t);
    t.type_text("x = 42");
    t.keys(&["Enter"]);
    t.keys(&["C-b", "d"]);
    t.wait_text(" LIST ");
    t.keys(&["r"]);
    t.wait_text("It is running: its interpreter state is lost");
    t.keys(&["y"]);
    t.wait_text("lua-1 restarted");
    t.keys(&["Enter"]);
    t.wait_for("the new prompt", |s| {
        pane_text(s).contains("-- restarted --") && s.contains(" TERM ") && has_prompt(s)
    });
    t.type_text("print('x is', x)");
    t.keys(&["Enter"]);
    t.wait_for("a fresh interpreter", |s| {
        pane_text(s)
            .lines()
            .any(|l| l.split_whitespace().eq(["x", "is", "nil"]))
    });
    detach_and_quit(&t);
}

#[test]
fn a_renamed_vm_keeps_its_tile_screen_and_typing() {
    let t = start("rename", 140, 40);
    create_local_vm(&t);
    t.type_text("x = 41 + 1");
    t.keys(&["Enter"]);
    t.keys(&["C-b", "g"]);
    t.wait_text("1:grid(1)");
    t.keys(&["C-b", ","]);
    t.wait_text("Rename lua-1");
    for _ in 0.."lua-1".len() {
        t.keys(&["BSpace"]);
    }
    t.type_text("train");
    t.keys(&["Enter"]);
    let s = t.wait_text("renamed lua-1 to train");
    assert!(s.contains("0:train") && s.contains(" train "), "{s}");
    assert!(s.contains("> x = 41 + 1"), "the screen stays: {s}");
    t.type_text("print(x)");
    t.keys(&["Enter"]);
    t.wait_for("typing reaches it under its new name", |s| {
        s.lines().any(|l| l.trim_end() == "42")
    });
    let ls = String::from_utf8_lossy(&t.bioxen(&["ls"]).stdout).to_string();
    assert!(ls.contains("train") && !ls.contains("lua-1"), "{ls}");
    let out = t.bioxen(&["rename", "train", "eval"]);
    assert!(out.status.success(), "{out:?}");
    t.wait_for(
        "the dashboard follows a rename from the command line",
        |s| s.contains("0:eval") && s.contains(" eval "),
    );
    t.keys(&["C-b", "d"]);
    quit_ending_vms(&t, "1 VM is running");
}

/// Rows of `bioxen ls` whose VM is alive: running, or at its prompt (idle) or busy, as
/// the dashboard says it.
fn live_rows(ls: &str) -> usize {
    ls.lines()
        .filter(|l| {
            [" running ", " idle ", " busy "]
                .iter()
                .any(|s| l.contains(s))
        })
        .count()
}

/// `u` in the list starts an experiment file, completed with Tab: its group shows both
/// VMs back at their prompts with their scripts run, and `x` on the header ends them.
#[test]
fn u_starts_an_experiment_and_x_on_its_header_ends_it() {
    let t = start("exp-u", 120, 30);
    std::fs::write(
        t.path().join("hello.lua"),
        "print('hello from ' .. arg[1])\n",
    )
    .unwrap();
    std::fs::write(
        t.path().join("pair.toml"),
        "[[vm]]\nname = \"cell\"\nscript = \"hello.lua\"\nargs = [\"{n}\"]\n\
         matrix = { n = [\"a\", \"b\"] }\n",
    )
    .unwrap();
    t.keys(&["u"]);
    t.wait_text("Start an experiment");
    t.type_text("pa");
    t.keys(&["Tab"]);
    t.wait_text("pair.toml▏");
    t.keys(&["Enter"]);
    t.wait_for("both VMs at their prompts, under the header", |s| {
        s.contains("▾ pair (2)") && s.contains("2◦")
    });
    // The header is selected: the pane lists what each VM runs.
    let s = t.wait_text("hello.lua b");
    assert!(s.contains("hello.lua a"), "{s}");
    t.keys(&["x"]);
    t.wait_text("End pair");
    t.keys(&["y"]);
    // The list empties (the status bar's "pair: ended 2 VMs" may already have been
    // replaced by the VMs' own ends on a busy machine).
    t.wait_text("VMs (0)");
    let ls = t.bioxen(&["ls"]);
    let listed = String::from_utf8_lossy(&ls.stdout);
    assert!(!listed.contains("cell-n"), "down left VMs behind: {listed}");
}

/// Selections by character, line and rectangle reach the outer terminal as OSC 52:
/// tmux, set to take them, keeps each as its paste buffer.
#[test]
fn selections_reach_the_outer_terminal_as_osc_52() {
    let t = start("osc52", 120, 40);
    t.accept_clipboard();
    create_local_vm(&t);
    t.type_text("for i = 1, 3 do print('row ' .. i .. ' alpha beta') end");
    t.keys(&["Enter"]);
    t.wait_for("the rows", |s| pane_text(s).contains("row 3 alpha beta"));
    let copy = |search: &str, keys: &[&str], expected: &str| {
        t.keys(&["C-b", "["]);
        t.wait_text(" SCROLL ");
        t.type_text(&format!("?{search}"));
        t.keys(&["Enter"]);
        t.keys(keys);
        t.keys(&["y"]);
        t.wait_text("copied");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while t.clipboard() != expected && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(t.clipboard(), expected, "after {keys:?}");
        t.keys(&["q"]);
        t.wait_text(" TERM ");
    };
    copy("alpha", &["v", "e"], "alpha");
    copy(
        "row 1 alpha",
        &["V", "j"],
        "row 1 alpha beta\nrow 2 alpha beta",
    );
    copy(
        "row 1 alpha",
        &["C-v", "j", "j", "l", "l", "l", "l"],
        "row 1\nrow 2\nrow 3",
    );
}

/// A search of every VM, started in the first, finds what the others printed: the
/// second's marker, then with n the third's, which a soft wrap split in two.
#[test]
fn a_search_of_every_vm_jumps_to_each_match_in_turn() {
    let t = start("searchall", 120, 40);
    for _ in 0..3 {
        create_local_vm(&t);
        t.keys(&["C-b", "d"]);
        t.wait_text(" LIST ");
    }
    let print = |tab: &str, lua: &str| {
        t.keys(&[tab]);
        t.keys(&["Enter"]);
        t.wait_text(" TERM ");
        t.type_text(lua);
        t.keys(&["Enter"]);
        t.keys(&["C-b", "d"]);
        t.wait_text(" LIST ");
    };
    // The code splits the marker, so only the output holds it whole.
    print("1", "print('NEEDLE' .. 'HAY in two')");
    print(
        "2",
        "local c = io.popen('stty size'):read('l'):match(' (%d+)') print(('x'):rep(c - 3) .. 'NEEDLE' .. 'HAY')",
    );
    // From the first VM's terminal: C-b / there, F in the list.
    t.keys(&["0"]);
    t.keys(&["Enter"]);
    t.wait_text(" TERM ");
    t.keys(&["C-b", "/"]);
    t.wait_text("Search every VM");
    t.type_text("needlehay");
    t.keys(&["Enter"]);
    let s = t.wait_text("2 matches");
    assert!(s.contains("lua-2") && s.contains("lua-3"), "{s}");
    t.keys(&["Enter"]);
    let s = t.wait_for("lua-2 at its match", |s| {
        s.contains(" SCROLL ") && s.contains("╭ lua-2 ")
    });
    assert!(pane_text(&s).contains("NEEDLEHAY in two"), "{s}");
    t.keys(&["n"]);
    let s = t.wait_for("lua-3 at its match", |s| {
        s.contains(" SCROLL ") && s.contains("╭ lua-3 ") && s.contains("match 2 of 2")
    });
    assert!(pane_text(&s).contains("xxxNEE"), "{s}");
}

/// A VM's name as the list shows it, without the alert marks after it (`lua-2+✓`).
fn bare(word: &str) -> &str {
    word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
}

/// The VM names in the list, top to bottom.
fn list_names(screen: &str) -> Vec<String> {
    screen
        .lines()
        .filter_map(|l| l.strip_prefix('│'))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(bare)
        .filter(|name| name.starts_with("lua-"))
        .map(str::to_string)
        .collect()
}

/// The memory the list shows for `name`, in MiB.
fn mem_mib(screen: &str, name: &str) -> f64 {
    screen
        .lines()
        .find(|l| l.split_whitespace().any(|w| bare(w) == name))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_suffix('M').and_then(|n| n.parse::<f64>().ok()))
        })
        .unwrap_or(0.0)
}

/// k9s's sort keys: M puts first the VM that allocated 200 MB, and the selection stays
/// on the VM it was on.
#[test]
fn sorting_by_memory_puts_first_the_vm_that_allocated_200_mb() {
    let t = start("sortmem", 120, 40);
    for _ in 0..3 {
        create_local_vm(&t);
        t.keys(&["C-b", "d"]);
        t.wait_text(" LIST ");
    }
    t.keys(&["1"]);
    t.keys(&["Enter"]);
    t.wait_text(" TERM ");
    t.type_text("big = ('x'):rep(200 * 1024 * 1024)");
    t.keys(&["Enter"]);
    t.keys(&["C-b", "d"]);
    t.wait_text(" LIST ");
    t.keys(&["0"]);
    t.wait_for("lua-2 at 200 MiB", |s| mem_mib(s, "lua-2") >= 200.0);
    assert_eq!(list_names(&t.screen()), ["lua-1", "lua-2", "lua-3"]);
    t.keys(&["M"]);
    let s = t.wait_for("the list by memory", |s| s.contains("MEM▼"));
    assert_eq!(list_names(&s)[0], "lua-2", "{s}");
    assert!(
        s.contains("╭ lua-1 "),
        "the selection stays on its VM:\n{s}"
    );
}
