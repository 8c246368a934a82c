//! sv — runit's service control client, for runit's `runsv` and vigil's `supervise` alike.
//!
//! Usage: `sv [-v] [-w sec] command service ...`, or, linked as an init script
//! (`/etc/init.d/NAME`, any name other than `sv`): `NAME [-w sec] command`.
//!
//! - command: `status`, `up`, `down`, `once`, `pause`, `cont`, `hup`, `alarm`, `interrupt`,
//!   `quit`, `1`, `2`, `term`, `kill`, `exit` (only the first letter counts), or `start`,
//!   `stop`, `reload`, `restart`, `shutdown`, `force-stop`, `force-reload`, `force-restart`,
//!   `force-shutdown`, `try-restart`, `check` (spelled out). See [`vigil_core::sv`].
//! - service: a name under `$SVDIR` (default `/etc/service`), or a path when it starts with `/`
//!   or `.` or ends with `/`.
//! - `-v` wait for up, down, once, term, cont, exit and report; `-w sec` wait at most sec
//!   seconds (default `$SVWAIT`, else 7), implies `-v`.
//!
//! Messages and exit codes are runit's: all on stdout (`ok:`, `fail:`, `warning:`, `timeout:`,
//! `kill:`), usage on stderr. Exit code: the number of directories that failed, at most 99;
//! 100 usage. As an init script: 0 done, 1 failed or timed out, 2 usage; for `status`, 3 down
//! and 4 status unknown; 151 system error.
//!
//! runit compat: two deliberate differences. (a) Waiting is event-driven (inotify on
//! `supervise/`, through [`vigil_sys::wait`]) instead of a look every 0.42 s, so `-w 0` looks
//! once; a failing `./check` is run again after 50 ms, doubling up to 0.42 s. (b) `start`, `up`
//! and `check` on a directory no supervisor runs yet (no `supervise/ok`, or nobody reading it)
//! wait up to the timeout for one to appear, instead of failing at once: a service linked into
//! a scan directory can be started straight away. When nothing has to wait, the output is
//! runit's to the byte.
#![forbid(unsafe_code)]

mod client;

use client::Sv;

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use vigil_core::getopt::{self, Opt, OptError};
use vigil_core::layout;
use vigil_core::sv::{self, Action, Record, Verdict};
use vigil_core::tai::Tai64n;
use vigil_sys::clock::tai_now;
use vigil_sys::service::{self, Liveness};
use vigil_sys::spawn::{Spawn, spawn};
use vigil_sys::wait::{Waiter, wait_supervised};
use vigil_sys::{diag, fifo, process};

const DEFAULT_SVDIR: &str = "/etc/service";
const DEFAULT_WAIT: u64 = 7;
const EXIT_USAGE: u8 = 100;
const LSB_USAGE: u8 = 2;
const LSB_FAILED: u8 = 1;
const LSB_DOWN: u8 = 3;
const LSB_UNKNOWN: u8 = 4;
const LSB_SYSTEM: u8 = 151;
/// runit's interval between looks; ours only when a directory cannot be watched.
const RUNIT_INTERVAL: Duration = Duration::from_millis(420);
const CHECK_RETRY_FIRST: Duration = Duration::from_millis(50);

/// The program as `sv`, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    run(None, &args)
}

/// The program as an init script: `name` is the base name it was called by, which is also the
/// service.
pub fn main_lsb(name: &OsStr, args: Vec<OsString>) -> ExitCode {
    run(Some(name.as_bytes()), &args)
}

fn run(lsb: Option<&[u8]>, args: &[OsString]) -> ExitCode {
    let prog = String::from_utf8_lossy(lsb.unwrap_or(b"sv")).into_owned();
    let usage = || -> ExitCode {
        let (text, code) = match lsb {
            Some(_) => (format!("usage: {prog} [-w sec] command\n\n"), LSB_USAGE),
            None => (
                "usage: sv [-v] [-w sec] command service ...\n\n".to_string(),
                EXIT_USAGE,
            ),
        };
        let _ = io::stderr().write_all(text.as_bytes());
        ExitCode::from(code)
    };
    let (opts, operands) = match getopt::parse(args, "vw:") {
        Ok(x) => x,
        Err(e) => {
            let text = match e {
                OptError::Illegal(c) => format!("{prog}: illegal option -- {}", char::from(c)),
                OptError::MissingArg(c) => {
                    format!("{prog}: option requires an argument -- {}", char::from(c))
                }
            };
            diag::line(&text);
            return usage();
        }
    };
    let mut verbose = false;
    let mut waitsec =
        std::env::var_os("SVWAIT").map_or(DEFAULT_WAIT, |v| sv::parse_seconds(v.as_bytes()));
    for o in &opts {
        match o {
            Opt::Flag(_) => verbose = true,
            Opt::Arg(_, v) => {
                waitsec = sv::parse_seconds(v.as_bytes());
                verbose = true;
            }
        }
    }
    let (word, names): (&OsString, Vec<&[u8]>) = match (lsb, operands) {
        (Some(name), [word, ..]) => (word, vec![name]),
        (None, [word, rest @ ..]) if !rest.is_empty() => {
            (word, rest.iter().map(|s| s.as_bytes()).collect())
        }
        _ => return usage(),
    };
    let Some(action) = sv::parse_action(word.as_bytes(), lsb.is_some()) else {
        return usage();
    };
    let svdir = std::env::var_os("SVDIR").unwrap_or_else(|| DEFAULT_SVDIR.into());
    let mut sv = Sv {
        action,
        verbose,
        start: tai_now(),
        deadline: Instant::now() + Duration::from_secs(waitsec),
        failures: 0,
        lsb: lsb.is_some(),
        lsb_status: None,
    };
    match sv.run_all(Path::new(&svdir), &names) {
        Ok(()) => {}
        Err(text) => {
            diag::line(&format!("{prog}: fatal: {text}"));
            return ExitCode::from(if sv.lsb { LSB_SYSTEM } else { EXIT_USAGE });
        }
    }
    ExitCode::from(sv.exit_code())
}
