//! What the server keeps of each VM's CPU, memory, progress and work, and how the
//! dashboard, `bioxen ls` and the pool's RRDs feed and read it.

use std::time::Duration;

use crate::common::cli_dir::{KillServer, bioxen_in, ready_vm, said, server_in, workdir};
use crate::common::{self, WAIT, eventually, manager};

use bioxen::protocol::{CreateOptions, HistoryOf, VmRef, Window};
use bioxen::{VmKind, VmOptions};

/// The rows of text `app` draws in a `cols`x`rows` terminal, with no screens.
fn drawn(app: &bioxen::ui::app::App, cols: u16, rows: u16) -> Vec<String> {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    let mut terminal = Terminal::new(TestBackend::new(cols, rows)).unwrap();
    let screens: std::collections::HashMap<bioxen::VmId, bioxen::term::Screen> = Default::default();
    terminal
        .draw(|f| bioxen::ui::draw::draw(f, app, &screens))
        .unwrap();
    let buf = terminal.backend().buffer();
    (0..rows)
        .map(|y| (0..cols).map(|x| buf[(x, y)].symbol()).collect())
        .collect()
}

/// A real loop in a real interpreter: the list's sparkline rises while it runs and
/// falls once the VM sleeps at its prompt, and the ring holds both, with the work
/// the prompt markers told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_loop_raises_the_sparkline_and_the_prompt_lowers_it() {
    let m = manager();
    let id = common::ready_local_vm(&m, VmOptions::default()).await;
    m.send_input(
        id,
        "local t=os.clock() while os.clock()-t<5 do end print('rested')\r",
    )
    .unwrap();
    // Five seconds of CPU time: on a loaded machine they spread over more of the clock,
    // at a lower share of a core, so the line is asked to rise, not to reach the top.
    let last = |m: &bioxen::Manager| m.info(id).unwrap().recent_cpu.last().copied();
    assert!(
        eventually(WAIT, || last(&m).is_some_and(|c| c >= 20)).await,
        "the loop shows: {:?}",
        m.info(id).unwrap().recent_cpu
    );
    // The newest step is ten seconds: it is idle ten seconds after the loop ends.
    assert!(
        eventually(Duration::from_secs(60), || last(&m) == Some(0)).await,
        "the sleep shows: {:?}",
        m.info(id).unwrap().recent_cpu
    );
    let info = m.info(id).unwrap();
    assert!(
        info.recent_cpu.iter().any(|&c| c >= 20),
        "the loop is still on the line: {:?}",
        info.recent_cpu
    );

    let series = m
        .history(&HistoryOf::Vm(VmRef::Id(id)), Window::TenMinutes)
        .unwrap();
    assert_eq!(series.step_secs, 1);
    // Five seconds of CPU time are about 500 %·s however the loop's seconds were
    // spread: on a loaded machine no single second may reach a third of a core.
    let spent: f32 = series.cpu_percent.iter().flatten().sum();
    assert!(
        spent > 350.0,
        "the loop's CPU time: {:?}",
        series.cpu_percent
    );
    let busy_at = series
        .cpu_percent
        .iter()
        .position(|c| c.is_some_and(|c| c > 10.0))
        .expect("a second of the loop at work");
    // The line fell as soon as the step of the clock under way held only idle
    // seconds: the ring ends at rest, after the loop.
    assert!(
        busy_at + 1 < series.len() && series.cpu_percent.last() == Some(&Some(0.0)),
        "idle at the end: {:?}",
        series.cpu_percent
    );
    assert!(
        series.busy_percent.contains(&Some(100)) && series.busy_percent.last() == Some(&Some(0)),
        "busy while it ran, at its prompt now: {:?}",
        series.busy_percent
    );
    assert!(
        series
            .rss_bytes
            .last()
            .unwrap()
            .is_some_and(|b| b > 1 << 20)
    );

    // In the list, as a researcher sees it at 200x60: a high block, then the floor.
    let mut app = bioxen::ui::app::App::new(
        bioxen::keymap::Keymap::default(),
        ratatui::layout::Rect::new(0, 0, 200, 60),
    );
    app.set_rows(m.list());
    let row = drawn(&app, 200, 60)
        .into_iter()
        .find(|l| l.starts_with("│") && l.contains(&info.name))
        .unwrap();
    let spark: String = row.chars().filter(|c| ('▁'..='█').contains(c)).collect();
    // The loop's steps stand above the floor (20% of a core is the third height).
    assert!(spark.chars().any(|c| c >= '▃'), "{row}");
    assert!(spark.ends_with('▁'), "{row}");
    m.terminate_vm_session(id).await.unwrap();
}

/// `bioxen ls --json --history` gives scripts each VM's rings, by window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_gives_the_rings_to_scripts() {
    let dir = workdir("ls-history", "");
    let server = KillServer(dir.clone());
    let client = server_in(&dir).await;
    let vm = ready_vm(&client, "ringed", VmKind::Local, CreateOptions::default()).await;
    // A first figure takes two looks of the sampler.
    let measured = async {
        loop {
            let series = client
                .history(HistoryOf::Vm(VmRef::Id(vm)), Window::TenMinutes)
                .await
                .unwrap();
            if series.rss_bytes.iter().flatten().count() >= 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(WAIT, measured)
        .await
        .expect("figures within the wait");
    let out = bioxen_in(&dir, &["ls", "--json", "--history"]);
    assert!(out.status.success(), "{}", said(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "ringed")
        .unwrap_or_else(|| panic!("{rows}"));
    let fine = &row["history"]["10m"];
    assert_eq!(fine["step_secs"], 1, "{row}");
    assert!(fine["rss_bytes"].as_array().unwrap().len() >= 2, "{row}");
    assert_eq!(row["history"]["24h"]["step_secs"], 10, "{row}");
    // Without --history, no rings: the list stays small for scripts that poll it.
    let out = bioxen_in(&dir, &["ls", "--json"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("\"history\""));
    // `kill-server` reads the directory: the server goes before it does.
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
