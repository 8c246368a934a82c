//! flock(2) locks: the one setlock and chpst `-l`/`-L` hold for the program they run
//! ([`hold`]), the one-per-directory locks of svscan ([`lock_dir`]) and multilog-style files
//! ([`try_lock`]), and who holds a service's `supervise/lock` ([`lock_state`]).
//!
//! A supervise left running by a killed svscan is not our child: its exit reaches us through a
//! pidfd (readable once the process has exited), never through SIGCHLD. Its pid comes from
//! `/proc/locks` (the line whose inode is the lock file's), and is trusted only after the
//! pidfd is open and the process is seen holding a descriptor of that very file, so a recycled
//! pid can never be taken for the holder. When `/proc/locks` names nobody usable (another pid
//! namespace, a kernel that hides it), every process's descriptors are searched instead.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use vigil_core::procfs as parse;

use crate::fifo::FileId;
use crate::pidfd::{self, Holder};
use crate::procfs;

/// Which step of [`hold`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockStep {
    Open,
    Lock,
}

/// Opens `path` for appending (created 0600 if missing) and takes an exclusive flock on it:
/// waiting for a holder to let go when `wait`, else failing at once with EAGAIN. The
/// descriptor is deliberately inherited across exec (no close-on-exec): the lock lasts as long
/// as the program, and its children, keep it open.
pub fn hold(path: &Path, wait: bool) -> Result<OwnedFd, (LockStep, io::Error)> {
    let flags = OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::NONBLOCK;
    let fd = rustix::fs::open(path, flags, Mode::from_raw_mode(0o600))
        .map_err(|e| (LockStep::Open, e.into()))?;
    let op = if wait {
        FlockOperation::LockExclusive
    } else {
        FlockOperation::NonBlockingLockExclusive
    };
    loop {
        match rustix::fs::flock(&fd, op) {
            Ok(()) => return Ok(fd),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err((LockStep::Lock, e.into())),
        }
    }
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
        Err(fs::TryLockError::WouldBlock) => Err(rustix::io::Errno::AGAIN.into()),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Takes `flock(LOCK_EX|LOCK_NB)` on the directory `path` itself, opened
/// `O_RDONLY|O_DIRECTORY|O_CLOEXEC`: no write access needed, no file created. The lock lasts as
/// long as the returned descriptor (close-on-exec: children never hold it) and ends with the
/// process, however it dies. Held elsewhere: `EAGAIN`.
pub fn lock_dir(path: &std::path::Path) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{FlockOperation, Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(fd),
        Err(Errno::WOULDBLOCK) => Err(io::Error::from_raw_os_error(Errno::AGAIN.raw_os_error())),
        Err(e) => Err(e.into()),
    }
}

/// What a lock file says about its supervise.
#[derive(Debug)]
pub enum Lock {
    /// No lock file, or nobody holds it.
    Free,
    /// Held; the holder when it could be found and opened as a pidfd.
    Held(Option<Holder>),
}

/// Looks at the lock file `rel` under `dir` without creating it. Testing the lock takes it for
/// an instant (and drops it at once) when nobody holds it. `locks` gives `/proc/locks`
/// ([`read_locks`]), read into `locks` only when the lock is held and kept there for the
/// next lookups, so a fresh service directory (no lock file yet) costs one failed open, not a
/// read of every lock on the system.
pub fn lock_state(
    dir: impl AsFd,
    rel: impl AsRef<Path>,
    locks: &mut Option<String>,
) -> io::Result<Lock> {
    let fd = match rustix::fs::openat(
        dir,
        rel.as_ref(),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(Lock::Free),
        Err(e) => return Err(e.into()),
    };
    match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        // Closing `fd` drops the lock again.
        Ok(()) => return Ok(Lock::Free),
        Err(Errno::WOULDBLOCK) => {}
        Err(e) => return Err(e.into()),
    }
    let st = rustix::fs::fstat(&fd)?;
    let id = (st.st_dev, st.st_ino);
    let (major, minor) = (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev));
    let locks = locks.get_or_insert_with(procfs::read_locks).as_str();
    for pid in parse::lock_pids(locks, major, minor, st.st_ino) {
        if let Some(h) = verified(pid, id) {
            return Ok(Lock::Held(Some(h)));
        }
    }
    // Device numbers in /proc/locks can differ from stat's (overlay filesystems): try every
    // pid whose lock is on this inode, then every process.
    for pid in parse::lock_pids_any_dev(locks, st.st_ino) {
        if let Some(h) = verified(pid, id) {
            return Ok(Lock::Held(Some(h)));
        }
    }
    Ok(Lock::Held(
        procfs::all_pids().into_iter().find_map(|p| verified(p, id)),
    ))
}

/// A pidfd for `pid`, kept only if the process (alive after the pidfd was opened) has a
/// descriptor on the file `id`.
fn verified(pid: u32, id: FileId) -> Option<Holder> {
    let pidfd = pidfd::open(pid).ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let holds = fds
        .flatten()
        .any(|e| std::fs::metadata(e.path()).is_ok_and(|m| (m.dev(), m.ino()) == id));
    (holds && !pidfd::exited(&pidfd)).then_some(Holder { pid, pidfd })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn finds_our_own_lock() {
        let dir = std::env::temp_dir().join(format!("vigil-takeover-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lock");
        let held = try_lock(&path).unwrap();
        let d = std::fs::File::open(&dir).unwrap();
        let mut locks = None;
        let Lock::Held(Some(h)) = lock_state(&d, "lock", &mut None).unwrap() else {
            panic!("lock not seen held");
        };
        assert_eq!(h.pid, std::process::id());
        drop(held);
        assert!(matches!(
            lock_state(&d, "lock", &mut None).unwrap(),
            Lock::Free
        ));
        assert!(matches!(
            lock_state(&d, "none", &mut locks).unwrap(),
            Lock::Free
        ));
        assert!(locks.is_none(), "no lock file: /proc/locks left unread");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
