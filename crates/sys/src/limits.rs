//! Resource limits and the nice value: what softlimit and chpst change before they exec.

use std::io;

use rustix::process::{Pid, Resource as Rlimit, Rlimit as Pair};
use vigil_core::limit::{INFINITY, Resource, Soft, soft_value};

fn resource(r: Resource) -> Rlimit {
    match r {
        Resource::AddressSpace => Rlimit::As,
        Resource::Core => Rlimit::Core,
        Resource::Cpu => Rlimit::Cpu,
        Resource::Data => Rlimit::Data,
        Resource::FileSize => Rlimit::Fsize,
        Resource::Locked => Rlimit::Memlock,
        Resource::OpenFiles => Rlimit::Nofile,
        Resource::Processes => Rlimit::Nproc,
        Resource::Resident => Rlimit::Rss,
        Resource::Stack => Rlimit::Stack,
    }
}

/// Sets the soft limit of `r` to `want`, capped at the hard limit, which stays as it is.
pub fn set_soft(r: Resource, want: Soft) -> io::Result<()> {
    let r = resource(r);
    let now = rustix::process::getrlimit(r);
    let hard = now.maximum.unwrap_or(INFINITY);
    let soft = soft_value(want, hard);
    let pair = Pair {
        current: (soft != INFINITY).then_some(soft),
        maximum: now.maximum,
    };
    rustix::process::setrlimit(r, pair)?;
    Ok(())
}

/// Adds `inc` to the nice value, as nice(3) does: a refused raise is EPERM ("permission
/// denied"), as glibc's nice reports the EACCES of setpriority(2).
pub fn add_nice(inc: i32) -> io::Result<()> {
    let now = rustix::process::getpriority_process(None::<Pid>)?;
    match rustix::process::setpriority_process(None, now.saturating_add(inc)) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::ACCESS) => Err(rustix::io::Errno::PERM.into()),
        Err(e) => Err(e.into()),
    }
}

/// The current soft limit on open descriptors (`None`: unlimited). svscan reads it at every
/// scan to decide how many descriptors it may spend on conveniences.
pub fn nofile_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}
