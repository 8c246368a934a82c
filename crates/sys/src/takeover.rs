//! Taking over from a dead svscan: who holds a service's `supervise/lock`, a pidfd to watch that
//! supervise, and the log pipe end it holds.
//!
//! A supervise left running by a killed svscan is not our child: its exit reaches us through a
//! pidfd (readable once the process has exited), never through SIGCHLD. Its pid comes from
//! `/proc/locks` (the line whose inode is the lock file's), and is trusted only after the
//! pidfd is open and the process is seen holding a descriptor of that very file, so a recycled
//! pid can never be taken for the holder. When `/proc/locks` names nobody usable (another pid
//! namespace, a kernel that hides it), every process's descriptors are searched instead.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use rustix::process::PidfdGetfdFlags;

/// A live process, by pid and pidfd.
#[derive(Debug)]
pub struct Holder {
    pub pid: u32,
    pub pidfd: OwnedFd,
}

/// What a lock file says about its supervise.
#[derive(Debug)]
pub enum Lock {
    /// No lock file, or nobody holds it.
    Free,
    /// Held; the holder when it could be found and opened as a pidfd.
    Held(Option<Holder>),
}

/// (device, inode) of a file.
pub type FileId = (u64, u64);

/// Looks at the lock file `rel` under `dir` without creating it. Testing the lock takes it for
/// an instant (and drops it at once) when nobody holds it. `locks` gives `/proc/locks`
/// ([`read_locks`]), read into `locks` only when the lock is held and kept there for the
/// next lookups, so a fresh service directory (no lock file yet) costs one failed open, not a
/// read of every lock on the system.
pub fn lock_state(
    dir: impl AsFd,
    rel: impl AsRef<Path>,
    locks: &mut Option<String>,
) -> io::Result<Lock> {
    let fd = match rustix::fs::openat(
        dir,
        rel.as_ref(),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(Lock::Free),
        Err(e) => return Err(e.into()),
    };
    match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        // Closing `fd` drops the lock again.
        Ok(()) => return Ok(Lock::Free),
        Err(Errno::WOULDBLOCK) => {}
        Err(e) => return Err(e.into()),
    }
    let st = rustix::fs::fstat(&fd)?;
    let id = (st.st_dev, st.st_ino);
    let (major, minor) = (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev));
    let locks = locks.get_or_insert_with(read_locks).as_str();
    for pid in lock_pids(locks, major, minor, st.st_ino) {
        if let Some(h) = verified(pid, id) {
            return Ok(Lock::Held(Some(h)));
        }
    }
    // Device numbers in /proc/locks can differ from stat's (overlay filesystems): try every
    // pid whose lock is on this inode, then every process.
    for pid in lock_pids_any_dev(locks, st.st_ino) {
        if let Some(h) = verified(pid, id) {
            return Ok(Lock::Held(Some(h)));
        }
    }
    Ok(Lock::Held(
        all_pids().into_iter().find_map(|p| verified(p, id)),
    ))
}

/// The current directory as a directory descriptor, for [`lock_state`] on a relative path.
pub fn cwd() -> BorrowedFd<'static> {
    rustix::fs::CWD
}

/// The current soft limit on open descriptors (`None`: unlimited). svscan reads it at every
/// scan to decide how many descriptors it may spend on conveniences.
pub fn nofile_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// `/proc/locks` as text (empty when unreadable): read once for a batch of lookups.
pub fn read_locks() -> String {
    std::fs::read_to_string("/proc/locks").unwrap_or_default()
}

/// Pids of the granted locks on `major:minor:ino` in `/proc/locks` text. A line reads
/// `1: FLOCK  ADVISORY  WRITE 2004 fe:00:5333127 0 EOF` (device numbers in hex); waiters
/// (`1: -> FLOCK …`) are skipped, and so are pids ≤ 0 (OFD locks, other namespaces).
pub fn lock_pids(locks: &str, major: u32, minor: u32, ino: u64) -> Vec<u32> {
    parse_locks(locks)
        .filter(|&(_, maj, min, i)| maj == major && min == minor && i == ino)
        .map(|(pid, ..)| pid)
        .collect()
}

fn lock_pids_any_dev(locks: &str, ino: u64) -> Vec<u32> {
    parse_locks(locks)
        .filter(|&(.., i)| i == ino)
        .map(|(pid, ..)| pid)
        .collect()
}

fn parse_locks(locks: &str) -> impl Iterator<Item = (u32, u32, u32, u64)> + '_ {
    locks.lines().filter_map(|line| {
        let mut f = line.split_whitespace();
        f.next()?; // "N:"
        let kind = f.next()?;
        if kind == "->" {
            return None;
        }
        f.next()?; // ADVISORY
        f.next()?; // READ/WRITE
        let pid: i64 = f.next()?.parse().ok()?;
        let mut dev = f.next()?.split(':');
        let maj = u32::from_str_radix(dev.next()?, 16).ok()?;
        let min = u32::from_str_radix(dev.next()?, 16).ok()?;
        let ino: u64 = dev.next()?.parse().ok()?;
        let pid = u32::try_from(pid).ok().filter(|&p| p > 0)?;
        Some((pid, maj, min, ino))
    })
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A pidfd for `pid`, kept only if the process (alive after the pidfd was opened) has a
/// descriptor on the file `id`.
fn verified(pid: u32, id: FileId) -> Option<Holder> {
    let pidfd = open(pid).ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let holds = fds
        .flatten()
        .any(|e| std::fs::metadata(e.path()).is_ok_and(|m| (m.dev(), m.ino()) == id));
    (holds && !exited(&pidfd)).then_some(Holder { pid, pidfd })
}

/// `pidfd_open(pid)`.
pub fn open(pid: u32) -> io::Result<OwnedFd> {
    crate::process::pidfd_open(pid)
}

/// True once the process behind `pidfd` has exited (its pidfd polls readable).
pub fn exited(pidfd: impl AsFd) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let mut set = [PollFd::new(&pidfd, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(rustix::event::poll(&mut set, Some(&zero)), Ok(n) if n > 0)
}

/// Sends `sig` through a pidfd (never to a recycled pid).
pub fn signal(pidfd: impl AsFd, sig: i32) -> io::Result<()> {
    crate::process::pidfd_signal(pidfd, sig)
}

/// A duplicate of descriptor `fd` of the process: `pidfd_getfd` (Linux 5.6), else, where that
/// system call does not exist, a fresh open of `/proc/PID/fd/FD` (for a pipe: the same pipe).
pub fn take_fd(holder: &Holder, fd: i32) -> io::Result<OwnedFd> {
    match rustix::process::pidfd_getfd(&holder.pidfd, fd, PidfdGetfdFlags::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::NOSYS) => {
            let f = open_pipe_end(&format!("/proc/{}/fd/{fd}", holder.pid), fd == 0)?;
            if exited(&holder.pidfd) {
                return Err(io::Error::from_raw_os_error(Errno::SRCH.raw_os_error()));
            }
            Ok(f)
        }
        Err(e) => Err(e.into()),
    }
}

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
fn open_pipe_end(path: &str, read: bool) -> io::Result<OwnedFd> {
    let mode = if read { OFlags::RDONLY } else { OFlags::WRONLY };
    let f = rustix::fs::open(
        path,
        mode | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    crate::fifo::set_blocking(&f)?;
    Ok(f)
}

/// Pids of running `program` processes whose working directory is `dir` or below it and that
/// hold no lock at all: supervise processes forked by a killed svscan that have not yet taken
/// their lock (they run in the scan directory or a service directory until they do).
pub fn unlocked_supervisors(program: &std::ffi::OsStr, dir: &Path) -> Vec<u32> {
    let locks = read_locks();
    let mut holders: Vec<u32> = parse_locks(&locks).map(|(pid, ..)| pid).collect();
    // Sorted: every process is looked up in it, and a busy machine has thousands of each.
    holders.sort_unstable();
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|&pid| pid != own && holders.binary_search(&pid).is_err())
        .filter(|&pid| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|exe| exe.as_os_str() == program)
                && runs_as_supervise(pid)
                && std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .collect()
}

/// Whether `pid`'s argv[0] is `supervise` (a path or the bare name): the multi-call executable
/// runs every program, so the executable alone does not say which one this is.
fn runs_as_supervise(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let argv0 = c.split(|&b| b == 0).next().unwrap_or_default();
        argv0.rsplit(|&b| b == b'/').next() == Some(&b"supervise"[..])
    })
}

/// True when every process `/proc/locks` names as holding a lock on `path` is dead or a zombie:
/// the lock then lives on only in children it forked a moment before its death, which drop it
/// at their exec (the descriptor is close-on-exec). False when nobody is named (unknown).
pub fn lock_owner_gone(path: &Path) -> bool {
    let Ok(st) = rustix::fs::stat(path) else {
        return false;
    };
    let locks = read_locks();
    let (major, minor) = (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev));
    let pids = lock_pids(&locks, major, minor, st.st_ino);
    !pids.is_empty() && pids.into_iter().all(|p| !alive(p))
}

/// A process exists and is not a zombie.
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may contain anything.
    let state = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 1..))
        .and_then(|rest| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X" | "x"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn parses_proc_locks() {
        let text = "1: FLOCK  ADVISORY  WRITE 2004 fe:00:5333127 0 EOF\n\
                    1: -> FLOCK  ADVISORY  WRITE 3000 fe:00:5333127 0 EOF\n\
                    2: OFDLCK ADVISORY  READ  -1 fe:00:5333127 0 EOF\n\
                    3: POSIX  ADVISORY  WRITE 77 103:0a:12 0 EOF\n";
        assert_eq!(lock_pids(text, 0xfe, 0, 5_333_127), vec![2004]);
        assert_eq!(lock_pids(text, 0x103, 0x0a, 12), vec![77]);
        assert!(lock_pids(text, 0xfe, 1, 5_333_127).is_empty());
        assert_eq!(lock_pids_any_dev(text, 12), vec![77]);
    }

    #[test]
    fn finds_our_own_lock_and_the_other_end_of_a_pipe() {
        let dir = std::env::temp_dir().join(format!("vigil-takeover-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lock");
        let held = crate::files::try_lock(&path).unwrap();
        let d = std::fs::File::open(&dir).unwrap();
        let mut locks = None;
        let Lock::Held(Some(h)) = lock_state(&d, "lock", &mut None).unwrap() else {
            panic!("lock not seen held");
        };
        assert_eq!(h.pid, std::process::id());
        drop(held);
        assert!(matches!(
            lock_state(&d, "lock", &mut None).unwrap(),
            Lock::Free
        ));
        assert!(matches!(
            lock_state(&d, "none", &mut locks).unwrap(),
            Lock::Free
        ));
        assert!(locks.is_none(), "no lock file: /proc/locks left unread");
        let _ = std::fs::remove_dir_all(&dir);

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
        let me = Holder {
            pid: std::process::id(),
            pidfd: open(std::process::id()).unwrap(),
        };
        let dup = take_fd(&me, w.as_raw_fd()).unwrap();
        assert_eq!(pipe_id(&dup), pipe_id(&r));
        assert!(!exited(&me.pidfd));
    }
}
