//! A service directory as its clients see it: is a supervise there (`supervise/ok`), what its
//! status and info files say, and its control FIFO. The one reader of each, for svstat, svwait,
//! svc, svok and sv; supervise reaches the same files through [`crate::statedir`].
//!
//! Every function takes the service directory's descriptor ([`crate::fifo::open_dir`]), so a
//! directory renamed meanwhile is still the one the caller named.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::io::Errno;
use vigil_core::info::Info;
use vigil_core::layout;
use vigil_core::status::Status;

use crate::{diag, fifo};

/// Whether a supervise reads a FIFO of the service directory.
#[derive(Debug)]
pub enum Liveness {
    /// It does: the write end of the FIFO.
    Running(OwnedFd),
    /// The FIFO is there but nobody reads it (`ENXIO`): no supervise runs.
    NotRunning,
}

/// Opens `supervise/ok` for writing, which succeeds only while a supervise reads it
/// (daemontools' liveness test). An error of kind `NotFound` means no supervise ever ran there.
pub fn liveness(base: impl AsFd) -> io::Result<Liveness> {
    open_fifo(base, layout::OK)
}

/// [`liveness`] of the `ok` FIFO at `rel` under `base` (svstat: `DIR/supervise/ok` from the
/// working directory).
pub fn liveness_at(base: impl AsFd, rel: &str) -> io::Result<Liveness> {
    open_fifo(base, rel)
}

/// Opens `supervise/control` for writing, as [`liveness`] does `supervise/ok`.
pub fn open_control(base: impl AsFd) -> io::Result<Liveness> {
    open_fifo(base, layout::CONTROL)
}

fn open_fifo(base: impl AsFd, rel: &str) -> io::Result<Liveness> {
    match fifo::open_write_at(base, rel) {
        Ok(fd) => Ok(Liveness::Running(fd)),
        Err(e) if e.raw_os_error() == Some(Errno::NXIO.raw_os_error()) => Ok(Liveness::NotRunning),
        Err(e) => Err(e),
    }
}

/// The error of a file that is not there (`ENOENT`), for a name that cannot be one.
pub fn missing() -> io::Error {
    Errno::NOENT.into()
}

/// Whether `e` says a file is not there (`ENOENT`).
pub fn is_missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// Why `supervise/status` could not be read; the verb and reason of daemontools' message.
#[derive(Debug)]
pub enum StatusError {
    Open(io::Error),
    Read(io::Error),
    /// Read, but not a record any supervisor writes.
    BadFormat,
}

impl StatusError {
    /// `open` or `read`, as in `unable to open supervise/status`.
    pub fn verb(&self) -> &'static str {
        match self {
            StatusError::Open(_) => "open",
            StatusError::Read(_) | StatusError::BadFormat => "read",
        }
    }

    /// `unable to VERB OBJECT: REASON` (`bad format` for a record that does not decode).
    pub fn text(&self, object: &dyn std::fmt::Display) -> String {
        match self {
            StatusError::Open(e) | StatusError::Read(e) => {
                diag::unable_text(self.verb(), object, e)
            }
            StatusError::BadFormat => {
                diag::unable_text(self.verb(), object, &diag::refused("bad format"))
            }
        }
    }
}

/// Reads and decodes `supervise/status` (daemontools' 18 bytes or a longer record).
pub fn read_status(base: impl AsFd) -> Result<Status, StatusError> {
    read_status_in(base, layout::STATUS)
}

/// [`read_status`] of the file `name` under `dir`: supervise reads its own `status` through
/// its `supervise/` descriptor.
pub fn read_status_in(dir: impl AsFd, name: &str) -> Result<Status, StatusError> {
    let mut buf = [0u8; 64];
    // The usual case in three calls (open, one read, close): a regular file gives all of a
    // record this short in one read, and what it gives is checked. Only what does not decode
    // takes the careful way: refused unless a regular file, then read to its end.
    let fd = open_as_it_is(&dir, name).map_err(StatusError::Open)?;
    if let Ok(n) = rustix::io::read(&fd, &mut buf)
        && let Ok(st) = Status::unpack(buf.get(..n).unwrap_or_default())
    {
        return Ok(st);
    }
    drop(fd);
    let n = read_into(dir, name, &mut buf)?;
    Status::unpack(buf.get(..n).unwrap_or_default()).map_err(|_| StatusError::BadFormat)
}

/// Reads `supervise/status` as runit's `sv` does: the first 20 bytes, raw.
pub fn read_status_record(base: impl AsFd) -> Result<vigil_core::sv::Record, StatusError> {
    let mut buf = [0u8; 20];
    let n = read_into(base, layout::STATUS, &mut buf)?;
    buf.get(..n)
        .and_then(vigil_core::sv::Record::parse)
        .ok_or(StatusError::BadFormat)
}

fn read_into(dir: impl AsFd, name: &str, buf: &mut [u8]) -> Result<usize, StatusError> {
    let fd = open_state_file(dir, name).map_err(StatusError::Open)?;
    fifo::read_full(&fd, buf).map_err(StatusError::Read)
}

/// Opens `name` under `dir` for reading without following a link in its place, and without
/// blocking on a FIFO.
fn open_as_it_is(dir: impl AsFd, name: &str) -> io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens a state file (`status`, `info`) for reading as it is: a symbolic link in its place is
/// not followed and anything but a regular file is refused (a FIFO planted there would block
/// the reader, and a link could make a root reader show another file).
fn open_state_file(dir: impl AsFd, name: &str) -> io::Result<OwnedFd> {
    use rustix::fs::FileType;
    let fd = open_as_it_is(dir, name)?;
    if !FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode).is_file() {
        return Err(diag::refused("not a regular file"));
    }
    Ok(fd)
}

/// The most of `supervise/info` read (what supervise writes is far less).
const INFO_MAX: usize = 4096;

/// `supervise/info` when present and parseable.
pub fn read_info(base: impl AsFd) -> Option<Info> {
    read_info_in(base, layout::INFO)
}

/// [`read_info`] of the file `name` under `dir` (supervise: its `supervise/` descriptor).
pub fn read_info_in(dir: impl AsFd, name: &str) -> Option<Info> {
    let fd = open_state_file(dir, name).ok()?;
    let text = fifo::read_to_vec(&fd, 1024, INFO_MAX).ok()?;
    Info::parse(std::str::from_utf8(&text).ok()?)
}
