//! Starting children: `./run`, `./finish`, supervise processes.
//!
//! Each child starts with an empty signal mask (std no longer clears it, and a child that
//! inherits our blocked SIGTERM cannot be stopped), default dispositions (reset at our start),
//! only fds 0-2 (everything of ours is close-on-exec) plus any fds asked for, and optionally
//! its own session. Between fork and exec only async-signal-safe calls are made.

use std::ffi::OsStr;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// How to start one child.
#[derive(Default)]
pub struct Spawn<'a> {
    /// Start in a new session (`setsid`): the child leads its own process group.
    pub setsid: bool,
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    /// Extra descriptors to hand over as (source, number in the child).
    pub fds: Vec<(&'a OwnedFd, RawFd)>,
    /// Working directory of the child.
    pub cwd: Option<&'a std::path::Path>,
    /// argv[0] as the child sees it, when it differs from the program path.
    pub arg0: Option<&'a OsStr>,
    /// Variables to add to (or replace in) the inherited environment.
    pub env: Vec<(&'a OsStr, &'a OsStr)>,
}

/// Forks and execs `program` with `args`; returns the child's pid. Exec failures come back as
/// `Err` with the exec errno (std reports them through a close-on-exec pipe).
pub fn spawn(program: &OsStr, args: &[&OsStr], opts: Spawn<'_>) -> io::Result<u32> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(a0) = opts.arg0 {
        cmd.arg0(a0);
    }
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    if let Some(d) = opts.cwd {
        cmd.current_dir(d);
    }
    if let Some(fd) = opts.stdin {
        cmd.stdin(Stdio::from(fd));
    }
    if let Some(fd) = opts.stdout {
        cmd.stdout(Stdio::from(fd));
    }
    let setsid = opts.setsid;
    let moves: Vec<(RawFd, RawFd)> = opts
        .fds
        .iter()
        .map(|(src, dst)| (src.as_raw_fd(), *dst))
        .collect();
    // SAFETY: the closure runs in the child between fork and exec. It makes only raw syscalls
    // (sigprocmask, setsid, dup2/fcntl through rustix or nix), allocates nothing (`moves` was
    // built before the fork) and cannot panic.
    unsafe {
        cmd.pre_exec(move || {
            crate::signals::unblock_all()?;
            if setsid {
                rustix::process::setsid()?;
            }
            for &(src, dst) in &moves {
                if src == dst {
                    let fd = std::os::fd::BorrowedFd::borrow_raw(src);
                    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
                } else {
                    // ManuallyDrop: `target` names a number in the child; it must not be closed
                    // by a destructor here.
                    let mut target = ManuallyDrop::new(OwnedFd::from_raw_fd(dst));
                    let src_fd = std::os::fd::BorrowedFd::borrow_raw(src);
                    rustix::io::dup2(src_fd, &mut target)?;
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    // The child is reaped by the caller's waitpid loop; dropping `Child` neither waits nor kills.
    Ok(child.id())
}
