//! Local VMs through the manager API, against real PTYs and the real embedded REPL.

use crate::common;

use std::time::Duration;

use bioxen::{Error, VmKind, VmOptions, VmState};
use common::{WAIT, eventually, manager, process_group_alive};

/// A new local VM with the default interpreter, at its prompt.
async fn ready_vm(m: &bioxen::Manager) -> bioxen::VmId {
    let id = m
        .create_interactive_vm(None, VmKind::Local, VmOptions::default())
        .await
        .unwrap();
    m.wait_ready(&id, WAIT).await.unwrap();
    id
}

/// The original validation flow: create, set a global, print it, read it back,
/// terminate, and nothing of the VM is left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_flow_basic() {
    let m = manager();
    let id = m
        .create_interactive_vm(Some("test_basic"), VmKind::Local, VmOptions::default())
        .await
        .unwrap();
    assert_eq!(m.info(id).unwrap().name, "test_basic");
    // Typed ahead of the prompt on purpose: input sent right after creation must not
    // be lost while the interpreter starts.
    m.send_input("test_basic", "x = 42\n").unwrap();
    m.send_input("test_basic", "print('Value:', x)\n").unwrap();
    let out = match m.read_until("test_basic", "Value:\t42", WAIT).await {
        Ok(out) => out,
        Err(e) => panic!(
            "{e}: screen:\n{}",
            m.with_screen("test_basic", |s| s.text()).unwrap()
        ),
    };
    assert!(out.contains("Value:\t42"), "{out:?}");

    let pid = m.info("test_basic").unwrap().pid.unwrap();
    // A child of the VM in its process group must die with it.
    m.send_input("test_basic", "os.execute('sleep 300 &')\n")
        .unwrap();
    assert!(
        eventually(WAIT, || common::group_members(pid) >= 2).await,
        "background sleep did not start"
    );

    let state = m.terminate_vm_session("test_basic").await.unwrap();
    assert!(
        matches!(state, VmState::Killed(_) | VmState::Exited(_)),
        "{state:?}"
    );
    assert!(
        eventually(WAIT, || !process_group_alive(pid)).await,
        "processes of the VM remain"
    );
    assert!(matches!(
        m.read_output("test_basic"),
        Err(Error::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_string_returns_exactly_the_codes_output() {
    let m = manager();
    let id = ready_vm(&m).await;
    common::shares_state_between_calls(&m, &id).await;

    let r = m.execute_string(&id, "x = 6 * 7", WAIT).await.unwrap();
    assert_eq!(r.output, "");
    assert!(r.ok());
    let r = m.execute_string(&id, "x, 'two'", WAIT).await.unwrap();
    assert_eq!(r.output, "42\ttwo\n");
    let r = m
        .execute_string(&id, "for i = 1, 3 do\n  print('line', i)\nend", WAIT)
        .await
        .unwrap();
    assert_eq!(r.output, "line\t1\nline\t2\nline\t3\n");
    let r = m
        .execute_string(&id, "io.write('no newline') y = 1", WAIT)
        .await
        .unwrap();
    assert_eq!(r.output, "no newline");
    let r = m.execute_string(&id, "error('boom')", WAIT).await.unwrap();
    assert!(
        r.error.as_deref().unwrap().starts_with("(execute):1: boom"),
        "{r:?}"
    );
    let r = m.execute_string(&id, "x x", WAIT).await.unwrap();
    assert!(
        r.error.as_deref().unwrap().contains("syntax error"),
        "{r:?}"
    );
    // The VM keeps its state through errors.
    let r = m.execute_string(&id, "x", WAIT).await.unwrap();
    assert_eq!(r.output, "42\n");
    m.terminate_vm_session(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_interrupts_a_runaway_loop_and_keeps_state() {
    let m = manager();
    let id = ready_vm(&m).await;
    m.execute_string(&id, "kept = 'still here'", WAIT)
        .await
        .unwrap();
    m.read_output(id).unwrap();
    m.send_input(id, "while true do end\r").unwrap();
    // Wait until the loop is running: echoed, and no prompt after it.
    let running = m
        .wait_screen(&id, WAIT, |s| {
            s.text_before_cursor().is_empty() && s.text().contains("while true do end")
        })
        .await
        .unwrap();
    assert!(running, "loop did not start");
    // Shown as using the CPU: any clear share, since on a loaded 2-core machine the
    // loop gets only its turn (four flooding VMs beside it kept it under 50 %).
    let cpu_busy = eventually(WAIT, || {
        m.info(id).unwrap().cpu_percent.unwrap_or(0.0) > 5.0
    })
    .await;
    assert!(cpu_busy, "the loop should be using the CPU");
    m.send_input(id, "\x03").unwrap();
    let out = m.read_until(&id, "interrupted!", WAIT).await.unwrap();
    assert!(out.contains("interrupted!"), "{out:?}");
    m.wait_ready(&id, WAIT).await.unwrap();
    let r = m.execute_string(&id, "kept", WAIT).await.unwrap();
    assert_eq!(r.output, "still here\n");
    assert_eq!(m.info(id).unwrap().state, VmState::Running);
    m.terminate_vm_session(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_vms_start_concurrently_and_one_dies_alone() {
    let m = manager();
    let creates = (0..20).map(|i| {
        let m = m.clone();
        async move {
            let id = format!("vm{i:02}");
            m.create_interactive_vm(Some(&id), VmKind::Local, VmOptions::default())
                .await
                .unwrap();
            m.wait_ready(&id, Duration::from_secs(60)).await.unwrap();
            id
        }
    });
    let ids = futures_util::future::join_all(creates).await;
    assert_eq!(m.list().len(), 20);
    let victim_pid = m.info("vm07").unwrap().pid.unwrap();
    let state = m.kill("vm07").await.unwrap();
    assert!(matches!(state, VmState::Killed(libc::SIGTERM)), "{state:?}");
    assert!(eventually(WAIT, || !process_group_alive(victim_pid)).await);
    for id in ids.iter().filter(|id| *id != "vm07") {
        assert_eq!(m.info(id).unwrap().state, VmState::Running, "{id}");
        let r = m
            .execute_string(id, &format!("'{id}'"), WAIT)
            .await
            .unwrap();
        assert_eq!(r.output, format!("{id}\n"));
    }
    // The dead VM's last screen is still there to read.
    let text = m.with_screen("vm07", |s| s.text()).unwrap();
    assert!(text.contains("> "), "{text:?}");
    m.shutdown().await;
    assert!(m.list().iter().all(|v| !v.state.is_alive()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_and_signal_are_reported() {
    let m = manager();
    let a = m
        .create_interactive_vm(Some("exits"), VmKind::Local, VmOptions::default())
        .await
        .unwrap();
    let b = m
        .create_interactive_vm(Some("killed"), VmKind::Local, VmOptions::default())
        .await
        .unwrap();
    m.wait_ready(&a, WAIT).await.unwrap();
    m.wait_ready(&b, WAIT).await.unwrap();
    m.send_input(a, "os.exit(3)\r").unwrap();
    assert_eq!(m.wait_exit(&a, WAIT).await.unwrap(), VmState::Exited(3));
    assert_eq!(m.info(a).unwrap().state.label(), "exited(3)");

    let pid = m.info(b).unwrap().pid.unwrap();
    // SAFETY: plain kill(2) of the VM's own process.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert_eq!(
        m.wait_exit(&b, WAIT).await.unwrap(),
        VmState::Killed(libc::SIGKILL)
    );
    assert_eq!(m.info(b).unwrap().state.label(), "killed(SIGKILL)");

    // Input to a dead session is a session error; restarting brings it back.
    assert!(matches!(m.send_input(a, "1\r"), Err(Error::Session { .. })));
    m.restart(&a).await.unwrap();
    m.wait_ready(&a, WAIT).await.unwrap();
    let r = m.execute_string(&a, "1 + 1", WAIT).await.unwrap();
    assert_eq!(r.output, "2\n");
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_typed() {
    let m = manager();
    assert!(matches!(m.send_input("nope", "x"), Err(Error::NotFound(_))));
    let unknown = "vax".parse::<VmKind>().unwrap_err();
    assert_eq!(unknown, bioxen::protocol::UnknownKind("vax".into()));
    let bad = m
        .create_interactive_vm(Some("bad name!"), VmKind::Local, VmOptions::default())
        .await;
    assert!(matches!(bad, Err(Error::Manager(_))), "{bad:?}");
    let missing = VmOptions {
        command: Some(vec!["/nonexistent/lua".into()]),
        ..VmOptions::default()
    };
    let r = m
        .create_interactive_vm(Some("ghost"), VmKind::Local, missing)
        .await;
    assert!(
        matches!(r, Err(Error::Manager(ref msg)) if msg.contains("/nonexistent/lua")),
        "{r:?}"
    );
    m.create_interactive_vm(Some("dup"), VmKind::Local, VmOptions::default())
        .await
        .unwrap();
    let dup = m
        .create_interactive_vm(Some("dup"), VmKind::Local, VmOptions::default())
        .await;
    assert!(matches!(dup, Err(Error::Manager(_))));
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_reaches_the_program() {
    let m = manager();
    let id = ready_vm(&m).await;
    let r = m
        .execute_string(&id, "io.popen('stty size'):read('a')", WAIT)
        .await
        .unwrap();
    assert_eq!(r.output, "24 80\n\n");
    m.resize(id, bioxen::Size::new(33, 101)).unwrap();
    let r = m
        .execute_string(&id, "io.popen('stty size'):read('a')", WAIT)
        .await
        .unwrap();
    assert_eq!(r.output, "33 101\n\n");
    assert_eq!(
        m.with_screen(id, |s| s.size()).unwrap(),
        bioxen::Size::new(33, 101)
    );
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_log_records_raw_output_while_on() {
    let m = manager();
    let id = m
        .create_interactive_vm(Some("logged"), VmKind::Local, VmOptions::default())
        .await
        .unwrap();
    m.wait_ready(&id, WAIT).await.unwrap();
    let path = m.toggle_output_log(id).unwrap().expect("logging is on");
    m.execute_string(&id, "print('\\27[31mred\\27[0m', 'logged line')", WAIT)
        .await
        .unwrap();
    assert_eq!(
        m.toggle_output_log(id).unwrap(),
        None,
        "logging is off again"
    );
    m.execute_string(&id, "print('after the log')", WAIT)
        .await
        .unwrap();
    let log = std::fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&log);
    assert!(
        text.contains("\x1b[31mred\x1b[0m\tlogged line"),
        "raw bytes, escapes included: {text:?}"
    );
    assert!(!text.contains("after the log"));
    m.shutdown().await;
}

/// Starts `sleep 600` as the leader of a new session and process group whose id is
/// exactly `pid` (through `ns_last_pid`, which needs root): an unrelated program that
/// was handed the id of an exited VM's process group. `None` when another process of
/// this busy machine was handed the id first: the caller tries again with a new VM.
fn impostor_with_pid(pid: u32) -> Option<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let knob = "/proc/sys/kernel/ns_last_pid";
    for _ in 0..200 {
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return None;
        }
        std::fs::write(knob, (pid - 1).to_string()).unwrap_or_else(|e| {
            panic!(
                "this test plants a process with a chosen pid through {knob}, which needs root: {e}"
            )
        });
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("600");
        // SAFETY: setsid is async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        if child.id() == pid {
            return Some(child);
        }
        // Another thread forked between our write and our fork; try again.
        let _ = child.kill();
        let _ = child.wait();
    }
    None
}

/// Runs a VM to its exit and plants a stranger in its old process group id. The id is
/// free only once the server has reaped the VM, so this waits for that (a zombie the
/// server never reaps fails here); another test may take the id first, so this tries
/// up to five VMs.
async fn dead_vm_and_stranger(m: &bioxen::Manager) -> (bioxen::VmId, std::process::Child) {
    for _ in 0..5 {
        let id = ready_vm(m).await;
        let pid = m.info(id).unwrap().pid.unwrap();
        m.send_input(id, "os.exit(0)\n").unwrap();
        assert!(
            eventually(WAIT, || !m.info(id).unwrap().state.is_alive()).await,
            "the VM did not exit"
        );
        assert!(eventually(WAIT, || !process_group_alive(pid)).await);
        assert!(
            eventually(WAIT, || !std::path::Path::new(&format!("/proc/{pid}"))
                .exists())
            .await,
            "the server never reaped the VM's process {pid}"
        );
        if let Some(stranger) = impostor_with_pid(pid) {
            return (id, stranger);
        }
    }
    panic!("five times running, another process took an exited VM's pid before the test could");
}

/// Once a VM has exited and its process group is empty, the group's id can be handed
/// to an unrelated program; stopping the dead VM, or shutting down, must not signal it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_dead_vm_never_signals_a_group_that_reused_its_id() {
    for how in ["terminate", "shutdown"] {
        let m = manager();
        let (id, mut stranger) = dead_vm_and_stranger(&m).await;
        match how {
            "terminate" => {
                m.terminate_vm_session(&id).await.unwrap();
            }
            _ => m.shutdown().await,
        }
        std::thread::sleep(Duration::from_millis(100));
        let alive = stranger.try_wait().unwrap().is_none();
        let _ = stranger.kill();
        let _ = stranger.wait();
        assert!(
            alive,
            "{how} of the exited VM killed an unrelated process group"
        );
    }
}

/// A paste larger than the input limit is refused with the real sizes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_paste_is_refused_with_its_size() {
    let m = manager();
    let id = ready_vm(&m).await;
    let err = m
        .send_input(id, vec![b'x'; 20 << 20])
        .unwrap_err()
        .to_string();
    assert!(err.contains("20.0M") && err.contains("16.0M"), "{err}");
    assert!(!err.contains("0 KiB"), "{err}");
    m.terminate_vm_session(&id).await.unwrap();
}

/// A working directory that does not exist is named in the error, not the program.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_working_directory_is_named() {
    let mut config = common::manager_config();
    config.local_cwd = Some("/nonexistent/experiments".into());
    let m = bioxen::Manager::new(config);
    let err = m
        .create_interactive_vm(None, VmKind::Local, VmOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/experiments"), "{err}");
}

/// Output logs are private files, never written through a planted symlink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_logs_are_private_and_never_follow_symlinks() {
    use std::os::unix::fs::PermissionsExt;
    let mut config = common::manager_config();
    let dir = std::env::temp_dir().join(format!("bioxen-logs-priv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    config.logs.dir = dir.join("logs");
    config.logs.enabled = true;
    let m = bioxen::Manager::new(config);
    let id = m
        .create_interactive_vm(Some("logged"), VmKind::Local, VmOptions::default())
        .await
        .unwrap();
    m.send_input(id, "print('to' .. 'the log')\n").unwrap();
    let log = dir.join(format!("logs/{}.log", id.0));
    assert!(
        eventually(WAIT, || std::fs::read_to_string(&log)
            .is_ok_and(|t| t.contains("tothe log")))
        .await
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&log), 0o600);
    assert_eq!(mode(&dir.join("logs")), 0o700);
    m.terminate_vm_session(&id).await.unwrap();

    // Someone plants a symlink where the next VM's log will go: logs are named by
    // number, and numbers count up.
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let next = dir.join(format!("logs/{}.log", id.0 + 1));
    std::os::unix::fs::symlink(&victim, &next).unwrap();
    let id = m
        .create_interactive_vm(Some("planted"), VmKind::Local, VmOptions::default())
        .await
        .unwrap();
    assert_eq!(id.0, next_id(&next), "the planted name is the new VM's");
    m.send_input(id, "print('secret output')\n").unwrap();
    m.read_until(&id, "secret output", WAIT).await.unwrap();
    m.terminate_vm_session(&id).await.unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let _ = std::fs::remove_dir_all(&dir);
}

fn next_id(planted: &std::path::Path) -> u64 {
    let name = planted.file_name().unwrap().to_string_lossy();
    name.trim_end_matches(".log").parse().unwrap()
}

/// A program that floods terminal queries (`ESC [ c`) and never reads its input gets
/// its answers dropped past a bound, with one notice, instead of the server holding
/// them without end; what the user types still gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_to_a_program_that_never_reads_are_bounded() {
    let m = manager();
    let mut events = m.subscribe();
    // A program that never reads: a raw terminal (so the kernel neither echoes nor
    // drops what it is sent) and device-attribute queries as fast as `yes` writes.
    let options = VmOptions {
        command: Some(vec![
            "sh".into(),
            "-c".into(),
            "stty raw -echo; exec yes \"$(printf '\\033[c')\"".into(),
        ]),
        ..VmOptions::default()
    };
    let id = m
        .create_interactive_vm(None, VmKind::Local, options)
        .await
        .unwrap();
    let said = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(bioxen::Event::Error(Some(vm), text)) if vm == id => return text,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("events ended: {e}"),
            }
        }
    })
    .await
    .expect("no notice that answers were dropped");
    assert!(
        said.contains("does not read its input") && said.contains("dropped"),
        "{said}"
    );
    // The user can still type: the answers took only their share of the bound.
    m.send_input(id, "typed").unwrap();
    m.kill(&id).await.unwrap();
}

/// A pasted line of megabytes costs the embedded REPL's editor time in proportion to
/// its length: 8 MB took minutes when each batch of keys re-compared the whole line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pasted_line_of_megabytes_takes_linear_time() {
    let m = manager();
    let id = ready_vm(&m).await;
    let started = std::time::Instant::now();
    m.send_input(id, format!("x = '{}'\r", "a".repeat(8 << 20)))
        .unwrap();
    m.send_input(id, "print('length', #x)\r").unwrap();
    let out = m
        .read_until(&id, "length\t8388608", Duration::from_secs(60))
        .await;
    let took = started.elapsed();
    assert!(out.is_ok(), "{out:?} after {took:?}");
    assert!(took < Duration::from_secs(20), "an 8 MB line took {took:?}");
    m.kill(&id).await.unwrap();
}

/// A session keeps its number through a rename, and a number is never given again: a
/// VM made later under a removed VM's name is another VM, and the old number names
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_keeps_its_number_and_numbers_are_never_reused() {
    let m = manager();
    let first = m
        .create_interactive_vm(Some("numbered"), VmKind::Local, VmOptions::default())
        .await
        .unwrap();
    m.rename(first, "renamed").unwrap();
    assert_eq!(m.resolve("renamed").unwrap(), first);
    assert!(m.resolve("numbered").is_err(), "the old name is free");
    assert_eq!(m.info(first).unwrap().name, "renamed");
    m.kill(first).await.unwrap();
    m.remove(first).unwrap();
    let second = m
        .create_interactive_vm(Some("renamed"), VmKind::Local, VmOptions::default())
        .await
        .unwrap();
    assert_ne!(second, first, "a number was given twice");
    assert!(
        matches!(m.info(first), Err(Error::NotFound(_))),
        "the removed VM's number names the new one"
    );
    m.terminate_vm_session(second).await.unwrap();
}

/// A VM is its process group: a busy child it starts with `os.execute` counts in its
/// CPU, though its interpreter waits at the prompt; ending the VM ends the child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_child_counts_in_its_vms_cpu() {
    let m = manager();
    let id = common::ready_local_vm(&m, VmOptions::default()).await;
    let pgid = m.info(id).unwrap().pid.unwrap();
    let r = m
        .execute_string(id, "os.execute(\"sh -c 'while :; do :; done' &\")", WAIT)
        .await
        .unwrap();
    assert!(r.ok(), "{r:?}");
    assert!(
        eventually(WAIT, || m
            .info(id)
            .unwrap()
            .cpu_percent
            .is_some_and(|c| c > 10.0))
        .await,
        "the child's CPU is the VM's: {:?}",
        m.info(id).unwrap()
    );
    assert!(
        common::group_members(pgid) >= 2,
        "the child is in the VM's process group"
    );
    m.terminate_vm_session(id).await.unwrap();
    assert!(eventually(WAIT, || !process_group_alive(pgid)).await);
}
