//! xapi's own Python client (XenAPI.py) against bioxen's simulator: if the official
//! client can log in, list, clone, provision, start and follow events, the simulator
//! speaks the real protocol.

use std::net::SocketAddr;

use bioxen::sim::{SimOptions, SimServer};

const XENAPI_PY: &str = "/usr/lib/python3/dist-packages/os_xenapi/client/XenAPI.py";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_client_drives_the_simulator() {
    assert!(
        std::path::Path::new(XENAPI_PY).exists()
            && std::path::Path::new("/usr/bin/python3").exists(),
        "this test needs xapi's XenAPI.py: apt-get install -y python3-os-xenapi"
    );
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let s = SimServer::start(addr, SimOptions::default(), false)
        .await
        .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/xenapi_client.py");
    let out = tokio::process::Command::new("/usr/bin/python3")
        .args([script, &s.url, "root", "password"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "XenAPI.py failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("event.from reported Running with IP 127.0.0.1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("destroy refused: VM_BAD_POWER_STATE"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("done"), "{stdout}");
    assert_eq!(s.sim.guest_vm_count(), 0);
}
