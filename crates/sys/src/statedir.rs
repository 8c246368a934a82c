//! `supervise/`, held by a descriptor: every file supervise keeps there is reached relative to
//! that descriptor, never through a path that the owner of the service directory could redirect.
//!
//! supervise often runs as root in a directory a user owns. The user can rename `supervise/`
//! away, put their own directory in its place and plant `status.new -> /etc/passwd`; a root
//! that wrote through paths would then overwrite the target. So: the directory is opened once
//! (`O_DIRECTORY|O_NOFOLLOW`) and must belong to us with no group or other write permission;
//! every file in it is created `O_EXCL|O_NOFOLLOW`, renamed with `renameat`, and the FIFOs must
//! be FIFOs we own. A directory swapped later changes nothing: we keep writing into ours.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::diag::refused;

/// The largest file read back from `supervise/` (info, status, history).
const MAX_READ: u64 = 1 << 20;

/// An open `supervise/` directory.
pub struct StateDir {
    fd: OwnedFd,
}

/// What [`StateDir::fifo`] found at the name.
#[derive(Debug, PartialEq, Eq)]
pub enum FifoFound {
    /// Our FIFO, or none (made now).
    Fine,
    /// Something else was there (a regular file, a symlink, another user's FIFO); it was
    /// removed and a FIFO made in its place. The words say what it was.
    Replaced(&'static str),
}

fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn same_file(a: &Stat, b: &Stat) -> bool {
    (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
}

impl StateDir {
    /// Opens `name` (relative to the current directory), creating it 0700 when missing.
    ///
    /// `name` may be a symlink only when root or we own the link: its target is created when
    /// missing (Debian's daemontools does that, for read-only service directories). A link
    /// another user made is refused: it could point at any directory root may write. The
    /// directory itself must be ours; group and other write permission is taken away.
    ///
    /// daemontools compat: daemontools uses whatever `supervise/` it finds and follows any
    /// `supervise` link; we refuse another user's directory or link (fatal, exit 111).
    pub fn open(name: &str) -> io::Result<StateDir> {
        let fd = match rustix::fs::statat(CWD, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode).is_symlink() => {
                if st.st_uid != 0 && st.st_uid != own_uid() {
                    return Err(refused("symbolic link owned by another user"));
                }
                let target = rustix::fs::readlinkat(CWD, name, Vec::new())?;
                // Still the link we checked (a new link is a new inode).
                let again = rustix::fs::statat(CWD, name, AtFlags::SYMLINK_NOFOLLOW)?;
                if !same_file(&st, &again) {
                    return Err(refused("replaced while being opened"));
                }
                make_dir(target.as_c_str())?;
                open_dir(target.as_c_str())?
            }
            Ok(_) => open_dir(name)?,
            Err(Errno::NOENT) => {
                make_dir(name)?;
                open_dir(name)?
            }
            Err(e) => return Err(e.into()),
        };
        let st = rustix::fs::fstat(&fd)?;
        if st.st_uid != own_uid() {
            return Err(refused("owned by another user"));
        }
        if st.st_mode & 0o022 != 0 {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(st.st_mode & 0o7755))?;
        }
        Ok(StateDir { fd })
    }

    /// Gives the group `group` the access a client needs (the `control-group` knob), or, with
    /// `None`, takes back what an earlier delegation gave: the directory, and the FIFOs given as
    /// open descriptors (`control`, `ok`). Only descriptors are changed (`fchown`, `fchmod`),
    /// never a path that could have been swapped for a link.
    ///
    /// What the clients open, and so what the group gets: `svc` opens `control` for writing,
    /// `svok`, `svstat` and `svwait` open `ok` for writing (ENXIO: no supervise); `svstat` and
    /// `svwait` read `status` and `info`, and `svwait` puts an inotify watch on the directory
    /// (which needs read permission on it). So: the directory `0750`, `control` and `ok` `0620`,
    /// all with group `group`. The files stay `0644` as daemontools makes `status`: the
    /// directory is what keeps others out. `lock` is never opened by a client and stays `0600`.
    ///
    /// Restoring (`None`) happens only when `control` shows a delegation (group permission, or a
    /// group other than ours): the directory goes back to `0700` and everything to our group.
    /// Returns whether anything was changed.
    pub fn set_access(&self, group: Option<u32>, fifos: &[BorrowedFd<'_>]) -> io::Result<bool> {
        let own_gid = rustix::process::getegid().as_raw();
        let (gid, dir_mode, fifo_mode) = match group {
            Some(g) => (g, 0o750, 0o620),
            None => {
                let delegated = match fifos.first() {
                    Some(fd) => {
                        let st = rustix::fs::fstat(fd)?;
                        st.st_gid != own_gid || st.st_mode & 0o070 != 0
                    }
                    None => false,
                };
                if !delegated {
                    return Ok(false);
                }
                (own_gid, 0o700, 0o600)
            }
        };
        let mut changed = false;
        let targets = std::iter::once((self.fd.as_fd(), dir_mode))
            .chain(fifos.iter().map(|fd| (*fd, fifo_mode)));
        for (fd, mode) in targets {
            let st = rustix::fs::fstat(fd)?;
            if st.st_gid != gid {
                rustix::fs::fchown(fd, None, Some(rustix::process::Gid::from_raw(gid)))?;
                changed = true;
            }
            if st.st_mode & 0o7777 != mode {
                rustix::fs::fchmod(fd, Mode::from_raw_mode(mode))?;
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Takes `flock(LOCK_EX|LOCK_NB)` on `name` (created 0600 if missing, never through a
    /// symlink). The lock lives as long as the returned file, which is close-on-exec.
    pub fn lock(&self, name: &str) -> io::Result<File> {
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::WRONLY
                | OFlags::APPEND
                | OFlags::CREATE
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        if !FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode).is_file() {
            return Err(refused("not a regular file"));
        }
        let f = File::from(fd);
        match f.try_lock() {
            Ok(()) => Ok(f),
            Err(std::fs::TryLockError::WouldBlock) => Err(Errno::AGAIN.into()),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Makes sure `name` is a FIFO we own with `mode`: anything else there is removed first
    /// (a regular file as `control` would read as an endless end of file).
    ///
    /// daemontools compat: daemontools opens whatever is there (and spins on a regular file).
    pub fn fifo(&self, name: &str, mode: u32) -> io::Result<FifoFound> {
        let found = match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => None,
            Err(e) => return Err(e.into()),
            Ok(st) => {
                let kind = FileType::from_raw_mode(st.st_mode);
                if kind.is_fifo() && st.st_uid == own_uid() {
                    return Ok(FifoFound::Fine);
                }
                let what = match kind {
                    FileType::Fifo => "a FIFO owned by another user",
                    FileType::RegularFile => "a regular file",
                    FileType::Symlink => "a symbolic link",
                    FileType::Directory => "a directory",
                    _ => "a special file",
                };
                let flags = if kind.is_dir() {
                    AtFlags::REMOVEDIR
                } else {
                    AtFlags::empty()
                };
                rustix::fs::unlinkat(&self.fd, name, flags)?;
                Some(what)
            }
        };
        match rustix::fs::mkfifoat(&self.fd, name, Mode::from_raw_mode(mode)) {
            Ok(()) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(found.map_or(FifoFound::Fine, FifoFound::Replaced))
    }

    /// Opens the FIFO `name` without blocking, for reading or writing; refuses anything that is
    /// not a FIFO we own (never follows a symlink).
    pub fn open_fifo(&self, name: &str, write: bool) -> io::Result<OwnedFd> {
        let access = if write {
            OFlags::WRONLY
        } else {
            OFlags::RDONLY
        };
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            access | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let st = rustix::fs::fstat(&fd)?;
        if !FileType::from_raw_mode(st.st_mode).is_fifo() {
            return Err(refused("not a FIFO"));
        }
        if st.st_uid != own_uid() {
            return Err(refused("owned by another user"));
        }
        Ok(fd)
    }

    /// Writes `bytes` to a fresh `tmp` (`O_CREAT|O_EXCL|O_NOFOLLOW`, 0644), then renames it
    /// over `name`: readers see the old content or the new. `sync` adds an fsync first.
    pub fn replace(&self, tmp: &str, name: &str, bytes: &[u8], sync: bool) -> io::Result<()> {
        let create = || {
            rustix::fs::openat(
                &self.fd,
                tmp,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
        };
        let fd = match create() {
            Ok(fd) => fd,
            // A leftover from a crash (or anything else, a planted link too) is at tmp: it
            // goes (unlink never follows), then the exclusive create again.
            Err(Errno::EXIST) => {
                rustix::fs::unlinkat(&self.fd, tmp, AtFlags::empty())?;
                create()?
            }
            Err(e) => return Err(e.into()),
        };
        let mut f = File::from(fd);
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        drop(f);
        Ok(rustix::fs::renameat(&self.fd, tmp, &self.fd, name)?)
    }

    /// The content of `name` (at most 1 MiB), never through a symlink; `None` when it is
    /// missing, unreadable or not a regular file.
    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let st = rustix::fs::fstat(&fd).ok()?;
        if !FileType::from_raw_mode(st.st_mode).is_file() {
            return None;
        }
        let mut out = Vec::new();
        File::from(fd).take(MAX_READ).read_to_end(&mut out).ok()?;
        Some(out)
    }

    /// Appends `record` to `name` with one `write(2)` on an `O_APPEND` descriptor, so a crash
    /// can tear at most this record. When the file has grown past `max`, it is first replaced
    /// (via `tmp` and a rename) by `keep(old content)`.
    ///
    /// `held` keeps the descriptor between records (one `fstat` and one `write` per record): it
    /// is opened again (never through a symlink, a regular file only) when it is missing, or
    /// when the file it names was removed or replaced (no links left).
    pub fn append_bounded(
        &self,
        held: &mut Option<File>,
        name: &str,
        tmp: &str,
        record: &[u8],
        max: u64,
        keep: impl Fn(&str) -> &str,
    ) -> io::Result<()> {
        let mut size = None;
        if let Some(f) = held.as_ref() {
            match rustix::fs::fstat(f) {
                Ok(st) if st.st_nlink > 0 => size = Some(u64::try_from(st.st_size).unwrap_or(0)),
                _ => *held = None,
            }
        }
        let size = match size {
            Some(n) => n,
            None => {
                let (f, n) = self.open_append(name)?;
                *held = Some(f);
                n
            }
        };
        if size > max {
            *held = None;
            let old = self.read(name).unwrap_or_default();
            let old = String::from_utf8_lossy(&old);
            self.replace(tmp, name, keep(&old).as_bytes(), false)?;
            *held = Some(self.open_append(name)?.0);
        }
        match held.as_ref() {
            Some(mut f) => f.write_all(record),
            None => Err(Errno::BADF.into()),
        }
    }

    /// `name` opened for appending (created 0644, never through a symlink, a regular file
    /// only), with its size.
    fn open_append(&self, name: &str) -> io::Result<(File, u64)> {
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::WRONLY
                | OFlags::APPEND
                | OFlags::CREATE
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )?;
        let st = rustix::fs::fstat(&fd)?;
        if !FileType::from_raw_mode(st.st_mode).is_file() {
            return Err(refused("not a regular file"));
        }
        Ok((File::from(fd), u64::try_from(st.st_size).unwrap_or(0)))
    }
}

impl AsFd for StateDir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn make_dir<P: rustix::path::Arg>(path: P) -> io::Result<()> {
    match rustix::fs::mkdirat(CWD, path, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn open_dir<P: rustix::path::Arg>(path: P) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        CWD,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-statedir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn open_in(dir: &std::path::Path) -> StateDir {
        let fd = open_dir(dir.as_os_str()).unwrap();
        StateDir { fd }
    }

    #[test]
    fn replace_never_follows_a_planted_tmp_link() {
        let d = temp("plant");
        let victim = d.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, d.join("status.new")).unwrap();
        let s = open_in(&d);
        s.replace("status.new", "status", b"new", false).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(d.join("status")).unwrap(), "new");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn append_keeps_its_descriptor_until_the_file_is_replaced() {
        let d = temp("append");
        let s = open_in(&d);
        let mut held = None;
        fn all(t: &str) -> &str {
            t
        }
        fn last(t: &str) -> &str {
            t.get(t.len() - 2..).unwrap_or("")
        }
        s.append_bounded(&mut held, "history", "history.new", b"a\n", 100, all)
            .unwrap();
        s.append_bounded(&mut held, "history", "history.new", b"b\n", 100, all)
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(d.join("history")).unwrap(),
            "a\nb\n"
        );
        // Removed, then a link planted in its place: never written through.
        std::fs::remove_file(d.join("history")).unwrap();
        std::fs::write(d.join("victim"), "precious").unwrap();
        std::os::unix::fs::symlink(d.join("victim"), d.join("history")).unwrap();
        assert!(
            s.append_bounded(&mut held, "history", "history.new", b"c\n", 100, all)
                .is_err()
        );
        assert_eq!(
            std::fs::read_to_string(d.join("victim")).unwrap(),
            "precious"
        );
        std::fs::remove_file(d.join("history")).unwrap();
        s.append_bounded(&mut held, "history", "history.new", b"d\n", 100, all)
            .unwrap();
        assert_eq!(std::fs::read_to_string(d.join("history")).unwrap(), "d\n");
        // Past the bound: cut to what `keep` keeps, then appended to.
        let big = vec![b'x'; 120];
        s.append_bounded(&mut held, "history", "history.new", &big, 100, all)
            .unwrap();
        s.append_bounded(&mut held, "history", "history.new", b"e\n", 100, last)
            .unwrap();
        assert_eq!(std::fs::read_to_string(d.join("history")).unwrap(), "xxe\n");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn access_is_given_to_a_group_and_taken_back() {
        use std::os::unix::fs::MetadataExt;
        let d = temp("access");
        let s = open_in(&d);
        s.fifo("control", 0o600).unwrap();
        let control = s.open_fifo("control", false).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
        let gid = |p: &std::path::Path| std::fs::metadata(p).unwrap().gid();
        let own = rustix::process::getegid().as_raw();
        // Nothing delegated: nothing changes.
        assert!(!s.set_access(None, &[control.as_fd()]).unwrap());
        // Our own group always works (root or not).
        assert!(s.set_access(Some(own), &[control.as_fd()]).unwrap());
        assert_eq!(mode(&d), 0o750);
        assert_eq!(mode(&d.join("control")), 0o620);
        assert!(!s.set_access(Some(own), &[control.as_fd()]).unwrap());
        assert!(s.set_access(None, &[control.as_fd()]).unwrap());
        assert_eq!(mode(&d), 0o700);
        assert_eq!(mode(&d.join("control")), 0o600);
        assert_eq!(gid(&d.join("control")), own);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn fifo_replaces_a_regular_file() {
        let d = temp("fifo");
        std::fs::write(d.join("control"), "").unwrap();
        let s = open_in(&d);
        assert_eq!(
            s.fifo("control", 0o600).unwrap(),
            FifoFound::Replaced("a regular file")
        );
        assert_eq!(s.fifo("control", 0o600).unwrap(), FifoFound::Fine);
        s.open_fifo("control", false).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }
}
