//! Replacing this process with the next program of a run script's chain
//! (`setuidgid app envdir ./env softlimit … prog`), and the process-state changes made just
//! before: new session, new root, closing standard descriptors.
//!
//! Nothing here forks: the helpers leave no parent behind, and the service keeps the pid
//! supervise started.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// Environment changes to make in the program: `Some` sets, `None` removes.
pub type EnvChanges = Vec<(OsString, Option<OsString>)>;

/// Runs `argv[0]` (searched in PATH, the PATH after `env` is applied, when it has no `/`)
/// with `argv` as its arguments, or `argv0` as its argument 0 instead when given. Returns only
/// on failure, with the reason.
pub fn exec(argv: &[OsString], env: &EnvChanges, argv0: Option<&OsStr>) -> io::Error {
    let Some((prog, args)) = argv.split_first() else {
        return io::Error::from_raw_os_error(rustix::io::Errno::NOENT.raw_os_error());
    };
    let mut cmd = Command::new(prog);
    cmd.args(args);
    if let Some(name) = argv0 {
        cmd.arg0(name);
    }
    for (key, value) in env {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd.exec()
}

/// Makes this process the leader of a new session and process group (pgrphack, chpst `-P`).
pub fn new_session() -> io::Result<()> {
    rustix::process::setsid()?;
    Ok(())
}

/// Which step of [`change_root`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootStep {
    Chdir,
    Chroot,
}

/// Enters `dir` and makes it the root directory (chpst `-/`).
pub fn change_root(dir: &Path) -> Result<(), (RootStep, io::Error)> {
    std::env::set_current_dir(dir).map_err(|e| (RootStep::Chdir, e))?;
    rustix::process::chroot(".").map_err(|e| (RootStep::Chroot, e.into()))?;
    Ok(())
}

/// Closes standard descriptor `fd` (0, 1 or 2) for chpst `-0`/`-1`/`-2`; call it last before
/// [`exec`], so no file opened meanwhile takes the number.
pub fn close_standard(fd: RawFd) {
    if !(0..=2).contains(&fd) {
        return;
    }
    // SAFETY: fds 0-2 are never owned by a Rust object in these programs (std's stdin, stdout
    // and stderr handles only borrow them), so closing the number cannot make any owner
    // close a reused descriptor later; a closed one gives EBADF, which the drop ignores.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
}

/// daemontools' words for a failed [`exec`]: `unable to run CHILD: REASON`.
pub fn run_failure(argv: &[OsString], e: &io::Error) -> String {
    let prog = argv
        .first()
        .map(|p| p.to_string_lossy())
        .unwrap_or_default();
    format!("unable to run {prog}: {}", crate::diag::reason(e))
}
