//! `bioxen lua` against Debian's `lua5.4 -i`: the same inputs typed into both, in real
//! PTYs of the same size, must leave the same transcript on screen.

use crate::common;

use bioxen::{Manager, VmKind, VmOptions};
use common::{WAIT, manager, ready_local_vm, require_program};

/// Inputs a researcher types: expressions, several values, nil, a multi-line function,
/// runtime and syntax errors, error objects, printing a table, varargs, integer/float.
const INPUTS: &[&str] = &[
    "1 + 1",
    "x = 42",
    "x, 'two', 3.5",
    "nil",
    "print(nil, false)",
    "function twice(n)\rreturn n * 2\rend",
    "twice(21)",
    "error('boom')",
    "x x",
    "error({})",
    "error(setmetatable({}, {__tostring = function() return 'custom error' end}))",
    "local t = {} print(type(t), t == t)",
    "print({}, {1, 2})",
    "print(string.format('%5.2f|%d', math.pi, 7 // 2))",
    "10 / 2, 7 // 2, 2^10, math.maxinteger",
    "select('#', 1, nil, 3)",
    "for i = 1, 3 do\rio.write(i, ' ')\rend print()",
    "string.rep('ab', 3, '-')",
    "undefined_function()",
    "#arg >= 0",
    "arg[-1], type(arg[0])",
];

async fn transcript(m: &Manager, command: Option<Vec<String>>) -> String {
    let options = VmOptions {
        command,
        size: bioxen::Size::new(120, 100),
        ..VmOptions::default()
    };
    let id = ready_local_vm(m, options).await;
    for (n, input) in INPUTS.iter().enumerate() {
        m.send_input(id, format!("{input}\r")).unwrap();
        // Done when the screen holds one more top-level prompt than before.
        let want = n + 2;
        let done = m
            .wait_screen(&id, WAIT, |s| {
                // The current prompt line counts too: its "> " is on screen.
                s.text().lines().filter(|l| l.starts_with("> ")).count() >= want
                    && s.text_before_cursor() == "> "
            })
            .await
            .unwrap();
        let screen = m.with_screen(id, |s| s.text()).unwrap();
        assert!(done, "no prompt after {input:?}:\n{screen}");
    }
    let text = m.with_screen(id, |s| s.text()).unwrap();
    m.terminate_vm_session(&id).await.unwrap();
    // The banner names the version and differs by design; the rest must not.
    text.lines()
        .skip(1)
        .map(|l| {
            // Addresses of tables differ from run to run.
            l.split('\t')
                .map(|field| match field.strip_prefix("table: 0x") {
                    Some(_) => "table: ADDR",
                    None => field,
                })
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_transcript_as_debian_lua() {
    require_program("lua5.4", "lua5.4");
    let m = manager();
    let ours = transcript(&m, None).await;
    let reference = transcript(&m, Some(vec!["lua5.4".into(), "-i".into()])).await;
    assert!(
        ours.contains("Value") || ours.contains("custom error"),
        "{ours}"
    );
    if ours != reference {
        let diff: Vec<String> = ours
            .lines()
            .zip(reference.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("line {}: bioxen {a:?}\n         lua5.4 {b:?}", i + 2))
            .collect();
        panic!(
            "transcripts differ:\n{}\n--- bioxen ---\n{ours}\n--- lua5.4 ---\n{reference}",
            diff.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_modules_from_debian_packages_load() {
    require_program("lua5.4", "lua5.4");
    assert!(
        std::path::Path::new("/usr/share/lua/5.4/socket.lua").exists(),
        "this test needs LuaSocket for Lua 5.4: apt-get install -y lua-socket"
    );
    let m = manager();
    let id = m
        .create_interactive_vm(None, VmKind::Local, VmOptions::default())
        .await
        .unwrap();
    m.wait_ready(&id, WAIT).await.unwrap();
    let r = m
        .execute_string(
            &id,
            "require('socket')._VERSION, type(require('socket.core').gettime())",
            WAIT,
        )
        .await
        .unwrap();
    assert!(r.ok(), "{r:?}");
    assert!(r.output.starts_with("LuaSocket 3"), "{r:?}");
    assert!(r.output.ends_with("\tnumber\n"), "{r:?}");
    m.shutdown().await;
}
