//! svwait — wait until services are up, ready, down or finished.
//!
//! Usage: `svwait [-u|-U|-d|-D] [-a|-o] [-t ms] dir ...`
//!
//! - `-u` up (the default), `-U` up and ready, `-d` down, `-D` down with `./finish` done;
//!   the last of these given wins.
//! - `-a` all of the directories (the default), `-o` one of them.
//! - `-t ms` give up after ms milliseconds (default: wait for ever; 0 = only look once).
//!
//! Readiness: with `notification-fd` or `notify-socket` in a service directory, `-U` waits for
//! the readiness of the current run as vigil's supervise records it in `supervise/info`;
//! without either (or under daemontools' or runit's supervisor, which write no `info`),
//! ready means up. Event-driven: see [`vigil_sys::wait`].
//!
//! Exit codes (s6-svwait's): 0 reached; 99 timed out; 100 usage; 102 a supervise is not
//! running or went away; 111 system error.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use vigil_core::getopt::{self, Opt};
use vigil_core::wait::{Goal, Quorum};
use vigil_sys::diag;
use vigil_sys::wait::Waiter;

const PROG: &str = "svwait";
const USAGE: &str = "svwait [-u|-U|-d|-D] [-a|-o] [-t ms] dir...";

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let Ok((opts, dirs)) = getopt::parse(&args, "uUdDaot:") else {
        return diag::usage(PROG, USAGE);
    };
    let mut goal = Goal::Up;
    let mut quorum = Quorum::All;
    let mut limit = None;
    for o in &opts {
        match o {
            Opt::Flag(b'a') => quorum = Quorum::All,
            Opt::Flag(b'o') => quorum = Quorum::One,
            Opt::Flag(c) => goal = Goal::from_letter(*c).unwrap_or(goal),
            Opt::Arg(_, v) => match v.to_str().and_then(|s| s.parse::<u64>().ok()) {
                Some(ms) => limit = Some(Duration::from_millis(ms)),
                None => return diag::usage(PROG, USAGE),
            },
        }
    }
    if dirs.is_empty() {
        return diag::usage(PROG, USAGE);
    }
    let deadline = limit.map(|l| Instant::now() + l);
    let result = Waiter::new().and_then(|mut w| {
        for d in dirs {
            w.add(Path::new(d))?;
        }
        w.wait(goal, quorum, deadline)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => diag::fatal(PROG, &f.message(), f.code()),
    }
}
