//! Performing the actions about one service: what svscan holds for it (directory, log pipe,
//! inotify watches), probing its locks, taking its pipe over, starting and controlling its
//! supervise processes. Each function does what its action says and reports the outcome as
//! the machine's input; none decides what happens next.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use vigil_core::control::command_signal;
use vigil_core::layout;
use vigil_core::logpipe::{self, Plan};
use vigil_core::scan::{Failure, HANDOVER_ENV, Input, Key, Probe, RESTART_PACE, Side};
use vigil_sys::diag;
use vigil_sys::lock::{self, Lock};
use vigil_sys::pidfd::{self, Holder};
use vigil_sys::{fifo, files, limits, process, spawn};

use crate::{PROG, Svscan};

/// argv[0] of the supervise processes svscan starts from its own executable.
const SUPERVISE: &str = "supervise";

/// What svscan holds for one service, kept in the scan's record (12 bytes).
#[derive(Default)]
pub(crate) struct Held {
    /// The service directory, opened when first seen if descriptors are plentiful: control
    /// still reaches its supervise after the directory was renamed out of DIR.
    pub(crate) dir: Option<OwnedFd>,
    /// The log pipe: one descriptor open for reading and writing, so it alone keeps the pipe
    /// with a reader and a writer. Each side's end is opened from it for its start.
    pub(crate) pipe: Option<OwnedFd>,
    /// `WATCHED`, `LOG_WATCHED`, `LOG_PENDING`, `WATCH_WARNED`.
    marks: u8,
}

/// inotify watches the directory for a `log` appearing.
const WATCHED: u8 = 1;
/// inotify watches `log` for its `run` appearing.
const LOG_WATCHED: u8 = 2;
/// The last listing saw `log` without an executable `log/run`.
pub(crate) const LOG_PENDING: u8 = 4;
/// A failure to watch the directory was reported.
const WATCH_WARNED: u8 = 8;

impl Held {
    fn is(&self, mark: u8) -> bool {
        self.marks & mark != 0
    }

    pub(crate) fn set(&mut self, mark: u8, on: bool) {
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
pub(crate) struct Foreign {
    pub(crate) key: Key,
    pub(crate) side: Side,
    pub(crate) fd: OwnedFd,
}

impl Svscan {
    fn name(&self, key: Key) -> String {
        self.scan
            .name(key)
            .map(|n| String::from_utf8_lossy(n.as_bytes()).into_owned())
            .unwrap_or_default()
    }

    /// For every service listed: its directory descriptor when descriptors are plentiful
    /// (retried at every scan: out of descriptors now does not mean for ever), and the inotify
    /// watches for its `log` and `log/run` appearing.
    pub(crate) fn hold_and_watch(&mut self) {
        // Directory descriptors are a convenience (control after a rename): only what is left
        // after a reserve and a pipe and a transient end for every service, halved.
        let services = self.scan.len();
        let budget = limits::nofile_limit().map_or(usize::MAX, |l| {
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
                let ok = w.watch_log_dir(&Path::new(name).join(layout::LOG)).is_ok();
                held.set(LOG_WATCHED, ok);
            }
            if held.is(WATCHED) {
                return;
            }
            match w.watch_service_dir(Path::new(name)) {
                Ok(_) => held.set(WATCHED, true),
                // Out of inotify watches: the whole scan falls back to polling.
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => watch_failed = Some(e),
                // One unreadable service directory costs only the quick pickup of its own
                // `log`; it is tried again at every scan.
                Err(e) if !held.is(WATCH_WARNED) => {
                    held.set(WATCH_WARNED, true);
                    let name = String::from_utf8_lossy(name.as_bytes());
                    diag::unable(PROG, "watch", &format_args!("{name} for a log"), &e);
                }
                Err(_) => {}
            }
        });
        if let Some(e) = watch_failed {
            self.fall_back(&e);
        }
    }

    /// [`vigil_core::scan::Action::Probe`]: who holds `side`'s lock. A holder found is
    /// watched, through a pidfd; failing that, through its `ok` FIFO.
    pub(crate) fn probe(&mut self, key: Key, side: Side) -> Probe {
        let name = self.scan.name(key).unwrap_or_default();
        let dir = self.scan.extra(key).and_then(|h| h.dir.as_ref());
        let (base, lock) = at(dir, name, &rel(side, layout::LOCK));
        // `/proc/locks` is read only if the lock is held: never for a fresh service directory.
        let state = lock::lock_state(base, &lock, &mut self.locks);
        let watch_ok = || {
            let ok = rel(side, layout::OK);
            match dir {
                Some(d) => fifo::open_write_at(d, &ok),
                None => fifo::open_write(&Path::new(name).join(&ok)),
            }
        };
        let watch = match state {
            Ok(Lock::Free) => return Probe::Free,
            Ok(Lock::Held(Some(h))) => Ok(h.pidfd),
            Ok(Lock::Held(None)) => watch_ok(),
            // The lock cannot be examined (permissions, odd file): liveness through `ok`
            // alone, as daemontools' clients tell it.
            Err(_) => match watch_ok() {
                Ok(fd) => Ok(fd),
                Err(_) => return Probe::Free,
            },
        };
        match watch {
            Ok(fd) => {
                self.foreign.retain(|f| (f.key, f.side) != (key, side));
                self.foreign.push(Foreign { key, side, fd });
                Probe::Held
            }
            Err(_) => {
                let name = String::from_utf8_lossy(name.as_bytes());
                let text = format!(
                    "{}/supervise/lock is held by a process svscan cannot watch; looking again in {} second",
                    what(&name, side),
                    RESTART_PACE.as_secs()
                );
                diag::warn(PROG, &text);
                Probe::Unknown
            }
        }
    }

    /// [`vigil_core::scan::Action::OpenPipe`]: the service's log pipe, taken over from the
    /// supervise processes an earlier svscan left running when `recover` (the plan is
    /// [`logpipe::plan`]'s), else (or failing that) a new one.
    pub(crate) fn open_pipe(&mut self, key: Key, recover: bool) -> Input {
        let name = self.name(key);
        let recovered = if recover {
            self.recover_pipe(key, &name)
        } else {
            None
        };
        let pipe = match recovered {
            Some(p) => Ok(p),
            None => new_pipe(),
        };
        match (pipe, self.scan.extra_mut(key)) {
            (Ok(p), Some(held)) => {
                held.pipe = Some(p);
                Input::PipeOpened { key }
            }
            (Ok(_), None) => Input::PipeOpened { key },
            (Err(e), _) => {
                diag::unable(PROG, "create", &format_args!("pipe for {name}"), &e);
                Input::PipeFailed {
                    key,
                    failure: failure(&e),
                }
            }
        }
    }

    /// The ends of the log pipe held by the supervise processes of both sides (the service's
    /// fd 1, the logger's fd 0), kept as [`logpipe::plan`] says, as one descriptor for both
    /// ends; `None` (a new pipe is made) when nothing can be kept.
    fn recover_pipe(&mut self, key: Key, name: &str) -> Option<OwnedFd> {
        let dir = self.scan.extra(key).and_then(|h| h.dir.as_ref());
        let locks = &mut self.locks;
        let mut holder = |side: Side| {
            let (base, lock) = at(dir, OsStr::new(name), &rel(side, layout::LOCK));
            match lock::lock_state(base, &lock, locks) {
                Ok(Lock::Held(Some(h))) => Some(h),
                _ => None,
            }
        };
        let (main, log) = (holder(Side::Main), holder(Side::Log));
        if main.is_none() && log.is_none() {
            return None;
        }
        let mut problems = Vec::new();
        let mut end = |h: Option<Holder>, fd: i32, side: Side| {
            take_end(h.as_ref()?, fd, &what(name, side))
                .map_err(|p| problems.push(p))
                .ok()
        };
        let (m, l) = (end(main, 1, Side::Main), end(log, 0, Side::Log));
        let id = |e: &Option<OwnedFd>| e.as_ref().and_then(fifo::pipe_id);
        let kept = match logpipe::plan(id(&m), id(&l)) {
            Plan::Shared | Plan::FromLog => l.ok_or(io::Error::from_raw_os_error(libc::EBADF)),
            Plan::FromMain { log_differs } => {
                if log_differs {
                    problems.push("the service and its logger use different pipes".to_owned());
                }
                m.ok_or(io::Error::from_raw_os_error(libc::EBADF))
            }
            Plan::New => Err(io::Error::from_raw_os_error(libc::ENOENT)),
        };
        match kept.and_then(|e| fifo::both_ends(e.as_fd())) {
            Ok(both) => {
                if !problems.is_empty() {
                    let text = format!(
                        "{}: kept the pipe of {name}; the other side joins it at its next start",
                        problems.join("; ")
                    );
                    diag::warn(PROG, &text);
                }
                Some(both)
            }
            Err(e) => {
                if e.raw_os_error() != Some(libc::ENOENT) {
                    problems.push(diag::unable_text("reopen", &"the pipe", &e));
                }
                let sep = if problems.is_empty() { "" } else { ": " };
                let text = format!(
                    "unable to recover the log pipe of {name}{sep}{}; a new pipe is used from each side's next start",
                    problems.join("; ")
                );
                diag::warn(PROG, &text);
                None
            }
        }
    }

    /// [`vigil_core::scan::Action::Start`]: spawns `side`'s supervise, with the pipe held for
    /// the service (if any) as the main side's stdout or the log side's stdin.
    pub(crate) fn start(&mut self, key: Key, side: Side, handover: bool) -> Input {
        let name = self.name(key);
        let Some(held) = self.scan.extra_mut(key) else {
            return Input::StartFailed {
                key,
                side,
                failure: Failure::Other,
            };
        };
        // At rest svscan holds one descriptor per logged service, and a start takes at most
        // two more (std's exec-error pipe), so a low descriptor limit starts as many services
        // as it can hold pipes for. The main supervise gets that descriptor itself as its
        // stdout (dup2 in the child); for the logger it is swapped for a read-only end for
        // the spawn (a reader stays held all along: nothing the service writes is lost), and
        // reopened from that end right after.
        let read_end = match held.pipe.as_ref().filter(|_| side == Side::Log) {
            Some(p) => match fifo::other_end(p.as_fd(), true) {
                Ok(r) => {
                    held.pipe = None;
                    Some(r)
                }
                Err(e) => return start_failed(key, side, &name, &e),
            },
            None => None,
        };
        let path = PathBuf::from(&name);
        let mut opts = spawn::Spawn {
            setsid: true,
            arg0: Some(OsStr::new(SUPERVISE)),
            ..spawn::Spawn::default()
        };
        if handover {
            opts.env = vec![(OsStr::new(HANDOVER_ENV), OsStr::new("1"))];
        }
        let arg = match side {
            // daemontools compat: the service's stdout is the pipe opened for reading and
            // writing (daemontools: write-only), so that starting it costs svscan no
            // descriptor; the logger's end is read-only, so it still sees end-of-file once the
            // service side and svscan have closed theirs.
            Side::Main => {
                opts.fds = held.pipe.iter().map(|p| (p, 1)).collect();
                OsStr::new(&name)
            }
            Side::Log => {
                opts.fds = read_end.iter().map(|r| (r, 0)).collect();
                opts.cwd = Some(&path);
                OsStr::new(layout::LOG)
            }
        };
        let spawned = spawn::spawn(&self.supervise, &[arg], opts);
        if let Some(r) = read_end {
            match fifo::both_ends(r.as_fd()) {
                Ok(both) => held.pipe = Some(both),
                // Never seen (a descriptor was just freed): the read end keeps the pipe, and
                // the main side gets a write end opened from it.
                Err(e) => {
                    diag::unable(PROG, "reopen", &format_args!("the log pipe of {name}"), &e);
                    held.pipe = fifo::other_end(r.as_fd(), false).ok();
                }
            }
        }
        match spawned {
            Ok(pid) => Input::Started { key, side, pid },
            Err(e) => start_failed(key, side, &name, &e),
        }
    }

    /// Removes the cgroup that `side`'s supervise, just reaped, recorded in its
    /// `supervise/info` (found through the directory we hold, or by name); during a shutdown,
    /// once every supervise is gone ([`Svscan::remove_cgroups_left`]): removing a cgroup waits
    /// on the kernel's lock of the cgroup file system, which every supervise still stopping
    /// takes to read its cgroup's files. Quiet: what cannot be removed (a run its successor
    /// adopts) stays, and a record that cannot be read (the directory is gone) leaves it to that
    /// supervise, which removes its cgroup itself when its directory was deleted.
    pub(crate) fn remove_cgroup(&mut self, key: Key, side: Side) {
        let Some(h) = &self.cgroups else { return };
        let opened;
        let dir = match self.scan.extra(key).and_then(|h| h.dir.as_ref()) {
            Some(d) => d.as_fd(),
            None => match fifo::open_dir(Path::new(&self.name(key))) {
                Ok(d) => {
                    opened = d;
                    opened.as_fd()
                }
                Err(_) => return,
            },
        };
        let service = match side {
            Side::Main => ".",
            Side::Log => layout::LOG,
        };
        let Ok(path) = h.recorded(dir, service, &rel(side, layout::INFO)) else {
            return;
        };
        if self.scan.shutting_down() {
            self.cgroups_left.push(path);
        } else {
            let _ = vigil_sys::cgroup::remove_dir(&path);
        }
    }

    /// At exit: the cgroups kept for the end of a shutdown, then `vigil/` if it is left empty.
    pub(crate) fn remove_cgroups_left(&mut self) {
        for path in self.cgroups_left.drain(..) {
            let _ = vigil_sys::cgroup::remove_dir(&path);
        }
        if let Some(h) = &self.cgroups {
            h.remove_subtree();
        }
    }

    /// [`vigil_core::scan::Action::Control`]: writes control bytes to `side`'s supervise. If
    /// its FIFO is gone (the directory was removed), the supervise is told by the signal that
    /// means those bytes; `+k` by a kill.
    pub(crate) fn control(&mut self, key: Key, side: Side, bytes: &[u8]) {
        let name = self.name(key);
        let path = rel(side, layout::CONTROL);
        let fd = match self.scan.extra(key).and_then(|h| h.dir.as_ref()) {
            Some(d) => fifo::open_write_at(d, &path),
            None => fifo::open_write(&Path::new(&name).join(&path)),
        };
        let Err(err) = fd.and_then(|fd| fifo::write_all(&fd, bytes)) else {
            return;
        };
        let sig = command_signal(bytes).unwrap_or(libc::SIGKILL);
        if let Some(f) = self.foreign.iter().find(|f| (f.key, f.side) == (key, side))
            && pidfd::signal(&f.fd, sig).is_ok()
        {
            return;
        }
        let Some(pid) = self.scan.pid(key, side) else {
            if !matches!(err.raw_os_error(), Some(libc::ENXIO | libc::ENOENT)) {
                diag::unable(PROG, "control", &name, &err);
            }
            return;
        };
        let _ = process::signal(pid, sig, false);
    }
}

/// One end of a log pipe held by a supervise left running: its descriptor `fd`, if that is a
/// pipe and not svscan's own output (a supervise started before its service had a log has
/// svscan's stdout as fd 1, and that is not the service's pipe).
fn take_end(h: &Holder, fd: i32, who: &str) -> Result<OwnedFd, String> {
    let ours = [
        fifo::pipe_id(io::stdout().as_fd()),
        fifo::pipe_id(io::stderr().as_fd()),
    ];
    match pidfd::take_fd(h, fd) {
        Ok(e) if fifo::pipe_id(&e).is_some_and(|id| !ours.contains(&Some(id))) => Ok(e),
        Ok(_) => Err(format!("fd {fd} of supervise {who} is not a log pipe")),
        Err(e) => Err(diag::unable_text(
            "get",
            &format_args!("fd {fd} of supervise {who}"),
            &e,
        )),
    }
}

fn failure(e: &io::Error) -> Failure {
    if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
        Failure::Starved
    } else {
        Failure::Other
    }
}

fn start_failed(key: Key, side: Side, name: &str, e: &io::Error) -> Input {
    diag::unable(
        PROG,
        "start",
        &format_args!("supervise {}", what(name, side)),
        e,
    );
    Input::StartFailed {
        key,
        side,
        failure: failure(e),
    }
}

/// Path of a file of `side`'s supervise, relative to the service directory.
fn rel(side: Side, file: &str) -> String {
    match side {
        Side::Main => file.to_owned(),
        Side::Log => format!("{}/{file}", layout::LOG),
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
fn at<'a>(dir: Option<&'a OwnedFd>, name: &OsStr, rel: &str) -> (BorrowedFd<'a>, PathBuf) {
    match dir {
        Some(d) => (d.as_fd(), PathBuf::from(rel)),
        None => (files::cwd(), Path::new(name).join(rel)),
    }
}

/// A new log pipe as one descriptor for both ends. The write end goes first, so at no moment
/// are three descriptors open for it.
fn new_pipe() -> io::Result<OwnedFd> {
    let (r, w) = io::pipe()?;
    drop(w);
    fifo::both_ends(r.as_fd())
}

/// Our own executable: supervise is one of its programs (run as argv[0] `supervise`), so
/// svscan and every supervise share one copy of the text. `/proc/self/exe` names the file we
/// were started from even if it was replaced since (a package upgrade); a new svscan picks up
/// the new one.
pub(crate) fn supervise_program() -> OsString {
    std::fs::read_link("/proc/self/exe").map_or_else(
        |_| OsString::from("/proc/self/exe"),
        PathBuf::into_os_string,
    )
}
