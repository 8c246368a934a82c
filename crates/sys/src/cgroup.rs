//! cgroup2: a cgroup per service under vigil's own sub-tree, and the files that join, count,
//! watch, limit and kill every process in it.
//!
//! Everything vigil creates lives in `<root>/vigil/`; nothing else in the host's tree is
//! written (the parent's `cgroup.subtree_control` is never touched). A service's cgroup is
//! `<root>/vigil/<name>` (name from `vigil_core::cgroup::service_name`), reused when it exists
//! so a successor supervise adopting a leftover run finds the same cgroup. Its files are opened
//! relative to a directory descriptor held for its lifetime, `O_NOFOLLOW|O_CLOEXEC`.
//!
//! Kernel facts this relies on (Linux 6.x, checked on a hybrid system):
//! - `cgroup.events` signals a change with `POLLPRI|POLLERR` on an open descriptor; `POLLIN` is
//!   always set on kernfs files, so polling for it alone wakes at once. Reading the file
//!   (from offset 0) re-arms the notification; a descriptor never read reports a change at
//!   once.
//! - Zombies do not count: `populated` drops to 0 once every process has exited, reaped or
//!   not, and the cgroup can be removed from then on (`rmdir` fails with EBUSY before).

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use vigil_core::cgroup::{self as names, Limit, RootChoice};

/// `statfs` type of a cgroup2 mount (linux/magic.h).
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

/// How many times creating a cgroup starts over when `vigil/` vanished under it (another
/// supervise removed it between our `mkdir`s).
const CREATE_TRIES: usize = 8;

/// The words [`ServiceCgroup::set_limit`] gives when the controller of a limit is not enabled.
pub const NOT_AVAILABLE: &str = "controller not available";

/// A writable cgroup2 hierarchy.
#[derive(Clone, Debug)]
pub struct Hierarchy {
    root: PathBuf,
}

impl Hierarchy {
    /// The hierarchy as `VIGIL_CGROUP_ROOT` says (`off`: none; a path: that directory, if it
    /// is a writable cgroup2 directory), else `/sys/fs/cgroup` when it is a cgroup2 mount, else
    /// `/sys/fs/cgroup/unified` (hybrid systems); `None` when there is no writable one.
    pub fn find() -> Option<Hierarchy> {
        let value = std::env::var_os(names::ROOT_ENV);
        Hierarchy::choose(value.as_deref())
    }

    /// [`Hierarchy::find`] with the value of `VIGIL_CGROUP_ROOT` given.
    pub fn choose(value: Option<&OsStr>) -> Option<Hierarchy> {
        match names::choose_root(value.map(OsStrExt::as_bytes)) {
            RootChoice::Off => None,
            RootChoice::At(path) => Hierarchy::at(Path::new(OsStr::from_bytes(path))),
            RootChoice::Probe => Hierarchy::at(Path::new(names::ROOT_PURE))
                .or_else(|| Hierarchy::at(Path::new(names::ROOT_HYBRID))),
        }
    }

    /// `root` as a hierarchy, if it is a cgroup2 directory where we may write: its `vigil/`
    /// exists and is writable (a delegated sub-tree), or `root` itself is.
    pub fn at(root: &Path) -> Option<Hierarchy> {
        let fs = rustix::fs::statfs(root).ok()?;
        if u64::try_from(fs.f_type).ok() != Some(CGROUP2_SUPER_MAGIC) {
            return None;
        }
        let writable = |p: &Path| rustix::fs::access(p, rustix::fs::Access::WRITE_OK).is_ok();
        let sub = root.join(names::SUBTREE);
        (writable(&sub) || writable(root)).then(|| Hierarchy {
            root: root.to_path_buf(),
        })
    }

    /// The root directory of the hierarchy.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/vigil`.
    pub fn subtree(&self) -> PathBuf {
        self.root.join(names::SUBTREE)
    }

    /// The cgroup that a supervise which has exited recorded in `info` (its `supervise/info`,
    /// relative to `dir`) for the service directory `service` (relative to `dir`; `.` for `dir`
    /// itself), for svscan to remove with [`remove_dir`]: svscan's half of
    /// [`vigil_core::scan::SCANNER_ENV`]. The recorded path is believed only if it is a cgroup
    /// of this hierarchy's `vigil/` named for that very directory (its device and inode
    /// numbers), so a planted record names no other service's cgroup.
    pub fn recorded(&self, dir: BorrowedFd<'_>, service: &str, info: &str) -> io::Result<PathBuf> {
        let invalid = || io::Error::from(io::ErrorKind::InvalidData);
        let recorded = crate::service::read_info_in(dir, info)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let path = PathBuf::from(recorded.cgroup);
        let st = rustix::fs::statat(dir, service, AtFlags::empty())?;
        let name = path.file_name().ok_or_else(invalid)?;
        if path.parent() != Some(self.subtree().as_path())
            || !names::names_directory(name.as_bytes(), st.st_dev, st.st_ino)
        {
            return Err(invalid());
        }
        Ok(path)
    }

    /// Removes `<root>/vigil` if it is empty (svscan at its exit); quiet when it is not, or
    /// gone.
    pub fn remove_subtree(&self) {
        remove_if_empty(&self.subtree());
    }

    /// Makes `<root>/vigil` (there already: fine) and enables in it the controllers vigil wants
    /// among those it offers; returns it opened. A failure to enable is not an error: the
    /// limits then report [`NOT_AVAILABLE`].
    fn open_subtree(&self) -> io::Result<OwnedFd> {
        let sub = self.subtree();
        match rustix::fs::mkdir(&sub, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let dir = open_dir(rustix::fs::CWD, &sub)?;
        if let Ok(offered) = read_at(&dir, names::CONTROLLERS)
            && let Some(request) = names::subtree_request(&offered)
        {
            let enabled = read_at(&dir, names::SUBTREE_CONTROL).unwrap_or_default();
            if names::subtree_request(&enabled).as_deref() != Some(request.as_str()) {
                let _ = write_at(&dir, names::SUBTREE_CONTROL, request.as_bytes());
            }
        }
        Ok(dir)
    }
}

/// The cgroup name of the service directory `dir`: from its device and inode numbers and its
/// basename (of the canonical path, so `.` works).
pub fn service_name(dir: &Path) -> io::Result<String> {
    let st = rustix::fs::stat(dir)?;
    // The working directory's name costs one readlink; canonicalising walks every component.
    let canonical = if dir == Path::new(".") {
        std::fs::read_link("/proc/self/cwd").or_else(|_| std::fs::canonicalize(dir))?
    } else {
        std::fs::canonicalize(dir)?
    };
    let base = canonical.file_name().map_or(&b""[..], OsStrExt::as_bytes);
    Ok(names::service_name(base, st.st_dev, st.st_ino))
}

/// One service's cgroup, `<root>/vigil/<name>`.
#[derive(Debug)]
pub struct ServiceCgroup {
    /// `<root>/vigil`, to remove our directory from.
    parent: OwnedFd,
    dir: OwnedFd,
    /// `<root>/vigil/<name>`: the one string kept (name and sub-tree are parts of it), since
    /// every allocation a supervise keeps is part of its memory for good.
    path: PathBuf,
}

impl ServiceCgroup {
    /// Opens the cgroup `name` under `vigil/`, creating it (and `vigil/`) when missing.
    pub fn open_or_create(h: &Hierarchy, name: &str) -> io::Result<ServiceCgroup> {
        check_name(name)?;
        let mut last = io::Error::from_raw_os_error(Errno::NOENT.raw_os_error());
        for _ in 0..CREATE_TRIES {
            let parent = match h.open_subtree() {
                Ok(p) => p,
                Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                    last = e;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                // `vigil/` was removed after we opened it: start over.
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            }
            match open_dir(&parent, name) {
                Ok(dir) => return Ok(ServiceCgroup::new(h, parent, dir, name)),
                Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Opens the existing cgroup `name` under `vigil/` (for readers such as svstat: nothing is
    /// created). ENOENT when there is none.
    pub fn open(h: &Hierarchy, name: &str) -> io::Result<ServiceCgroup> {
        check_name(name)?;
        let parent = open_dir(rustix::fs::CWD, h.subtree())?;
        let dir = open_dir(&parent, name)?;
        Ok(ServiceCgroup::new(h, parent, dir, name))
    }

    fn new(h: &Hierarchy, parent: OwnedFd, dir: OwnedFd, name: &str) -> ServiceCgroup {
        let mut path = h.subtree();
        path.push(name);
        ServiceCgroup { parent, dir, path }
    }

    /// The cgroup's name under `vigil/`.
    pub fn name(&self) -> &str {
        self.path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
    }

    /// The cgroup's directory, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cgroup's directory, for [`crate::spawn::Spawn`]'s `cgroup_dir` (a child born in
    /// it).
    pub fn dir_fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// `cgroup.procs` opened for writing (close-on-exec), for [`crate::spawn::Spawn`]'s
    /// `cgroup_procs`: the child writes `0` to it to join the cgroup before it execs.
    pub fn open_procs(&self) -> io::Result<OwnedFd> {
        open_at(&self.dir, names::PROCS, OFlags::WRONLY)
    }

    /// The pids in the cgroup (processes, not threads).
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        Ok(names::parse_procs(&read_at(&self.dir, names::PROCS)?))
    }

    /// How many processes the cgroup holds.
    pub fn count(&self) -> io::Result<usize> {
        Ok(self.pids()?.len())
    }

    /// Whether any process is in the cgroup (`populated` of `cgroup.events`).
    pub fn populated(&self) -> io::Result<bool> {
        parse_events(&read_at(&self.dir, names::EVENTS)?)
    }

    /// `cgroup.events` opened for watching, and armed: see [`Events`].
    pub fn watch_events(&self) -> io::Result<Events> {
        let events = Events {
            fd: open_at(&self.dir, names::EVENTS, OFlags::RDONLY)?,
        };
        // A descriptor never read reports a change at once (Linux 6.18): read to arm it.
        events.populated()?;
        Ok(events)
    }

    /// Kills every process in the cgroup at once (`cgroup.kill`, SIGKILL, race-free: also
    /// processes forking meanwhile). Before Linux 5.14 (no `cgroup.kill`): SIGKILL to each
    /// process listed, which misses one forked meanwhile, so kill again while `populated`
    /// stays 1.
    pub fn kill(&self) -> io::Result<()> {
        match write_at(&self.dir, names::KILL, b"1") {
            Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                self.signal_all(libc::SIGKILL)
            }
            other => other,
        }
    }

    /// Sends `sig` to each process listed in `cgroup.procs` (for the steps of a stop sequence
    /// before the final kill). A process that exits meanwhile is not an error. The pids are read
    /// and then signalled: a process forked in between is missed, which [`Self::kill`] is not.
    pub fn signal_all(&self, sig: i32) -> io::Result<()> {
        for pid in self.pids()? {
            match crate::process::signal(pid, sig, false) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(Errno::SRCH.raw_os_error()) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Bytes of memory the cgroup uses (`memory.current`), `None` without the memory
    /// controller.
    pub fn memory_current(&self) -> Option<u64> {
        names::parse_number(&read_at(&self.dir, names::MEMORY_CURRENT).ok()?)
    }

    /// Writes `value` (as the knob file has it: a number, with a K/M/G suffix for memory, or
    /// `max`) to the limit's file. When the file is missing (its controller is not enabled
    /// here) the error is [`NOT_AVAILABLE`], recognised by [`is_not_available`]; a value the
    /// kernel refuses is EINVAL.
    pub fn set_limit(&self, limit: Limit, value: &[u8]) -> io::Result<()> {
        match write_at(&self.dir, limit.file(), value) {
            Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                Err(crate::diag::refused(NOT_AVAILABLE))
            }
            other => other,
        }
    }

    /// Removes the cgroup (ENOENT: already gone, fine), then `vigil/` itself when it is left
    /// empty (quietly: other services, or another supervise was first). EBUSY while a process
    /// is still in the cgroup. A supervise started
    /// by svscan leaves this to svscan ([`Hierarchy::recorded`]).
    pub fn remove(&self) -> io::Result<()> {
        match rustix::fs::unlinkat(&self.parent, self.name(), AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(subtree) = self.path.parent() {
            remove_if_empty(subtree);
        }
        Ok(())
    }
}

/// Removes the (empty) cgroup directory `path` ([`Hierarchy::recorded`]). Already gone: fine;
/// EBUSY: a process is still in it (a run a successor adopts), and it stays.
pub fn remove_dir(path: &Path) -> io::Result<()> {
    match rustix::fs::unlinkat(rustix::fs::CWD, path, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes `vigil/` (`path`) if nothing is left in it; quiet when something is (other
/// services: EBUSY, ENOTEMPTY) or it is gone.
fn remove_if_empty(path: &Path) {
    let _ = rustix::fs::unlinkat(rustix::fs::CWD, path, AtFlags::REMOVEDIR);
}

/// How many processes the cgroup directory `path` holds and how much memory it uses (each
/// `None` when it cannot be read, or without the memory controller), for readers such as svstat
/// that know the path from `supervise/info`. Only files named by the cgroup2 interface inside
/// `path` are read, and only when `path` is on a cgroup2 file system.
pub fn usage(path: &Path) -> (Option<usize>, Option<u64>) {
    let on_cgroup2 = rustix::fs::statfs(path)
        .is_ok_and(|fs| u64::try_from(fs.f_type).ok() == Some(CGROUP2_SUPER_MAGIC));
    if !on_cgroup2 {
        return (None, None);
    }
    let Ok(dir) = open_dir(rustix::fs::CWD, path) else {
        return (None, None);
    };
    let count = read_at(&dir, names::PROCS)
        .ok()
        .map(|b| names::parse_procs(&b).len());
    let memory = read_at(&dir, names::MEMORY_CURRENT)
        .ok()
        .and_then(|b| names::parse_number(&b));
    (count, memory)
}

/// `cgroup.events` held open: poll [`Events::as_fd`] for `POLLPRI` (revents `PRI|ERR`) to learn
/// of a change, then call [`Events::populated`], which also re-arms the notification.
#[derive(Debug)]
pub struct Events {
    fd: OwnedFd,
}

impl Events {
    /// The poll events that mean "changed" (ask for these; `POLLIN` is always ready, and a
    /// change comes back as `PRI|ERR`).
    pub const CHANGED: rustix::event::PollFlags = rustix::event::PollFlags::PRI;

    /// `populated` now, read from the start of the file (re-arming the notification).
    pub fn populated(&self) -> io::Result<bool> {
        let mut buf = [0u8; 128];
        let n = loop {
            match rustix::io::pread(&self.fd, &mut buf, 0) {
                Ok(n) => break n,
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        };
        parse_events(buf.get(..n).unwrap_or_default())
    }

    /// Blocks until the file changes or `timeout` passes (`None`: no timeout); whether it
    /// changed. For callers with nothing else to wait for; a loop polls [`Self::as_fd`] itself.
    pub fn wait_change(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let mut set = [rustix::event::PollFd::new(&self.fd, Self::CHANGED)];
        let ts = timeout.map(|d| rustix::event::Timespec {
            tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        loop {
            match rustix::event::poll(&mut set, ts.as_ref()) {
                Ok(n) => return Ok(n > 0),
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl AsFd for Events {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Whether `e` is [`ServiceCgroup::set_limit`]'s "controller not available".
pub fn is_not_available(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<crate::diag::Refused>())
        .is_some_and(|r| r.0 == NOT_AVAILABLE)
}

/// A name is one plain path component.
fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(io::Error::from_raw_os_error(Errno::INVAL.raw_os_error()));
    }
    Ok(())
}

fn parse_events(text: &[u8]) -> io::Result<bool> {
    names::parse_populated(text).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))
}

fn open_dir<P: rustix::path::Arg>(at: impl AsFd, path: P) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        at,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn open_at(dir: &OwnedFd, name: &str, mode: OFlags) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        mode | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The most read of a cgroup file (`cgroup.procs` of a service with a million processes).
const READ_MAX: usize = 16 << 20;

/// The whole of a (small, kernel-generated) file in `dir`.
fn read_at(dir: &OwnedFd, name: &str) -> io::Result<Vec<u8>> {
    let fd = open_at(dir, name, OFlags::RDONLY)?;
    crate::fifo::read_to_vec(&fd, 64, READ_MAX)
}

/// Writes `bytes` to the file `name` in `dir` in one write (cgroup files take one value per
/// write).
fn write_at(dir: &OwnedFd, name: &str, bytes: &[u8]) -> io::Result<()> {
    let fd = open_at(dir, name, OFlags::WRONLY)?;
    loop {
        match rustix::io::write(&fd, bytes) {
            Ok(n) if n == bytes.len() => return Ok(()),
            Ok(_) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
