//! Opening the files the store owns (the state file, its lock, the file
//! that replaces it on a rewrite): a file created here is mode 0600
//! whatever the umask, no path is followed through a symbolic link (the
//! last component is opened `O_NOFOLLOW`), and a replacement is written
//! under an unpredictable name in the same directory, then renamed over.
//!
//! A symlink planted where the state file goes could otherwise have a run
//! append to, or a rewrite replace, any file its user can write.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

const MODE: u32 = 0o600;

/// Whether `e` is the refusal to open a symbolic link.
pub fn is_symlink_refusal(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// The whole file; `NotFound` when there is none.
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut bytes = vec![];
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// For appending, created (0600) when missing.
pub fn append(path: &Path) -> std::io::Result<File> {
    open_or_create(path, || {
        let mut o = OpenOptions::new();
        o.append(true);
        o
    })
}

/// For locking: written never, created (0600) when missing.
pub fn lock(path: &Path) -> std::io::Result<File> {
    open_or_create(path, || {
        let mut o = OpenOptions::new();
        o.write(true);
        o
    })
}

fn open_or_create(path: &Path, base: impl Fn() -> OpenOptions) -> std::io::Result<File> {
    // O_EXCL never follows a symlink either: one in the way is AlreadyExists
    // here and ELOOP below.
    match base().create_new(true).mode(MODE).open(path) {
        Ok(file) => {
            // The umask may have taken bits from `mode`; this sets exactly 0600.
            file.set_permissions(Permissions::from_mode(MODE))?;
            Ok(file)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            base().custom_flags(libc::O_NOFOLLOW).open(path)
        }
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `bytes` atomically: a crash leaves the old file or
/// the new one. The new file is 0600 (and so is a file that was looser).
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(path.file_name().unwrap_or_default());
    prefix.push(".");
    // tempfile: O_EXCL, 0600, a random name; removed if anything fails.
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.as_file()
        .set_permissions(Permissions::from_mode(MODE))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // rename(2) replaces a symlink at `path` itself, never its target.
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is durable once the directory is.
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_files_are_0600_and_existing_ones_are_kept_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("runs.jsonl");
        append(&p).unwrap().write_all(b"a\n").unwrap();
        assert_eq!(mode(&p), 0o600);
        std::fs::set_permissions(&p, Permissions::from_mode(0o640)).unwrap();
        append(&p).unwrap().write_all(b"b\n").unwrap();
        assert_eq!(mode(&p), 0o640, "an operator's choice stands");
        assert_eq!(read(&p).unwrap(), b"a\nb\n");
        let l = dir.path().join("runs.jsonl.lock");
        lock(&l).unwrap();
        assert_eq!(mode(&l), 0o600);
    }

    #[test]
    fn a_symlink_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for e in [
            read(&link).unwrap_err(),
            append(&link).unwrap_err(),
            lock(&link).unwrap_err(),
        ] {
            assert!(is_symlink_refusal(&e), "{e}");
        }
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(is_symlink_refusal(&append(&dangling).unwrap_err()));
        assert!(!dir.path().join("nowhere").exists());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }

    #[test]
    fn replace_is_0600_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("runs.jsonl");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, Permissions::from_mode(0o644)).unwrap();
        replace(&p, b"new\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new\n");
        assert_eq!(mode(&p), 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["runs.jsonl"]);
    }
}
