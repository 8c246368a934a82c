//! The FIFOs under `supervise/`: `control` (commands in) and `ok` (liveness); and pipes, whose
//! ends svscan reopens through `/proc/self/fd` to keep a log pipe alive on one descriptor.
//!
//! supervise holds `control` open for reading *and* writing: with its own writer the read end
//! never sees end-of-file, so poll stays quiet between commands. `ok` is opened for reading and
//! never read; a client whose non-blocking write-open fails with ENXIO knows nobody is there.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{CWD, FileType, Mode, OFlags};
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

/// Everything `fd` has to read, up to `limit` bytes (more is cut off), read into a vector that
/// starts at `first` bytes and doubles: no stack buffer, so the callers' frames stay small
/// (supervise's stack pages are part of its memory for good once touched).
pub fn read_to_vec(fd: impl AsFd, first: usize, limit: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(first.min(limit));
    loop {
        if out.len() == out.capacity() {
            if out.len() >= limit {
                return Ok(out);
            }
            out.reserve_exact(out.len().max(1).min(limit - out.len()));
        }
        match rustix::io::read(&fd, rustix::buffer::spare_capacity(&mut out)) {
            Ok(0) => return Ok(out),
            Ok(_) => {}
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// (device, inode) of a file.
pub type FileId = (u64, u64);

/// The identity of `fd` when it is a pipe (or FIFO), else `None`.
pub fn pipe_id(fd: impl AsFd) -> Option<FileId> {
    let st = rustix::fs::fstat(fd).ok()?;
    (FileType::from_raw_mode(st.st_mode) == FileType::Fifo).then_some((st.st_dev, st.st_ino))
}

/// The other end of the pipe `fd` is one end of: a new open of `/proc/self/fd/N` for reading
/// (`read`) or writing. Blocking, close-on-exec. Opening never waits: we hold `fd`, the other end.
pub fn other_end(fd: BorrowedFd<'_>, read: bool) -> io::Result<OwnedFd> {
    open_pipe_end(&format!("/proc/self/fd/{}", fd.as_raw_fd()), read)
}

/// One descriptor that is both ends of the pipe `fd` is an end of: a new open of
/// `/proc/self/fd/N` for reading and writing (close-on-exec, blocking). It keeps the pipe
/// alive with a reader and a writer on it, so a single descriptor stands for the pair.
pub fn both_ends(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let f = rustix::fs::open(
        format!("/proc/self/fd/{}", fd.as_raw_fd()),
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(f)
}

/// Opens a pipe end through a `/proc/.../fd/N` path for reading or writing, without waiting
/// for the other side (non-blocking open), then switches it to blocking; close-on-exec.
pub(crate) fn open_pipe_end(path: &str, read: bool) -> io::Result<OwnedFd> {
    let mode = if read { OFlags::RDONLY } else { OFlags::WRONLY };
    let f = rustix::fs::open(
        path,
        mode | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    set_blocking(&f)?;
    Ok(f)
}

#[cfg(test)]
mod pipe_tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn read_to_vec_reads_all_up_to_the_limit() {
        use std::io::Write;
        let text: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        for (first, limit, want) in [(16, 10_000, 5000), (64, 4096, 4096), (1, 5000, 5000)] {
            let (r, mut w) = std::io::pipe().unwrap();
            w.write_all(&text).unwrap();
            drop(w);
            let got = read_to_vec(&r, first, limit).unwrap();
            assert_eq!(got, text[..want], "first {first}, limit {limit}");
        }
        let (r, w) = std::io::pipe().unwrap();
        drop(w);
        assert!(read_to_vec(&r, 64, 4096).unwrap().is_empty());
    }

    #[test]
    fn the_other_end_of_a_pipe_and_a_descriptor_taken_through_a_pidfd() {
        let (r, w) = std::io::pipe().unwrap();
        let w: OwnedFd = w.into();
        let r2 = other_end(w.as_fd(), true).unwrap();
        assert_eq!(pipe_id(&r2), pipe_id(&w));
        assert_eq!(pipe_id(&r2), pipe_id(&r));
        rustix::io::write(&w, b"x").unwrap();
        let mut b = [0u8; 1];
        assert_eq!(rustix::io::read(&r2, &mut b).unwrap(), 1);
        // One descriptor for both ends: the pipe lives on through it alone, and ends opened
        // from it for a moment reach the same pipe.
        let both = both_ends(r.as_fd()).unwrap();
        drop((r, r2, w));
        let w = other_end(both.as_fd(), false).unwrap();
        let r = other_end(both.as_fd(), true).unwrap();
        rustix::io::write(&w, b"y").unwrap();
        assert_eq!(rustix::io::read(&r, &mut b).unwrap(), 1);
        assert_eq!(&b, b"y");
        assert_eq!(pipe_id(&both), pipe_id(&w));
        let me = crate::pidfd::Holder {
            pid: std::process::id(),
            pidfd: crate::pidfd::open(std::process::id()).unwrap(),
        };
        let dup = crate::pidfd::take_fd(&me, w.as_raw_fd()).unwrap();
        assert_eq!(pipe_id(&dup), pipe_id(&r));
        assert!(!crate::pidfd::exited(&me.pidfd));
    }
}
