//! envdir — set environment variables from the files of a directory (daemontools' envdir).
//!
//! Usage: `envdir dir child…`
//!
//! Each file of `dir` not starting with `.` names a variable: its first line, spaces and tabs
//! at the end removed and NULs turned into newlines, is the value; an empty file removes the
//! variable. Then `child` is exec'd.
//!
//! Exit codes: 111 usage (as daemontools' envdir), `dir` or one of its files unreadable (a
//! subdirectory too), or `child` cannot be run; otherwise `child`'s own.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use vigil_sys::diag::{self, EXIT_TEMP};
use vigil_sys::envdir::{EnvDirError, Strictness, env_changes, read_changes};
use vigil_sys::exec;

const PROG: &str = "envdir";

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let Some((dir, child)) = args.split_first().filter(|(_, c)| !c.is_empty()) else {
        diag::line("envdir: usage: envdir dir child");
        return ExitCode::from(EXIT_TEMP);
    };
    let fatal = |text: String| diag::fatal(PROG, &text, EXIT_TEMP);
    let shown = String::from_utf8_lossy(dir.as_bytes());
    let changes = match read_changes(dir.as_ref(), Strictness::Strict) {
        Ok(c) => c,
        Err(EnvDirError::Open(e)) => {
            return diag::unable_fatal(
                PROG,
                "switch to",
                &format_args!("directory {shown}"),
                &e,
                EXIT_TEMP,
            );
        }
        Err(EnvDirError::OpenList(e) | EnvDirError::List(e)) => {
            return diag::unable_fatal(
                PROG,
                "read",
                &format_args!("directory {shown}"),
                &e,
                EXIT_TEMP,
            );
        }
        Err(EnvDirError::Read(name, e)) => {
            let name = String::from_utf8_lossy(name.as_bytes());
            return diag::unable_fatal(
                PROG,
                "read",
                &format_args!("{shown}/{name}"),
                &e,
                EXIT_TEMP,
            );
        }
    };
    let env = env_changes(changes);
    let e = exec::exec(child, &env, None);
    fatal(exec::run_failure(child, &e))
}
