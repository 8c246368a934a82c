//! svok — is a supervise running in this service directory?
//!
//! Usage: `svok dir` (further arguments are ignored, as daemontools' svok ignores them).
//!
//! Exit codes: 0 supervise runs; 100 it does not (or never ran there), or usage; 111 the
//! directory or `supervise/ok` could not be opened for another reason.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use vigil_core::layout;
use vigil_sys::diag::{self, EXIT_TEMP, EXIT_USAGE};
use vigil_sys::fifo;
use vigil_sys::service::{self, Liveness};

const PROG: &str = "svok";

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    // daemontools compat: arguments after the first are ignored, as svok.c does.
    let Some(dir) = args.first() else {
        return diag::usage(PROG, "svok dir");
    };
    let name = String::from_utf8_lossy(dir.as_bytes());
    let base = match fifo::open_dir(dir.as_ref()) {
        Ok(fd) => fd,
        Err(e) => {
            return diag::unable_fatal(PROG, "chdir to", &name, &e, EXIT_TEMP);
        }
    };
    match service::liveness(&base) {
        Ok(Liveness::Running(_)) => ExitCode::SUCCESS,
        Ok(Liveness::NotRunning) => ExitCode::from(EXIT_USAGE),
        Err(e) if service::is_missing(&e) => ExitCode::from(EXIT_USAGE),
        Err(e) => diag::unable_fatal(
            PROG,
            "open",
            &format_args!("{name}/{}", layout::OK),
            &e,
            EXIT_TEMP,
        ),
    }
}
