//! Process descriptors: a handle on a process that can never turn into a recycled pid. Opened
//! for a supervise left by a dead svscan (not our child: its exit reaches us only as the pidfd
//! polling readable), and by supervise for a run it adopts.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, Signal};

/// A live process, by pid and pidfd.
#[derive(Debug)]
pub struct Holder {
    pub pid: u32,
    pub pidfd: OwnedFd,
}

/// `pidfd_open(pid)` (close-on-exec): readable once the process has ended, and a way to signal
/// it that can never hit a recycled pid.
pub fn open(pid: u32) -> io::Result<OwnedFd> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::from(Errno::SRCH))?;
    Ok(rustix::process::pidfd_open(pid, PidfdFlags::empty())?)
}

/// True once the process behind `pidfd` has exited (its pidfd polls readable).
pub fn exited(pidfd: impl AsFd) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let mut set = [PollFd::new(&pidfd, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(rustix::event::poll(&mut set, Some(&zero)), Ok(n) if n > 0)
}

/// Sends `sig` through a pidfd (never to a recycled pid).
pub fn signal(pidfd: impl AsFd, sig: i32) -> io::Result<()> {
    let sig = Signal::from_named_raw(sig).ok_or_else(|| io::Error::from(Errno::INVAL))?;
    rustix::process::pidfd_send_signal(pidfd, sig)?;
    Ok(())
}

/// A duplicate of descriptor `fd` of the process: `pidfd_getfd` (Linux 5.6), else, where that
/// system call does not exist, a fresh open of `/proc/PID/fd/FD` (for a pipe: the same pipe).
pub fn take_fd(holder: &Holder, fd: i32) -> io::Result<OwnedFd> {
    match rustix::process::pidfd_getfd(&holder.pidfd, fd, PidfdGetfdFlags::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::NOSYS) => {
            let f = crate::fifo::open_pipe_end(&format!("/proc/{}/fd/{fd}", holder.pid), fd == 0)?;
            if exited(&holder.pidfd) {
                return Err(Errno::SRCH.into());
            }
            Ok(f)
        }
        Err(e) => Err(e.into()),
    }
}
