//! `bioxen server` and its clients: VMs outlive the client that made them; the socket is
//! private, checked and never shared by two servers.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bioxen::VmKind;
use bioxen::client::{Client, StartOptions};
use bioxen::protocol::CreateOptions;
use common::{WAIT, bioxen_exe, eventually, process_group_alive};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bioxen-server-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Ends a server when the test ends, however it ends.
struct Stop(u32);

impl Drop for Stop {
    fn drop(&mut self) {
        // SAFETY: kill(2) of a server this test started; it may already be gone.
        unsafe { libc::kill(self.0 as i32, libc::SIGTERM) };
    }
}

fn start_options(dir: &Path) -> StartOptions {
    let config = dir.join("bioxen.toml");
    std::fs::write(
        &config,
        format!("[ui]\nlog_dir = \"{}\"\n", dir.join("logs").display()),
    )
    .unwrap();
    StartOptions {
        exe: bioxen_exe(),
        config: Some(config),
        log: dir.join("logs/server.log"),
    }
}

fn bioxen(args: &[&str], runtime: &Path) -> std::process::Output {
    Command::new(bioxen_exe())
        .args(args)
        .env("XDG_RUNTIME_DIR", runtime)
        .env("XDG_STATE_HOME", runtime.join("state"))
        .output()
        .unwrap()
}

/// Runs a bioxen command against the server on `socket`; it must succeed.
fn bioxen_ok(socket: &Path, args: &[&str], runtime: &Path) {
    let mut all = vec!["--socket", socket.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = bioxen(&all, runtime);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server started on demand in a scratch directory, with a local VM at its prompt:
/// the directory, the socket, a client, the guard that stops the server, the VM's id.
async fn server_with_vm(name: &str, vm: &str) -> (PathBuf, PathBuf, Client, Stop, String) {
    let dir = scratch(name);
    let socket = dir.join("run/bioxen/server.sock");
    let client = Client::connect_or_start(&socket, "test", &start_options(&dir))
        .await
        .unwrap();
    let stop = Stop(client.server_pid);
    let id = client
        .create_interactive_vm(Some(vm), VmKind::Local, CreateOptions::default())
        .await
        .unwrap();
    client.wait_ready(&id, WAIT).await.unwrap();
    (dir, socket, client, stop, id)
}

/// The original validation flow through the server: the VM keeps its state after the
/// client that created it is gone, and a new client finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vms_outlive_the_client_that_made_them() {
    let (dir, socket, first, _stop, id) = server_with_vm("outlive", "exp").await;
    first.send_input(&id, "x = 42\n").await.unwrap();
    let pid = first.list().await.unwrap()[0].pid.unwrap();
    drop(first);

    let second = Client::connect(&socket, "test").await.unwrap();
    let r = second.execute_string(&id, "x", WAIT).await.unwrap();
    assert_eq!(r.output, "42\n", "the VM lost its state");
    second
        .send_input(&id, "print('Value:', x)\n")
        .await
        .unwrap();
    let out = second.read_until(&id, "Value:\t42", WAIT).await.unwrap();
    assert!(out.contains("Value:\t42"));
    let err = second.send_input("nope", "1\n").await.unwrap_err();
    assert!(matches!(err, bioxen::Error::NotFound(_)), "{err:?}");

    // `bioxen ls` sees the server's VM; `bioxen kill` ends it.
    let ls = bioxen(
        &["--socket", socket.to_str().unwrap(), "ls", "--json"],
        &dir.join("run"),
    );
    assert!(
        String::from_utf8_lossy(&ls.stdout).contains("\"exp\""),
        "{ls:?}"
    );
    bioxen_ok(&socket, &["kill", "exp"], &dir.join("run"));
    assert!(
        eventually(WAIT, || !process_group_alive(pid)).await,
        "the VM survived kill"
    );

    // kill-server ends the server and every VM with it.
    let id = second
        .create_interactive_vm(None, VmKind::Local, CreateOptions::default())
        .await
        .unwrap();
    second.wait_ready(&id, WAIT).await.unwrap();
    let pid = second.list().await.unwrap()[0].pid.unwrap();
    let server_pid = second.server_pid;
    drop(second);
    bioxen_ok(&socket, &["kill-server"], &dir.join("run"));
    assert!(
        eventually(WAIT, || !process_group_alive(pid)).await,
        "a VM outlived kill-server"
    );
    assert!(
        eventually(WAIT, || !Path::new(&format!("/proc/{server_pid}")).exists()).await,
        "the server did not exit"
    );
    assert!(!socket.exists(), "the socket was left behind");
}

/// The directory is 0700 and the socket 0600; even with both opened up, another user is
/// refused by uid, with a message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_is_private_and_other_users_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    common::require_program("setpriv", "util-linux");
    let dir = scratch("private");
    let socket = dir.join("run/bioxen/server.sock");
    let start = start_options(&dir);
    let client = Client::connect_or_start(&socket, "test", &start)
        .await
        .unwrap();
    let _stop = Stop(client.server_pid);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(socket.parent().unwrap()), 0o700);
    assert_eq!(mode(&socket), 0o600);
    // SAFETY: getuid has no preconditions.
    assert_eq!(
        unsafe { libc::getuid() },
        0,
        "this test switches to another uid, as root"
    );
    for p in [
        dir.as_path(),
        &dir.join("run"),
        socket.parent().unwrap(),
        &socket,
    ] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bioxen_exe())
        .args(["--socket", socket.to_str().unwrap(), "kill", "anything"])
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("serves no one else"), "{err}");
    client.shutdown_server().await.unwrap();
}

/// A socket left by a dead server is replaced; a live server is never displaced, and
/// `-L NAME` gives separate servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_sockets_are_replaced_and_live_servers_never_shared() {
    let dir = scratch("stale");
    let runtime = dir.join("run");
    let socket = runtime.join("bioxen/server.sock");
    bioxen::private_fs::create_private_dir(socket.parent().unwrap()).unwrap();
    // A dead server's socket: bound, then its process gone.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let start = start_options(&dir);
    let client = Client::connect_or_start(&socket, "test", &start)
        .await
        .unwrap();
    let _stop = Stop(client.server_pid);

    // A second server on the same socket refuses to start, and the first still serves.
    let out = bioxen(
        &[
            "--socket",
            socket.to_str().unwrap(),
            "server",
            "--foreground",
        ],
        &runtime,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already running"),
        "{out:?}"
    );
    let again = Client::connect(&socket, "test").await.unwrap();
    assert_eq!(again.server_pid, client.server_pid);
    assert!(again.list().await.unwrap().is_empty());

    // -L names separate servers in the runtime directory.
    for name in ["alpha", "beta"] {
        let out = bioxen(&["-L", name, "server"], &runtime);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let alpha = runtime.join("bioxen/alpha.sock");
    let beta = runtime.join("bioxen/beta.sock");
    let a = Client::connect(&alpha, "test").await.unwrap();
    let b = Client::connect(&beta, "test").await.unwrap();
    let _stops = (Stop(a.server_pid), Stop(b.server_pid));
    assert_ne!(a.server_pid, b.server_pid);
    assert_ne!(a.server_pid, client.server_pid);
    for c in [a, b, client] {
        c.shutdown_server().await.unwrap();
    }
}

/// A client of another protocol version is refused with both versions named; a client
/// sending garbage or announcing a 1 GB frame is dropped, and the server and its other
/// clients go on; a client that vanishes leaves the VMs as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clients_are_dropped_and_the_server_goes_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (dir, socket, client, _stop, id) = server_with_vm("faults", "steady").await;

    // An older client: refused, told both versions.
    let mut old = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let hello = bioxen::protocol::Hello {
        version: 1,
        client: "old".into(),
    };
    bioxen::protocol::write_message(&mut old, &hello)
        .await
        .unwrap();
    let welcome: bioxen::protocol::Welcome = bioxen::protocol::read_message(&mut old)
        .await
        .unwrap()
        .unwrap();
    let text = format!("{welcome:?}");
    assert!(
        text.contains(&format!("protocol {}", bioxen::protocol::VERSION))
            && text.contains("client 1"),
        "{text}"
    );

    // Garbage after a good hello, and a frame claiming 1 GB: each connection is closed.
    for bad in [
        b"\x00\x00\x00\x05{{{{{".to_vec(),
        (1u32 << 30).to_be_bytes().to_vec(),
    ] {
        let mut s = tokio::net::UnixStream::connect(&socket).await.unwrap();
        let hello = bioxen::protocol::Hello {
            version: bioxen::protocol::VERSION,
            client: "bad".into(),
        };
        bioxen::protocol::write_message(&mut s, &hello)
            .await
            .unwrap();
        let _: bioxen::protocol::Welcome = bioxen::protocol::read_message(&mut s)
            .await
            .unwrap()
            .unwrap();
        s.write_all(&bad).await.unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(WAIT, s.read_to_end(&mut rest)).await;
        assert!(
            closed.is_ok(),
            "the server did not drop a client sending {bad:?}"
        );
    }

    // A client that watches the VM and vanishes without a word, as a killed one does
    // (the e2e tests kill a real dashboard).
    let vanishing = Client::connect(&socket, "test").await.unwrap();
    let _updates = vanishing.updates();
    vanishing.subscribe().await.unwrap();
    vanishing.watch(&id).await.unwrap();
    drop(vanishing);

    // The server and its VM are as they were.
    let r = client
        .execute_string(&id, "return 6 * 7", WAIT)
        .await
        .unwrap();
    assert_eq!(r.output.trim(), "42");
    let other = Client::connect(&socket, "test").await.unwrap();
    assert_eq!(other.list().await.unwrap().len(), 1);
    let log = std::fs::read_to_string(dir.join("logs/server.log")).unwrap();
    assert!(log.contains("client dropped"), "the server logs it: {log}");
    client.shutdown_server().await.unwrap();
}
