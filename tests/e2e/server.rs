//! `bioxen server` and its clients: VMs outlive the client that made them; the socket is
//! private, checked and never shared by two servers.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bioxen::VmKind;
use bioxen::client::{Client, StartOptions};
use bioxen::protocol::{CreateOptions, WireError};
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
        format!(
            "[ui]\nlog_dir = \"{}\"\n[server]\nstate_dir = \"{}\"\n",
            dir.join("logs").display(),
            dir.join("state").display()
        ),
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
/// the directory, the socket, a client, the guard that stops the server, the VM's name.
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
    client.wait_ready(id, WAIT).await.unwrap();
    (dir, socket, client, stop, vm.to_string())
}

/// [`server_with_vm`], its VM having printed `row 1` to `row 3000`: a history long
/// enough that a watch sends the screen ahead of it.
async fn server_with_long_history(
    name: &str,
    vm: &str,
) -> (PathBuf, PathBuf, Client, Stop, String) {
    let server = server_with_vm(name, vm).await;
    let (_, _, client, _, id) = &server;
    client
        .execute_string(id, "for i = 1, 3000 do print('row ' .. i) end", WAIT)
        .await
        .unwrap();
    server
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
    assert!(
        matches!(err.wire(), Some(WireError::NotFound { id }) if id == "nope"),
        "{err:?}"
    );

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
    // Another user's bioxen refuses the directory before it says a word to the server.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bioxen_exe())
        .args(["--socket", socket.to_str().unwrap(), "kill", "anything"])
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("not connecting to") && err.contains("belongs to uid 0"),
        "{err}"
    );
    // And a client of another uid that ignores that, speaking the protocol by hand, is
    // refused by the server, which reads nothing it sends.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(["/usr/bin/python3", "-c", PEER_SAYS_HELLO])
        .arg(&socket)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("serves no one else"),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    client.shutdown_server().await.unwrap();
}

/// Connects to the socket in argv[1], sends a hello and prints the answer.
const PEER_SAYS_HELLO: &str = r#"
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
hello = json.dumps({"version": 0, "client": "stranger"}).encode()
try:
    s.sendall(struct.pack(">I", len(hello)) + hello)
except BrokenPipeError:
    pass  # refused before the hello was read: the answer is waiting

n = struct.unpack(">I", s.recv(4))[0]
data = b""
while len(data) < n:
    data += s.recv(n - len(data))
print(data.decode())
"#;

/// A socket another user put in the runtime directory is never spoken to: not when the
/// directory is theirs, and not when the process listening runs as someone else. What
/// the user types would otherwise go to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_squatted_socket_is_refused_before_a_word_is_sent() {
    use std::os::unix::fs::PermissionsExt;
    common::require_program("setpriv", "util-linux");
    // SAFETY: getuid has no preconditions.
    assert_eq!(
        unsafe { libc::getuid() },
        0,
        "this test plays another user, as root"
    );
    let dir = scratch("squat");
    // A directory made by uid 65534, open to all, as a squatter would leave it.
    let theirs = dir.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    // Ours, 0700, but the socket in it bound by a process that then became uid 65534.
    let ours = dir.join("ours");
    bioxen::private_fs::create_private_dir(&ours).unwrap();
    // Where the squatters, as uid 65534, note that they listen and what they heard.
    let notes = dir.join("notes");
    std::fs::create_dir(&notes).unwrap();
    std::fs::set_permissions(&notes, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut squatters = Vec::new();
    let places = [
        (theirs.join("server.sock"), true),
        (ours.join("server.sock"), false),
    ];
    for (n, (socket, become_other_first)) in places.into_iter().enumerate() {
        let ready = notes.join(format!("{n}.heard"));
        let child = Command::new("/usr/bin/python3")
            .args(["-c", SQUATTER])
            .arg(&socket)
            .arg(&ready)
            .arg(if become_other_first {
                "before"
            } else {
                "after"
            })
            .spawn()
            .unwrap();
        squatters.push(Kill(child));
        assert!(
            eventually(WAIT, || ready.exists()).await,
            "the squatter did not start"
        );
        let err = match Client::connect(&socket, "test").await {
            Ok(_) => panic!("connected to a squatted socket at {}", socket.display()),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(socket.to_str().unwrap()),
            "names the path: {err}"
        );
        assert!(err.contains("uid 65534"), "{err}");
        // Not started over either: a server of our own would only be refused there too.
        let start = start_options(&dir);
        let err = Client::connect_or_start(&socket, "test", &start)
            .await
            .err()
            .expect("connect_or_start trusted a squatted socket")
            .to_string();
        assert!(err.contains("not connecting to"), "{err}");
        // The squatter heard nothing: it writes what it received to the ready file.
        let heard = std::fs::read(&ready).unwrap();
        assert!(heard.is_empty(), "the squatter heard {heard:?}");
    }
}

/// Listens on argv[1] as uid 65534 (setuid before binding, or after binding and before
/// listening: SO_PEERCRED reports who listened), then records what clients send.
const SQUATTER: &str = r#"
import os, socket, sys
path, ready, when = sys.argv[1], sys.argv[2], sys.argv[3]
if when == "before":
    os.setgid(65534); os.setuid(65534)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o777)
if when == "after":
    os.setgid(65534); os.setuid(65534)
s.listen(8)
open(ready, "ab").close()
while True:
    c, _ = s.accept()
    c.settimeout(2)
    try:
        data = c.recv(4096)
    except OSError:
        data = b""
    if data:
        with open(ready, "ab") as f:
            f.write(data)
    c.close()
"#;

/// Ends a helper process when the test ends.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
        read_only: false,
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
            read_only: false,
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
    still_answers(&client, &id).await;
    let other = Client::connect(&socket, "test").await.unwrap();
    assert_eq!(other.list().await.unwrap().len(), 1);
    let log = std::fs::read_to_string(dir.join("logs/server.log")).unwrap();
    assert!(log.contains("client dropped"), "the server logs it: {log}");
    client.shutdown_server().await.unwrap();
}

/// The server's resident memory, from /proc.
fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

/// A raw connection that has said hello.
async fn greeted(socket: &Path) -> tokio::net::UnixStream {
    let mut s = tokio::net::UnixStream::connect(socket).await.unwrap();
    let hello = bioxen::protocol::Hello {
        version: bioxen::protocol::VERSION,
        client: "raw".into(),
        read_only: false,
    };
    bioxen::protocol::write_message(&mut s, &hello)
        .await
        .unwrap();
    let _: bioxen::protocol::Welcome = bioxen::protocol::read_message(&mut s)
        .await
        .unwrap()
        .unwrap();
    s
}

/// Terminal sizes past 1000x1000 are refused where they enter, with the size and the
/// bound named; one such request once took the server and every VM with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_terminals_are_refused_and_the_server_goes_on() {
    let (_dir, _socket, client, _stop, id) = server_with_vm("sizes", "sized").await;
    let before = rss_of(client.server_pid);
    let err = client
        .resize(&id, 65535, 65535)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("65535x65535") && err.contains("1000x1000"),
        "{err}"
    );
    let options = CreateOptions {
        rows: Some(24),
        cols: Some(3000),
        ..CreateOptions::default()
    };
    let err = client
        .create_interactive_vm(Some("huge"), VmKind::Local, options)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("24x3000") && err.contains("too large"),
        "{err}"
    );
    client.resize(&id, 1000, 1000).await.unwrap();
    still_answers(&client, &id).await;
    let grown = rss_of(client.server_pid).saturating_sub(before);
    assert!(grown < 100 << 20, "the server grew by {grown} bytes");
    assert_eq!(
        client.list().await.unwrap().len(),
        1,
        "no VM 'huge' was made"
    );
    client.shutdown_server().await.unwrap();
}

/// Frames cost what was sent, not what was announced; before the hello only a few KiB
/// are read; and all connections together hold a bounded amount, however many send
/// large frames at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_are_bounded_before_the_hello_and_in_total() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_dir, socket, client, _stop, id) = server_with_vm("frames", "framed").await;
    let pid = client.server_pid;

    // A hello announced at 1 MiB is refused without being read.
    let mut s = tokio::net::UnixStream::connect(&socket).await.unwrap();
    s.write_all(&(1u32 << 20).to_be_bytes()).await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(WAIT, s.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the server waited for a 1 MiB hello");

    // Eight connections each send all but the last byte of a 48 MiB frame: 384 MiB
    // in all if the server read every one.
    const FRAME: usize = 48 << 20;
    let base = rss_of(pid);
    let written = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..8 {
        let mut s = greeted(&socket).await;
        let (written, finished) = (written.clone(), finished.clone());
        senders.push(tokio::spawn(async move {
            s.write_all(&(FRAME as u32).to_be_bytes()).await.unwrap();
            let piece = vec![b' '; 1 << 20];
            let mut left = FRAME - 1;
            while left > 0 {
                let n = left.min(piece.len());
                if s.write_all(&piece[..n]).await.is_err() {
                    return s;
                }
                written.fetch_add(n as u64, Ordering::Relaxed);
                left -= n;
            }
            finished.fetch_add(1, Ordering::Relaxed);
            s
        }));
    }
    // Wait until the writing settles: every sender done, or no progress for a second.
    let mut last = (0, std::time::Instant::now());
    let settled = eventually(WAIT * 2, || {
        let now = written.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, std::time::Instant::now());
        }
        finished.load(Ordering::Relaxed) == 8
            || last.1.elapsed() > std::time::Duration::from_secs(1)
    })
    .await;
    assert!(settled);
    let held = rss_of(pid).saturating_sub(base);
    assert!(
        held < 300 << 20,
        "8 pending 48 MiB frames hold {} MiB in the server",
        held >> 20
    );
    for s in senders {
        s.abort();
    }
    // The server goes on.
    still_answers(&client, &id).await;
    client.shutdown_server().await.unwrap();
}

/// Calls that wait (here for output that never comes) are bounded per connection and
/// end with it, and their timeouts are clamped: 20,000 of them, half with the longest
/// timeout there is, leave the server as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_calls_are_bounded_and_end_with_their_connection() {
    use tokio::io::AsyncWriteExt;
    let (_dir, socket, client, _stop, id) = server_with_vm("calls", "waited").await;
    let pid = client.server_pid;
    let base = rss_of(pid);
    let mut s = greeted(&socket).await;
    let mut frames = Vec::new();
    for tag in 0..20_000u64 {
        let call = bioxen::protocol::Call {
            tag,
            request: bioxen::protocol::Request::ReadUntil {
                vm: id.clone().into(),
                needle: "never printed".into(),
                timeout_ms: if tag % 2 == 0 { u64::MAX } else { 3_600_000 },
            },
        };
        bioxen::protocol::encode_message(&mut frames, &call).unwrap();
    }
    // The server stops reading once a connection has its fill of calls running, so
    // this write may never finish: it is given a few seconds.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.write_all(&frames)).await;
    let held = rss_of(pid).saturating_sub(base);
    assert!(held < 64 << 20, "pending calls hold {} MiB", held >> 20);
    drop(s);
    // A fresh client is answered at once, and the VM is as it was.
    let other = Client::connect(&socket, "test").await.unwrap();
    still_answers(&other, &id).await;
    client.shutdown_server().await.unwrap();
}

/// A server whose log cannot be written (stderr on a full disk) serves as usual and
/// exits cleanly, instead of panicking on its first log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_log_is_full_serves_and_exits_cleanly() {
    let dir = scratch("fulllog");
    let socket = dir.join("run/bioxen/server.sock");
    let start = start_options(&dir);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut server = Command::new(bioxen_exe())
        .args(["--config", start.config.as_ref().unwrap().to_str().unwrap()])
        .args([
            "--socket",
            socket.to_str().unwrap(),
            "server",
            "--foreground",
        ])
        .stderr(full)
        .spawn()
        .unwrap();
    let _stop = Stop(server.id());
    let mut client = None;
    let connected = eventually(WAIT, || {
        if let Ok(Some(status)) = server.try_wait() {
            panic!("the server ended: {status}");
        }
        socket.exists()
    })
    .await;
    assert!(connected, "the server never listened");
    for _ in 0..100 {
        if let Ok(c) = Client::connect(&socket, "test").await {
            client = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let client = client.expect("no connection to the server");
    let id = client
        .create_interactive_vm(Some("logless"), VmKind::Local, CreateOptions::default())
        .await
        .unwrap();
    client.wait_ready(&id, WAIT).await.unwrap();
    still_answers(&client, &id).await;
    client.shutdown_server().await.unwrap();
    let status = tokio::task::spawn_blocking(move || server.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "the server exited with {status}");
}

/// `bioxen ls` says what the server knows now, as the dashboard shows it: a VM at its
/// prompt is idle, progress shows as soon as it is reported, a client that vanished
/// is no longer attached, and an exited VM has no pid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_shows_what_the_server_knows_now() {
    let (dir, socket, client, _stop, id) = server_with_vm("lsnow", "listed").await;
    let ls = |json: bool| {
        let mut args = vec!["--socket", socket.to_str().unwrap(), "ls"];
        if json {
            args.push("--json");
        }
        let out = bioxen(&args, &dir.join("run"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let row = |text: &str| -> serde_json::Value {
        let rows: Vec<serde_json::Value> = serde_json::from_str(text).unwrap();
        rows.into_iter().find(|r| r["name"] == id.as_str()).unwrap()
    };
    let table = ls(false);
    let line = table.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(line.contains(" idle "), "{table}");
    assert_eq!(row(&ls(true))["busy"], "idle");

    client
        .execute_string(&id, "require('bioxen').progress(77, 'halfway')", WAIT)
        .await
        .unwrap();
    let json = ls(true);
    assert_eq!(row(&json)["progress"]["percent"], 77, "{json}");
    // The report ages where it is kept: a dashboard that opens later times it out
    // from the report, not from its own start.
    let aged = eventually(WAIT, || {
        row(&ls(true))["progress_age_ms"].as_u64().unwrap_or(0) >= 500
    })
    .await;
    assert!(aged, "{}", ls(true));

    // A client attaches and vanishes without a word, as a killed dashboard does.
    let vanishing = Client::connect(&socket, "dashboard").await.unwrap();
    vanishing.attach(&id).await.unwrap();
    assert_eq!(row(&ls(true))["attached"], true);
    drop(vanishing);
    let gone = eventually(WAIT, || row(&ls(true))["attached"] == false).await;
    assert!(gone, "still attached after the client went");

    client.kill(&id).await.unwrap();
    let json = ls(true);
    assert!(row(&json)["pid"].is_null(), "{json}");
    assert!(json.ends_with("\n"));
    client.shutdown_server().await.unwrap();
}

/// The VM `id` answers a chunk through `client`: the server and the VM went on.
async fn still_answers(client: &Client, id: impl Into<bioxen::VmRef>) {
    let r = client
        .execute_string(id, "return 6 * 7", WAIT)
        .await
        .unwrap();
    assert_eq!(r.output.trim(), "42");
}

/// A session this client only glances at (a grid tile not focused) stays glanced at
/// when it is renamed: its screens keep coming, never its bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_glanced_session_is_still_only_glanced_at() {
    use bioxen::client::Update;
    use bioxen::protocol::{Event, Request};
    let (_dir, _socket, client, _stop, id) = server_with_vm("glance", "tile").await;
    let mut updates = client.updates();
    client.subscribe().await.unwrap();
    let vm = client.list().await.unwrap()[0].vm;
    client.notify(Request::Glance { vm: vm.into() });
    client.rename(&id, "renamed").await.unwrap();
    client
        .execute_string("renamed", "for i = 1, 3000 do print('line', i) end", WAIT)
        .await
        .unwrap();
    let mut bytes_sent = 0usize;
    let deadline = tokio::time::Instant::now() + WAIT;
    let saw_the_end = loop {
        let Ok(Some(update)) = tokio::time::timeout_at(deadline, updates.recv()).await else {
            break false;
        };
        match update {
            Update::Output { vm: v, bytes } if v == vm => bytes_sent += bytes.len(),
            Update::Event(Event::Screen { vm: v, snapshot })
                if v == vm && snapshot.state.contains("3000") =>
            {
                break true;
            }
            _ => {}
        }
    };
    assert!(saw_the_end, "no glance showed the end of the output");
    assert_eq!(bytes_sent, 0, "the renamed tile was sent its bytes");
}

/// A pool's refusal reaches a client with its kind and its XAPI code: a script can
/// tell "the pool is full" from "no such VM" without reading the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_matches_on_the_kind_of_a_servers_refusal() {
    let sim =
        bioxen::sim::SimServer::start("127.0.0.1:0".parse().unwrap(), Default::default(), false)
            .await
            .unwrap();
    sim.sim
        .faults
        .lock()
        .unwrap()
        .fail_method
        .push(("VM.provision".into(), vec!["SR_FULL".into()]));
    let dir = scratch("wire-kinds");
    let socket = dir.join("run/bioxen/server.sock");
    let start = start_options(&dir);
    std::fs::write(
        start.config.as_ref().unwrap(),
        format!(
            "[ui]\nlog_dir = \"{}\"\n[server]\nstate_dir = \"{}\"\n\
             [xcpng]\nurl = \"{}\"\npassword = \"password\"\n",
            dir.join("logs").display(),
            dir.join("state").display(),
            sim.url
        ),
    )
    .unwrap();
    let client = Client::connect_or_start(&socket, "test", &start)
        .await
        .unwrap();
    let _stop = Stop(client.server_pid);

    let err = client.kill("no-such-vm").await.unwrap_err();
    assert!(
        matches!(err.wire(), Some(WireError::NotFound { id }) if id == "no-such-vm"),
        "{err:?}"
    );
    let err = client
        .create_interactive_vm(Some("full-pool"), VmKind::Xcpng, CreateOptions::default())
        .await
        .unwrap_err();
    let wire = err
        .wire()
        .unwrap_or_else(|| panic!("not the server's refusal: {err:?}"));
    assert_eq!(wire.xapi_code(), Some("SR_FULL"), "{wire:?}");
    assert!(
        matches!(wire, WireError::PoolStep { id, step, .. } if id == "full-pool" && step.contains("provision")),
        "{wire:?}"
    );
}

/// A flood reaches a client that watches its VM as whole screens, not as every byte
/// to parse a second time, and the client's mirror is exact throughout: once the
/// prompt is back, its screen and history are the server's, line for line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_reaches_a_watching_client_as_screens_and_its_mirror_stays_exact() {
    use bioxen::client::Update;
    use bioxen::protocol::Event;
    use bioxen::term::Screen;
    let (_dir, _socket, client, _stop, id) = server_with_vm("flood", "flooded").await;
    let mut updates = client.updates();
    client.subscribe().await.unwrap();
    let vm = client.list().await.unwrap()[0].vm;
    client.watch(vm).await.unwrap();
    // 400,000 lines of 21 bytes: 8.4 MB, far past what anyone reads as it passes.
    let code =
        "for i = 1, 400000 do print(string.format('%020d', i)) end print('flood-' .. 'done')\r";
    client.send_input(vm, code).await.unwrap();
    let (mut mirror, mut bytes, mut screens): (Option<Screen>, usize, usize) = (None, 0, 0);
    let deadline = tokio::time::Instant::now() + WAIT * 4;
    let settled = loop {
        let Ok(Some(update)) = tokio::time::timeout_at(deadline, updates.recv()).await else {
            break false;
        };
        match update {
            Update::Output { vm: v, bytes: b } if v == vm => {
                bytes += b.len();
                let _ = mirror.as_mut().expect("a screen first").feed(&b);
            }
            Update::Event(Event::Screen { vm: v, snapshot }) if v == vm => {
                screens += 1;
                mirror = Some(Screen::from_snapshot(&snapshot, 10_000, 2 << 20));
            }
            _ => continue,
        }
        let shown = mirror.as_ref().map(|m| m.text()).unwrap_or_default();
        if !(shown.contains("flood-done") && shown.trim_end().ends_with('>')) {
            continue;
        }
        let theirs = client.capture(&id, Some(-100_000), false).await.unwrap();
        if mirror.as_ref().unwrap().capture(Some(-100_000), false) == theirs {
            break true;
        }
    };
    let mirror = mirror.expect("the watch's first screen");
    assert!(
        settled,
        "the mirror never matched the server's screen and history"
    );
    assert_eq!(mirror.scrollback_len(), 10_000, "the history came whole");
    assert!(
        bytes < 8_400_000 / 2 && screens >= 3,
        "the flood came as {bytes} bytes and {screens} screens"
    );
}

/// A watch of a VM with a long history sends its screen first and the history right
/// after: a dashboard shows the screen it switched to without first taking in
/// thousands of rows, and its mirror ends up the server's, history and all. Output
/// printed meanwhile lands after that history, not before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_history_follows_the_screen_and_the_mirror_is_whole() {
    use bioxen::client::Update;
    use bioxen::protocol::Event;
    use bioxen::term::Screen;
    let (_dir, _socket, client, _stop, id) = server_with_long_history("ahead", "long").await;
    let mut updates = client.updates();
    let vm = client.list().await.unwrap()[0].vm;
    client.watch(vm).await.unwrap();
    client
        .send_input(vm, "print('after ' .. 'watch')\r")
        .await
        .unwrap();
    let mut screens = Vec::new();
    let mut mirror: Option<Screen> = None;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let Ok(Some(update)) = tokio::time::timeout_at(deadline, updates.recv()).await else {
            panic!("the mirror never showed the output after the watch");
        };
        match update {
            Update::Event(Event::Screen { vm: v, snapshot }) if v == vm => {
                mirror = Some(Screen::from_snapshot(&snapshot, 10_000, 2 << 20));
                screens.push(snapshot);
            }
            Update::Output { vm: v, bytes } if v == vm => {
                let _ = mirror.as_mut().expect("a screen first").feed(&bytes);
            }
            _ => continue,
        }
        if mirror.as_ref().unwrap().text().contains("after watch\n>") {
            break;
        }
    }
    let [ahead, whole] = &screens[..] else {
        panic!(
            "expected the screen, then the history: {} screens",
            screens.len()
        );
    };
    assert!(ahead.history_follows && ahead.history_rows == 0);
    assert!(
        Screen::from_snapshot(ahead, 10_000, 2 << 20)
            .text()
            .contains("row 3000"),
        "the screen sent ahead shows the VM's last rows"
    );
    assert!(!whole.history_follows && whole.history_rows > 2900);
    let theirs = client.capture(&id, Some(-100_000), false).await.unwrap();
    assert_eq!(mirror.unwrap().capture(Some(-100_000), false), theirs);
}

/// `bioxen attach NAME` sends its subscription and its watch with the hello, and
/// draws nothing before the list: the list comes first, then the screen, whatever
/// the server is doing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_sent_with_the_hello_are_answered_list_first() {
    use bioxen::client::{Opening, Update};
    use bioxen::protocol::{Event, Request, VmRef};
    let (_dir, socket, _client, _stop, id) = server_with_long_history("opening", "first").await;
    for _ in 0..5 {
        let opening = Opening {
            read_only: false,
            first: vec![
                Request::Subscribe,
                Request::Watch {
                    vm: VmRef::Name(id.clone()),
                },
            ],
        };
        let (_looker, mut updates) = Client::connect_with(&socket, "test", None, opening)
            .await
            .unwrap();
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let update = tokio::time::timeout(WAIT, updates.recv()).await;
            match update
                .expect("the answers to the opening requests")
                .unwrap()
            {
                Update::Event(Event::Vms(vms)) => {
                    assert!(vms.iter().any(|v| v.name == id), "{vms:?}");
                    seen.push("list");
                }
                Update::Event(Event::Screen { snapshot, .. }) => {
                    let screen = bioxen::term::Screen::from_snapshot(&snapshot, 0, 0);
                    assert!(screen.text().contains("row 3000"));
                    seen.push("screen");
                }
                Update::Failed(e) | Update::Gone(e) => panic!("{e}"),
                _ => {}
            }
        }
        assert_eq!(seen, ["list", "screen"]);
    }
}
