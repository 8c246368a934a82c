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
    wait_marked(fds, 0, ready, timeout)
}

/// [`wait`], except that each fd whose bit is set in `priority` (bit i for `fds[i]`) is waited
/// on for priority data only (`POLLPRI`): how kernfs files such as `cgroup.events` say they
/// changed (they are always readable).
pub fn wait_marked(
    fds: &[BorrowedFd<'_>],
    priority: u32,
    ready: &mut [bool],
    timeout: Option<Duration>,
) -> io::Result<()> {
    let flags = |i: usize| {
        if i < 32 && priority & (1 << i) != 0 {
            PollFlags::PRI
        } else {
            PollFlags::IN
        }
    };
    // Up to INLINE descriptors (supervise's case) live on the stack: no allocation per wait.
    const INLINE: usize = 8;
    let mut heap: Vec<PollFd<'_>>;
    let mut inline: [PollFd<'_>; INLINE];
    let set: &mut [PollFd<'_>] = match fds.first() {
        Some(first) if fds.len() <= INLINE => {
            inline = std::array::from_fn(|i| PollFd::new(fds.get(i).unwrap_or(first), flags(i)));
            inline.get_mut(..fds.len()).unwrap_or_default()
        }
        _ => {
            heap = fds
                .iter()
                .enumerate()
                .map(|(i, fd)| PollFd::new(fd, flags(i)))
                .collect();
            &mut heap
        }
    };
    let ts = timeout.map(|d| Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    ready.iter_mut().for_each(|r| *r = false);
    match rustix::event::poll(set, ts.as_ref()) {
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
