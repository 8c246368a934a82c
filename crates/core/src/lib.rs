//! vigil-core: everything vigil decides, with no syscalls, no clock reads and no `unsafe`.
//!
//! The programs feed these modules bytes and times and act on what comes back, so every rule
//! here (the status layout, what a control byte means, when a service restarts) is testable
//! without a process in sight.
#![forbid(unsafe_code)]

pub mod account;
pub mod cgroup;
pub mod control;
pub mod envdir;
pub mod getopt;
pub mod history;
pub mod info;
pub mod layout;
pub mod limit;
pub mod logpipe;
pub mod machine;
pub mod multilog;
pub mod procfs;
pub mod readiness;
pub mod scan;
pub mod status;
pub mod sv;
pub mod svstat;
pub mod tai;
pub mod wait;
