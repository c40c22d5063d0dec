//! bioxen's XAPI client against the simulator over real HTTP and HTTPS.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bioxen::sim::{SimOptions, SimServer};
use bioxen::xapi::lifecycle::{self, CreateSpec, Step};
use bioxen::xapi::tls::{TlsMode, parse_fingerprint};
use bioxen::xapi::{EventCache, Login, PoolStatus, XapiClient, XapiError};
use serde_json::json;

const PASSWORD: &str = "s3cret-pool-pw";

fn options() -> SimOptions {
    SimOptions {
        password: PASSWORD.into(),
        boot_delay: Duration::from_millis(150),
        ..SimOptions::default()
    }
}

async fn sim(tls: bool) -> SimServer {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    SimServer::start(addr, options(), tls).await.unwrap()
}

fn client(url: &str, tls: TlsMode, password: &str) -> XapiClient {
    XapiClient::new(Login {
        url: url.into(),
        username: "root".into(),
        password: password.into(),
        tls,
    })
    .unwrap()
}

fn spec(name: &str) -> CreateSpec {
    CreateSpec {
        template: "lua-bio-template".into(),
        name: name.into(),
        memory_mib: 512,
        vcpus: 2,
        bioxen_id: name.into(),
        ip_timeout: Duration::from_secs(20),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_lifecycle_over_https_with_a_pinned_certificate() {
    let s = sim(true).await;
    let pin = parse_fingerprint(s.fingerprint.as_ref().unwrap()).unwrap();
    let c = client(&s.url, TlsMode::Pinned(pin), PASSWORD);
    let vdis_before = s.sim.vdi_count();
    let steps = Arc::new(Mutex::new(Vec::new()));
    let seen = steps.clone();
    let vm = lifecycle::create(&c, &spec("lab-vm"), &move |step| {
        seen.lock().unwrap().push(step)
    })
    .await
    .unwrap();
    assert_eq!(vm.ip, "127.0.0.1");
    assert_eq!(
        *steps.lock().unwrap(),
        vec![
            Step::FindTemplate,
            Step::Cloning,
            Step::Provisioning,
            Step::Configuring,
            Step::Tagging,
            Step::Starting,
            Step::WaitingForIp
        ]
    );
    let rec = c.get_record("VM", &vm.reference).await.unwrap();
    assert_eq!(rec["power_state"], "Running");
    assert_eq!(rec["is_a_template"], false);
    assert_eq!(rec["memory_static_max"], json!(512 * 1024 * 1024));
    assert_eq!(rec["memory_dynamic_min"], json!(512 * 1024 * 1024));
    assert_eq!(rec["VCPUs_max"], json!(2));
    assert_eq!(rec["VCPUs_at_startup"], json!(2));
    assert_eq!(rec["other_config"]["bioxen:id"], "lab-vm");
    assert!(
        rec["other_config"]["bioxen:created-by"]
            .as_str()
            .unwrap()
            .starts_with("bioxen ")
    );
    assert_eq!(s.sim.guest_vm_count(), 1);
    assert_eq!(
        s.sim.vdi_count(),
        vdis_before + 1,
        "the clone got its own disk"
    );

    lifecycle::stop(&c, &vm.reference, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        c.get_record("VM", &vm.reference).await.unwrap()["power_state"],
        "Halted"
    );
    let destroyed = lifecycle::destroy(&c, &vm.reference).await.unwrap();
    assert_eq!(destroyed, 1);
    assert_eq!(s.sim.guest_vm_count(), 0);
    assert_eq!(
        s.sim.vdi_count(),
        vdis_before,
        "the VM's disk went with it; the template's stayed"
    );
    let gone = c.get_record("VM", &vm.reference).await.unwrap_err();
    assert!(gone.is("HANDLE_INVALID"), "{gone}");
    c.logout().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisions_disks_from_a_default_template_and_shrinks_vcpus() {
    let s = sim(false).await;
    let c = client(&s.url, TlsMode::Verify, PASSWORD);
    let vdis_before = s.sim.vdi_count();
    let mut sp = spec("deb");
    sp.template = "Debian Bookworm 12".into();
    sp.vcpus = 1;
    let vm = lifecycle::create(&c, &sp, &|_| {}).await.unwrap();
    let rec = c.get_record("VM", &vm.reference).await.unwrap();
    assert!(
        rec["other_config"].get("disks").is_none(),
        "provision strips the spec"
    );
    assert_eq!(s.sim.vdi_count(), vdis_before + 1);
    assert_eq!(lifecycle::destroy(&c, &vm.reference).await.unwrap(), 1);
    assert_eq!(s.sim.vdi_count(), vdis_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_midway_leaves_nothing_behind() {
    let s = sim(false).await;
    let c = client(&s.url, TlsMode::Verify, PASSWORD);
    let vdis_before = s.sim.vdi_count();
    for (method, code, step) in [
        ("VM.start", "NO_HOSTS_AVAILABLE", Step::Starting),
        (
            "VM.add_to_other_config",
            "RBAC_PERMISSION_DENIED",
            Step::Tagging,
        ),
        (
            "VM.set_memory_limits",
            "MEMORY_CONSTRAINT_VIOLATION_ORDER",
            Step::Configuring,
        ),
        ("VM.provision", "SR_FULL", Step::Provisioning),
    ] {
        s.sim
            .faults
            .lock()
            .unwrap()
            .fail_method
            .push((method.into(), vec![code.into()]));
        let err = lifecycle::create(&c, &spec("doomed"), &|_| {})
            .await
            .unwrap_err();
        assert_eq!(err.step, step);
        assert!(err.error.is(code), "{err}");
        assert!(err.cleanup_error.is_none(), "{err}");
        assert!(err.to_string().contains(code), "{err}");
        assert_eq!(
            s.sim.guest_vm_count(),
            0,
            "no VM left after a failure at {step}"
        );
        assert_eq!(
            s.sim.vdi_count(),
            vdis_before,
            "no disk left after a failure at {step}"
        );
    }
    let mut bad = spec("x");
    bad.template = "no-such-template".into();
    let err = lifecycle::create(&c, &bad, &|_| {}).await.unwrap_err();
    assert_eq!(err.step, Step::FindTemplate);
    assert!(
        err.to_string()
            .contains("no template named 'no-such-template'"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_cache_follows_start_shutdown_and_destroy_within_a_second() {
    let s = sim(false).await;
    let c = Arc::new(client(&s.url, TlsMode::Verify, PASSWORD));
    let cache = EventCache::start(c.clone());
    assert!(
        cache
            .wait_for(Duration::from_secs(10), |c| c.status()
                == PoolStatus::Connected)
            .await
    );
    assert!(cache.vms().is_empty(), "templates and dom0 are not listed");

    let vm = lifecycle::create(&c, &spec("watched"), &|_| {})
        .await
        .unwrap();
    let t = Instant::now();
    let running = cache
        .wait_for(Duration::from_secs(1), |c| {
            c.vms().iter().any(|v| {
                v.name == "watched"
                    && v.power_state == "Running"
                    && v.ip.as_deref() == Some("127.0.0.1")
            })
        })
        .await;
    assert!(running, "start not seen: {:?}", cache.vms());
    let vms = cache.vms();
    assert_eq!(vms[0].bioxen_id.as_deref(), Some("watched"));
    assert_eq!(vms[0].host.as_deref(), Some("sim-host"));
    assert_eq!(vms[0].memory_bytes, 512 * 1024 * 1024);
    let start_latency = t.elapsed();

    c.call("VM.clean_shutdown", vec![json!(vm.reference)])
        .await
        .unwrap();
    let t = Instant::now();
    assert!(
        cache
            .wait_for(Duration::from_secs(1), |c| c
                .vms()
                .iter()
                .any(|v| v.power_state == "Halted" && v.ip.is_none()))
            .await
    );
    let stop_latency = t.elapsed();

    lifecycle::destroy(&c, &vm.reference).await.unwrap();
    let t = Instant::now();
    assert!(
        cache
            .wait_for(Duration::from_secs(1), |c| c.vms().is_empty())
            .await
    );
    let destroy_latency = t.elapsed();
    eprintln!(
        "cache latency: start {start_latency:?}, shutdown {stop_latency:?}, destroy {destroy_latency:?}"
    );

    // A change made by someone else shows up too.
    s.sim.add_bulk_vms(1);
    assert!(
        cache
            .wait_for(Duration::from_secs(1), |c| c
                .vms()
                .iter()
                .any(|v| v.name == "bulk-0"))
            .await
    );
    assert!(s.sim.set_power_state("bulk-0", "Paused"));
    assert!(
        cache
            .wait_for(Duration::from_secs(1), |c| c
                .vms()
                .iter()
                .any(|v| v.power_state == "Paused"))
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_renewed_after_expiry() {
    let s = sim(false).await;
    let c = Arc::new(client(&s.url, TlsMode::Verify, PASSWORD));
    let first = c.connect().await.unwrap();
    s.sim.expire_sessions();
    let pools = c.get_all_records("pool").await.unwrap();
    assert_eq!(pools.len(), 1);
    let second = c.connect().await.unwrap();
    assert_ne!(first, second, "a new session was opened");

    // The event cache recovers too.
    let cache = EventCache::start(c.clone());
    assert!(
        cache
            .wait_for(Duration::from_secs(10), |c| c.status()
                == PoolStatus::Connected)
            .await
    );
    s.sim.expire_sessions();
    s.sim.add_bulk_vms(1);
    assert!(
        cache
            .wait_for(Duration::from_secs(10), |c| c.vms().len() == 1)
            .await,
        "{:?}",
        cache.status()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_member_redirects_to_its_master() {
    // A master and a member on the same port at two loopback addresses, as in a pool.
    let master_addr: SocketAddr = "127.0.0.2:0".parse().unwrap();
    let master = SimServer::start(master_addr, options(), false)
        .await
        .unwrap();
    let port = master.addr.port();
    let member_options = SimOptions {
        member_of: Some("127.0.0.2".into()),
        ..options()
    };
    let member = SimServer::start(
        format!("127.0.0.1:{port}").parse().unwrap(),
        member_options,
        false,
    )
    .await
    .expect("port free on 127.0.0.1 too");
    let c = client(&member.url, TlsMode::Verify, PASSWORD);
    c.connect().await.unwrap();
    assert_eq!(c.url(), format!("http://127.0.0.2:{port}"));
    let vms = c.get_all_records("VM").await.unwrap();
    assert!(!vms.is_empty());
}

/// With the member's certificate pinned, the master's (another self-signed one) is
/// pinned from the thumbprint the member sends with HOST_IS_SLAVE; a member that names
/// none leaves the old pin, and the master is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_member_hands_its_pin_over_to_the_master() {
    // A master and a member on one port at two loopback addresses, each with its own
    // self-signed certificate; the member names its master's when `names` says so.
    let pair = |member: &'static str, master: &'static str, names: bool| async move {
        let m = SimServer::start(format!("{master}:0").parse().unwrap(), options(), true)
            .await
            .unwrap();
        let fp = m.fingerprint.clone().unwrap();
        let options = SimOptions {
            member_of: Some(master.into()),
            master_thumbprint: names.then(|| fp.trim_start_matches("sha256:").into()),
            ..options()
        };
        let at = format!("{member}:{}", m.addr.port()).parse().unwrap();
        let s = SimServer::start(at, options, true)
            .await
            .expect("the master's port free on the member's address too");
        assert_ne!(s.fingerprint, m.fingerprint, "two certificates");
        (m, s)
    };
    let (master, member) = pair("127.0.0.1", "127.0.0.2", true).await;
    let member_pin = parse_fingerprint(member.fingerprint.as_deref().unwrap()).unwrap();
    let c = client(&member.url, TlsMode::Pinned(member_pin), PASSWORD);
    c.connect().await.unwrap();
    assert_eq!(c.url(), format!("https://127.0.0.2:{}", master.addr.port()));
    assert_eq!(
        c.tls_mode(),
        TlsMode::Pinned(parse_fingerprint(master.fingerprint.as_deref().unwrap()).unwrap()),
        "the master's certificate is pinned now"
    );
    assert!(!c.get_all_records("VM").await.unwrap().is_empty());

    // A member that does not name its master: the pin stays the member's, so the
    // master's other certificate is refused.
    let (_master, member) = pair("127.0.0.3", "127.0.0.4", false).await;
    let member_pin = parse_fingerprint(member.fingerprint.as_deref().unwrap()).unwrap();
    let c = client(&member.url, TlsMode::Pinned(member_pin), PASSWORD);
    let err = c.connect().await.unwrap_err();
    assert!(matches!(err, XapiError::Tls(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_reported_not_retried() {
    let s = sim(false).await;
    let c = client(&s.url, TlsMode::Verify, "wrong-password");
    let err = c.connect().await.unwrap_err();
    assert!(err.is("SESSION_AUTHENTICATION_FAILED"), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("refused the login for user 'root'"), "{msg}");
    assert!(
        !msg.contains("wrong-password"),
        "the password never appears: {msg}"
    );
    assert!(
        !format!(
            "{:?}",
            Login {
                url: s.url.clone(),
                username: "root".into(),
                password: "wrong-password".into(),
                tls: TlsMode::Verify
            }
        )
        .contains("wrong-password")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_trust_is_enforced() {
    let s = sim(true).await;
    let real = s.fingerprint.clone().unwrap();
    // Pinned: accepted.
    client(
        &s.url,
        TlsMode::Pinned(parse_fingerprint(&real).unwrap()),
        PASSWORD,
    )
    .connect()
    .await
    .unwrap();
    // Wrong pin: refused, naming both fingerprints.
    let wrong = parse_fingerprint(&format!("sha256:{}", ["AB"; 32].join(":"))).unwrap();
    let err = client(&s.url, TlsMode::Pinned(wrong), PASSWORD)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, XapiError::Tls(_)), "{err:?}");
    assert!(err.to_string().contains("mismatch"), "{err}");
    // Verified against the system roots: a self-signed pool is refused, and the error
    // shows the fingerprint to pin.
    let err = client(&s.url, TlsMode::Verify, PASSWORD)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, XapiError::Tls(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("tls_fingerprint = \"{real}\"")),
        "{err}"
    );
    // Verification off: works, and is visible as a warning.
    let insecure = client(&s.url, TlsMode::Insecure, PASSWORD);
    insecure.connect().await.unwrap();
    assert!(insecure.tls_mode().warning().is_some());
    assert!(TlsMode::Verify.warning().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_pool_and_faults_are_errors_not_hangs() {
    let s = sim(false).await;
    let c = client(&s.url, TlsMode::Verify, PASSWORD);
    c.connect().await.unwrap();
    s.sim.faults.lock().unwrap().http500_next = 1;
    let err = c.call("VM.get_all", vec![]).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    s.sim.faults.lock().unwrap().garbage_next = 1;
    let err = c.call("VM.get_all", vec![]).await.unwrap_err();
    assert!(err.to_string().contains("invalid JSON"), "{err}");
    // Read-only calls retry through a dropped connection.
    s.sim.faults.lock().unwrap().drop_next = 1;
    assert!(!c.get_all_records("VM").await.unwrap().is_empty());
    // Nothing listening: an error within the connect timeout.
    let port = s.addr.port();
    drop(s);
    let gone = client(
        &format!("http://127.0.0.1:{port}"),
        TlsMode::Verify,
        PASSWORD,
    );
    let t = Instant::now();
    let err = gone.connect().await.unwrap_err();
    assert!(matches!(err, XapiError::Transport(_)), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_lists_the_pools_bioxen_vms() {
    let s = sim(false).await;
    let c = client(&s.url, TlsMode::Verify, PASSWORD);
    lifecycle::create(&c, &spec("tagged-one"), &|_| {})
        .await
        .unwrap();
    s.sim.add_bulk_vms(2);
    let dir = std::env::temp_dir().join(format!("bioxen-ls-pool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bioxen.toml");
    std::fs::write(
        &config,
        format!(
            "[xcpng]\nurl = \"{}\"\nusername = \"root\"\npassword_env = \"TEST_POOL_PW\"\n",
            s.url
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_bioxen"))
        .args(["--config", config.to_str().unwrap(), "ls", "--json"])
        .env("TEST_POOL_PW", PASSWORD)
        .env("XDG_RUNTIME_DIR", &dir)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "only bioxen-tagged VMs: {rows:?}");
    assert_eq!(rows[0]["name"], "tagged-one");
    assert_eq!(rows[0]["kind"], "xcpng");
    assert_eq!(rows[0]["state"], "running");
    assert_eq!(rows[0]["ip"], "127.0.0.1");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(PASSWORD));

    // An unreachable pool is a warning; ls still succeeds.
    let port = s.addr.port();
    drop(s);
    std::fs::write(
        &config,
        format!("[xcpng]\nurl = \"http://127.0.0.1:{port}\"\npassword_env = \"TEST_POOL_PW\"\n"),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_bioxen"))
        .args(["--config", config.to_str().unwrap(), "ls"])
        .env("TEST_POOL_PW", PASSWORD)
        .env("XDG_RUNTIME_DIR", &dir)
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pool unreachable"), "{err}");
    assert!(!err.contains(PASSWORD));
}

/// A listener on loopback that answers every request on it with `answer(n)`, where n
/// counts the requests; the count is shared with the test.
async fn fake_pool(
    answer: impl Fn(usize, tokio::net::TcpStream) -> tokio::task::JoinHandle<()> + Send + 'static,
) -> (String, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(0usize));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let n = {
                let mut c = count.lock().unwrap();
                *c += 1;
                *c
            };
            answer(n, stream);
        }
    });
    (url, seen)
}

/// A pool answering with a redirect gets an error naming the target, and the login
/// (with the password in its body) never goes there.
#[tokio::test]
async fn redirects_from_a_pool_are_refused_and_named() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (elsewhere, reached) = fake_pool(|_, mut s| {
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            let _ = s.read(&mut buf).await;
        })
    })
    .await;
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        let target = format!("{elsewhere}/jsonrpc");
        let (pool, _) = fake_pool(move |_, mut s| {
            let head =
                format!("HTTP/1.1 {status}\r\nlocation: {target}\r\ncontent-length: 0\r\n\r\n");
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(head.as_bytes()).await;
            })
        })
        .await;
        let c = client(&pool, TlsMode::Verify, PASSWORD);
        let err = c.connect().await.unwrap_err().to_string();
        assert!(
            err.contains("redirect") && err.contains(&elsewhere),
            "{status}: {err}"
        );
        assert!(!err.contains(PASSWORD));
    }
    assert_eq!(
        *reached.lock().unwrap(),
        0,
        "a request followed the redirect"
    );
}

/// An endless reply is given up on at the limit: memory stays bounded and the error
/// says what happened.
#[tokio::test]
async fn oversized_and_endless_replies_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (pool, _) = fake_pool(|n, mut s| {
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            let _ = s.read(&mut buf).await;
            let chunk = vec![b' '; 64 * 1024];
            if n % 2 == 1 {
                // Chunked and endless.
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
                    .await;
                for _ in 0..(1 << 14) {
                    let head = format!("{:x}\r\n", chunk.len());
                    if s.write_all(head.as_bytes()).await.is_err()
                        || s.write_all(&chunk).await.is_err()
                        || s.write_all(b"\r\n").await.is_err()
                    {
                        return;
                    }
                }
            } else {
                // Announced as 200 MB.
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 200000000\r\n\r\n")
                    .await;
                let _ = s.write_all(&chunk).await;
            }
        })
    })
    .await;
    let c = client(&pool, TlsMode::Verify, PASSWORD);
    c.set_reply_limit(4 << 20);
    for _ in 0..2 {
        let started = Instant::now();
        let err = c.connect().await.unwrap_err().to_string();
        assert!(err.contains("more than 4 MiB"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}

/// Pool-supplied text reaches the terminal only after it is made safe: escape
/// sequences, bidi overrides and invisible characters in a VM's tag or power state
/// never reach `ls`'s table, while `ls --json` stays exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_never_prints_pool_text_raw() {
    let s = sim(false).await;
    let c = client(&s.url, TlsMode::Verify, PASSWORD);
    let vm = lifecycle::create(&c, &spec("plain"), &|_| {})
        .await
        .unwrap()
        .reference;
    let evil_id = "evil\u{1b}]0;owned\u{7}\u{1b}[2J\u{202E}cba\u{200B}\u{9b}31m";
    c.call(
        "VM.remove_from_other_config",
        vec![json!(vm), json!("bioxen:id")],
    )
    .await
    .unwrap();
    c.call(
        "VM.add_to_other_config",
        vec![json!(vm), json!("bioxen:id"), json!(evil_id)],
    )
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("bioxen-ls-evil-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bioxen.toml");
    std::fs::write(
        &config,
        format!(
            "[xcpng]\nurl = \"{}\"\npassword_env = \"TEST_POOL_PW\"\n",
            s.url
        ),
    )
    .unwrap();
    let ls = |json: bool| {
        let mut args = vec!["--config", config.to_str().unwrap(), "ls"];
        if json {
            args.push("--json");
        }
        std::process::Command::new(env!("CARGO_BIN_EXE_bioxen"))
            .args(args)
            .env("TEST_POOL_PW", PASSWORD)
            .env("XDG_RUNTIME_DIR", &dir)
            .output()
            .unwrap()
    };
    let table = String::from_utf8(ls(false).stdout).unwrap();
    assert!(table.contains("evil]0;owned[2Jcba31m"), "{table:?}");
    for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202E}', '\u{200B}'] {
        assert!(
            !table.contains(bad),
            "{bad:?} reached the terminal: {table:?}"
        );
    }
    let rows: serde_json::Value = serde_json::from_slice(&ls(true).stdout).unwrap();
    assert_eq!(rows[0]["name"], evil_id, "--json stays exact");
}

/// A request nested thousands of levels deep is an error answer, not a crash.
#[tokio::test]
async fn deeply_nested_requests_are_refused_and_the_simulator_lives_on() {
    let s = sim(false).await;
    let depth = 3000;
    let body = format!(
        "<?xml version=\"1.0\"?><methodCall><methodName>session.login_with_password</methodName><params><param>{}{}</param></params></methodCall>",
        "<value><array><data>".repeat(depth),
        "</data></array></value>".repeat(depth)
    );
    bioxen::xapi::tls::install_default_provider();
    let http = reqwest::Client::new();
    let reply = http
        .post(format!("{}/", s.url))
        .header("content-type", "text/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    let text = reply.text().await.unwrap();
    assert!(text.contains("nested deeper"), "{text}");
    // Still serving.
    let c = client(&s.url, TlsMode::Verify, PASSWORD);
    c.connect().await.unwrap();
}
