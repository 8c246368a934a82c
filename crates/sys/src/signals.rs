//! Signals as data: the signals a program handles are blocked and read from a signalfd.
//!
//! The mask is inherited across fork and exec, so [`crate::spawn`] empties it in every child;
//! dispositions a parent set to "ignore" survive exec too, so [`reset_dispositions`] puts every
//! signal back to its default at start.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// SIGCHLD, as the signal fd reports it.
pub const CHLD: i32 = libc::SIGCHLD;

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
    pub fn pending(&mut self) -> Option<i32> {
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

/// Sets every signal (1 to 64) except SIGPIPE back to its default action: "ignore" survives
/// exec, so a parent that ignored HUP would otherwise pass that on to every service. SIGPIPE
/// stays ignored in us (writes return EPIPE instead); std restores it in children.
pub fn reset_dispositions() {
    use nix::libc;
    for sig in 1..=64 {
        if matches!(sig, libc::SIGKILL | libc::SIGPIPE | libc::SIGSTOP) {
            continue;
        }
        // SAFETY: a zeroed `sigaction` is SIG_DFL with no flags and an empty mask; installing
        // it runs no code of ours in signal context, and we have no threads to race with.
        // glibc refuses 32 and 33 (its own); those are reset below.
        unsafe {
            let act: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
    }
    reset_libc_reserved();
}

/// glibc reserves signals 32 and 33 and refuses to change them, yet an ignored disposition
/// inherited from our parent would pass on to children that are not glibc programs. The
/// kernel's own call does it.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn reset_libc_reserved() {
    use nix::libc;
    /// The kernel's `struct sigaction` on x86_64.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let act = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 32..=33 {
        // SAFETY: rt_sigaction with a valid, fully initialised kernel struct (SIG_DFL), a null
        // old-action pointer and the kernel's sigset size (8 bytes on x86_64).
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &act as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            );
        }
    }
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn reset_libc_reserved() {}

/// In a child about to exec that shares our memory (spawn's vfork-style clone): every signal
/// with a handler goes back to its default action, so no handler of ours can run in the child
/// and write to our memory; SIGPIPE too (the Rust runtime ignores it; children get the default,
/// as std's `Command` gives them). Ignored signals stay ignored (they survive exec anyway).
/// Raw syscalls only: no locks, no errno games.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub fn reset_handlers_for_exec() {
    use nix::libc;
    /// The kernel's `struct sigaction` on x86_64.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    const SIG_IGN: usize = 1;
    let default = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        let mut old = KernelSigaction {
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        // SAFETY: rt_sigaction reading the current action into a valid kernel struct, with the
        // kernel's sigset size (8 bytes on x86_64).
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                std::ptr::null::<KernelSigaction>(),
                &raw mut old,
                8usize,
            )
        };
        if r != 0 || (old.handler <= SIG_IGN && sig != libc::SIGPIPE) {
            continue;
        }
        // SAFETY: as above, installing SIG_DFL (no code of ours runs for it).
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &raw const default,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            );
        }
    }
}

/// Elsewhere: the libc call for each signal (not async-signal-safe everywhere, but only reached
/// on targets vigil is not built for).
#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
pub fn reset_handlers_for_exec() {
    use nix::libc;
    for sig in 1..=64 {
        // SAFETY: queries, then installs SIG_DFL; a zeroed sigaction is SIG_DFL.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            if old.sa_sigaction <= libc::SIG_IGN && sig != libc::SIGPIPE {
                continue;
            }
            let act: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
    }
}

/// Empties the signal mask of the calling thread. Async-signal-safe: used between fork and exec.
pub fn unblock_all() -> io::Result<()> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use vigil_core::control::sig;

    /// The pure crate's signal table is Linux's numbering: checked here, where libc is.
    #[test]
    fn core_signal_numbers_are_libc_numbers() {
        for (name, n) in sig::NAMES {
            let want = match name {
                "HUP" => libc::SIGHUP,
                "INT" => libc::SIGINT,
                "QUIT" => libc::SIGQUIT,
                "KILL" => libc::SIGKILL,
                "USR1" => libc::SIGUSR1,
                "USR2" => libc::SIGUSR2,
                "ALRM" => libc::SIGALRM,
                "TERM" => libc::SIGTERM,
                "CONT" => libc::SIGCONT,
                "STOP" => libc::SIGSTOP,
                "WINCH" => libc::SIGWINCH,
                other => panic!("core names a signal this test does not know: {other}"),
            };
            assert_eq!(n, want, "SIG{name}");
        }
        assert_eq!(super::CHLD, libc::SIGCHLD);
    }
}
