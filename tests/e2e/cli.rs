//! The `bioxen` binary as a researcher runs it from a shell.

use crate::common;

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
    // A process of an earlier run may have had this pid: nothing of its may be read.
    let _ = std::fs::remove_dir_all(&dir);
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

/// `bioxen run` against Debian's `lua5.4` over a table of cases: the same stdout, the
/// same stderr (but for the program's name at the start of an error) and the same
/// exit code. Each case is `-e` chunks, an optional script with its arguments, and
/// what arrives on stdin.
#[test]
fn run_behaves_like_lua() {
    common::require_program("lua5.4", "lua5.4");
    let dir = tempdir();
    compare_with_lua(&dir, &["run"]);
}

/// The same table run on a host over SSH (OpenSSH's sshd on loopback): the host's
/// `lua5.4`, on an exec channel, is the run.
#[test]
fn run_over_ssh_behaves_like_lua() {
    let sshd = common::sshd::Sshd::start("runlua");
    let dir = tempdir();
    let config = dir.join("bioxen.toml");
    std::fs::write(
        &config,
        sshd.host_entry("lab", &sshd.known_hosts, "lua5.4 -i"),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    compare_with_lua(
        &dir,
        &["--config", config, "run", "--kind", "ssh", "--host", "lab"],
    );
}

/// The same table run on a pool VM of the simulator, made and destroyed for each run.
#[test]
fn run_on_a_pool_vm_behaves_like_lua() {
    let dir = tempdir();
    let sim = Sim::start(&dir, &[]);
    let config = sim.config.to_str().unwrap().to_string();
    compare_with_lua(
        &dir,
        &[
            "--config",
            &config,
            "run",
            "--kind",
            "xcpng",
            "--accept-new-host-key",
        ],
    );
    assert!(
        sim.pool_vms(&dir).is_empty(),
        "runs left VMs: {:?}",
        sim.pool_vms(&dir)
    );
}

/// Runs every case with `lua5.4` and with `bioxen PRE...` in `dir`, and compares.
fn compare_with_lua(dir: &std::path::Path, pre: &[&str]) {
    common::require_program("lua5.4", "lua5.4");
    // Scripts are named relative to the directory both run in, so that `arg[0]` and
    // tracebacks name them alike here and on a remote host.
    let script = |name: &str, body: &str| {
        std::fs::write(dir.join(name), body).unwrap();
        name.to_string()
    };
    let args_lua = script(
        "args.lua",
        "print(#arg, arg[0], arg[1], arg[2], arg[-1] ~= nil)\nprint(...)\n",
    );
    let echo = script(
        "echo.lua",
        "print(io.read())\nprint(io.read())\nio.write(io.read('a'))\n",
    );
    let late = script(
        "late.lua",
        "local t = {}\nfor i = 1, 3 do t[#t+1] = i * i end\nprint(table.concat(t, ','))\nerror('late')\n",
    );
    let exit7 = script("exit7.lua", "io.write('partial') os.exit(7)\n");
    let deep = script(
        "deep.lua",
        "local function f(n) if n == 0 then error({code = 3}) end f(n - 1) end\nf(3)\n",
    );
    let syntax = script("syntax.lua", "print('never'\n");
    let missing = "missing.lua".to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-e", "io.write('x')"], ""),
        (vec!["-e", "print(1, nil, 'two')"], ""),
        (vec!["-e", "1+1"], ""),
        (vec!["-e", "os.exit(5)"], ""),
        (vec!["-e", "os.exit(true)"], ""),
        (vec!["-e", "os.exit(false)"], ""),
        (vec!["-e", "print('before')", "-e", "error('boom')"], ""),
        (vec!["-e", "error('no traceback of ours')"], ""),
        (
            vec![
                "-e",
                "error(setmetatable({}, {__tostring = function() return 'custom' end}))",
            ],
            "",
        ),
        (vec!["-e", "error(nil)"], ""),
        (vec!["-e", "x = 1", "-e", "print(x + 1)"], ""),
        (
            vec!["-e", "io.stderr:write('to stderr\\n') print('to stdout')"],
            "",
        ),
        (vec!["-e", "print(io.read('n'), io.read('l'))"], "42 rest\n"),
        (vec!["-e", "print(io.read('a'))"], "data\n"),
        (vec![&args_lua, "x", "y"], ""),
        (vec![&args_lua, "-e", "--", "-x"], ""),
        (vec!["-e", "print('first')", &args_lua], ""),
        (vec![&echo], "hello\nworld\nand the rest\n"),
        (vec![&echo], ""),
        (vec![&late], ""),
        (vec![&exit7], ""),
        (vec![&deep], ""),
        (vec![&syntax], ""),
        (vec!["-", "a1"], "print('from stdin', ...)\n"),
        (vec![&missing], ""),
        // lua's own options pass through; no script and no -e runs stdin.
        (vec![], "print('stdin alone', ...)\n"),
        (vec!["-W", "-e", "warn('hi')"], ""),
        (
            vec!["-e", "warn('@on') warn('a', 'b') warn('@off') warn('lost')"],
            "",
        ),
        (
            vec![
                "-W",
                "-e",
                "setmetatable({}, {__gc = function() error('in gc') end}) collectgarbage()",
            ],
            "",
        ),
        (vec!["-l", "string", "-e", "print(string.upper('x'))"], ""),
        (vec!["-E", "-e", "print('no env')"], ""),
        (vec!["-W", &args_lua, "z"], ""),
    ];
    let run = |program: &str, pre: &[&str], args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = Command::new(program)
            .args(pre)
            .args(args)
            .current_dir(dir)
            .env("XDG_CONFIG_HOME", dir)
            .env("XDG_RUNTIME_DIR", dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (text(&out.stdout), text(&out.stderr), out.status.code())
    };
    // lua.c starts error messages with its own name; compare the rest.
    let unnamed = |err: String, name: &str| {
        err.lines()
            .map(|l| l.strip_prefix(name).unwrap_or(l).to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let exe = bioxen_exe();
    let ours_name = format!("{} lua: ", exe.display());
    for (args, stdin) in &cases {
        let (lo, le, lc) = run("lua5.4", &[], args, stdin);
        let (bo, be, bc) = run(exe.to_str().unwrap(), pre, args, stdin);
        let be = unnamed(be, &ours_name);
        let be = unnamed(be, "bioxen lua: ");
        let be = unnamed(be, "bioxen run: ");
        let be = unnamed(be, "lua5.4: ");
        let le = unnamed(le, "lua5.4: ");
        assert_eq!(bo, lo, "stdout of {args:?} with {pre:?}");
        assert_eq!(be, le, "stderr of {args:?} with {pre:?}");
        assert_eq!(bc, lc, "exit code of {args:?} with {pre:?}");
    }
}

/// `bioxen sim` as a process, with guests that trust a key of the test's own, and a
/// configuration that reaches it.
struct Sim {
    child: std::process::Child,
    config: std::path::PathBuf,
}

impl Sim {
    fn start(dir: &std::path::Path, extra: &[&str]) -> Sim {
        use std::io::{BufRead, BufReader};
        common::require_program("ssh-keygen", "openssh-client");
        let key = dir.join("client_key");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let port = common::free_port().to_string();
        let mut child = Command::new(bioxen_exe())
            .args([
                "sim",
                "--boot-delay-ms",
                "20",
                "--ssh-port",
                &port,
                "--authorized-keys",
            ])
            .arg(key.with_extension("pub"))
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut said = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            let done = line.starts_with("port = ");
            said.push(line);
            if done {
                break;
            }
        }
        let text = said.join("\n");
        let section = &text[text.find("[xcpng]").expect("an [xcpng] section")..];
        let config = dir.join("bioxen.toml");
        std::fs::write(
            &config,
            format!(
                "{section}\nidentity = \"{}\"\nknown_hosts = \"{}\"\ncommand = \"lua5.4 -i\"\n",
                key.display(),
                dir.join("known_hosts").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        Sim { child, config }
    }

    /// `bioxen ls` rows of the pool's bioxen VMs.
    fn pool_vms(&self, dir: &std::path::Path) -> Vec<String> {
        let out = Command::new(bioxen_exe())
            .arg("--config")
            .arg(&self.config)
            .arg("ls")
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .env("XDG_STATE_HOME", dir.join("state"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .filter(|l| l.contains("xcpng"))
            .map(str::to_string)
            .collect()
    }

    /// Ends the simulator as a user does (SIGINT) and waits for it.
    fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) of the simulator this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.child.wait().unwrap()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // SAFETY: as in `stop`; it may be gone already.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

/// A remote run ended by SIGINT, SIGTERM or SIGHUP, or by a closed pipe, takes its
/// pool VM with it and exits as `lua` would have died of it; and the simulator, when it
/// ends, ends what its guests ran, even a program that left its process group.
#[test]
fn an_interrupted_pool_run_leaves_nothing_behind() {
    let dir = tempdir();
    let sim = Sim::start(&dir, &[]);
    std::fs::write(dir.join("r.lua"), "print(io.read('a'))\n").unwrap();
    let config = sim.config.to_str().unwrap().to_string();
    let bioxen = |args: &[&str]| {
        let mut cmd = Command::new(bioxen_exe());
        cmd.args([
            "--config",
            &config,
            "run",
            "--kind",
            "xcpng",
            "--accept-new-host-key",
        ])
        .args(args)
        .current_dir(&dir)
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .env("XDG_STATE_HOME", dir.join("state"));
        cmd
    };
    for (signal, code) in [
        (libc::SIGINT, 130),
        (libc::SIGTERM, 143),
        (libc::SIGHUP, 129),
    ] {
        // Its stdin never ends: the run waits in io.read until the signal.
        let mut run = bioxen(&["r.lua"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the pool VM exists and is running, then interrupt.
        let deadline = std::time::Instant::now() + common::WAIT;
        while !sim
            .pool_vms(&dir)
            .iter()
            .any(|r| r.contains("run-") && r.contains("running"))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the run's VM never ran"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // SAFETY: kill(2) of the run this test started.
        unsafe { libc::kill(run.id() as i32, signal) };
        let status = run.wait().unwrap();
        assert_eq!(status.code(), Some(code), "after signal {signal}");
        // The pool may show a VM being destroyed for a moment after the run ends.
        let deadline = std::time::Instant::now() + common::WAIT;
        while !sim.pool_vms(&dir).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(
            sim.pool_vms(&dir).is_empty(),
            "left: {:?}",
            sim.pool_vms(&dir)
        );
    }
    // A closed pipe: `| head -c 0`, as a shell gives it.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "'{}' --config '{config}' run --kind xcpng --accept-new-host-key -e \
             'for i = 1, 1e6 do print(i) end' | head -c 0; echo \"${{PIPESTATUS[0]}}\"",
            bioxen_exe().display()
        ))
        .current_dir(&dir)
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "141\n", "{}", text(&out.stderr));
    assert!(
        sim.pool_vms(&dir).is_empty(),
        "left: {:?}",
        sim.pool_vms(&dir)
    );

    // A kept VM whose guest started a program in a session of its own.
    let kept = bioxen(&[
        "--keep",
        "-e",
        "os.execute('nohup setsid sleep 1000 >/dev/null 2>&1 </dev/null &')",
    ])
    .output()
    .unwrap();
    assert!(kept.status.success(), "{}", text(&kept.stderr));
    let sim_pid = sim.child.id();
    let marked = move || {
        let mark = format!("BIOXEN_SIM_GUEST={sim_pid}-");
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("environ")).is_ok_and(|env| {
                    env.split(|&b| b == 0)
                        .any(|v| v.starts_with(mark.as_bytes()))
                })
            })
            .count()
    };
    let deadline = std::time::Instant::now() + common::WAIT;
    while marked() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(marked() > 0, "the guest's program did not start");
    assert!(sim.stop().success());
    // A killed process leaves /proc a moment after its signal.
    let deadline = std::time::Instant::now() + common::WAIT;
    while marked() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(marked(), 0, "the simulator's guests' programs outlived it");
}

/// A run that cannot remove its VM says so and exits non-zero, even when its code
/// succeeded: something was left behind.
#[test]
fn a_run_that_leaves_its_vm_behind_fails() {
    let dir = tempdir();
    let sim = Sim::start(&dir, &["--fail", "VM.destroy=INTERNAL_ERROR"]);
    let out = Command::new(bioxen_exe())
        .arg("--config")
        .arg(&sim.config)
        .args([
            "run",
            "--kind",
            "xcpng",
            "--accept-new-host-key",
            "-e",
            "print(1)",
        ])
        .current_dir(&dir)
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(text(&out.stdout), "1\n");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("left behind") && err.contains("INTERNAL_ERROR"),
        "{err}"
    );
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
            "unknown key `scrolback`; the keys here are `prefix`, `scrollback`",
        ),
        (
            "[local]\ncommand = 5\n",
            ":2:11: key `local.command`",
            "expected a string in quotes, found the number 5",
        ),
        (
            "[ui]\nprefix = \"Hyper-x\"\n",
            ":2:10: key `ui.prefix`",
            "unknown key",
        ),
        (
            "[[ssh_hosts]]\nname = \"a\"\nhost = \"h\"\nport = \"twenty-two\"\n",
            ":4:8: key `ssh_hosts.port`",
            "expected a whole number from 0 to 65535, found the string \"twenty-two\"",
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
    assert_eq!(rows[0]["name"], "lab1");
    assert_eq!(rows[0]["kind"], "ssh");
}

/// `bioxen lua -i script args` against `lua5.4 -i script args`, as an experiment VM
/// runs its script: the script runs with `arg` and `...`, then the prompt takes the
/// lines typed, in the script's globals. The banner's version and Debian's readline
/// echo of each line typed differ by build, so both are taken out before comparing;
/// what the script and the lines print, stderr and the exit code must be the same.
#[test]
fn lua_dash_i_runs_the_script_then_the_prompt_as_lua_does() {
    common::require_program("lua5.4", "lua5.4");
    let dir = tempdir();
    let write = |name: &str, body: &str| std::fs::write(dir.join(name), body).unwrap();
    write(
        "setup.lua",
        "print(#arg, arg[0], arg[1], arg[2], ...)\nx = 41\nlocal hidden = 1\n",
    );
    write("fails.lua", "y = 1\nerror('in the script')\n");
    write("exits.lua", "io.write('bye')\nos.exit(3)\n");
    let cases: [(&[&str], &str); 5] = [
        (
            &["-i", "setup.lua", "a", "b"],
            "print(x + 1)\nprint(hidden)\n",
        ),
        (
            &["-i", "setup.lua"],
            "print(undefined.field)\nprint('after', x)\n",
        ),
        (&["-i", "fails.lua"], "print(y)\n"),
        (&["-i", "exits.lua"], "print('never')\n"),
        (&["-e", "z = 2", "-i", "setup.lua", "q"], "print(z * x)\n"),
    ];
    let run = |program: &str, pre: &[&str], args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = Command::new(program)
            .args(pre)
            .args(args)
            .current_dir(&dir)
            .env("XDG_CONFIG_HOME", &dir)
            .env("XDG_RUNTIME_DIR", &dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A script that fails or exits ends the interpreter before it reads what is
        // typed: a closed pipe here is that, not a failure.
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        let out = child.wait_with_output().unwrap();
        (text(&out.stdout), text(&out.stderr), out.status.code())
    };
    // Without the banner, the prompts and the echo of what was typed.
    let printed = |out: &str, typed: &str| -> Vec<String> {
        let typed: Vec<&str> = typed.lines().collect();
        out.lines()
            .filter(|l| !l.starts_with("Lua 5.4"))
            .map(|l| {
                let mut l = l;
                while let Some(rest) = l.strip_prefix("> ").or_else(|| l.strip_prefix(">> ")) {
                    l = rest;
                }
                l.trim_end_matches('>').trim_end().to_string()
            })
            .filter(|l| !l.is_empty() && !typed.contains(&l.as_str()))
            .collect()
    };
    let exe = bioxen_exe();
    for (args, stdin) in cases {
        let (lo, le, lc) = run("lua5.4", &[], args, stdin);
        let (bo, be, bc) = run(exe.to_str().unwrap(), &["lua"], args, stdin);
        let be = be
            .replace(&format!("{} lua: ", exe.display()), "lua5.4: ")
            .replace("bioxen lua: ", "lua5.4: ");
        assert_eq!(
            printed(&bo, stdin),
            printed(&lo, stdin),
            "stdout of {args:?}\n--- bioxen ---\n{bo}\n--- lua5.4 ---\n{lo}"
        );
        assert_eq!(be, le, "stderr of {args:?}");
        assert_eq!(bc, lc, "exit code of {args:?}");
    }
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

/// `bioxen sim` says which faults its flags armed and prints an `[xcpng]` section
/// that works as it is; an armed failure shows where a researcher would meet it.
#[test]
fn sim_prints_a_working_config_and_arms_faults_from_its_flags() {
    use std::io::{BufRead, BufReader};
    let dir = tempdir();
    let mut child = Command::new(bioxen_exe())
        .args([
            "sim",
            "--fail",
            "VM.clone=SR_FULL",
            "--event-delay-ms",
            "20",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut said = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("password");
        said.push(line);
        if done {
            break;
        }
    }
    let text = said.join("\n");
    assert!(
        text.contains("fault armed: the next VM.clone fails with SR_FULL")
            && text.contains("fault armed: event.from answers 20 ms late"),
        "{text}"
    );
    let section = &text[text.find("[xcpng]").expect("an [xcpng] section")..];
    let config = dir.join("bioxen.toml");
    std::fs::write(&config, format!("{section}\n")).unwrap();
    let bioxen = |args: &[&str]| {
        Command::new(bioxen_exe())
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .env("XDG_STATE_HOME", dir.join("state"))
            .output()
            .unwrap()
    };
    let ls = bioxen(&["ls"]);
    let run = bioxen(&["run", "--kind", "xcpng", "-e", "print(1)"]);
    let _ = child.kill();
    let _ = child.wait();
    let ls_err = String::from_utf8_lossy(&ls.stderr);
    assert!(
        ls.status.success() && !ls_err.contains("bioxen ls: pool"),
        "the printed section logs in: {ls_err}"
    );
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains("cloning failed: XAPI error SR_FULL"), "{err}");
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
        ("[xcpng.ssh]\nwait_secs = -1\n", 2, "xcpng.ssh.wait_secs"),
        ("[xcpng.ssh]\nhold = \"yes\"\n", 2, "xcpng.ssh.hold"),
        (
            "[[ssh_hosts]]\nname = \"a\"\nhost = \"h\"\nhold = 1\n",
            4,
            "ssh_hosts.hold",
        ),
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
        ("[ui]\nnotify = [\"bell\", \"bogus\"]\n", 2, "ui.notify"),
        ("[ui]\nnotify = \"yes\"\n", 2, "ui.notify"),
        ("[ui]\nsilence = 1.5\n", 2, "ui.silence"),
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
        // The file's words, not serde's.
        for jargon in [
            "usize", "u16", "u32", "u64", "untagged", "variant", "a map", "sequence",
        ] {
            assert!(!err.contains(jargon), "{toml:?}: {jargon} in {err}");
        }
    }
}

/// A wrong value is named with what would be right.
#[test]
fn config_messages_name_the_value_and_what_would_do() {
    let dir = tempdir();
    for (toml, said) in [
        (
            "[ui]\nnotify = [\"bell\", \"bogus\"]\n",
            "\"bogus\" is not a kind of alert; the kinds are bell, exit, silence, idle, note",
        ),
        (
            "[ui]\nscrollback = -5\n",
            "expected a whole number ≥ 0, found the number -5",
        ),
        (
            "[xcpng.ssh]\nport = 70000\n",
            "expected a whole number from 0 to 65535, found the number 70000",
        ),
        (
            "[ui]\nmouse = \"yes\"\n",
            "expected true or false, found the string \"yes\"",
        ),
    ] {
        let path = dir.join("c.toml");
        std::fs::write(&path, toml).unwrap();
        let out = bioxen(&["--config", path.to_str().unwrap(), "ls"]);
        let err = text(&out.stderr);
        assert!(err.contains(said), "{toml:?}: want {said:?} in {err}");
    }
}

/// Values that parse as TOML but cannot work are load-time errors at their line, and
/// a config path that is not a regular file is refused at once instead of hanging.
#[test]
fn unusable_values_and_special_files_are_load_errors() {
    let dir = tempdir();
    let cases = [
        (
            "[xcpng]\nurl = \"https://pool\"\ntls_fingerprint = \"sha256:zz\"\n",
            ":3:1: key `xcpng.tls_fingerprint`",
            "not a SHA-256 fingerprint",
        ),
        (
            "[xcpng]\nurl = \"http://pool\"\ntls_fingerprint = \"sha256:5E:E4:C6:52:8A:69:77:17:CA:90:D9:3C:D4:F8:4A:74:53:D8:62:81:8C:E4:27:4C:D0:E8:7A:57:AF:71:52:4D\"\n",
            ":3:1: key `xcpng.tls_fingerprint`",
            "needs an https:// url",
        ),
        (
            "[xcpng]\nurl = \"https://pool\"\n[xcpng.ssh]\nuser = \"root\"\nport = 0\n",
            ":5:1: key `xcpng.ssh.port`",
            "port 0",
        ),
        (
            "[[ssh_hosts]]\nname = \"a\"\nhost = \"a.lab\"\n[[ssh_hosts]]\nname = \"b\"\nhost = \"b.lab\"\nport = 0\n",
            ":7:1: key `ssh_hosts.port`",
            "port 0",
        ),
        (
            "[[ssh_hosts]]\nname = \"a\"\nhost = \"\"\n",
            ":3:1: key `ssh_hosts.host`",
            "host name is empty",
        ),
        ("[xcpng]\nurl = \"https://\"\n", ":2:1: key `xcpng.url`", ""),
        (
            "[keys.list]\ncreate = \"q\"\n",
            ":2:10: key `keys.list.create`",
            "also bound to 'quit'",
        ),
    ];
    for (i, (toml, location, what)) in cases.iter().enumerate() {
        let path = dir.join(format!("v{i}.toml"));
        std::fs::write(&path, toml).unwrap();
        let out = bioxen(&["--config", path.to_str().unwrap(), "ls"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{toml}: {err}");
        let expected = format!("{}{location}", path.display());
        assert!(err.contains(&expected), "want {expected:?} in {err:?}");
        assert!(err.contains(what), "want {what:?} in {err:?}");
    }
    let fifo = dir.join("fifo.toml");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for special in [fifo.to_str().unwrap(), "/dev/zero", "/dev/urandom"] {
        let started = std::time::Instant::now();
        let out = bioxen(&["--config", special, "ls"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{special}: {err}");
        assert!(err.contains("not a regular file"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
    let big = dir.join("big.toml");
    std::fs::write(&big, "# padding\n".repeat(200_000)).unwrap();
    let err = text(&bioxen(&["--config", big.to_str().unwrap(), "ls"]).stderr);
    assert!(err.contains("more than a config file can be"), "{err}");
}

/// A password_command that never finishes is killed after password_timeout_secs and
/// reported; `ls` does not hang.
#[test]
fn a_hanging_password_command_times_out() {
    let dir = tempdir();
    let config = dir.join("bioxen.toml");
    // A sleep of its own: tests run in parallel, and this one looks for its process.
    let sleep = format!("sleep 1000.{}1", std::process::id());
    std::fs::write(
        &config,
        format!("[xcpng]\nurl = \"http://127.0.0.1:9\"\npassword_command = \"{sleep}\"\npassword_timeout_secs = 1\n"),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = bioxen(&["--config", config.to_str().unwrap(), "ls"]);
    let err = text(&out.stderr);
    assert!(err.contains("did not finish within 1 s"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // Its process group went with it.
    let left = Command::new("pgrep")
        .args(["-f", &format!("^{sleep}$")])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "{sleep} is still running");
}

/// With no XDG_RUNTIME_DIR, the fallback directory under TMPDIR must be the user's
/// own and closed to others; one that others can write to is refused with a message.
#[test]
fn a_runtime_directory_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let shared = dir.join(format!("bioxen-{uid}"));
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    // An entry planted there is not believed.
    std::fs::write(
        shared.join(format!("{}.json", std::process::id())),
        r#"{"pid": 1, "vms": [{"name": "planted", "kind": "local", "state": "running"}]}"#,
    )
    .unwrap();
    let out = Command::new(bioxen_exe())
        .args(["ls"])
        .current_dir(&dir)
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", &dir)
        .env("XDG_CONFIG_HOME", &dir)
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(
        err.contains("refusing to use") && err.contains("others can write"),
        "{err}"
    );
    assert!(!text(&out.stdout).contains("planted"));
}

/// Variables that hold passwords never reach a VM.
#[test]
fn vms_never_see_password_variables() {
    let dir = tempdir();
    let config = dir.join("bioxen.toml");
    std::fs::write(
        &config,
        "[xcpng]\nurl = \"https://pool.invalid\"\npassword_env = \"BIOXEN_T_SECRET\"\n",
    )
    .unwrap();
    let out = Command::new(bioxen_exe())
        .args(["--config", config.to_str().unwrap(), "run", "-e"])
        .arg("print(os.getenv('BIOXEN_T_SECRET'), os.getenv('BIOXEN_T_OTHER'))")
        .env("BIOXEN_T_SECRET", "hunter2")
        .env("BIOXEN_T_OTHER", "visible")
        .env("XDG_RUNTIME_DIR", &dir)
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "nil\tvisible\n", "{}", text(&out.stderr));
}

/// Commands that print, piped into a reader that has already gone (`| head`), end
/// quietly by SIGPIPE as cat does: no panic, no "Broken pipe", no backtrace.
#[test]
fn printing_into_a_closed_pipe_ends_quietly() {
    use std::os::fd::FromRawFd;
    use std::os::unix::process::ExitStatusExt;
    for args in [
        &["ls", "--json"][..],
        &["ls"],
        &["completions", "bash"],
        &["man"],
        &["keys"],
    ] {
        let mut fds = [0; 2];
        // SAFETY: pipe2(2) into a local array; the read end is closed at once, so every
        // write to the other end fails as a closed pipe. Close-on-exec: a process another
        // test starts meanwhile must not inherit the read end and keep the pipe open.
        let write_end = unsafe {
            assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
            libc::close(fds[0]);
            std::fs::File::from_raw_fd(fds[1])
        };
        let dir = tempdir();
        let out = Command::new(bioxen_exe())
            .args(args)
            .current_dir(&dir)
            .env("XDG_CONFIG_HOME", &dir)
            .env("XDG_RUNTIME_DIR", &dir)
            .stdout(write_end)
            .output()
            .expect("run bioxen");
        assert_eq!(text(&out.stderr), "", "bioxen {args:?} said something");
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "bioxen {args:?}: {:?}",
            out.status
        );
    }
}

/// `bioxen keys` with a name that is no action lists the ones there are, and one of
/// the other mode says which mode it is in.
#[test]
fn keys_of_an_unknown_action_lists_the_actions() {
    let out = bioxen(&["keys", "creat"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("no action 'creat'") && err.contains("create") && err.contains("rename"),
        "{err}"
    );
    let out = bioxen(&["keys", "detach"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("bioxen keys detach --mode prefix"), "{err}");
    let out = bioxen(&["keys", "detach", "--mode", "prefix"]);
    assert_eq!(text(&out.stdout), "d\n");
}

/// A bad option gets lua's message and the usage, and a bioxen option given after
/// Lua's says where it goes; neither makes a VM. `-v` is lua's.
#[test]
fn run_checks_luas_command_line_first() {
    let out = bioxen(&["run", "-z"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("bioxen run: unrecognized option '-z'\nusage: bioxen run")
            && err.contains("-W        turn warnings on"),
        "{err}"
    );
    let out = bioxen(&["run", "-e", "print(1)", "--timeout", "3"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--timeout is an option of bioxen run, and goes before Lua's"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "", "nothing ran");
    let out = bioxen(&["run", "-v", "-e", "print(1)"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("Lua 5.4") && stdout.ends_with("\n1\n"),
        "{stdout}"
    );
}

/// Ctrl-C in the terminal stops the running chunk as it stops lua's: "interrupted!",
/// and exit 1, not a run killed by SIGINT.
#[test]
fn ctrl_c_interrupts_a_run_as_it_interrupts_lua() {
    common::require_program("lua5.4", "lua5.4");
    let code = "io.write('spinning\\n') io.flush() while true do end";
    for (name, program) in [
        ("lua", "lua5.4".to_string()),
        ("run", format!("{} run", bioxen_exe().display())),
    ] {
        let t = common::tmux::Tmux::start(
            &format!("ctrlc-{name}"),
            100,
            20,
            &format!("{program} -e \"{code}\""),
        );
        t.wait_text("spinning");
        t.keys(&["C-c"]);
        let s = t.wait_text("EXITED-");
        assert!(s.contains("interrupted!"), "{name}:\n{s}");
        assert!(s.contains("EXITED-1"), "{name}:\n{s}");
    }
}
