//! Files only this user may read, in directories only this user may change.
//!
//! bioxen's runtime and state directories hold VM commands, pids and whole sessions'
//! output. A fallback such as `/tmp/bioxen-<uid>` can be created first by someone else,
//! with symlinks planted at predictable names, so every directory is checked before use
//! and every file is opened without following a symlink.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Error, ErrorKind, Result};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` (and missing parents) mode 0700, or checks an existing one: it must be
/// a real directory (not a symlink), owned by this user, and writable by nobody else.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)?;
            }
            match DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                // Created by someone else in the meantime: check it like any other.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            check_private_dir(dir)
        }
        Err(e) => Err(e),
        Ok(_) => check_private_dir(dir),
    }
}

/// Checks, changing nothing, that `dir` is a real directory of this user's that no one
/// else may enter: what a client asks of the directory of a socket it is about to
/// trust. (The server, which owns the directory, tightens it instead.)
pub fn check_owned_and_closed(dir: &Path) -> Result<()> {
    check_private_dir_with(dir, false)
}

/// Refuses a directory that another user could read or change.
pub fn check_private_dir(dir: &Path) -> Result<()> {
    check_private_dir_with(dir, true)
}

fn check_private_dir_with(dir: &Path, tighten: bool) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    let refuse = |why: String| {
        Err(Error::new(
            ErrorKind::PermissionDenied,
            format!("refusing to use {}: {why}", dir.display()),
        ))
    };
    if meta.file_type().is_symlink() {
        return refuse("it is a symbolic link".into());
    }
    if !meta.is_dir() {
        return refuse("it is not a directory".into());
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    if meta.uid() != uid {
        return refuse(format!(
            "it belongs to uid {}, not to you (uid {uid})",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        return refuse(format!(
            "others can write to it (mode {mode:o}); make it 0700 or remove it"
        ));
    }
    if mode & 0o077 != 0 && !tighten {
        return refuse(format!("others can enter it (mode {mode:o}, not 0700)"));
    }
    if mode & 0o077 != 0 {
        // Ours and not writable by others, but readable: tighten it.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Opens `path` for appending, creating it 0600; a symlink or special file at that
/// name is refused. The directory is made private first.
pub fn open_append(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| explain_nofollow(path, e))?;
    regular_and_ours(path, file)
}

/// Replaces `path` with `data` atomically: written to a fresh temporary name created
/// exclusively (never through a planted file), then renamed over.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    for attempt in 0..16u32 {
        let tmp = dir.join(format!(".{name}.{}.{attempt}.tmp", nonce()));
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let written = file
            .write_all(data)
            .and_then(|_| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        return written;
    }
    Err(Error::new(
        ErrorKind::AlreadyExists,
        format!("cannot create a temporary file in {}", dir.display()),
    ))
}

/// Reads a file only if it is a regular file of this user's, at most `limit` bytes.
pub fn read_own(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| explain_nofollow(path, e))?;
    let file = regular_and_ours(path, file)?;
    let mut data = Vec::new();
    file.take(limit + 1).read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("{} is larger than {limit} bytes", path.display()),
        ));
    }
    Ok(data)
}

fn regular_and_ours(path: &Path, file: File) -> Result<File> {
    let meta = file.metadata()?;
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    if !meta.is_file() || meta.uid() != uid {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!("refusing {}: not a regular file of yours", path.display()),
        ));
    }
    // O_NONBLOCK only served to open a FIFO without hanging; regular files ignore it.
    Ok(file)
}

fn explain_nofollow(path: &Path, e: Error) -> Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        Error::new(
            ErrorKind::PermissionDenied,
            format!("refusing {}: it is a symbolic link", path.display()),
        )
    } else {
        Error::new(e.kind(), format!("{}: {e}", path.display()))
    }
}

fn nonce() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (u64::from(std::process::id()) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("bioxen-pfs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn directories_are_made_private_and_loose_ones_refused() {
        let d = scratch("dir");
        create_private_dir(&d.join("a")).unwrap();
        let mode = std::fs::metadata(d.join("a")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(d.join("a"), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = create_private_dir(&d.join("a")).unwrap_err().to_string();
        assert!(err.contains("others can write"), "{err}");
        std::os::unix::fs::symlink("/etc", d.join("link")).unwrap();
        let err = create_private_dir(&d.join("link")).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn planted_symlinks_are_never_followed() {
        let d = scratch("link");
        create_private_dir(&d).unwrap();
        let victim = d.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, d.join("vm.log")).unwrap();
        let err = open_append(&d.join("vm.log")).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        std::os::unix::fs::symlink(&victim, d.join("entry.json")).unwrap();
        write_atomic(&d.join("entry.json"), b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(
            std::fs::read_to_string(d.join("entry.json")).unwrap(),
            "new"
        );
        let mode = std::fs::metadata(d.join("entry.json")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let _ = std::fs::remove_dir_all(&d);
    }
}
