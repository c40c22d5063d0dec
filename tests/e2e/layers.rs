//! The crates keep to their layers: each may depend only on the bioxen crates below it
//! (ARCHITECTURE.md draws them), and the lower layers stay free of the libraries that
//! would drag a runtime or a terminal into them. Read from `cargo metadata`, so a new
//! arrow in any Cargo.toml fails here before it is used.

use std::collections::BTreeMap;
use std::process::Command;

/// Which bioxen crates each crate may depend on.
const MAY_USE: &[(&str, &[&str])] = &[
    ("bioxen-text", &[]),
    ("bioxen-log", &[]),
    ("bioxen-proto", &["bioxen-text"]),
    ("bioxen-term", &["bioxen-proto", "bioxen-text"]),
    ("bioxen-config", &["bioxen-proto", "bioxen-text"]),
    ("bioxen-repl", &["bioxen-text"]),
    (
        "bioxen-backend",
        &["bioxen-config", "bioxen-proto", "bioxen-text"],
    ),
    ("bioxen-sim", &["bioxen-backend"]),
    (
        "bioxen-server",
        &[
            "bioxen-backend",
            "bioxen-config",
            "bioxen-log",
            "bioxen-proto",
            "bioxen-repl",
            "bioxen-term",
            "bioxen-text",
        ],
    ),
    (
        "bioxen-client",
        &["bioxen-config", "bioxen-proto", "bioxen-text"],
    ),
    (
        "bioxen-tui",
        &[
            "bioxen-client",
            "bioxen-config",
            "bioxen-log",
            "bioxen-proto",
            "bioxen-term",
            "bioxen-text",
        ],
    ),
];

/// Libraries a crate must not link (as a dependency that is always on).
const MUST_NOT_USE: &[(&str, &[&str])] = &[
    ("bioxen-text", &["tokio", "ratatui", "crossterm", "vt100"]),
    ("bioxen-proto", &["tokio", "ratatui", "crossterm", "vt100"]),
    ("bioxen-term", &["tokio", "ratatui", "crossterm"]),
    (
        "bioxen-config",
        &["tokio", "ratatui", "crossterm", "russh", "reqwest"],
    ),
    ("bioxen-repl", &["tokio", "ratatui", "crossterm"]),
    ("bioxen-backend", &["ratatui", "crossterm", "vt100"]),
    ("bioxen-server", &["ratatui", "crossterm"]),
    (
        "bioxen-client",
        &["ratatui", "crossterm", "russh", "reqwest", "mlua", "vt100"],
    ),
    ("bioxen-tui", &["russh", "reqwest", "mlua", "pty-process"]),
];

/// Each workspace crate's normal dependencies: (name, optional).
fn dependencies() -> BTreeMap<String, Vec<(String, bool)>> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| {
                    let name = d["name"].as_str().unwrap().to_string();
                    (name, d["optional"].as_bool().unwrap_or(false))
                })
                .collect();
            (p["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

#[test]
fn each_crate_depends_only_on_the_layers_below_it() {
    let deps = dependencies();
    let mut wrong = Vec::new();
    for (krate, uses) in &deps {
        if krate == "bioxen" {
            continue;
        }
        let allowed = MAY_USE
            .iter()
            .find(|(k, _)| k == krate)
            .unwrap_or_else(|| panic!("{krate} has no row in MAY_USE: give it a layer"))
            .1;
        for (dep, _) in uses.iter().filter(|(d, _)| d.starts_with("bioxen")) {
            if !allowed.contains(&dep.as_str()) {
                wrong.push(format!("{krate} depends on {dep}"));
            }
        }
    }
    for (krate, banned) in MUST_NOT_USE {
        let uses = deps
            .get(*krate)
            .unwrap_or_else(|| panic!("no crate {krate}"));
        for (dep, optional) in uses {
            if banned.contains(&dep.as_str()) && !optional {
                wrong.push(format!("{krate} links {dep}"));
            }
        }
    }
    assert!(wrong.is_empty(), "layers crossed:\n{}", wrong.join("\n"));
}

/// The table above is the one the workspace has: no crate is left out of it.
#[test]
fn every_crate_has_a_layer() {
    let deps = dependencies();
    for (krate, _) in MAY_USE {
        assert!(
            deps.contains_key(*krate),
            "{krate} is in MAY_USE but not in the workspace"
        );
    }
    assert_eq!(deps.len(), MAY_USE.len() + 1, "{:?}", deps.keys());
}
