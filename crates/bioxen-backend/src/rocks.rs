//! Installing Lua packages with luarocks, into a tree bioxen owns.
//!
//! Local VMs share one tree (`$XDG_DATA_HOME/bioxen/rocks`): a researcher installs a
//! package once and every VM can `require` it, and a package installed while a VM runs
//! is found at once, because every VM starts with `LUA_PATH_5_4`/`LUA_CPATH_5_4` covering
//! the tree and `require` searches those paths at call time. Remote VMs use
//! `~/.local/share/bioxen/rocks` on their host, set up the same way.
//!
//! Package names and versions are checked against what luarocks allows before they go
//! anywhere, and luarocks runs without a shell (locally) or with every word quoted
//! (over SSH): a name like `foo; touch /tmp/x` is refused, never run.

use std::path::{Path, PathBuf};

pub use bioxen_proto::package::{PackageSpec, failure_cause, not_found};

/// The tree on a remote host, relative to the remote user's home.
pub const REMOTE_TREE: &str = ".local/share/bioxen/rocks";

/// The shared tree of local VMs.
pub fn local_tree(configured: Option<&str>) -> PathBuf {
    match configured {
        Some(dir) => bioxen_config::expand_home(dir),
        None => {
            let data = match std::env::var_os("XDG_DATA_HOME") {
                Some(d) if !d.is_empty() => PathBuf::from(d),
                _ => bioxen_config::home_dir().join(".local/share"),
            };
            data.join("bioxen").join("rocks")
        }
    }
}

/// `LUA_PATH_5_4` and `LUA_CPATH_5_4` values covering `tree` (any string, so `$HOME/…`
/// works for a remote shell), with `;;` for the interpreter's defaults.
pub fn lua_paths(tree: &str) -> (String, String) {
    (
        format!("{tree}/share/lua/5.4/?.lua;{tree}/share/lua/5.4/?/init.lua;;"),
        format!("{tree}/lib/lua/5.4/?.so;;"),
    )
}

/// The environment a local VM gets so that it finds the tree, keeping any paths the
/// user configured in front.
pub fn local_env(tree: &Path, configured: &[(String, String)]) -> Vec<(String, String)> {
    let (path, cpath) = lua_paths(&tree.to_string_lossy());
    let merge = |var: &str, ours: String| {
        match configured.iter().find(|(k, _)| k == var) {
            // The user's own paths first; ours before the defaults.
            Some((_, theirs)) => format!("{};{ours}", theirs.trim_end_matches(';')),
            None => ours,
        }
    };
    vec![
        ("LUA_PATH_5_4".to_string(), merge("LUA_PATH_5_4", path)),
        ("LUA_CPATH_5_4".to_string(), merge("LUA_CPATH_5_4", cpath)),
    ]
}

/// luarocks' arguments for installing `spec` into `tree` from `server` (or its
/// configured servers when `None`).
pub fn install_args(tree: &str, spec: &PackageSpec, server: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "--lua-version".to_string(),
        "5.4".into(),
        "--tree".into(),
        tree.to_string(),
        "install".into(),
    ];
    if let Some(s) = server {
        args.push(format!("--only-server={s}"));
    }
    args.push(spec.name().to_string());
    if let Some(v) = spec.version() {
        args.push(v.to_string());
    }
    args
}

/// How an installation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallReport {
    pub spec: PackageSpec,
    pub success: bool,
    /// luarocks' exit code (`None` if it was killed).
    pub exit_code: Option<i32>,
    /// Everything luarocks printed.
    pub output: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_never_need_a_shell() {
        let spec = PackageSpec::parse("busted@2.2.0-1").unwrap();
        assert_eq!(
            install_args("/t", &spec, Some("/rocks")),
            [
                "--lua-version",
                "5.4",
                "--tree",
                "/t",
                "install",
                "--only-server=/rocks",
                "busted",
                "2.2.0-1"
            ]
        );
    }

    #[test]
    fn vm_paths_cover_the_tree_and_keep_the_users() {
        let env = local_env(
            Path::new("/r"),
            &[("LUA_PATH_5_4".into(), "/mine/?.lua;;".into())],
        );
        assert_eq!(
            env[0].1,
            "/mine/?.lua;/r/share/lua/5.4/?.lua;/r/share/lua/5.4/?/init.lua;;"
        );
        assert_eq!(env[1].1, "/r/lib/lua/5.4/?.so;;");
    }
}
