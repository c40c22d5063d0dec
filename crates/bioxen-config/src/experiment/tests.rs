//! Experiment files as a researcher writes them, and the mistakes they make: each
//! refused at its file, line and key, before anything starts.

use super::*;

/// A directory of its own with `load.lua` and `train.lua` in it.
fn workdir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "bioxen-experiment-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("load.lua"), "print('loaded')\n").unwrap();
    std::fs::write(dir.join("train.lua"), "print(arg[1])\n").unwrap();
    dir
}

fn config_with_host(name: &str) -> Config {
    let text = format!("[[ssh_hosts]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\n");
    Config::parse(&text, Path::new("bioxen.toml")).unwrap()
}

fn parse_in(dir: &Path, text: &str) -> Result<Experiment, ConfigError> {
    let path = dir.join("sweep.toml");
    std::fs::write(&path, text).unwrap();
    load(&path, &config_with_host("lab"))
}

/// The error for `text`, with where it points: (line, key, message).
fn refused(text: &str) -> (usize, String, String) {
    let dir = workdir();
    match parse_in(&dir, text) {
        Err(ConfigError::Invalid {
            path,
            line,
            key,
            message,
            ..
        }) => {
            assert_eq!(path, dir.join("sweep.toml"), "the error names the file");
            (line, key.unwrap_or_default(), message)
        }
        Err(other) => panic!("not a located error: {other}"),
        Ok(e) => panic!("accepted: {e:?}"),
    }
}

#[test]
fn a_matrix_makes_one_vm_per_cell_with_its_values_in_env_and_args() {
    let dir = workdir();
    let e = parse_in(
        &dir,
        r#"
[experiment]
name = "sweep-a"
[[vm]]
name = "loader"
script = "load.lua"
[[vm]]
name = "train"
script = "train.lua"
args = ["--lr", "{lr}"]
env = { RUN = "lr{lr}" }
matrix = { lr = [0.1, 0.01], seed = ["1", "2"] }
depends_on = { loader = "idle" }
restart = "on-failure"
max_restarts = 3
backoff_secs = 2
"#,
    )
    .unwrap();
    assert_eq!(e.name, "sweep-a");
    let names: Vec<&str> = e.vms.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "loader",
            "train-lr0.1-seed1",
            "train-lr0.1-seed2",
            "train-lr0.01-seed1",
            "train-lr0.01-seed2"
        ]
    );
    let cell = &e.vms[2];
    assert_eq!(cell.args, ["--lr", "0.1"]);
    assert_eq!(
        cell.env,
        [
            ("RUN".to_string(), "lr0.1".to_string()),
            ("LR".to_string(), "0.1".to_string()),
            ("SEED".to_string(), "2".to_string())
        ]
    );
    assert_eq!(
        cell.depends_on,
        [Dependency {
            vm: "loader".into(),
            until: Ready::Idle
        }]
    );
    assert_eq!(cell.restart, Restart::OnFailure);
    assert_eq!((cell.max_restarts, cell.backoff_secs), (3, 2.0));
    let script = PathBuf::from(cell.script.as_deref().unwrap());
    assert_eq!(script, std::path::absolute(dir.join("train.lua")).unwrap());
    assert_eq!(
        cell.cwd.as_deref().map(PathBuf::from),
        Some(std::path::absolute(&dir).unwrap()),
        "VMs start in the file's directory"
    );
}

#[test]
fn the_experiment_is_named_after_the_file_and_a_matrix_dependency_waits_for_every_cell() {
    let e = parse_in(
        &workdir(),
        r#"
[[vm]]
name = "w"
matrix = { seed = [1, 2] }
[[vm]]
name = "report"
depends_on = { w = "exited-ok" }
"#,
    )
    .unwrap();
    assert_eq!(e.name, "sweep");
    let on: Vec<&str> = e.vms[2].depends_on.iter().map(|d| d.vm.as_str()).collect();
    assert_eq!(on, ["w-seed1", "w-seed2"]);
}

#[test]
fn ten_kinds_of_broken_file_are_each_refused_at_their_line_and_key() {
    let cases: &[(&str, usize, &str, &str)] = &[
        (
            "[[vm]]\nname = \"a\"\n[[vm]]\nname = \"b\"\ndepends_on = { ghost = \"idle\" }\n",
            5,
            "vm.depends_on.ghost",
            "does not declare",
        ),
        (
            "[[vm]]\nname = \"a\"\ndepends_on = { b = \"idle\" }\n[[vm]]\nname = \"b\"\ndepends_on = { a = \"started\" }\n",
            3,
            "vm.depends_on",
            "a → b → a",
        ),
        (
            "[[vm]]\nname = \"t\"\nmatrix = { x = [\"1\"] }\n[[vm]]\nname = \"t-x1\"\n",
            5,
            "vm.name",
            "already declared on line 2",
        ),
        (
            "[[vm]]\nname = \"r\"\nkind = \"ssh\"\nhost = \"nowhere\"\n",
            4,
            "vm.host",
            "no [[ssh_hosts]] entry is named 'nowhere' (configured: lab)",
        ),
        (
            "[[vm]]\nname = \"a\"\nscript = \"missing.lua\"\n",
            3,
            "vm.script",
            "missing.lua",
        ),
        (
            "[[vm]]\nname = \"a\"\n\nrestart = \"sometimes\"\n",
            4,
            "vm.restart",
            "on-failure",
        ),
        (
            "[[vm]]\nname = \"a\"\n[[vm]]\nname = \"b\"\ndepends_on = { a = \"ready\" }\n",
            5,
            "vm.depends_on.a",
            "unknown condition 'ready'",
        ),
        (
            "[[vm]]\nname = \"a\"\n[[vm]]\nname = \"b\"\ndepends_on = { a = { log = \"(unclosed\" } }\n",
            5,
            "vm.depends_on.a",
            "bad regex",
        ),
        (
            "[[vm]]\nname = \"a\"\nkind = \"docker\"\n",
            3,
            "vm.kind",
            "unknown VM kind 'docker'",
        ),
        (
            "[[vm]]\nname = \"a\"\nscirpt = \"load.lua\"\n",
            3,
            "vm.scirpt",
            "the keys here are `name`, `kind`",
        ),
        (
            "[[vm]]\nname = \"a b\"\n",
            2,
            "vm.name",
            "invalid VM name 'a b'",
        ),
        (
            "[[vm]]\nname = \"t\"\nmatrix = { seed = [] }\n",
            3,
            "vm.matrix.seed",
            "has no values",
        ),
        ("[experiment]\nname = \"x\"\n", 1, "vm", "declares no VM"),
        (
            "[[vm]]\nname = \"a\"\ncwd = \"no/such/dir\"\n",
            3,
            "vm.cwd",
            "no directory",
        ),
        (
            "[[vm]]\nname = \"a\"\nkind = \"ssh\"\n",
            2,
            "vm.host",
            "needs host",
        ),
    ];
    for (text, line, key, says) in cases {
        let (at, named, message) = refused(text);
        assert_eq!(
            (at, named.as_str()),
            (*line, *key),
            "where {text:?} is wrong ({message})"
        );
        assert!(message.contains(says), "{text:?}: {message}");
    }
}

#[test]
fn an_experiment_in_bioxen_toml_sits_beside_the_configuration() {
    let dir = workdir();
    let path = dir.join("bioxen.toml");
    let text = "[ui]\nscrollback = 500\n[[vm]]\nname = \"loader\"\nscript = \"load.lua\"\n";
    std::fs::write(&path, text).unwrap();
    let config = Config::from_file(&path).unwrap();
    assert_eq!(config.ui.scrollback, 500);
    let e = from_config(&path, &config).unwrap();
    assert_eq!(e.vms[0].name, "loader");
    assert_eq!(e.name, "bioxen");
}

#[test]
fn down_reads_only_the_name() {
    let dir = workdir();
    let path = dir.join("gone.toml");
    std::fs::write(
        &path,
        "[experiment]\nname = \"sweep-b\"\n[[vm]]\nname = \"a\"\nscript = \"moved.lua\"\n",
    )
    .unwrap();
    assert_eq!(name_of(&path).unwrap(), "sweep-b");
}
