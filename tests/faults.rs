//! Faults and hostile output: nothing crashes, nothing hangs, memory stays bounded.

mod common;

use std::time::{Duration, Instant};

use bioxen::{VmKind, VmOptions, VmState};
use common::{WAIT, manager};

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib / 1024.0
}

fn sh(script: &str) -> VmOptions {
    VmOptions {
        command: Some(vec!["sh".into(), "-c".into(), script.into()]),
        ..VmOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_output_is_survived_with_bounded_memory() {
    let m = manager();
    let before = rss_mib();
    let cases = [
        // Random bytes may stop inside an escape sequence, which would then take the
        // marker's first letter as its final byte: CAN ends it first, as in the
        // unterminated case below.
        (
            "garbage",
            "head -c 5000000 /dev/urandom; printf '\\030'; echo; echo END-garbage",
        ),
        (
            "invalid-utf8",
            "i=0; while [ $i -lt 20000 ]; do printf '\\377\\376\\300\\200 bad \\355\\240\\200\\n'; i=$((i+1)); done; echo END-invalid-utf8",
        ),
        (
            "long-line",
            "head -c 10000000 /dev/zero | tr '\\000' a; echo; echo END-long-line",
        ),
        // A terminal swallows everything after an unterminated string until it ends;
        // CAN (0x18) cancels it, as on a real terminal.
        (
            "unterminated",
            "printf 'before\\033[38;5;'; printf '\\033]0;title without end'; printf '\\033P unterminated dcs'; printf '\\030'; echo; echo END-unterminated",
        ),
        (
            "escape-flood",
            "yes \"$(printf '\\033[31m\\033[1;44m\\033[0m\\033[2J\\033[H\\033[?1049h\\033[?1049l')\" | head -c 10000000; echo; echo END-escape-flood",
        ),
    ];
    for (name, script) in cases {
        m.create_interactive_vm(Some(name), VmKind::Local, sh(script))
            .await
            .unwrap();
    }
    for (name, _) in cases {
        let state = m.wait_exit(name, Duration::from_secs(120)).await.unwrap();
        assert_eq!(state, VmState::Exited(0), "{name}");
        let text = m.with_screen(name, |s| s.text()).unwrap();
        assert!(
            text.contains(&format!("END-{name}")),
            "{name} finished with a readable screen: {text:?}"
        );
        let out = m.read_output(name).unwrap();
        // At most 1 MiB of bytes is kept; each becomes at most one character.
        let chars = out.chars().count();
        assert!(
            chars <= 1024 * 1024 + 200,
            "{name}: the unread output is bounded ({chars} characters)"
        );
        m.with_screen(name, |s| {
            let _ = s.view(usize::MAX).screen().contents();
        })
        .unwrap();
    }
    let grown = rss_mib() - before;
    assert!(
        grown < 150.0,
        "memory grew {grown:.0} MiB for 30 MB of hostile output"
    );
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_paste_into_a_vm_that_does_not_read_never_blocks() {
    let m = manager();
    m.create_interactive_vm(Some("deaf"), VmKind::Local, sh("sleep 120"))
        .await
        .unwrap();
    let other = m
        .create_interactive_vm(Some("other"), VmKind::Local, VmOptions::default())
        .await
        .unwrap();
    m.wait_ready(&other, WAIT).await.unwrap();
    let paste = "x = 1 -- a line of a very long paste\n".repeat(1024 * 1024 / 38);
    let t = Instant::now();
    m.send_input("deaf", &paste).unwrap();
    m.send_input("deaf", &paste).unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "queuing input never waits for the VM"
    );
    // Everything else keeps working while the paste waits.
    let r = m.execute_string(&other, "6 * 7", WAIT).await.unwrap();
    assert_eq!(r.output, "42\n");
    assert!(!m.list().is_empty());
    // Beyond the input limit the paste is refused with a message, not queued forever.
    let mut refused = false;
    for _ in 0..20 {
        if let Err(e) = m.send_input("deaf", &paste) {
            assert!(e.to_string().contains("not reading its input"), "{e}");
            refused = true;
            break;
        }
    }
    assert!(refused, "the input queue is bounded");
    let t = Instant::now();
    let state = m.kill("deaf").await.unwrap();
    assert!(matches!(state, VmState::Killed(_)), "{state:?}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "killing it does not hang on the queued input"
    );
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_floods_do_not_delay_typing_elsewhere() {
    let m = manager();
    let typing = m
        .create_interactive_vm(Some("typing"), VmKind::Local, VmOptions::default())
        .await
        .unwrap();
    m.wait_ready(&typing, WAIT).await.unwrap();
    m.attach(typing).unwrap();
    let before = rss_mib();
    for i in 0..50 {
        let id = format!("flood{i:02}");
        m.create_interactive_vm(Some(&id), VmKind::Local, VmOptions::default())
            .await
            .unwrap();
        m.wait_ready(&id, WAIT).await.unwrap();
        m.send_input(
            &id,
            "local n = 0 while true do n = n + 1 print(n, string.rep('#', 50)) end\r",
        )
        .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut latencies = Vec::new();
    let mut typed = String::new();
    for i in 0..40 {
        let c = (b'a' + (i % 26) as u8) as char;
        typed.push(c);
        let expected = format!("> {typed}");
        let t = Instant::now();
        m.send_input(typing, c.to_string()).unwrap();
        let seen = m
            .wait_screen(&typing, Duration::from_secs(10), |s| {
                s.text_before_cursor() == expected
            })
            .await
            .unwrap();
        assert!(seen, "echo of {c}");
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = latencies[latencies.len() / 2];
    eprintln!(
        "echo while 50 VMs flood: median {median:.2} ms, max {:.2} ms",
        latencies[latencies.len() - 1]
    );
    assert!(
        median < 100.0,
        "echo median {median:.1} ms with 50 floods: {latencies:?}"
    );
    let grown = rss_mib() - before;
    assert!(grown < 300.0, "memory grew {grown:.0} MiB with 50 floods");
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_going_away_and_coming_back_is_followed() {
    use std::sync::Arc;
    let server =
        bioxen::sim::SimServer::start("127.0.0.1:0".parse().unwrap(), Default::default(), false)
            .await
            .unwrap();
    let (sim, addr) = (server.sim.clone(), server.addr);
    let client = Arc::new(
        bioxen::xapi::XapiClient::new(bioxen::xapi::Login {
            url: server.url.clone(),
            username: "root".into(),
            password: "password".into(),
            tls: bioxen::xapi::tls::TlsMode::Verify,
        })
        .unwrap(),
    );
    let cache = bioxen::xapi::EventCache::start(client);
    use bioxen::xapi::PoolStatus;
    assert!(
        cache
            .wait_for(WAIT, |c| c.status() == PoolStatus::Connected)
            .await
    );
    // The pool stops answering: the cache says so and keeps retrying.
    drop(server);
    assert!(
        cache
            .wait_for(WAIT, |c| matches!(c.status(), PoolStatus::Retrying { .. }))
            .await,
        "{:?}",
        cache.status()
    );
    // It comes back (its toolstack restarted: sessions are gone) with a change made meanwhile.
    sim.expire_sessions();
    sim.add_bulk_vms(3);
    // The old listener goes with its aborted task, which the runtime drops when it
    // gets to it: the port is taken again once it is free.
    let deadline = std::time::Instant::now() + WAIT;
    let _back = loop {
        match bioxen::sim::SimServer::start_with(sim.clone(), addr, false).await {
            Ok(server) => break server,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                assert!(std::time::Instant::now() < deadline, "{addr} stays taken");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(
        cache
            .wait_for(Duration::from_secs(60), |c| c.status()
                == PoolStatus::Connected
                && c.vms().len() == 3)
            .await,
        "{:?}",
        cache.status()
    );
}
