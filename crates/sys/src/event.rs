//! The one shape of every daemon's event loop (svscan, supervise, multilog): carry out what the
//! machine asks, sleep in poll(2) on the signalfd and the daemon's descriptors until one is ready
//! or the machine's next deadline comes, turn what is ready into inputs, and hand the machine
//! its timer when the deadline has passed. A daemon with no deadline sleeps until a descriptor
//! is ready: nothing wakes it on a timer.

use std::process::ExitCode;
use std::time::Duration;

/// A daemon driven by [`run`].
pub trait Daemon {
    /// Carries out every pending action of the machine; `Some(code)` to exit with it.
    fn act(&mut self) -> Option<ExitCode>;
    /// The machine's next deadline on the monotonic clock of [`Daemon::mono`], if any.
    fn deadline(&self) -> Option<Duration>;
    /// The monotonic clock.
    fn mono(&self) -> Duration;
    /// Waits at most `timeout` (`None`: for ever) for the signalfd or a descriptor, and turns
    /// what is ready into inputs.
    fn wait(&mut self, timeout: Option<Duration>);
    /// The deadline has come.
    fn timer(&mut self);
}

/// Runs `daemon` until it says exit.
pub fn run(daemon: &mut impl Daemon) -> ExitCode {
    loop {
        if let Some(code) = daemon.act() {
            return code;
        }
        let timeout = daemon.deadline().map(|d| d.saturating_sub(daemon.mono()));
        daemon.wait(timeout);
        if daemon.deadline().is_some_and(|d| d <= daemon.mono()) {
            daemon.timer();
        }
    }
}
