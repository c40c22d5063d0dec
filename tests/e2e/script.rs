//! Driving VMs from the shell and from the side: `bioxen send`, `wait` and `capture`
//! run an interactive session from a shell script; `bioxen attach -r` looks without
//! touching; a search finds what any VM printed.

use crate::common;

use std::path::Path;

use bioxen::VmKind;
use bioxen::client::Client;
use bioxen::protocol::{CreateOptions, SearchQuery};
use common::cli_dir::{KillServer, ready_vm, said, server_in, socket_in, workdir};
use common::sshd::Sshd;
use common::tmux::Tmux;
use common::{WAIT, bioxen_exe};

/// Runs a shell script with `$bioxen` the bioxen command of the test's directory.
fn shell(dir: &Path, script: &str) -> std::process::Output {
    let bioxen = format!(
        "{} --config {}",
        bioxen_exe().display(),
        dir.join("bioxen.toml").display()
    );
    std::process::Command::new("sh")
        .args(["-ec", script])
        .env("bioxen", bioxen)
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .current_dir(dir)
        .output()
        .unwrap()
}

/// What a user would write to run a step of an interactive session from a script.
const SESSION: &str = r#"
$bioxen send calc 'x = 6 * 7' --enter
$bioxen wait calc idle --timeout 30
$bioxen send calc 'print(x)' --enter
$bioxen wait calc '^42$' --timeout 30
$bioxen capture calc | grep -x 42
$bioxen capture -S -1000 calc | grep -c 'x = 6 \* 7'
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_script_drives_a_local_vm_with_send_wait_and_capture() {
    let dir = workdir("script-local", "");
    let _server = KillServer(dir.clone());
    let client = server_in(&dir).await;
    ready_vm(&client, "calc", VmKind::Local, CreateOptions::default()).await;
    let out = shell(&dir, SESSION);
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_script_drives_a_pool_vm_with_send_wait_and_capture() {
    let sshd = Sshd::start("script-pool");
    let (sim, pool) = common::sshd::pool_with_guests_at(&sshd).await;
    let dir = workdir("script-pool", &pool);
    let _server = KillServer(dir.clone());
    let client = server_in(&dir).await;
    let vm = ready_vm(&client, "calc", VmKind::Xcpng, CreateOptions::default()).await;
    let out = shell(&dir, SESSION);
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n1\n");
    client.terminate_vm_session(vm).await.unwrap();
    drop(sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_says_when_a_vm_ends_before_its_match_or_time_runs_out() {
    let dir = workdir("script-wait", "");
    let _server = KillServer(dir.clone());
    let client = server_in(&dir).await;
    ready_vm(&client, "short", VmKind::Local, CreateOptions::default()).await;
    let out = shell(&dir, "$bioxen wait short 'never printed' --timeout 0.3");
    assert!(!out.status.success());
    assert!(said(&out).contains("timed out"), "{}", said(&out));
    let out = shell(
        &dir,
        "$bioxen send short 'os.exit(3)' --enter\n$bioxen wait short 'never printed'",
    );
    assert!(!out.status.success());
    assert!(said(&out).contains("ended (exited(3))"), "{}", said(&out));
    let out = shell(&dir, "$bioxen wait short exited --timeout 5");
    assert!(out.status.success(), "{}", said(&out));
}

/// A read-only client sees every VM and changes none: the server refuses it input and
/// sizes, whoever sends them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_client_is_refused_everything_that_changes_a_vm() {
    let dir = workdir("script-ro-server", "");
    let _server = KillServer(dir.clone());
    let client = server_in(&dir).await;
    let vm = ready_vm(&client, "seen", VmKind::Local, CreateOptions::default()).await;
    let ro = Client::connect_read_only(&socket_in(&dir), "test")
        .await
        .unwrap();
    assert_eq!(ro.list().await.unwrap()[0].name, "seen");
    assert!(ro.capture(vm, None, false).await.unwrap().contains('>'));
    for refused in [
        ro.send_input(vm, "os.exit(1)\r").await,
        ro.resize(vm, 10, 20).await,
        ro.kill(vm).await.map(|_| ()),
    ] {
        let e = refused.unwrap_err().to_string();
        assert!(e.contains("read-only"), "{e}");
    }
    let size = client
        .execute_string(vm, "print(io.popen('stty size'):read('l'))", WAIT)
        .await
        .unwrap();
    assert_eq!(size.output, "24 80\n", "the size is the VM's own");
}

/// `bioxen attach -r` in a terminal of another size: the status bar says READ-ONLY,
/// typing reaches no VM, and the VM keeps its size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_read_only_types_nothing_and_sizes_nothing() {
    let t = Tmux::start("attach-ro", 100, 30, "sleep 600");
    // The server the dashboards here would use: same directories as `t.bioxen`.
    let out = t.bioxen(&["server"]);
    assert!(out.status.success(), "{}", said(&out));
    let client = Client::connect(&t.server_socket(), "test").await.unwrap();
    let vm = ready_vm(&client, "watched", VmKind::Local, CreateOptions::default()).await;
    client.resize(vm, 20, 70).await.unwrap();

    t.restart(&format!("{} attach -r watched", bioxen_exe().display()));
    t.wait_for("the read-only dashboard", |s| {
        s.contains("READ-ONLY") && s.contains("watched")
    });
    t.type_text("print('typed' .. 'here')");
    t.keys(&["Enter"]);
    t.wait_text("keys go to no VM");
    let size = client
        .execute_string(vm, "print(io.popen('stty size'):read('l'))", WAIT)
        .await
        .unwrap();
    assert_eq!(
        size.output, "20 70\n",
        "a read-only dashboard sizes nothing"
    );
    let screen = client.screen_text(vm).await.unwrap();
    assert!(!screen.contains("typedhere"), "{screen}");
    client.terminate_vm_session(vm).await.unwrap();
}

/// The server searches every VM's history and screen as lines: a marker that a soft
/// wrap split in two is found, with where it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_finds_a_marker_in_any_vm_even_across_a_soft_wrap() {
    let dir = workdir("script-search", "");
    let _server = KillServer(dir.clone());
    let client = server_in(&dir).await;
    let mut vms = Vec::new();
    for name in ["one", "two", "three"] {
        let vm = ready_vm(&client, name, VmKind::Local, CreateOptions::default()).await;
        vms.push(vm);
    }
    client
        .execute_string(vms[0], "for i = 1, 300 do print('noise ' .. i) end", WAIT)
        .await
        .unwrap();
    // 76 x's, then the marker: the 80-column terminal wraps it after "NaN-".
    client
        .execute_string(vms[2], "print(('x'):rep(76) .. 'NaN-FIRST-HERE')", WAIT)
        .await
        .unwrap();
    let query = SearchQuery {
        text: "nan-first".into(),
        regex: false,
        limit: 100,
    };
    let found = client.search(query).await.unwrap();
    let hits: Vec<_> = found
        .iter()
        .filter(|m| m.text.contains("NaN-FIRST-HERE") && !m.text.contains("print"))
        .collect();
    assert_eq!(hits.len(), 1, "{found:#?}");
    let hit = hits[0];
    assert_eq!((hit.vm, hit.name.as_str()), (vms[2], "three"));
    assert_eq!((hit.start, hit.len), (76, 9), "the match, across the wrap");
    let regex = SearchQuery {
        text: "^noise 29[0-9]$".into(),
        regex: true,
        limit: 100,
    };
    let found = client.search(regex).await.unwrap();
    assert_eq!(found.len(), 10, "{found:#?}");
    assert!(found.iter().all(|m| m.name == "one"), "{found:#?}");
    // Lines further up are further back.
    assert!(
        found.windows(2).all(|w| w[0].back > w[1].back),
        "{found:#?}"
    );
}

/// Output older than a VM's scrollback is searched in its log, and what the scrollback
/// still holds is found once, not again in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_reaches_past_the_scrollback_into_the_log() {
    let dir = workdir("script-search-log", "scrollback = 100\n");
    let _server = KillServer(dir.clone());
    let client = server_in(&dir).await;
    let vm = ready_vm(&client, "long", VmKind::Local, CreateOptions::default()).await;
    let code = "print('OLD' .. '-MARK') for i = 1, 500 do print('line ' .. i) end";
    client.execute_string(vm, code, WAIT).await.unwrap();
    let search = |text: &str| {
        let query = SearchQuery {
            text: text.into(),
            regex: false,
            limit: 100,
        };
        client.search(query)
    };
    // The log is written a moment after the output: wait for the old line there.
    let deadline = tokio::time::Instant::now() + WAIT;
    let old = loop {
        let old = search("old-mark").await.unwrap();
        if !old.is_empty() || tokio::time::Instant::now() > deadline {
            break old;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(old.len(), 1, "{old:#?}");
    assert!(old[0].logged_ms.is_some(), "from the log: {old:#?}");
    let recent = search("line 450").await.unwrap();
    assert_eq!(recent.len(), 1, "once, from the scrollback: {recent:#?}");
    assert!(recent[0].logged_ms.is_none());
}
