//! The package a request names, checked before it goes anywhere, and how a failed
//! luarocks run is told in one line.

/// What to install: a package and, optionally, its exact version. Only made through
/// [`PackageSpec::new`] or [`PackageSpec::parse`], so every spec has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSpec {
    name: String,
    version: Option<String>,
}

impl PackageSpec {
    /// Checks a name and an optional version.
    pub fn new(name: &str, version: Option<&str>) -> Result<PackageSpec, InvalidPackage> {
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
    pub fn parse(text: &str) -> Result<PackageSpec, InvalidPackage> {
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

/// A package name or version luarocks would not take, or that could reach a shell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid {what} {text:?}: use letters, digits, '.', '_' and '-' (not first), as luarocks does"
)]
pub struct InvalidPackage {
    /// `package name` or `version`.
    pub what: &'static str,
    pub text: String,
}

/// luarocks names and versions are letters, digits, `.`, `_` and `-` (not first).
fn check(what: &'static str, text: &str, max: usize) -> Result<(), InvalidPackage> {
    let ok = !text.is_empty()
        && text.len() <= max
        && !text.starts_with(['-', '.'])
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(InvalidPackage {
            what,
            text: text.to_string(),
        })
    }
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
            assert!(err.to_string().contains("invalid"), "{bad}: {err}");
        }
    }
}
