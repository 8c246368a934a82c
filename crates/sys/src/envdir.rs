//! Reading an environment directory: each file's name and the change it makes (the rules are
//! `vigil_core::envdir`'s).

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use rustix::fs::{Access, AtFlags, CWD};
use vigil_core::envdir::{Change, change_of, is_variable};

/// What went wrong, and where: the caller words it in its own program's grammar.
#[derive(Debug)]
pub enum EnvDirError {
    /// Entering the directory: missing, not a directory, no search permission (daemontools:
    /// `unable to switch to directory DIR`).
    Open(io::Error),
    /// Opening it for listing, e.g. no read permission (`unable to read directory DIR`).
    OpenList(io::Error),
    /// Listing it (`unable to read directory DIR`).
    List(io::Error),
    /// One file, by name (`unable to read DIR/NAME`).
    Read(OsString, io::Error),
}

/// Whether a subdirectory (or other unreadable entry) stops the whole run (daemontools'
/// envdir) or is passed over (chpst `-e`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strictness {
    Strict,
    SkipDirectories,
}

/// Enough of a file to hold its first line: reads until a newline or the end.
fn read_first_line(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let mut out = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        let n = match file.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let got = chunk.get(..n).unwrap_or_default();
        out.extend_from_slice(got);
        if n == 0 || got.contains(&b'\n') {
            return Ok(out);
        }
    }
}

/// Every variable `dir` sets or removes, in directory order.
pub fn read_changes(
    dir: &Path,
    strictness: Strictness,
) -> Result<Vec<(OsString, Change)>, EnvDirError> {
    // daemontools and runit chdir into the directory first, then list it: check what chdir
    // would (search permission) before what listing needs (read permission), so each failure
    // gets their words, without moving this process.
    if !std::fs::metadata(dir).map_err(EnvDirError::Open)?.is_dir() {
        return Err(EnvDirError::Open(rustix::io::Errno::NOTDIR.into()));
    }
    rustix::fs::accessat(CWD, dir, Access::EXEC_OK, AtFlags::EACCESS)
        .map_err(|e| EnvDirError::Open(e.into()))?;
    let list = std::fs::read_dir(dir).map_err(EnvDirError::OpenList)?;
    let mut changes = Vec::new();
    for entry in list {
        let entry = entry.map_err(EnvDirError::List)?;
        let name = entry.file_name();
        if !is_variable(name.as_bytes()) {
            continue;
        }
        match read_first_line(&entry.path()) {
            Ok(contents) => changes.push((name, change_of(&contents))),
            Err(e)
                if strictness == Strictness::SkipDirectories
                    && e.raw_os_error() == Some(rustix::io::Errno::ISDIR.raw_os_error()) => {}
            Err(e) => return Err(EnvDirError::Read(name, e)),
        }
    }
    Ok(changes)
}

/// The changes as environment edits for [`crate::exec::exec`].
pub fn env_changes(changes: Vec<(OsString, Change)>) -> crate::exec::EnvChanges {
    changes
        .into_iter()
        .map(|(name, change)| match change {
            Change::Set(v) => (name, Some(OsString::from_vec(v))),
            Change::Unset => (name, None),
        })
        .collect()
}
