//! The system side of `supervise -d`: the pipe on which a detached supervise says it runs, the
//! lock that makes concurrent callers take turns, and the descriptors a detached process gets.
//!
//! The caller makes a pipe and hands its write end to the new supervise twice: as stderr (so a
//! fatal message during setup reaches the caller) and as the descriptor named in
//! [`READY_FD_ENV`]. Once supervise holds its lock and has set up `supervise/`, it writes
//! [`READY`] there, puts its stdout in place of stderr and closes the pipe: the caller reads to
//! end of file and knows, from the presence of that byte, whether supervise is running. No
//! descriptor of the caller stays with the detached process.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Instant;

use rustix::fs::{FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use rustix::pipe::PipeFlags;

/// The environment variable naming the descriptor a detached supervise reports on. supervise
/// takes it out of its environment at once: no child of its sees it.
pub const READY_FD_ENV: &str = "VIGIL_READY_FD";
/// The descriptor number the caller gives the pipe in the detached supervise.
pub const READY_FD: i32 = 3;
/// The byte that says "running, lock taken, `supervise/` set up". Never part of a message.
pub const READY: u8 = 0;

/// A pipe, both ends close-on-exec and blocking.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?)
}

/// `/dev/null`, for reading or writing, close-on-exec.
pub fn open_null(write: bool) -> io::Result<OwnedFd> {
    let access = if write {
        OFlags::WRONLY
    } else {
        OFlags::RDONLY
    };
    Ok(rustix::fs::open(
        "/dev/null",
        access | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Waits for `flock(LOCK_EX)` on the directory `dir` itself (opened read-only, close-on-exec):
/// callers of `supervise -d` on one directory take turns, so only one of them at a time looks
/// and starts. The lock ends with the returned descriptor (or the process).
pub fn lock_dir_waiting(dir: &Path) -> io::Result<OwnedFd> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    loop {
        match rustix::fs::flock(&fd, FlockOperation::LockExclusive) {
            Ok(()) => return Ok(fd),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Everything read from `fd` until end of file or `deadline`; the flag says whether end of
/// file was reached.
pub fn read_until_eof(fd: &OwnedFd, deadline: Instant) -> io::Result<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok((out, false));
        }
        let mut ready = [false];
        crate::poll::wait(&[fd.as_fd()], &mut ready, Some(left))?;
        if ready != [true] {
            continue;
        }
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return Ok((out, true)),
            Ok(n) => out.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(Errno::INTR | Errno::AGAIN) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// In the detached supervise, first thing: the pipe named by the value of [`READY_FD_ENV`], as
/// a descriptor of our own (close-on-exec). `None` when the value is no descriptor number above
/// 2, or names no pipe: a stray variable can never make us close a descriptor we use.
pub fn take_ready_pipe(value: &OsStr) -> Option<OwnedFd> {
    let n: i32 = value.to_str()?.parse().ok().filter(|&n| n > 2)?;
    // Checked before anything is owned: fcntl on a number that is not open fails.
    // SAFETY: a borrow for this call only; fcntl on a closed number just returns EBADF.
    let flags = rustix::io::fcntl_getfd(unsafe { std::os::fd::BorrowedFd::borrow_raw(n) }).ok()?;
    // SAFETY: `n` is open (above) and nothing in this process owns it: it is called at the
    // start of supervise's setup, before supervise opens any descriptor, so `n` can only be
    // the one inherited from the caller.
    let fd = unsafe { OwnedFd::from_raw_fd(n) };
    if !flags.contains(rustix::io::FdFlags::CLOEXEC) {
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC).ok()?;
    }
    let st = rustix::fs::fstat(&fd).ok()?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Fifo {
        // Not ours to close either: hand the number back untouched.
        std::mem::forget(fd);
        return None;
    }
    Some(fd)
}

/// In the detached supervise, once it holds its lock and `supervise/` is set up: writes
/// [`READY`] on `pipe`, makes stderr a copy of stdout (the caller's pipe was stderr until now)
/// and closes `pipe`. From then on the caller holds the only ends of that pipe.
pub fn report_ready(pipe: OwnedFd) -> io::Result<()> {
    let written = rustix::io::write(&pipe, &[READY]);
    rustix::stdio::dup2_stderr(rustix::stdio::stdout())?;
    drop(pipe);
    written.map(|_| ()).map_err(Into::into)
}
