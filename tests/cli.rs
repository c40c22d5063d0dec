//! The `bioxen` binary as a researcher runs it from a shell.

mod common;

use std::process::Command;

use common::bioxen_exe;

fn bioxen(args: &[&str]) -> std::process::Output {
    let dir = tempdir();
    Command::new(bioxen_exe())
        .args(args)
        .current_dir(&dir)
        .env("XDG_CONFIG_HOME", &dir)
        .env("XDG_RUNTIME_DIR", &dir)
        .output()
        .expect("run bioxen")
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "bioxen-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn run_prints_output_and_succeeds() {
    let out = bioxen(&["run", "-e", "x = 42 print('Value:', x)"]);
    assert_eq!(
        text(&out.stdout),
        "Value:\t42\n",
        "stderr: {}",
        text(&out.stderr)
    );
    assert!(out.status.success());
}

#[test]
fn run_reports_lua_errors_with_nonzero_exit() {
    let out = bioxen(&["run", "-e", "print('before')", "-e", "error('boom')"]);
    assert_eq!(text(&out.stdout), "before\n");
    let err = text(&out.stderr);
    assert!(err.starts_with("(command line):1: boom"), "{err}");
    assert!(err.contains("stack traceback"), "{err}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn run_executes_a_script_file_with_its_name_in_errors() {
    let dir = tempdir();
    let script = dir.join("job.lua");
    std::fs::write(&script, "local t = {}\nfor i = 1, 3 do t[#t+1] = i * i end\nprint(table.concat(t, ','))\nerror('late')\n").unwrap();
    let out = bioxen(&["run", script.to_str().unwrap()]);
    assert_eq!(text(&out.stdout), "1,4,9\n");
    assert!(
        text(&out.stderr).contains("job.lua:4: late"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn run_rejects_unknown_kinds() {
    let out = bioxen(&["run", "--kind", "vax", "-e", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown VM kind 'vax'"));
}

#[test]
fn missing_config_file_is_named_with_exit_2() {
    let out = bioxen(&["--config", "/nonexistent/bioxen.toml", "ls"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("/nonexistent/bioxen.toml: cannot read config file"),
        "{err}"
    );
}

#[test]
fn broken_config_names_file_line_and_key() {
    let dir = tempdir();
    let cases = [
        (
            "[ui]\nprefix = \"C-a\"\nscrolback = 100\n",
            ":3:1: key `ui.scrolback`",
            "unknown field",
        ),
        (
            "[local]\ncommand = 5\n",
            ":2:11: key `local.command`",
            "invalid type",
        ),
        (
            "[ui]\nprefix = \"Hyper-x\"\n",
            ":2:10: key `ui.prefix`",
            "unknown key",
        ),
        (
            "[[ssh_hosts]]\nname = \"a\"\nhost = \"h\"\nport = \"twenty-two\"\n",
            ":4:8: key `ssh_hosts.port`",
            "invalid type",
        ),
    ];
    for (i, (toml, location, what)) in cases.iter().enumerate() {
        let path = dir.join(format!("c{i}.toml"));
        std::fs::write(&path, toml).unwrap();
        let out = bioxen(&["--config", path.to_str().unwrap(), "ls"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        let expected = format!("{}{location}", path.display());
        assert!(err.contains(&expected), "want {expected:?} in {err:?}");
        assert!(err.contains(what), "want {what:?} in {err:?}");
    }
}

#[test]
fn config_in_the_working_directory_is_used() {
    let dir = tempdir();
    std::fs::write(
        dir.join("bioxen.toml"),
        "[[ssh_hosts]]\nname = \"lab1\"\nhost = \"lab1.example\"\n",
    )
    .unwrap();
    let out = Command::new(bioxen_exe())
        .args(["ls", "--json"])
        .current_dir(&dir)
        .env("XDG_CONFIG_HOME", &dir)
        .env("XDG_RUNTIME_DIR", &dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["id"], "lab1");
    assert_eq!(rows[0]["kind"], "ssh");
}

#[test]
fn lua_subcommand_takes_lua_options() {
    let out = bioxen(&["lua", "-e", "print(#arg, arg[0])", "-"]);
    // stdin is not a terminal and `-` runs it: an empty chunk.
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = bioxen(&["lua", "-v"]);
    assert!(
        text(&v.stdout).starts_with("Lua 5.4"),
        "{}",
        text(&v.stdout)
    );
    let bad = bioxen(&["lua", "-e", "error('x')"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("(command line):1: x"));
}

#[test]
fn sim_prints_its_url_and_certificate() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(bioxen_exe())
        .args(["sim", "--tls"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap();
    let cert = lines.next().unwrap().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        url.starts_with("bioxen sim: listening on https://127.0.0.1:"),
        "{url}"
    );
    assert!(
        cert.starts_with("bioxen sim: certificate sha256:"),
        "{cert}"
    );
}

/// Every key, given a value of the wrong kind: the error names the file, the line and
/// the key, and bioxen exits with 2.
#[test]
fn every_config_key_is_checked() {
    let dir = tempdir();
    let cases: &[(&str, usize, &str)] = &[
        ("[ui]\nprefix = 3\n", 2, "ui.prefix"),
        ("[ui]\nprefix = \"Hyper-x\"\n", 2, "ui.prefix"),
        ("[ui]\nscrollback = -5\n", 2, "ui.scrollback"),
        ("[ui]\nscrollback = 99999999\n", 2, "ui.scrollback"),
        ("[ui]\nmouse = \"yes\"\n", 2, "ui.mouse"),
        ("[ui]\noutput_log = 1\n", 2, "ui.output_log"),
        ("[ui]\nlog_dir = 7\n", 2, "ui.log_dir"),
        ("[local]\ncommand = [\"lua\"]\n", 2, "local.command"),
        ("[local]\ncommand = \"lua 'unclosed\"\n", 2, "local.command"),
        ("[local]\ncwd = false\n", 2, "local.cwd"),
        ("[local]\nenv = \"A=1\"\n", 2, "local.env"),
        ("[local]\nrocks_tree = 1\n", 2, "local.rocks_tree"),
        ("rocks_servers = \"/rocks\"\n", 1, "rocks_servers"),
        ("[xcpng]\nurl = 5\n", 2, "xcpng.url"),
        (
            "[xcpng]\nurl = \"https://p\"\ntls_verify = \"no\"\n",
            3,
            "xcpng.tls_verify",
        ),
        (
            "[xcpng]\nurl = \"https://p\"\nmemory_mib = -1\n",
            3,
            "xcpng.memory_mib",
        ),
        (
            "[xcpng]\nurl = \"https://p\"\nvcpus = \"two\"\n",
            3,
            "xcpng.vcpus",
        ),
        (
            "[xcpng]\nurl = \"https://p\"\npasword = \"x\"\n",
            3,
            "xcpng.pasword",
        ),
        ("[xcpng.ssh]\nport = 70000\n", 2, "xcpng.ssh.port"),
        (
            "[[ssh_hosts]]\nname = \"a\"\nhost = \"h\"\nport = \"22\"\n",
            4,
            "ssh_hosts.port",
        ),
        (
            "[[ssh_hosts]]\nname = \"a\"\nhost = \"h\"\nusr = \"x\"\n",
            4,
            "ssh_hosts.usr",
        ),
        ("[keys.list]\ncreate = 5\n", 2, "keys.list.create"),
        ("[keys.prefix]\nfly = \"f\"\n", 2, "keys.prefix.fly"),
        ("[keys.list]\ncreate = \"C-\"\n", 2, "keys.list.create"),
        ("[nonsense]\nx = 1\n", 1, "nonsense"),
    ];
    for (i, (toml, line, key)) in cases.iter().enumerate() {
        let path = dir.join(format!("k{i}.toml"));
        std::fs::write(&path, toml).unwrap();
        let out = bioxen(&["--config", path.to_str().unwrap(), "ls"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{toml:?}: {err}");
        let located = format!("{}:{line}:", path.display());
        assert!(err.contains(&located), "{toml:?}: want {located} in {err}");
        assert!(
            err.contains(&format!("`{key}`")),
            "{toml:?}: want key {key} in {err}"
        );
    }
}
