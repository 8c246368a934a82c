//! Waiting for services to be up, ready, down or finished: the I/O behind `svwait` and
//! `svc -W`.
//!
//! Race-free by construction: for each directory, the inotify watch on `supervise/` is added
//! first, then `supervise/ok` is opened for writing (is a supervise there?), and only then is
//! `status` read. Any change written after that read raises an event, so a state is never
//! missed between reading and sleeping. The loop then sleeps in one `poll` over the inotify fd
//! and every `ok` write end, with the deadline as timeout: no polling loop, no wakeup while
//! nothing changes. A FIFO's write end reports POLLERR once its last reader is gone, which is
//! how the death of a supervise is noticed while waiting.
//!
//! What counts as "reached" is decided in [`vigil_core::wait`].

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Instant;

use vigil_core::layout;
use vigil_core::wait::{Baseline, Goal, Observed, Quorum, decided, reached};

use crate::service::{self, Liveness, StatusError};
use crate::watch::Watcher;
use crate::{diag, fifo, poll};

/// Exit code: the deadline passed (s6-svwait's).
pub const EXIT_TIMEOUT: u8 = 99;
/// Exit code: a supervise is not running, or went away while we waited (s6-svwait's).
pub const EXIT_GONE: u8 = 102;

/// Why a wait could not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The service directory cannot be opened.
    Chdir { dir: String, err: io::Error },
    /// No supervise runs there (or none ever ran).
    NotRunning { dir: String },
    /// The supervise stopped while we waited, before the goal was reached.
    Gone { dir: String },
    /// The deadline passed; `dir` is one that had not reached the goal.
    Timeout { dir: String },
    /// A system call failed: `unable to {what}: {err}`.
    System { what: String, err: io::Error },
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Failure::Chdir { .. } | Failure::System { .. } => diag::EXIT_TEMP,
            Failure::NotRunning { .. } | Failure::Gone { .. } => EXIT_GONE,
            Failure::Timeout { .. } => EXIT_TIMEOUT,
        }
    }

    /// The message after `prog: fatal: `.
    pub fn message(&self) -> String {
        match self {
            Failure::Chdir { dir, err } => diag::unable_text("chdir to", dir, err),
            Failure::NotRunning { dir } => {
                diag::unable_text("wait for", dir, &diag::refused("supervise not running"))
            }
            Failure::Gone { dir } => {
                diag::unable_text("wait for", dir, &diag::refused("supervise went away"))
            }
            Failure::Timeout { dir } => format!("timed out waiting for {dir}"),
            Failure::System { what, err } => diag::bare_text(what, err),
        }
    }
}

struct Dir {
    name: String,
    base: OwnedFd,
    /// Write end of `supervise/ok`; `None` once its supervise is gone.
    ok: Option<OwnedFd>,
    wd: i32,
    readiness: bool,
    baseline: Option<Baseline>,
}

/// A set of watched service directories.
pub struct Waiter {
    watcher: Watcher,
    dirs: Vec<Dir>,
}

impl Waiter {
    pub fn new() -> Result<Waiter, Failure> {
        let watcher = Watcher::new().map_err(|err| Failure::System {
            what: "create inotify instance".into(),
            err,
        })?;
        Ok(Waiter {
            watcher,
            dirs: Vec::new(),
        })
    }

    /// Starts watching `dir`: the watch, then the liveness check. Returns its index.
    pub fn add(&mut self, dir: &Path) -> Result<usize, Failure> {
        let name = dir.display().to_string();
        let base = fifo::open_dir(dir).map_err(|err| Failure::Chdir {
            dir: name.clone(),
            err,
        })?;
        let sup = dir.join(layout::SUPERVISE_DIR);
        let wd = match self.watcher.watch_supervise_dir(&sup) {
            Ok(wd) => wd,
            Err(e) if service::is_missing(&e) => {
                return Err(Failure::NotRunning { dir: name });
            }
            Err(err) => {
                return Err(Failure::System {
                    what: format!("watch {}", sup.display()),
                    err,
                });
            }
        };
        let ok = match service::liveness(&base) {
            Ok(Liveness::Running(fd)) => fd,
            Ok(Liveness::NotRunning) => return Err(Failure::NotRunning { dir: name }),
            Err(e) if service::is_missing(&e) => {
                return Err(Failure::NotRunning { dir: name });
            }
            Err(err) => {
                return Err(Failure::System {
                    what: format!("open {name}/{}", layout::OK),
                    err,
                });
            }
        };
        let knob = |k| fifo::exists_at(&base, k).unwrap_or(false);
        let readiness = knob(layout::KNOB_NOTIFICATION_FD) || knob(layout::KNOB_NOTIFY_SOCKET);
        self.dirs.push(Dir {
            name,
            base,
            ok: Some(ok),
            wd,
            readiness,
            baseline: None,
        });
        Ok(self.dirs.len() - 1)
    }

    /// Stops waiting for the directory added last (its command could not be written).
    pub fn forget_last(&mut self) {
        self.dirs.pop();
    }

    /// True when no directory is watched.
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }

    /// Records the current status of directory `i` as the baseline for `commands` about to be
    /// written (see [`vigil_core::wait`]). Without a readable status there is no baseline.
    pub fn set_baseline(&mut self, i: usize, commands: &[u8]) -> Result<(), Failure> {
        let seen = self.observe(i)?;
        if let Some(d) = self.dirs.get_mut(i) {
            d.baseline = seen.map(|o| Baseline::new(o.status, commands));
        }
        Ok(())
    }

    /// Reads what directory `i` shows now; `None` while there is no usable status (a
    /// supervise that has not written one yet).
    pub fn observe(&self, i: usize) -> Result<Option<Observed>, Failure> {
        let Some(d) = self.dirs.get(i) else {
            return Ok(None);
        };
        let sys = |what: &str, err| Failure::System {
            what: format!("{what} {}/{}", d.name, layout::STATUS),
            err,
        };
        // A status being written in place (daemontools-encore) can be caught short: the
        // write's own event brings another look.
        let status = match service::read_status(&d.base) {
            Ok(status) => status,
            Err(StatusError::Open(e)) if service::is_missing(&e) => return Ok(None),
            Err(StatusError::Open(e)) => return Err(sys("open", e)),
            Err(StatusError::Read(e)) => return Err(sys("read", e)),
            Err(StatusError::BadFormat) => return Ok(None),
        };
        Ok(Some(Observed {
            status,
            info: service::read_info(&d.base),
            readiness: d.readiness,
        }))
    }

    /// Waits until the directories reach `goal` (all or one of them) or `deadline` passes.
    pub fn wait(
        &mut self,
        goal: Goal,
        quorum: Quorum,
        deadline: Option<Instant>,
    ) -> Result<(), Failure> {
        let n = self.dirs.len();
        let mut done = vec![false; n];
        let mut dirty = vec![true; n];
        let mut fired = Vec::new();
        loop {
            for i in 0..n {
                if dirty.get(i) == Some(&true) {
                    let now = self.reached_now(i, goal)?;
                    if let (Some(r), Some(d)) = (done.get_mut(i), dirty.get_mut(i)) {
                        *r = now;
                        *d = false;
                    }
                }
            }
            if decided(quorum, &done) {
                return Ok(());
            }
            let timeout = match deadline {
                None => None,
                Some(t) => {
                    let left = t.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        let dir = self.first_pending(&done);
                        return Err(Failure::Timeout { dir });
                    }
                    Some(left)
                }
            };
            let woke = self.poll_once(timeout, &mut fired)?;
            for (i, d) in self.dirs.iter().enumerate() {
                if (woke.overflow || fired.contains(&d.wd))
                    && let Some(x) = dirty.get_mut(i)
                {
                    *x = true;
                }
            }
            for i in woke.gone {
                // The supervise wrote its last status before it exited: judge by that one.
                if !self.reached_now(i, goal)? {
                    let dir = self.dirs.get(i).map(|d| d.name.clone()).unwrap_or_default();
                    return Err(Failure::Gone { dir });
                }
                if let Some(d) = self.dirs.get_mut(i) {
                    d.ok = None;
                }
                if let Some(r) = done.get_mut(i) {
                    *r = true;
                }
            }
        }
    }

    fn reached_now(&self, i: usize, goal: Goal) -> Result<bool, Failure> {
        let base = self.dirs.get(i).and_then(|d| d.baseline.as_ref());
        Ok(self.observe(i)?.is_some_and(|o| reached(goal, &o, base)))
    }

    fn first_pending(&self, done: &[bool]) -> String {
        self.dirs
            .iter()
            .zip(done)
            .find(|(_, r)| !**r)
            .map(|(d, _)| d.name.clone())
            .unwrap_or_default()
    }
}

impl Waiter {
    /// Sleeps until something changes under a watched `supervise/`, a watched supervise goes
    /// away, or `until` passes. For a caller that judges every directory itself on each wake
    /// (runit's `sv`, whose notion of "done" includes running `./check`).
    pub fn wait_change(&mut self, until: Option<Instant>) -> Result<(), Failure> {
        let timeout = until.map(|t| t.saturating_duration_since(Instant::now()));
        if timeout.is_some_and(|t| t.is_zero()) {
            return Ok(());
        }
        let woke = self.poll_once(timeout, &mut Vec::new())?;
        for i in woke.gone {
            // Gone: stop polling its write end, or every later poll returns at once.
            if let Some(d) = self.dirs.get_mut(i) {
                d.ok = None;
            }
        }
        Ok(())
    }
}

/// What one [`Waiter::poll_once`] saw.
struct Woke {
    /// The inotify queue overflowed: every directory may have changed.
    overflow: bool,
    /// Indexes of the directories whose supervise went away (their `ok` writer reported).
    gone: Vec<usize>,
}

impl Waiter {
    /// One poll over the inotify fd and every `ok` writer still held, up to `timeout`; the
    /// watch descriptors that fired go into `fired` (cleared first).
    fn poll_once(
        &self,
        timeout: Option<std::time::Duration>,
        fired: &mut Vec<i32>,
    ) -> Result<Woke, Failure> {
        let mut fds: Vec<BorrowedFd<'_>> = vec![self.watcher.as_fd()];
        let mut owners = Vec::new();
        for (i, d) in self.dirs.iter().enumerate() {
            if let Some(ok) = &d.ok {
                fds.push(ok.as_fd());
                owners.push(i);
            }
        }
        let mut ready = vec![false; fds.len()];
        poll::wait(&fds, &mut ready, timeout).map_err(|err| Failure::System {
            what: "poll".into(),
            err,
        })?;
        fired.clear();
        let mut overflow = false;
        if ready.first() == Some(&true) {
            overflow = self
                .watcher
                .read_fired(fired)
                .map_err(|err| Failure::System {
                    what: "read inotify events".into(),
                    err,
                })?;
        }
        let gone = owners
            .iter()
            .zip(ready.iter().skip(1))
            .filter(|(_, r)| **r)
            .map(|(&i, _)| i)
            .collect();
        Ok(Woke { overflow, gone })
    }
}

/// How often to look again while a directory's `supervise` cannot be watched (it is missing
/// and so is the directory, or it is a symlink to a directory not made yet, as Debian's
/// `/etc/sv/NAME/supervise -> /run/runit/supervise.NAME`).
const UNWATCHABLE_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// Waits until a supervisor runs in `dir` (its `supervise/ok` opens for writing) or `deadline`
/// passes; returns whether one does. Event-driven: the service directory is watched for
/// `supervise` to appear, then `supervise/` for `ok` and the first `status`, and `ok` is tried
/// again after each event (a supervisor writes its first status after it opened `ok`).
pub fn wait_supervised(dir: &Path, deadline: Instant) -> Result<bool, Failure> {
    let sys = |what: String| move |err| Failure::System { what, err };
    let watcher = Watcher::new().map_err(sys("create inotify instance".into()))?;
    let base = fifo::open_dir(dir).map_err(|err| Failure::Chdir {
        dir: dir.display().to_string(),
        err,
    })?;
    let sup = dir.join(layout::SUPERVISE_DIR);
    let dir_watched = watcher.watch_service_dir(dir).is_ok();
    let mut sup_watched = false;
    loop {
        if !sup_watched {
            sup_watched = watcher.watch_supervise_dir(&sup).is_ok();
        }
        match service::liveness(&base) {
            Ok(Liveness::Running(_)) => return Ok(true),
            Ok(Liveness::NotRunning) => {}
            Err(e) if service::is_missing(&e) => {}
            Err(err) => return Err(sys(format!("open {}/{}", dir.display(), layout::OK))(err)),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let timeout = if sup_watched || dir_watched && !is_dangling(&sup) {
            left
        } else {
            left.min(UNWATCHABLE_RETRY)
        };
        let mut ready = [false];
        poll::wait(&[watcher.as_fd()], &mut ready, Some(timeout)).map_err(sys("poll".into()))?;
        if ready == [true] {
            let mut fired = Vec::new();
            watcher
                .read_fired(&mut fired)
                .map_err(sys("read inotify events".into()))?;
        }
    }
}

/// A symlink whose target does not exist (yet).
fn is_dangling(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) && !path.exists()
}
