//! Replacing this process with the next program of a run script's chain
//! (`setuidgid app envdir ./env softlimit … prog`), and the process-state changes made just
//! before: new session, new root, closing standard descriptors.
//!
//! Nothing here forks: the helpers leave no parent behind, and the service keeps the pid
//! supervise started.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// Environment changes to make in the program: `Some` sets, `None` removes.
pub type EnvChanges = Vec<(OsString, Option<OsString>)>;

/// Where a program name without `/` is looked for when PATH is not set (daemontools' default).
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// Runs `argv[0]` with `argv` as its arguments (`argv0` replaces argument 0 when given) and the
/// environment changed by `env`. Returns only on failure, with the reason.
///
/// A name without `/` is searched in this process's PATH, not in a PATH that `env` sets: so
/// `envdir` with a `PATH` file still finds its child where the caller's PATH says, as
/// daemontools' and runit's do. Entries where the file is missing are passed over; an entry
/// where it exists but cannot be run (access denied, a directory) is remembered and the search
/// goes on; the reason reported is the last such one, else "file does not exist".
pub fn exec(argv: &[OsString], env: &EnvChanges, argv0: Option<&OsStr>) -> io::Error {
    let not_found = || io::Error::from_raw_os_error(rustix::io::Errno::NOENT.raw_os_error());
    let Some((prog, args)) = argv.split_first() else {
        return not_found();
    };
    let name = argv0.unwrap_or(prog);
    if prog.as_bytes().contains(&b'/') {
        return exec_path(Path::new(prog), name, args, env);
    }
    let path = std::env::var_os("PATH");
    let path = path.as_ref().map_or(DEFAULT_PATH, |p| p.as_bytes());
    let mut reason = not_found();
    for dir in path.split(|&b| b == b':') {
        let dir = if dir.is_empty() { b"." } else { dir };
        let candidate = Path::new(OsStr::from_bytes(dir)).join(prog);
        let e = exec_path(&candidate, name, args, env);
        match e.raw_os_error().map(rustix::io::Errno::from_raw_os_error) {
            Some(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => {}
            Some(
                rustix::io::Errno::ACCESS | rustix::io::Errno::PERM | rustix::io::Errno::ISDIR,
            ) => {
                reason = e;
            }
            _ => return e,
        }
    }
    reason
}

/// One execve of `path`, argument 0 `name`.
fn exec_path(path: &Path, name: &OsStr, args: &[OsString], env: &EnvChanges) -> io::Error {
    let mut cmd = Command::new(path);
    cmd.arg0(name).args(args);
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
    crate::diag::unable_text("run", &prog, e)
}
