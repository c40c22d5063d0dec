//! Helpers shared by the integration tests: a manager that runs this build's `bioxen
//! lua`, checks for the real peers the tests need, and process inspection.
#![allow(dead_code)]

pub mod cli_dir;
pub mod rocks;
pub mod sshd;
pub mod tmux;

use std::path::PathBuf;
use std::time::Duration;

use bioxen::config::Config;
use bioxen::{Manager, ManagerConfig};

/// Generous: CI is a 2-core machine that may be compiling at the same time.
pub const WAIT: Duration = Duration::from_secs(30);

pub fn bioxen_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bioxen"))
}

pub fn manager_config() -> ManagerConfig {
    let mut config = ManagerConfig::from_config(&Config::default()).expect("default config");
    config.self_exe = bioxen_exe();
    config.logs.dir = std::env::temp_dir().join(format!("bioxen-test-logs-{}", std::process::id()));
    config
}

pub fn manager() -> Manager {
    Manager::new(manager_config())
}

/// A `PATH` with every program of /usr/bin but `missing`, through links in `dir`:
/// a host without dtach, say.
pub fn path_without(dir: &std::path::Path, missing: &[&str]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir("/usr/bin").unwrap().flatten() {
        let file = entry.file_name();
        if !missing.iter().any(|m| file == *m) {
            let _ = std::os::unix::fs::symlink(entry.path(), dir.join(&file));
        }
    }
    format!("{}:/usr/sbin:/sbin", dir.display())
}

/// Fails the test with the command to install `program` when it is missing: a peer
/// that is not there is a failure, never a skip.
pub fn require_program(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "this test needs `{program}`: install it with `apt-get install -y {package}` \
         (or run the README's test command as root, which installs it)"
    );
}

/// Whether any process is still in process group `pgid` (the VM and its children).
pub fn process_group_alive(pgid: u32) -> bool {
    group_members(pgid) > 0
}

/// How many live (not zombie) processes are in process group `pgid`.
pub fn group_members(pgid: u32) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter(|entry| {
            let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
                return false;
            };
            let Some(close) = text.rfind(')') else {
                return false;
            };
            let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
            // fields[0] = state, fields[2] = pgrp; zombies are gone for our purposes.
            fields.first() != Some(&"Z") && fields.get(2) == Some(&pgid.to_string().as_str())
        })
        .count()
}

/// A local VM made with `options`, at its first prompt.
pub async fn ready_local_vm(m: &Manager, options: bioxen::VmOptions) -> bioxen::VmId {
    let id = m
        .create_interactive_vm(None, bioxen::VmKind::Local, options)
        .await
        .unwrap();
    m.wait_ready(&id, WAIT).await.unwrap();
    id
}

/// A loopback port nothing listens on (now): for a server to start on, or for a
/// connection that must be refused.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `cond` until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The number a dashboard test gives the VM it calls `name`: the same name gives the
/// same number, as the server's would stay the same while the session lives.
pub fn vm_id(name: &str) -> bioxen::VmId {
    // FNV-1a: stable across runs, unlike the standard library's hasher.
    let hash = name.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    bioxen::lock(&NAMED).insert(hash, name.to_string());
    bioxen::VmId(hash)
}

/// The names [`vm_id`] has numbered, for tests that read the numbers back.
static NAMED: std::sync::Mutex<std::collections::BTreeMap<u64, String>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// The name [`vm_id`] numbered `vm`, or `vm` itself, for a request's or an event's VM.
pub fn vm_name(vm: &bioxen::VmRef) -> String {
    match vm {
        bioxen::VmRef::Id(id) => bioxen::lock(&NAMED)
            .get(&id.0)
            .cloned()
            .unwrap_or_else(|| id.to_string()),
        bioxen::VmRef::Name(name) => name.clone(),
    }
}

/// A row of the VM list as the server sends it: a local VM with nothing reported
/// beyond its state and pid. Tests set what they look at on top.
pub fn vm_info(name: &str, state: bioxen::VmState, pid: Option<u32>) -> bioxen::VmInfo {
    bioxen::VmInfo {
        vm: vm_id(name),
        name: name.into(),
        kind: bioxen::VmKind::Local,
        state,
        command: "bioxen lua".into(),
        pid,
        cpu_percent: None,
        rss_bytes: None,
        uptime_secs: 0,
        attached: false,
        created_unix: 0,
        remote: None,
        pool_vm: None,
        pool: None,
        busy: None,
        progress: None,
        progress_seq: 0,
        progress_age_ms: 0,
        status: None,
        silence_secs: 0,
        experiment: None,
        recent_cpu: Vec::new(),
    }
}

/// The seeds' interactive flow on any kind: state set by one `execute_string` is seen
/// by the next, and its output is exactly the code's.
pub async fn shares_state_between_calls(
    m: &Manager,
    id: impl Into<bioxen::VmRef> + Copy + std::fmt::Display,
) {
    let r = m.execute_string(id, "y = 42", WAIT).await.unwrap();
    assert_eq!((r.output.as_str(), r.ok()), ("", true), "{r:?}");
    let r = m.execute_string(id, "print(y)", WAIT).await.unwrap();
    assert_eq!(r.output, "42\n", "{id}: the second call sees the first's y");
}

/// Ends a process this test started (by pid, with SIGTERM) when the test ends,
/// however it ends.
pub struct KillOnDrop(pub u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) of a process this test started; it may already be gone.
        unsafe { libc::kill(self.0 as i32, libc::SIGTERM) };
    }
}

/// The list row of the VM a dashboard test calls `name`.
pub fn row(name: &str) -> bioxen::ui::app::RowId {
    bioxen::ui::app::RowId::Vm(vm_id(name))
}

/// The VM a dashboard test calls `name`, as the dashboard's calls name it.
pub fn target(name: &str) -> bioxen::ui::effect::Target {
    bioxen::ui::effect::Target {
        vm: vm_id(name),
        name: name.into(),
    }
}
