//! setlock — run a program holding an exclusive lock on a file (daemontools' setlock).
//!
//! Usage: `setlock [ -nNxX ] file program [ arg ... ]`
//!
//! Opens `file` for appending (created mode 0600), takes an exclusive flock on it and execs
//! `program` with the locked descriptor open, so the lock lasts until every process holding
//! that descriptor has closed it. `-N` (default) waits for a held lock, `-n` gives up at once;
//! `-X` (default) reports a file that cannot be opened or locked, `-x` exits 0 silently instead.
//! The last of each pair wins.
//!
//! Exit codes: 100 usage; 111 open or lock failed (without `-x`), or `program` cannot be run;
//! 0 open or lock failed with `-x`; otherwise `program`'s own.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use vigil_core::getopt::{self, Opt, OptError};
use vigil_sys::diag::{self, EXIT_TEMP};
use vigil_sys::exec;
use vigil_sys::lock::{self, LockStep};

const PROG: &str = "setlock";
const USAGE: &str = "setlock [ -nNxX ] file program [ arg ... ]";

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let (opts, rest) = match getopt::parse(&args, "nNxX") {
        Ok(parsed) => parsed,
        Err(OptError::Illegal(c) | OptError::MissingArg(c)) => {
            diag::line(&format!("{PROG}: illegal option -- {}", char::from(c)));
            return diag::usage(PROG, USAGE);
        }
    };
    let (mut wait, mut quiet) = (true, false);
    for opt in opts {
        match opt {
            Opt::Flag(b'n') => wait = false,
            Opt::Flag(b'N') => wait = true,
            Opt::Flag(b'x') => quiet = true,
            Opt::Flag(b'X') => quiet = false,
            _ => {}
        }
    }
    let Some((file, child)) = rest.split_first().filter(|(_, c)| !c.is_empty()) else {
        return diag::usage(PROG, USAGE);
    };
    let _held = match lock::hold(file.as_ref(), wait) {
        Ok(fd) => fd,
        Err(_) if quiet => return ExitCode::SUCCESS,
        Err((step, e)) => {
            let verb = if step == LockStep::Open {
                "open"
            } else {
                "lock"
            };
            let shown = String::from_utf8_lossy(file.as_bytes());
            return diag::unable_fatal(PROG, verb, &shown, &e, EXIT_TEMP);
        }
    };
    let e = exec::exec(child, &Vec::new(), None);
    diag::fatal(PROG, &exec::run_failure(child, &e), EXIT_TEMP)
}
