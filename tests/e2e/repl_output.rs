//! The embedded REPL's block-buffered output shows exactly what unbuffered output
//! shows: for random mixes of print, io.write, io.stderr:write, io.read and errors,
//! typed into two VMs side by side (one with `BIOXEN_LUA_UNBUFFERED=1`), the screens
//! and scrollbacks are the same after every chunk. And a slow producer still shows
//! each line at once.

use crate::common;

use bioxen::term::Screen;
use bioxen::{Manager, VmOptions};
use common::{WAIT, manager, ready_local_vm};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

#[derive(Debug, Clone)]
enum Op {
    Print(u8),
    Write(u8),
    Newline,
    Stderr(u8, bool),
    Read,
    Error(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u8>().prop_map(Op::Print),
        3 => any::<u8>().prop_map(Op::Write),
        1 => Just(Op::Newline),
        2 => (any::<u8>(), any::<bool>()).prop_map(|(n, nl)| Op::Stderr(n, nl)),
        1 => Just(Op::Read),
        1 => any::<u8>().prop_map(Op::Error),
    ]
}

/// One chunk typed as one line; returns the line and how many `io.read`s it waits in.
fn chunk(ops: &[Op]) -> (String, usize) {
    let mut code = Vec::new();
    let mut reads = 0;
    for op in ops {
        code.push(match op {
            Op::Print(n) => format!("print('p{n}', {n})"),
            Op::Write(n) => format!("io.write('w{n}')"),
            Op::Newline => "io.write('\\n')".into(),
            Op::Stderr(n, nl) => format!("io.stderr:write('e{n}{}')", if *nl { "\\n" } else { "" }),
            Op::Read => {
                reads += 1;
                format!("io.write('ask{reads}: ') io.write('got ', io.read(), '|')")
            }
            Op::Error(n) => {
                code.push(format!("error('x{n}')"));
                break;
            }
        });
    }
    // A block, so the REPL never takes the chunk for an expression and prints its value.
    (format!("do {} end", code.join(" ")), reads)
}

/// History and screen, as the user would scroll through them.
fn all_text(s: &Screen) -> String {
    let mut all: Vec<String> = s.history().map(str::to_string).collect();
    all.push(s.text());
    all.join("\n")
}

fn transcript(m: &Manager, id: &bioxen::VmId) -> String {
    m.with_screen(id, |s| all_text(s)).unwrap()
}

async fn vm(m: &Manager, env: Vec<(String, String)>) -> bioxen::VmId {
    let options = VmOptions {
        env,
        size: bioxen::Size::new(30, 200),
        ..VmOptions::default()
    };
    ready_local_vm(m, options).await
}

/// Types `line`, answers each `io.read` once it is asked, and waits for the prompt.
async fn run(m: &Manager, id: &bioxen::VmId, line: &str, reads: usize, prompts: usize) {
    m.send_input(id, format!("{line}\r")).unwrap();
    for n in 1..=reads {
        let ask = format!("ask{n}: ");
        let asked = m
            .wait_screen(id, WAIT, |s| s.text_before_cursor().ends_with(&ask))
            .await
            .unwrap();
        assert!(asked, "no {ask:?} in:\n{}", transcript(m, id));
        m.send_input(id, format!("a{n}\r")).unwrap();
    }
    let done = m
        .wait_screen(id, WAIT, |s| {
            // Output never holds "> ": each one is a prompt.
            all_text(s).matches("> ").count() >= prompts && s.text_before_cursor().ends_with("> ")
        })
        .await
        .unwrap();
    assert!(done, "no prompt after {line:?}:\n{}", transcript(m, id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_output_shows_what_unbuffered_output_shows() {
    let m = manager();
    let buffered = vm(&m, Vec::new()).await;
    let unbuffered = vm(&m, vec![("BIOXEN_LUA_UNBUFFERED".into(), "1".into())]).await;
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    let mut prompts = 1;
    let mut cases = Vec::new();
    for _ in 0..24 {
        let ops = proptest::collection::vec(op(), 1..12)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        cases.push(ops);
    }
    for ops in cases {
        let (line, reads) = chunk(&ops);
        prompts += 1;
        run(&m, &buffered, &line, reads, prompts).await;
        run(&m, &unbuffered, &line, reads, prompts).await;
        let (b, u) = (transcript(&m, &buffered), transcript(&m, &unbuffered));
        assert_eq!(b, u, "after {line:?} the buffered REPL (left) differs");
    }
    m.shutdown().await;
}

/// A line printed every 0.3 s (of CPU time) shows while the loop still runs, not when
/// the chunk ends or a buffer fills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_producer_shows_each_line_at_once() {
    let m = manager();
    let id = vm(&m, Vec::new()).await;
    m.send_input(
        id,
        "for i = 1, 3 do print('tick' .. i) local t = os.clock() + 0.3 repeat until os.clock() >= t end\r",
    )
    .unwrap();
    let shown = m
        .wait_screen(&id, WAIT, |s| s.text().contains("tick1"))
        .await
        .unwrap();
    assert!(shown, "the first line never showed");
    // The second line follows 0.3 s later and the third 0.3 s after it: the loop is
    // still running when the second shows, so only the 10 ms flush can have shown it.
    let shown = m
        .wait_screen(&id, WAIT, |s| s.text().contains("tick2"))
        .await
        .unwrap();
    assert!(shown, "the second line never showed");
    let running = !m.with_screen(id, |s| s.text().contains("tick3")).unwrap();
    assert!(
        running,
        "the second line showed only when the loop ended: it waited in the buffer"
    );
    m.shutdown().await;
}

/// Ctrl-C while a chunk waits in `io.read` stops the chunk, as in `lua5.4`, and the
/// interpreter keeps its state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_ends_a_chunk_waiting_in_io_read() {
    let m = manager();
    let id = vm(&m, Vec::new()).await;
    m.send_input(id, "x = 42 io.write('name? ') print('got', io.read())\r")
        .unwrap();
    let asked = m
        .wait_screen(&id, WAIT, |s| s.text_before_cursor().ends_with("name? "))
        .await
        .unwrap();
    assert!(asked, "no question:\n{}", transcript(&m, &id));
    m.send_input(id, "\x03").unwrap();
    let stopped = m
        .wait_screen(&id, WAIT, |s| {
            s.text().contains("interrupted!") && s.text_before_cursor() == "> "
        })
        .await
        .unwrap();
    assert!(
        stopped,
        "Ctrl-C did not end the read:\n{}",
        transcript(&m, &id)
    );
    let r = m.execute_string(&id, "x", WAIT).await.unwrap();
    assert_eq!(r.output, "42\n");
    m.shutdown().await;
}

/// A chunk that catches the interrupt and reads stdin again waits for the next line,
/// rather than finding every later read interrupted too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caught_ctrl_c_leaves_later_reads_waiting() {
    let m = manager();
    let id = vm(&m, Vec::new()).await;
    m.send_input(
        id,
        "n = 0 repeat n = n + 1 io.write('line? ') local ok, v = pcall(function() return io.read() end) until v == 'q' print('reads=' .. n)\r",
    )
    .unwrap();
    // The typed chunk holds the question once too.
    let asked = |count: usize| move |s: &Screen| all_text(s).matches("line? ").count() > count;
    assert!(m.wait_screen(&id, WAIT, asked(1)).await.unwrap());
    m.send_input(id, "\x03").unwrap();
    assert!(
        m.wait_screen(&id, WAIT, asked(2)).await.unwrap(),
        "no second read after the caught interrupt:\n{}",
        transcript(&m, &id)
    );
    m.send_input(id, "q\r").unwrap();
    let done = m
        .wait_screen(&id, WAIT, |s| s.text().contains("reads=2"))
        .await
        .unwrap();
    assert!(
        done,
        "the second read did not wait:\n{}",
        transcript(&m, &id)
    );
    m.shutdown().await;
}
