//! Remote VMs against a real OpenSSH server on loopback, and `xcpng` VMs created on
//! the XAPI simulator whose guest IP is that same server.

use crate::common;

use std::path::Path;
use std::time::Duration;

use bioxen::config::Config;
use bioxen::sim::{SimOptions, SimServer};
use bioxen::vm::ssh::{SshAnswer, SshError, SshQuestion, Trust};
use bioxen::{Error, Manager, ManagerConfig, Size, VmKind, VmOptions, VmState};
use common::sshd::Sshd;
use common::{WAIT, eventually};

fn manager_for(config_text: &str, trust: Trust) -> Manager {
    let config = Config::parse(config_text, Path::new("bioxen.toml")).unwrap();
    let mut mc = ManagerConfig::from_config(&config).unwrap();
    mc.self_exe = common::bioxen_exe();
    mc.trust = trust;
    Manager::new(mc)
}

/// Kills the server side of every connection, then waits until the session has
/// shown `reconnecting` and is running again.
async fn cut_the_link_and_wait_for_the_reconnect(m: &Manager, sshd: &Sshd) {
    let mut events = m.subscribe();
    sshd.drop_connections();
    let mut saw_reconnecting = false;
    let deadline = tokio::time::Instant::now() + WAIT;
    while let Ok(Ok(ev)) = tokio::time::timeout_at(deadline, events.recv()).await {
        match ev {
            bioxen::Event::State(_, VmState::Reconnecting(_)) => saw_reconnecting = true,
            bioxen::Event::State(_, VmState::Running) if saw_reconnecting => return,
            _ => {}
        }
    }
    panic!("the session never came back (reconnecting seen: {saw_reconnecting})");
}

fn ssh_options(host: &str) -> VmOptions {
    VmOptions {
        host: Some(host.into()),
        ..VmOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_kind_runs_lua_and_follows_window_changes() {
    let sshd = Sshd::start("basic");
    let m = manager_for(
        &sshd.host_entry("lab", &sshd.known_hosts, "lua5.4 -i"),
        Trust::default(),
    );
    let id = m
        .create_interactive_vm(Some("test_ssh"), VmKind::Ssh, ssh_options("lab"))
        .await
        .unwrap();
    m.send_input(id, "x = 42\n").unwrap();
    m.send_input(id, "print('Value:', x)\n").unwrap();
    let out = m.read_until(&id, "Value:\t42", WAIT).await.unwrap();
    assert!(out.contains("Value:\t42"), "{out:?}");
    let info = m.info(id).unwrap();
    assert_eq!(info.state, VmState::Running);
    assert_eq!(
        info.remote.as_deref(),
        Some(format!("{}@127.0.0.1:{}", sshd.user, sshd.port).as_str())
    );

    // The window size reaches the remote PTY.
    m.resize(id, Size::new(30, 100)).unwrap();
    m.send_input(id, "print('size=' .. io.popen('stty size'):read('l'))\n")
        .unwrap();
    m.read_until(&id, "size=30 100", WAIT).await.unwrap();

    // execute_string runs in the interpreter the user types into, as on a local VM:
    // it sees what was typed, and what it sets stays.
    m.wait_ready(&id, WAIT).await.unwrap();
    let r = m
        .execute_string(&id, "x, 6 * 7, 'from the REPL'", WAIT)
        .await
        .unwrap();
    assert_eq!(r.output, "42\t42\tfrom the REPL\n");
    common::shares_state_between_calls(&m, &id).await;
    let r = m
        .execute_string(&id, "error('remote boom')", WAIT)
        .await
        .unwrap();
    assert!(r.error.as_deref().unwrap().contains("remote boom"), "{r:?}");

    m.terminate_vm_session(&id).await.unwrap();
    assert!(
        eventually(WAIT, || sshd.connection_pids().is_empty()).await,
        "the SSH connection is closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_changed_host_keys_are_refused() {
    let sshd = Sshd::start("hostkeys");
    // Unknown: refused, with the fingerprint to check.
    let empty = sshd.dir.join("empty_known_hosts");
    let m = manager_for(
        &sshd.host_entry("lab", &empty, "lua5.4 -i"),
        Trust::default(),
    );
    let err = m
        .create_interactive_vm(Some("u"), VmKind::Ssh, ssh_options("lab"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Ssh { id, source: SshError::HostKey(_) } if id == "u"),
        "a refused host key is an SSH error a caller can match on: {err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&sshd.fingerprint), "{msg}");
    assert!(msg.contains("refusing"), "{msg}");
    assert!(!empty.exists() || std::fs::read_to_string(&empty).unwrap().is_empty());

    // Changed: refused, naming the known_hosts line.
    let wrong = sshd.dir.join("wrong_known_hosts");
    let other = sshd.dir.join("other_key");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut f = other_pub.split_whitespace();
    std::fs::write(
        &wrong,
        format!(
            "# a comment\n[127.0.0.1]:{} {} {}\n",
            sshd.port,
            f.next().unwrap(),
            f.next().unwrap()
        ),
    )
    .unwrap();
    let m = manager_for(
        &sshd.host_entry("lab", &wrong, "lua5.4 -i"),
        Trust::default(),
    );
    let err = m
        .create_interactive_vm(Some("c"), VmKind::Ssh, ssh_options("lab"))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("CHANGED") && msg.contains("line 2"), "{msg}");
    assert!(msg.contains(&sshd.fingerprint), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_host_key_is_asked_and_remembered() {
    let sshd = Sshd::start("ask");
    let fresh = sshd.dir.join("fresh_known_hosts");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let trust = Trust {
        prompt: Some(tx),
        accept_new: false,
    };
    let m = manager_for(&sshd.host_entry("lab", &fresh, "lua5.4 -i"), trust);
    let answering = tokio::spawn(async move {
        let prompt = rx.recv().await.unwrap();
        let question = prompt.question.clone();
        prompt.reply.send(SshAnswer::AcceptAndRemember).unwrap();
        question
    });
    let id = m
        .create_interactive_vm(Some("asked"), VmKind::Ssh, ssh_options("lab"))
        .await
        .unwrap();
    match answering.await.unwrap() {
        SshQuestion::UnknownHostKey {
            fingerprint, port, ..
        } => {
            assert_eq!(fingerprint, sshd.fingerprint);
            assert_eq!(port, sshd.port);
        }
        other => panic!("unexpected question {other:?}"),
    }
    let remembered = std::fs::read_to_string(&fresh).unwrap();
    assert!(
        remembered.contains(&format!("[127.0.0.1]:{}", sshd.port)),
        "{remembered}"
    );
    m.terminate_vm_session(&id).await.unwrap();
    // Next time it is known: no question.
    let m = manager_for(
        &sshd.host_entry("lab", &fresh, "lua5.4 -i"),
        Trust::default(),
    );
    let id = m
        .create_interactive_vm(Some("known"), VmKind::Ssh, ssh_options("lab"))
        .await
        .unwrap();
    m.terminate_vm_session(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_link_reconnects_with_a_new_interpreter() {
    let mut sshd = Sshd::start("reconnect");
    // No holder: the state goes with the link, and bioxen says so.
    let m = manager_for(
        &format!(
            "{}hold = false\n",
            sshd.host_entry("lab", &sshd.known_hosts, "lua5.4 -i")
        ),
        Trust::default(),
    );
    let id = m
        .create_interactive_vm(Some("flaky"), VmKind::Ssh, ssh_options("lab"))
        .await
        .unwrap();
    m.send_input(id, "x = 42\n").unwrap();
    m.send_input(id, "print('before', x)\n").unwrap();
    m.read_until(&id, "before\t42", WAIT).await.unwrap();

    cut_the_link_and_wait_for_the_reconnect(&m, &sshd).await;
    assert_eq!(m.info(id).unwrap().state, VmState::Running);
    let out = m
        .read_until(&id, "previous interpreter state was lost", WAIT)
        .await
        .unwrap();
    assert!(out.contains("reconnected"), "{out}");
    m.send_input(id, "print('after', x)\n").unwrap();
    m.read_until(&id, "after\tnil", WAIT).await.unwrap();

    // The server goes away entirely and comes back.
    sshd.stop();
    assert!(
        eventually(
            WAIT,
            || matches!(m.info(id).unwrap().state, VmState::Reconnecting(n) if n >= 2)
        )
        .await
    );
    sshd.restart();
    assert!(
        eventually(Duration::from_secs(60), || m.info(id).unwrap().state
            == VmState::Running)
        .await
    );
    m.send_input(id, "print('back', 1 + 1)\n").unwrap();
    m.read_until(&id, "back\t2", WAIT).await.unwrap();

    // Killing the session stops the retries.
    sshd.stop();
    assert!(
        eventually(WAIT, || matches!(
            m.info(id).unwrap().state,
            VmState::Reconnecting(_)
        ))
        .await
    );
    let state = m.kill(&id).await.unwrap();
    assert!(!state.is_alive(), "{state:?}");
    assert!(matches!(
        m.send_input(id, "1\n"),
        Err(Error::Session { .. })
    ));
}

/// With dtach on the host, the interpreter outlives a dropped link: a loop that set
/// `x` goes on printing through the outage and after the reconnect, and `x` is still
/// there once it is interrupted. Ending the VM ends the held interpreter too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_interpreter_survives_a_dropped_link() {
    common::require_program("dtach", "dtach");
    let sshd = Sshd::start("held");
    let m = manager_for(
        &sshd.host_entry("lab", &sshd.known_hosts, "lua5.4 -i"),
        Trust::default(),
    );
    let id = m
        .create_interactive_vm(Some("held"), VmKind::Ssh, ssh_options("lab"))
        .await
        .unwrap();
    m.read_until(&id, "runs under dtach", WAIT).await.unwrap();
    m.wait_ready(&id, WAIT).await.unwrap();
    m.send_input(
        id,
        // os.execute's sleep takes the Ctrl-C below (the interpreter ignores SIGINT
        // while it waits, as system() does), and the loop stops when it fails.
        "x = 42 for i = 1, 100000 do print('tick', i) if not os.execute('sleep 0.05') then break end end\n",
    )
    .unwrap();
    m.read_until(&id, "tick\t5\r\n", WAIT).await.unwrap();
    let last_tick = |m: &Manager| -> u32 {
        m.with_screen(id, |s| s.text())
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("tick")?.trim().parse().ok())
            .max()
            .unwrap_or(0)
    };
    let before = last_tick(&m);

    cut_the_link_and_wait_for_the_reconnect(&m, &sshd).await;
    m.read_until(&id, "the same Lua session goes on", WAIT)
        .await
        .unwrap();
    // The loop never stopped: its count goes on past where it was.
    assert!(
        eventually(WAIT, || last_tick(&m) > before + 10).await,
        "the loop's output did not continue after the reconnect (last tick {})",
        last_tick(&m)
    );
    m.send_input(id, "\x03").unwrap();
    m.wait_ready(&id, WAIT).await.unwrap();
    m.send_input(id, "print('x is', x)\n").unwrap();
    m.read_until(&id, "x is\t42", WAIT).await.unwrap();

    // The interpreter's own exit status comes through dtach, and dtach's end message
    // does not show.
    m.send_input(id, "os.exit(3)\n").unwrap();
    assert!(
        eventually(WAIT, || m.info(id).unwrap().state == VmState::Exited(3)).await,
        "{:?}: {:?}",
        m.info(id).unwrap().state,
        m.read_output(id)
    );
    let screen = m.with_screen(id, |s| s.text()).unwrap();
    assert!(!screen.contains("dtach terminating"), "{screen}");

    // Ending a VM ends the interpreter dtach holds for it.
    let held_processes = |name: &str| {
        let out = std::process::Command::new("pgrep")
            .args(["-f", &format!("bioxen-{name}-")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    let id = m
        .create_interactive_vm(Some("ended"), VmKind::Ssh, ssh_options("lab"))
        .await
        .unwrap();
    m.wait_ready(&id, WAIT).await.unwrap();
    assert!(held_processes("ended") > 0, "dtach holds the interpreter");
    m.terminate_vm_session(&id).await.unwrap();
    assert!(
        eventually(WAIT, || held_processes("ended") == 0).await,
        "the held interpreter outlived its VM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xcpng_validation_flow() {
    let sshd = Sshd::start("xcpng");
    let sim = SimServer::start("127.0.0.1:0".parse().unwrap(), SimOptions::default(), false)
        .await
        .unwrap();
    let config = format!(
        "[xcpng]\nurl = \"{}\"\npassword = \"password\"\ntemplate = \"lua-bio-template\"\nmemory_mib = 256\nvcpus = 1\n\
         [xcpng.ssh]\nuser = \"{}\"\nport = {}\nidentity = \"{}\"\nknown_hosts = \"{}\"\ncommand = \"lua5.4 -i\"\n",
        sim.url,
        sshd.user,
        sshd.port,
        sshd.client_key.display(),
        sshd.known_hosts.display()
    );
    let m = manager_for(&config, Trust::default());
    let id = m
        .create_interactive_vm(Some("test_xcpng"), VmKind::Xcpng, VmOptions::default())
        .await
        .unwrap();
    assert_eq!(sim.sim.guest_vm_count(), 1);
    let info = m.info(id).unwrap();
    assert!(
        info.pool_vm.as_deref().unwrap().starts_with("OpaqueRef:"),
        "{info:?}"
    );
    m.send_input(id, "x = 42\n").unwrap();
    m.send_input(id, "print('Value:', x)\n").unwrap();
    let out = m.read_until(&id, "Value:\t42", WAIT).await.unwrap();
    assert!(
        out.contains("[bioxen] cloning"),
        "progress shows in the pane: {out}"
    );
    assert!(out.contains("[bioxen] waiting for an IP address"), "{out}");
    m.wait_ready(&id, WAIT).await.unwrap();
    common::shares_state_between_calls(&m, &id).await;
    m.terminate_vm_session(&id).await.unwrap();
    assert_eq!(sim.sim.guest_vm_count(), 0, "the VM is gone from the pool");
    assert!(
        eventually(WAIT, || sshd.connection_pids().is_empty()).await,
        "the SSH connection is closed"
    );
}

/// A pool VM whose guest never answers SSH: the pane counts the attempts and the time
/// left on one line, the failure says what to check, and the progress lines before it
/// are single-spaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_guest_counts_its_attempts_and_says_what_to_check() {
    let sshd = Sshd::start("xcpng-nossh");
    let sim = SimServer::start("127.0.0.1:0".parse().unwrap(), SimOptions::default(), false)
        .await
        .unwrap();
    // A port nothing listens on.
    let closed = common::free_port();
    let config = format!(
        "[xcpng]\nurl = \"{}\"\npassword = \"password\"\n\
         [xcpng.ssh]\nuser = \"{}\"\nport = {closed}\nidentity = \"{}\"\nknown_hosts = \"{}\"\nwait_secs = 3\n",
        sim.url,
        sshd.user,
        sshd.client_key.display(),
        sshd.known_hosts.display()
    );
    let m = manager_for(&config, Trust::default());
    let err = m
        .create_interactive_vm(Some("far"), VmKind::Xcpng, VmOptions::default())
        .await
        .unwrap_err()
        .to_string();
    for what in [
        "no SSH after",
        "[xcpng.ssh] port",
        &format!("({closed})"),
        "sshd",
        "firewall",
    ] {
        assert!(err.contains(what), "{what:?} missing from: {err}");
    }
    let screen = m.with_screen("far", |s| s.text()).unwrap();
    assert!(
        screen.contains("attempt ") && screen.contains(" s left"),
        "{screen}"
    );
    assert_eq!(
        screen.matches("waiting for sshd").count(),
        1,
        "the waiting line is replaced, not repeated:\n{screen}"
    );
    assert!(screen.contains("Connection refused"), "{screen}");
    let lines: Vec<&str> = screen.lines().collect();
    assert!(
        lines
            .windows(2)
            .all(|w| !(w[0].is_empty() && w[1].starts_with("[bioxen]"))),
        "no blank line between progress lines:\n{screen}"
    );
    assert!(matches!(m.info("far").unwrap().state, VmState::Failed(_)));
    // The pool VM it made stays until the user decides; terminating removes it.
    assert_eq!(sim.sim.guest_vm_count(), 1);
    m.terminate_vm_session("far").await.unwrap();
    assert_eq!(sim.sim.guest_vm_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_command_on_remote_kinds() {
    let sshd = Sshd::start("run");
    let sim = SimServer::start("127.0.0.1:0".parse().unwrap(), SimOptions::default(), false)
        .await
        .unwrap();
    let dir = sshd.dir.join("cfg");
    std::fs::create_dir_all(&dir).unwrap();
    let unknown = dir.join("known_hosts");
    let config = format!(
        "{}\n[xcpng]\nurl = \"{}\"\npassword_env = \"POOL_PW\"\n[xcpng.ssh]\nuser = \"{}\"\nport = {}\nidentity = \"{}\"\nknown_hosts = \"{}\"\n",
        sshd.host_entry("lab", &unknown, "lua5.4 -i"),
        sim.url,
        sshd.user,
        sshd.port,
        sshd.client_key.display(),
        sshd.known_hosts.display()
    );
    std::fs::write(dir.join("bioxen.toml"), config).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(common::bioxen_exe());
        cmd.args(args)
            .current_dir(&dir)
            .env("POOL_PW", "password")
            .env("XDG_RUNTIME_DIR", &dir);
        cmd.output()
    };
    // `bioxen run` on the ssh host `lab`, with `rest` after.
    let on_lab = |rest: &[&str]| {
        let mut args = vec!["run", "--kind", "ssh", "--host", "lab"];
        args.extend_from_slice(rest);
        run(&args)
    };
    // Unknown host key, nobody to ask: refused with the fingerprint.
    let out = on_lab(&["-e", "print('Value:', 6 * 7)"]).await.unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&sshd.fingerprint),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Told to accept it: runs, and remembers the key.
    let out = on_lab(&["--accept-new-host-key", "-e", "print('Value:', 6 * 7)"])
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Value:\t42\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read_to_string(&unknown)
            .unwrap()
            .contains(&format!("[127.0.0.1]:{}", sshd.port))
    );
    let out = on_lab(&["-e", "error('far away')"]).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("far away"));
    // A script is copied into a private directory on the host, which goes when the
    // run ends, even when --timeout stops it.
    std::fs::write(
        dir.join("slow.lua"),
        "print(os.getenv('PWD')) io.stdout:flush() os.execute('sleep 5')\n",
    )
    .unwrap();
    let out = on_lab(&["--timeout", "1", "slow.lua"]).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(124),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        copy.contains("bioxen-run."),
        "the script ran in its copy: {copy:?}"
    );
    assert!(
        !std::path::Path::new(&copy).exists(),
        "the copy {copy} is left on the host"
    );
    // xcpng: a VM is created for the run and destroyed after it.
    let out = run(&["run", "--kind", "xcpng", "-e", "print(_VERSION)"])
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Lua 5.4\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sim.sim.guest_vm_count(), 0);
    let out = run(&["run", "--kind", "xcpng", "--keep", "-e", "print(1)"])
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("kept pool VM OpaqueRef:"));
    assert_eq!(sim.sim.guest_vm_count(), 1);
}

/// A session attached to a pool VM that was then destroyed on the pool must not
/// reconnect to the address it used before: that address may now be someone else's
/// machine. Restarting it is refused with a message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_a_session_whose_pool_vm_is_gone_never_reconnects() {
    let sshd = Sshd::start("xcpng-gone");
    let (sim, config) = common::sshd::pool_with_guests_at(&sshd).await;
    let m = manager_for(&config, Trust::default());
    let id = m
        .create_interactive_vm(Some("made"), VmKind::Xcpng, VmOptions::default())
        .await
        .unwrap();
    m.wait_ready(&id, WAIT).await.unwrap();
    let reference = m.info(id).unwrap().pool_vm.unwrap();
    m.kill(&id).await.unwrap();
    // Attached again, as Enter on the detached row does.
    let attached = VmOptions {
        pool_vm: Some((reference.clone(), "127.0.0.1".into())),
        ..VmOptions::default()
    };
    let id = m
        .create_interactive_vm(Some("attached"), VmKind::Xcpng, attached)
        .await
        .unwrap();
    m.wait_ready(&id, WAIT).await.unwrap();
    m.kill(&id).await.unwrap();
    assert!(eventually(WAIT, || sshd.connection_pids().is_empty()).await);

    // Someone destroys the VM on the pool.
    let client = bioxen::xapi::XapiClient::new(bioxen::xapi::Login {
        url: sim.url.clone(),
        username: "root".into(),
        password: "password".into(),
        tls: bioxen::xapi::tls::TlsMode::Verify,
    })
    .unwrap();
    bioxen::xapi::lifecycle::stop(&client, &reference, Duration::from_secs(30))
        .await
        .unwrap();
    bioxen::xapi::lifecycle::destroy(&client, &reference)
        .await
        .unwrap();
    assert_eq!(sim.sim.guest_vm_count(), 0);

    let err = m.restart(&id).await.unwrap_err().to_string();
    assert!(err.contains("no longer exists"), "{err}");
    assert!(
        sshd.connection_pids().is_empty(),
        "it connected to the old address"
    );
    assert!(matches!(m.info(id).unwrap().state, VmState::Failed(_)));
}

/// bioxen reads known_hosts as OpenSSH's ssh does: for each file below, `ssh -o
/// StrictHostKeyChecking=yes` and an ssh VM either both connect or both refuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_hosts_markers_agree_with_openssh() {
    use std::process::Command;
    common::require_program("ssh", "openssh-client");
    let sshd = Sshd::start("markers");
    let recorded = std::fs::read_to_string(&sshd.known_hosts).unwrap();
    let mut fields = recorded.split_whitespace();
    let (name, algo, key) = (
        fields.next().unwrap().to_string(),
        fields.next().unwrap().to_string(),
        fields.next().unwrap().to_string(),
    );
    let other = sshd.dir.join("other_host_key");
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_key = other_pub.split_whitespace().nth(1).unwrap().to_string();
    let port = sshd.port;
    let plain = format!("{name} {algo} {key}");
    let cases: Vec<(&str, String, bool)> = vec![
        ("plain", plain.clone(), false),
        (
            "with comments",
            format!("# lab hosts\n\n{plain} lab key\n"),
            false,
        ),
        (
            "revoked",
            format!("{plain}\n@revoked {name} {algo} {key}\n"),
            false,
        ),
        (
            "revoked for all hosts",
            format!("@revoked * {algo} {key}\n{plain}\n"),
            false,
        ),
        ("negated", format!("*,!{name} {algo} {key}\n"), false),
        (
            "negated in both forms",
            format!("*,!{name},!127.0.0.1 {algo} {key}\n"),
            false,
        ),
        (
            "recorded without the port",
            format!("127.0.0.1 {algo} {key}\n"),
            false,
        ),
        (
            "negated by wildcard",
            format!("{name},![127.0.0.*]:{port} {algo} {key}\n"),
            false,
        ),
        (
            "wildcard",
            format!("[127.0.0.?]:{port} {algo} {key}\n"),
            false,
        ),
        ("hashed", plain.clone(), true),
        ("changed", format!("{name} {algo} {other_key}\n"), false),
        (
            "changed beside the right key",
            format!("{name} {algo} {other_key}\n{plain}\n"),
            false,
        ),
        (
            "cert-authority only",
            format!("@cert-authority {name} {algo} {key}\n"),
            false,
        ),
        (
            "another host",
            format!("[127.0.0.2]:{port} {algo} {key}\n"),
            false,
        ),
    ];
    for (what, text, hash) in cases {
        let file = sshd.dir.join("markers_known_hosts");
        std::fs::write(&file, &text).unwrap();
        if hash {
            Command::new("ssh-keygen")
                .args(["-q", "-H", "-f"])
                .arg(&file)
                .output()
                .unwrap();
            assert!(std::fs::read_to_string(&file).unwrap().starts_with("|1|"));
        }
        let openssh = Command::new("ssh")
            .args([
                "-F",
                "/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", file.display()))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "CheckHostIP=no",
            ])
            .arg("-i")
            .arg(&sshd.client_key)
            .args(["-p", &port.to_string()])
            .arg(format!("{}@127.0.0.1", sshd.user))
            .arg("true")
            .output()
            .unwrap()
            .status
            .success();
        let m = manager_for(
            &sshd.host_entry("lab", &file, "lua5.4 -i"),
            Trust::default(),
        );
        let ours = m
            .create_interactive_vm(Some("markers"), VmKind::Ssh, ssh_options("lab"))
            .await;
        let connected = ours.is_ok();
        if connected {
            m.terminate_vm_session("markers").await.unwrap();
        }
        assert_eq!(
            connected,
            openssh,
            "{what}: bioxen {} where ssh {} ({ours:?})\n{text}",
            if connected { "connected" } else { "refused" },
            if openssh { "connected" } else { "refused" },
        );
        if what.starts_with("revoked") {
            assert!(format!("{ours:?}").contains("REVOKED"), "{ours:?}");
        }
        if what == "cert-authority only" {
            assert!(
                format!("{ours:?}").contains("certificate authority"),
                "{ours:?}"
            );
        }
    }
}

/// Killing an xcpng VM while the pool is still making it answers at once, never
/// connects, and removes what was made, even on a slow pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_pool_vm_during_creation_cancels_it() {
    let sshd = Sshd::start("xcpng-cancel");
    let (sim, config) = common::sshd::pool_with_guests_at(&sshd).await;
    sim.sim.faults.lock().unwrap().latency = Duration::from_millis(400);
    let m = manager_for(&config, Trust::default());
    let creating = {
        let m = m.clone();
        tokio::spawn(async move {
            m.create_interactive_vm(Some("doomed"), VmKind::Xcpng, VmOptions::default())
                .await
        })
    };
    // Wait until the pool has a clone of the template.
    assert!(
        eventually(WAIT, || sim.sim.guest_vm_count() == 1).await,
        "the VM was never cloned"
    );
    let started = std::time::Instant::now();
    m.kill("doomed").await.unwrap();
    let result = creating.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "kill took {:?}",
        started.elapsed()
    );
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("killed while its pool VM was being created"),
        "{err}"
    );
    assert!(!m.info("doomed").unwrap().state.is_alive());
    assert!(
        eventually(Duration::from_secs(60), || sim.sim.guest_vm_count() == 0).await,
        "the half-made VM was left on the pool"
    );
    assert!(sshd.connection_pids().is_empty(), "it connected anyway");
    assert!(
        !sshd.log().contains("Accepted publickey"),
        "it connected anyway"
    );
}

/// A host's own `lua5.4` says busy and idle as a local one does, and `require
/// "bioxen"` works there though the module was never installed on it; a LUA_INIT of
/// the host user's still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_lua_says_busy_and_idle_and_has_the_bioxen_module() {
    let sshd = Sshd::start("marks");
    let m = manager_for(
        &sshd.host_entry("lab", &sshd.known_hosts, "LUA_INIT='theirs = 7' lua5.4 -i"),
        Trust::default(),
    );
    let id = m
        .create_interactive_vm(Some("marked"), VmKind::Ssh, ssh_options("lab"))
        .await
        .unwrap();
    m.wait_ready(&id, WAIT).await.unwrap();
    let r = m.execute_string(&id, "theirs", WAIT).await.unwrap();
    assert_eq!(r.output, "7\n", "{r:?}");
    let r = m
        .execute_string(&id, "require('bioxen').progress(50, 'half')", WAIT)
        .await
        .unwrap();
    assert_eq!(r.error, None);
    let marked = eventually(WAIT, || {
        m.info(id)
            .is_ok_and(|i| i.busy == Some(bioxen::protocol::Busy::Idle) && i.progress.is_some())
    })
    .await;
    assert!(marked, "{:?}", m.info(id));
    m.send_input(id, "os.execute('sleep 2')\n").unwrap();
    let busy = eventually(WAIT, || {
        m.info(id)
            .is_ok_and(|i| i.busy == Some(bioxen::protocol::Busy::Busy))
    })
    .await;
    assert!(busy, "{:?}", m.info(id));
    let idle = eventually(WAIT, || {
        m.info(id)
            .is_ok_and(|i| i.busy == Some(bioxen::protocol::Busy::Idle))
    })
    .await;
    assert!(idle, "{:?}", m.info(id));
    m.terminate_vm_session(&id).await.unwrap();
}
