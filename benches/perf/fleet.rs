//! Fleets: 300 VMs in one server against 300 windows in one tmux server, and a pool of
//! 5,000 VMs through a real server.

use super::*;

const FLEET: usize = 300;
/// VMs printing flat out while the user moves in the list and types.
const FLEET_PRINTING: usize = 20;
const PRINT_FOREVER: &str = "while true do print(string.rep('x', 60)) end";

/// A `bioxen server` of the terminal's own (the dashboards started in `t` find it),
/// and a client of it.
pub fn bench_server(
    t: &Tmux,
    rt: &tokio::runtime::Runtime,
) -> (std::process::Child, bioxen::client::Client) {
    bench_server_with(t, rt, None)
}

/// [`bench_server`] with a config file of its own.
fn bench_server_with(
    t: &Tmux,
    rt: &tokio::runtime::Runtime,
    config: Option<&str>,
) -> (std::process::Child, bioxen::client::Client) {
    let socket = t.dir.join("bioxen/server.sock");
    let mut server = Command::new(BIOXEN);
    if let Some(config) = config {
        let path = t.dir.join("bench-server.toml");
        std::fs::write(&path, config).unwrap();
        server.arg("--config").arg(path);
    }
    let server = server
        .arg("--socket")
        .arg(&socket)
        .args(["server", "--foreground"])
        .env("XDG_STATE_HOME", &t.dir)
        .env("XDG_CONFIG_HOME", &t.dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = rt.block_on(connect(&socket));
    (server, client)
}

async fn connect(socket: &Path) -> bioxen::client::Client {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match bioxen::client::Client::connect(socket, "bench").await {
            Ok(c) => break c,
            Err(e) if Instant::now() > deadline => panic!("the bench's server: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

fn fleet_name(i: usize) -> String {
    format!("vm{i:03}")
}

/// Milliseconds each run of `command` took, `n` times.
fn wall_ms(n: usize, mut command: impl FnMut() -> Command) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let start = Instant::now();
            let out = command().output().unwrap();
            assert!(out.status.success(), "{out:?}");
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

/// Keystroke to echo in the attached VM: each sample types one more letter and waits
/// until the screen shows the prompt line with exactly what was typed so far.
fn echo_ms(rt: &tokio::runtime::Runtime, client: &mut PtyClient, samples: usize) -> Vec<f64> {
    let mut out = Vec::new();
    let mut typed = String::new();
    for i in 0..samples {
        let c = char::from(b'a' + (i % 26) as u8);
        typed.push(c);
        let want = format!("> {typed}");
        let start = Instant::now();
        client.send(rt, c.to_string().as_bytes());
        client.wait(rt, "the echo", |s| s.contains(&want));
        out.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    out
}

/// Keys as a terminal sends them.
const CTRL_U: &[u8] = b"\x15";
const PREFIX: &[u8] = b"\x02";
const DOWN: &[u8] = b"\x1b[B";

/// 300 VMs in one server: made, listed, each holding 10,000 lines, and used (moving in
/// the list, typing) while 20 of them print; against one tmux server with 300 windows.
pub fn fleet(rows: &mut Vec<Row>) {
    let t = Tmux::start("fleet", 120, 40, "true", None);
    let rt = runtime();
    let (mut server, client) = bench_server(&t, &rt);
    let server_base = rss_kib(server.id());
    let size = dashboard_pane_size();
    let ids: Vec<String> = (0..FLEET).map(fleet_name).collect();

    let start = Instant::now();
    rt.block_on(futures_util::future::join_all(ids.iter().map(|id| {
        let client = &client;
        async move {
            let options = bioxen::protocol::CreateOptions {
                rows: Some(size.rows),
                cols: Some(size.cols),
                ..Default::default()
            };
            client
                .create_interactive_vm(Some(id), VmKind::Local, options)
                .await
                .unwrap();
            client
                .wait_ready(id, Duration::from_secs(120))
                .await
                .unwrap();
        }
    })));
    let created = start.elapsed().as_secs_f64();
    rt.block_on(async {
        for id in &ids {
            client
                .send_input(id, "for i = 1, 10000 do print(i) end\r")
                .await
                .unwrap();
        }
        for id in &ids {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !client.screen_text(id).await.unwrap().contains("10000\n> ") {
                assert!(Instant::now() < deadline, "{id} never finished printing");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let server_grown = rss_kib(server.id()).saturating_sub(server_base);
    let socket = t.dir.join("bioxen/server.sock");
    let ls = |json: bool| {
        let socket = socket.clone();
        move || {
            let mut c = Command::new(BIOXEN);
            c.arg("--socket").arg(&socket).arg("ls");
            if json {
                c.arg("--json");
            }
            c
        }
    };
    let ls_ms = wall_ms(10, ls(false));
    let ls_json_ms = wall_ms(10, ls(true));

    // The list is in the order the VMs were numbered, which concurrent creates
    // leave to chance: the first listed is attached to, the next 20 moved through, and
    // the last 20 print.
    let mut listed = rt.block_on(client.list()).unwrap();
    listed.sort_by_key(|vm| vm.vm);
    let order: Vec<String> = listed.into_iter().map(|vm| vm.name).collect();
    rt.block_on(async {
        for id in &order[FLEET - FLEET_PRINTING..] {
            client
                .send_input(id, format!("{PRINT_FOREVER}\r"))
                .await
                .unwrap();
        }
    });
    let title = |name: &str| format!("╮╭ {name} ");
    let first = |s: &str| s.contains(&title(&order[0])) && prompt_follows(&pane(s), "10000");
    let attach = ["attach", order[0].as_str()];
    let mut dashboard = PtyClient::start(&rt, &t, BIOXEN, &attach);
    dashboard.wait(&rt, "the dashboard on the first VM", first);
    let ours_echo = echo_ms(&rt, &mut dashboard, 30);
    dashboard.send(&rt, &[CTRL_U, PREFIX, b"d"].concat());
    dashboard.wait(&rt, "the list", |s| s.contains(" LIST "));
    let mut ours_move = Vec::new();
    for name in &order[1..=20] {
        let title = title(name);
        let start = Instant::now();
        dashboard.send(&rt, DOWN);
        dashboard.wait(&rt, "the next VM", |s| {
            s.contains(&title) && prompt_follows(&pane(s), "10000")
        });
        ours_move.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    dashboard.close(&rt);
    drop(client);
    let _ = server.kill();
    let _ = server.wait();

    let peer = tmux_fleet(&t, &rt);
    drop(t);

    rows.push(row(
        &format!("fleet: {FLEET} VMs made, each to its prompt"),
        created * 1000.0,
        peer.created * 1000.0,
        "ms",
        &format!("target < 3 s; concurrent creates through one client; peer: tmux commands chaining 50 new-windows each, {FLEET} windows of lua5.4 -i in all, until each has started"),
    ));
    rows.push(row(
        &format!("fleet: `bioxen ls`, {FLEET} VMs"),
        median(ls_ms.clone()),
        median(peer.ls_ms.clone()),
        "ms",
        &format!(
            "median of 10 (max {:.1}; `ls --json` {:.1} ms); target < 100 ms; peer: tmux list-windows -a (max {:.1})",
            percentile(ls_ms, 1.0),
            median(ls_json_ms),
            percentile(peer.ls_ms, 1.0)
        ),
    ));
    rows.push(row(
        &format!("fleet: server memory per VM, {FLEET} x 10,000 lines"),
        server_grown as f64 / FLEET as f64 / 1024.0,
        peer.grown_kib as f64 / FLEET as f64 / 1024.0,
        "MiB",
        "target <= tmux; RSS growth / 300; peer: tmux server, history-limit 10000",
    ));
    rows.push(row(
        &format!("fleet: echo in the attached VM while {FLEET_PRINTING} print"),
        median(ours_echo.clone()),
        median(peer.echo_ms.clone()),
        "ms",
        &format!(
            "median of 30 (p95 {:.1} vs {:.1}); target < 16 ms; from the key written to the client's terminal to the read that shows it",
            percentile(ours_echo, 0.95),
            percentile(peer.echo_ms, 0.95)
        ),
    ));
    rows.push(row(
        &format!("fleet: moving to the next VM while {FLEET_PRINTING} print"),
        median(ours_move.clone()),
        median(peer.move_ms.clone()),
        "ms",
        &format!(
            "median of 20 (p95 {:.1} vs {:.1}); target < 16 ms; bioxen: Down in the list until the pane shows that VM's screen; peer: tmux next-window until its status line marks it",
            percentile(ours_move, 0.95),
            percentile(peer.move_ms, 0.95)
        ),
    ));
}

struct TmuxFleet {
    created: f64,
    ls_ms: Vec<f64>,
    grown_kib: u64,
    echo_ms: Vec<f64>,
    move_ms: Vec<f64>,
}

/// The same in a tmux server of its own, shown in `t`'s pane: 300 windows of lua5.4,
/// each marking a file when it starts.
fn tmux_fleet(t: &Tmux, rt: &tokio::runtime::Runtime) -> TmuxFleet {
    let inner = format!("bioxen-bench-fleet-inner-{}", std::process::id());
    let conf = t.dir.join("inner.conf");
    // The bench types faster than a person: keys within assume-paste-time (1 ms) of
    // the last would be taken as pasted, and the prefix passed to the window.
    std::fs::write(
        &conf,
        "set -g history-limit 10000\nset -g assume-paste-time 0\n",
    )
    .unwrap();
    let marks = t.dir.join("started");
    std::fs::create_dir_all(&marks).unwrap();
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-L", &inner, "-f"])
            .arg(&conf)
            .args(args)
            .output()
            .unwrap()
    };
    let lua = |i: usize| {
        format!(
            "lua5.4 -e \"io.open('{}/{i}', 'w'):close()\" -i",
            marks.display()
        )
    };
    let size = dashboard_pane_size();
    let (w, h) = (size.cols.to_string(), size.rows.to_string());
    let empty = Tmux::start("fleet-empty", 64, 36, "sleep 600", None);
    let base = rss_kib(empty.server_pid());
    drop(empty);

    // tmux takes a command of at most some kilobytes ("command too long"), so the
    // windows go in chains of 50, one tmux call each, as a script making them would.
    let start = Instant::now();
    let session = ["new-session", "-d", "-x", &w, "-y", &h].map(String::from);
    let mut chains: Vec<Vec<String>> = vec![session.into_iter().chain([lua(0)]).collect()];
    let windows: Vec<usize> = (1..FLEET).collect();
    for some in windows.chunks(50) {
        let mut chain: Vec<String> = Vec::new();
        for &i in some {
            if !chain.is_empty() {
                chain.push(";".into());
            }
            chain.extend(["new-window".into(), "-d".into(), lua(i)]);
        }
        chains.push(chain);
    }
    for chain in &chains {
        let refs: Vec<&str> = chain.iter().map(String::as_str).collect();
        let out = tmux(&refs);
        assert!(
            out.status.success(),
            "tmux refused to make windows: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_dir(&marks).unwrap().count() < FLEET {
        assert!(
            Instant::now() < deadline,
            "tmux's windows never all started"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let created = start.elapsed().as_secs_f64();

    for i in 0..FLEET {
        let target = format!("0:{i}");
        tmux(&[
            "send-keys",
            "-t",
            &target,
            "for i = 1, 10000 do print(i) end",
            "Enter",
        ]);
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    for i in 0..FLEET {
        loop {
            let out = tmux(&["capture-pane", "-p", "-t", &format!("0:{i}")]);
            let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.trim_end().to_string())
                .collect();
            if prompt_follows(&lines, "10000") {
                break;
            }
            assert!(Instant::now() < deadline, "tmux window {i} never finished");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let inner_pid = tmux_server_pid(&inner);
    let grown_kib = rss_kib(inner_pid).saturating_sub(base);
    let ls_ms = wall_ms(10, || {
        let mut c = Command::new("tmux");
        c.args(["-L", &inner, "list-windows", "-a"]);
        c
    });

    for i in FLEET - FLEET_PRINTING..FLEET {
        tmux(&["send-keys", "-t", &format!("0:{i}"), PRINT_FOREVER, "Enter"]);
    }
    let attach = ["-L", &inner, "attach", "-t", "0:0"];
    let mut client = PtyClient::start(rt, t, "tmux", &attach);
    client.wait(rt, "tmux on window 0", |s| s.contains("0:lua5.4*"));
    let echo_ms = echo_ms(rt, &mut client, 30);
    client.send(rt, CTRL_U);
    let mut move_ms = Vec::new();
    for i in 1..=20 {
        let current = format!("{i}:lua5.4*");
        let start = Instant::now();
        client.send(rt, &[PREFIX, b"n"].concat());
        client.wait(rt, "the next window", |s| {
            s.contains(&current) && prompt_follows(&pane(s), "10000")
        });
        move_ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    client.close(rt);
    end_tmux_server(&inner, inner_pid);
    TmuxFleet {
        created,
        ls_ms,
        grown_kib,
        echo_ms,
        move_ms,
    }
}

const POOL: usize = 5000;

/// A real server following a simulated pool: its VMs listed, in how long and at what
/// memory.
struct PoolRun {
    /// From starting the server to a client holding the complete list.
    listed_ms: f64,
    rss_kib: u64,
    /// A power change made on the pool, to the list showing it.
    change_ms: Vec<f64>,
    /// The list as the client last had it.
    list: Vec<bioxen::protocol::PoolVm>,
}

fn follow_pool(rt: &tokio::runtime::Runtime, vms: usize, changes: usize) -> PoolRun {
    use bioxen::protocol::{Event, PoolStatus};
    let sim = rt
        .block_on(bioxen::sim::SimServer::start(
            "127.0.0.1:0".parse().unwrap(),
            Default::default(),
            false,
        ))
        .unwrap();
    sim.sim.add_bulk_vms(vms);
    let t = Tmux::start(&format!("pool{vms}"), 80, 24, "true", None);
    let config = format!("[xcpng]\nurl = \"{}\"\npassword = \"password\"\n", sim.url);
    let start = Instant::now();
    let (mut server, client) = bench_server_with(&t, rt, Some(&config));
    let mut updates = client.updates();
    rt.block_on(client.subscribe()).unwrap();
    // The newest list of the pool, once the pool is connected.
    let mut next_list = || {
        rt.block_on(async {
            loop {
                match tokio::time::timeout(Duration::from_secs(60), updates.recv()).await {
                    Ok(Some(bioxen::client::Update::Event(Event::Pool(info))))
                        if info.status == PoolStatus::Connected =>
                    {
                        return info.vms;
                    }
                    Ok(Some(_)) => {}
                    other => panic!("the pool's list never came: {other:?}"),
                }
            }
        })
    };
    let bulk = |list: &[bioxen::protocol::PoolVm]| {
        list.iter().filter(|v| v.name.starts_with("bulk-")).count()
    };
    let mut list = next_list();
    while bulk(&list) < vms {
        list = next_list();
    }
    let listed_ms = start.elapsed().as_secs_f64() * 1000.0;
    let rss = rss_kib(server.id());
    let mut change_ms = Vec::new();
    for i in 0..changes {
        let name = format!("bulk-{}", i * (vms / changes.max(1)));
        let state = if i % 2 == 0 { "Running" } else { "Paused" };
        let start = Instant::now();
        assert!(sim.sim.set_power_state(&name, state));
        while !next_list()
            .iter()
            .any(|v| v.name == name && v.power_state == state)
        {}
        change_ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    drop(client);
    let _ = server.kill();
    let _ = server.wait();
    drop(t);
    PoolRun {
        listed_ms,
        rss_kib: rss,
        change_ms,
        list,
    }
}

/// A pool of 5,000 VMs through a real server, against the one XAPI call that fetches
/// them (the floor of any client) and polling once a second.
pub fn pool(rows: &mut Vec<Row>) {
    let rt = runtime();
    let empty = follow_pool(&rt, 0, 0);
    let full = follow_pool(&rt, POOL, 10);
    // The floor: one VM.get_all_records, logged in already.
    let sim = rt
        .block_on(bioxen::sim::SimServer::start(
            "127.0.0.1:0".parse().unwrap(),
            Default::default(),
            false,
        ))
        .unwrap();
    sim.sim.add_bulk_vms(POOL);
    let floor_ms = rt.block_on(async {
        let client = bioxen::xapi::XapiClient::new(bioxen::xapi::Login {
            url: sim.url.clone(),
            username: "root".into(),
            password: "password".into(),
            tls: bioxen::xapi::tls::TlsMode::Verify,
        })
        .unwrap();
        let mut times = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            let records = client.get_all_records("VM").await.unwrap();
            assert!(records.len() >= POOL);
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        median(times)
    });
    rows.push(row(
        &format!("pool of {POOL}: server start to a client holding the whole list"),
        full.listed_ms,
        floor_ms,
        "ms",
        &format!("target < 1 s; simulated pool; peer: one VM.get_all_records from a client already logged in (the floor); an empty pool takes {:.0} ms", empty.listed_ms),
    ));
    rows.push(row(
        &format!("pool of {POOL}: server memory for it"),
        (full.rss_kib.saturating_sub(empty.rss_kib)) as f64 / 1024.0,
        50.0,
        "MiB",
        "target < 50 MB (the peer column); the server's RSS following 5,000 VMs less following an empty pool",
    ));
    let frames = pool_list_frames_ms(full.list);
    rows.push(row(
        &format!("pool of {POOL}: a key in the list and its frame"),
        percentile(frames.clone(), 1.0),
        1000.0 / 60.0,
        "ms",
        &format!("slowest of 200 Down keys, each drawn (median {:.2}); target: no frame dropped at 60 frames/s (the peer column); the dashboard's own code at 120x40", median(frames)),
    ));
    rows.push(row(
        &format!("pool of {POOL}: power change to the client's list"),
        median(full.change_ms.clone()),
        1000.0,
        "ms",
        &format!(
            "median of 10 (max {:.1}); target < 1 s; peer: polling once a second",
            percentile(full.change_ms, 1.0)
        ),
    ));
}

/// Milliseconds of each of 200 Down keys in a list holding `vms`, with its frame. The
/// list shows the pool VMs bioxen made: here all of them are taken for such.
fn pool_list_frames_ms(mut vms: Vec<bioxen::protocol::PoolVm>) -> Vec<f64> {
    for (i, vm) in vms.iter_mut().enumerate() {
        vm.bioxen_id = Some(format!("made-{i}"));
    }
    use bioxen::client::Update;
    use bioxen::protocol::{Event, PoolInfo, PoolStatus};
    use bioxen::ui::app::{App, Msg};
    use crossterm::event::{Event as Key, KeyCode, KeyEvent, KeyModifiers};
    let area = ratatui::layout::Rect::new(0, 0, 120, 40);
    let mut app = App::new(bioxen::keymap::Keymap::default(), area);
    app.update(Msg::Server(Update::Event(Event::Pool(PoolInfo {
        name: "pool".into(),
        status: PoolStatus::Connected,
        vms,
        warning: None,
        failed: None,
    }))));
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
    let screens = std::collections::HashMap::new();
    terminal
        .draw(|f| bioxen::ui::draw::draw(f, &app, &screens))
        .unwrap();
    let drawn: String = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(
        drawn.contains("bulk-"),
        "the list shows no pool VM:\n{drawn}"
    );
    (0..200)
        .map(|_| {
            let start = Instant::now();
            app.update(Msg::Terminal(Key::Key(KeyEvent::new(
                KeyCode::Down,
                KeyModifiers::NONE,
            ))));
            terminal
                .draw(|f| bioxen::ui::draw::draw(f, &app, &screens))
                .unwrap();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}
