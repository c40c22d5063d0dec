//! Installing Lua packages with luarocks into running VMs, locally and over SSH, from a
//! local rocks directory built for the test.

use crate::common;

use std::path::Path;

use bioxen::config::Config;
use bioxen::rocks::PackageSpec;
use bioxen::vm::ssh::Trust;
use bioxen::{Manager, ManagerConfig, VmKind, VmOptions, VmState};
use common::WAIT;
use common::rocks::RockRepo;
use common::sshd::Sshd;

fn manager(repo: &RockRepo, tree: &Path, extra: &str) -> Manager {
    let text = format!("rocks_servers = [\"{}\"]\n{extra}", repo.dir.display());
    let config = Config::parse(&text, Path::new("bioxen.toml")).unwrap();
    let mut mc = ManagerConfig::from_config(&config).unwrap();
    mc.self_exe = common::bioxen_exe();
    mc.rocks_tree = tree.to_path_buf();
    mc.trust = Trust::default();
    Manager::new(mc)
}

fn tree(name: &str) -> std::path::PathBuf {
    let t = std::env::temp_dir().join(format!("bioxen-tree-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&t);
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installs_into_a_running_local_vm() {
    let repo = common::rocks::build("local");
    let tree = tree("local");
    let m = manager(&repo, &tree, "");
    // The embedded REPL and Debian's lua5.4 both find what is installed while they run.
    let embedded = m
        .create_interactive_vm(Some("embedded"), VmKind::Local, VmOptions::default())
        .await
        .unwrap();
    let debian = m
        .create_interactive_vm(
            Some("debian"),
            VmKind::Local,
            VmOptions {
                command: Some(vec!["lua5.4".into(), "-i".into()]),
                ..VmOptions::default()
            },
        )
        .await
        .unwrap();
    for id in [&embedded, &debian] {
        m.wait_ready(id, WAIT).await.unwrap();
        m.execute_string(id, "kept = 'state'", WAIT).await.unwrap();
        let r = m
            .execute_string(id, &format!("pcall(require, '{}')", repo.module), WAIT)
            .await
            .unwrap();
        assert!(r.output.starts_with("false"), "not installed yet: {r:?}");
    }

    let streamed = std::sync::Mutex::new(Vec::new());
    let spec = PackageSpec::new(&repo.package, Some("1.0-1")).unwrap();
    let report = m
        .install_package(&embedded, &spec, &|b| {
            streamed.lock().unwrap().extend_from_slice(b)
        })
        .await
        .unwrap();
    assert!(report.success, "{}", report.output);
    assert_eq!(report.exit_code, Some(0));
    assert!(
        report.output.contains("is now installed"),
        "{}",
        report.output
    );
    assert!(!streamed.lock().unwrap().is_empty(), "output was streamed");
    let c_spec = PackageSpec::parse(&repo.c_package).unwrap();
    let report = m
        .install_package(&embedded, &c_spec, &|_| {})
        .await
        .unwrap();
    assert!(report.success, "{}", report.output);

    for id in [&embedded, &debian] {
        // Fresh `require`s in the same running interpreters: no restart needed.
        let r = m
            .execute_string(
                id,
                &format!(
                    "require('{}').hello('bio'), require('{}').token",
                    repo.module, repo.module
                ),
                WAIT,
            )
            .await
            .unwrap();
        assert_eq!(
            r.output,
            format!("hello, bio\t{}\n", repo.token),
            "{id}: {r:?}"
        );
        let r = m
            .execute_string(
                id,
                &format!("require('{}').add(40, 2)", repo.c_module),
                WAIT,
            )
            .await
            .unwrap();
        assert_eq!(r.output, "42\n", "{id}: C module: {r:?}");
        let r = m.execute_string(id, "kept", WAIT).await.unwrap();
        assert_eq!(r.output, "state\n");
    }
    assert!(
        tree.join("share/lua/5.4")
            .join(format!("{}.lua", repo.module))
            .exists()
    );
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_package_fails_and_the_vm_keeps_its_state() {
    let repo = common::rocks::build("missing");
    let tree = tree("missing");
    let m = manager(&repo, &tree, "");
    let id = m
        .create_interactive_vm(None, VmKind::Local, VmOptions::default())
        .await
        .unwrap();
    m.wait_ready(&id, WAIT).await.unwrap();
    m.execute_string(&id, "x = 42", WAIT).await.unwrap();
    let spec = PackageSpec::parse("no-such-package-anywhere").unwrap();
    let report = m.install_package(&id, &spec, &|_| {}).await.unwrap();
    assert!(!report.success);
    assert_eq!(report.exit_code, Some(1));
    assert!(
        report.output.contains("No results matching query"),
        "{}",
        report.output
    );
    assert_eq!(m.info(id).unwrap().state, VmState::Running);
    assert_eq!(
        m.execute_string(&id, "x", WAIT).await.unwrap().output,
        "42\n"
    );
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installs_into_an_ssh_vm_over_an_exec_channel() {
    let repo = common::rocks::build("ssh");
    let sshd = Sshd::start("rocks");
    let m = manager(
        &repo,
        &tree("ssh"),
        &sshd.host_entry("lab", &sshd.known_hosts, "lua5.4 -i"),
    );
    let id = m
        .create_interactive_vm(
            Some("remote"),
            VmKind::Ssh,
            VmOptions {
                host: Some("lab".into()),
                ..VmOptions::default()
            },
        )
        .await
        .unwrap();
    m.wait_ready(&id, WAIT).await.unwrap();
    m.send_input(id, "x = 42\n").unwrap();
    let settled = m
        .wait_screen(&id, WAIT, |s| {
            s.text().contains("> x = 42\n> ") && s.text_before_cursor() == "> "
        })
        .await
        .unwrap();
    assert!(settled);
    let before = m.with_screen(id, |s| s.text()).unwrap();
    let spec = PackageSpec::parse(&repo.package).unwrap();
    let report = m.install_package(&id, &spec, &|_| {}).await.unwrap();
    assert!(report.success, "{}", report.output);
    assert_eq!(
        m.with_screen(id, |s| s.text()).unwrap(),
        before,
        "nothing was typed into the REPL"
    );
    // The running remote REPL finds it, and keeps its state.
    m.send_input(id, format!("print(require('{}').token, x)\n", repo.module))
        .unwrap();
    m.read_until(&id, &format!("{}\t42", repo.token), WAIT)
        .await
        .unwrap();
    m.terminate_vm_session(&id).await.unwrap();
    // Leave the remote user's tree as it was.
    let home = bioxen::config::home_dir().join(bioxen::rocks::REMOTE_TREE);
    let _ = std::process::Command::new("luarocks")
        .args(["--lua-version", "5.4", "--tree"])
        .arg(home)
        .args(["remove", &repo.package])
        .output();
}

#[test]
fn run_installs_first_and_refuses_dangerous_names() {
    let repo = common::rocks::build("cli");
    let dir = std::env::temp_dir().join(format!("bioxen-rocks-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tree = dir.join("tree");
    std::fs::write(
        dir.join("bioxen.toml"),
        format!(
            "rocks_servers = [\"{}\"]\n[local]\nrocks_tree = \"{}\"\n",
            repo.dir.display(),
            tree.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(common::bioxen_exe())
            .args(args)
            .current_dir(&dir)
            .env("XDG_RUNTIME_DIR", &dir)
            .output()
            .unwrap()
    };
    let code = format!("print(require('{}').hello('cli'))", repo.module);
    let out = run(&[
        "run",
        "--install",
        &format!("{}@1.0-1", repo.package),
        "-e",
        &code,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello, cli\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());

    let marker = dir.join("pwned");
    for bad in [
        format!("foo; touch {}", marker.display()),
        "$(id)".to_string(),
        "a'b".to_string(),
        "--server=evil".to_string(),
        format!("ok@1.0; touch {}", marker.display()),
    ] {
        let out = run(&["run", &format!("--install={bad}"), "-e", "print(1)"]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid"), "{bad}: {err}");
        assert!(out.stdout.is_empty(), "nothing ran for {bad}");
    }
    assert!(!marker.exists(), "no shell ever ran a name");
    let out = run(&["run", "--install", "no-such-rock", "-e", "print(1)"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No results matching query"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_luarocks_names_the_package_to_install() {
    let dir = std::env::temp_dir().join(format!("bioxen-no-luarocks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A PATH without luarocks (bioxen starts its own interpreter by absolute path).
    let out = std::process::Command::new(common::bioxen_exe())
        .args(["run", "--install", "penlight", "-e", "print(1)"])
        .current_dir(&dir)
        .env("PATH", &dir)
        .env("XDG_RUNTIME_DIR", &dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("luarocks is not installed") && err.contains("apt-get install luarocks"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// How long a client waited for any install before an install had a bound of its own
/// (120 s and 10 s for the answer to travel).
const OLD_INSTALL_PATIENCE_SECS: u64 = 130;

/// A luarocks build slower than the patience a client used to have is reported as
/// running while it runs, and then as done: the client waits as long as the server
/// lets an install run, so it never gives up on one that is alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_longer_than_the_old_patience_is_running_then_done() {
    use bioxen::client::{Client, Update};
    use bioxen::protocol::{CreateOptions, Event};
    use std::os::unix::fs::PermissionsExt;

    let dir = tree("slow-install");
    let stub = dir.join("bin");
    std::fs::create_dir_all(&stub).unwrap();
    let sleep = OLD_INSTALL_PATIENCE_SECS + 5;
    std::fs::write(
        stub.join("luarocks"),
        format!(
            "#!/bin/sh\necho 'Building slowpkg (a stand-in that takes {sleep}s)'\n\
             sleep {sleep}\necho 'slowpkg 1.0-1 is now installed'\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        stub.join("luarocks"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let config = dir.join("bioxen.toml");
    std::fs::write(
        &config,
        format!(
            "[ui]\nlog_dir = \"{}\"\n[local]\nrocks_tree = \"{}\"\n",
            dir.join("logs").display(),
            dir.join("tree").display()
        ),
    )
    .unwrap();
    let socket = dir.join("run/server.sock");
    let path = format!(
        "{}:{}",
        stub.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut server = std::process::Command::new(common::bioxen_exe())
        .arg("--socket")
        .arg(&socket)
        .arg("--config")
        .arg(&config)
        .args(["server", "--foreground"])
        .env("PATH", path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _kill = common::KillOnDrop(server.id());
    assert!(
        common::eventually(WAIT, || socket.exists()).await,
        "no server socket"
    );
    let client = Client::connect(&socket, "test").await.unwrap();
    let mut updates = client.updates();
    let id = client
        .create_interactive_vm(Some("slow-rock"), VmKind::Local, CreateOptions::default())
        .await
        .unwrap();

    let spec = PackageSpec::parse("slowpkg").unwrap();
    let installing = {
        let (client, id) = (client.clone(), id);
        tokio::spawn(async move { client.install_package(&id, &spec).await })
    };
    let running = tokio::time::timeout(WAIT, async {
        while let Some(u) = updates.recv().await {
            if let Update::Event(Event::InstallOutput { vm, bytes }) = u
                && vm == id
                && String::from_utf8_lossy(&bytes).contains("Building slowpkg")
            {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(running, Ok(true), "no word that the install is running");
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(sleep + 60), installing)
        .await
        .expect("the install never ended")
        .unwrap()
        .unwrap_or_else(|e| panic!("the client gave up on a live install: {e}"));
    assert!(outcome.success, "{outcome:?}");
    assert!(outcome.output.contains("is now installed"), "{outcome:?}");
    assert!(
        started.elapsed().as_secs() + 5 >= OLD_INSTALL_PATIENCE_SECS,
        "the stand-in did not outlast the old patience"
    );
    let _ = server.kill();
    let _ = server.wait();
}
