//! supervise DIR — run DIR/run and keep it running as told through DIR/supervise/control.
//!
//! Usage: `supervise dir` (exactly one argument), or `supervise -d dir`: make sure a supervise
//! runs on dir, starting one detached from the caller when none does (see [`detach`]).
//!
//! Files: creates `DIR/supervise/` (0700) with `lock`, `control` and `ok` FIFOs and the 20-byte
//! `status` (daemontools' 18 bytes + runit's 2). Reads the knob files described in
//! supervise(8) before every start of `./run`.
//!
//! Signals: SIGTERM and SIGINT mean `dx` (bring the service down, then exit); SIGHUP means `x`.
//!
//! Exit codes: 0 after `x` once the service is down; 100 usage; 111 when it cannot set up
//! (another supervise holds the lock, no directory, no FIFO). With `-d`: 0 once a supervise
//! runs on dir (holding its lock), 111 with the reason otherwise.
#![forbid(unsafe_code)]

mod access;
mod detach;
mod knobs;
mod procs;
mod ready;
mod records;
mod setup;

use knobs::{Deadman, knob_value, listed_knobs, read_knob};
use procs::{Cgroup, oldest_child};

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::ExitCode;

use vigil_core::control::sig;
use vigil_core::history::{self, Event};
use vigil_core::info::InfoView;
use vigil_core::layout::{self, KnobListing, KnobSet, state};
use vigil_core::machine::{Action, Input, Machine, Now};
use vigil_core::readiness::{self, Main};
use vigil_core::tai::Tai64n;
use vigil_sys::cgroup::{self, Events, Hierarchy, ServiceCgroup};
use vigil_sys::clock::Clock;
use vigil_sys::diag::{self, EXIT_TEMP};
use vigil_sys::notify::{self, NotifySocket};
use vigil_sys::signals::{self, Signals};
use vigil_sys::statedir::{FifoFound, StateDir};
use vigil_sys::watch::{self as filewatch, FileWatch};
use vigil_sys::{children, fifo, files, poll, process, spawn};

pub(crate) const PROG: &str = "supervise";
/// Bytes reserved for the info text (about 240 with every field set, more only with a long
/// sd_notify STATUS=).
const INFO_CAPACITY: usize = 512;
/// The most sd_notify datagrams read at one wakeup.
const NOTIFY_BATCH: usize = 64;

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let dir = match args.as_slice() {
        [dir] => dir,
        [opt, dir] if opt == "-d" => return detach::start(dir),
        _ => return diag::usage(PROG, "supervise dir"),
    };
    // Run in place, not moved out of the result: one copy of the supervisor in main's frame,
    // which stays under the whole loop.
    match &mut Supervisor::setup(dir) {
        Ok(s) => s.run(),
        Err(code) => *code,
    }
}

struct Supervisor {
    /// DIR as given, for messages.
    name: String,
    machine: Machine,
    clock: Clock,
    /// `supervise/`, held open: every state file is reached through it.
    state: StateDir,
    signals: Signals,
    control: OwnedFd,
    /// Our own writer on `control`: keeps the read end from seeing EOF (and poll quiet).
    _control_writer: OwnedFd,
    /// `supervise/ok`, opened once the first status is written.
    _ok: Option<OwnedFd>,
    _lock: std::fs::File,
    last_written: Option<[u8; vigil_core::status::STATUS_LEN]>,
    last_info: String,
    /// The knob names of the last listing of the service directory, while it has not changed.
    listing: KnobListing,
    /// `supervise/history`, held open between records.
    history: Option<std::fs::File>,
    /// Reused for rendering info and history lines (no allocation once grown).
    text_buf: String,
    /// The machine said exit; the loop returns at its next turn.
    exiting: bool,
    /// Read end of the current run's notification-fd pipe (s6 readiness).
    ready_pipe: Option<OwnedFd>,
    /// The sd_notify socket, when `notify-socket` exists; its address goes to `./run` as
    /// NOTIFY_SOCKET.
    notify: Option<NotifySocket>,
    /// A datagram from a sender not trusted to speak for this run was dropped and said so.
    notify_refusal_told: bool,
    /// The last `STATUS=` text received through sd_notify.
    notify_status: String,
    /// This boot's id, recorded with each run so a successor can recognise it.
    boot_id: String,
    /// The running `./run`: pid and start time in ticks (with `boot_id`, its identity).
    run_identity: Option<(u32, u64)>,
    /// The service's own cgroup, where cgroup2 can be written.
    cgroup: Option<Cgroup>,
    /// The `deadman` knob's file and the watch on it.
    deadman: Option<Deadman>,
    /// `memory-max` / `pids-max` could not be applied and that was said (once each).
    limit_told: [bool; 2],
    /// pidfd of an adopted `./run` (not our child: its end shows as the pidfd turning readable).
    adopted: Option<(u32, OwnedFd)>,
    /// The last status or info write failed (and that was said).
    write_failing: bool,
    /// The svscan that started us ([`vigil_core::scan::SCANNER_ENV`]), which removes our
    /// cgroup after reaping us while it is still our parent.
    scanner: Option<u32>,
}

impl Supervisor {
    fn run(&mut self) -> ExitCode {
        let now = self.clock.now();
        self.handle(Input::Start, now);
        self.listing.forget_fresh();
        vigil_sys::event::run(self)
    }

    /// One wait of the loop: poll the signalfd, the control FIFO and whatever the run has
    /// (readiness pipe, sd_notify socket, an adopted run's pidfd, the dead-man watch, the
    /// cgroup's events while they matter), then turn what is ready into inputs.
    fn wait_once(&mut self, timeout: Option<std::time::Duration>) {
        let mut buf = [0u8; 512];
        let mut ready = [false; 7];
        // At most seven descriptors, on the stack: the idle loop allocates nothing.
        let sig_fd = self.signals.as_fd();
        let mut fds = [sig_fd; 7];
        let mut len = 2;
        if let Some(slot) = fds.get_mut(1) {
            *slot = self.control.as_fd();
        }
        let mut add = |fd: Option<_>| {
            let fd = fd?;
            let at = len;
            *fds.get_mut(at)? = fd;
            len += 1;
            Some(at)
        };
        let pipe_at = add(self.ready_pipe.as_ref().map(AsFd::as_fd));
        let sock_at = add(self.notify.as_ref().map(AsFd::as_fd));
        let adopted_at = add(self.adopted.as_ref().map(|(_, fd)| fd.as_fd()));
        let deadman_at = add(self.deadman.as_ref().map(|d| d.watch.as_fd()));
        let events_at = add(self
            .cgroup
            .as_ref()
            .filter(|_| self.machine.awaiting_population())
            .map(|c| c.events.as_fd()));
        let priority = events_at.map_or(0, |i| 1u32 << i);
        let fds = fds.get(..len).unwrap_or_default();
        if let Err(e) = poll::wait_marked(fds, priority, &mut ready, timeout) {
            diag::unable(PROG, "poll for", &self.name, &e);
        }
        let now = self.clock.now();
        let [sig_ready, control_ready, ..] = ready;
        let is_ready = |at: Option<usize>| at.and_then(|i| ready.get(i)).copied().unwrap_or(false);
        if is_ready(pipe_at) {
            self.handle_ready_pipe(&mut buf, now);
        }
        if is_ready(sock_at) {
            self.handle_notify(&mut buf, now);
        }
        if is_ready(adopted_at)
            && let Some((pid, _)) = self.adopted.take()
        {
            self.handle(Input::AdoptedEnded(pid), now);
            self.tell_population(now);
        }
        if is_ready(deadman_at) {
            let touched = self
                .deadman
                .as_ref()
                .is_some_and(|d| d.watch.drain(d.file_name()));
            if touched {
                self.tell_deadman(now);
            }
        }
        if is_ready(events_at) {
            self.tell_population(now);
        }
        if sig_ready {
            self.handle_signals(now);
        }
        if control_ready {
            self.handle_control(&mut buf, now);
        }
    }

    /// Hands one input to the machine and carries out what it says.
    fn handle(&mut self, input: Input, now: Now) {
        self.machine.handle(input, now);
        self.perform();
    }

    fn handle_signals(&mut self, now: Now) {
        while let Some(s) = self.signals.pending() {
            if s == signals::CHLD {
                let mut reaped = false;
                while let Some((pid, status)) = process::reap() {
                    reaped = true;
                    self.handle(Input::Reaped { pid, status }, now);
                }
                if reaped {
                    self.tell_population(now);
                }
            } else {
                self.handle(Input::Signal(s), now);
            }
        }
    }

    fn handle_control(&mut self, buf: &mut [u8], now: Now) {
        match fifo::read_some(&self.control, buf) {
            Ok(n) => {
                for &b in buf.get(..n).unwrap_or_default() {
                    self.handle(Input::Control(b), now);
                }
                self.handle(Input::EndOfWrite, now);
            }
            Err(e) => diag::unable(
                PROG,
                "read",
                &format_args!("{}/{}", self.name, layout::CONTROL),
                &e,
            ),
        }
    }

    /// Carries out every pending action and writes the status if it changed.
    fn perform(&mut self) {
        // Both files were written in this batch: a forced rewrite right after (the one at exit)
        // would write the same bytes again.
        let mut wrote = false;
        while let Some(action) = self.machine.next_action() {
            let now = self.clock.now();
            match action {
                Action::SpawnRun => self.spawn_run(now),
                Action::ProbeFinish => {
                    let exists = Path::new(layout::FINISH).exists();
                    self.machine.handle(Input::FinishExists(exists), now);
                }
                Action::SpawnFinish { code, signal } => self.spawn_finish(code, signal, now),
                Action::WriteStatus { force } => {
                    let written = self.write_status(force && !wrote);
                    wrote |= written;
                    self.machine.handle(Input::Written(written), now);
                }
                Action::Signal { pid, sig, group } => {
                    // ESRCH: it died a moment ago; its SIGCHLD is on the way. An adopted run is
                    // signalled through its pidfd: its pid is not ours to keep from reuse.
                    let _ = match &self.adopted {
                        Some((p, fd)) if *p == pid && !group => vigil_sys::pidfd::signal(fd, sig),
                        _ => process::signal(pid, sig, group),
                    };
                }
                Action::SignalService { sig } => self.signal_service(sig),
                Action::FindDaemon => {
                    let daemon = oldest_child();
                    self.machine.handle(Input::Daemon(daemon), now);
                }
                Action::History(event) => self.append_history(event, now),
                Action::Exit => {
                    self.exiting = true;
                    // Down means empty: the cgroup can go (EBUSY if not, then it stays). Left
                    // to svscan when it started us and is still there to reap us, unless our
                    // directory was deleted (svscan finds the cgroup through our info file).
                    let scanner_removes = self.scanner == Some(process::parent_pid())
                        && !files::deleted(Path::new("."));
                    if let Some(c) = self.cgroup.as_ref().filter(|_| !scanner_removes) {
                        let _ = c.cg.remove();
                    }
                }
            }
        }
    }
}

impl vigil_sys::event::Daemon for Supervisor {
    fn act(&mut self) -> Option<ExitCode> {
        self.perform();
        self.exiting.then_some(ExitCode::SUCCESS)
    }

    fn deadline(&self) -> Option<std::time::Duration> {
        self.machine.next_deadline()
    }

    fn mono(&self) -> std::time::Duration {
        self.clock.now().mono
    }

    fn wait(&mut self, timeout: Option<std::time::Duration>) {
        self.wait_once(timeout);
    }

    fn timer(&mut self) {
        let now = self.clock.now();
        self.handle(Input::Timer, now);
    }
}
