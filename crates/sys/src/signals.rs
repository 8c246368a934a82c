//! Signals as data: the signals a program handles are blocked and read from a signalfd.
//!
//! The mask is inherited across fork and exec, so [`crate::spawn`] empties it in every child;
//! dispositions a parent set to "ignore" survive exec too, so [`reset_dispositions`] puts every
//! signal back to its default at start.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// A signalfd over a blocked set of signals.
pub struct Signals {
    fd: SignalFd,
}

impl Signals {
    /// Blocks `signals` (numbers) and opens a non-blocking, close-on-exec signalfd for them.
    pub fn block(signals: &[i32]) -> io::Result<Signals> {
        let mut set = SigSet::empty();
        for &n in signals {
            set.add(Signal::try_from(n)?);
        }
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals { fd })
    }

    /// The next pending signal number, `None` when there is none.
    pub fn next(&mut self) -> Option<i32> {
        match self.fd.read_signal() {
            Ok(Some(info)) => i32::try_from(info.ssi_signo).ok(),
            _ => None,
        }
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Sets every catchable signal except SIGPIPE back to its default action. SIGPIPE stays
/// ignored in us (writes return EPIPE instead); std restores it in children.
pub fn reset_dispositions() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, sigaction};
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP | Signal::SIGPIPE) {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no code of ours in signal context; we have no threads
        // and no handlers that this could race with.
        let _ = unsafe { sigaction(sig, &dfl) };
    }
}

/// Empties the signal mask of the calling thread. Async-signal-safe: used between fork and exec.
pub fn unblock_all() -> io::Result<()> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    Ok(())
}
