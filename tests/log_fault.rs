//! A disk that fills while a VM's output is logged: the log stops and says so, and the
//! VM goes on. Its own test binary: the file size limit that stands in for the full
//! disk applies to the whole process.

mod common;

use bioxen::{Event, VmKind, VmOptions};
use common::{WAIT, manager};

const LIMIT: u64 = 64 << 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_log_with_a_message_and_the_vm_goes_on() {
    // Writes past RLIMIT_FSIZE fail with EFBIG, as writes to a full disk fail with
    // ENOSPC; SIGXFSZ, which would end the process instead, is ignored.
    // SAFETY: plain libc calls on this process's own signal disposition and limits.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let limit = libc::rlimit {
            rlim_cur: LIMIT,
            rlim_max: libc::RLIM_INFINITY,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let m = manager();
    let mut events = m.subscribe();
    let id = m
        .create_interactive_vm(Some("full"), VmKind::Local, VmOptions::default())
        .await
        .unwrap();
    m.wait_ready(&id, WAIT).await.unwrap();
    let path = m.toggle_output_log(id).unwrap().expect("logging is on");
    m.send_input(id, "for i = 1, 4000 do print(string.rep('x', 60)) end\r")
        .unwrap();

    let said = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(Event::Error(Some(vm), text)) if vm == id => return text,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("events ended: {e}"),
            }
        }
    })
    .await
    .expect("the log never said it stopped");
    assert!(
        said.contains("output log stopped") && said.contains("goes on"),
        "{said}"
    );

    // The VM is unharmed, and the log is off: toggling starts a new one.
    let r = m.execute_string(&id, "6 * 7", WAIT).await.unwrap();
    assert_eq!(r.output, "42\n");
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size <= LIMIT, "{size} bytes");
    assert!(
        m.toggle_output_log(id).unwrap().is_some(),
        "the log was still on after it stopped"
    );
    m.shutdown().await;
}
