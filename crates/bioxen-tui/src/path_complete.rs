//! Tab completion of a path typed in a prompt, as a shell completes one: the names in
//! its directory that start with its last part, `~/` read as the home directory.

use std::path::{Path, PathBuf};

/// Completions of `typed`, each the whole path as it would be typed, sorted;
/// directories end in `/`. Hidden names appear only when the part typed starts
/// with a dot. A directory that cannot be read completes to nothing.
pub fn complete(typed: &str) -> Vec<String> {
    let (dir_typed, stem) = match typed.rfind('/') {
        Some(i) => (&typed[..=i], &typed[i + 1..]),
        None => ("", typed),
    };
    let dir = expand(dir_typed);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let hidden_ok = !name.starts_with('.') || stem.starts_with('.');
            if !name.starts_with(stem) || !hidden_ok {
                return None;
            }
            // A link to a directory completes as one.
            let slash = if dir.join(&name).is_dir() { "/" } else { "" };
            Some(format!("{dir_typed}{name}{slash}"))
        })
        .collect();
    found.sort();
    found
}

/// The directory a typed prefix names: `~/` is the home directory, empty is here.
fn expand(dir_typed: &str) -> PathBuf {
    match dir_typed.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(rest),
        None if dir_typed.is_empty() => Path::new(".").to_path_buf(),
        None => PathBuf::from(dir_typed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_names_in_the_directory_typed_and_marks_directories() {
        let dir = std::env::temp_dir().join(format!("bioxen-complete-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sweeps")).unwrap();
        std::fs::write(dir.join("sweep.toml"), "").unwrap();
        std::fs::write(dir.join("other.toml"), "").unwrap();
        std::fs::write(dir.join(".hidden.toml"), "").unwrap();
        let base = format!("{}/", dir.display());
        assert_eq!(
            complete(&format!("{base}sw")),
            vec![format!("{base}sweep.toml"), format!("{base}sweeps/")]
        );
        assert_eq!(
            complete(&format!("{base}o")),
            vec![format!("{base}other.toml")]
        );
        assert_eq!(
            complete(&format!("{base}.h")),
            vec![format!("{base}.hidden.toml")]
        );
        assert!(complete(&base).iter().all(|p| !p.contains(".hidden")));
        assert!(complete(&format!("{base}nothing/x")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
