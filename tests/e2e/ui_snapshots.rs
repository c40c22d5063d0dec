//! Frames of the dashboard, drawn into a test backend and compared with snapshots:
//! what a researcher sees in each situation.

use crate::common;

use std::collections::HashMap;

use bioxen::client::Update;
use bioxen::keymap::Keymap;
use bioxen::protocol::Event;
use bioxen::term::Screen;
use bioxen::ui::app::{App, Confirm, CreateForm, Field, Focus, KindChoice, Msg, Overlay, TabId};
use bioxen::ui::draw::draw;
use bioxen::ui::grid::Layout;
use bioxen::{Size, VmInfo, VmKind, VmState};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};

fn app() -> App {
    App::new(Keymap::default(), Rect::new(0, 0, 120, 40))
}

fn info(
    id: &str,
    state: VmState,
    pid: Option<u32>,
    cpu: Option<f32>,
    rss: Option<u64>,
    up: u64,
) -> VmInfo {
    VmInfo {
        cpu_percent: cpu,
        rss_bytes: rss,
        uptime_secs: up,
        ..common::vm_info(id, state, pid)
    }
}

fn every_state() -> Vec<VmInfo> {
    vec![
        info("starting", VmState::Starting, Some(4100), None, None, 0),
        info(
            "busy",
            VmState::Running,
            Some(4101),
            Some(99.7),
            Some(48 * 1024 * 1024),
            3725,
        ),
        info(
            "idle",
            VmState::Running,
            Some(4102),
            Some(0.0),
            Some(7_900_000),
            42,
        ),
        info("done", VmState::Exited(0), None, None, None, 0),
        info("crashed", VmState::Exited(3), None, None, None, 0),
        info("oom", VmState::Killed(9), None, None, None, 0),
        info(
            "broken",
            VmState::Failed("cannot start 'lua9'".into()),
            None,
            None,
            None,
            0,
        ),
    ]
}

fn render(app: &App, screens: &HashMap<bioxen::VmId, Screen>) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    terminal.draw(|f| draw(f, app, screens)).unwrap();
    terminal
}

fn no_screens() -> HashMap<bioxen::VmId, Screen> {
    HashMap::new()
}

/// The rows of text `app` draws in a `cols`x`rows` terminal, with no screens.
fn drawn(app: &App, cols: u16, rows: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(cols, rows)).unwrap();
    terminal.draw(|f| draw(f, app, &no_screens())).unwrap();
    let buf = terminal.backend().buffer();
    (0..rows)
        .map(|y| (0..cols).map(|x| buf[(x, y)].symbol()).collect())
        .collect()
}

/// `experiment-00` .. `experiment-13`, running: more tabs than a 120-column bar holds.
fn fourteen_experiments() -> Vec<VmInfo> {
    (0..14)
        .map(|i| {
            info(
                &format!("experiment-{i:02}"),
                VmState::Running,
                Some(5000 + i),
                None,
                None,
                1,
            )
        })
        .collect()
}

#[test]
fn empty_dashboard() {
    let t = render(&app(), &no_screens());
    insta::assert_snapshot!(t.backend());
}

#[test]
fn list_with_vms_in_every_state() {
    let mut app = app();
    app.rows = every_state();
    app.current = Some(common::row("crashed"));
    app.unseen.insert(common::vm_id("busy"));
    let mut screens = HashMap::new();
    let mut dead = Screen::new(app.areas().pane_size(), 100);
    dead.feed(b"Lua 5.4 (bioxen)\r\n> os.exit(3)\r\n");
    screens.insert(common::vm_id("crashed"), dead);
    let t = render(&app, &screens);
    insta::assert_snapshot!(t.backend());
    // States carry their colours.
    let buf = t.backend().buffer();
    let cell = |x, y| &buf[(x, y)];
    assert_eq!(cell(24, 4).fg, Color::Green, "running is green");
    assert_eq!(cell(24, 8).fg, Color::Red, "killed is red");
}

#[test]
fn help_overlay_is_generated_from_the_keymap() {
    let mut app = app();
    app.overlay = Some(Overlay::Help { scroll: 0 });
    let t = render(&app, &no_screens());
    insta::assert_snapshot!(t.backend());
}

#[test]
fn create_dialog() {
    let mut app = app();
    app.overlay = Some(Overlay::Create(CreateForm {
        kinds: vec![
            KindChoice::Local,
            KindChoice::Ssh("lab1".into()),
            KindChoice::Xcpng("pool".into()),
        ],
        kind: 2,
        name: String::new(),
        placeholder: "lua-4".into(),
        field: Field::Memory,
        template: "lua-bio-template".into(),
        memory: "1024".into(),
        vcpus: "2".into(),
    }));
    let t = render(&app, &no_screens());
    insta::assert_snapshot!(t.backend());
}

#[test]
fn kill_confirmation() {
    let mut app = app();
    app.rows = every_state();
    app.current = Some(common::row("busy"));
    app.overlay = Some(Overlay::Confirm(Confirm::Kill {
        target: common::target("busy"),
        pid: Some(4101),
    }));
    let t = render(&app, &no_screens());
    insta::assert_snapshot!(t.backend());
}

/// Output as a program would write it: colours (16, 256, truecolor), attributes,
/// wide characters, cursor movement, a title.
const RECORDED: &[u8] = b"\x1b]2;analysis.lua\x07\
\x1b[1mbold\x1b[0m \x1b[2mdim\x1b[0m \x1b[3mitalic\x1b[0m \x1b[4munder\x1b[0m \x1b[7minverse\x1b[0m\r\n\
\x1b[31mred\x1b[0m \x1b[38;5;208morange\x1b[0m \x1b[38;2;10;200;30mtruecolor\x1b[0m \x1b[44mblue-bg\x1b[0m\r\n\
wide: \xe6\xbc\xa2\xe5\xad\x97 | end\r\n\
\x1b[6;10Hpositioned\x1b[8;3H> ";

#[test]
fn terminal_pane_renders_recorded_output() {
    let mut app = app();
    app.rows = vec![info(
        "job",
        VmState::Running,
        Some(4200),
        Some(1.0),
        Some(9_000_000),
        5,
    )];
    app.current = Some(common::row("job"));
    app.focus = Focus::Terminal;
    let mut screen = Screen::new(app.areas().pane_size(), 100);
    screen.feed(RECORDED);
    let screens = HashMap::from([(common::vm_id("job"), screen)]);
    let mut t = render(&app, &screens);
    insta::assert_snapshot!(t.backend());

    let pane = app.areas().pane;
    let buf = t.backend().buffer().clone();
    let at = |col: u16, row: u16| buf[(pane.x + col, pane.y + row)].clone();
    assert!(at(0, 0).modifier.contains(Modifier::BOLD));
    assert!(at(5, 0).modifier.contains(Modifier::DIM));
    assert!(at(9, 0).modifier.contains(Modifier::ITALIC));
    assert!(at(16, 0).modifier.contains(Modifier::UNDERLINED));
    assert!(at(22, 0).modifier.contains(Modifier::REVERSED));
    assert_eq!(at(0, 1).fg, Color::Indexed(1));
    assert_eq!(at(4, 1).fg, Color::Indexed(208));
    assert_eq!(at(11, 1).fg, Color::Rgb(10, 200, 30));
    assert_eq!(at(21, 1).bg, Color::Indexed(4));
    assert_eq!(at(6, 2).symbol(), "漢");
    assert_eq!(at(8, 2).symbol(), "字");
    // The cursor sits after the prompt the program drew, and the title shows.
    t.backend_mut()
        .assert_cursor_position((pane.x + 4, pane.y + 7));
    let title_row: String = (0..120).map(|x| buf[(x, 1)].symbol().to_string()).collect();
    assert!(title_row.contains("job — analysis.lua"), "{title_row}");
}

#[test]
fn alternate_screen_replaces_and_restores() {
    let mut app = app();
    app.rows = vec![info("vim", VmState::Running, Some(4300), None, None, 1)];
    app.current = Some(common::row("vim"));
    app.focus = Focus::Terminal;
    let mut screen = Screen::new(app.areas().pane_size(), 100);
    screen.feed(b"shell line\r\n");
    screen.feed(b"\x1b[?1049h\x1b[H\x1b[2Jfull-screen program\x1b[?25l");
    let mut screens = HashMap::from([(common::vm_id("vim"), screen)]);
    let t = render(&app, &screens);
    let text = format!("{}", t.backend());
    assert!(
        text.contains("full-screen program") && !text.contains("shell line"),
        "{text}"
    );
    screens
        .get_mut(&common::vm_id("vim"))
        .unwrap()
        .feed(b"\x1b[?1049l\x1b[?25h");
    let t = render(&app, &screens);
    let text = format!("{}", t.backend());
    assert!(
        text.contains("shell line") && !text.contains("full-screen program"),
        "{text}"
    );
}

#[test]
fn tiny_terminals_do_not_panic() {
    let app = app();
    for (w, h) in [(1, 1), (2, 3), (10, 2), (80, 1), (1, 80)] {
        let mut a = app_with_size(w, h);
        a.rows = every_state();
        a.current = Some(common::row("busy"));
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|f| draw(f, &a, &no_screens())).unwrap();
    }
    drop(app);
}

fn app_with_size(w: u16, h: u16) -> App {
    let app = App::new(Keymap::default(), Rect::new(0, 0, w, h));
    assert!(app.pane_size.rows >= 1 && app.pane_size.cols >= 1);
    let _ = Size::new(0, 0);
    app
}

fn pool_vm(name: &str, tag: Option<&str>, power: &str, ip: Option<&str>) -> bioxen::xapi::PoolVm {
    bioxen::xapi::PoolVm {
        pool: "lab-pool".into(),
        reference: format!("OpaqueRef:{name}"),
        uuid: "0c7a0e66-8c2b-4b8f-9d0e-3f1e2a9b7c11".into(),
        name: name.into(),
        power_state: power.into(),
        ip: ip.map(String::from),
        host: Some("xcp-host-1".into()),
        memory_bytes: 1 << 30,
        vcpus: 2,
        bioxen_id: tag.map(String::from),
        cpu_percent: None,
        memory_used: None,
        recent_cpu: Vec::new(),
    }
}

#[test]
fn pool_vms_in_the_list_with_details() {
    let mut app = app();
    let mut remote = info("gene-fit", VmState::Running, None, None, None, 125);
    remote.kind = VmKind::Xcpng;
    remote.remote = Some("root@10.0.0.7:22".into());
    remote.pool_vm = Some("OpaqueRef:gene-fit".into());
    app.rows = vec![
        info(
            "local-1",
            VmState::Running,
            Some(4400),
            Some(0.3),
            Some(8_000_000),
            12,
        ),
        remote,
    ];
    app.pool_vms = vec![
        pool_vm("gene-fit", Some("gene-fit"), "Running", Some("10.0.0.7")),
        pool_vm("old-run", Some("old-run"), "Halted", None),
        pool_vm("not-ours", None, "Running", Some("10.0.0.9")),
    ];
    app.current = Some(common::row("gene-fit"));
    let t = render(&app, &no_screens());
    insta::assert_snapshot!(t.backend());
    let text = format!("{}", t.backend());
    assert!(
        text.contains("old-run") && text.contains("detached"),
        "tagged pool VMs without a session are listed"
    );
    assert!(
        !text.contains("not-ours"),
        "VMs bioxen did not create are not"
    );
    assert!(
        text.contains("10.0.0.7") && text.contains("xcp-host-1"),
        "details of the selected VM"
    );
}

#[test]
fn unknown_host_key_dialog_and_pool_kill_dialog() {
    let mut app = app();
    app.update(Msg::Server(Update::Event(Event::Question {
        id: 1,
        question: bioxen::vm::ssh::SshQuestion::UnknownHostKey {
            host: "10.0.0.7".into(),
            port: 22,
            algorithm: "ssh-ed25519".into(),
            fingerprint: "SHA256:Qm0IBylBbh8LAS/uTpV16TpTT42mfRCpWY/7RZwDoIU".into(),
            known_hosts: "/home/alice/.ssh/known_hosts".into(),
        },
    })));
    let t = render(&app, &no_screens());
    insta::assert_snapshot!("unknown_host_key_dialog", t.backend());
    app.prompts.clear();
    app.overlay = Some(Overlay::Confirm(Confirm::KillPool {
        target: common::target("gene-fit"),
        alive: true,
    }));
    let t = render(&app, &no_screens());
    insta::assert_snapshot!("pool_kill_dialog", t.backend());
}

/// With more tabs than fit, the bar scrolls so the focused tab is always drawn in full
/// and highlighted, with counts of the tabs hidden on each side, and never runs under
/// the pool's label.
#[test]
fn the_tab_bar_scrolls_to_keep_the_focused_tab_visible() {
    let mut app = app();
    app.rows = fourteen_experiments();
    app.pools.insert(
        "pool".into(),
        bioxen::ui::app::PoolView {
            status: bioxen::xapi::PoolStatus::Connected,
            vms: 3,
        },
    );
    for focused in [0usize, 7, 13] {
        let id = format!("experiment-{focused:02}");
        app.current = Some(common::row(&id));
        let t = render(&app, &no_screens());
        let buf = t.backend().buffer();
        let bar: String = (0..120).map(|x| buf[(x, 0)].symbol().to_string()).collect();
        let label = format!(" {focused}:{id} ");
        let at = bar
            .find(&label)
            .unwrap_or_else(|| panic!("tab {focused} is not in the bar: {bar:?}"));
        let x = bar[..at].chars().count() as u16 + 1;
        assert!(
            buf[(x, 0)].modifier.contains(Modifier::REVERSED),
            "tab {focused} is not highlighted: {bar:?}"
        );
        assert!(bar.trim_end().ends_with("pool: 3 VMs"), "{bar:?}");
        if focused > 0 {
            assert!(
                bar.contains('«'),
                "no marker for the tabs on the left: {bar:?}"
            );
        }
        if focused < 13 {
            assert!(
                bar.contains('»'),
                "no marker for the tabs on the right: {bar:?}"
            );
        }
        // A click on the drawn tab selects that tab.
        let click = x + 2;
        assert_eq!(
            bioxen::ui::draw::tab_at(&app, 120, click),
            Some(TabId::Vm(common::vm_id(&id))),
            "{bar:?}"
        );
    }
}

/// The dashboard wakes for uptimes only when a label on screen changes: every second
/// for a VM up less than a minute, at the next whole minute after that, never for
/// dead VMs or while the list is hidden.
#[test]
fn uptime_labels_wake_the_dashboard_only_when_they_change() {
    let mut a = app();
    a.set_rows(vec![info("new", VmState::Running, Some(1), None, None, 5)]);
    let wait = a
        .next_tick()
        .unwrap()
        .saturating_duration_since(std::time::Instant::now());
    assert!(wait <= std::time::Duration::from_secs(1), "{wait:?}");

    a.set_rows(vec![
        info("old", VmState::Running, Some(1), None, None, 125),
        info("gone", VmState::Exited(0), None, None, None, 3),
    ]);
    let wait = a
        .next_tick()
        .unwrap()
        .saturating_duration_since(std::time::Instant::now());
    assert!(
        wait > std::time::Duration::from_secs(50) && wait <= std::time::Duration::from_secs(55),
        "2m05s shows as 2m until 3m, 55 s on: {wait:?}"
    );

    a.zoom = true;
    assert_eq!(a.next_tick(), None, "the list is hidden");
    a.zoom = false;
    a.set_rows(vec![info("gone", VmState::Exited(0), None, None, None, 3)]);
    assert_eq!(a.next_tick(), None, "no running VM");
    // A remote VM has no local pid, and its uptime counts all the same.
    a.set_rows(vec![VmInfo {
        kind: VmKind::Xcpng,
        ..info("far", VmState::Running, None, None, None, 7)
    }]);
    let wait = a
        .next_tick()
        .expect("a remote VM's uptime counts")
        .saturating_duration_since(std::time::Instant::now());
    assert!(wait <= std::time::Duration::from_secs(1), "{wait:?}");
}

/// A dashboard of `w`x`h` showing a grid of `n` VMs in `layout`, each screen holding a
/// few lines of its own, the second VM ended and the third with unseen output.
fn grid_frame(w: u16, h: u16, n: usize, layout: Layout) -> Terminal<TestBackend> {
    let mut app = app_with_size(w, h);
    let rows: Vec<VmInfo> = (0..n)
        .map(|i| {
            let state = if i == 1 {
                VmState::Exited(3)
            } else {
                VmState::Running
            };
            info(
                &format!("vm{i:02}"),
                state,
                Some(4000 + i as u32),
                None,
                None,
                60,
            )
        })
        .collect();
    app.update(Msg::Server(Update::Event(Event::Vms(rows))));
    app.update(Msg::Terminal(crossterm::event::Event::Key(
        crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char('*'),
            crossterm::event::KeyModifiers::NONE,
        ),
    )));
    app.update(Msg::Terminal(crossterm::event::Event::Key(
        crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char('g'),
            crossterm::event::KeyModifiers::NONE,
        ),
    )));
    app.grids[0].layout = layout;
    app.unseen.insert(common::vm_id("vm02"));
    let mut screens = HashMap::new();
    for t in app.tiles() {
        let vm = app.grids[0].vms[t.index];
        let id = app.name_of(vm);
        let size = t.size();
        let mut s = Screen::new(size, 100);
        s.feed(format!("> for i = 1, 3 do print('{id}', i) end\r\n").as_bytes());
        for i in 1..=3 {
            s.feed(format!("{id}\t{i}\r\n").as_bytes());
        }
        s.feed(b"> ");
        screens.insert(vm, s);
    }
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| draw(f, &app, &screens)).unwrap();
    terminal
}

#[test]
fn grid_layouts_at_80x24_and_200x60() {
    for (w, h, n) in [(80, 24, 4), (200, 60, 16)] {
        for layout in [
            Layout::Tiled,
            Layout::EvenHorizontal,
            Layout::EvenVertical,
            Layout::MainStack,
        ] {
            let t = grid_frame(w, h, n, layout);
            let name = format!("grid_{}_{w}x{h}", layout.label().replace('+', "_"));
            insta::assert_snapshot!(name, t.backend());
        }
    }
}

#[test]
fn a_big_grid_at_80x24_shows_one_page_at_a_time() {
    let mut t = grid_frame(80, 24, 16, Layout::Tiled);
    insta::assert_snapshot!("grid_paged_80x24", t.backend());
    let text = format!("{:?}", t.backend_mut().buffer());
    assert!(text.contains(" 1/2 "), "the page indicator");
    assert!(
        text.contains("vm08") && !text.contains("vm09"),
        "9 tiles a page"
    );
}

/// A pool VM whose SSH never came up: the reason and what to check are read whole,
/// wrapped at the bottom of its last screen, at 80x24.
#[test]
fn a_long_failure_wraps_in_the_pane() {
    let mut app = app_with_size(80, 24);
    let reason = "ssh: root@10.0.0.7:22: Connection refused (os error 111); no SSH after \
                  61 attempts in 60 s. Check that [xcpng.ssh] port (22) is the port the \
                  guest's sshd listens on, that sshd runs on the guest, and that no \
                  firewall blocks the port";
    app.rows = vec![info(
        "pool-1",
        VmState::Failed(reason.into()),
        None,
        None,
        None,
        0,
    )];
    app.current = Some(common::row("pool-1"));
    let mut screen = Screen::new(app.areas().pane_size(), 100);
    screen.feed(b"[bioxen] connecting to root@10.0.0.7:22\r\n");
    let screens = HashMap::from([(common::vm_id("pool-1"), screen)]);
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| draw(f, &app, &screens)).unwrap();
    insta::assert_snapshot!(t.backend());
    let text: String = t
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains("no firewall blocks the port"), "{text}");
}

/// Long names that share a prefix stay apart: NAME grows with the list, takes room
/// from UP before it cuts a name, and cuts in the middle, never to `protein-f`.
#[test]
fn long_names_grow_the_column_and_lose_their_middle() {
    let mut app = app();
    app.rows = ["protein-folding-run-A", "protein-folding-run-B"]
        .iter()
        .map(|n| info(n, VmState::Running, Some(4100), Some(1.0), Some(1 << 20), 5))
        .collect();
    app.on_resize(140, 30);
    let wide = drawn(&app, 140, 30);
    for name in ["protein-folding-run-A", "protein-folding-run-B"] {
        assert!(
            wide.iter().any(|l| l.contains(name)),
            "{name} whole at 140 columns:\n{}",
            wide.join("\n")
        );
    }
    assert!(
        wide.iter().any(|l| l.contains("MEM")),
        "{}",
        wide.join("\n")
    );
    app.on_resize(80, 30);
    let narrow = drawn(&app, 80, 30);
    let cut: Vec<&String> = narrow
        .iter()
        .filter(|l| l.contains("prot") && l.contains('…'))
        .collect();
    assert_eq!(cut.len(), 2, "{}", narrow.join("\n"));
    assert!(
        cut[0].contains("-A") && cut[1].contains("-B"),
        "{}",
        narrow.join("\n")
    );
}

/// An install that fails offline says why (the server could not be reached), not
/// luarocks' last hint; its long lines wrap inside the dialog instead of being cut.
#[test]
fn a_failed_install_says_why_and_wraps_its_lines() {
    use bioxen::protocol::InstallOutcome;
    use bioxen::ui::app::InstallProgress;
    use bioxen::ui::effect::Done;
    let mut app = app();
    app.rows = every_state();
    let output = "Warning: Failed searching manifest: Failed downloading \
                  https://luarocks.org/manifest-5.4 - failed downloading from the mirror at \
                  https://luarocks.example/manifest-5.4 - connection refused (END)\n\n\
                  Error: No results matching query were found for Lua 5.4.\n\
                  To check if it is available for other Lua versions, use --check-lua-versions.\n";
    app.overlay = Some(Overlay::Progress(InstallProgress {
        vm: common::vm_id("idle"),
        package: "inspect".into(),
        output: output.into(),
        done: None,
    }));
    app.update(Msg::Done(Done::InstallDone(Ok(InstallOutcome {
        package: "inspect".into(),
        success: false,
        exit_code: Some(1),
        output: output.into(),
    }))));
    let screen = drawn(&app, 120, 40).join("\n");
    assert!(
        screen.contains("the rocks server could not be reached"),
        "{screen}"
    );
    assert!(
        screen.contains("connection refused (END)"),
        "wrapped, not cut:\n{screen}"
    );
}

/// Tabs scrolled out of the bar still show that they want attention: the marker on
/// their side counts them (`+2`).
#[test]
fn hidden_tabs_with_marks_are_counted_in_the_marker() {
    let mut app = app();
    app.rows = fourteen_experiments();
    app.current = Some(common::row("experiment-00"));
    app.unseen.insert(common::vm_id("experiment-12"));
    app.marks
        .entry(common::vm_id("experiment-13"))
        .or_default()
        .bell = true;
    let bar = &drawn(&app, 120, 40)[0];
    assert!(bar.contains(" +2»"), "{bar:?}");
}

/// The help says Esc closes it, and stops scrolling at its last line.
#[test]
fn the_help_says_how_to_close_and_scrolls_no_further_than_its_end() {
    use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
    let mut app = App::new(Keymap::default(), Rect::new(0, 0, 100, 20));
    app.overlay = Some(Overlay::Help { scroll: 0 });
    for _ in 0..50 {
        app.update(Msg::Terminal(TermEvent::Key(KeyEvent::new(
            KeyCode::PageDown,
            KeyModifiers::NONE,
        ))));
    }
    let max = app.help_max_scroll();
    assert!(max > 0, "the help is longer than 20 rows");
    assert_eq!(app.overlay, Some(Overlay::Help { scroll: max }));
    let screen = drawn(&app, 100, 20).join("\n");
    assert!(screen.contains("Esc closes"), "{screen}");
    assert!(
        screen.contains("[keys.prefix]"),
        "the last line is shown:\n{screen}"
    );
    app.update(Msg::Terminal(TermEvent::Key(KeyEvent::new(
        KeyCode::Esc,
        KeyModifiers::NONE,
    ))));
    assert!(app.overlay.is_none());
}

/// Too narrow for the list beside the pane, LIST mode shows the list alone, and the
/// VMs keep the pane's size.
#[test]
fn a_narrow_terminal_shows_the_list_in_list_mode() {
    let mut app = app();
    app.rows = every_state();
    app.on_resize(30, 8);
    app.refresh();
    let size = app.pane_size;
    let screen = drawn(&app, 30, 8).join("\n");
    assert!(screen.contains("LIST"), "{screen}");
    assert!(
        screen.contains("starting") && screen.contains("busy"),
        "the list:\n{screen}"
    );
    assert_eq!(app.pane_size, size, "the VMs keep their size");
}

/// A VM that ran a loop for a minute and then slept, and its quiet neighbour, as the
/// server reports them `secs` seconds after the loop began: its last ten minutes.
fn worked_then_slept(secs: usize) -> (Vec<VmInfo>, bioxen::protocol::Series) {
    let cpu_at = |t: usize| if (60..120).contains(&t) { 99.0 } else { 1.0 };
    let end = 60 + secs;
    let cpu: Vec<Option<f32>> = (0..end).map(|t| Some(cpu_at(t))).collect();
    let series = bioxen::protocol::Series {
        step_secs: 1,
        end_unix: 1_700_000_000,
        rss_bytes: (0..end).map(|t| Some((20 + t as u64 / 4) << 20)).collect(),
        progress: (0..end)
            .map(|t| (t >= 60).then(|| (t - 60).min(100) as u8))
            .collect(),
        busy_percent: (0..end)
            .map(|t| Some(if cpu_at(t) > 50.0 { 100 } else { 0 }))
            .collect(),
        cpu_percent: cpu.clone(),
    };
    // The sparkline's steps of ten seconds, the newest last, as the server sums them.
    let recent: Vec<u16> = cpu
        .rchunks(10)
        .take(bioxen::protocol::SPARK_STEPS)
        .map(|c| (c.iter().flatten().sum::<f32>() / c.len() as f32).round() as u16)
        .rev()
        .collect();
    let mut worker = info(
        "worker-3",
        VmState::Running,
        Some(4200),
        cpu.last().copied().flatten(),
        Some(35 << 20),
        end as u64,
    );
    worker.recent_cpu = recent;
    let mut quiet = info(
        "worker-4",
        VmState::Running,
        Some(4201),
        Some(0.0),
        Some(20 << 20),
        end as u64,
    );
    quiet.recent_cpu = vec![0; bioxen::protocol::SPARK_STEPS];
    (vec![worker, quiet], series)
}

/// The sparkline rises while the loop runs and falls when it sleeps, and the chart of
/// the selected VM shows the same shape with its memory and progress, readable at
/// 80x24 and at 200x60.
#[test]
fn a_vm_that_worked_then_slept_in_the_list_and_its_chart() {
    use bioxen::protocol::{HistoryOf, VmRef, Window};
    use bioxen::ui::effect::Done;
    for (moment, secs) in [("working", 30), ("sleeping", 100)] {
        for (w, h) in [(80, 24), (200, 60)] {
            let mut app = App::new(Keymap::default(), Rect::new(0, 0, w, h));
            let (rows, series) = worked_then_slept(secs);
            let vm = rows[0].vm;
            app.update(Msg::Server(Update::Event(Event::Vms(rows))));
            app.current = Some(common::row("worker-3"));
            app.update(Msg::Done(Done::History {
                of: HistoryOf::Vm(VmRef::Id(vm)),
                window: Window::TenMinutes,
                result: Ok(series),
            }));
            let text = drawn(&app, w, h).join("\n");
            insta::assert_snapshot!(format!("worked_then_slept_{moment}_{w}x{h}"), text);
            let shown = if secs < 60 { "CPU 99%" } else { "CPU 1%" };
            // The VM is young: the chart spans its life, not all ten minutes.
            let spans = if secs < 60 { "-2m" } else { "-5m" };
            assert!(
                text.contains(spans) && text.contains("now") && text.contains(shown),
                "the chart is drawn:\n{text}"
            );
        }
    }
}
