//! svscan — start and keep a `supervise` for every service directory in DIR.
//!
//! Usage: `svscan [ -t ms ] [ dir ]` (dir defaults to the current directory).
//!
//! Every entry of DIR whose name does not begin with `.` and which is, or links to, a directory
//! gets `supervise NAME`; if `NAME/log/run` exists (and is executable), also `supervise log` run
//! in `NAME`, its stdin the
//! read end of a pipe whose write end is the service's stdout. svscan holds the pipe (one
//! descriptor open for both reading and writing) for as long as the service exists, so nothing
//! is lost when either side restarts; each side's end is opened from it just before that side
//! starts and closed right after. Changes in DIR
//! (and a `log` added to a service) are seen through inotify at once; without inotify, DIR is
//! rescanned every 5 seconds. The `supervise` beside svscan's own executable is run, else the
//! one on PATH. A supervise started in place of an earlier one keeps the want that one
//! recorded (`HANDOVER_ENV`); only the first one started for a service applies `./down`.
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
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use vigil_core::control::sig;
use vigil_core::getopt::{self, Opt};
use vigil_core::scan::{Action, DEFAULT_KILL_TIMEOUT, HANDOVER_ENV, Key, Scan, Side};
use vigil_sys::diag::{self, EXIT_TEMP};
use vigil_sys::inotify::{self, Watcher};
use vigil_sys::signals::{self, Signals};
use vigil_sys::takeover::{self, Lock};
use vigil_sys::{fifo, poll, process, spawn};

const PROG: &str = "svscan";
const USAGE: &str = "svscan [ -t timeout ] [ dir ]";
/// argv[0] of the supervise processes svscan starts from its own executable.
const SUPERVISE: &str = "supervise";
const SIGCHLD: i32 = 17;
const ENXIO: i32 = 6;
const ENOENT: i32 = 2;
const ENOSPC: i32 = 28;
const EAGAIN: i32 = 11;
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

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

/// What svscan holds for one service, kept in the scan's record (12 bytes).
#[derive(Default)]
struct Held {
    /// The service directory, opened when first seen if descriptors are plentiful: control
    /// still reaches its supervise after the directory was renamed out of DIR.
    dir: Option<OwnedFd>,
    /// The log pipe: one descriptor open for reading and writing, so it alone keeps the pipe
    /// with a reader and a writer. Each side's end is opened from it for its start.
    pipe: Option<OwnedFd>,
    /// `PIPE_CHECKED`, `WATCHED`, `LOG_WATCHED`, `LOG_PENDING`, `WATCH_WARNED`.
    marks: u8,
}

/// The pipe was looked for in surviving supervise processes (done once, before any start).
const PIPE_CHECKED: u8 = 1;
/// inotify watches the directory for a `log` appearing.
const WATCHED: u8 = 2;
/// inotify watches `log` for its `run` appearing.
const LOG_WATCHED: u8 = 4;
/// The last listing saw `log` without an executable `log/run`.
const LOG_PENDING: u8 = 8;
/// A failure to watch the directory was reported.
const WATCH_WARNED: u8 = 16;

impl Held {
    fn is(&self, mark: u8) -> bool {
        self.marks & mark != 0
    }

    fn set(&mut self, mark: u8, on: bool) {
        if on {
            self.marks |= mark;
        } else {
            self.marks &= !mark;
        }
    }
}

/// A supervise we did not start (left by an earlier svscan): its pidfd, readable once it has
/// exited; or, when its pid could not be found, our writer on its `supervise/ok`, which poll
/// reports in error once it is gone.
struct Foreign {
    key: Key,
    side: Side,
    fd: OwnedFd,
}

/// Whether a supervise already runs for one side of a service.
enum Existing {
    /// Nobody holds its lock.
    None,
    /// A supervise we can watch: a pidfd, or an `ok` writer.
    Watch(OwnedFd),
    /// The lock is held by a process that cannot be found or watched yet (a supervise still
    /// setting up): look again after the pace.
    Unknown,
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
    /// A start failed for want of descriptors: retry the failed starts as soon as some are
    /// freed.
    starved: bool,
    /// Entries that could not be examined at the last scan: warned about once per appearance.
    unstattable: HashSet<OsString>,
    /// The lock on DIR itself, held for svscan's lifetime (close-on-exec).
    _dir_lock: OwnedFd,
}

/// Path of a file of `side`'s supervise, relative to the service directory.
fn rel(side: Side, file: &str) -> String {
    match side {
        Side::Main => file.to_owned(),
        Side::Log => format!("log/{file}"),
    }
}

impl Svscan {
    fn setup(dir: &OsStr, timeout: Duration) -> Result<Svscan, ExitCode> {
        let dir_name = String::from_utf8_lossy(dir.as_bytes()).into_owned();
        signals::reset_dispositions();
        process::cloexec_inherited();
        let signals = Signals::block(&[SIGCHLD, sig::TERM, sig::INT, sig::HUP, sig::ALRM])
            .map_err(|e| {
                diag::fatal(
                    PROG,
                    &format!("unable to block signals: {}", diag::reason(&e)),
                    EXIT_TEMP,
                )
            })?;
        if let Err(e) = process::raise_nofile_limit() {
            diag::warn(
                PROG,
                &format!("unable to raise descriptor limit: {}", diag::reason(&e)),
            );
        }
        std::env::set_current_dir(dir).map_err(|e| {
            diag::fatal(
                PROG,
                &format!("unable to chdir to {dir_name}: {}", diag::reason(&e)),
                EXIT_TEMP,
            )
        })?;
        // One svscan per scan directory: a second one would start competing supervise processes
        // and, when stopped, stop every service.
        let dir_lock = lock_scan_dir().map_err(|e| {
            diag::fatal(
                PROG,
                &format!("unable to acquire {dir_name} lock: {}", diag::reason(&e)),
                EXIT_TEMP,
            )
        })?;
        let me = process::own_pid();
        if me != 1
            && let Err(e) = process::become_subreaper()
        {
            diag::warn(
                PROG,
                &format!("unable to become a subreaper: {}", diag::reason(&e)),
            );
        }
        let mut s = Svscan {
            dir_name,
            scan: Scan::with_extra(timeout),
            origin: Instant::now(),
            signals,
            watcher: None,
            supervise: supervise_program(),
            locks: None,
            starved: false,
            foreign: Vec::new(),
            unstattable: HashSet::new(),
            _dir_lock: dir_lock,
        };
        let watched = Watcher::new().and_then(|w| {
            let wd = w.watch_scan_dir(Path::new("."))?;
            Ok((w, wd))
        });
        match watched {
            Ok(w) => s.watcher = Some(w),
            Err(e) => s.fall_back(&e),
        }
        Ok(s)
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn fall_back(&mut self, e: &std::io::Error) {
        diag::warn(
            PROG,
            &format!(
                "unable to watch {} with inotify: {}; rescanning every 5 seconds",
                self.dir_name,
                diag::reason(e)
            ),
        );
        self.watcher = None;
        let now = self.now();
        self.scan.use_fallback(now);
    }

    fn run(&mut self) -> ExitCode {
        // systemd Type=notify: READY=1 once the first scan has started every service.
        let notify = vigil_sys::notify::take_notify_socket();
        self.let_orphans_lock();
        self.rescan();
        if self.perform() {
            return ExitCode::SUCCESS;
        }
        if let Some(Err(e)) = notify.map(|n| vigil_sys::notify::notify_ready(&n)) {
            diag::warn(
                PROG,
                &format!("unable to notify $NOTIFY_SOCKET: {}", diag::reason(&e)),
            );
        }
        loop {
            if self.perform() {
                return ExitCode::SUCCESS;
            }
            let now = self.now();
            let timeout = self.scan.next_deadline().map(|d| d.saturating_sub(now));
            let (sig_ready, watch_ready, gone) = self.wait(timeout);
            if sig_ready {
                self.handle_signals();
            }
            if watch_ready {
                self.handle_events();
            }
            for (key, side) in gone {
                self.foreign.retain(|f| (f.key, f.side) != (key, side));
                let now = self.now();
                self.scan.foreign_gone(key, side, now);
                self.fds_freed();
            }
            let now = self.now();
            if self.scan.next_deadline().is_some_and(|d| d <= now) {
                self.scan.timer(now);
            }
        }
    }

    /// One poll over the signalfd, inotify and the `ok` writers of foreign supervise processes.
    fn wait(&self, timeout: Option<Duration>) -> (bool, bool, Vec<(Key, Side)>) {
        let mut fds: Vec<BorrowedFd<'_>> = vec![self.signals.as_fd()];
        if let Some((w, _)) = &self.watcher {
            fds.push(w.as_fd());
        }
        let base = fds.len();
        let mut owners = Vec::new();
        for f in &self.foreign {
            fds.push(f.fd.as_fd());
            owners.push((f.key, f.side));
        }
        let mut ready = vec![false; fds.len()];
        if let Err(e) = poll::wait(&fds, &mut ready, timeout) {
            diag::warn(PROG, &format!("unable to poll: {}", diag::reason(&e)));
            return (false, false, Vec::new());
        }
        let sig_ready = ready.first().copied().unwrap_or(false);
        let watch_ready = self.watcher.is_some() && ready.get(1).copied().unwrap_or(false);
        let gone = owners
            .into_iter()
            .zip(ready.get(base..).unwrap_or_default())
            .filter(|(_, r)| **r)
            .map(|(o, _)| o)
            .collect();
        (sig_ready, watch_ready, gone)
    }

    fn handle_signals(&mut self) {
        while let Some(s) = self.signals.pending() {
            match s {
                SIGCHLD => self.reap_all(),
                sig::TERM | sig::INT => {
                    let now = self.now();
                    self.scan.shut_down(now);
                }
                sig::HUP | sig::ALRM => self.rescan(),
                _ => {}
            }
        }
    }

    fn reap_all(&mut self) {
        while let Some((pid, _)) = process::reap() {
            let now = self.now();
            self.scan.reaped(pid, now);
        }
    }

    fn handle_events(&mut self) {
        let Some((w, wd)) = &self.watcher else { return };
        match w.read(*wd) {
            Ok(ev) if ev.rescan && !self.scan.shutting_down() => self.rescan(),
            Ok(_) => {}
            Err(e) => diag::warn(
                PROG,
                &format!("unable to read inotify events: {}", diag::reason(&e)),
            ),
        }
    }

    fn rescan(&mut self) {
        let now = self.now();
        if self.scan.shutting_down() {
            return;
        }
        let mut unstattable = HashSet::new();
        let warned = &self.unstattable;
        let scan = &mut self.scan;
        // Services are mostly directories: the scan directory's link count tells how many.
        let expected = std::fs::metadata(".").map_or(0, |m| {
            usize::try_from(m.nlink().saturating_sub(2)).unwrap_or(0)
        });
        scan.begin_scan(expected, now);
        // One entry at a time: a listing of thousands is never held.
        let listed = inotify::each_service(
            Path::new("."),
            |name, e| {
                if !warned.contains(name) {
                    diag::warn(
                        PROG,
                        &format!(
                            "unable to stat {}: {}",
                            String::from_utf8_lossy(name.as_bytes()),
                            diag::reason(e)
                        ),
                    );
                }
                unstattable.insert(name.to_owned());
            },
            |seen| {
                if let Some(held) = scan.seen(&seen, now) {
                    held.set(LOG_PENDING, seen.log_pending);
                }
            },
        );
        if let Err(e) = listed {
            diag::warn(
                PROG,
                &format!("unable to read directory: {}", diag::reason(&e)),
            );
            self.scan.abort_scan();
            self.scan.scan_failed(now);
            return;
        }
        self.unstattable = unstattable;
        self.scan.end_scan(now);
        self.hold_and_watch();
    }

    /// For every service listed: its directory descriptor when descriptors are plentiful
    /// (retried at every scan: out of descriptors now does not mean for ever), and the inotify
    /// watches for its `log` and `log/run` appearing.
    fn hold_and_watch(&mut self) {
        // Directory descriptors are a convenience (control after a rename): only what is left
        // after a reserve and a pipe and a transient end for every service, halved.
        let services = self.scan.len();
        let budget = takeover::nofile_limit().map_or(usize::MAX, |l| {
            let l = usize::try_from(l).unwrap_or(usize::MAX);
            l.saturating_sub(64 + 2 * services) / 2
        });
        let mut dirs = self.scan.extras().filter(|(_, h)| h.dir.is_some()).count();
        let mut watch_failed = None;
        let watcher = &self.watcher;
        self.scan.each_present_mut(|_, name, held| {
            if held.dir.is_none() && dirs < budget {
                held.dir = fifo::open_dir(Path::new(name)).ok();
                dirs += usize::from(held.dir.is_some());
            }
            let Some((w, _)) = watcher else {
                return;
            };
            if held.is(LOG_PENDING) && !held.is(LOG_WATCHED) {
                // Failing that, the logger starts at the next scan that sees its `run`.
                let ok = w.watch_log_dir(&Path::new(name).join("log")).is_ok();
                held.set(LOG_WATCHED, ok);
            }
            if held.is(WATCHED) {
                return;
            }
            match w.watch_service_dir(Path::new(name)) {
                Ok(_) => held.set(WATCHED, true),
                // Out of inotify watches: the whole scan falls back to polling.
                Err(e) if e.raw_os_error() == Some(ENOSPC) => watch_failed = Some(e),
                // One unreadable service directory costs only the quick pickup of its own
                // `log`; it is tried again at every scan.
                Err(e) => {
                    if !held.is(WATCH_WARNED) {
                        held.set(WATCH_WARNED, true);
                        diag::warn(
                            PROG,
                            &format!(
                                "unable to watch {} for a log: {}",
                                String::from_utf8_lossy(name.as_bytes()),
                                diag::reason(&e)
                            ),
                        );
                    }
                }
            }
        });
        if let Some(e) = watch_failed {
            self.fall_back(&e);
        }
    }

    /// Carries out every pending action; true when svscan must exit.
    fn perform(&mut self) -> bool {
        let mut exit = false;
        while let Some(action) = self.scan.next_action() {
            match action {
                Action::Start {
                    key,
                    side,
                    handover,
                } => self.start(key, side, handover),
                Action::Control { key, side, bytes } => self.control(key, side, bytes),
                Action::CloseWrite { key } => {
                    if let Some(h) = self.scan.extra_mut(key) {
                        h.pipe = None;
                    }
                    self.fds_freed();
                }
                // Its descriptors were closed with its record.
                Action::Forget { key } => {
                    self.foreign.retain(|f| f.key != key);
                    self.fds_freed();
                }
                Action::Rescan => self.rescan(),
                Action::Exit => exit = true,
            }
        }
        // Not kept between batches: it is stale by the next one, and may be large.
        self.locks = None;
        exit
    }

    /// Descriptors were closed: starts that failed for want of them are tried again now.
    fn fds_freed(&mut self) {
        if std::mem::take(&mut self.starved) {
            let now = self.now();
            self.scan.retry_failed(now);
        }
    }

    /// A start failed with `e`: retried after the pace, or as soon as descriptors are freed
    /// when they were what was missing.
    fn start_failed(&mut self, key: Key, side: Side, e: &std::io::Error) {
        if matches!(e.raw_os_error(), Some(EMFILE | ENFILE)) {
            self.starved = true;
        }
        let now = self.now();
        self.scan.start_failed(key, side, now);
    }

    fn name(&self, key: Key) -> String {
        self.scan
            .name(key)
            .map(|n| String::from_utf8_lossy(n.as_bytes()).into_owned())
            .unwrap_or_default()
    }

    fn start(&mut self, key: Key, side: Side, handover: bool) {
        let now = self.now();
        let name = self.name(key);
        // Only supervise processes we did not start can hold a pipe we do not know of.
        if self.scan.has_log(key)
            && self.scan.pid(key, Side::Main).is_none()
            && self.scan.pid(key, Side::Log).is_none()
        {
            self.recover_pipe(key, &name);
        }
        // A supervise already there (left by an earlier svscan): watch it, do not compete.
        match self.existing(key, side, &name) {
            Existing::None => {}
            Existing::Watch(fd) => {
                self.foreign.retain(|f| (f.key, f.side) != (key, side));
                self.foreign.push(Foreign { key, side, fd });
                self.scan.found_foreign(key, side, now);
                return;
            }
            Existing::Unknown => {
                diag::warn(
                    PROG,
                    &format!(
                        "{}/supervise/lock is held by a process svscan cannot watch; looking again in 1 second",
                        what(&name, side)
                    ),
                );
                self.scan.start_failed(key, side, now);
                return;
            }
        }
        let has_log = self.scan.has_log(key);
        let Some(held) = self.scan.extra_mut(key) else {
            return;
        };
        if has_log && held.pipe.is_none() {
            match new_pipe() {
                Ok(p) => held.pipe = Some(p),
                Err(e) => {
                    diag::warn(
                        PROG,
                        &format!("unable to create pipe for {name}: {}", diag::reason(&e)),
                    );
                    self.start_failed(key, side, &e);
                    return;
                }
            }
        }
        // At rest svscan holds one descriptor per logged service, and a start takes at most
        // two more (std's exec-error pipe), so a low descriptor limit starts as many services
        // as it can hold pipes for. The main supervise gets that descriptor itself as its
        // stdout (dup2 in the child); for the logger it is swapped for a read-only end for
        // the spawn (a reader stays held all along: nothing the service writes is lost), and
        // reopened from that end right after.
        let read_end = match held.pipe.as_ref().filter(|_| side == Side::Log) {
            Some(p) => match takeover::other_end(p.as_fd(), true) {
                Ok(r) => {
                    held.pipe = None;
                    Some(r)
                }
                Err(e) => {
                    diag::warn(
                        PROG,
                        &format!("unable to start supervise {name}/log: {}", diag::reason(&e)),
                    );
                    self.start_failed(key, side, &e);
                    return;
                }
            },
            None => None,
        };
        let path = PathBuf::from(&name);
        let env = if handover {
            vec![(OsStr::new(HANDOVER_ENV), OsStr::new("1"))]
        } else {
            Vec::new()
        };
        let (args, mut opts): (Vec<&OsStr>, spawn::Spawn<'_>) = match side {
            Side::Main => (
                vec![OsStr::new(&name)],
                spawn::Spawn {
                    setsid: true,
                    // daemontools compat: the service's stdout is the pipe opened for reading
                    // and writing (daemontools: write-only), so that starting it costs svscan
                    // no descriptor; the logger's end is read-only, so it still sees
                    // end-of-file once the service side and svscan have closed theirs.
                    fds: held.pipe.iter().map(|p| (p, 1)).collect(),
                    arg0: Some(OsStr::new(SUPERVISE)),
                    ..spawn::Spawn::default()
                },
            ),
            Side::Log => (
                vec![OsStr::new("log")],
                spawn::Spawn {
                    setsid: true,
                    fds: read_end.iter().map(|r| (r, 0)).collect(),
                    cwd: Some(&path),
                    arg0: Some(OsStr::new(SUPERVISE)),
                    ..spawn::Spawn::default()
                },
            ),
        };
        opts.env = env;
        let spawned = spawn::spawn(&self.supervise, &args, opts);
        if let Some(r) = read_end {
            match takeover::both_ends(r.as_fd()) {
                Ok(both) => held.pipe = Some(both),
                // Never seen (a descriptor was just freed): the read end keeps the pipe, and
                // the main side gets a write end opened from it.
                Err(e) => {
                    diag::warn(
                        PROG,
                        &format!(
                            "unable to reopen the log pipe of {name}: {}",
                            diag::reason(&e)
                        ),
                    );
                    held.pipe = takeover::other_end(r.as_fd(), false).ok();
                }
            }
        }
        match spawned {
            Ok(pid) => self.scan.started(key, side, pid, now),
            Err(e) => {
                diag::warn(
                    PROG,
                    &format!(
                        "unable to start supervise {}: {}",
                        what(&name, side),
                        diag::reason(&e)
                    ),
                );
                self.start_failed(key, side, &e);
            }
        }
    }

    /// Looks for a supervise already running for `side`: the holder of its lock, watched
    /// through a pidfd; failing that, its `ok` FIFO.
    /// A supervise that a killed svscan forked a moment before its death may not hold its lock
    /// yet; starting a competitor now would make one of them die on the lock. At start only, and
    /// only while such processes exist (our supervise binary, working in the scan directory,
    /// holding no lock), give them up to half a second to take their locks; then the scan
    /// below finds them as holders and watches them instead.
    fn let_orphans_lock(&self) {
        let Ok(dir) = std::env::current_dir() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_millis(500);
        while !takeover::unlocked_supervisors(&self.supervise, &dir).is_empty()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn existing(&mut self, key: Key, side: Side, name: &str) -> Existing {
        let dir = self.scan.extra(key).and_then(|h| h.dir.as_ref());
        let (base, lock) = at(dir, name, &rel(side, "supervise/lock"));
        // `/proc/locks` is read only if the lock is held: never for a fresh service directory.
        let state = takeover::lock_state(base, &lock, &mut self.locks);
        let watch_ok = || {
            let ok = rel(side, "supervise/ok");
            match dir {
                Some(d) => fifo::open_write_at(d, &ok),
                None => fifo::open_write(&Path::new(name).join(&ok)),
            }
        };
        match state {
            Ok(Lock::Free) => Existing::None,
            Ok(Lock::Held(Some(h))) => Existing::Watch(h.pidfd),
            Ok(Lock::Held(None)) => watch_ok().map_or(Existing::Unknown, Existing::Watch),
            // The lock cannot be examined (permissions, odd file): liveness through `ok` alone,
            // as daemontools' clients tell it.
            Err(_) => watch_ok().map_or(Existing::None, Existing::Watch),
        }
    }

    /// Once per service with a log, before either side starts: takes the log pipe over from
    /// the supervise processes an earlier svscan left running. The rule (svscan(8)): the
    /// service supervise's fd 1 and the log supervise's fd 0, when both are one pipe, are
    /// kept as they are; otherwise the end recovered from the service side is kept, else the one
    /// from the log side, and the other end is opened anew on the same pipe, so whatever is
    /// buffered in it reaches the logger. A new pipe only when no end can be recovered. Each
    /// side still on another pipe gets the kept one at its next start.
    fn recover_pipe(&mut self, key: Key, name: &str) {
        let Some(held) = self.scan.extra_mut(key) else {
            return;
        };
        if held.is(PIPE_CHECKED) || held.pipe.is_some() {
            return;
        }
        held.set(PIPE_CHECKED, true);
        let dir = held.dir.as_ref();
        let locks = &mut self.locks;
        let mut holder = |side: Side| {
            let (base, lock) = at(dir, name, &rel(side, "supervise/lock"));
            match takeover::lock_state(base, &lock, locks) {
                Ok(Lock::Held(Some(h))) => Some(h),
                _ => None,
            }
        };
        let (main, log) = (holder(Side::Main), holder(Side::Log));
        if main.is_none() && log.is_none() {
            return;
        }
        let mut problems = Vec::new();
        // svscan's own output may be a pipe too (to a logger of svscan): a supervise started
        // before its service had a log has that as fd 1, and it is not the service's pipe.
        let ours = [
            takeover::pipe_id(std::io::stdout().as_fd()),
            takeover::pipe_id(std::io::stderr().as_fd()),
        ];
        let mut end = |h: &Option<takeover::Holder>, fd: i32, side: Side| {
            let h = h.as_ref()?;
            match takeover::take_fd(h, fd) {
                Ok(e) if takeover::pipe_id(&e).is_some_and(|id| !ours.contains(&Some(id))) => {
                    Some(e)
                }
                Ok(_) => {
                    problems.push(format!(
                        "fd {fd} of supervise {} is not a log pipe",
                        what(name, side)
                    ));
                    None
                }
                Err(e) => {
                    problems.push(format!(
                        "unable to get fd {fd} of supervise {}: {}",
                        what(name, side),
                        diag::reason(&e)
                    ));
                    None
                }
            }
        };
        let m = end(&main, 1, Side::Main);
        let l = end(&log, 0, Side::Log);
        let (read, write) = match (m, l) {
            (Some(w), Some(r)) if takeover::pipe_id(&w) == takeover::pipe_id(&r) => (Ok(r), Ok(w)),
            (Some(w), l) => {
                if l.is_some() {
                    problems.push("the service and its logger use different pipes".to_owned());
                }
                (takeover::other_end(w.as_fd(), true), Ok(w))
            }
            (None, Some(r)) => {
                let w = takeover::other_end(r.as_fd(), false);
                (Ok(r), w)
            }
            (None, None) => (
                Err(std::io::Error::from_raw_os_error(ENOENT)),
                Err(std::io::Error::from_raw_os_error(ENOENT)),
            ),
        };
        // Kept as one descriptor for both ends, opened from the end recovered.
        let both = match (read, write) {
            (Ok(r), Ok(w)) => takeover::both_ends(r.as_fd()).map(|b| (b, w)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        match both {
            Ok((both, _)) => {
                held.pipe = Some(both);
                if !problems.is_empty() {
                    diag::warn(
                        PROG,
                        &format!(
                            "{}: kept the pipe of {name}; the other side joins it at its next start",
                            problems.join("; ")
                        ),
                    );
                }
            }
            Err(e) => {
                if e.raw_os_error() != Some(ENOENT) {
                    problems.push(format!("unable to reopen the pipe: {}", diag::reason(&e)));
                }
                diag::warn(
                    PROG,
                    &format!(
                        "unable to recover the log pipe of {name}{}{}; a new pipe is used from each side's next start",
                        if problems.is_empty() { "" } else { ": " },
                        problems.join("; ")
                    ),
                );
            }
        }
    }

    /// Writes control bytes to `side`'s supervise. If its FIFO is gone (the directory was
    /// removed), our own supervise is told by signal: TERM means `dx`, HUP means `x`.
    fn control(&mut self, key: Key, side: Side, bytes: &[u8]) {
        let name = self.name(key);
        let path = rel(side, "supervise/control");
        let fd = match self.scan.extra(key).and_then(|h| h.dir.as_ref()) {
            Some(d) => fifo::open_write_at(d, &path),
            None => fifo::open_write(&Path::new(&name).join(&path)),
        };
        let err = match fd.and_then(|fd| fifo::write_all(&fd, bytes)) {
            Ok(()) => return,
            Err(e) => e,
        };
        let sig = match bytes {
            b"x" => sig::HUP,
            b"dx" => sig::TERM,
            _ => sig::KILL,
        };
        if let Some(f) = self.foreign.iter().find(|f| (f.key, f.side) == (key, side))
            && takeover::signal(&f.fd, sig).is_ok()
        {
            return;
        }
        let Some(pid) = self.scan.pid(key, side) else {
            if !matches!(err.raw_os_error(), Some(ENXIO | ENOENT)) {
                diag::warn(
                    PROG,
                    &format!("unable to control {name}: {}", diag::reason(&err)),
                );
            }
            return;
        };
        let _ = process::signal(pid, sig, false);
    }
}

/// Takes the lock on the scan directory (the current directory). A predecessor killed a moment
/// after a fork leaves the lock in that child until its exec: while `/proc/locks` names only
/// dead holders, try again for up to a second.
fn lock_scan_dir() -> std::io::Result<OwnedFd> {
    let here = Path::new(".");
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match process::lock_dir(here) {
            Err(e)
                if e.raw_os_error() == Some(EAGAIN)
                    && Instant::now() < deadline
                    && takeover::lock_owner_gone(here) =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// The name of one side of a service in messages: `NAME` or `NAME/log`.
fn what(name: &str, side: Side) -> String {
    match side {
        Side::Main => name.to_owned(),
        Side::Log => format!("{name}/log"),
    }
}

/// Where a file of a service is: under its directory descriptor if held, else under its name
/// in the scan directory (the current directory).
fn at<'a>(dir: Option<&'a OwnedFd>, name: &str, rel: &str) -> (BorrowedFd<'a>, String) {
    match dir {
        Some(d) => (d.as_fd(), rel.to_owned()),
        None => (takeover::cwd(), format!("{name}/{rel}")),
    }
}

/// A new log pipe as one descriptor for both ends. The write end goes first, so at no moment
/// are three descriptors open for it.
fn new_pipe() -> std::io::Result<OwnedFd> {
    let (r, w) = std::io::pipe()?;
    drop(w);
    takeover::both_ends(r.as_fd())
}

/// Our own executable: supervise is one of its programs (run as argv[0] `supervise`), so
/// svscan and every supervise share one copy of the text. `/proc/self/exe` names the file we
/// were started from even if it was replaced since (a package upgrade); a new svscan picks up
/// the new one.
fn supervise_program() -> OsString {
    std::fs::read_link("/proc/self/exe").map_or_else(
        |_| OsString::from("/proc/self/exe"),
        PathBuf::into_os_string,
    )
}
