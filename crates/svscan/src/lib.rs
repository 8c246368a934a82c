//! svscan — start and keep a `supervise` for every service directory in DIR.
//!
//! Usage: `svscan [ -t ms ] [ dir ]` (dir defaults to the current directory).
//!
//! Every entry of DIR whose name does not begin with `.` and which is, or links to, a directory
//! gets `supervise NAME`; if `NAME/log/run` exists (and is executable), also `supervise log` run
//! in `NAME`, its stdin the read end of a pipe whose write end is the service's stdout. svscan
//! holds the pipe (one descriptor open for both reading and writing) for as long as the
//! service exists, so nothing is lost when either side restarts; each side's end is opened from
//! it just before that side starts and closed right after. Changes in DIR (and a `log` added to
//! a service) are seen through inotify at once; without inotify, DIR is rescanned every 5
//! seconds. The `supervise` beside svscan's own executable is run, else the one on PATH. A
//! supervise started in place of an earlier one keeps the want that one recorded
//! (`HANDOVER_ENV`); only the first one started for a service applies `./down`.
//!
//! svscan holds `flock` on DIR itself for its lifetime: a second svscan on DIR exits 111.
//!
//! Options: `-t ms`: at shutdown, how long a service (and then a logger draining its pipe) may
//! take to stop before it is killed (default 10000).
//!
//! Signals: SIGHUP, SIGALRM rescan. SIGTERM, SIGINT: every service down (`dx`), `+k` to those
//! still up after the timeout, then every logger reads its pipe to the end and exits, then
//! svscan exits 0. SIGCHLD: reaps every child at once, also orphans (svscan makes itself a child
//! subreaper unless it is PID 1).
//!
//! Readiness: when started with `$NOTIFY_SOCKET` (systemd `Type=notify`), svscan sends `READY=1`
//! once its first scan has started every service, and removes the variable.
//!
//! Exit codes: 0 after a shutdown; 100 usage; 111 when DIR cannot be entered, another svscan
//! holds its lock, or signals cannot be set up.
//!
//! This file is the loop: it feeds what it sees to [`Scan`] and performs the actions it gets
//! back ([`dir`] performs those about the scan directory, [`service`] those about one
//! service); every decision is the machine's.
#![forbid(unsafe_code)]

mod dir;
mod service;

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use vigil_core::getopt::{self, Opt};
use vigil_core::scan::{Action, DEFAULT_KILL_TIMEOUT, FALLBACK_RESCAN, Input, Reaped, Scan};
use vigil_sys::diag::{self, EXIT_TEMP};
use vigil_sys::signals::{self, Signals};
use vigil_sys::watch::Watcher;
use vigil_sys::{poll, process};

use service::{Foreign, Held};

const PROG: &str = "svscan";
const USAGE: &str = "svscan [ -t timeout ] [ dir ]";

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let Ok((opts, rest)) = getopt::parse(&args, "t:") else {
        return diag::usage(PROG, USAGE);
    };
    let mut timeout = DEFAULT_KILL_TIMEOUT;
    for o in opts {
        if let Opt::Arg(b't', ms) = o {
            match ms.to_str().and_then(|s| s.parse::<u64>().ok()) {
                Some(ms) => timeout = Duration::from_millis(ms),
                None => return diag::usage(PROG, USAGE),
            }
        }
    }
    let dir = match rest {
        [] => OsString::from("."),
        [d] => d.clone(),
        _ => return diag::usage(PROG, USAGE),
    };
    match Svscan::setup(&dir, timeout) {
        Ok(mut s) => s.run(),
        Err(code) => code,
    }
}

struct Svscan {
    dir_name: String,
    scan: Scan<Held>,
    origin: Instant,
    signals: Signals,
    watcher: Option<(Watcher, i32)>,
    supervise: OsString,
    /// `/proc/locks`, read at most once per batch of actions, and only when a lock is held.
    locks: Option<String>,
    /// Foreign supervise processes watched (few: only after a takeover).
    foreign: Vec<Foreign>,
    /// pidfds of a predecessor's supervise processes that hold no lock yet (at start only).
    orphans: Vec<OwnedFd>,
    /// Entries that could not be examined at the last scan: warned about once per appearance.
    unstattable: HashSet<OsString>,
    /// The lock on DIR itself, held for svscan's lifetime (close-on-exec); the last error
    /// while it is not.
    dir_lock: Result<OwnedFd, std::io::Error>,
    /// systemd's `$NOTIFY_SOCKET`, for `READY=1`.
    notify: Option<OsString>,
    /// The cgroup2 hierarchy our supervise processes use, whose cgroups they leave to us.
    cgroups: Option<vigil_sys::cgroup::Hierarchy>,
    /// Cgroups of supervise processes reaped during a shutdown, removed at its end.
    cgroups_left: Vec<std::path::PathBuf>,
}

impl Svscan {
    fn setup(dir: &OsStr, timeout: Duration) -> Result<Svscan, ExitCode> {
        let dir_name = String::from_utf8_lossy(dir.as_bytes()).into_owned();
        signals::reset_dispositions();
        process::cloexec_inherited();
        let set = [
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGALRM,
        ];
        let signals = Signals::block(&set)
            .map_err(|e| diag::unable_fatal(PROG, "block", &"signals", &e, EXIT_TEMP))?;
        if let Err(e) = process::raise_nofile_limit() {
            diag::unable(PROG, "raise", &"descriptor limit", &e);
        }
        std::env::set_current_dir(dir)
            .map_err(|e| diag::unable_fatal(PROG, "chdir to", &dir_name, &e, EXIT_TEMP))?;
        Ok(Svscan {
            dir_name,
            scan: Scan::with_extra(timeout),
            origin: Instant::now(),
            signals,
            watcher: None,
            supervise: service::supervise_program(),
            locks: None,
            foreign: Vec::new(),
            orphans: Vec::new(),
            unstattable: HashSet::new(),
            dir_lock: Err(std::io::Error::from_raw_os_error(libc::EAGAIN)),
            notify: vigil_sys::notify::take_notify_socket(),
            cgroups: None,
            cgroups_left: Vec::new(),
        })
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn handle(&mut self, input: Input) {
        let now = self.now();
        self.scan.handle(input, now);
    }

    fn run(&mut self) -> ExitCode {
        vigil_sys::event::run(self)
    }

    /// Carries out every pending action, feeding each answer back; the exit status once svscan
    /// must exit.
    fn perform(&mut self) -> Option<ExitCode> {
        let mut code = None;
        while let Some(action) = self.scan.next_action() {
            match action {
                Action::LockDir => {
                    let lock = self.lock_dir();
                    self.handle(Input::DirLock(lock));
                }
                Action::GiveUp => {
                    let why = self.dir_lock.as_ref().err().map_or("", diag::reason);
                    let text = format!("unable to acquire {} lock: {why}", self.dir_name);
                    code = Some(diag::fatal(PROG, &text, EXIT_TEMP));
                }
                Action::CheckOrphans => {
                    let left = self.check_orphans();
                    self.handle(Input::Orphans { left });
                }
                Action::Settled => self.orphans.clear(),
                Action::Rescan => self.rescan(),
                Action::OpenPipe { key, recover } => {
                    let input = self.open_pipe(key, recover);
                    self.handle(input);
                }
                Action::Probe { key, side } => {
                    let probe = self.probe(key, side);
                    self.handle(Input::Probed { key, side, probe });
                }
                Action::Start {
                    key,
                    side,
                    handover,
                } => {
                    let input = self.start(key, side, handover);
                    self.handle(input);
                }
                Action::Control { key, side, bytes } => self.control(key, side, bytes),
                Action::CloseWrite { key } => {
                    if let Some(h) = self.scan.extra_mut(key) {
                        h.pipe = None;
                    }
                }
                // Its descriptors were closed with its record.
                Action::Forget { key } => self.foreign.retain(|f| f.key != key),
                Action::Ready => {
                    if let Some(Err(e)) = self
                        .notify
                        .take()
                        .map(|n| vigil_sys::notify::notify_ready(&n))
                    {
                        diag::unable(PROG, "notify", &"$NOTIFY_SOCKET", &e);
                    }
                }
                Action::Exit => {
                    self.remove_cgroups_left();
                    code = Some(ExitCode::SUCCESS);
                }
            }
        }
        // Not kept between batches: it is stale by the next one, and may be large.
        self.locks = None;
        code
    }

    fn fall_back(&mut self, e: &std::io::Error) {
        let text = format!(
            "unable to watch {} with inotify: {}; rescanning every {} seconds",
            self.dir_name,
            diag::reason(e),
            FALLBACK_RESCAN.as_secs()
        );
        diag::warn(PROG, &text);
        self.watcher = None;
        self.handle(Input::Unwatched);
    }

    /// One poll over the signalfd, inotify, the watches of foreign supervise processes and the
    /// pidfds of orphans; what it saw is handled.
    fn wait(&mut self, timeout: Option<Duration>) {
        let mut fds: Vec<BorrowedFd<'_>> = vec![self.signals.as_fd()];
        fds.extend(self.watcher.as_ref().map(|(w, _)| w.as_fd()));
        let base = fds.len();
        fds.extend(self.foreign.iter().map(|f| f.fd.as_fd()));
        fds.extend(self.orphans.iter().map(AsFd::as_fd));
        let mut ready = vec![false; fds.len()];
        if let Err(e) = poll::wait(&fds, &mut ready, timeout) {
            diag::warn(PROG, &diag::bare_text("poll", &e));
            return;
        }
        let at = |i: usize| ready.get(i).copied().unwrap_or(false);
        let gone: Vec<_> = (self.foreign.iter().enumerate())
            .filter(|&(i, _)| at(base + i))
            .map(|(_, f)| (f.key, f.side))
            .collect();
        let first_orphan = base + self.foreign.len();
        let mut i = first_orphan;
        self.orphans.retain(|_| {
            i += 1;
            !at(i - 1)
        });
        if (first_orphan..ready.len()).any(at) {
            self.handle(Input::OrphanExited);
        }
        if at(0) {
            self.handle_signals();
        }
        if self.watcher.is_some() && at(1) {
            self.handle_events();
        }
        for (key, side) in gone {
            self.foreign.retain(|f| (f.key, f.side) != (key, side));
            self.handle(Input::ForeignGone { key, side });
        }
    }

    fn handle_signals(&mut self) {
        while let Some(s) = self.signals.pending() {
            match s {
                libc::SIGCHLD => {
                    while let Some((pid, _)) = process::reap() {
                        // Its cgroup first (left to us: SCANNER_ENV), while the service's
                        // record, with the directory we hold, still exists.
                        if let Reaped::Supervise { key, side, .. } = self.scan.identify(pid) {
                            self.remove_cgroup(key, side);
                        }
                        self.handle(Input::Reaped { pid });
                    }
                }
                libc::SIGTERM | libc::SIGINT => self.handle(Input::Shutdown),
                libc::SIGHUP | libc::SIGALRM => self.handle(Input::Changed),
                _ => {}
            }
        }
    }

    fn handle_events(&mut self) {
        let Some((w, wd)) = &self.watcher else { return };
        match w.read(*wd) {
            Ok(ev) if ev.rescan => self.handle(Input::Changed),
            Ok(_) => {}
            Err(e) => {
                diag::unable(PROG, "read", &"inotify events", &e);
            }
        }
    }
}

impl vigil_sys::event::Daemon for Svscan {
    fn act(&mut self) -> Option<ExitCode> {
        self.perform()
    }

    fn deadline(&self) -> Option<Duration> {
        self.scan.next_deadline()
    }

    fn mono(&self) -> Duration {
        self.now()
    }

    fn wait(&mut self, timeout: Option<Duration>) {
        Svscan::wait(self, timeout);
    }

    fn timer(&mut self) {
        self.handle(Input::Timer);
    }
}
