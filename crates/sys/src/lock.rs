//! The lock setlock and chpst `-l`/`-L` hold for the program they run.
//!
//! The descriptor is deliberately inherited across exec (no close-on-exec): the lock lasts as
//! long as the program, and its children, keep it open. It is the one descriptor these helpers
//! add to the ones the service had.

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{FlockOperation, Mode, OFlags};

/// Which step of [`hold`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockStep {
    Open,
    Lock,
}

/// Opens `path` for appending (created 0600 if missing) and takes an exclusive flock on it:
/// waiting for a holder to let go when `wait`, else failing at once with EAGAIN.
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
