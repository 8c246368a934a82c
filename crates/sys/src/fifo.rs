//! The FIFOs under `supervise/`: `control` (commands in) and `ok` (liveness).
//!
//! supervise holds `control` open for reading *and* writing: with its own writer the read end
//! never sees end-of-file, so poll stays quiet between commands. `ok` is opened for reading and
//! never read; a client whose non-blocking write-open fails with ENXIO knows nobody is there.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{CWD, Mode, OFlags};
use rustix::io::Errno;

/// Creates a FIFO with `mode` unless something already exists at `path`.
pub fn make(path: &Path, mode: u32) -> io::Result<()> {
    match rustix::fs::mkfifoat(CWD, path, Mode::from_raw_mode(mode)) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Opens a FIFO for writing without blocking: ENXIO when nobody reads it.
pub fn open_write(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Like [`open_write`], relative to a directory fd.
pub fn open_write_at(dir: impl AsFd, rel: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        rel,
        OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// True when `fd` is a FIFO (a client must not take a regular file for a supervise).
pub fn is_fifo(fd: impl AsFd) -> io::Result<bool> {
    let st = rustix::fs::fstat(fd)?;
    Ok(rustix::fs::FileType::from_raw_mode(st.st_mode).is_fifo())
}

/// Switches a descriptor to blocking mode (clients write their commands blocking).
pub fn set_blocking(fd: impl AsFd) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(&fd)?;
    rustix::fs::fcntl_setfl(&fd, flags - OFlags::NONBLOCK)?;
    Ok(())
}

/// Reads what is available, without blocking: `Ok(0)` when nothing is.
pub fn read_some(fd: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    match rustix::io::read(fd, buf) {
        Ok(n) => Ok(n),
        Err(Errno::AGAIN) | Err(Errno::INTR) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Reads what is available without blocking: `Ok(Some(0))` when nothing is there yet,
/// `Ok(None)` at end of file.
pub fn read_some_or_eof(fd: impl AsFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    match rustix::io::read(fd, buf) {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(n)),
        Err(Errno::AGAIN) | Err(Errno::INTR) => Ok(Some(0)),
        Err(e) => Err(e.into()),
    }
}

/// Writes all of `buf`.
pub fn write_all(fd: impl AsFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match rustix::io::write(&fd, buf) {
            Ok(0) => return Err(io::Error::from_raw_os_error(Errno::PIPE.raw_os_error())),
            Ok(n) => buf = buf.get(n..).unwrap_or_default(),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Opens a directory for use as the base of `*_at` calls (needs search permission only, as
/// chdir does).
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `fstatat` existence check relative to a directory fd (symlinks followed).
pub fn exists_at(dir: impl AsFd, rel: &str) -> io::Result<bool> {
    match rustix::fs::statat(dir, rel, rustix::fs::AtFlags::empty()) {
        Ok(_) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Opens a file for reading relative to a directory fd.
pub fn open_file_at(dir: impl AsFd, rel: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Reads until `buf` is full or end of file; returns the count.
pub fn read_full(fd: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    let mut total = 0;
    while let Some(rest) = buf.get_mut(total..) {
        if rest.is_empty() {
            break;
        }
        match rustix::io::read(&fd, rest) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(total)
}
