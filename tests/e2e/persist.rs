//! Nothing is lost: a server killed with SIGKILL or stopped by a signal comes back with
//! its VMs (rerun, or waiting to be), their scrollback from their logs, and remote
//! interpreters with their Lua state; logs rotate and read back across the rotation;
//! a full log disk stops the log, not the VM.

use crate::common;

use std::path::{Path, PathBuf};

use bioxen::VmKind;
use bioxen::VmState;
use bioxen::client::Client;
use bioxen::protocol::CreateOptions;
use common::cli_dir::{KillServer, bioxen_in, ready_vm, said, server_in, socket_in, workdir};
use common::sshd::Sshd;
use common::{WAIT, eventually};
use serde_json::Value;

const MARKER: &str = "── server restarted";

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// Whether process `pid` has ended (a zombie has: only its status is left). Its main
/// thread shows as a zombie while the others are still exiting, and the files they
/// share (the journal's lock among them) are closed only when the last one is gone:
/// so every thread must be.
fn ended(pid: u32) -> bool {
    let zombie = |stat: &str| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).map_or(true, |stat| zombie(&stat))
    })
}

/// Whether the journals under `dir`'s state hold every VM named in `names`.
fn journaled(dir: &Path, names: &[String]) -> bool {
    fn journals(at: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(at).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                journals(&path, out);
            } else if path.file_name().is_some_and(|n| n == "journal.json") {
                out.extend(std::fs::read_to_string(&path));
            }
        }
    }
    let mut texts = Vec::new();
    journals(&dir.join("state"), &mut texts);
    let held: Vec<String> = texts
        .iter()
        .filter_map(|t| serde_json::from_str::<Value>(t).ok())
        .flat_map(|j| j["vms"].as_array().cloned().unwrap_or_default())
        .filter_map(|vm| vm["name"].as_str().map(str::to_string))
        .collect();
    names.iter().all(|n| held.contains(n))
}

/// Kills the server behind `client` with SIGKILL and waits until it is gone, once
/// its journal (written off the async workers, so later on a loaded machine) holds
/// the VMs it lists: what the test then finds is the kill's doing.
async fn kill_9(dir: &Path, client: Client) {
    let names: Vec<String> = client
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert!(
        eventually(WAIT, || journaled(dir, &names)).await,
        "the journal never held {names:?}"
    );
    let pid = client.server_pid;
    drop(client);
    // SAFETY: kill(2) of the server this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    assert!(
        eventually(WAIT, || ended(pid)).await,
        "the server {pid} did not end"
    );
}

fn ls(dir: &Path) -> Vec<Value> {
    let out = bioxen_in(dir, &["ls", "--json"]);
    assert!(out.status.success(), "{}", said(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn row<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {rows:#?}"))
}

fn pid_of(list: &[bioxen::VmInfo], name: &str) -> Option<u32> {
    list.iter().find(|v| v.name == name).and_then(|v| v.pid)
}

fn state_of(list: &[bioxen::VmInfo], name: &str) -> VmState {
    list.iter().find(|v| v.name == name).unwrap().state.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_comes_back_with_its_vms_rerun_or_waiting() {
    let dir = workdir("persist-killed", "");
    write(&dir, "hello.lua", "print('hello from ' .. arg[1])\n");
    let file = write(
        &dir,
        "pair.toml",
        "[[vm]]\nname = \"again\"\nscript = \"hello.lua\"\nargs = [\"again\"]\nrestore = \"rerun\"\n\n\
         [[vm]]\nname = \"waits\"\nscript = \"hello.lua\"\nargs = [\"waits\"]\nrestore = \"ask\"\n",
    );
    let file = file.to_str().unwrap();
    let _server = KillServer(dir.clone());
    let out = bioxen_in(&dir, &["up", "-d", file]);
    assert!(out.status.success(), "{}", said(&out));
    let client = Client::connect(&socket_in(&dir), "test").await.unwrap();
    for vm in ["again", "waits"] {
        client.wait_ready(vm, WAIT).await.unwrap();
    }
    let typed = client
        .execute_string("waits", "print('typed ' .. 6 * 7)", WAIT)
        .await
        .unwrap();
    assert_eq!(typed.output, "typed 42\n");
    let first_pid = pid_of(&client.list().await.unwrap(), "again").unwrap();
    // The log is written just after the output: what a kill leaves is what reached it.
    for (vm, text) in [("again", "hello from again"), ("waits", "typed 42")] {
        let logged = eventually(WAIT, || {
            said(&bioxen_in(&dir, &["logs", vm])).contains(text)
        });
        assert!(logged.await, "{vm}'s log never had {text:?}");
    }
    kill_9(&dir, client).await;

    // With no server, `ls` reads what the gone server wrote down.
    let rows = ls(&dir);
    for vm in ["again", "waits"] {
        assert_eq!(row(&rows, vm)["state"], "lost", "{rows:#?}");
        let why = row(&rows, vm)["detail"].as_str().unwrap();
        assert!(why.starts_with("server killed; last heard "), "{why}");
    }

    let client = server_in(&dir).await;
    client.wait_ready("again", WAIT).await.unwrap();
    let list = client.list().await.unwrap();
    assert_ne!(pid_of(&list, "again"), Some(first_pid), "a new life");
    assert!(
        matches!(state_of(&list, "waits"), VmState::Lost(ref why) if why.starts_with("server killed")),
        "{list:#?}"
    );
    // Both show their old scrollback above the marker, and say what comes next.
    for vm in ["again", "waits"] {
        let text = client.screen_text(vm).await.unwrap();
        let at = text
            .find(MARKER)
            .unwrap_or_else(|| panic!("no marker: {text}"));
        assert!(text[..at].contains(&format!("hello from {vm}")), "{text}");
    }
    let again = client.screen_text("again").await.unwrap();
    let after = &again[again.find(MARKER).unwrap()..];
    assert!(after.contains("hello from again"), "{again}");
    let waits = client.screen_text("waits").await.unwrap();
    assert!(waits.contains("typed 42"), "{waits}");
    assert!(waits.contains("r starts it again"), "{waits}");

    // `up` is the answer an `ask` VM waits for; then each log holds both lives.
    let out = bioxen_in(&dir, &["up", "-d", file]);
    assert!(said(&out).contains("started: waits"), "{}", said(&out));
    client.wait_ready("waits", WAIT).await.unwrap();
    for vm in ["again", "waits"] {
        let hello = format!("hello from {vm}");
        let lives = |text: &str| {
            let at = text.find(MARKER);
            at.is_some_and(|at| text[..at].contains(&hello) && text[at..].contains(&hello))
        };
        let mut logs = String::new();
        let both = eventually(WAIT, || {
            logs = said(&bioxen_in(&dir, &["logs", vm]));
            lives(&logs)
        })
        .await;
        assert!(both, "{vm}'s log does not hold both lives:\n{logs}");
    }
    let stamped = said(&bioxen_in(&dir, &["logs", "-t", "-n", "1", "waits"]));
    assert!(
        stamped.starts_with("20") && stamped.lines().count() == 1,
        "{stamped}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_by_a_signal_leaves_its_vms_to_the_next() {
    let dir = workdir("persist-sigterm", "");
    let _server = KillServer(dir.clone());
    let client = server_in(&dir).await;
    let vm = ready_vm(&client, "kept", VmKind::Local, CreateOptions::default()).await;
    let pid = client.server_pid;
    // SAFETY: kill(2) of the server this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    drop(client);
    assert!(eventually(WAIT, || ended(pid)).await);
    let rows = ls(&dir);
    let why = row(&rows, "kept")["detail"].as_str().unwrap().to_string();
    assert!(why.ends_with(": it received SIGTERM"), "{why}");

    // The next server gives it its number back and goes on counting from there.
    let client = server_in(&dir).await;
    let list = client.list().await.unwrap();
    assert_eq!(list[0].vm, vm);
    let new = client
        .create_interactive_vm(Some("new"), VmKind::Local, CreateOptions::default())
        .await
        .unwrap();
    assert!(
        new.0 > vm.0,
        "a number is never given twice: {new:?} after {vm:?}"
    );
    // `kill-server` ends and forgets them: the server after that starts empty.
    let pid = client.server_pid;
    drop(client);
    let out = bioxen_in(&dir, &["kill-server"]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(eventually(WAIT, || ended(pid)).await);
    let rows = ls(&dir);
    assert!(rows.iter().all(|r| r["name"] != "kept"), "{rows:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_interpreter_held_by_dtach_survives_a_killed_server() {
    common::require_program("dtach", "dtach");
    let sshd = Sshd::start("persist-dtach");
    held_interpreter_survives_a_killed_server(&sshd, "dtach", "dtach").await;
}

/// On a host without dtach, bioxen's own holder runs on the host's python3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_interpreter_held_by_python_survives_a_killed_server() {
    common::require_program("python3", "python3");
    let sshd = Sshd::start_without("persist-python", &["dtach"]);
    held_interpreter_survives_a_killed_server(&sshd, "python", "bioxen's python3 holder").await;
}

async fn held_interpreter_survives_a_killed_server(sshd: &Sshd, name: &str, holder: &str) {
    let host = sshd.host_entry("lab", &sshd.known_hosts, "lua5.4 -i");
    let dir = workdir(&format!("persist-held-{name}"), &host);
    let _server = KillServer(dir.clone());
    let client = server_in(&dir).await;
    let options = CreateOptions {
        host: Some("lab".into()),
        ..CreateOptions::default()
    };
    let vm = ready_vm(&client, "held", VmKind::Ssh, options).await;
    let set = client.execute_string(vm, "x = 42", WAIT).await.unwrap();
    assert!(set.ok(), "{set:?}");
    // The log is written just after the output: what a kill leaves is what reached it.
    let runs_under = format!("runs under {holder} on 127.0.0.1");
    let logged = eventually(WAIT, || {
        said(&bioxen_in(&dir, &["logs", "held"])).contains(&runs_under)
    });
    assert!(logged.await, "the log never said {runs_under:?}");
    kill_9(&dir, client).await;

    let client = server_in(&dir).await;
    client.wait_ready(vm, WAIT).await.unwrap();
    let x = client.execute_string(vm, "print(x)", WAIT).await.unwrap();
    assert_eq!(x.output, "42\n", "the same interpreter, with its globals");
    // The interpreter's redraw clears the screen: the log keeps what was said, a
    // moment after it was said.
    let attached = format!("attached to the interpreter {holder} kept");
    let logged = eventually(WAIT, || {
        let logs = said(&bioxen_in(&dir, &["logs", "held"]));
        logs.contains(&runs_under) && logs.contains(&attached)
    });
    assert!(
        logged.await,
        "{}",
        said(&bioxen_in(&dir, &["logs", "held"]))
    );
    // Ending the VM ends the interpreter its holder kept.
    client.kill(vm).await.unwrap();
    let gone = eventually(WAIT, || {
        let out = std::process::Command::new("pgrep")
            .args(["-f", &format!("{}/.*bioxen-held-", sshd.dir.display())])
            .output()
            .unwrap();
        out.stdout.is_empty()
    })
    .await;
    assert!(gone, "the held interpreter outlived its VM");
}

/// A pool VM is found again by the reference the journal kept, its address asked of
/// the pool, and its held interpreter attached to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_vm_is_found_again_by_its_reference_after_a_killed_server() {
    common::require_program("dtach", "dtach");
    let sshd = Sshd::start("persist-pool");
    let (sim, pool) = common::sshd::pool_with_guests_at(&sshd).await;
    let dir = workdir("persist-pool", &pool);
    let _server = KillServer(dir.clone());
    let client = server_in(&dir).await;
    let vm = ready_vm(&client, "onpool", VmKind::Xcpng, CreateOptions::default()).await;
    let reference = client.list().await.unwrap()[0].pool_vm.clone().unwrap();
    client.execute_string(vm, "y = 'kept'", WAIT).await.unwrap();
    kill_9(&dir, client).await;
    let rows = ls(&dir);
    assert_eq!(row(&rows, "onpool")["state"], "lost", "{rows:#?}");

    let client = server_in(&dir).await;
    client.wait_ready(vm, WAIT).await.unwrap();
    let list = client.list().await.unwrap();
    assert_eq!(list[0].pool_vm.as_deref(), Some(reference.as_str()));
    let y = client.execute_string(vm, "print(y)", WAIT).await.unwrap();
    assert_eq!(y.output, "kept\n");
    let logs = said(&bioxen_in(&dir, &["logs", "onpool"]));
    assert!(
        logs.contains("asking the pool for the VM's address"),
        "{logs}"
    );
    client.terminate_vm_session(vm).await.unwrap();
    drop(sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_rotates_at_its_limit_and_reads_back_across_the_rotation() {
    let dir = workdir("persist-rotate", "[logs]\nmax_mib = 1\nkeep = 2\n");
    let _server = KillServer(dir.clone());
    let client = server_in(&dir).await;
    let vm = ready_vm(&client, "flood", VmKind::Local, CreateOptions::default()).await;
    // 30,000 lines of 61 bytes: 1.8 MiB, so one rotation at 1 MiB.
    let flood = "for i = 1, 30000 do print(string.format('line %05d %s', i, ('x'):rep(50))) end";
    client.execute_string(vm, flood, WAIT).await.unwrap();
    let logs = dir.join("logs/logs");
    let rotated = eventually(WAIT, || {
        std::fs::read_dir(&logs)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join(format!("{}.log.1", vm.0)).exists())
    })
    .await;
    assert!(rotated, "no rotated log in {}", logs.display());
    let mut text = String::new();
    let whole = eventually(WAIT, || {
        text = said(&bioxen_in(&dir, &["logs", "flood"]));
        text.contains("line 30000")
    })
    .await;
    assert!(
        whole,
        "the log's end never came: {}",
        &text[text.len().saturating_sub(300)..]
    );
    let numbered = text.lines().filter(|l| l.starts_with("line ")).count();
    assert_eq!(numbered, 30_000, "every line, across the rotation");
    let last = said(&bioxen_in(&dir, &["logs", "-n", "2", "flood"]));
    assert_eq!(
        last.lines().next(),
        Some(&*format!("line 30000 {}", "x".repeat(50)))
    );
}

/// Whether a server could take the lock beside `socket` now.
fn lock_is_free(socket: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let path = socket.with_extension("sock.lock");
    let Ok(file) = std::fs::File::open(&path) else {
        return true;
    };
    // SAFETY: flock on an fd this test owns; no memory is touched.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// A file of `age_days` days, as a log left by a VM long gone would be.
fn aged(path: &Path, age_days: u64) {
    std::fs::write(path, b"old output\r\n").unwrap();
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(age_days * 86_400);
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(when).unwrap();
}

/// The logs of VMs the server no longer has go once untouched for `keep_days`, each
/// whole; a recent one stays. A server whose journal is gone numbers new VMs past
/// every log on disk, so that none appends to an old VM's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_logs_of_gone_vms_are_pruned_and_no_new_vm_takes_a_logs_number() {
    let dir = workdir("persist-prune", "[logs]\nkeep_days = 30\n");
    let _server = KillServer(dir.clone());
    let client = server_in(&dir).await;
    let first = ready_vm(&client, "first", VmKind::Local, CreateOptions::default()).await;
    drop(client);
    let out = bioxen_in(&dir, &["kill-server"]);
    assert!(out.status.success(), "{}", said(&out));
    // kill-server returns once the server let go: a server started now finds the
    // socket free, and the journal removed below is not written again.
    assert!(
        lock_is_free(&socket_in(&dir)),
        "kill-server returned while the server still held its socket"
    );
    let folders: Vec<PathBuf> = std::fs::read_dir(dir.join("logs/logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let [folder] = &folders[..] else {
        panic!("one server, one folder of logs: {folders:?}")
    };
    assert!(folder.join(format!("{}.log", first.0)).exists());
    for name in ["57.log", "57.log.1", "57.idx", "57.json", "58.json"] {
        aged(&folder.join(name), 40);
    }
    aged(&folder.join("58.log"), 1);
    // The journal is lost: only the logs say which numbers were used.
    std::fs::remove_dir_all(dir.join("state")).unwrap();

    let client = server_in(&dir).await;
    let pruned = eventually(WAIT, || !folder.join("57.log").exists()).await;
    assert!(pruned, "a 40-day-old log of a gone VM is still there");
    for gone in ["57.log.1", "57.idx", "57.json"] {
        assert!(!folder.join(gone).exists(), "{gone} outlived its log");
    }
    for kept in ["58.log", "58.json", &format!("{}.log", first.0)] {
        assert!(folder.join(kept).exists(), "{kept} was written to lately");
    }
    let next = ready_vm(&client, "next", VmKind::Local, CreateOptions::default()).await;
    assert!(
        next.0 > 58,
        "the new VM took number {}, which a log on disk has",
        next.0
    );
}

/// Unmounts a test's tmpfs however the test ends (lazily: the server may still hold
/// files there).
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_log_disk_stops_the_log_and_the_vm_goes_on() {
    let dir = std::env::temp_dir().join(format!("bioxen-persist-full-{}", std::process::id()));
    let full = dir.join("full");
    let _ = std::fs::create_dir_all(&full);
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
        .arg(&full)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        mounted,
        "this test mounts a 1 MiB tmpfs as the log disk, which needs root (the test \
         command runs as root in CI)"
    );
    let _unmount = Unmount(full.clone());
    let dir = workdir(
        "persist-full",
        &format!("[logs]\ndir = \"{}\"\n", full.display()),
    );
    let _server = KillServer(dir.clone());
    let client = server_in(&dir).await;
    let mut updates = client.updates();
    client.subscribe().await.unwrap();
    let vm = ready_vm(&client, "full", VmKind::Local, CreateOptions::default()).await;
    let flood = "for i = 1, 40000 do print(string.format('line %05d %s', i, ('x'):rep(50))) end";
    client.execute_string(vm, flood, WAIT).await.unwrap();
    let said_so = tokio::time::timeout(WAIT, async {
        while let Some(update) = updates.recv().await {
            let text = format!("{update:?}");
            if text.contains("the output log stopped") {
                return text;
            }
        }
        String::new()
    })
    .await
    .unwrap_or_default();
    assert!(said_so.contains("No space left"), "{said_so}");
    let after = client
        .execute_string(vm, "print(6 * 7)", WAIT)
        .await
        .unwrap();
    assert_eq!(after.output, "42\n", "the VM goes on");
}
