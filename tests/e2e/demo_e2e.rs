//! `bioxen demo` through the real binary in a terminal: the whole pool flow with no
//! pool, no SSH server and no configuration of the user's.

use crate::common;

use common::bioxen_exe;
use common::tmux::Tmux;

#[test]
fn the_demo_runs_the_pool_flow_end_to_end_and_leaves_nothing() {
    // HOME is somewhere empty: the demo must need nothing of the user's.
    let t = Tmux::start(
        "demo",
        140,
        40,
        &format!("HOME=$PWD/home {} demo", bioxen_exe().display()),
    );
    t.wait_text("No VMs yet");
    let pid = t.program_pid("bioxen");
    let dir = std::env::temp_dir().join(format!("bioxen-demo-{pid}"));
    assert!(dir.is_dir(), "the demo's private directory");
    assert!(
        !t.path().join("home").exists(),
        "nothing is written to the user's home"
    );

    // Local and pool VMs side by side in the create dialog.
    t.keys(&["c"]);
    t.wait_text("◂ local ▸");
    t.keys(&["Right"]);
    t.wait_text("xcpng");
    t.keys(&["Enter"]);
    // Every step of the pool flow shows in the pane, then the guest's REPL.
    let screen = t.wait_for("the REPL over SSH", |s| {
        s.contains("connecting to") && s.lines().any(|l| l.contains("│> "))
    });
    for step in [
        "cloning",
        "provisioning",
        "starting",
        "waiting for an IP address",
        "is up at 127.0.0.",
    ] {
        assert!(screen.contains(step), "{step:?} missing:\n{screen}");
    }
    assert!(
        !screen.contains("is up at 127.0.0.1"),
        "the guest has an address of its own:\n{screen}"
    );
    t.keys(&["Enter"]);
    t.type_text("x = 6 * 7");
    t.keys(&["Enter"]);
    t.type_text("print('answer=' .. x)");
    t.keys(&["Enter"]);
    t.wait_text("answer=42");

    // Quitting ends the pool's VMs with the demo, without asking, and cleans up.
    t.keys(&["C-b", "d"]);
    t.keys(&["q"]);
    t.wait_text("EXITED-0");
    assert!(!dir.exists(), "the demo's directory is removed");
}
