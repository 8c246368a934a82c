//! Reading Linux's `/proc` for svscan's takeover: who holds which lock (`/proc/locks`), which
//! processes exist, run which program, and whether they are still alive. The text is parsed in
//! [`vigil_core::procfs`].

use std::path::Path;

use vigil_core::procfs;

/// `/proc/locks` as text (empty when unreadable): read once for a batch of lookups.
pub fn read_locks() -> String {
    std::fs::read_to_string("/proc/locks").unwrap_or_default()
}

/// Every pid in `/proc`.
pub fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Pids of running `program` processes whose working directory is `dir` or below it and that
/// hold no lock at all: supervise processes forked by a killed svscan that have not yet taken
/// their lock (they run in the scan directory or a service directory until they do).
pub fn unlocked_supervisors(program: &std::ffi::OsStr, dir: &Path) -> Vec<u32> {
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|&pid| {
            pid != own
                && std::fs::read_link(format!("/proc/{pid}/exe"))
                    .is_ok_and(|exe| exe.as_os_str() == program)
                && runs_as_supervise(pid)
                && std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .collect();
    // `/proc/locks` only when there is someone to look up: reading it can wait for an RCU
    // grace period (the kernel freezes every lock list to print them), 8-26 ms measured here,
    // which every start of svscan paid before its first service could start.
    if !found.is_empty() {
        // Sorted: every process is looked up in it, and a busy machine has thousands.
        let holders = procfs::lock_holders(&read_locks());
        found.retain(|pid| holders.binary_search(pid).is_err());
    }
    found
}

/// Whether `pid`'s argv[0] is `supervise` (a path or the bare name): the multi-call executable
/// runs every program, so the executable alone does not say which one this is.
fn runs_as_supervise(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| procfs::argv0_is(&c, b"supervise"))
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
    let pids = procfs::lock_pids(&locks, major, minor, st.st_ino);
    !pids.is_empty() && pids.into_iter().all(|p| !alive(p))
}

/// A process exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/stat")).is_ok_and(|s| procfs::stat_alive(&s))
}
