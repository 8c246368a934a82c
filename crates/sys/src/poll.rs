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
    ready.iter_mut().for_each(|r| *r = false);
    // Hang-up and error count as readable: the read that follows reports what happened.
    poll_each(fds, priority, timeout, |i, ev| {
        if let Some(r) = ready.get_mut(i) {
            *r = !ev.is_empty();
        }
    })
}

/// What [`wait_each`] saw on one descriptor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Readable, hung up or in error: a read will not block.
    pub readable: bool,
    /// Hung up or in error: every writer is gone, what is left is all there will be.
    pub hangup: bool,
}

/// [`wait`], telling a hang-up apart from data (multilog's input).
pub fn wait_each(
    fds: &[BorrowedFd<'_>],
    seen: &mut [Seen],
    timeout: Option<Duration>,
) -> io::Result<()> {
    seen.iter_mut().for_each(|s| *s = Seen::default());
    poll_each(fds, 0, timeout, |i, ev| {
        if let Some(s) = seen.get_mut(i) {
            s.hangup = ev.intersects(PollFlags::HUP | PollFlags::ERR);
            s.readable = ev.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR);
        }
    })
}

/// One `poll` over `fds` (priority data for those marked in `priority`); `each(i, revents)` for
/// every descriptor afterwards, unless the call was interrupted (then nothing is ready).
fn poll_each(
    fds: &[BorrowedFd<'_>],
    priority: u32,
    timeout: Option<Duration>,
    mut each: impl FnMut(usize, PollFlags),
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
    match rustix::event::poll(set, ts.as_ref()) {
        Ok(_) => {}
        Err(Errno::INTR) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    for (i, p) in set.iter().enumerate() {
        each(i, p.revents());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    #[test]
    fn wait_each_tells_data_from_hangup() {
        let (r, mut w) = std::io::pipe().unwrap();
        let mut seen = [Seen::default()];
        wait_each(&[r.as_fd()], &mut seen, Some(Duration::ZERO)).unwrap();
        assert_eq!(seen, [Seen::default()]);
        w.write_all(b"x").unwrap();
        wait_each(&[r.as_fd()], &mut seen, Some(Duration::ZERO)).unwrap();
        assert_eq!(
            seen,
            [Seen {
                readable: true,
                hangup: false
            }]
        );
        drop(w);
        wait_each(&[r.as_fd()], &mut seen, Some(Duration::ZERO)).unwrap();
        assert_eq!(
            seen,
            [Seen {
                readable: true,
                hangup: true
            }]
        );
        let mut ready = [false];
        wait(&[r.as_fd()], &mut ready, Some(Duration::ZERO)).unwrap();
        assert_eq!(ready, [true]);
    }
}
