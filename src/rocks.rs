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

/// The tree on a remote host, relative to the remote user's home.
pub const REMOTE_TREE: &str = ".local/share/bioxen/rocks";

/// What to install: a package and, optionally, its exact version. Only made through
/// [`PackageSpec::new`] or [`PackageSpec::parse`], so every spec has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSpec {
    name: String,
    version: Option<String>,
}

impl PackageSpec {
    /// Checks a name and an optional version.
    pub fn new(name: &str, version: Option<&str>) -> Result<PackageSpec, String> {
        check("package name", name, 100)?;
        let version = version.map(str::trim).filter(|v| !v.is_empty());
        if let Some(v) = version {
            check("version", v, 40)?;
        }
        Ok(PackageSpec {
            name: name.to_string(),
            version: version.map(str::to_string),
        })
    }

    /// `name` or `name@version`.
    pub fn parse(text: &str) -> Result<PackageSpec, String> {
        match text.split_once('@') {
            Some((name, version)) => PackageSpec::new(name, Some(version)),
            None => PackageSpec::new(text, None),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    pub fn label(&self) -> String {
        match &self.version {
            Some(v) => format!("{} {v}", self.name),
            None => self.name.clone(),
        }
    }
}

/// luarocks names and versions are letters, digits, `.`, `_` and `-` (not first).
fn check(what: &str, text: &str, max: usize) -> Result<(), String> {
    let ok = !text.is_empty()
        && text.len() <= max
        && !text.starts_with(['-', '.'])
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} {text:?}: use letters, digits, '.', '_' and '-' (not first), as luarocks does"
        ))
    }
}

/// The shared tree of local VMs.
pub fn local_tree(configured: Option<&str>) -> PathBuf {
    match configured {
        Some(dir) => crate::config::expand_home(dir),
        None => {
            let data = match std::env::var_os("XDG_DATA_HOME") {
                Some(d) if !d.is_empty() => PathBuf::from(d),
                _ => crate::config::home_dir().join(".local/share"),
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
    args.push(spec.name.clone());
    if let Some(v) = &spec.version {
        args.push(v.clone());
    }
    args
}

/// Whether luarocks' output says the package is simply not on that server, so the
/// next server should be tried.
pub fn not_found(output: &str) -> bool {
    output.contains("No results matching query were found")
}

/// Why luarocks failed, in one line, from all it printed: a download that failed is
/// the cause even where luarocks then says only that nothing matched, and the hint
/// it prints last ("To check if it is available for other Lua versions…") is none.
pub fn failure_cause(output: &str) -> String {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let download = lines.iter().find_map(|l| {
        ["Failed downloading ", "Failed fetching "]
            .iter()
            .find_map(|lead| l.find(lead).map(|at| &l[at..]))
    });
    let error = lines
        .iter()
        .find_map(|l| l.strip_prefix("Error: "))
        .map(str::trim);
    match (download, error) {
        (Some(download), Some(error)) if not_found(error) => {
            format!("the rocks server could not be reached ({download})")
        }
        (_, Some(error)) => error.to_string(),
        (Some(download), None) => download.to_string(),
        (None, None) => lines
            .iter()
            .rev()
            .find(|l| !l.starts_with("To check if") && !l.starts_with("Use "))
            .copied()
            .unwrap_or("luarocks said nothing")
            .to_string(),
    }
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
    fn the_cause_of_a_failure_is_what_went_wrong_not_the_last_hint() {
        let offline = "Warning: Failed searching manifest: Failed downloading \
                       http://127.0.0.1:9/manifest-5.4 - connection refused\n\n\
                       Error: No results matching query were found for Lua 5.4.\n\
                       To check if it is available for other Lua versions, use --check-lua-versions.\n";
        assert_eq!(
            failure_cause(offline),
            "the rocks server could not be reached (Failed downloading \
             http://127.0.0.1:9/manifest-5.4 - connection refused)"
        );
        let missing = "Error: No results matching query were found for Lua 5.4.\n\
                       To check if it is available for other Lua versions, use --check-lua-versions.\n";
        assert_eq!(
            failure_cause(missing),
            "No results matching query were found for Lua 5.4."
        );
        assert_eq!(
            failure_cause("Installing x\nError: Build error: Failed compiling object x.o\n"),
            "Build error: Failed compiling object x.o"
        );
        assert_eq!(failure_cause("gcc: fatal\n"), "gcc: fatal");
    }

    #[test]
    fn names_and_versions_that_luarocks_allows() {
        assert_eq!(
            PackageSpec::parse("lua-cjson@2.1.0-1").unwrap(),
            PackageSpec {
                name: "lua-cjson".into(),
                version: Some("2.1.0-1".into())
            }
        );
        assert!(PackageSpec::parse("penlight").unwrap().version().is_none());
        for bad in [
            "foo; touch /tmp/x",
            "$(id)",
            "a'b",
            "--server=evil",
            "",
            "a b",
            "x@--force",
            "../up",
            "a\nb",
            "ü",
        ] {
            let err = PackageSpec::parse(bad).unwrap_err();
            assert!(err.contains("invalid"), "{bad}: {err}");
        }
    }

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
