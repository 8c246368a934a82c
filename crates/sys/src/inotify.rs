//! Watching and listing svscan's scan directory.
//!
//! Every event is a reason to rescan, never a delta to apply: the listing ([`list_services`]) is
//! the truth, inotify only says when to look. The scan directory is watched for entries coming
//! and going; each service directory only for a `log` appearing in it.

use std::ffi::OsStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;
use vigil_core::layout;
use vigil_core::scan::{Key, Seen};

/// An inotify instance (non-blocking, close-on-exec).
pub struct Watcher {
    fd: OwnedFd,
}

/// What one batch of events asks for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Events {
    /// Something changed that a rescan would see (a queue overflow included: every event
    /// is a reason to rescan in full anyway).
    pub rescan: bool,
}

impl Watcher {
    pub fn new() -> io::Result<Watcher> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        Ok(Watcher { fd })
    }

    /// Watches the scan directory for entries created, removed, renamed or changed.
    pub fn watch_scan_dir(&self, path: &Path) -> io::Result<i32> {
        let mask = WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MOVED_TO
            | WatchFlags::MOVED_FROM
            | WatchFlags::ATTRIB
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF
            | WatchFlags::ONLYDIR;
        Ok(inotify::add_watch(&self.fd, path, mask)?)
    }

    /// Watches a service directory (links followed) for `log` appearing in it. Watching the
    /// same directory twice returns the same descriptor.
    pub fn watch_service_dir(&self, path: &Path) -> io::Result<i32> {
        let mask = WatchFlags::CREATE | WatchFlags::MOVED_TO | WatchFlags::ONLYDIR;
        Ok(inotify::add_watch(&self.fd, path, mask)?)
    }

    /// Watches a service's `log` directory (links followed) that has no executable `run` yet,
    /// for `run` appearing, being written or made executable.
    pub fn watch_log_dir(&self, path: &Path) -> io::Result<i32> {
        let mask = WatchFlags::CREATE
            | WatchFlags::MOVED_TO
            | WatchFlags::ATTRIB
            | WatchFlags::CLOSE_WRITE
            | WatchFlags::ONLYDIR;
        Ok(inotify::add_watch(&self.fd, path, mask)?)
    }

    /// Drains every pending event. Events on `scan_wd` always ask for a rescan; events on a
    /// service directory only when they name `log`, on a `log` directory waiting for its
    /// `run` only when they name `run`.
    pub fn read(&self, scan_wd: i32) -> io::Result<Events> {
        let mut out = Events::default();
        // Small: events only say "look again", and svscan's stack stays a page smaller; a
        // burst of events takes a few more reads.
        let mut buf = [MaybeUninit::<u8>::uninit(); 512];
        let mut reader = inotify::Reader::new(&self.fd, &mut buf);
        loop {
            match reader.next() {
                Ok(ev) => {
                    let names_log_or_run = || {
                        ev.file_name().is_some_and(|n| {
                            let n = n.to_bytes();
                            n == layout::LOG.as_bytes() || n == layout::RUN.as_bytes()
                        })
                    };
                    if ev.events().contains(ReadFlags::QUEUE_OVERFLOW)
                        || ev.wd() == scan_wd
                        || names_log_or_run()
                    {
                        out.rescan = true;
                    }
                }
                Err(Errno::AGAIN) | Err(Errno::INTR) => return Ok(out),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Watching a service's `supervise/` directory for clients that wait on it (`svwait`,
/// `svc -W`).
impl Watcher {
    /// Watches `path` (a `supervise/` directory, links followed) for every way a supervisor
    /// updates its files: a rename into it (vigil, daemontools, runit, s6), a write in place
    /// (daemontools-encore), a file created, and the directory itself going away.
    pub fn watch_supervise_dir(&self, path: &Path) -> io::Result<i32> {
        let mask = WatchFlags::MOVED_TO
            | WatchFlags::CLOSE_WRITE
            | WatchFlags::MODIFY
            | WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF
            | WatchFlags::ONLYDIR;
        Ok(inotify::add_watch(&self.fd, path, mask)?)
    }

    /// Drains every pending event, appending the watch descriptor of each to `wds`. Returns
    /// true when the kernel dropped events (queue overflow): then every watch counts as fired.
    pub fn read_fired(&self, wds: &mut Vec<i32>) -> io::Result<bool> {
        let mut overflow = false;
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(&self.fd, &mut buf);
        loop {
            match reader.next() {
                Ok(ev) => {
                    if ev.events().contains(ReadFlags::QUEUE_OVERFLOW) {
                        overflow = true;
                    } else if !wds.contains(&ev.wd()) {
                        wds.push(ev.wd());
                    }
                }
                Err(Errno::AGAIN) | Err(Errno::INTR) => return Ok(overflow),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl AsFd for Watcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Lists the entries of `dir` that are services: names not starting with `.` that are, or
/// link to, directories, keyed by the device and inode of that directory. Entries that cannot be
/// examined (a dangling link among them) are reported through `warn(name, error)` and skipped.
pub fn list_services(dir: &Path, warn: impl FnMut(&OsStr, &io::Error)) -> io::Result<Vec<Seen>> {
    let mut out = Vec::new();
    each_service(dir, warn, |s| out.push(s))?;
    Ok(out)
}

/// [`list_services`] one entry at a time, through `each`: nothing of the listing is kept.
pub fn each_service(
    dir: &Path,
    mut warn: impl FnMut(&OsStr, &io::Error),
    mut each: impl FnMut(Seen),
) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.as_bytes().first() == Some(&b'.') {
            continue;
        }
        let path = dir.join(&name);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            // Gone between readdir and stat: not a service. A dangling link is reported
            // (daemontools compat: svscan.c warns `unable to stat` for it too).
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink()) =>
            {
                continue;
            }
            Err(e) => {
                warn(&name, &e);
                continue;
            }
        };
        if !meta.is_dir() {
            continue;
        }
        // daemontools compat: daemontools starts the logger as soon as `log` exists, and its
        // supervise then fails once a second until `log/run` appears; we wait for an
        // executable `log/run` (the driver watches `log` for it), so `mkdir log`, then writing
        // `log/run`, then `chmod +x` is quiet.
        let log_dir = std::fs::metadata(path.join("log")).is_ok();
        let has_log =
            log_dir && std::fs::metadata(path.join("log/run")).is_ok_and(|m| m.mode() & 0o111 != 0);
        each(Seen {
            name,
            key: Key {
                dev: meta.dev(),
                ino: meta.ino(),
            },
            has_log,
            log_pending: log_dir && !has_log,
        });
    }
    Ok(())
}
