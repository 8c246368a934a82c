//! Small files written so that readers never see half of one.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `bytes` to `tmp` (mode 0644), then renames it over `path`: readers see the old
/// content or the new, never a mix. No fsync: status files are rewritten on every change and
/// describe live processes, which a crash ends anyway.
pub fn replace(tmp: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_then_rename(tmp, path, bytes, false)
}

/// Like [`replace`], with an fsync of the file before the rename, for records that must survive
/// a crash of the machine.
pub fn replace_durable(tmp: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_then_rename(tmp, path, bytes, true)
}

fn write_then_rename(tmp: &Path, path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(tmp)?;
    f.write_all(bytes)?;
    if sync {
        f.sync_all()?;
    }
    drop(f);
    fs::rename(tmp, path)
}

/// Creates a directory with `mode`; an existing one is fine.
pub fn make_dir(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::DirBuilder::new().mode(mode).create(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// True when `path` exists (any type, symlinks followed).
pub fn exists(path: &Path) -> io::Result<bool> {
    match fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The trimmed first line of a small text file, `None` when it does not exist or is unreadable.
pub fn read_word(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    Some(text.lines().next().unwrap_or("").trim().to_owned())
}

/// Takes `flock(LOCK_EX|LOCK_NB)` on `path` (created 0600 if missing). The lock lives as long
/// as the returned file; it is close-on-exec, so children never hold it.
pub fn try_lock(path: &Path) -> io::Result<fs::File> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(fs::TryLockError::WouldBlock) => Err(io::Error::from_raw_os_error(11)),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Appends `record` to `path` with one `write(2)` on an `O_APPEND` descriptor, so a crash can
/// tear at most this record. When the file has grown past `max`, it is first replaced (via
/// `tmp` and a rename) by `keep(old content)`.
pub fn append_bounded(
    path: &Path,
    tmp: &Path,
    record: &[u8],
    max: u64,
    keep: impl Fn(&str) -> &str,
) -> io::Result<()> {
    if fs::metadata(path).is_ok_and(|m| m.len() > max) {
        let old = fs::read_to_string(path).unwrap_or_default();
        replace(tmp, path, keep(&old).as_bytes())?;
    }
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)?;
    f.write_all(record)
}
