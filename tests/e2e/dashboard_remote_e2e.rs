//! The remote kinds through the real dashboard in a real terminal: an `xcpng` VM
//! created on the XAPI simulator, reached over a private sshd, its host key accepted in
//! the dialog; then a fresh dashboard finds it detached on the pool and attaches.

use crate::common;

use common::bioxen_exe;
use common::sshd::Sshd;
use common::tmux::Tmux;

/// The simulator, served by its own runtime thread (the test drives tmux
/// synchronously), until the returned sender is used or dropped.
struct RunningSim {
    sim: std::sync::Arc<bioxen::sim::Sim>,
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start_sim() -> RunningSim {
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = bioxen::sim::SimServer::start(
                "127.0.0.1:0".parse().unwrap(),
                Default::default(),
                false,
            )
            .await
            .unwrap();
            tx.send((server.sim.clone(), server.url.clone())).unwrap();
            let _ = stop_rx.await;
        });
    });
    let (sim, url) = rx.recv().unwrap();
    RunningSim {
        sim,
        url,
        stop: Some(stop),
        thread: Some(thread),
    }
}

fn pane_lines(screen: &str) -> Vec<String> {
    screen
        .lines()
        .filter_map(|l| {
            l.find("││").map(|i| {
                l[i + "││".len()..]
                    .trim_end_matches('│')
                    .trim_end()
                    .to_string()
            })
        })
        .collect()
}

#[test]
fn xcpng_vm_through_the_dashboard() {
    let sshd = Sshd::start("dash");
    let sim = start_sim();
    let known_hosts = sshd.dir.join("dashboard_known_hosts");
    // The password comes from a command that counts its runs: one dashboard logs in
    // to the pool once, for its list and its VMs alike.
    let runs = sshd.dir.join("password_runs");
    let config = format!(
        "[xcpng]\nurl = \"{}\"\npassword_command = \"sh -c 'echo run >> {}; echo $POOL_PW'\"\nmemory_mib = 512\n\
         [xcpng.ssh]\nuser = \"{}\"\nport = {}\nidentity = \"{}\"\nknown_hosts = \"{}\"\ncommand = \"lua5.4 -i\"\n",
        sim.url,
        runs.display(),
        sshd.user,
        sshd.port,
        sshd.client_key.display(),
        known_hosts.display()
    );
    let command = format!("POOL_PW=password {}", bioxen_exe().display());
    let t = Tmux::start_with_config("remote1", 120, 40, &command, Some(&config));
    t.wait_text("pool: 0 VMs");
    t.keys(&["c"]);
    t.wait_text("Create a VM");
    t.keys(&["Right"]);
    let s = t.wait_text("xcpng on pool (new pool VM)");
    assert!(
        s.contains("lua-bio-template") && s.contains("512 MiB"),
        "{s}"
    );
    t.keys(&["Enter"]);
    // The unknown host key is put to the user, with its fingerprint.
    let s = t.wait_text("Unknown host key");
    assert!(s.contains(&sshd.fingerprint), "{s}");
    t.keys(&["a"]);
    let s = t.wait_for("a Lua prompt on the pool VM", |s| {
        pane_lines(s).iter().any(|l| l == ">")
    });
    assert!(s.contains("[bioxen] cloning"), "progress was shown: {s}");
    assert!(
        std::fs::read_to_string(&known_hosts)
            .unwrap()
            .contains(&format!("[127.0.0.1]:{}", sshd.port))
    );
    assert_eq!(sim.sim.guest_vm_count(), 1);
    t.type_text("x = 42");
    t.keys(&["Enter"]);
    t.type_text("print('Value:', x)");
    t.keys(&["Enter"]);
    t.wait_for("the value", |s| {
        pane_lines(s)
            .iter()
            .any(|l| l.starts_with("Value:") && l.ends_with("42"))
    });
    t.keys(&["C-b", "d"]);
    let s = t.wait_for("the pool's facts in the details", |s| {
        s.contains("power Running") && s.contains("ip 127.0.0.1")
    });
    assert!(s.contains("pool: 1 VMs"), "{s}");
    // Close the session, keep the VM.
    t.keys(&["x"]);
    t.wait_text("What should happen to the VM?");
    t.keys(&["c"]);
    // The session's row becomes the pool VM's detached row.
    t.wait_for("the kept VM as detached", |s| {
        s.contains("lua-1") && s.contains("detached") && !s.contains("killed(HUP)")
    });
    assert_eq!(sim.sim.guest_vm_count(), 1, "the VM was kept");
    t.keys(&["q"]);
    t.wait_text("EXITED-0");
    drop(t);
    assert_eq!(
        std::fs::read_to_string(&runs).unwrap().lines().count(),
        1,
        "password_command ran more than once for one dashboard"
    );

    // A fresh dashboard finds the VM on the pool, detached, and attaches to it.
    let t = Tmux::start_with_config("remote2", 120, 40, &command, Some(&config));
    t.wait_for("the detached VM", |s| {
        s.contains("lua-1") && s.contains("detached")
    });
    t.keys(&["Enter"]);
    t.wait_for("a Lua prompt", |s| {
        s.contains(" TERM ") && pane_lines(s).iter().any(|l| l == ">")
    });
    // The interpreter the closed session left under dtach is the one attached to.
    t.type_text("print('x is', x)");
    t.keys(&["Enter"]);
    t.wait_for("the state kept", |s| {
        pane_lines(s)
            .iter()
            .any(|l| l.starts_with("x is") && l.ends_with("42"))
    });
    t.type_text("print(20 + 22)");
    t.keys(&["Enter"]);
    t.wait_for("the answer", |s| pane_lines(s).iter().any(|l| l == "42"));
    t.keys(&["C-b", "x"]);
    t.wait_text("What should happen to the VM?");
    t.keys(&["d"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sim.sim.guest_vm_count() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the VM was not destroyed: {}",
            t.screen()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The dashboard follows the pool (its "pool VM destroyed" message may already
    // have given way to the session's end on a busy machine).
    t.wait_text("pool: 0 VMs");
    t.keys(&["q"]);
    t.wait_text("EXITED-0");
}

/// A pool VM whose session failed (its host key was refused) can be kept: its row
/// becomes the pool VM's detached row, and kill no longer reopens the same dialog.
#[test]
fn keeping_the_vm_of_a_failed_session_leaves_it_detached() {
    let sshd = Sshd::start("dashfail");
    let sim = start_sim();
    let config = format!(
        "[xcpng]\nurl = \"{}\"\npassword_env = \"POOL_PW\"\n\
         [xcpng.ssh]\nuser = \"{}\"\nport = {}\nidentity = \"{}\"\nknown_hosts = \"{}\"\ncommand = \"lua5.4 -i\"\n",
        sim.url,
        sshd.user,
        sshd.port,
        sshd.client_key.display(),
        sshd.dir.join("empty_known_hosts").display()
    );
    let command = format!("POOL_PW=password {}", bioxen_exe().display());
    let t = Tmux::start_with_config("remotefail", 120, 40, &command, Some(&config));
    t.wait_text("pool: 0 VMs");
    t.keys(&["c"]);
    t.wait_text("Create a VM");
    t.keys(&["Right"]);
    t.wait_text("xcpng on pool (new pool VM)");
    t.keys(&["Enter"]);
    t.wait_text("Unknown host key");
    t.keys(&["n"]);
    t.wait_text("failed");
    t.keys(&["C-b", "d"]);
    t.keys(&["x"]);
    t.wait_text("What should happen to the VM?");
    t.keys(&["c"]);
    t.wait_for("the kept VM as detached", |s| {
        s.contains("VMs (0 + 1 detached)")
            && s.lines()
                .any(|l| l.contains("lua-1") && l.contains("detached"))
    });
    assert_eq!(sim.sim.guest_vm_count(), 1, "the VM was kept");
    // Kill on the detached row is not the session's dialog again.
    t.keys(&["x"]);
    let s = t.settle();
    assert!(!s.contains("What should happen to the VM?"), "{s}");
    // Nothing opened, so nothing to close: an Escape read in one go with the q would
    // be Alt+q, which quits nothing.
    t.keys(&["q"]);
    t.wait_text("EXITED-0");
}
