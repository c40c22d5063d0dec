//! The simulator's guests answer SSH as real guests would: their own addresses and
//! host keys, the trusted keys only, a REPL in a PTY, exec channels with stdout,
//! stderr and exit codes, and nothing once their VM halts.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bioxen::config::Config;
use bioxen::sim::guest::GuestConfig;
use bioxen::sim::{SimOptions, SimServer};
use bioxen::vm::ssh::{self, SshError, SshTarget, Trust};
use bioxen::{Manager, ManagerConfig, VmKind, VmOptions};
use common::WAIT;

/// A directory with a client key pair, and a stand-in interpreter that only the
/// guests' fallback directory has.
fn workdir(name: &str) -> PathBuf {
    common::require_program("ssh-keygen", "openssh-client");
    let dir = std::env::temp_dir().join(format!("bioxen-guests-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("fallback")).unwrap();
    for key in ["client_key", "stranger_key"] {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"])
            .arg(dir.join(key))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let shim = dir.join("fallback/guest-only-lua");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\nexec {} lua \"$@\"\n",
            common::bioxen_exe().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

async fn pool(dir: &Path, port: u16) -> SimServer {
    pool_with_path(dir, port, None).await
}

/// A pool whose guests' `PATH` is `path` (else the simulator's own).
async fn pool_with_path(dir: &Path, port: u16, path: Option<String>) -> SimServer {
    let mut guests = GuestConfig::with_keys_from(port, &[dir.join("client_key.pub")]).unwrap();
    // Only the stand-in is there, under a name no machine has.
    guests.fallback_path = Some(dir.join("fallback"));
    guests.path = path;
    let options = SimOptions {
        boot_delay: std::time::Duration::from_millis(50),
        guests: Some(Arc::new(guests)),
        ..SimOptions::default()
    };
    SimServer::start("127.0.0.1:0".parse().unwrap(), options, false)
        .await
        .unwrap()
}

/// A pool's table for bioxen.toml: `header` is `[xcpng]` or `[[xcpng]]`, with `extra`
/// lines (a name) after it; its guests are reached with the workdir's key.
fn pool_toml(
    header: &str,
    extra: &str,
    dir: &Path,
    sim: &SimServer,
    port: u16,
    command: &str,
) -> String {
    format!(
        "{header}\n{extra}url = \"{}\"\npassword = \"password\"\n\
         [xcpng.ssh]\nport = {port}\nidentity = \"{}\"\nknown_hosts = \"{}\"\ncommand = \"{command}\"\nwait_secs = 10\n",
        sim.url,
        dir.join("client_key").display(),
        dir.join("known_hosts").display()
    )
}

fn manager(dir: &Path, sim: &SimServer, port: u16, command: &str) -> Manager {
    manager_of(dir, &pool_toml("[xcpng]", "", dir, sim, port, command))
}

/// A manager with `text` as its bioxen.toml, which learns new guests' host keys.
fn manager_of(dir: &Path, text: &str) -> Manager {
    let path = dir.join("bioxen.toml");
    std::fs::write(&path, text).unwrap();
    let config = Config::load(Some(&path)).unwrap();
    let mut mc = ManagerConfig::from_config(&config).unwrap();
    mc.self_exe = common::bioxen_exe();
    // The first connection to each new guest: its key is learnt, as `ssh` with
    // StrictHostKeyChecking=accept-new does.
    mc.trust = Trust {
        prompt: None,
        accept_new: true,
    };
    Manager::new(mc)
}

/// A pool VM session named `name`, made with `options`, at its Lua prompt; its name.
async fn ready_pool_vm(m: &Manager, name: Option<&str>, options: VmOptions) -> String {
    let id = m
        .create_interactive_vm(name, VmKind::Xcpng, options)
        .await
        .unwrap();
    m.wait_ready(id, WAIT).await.unwrap();
    // By name: the pool and its guests know the VM by the name it is tagged with.
    m.info(id).unwrap().name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_vm_is_reached_over_ssh_at_its_own_address() {
    let dir = workdir("flow");
    let port = common::free_port();
    let sim = pool(&dir, port).await;
    let m = manager(&dir, &sim, port, "guest-only-lua -i");
    let id = ready_pool_vm(&m, Some("far"), VmOptions::default()).await;
    // Its own loopback address, and the host key it showed is the one learnt.
    let info = m.info(&id).unwrap();
    let remote = info.remote.clone().unwrap();
    let (addr, host_key) = sim.sim.guest_ssh(&id).expect("a running guest");
    assert_ne!(addr.ip().to_string(), "127.0.0.1");
    assert!(remote.ends_with(&addr.to_string()), "{remote} vs {addr}");
    let known = std::fs::read_to_string(dir.join("known_hosts")).unwrap();
    assert!(
        known.contains(
            &host_key
                .to_openssh()
                .unwrap()
                .split(' ')
                .nth(1)
                .unwrap()
                .to_string()
        ),
        "{known}"
    );
    // The REPL behind it is bioxen's own, found through the fallback directory.
    common::shares_state_between_calls(&m, &id).await;
    let r = m.execute_string(&id, "_VERSION", WAIT).await.unwrap();
    assert_eq!(r.output, "Lua 5.4\n");

    // Exec channels: stdout, stderr and the exit code apart, input on stdin.
    let target = SshTarget {
        host: addr.ip().to_string(),
        port,
        user: "researcher".into(),
        identity: Some(dir.join("client_key")),
        known_hosts: dir.join("known_hosts"),
        password: None,
        command: String::new(),
        hold: false,
    };
    let conn = ssh::connect(&target, &Trust::default()).await.unwrap();
    let out = conn
        .exec(
            &["sh", "-c", "cat; echo to-err >&2; exit 3"],
            b"from stdin\n",
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from stdin\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-err\n");
    assert_eq!(out.status, Some(3));

    // A key the guest was not told to trust is refused.
    let stranger = SshTarget {
        identity: Some(dir.join("stranger_key")),
        ..target.clone()
    };
    let err = ssh::connect(&stranger, &Trust::default())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, SshError::Auth(_)), "{err:?}");

    // The VM halts with the session: its guest answers no more.
    m.terminate_vm_session(&id).await.unwrap();
    assert!(sim.sim.guest_ssh(&id).is_none());
    assert!(
        common::eventually(WAIT, || std::net::TcpStream::connect(addr).is_err()).await,
        "the halted guest still listens"
    );
}

/// A VM kept on the pool keeps its name: a new session never takes it, by choice or
/// by the next generated name, so two never answer to one name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_pool_vm_keeps_its_name() {
    let dir = workdir("names");
    let port = common::free_port();
    let sim = pool(&dir, port).await;
    let m = manager(&dir, &sim, port, "guest-only-lua -i");
    let kept = ready_pool_vm(&m, None, VmOptions::default()).await;
    m.release(&kept).await.unwrap();
    let pool = m.pool(None).unwrap();
    let known = pool
        .cache
        .wait_for(WAIT, |c| {
            c.vms()
                .iter()
                .any(|vm| vm.bioxen_id.as_deref() == Some(kept.as_str()))
        })
        .await;
    assert!(known, "the pool never listed the kept VM");
    let next = m
        .create_interactive_vm(None, VmKind::Local, VmOptions::default())
        .await
        .unwrap();
    assert_ne!(
        m.info(next).unwrap().name,
        kept,
        "a new VM took the kept VM's name"
    );
    let err = m
        .create_interactive_vm(Some(&kept), VmKind::Local, VmOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("kept on the pool"), "{err}");
    let err = m.rename(next, &kept).unwrap_err().to_string();
    assert!(err.contains("kept on the pool"), "{err}");
    m.terminate_vm_session(&next).await.unwrap();
}

/// A session closed with its pool VM kept leaves the interpreter running under
/// dtach; attaching to the VM again takes it up with its state, and a VM's next
/// session after a kill starts fresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_session_keeps_its_interpreter_for_the_next_attach() {
    common::require_program("dtach", "dtach");
    let dir = workdir("resume");
    let port = common::free_port();
    let sim = pool(&dir, port).await;
    closed_session_keeps_its_interpreter(&dir, &sim, port).await;
}

/// The same on guests without dtach: bioxen's python3 holder keeps the interpreter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_dtach_the_python_holder_keeps_the_interpreter() {
    common::require_program("python3", "python3");
    let dir = workdir("resume-python");
    let port = common::free_port();
    let path = common::path_without(&dir.join("bin"), &["dtach"]);
    let sim = pool_with_path(&dir, port, Some(path)).await;
    closed_session_keeps_its_interpreter(&dir, &sim, port).await;
    let holders = Command::new("pgrep")
        .args(["-f", "holder.py attach .*bioxen-keep-"])
        .output()
        .unwrap();
    assert!(
        holders.stdout.is_empty(),
        "the python holder outlived its VM"
    );
}

async fn closed_session_keeps_its_interpreter(dir: &Path, sim: &SimServer, port: u16) {
    let m = manager(dir, sim, port, "guest-only-lua -i");
    let id = ready_pool_vm(&m, Some("keep"), VmOptions::default()).await;
    m.execute_string(&id, "kept_value = 6 * 7", WAIT)
        .await
        .unwrap();
    let reference = m.info(&id).unwrap().pool_vm.unwrap();
    let (addr, _) = sim.sim.guest_ssh(&id).unwrap();
    let state = m.release(&id).await.unwrap();
    assert_eq!(state, bioxen::VmState::Running, "the interpreter goes on");

    let again = || VmOptions {
        pool_vm: Some((reference.clone(), addr.ip().to_string())),
        ..VmOptions::default()
    };
    let id = ready_pool_vm(&m, Some("keep"), again()).await;
    let r = m.execute_string(&id, "kept_value", WAIT).await.unwrap();
    assert_eq!(r.output, "42\n", "the state was kept");

    // Killed, the session takes its interpreter with it: the next one is new.
    m.kill(&id).await.unwrap();
    m.remove(&id).unwrap();
    let id = ready_pool_vm(&m, Some("keep"), again()).await;
    let r = m.execute_string(&id, "kept_value", WAIT).await.unwrap();
    assert_eq!(r.output, "nil\n");
    m.terminate_vm_session(&id).await.unwrap();
}

/// A pool VM's CPU and memory are the pool's own figures, read from `rrd_updates`
/// as Xen Orchestra reads them: the session's row and chart show them, as a local
/// VM's show its processes'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_vm_shows_the_cpu_the_pool_measures() {
    use bioxen::protocol::{HistoryOf, VmRef, Window};
    let dir = workdir("rrd");
    let port = common::free_port();
    let sim = pool(&dir, port).await;
    let m = manager(&dir, &sim, port, "guest-only-lua -i");
    let name = ready_pool_vm(&m, Some("metered"), VmOptions::default()).await;
    let row = || {
        m.list()
            .into_iter()
            .find(|i| i.name == name)
            .expect("the session is listed")
    };
    assert!(
        common::eventually(WAIT, || {
            let r = row();
            r.cpu_percent.is_some() && !r.recent_cpu.is_empty()
        })
        .await,
        "the pool's figures reach the list: {:?}",
        row()
    );
    let info = row();
    // Two vCPUs, each busy between a tenth and nine tenths in the simulator.
    let cpu = info.cpu_percent.unwrap();
    assert!((10.0..=190.0).contains(&cpu), "{cpu}");
    // The guest agent says a quarter of its memory is free.
    let given = sim.sim.memory_given(info.pool_vm.as_deref().unwrap());
    assert_eq!(
        info.rss_bytes,
        Some(given - given / 4 / 1024 * 1024),
        "{info:?}"
    );
    let series = m
        .history(&HistoryOf::Vm(VmRef::Id(info.vm)), Window::TenMinutes)
        .unwrap();
    let figures: Vec<f32> = series.cpu_percent.iter().flatten().copied().collect();
    assert!(figures.len() >= 2, "{series:?}");
    assert!(
        figures.windows(2).any(|w| w[0] != w[1]),
        "the figures move while the VM runs: {figures:?}"
    );
    m.terminate_vm_session(&name).await.unwrap();
}

/// Two pools at once, each with its own client, login and event cache: a VM made on
/// the second pool is made there and nowhere else, is listed under that pool, and the
/// dashboard groups each pool's VMs under its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pools_each_keep_their_own_vms() {
    let dir = workdir("two-pools");
    // The two pools' first guests share an address (127.0.0.2), so never a port.
    let port_a = common::free_port();
    let port_b = std::iter::repeat_with(common::free_port)
        .find(|p| *p != port_a)
        .unwrap();
    let lab = pool(&dir, port_a).await;
    let cloud = pool(&dir, port_b).await;
    let named = |name: &str, sim: &SimServer, port: u16| {
        let extra = format!("name = \"{name}\"\n");
        pool_toml("[[xcpng]]", &extra, &dir, sim, port, "guest-only-lua -i")
    };
    let m = manager_of(
        &dir,
        &(named("lab", &lab, port_a) + &named("cloud", &cloud, port_b)),
    );

    let on_cloud = VmOptions {
        pool: Some("cloud".into()),
        ..VmOptions::default()
    };
    let far = ready_pool_vm(&m, Some("far"), on_cloud).await;
    let near = ready_pool_vm(&m, Some("near"), VmOptions::default()).await;
    let info = |name: &str| m.list().into_iter().find(|i| i.name == name).unwrap();
    assert_eq!(info(&far).pool.as_deref(), Some("cloud"));
    assert_eq!(
        info(&near).pool.as_deref(),
        Some("lab"),
        "the first pool by default"
    );
    assert!(cloud.sim.guest_ssh(&far).is_some() && lab.sim.guest_ssh(&far).is_none());
    assert!(lab.sim.guest_ssh(&near).is_some() && cloud.sim.guest_ssh(&near).is_none());
    // Each session runs where its pool put it.
    let r = m.execute_string(&far, "print(1 + 1)", WAIT).await.unwrap();
    assert_eq!(r.output, "2\n");

    // Each pool's cache holds its own VMs only.
    let tagged = |name: &str| -> Vec<String> {
        m.pool(Some(name))
            .unwrap()
            .cache
            .vms()
            .into_iter()
            .filter_map(|vm| vm.bioxen_id)
            .collect()
    };
    assert!(
        common::eventually(WAIT, || tagged("cloud") == ["far"]
            && tagged("lab") == ["near"])
        .await,
        "cloud {:?}, lab {:?}",
        tagged("cloud"),
        tagged("lab")
    );
    let err = m
        .create_interactive_vm(
            Some("nowhere"),
            VmKind::Xcpng,
            VmOptions {
                pool: Some("moon".into()),
                ..VmOptions::default()
            },
        )
        .await;
    let said = match err {
        Err(e) => e.to_string(),
        Ok(id) => m
            .wait_ready(id, WAIT)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default(),
    };
    assert!(
        said.contains("no pool is named 'moon'") && said.contains("lab, cloud"),
        "{said}"
    );
    if m.info("nowhere").is_ok() {
        m.remove("nowhere").unwrap();
    }

    // The dashboard, grouped by pool, shows each VM under its pool.
    let mut app = bioxen::ui::app::App::new(
        bioxen::keymap::Keymap::default(),
        ratatui::layout::Rect::new(0, 0, 120, 40),
    );
    app.set_rows(m.list());
    for name in ["lab", "cloud"] {
        let pool = m.pool(Some(name)).unwrap();
        let mut vms = pool.cache.vms();
        m.with_pool_figures(&pool, &mut vms);
        app.on_pool(
            name,
            bioxen::ui::app::PoolView {
                status: pool.cache.status(),
                vms: vms.len(),
            },
            vms,
        );
    }
    while app.group_by != bioxen::ui::app::GroupBy::Pool {
        app.update(bioxen::ui::app::Msg::Terminal(
            crossterm::event::Event::Key(crossterm::event::KeyEvent::new(
                crossterm::event::KeyCode::Char('G'),
                crossterm::event::KeyModifiers::NONE,
            )),
        ));
    }
    let rows: Vec<String> = app
        .visible()
        .iter()
        .map(|r| match r {
            bioxen::ui::app::Row::Group(g) => format!("[{g}]"),
            r => r.name().to_string(),
        })
        .collect();
    assert_eq!(rows, ["[cloud]", "far", "[lab]", "near"], "{rows:?}");
    for name in [far, near] {
        m.terminate_vm_session(&name).await.unwrap();
    }
}
