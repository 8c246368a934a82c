//! inotify watches: svscan's scan directory, a client's wait on `supervise/` ([`Watcher`]), and
//! one file's modification time for the `deadman` knob ([`FileWatch`]).
//!
//! Every event is a reason to look again, never a delta to apply: the listing
//! ([`crate::files::ServiceEntries`]) or the file's `stat` is the truth, inotify only says when to
//! look. The scan directory is watched for entries coming and going; each service directory only
//! for a `log` appearing in it; a `deadman` file through its directory, so it may be created,
//! replaced by a rename, touched or removed.

use std::ffi::OsStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;
use vigil_core::layout;

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

/// An inotify instance watching the directory of one file.
#[derive(Debug)]
pub struct FileWatch {
    fd: OwnedFd,
}

impl FileWatch {
    /// Watches the directory holding `path` for anything that can change the file's
    /// modification time or existence.
    pub fn new(path: &Path) -> io::Result<FileWatch> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        let mask = WatchFlags::ATTRIB
            | WatchFlags::MODIFY
            | WatchFlags::CLOSE_WRITE
            | WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MOVED_TO
            | WatchFlags::MOVED_FROM
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF
            | WatchFlags::ONLYDIR;
        inotify::add_watch(&fd, dir, mask)?;
        Ok(FileWatch { fd })
    }

    /// Reads every pending event; true when any may concern `name` (or the queue overflowed).
    // Rare: out of line, so its buffers are not in the loop's frame for good (supervise's stack
    // pages, once touched, are part of its memory).
    #[inline(never)]
    pub fn drain(&self, name: &OsStr) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1024];
        let mut reader = inotify::Reader::new(&self.fd, &mut buf);
        let mut hit = false;
        loop {
            match reader.next() {
                Ok(ev) => {
                    let about = ev.file_name().map(|n| n.to_bytes());
                    hit |= about.is_none_or(|n| n == name.as_bytes())
                        || ev.events().contains(ReadFlags::QUEUE_OVERFLOW);
                }
                Err(Errno::INTR) => {}
                // EAGAIN: nothing more; anything else: look at the file anyway.
                Err(Errno::AGAIN) => return hit,
                Err(_) => return true,
            }
        }
    }
}

impl AsFd for FileWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The modification time of `path` (following links: it is only looked at) as Unix seconds and
/// nanoseconds; `None` when it does not exist or cannot be seen.
pub fn modified(path: &Path) -> Option<(u64, u32)> {
    let st = rustix::fs::stat(path).ok()?;
    let secs = u64::try_from(st.st_mtime).ok()?;
    let nanos = u32::try_from(st.st_mtime_nsec).ok()?;
    Some((secs, nanos))
}
