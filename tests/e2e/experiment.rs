//! Experiments with real interpreters: a loader, a matrix of workers that waits for
//! it, a flaky VM the server restarts; `up` twice, then `down`.

use crate::common;

use std::path::{Path, PathBuf};

use bioxen::config::{Config, experiment};
use bioxen::{Manager, VmState};
use common::cli_dir::{KillServer, bioxen_in, said};
use common::sshd::Sshd;
use common::{WAIT, eventually, manager, process_group_alive};

/// A directory of the test's own, holding its scripts.
fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bioxen-exp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

fn state_of(m: &Manager, name: &str) -> Option<VmState> {
    m.list()
        .into_iter()
        .find(|v| v.name == name)
        .map(|v| v.state)
}

fn restarts_of(m: &Manager, name: &str) -> u32 {
    m.list()
        .into_iter()
        .find(|v| v.name == name)
        .and_then(|v| v.experiment)
        .map_or(0, |e| e.restarts)
}

const THREE_PARTS: &str = r#"
[experiment]
name = "three"

[[vm]]
name = "loader"
script = "load.lua"

[[vm]]
name = "work"
script = "work.lua"
args = ["cell-{lr}-{seed}"]
matrix = { lr = ["0.1", "0.01"], seed = [1, 2] }
depends_on = { loader = "idle" }

[[vm]]
name = "flaky"
script = "flaky.lua"
restart = "on-failure"
max_restarts = 2
backoff_secs = 0.2
"#;

/// The loader takes a second, then leaves `loaded` behind; each worker writes down
/// whether the loader was done when it started, its matrix values and its `arg`.
fn three_part_experiment(dir: &Path) -> PathBuf {
    three_part_experiment_on(dir, "")
}

/// [`three_part_experiment`] with `placement` (`kind = "ssh"` ...) in every VM. The
/// scripts name their files by absolute path: a remote VM runs in the host user's home.
fn three_part_experiment_on(dir: &Path, placement: &str) -> PathBuf {
    let d = dir.display();
    write(
        dir,
        "load.lua",
        &format!(
            "local t = os.time() while os.time() - t < 2 do end\n\
             io.open('{d}/loaded', 'w'):close() print('loaded')\n"
        ),
    );
    write(
        dir,
        "work.lua",
        &format!(
            "local seen = io.open('{d}/loaded') ~= nil\n\
             local f = io.open('{d}/w-' .. os.getenv('LR') .. '-' .. os.getenv('SEED'), 'w')\n\
             f:write(tostring(seen), ' ', os.getenv('LR'), ' ', os.getenv('SEED'), ' ', arg[1])\n\
             f:close()\n"
        ),
    );
    write(
        dir,
        "flaky.lua",
        &format!("local f = io.open('{d}/flaky-starts', 'a') f:write('x') f:close() os.exit(1)\n"),
    );
    let text = THREE_PARTS.replace("[[vm]]\n", &format!("[[vm]]\n{placement}"));
    write(dir, "three.toml", &text)
}

/// Every worker ran once the loader was idle, with its cell's env and `arg`; the flaky
/// VM was started three times and then failed; a second `up` starts nothing.
async fn check_three_parts(m: &Manager, dir: &Path, plan: bioxen::protocol::Experiment) {
    let cells = [("0.1", "1"), ("0.1", "2"), ("0.01", "1"), ("0.01", "2")];
    for (lr, seed) in cells {
        let out = dir.join(format!("w-{lr}-{seed}"));
        assert!(
            eventually(WAIT, || out.exists()
                && std::fs::read(&out).is_ok_and(|b| !b.is_empty()))
            .await,
            "worker lr={lr} seed={seed} never ran: {:?}",
            state_of(m, &format!("work-lr{lr}-seed{seed}"))
        );
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            format!("true {lr} {seed} cell-{lr}-{seed}"),
            "each worker starts after the loader is idle, with its cell's env and arg"
        );
    }
    assert!(
        eventually(WAIT, || matches!(
            state_of(m, "flaky"),
            Some(VmState::Failed(_))
        ))
        .await,
        "the flaky VM ends failed: {:?}",
        state_of(m, "flaky")
    );
    assert_eq!(
        state_of(m, "flaky"),
        Some(VmState::Failed("exited(1) after 2 restarts".into()))
    );
    assert_eq!(restarts_of(m, "flaky"), 2);
    assert_eq!(
        std::fs::read_to_string(dir.join("flaky-starts")).unwrap(),
        "xxx"
    );
    let again = m.up(plan, false).await.unwrap();
    assert!(again.started.is_empty(), "{again:?}");
    assert_eq!(again.unchanged.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_starts_in_order_restarts_its_flaky_vm_and_ends_together() {
    let dir = workdir("three");
    let file = three_part_experiment(&dir);
    let plan = experiment::load(&file, &Config::default()).unwrap();
    let m = manager();
    let report = m.up(plan.clone(), false).await.unwrap();
    assert_eq!(report.started.len(), 6, "{report:?}");

    // The workers wait, and say for what, while the loader loads.
    let waiting = state_of(&m, "work-lr0.1-seed1");
    assert_eq!(
        waiting,
        Some(VmState::Waiting("loader: idle".into())),
        "a worker shows what it waits for"
    );
    check_three_parts(&m, &dir, plan).await;

    // Down leaves no process.
    let pids: Vec<u32> = m.list().iter().filter_map(|v| v.pid).collect();
    assert_eq!(
        pids.len(),
        5,
        "loader and four workers sit at their prompts"
    );
    let ended = m.down("three").await.unwrap();
    assert_eq!(ended.len(), 6, "{ended:?}");
    assert!(m.list().is_empty());
    for pid in pids {
        assert!(
            eventually(WAIT, || !process_group_alive(pid)).await,
            "process group {pid} outlived down"
        );
    }
}

/// A manager for `config_text`, and the configuration experiment files are read with.
fn manager_for(config_text: &str) -> (Manager, Config) {
    let config = Config::parse(config_text, Path::new("bioxen.toml")).unwrap();
    let mut mc = bioxen::ManagerConfig::from_config(&config).unwrap();
    mc.self_exe = common::bioxen_exe();
    (Manager::new(mc), config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_experiment_runs_on_an_ssh_host_with_its_scripts_copied_there() {
    let sshd = Sshd::start("exp-ssh");
    let (m, config) = manager_for(&sshd.host_entry("lab", &sshd.known_hosts, "lua5.4 -i"));
    let dir = workdir("ssh");
    let file = three_part_experiment_on(&dir, "kind = \"ssh\"\nhost = \"lab\"\n");
    let plan = experiment::load(&file, &config).unwrap();
    let report = m.up(plan.clone(), false).await.unwrap();
    assert_eq!(report.started.len(), 6, "{report:?}");
    check_three_parts(&m, &dir, plan).await;
    let ended = m.down("three").await.unwrap();
    assert_eq!(ended.len(), 6, "{ended:?}");
    assert!(
        eventually(WAIT, || sshd.connection_pids().is_empty()).await,
        "down closes every SSH connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_experiment_runs_on_pool_vms_with_its_scripts_copied_there() {
    let sshd = Sshd::start("exp-pool");
    let (sim, config) = common::sshd::pool_with_guests_at(&sshd).await;
    let (m, config) = manager_for(&config);
    let dir = workdir("pool");
    let file = three_part_experiment_on(&dir, "kind = \"xcpng\"\n");
    let plan = experiment::load(&file, &config).unwrap();
    m.up(plan.clone(), false).await.unwrap();
    check_three_parts(&m, &dir, plan).await;
    assert_eq!(sim.sim.guest_vm_count(), 6, "a pool VM each");
    m.down("three").await.unwrap();
    assert!(
        eventually(WAIT, || sim.sim.guest_vm_count() == 0).await,
        "down destroys the experiment's pool VMs: {} left",
        sim.sim.guest_vm_count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_dependency_blocks_its_dependants_and_a_log_line_releases_them() {
    let dir = workdir("blocked");
    write(dir.as_path(), "fail.lua", "os.exit(3)\n");
    write(
        dir.as_path(),
        "say.lua",
        "print('model ready at ' .. 40 + 2)\n",
    );
    let file = write(
        &dir,
        "blocked.toml",
        r#"
[[vm]]
name = "prep"
script = "fail.lua"
[[vm]]
name = "after-prep"
depends_on = { prep = "exited-ok" }
[[vm]]
name = "server"
script = "say.lua"
[[vm]]
name = "client"
depends_on = { server = { log = "ready at \\d+" } }
"#,
    );
    let plan = experiment::load(&file, &Config::default()).unwrap();
    let m = manager();
    m.up(plan, false).await.unwrap();
    assert!(
        eventually(WAIT, || matches!(
            state_of(&m, "after-prep"),
            Some(VmState::Blocked(_))
        ))
        .await
    );
    assert_eq!(
        state_of(&m, "after-prep"),
        Some(VmState::Blocked("prep: exited(3) before exited-ok".into())),
        "a dependant says which dependency failed, and how"
    );
    assert!(
        eventually(WAIT, || state_of(&m, "client") == Some(VmState::Running)).await,
        "a log line releases its dependant: {:?}",
        state_of(&m, "client")
    );
    m.down("blocked").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_the_user_ends_is_never_restarted_and_a_changed_spec_waits_for_force() {
    let dir = workdir("user-ends");
    let file = write(
        &dir,
        "keep.toml",
        "[[vm]]\nname = \"always\"\nrestart = \"always\"\nmax_restarts = 5\nbackoff_secs = 0\n",
    );
    let plan = experiment::load(&file, &Config::default()).unwrap();
    let m = manager();
    m.up(plan.clone(), false).await.unwrap();
    let vm = m.list()[0].vm;
    m.wait_ready(vm, WAIT).await.unwrap();
    m.kill(vm).await.unwrap();
    // Given every chance to restart it: a restart would show as Running again.
    let mut state = m.subscribe();
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), state.recv()).await;
    assert!(!m.info(vm).unwrap().state.is_alive());
    assert_eq!(restarts_of(&m, "always"), 0);

    let mut changed = plan.clone();
    changed.vms[0].env.push(("SEED".into(), "7".into()));
    let report = m.up(changed.clone(), false).await.unwrap();
    assert_eq!(report.changed, ["always"]);
    assert_eq!(m.list()[0].vm, vm, "without --force the old VM stays");
    let report = m.up(changed, true).await.unwrap();
    assert_eq!(report.changed, ["always"]);
    let now = m.list();
    assert_ne!(now[0].vm, vm, "with --force it is made anew");
    assert_eq!(
        now[0].experiment.as_ref().unwrap().spec.env,
        [("SEED".to_string(), "7".to_string())]
    );
    m.down("keep").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_ls_and_down_from_the_command_line() {
    let dir = workdir("cli");
    write(
        &dir,
        "bioxen.toml",
        &format!("[ui]\nlog_dir = \"{}\"\n", dir.join("logs").display()),
    );
    let file = three_part_experiment(&dir);
    let file = file.to_str().unwrap();
    let _server = KillServer(dir.clone());

    let broken = write(
        &dir,
        "broken.toml",
        "[[vm]]\nname = \"a\"\nscript = \"nope.lua\"\n",
    );
    let out = bioxen_in(&dir, &["up", "-d", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        said(&out).contains(&format!("{}:3:", broken.display()))
            && said(&out).contains("key `vm.script`"),
        "a broken file is named at its line and key: {}",
        said(&out)
    );

    let out = bioxen_in(&dir, &["up", "-d", file]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains("three: started: loader, work-lr0.1-seed1"),
        "{}",
        said(&out)
    );

    let out = bioxen_in(&dir, &["ls", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cell = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "work-lr0.01-seed2")
        .unwrap_or_else(|| panic!("no worker in {rows}"));
    assert_eq!(cell["experiment"]["name"], "three");
    assert_eq!(
        cell["experiment"]["spec"]["env"],
        serde_json::json!([["LR", "0.01"], ["SEED", "2"]])
    );
    assert_eq!(
        cell["experiment"]["spec"]["args"],
        serde_json::json!(["cell-0.01-2"])
    );
    let table = said(&bioxen_in(&dir, &["ls"]));
    assert!(
        table.contains("three work.lua cell-0.01-2 LR=0.01 SEED=2"),
        "ls says each VM's experiment and spec: {table}"
    );

    let out = bioxen_in(&dir, &["up", "-d", file]);
    assert!(
        said(&out).contains("three: already running:"),
        "{}",
        said(&out)
    );
    assert!(
        !said(&out).contains("started"),
        "a second up starts nothing: {}",
        said(&out)
    );

    let out = bioxen_in(&dir, &["down", file]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("three: ended loader"), "{}", said(&out));
    // `ls` reads the server's registry entry, which follows the list a moment later.
    let listed = || -> serde_json::Value {
        serde_json::from_slice(&bioxen_in(&dir, &["ls", "--json"]).stdout).unwrap()
    };
    assert!(
        eventually(WAIT, || listed() == serde_json::json!([])).await,
        "down forgets the experiment's VMs: {}",
        listed()
    );
}
