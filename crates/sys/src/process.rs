//! Processes: reaping, signalling, and the hygiene a supervisor owes its children.

use std::io;
use std::os::fd::BorrowedFd;

use rustix::io::{Errno, FdFlags};
use rustix::process::{Pid, Signal, WaitOptions};

/// Reaps one exited child without blocking: `(pid, raw wait status)`, or `None` when no child
/// has exited (or there are no children).
pub fn reap() -> Option<(u32, i32)> {
    loop {
        match rustix::process::wait(WaitOptions::NOHANG) {
            Ok(Some((pid, status))) => {
                return Some((pid.as_raw_nonzero().get().unsigned_abs(), status.as_raw()));
            }
            Ok(None) => return None,
            Err(Errno::INTR) => {}
            Err(_) => return None,
        }
    }
}

/// Waits for the child `pid` to exit; its raw wait status.
pub fn wait_for(pid: u32) -> io::Result<i32> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::from_raw_os_error(Errno::CHILD.raw_os_error()))?;
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => return Ok(status.as_raw()),
            Ok(None) => {}
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sends `sig` to `pid`, or to the process group `pid` leads when `group`.
pub fn signal(pid: u32, sig: i32, group: bool) -> io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::from_raw_os_error(Errno::SRCH.raw_os_error()))?;
    let sig = Signal::from_named_raw(sig)
        .ok_or_else(|| io::Error::from_raw_os_error(Errno::INVAL.raw_os_error()))?;
    if group {
        rustix::process::kill_process_group(pid, sig)?;
    } else {
        rustix::process::kill_process(pid, sig)?;
    }
    Ok(())
}

/// Marks every inherited descriptor above 2 close-on-exec, so `./run` gets fds 0-2 only, whatever
/// the process that started us left open.
pub fn cloexec_inherited() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: `fd` was listed in /proc/self/fd a moment ago and nothing in this
        // single-threaded process closes descriptors meanwhile; if it is the (now closed)
        // directory stream's own fd, fcntl fails with EBADF, which is ignored.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let _ = rustix::io::fcntl_setfd(borrowed, FdFlags::CLOEXEC);
    }
}

/// Our pid.
pub fn own_pid() -> u32 {
    rustix::process::getpid()
        .as_raw_nonzero()
        .get()
        .unsigned_abs()
}

/// Makes this process a child subreaper: orphans below it are reparented to it.
pub fn become_subreaper() -> io::Result<()> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
    Ok(())
}

/// Raises the soft limit on open descriptors to the hard limit; returns the new soft limit
/// (`None` = unlimited).
pub fn raise_nofile_limit() -> io::Result<Option<u64>> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: lim.maximum,
                maximum: lim.maximum,
            },
        )?;
    }
    Ok(lim.maximum)
}

/// Fields 3 onwards of `/proc/PID/stat` (state first), `None` when the process is gone or a
/// zombie. The command name may hold spaces and parentheses: fields start after the last ")".
fn live_stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    let fields: Vec<String> = rest.split(' ').map(str::to_owned).collect();
    match fields.first().map(String::as_str) {
        Some("Z" | "X") | None => None,
        Some(_) => Some(fields),
    }
}

/// The parent pid and session id of `pid` (fields 4 and 6 of `/proc/PID/stat`), also while it
/// is a zombie; `None` when it is gone.
pub fn parent_and_session(pid: u32) -> Option<(u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut fields = rest.split(' ').skip(1);
    let ppid = fields.next()?.parse().ok()?;
    let session = fields.nth(1)?.parse().ok()?;
    Some((ppid, session))
}

/// The real uid of a process (`/proc/PID/status`), `None` when it is gone.
pub fn real_uid(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// Our effective uid.
pub fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The parent pid of `pid` (field 4 of `/proc/PID/stat`), `None` when it is gone or a zombie.
pub fn parent_of(pid: u32) -> Option<u32> {
    live_stat_fields(pid)?.get(1)?.parse().ok()
}

/// The children of `pid`, from `/proc/PID/task/*/children` (empty when it is gone).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        out.extend(
            text.split_whitespace()
                .filter_map(|w| w.parse::<u32>().ok()),
        );
    }
    out
}

/// The start time of a live process in clock ticks since boot (`/proc/PID/stat` field 22);
/// `None` when it is gone or a zombie. With the boot id it names one process for good.
pub fn start_ticks(pid: u32) -> Option<u64> {
    live_stat_fields(pid)?.get(19)?.parse().ok()
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`).
pub fn boot_id() -> Option<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(text.trim().to_owned())
}

/// A pidfd for `pid` (close-on-exec): readable once the process has ended, and a way to signal
/// it that can never hit a recycled pid.
pub fn pidfd_open(pid: u32) -> io::Result<std::os::fd::OwnedFd> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::from_raw_os_error(Errno::SRCH.raw_os_error()))?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

/// Sends `sig` through a pidfd.
pub fn pidfd_signal(fd: impl std::os::fd::AsFd, sig: i32) -> io::Result<()> {
    let sig = Signal::from_named_raw(sig)
        .ok_or_else(|| io::Error::from_raw_os_error(Errno::INVAL.raw_os_error()))?;
    rustix::process::pidfd_send_signal(fd, sig)?;
    Ok(())
}

/// Names this process `name` in `/proc/PID/comm` (what `ps`, `top` and `pgrep` show), for a
/// program of the multi-call executable started under a name the kernel did not see (svscan
/// execs its own executable as supervise). Names are cut to 15 bytes by the kernel.
pub fn set_comm(name: &str) {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    if let (Some(dst), Some(src)) = (buf.get_mut(..n), name.as_bytes().get(..n)) {
        dst.copy_from_slice(src);
    }
    if let Ok(c) = std::ffi::CStr::from_bytes_until_nul(&buf) {
        // Cosmetic: a failure leaves the executable's own name.
        let _ = rustix::thread::set_name(c);
    }
}
