//! softlimit — run a program with lower soft resource limits (daemontools' softlimit).
//!
//! Usage: `softlimit [-a allbytes] [-c corebytes] [-d databytes] [-f filebytes] [-l lockbytes]
//! [-m membytes] [-o openfiles] [-p processes] [-r residentbytes] [-s stackbytes]
//! [-t cpusecs] child…`
//!
//! Each option sets one soft limit (`-m` sets data, stack, locked memory and address space) to
//! a number, or to the hard limit when it is `=`; a number above the hard limit is taken as the
//! hard limit. Hard limits are left alone. Then `child` is exec'd.
//!
//! Exit codes: 100 usage (unknown option, a value that is not a number or `=`, no child);
//! 111 a limit cannot be set or `child` cannot be run; otherwise `child`'s own.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use vigil_core::getopt::{self, Opt, OptError};
use vigil_core::limit::{parse_soft, softlimit_resources};
use vigil_sys::diag::{self, EXIT_TEMP};
use vigil_sys::{exec, limits};

const PROG: &str = "softlimit";
const USAGE: &str = "softlimit [-a allbytes] [-c corebytes] [-d databytes] [-f filebytes] \
[-l lockbytes] [-m membytes] [-o openfiles] [-p processes] [-r residentbytes] \
[-s stackbytes] [-t cpusecs] child";

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let (opts, child) = match getopt::parse(&args, "a:c:d:f:l:m:o:p:r:s:t:") {
        Ok(parsed) => parsed,
        Err(OptError::Illegal(c)) => {
            diag::line(&format!("{PROG}: illegal option -- {}", char::from(c)));
            return diag::usage(PROG, USAGE);
        }
        Err(OptError::MissingArg(c)) => {
            diag::line(&format!(
                "{PROG}: option requires an argument -- {}",
                char::from(c)
            ));
            return diag::usage(PROG, USAGE);
        }
    };
    let mut wanted = Vec::new();
    for opt in &opts {
        let Opt::Arg(letter, value) = opt else {
            return diag::usage(PROG, USAGE);
        };
        let Some(soft) = parse_soft(value.as_bytes()) else {
            return diag::usage(PROG, USAGE);
        };
        wanted.extend(softlimit_resources(*letter).iter().map(|&r| (r, soft)));
    }
    if child.is_empty() {
        return diag::usage(PROG, USAGE);
    }
    for (resource, soft) in wanted {
        if let Err(e) = limits::set_soft(resource, soft) {
            return diag::fatal(
                PROG,
                &format!("setrlimit failed: {}", diag::reason(&e)),
                EXIT_TEMP,
            );
        }
    }
    let e = exec::exec(child, &Vec::new(), None);
    diag::fatal(PROG, &exec::run_failure(child, &e), EXIT_TEMP)
}
