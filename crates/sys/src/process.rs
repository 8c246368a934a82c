//! Processes: reaping, signalling, and the hygiene a supervisor owes its children.

use std::io;
use std::os::fd::BorrowedFd;

use rustix::io::{Errno, FdFlags};
use rustix::process::{Pid, Signal, WaitOptions};
use vigil_core::procfs;

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
    // One syscall on Linux >= 5.11: close_range(3, ~0, CLOSE_RANGE_CLOEXEC). rustix has no
    // wrapper for it.
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on descriptors; it takes no
    // pointers and closes nothing, so no owner of a descriptor is affected.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return;
    }
    // Older kernels: walk /proc/self/fd.
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

/// Our parent's pid (0 when it is outside our pid namespace).
pub fn parent_pid() -> u32 {
    rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get().unsigned_abs())
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

/// Field `n` (1-based, as proc(5) numbers them; `n` >= 3) of `/proc/PID/stat` as a number,
/// `None` when the process is gone or a zombie. Read into a stack buffer and parsed in place:
/// supervise asks this at every start of `./run`, so no allocation. The command name may hold
/// spaces and parentheses: fields start after the last ")".
fn live_stat_field(pid: u32, n: usize) -> Option<u64> {
    let mut path = [0u8; 32];
    let path = proc_path(&mut path, pid, b"stat")?;
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    // 512 bytes hold field 22 and all before it however long the numbers (the name is at most
    // 64 bytes); the line ends in a newline, which saves the read that would return 0.
    let mut buf = [0u8; 512];
    let mut len = 0;
    while let Some(rest) = buf.get_mut(len..).filter(|r| !r.is_empty()) {
        match rustix::io::read(&fd, rest) {
            Ok(0) => break,
            Ok(k) => len += k,
            Err(Errno::INTR) => {}
            Err(_) => return None,
        }
        if len > 0 && buf.get(len - 1) == Some(&b'\n') {
            break;
        }
    }
    procfs::live_stat_field(buf.get(..len)?, n)
}

/// `/proc/PID/NAME` as a C string in `buf`.
fn proc_path<'a>(buf: &'a mut [u8; 32], pid: u32, name: &[u8]) -> Option<&'a std::ffi::CStr> {
    use std::io::Write;
    let mut w = &mut buf[..];
    write!(w, "/proc/{pid}/").ok()?;
    w.write_all(name).ok()?;
    w.write_all(&[0]).ok()?;
    std::ffi::CStr::from_bytes_until_nul(&buf[..]).ok()
}

/// The parent pid and session id of `pid` (fields 4 and 6 of `/proc/PID/stat`), also while it
/// is a zombie; `None` when it is gone.
pub fn parent_and_session(pid: u32) -> Option<(u32, u32)> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let ppid = u32::try_from(procfs::stat_field(&stat, 4)?).ok()?;
    let session = u32::try_from(procfs::stat_field(&stat, 6)?).ok()?;
    Some((ppid, session))
}

/// The real uid of a process (`/proc/PID/status`), `None` when it is gone.
pub fn real_uid(pid: u32) -> Option<u32> {
    procfs::status_real_uid(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// Our effective uid.
pub fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The parent pid of `pid` (field 4 of `/proc/PID/stat`), `None` when it is gone or a zombie.
pub fn parent_of(pid: u32) -> Option<u32> {
    u32::try_from(live_stat_field(pid, 4)?).ok()
}

/// The children of `pid`, zombies included (empty when it is gone): from
/// `/proc/PID/task/*/children` where the kernel has them (CONFIG_PROC_CHILDREN), else from one
/// scan of every `/proc/*/stat`.
pub fn children_of(pid: u32) -> Vec<u32> {
    if has_task_children() {
        children_from_tasks(pid)
    } else {
        children_from_scan(&scan_processes(), pid)
    }
}

/// Every live (not zombie) descendant of `pid`, parents before their children: from
/// `/proc/PID/task/*/children` where the kernel has them, else from one scan of
/// `/proc/*/stat`. A process whose parent exited has been reparented (to init or the nearest
/// subreaper) and is no longer a descendant: a subreaper's orphans stay its descendants.
pub fn descendants(pid: u32) -> Vec<u32> {
    if has_task_children() {
        descendants_from_tasks(pid)
    } else {
        descendants_from_scan(&scan_processes(), pid)
    }
}

/// Whether the kernel has `/proc/PID/task/TID/children` (CONFIG_PROC_CHILDREN).
fn has_task_children() -> bool {
    rustix::fs::access("/proc/thread-self/children", rustix::fs::Access::EXISTS).is_ok()
}

/// The union of `/proc/PID/task/*/children` (each thread's own children).
fn children_from_tasks(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        out.extend(procfs::children_pids(&text));
    }
    out
}

fn descendants_from_tasks(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for child in children_from_tasks(p) {
            // The files are read one after another: a process reparented meanwhile could
            // show up twice.
            if child != pid && !out.contains(&child) {
                out.push(child);
                todo.push(child);
            }
        }
    }
    out.retain(|&p| live_stat_field(p, 4).is_some());
    out
}

fn children_from_scan(procs: &[ProcEntry], pid: u32) -> Vec<u32> {
    procs
        .iter()
        .filter(|p| p.parent == pid)
        .map(|p| p.pid)
        .collect()
}

fn descendants_from_scan(procs: &[ProcEntry], pid: u32) -> Vec<u32> {
    let mut children: std::collections::HashMap<u32, Vec<&ProcEntry>> =
        std::collections::HashMap::new();
    for p in procs {
        children.entry(p.parent).or_default().push(p);
    }
    // One snapshot: each process has one parent in it, so no pid comes twice.
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for child in children.get(&p).into_iter().flatten() {
            if child.pid != pid {
                if child.live {
                    out.push(child.pid);
                }
                todo.push(child.pid);
            }
        }
    }
    out
}

/// One process as `/proc/PID/stat` shows it.
struct ProcEntry {
    pid: u32,
    parent: u32,
    /// Not a zombie.
    live: bool,
}

/// Every process of the system with its parent, from one pass over `/proc`.
fn scan_processes() -> Vec<ProcEntry> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read(e.path().join("stat")).ok()?;
            Some(ProcEntry {
                pid,
                parent: u32::try_from(procfs::stat_field(&stat, 4)?).ok()?,
                live: procfs::stat_alive(&stat),
            })
        })
        .collect()
}

/// The start time of a live process in clock ticks since boot (`/proc/PID/stat` field 22);
/// `None` when it is gone or a zombie. With the boot id it names one process for good.
pub fn start_ticks(pid: u32) -> Option<u64> {
    live_stat_field(pid, 22)
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`).
pub fn boot_id() -> Option<String> {
    // 37 bytes: one read into a small buffer (open, read, close), where std's reading of a
    // whole file takes six calls.
    let fd = rustix::fs::open(
        "/proc/sys/kernel/random/boot_id",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    let mut buf = [0u8; 64];
    let n = crate::fifo::read_full(&fd, &mut buf).ok()?;
    let text = std::str::from_utf8(buf.get(..n)?).ok()?;
    Some(text.trim().to_owned())
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

/// Reads the environment variable `name` and removes it from this process's environment, so
/// no child inherits it. Call only at start, while the process has a single thread.
pub fn take_env(name: &str) -> Option<std::ffi::OsString> {
    let value = std::env::var_os(name)?;
    // SAFETY: called at the start of a single-threaded program (supervise's setup), before any
    // thread exists that could read the environment concurrently.
    unsafe { std::env::remove_var(name) };
    Some(value)
}

/// Sets `name` in our environment, for every child started from now on. Single-threaded
/// programs only, at start.
pub fn put_env(name: &str, value: &str) {
    // SAFETY: called at the start of a single-threaded program (svscan's setup), before any
    // thread exists that could read the environment concurrently.
    unsafe { std::env::set_var(name, value) };
}

#[cfg(test)]
mod tree_tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn sorted(mut v: Vec<u32>) -> Vec<u32> {
        v.sort_unstable();
        v
    }

    /// Both ways of finding children and descendants agree on a real tree: sh, a sleep under
    /// it, and a setsid'ed sleep under a subshell (a grandchild), plus a zombie child.
    #[test]
    fn task_files_and_the_proc_scan_agree() {
        let sh = std::process::Command::new("sh")
            .args([
                "-c",
                "(setsid sleep 100 & exec sleep 100) & true & sleep 100 & echo ok; exec sleep 100",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = sh.id();
        /// Kills the tree however the test ends.
        struct Tree(std::process::Child);
        impl Drop for Tree {
            fn drop(&mut self) {
                for p in descendants_from_scan(&scan_processes(), self.0.id()) {
                    let _ = signal(p, libc::SIGKILL, false);
                }
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let mut sh = Tree(sh);
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(sh.0.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        // Settled: sh is sleep, with three live descendants (two children, one grandchild),
        // each of them sleep by now; `true` a zombie child or gone.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let comm = |p: u32| std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        loop {
            let d = descendants_from_scan(&scan_processes(), pid);
            if comm(pid) == "sleep\n" && d.len() == 3 && d.iter().all(|&p| comm(p) == "sleep\n") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "tree never settled: {d:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let procs = scan_processes();
        let scanned = sorted(descendants_from_scan(&procs, pid));
        assert_eq!(scanned.len(), 3);
        if has_task_children() {
            assert_eq!(sorted(descendants_from_tasks(pid)), scanned);
            let by_scan = sorted(children_from_scan(&scan_processes(), pid));
            assert_eq!(sorted(children_from_tasks(pid)), by_scan);
        } else {
            eprintln!("SKIP part of task_files_and_the_proc_scan_agree: no task/*/children");
        }
        assert_eq!(sorted(descendants(pid)), scanned);
        // The grandchild is not a child; it leads its own session.
        let kids = children_from_scan(&procs, pid);
        let grand: Vec<u32> = scanned
            .iter()
            .copied()
            .filter(|p| !kids.contains(p))
            .collect();
        assert_eq!(grand.len(), 1);
        assert_eq!(parent_and_session(grand[0]).map(|(_, s)| s), Some(grand[0]));
    }
}

#[cfg(test)]
mod stat_tests {
    use super::*;

    #[test]
    fn stat_fields_of_this_process() {
        let me = own_pid();
        let ppid = rustix::process::getppid().map(|p| p.as_raw_nonzero().get().unsigned_abs());
        assert_eq!(parent_of(me), ppid);
        let text = std::fs::read_to_string(format!("/proc/{me}/stat")).unwrap();
        let after = text.rsplit_once(") ").unwrap().1;
        let ticks: u64 = after.split(' ').nth(19).unwrap().parse().unwrap();
        assert_eq!(start_ticks(me), Some(ticks));
        assert_eq!(start_ticks(u32::MAX), None);
    }
}
