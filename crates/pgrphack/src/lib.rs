//! pgrphack — run a program in a new session and process group (daemontools' pgrphack).
//!
//! Usage: `pgrphack child…`
//!
//! Calls setsid(2) (a failure, as when already a group leader, is ignored, as daemontools'
//! does) and execs `child`, so signals sent to supervise's process group do not reach it.
//!
//! Exit codes: 100 usage; 111 `child` cannot be run; otherwise `child`'s own.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::process::ExitCode;

use vigil_sys::diag::{self, EXIT_TEMP};
use vigil_sys::exec;

const PROG: &str = "pgrphack";

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    if args.is_empty() {
        return diag::usage(PROG, "pgrphack child");
    }
    let _ = exec::new_session();
    let e = exec::exec(&args, &Vec::new(), None);
    diag::fatal(PROG, &exec::run_failure(&args, &e), EXIT_TEMP)
}
