//! envuidgid — put an account's uid and gid in the environment (daemontools' envuidgid).
//!
//! Usage: `envuidgid account child…`
//!
//! Sets `$UID` and `$GID` to the uid and primary gid `/etc/passwd` gives `account`, then execs
//! `child` (for programs that drop privileges themselves later).
//!
//! Exit codes: 100 usage; 111 unknown account, unreadable `/etc/passwd`, or `child` cannot be
//! run; otherwise `child`'s own.
//!
//! daemontools compat: accounts come from `/etc/passwd` only, not NSS.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use vigil_sys::account;
use vigil_sys::diag::{self, EXIT_TEMP};
use vigil_sys::exec;

const PROG: &str = "envuidgid";

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let Some((name, child)) = args.split_first().filter(|(_, c)| !c.is_empty()) else {
        return diag::usage(PROG, "envuidgid account child");
    };
    let fatal = |text: String| diag::fatal(PROG, &text, EXIT_TEMP);
    let user = match account::user_or_reason(name.as_bytes()) {
        Ok(u) => u,
        Err(text) => return fatal(text),
    };
    let env = vec![
        ("GID".into(), Some(user.gid.to_string().into())),
        ("UID".into(), Some(user.uid.to_string().into())),
    ];
    let e = exec::exec(child, &env, None);
    fatal(exec::run_failure(child, &e))
}
