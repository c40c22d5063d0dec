//! The pictures in assets/ and what the README says of them; completions and the man
//! page.

use crate::common;

use std::path::Path;
use std::process::Command;

use bioxen::keymap::{Keymap, Mode};
use common::bioxen_exe;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every asset the README shows or links exists, and the main picture comes first.
#[test]
fn every_asset_the_readme_references_exists() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let referenced: Vec<&str> = readme
        .match_indices("](assets/")
        .map(|(i, _)| {
            let rest = &readme[i + 2..];
            let end = rest
                .find(|c: char| c == ')' || c == '"' || c.is_whitespace())
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    assert!(
        referenced.len() >= 4,
        "the README shows too few pictures: {referenced:?}"
    );
    for path in &referenced {
        let file = repo().join(path);
        assert!(
            file.is_file(),
            "README references {path}, which does not exist"
        );
        let text = std::fs::read_to_string(&file).unwrap();
        if path.ends_with(".svg") {
            assert!(text.contains("<svg"), "{path} is not an SVG");
        }
    }
    let first_image = readme.find("![").expect("the README shows a picture");
    assert!(
        readme[..first_image].lines().count() < 6,
        "the main picture is not at the top of the README"
    );
}

/// The recorded demo used only actions the current keymap has: the script asks
/// `bioxen keys` for each key, and writes down which actions it asked for.
#[test]
fn the_recorded_demo_matches_the_current_keymap() {
    let used = std::fs::read_to_string(repo().join("assets/demo.keys")).unwrap();
    let keymap = Keymap::default();
    let mut n = 0;
    for line in used.lines().filter(|l| !l.trim().is_empty()) {
        let (mode, action) = line.split_once(' ').unwrap();
        let mode = match mode {
            "list" => Mode::List,
            "prefix" => Mode::Prefix,
            other => panic!("unknown mode {other} in demo.keys"),
        };
        assert!(
            keymap.key_of(mode, action).is_some(),
            "the demo was recorded with '{line}', which the keymap no longer has: run scripts/assets"
        );
        n += 1;
    }
    assert!(n >= 5, "demo.keys lists only {n} actions");
    // And the script fails on an action that does not exist.
    let out = Command::new(bioxen_exe())
        .args(["keys", "--mode", "prefix", "no_such_action"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn completions_and_the_man_page_cover_every_command() {
    for (shell, marker) in [
        ("bash", "_bioxen()"),
        ("zsh", "#compdef bioxen"),
        ("fish", "complete -c bioxen"),
    ] {
        let out = Command::new(bioxen_exe())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(marker), "{shell}: {text}");
        for command in ["run", "ls", "sim", "demo", "keys", "completions", "man"] {
            assert!(text.contains(command), "{shell} completion lacks {command}");
        }
    }
    let out = Command::new(bioxen_exe()).arg("man").output().unwrap();
    let man = String::from_utf8(out.stdout).unwrap();
    assert!(man.contains(".TH bioxen 1"), "{man}");
    assert!(man.contains("completions") && man.contains("sim"), "{man}");
}
