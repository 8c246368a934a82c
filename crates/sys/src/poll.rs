//! Waiting for readable descriptors or a deadline, with no wakeup when there is neither.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;

/// Blocks until one of `fds` is readable (or hung up) or `timeout` passes; `None` blocks with no
/// timeout at all. Sets `ready[i]` for each readable fd. EINTR counts as "nothing ready".
pub fn wait(
    fds: &[BorrowedFd<'_>],
    ready: &mut [bool],
    timeout: Option<Duration>,
) -> io::Result<()> {
    let mut set: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(fd, PollFlags::IN))
        .collect();
    let ts = timeout.map(|d| Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    ready.iter_mut().for_each(|r| *r = false);
    match rustix::event::poll(&mut set, ts.as_ref()) {
        Ok(_) => {}
        Err(Errno::INTR) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    for (r, p) in ready.iter_mut().zip(set.iter()) {
        // Hang-up and error count as readable: the read that follows reports what happened.
        *r = !p.revents().is_empty();
    }
    Ok(())
}
