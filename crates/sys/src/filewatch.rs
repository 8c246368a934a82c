//! Watching one file for a new modification time (the `deadman` knob's file): inotify on its
//! directory, so the file may be created, replaced by a rename, touched or removed. inotify only
//! says when to look; the file's `stat` is the truth.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;

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
