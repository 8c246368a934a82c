//! Performing the actions about the scan directory itself: taking its lock, looking for a
//! predecessor's orphans, listing it into the machine. Each reports what it found as the
//! machine's input; none decides what happens next.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use vigil_core::scan::{DirLock, Input};
use vigil_sys::diag;
use vigil_sys::files::{self, Listed};
use vigil_sys::watch::Watcher;
use vigil_sys::{lock, pidfd, process, procfs};

use crate::service::LOG_PENDING;
use crate::{PROG, Svscan};

impl Svscan {
    /// Takes the lock on the scan directory (the current directory). A predecessor killed a
    /// moment after a fork leaves the lock in that child until its exec: "busy, owner gone".
    pub(crate) fn lock_dir(&mut self) -> DirLock {
        let here = Path::new(".");
        self.dir_lock = lock::lock_dir(here);
        match &self.dir_lock {
            Ok(_) => {
                self.locked();
                DirLock::Taken
            }
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => DirLock::Busy {
                owner_gone: procfs::lock_owner_gone(here),
            },
            Err(_) => DirLock::Failed,
        }
    }

    /// The scan directory is ours: reap orphans, watch the directory.
    fn locked(&mut self) {
        if process::own_pid() != 1
            && let Err(e) = process::become_subreaper()
        {
            diag::unable(PROG, "become", &"a subreaper", &e);
        }
        // Said once here rather than by each supervise: without a writable cgroup2 hierarchy,
        // the supervise processes run without cgroups, quietly.
        let root = vigil_core::cgroup::ROOT_ENV;
        self.cgroups = vigil_sys::cgroup::Hierarchy::find();
        if std::env::var_os(root).is_none() && self.cgroups.is_none() {
            diag::warn(
                PROG,
                "no writable cgroup2 hierarchy: each service's processes are tracked as \
                 descendants of its supervise",
            );
            process::put_env(root, vigil_core::cgroup::ROOT_OFF);
        }
        // Every supervise we start leaves its cgroup to us to remove once reaped.
        process::put_env(
            vigil_core::scan::SCANNER_ENV,
            &process::own_pid().to_string(),
        );
        let watched = Watcher::new().and_then(|w| {
            let wd = w.watch_scan_dir(Path::new("."))?;
            Ok((w, wd))
        });
        match watched {
            Ok(w) => self.watcher = Some(w),
            Err(e) => self.fall_back(&e),
        }
    }

    /// A predecessor's supervise processes that hold no lock yet (our executable, working in
    /// the scan directory): their pidfds join the poll set, so an exit is seen at once.
    pub(crate) fn check_orphans(&mut self) -> usize {
        let Ok(dir) = std::env::current_dir() else {
            return 0;
        };
        let pids = procfs::unlocked_supervisors(&self.supervise, &dir);
        self.orphans = pids.iter().filter_map(|&p| pidfd::open(p).ok()).collect();
        pids.len()
    }

    /// Lists the scan directory into the machine, one entry at a time (a listing of thousands
    /// is never held), performing the starts the machine hands out meanwhile, so the first
    /// services of a long listing start before the rest is read.
    pub(crate) fn rescan(&mut self) {
        let now = self.now();
        let mut unstattable = HashSet::new();
        // Services are mostly directories: the scan directory's link count tells how many.
        let expected = std::fs::metadata(".").map_or(0, |m| {
            usize::try_from(m.nlink().saturating_sub(2)).unwrap_or(0)
        });
        self.scan.begin_scan(expected, now);
        let entries = match files::ServiceEntries::new(Path::new(".")) {
            Ok(entries) => entries,
            Err(e) => return self.scan_failed(&e),
        };
        for listed in entries {
            match listed {
                Ok(Listed::Service(seen)) => {
                    if let Some(held) = self.scan.seen(&seen, now) {
                        held.set(LOG_PENDING, seen.log_pending);
                    }
                    if self.scan.listed_some(self.now()) {
                        // Probes and starts only: nothing else is queued during a listing.
                        let _ = self.perform();
                    }
                }
                Ok(Listed::Unstattable(name, e)) => {
                    if !self.unstattable.contains(&name) {
                        let name = String::from_utf8_lossy(name.as_bytes());
                        diag::unable(PROG, "stat", &name, &e);
                    }
                    unstattable.insert(name);
                }
                Err(e) => return self.scan_failed(&e),
            }
        }
        self.unstattable = unstattable;
        self.scan.end_scan(now);
        self.hold_and_watch();
    }

    fn scan_failed(&mut self, e: &std::io::Error) {
        diag::unable(PROG, "read", &"directory", e);
        self.handle(Input::ScanFailed);
    }
}
