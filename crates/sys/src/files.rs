//! Files of a directory looked at through paths: existence, listings (svscan's list of
//! services among them), change times, and knob files read safely. supervise's `supervise/` goes through [`crate::statedir`] instead.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use vigil_core::layout;
use vigil_core::scan::{self, Key, Seen};

/// True when `path` exists (any type, symlinks followed).
pub fn exists(path: &Path) -> io::Result<bool> {
    match fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Calls `each` with the name of every entry of the directory `dir` (`.` and `..` included),
/// read with `getdents64` into a small buffer on the stack (no allocation).
pub fn list_names(dir: &str, mut each: impl FnMut(&[u8])) -> io::Result<()> {
    use rustix::fs::{CWD, Mode, OFlags, RawDir};
    let fd = rustix::fs::openat(
        CWD,
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // Room for a service directory's usual dozen names in one call; more take more calls.
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 512];
    let mut entries = RawDir::new(&fd, &mut buf);
    while let Some(entry) = entries.next() {
        each(entry?.file_name().to_bytes());
    }
    Ok(())
}

/// Whether the directory `path` names has been removed (a removed directory still open, or
/// our working directory, has no links left).
pub fn deleted(path: &Path) -> bool {
    rustix::fs::stat(path).is_ok_and(|st| st.st_nlink == 0)
}

/// The change time (seconds, nanoseconds) of `path` itself (a symlink is not followed).
pub fn change_time(path: &str) -> io::Result<(i64, i64)> {
    use rustix::fs::{AtFlags, CWD};
    let st = rustix::fs::statat(CWD, path, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok((st.st_ctime, i64::try_from(st.st_ctime_nsec).unwrap_or(0)))
}

/// The most of a knob file read: values are a word or two.
const KNOB_MAX: u64 = 4096;

/// Reads a knob file of the current directory (the service directory): the trimmed first line
/// of at most 4 KiB, `Ok(None)` when it does not exist.
///
/// supervise may read as root in a directory a user owns, so a knob is read only when it is a
/// regular file (a FIFO would block, a device could be anything) and, when it is a symlink, only
/// if root or we made the link, or the link's owner owns the file it leads to: a user's
/// `down-signal -> /etc/shadow` is refused (`symbolic link to a file of another user`). The
/// open follows the link and the check compares what was opened with what the name is now, so
/// swapping the link in between gains nothing.
pub fn read_knob(name: &str) -> io::Result<Option<String>> {
    read_knob_with(name, |text| {
        text.lines().next().unwrap_or("").trim().to_owned()
    })
}

fn read_knob_with(name: &str, take: impl Fn(&str) -> String) -> io::Result<Option<String>> {
    use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
    let fd = match rustix::fs::openat(
        CWD,
        name,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let st = rustix::fs::fstat(&fd)?;
    if !FileType::from_raw_mode(st.st_mode).is_file() {
        return Err(crate::diag::refused("not a regular file"));
    }
    let link = rustix::fs::statat(CWD, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if (link.st_dev, link.st_ino) != (st.st_dev, st.st_ino) {
        let me = rustix::process::geteuid().as_raw();
        if link.st_uid != 0 && link.st_uid != me && link.st_uid != st.st_uid {
            return Err(crate::diag::refused(
                "symbolic link to a file of another user",
            ));
        }
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(fs::File::from(fd), KNOB_MAX),
        &mut bytes,
    )?;
    Ok(Some(take(&String::from_utf8_lossy(&bytes))))
}

/// [`read_knob`] for a knob of several lines: the whole content, trimmed, with the same checks.
pub fn read_knob_lines(name: &str) -> io::Result<Option<String>> {
    read_knob_with(name, |text| text.trim().to_owned())
}

/// The current directory as a directory descriptor, for [`crate::lock::lock_state`] on a relative path.
pub fn cwd() -> BorrowedFd<'static> {
    rustix::fs::CWD
}

/// One entry of [`ServiceEntries`].
#[derive(Debug)]
pub enum Listed {
    Service(Seen),
    /// An entry that could not be examined (a dangling link among them: daemontools compat,
    /// svscan.c warns `unable to stat` for it too).
    Unstattable(OsString, io::Error),
}

/// The services of a directory as an iterator, for a caller that acts between entries (svscan
/// starts the first services of a long listing before reading the rest).
#[derive(Debug)]
pub struct ServiceEntries {
    dir: PathBuf,
    entries: fs::ReadDir,
}

impl ServiceEntries {
    pub fn new(dir: &Path) -> io::Result<ServiceEntries> {
        Ok(ServiceEntries {
            dir: dir.to_owned(),
            entries: fs::read_dir(dir)?,
        })
    }

    /// What the entry `name` is: a service, not one (`None`), or unstattable.
    fn examine(&self, name: OsString) -> Option<Listed> {
        if !scan::may_be_service(name.as_bytes()) {
            return None;
        }
        let path = self.dir.join(&name);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            // Gone between readdir and stat: not a service. A dangling link is reported.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && !fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink()) =>
            {
                return None;
            }
            Err(e) => return Some(Listed::Unstattable(name, e)),
        };
        if !meta.is_dir() {
            return None;
        }
        let log = path.join(layout::LOG);
        let log_dir = fs::metadata(&log).is_ok();
        let log_run =
            log_dir && fs::metadata(log.join(layout::RUN)).is_ok_and(|m| m.mode() & 0o111 != 0);
        let key = Key {
            dev: meta.dev(),
            ino: meta.ino(),
        };
        Some(Listed::Service(Seen::new(name, key, log_dir, log_run)))
    }
}

impl Iterator for ServiceEntries {
    type Item = io::Result<Listed>;

    fn next(&mut self) -> Option<io::Result<Listed>> {
        loop {
            let name = match self.entries.next()? {
                Ok(entry) => entry.file_name(),
                Err(e) => return Some(Err(e)),
            };
            if let Some(listed) = self.examine(name) {
                return Some(Ok(listed));
            }
        }
    }
}
