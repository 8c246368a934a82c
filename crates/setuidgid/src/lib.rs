//! setuidgid — run a program as an account (daemontools' setuidgid).
//!
//! Usage: `setuidgid account child…`
//!
//! Looks `account` up in `/etc/passwd`, sets the groups to exactly its primary group (no other
//! supplementary group survives), the gid, then the uid, and execs `child`.
//!
//! Exit codes: 100 usage; 111 unknown account, unreadable `/etc/passwd`, setgid or setuid
//! failed, or `child` cannot be run; otherwise `child`'s own.
//!
//! daemontools compat: accounts come from `/etc/passwd` only, not NSS (see
//! `vigil_core::account`).
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use vigil_sys::account::{self, IdStep};
use vigil_sys::diag::{self, EXIT_TEMP};
use vigil_sys::exec;

const PROG: &str = "setuidgid";

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let Some((name, child)) = args.split_first().filter(|(_, c)| !c.is_empty()) else {
        return diag::usage(PROG, "setuidgid account child");
    };
    let fatal = |text: String| diag::fatal(PROG, &text, EXIT_TEMP);
    let user = match account::user_or_reason(name.as_bytes()) {
        Ok(u) => u,
        Err(text) => return fatal(text),
    };
    if let Err((step, e)) = account::become_ids(user.uid, user.gid, &[user.gid]) {
        let what = if step == IdStep::Uid {
            "setuid"
        } else {
            "setgid"
        };
        return diag::fatal(PROG, &diag::bare_text(what, &e), EXIT_TEMP);
    }
    let e = exec::exec(child, &Vec::new(), None);
    fatal(exec::run_failure(child, &e))
}
