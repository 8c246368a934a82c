//! vigil-sys: every syscall vigil makes, and the only crate with `unsafe`.
//!
//! Program crates are wiring between these functions and the pure decisions in `vigil-core`.
//! Errors are `std::io::Error`; [`diag`] turns them into daemontools' words.

pub mod account;
pub mod cgroup;
pub mod children;
pub mod clock;
pub mod detach;
pub mod diag;
pub mod envdir;
pub mod errstr;
pub mod event;
pub mod exec;
pub mod fifo;
pub mod files;
pub mod limits;
pub mod lock;
pub mod logdir;
pub mod logio;
pub mod notify;
pub mod pidfd;
pub mod poll;
pub mod process;
pub mod procfs;
pub mod proctitle;
pub mod service;
pub mod signals;
pub mod spawn;
pub mod statedir;
pub mod wait;
pub mod watch;
